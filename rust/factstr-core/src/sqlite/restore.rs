//! Restoring batches into SQLite (see `crate::restore`): every batch through the ordinary
//! append (`writes::append_at`, so the same rows, boundaries and index entries), with its own
//! `occurred_at`, all in the caller's one write transaction, after checking the head under the
//! write lock.
//!
//! For `factstr export`, `read_text_batches` pages the log like `read_batches` but hands each
//! payload over as its stored JSON text, unparsed.

use rusqlite::Connection;

use super::backend;
use super::reads::{head, SqliteLog};
use super::writes::append_at;
use crate::clock::parse_rfc3339;
use crate::error::{Error, Result};
use crate::restore::{not_after_head, RestoredBatch, TextBatch, TextPage, TextRecord};
use crate::sql::numbers::to_sql;
use crate::sql::prepared::{prepare_events, FloatText};
use crate::sql::search::IndexedLog;
use crate::types::AppendResult;

/// `batches` were checked by `Store` (`restore::check_batches`), which reported `written`.
pub fn restore(
    connection: &Connection,
    batches: &[RestoredBatch],
    written: AppendResult,
) -> Result<AppendResult> {
    let last_committed = head(connection)?;
    if last_committed + 1 != written.first_sequence_number {
        return Err(not_after_head(
            written.first_sequence_number,
            last_committed,
        ));
    }
    for batch in batches {
        let prepared = prepare_events(&batch.events, FloatText::Shortest);
        let result = append_at(connection, &prepared, None, batch.occurred_at)?;
        if result.first_sequence_number != batch.first_sequence_number {
            // Cannot happen under the write lock; never commit a renumbered batch.
            return Err(Error::Backend(format!(
                "a restored batch was numbered {} instead of {}",
                result.first_sequence_number, batch.first_sequence_number
            )));
        }
    }
    Ok(written)
}

/// Every fact after `position`, about `max_events` of them in whole batches (one larger batch
/// is returned whole), as `search::read_batches` pages them, payloads as stored text.
pub fn read_text_batches(
    connection: &Connection,
    position: u64,
    max_events: usize,
) -> Result<TextPage> {
    let head = head(connection)?;
    let max_events = max_events.max(1);
    let mut records = text_rows(connection, position, head, Some(max_events + 1))?;
    let mut scanned_to = head;
    let mut log = SqliteLog::new(connection);
    if records.len() > max_events {
        // The last batch may be cut short: leave it for the next page, unless it is the only
        // one (then complete it, however large).
        let last = records.last().map_or(0, |r| r.sequence_number);
        let (first_of_last, end_of_last) = log.batch_of(last)?;
        if records[0].sequence_number < first_of_last {
            records.retain(|r| r.sequence_number < first_of_last);
            scanned_to = first_of_last - 1;
        } else {
            records.extend(text_rows(connection, last, end_of_last, None)?);
            scanned_to = end_of_last;
        }
    }
    let mut batches: Vec<TextBatch> = Vec::new();
    let mut current: Option<(u64, u64)> = None;
    for record in records {
        let s = record.sequence_number;
        if !current.is_some_and(|(first, last)| first <= s && s <= last) {
            let range = log.batch_of(s)?;
            current = Some(range);
            batches.push(TextBatch {
                last_sequence_number: range.1,
                records: Vec::new(),
            });
        }
        batches
            .last_mut()
            .expect("a batch was started above")
            .records
            .push(record);
    }
    Ok(TextPage {
        batches,
        scanned_to,
    })
}

/// The facts after `after` up to `through`, in order, at most `limit`.
fn text_rows(
    connection: &Connection,
    after: u64,
    through: u64,
    limit: Option<usize>,
) -> Result<Vec<TextRecord>> {
    let mut statement = connection
        .prepare_cached(
            "SELECT sequence_number, occurred_at, event_type, payload FROM events \
             WHERE sequence_number > ?1 AND sequence_number <= ?2 \
             ORDER BY sequence_number LIMIT ?3",
        )
        .map_err(backend)?;
    let limit = limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
    let mut rows = statement
        .query((
            to_sql(after, "sequence number")?,
            to_sql(through, "sequence number")?,
            limit,
        ))
        .map_err(backend)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        let sequence_number = row.get::<_, i64>(0).map_err(backend)? as u64;
        let occurred_at: String = row.get(1).map_err(backend)?;
        out.push(TextRecord {
            sequence_number,
            occurred_at: parse_rfc3339(&occurred_at).ok_or_else(|| {
                Error::Backend(format!(
                    "event {sequence_number} has an unreadable occurred_at {occurred_at:?}"
                ))
            })?,
            event_type: row.get(2).map_err(backend)?,
            payload_text: row.get(3).map_err(backend)?,
        });
    }
    Ok(out)
}
