//! The one error type of the engine. The binding maps each variant to one Python exception
//! (SPEC §8) in one place.

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// `append`/`append_if` got no events.
    EmptyAppend,
    /// `append_if` found another context version than the caller expected.
    ConditionalAppendConflict { expected: Option<u64>, actual: Option<u64> },
    /// The database failed (connection lost, disk full, locked too long, damaged file...).
    Backend(String),
    /// The connection to the database broke (or timed out) after an append's commit was sent:
    /// the batch may or may not have been written (SPEC §2.7). A kind of `Backend`.
    CommitOutcomeUnknown(String),
    /// The store was closed.
    StoreClosed,
    /// A durable stream problem that is none of the more specific ones (e.g. unknown name).
    DurableStream(String),
    /// Another registration holds this durable name.
    DurableStreamActive(String),
    /// The durable name is stored with another query.
    DurableStreamQueryMismatch(String),
    /// Bad input that the binding could not catch earlier (e.g. a sequence number overflow).
    InvalidInput(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::EmptyAppend => write!(f, "cannot append an empty list of events"),
            Error::ConditionalAppendConflict { expected, actual } => write!(
                f,
                "conditional append conflict: expected context version {}, actual {}",
                show_version(*expected),
                show_version(*actual)
            ),
            Error::Backend(message) => write!(f, "backend error: {message}"),
            Error::CommitOutcomeUnknown(message) => write!(
                f,
                "commit outcome unknown: the connection failed after the commit was sent, so the batch \
                 may or may not have been written ({message})"
            ),
            Error::StoreClosed => write!(f, "the store is closed"),
            Error::DurableStream(message) => write!(f, "{message}"),
            Error::DurableStreamActive(name) => {
                write!(f, "durable stream {name:?} is already active in another registration")
            }
            Error::DurableStreamQueryMismatch(name) => write!(
                f,
                "durable stream {name:?} is stored with a different query; reset or delete it to change the query"
            ),
            Error::InvalidInput(message) => write!(f, "{message}"),
        }
    }
}

fn show_version(version: Option<u64>) -> String {
    version.map_or_else(|| "None".to_owned(), |v| v.to_string())
}

impl std::error::Error for Error {}
