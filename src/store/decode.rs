//! Decoding result rows into the store's types, written once for both backends: the SQL of the
//! reads is shared (`sql.rs`) or rendered per dialect (`search/`), and their rows have the same
//! columns on SQLite and PostgreSQL, so one generic decoder over `sqlx::Row` serves both.

use super::{
    decode_method, AuditLogEntry, HistoryRow, IncludedRow, OutboxEvent, SearchRow, StoreResult,
    StoredAuditLogEntry, StoredOutboxEvent, StoredVersion,
};
use bytes::Bytes;
use sqlx::{ColumnIndex, Decode, Row, Type};

fn get<'r, R, T>(row: &'r R, column: &str) -> StoreResult<T>
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    T: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(row.try_get(column)?)
}

/// `version_id, last_updated_us, body`.
pub(super) fn stored_version<R>(row: &R) -> StoreResult<StoredVersion>
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<Vec<u8>>: Decode<'r, R::Database> + Type<R::Database>,
{
    let body: Option<Vec<u8>> = get(row, "body")?;
    Ok(StoredVersion {
        version_id: get(row, "version_id")?,
        last_updated_us: get(row, "last_updated_us")?,
        body: body.map(Bytes::from),
    })
}

/// `resource_type, id` and a stored version.
pub(super) fn included_row<R>(row: &R) -> StoreResult<IncludedRow>
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<Vec<u8>>: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(IncludedRow {
        resource_type: get(row, "resource_type")?,
        id: get(row, "id")?,
        version: stored_version(row)?,
    })
}

/// `seq, resource_type, id, method` and a stored version.
pub(super) fn history_row<R>(row: &R) -> StoreResult<HistoryRow>
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<Vec<u8>>: Decode<'r, R::Database> + Type<R::Database>,
{
    let method: String = get(row, "method")?;
    Ok(HistoryRow {
        seq: get(row, "seq")?,
        resource_type: get(row, "resource_type")?,
        id: get(row, "id")?,
        method: decode_method(&method)?,
        version: stored_version(row)?,
    })
}

/// `id`, a stored version, and `sort_values` sort columns `s0, s1, …`.
pub(super) fn search_row<R>(row: &R, sort_values: usize) -> StoreResult<SearchRow>
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<Vec<u8>>: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(SearchRow {
        id: get(row, "id")?,
        version: stored_version(row)?,
        sort_values: (0..sort_values)
            .map(|n| get(row, format!("s{n}").as_str()))
            .collect::<StoreResult<_>>()?,
    })
}

/// `seq, topic, recorded_us, payload`.
pub(super) fn outbox_event<R>(row: &R) -> StoreResult<StoredOutboxEvent>
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
{
    let payload: Vec<u8> = get(row, "payload")?;
    Ok(StoredOutboxEvent {
        seq: get(row, "seq")?,
        event: OutboxEvent {
            topic: get(row, "topic")?,
            recorded_us: get(row, "recorded_us")?,
            payload: Bytes::from(payload),
        },
    })
}

/// `seq, id, recorded_us, record`.
pub(super) fn audit_log_entry<R>(row: &R) -> StoreResult<StoredAuditLogEntry>
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
{
    let record: Vec<u8> = get(row, "record")?;
    Ok(StoredAuditLogEntry {
        seq: get(row, "seq")?,
        entry: AuditLogEntry {
            id: get(row, "id")?,
            recorded_us: get(row, "recorded_us")?,
            record: Bytes::from(record),
        },
    })
}
