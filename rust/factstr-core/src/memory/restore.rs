//! Restoring batches into the Memory store (see `crate::restore`): the ordinary commit, with
//! the batch's own `occurred_at`, under the write lock that checks the head.

use super::MemoryStorage;
use crate::error::Result;
use crate::restore::{not_after_head, RestoredBatch};
use crate::types::AppendResult;

impl MemoryStorage {
    /// `batches` were checked by `Store` (`restore::check_batches`), which reported `written`.
    pub(super) fn restore_after_head(
        &self,
        batches: Vec<RestoredBatch>,
        written: AppendResult,
    ) -> Result<AppendResult> {
        let mut log = self.log.write();
        if log.head() + 1 != written.first_sequence_number {
            return Err(not_after_head(written.first_sequence_number, log.head()));
        }
        for batch in batches {
            log.commit_at(batch.events, batch.occurred_at);
        }
        Ok(written)
    }
}
