//! Idempotency keys (SPEC §2.8): what a key may be, and how long a storage keeps it.
//!
//! An append may carry a key. Each storage keeps a key table beside its log and looks the key up
//! in the append's own atomic step, under the lock that numbers the batch: a key that committed
//! already answers with the `AppendResult` it committed with (nothing is written, whatever the
//! events, and no condition is checked); otherwise the key is written with the batch, so both
//! commit or neither does. A caller that got `CommitOutcomeUnknown` (SPEC §2.7) retries with
//! the same key and learns the outcome without writing the batch twice.
//!
//! The storages' key tables: `memory::idempotency`, `sqlite::idempotency`,
//! `postgres::idempotency`. Each numbers its keys densely in commit order (`key_number`), which
//! is what the retention rule below counts in.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::types::Timestamp;

/// The longest key, in bytes of UTF-8: room for composite keys of several ids, well inside what
/// an index entry of either SQL database holds.
pub const MAX_KEY_BYTES: usize = 512;

/// A checked idempotency key: non-empty, at most `MAX_KEY_BYTES`, no U+0000 (PostgreSQL text
/// cannot hold it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Checks `key` (the one place keys are checked), naming the argument in the error.
    pub fn new(key: impl Into<String>) -> Result<Self> {
        let key = key.into();
        let refuse = |why: String| Err(Error::InvalidInput(format!("idempotency_key {why}")));
        if key.is_empty() {
            return refuse("must not be empty".to_owned());
        }
        if key.len() > MAX_KEY_BYTES {
            return refuse(format!(
                "is too long: {} bytes of UTF-8, at most {MAX_KEY_BYTES}",
                key.len()
            ));
        }
        if key.contains('\0') {
            return refuse("must not contain U+0000".to_owned());
        }
        Ok(Self(key))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How long keys are kept: a key may be forgotten only once it is both older than `min_age` and
/// not among the newest `min_keys` keys (SPEC §2.8: at least 24 hours or the last 1,000,000
/// keys, whichever is more).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub min_age: Duration,
    pub min_keys: u64,
}

impl Retention {
    /// The contract's retention.
    pub const CONTRACT: Retention = Retention {
        min_age: Duration::from_secs(24 * 60 * 60),
        min_keys: 1_000_000,
    };

    /// The retention in force (the contract's unless a test shortened it, see `set_for_tests`).
    pub fn current() -> Retention {
        let min_age = MIN_AGE_MICROS.load(Ordering::Relaxed);
        let min_keys = MIN_KEYS.load(Ordering::Relaxed);
        Retention {
            min_age: Duration::from_micros(min_age),
            min_keys,
        }
    }

    /// Tests only: shortens (or restores) the retention of every store in this process, so that
    /// pruning can be seen without a million keys or a day's wait. Never lower in production:
    /// the contract promises the default.
    pub fn set_for_tests(retention: Retention) {
        MIN_AGE_MICROS.store(
            u64::try_from(retention.min_age.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        MIN_KEYS.store(retention.min_keys, Ordering::Relaxed);
    }

    /// Whether a key written by an append may be pruned now: `key_number` is the key's place,
    /// `newest` the newest key's, `committed_at` when it was written.
    pub fn expired(
        &self,
        key_number: u64,
        committed_at: Timestamp,
        newest: u64,
        now: Timestamp,
    ) -> bool {
        key_number <= self.newest_kept_from(newest) && committed_at < self.horizon(now)
    }

    /// The highest key number outside the newest `min_keys` (0: none is).
    pub fn newest_kept_from(&self, newest: u64) -> u64 {
        newest.saturating_sub(self.min_keys)
    }

    /// Keys committed before this time are old enough to be pruned.
    pub fn horizon(&self, now: Timestamp) -> Timestamp {
        now.saturating_sub(i64::try_from(self.min_age.as_micros()).unwrap_or(i64::MAX))
    }
}

static MIN_AGE_MICROS: AtomicU64 = AtomicU64::new(24 * 60 * 60 * 1_000_000);
static MIN_KEYS: AtomicU64 = AtomicU64::new(1_000_000);

/// The SQL storages prune when a key's number is a multiple of this, at most `PRUNE_AT_MOST`
/// of the oldest keys: a bounded bit of work on one append in `PRUNE_EVERY`, which keeps up
/// with the keys written (it can delete more than are added meanwhile).
pub const PRUNE_EVERY: u64 = 64;
pub const PRUNE_AT_MOST: u64 = 4 * PRUNE_EVERY;

/// Whether writing key number `key_number` is the occasion to prune (see `PRUNE_EVERY`).
#[allow(clippy::manual_is_multiple_of)] // `is_multiple_of` needs Rust 1.87; rust-version is 1.85
pub fn prunes_at(key_number: u64) -> bool {
    key_number % PRUNE_EVERY == 0
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The result of a one-event batch numbered `n` (the key tables' tests store these).
    pub(crate) fn result(n: u64) -> crate::types::AppendResult {
        crate::types::AppendResult {
            first_sequence_number: n,
            last_sequence_number: n,
            committed_count: 1,
        }
    }

    #[test]
    fn keys_are_checked_and_the_error_names_the_argument() {
        assert_eq!(IdempotencyKey::new("order-7").unwrap().as_str(), "order-7");
        for bad in [
            "".to_owned(),
            "a\0b".to_owned(),
            "x".repeat(MAX_KEY_BYTES + 1),
        ] {
            match IdempotencyKey::new(bad) {
                Err(Error::InvalidInput(message)) => {
                    assert!(message.starts_with("idempotency_key "), "{message}")
                }
                other => panic!("{other:?}"),
            }
        }
        // The bound counts bytes: 256 two-byte characters fit, one more does not.
        assert!(IdempotencyKey::new("é".repeat(MAX_KEY_BYTES / 2)).is_ok());
        assert!(IdempotencyKey::new("é".repeat(MAX_KEY_BYTES / 2 + 1)).is_err());
    }

    #[test]
    fn a_key_expires_only_when_both_old_and_outside_the_newest_keys() {
        let retention = Retention {
            min_age: Duration::from_secs(10),
            min_keys: 3,
        };
        let now = 100_000_000;
        let old = now - 11_000_000;
        let young = now - 9_000_000;
        // Newest is 10: keys 1..=7 are outside the newest three.
        assert!(retention.expired(7, old, 10, now));
        assert!(!retention.expired(8, old, 10, now));
        assert!(!retention.expired(7, young, 10, now));
        assert_eq!(Retention::CONTRACT, Retention::current());
    }
}
