//! The commit time of a batch (SPEC §2.5): UTC, microsecond precision.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::types::Timestamp;

pub fn now_micros() -> Timestamp {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => since.as_micros() as Timestamp,
        Err(before) => -(before.duration().as_micros() as Timestamp),
    }
}
