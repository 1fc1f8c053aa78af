//! Restoring batches into PostgreSQL (see `crate::restore`): in one transaction, under the
//! append lock (`writes::lock_and_read`, the lock every writer takes), the head is checked and
//! every batch is written with `COPY` (`bulk`): the rows the ordinary append writes
//! (`factstr_append_batch_v2`: the same events, boundaries and index entries, SPEC §9), with the
//! batch's own numbers and `occurred_at`.

use super::bulk::copy_batches;
use super::pool::Conn;
use super::writes::{catch_up_index, lock_and_read, Locked};
use super::PostgresStorage;
use crate::error::Result;
use crate::restore::{not_after_head, RestoredBatch};
use crate::sql::prepared::{prepare_events, FloatText, PreparedEvent};
use crate::types::AppendResult;

impl PostgresStorage {
    /// `batches` were checked by `Store` (`restore::check_batches`), which reported `written`.
    pub(super) fn restore_after_head(
        &self,
        batches: &[RestoredBatch],
        written: AppendResult,
    ) -> Result<AppendResult> {
        let prepared: Vec<Vec<PreparedEvent>> = batches
            .iter()
            .map(|b| prepare_events(&b.events, FloatText::Fraction))
            .collect();
        let mut conn = self.pool.get()?;
        let result = restore_locked(&mut conn, batches, &prepared, written);
        if result.is_err() && conn.client.batch_execute("ROLLBACK").is_err() {
            // Never hand a connection with an open transaction back to the pool.
            conn.discard();
        }
        result
    }
}

fn restore_locked(
    conn: &mut Conn,
    batches: &[RestoredBatch],
    prepared: &[Vec<PreparedEvent>],
    written: AppendResult,
) -> Result<AppendResult> {
    let Locked {
        last_committed,
        indexed_through,
        ..
    } = lock_and_read(conn, None)?;
    if last_committed + 1 != written.first_sequence_number {
        return Err(not_after_head(
            written.first_sequence_number,
            last_committed,
        ));
    }
    if indexed_through < last_committed {
        catch_up_index(conn, indexed_through, last_committed)?;
    }
    copy_batches(conn, batches, prepared)?;
    conn.client
        .batch_execute("COMMIT")
        .map_err(|e| conn.commit_error(e))?;
    Ok(written)
}
