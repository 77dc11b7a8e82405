//! The small differences between the SQL dialects, kept in one place: placeholder syntax and
//! the typed parameters that statements carry (bound by each backend's own driver).

/// Which database a statement is rendered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The placeholder of the `n`th (1-based) parameter.
    pub fn placeholder(self, n: usize) -> String {
        match self {
            Dialect::Sqlite => "?".to_string(),
            Dialect::Postgres => format!("${n}"),
        }
    }
}

impl Dialect {
    /// The `code` column of index rows in a probe of one resource's rows (`x.resource_type =
    /// … AND x.id = … AND {this} = …`). SQLite's index tables are keyed by their owner, but its
    /// planner would rather use the covering lookup index (type, code, value, …), which matches
    /// more equality terms and, for a common value (`status = active`), scans every resource
    /// with that value once per candidate (3.4 ms instead of 0.03 ms per CarePlan search at
    /// 100k patients). A unary `+` takes the code term out of index selection, which leaves the
    /// owner key. PostgreSQL's planner does the same in the generic plan of a prepared search,
    /// where it estimates one row for every equality and so prefers the index with more of
    /// them: in the careplan soak the PROM scoring search's per-row check of the PHQ-9 code
    /// scanned all 16,554 PHQ-9 totals once per candidate (61 ms each, 4.9 s per search, the
    /// soak down to 5 req/s after three minutes). `|| ''` is its unary `+`.
    pub fn probe_code(self, alias: &str) -> String {
        match self {
            Dialect::Sqlite => format!("+{alias}.code"),
            Dialect::Postgres => format!("({alias}.code || '')"),
        }
    }

    /// What ends a probe of one resource's index rows (an `EXISTS` checked per candidate row)
    /// when another clause drives the query. PostgreSQL turns such an `EXISTS` into a semi-join
    /// and may drive the whole query from it instead: its generic plan for a prepared search
    /// (sqlx prepares every statement; the generic plan is used from the sixth execution)
    /// cannot tell a common token value from a rare one, and drove the PROM scoring search
    /// `Observation?subject=…&code=<PHQ-9 total>` from every PHQ-9 score in the database rather
    /// than the patient's (9,642 candidates, 857 ms, instead of 90 candidates, 5 ms; the
    /// careplan soak fell from 378 to 25–150 req/s within two minutes). `OFFSET 0` keeps the
    /// subquery a per-row check (PostgreSQL does not pull up a subquery with an OFFSET).
    /// SQLite's planner (3.46) never flattens `EXISTS`.
    pub fn per_row_probe_end(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " OFFSET 0",
        }
    }
}

/// A statement parameter. Every value from a client reaches SQL only as one of these.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    Float(f64),
}

/// The global sequence number of one version (`$n` placeholders, which SQLite accepts too, so
/// both backends run this one text).
pub const VERSION_SEQ: &str =
    "SELECT seq FROM resource_version WHERE resource_type = $1 AND id = $2 AND version_id = $3";

/// Outbox events after a sequence number, oldest first (both backends).
pub const OUTBOX_AFTER: &str =
    "SELECT seq, topic, recorded_us, payload FROM outbox WHERE seq > $1 ORDER BY seq LIMIT $2";

/// Audit log entries with `$1 < seq <= $2`, oldest first, at most `$3` (both backends).
pub const AUDIT_LOG_RANGE: &str = "SELECT seq, id, recorded_us, record FROM audit_log \
     WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3";

/// The newest audit log entry's `seq` (both backends).
pub const AUDIT_LOG_LAST_SEQ: &str = "SELECT MAX(seq) FROM audit_log";

/// The current version of one resource (both backends).
pub const CURRENT: &str = "SELECT version_id, last_updated_us, body FROM resource_current \
     WHERE resource_type = $1 AND id = $2";

/// One version of a resource (both backends).
pub const VERSION: &str = "SELECT version_id, last_updated_us, body FROM resource_version \
     WHERE resource_type = $1 AND id = $2 AND version_id = $3";

/// Live current resources after (`$1`, `$2`) by type then id, at most `$3` (both backends).
pub const CURRENT_PAGE: &str =
    "SELECT resource_type, id, version_id, last_updated_us, body FROM resource_current \
     WHERE body IS NOT NULL AND (resource_type > $1 OR (resource_type = $1 AND id > $2)) \
     ORDER BY resource_type, id LIMIT $3";
