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
    /// … AND x.id = … AND {this} = …`), `per_row` when the probe is a check per candidate
    /// ([`Self::per_row_probe_end`]). SQLite's index tables are keyed by their owner, but its
    /// planner would rather use the covering lookup index (type, code, value, …), which matches
    /// more equality terms and, for a common value (`status = active`), scans every resource
    /// with that value once per candidate (3.4 ms instead of 0.03 ms per CarePlan search at
    /// 100k patients). A unary `+` takes the code term out of index selection, which leaves the
    /// owner key. PostgreSQL's generic plan of a prepared search made the same choice: it
    /// estimates an equality on a parameter from the column's distinct values, so a value
    /// column with many makes the lookup index look like one row, fewer than one resource's
    /// rows in the owner index — and in the careplan soak the PROM scoring search's check of
    /// the PHQ-9 code scanned all 16,554 PHQ-9 totals once per candidate (61 ms each, 4.9 s a
    /// search, the soak down to 5 req/s after three minutes). `|| ''` is its unary `+`, used
    /// only on per-row checks: elsewhere (no clause drives) the planner may still join on the
    /// lookup index's (type, code) prefix.
    pub fn probe_code(self, alias: &str, per_row: bool) -> String {
        match (self, per_row) {
            (Dialect::Sqlite, _) => format!("+{alias}.code"),
            (Dialect::Postgres, true) => format!("({alias}.code || '')"),
            (Dialect::Postgres, false) => format!("{alias}.code"),
        }
    }

    /// What ends a probe of one resource's index rows that must stay a check per candidate of
    /// a more selective driving clause. PostgreSQL turns an `EXISTS` into a semi-join and may
    /// then drive the whole query from it: from the sixth execution of a prepared statement
    /// (sqlx prepares every search but chains and `_has`) it uses a generic plan unless that
    /// costs more than the custom plans did, and a generic plan cannot tell a common token value
    /// from a rare one — it drove the PROM scoring search `Observation?subject=…&code=<PHQ-9
    /// total>` from every PHQ-9 score in the database rather than the patient's (9,642
    /// candidates, 857 ms, instead of 90 candidates, 5 ms; the careplan soak fell from 378 to
    /// 25–150 req/s within two minutes). Its `EXISTS` simplification refuses a subquery with an
    /// `OFFSET`, so `OFFSET 0` leaves neither a semi-join nor a hashed subplan: a check per row.
    /// SQLite is left as it is: its searches were measured per row (`probe_code`), and its soak
    /// showed no such change.
    pub fn per_row_probe_end(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " OFFSET 0",
        }
    }

    /// What ends the subquery of a sorted page (`search/sort.rs`), whose rows carry their sort
    /// values, so each value is computed once per candidate. PostgreSQL pulls a plain subquery up
    /// into the outer one and then computes each sort value twice, for the sort and again for
    /// the output: 80 of the 263 buffers of the PROM scoring search (`Observation?patient&code&
    /// _sort=-date`, 20 rows, EXPLAIN ANALYZE in the careplan soak). An `OFFSET` keeps the
    /// subquery whole. SQLite is left as it is (not measured).
    pub fn sorted_subquery_end(self) -> &'static str {
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
