//! The one place where engine errors become Python exceptions (SPEC §8). The exception classes
//! are defined in `factstr/_errors.py` (so that `EmptyAppendError` can also be a `ValueError`)
//! and looked up once.

use factstr_core::Error;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

static ERRORS_MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// The exception class `name` of `factstr._errors`.
pub fn error_class<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyType>> {
    let module = ERRORS_MODULE.get_or_try_init(py, || -> PyResult<_> {
        Ok(py.import("factstr._errors")?.unbind())
    })?;
    Ok(module.bind(py).getattr(name)?.cast_into::<PyType>()?)
}

fn raise(py: Python<'_>, class: &str, message: String) -> PyErr {
    match error_class(py, class).and_then(|class| class.call1((message,))) {
        Ok(exception) => PyErr::from_value(exception),
        Err(lookup_failed) => lookup_failed,
    }
}

pub fn to_py_err(py: Python<'_>, error: Error) -> PyErr {
    let message = error.to_string();
    match error {
        Error::EmptyAppend => raise(py, "EmptyAppendError", message),
        Error::ConditionalAppendConflict { expected, actual } => {
            match error_class(py, "ConditionalAppendConflict")
                .and_then(|c| c.call1((expected, actual)))
            {
                Ok(exception) => PyErr::from_value(exception),
                Err(lookup_failed) => lookup_failed,
            }
        }
        Error::Backend(_) => raise(py, "BackendError", message),
        Error::CommitOutcomeUnknown(_) => raise(py, "CommitOutcomeUnknown", message),
        Error::StoreClosed => raise(py, "StoreClosedError", message),
        Error::DurableStream(_) => raise(py, "DurableStreamError", message),
        Error::DurableStreamActive(_) => raise(py, "DurableStreamActive", message),
        Error::DurableStreamQueryMismatch(_) => raise(py, "DurableStreamQueryMismatch", message),
        Error::InvalidInput(_) => PyValueError::new_err(message),
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

/// Runs an engine call, turning a panic (a bug) into a `BackendError`: PyO3 would raise it as
/// `PanicException`, a `BaseException` that no `except Exception` catches (SPEC §7).
pub fn unwound<T>(call: impl FnOnce() -> factstr_core::Result<T>) -> factstr_core::Result<T> {
    factstr_core::error::catch_panic(call)
}

pub fn type_error(message: impl Into<String>) -> PyErr {
    PyTypeError::new_err(message.into())
}

pub fn value_error(message: impl Into<String>) -> PyErr {
    PyValueError::new_err(message.into())
}
