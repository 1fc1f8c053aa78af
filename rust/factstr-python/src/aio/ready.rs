//! The fast path of `factstr.aio`: a call the engine can answer at once, without waiting for a
//! lock or I/O (an append to a Memory store nobody else holds, `EventStore::try_append_at_once`),
//! runs on the loop thread and needs neither an engine thread nor a wake-up of the loop. Its
//! engine work is memory work proportional to the arguments the loop has just converted, so
//! it cannot block the loop for longer than that conversion did; anything that would wait
//! still goes to the engine threads (`completions`).
//!
//! Its answer is awaited through `Ready`, which gives the loop one turn before returning it
//! (a bare `yield`, like `asyncio.sleep(0)`): a task appending in a loop lets every other task
//! run between its calls, as it would if each call went to an engine thread. Cancelled during
//! that turn, the call has committed its whole batch and the caller gets `CancelledError`
//! (allowed by SPEC §12: whole batch or nothing, and the caller learns which by retrying with
//! an idempotency key).

use pyo3::exceptions::{PyRuntimeError, PyStopIteration};
use pyo3::prelude::*;

/// An awaitable of an already known answer: the first step yields to the loop (a bare yield),
/// the second returns the value or raises the error.
#[pyclass(module = "factstr._factstr", name = "_Ready")]
pub struct Ready {
    answer: Option<PyResult<Py<PyAny>>>,
    yielded: bool,
}

impl Ready {
    pub fn new(answer: PyResult<Py<PyAny>>) -> Self {
        Self {
            answer: Some(answer),
            yielded: false,
        }
    }
}

#[pymethods]
impl Ready {
    fn __await__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        if !self.yielded {
            // A bare yield: asyncio's task gives every other ready callback its turn first.
            self.yielded = true;
            return Ok(Some(py.None()));
        }
        match self.answer.take() {
            Some(Ok(value)) => Err(PyStopIteration::new_err((value,))),
            Some(Err(error)) => Err(error),
            None => Err(PyRuntimeError::new_err("cannot await an answer twice")),
        }
    }
}

/// `Ready` for the engine's `result`, converted now (on the loop thread) with `convert`.
pub fn ready<'py, T>(
    py: Python<'py>,
    result: factstr_core::Result<T>,
    convert: impl FnOnce(Python<'py>, T) -> PyResult<Py<PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let answer = match result {
        Ok(value) => convert(py, value),
        Err(error) => Err(crate::errors::to_py_err(py, error)),
    };
    Ok(Bound::new(py, Ready::new(answer))?.into_any())
}
