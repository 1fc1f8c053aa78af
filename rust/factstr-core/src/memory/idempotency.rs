//! The Memory store's idempotency keys (see `crate::idempotency`): kept with the log under its
//! write lock, so a lookup and the batch it guards are one atomic step. Keys live as long as the
//! store object, pruned by the retention rule as new ones arrive.

use std::collections::{HashMap, VecDeque};

use crate::idempotency::{IdempotencyKey, Retention};
use crate::types::{AppendResult, Timestamp};

#[derive(Default)]
pub struct KeyTable {
    results: HashMap<String, AppendResult>,
    /// Oldest first: (key, its number, when it was written).
    order: VecDeque<(String, u64, Timestamp)>,
    newest: u64,
}

impl KeyTable {
    /// The result the key committed with, if it did.
    pub fn find(&self, key: &IdempotencyKey) -> Option<AppendResult> {
        self.results.get(key.as_str()).copied()
    }

    /// Records `key` for a batch committed at `committed_at`, then forgets the keys the
    /// retention lets go.
    pub fn record(
        &mut self,
        key: &IdempotencyKey,
        result: &AppendResult,
        committed_at: Timestamp,
        retention: Retention,
    ) {
        self.newest += 1;
        self.results.insert(key.as_str().to_owned(), *result);
        self.order
            .push_back((key.as_str().to_owned(), self.newest, committed_at));
        while let Some((oldest, number, at)) = self.order.front() {
            if !retention.expired(*number, *at, self.newest, committed_at) {
                break;
            }
            self.results.remove(oldest.as_str());
            self.order.pop_front();
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.results.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idempotency::tests::result;
    use std::time::Duration;

    #[test]
    fn old_keys_beyond_the_newest_ones_are_forgotten() {
        let retention = Retention {
            min_age: Duration::from_secs(1),
            min_keys: 3,
        };
        let mut table = KeyTable::default();
        let key = |n: u64| IdempotencyKey::new(format!("k{n}")).unwrap();
        // Five keys written long ago, all young at the time: kept.
        for n in 1..=5 {
            table.record(&key(n), &result(n), 0, retention);
        }
        assert_eq!(table.len(), 5);
        // Two seconds later: everything old, only the newest three stay.
        table.record(&key(6), &result(6), 2_000_000, retention);
        assert_eq!(table.len(), 3);
        assert_eq!(table.find(&key(3)), None);
        assert_eq!(table.find(&key(4)), Some(result(4)));
        assert_eq!(table.find(&key(6)), Some(result(6)));
    }
}
