//! Search index rows (search.html): what the store keeps per current resource so that searches
//! are joins over small typed tables instead of scans of JSON. The rows of a resource are
//! replaced in the same transaction as the version they describe — an update writes only the
//! rows that changed (`index_diff.rs`) — and a deletion removes them.
//! This module only describes rows; each backend writes them (SQLite row by row with cached
//! statements, PostgreSQL as column arrays through `unnest`), and extraction lives in
//! `rest::search`.

/// One index row of one search parameter (`code`) of a resource.
#[derive(Debug, Clone, PartialEq)]
pub enum IndexRow {
    /// string parameters: accent- and case-folded form for matching, and the exact text.
    String {
        code: String,
        norm: String,
        exact: String,
    },
    /// token parameters: system and code (either may be absent), and folded display text.
    Token {
        code: String,
        system: Option<String>,
        value: Option<String>,
        text_norm: Option<String>,
    },
    /// date parameters: the instant range the value covers, in microseconds, inclusive.
    Date {
        code: String,
        low_us: i64,
        high_us: i64,
    },
    /// number and quantity parameters (quantity with its unit system and code).
    Number {
        code: String,
        value: f64,
        system: Option<String>,
        unit: Option<String>,
    },
    /// reference parameters: the target as `type/id` when known, and the reference as written.
    Reference {
        code: String,
        target_type: Option<String>,
        target_id: Option<String>,
        url: String,
    },
    /// uri parameters.
    Uri { code: String, value: String },
}

impl IndexRow {
    /// The position of this row's table in [`INDEX_TABLES`].
    pub fn table(&self) -> usize {
        match self {
            IndexRow::String { .. } => 0,
            IndexRow::Token { .. } => 1,
            IndexRow::Date { .. } => 2,
            IndexRow::Number { .. } => 3,
            IndexRow::Reference { .. } => 4,
            IndexRow::Uri { .. } => 5,
        }
    }
}

/// The code of the token rows that pair a resource's patient with each of its codes
/// (`rest::search::patient_code`): value `{patient id}|{code}`, the coding's system. A search
/// clause over them names one patient's resources of given codes, so it ranks with a reference
/// when choosing the clause that drives a search.
pub const PATIENT_AND_CODE: &str = "patient+code";

/// The index tables, in a fixed order.
pub const INDEX_TABLES: [&str; 6] = [
    "idx_string",
    "idx_token",
    "idx_date",
    "idx_number",
    "idx_reference",
    "idx_uri",
];
