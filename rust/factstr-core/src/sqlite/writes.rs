//! Appending to the SQLite log, inside one `BEGIN IMMEDIATE` transaction: numbering by
//! `MAX(sequence_number) + 1` under the write lock (so commit order is sequence order and a
//! failed append burns no number), the upstream rows, and our payload index.

use rusqlite::Connection;

use super::backend;
use super::reads::{context_version, head, parse_payload, plan};
use crate::clock::{format_rfc3339, now_micros};
use crate::error::{Error, Result};
use crate::payload_keys::{key_hash, node_keys};
use crate::types::{AppendResult, EventQuery, NewEvent};

/// The serialised form of one event, prepared before the write lock is taken.
pub struct PreparedEvent {
    event_type: std::sync::Arc<str>,
    payload_text: String,
    key_hashes: Vec<i64>,
}

pub fn prepare_events(events: &[NewEvent]) -> Vec<PreparedEvent> {
    events
        .iter()
        .map(|event| {
            let mut key_hashes: Vec<i64> = node_keys(&event.payload, false).iter().map(|k| key_hash(k)).collect();
            key_hashes.sort_unstable();
            key_hashes.dedup();
            PreparedEvent {
                event_type: event.event_type.clone(),
                payload_text: serde_json::to_string(&*event.payload).expect("JSON values always serialise"),
                key_hashes,
            }
        })
        .collect()
}

/// Appends within the caller's write transaction; with a context, only if its version is
/// `expected`.
pub fn append(
    connection: &Connection,
    events: &[PreparedEvent],
    condition: Option<(&EventQuery, Option<u64>)>,
) -> Result<AppendResult> {
    let last_committed = head(connection)?;
    catch_up_index(connection, last_committed)?;
    if let Some((context, expected)) = condition {
        let context = context.without_min();
        let plan = plan(connection, &context)?;
        let actual = context_version(connection, &context, &plan)?;
        if actual != expected {
            return Err(Error::ConditionalAppendConflict { expected, actual });
        }
    }
    let first = last_committed + 1;
    let count = events.len() as u64;
    let last = first + count - 1;
    let occurred_at = format_rfc3339(now_micros());
    let mut insert_event = connection
        .prepare_cached("INSERT INTO events (sequence_number, occurred_at, event_type, payload) VALUES (?1, ?2, ?3, ?4)")
        .map_err(backend)?;
    let mut insert_key = connection
        .prepare_cached("INSERT OR IGNORE INTO factstr_payload_index (key_hash, sequence_number) VALUES (?1, ?2)")
        .map_err(backend)?;
    for (offset, event) in events.iter().enumerate() {
        let sequence_number = (first + offset as u64) as i64;
        insert_event
            .execute((sequence_number, &occurred_at, &*event.event_type, &event.payload_text))
            .map_err(backend)?;
        for hash in &event.key_hashes {
            insert_key.execute((hash, sequence_number)).map_err(backend)?;
        }
    }
    if count > 1 {
        connection
            .prepare_cached("INSERT INTO append_batches (first_sequence_number, last_sequence_number) VALUES (?1, ?2)")
            .map_err(backend)?
            .execute((first as i64, last as i64))
            .map_err(backend)?;
    }
    set_indexed_through(connection, last)?;
    Ok(AppendResult { first_sequence_number: first, last_sequence_number: last, committed_count: count })
}

/// Indexes the events that writers without our index (the upstream crates) appended.
fn catch_up_index(connection: &Connection, last_committed: u64) -> Result<()> {
    let indexed_through: i64 = connection
        .prepare_cached("SELECT indexed_through FROM factstr_payload_index_state WHERE id = 1")
        .map_err(backend)?
        .query_row([], |row| row.get(0))
        .map_err(backend)?;
    if indexed_through as u64 >= last_committed {
        return Ok(());
    }
    let mut select = connection
        .prepare("SELECT sequence_number, payload FROM events WHERE sequence_number > ?1 ORDER BY sequence_number")
        .map_err(backend)?;
    let mut insert_key = connection
        .prepare_cached("INSERT OR IGNORE INTO factstr_payload_index (key_hash, sequence_number) VALUES (?1, ?2)")
        .map_err(backend)?;
    let mut rows = select.query([indexed_through]).map_err(backend)?;
    while let Some(row) = rows.next().map_err(backend)? {
        let sequence_number: i64 = row.get(0).map_err(backend)?;
        let text: String = row.get(1).map_err(backend)?;
        let payload = parse_payload(sequence_number as u64, &text)?;
        for key in node_keys(&payload, false) {
            insert_key.execute((key_hash(&key), sequence_number)).map_err(backend)?;
        }
    }
    set_indexed_through(connection, last_committed)
}

fn set_indexed_through(connection: &Connection, through: u64) -> Result<()> {
    connection
        .prepare_cached("UPDATE factstr_payload_index_state SET indexed_through = ?1 WHERE id = 1")
        .map_err(backend)?
        .execute([through as i64])
        .map_err(backend)?;
    Ok(())
}
