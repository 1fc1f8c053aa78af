//! The contract's value types (SPEC §1, §3, §11), free of any binding concern.

use std::sync::Arc;

use serde_json::Value;

/// Microseconds since the Unix epoch, UTC. One value per committed batch (SPEC §2.5).
pub type Timestamp = i64;

/// An event as given to `append`: its type and its JSON payload.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_type: Arc<str>,
    pub payload: Arc<Value>,
}

impl NewEvent {
    pub fn new(event_type: impl Into<Arc<str>>, payload: Value) -> Self {
        Self {
            event_type: event_type.into(),
            payload: Arc::new(payload),
        }
    }
}

/// A committed fact. Cloning is cheap: type and payload are shared.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub sequence_number: u64,
    pub occurred_at: Timestamp,
    pub event_type: Arc<str>,
    pub payload: Arc<Value>,
}

/// One filter: a type condition AND a payload condition. `None` means "any", an empty list
/// means "nothing" (SPEC §3); the two are never coerced into each other.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventFilter {
    pub event_types: Option<Vec<String>>,
    pub payload_predicates: Option<Vec<Value>>,
}

/// A query: the facts matching any of its filters, after `min_sequence_number` when given.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventQuery {
    pub filters: Option<Vec<EventFilter>>,
    pub min_sequence_number: Option<u64>,
}

impl EventQuery {
    pub fn all() -> Self {
        Self::default()
    }

    pub fn for_event_types<S: Into<String>>(types: impl IntoIterator<Item = S>) -> Self {
        Self {
            filters: Some(vec![EventFilter {
                event_types: Some(types.into_iter().map(Into::into).collect()),
                payload_predicates: None,
            }]),
            min_sequence_number: None,
        }
    }

    /// The same query without its lower bound: what a context version is computed over.
    pub fn without_min(&self) -> Self {
        Self {
            filters: self.filters.clone(),
            min_sequence_number: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    pub event_records: Vec<EventRecord>,
    pub last_returned_sequence_number: Option<u64>,
    pub current_context_version: Option<u64>,
    /// The last sequence number of the whole store in the same snapshot (`None`: empty store).
    pub head_sequence_number: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    pub first_sequence_number: u64,
    pub last_sequence_number: u64,
    pub committed_count: u64,
}

/// The matching events of one committed batch, as delivered to a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub records: Vec<EventRecord>,
    /// The last sequence number of the whole committed batch (matching or not): the position a
    /// stream has passed once it has handled this delivery.
    pub last_sequence_number: u64,
}

/// Batches read from a position onwards, and how far the read looked.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BatchPage {
    /// Non-empty deliveries, in commit order.
    pub batches: Vec<Batch>,
    /// Every committed fact up to here has been looked at (delivered in `batches` or not matching).
    pub scanned_to: u64,
}

/// A durable stream as listed by `durable_streams()`.
#[derive(Debug, Clone, PartialEq)]
pub struct DurableStreamInfo {
    pub name: String,
    pub query: EventQuery,
    pub last_processed_sequence_number: u64,
}
