//! The one place where engine errors become Python exceptions (SPEC §8). The exception classes
//! are defined in `factstr/_errors.py` (so that `EmptyAppendError` can also be a `ValueError`);
//! here each is a Rust type (`import_exception!`), imported once when the module loads.
//! Argument errors use `type_error`/`value_error` (the builtin classes).

use factstr_core::Error;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

/// The exception classes of `factstr._errors`, as Rust types.
pub mod classes {
    pyo3::import_exception!(factstr._errors, EmptyAppendError);
    pyo3::import_exception!(factstr._errors, ConditionalAppendConflict);
    pyo3::import_exception!(factstr._errors, BackendError);
    pyo3::import_exception!(factstr._errors, CommitOutcomeUnknown);
    pyo3::import_exception!(factstr._errors, StoreClosedError);
    pyo3::import_exception!(factstr._errors, DurableStreamError);
    pyo3::import_exception!(factstr._errors, DurableStreamActive);
    pyo3::import_exception!(factstr._errors, DurableStreamQueryMismatch);
    pyo3::import_exception!(factstr._errors, DurableReplayError);
}

use classes::*;

/// Imports every class once, when the module loads: `import_exception!` panics when it cannot
/// import its class, which must not happen later in the middle of a call (or at exit).
pub fn import_classes(py: Python<'_>) -> PyResult<()> {
    py.import("factstr._errors")?;
    py.get_type::<EmptyAppendError>();
    py.get_type::<ConditionalAppendConflict>();
    py.get_type::<BackendError>();
    py.get_type::<CommitOutcomeUnknown>();
    py.get_type::<StoreClosedError>();
    py.get_type::<DurableStreamError>();
    py.get_type::<DurableStreamActive>();
    py.get_type::<DurableStreamQueryMismatch>();
    py.get_type::<DurableReplayError>();
    Ok(())
}

/// The Python exception of an engine error. (`_py`: kept so that callers keep their shape;
/// the exceptions are created lazily and need no GIL here.)
pub fn to_py_err(_py: Python<'_>, error: Error) -> PyErr {
    let message = error.to_string();
    match error {
        Error::EmptyAppend => EmptyAppendError::new_err(message),
        Error::ConditionalAppendConflict { expected, actual } => {
            ConditionalAppendConflict::new_err((expected, actual))
        }
        Error::Backend(_) => BackendError::new_err(message),
        Error::CommitOutcomeUnknown(_) => CommitOutcomeUnknown::new_err(message),
        Error::StoreClosed => StoreClosedError::new_err(message),
        Error::DurableStream(_) => DurableStreamError::new_err(message),
        Error::DurableStreamActive(_) => DurableStreamActive::new_err(message),
        Error::DurableStreamQueryMismatch(_) => DurableStreamQueryMismatch::new_err(message),
        Error::InvalidInput(_) => value_error(message),
    }
}

/// Runs an engine call without the GIL (through the exit gate, see `exit`) and maps its error.
pub fn detached<T: Send>(
    py: Python<'_>,
    call: impl FnOnce() -> factstr_core::Result<T> + Send,
) -> PyResult<T> {
    crate::exit::detach_then(
        py,
        || unwound(call),
        |py, out| out.map_err(|error| to_py_err(py, error)),
    )
}

/// Like `detached`, keeping the engine's error, for a caller that handles some errors itself
/// (a closed store ends an iteration instead of raising).
pub fn detached_engine<T: Send>(
    py: Python<'_>,
    call: impl FnOnce() -> factstr_core::Result<T> + Send,
) -> factstr_core::Result<T> {
    crate::exit::detach(py, || unwound(call))
}

/// Runs an engine call, turning a panic (a bug) into a `BackendError`: PyO3 would raise it as
/// `PanicException`, a `BaseException` that no `except Exception` catches (SPEC §7).
pub fn unwound<T>(call: impl FnOnce() -> factstr_core::Result<T>) -> factstr_core::Result<T> {
    factstr_core::error::catch_panic(call)
}

/// A `TypeError`: an argument of the wrong type.
pub fn type_error(message: impl Into<String>) -> PyErr {
    PyTypeError::new_err(message.into())
}

/// A `ValueError`: an argument of the right type with a value out of range.
pub fn value_error(message: impl Into<String>) -> PyErr {
    PyValueError::new_err(message.into())
}
