//! The postings of a batch as PostgreSQL's payload index stores them: one row per key and batch
//! (see `sql::members` for the row's form), written by the append and by the catch-up that
//! indexes foreign writers' rows.

use crate::sql::members::encode_members;

/// One row of the payload index: a key, the first sequence number of a batch that has it (or,
/// while a batch is prepared, its offset in the batch), and the batch's other sequence numbers
/// that have it (`encode_members`).
pub struct Posting {
    pub key_hash: i64,
    pub first: i64,
    pub members: Option<Vec<u8>>,
}

/// The postings of a batch: for each key (hash) that any of its events has, the first sequence
/// number that has it and the others (encoded). `keys` pairs a key with a sequence number.
pub fn batch_postings(mut keys: Vec<(i64, u64)>) -> Vec<Posting> {
    keys.sort_unstable();
    keys.dedup();
    keys.chunk_by(|a, b| a.0 == b.0)
        .map(|group| {
            let numbers: Vec<u64> = group.iter().map(|(_, number)| *number).collect();
            Posting {
                key_hash: group[0].0,
                first: numbers[0] as i64,
                members: encode_members(numbers[0], &numbers[1..]),
            }
        })
        .collect()
}
