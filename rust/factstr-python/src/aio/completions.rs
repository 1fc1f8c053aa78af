//! One event loop's completion queue: engine threads push finished calls here without the GIL,
//! and the loop, woken by a byte on a socket pair it watches (`loop.add_reader`), turns them
//! into Python objects and resolves their futures (see `aio` for why).

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use pyo3::prelude::*;

/// What the loop does with a finished call: given the call's future (still pending, or
/// cancelled by the caller), resolve it. It runs on the loop thread with the GIL.
pub type Outcome = Box<dyn FnOnce(Python<'_>, &Bound<'_, PyAny>) -> PyResult<()> + Send>;

/// The part engine threads hold: the queue and the writing end of the socket pair.
pub struct Inbox {
    finished: Mutex<Vec<(u64, Outcome)>>,
    writer: UnixStream,
}

impl Inbox {
    /// Hands a finished call to the loop. Only the first of a run of completions writes the
    /// wake-up byte; the loop takes them all at once.
    pub fn post(&self, token: u64, outcome: Outcome) {
        let first = {
            let mut finished = self.finished.lock();
            finished.push((token, outcome));
            finished.len() == 1
        };
        if first {
            // A full socket buffer means the loop has wake-ups waiting already.
            let _ = (&self.writer).write(&[1]);
        }
    }
}

/// The completion queue of one event loop (`factstr.aio` keeps one per loop).
#[pyclass(module = "factstr._factstr", name = "_Completions", frozen)]
pub struct Completions {
    inbox: Arc<Inbox>,
    reader: UnixStream,
    /// The futures of calls in flight, by token. Touched only with the GIL (on the loop thread).
    pending: Mutex<HashMap<u64, Py<PyAny>>>,
    next_token: AtomicU64,
    event_loop: Py<PyAny>,
}

impl Completions {
    /// A future of this loop for a call, and the token its outcome is posted under.
    pub fn future<'py>(&self, py: Python<'py>) -> PyResult<(u64, Bound<'py, PyAny>)> {
        let future = self.event_loop.bind(py).call_method0("create_future")?;
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        self.pending.lock().insert(token, future.clone().unbind());
        Ok((token, future))
    }

    /// A future of this loop that no engine thread will resolve (the caller does).
    pub fn bare_future<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.event_loop.bind(py).call_method0("create_future")
    }

    /// Forgets the future of `token`: its outcome will never be posted.
    pub fn discard(&self, token: u64) {
        // Dropped with the GIL held (the caller has it).
        drop(self.pending.lock().remove(&token));
    }

    pub fn inbox(&self) -> Arc<Inbox> {
        self.inbox.clone()
    }

    /// Starts `work` on an engine thread and returns the future its outcome resolves.
    pub fn run<'py>(
        &self,
        py: Python<'py>,
        work: impl FnOnce() -> Outcome + Send + 'static,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (token, future) = self.future(py)?;
        let inbox = self.inbox();
        super::pool::spawn(move || {
            let outcome = work();
            inbox.post(token, outcome);
        });
        Ok(future)
    }
}

#[pymethods]
impl Completions {
    #[new]
    fn new(event_loop: Py<PyAny>) -> PyResult<Self> {
        let (reader, writer) = UnixStream::pair()?;
        reader.set_nonblocking(true)?;
        writer.set_nonblocking(true)?;
        Ok(Self {
            inbox: Arc::new(Inbox {
                finished: Mutex::new(Vec::new()),
                writer,
            }),
            reader,
            pending: Mutex::new(HashMap::new()),
            next_token: AtomicU64::new(1),
            event_loop,
        })
    }

    /// The descriptor the loop watches for readability.
    fn fileno(&self) -> i32 {
        self.reader.as_raw_fd()
    }

    /// The loop's reader callback: resolves every finished call's future.
    fn drain(&self, py: Python<'_>) -> PyResult<()> {
        let mut sink = [0u8; 256];
        loop {
            match (&self.reader).read(&mut sink) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(error) if error.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break, // WouldBlock: nothing more to read
            }
        }
        let finished = std::mem::take(&mut *self.inbox.finished.lock());
        let mut first_error = None;
        for (token, outcome) in finished {
            let Some(future) = self.pending.lock().remove(&token) else {
                continue;
            };
            if let Err(error) = outcome(py, future.bind(py)) {
                // Resolving failed (a conversion error): the caller gets it; if even that
                // fails, the loop's exception handler does.
                let future = future.bind(py);
                if let Err(error) = settle(py, future, Err(error)) {
                    first_error.get_or_insert(error);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// How many calls are in flight (for tests).
    fn in_flight(&self) -> usize {
        self.pending.lock().len()
    }

    /// The loop this queue belongs to.
    #[getter(r#loop)]
    fn event_loop(&self, py: Python<'_>) -> Py<PyAny> {
        self.event_loop.clone_ref(py)
    }
}

/// Resolves `future` with `result` unless the caller already cancelled it.
pub fn settle(
    py: Python<'_>,
    future: &Bound<'_, PyAny>,
    result: PyResult<Bound<'_, PyAny>>,
) -> PyResult<()> {
    if future.call_method0("done")?.is_truthy()? {
        return Ok(());
    }
    match result {
        Ok(value) => future.call_method1("set_result", (value,))?,
        Err(error) => future.call_method1("set_exception", (error.into_value(py),))?,
    };
    Ok(())
}
