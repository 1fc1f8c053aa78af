//! The one error type of the engine. The binding maps each variant to one Python exception
//! (SPEC §8) in one place.

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// `append`/`append_if` got no events.
    EmptyAppend,
    /// `append_if` found another context version than the caller expected.
    ConditionalAppendConflict {
        expected: Option<u64>,
        actual: Option<u64>,
    },
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

/// Runs `call`, turning a panic (a bug) into `Error::Backend` naming it, for callers that must
/// never unwind (the Python binding: a panic would reach Python as `PanicException`).
pub fn catch_panic<T>(call: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)).unwrap_or_else(|panic| {
        let reason = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".to_owned());
        Err(Error::Backend(format!(
            "internal error (a bug in factstr, please report it): {reason}"
        )))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caught_panic_is_a_backend_error_naming_it() {
        let index = std::hint::black_box(5);
        let caught: Result<u8> = catch_panic(|| Ok([1u8, 2][index]));
        match caught {
            Err(Error::Backend(message)) => {
                assert!(message.contains("index out of bounds"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(catch_panic(|| Ok(7)), Ok(7));
        assert_eq!(
            catch_panic(|| -> Result<()> { panic!("{}", String::from("owned")) }),
            Err(Error::Backend(
                "internal error (a bug in factstr, please report it): owned".to_owned()
            ))
        );
    }
}
