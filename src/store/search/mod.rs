//! The store-level search query (search.html): a resource type, ANDed clauses of ORed
//! conditions over the index tables, an order and a keyset cursor — rendered into one
//! parameterised SQL statement per dialect. Values reach SQL only as bound parameters; the
//! shape of the statement depends only on the structure of the query, never on its values.

use super::sql::{Bind, Dialect};
use fhir_primitives::{RangeEnd, RangeTest};

mod history;
mod include;
mod sort;

pub use history::{render_history, TypeReach};
pub use include::{render_include, IncludeDirection, IncludeQuery};
#[cfg(test)]
pub(crate) use sort::newest_date_first;
use sort::render_sorted_page;
pub use sort::{SortKey, SortKind, SortSource};

/// How a range parameter (date, number, quantity, `_lastUpdated`) compares: the search
/// prefix itself (search.html#prefix).
pub use fhir_search_query::Prefix as RangeOp;

/// A search value's range, inclusive, with the comparison to apply.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range<T> {
    pub op: RangeOp,
    pub low: T,
    pub high: T,
}

/// How a string parameter matches (search.html#string).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StringMatch {
    /// Default: the folded value starts with the folded search text.
    StartsWith(String),
    /// `:exact`: the exact text.
    Exact(String),
    /// `:contains`: the folded value contains the folded search text.
    Contains(String),
}

/// Which token systems match (search.html#token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SystemMatch {
    /// `code`: any system.
    Any,
    /// `|code`: no system.
    Absent,
    /// `system|code` or `system|`.
    Is(String),
}

/// How a uri parameter matches (search.html#uri).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UriMatch {
    Exact,
    /// `:below`: the stored uri starts with the search uri.
    Below,
    /// `:above`: the search uri starts with the stored uri.
    Above,
}

/// One condition on a resource.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Id(String),
    /// The id is one of these (one condition, however many: no OR chain).
    IdIn(Vec<String>),
    LastUpdated(Range<i64>),
    String {
        code: String,
        matching: StringMatch,
    },
    Token {
        code: String,
        system: SystemMatch,
        value: Option<String>,
    },
    /// `:text` on a token: folded display text starts with.
    TokenText {
        code: String,
        norm_prefix: String,
    },
    Date {
        code: String,
        range: Range<i64>,
    },
    Number {
        code: String,
        range: Range<f64>,
        system: Option<String>,
        unit: Option<String>,
    },
    Reference {
        code: String,
        target_type: Option<String>,
        target_id: Option<String>,
        url: Option<String>,
    },
    Uri {
        code: String,
        value: String,
        matching: UriMatch,
    },
    /// A reference parameter points at one of `target_ids` of `target_type` (compartments of
    /// many patients at once).
    ReferenceIn {
        code: String,
        target_type: String,
        target_ids: Vec<String>,
    },
    /// `:missing`: `missing = true` matches resources with no index row for `code` in `table`.
    Missing {
        code: String,
        table: &'static str,
        missing: bool,
    },
    /// Chaining (`subject:Patient.name=x`): the reference parameter `code` points at a current
    /// resource of `target_type` that matches `inner`.
    Chain {
        code: String,
        target_type: String,
        inner: Box<Condition>,
    },
    /// Reverse chaining (`_has:Observation:patient:code=x`): some current `source_type`
    /// resource whose reference parameter `reference_code` points here matches `inner`.
    Has {
        source_type: String,
        reference_code: String,
        inner: Box<Condition>,
    },
    /// All of these clauses (used to confine the resources a chain or `_has` looks at).
    All(Vec<Clause>),
}

/// A set of alternatives (comma-separated values), possibly negated (`:not`).
#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    pub any_of: Vec<Condition>,
    pub negated: bool,
}

/// The result order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Order {
    LastUpdatedDesc,
    LastUpdatedAsc,
    IdAsc,
    IdDesc,
    /// `_sort` by one or more keys (search.html#sort), ties broken by id.
    Keys(Vec<SortKey>),
}

/// A keyset position: the sort key of the last row of the previous page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub last_updated_us: i64,
    pub id: String,
    /// Under [`Order::Keys`]: the sort values of the last row, as text (`None`: no value).
    pub sort_values: Vec<Option<String>>,
}

/// A search over current, non-deleted resources of one type.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    pub resource_type: String,
    pub clauses: Vec<Clause>,
    pub order: Order,
    pub after: Option<Cursor>,
    pub limit: u32,
}

/// A rendered statement.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedQuery {
    pub sql: String,
    pub binds: Vec<Bind>,
}

struct Builder {
    dialect: Dialect,
    binds: Vec<Bind>,
    /// The alias of the resource row conditions currently apply to (`c`, `c1`, `c2`, …).
    row: String,
    /// The resource type of that row (known at every level: the searched type, a chain's
    /// target type, a `_has` source type).
    row_type: String,
    depth: usize,
    /// Render index conditions as an uncorrelated id set (`id IN (…)`, for the clause that
    /// drives the query) or as a correlated `EXISTS` (checked per candidate row).
    drive: bool,
    /// The clause being rendered is a check per candidate of a more selective driving clause,
    /// fenced as such ([`Dialect::per_row_probe_end`]) where the plan is cached.
    fence: bool,
    /// Whether per-candidate checks of index rows may be made on the driving clause's rows
    /// (see `where_clause`): only where every candidate is read anyway (a `_sort` or a count).
    /// Under an order an index of `resource_current` gives, PostgreSQL may scan in that order
    /// and stop at the page's end, and with the checks in the driver a generic plan did: it
    /// read every Observation of the type for a patient none of whose matched (6,000 rows
    /// where the driver-first plan reads none).
    checks_on_driver_rows: bool,
    /// The per-candidate checks made on the driving clause's index rows, before the candidate's
    /// resource row is read ([`probes_only`]); taken by the driving clause as it renders.
    checks_in_driver: Vec<Clause>,
}

impl Builder {
    fn new(dialect: Dialect) -> Self {
        Builder {
            dialect,
            binds: Vec::new(),
            row: "c".into(),
            row_type: String::new(),
            depth: 0,
            drive: false,
            fence: false,
            checks_on_driver_rows: false,
            checks_in_driver: Vec::new(),
        }
    }

    fn bind(&mut self, value: Bind) -> String {
        self.binds.push(value);
        self.dialect.placeholder(self.binds.len())
    }

    fn text(&mut self, value: &str) -> String {
        self.bind(Bind::Text(value.to_string()))
    }

    /// ` AND {column} = ?` when `value` is given (a bound parameter), else nothing.
    fn eq_if_some(&mut self, column: &str, value: Option<&String>) -> String {
        match value {
            Some(v) => format!(" AND {column} = {}", self.text(v)),
            None => String::new(),
        }
    }

    /// `EXISTS` over an index table. The code is bound before `condition` renders its own
    /// parameters, so parameters are numbered in the order they appear (SQLite's `?` is
    /// positional).
    fn exists(
        &mut self,
        table: &str,
        code: &str,
        condition: impl FnOnce(&mut Self) -> String,
    ) -> String {
        // A correlated check of the candidate row's own index rows.
        if !self.drive {
            let code = self.text(code);
            let condition = condition(self);
            let row = &self.row;
            let probe_code = self.dialect.probe_code("x", self.fence);
            let end = if self.fence {
                self.dialect.per_row_probe_end()
            } else {
                ""
            };
            return format!(
                "EXISTS (SELECT 1 FROM {table} x WHERE x.resource_type = {row}.resource_type AND x.id = {row}.id AND {probe_code} = {code}{condition}{end})"
            );
        }
        // An uncorrelated id set: the database reads it from the index table's lookup index
        // (type, code, value) and then probes the matching rows, instead of testing every row.
        let row_type = self.row_type.clone();
        let rt = self.text(&row_type);
        let code = self.text(code);
        let condition = condition(self);
        let checks = if self.depth == 0 {
            std::mem::take(&mut self.checks_in_driver)
        } else {
            Vec::new()
        };
        let from =
            format!("FROM {table} x WHERE x.resource_type = {rt} AND x.code = {code}{condition}");
        if checks.is_empty() {
            return format!("{}.id IN (SELECT x.id {from})", self.row);
        }
        // The checks run on the candidates' index rows (`d`), so only the candidates that pass
        // them are looked up among the current resources.
        let row = std::mem::replace(&mut self.row, "d".into());
        let (drive, fence) = (self.drive, self.fence);
        (self.drive, self.fence) = (false, true);
        let checks: Vec<String> = checks.iter().map(|c| self.clause(c)).collect();
        (self.row, self.drive, self.fence) = (row, drive, fence);
        format!(
            "{}.id IN (SELECT d.id FROM (SELECT x.id, x.resource_type {from}) d WHERE {})",
            self.row,
            checks.join(" AND ")
        )
    }

    /// One clause: its alternatives ORed, negated when it is.
    fn clause(&mut self, clause: &Clause) -> String {
        let parts: Vec<String> = clause.any_of.iter().map(|c| self.condition(c)).collect();
        let joined = format!("({})", parts.join(" OR "));
        if clause.negated {
            format!("NOT {joined}")
        } else {
            joined
        }
    }

    /// Render `inner` against a nested resource row alias, then restore the current row.
    fn nested(&mut self, inner: &Condition, row_type: &str) -> (String, String, String) {
        self.depth += 1;
        let alias = format!("c{}", self.depth);
        let type_bind = self.text(row_type);
        let outer = std::mem::replace(&mut self.row, alias.clone());
        let outer_type = std::mem::replace(&mut self.row_type, row_type.to_string());
        // Inside a chain the inner condition selects the (few) targets: drive from it.
        let outer_drive = std::mem::replace(&mut self.drive, true);
        let rendered = self.condition(inner);
        self.row = outer;
        self.row_type = outer_type;
        self.drive = outer_drive;
        (alias, type_bind, rendered)
    }

    fn range_i64(&mut self, low_col: &str, high_col: &str, range: &Range<i64>) -> String {
        let (low, high) = (range.low, range.high);
        self.range(low_col, high_col, range.op, Bind::Int(low), Bind::Int(high))
    }

    fn range(
        &mut self,
        low_col: &str,
        high_col: &str,
        op: RangeOp,
        low: Bind,
        high: Bind,
    ) -> String {
        // The stored range [low_col, high_col] against the search range [low, high], as the
        // prefix's one table says (fhir_primitives::Prefix::range_test, search.html#prefix).
        // Rendered in text order, so SQLite's positional `?` binds in the same order.
        let test = op.range_test();
        let parts: Vec<String> = test
            .end_tests()
            .iter()
            .map(|t| {
                let column = match t.stored {
                    RangeEnd::Low => low_col,
                    RangeEnd::High => high_col,
                };
                let value = match t.search {
                    RangeEnd::Low => low.clone(),
                    RangeEnd::High => high.clone(),
                };
                format!("{column} {} {}", t.comparison.symbol(), self.bind(value))
            })
            .collect();
        match test {
            RangeTest::AllOf(_) => parts.join(" AND "),
            RangeTest::AnyOf(_) => format!("({})", parts.join(" OR ")),
        }
    }

    fn condition(&mut self, condition: &Condition) -> String {
        match condition {
            Condition::Id(id) => {
                let id = self.text(id);
                format!("{}.id = {id}", self.row)
            }
            Condition::IdIn(ids) => {
                if ids.is_empty() {
                    return "1 = 0".to_string();
                }
                let ids: Vec<String> = ids.iter().map(|id| self.text(id)).collect();
                format!("{}.id IN ({})", self.row, ids.join(", "))
            }
            Condition::ReferenceIn {
                code,
                target_type,
                target_ids,
            } => {
                if target_ids.is_empty() {
                    return "1 = 0".to_string();
                }
                self.exists("idx_reference", code, |b| {
                    let t = b.text(target_type);
                    let ids: Vec<String> = target_ids.iter().map(|id| b.text(id)).collect();
                    format!(
                        " AND x.target_type = {t} AND x.target_id IN ({})",
                        ids.join(", ")
                    )
                })
            }
            Condition::LastUpdated(range) => {
                let col = format!("{}.last_updated_us", self.row);
                self.range_i64(&col, &col, range)
            }
            Condition::Chain {
                code,
                target_type,
                inner,
            } => {
                let row_type = self.row_type.clone();
                let rt = self.text(&row_type);
                let code = self.text(code);
                let target = self.text(target_type);
                let row = self.row.clone();
                let (alias, target2, rendered) = self.nested(inner, target_type);
                format!(
                    "{row}.id IN (SELECT r{alias}.id FROM idx_reference r{alias} WHERE r{alias}.resource_type = {rt} \
                     AND r{alias}.code = {code} AND r{alias}.target_type = {target} AND r{alias}.target_id IN (SELECT {alias}.id \
                     FROM resource_current {alias} WHERE {alias}.resource_type = {target2} AND {alias}.body IS NOT NULL AND {rendered}))"
                )
            }
            Condition::Has {
                source_type,
                reference_code,
                inner,
            } => {
                let source = self.text(source_type);
                let code = self.text(reference_code);
                let row_type = self.row_type.clone();
                let rt = self.text(&row_type);
                let row = self.row.clone();
                let (alias, source2, rendered) = self.nested(inner, source_type);
                format!(
                    "{row}.id IN (SELECT r{alias}.target_id FROM idx_reference r{alias} WHERE r{alias}.resource_type = {source} \
                     AND r{alias}.code = {code} AND r{alias}.target_type = {rt} AND r{alias}.id IN (SELECT {alias}.id \
                     FROM resource_current {alias} WHERE {alias}.resource_type = {source2} AND {alias}.body IS NOT NULL AND {rendered}))"
                )
            }
            Condition::All(clauses) => {
                let parts: Vec<String> = clauses
                    .iter()
                    .filter(|c| !c.any_of.is_empty())
                    .map(|clause| {
                        let alternatives: Vec<String> =
                            clause.any_of.iter().map(|c| self.condition(c)).collect();
                        let joined = format!("({})", alternatives.join(" OR "));
                        if clause.negated {
                            format!("NOT {joined}")
                        } else {
                            joined
                        }
                    })
                    .collect();
                if parts.is_empty() {
                    "1 = 1".to_string()
                } else {
                    format!("({})", parts.join(" AND "))
                }
            }
            Condition::String { code, matching } => {
                self.exists("idx_string", code, |b| match matching {
                    StringMatch::StartsWith(prefix) => {
                        let low = b.text(prefix);
                        let high = b.text(&format!("{prefix}\u{10FFFF}"));
                        format!(" AND x.norm >= {low} AND x.norm < {high}")
                    }
                    StringMatch::Exact(exact) => format!(" AND x.exact = {}", b.text(exact)),
                    StringMatch::Contains(part) => {
                        let pattern = format!("%{}%", escape_like(part));
                        format!(" AND x.norm LIKE {} ESCAPE '\\'", b.text(&pattern))
                    }
                })
            }
            Condition::Token {
                code,
                system,
                value,
            } => self.exists("idx_token", code, |b| {
                let mut cond = b.eq_if_some("x.value", value.as_ref());
                match system {
                    SystemMatch::Any => {}
                    SystemMatch::Absent => cond.push_str(" AND x.system IS NULL"),
                    SystemMatch::Is(s) => cond.push_str(&format!(" AND x.system = {}", b.text(s))),
                }
                cond
            }),
            Condition::TokenText { code, norm_prefix } => self.exists("idx_token", code, |b| {
                let low = b.text(norm_prefix);
                let high = b.text(&format!("{norm_prefix}\u{10FFFF}"));
                format!(" AND x.text_norm >= {low} AND x.text_norm < {high}")
            }),
            Condition::Date { code, range } => self.exists("idx_date", code, |b| {
                format!(" AND {}", b.range_i64("x.low_us", "x.high_us", range))
            }),
            Condition::Number {
                code,
                range,
                system,
                unit,
            } => self.exists("idx_number", code, |b| {
                let mut cond = format!(
                    " AND {}",
                    b.range(
                        "x.value",
                        "x.value",
                        range.op,
                        Bind::Float(range.low),
                        Bind::Float(range.high)
                    )
                );
                cond.push_str(&b.eq_if_some("x.system", system.as_ref()));
                cond.push_str(&b.eq_if_some("x.unit", unit.as_ref()));
                cond
            }),
            Condition::Reference {
                code,
                target_type,
                target_id,
                url,
            } => self.exists("idx_reference", code, |b| {
                let mut cond = b.eq_if_some("x.target_id", target_id.as_ref());
                cond.push_str(&b.eq_if_some("x.target_type", target_type.as_ref()));
                cond.push_str(&b.eq_if_some("x.url", url.as_ref()));
                cond
            }),
            Condition::Uri {
                code,
                value,
                matching,
            } => self.exists("idx_uri", code, |b| match matching {
                UriMatch::Exact => format!(" AND x.value = {}", b.text(value)),
                UriMatch::Below => {
                    let low = b.text(value);
                    let high = b.text(&format!("{value}\u{10FFFF}"));
                    format!(" AND x.value >= {low} AND x.value < {high}")
                }
                UriMatch::Above => {
                    let search = b.text(value);
                    format!(" AND substr({search}, 1, length(x.value)) = x.value")
                }
            }),
            Condition::Missing {
                code,
                table,
                missing,
            } => {
                let table = match *table {
                    t @ ("idx_string" | "idx_token" | "idx_date" | "idx_number"
                    | "idx_reference" | "idx_uri") => t,
                    _ => "idx_token",
                };
                let in_set = self.exists(table, code, |_| String::new());
                if *missing {
                    format!("NOT ({in_set})")
                } else {
                    in_set
                }
            }
        }
    }

    fn where_clause(&mut self, query: &SearchQuery) -> String {
        self.row_type = query.resource_type.clone();
        let rt = self.text(&query.resource_type);
        let mut sql = format!("c.resource_type = {rt} AND c.body IS NOT NULL");
        let driver = driving_clause(&query.clauses);
        let driver_rank = driver.and_then(|n| clause_rank(&query.clauses[n]));
        // A statement planned per execution (chains, `_has`) is left to the planner, which
        // then knows the values; so is a clause as selective as the driver by its rank.
        let cached = !nests_subqueries(query);
        let fenced = |n: usize, clause: &Clause| {
            cached
                && Some(n) != driver
                && driver_rank.is_some_and(|d| clause_rank(clause).is_none_or(|r| r > d))
        };
        // Checks that read only index rows are made on the driving clause's rows, before the
        // candidates' resource rows are read, when one condition drives and every candidate is
        // read anyway (`patient=…&code=…&_sort=-date` reads the current resource of the
        // patient's scores only, not of each of the patient's Observations).
        let on_driver_rows = self.checks_on_driver_rows;
        let moved = |n: usize, clause: &Clause| {
            on_driver_rows
                && fenced(n, clause)
                && clause.any_of.iter().all(probes_only)
                && driver.is_some_and(
                    |d| matches!(&query.clauses[d].any_of[..], [one] if drives_by_index(one)),
                )
        };
        self.checks_in_driver = query
            .clauses
            .iter()
            .enumerate()
            .filter(|(n, c)| !c.any_of.is_empty() && moved(*n, c))
            .map(|(_, c)| c.clone())
            .collect();
        for (n, clause) in query.clauses.iter().enumerate() {
            if clause.any_of.is_empty() || moved(n, clause) {
                continue;
            }
            self.drive = Some(n) == driver;
            self.fence = fenced(n, clause);
            let rendered = self.clause(clause);
            sql.push_str(&format!(" AND {rendered}"));
        }
        // Had the driving clause not taken them, they are checked as any other.
        (self.drive, self.fence) = (false, true);
        for clause in std::mem::take(&mut self.checks_in_driver) {
            let rendered = self.clause(&clause);
            sql.push_str(&format!(" AND {rendered}"));
        }
        sql
    }
}

/// Whether the query nests subqueries whose best plan depends on the values (chains, `_has`):
/// PostgreSQL plans those statements per execution instead of caching a generic plan (a cached
/// one was measured at 1.6 s where a plan for the actual values takes 4 ms).
pub fn nests_subqueries(query: &SearchQuery) -> bool {
    query
        .clauses
        .iter()
        .flat_map(|c| &c.any_of)
        .any(|c| matches!(c, Condition::Chain { .. } | Condition::Has { .. }))
}

/// Whether a condition is a probe of the resource's index rows alone (an `EXISTS` on the
/// row's type and id, or its id), so it can be checked on an index row of the same resource.
fn probes_only(condition: &Condition) -> bool {
    matches!(
        condition,
        Condition::Id(_)
            | Condition::IdIn(_)
            | Condition::String { .. }
            | Condition::Token { .. }
            | Condition::TokenText { .. }
            | Condition::Date { .. }
            | Condition::Number { .. }
            | Condition::Reference { .. }
            | Condition::ReferenceIn { .. }
            | Condition::Uri { .. }
            | Condition::Missing { .. }
    )
}

/// Whether a driving condition is read from its index table (`Builder::exists`), where the
/// checks moved to the driver are made.
fn drives_by_index(condition: &Condition) -> bool {
    probes_only(condition)
        && !matches!(
            condition,
            Condition::Id(_) | Condition::IdIn(_) | Condition::Missing { .. }
        )
}

/// How well a condition narrows a search when read from its index (lower is better): a
/// reference or id names a handful of resources, a token code or a date range often thousands.
/// A reference by canonical URL alone (`questionnaire=http://…`) has no index on its value and
/// names every resource pointing at that canonical: it ranks with the tokens. A token of the
/// patient-and-code rows names one patient's resources of a code: it ranks with the references.
fn selectivity(condition: &Condition) -> Option<u8> {
    match condition {
        Condition::Id(_) | Condition::IdIn(_) => Some(0),
        Condition::Reference {
            target_id: None, ..
        } => Some(3),
        Condition::Token { code, .. } if code == super::index::PATIENT_AND_CODE => Some(1),
        Condition::Reference { .. }
        | Condition::ReferenceIn { .. }
        | Condition::Chain { .. }
        | Condition::Has { .. } => Some(1),
        Condition::String {
            matching: StringMatch::Exact(_) | StringMatch::StartsWith(_),
            ..
        } => Some(2),
        Condition::Uri {
            matching: UriMatch::Exact,
            ..
        } => Some(2),
        Condition::Token { .. } | Condition::TokenText { .. } => Some(3),
        Condition::Date { .. } | Condition::Number { .. } => Some(4),
        _ => None,
    }
}

/// A clause's rank: its least selective alternative's, `None` when one cannot be read from
/// an index.
fn clause_rank(clause: &Clause) -> Option<u8> {
    clause
        .any_of
        .iter()
        .map(selectivity)
        .try_fold(0u8, |worst, s| s.map(|s| worst.max(s)))
}

/// The clause the query should be driven from: the most selective non-negated clause whose
/// every alternative can be read from an index. The others are checked per candidate row.
fn driving_clause(clauses: &[Clause]) -> Option<usize> {
    clauses
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.negated && !c.any_of.is_empty())
        .filter_map(|(n, c)| clause_rank(c).map(|rank| (rank, n)))
        .min()
        .map(|(_, n)| n)
}

fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Render the page query: `id, version_id, last_updated_us, body` of matching resources (and
/// `s0`, `s1`, … under `_sort` keys).
pub fn render_page(dialect: Dialect, query: &SearchQuery) -> RenderedQuery {
    if let Order::Keys(keys) = &query.order {
        return render_sorted_page(dialect, query, keys);
    }
    let mut b = Builder::new(dialect);
    let mut sql = format!(
        "SELECT c.id, c.version_id, c.last_updated_us, c.body FROM resource_current c WHERE {}",
        b.where_clause(query)
    );
    if let Some(after) = &query.after {
        let keyset = match query.order {
            Order::LastUpdatedDesc | Order::LastUpdatedAsc => {
                let cmp = if matches!(query.order, Order::LastUpdatedDesc) {
                    "<"
                } else {
                    ">"
                };
                let t1 = b.bind(Bind::Int(after.last_updated_us));
                let t2 = b.bind(Bind::Int(after.last_updated_us));
                let id = b.text(&after.id);
                format!(" AND (c.last_updated_us {cmp} {t1} OR (c.last_updated_us = {t2} AND c.id {cmp} {id}))")
            }
            Order::IdAsc => format!(" AND c.id > {}", b.text(&after.id)),
            Order::IdDesc => format!(" AND c.id < {}", b.text(&after.id)),
            Order::Keys(_) => String::new(),
        };
        sql.push_str(&keyset);
    }
    sql.push_str(match query.order {
        Order::LastUpdatedDesc => " ORDER BY c.last_updated_us DESC, c.id DESC",
        Order::LastUpdatedAsc => " ORDER BY c.last_updated_us ASC, c.id ASC",
        Order::IdAsc => " ORDER BY c.id ASC",
        Order::IdDesc => " ORDER BY c.id DESC",
        Order::Keys(_) => "",
    });
    let limit = b.bind(Bind::Int(i64::from(query.limit)));
    sql.push_str(&format!(" LIMIT {limit}"));
    RenderedQuery {
        sql,
        binds: b.binds,
    }
}

/// Render the count of all matches (for `_total=accurate`).
pub fn render_count(dialect: Dialect, query: &SearchQuery) -> RenderedQuery {
    let mut b = Builder::new(dialect);
    b.checks_on_driver_rows = true;
    let sql = format!(
        "SELECT count(*) FROM resource_current c WHERE {}",
        b.where_clause(query)
    );
    RenderedQuery {
        sql,
        binds: b.binds,
    }
}

/// Render whether anything matches (a conditional create's check inside its commit): stops
/// at the first match instead of counting them all.
pub fn render_exists(dialect: Dialect, query: &SearchQuery) -> RenderedQuery {
    let mut b = Builder::new(dialect);
    let sql = format!(
        "SELECT EXISTS (SELECT 1 FROM resource_current c WHERE {})",
        b.where_clause(query)
    );
    RenderedQuery {
        sql,
        binds: b.binds,
    }
}

#[cfg(test)]
mod tests;
