//! Handler registrations (`stream_all`, `stream_to` and their durable forms): each runs on its
//! own daemon thread that waits for batches without the GIL and takes it only to call the
//! handler, so a slow handler delays no one else (SPEC §5).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use factstr_core::{Error, Subscriber};
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{detached, error_class, to_py_err, unwound};
use crate::values::records_to_python;

/// How long a wait lasts before the thread checks whether it was stopped.
const WAIT_SLICE: Duration = Duration::from_millis(100);

static NEXT_STREAM_ID: AtomicU64 = AtomicU64::new(1);

/// Every running registration, so that interpreter exit can stop them before finalisation.
static RUNNING: Mutex<Vec<Weak<StreamState>>> = Mutex::new(Vec::new());

struct StreamState {
    id: u64,
    /// The store, to wake the thread when the stream stops.
    store: std::sync::Arc<dyn factstr_core::EventStore>,
    durable_name: Option<String>,
    subscriber: Mutex<Subscriber>,
    handler: Py<PyAny>,
    stop: AtomicBool,
    active: AtomicBool,
    error: Mutex<Option<Py<PyAny>>>,
    thread: Mutex<Option<Py<PyAny>>>,
}

impl StreamState {
    /// Stops deliveries and frees a durable name at once (its cursor stays).
    fn stop(&self, py: Python<'_>) {
        self.stop.store(true, Ordering::Release);
        self.active.store(false, Ordering::Release);
        // Wake the thread from its wait so that it lets go of the subscriber at once.
        self.store.commit_signal().notify();
        py.detach(|| {
            let _ = unwound(|| self.subscriber.lock().close());
        });
    }

    fn fail(&self, py: Python<'_>, error: PyErr) {
        log_handler_error(py, self.id, self.durable_name.as_deref(), &error);
        *self.error.lock() = Some(error.into_value(py).into_any());
        self.stop(py);
    }
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
            active: AtomicBool::new(true),
            error: Mutex::new(None),
            thread: Mutex::new(None),
        });
        let worker = Bound::new(py, StreamWorker { state: state.clone() })?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("target", worker)?;
        kwargs.set_item("daemon", true)?;
        kwargs.set_item("name", format!("factstr-stream-{}", state.id))?;
        let thread = py.import("threading")?.getattr("Thread")?.call((), Some(&kwargs))?;
        *state.thread.lock() = Some(thread.clone().unbind());
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
    #[getter]
    fn id(&self) -> u64 {
        self.state.id
    }

    /// Whether batches are still delivered to the handler.
    #[getter]
    fn active(&self) -> bool {
        self.state.active.load(Ordering::Acquire)
    }

    /// The exception that stopped a durable stream, if any.
    #[getter]
    fn error(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.state.error.lock().as_ref().map(|e| e.clone_ref(py))
    }

    /// Stops future deliveries; a batch already being handled may still complete.
    fn unsubscribe(&self, py: Python<'_>) {
        self.state.stop(py);
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) {
        self.state.stop(py);
    }

    fn __repr__(&self) -> String {
        let kind = match &self.state.durable_name {
            Some(name) => format!(", durable={name:?}"),
            None => String::new(),
        };
        format!("<EventStream id={} active={}{kind}>", self.state.id, self.active())
    }
}

/// The body of a registration's thread (a callable handed to `threading.Thread`).
#[pyclass(module = "factstr._factstr", name = "_StreamWorker", frozen)]
struct StreamWorker {
    state: Arc<StreamState>,
}

#[pymethods]
impl StreamWorker {
    fn __call__(&self, py: Python<'_>) {
        let state = &self.state;
        while !state.stop.load(Ordering::Acquire) {
            let next = py.detach(|| unwound(|| state.subscriber.lock().next_batch(WAIT_SLICE)));
            let batch = match next {
                Ok(Some(batch)) => batch,
                Ok(None) => continue,
                Err(_) if state.stop.load(Ordering::Acquire) => break,
                Err(Error::StoreClosed) => break,
                Err(error) => {
                    state.fail(py, to_py_err(py, error));
                    break;
                }
            };
            if state.stop.load(Ordering::Acquire) {
                break;
            }
            let outcome = records_to_python(py, &batch.records)
                .and_then(|records| state.handler.call1(py, (records,)));
            match outcome {
                Ok(_) if state.durable_name.is_some() => {
                    if let Err(error) = detached(py, || state.subscriber.lock().ack()) {
                        if !state.stop.load(Ordering::Acquire) {
                            state.fail(py, error);
                        }
                        break;
                    }
                }
                Ok(_) => {}
                // A durable stream stops at the failed batch, so that its cursor never passes it.
                Err(error) if state.durable_name.is_some() => {
                    state.fail(py, error);
                    break;
                }
                // A live stream reports and goes on with the next batch.
                Err(error) => log_handler_error(py, state.id, None, &error),
            }
        }
        state.stop(py);
    }
}

/// Reports a handler's exception on the `factstr` logger (SPEC §5).
pub fn log_handler_error(py: Python<'_>, id: u64, durable_name: Option<&str>, error: &PyErr) {
    let message = match durable_name {
        Some(name) => format!("durable stream {name:?} (stream {id}) stopped: its handler raised"),
        None => format!("handler of stream {id} raised; the stream goes on"),
    };
    let logged = py.import("logging").and_then(|logging| {
        let logger = logging.call_method1("getLogger", ("factstr",))?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("exc_info", error.value(py))?;
        logger.call_method("warning", (message,), Some(&kwargs))
    });
    if let Err(failed) = logged {
        failed.write_unraisable(py, None);
    }
}

/// Replays a durable registration up to the head it found, on the caller's thread, before the
/// registration returns (SPEC §6). A handler failure ends the registration and raises
/// `DurableReplayError` with the handler's exception as its cause.
pub fn replay(py: Python<'_>, subscriber: &mut Subscriber, handler: &Bound<'_, PyAny>) -> PyResult<()> {
    let store = subscriber.store().clone();
    let head = detached(py, || store.head())?;
    while !subscriber.caught_up_to(head) {
        let Some(batch) = detached(py, || subscriber.try_next())? else { break };
        let records = records_to_python(py, &batch.records)?;
        if let Err(cause) = handler.call1((records,)) {
            let name = subscriber.durable_name().unwrap_or_default().to_owned();
            let _ = py.detach(|| unwound(|| subscriber.close()));
            let error = error_class(py, "DurableReplayError")?.call1((format!(
                "the handler of durable stream {name:?} raised during replay; the cursor stays after the last batch it handled"
            ),))?;
            error.setattr("__cause__", cause.value(py))?;
            return Err(PyErr::from_value(error));
        }
        detached(py, || subscriber.ack())?;
    }
    detached(py, || subscriber.ack())
}

/// Stops every registration and waits briefly for its thread, before the interpreter finalises.
#[pyfunction]
pub fn _shutdown(py: Python<'_>) -> PyResult<()> {
    let running: Vec<Arc<StreamState>> = RUNNING.lock().drain(..).filter_map(|s| s.upgrade()).collect();
    for state in &running {
        state.stop.store(true, Ordering::Release);
    }
    for state in &running {
        let thread = state.thread.lock().as_ref().map(|t| t.clone_ref(py));
        if let Some(thread) = thread {
            thread.call_method1(py, "join", (1.0,))?;
        }
    }
    Ok(())
}
