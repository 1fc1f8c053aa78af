//! Restoring batches into SQLite (see `crate::restore`): every batch through the ordinary
//! append (`writes::append_at`, so the same rows, boundaries and index entries), with its own
//! `occurred_at`, all in the caller's one write transaction, after checking the head under the
//! write lock.

use rusqlite::Connection;

use super::reads::head;
use super::writes::append_at;
use crate::error::{Error, Result};
use crate::prepared::{prepare_events, FloatText};
use crate::restore::{check_batches, not_after_head, RestoredBatch};
use crate::types::AppendResult;

pub fn restore(connection: &Connection, batches: &[RestoredBatch]) -> Result<AppendResult> {
    let written = check_batches(batches)?;
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
