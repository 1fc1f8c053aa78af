//! Sequence numbers in the SQL stores. Their columns are signed 64-bit (`INTEGER` in SQLite,
//! `BIGINT` in PostgreSQL, as in the upstream crates), so the largest number they hold is
//! 2**63-1, while the contract's numbers range up to 2**64-1 (SPEC §7). A larger number given to
//! a SQL store is refused with `InvalidInput` (a `ValueError` in Python) by `Store` (against the
//! storage's `LARGEST_NUMBER`) before anything is read or written, never changed into another
//! number: a cursor reset to 2**64-1 must not quietly become 2**63-1. Every conversion to the column type goes through `to_sql`, so none saturates,
//! and every conversion back through `from_sql`.

use crate::error::{Error, Result};

/// The largest sequence number, cursor or version a SQL store holds.
pub const LARGEST: u64 = i64::MAX as u64;

/// `number` as the column type; `InvalidInput` naming `what` when it is larger than `LARGEST`.
pub fn to_sql(number: u64, what: &str) -> Result<i64> {
    i64::try_from(number).map_err(|_| {
        Error::InvalidInput(format!(
            "{what} must be at most 2**63-1 ({LARGEST}) in a SQL store, got {number}"
        ))
    })
}

/// A number read from a column of sequence numbers or cursors. The stores never write a negative
/// one; should another writer have, it reads as 0 (before the first fact) instead of wrapping
/// around to a huge number.
pub fn from_sql(number: i64) -> u64 {
    u64::try_from(number).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_up_to_the_largest_pass_and_larger_ones_are_refused_by_name() {
        assert_eq!(to_sql(0, "x"), Ok(0));
        assert_eq!(to_sql(LARGEST, "x"), Ok(i64::MAX));
        for too_large in [LARGEST + 1, u64::MAX] {
            let Err(Error::InvalidInput(message)) = to_sql(too_large, "sequence_number") else {
                panic!("{too_large} accepted");
            };
            assert!(
                message.contains("sequence_number") && message.contains(&too_large.to_string()),
                "{message}"
            );
        }
        assert_eq!(from_sql(i64::MAX), LARGEST);
        assert_eq!(from_sql(-1), 0);
    }
}
