//! Events as the SQL stores write them: JSON text and payload index keys, computed before the
//! store takes its write lock, so that the lock is held only for the writing.

use crate::payload_keys::selective_key_hashes;
use crate::types::NewEvent;

/// The serialised form of one event, prepared before the write lock is taken.
pub struct PreparedEvent {
    pub event_type: String,
    pub payload_text: String,
    /// The event's payload keys (see `payload_keys`), sorted and distinct.
    pub key_hashes: Vec<i64>,
}

pub fn prepare_events(events: &[NewEvent]) -> Vec<PreparedEvent> {
    events
        .iter()
        .map(|event| {
            let mut key_hashes: Vec<i64> = selective_key_hashes(&event.payload);
            key_hashes.sort_unstable();
            key_hashes.dedup();
            PreparedEvent {
                event_type: event.event_type.to_string(),
                payload_text: serde_json::to_string(&*event.payload).expect("JSON values always serialise"),
                key_hashes,
            }
        })
        .collect()
}

