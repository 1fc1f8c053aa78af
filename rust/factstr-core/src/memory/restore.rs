//! Restoring batches into the Memory store (see `crate::restore`): the ordinary commit, with
//! the batch's own `occurred_at`, under the write lock that checks the head.

use super::MemoryStore;
use crate::error::Result;
use crate::restore::{check_batches, not_after_head, RestoredBatch};
use crate::types::AppendResult;

impl MemoryStore {
    pub(super) fn restore(&self, batches: Vec<RestoredBatch>) -> Result<AppendResult> {
        let written = check_batches(&batches)?;
        self.check_open()?;
        let mut log = self.log.write();
        if log.head() + 1 != written.first_sequence_number {
            return Err(not_after_head(written.first_sequence_number, log.head()));
        }
        for batch in batches {
            self.commit_at(&mut log, batch.events, batch.occurred_at);
        }
        drop(log);
        self.signal.notify();
        Ok(written)
    }
}
