//! Appending to the SQLite log, inside one `BEGIN IMMEDIATE` transaction: numbering by
//! `MAX(sequence_number) + 1` under the write lock (so commit order is sequence order and a
//! failed append burns no number), the upstream rows, and our payload index.

use rusqlite::{Connection, ToSql};

use super::reads::{head, parse_payload, SqliteLog};
use super::{backend, idempotency, payload_index};
use crate::clock::{format_rfc3339, now_micros};
use crate::condition::Condition;
use crate::error::Result;
use crate::idempotency::{IdempotencyKey, Retention};
use crate::payload_keys::selective_key_hashes;
use crate::sql::numbers::{from_sql, to_sql};
use crate::sql::prepared::PreparedEvent;
use crate::sql::search;
use crate::types::{AppendResult, Timestamp};

/// Appends within the caller's write transaction; with a condition, only if it holds. With an
/// idempotency key that committed already, returns that commit's result and writes nothing;
/// otherwise the key is written with the batch (see `idempotency`).
pub fn append(
    connection: &Connection,
    events: &[PreparedEvent],
    condition: Option<Condition<'_>>,
    idempotency_key: Option<&IdempotencyKey>,
) -> Result<AppendResult> {
    if let Some(key) = idempotency_key {
        if let Some(committed) = idempotency::find(connection, key)? {
            return Ok(committed);
        }
    }
    let occurred_at = now_micros();
    let result = append_at(connection, events, condition, occurred_at)?;
    if let Some(key) = idempotency_key {
        idempotency::record(connection, key, &result, occurred_at, Retention::current())?;
    }
    Ok(result)
}

/// `append` with a given `occurred_at` (a restored batch keeps its own, see `restore`).
pub fn append_at(
    connection: &Connection,
    events: &[PreparedEvent],
    condition: Option<Condition<'_>>,
    occurred_at: Timestamp,
) -> Result<AppendResult> {
    let last_committed = head(connection)?;
    catch_up_index(connection, last_committed)?;
    if let Some(condition) = condition {
        // The index is current now (`catch_up_index`): the log need not read either again.
        let log = &mut SqliteLog::new(connection).knowing(last_committed, last_committed);
        search::check_context(log, condition)?;
    }
    let first = last_committed + 1;
    let count = events.len() as u64;
    let last = first + count - 1;
    let occurred_at = format_rfc3339(occurred_at);
    let numbers = (first..=last)
        .map(|number| to_sql(number, "sequence number"))
        .collect::<Result<Vec<i64>>>()?;
    let mut event_params: Vec<&dyn ToSql> = Vec::with_capacity(events.len() * 4);
    let mut keys: Vec<(i64, u64)> = Vec::new();
    for (event, number) in events.iter().zip(&numbers) {
        event_params.extend([
            number as &dyn ToSql,
            &occurred_at,
            &event.event_type,
            &event.payload_text,
        ]);
        keys.extend(
            event
                .key_hashes
                .iter()
                .map(|hash| (*hash, from_sql(*number))),
        );
    }
    insert_rows(
        connection,
        "INSERT INTO events (sequence_number, occurred_at, event_type, payload) VALUES ",
        "(?,?,?,?)",
        4,
        &event_params,
    )?;
    payload_index::add(connection, keys)?;
    if count > 1 {
        connection
            .prepare_cached("INSERT INTO append_batches (first_sequence_number, last_sequence_number) VALUES (?1, ?2)")
            .map_err(backend)?
            .execute((
                to_sql(first, "sequence number")?,
                to_sql(last, "sequence number")?,
            ))
            .map_err(backend)?;
    }
    set_indexed_through(connection, last)?;
    Ok(AppendResult {
        first_sequence_number: first,
        last_sequence_number: last,
        committed_count: count,
    })
}

/// Rows per multi-row INSERT: one statement per chunk instead of one per row.
const ROWS_PER_INSERT: usize = 128;

/// Inserts rows of `columns` values each (`row` is the SQL of one row's values), many rows per
/// statement.
pub fn insert_rows(
    connection: &Connection,
    prefix: &str,
    row: &str,
    columns: usize,
    params: &[&dyn ToSql],
) -> Result<()> {
    for chunk in params.chunks(ROWS_PER_INSERT * columns) {
        let rows = chunk.len() / columns;
        let sql = format!("{prefix}{}", vec![row; rows].join(","));
        connection
            .prepare_cached(&sql)
            .map_err(backend)?
            .execute(chunk)
            .map_err(backend)?;
    }
    Ok(())
}

/// Index entries a catch-up collects before writing them.
const CATCH_UP_PART: usize = 1 << 20;

/// Indexes the events that writers without our index (the upstream crates) appended.
fn catch_up_index(connection: &Connection, last_committed: u64) -> Result<()> {
    let indexed_through: i64 = connection
        .prepare_cached("SELECT indexed_through FROM factstr_payload_index_state WHERE id = 1")
        .map_err(backend)?
        .query_row([], |row| row.get(0))
        .map_err(backend)?;
    if from_sql(indexed_through) >= last_committed {
        return Ok(());
    }
    let mut select = connection
        .prepare("SELECT sequence_number, payload FROM events WHERE sequence_number > ?1 ORDER BY sequence_number")
        .map_err(backend)?;
    let mut rows = select.query([indexed_through]).map_err(backend)?;
    let mut keys = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        let sequence_number = from_sql(row.get(0).map_err(backend)?);
        let text: String = row.get(1).map_err(backend)?;
        let payload = parse_payload(sequence_number, &text)?;
        keys.extend(
            selective_key_hashes(&payload)
                .into_iter()
                .map(|hash| (hash, sequence_number)),
        );
        // In parts, so that indexing a long foreign history (or rebuilding) holds little memory.
        if keys.len() >= CATCH_UP_PART {
            payload_index::add(connection, std::mem::take(&mut keys))?;
        }
    }
    payload_index::add(connection, keys)?;
    set_indexed_through(connection, last_committed)
}

fn set_indexed_through(connection: &Connection, through: u64) -> Result<()> {
    connection
        .prepare_cached("UPDATE factstr_payload_index_state SET indexed_through = ?1 WHERE id = 1")
        .map_err(backend)?
        .execute([to_sql(through, "sequence number")?])
        .map_err(backend)?;
    Ok(())
}
