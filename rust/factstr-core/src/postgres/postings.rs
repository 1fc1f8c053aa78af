//! The postings of a batch as PostgreSQL's payload index stores them: one row per key and batch
//! (see `sql::members` for the row's form), written by the append and by the catch-up that
//! indexes foreign writers' rows.

use crate::sql::members::encode_members;

/// One posting: a key (hash), the first sequence number of a batch that has it, and the batch's
/// other sequence numbers that have it (`encode_members`).
pub type Posting = (i64, i64, Option<Vec<u8>>);

/// The postings of a batch: for each key (hash) that any of its events has, the first sequence
/// number that has it and the others (encoded). `keys` pairs a key with a sequence number.
pub fn batch_postings(mut keys: Vec<(i64, u64)>) -> Vec<Posting> {
    keys.sort_unstable();
    keys.dedup();
    keys.chunk_by(|a, b| a.0 == b.0)
        .map(|group| {
            let numbers: Vec<u64> = group.iter().map(|(_, number)| *number).collect();
            (
                group[0].0,
                numbers[0] as i64,
                encode_members(numbers[0], &numbers[1..]),
            )
        })
        .collect()
}
