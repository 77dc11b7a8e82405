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

/// A statement parameter. Every value from a client reaches SQL only as one of these.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    Float(f64),
}
