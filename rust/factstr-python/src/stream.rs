//! Handler registrations (`stream_all`, `stream_to` and their durable forms): each runs on its
//! own daemon thread that waits for batches without the GIL and takes it only to call the
//! handler, so a slow handler delays no one else (SPEC §5).
//!
//! The thread's loop is Python (`factstr._streams.deliver`); this module gives it the batches
//! (`_StreamWorker.next_batch`) and keeps the registration's state. A handler therefore never
//! runs below a Rust frame, which is what makes interpreter exit safe (see `exit`).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use factstr_core::{Batch, Error, Subscriber};
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::errors::{classes::DurableReplayError, detached, to_py_err, unwound};
use crate::exit;
use crate::values::records_to_python;

/// How long a wait lasts before the thread checks whether it was stopped.
const WAIT_SLICE: Duration = Duration::from_millis(100);

/// At exit: how long to wait for threads that passed the exit gate to return to Python.
const EXIT_RETURN_BOUND: Duration = Duration::from_secs(2);

static NEXT_STREAM_ID: AtomicU64 = AtomicU64::new(1);

/// Every running registration, so that interpreter exit can stop them before finalisation.
static RUNNING: Mutex<Vec<Weak<StreamState>>> = Mutex::new(Vec::new());

/// No end: deliver every batch until stopped.
const NO_END: u64 = u64::MAX;

/// Where a registration's thread is (for the exit hook).
const WAITING: u8 = 0;
const HANDLING: u8 = 1;
const FINISHED: u8 = 2;

struct StreamState {
    id: u64,
    /// The store, to wake the thread when the stream stops.
    store: std::sync::Arc<dyn factstr_core::EventStore>,
    durable_name: Option<String>,
    subscriber: Mutex<Subscriber>,
    handler: Py<PyAny>,
    /// Stop at once: no further delivery.
    stop: AtomicBool,
    /// Deliver the batches up to this sequence number, then stop (set by `unsubscribe`).
    end: AtomicU64,
    active: AtomicBool,
    phase: AtomicU8,
    error: Mutex<Option<Py<PyAny>>>,
    /// The process that registered: a forked child has the state but not the thread.
    owner: u32,
}

impl StreamState {
    fn inherited(&self) -> bool {
        self.owner != std::process::id()
    }

    /// Stops deliveries at once and wakes the thread; it frees a durable name as it ends.
    fn stop_now(&self) {
        self.stop.store(true, Ordering::Release);
        self.active.store(false, Ordering::Release);
        if !self.inherited() {
            self.store.commit_signal().notify();
        }
    }

    /// SPEC §5: batches committed before `unsubscribe()` are still delivered, later ones not.
    /// A durable stream stops at once instead, so that its name is free again at once; the
    /// batches it did not handle come again on its next registration (its cursor stays).
    fn unsubscribe(&self, py: Python<'_>) {
        if self.inherited() {
            self.stop_now();
            return;
        }
        if self.durable_name.is_some() {
            self.stop_now();
            // Free the name now, not when the thread gets round to it (SPEC §6).
            exit::detach(py, || {
                let _ = unwound(|| self.subscriber.lock().close());
            });
            return;
        }
        let store = self.store.clone();
        match exit::detach(py, move || unwound(|| store.head())) {
            Ok(head) => {
                self.end.fetch_min(head, Ordering::AcqRel);
                self.active.store(false, Ordering::Release);
                self.store.commit_signal().notify();
            }
            // A closed or unreachable store delivers nothing more anyway.
            Err(_) => self.stop_now(),
        }
    }

    /// The thread's last act: the subscription ends (a durable name is released).
    fn finish(&self, py: Python<'_>) {
        self.stop.store(true, Ordering::Release);
        self.active.store(false, Ordering::Release);
        exit::detach(py, || {
            let _ = unwound(|| self.subscriber.lock().close());
        });
        self.phase.store(FINISHED, Ordering::Release);
    }
}

/// What the next wait gave.
enum Next {
    Batch(Batch),
    Nothing,
    Done,
}

/// A running handler registration.
#[pyclass(module = "factstr", name = "EventStream", frozen)]
pub struct EventStream {
    state: Arc<StreamState>,
}

impl EventStream {
    /// Starts delivering to `handler` on a new daemon thread.
    pub fn start(py: Python<'_>, subscriber: Subscriber, handler: Py<PyAny>) -> PyResult<Self> {
        let durable_name = subscriber.durable_name().map(str::to_owned);
        let state = Arc::new(StreamState {
            id: NEXT_STREAM_ID.fetch_add(1, Ordering::Relaxed),
            store: subscriber.store().clone(),
            durable_name,
            subscriber: Mutex::new(subscriber),
            handler,
            stop: AtomicBool::new(false),
            end: AtomicU64::new(NO_END),
            active: AtomicBool::new(true),
            phase: AtomicU8::new(WAITING),
            error: Mutex::new(None),
            owner: std::process::id(),
        });
        let worker = Bound::new(
            py,
            StreamWorker {
                state: state.clone(),
            },
        )?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("target", py.import("factstr._streams")?.getattr("deliver")?)?;
        kwargs.set_item("args", (worker,))?;
        kwargs.set_item("daemon", true)?;
        kwargs.set_item("name", format!("factstr-stream-{}", state.id))?;
        let thread = py
            .import("threading")?
            .getattr("Thread")?
            .call((), Some(&kwargs))?;
        {
            let mut running = RUNNING.lock();
            running.retain(|s| s.strong_count() > 0);
            running.push(Arc::downgrade(&state));
        }
        thread.call_method0("start")?;
        Ok(Self { state })
    }
}

#[pymethods]
impl EventStream {
    /// The registration's id, unique within the process.
    #[getter]
    fn id(&self) -> u64 {
        self.state.id
    }

    /// Whether the registration still takes new batches (false after `unsubscribe()`, a
    /// durable handler's failure, or the store's close).
    #[getter]
    fn active(&self) -> bool {
        self.state.active.load(Ordering::Acquire) && !self.state.inherited()
    }

    /// The exception that stopped a durable stream, if any.
    #[getter]
    fn error(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.state.error.lock().as_ref().map(|e| e.clone_ref(py))
    }

    /// Stops the deliveries of batches committed after this call. Batches committed before it
    /// are still delivered (after it returns, when the handler is busy). A durable stream stops
    /// at once and frees its name; its cursor stays.
    fn unsubscribe(&self, py: Python<'_>) {
        self.state.unsubscribe(py);
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) {
        self.state.unsubscribe(py);
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        // Python's spelling (`True`, quoted as `repr` quotes), not Rust's.
        let kind = match &self.state.durable_name {
            Some(name) => format!(", durable={}", pyo3::types::PyString::new(py, name).repr()?),
            None => String::new(),
        };
        let active = if self.active() { "True" } else { "False" };
        Ok(format!(
            "EventStream(id={}, active={active}{kind})",
            self.state.id
        ))
    }
}

/// What a registration's thread works with (`factstr._streams.deliver` runs the loop).
#[pyclass(module = "factstr._factstr", name = "_StreamWorker", frozen)]
struct StreamWorker {
    state: Arc<StreamState>,
}

#[pymethods]
impl StreamWorker {
    #[getter]
    fn id(&self) -> u64 {
        self.state.id
    }

    #[getter]
    fn handler(&self, py: Python<'_>) -> Py<PyAny> {
        self.state.handler.clone_ref(py)
    }

    #[getter]
    fn durable_name(&self) -> Option<String> {
        self.state.durable_name.clone()
    }

    /// The next batch for the handler, waiting as long as it takes; None when the registration
    /// has ended. Raises when the store failed for longer than its reconnect window.
    fn next_batch<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyList>>> {
        let state = &self.state;
        state.phase.store(WAITING, Ordering::Release);
        loop {
            if state.stop.load(Ordering::Acquire) {
                state.finish(py);
                return Ok(None);
            }
            let next = exit::detach(py, || {
                unwound(|| {
                    let mut subscriber = state.subscriber.lock();
                    if subscriber.caught_up_to(state.end.load(Ordering::Acquire)) {
                        return Ok(Next::Done);
                    }
                    let next = subscriber.next_batch(WAIT_SLICE)?;
                    // Read the end after the batch: `unsubscribe` sets it before any later commit.
                    Ok(match next {
                        Some(batch)
                            if batch.last_sequence_number > state.end.load(Ordering::Acquire) =>
                        {
                            Next::Done
                        }
                        Some(batch) => Next::Batch(batch),
                        None => Next::Nothing,
                    })
                })
            });
            let batch = match next {
                Ok(Next::Batch(batch)) => batch,
                Ok(Next::Nothing) => continue,
                Ok(Next::Done) => {
                    state.finish(py);
                    return Ok(None);
                }
                Err(_) if state.stop.load(Ordering::Acquire) => continue,
                Err(Error::StoreClosed) => {
                    state.finish(py);
                    return Ok(None);
                }
                Err(error) => return Err(to_py_err(py, error)),
            };
            if state.stop.load(Ordering::Acquire) {
                continue;
            }
            let records = records_to_python(py, &batch.records)?;
            state.phase.store(HANDLING, Ordering::Release);
            return Ok(Some(records));
        }
    }

    /// The handler returned: a durable cursor moves past the batch.
    fn handled(&self, py: Python<'_>) -> PyResult<()> {
        let state = &self.state;
        let acked = if state.durable_name.is_some() {
            detached(py, || state.subscriber.lock().ack())
        } else {
            Ok(())
        };
        state.phase.store(WAITING, Ordering::Release);
        match acked {
            Err(_) if state.stop.load(Ordering::Acquire) => Ok(()),
            other => other,
        }
    }

    /// The registration stops because of `error` (already reported by the loop): a durable
    /// stream keeps its cursor before the failed batch, and `EventStream.error` holds it.
    fn fail(&self, py: Python<'_>, error: Bound<'_, PyAny>) {
        *self.state.error.lock() = Some(error.unbind());
        self.state.finish(py);
    }
}

/// Replays a durable registration up to the head it found, on the caller's thread, before the
/// registration returns (SPEC §6). A handler failure ends the registration and raises
/// `DurableReplayError` with the handler's exception as its cause.
pub fn replay(
    py: Python<'_>,
    subscriber: &mut Subscriber,
    handler: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let store = subscriber.store().clone();
    let head = detached(py, || store.head())?;
    while !subscriber.caught_up_to(head) {
        let Some(batch) = detached(py, || subscriber.try_next())? else {
            break;
        };
        let records = records_to_python(py, &batch.records)?;
        if let Err(cause) = handler.call1((records,)) {
            let name = subscriber.durable_name().unwrap_or_default().to_owned();
            exit::detach(py, || {
                let _ = unwound(|| subscriber.close());
            });
            let error = DurableReplayError::new_err(format!(
                "the handler of durable stream {name:?} raised during replay; the cursor stays after the last batch it handled"
            ));
            error.set_cause(py, Some(cause));
            return Err(error);
        }
        detached(py, || subscriber.ack())?;
    }
    detached(py, || subscriber.ack())
}

/// How many registrations on `store` still take batches (for the unclosed-store warning).
pub fn live_registrations(store: &Arc<dyn factstr_core::EventStore>) -> usize {
    RUNNING
        .lock()
        .iter()
        .filter_map(Weak::upgrade)
        .filter(|state| {
            Arc::ptr_eq(&state.store, store) && state.phase.load(Ordering::Acquire) != FINISHED
        })
        .count()
}

/// Interpreter exit (called by the `atexit` hook of `factstr._streams`): stops every
/// registration, waits at most `grace` seconds for handlers to finish their batch, then closes
/// the exit gate. A handler still running Python after that is ended by the interpreter like
/// any daemon thread; a thread waiting in the engine stays parked until the process ends.
#[pyfunction]
pub fn _exit_streams(py: Python<'_>, grace: f64) {
    let running: Vec<Arc<StreamState>> = RUNNING
        .lock()
        .drain(..)
        .filter_map(|s| s.upgrade())
        .collect();
    for state in &running {
        state.stop_now();
    }
    let grace = Duration::try_from_secs_f64(grace).unwrap_or(Duration::ZERO);
    let deadline = Instant::now()
        .checked_add(grace)
        .unwrap_or_else(Instant::now);
    py.detach(|| {
        while Instant::now() < deadline
            && running
                .iter()
                .any(|s| s.phase.load(Ordering::Acquire) != FINISHED)
        {
            std::thread::sleep(Duration::from_millis(2));
        }
    });
    exit::close(py, EXIT_RETURN_BOUND);
}

/// `os.register_at_fork(after_in_child=...)`: the registrations' threads do not exist in a
/// forked child; forget them there (their locks may be held by threads that are gone).
#[pyfunction]
pub fn _after_fork_in_child() {
    factstr_core::sqlite_fork_gate::after_fork();
    factstr_core::group_commit_after_fork_in_child();
    RUNNING.lock().clear();
    exit::after_fork_in_child();
}

/// `os.register_at_fork(before=...)`: the fork waits until no thread is inside SQLite (see
/// `factstr_core::sqlite_fork_gate`); the GIL is released meanwhile.
#[pyfunction]
pub fn _before_fork(py: Python<'_>) {
    py.detach(factstr_core::sqlite_fork_gate::before_fork);
}

/// `os.register_at_fork(after_in_parent=...)`.
#[pyfunction]
pub fn _after_fork_in_parent() {
    factstr_core::sqlite_fork_gate::after_fork();
}
