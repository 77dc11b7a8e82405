//! Search index rows (search.html): what the store keeps per current resource so that searches
//! are joins over small typed tables instead of scans of JSON. The rows of a resource are
//! replaced in the same transaction as the version they describe; a deletion removes them.
//! This module only describes rows and renders their SQL; extraction lives in `search`.

use super::sql::{Bind, Dialect};

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

/// The index tables, in a fixed order.
pub const INDEX_TABLES: [&str; 6] = [
    "idx_string",
    "idx_token",
    "idx_date",
    "idx_number",
    "idx_reference",
    "idx_uri",
];

impl IndexRow {
    fn table(&self) -> &'static str {
        match self {
            IndexRow::String { .. } => "idx_string",
            IndexRow::Token { .. } => "idx_token",
            IndexRow::Date { .. } => "idx_date",
            IndexRow::Number { .. } => "idx_number",
            IndexRow::Reference { .. } => "idx_reference",
            IndexRow::Uri { .. } => "idx_uri",
        }
    }

    fn columns(&self) -> &'static str {
        match self {
            IndexRow::String { .. } => "code, norm, exact",
            IndexRow::Token { .. } => "code, system, value, text_norm",
            IndexRow::Date { .. } => "code, low_us, high_us",
            IndexRow::Number { .. } => "code, value, system, unit",
            IndexRow::Reference { .. } => "code, target_type, target_id, url",
            IndexRow::Uri { .. } => "code, value",
        }
    }

    fn binds(&self) -> Vec<Bind> {
        let text = |s: &str| Bind::Text(s.to_string());
        let opt = |s: &Option<String>| Bind::OptText(s.clone());
        match self {
            IndexRow::String { code, norm, exact } => vec![text(code), text(norm), text(exact)],
            IndexRow::Token {
                code,
                system,
                value,
                text_norm,
            } => vec![text(code), opt(system), opt(value), opt(text_norm)],
            IndexRow::Date {
                code,
                low_us,
                high_us,
            } => vec![text(code), Bind::Int(*low_us), Bind::Int(*high_us)],
            IndexRow::Number {
                code,
                value,
                system,
                unit,
            } => vec![text(code), Bind::Float(*value), opt(system), opt(unit)],
            IndexRow::Reference {
                code,
                target_type,
                target_id,
                url,
            } => vec![text(code), opt(target_type), opt(target_id), text(url)],
            IndexRow::Uri { code, value } => vec![text(code), text(value)],
        }
    }
}

/// One SQL statement with its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sql: String,
    pub binds: Vec<Bind>,
}

/// Statements that delete every index row of `resource_type/id`.
pub fn delete_statements(dialect: Dialect, resource_type: &str, id: &str) -> Vec<Statement> {
    INDEX_TABLES
        .iter()
        .map(|table| Statement {
            sql: format!(
                "DELETE FROM {table} WHERE resource_type = {} AND id = {}",
                dialect.placeholder(1),
                dialect.placeholder(2)
            ),
            binds: vec![Bind::Text(resource_type.into()), Bind::Text(id.into())],
        })
        .collect()
}

/// Multi-row INSERT statements (one per table used) for `rows` of `resource_type/id`.
pub fn insert_statements(
    dialect: Dialect,
    resource_type: &str,
    id: &str,
    rows: &[IndexRow],
) -> Vec<Statement> {
    let mut statements = Vec::new();
    for table in INDEX_TABLES {
        let of_table: Vec<&IndexRow> = rows.iter().filter(|r| r.table() == table).collect();
        let Some(first) = of_table.first() else {
            continue;
        };
        // Keep statements within SQLite's default limit of bound parameters.
        for chunk in of_table.chunks(100) {
            let mut sql = format!(
                "INSERT INTO {table} (resource_type, id, {}) VALUES ",
                first.columns()
            );
            let mut binds = Vec::new();
            for (n, row) in chunk.iter().enumerate() {
                if n > 0 {
                    sql.push_str(", ");
                }
                let mut row_binds = vec![Bind::Text(resource_type.into()), Bind::Text(id.into())];
                row_binds.extend(row.binds());
                sql.push('(');
                for (k, _) in row_binds.iter().enumerate() {
                    if k > 0 {
                        sql.push_str(", ");
                    }
                    sql.push_str(&dialect.placeholder(binds.len() + k + 1));
                }
                sql.push(')');
                binds.extend(row_binds);
            }
            statements.push(Statement { sql, binds });
        }
    }
    statements
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_are_grouped_per_table_with_numbered_placeholders() {
        let rows = vec![
            IndexRow::Token {
                code: "status".into(),
                system: None,
                value: Some("active".into()),
                text_norm: None,
            },
            IndexRow::Date {
                code: "date".into(),
                low_us: 1,
                high_us: 2,
            },
            IndexRow::Token {
                code: "category".into(),
                system: Some("s".into()),
                value: Some("c".into()),
                text_norm: None,
            },
        ];
        let pg = insert_statements(Dialect::Postgres, "CarePlan", "1", &rows);
        assert_eq!(pg.len(), 2);
        assert_eq!(pg[0].sql, "INSERT INTO idx_token (resource_type, id, code, system, value, text_norm) VALUES ($1, $2, $3, $4, $5, $6), ($7, $8, $9, $10, $11, $12)");
        assert_eq!(pg[0].binds.len(), 12);
        let lite = insert_statements(Dialect::Sqlite, "CarePlan", "1", &rows);
        assert_eq!(lite[1].sql, "INSERT INTO idx_date (resource_type, id, code, low_us, high_us) VALUES (?, ?, ?, ?, ?)");
        assert_eq!(
            delete_statements(Dialect::Postgres, "CarePlan", "1").len(),
            6
        );
    }
}
