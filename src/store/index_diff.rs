//! What an update changes in a resource's search index rows (search.html): the stored rows the
//! new version no longer has, and the new version's rows that are not stored yet. An edit
//! touches a few of a resource's rows, so writing only these instead of replacing every row
//! spares each update a delete and an insert per unchanged row, in its table and each of the
//! table's indexes. SQLite's writer applies this diff row by row; PostgreSQL computes a
//! difference of sets inside its one write statement (`postgres_write.rs`).
//!
//! Rows are compared as a multiset of their content: a row stored twice and written twice is
//! kept twice. Within a table each row of a resource has its own `ord` (SQLite's key): a
//! deleted row's `ord` is given to an inserted row of that table before new ones are numbered.

use super::index::IndexRow;
use std::collections::HashMap;

/// A row's content, as compared: every column, a number by its bits (a `-0.0` stored as `0.0`
/// would be rewritten, never wrongly kept).
#[derive(Debug, PartialEq, Eq, Hash)]
enum RowContent<'a> {
    String(&'a str, &'a str, &'a str),
    Token(&'a str, Option<&'a str>, Option<&'a str>, Option<&'a str>),
    Date(&'a str, i64, i64),
    Number(&'a str, u64, Option<&'a str>, Option<&'a str>),
    Reference(&'a str, Option<&'a str>, Option<&'a str>, &'a str),
    Uri(&'a str, &'a str),
}

fn content(row: &IndexRow) -> RowContent<'_> {
    match row {
        IndexRow::String { code, norm, exact } => RowContent::String(code, norm, exact),
        IndexRow::Token {
            code,
            system,
            value,
            text_norm,
        } => RowContent::Token(
            code,
            system.as_deref(),
            value.as_deref(),
            text_norm.as_deref(),
        ),
        IndexRow::Date {
            code,
            low_us,
            high_us,
        } => RowContent::Date(code, *low_us, *high_us),
        IndexRow::Number {
            code,
            value,
            system,
            unit,
        } => RowContent::Number(code, value.to_bits(), system.as_deref(), unit.as_deref()),
        IndexRow::Reference {
            code,
            target_type,
            target_id,
            url,
        } => RowContent::Reference(code, target_type.as_deref(), target_id.as_deref(), url),
        IndexRow::Uri { code, value } => RowContent::Uri(code, value),
    }
}

/// A stored index row: its table's position in `INDEX_TABLES` is `row.table()`.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRow {
    pub ord: i64,
    pub row: IndexRow,
}

/// The changes that turn the stored rows into the new version's.
#[derive(Debug, PartialEq)]
pub struct IndexDiff<'a> {
    /// Rows to delete: (table position, ord), by table then ord.
    pub removed: Vec<(usize, i64)>,
    /// Rows to insert, with the ord each takes.
    pub added: Vec<(i64, &'a IndexRow)>,
}

#[cfg(test)]
impl IndexDiff<'_> {
    /// Whether the new version's rows are the stored ones.
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.added.is_empty()
    }
}

/// The diff from `stored` (a resource's rows as they are) to `new` (its new version's).
pub fn diff<'a>(stored: &[StoredRow], new: &'a [IndexRow]) -> IndexDiff<'a> {
    let tables = super::index::INDEX_TABLES.len();
    let mut highest_ord = vec![0i64; tables];
    // The stored rows not (yet) matched by a new one, as (table, ord), by content.
    let mut unmatched: HashMap<RowContent<'_>, Vec<(usize, i64)>> = HashMap::new();
    for s in stored {
        let table = s.row.table();
        highest_ord[table] = highest_ord[table].max(s.ord);
        unmatched
            .entry(content(&s.row))
            .or_default()
            .push((table, s.ord));
    }
    let mut fresh: Vec<&IndexRow> = Vec::new();
    for row in new {
        match unmatched.get_mut(&content(row)).and_then(Vec::pop) {
            Some(_kept) => {}
            None => fresh.push(row),
        }
    }
    let mut removed: Vec<(usize, i64)> = unmatched.into_values().flatten().collect();
    removed.sort_unstable();
    // Freed ords per table, lowest first, then numbers above the highest stored.
    let mut freed: Vec<Vec<i64>> = vec![Vec::new(); tables];
    for (table, ord) in removed.iter().rev() {
        freed[*table].push(*ord);
    }
    let added = fresh
        .into_iter()
        .map(|row| {
            let table = row.table();
            let ord = freed[table].pop().unwrap_or_else(|| {
                highest_ord[table] += 1;
                highest_ord[table]
            });
            (ord, row)
        })
        .collect();
    IndexDiff { removed, added }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(value: &str) -> IndexRow {
        IndexRow::Token {
            code: "code".into(),
            system: Some("http://loinc.org".into()),
            value: Some(value.into()),
            text_norm: None,
        }
    }

    fn date(low_us: i64) -> IndexRow {
        IndexRow::Date {
            code: "date".into(),
            low_us,
            high_us: low_us + 999,
        }
    }

    fn stored(rows: &[(i64, IndexRow)]) -> Vec<StoredRow> {
        rows.iter()
            .map(|(ord, row)| StoredRow {
                ord: *ord,
                row: row.clone(),
            })
            .collect()
    }

    #[test]
    fn unchanged_rows_are_neither_deleted_nor_inserted() {
        let rows = vec![token("a"), token("b"), date(5)];
        let was = stored(&[(1, token("a")), (2, token("b")), (1, date(5))]);
        let d = diff(&was, &rows);
        assert!(d.is_empty(), "{d:?}");
    }

    #[test]
    fn a_changed_row_is_replaced_in_its_ord() {
        let was = stored(&[(1, token("a")), (2, token("b")), (3, token("c"))]);
        let new = vec![token("a"), token("B"), token("c")];
        let d = diff(&was, &new);
        assert_eq!(d.removed, vec![(1, 2)]);
        assert_eq!(d.added, vec![(2, &new[1])]);
    }

    #[test]
    fn rows_beyond_the_freed_ords_are_numbered_above_the_highest() {
        // Table 1 (tokens) had ords 1 and 4; table 2 (dates) had 7.
        let was = stored(&[(1, token("a")), (4, token("b")), (7, date(1))]);
        let new = vec![token("x"), token("y"), token("z"), date(1), date(2)];
        let d = diff(&was, &new);
        assert_eq!(d.removed, vec![(1, 1), (1, 4)]);
        assert_eq!(
            d.added,
            vec![(1, &new[0]), (4, &new[1]), (5, &new[2]), (8, &new[4])]
        );
    }

    #[test]
    fn rows_are_compared_as_a_multiset() {
        let was = stored(&[(1, token("a")), (2, token("a"))]);
        let once = vec![token("a")];
        assert_eq!(diff(&was, &once).removed.len(), 1);
        assert!(diff(&was, &once).added.is_empty());
        let thrice = vec![token("a"), token("a"), token("a")];
        let d = diff(&was, &thrice);
        assert!(d.removed.is_empty());
        assert_eq!(d.added, vec![(3, &thrice[2])]);
    }

    #[test]
    fn an_absent_system_differs_from_an_empty_one_and_every_column_counts() {
        let absent = IndexRow::Token {
            code: "code".into(),
            system: None,
            value: Some("a".into()),
            text_norm: None,
        };
        let empty = IndexRow::Token {
            code: "code".into(),
            system: Some(String::new()),
            value: Some("a".into()),
            text_norm: None,
        };
        let d = diff(&stored(&[(1, absent)]), std::slice::from_ref(&empty));
        assert_eq!(d.removed, vec![(1, 1)]);
        assert_eq!(d.added, vec![(1, &empty)]);
        let number = |value: f64, unit: Option<&str>| IndexRow::Number {
            code: "value-quantity".into(),
            value,
            system: None,
            unit: unit.map(str::to_string),
        };
        let was = stored(&[(1, number(2.5, Some("kg")))]);
        assert!(diff(&was, &[number(2.5, Some("kg"))]).is_empty());
        assert!(!diff(&was, &[number(2.5, Some("g"))]).is_empty());
        assert!(!diff(&was, &[number(2.6, Some("kg"))]).is_empty());
        let other_table = IndexRow::Uri {
            code: "code".into(),
            value: "a".into(),
        };
        assert!(!diff(&stored(&[(1, token("a"))]), &[other_table]).is_empty());
    }

    #[test]
    fn no_new_rows_remove_every_stored_one() {
        let was = stored(&[(1, token("a")), (1, date(3))]);
        let d = diff(&was, &[]);
        assert_eq!(d.removed, vec![(1, 1), (2, 1)]);
        assert!(d.added.is_empty());
    }
}
