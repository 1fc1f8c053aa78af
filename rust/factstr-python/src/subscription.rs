//! `store.subscribe(...)`: a blocking iterator of batches. It waits without the GIL in short
//! slices, checking for Ctrl-C between them, and can be closed from any thread (SPEC §5, §6).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use factstr_core::{Batch, Error, Subscriber};
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};

use crate::errors::{detached, detached_engine, to_py_err, unwound};
use crate::seconds::{optional_seconds, Zero};
use crate::values::records_to_python;

/// Short enough for Ctrl-C to be answered within 0.2 s.
const WAIT_SLICE: Duration = Duration::from_millis(50);

/// A blocking iterator of committed batches (`list[EventRecord]`); durable when given a name.
#[pyclass(module = "factstr", name = "Subscription", frozen)]
pub struct Subscription {
    subscriber: Mutex<Subscriber>,
    /// The store, to wake a waiting iteration when the subscription closes.
    store: std::sync::Arc<dyn factstr_core::EventStore>,
    closed: AtomicBool,
    /// The process that subscribed: in a forked child the subscriber's lock may be held by a
    /// thread that does not exist there, so the child never touches it.
    owner: u32,
}

enum Waited {
    Batch(Batch),
    TimedOut,
    Closed,
}

impl Subscription {
    pub fn new(subscriber: Subscriber) -> Self {
        Self {
            store: subscriber.store().clone(),
            subscriber: Mutex::new(subscriber),
            closed: AtomicBool::new(false),
            owner: std::process::id(),
        }
    }

    /// In a forked child: ends like a closed subscription, or fails with `StoreClosed` when
    /// the store is one that is closed in the child (SPEC §7).
    fn inherited(&self) -> Result<bool, Error> {
        if self.owner == std::process::id() {
            return Ok(false);
        }
        self.closed.store(true, Ordering::Release);
        if self.store.is_closed() {
            return Err(Error::StoreClosed);
        }
        Ok(true)
    }

    /// Acknowledges the previous batch (the ack rule of SPEC §6), then waits for the next one.
    /// The outer error is Python's (Ctrl-C); the inner one the engine's, for the caller to map
    /// (`__next__` ends the iteration on a closed store instead of raising).
    fn wait(&self, py: Python<'_>, timeout: Option<Duration>) -> PyResult<Result<Waited, Error>> {
        match self.inherited() {
            Ok(false) if !self.closed.load(Ordering::Acquire) => {}
            Ok(_) => return Ok(Ok(Waited::Closed)),
            Err(error) => return Ok(Err(error)),
        }
        if let Err(error) = detached_engine(py, || self.subscriber.lock().ack()) {
            return Ok(Err(error));
        }
        // A timeout beyond the clock's range waits like no timeout at all.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            if self.closed.load(Ordering::Acquire) {
                return Ok(Ok(Waited::Closed));
            }
            let slice = match deadline {
                Some(deadline) => deadline
                    .saturating_duration_since(Instant::now())
                    .min(WAIT_SLICE),
                None => WAIT_SLICE,
            };
            let next = crate::exit::detach(py, || {
                unwound(|| {
                    let mut subscriber = self.subscriber.lock();
                    if subscriber.is_closed() {
                        return Ok(None);
                    }
                    subscriber.next_batch(slice)
                })
            });
            match next {
                Ok(Some(batch)) => return Ok(Ok(Waited::Batch(batch))),
                Ok(None) if deadline.is_some_and(|d| Instant::now() >= d) => {
                    return Ok(Ok(Waited::TimedOut))
                }
                Ok(None) => {}
                Err(_) if self.closed.load(Ordering::Acquire) => return Ok(Ok(Waited::Closed)),
                Err(error) => return Ok(Err(error)),
            }
            py.check_signals()?;
        }
    }

    fn close_now(&self, py: Python<'_>) -> PyResult<()> {
        if self.owner != std::process::id() {
            self.closed.store(true, Ordering::Release);
            return Ok(());
        }
        self.closed.store(true, Ordering::Release);
        self.store.commit_signal().notify();
        detached(py, || self.subscriber.lock().close())
    }
}

#[pymethods]
impl Subscription {
    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyList>>> {
        let waited = match self.wait(py, None)? {
            Ok(waited) => waited,
            Err(Error::StoreClosed) => Waited::Closed,
            Err(error) => return Err(to_py_err(py, error)),
        };
        match waited {
            Waited::Batch(batch) => records_to_python(py, &batch.records).map(Some),
            // Returning None from __next__ ends the iteration.
            Waited::TimedOut | Waited::Closed => Ok(None),
        }
    }

    /// The next batch, waiting at most `timeout` seconds (forever when None); None on timeout
    /// or when the subscription is closed.
    #[pyo3(signature = (timeout=None))]
    fn next_batch<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Option<Bound<'py, PyList>>> {
        let timeout = optional_seconds(timeout, "timeout", Zero::Allowed)?;
        match self
            .wait(py, timeout)?
            .map_err(|error| to_py_err(py, error))?
        {
            Waited::Batch(batch) => records_to_python(py, &batch.records).map(Some),
            Waited::TimedOut | Waited::Closed => Ok(None),
        }
    }

    /// Marks the last batch handed out as processed: a durable cursor moves past it.
    fn ack(&self, py: Python<'_>) -> PyResult<()> {
        if self.inherited().map_err(|error| to_py_err(py, error))? {
            return Ok(());
        }
        detached(py, || self.subscriber.lock().ack())
    }

    /// Ends the subscription (from any thread); a durable name is released, its cursor stays.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.close_now(py)
    }

    /// Whether `close()` was called (or the store closed).
    #[getter]
    fn closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> PyResult<()> {
        self.close_now(py)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        // Python's spelling (`True`, quoted as `repr` quotes), not Rust's.
        let durable_name = self
            .subscriber
            .try_lock()
            .and_then(|s| s.durable_name().map(|n| n.to_string()));
        let durable = match durable_name {
            Some(name) => format!(", durable={}", PyString::new(py, &name).repr()?),
            None => String::new(),
        };
        let closed = if self.closed() { "True" } else { "False" };
        Ok(format!("Subscription(closed={closed}{durable})"))
    }
}
