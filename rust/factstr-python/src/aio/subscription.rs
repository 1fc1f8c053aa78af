//! The engine half of `aio.Subscription` (the asyncio half is `factstr/aio/_subscription.py`).
//!
//! Reads run on engine threads and never wait: a read that finds nothing returns the commit
//! signal's generation it started from, and the loop then waits for that generation to move
//! with a waker on the signal (`CommitSignal::wake_past`), which holds no thread.
//!
//! No batch is lost to cancellation (SPEC §12): a read puts the batch it found into `stash`,
//! and only the loop takes it out, at the moment it hands it to the consumer. When the
//! consumer's `next_batch` was cancelled meanwhile, the batch stays in the stash and is the
//! next one handed out. The acknowledgement rule of SPEC §6 follows: the next read
//! acknowledges only when the stash is empty, i.e. when the last batch read was received.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use factstr_core as core;
use factstr_core::{Batch, Subscriber};
use parking_lot::Mutex;
use pyo3::prelude::*;

use super::calls::outcome;
use super::completions::{settle, Completions, Outcome};
use crate::args::{durable_name, query_arg};
use crate::errors::{to_py_err, unwound};
use crate::store::EventStore;
use crate::values::records_to_python;

/// What `wait` hands Python to `forget` a registered waker by: the commit signal's waker id and
/// the completion token of its future.
type WakerHandle = (u64, u64);

struct State {
    query: core::EventQuery,
    durable: Option<String>,
    /// None until activated, and again after closing.
    subscriber: Mutex<Option<Subscriber>>,
    /// The store, once activated (for its commit signal).
    store: Mutex<Option<Arc<dyn core::EventStore>>>,
    /// Batches read and not yet received by the consumer.
    stash: Mutex<VecDeque<Batch>>,
    /// The batch handed out last, until the consumer's task has resumed with it: a task can be
    /// cancelled after its future got the batch and before it runs (`unreceive` puts it back).
    handed: Mutex<Option<Batch>>,
    /// `ack()` was called: the cursor write happens on the next read or at close.
    ack_requested: AtomicBool,
    closed: AtomicBool,
}

impl Drop for State {
    fn drop(&mut self) {
        // Releasing a durable name writes to the database: not on the loop thread.
        if let Some(subscriber) = self.subscriber.get_mut().take() {
            super::pool::spawn(move || drop(subscriber));
        }
    }
}

/// What a read found.
enum Read {
    /// A batch is in the stash.
    Ready,
    /// Nothing new since this commit-signal generation.
    Nothing(u64),
    /// The subscription is closed.
    Closed,
}

/// The engine state of one `aio.Subscription`.
#[pyclass(module = "factstr._factstr", name = "_AioSubscriptionCore", frozen)]
pub struct AioSubscriptionCore {
    state: Arc<State>,
}

#[pymethods]
impl AioSubscriptionCore {
    /// Checks the arguments of `subscribe(query=None, *, durable=None)` (at once, on the loop).
    #[new]
    #[pyo3(signature = (query=None, durable=None))]
    fn new(query: Option<&Bound<'_, PyAny>>, durable: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let query = query_arg(query, "query")?;
        let durable = match durable {
            Some(d) if !d.is_none() => Some(durable_name(d)?),
            _ => None,
        };
        Ok(Self {
            state: Arc::new(State {
                query,
                durable,
                subscriber: Mutex::new(None),
                store: Mutex::new(None),
                stash: Mutex::new(VecDeque::new()),
                handed: Mutex::new(None),
                ack_requested: AtomicBool::new(false),
                closed: AtomicBool::new(false),
            }),
        })
    }

    /// Starts the subscription on an engine thread: a live one from the current head, a
    /// durable one by claiming its name. Resolves with None.
    fn activate<'py>(
        &self,
        py: Python<'py>,
        completions: &Bound<'py, Completions>,
        store: &Bound<'py, EventStore>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let store = store.get().inner.clone();
        let state = self.state.clone();
        completions.get().run(py, move || {
            let started = unwound(|| {
                let subscriber = match &state.durable {
                    Some(name) => Subscriber::durable(store.clone(), name, state.query.clone())?,
                    None => Subscriber::live(store.clone(), state.query.clone())?,
                };
                *state.store.lock() = Some(store);
                let mut slot = state.subscriber.lock();
                if state.closed.load(Ordering::Acquire) {
                    // Closed while starting: let go of the name at once.
                    drop(slot);
                    let mut subscriber = subscriber;
                    subscriber.close()?;
                } else {
                    *slot = Some(subscriber);
                }
                Ok(())
            });
            outcome(started, |py, ()| Ok(py.None()))
        })
    }

    /// Reads on an engine thread (acknowledging the batch received last first). Resolves with
    /// a batch (`list[EventRecord]`), or an int (the commit generation to wait past: nothing
    /// new), or None (closed).
    fn poll<'py>(
        &self,
        py: Python<'py>,
        completions: &Bound<'py, Completions>,
    ) -> PyResult<Bound<'py, PyAny>> {
        // Asked for the next batch: the one handed out before was received.
        drop(self.state.handed.lock().take());
        if !self.state.stash.lock().is_empty() {
            // A batch read for a cancelled call: hand it out without reading.
            let future = completions.get().bare_future(py)?;
            let state = self.state.clone();
            hand_out(py, &state, &future)?;
            return Ok(future);
        }
        let state = self.state.clone();
        completions.get().run(py, move || {
            let read = unwound(|| {
                let mut slot = state.subscriber.lock();
                let Some(subscriber) = slot.as_mut() else {
                    return Ok(Read::Closed);
                };
                if !state.stash.lock().is_empty() {
                    return Ok(Read::Ready);
                }
                // Asking for the next batch acknowledges the one received last (SPEC §6).
                state.ack_requested.store(false, Ordering::Release);
                subscriber.ack()?;
                let generation = subscriber.store().commit_signal().generation();
                match subscriber.next_batch(Duration::ZERO)? {
                    Some(batch) => {
                        state.stash.lock().push_back(batch);
                        Ok(Read::Ready)
                    }
                    None => Ok(Read::Nothing(generation)),
                }
            });
            let outcome: Outcome = Box::new(move |py, future| match read {
                Ok(Read::Ready) => hand_out(py, &state, future),
                Ok(Read::Nothing(generation)) => {
                    settle(py, future, Ok(generation.into_pyobject(py)?.into_any()))
                }
                Ok(Read::Closed) => settle(py, future, Ok(py.None().into_bound(py))),
                Err(error) => settle(py, future, Err(to_py_err(py, error))),
            });
            outcome
        })
    }

    /// A future that resolves (with None) once the store's commit generation moves past
    /// `seen` or the store closes, and a handle to `forget` it by when no longer wanted
    /// (None when it resolved at once).
    fn wait<'py>(
        &self,
        py: Python<'py>,
        completions: &Bound<'py, Completions>,
        seen: u64,
    ) -> PyResult<(Bound<'py, PyAny>, Option<WakerHandle>)> {
        let Some(store) = self.state.store.lock().clone() else {
            let future = completions.get().bare_future(py)?;
            settle(py, &future, Ok(py.None().into_bound(py)))?;
            return Ok((future, None));
        };
        let (token, future) = completions.get().future(py)?;
        let inbox = completions.get().inbox();
        let waker = Box::new(move || {
            inbox.post(
                token,
                Box::new(|py, future| settle(py, future, Ok(py.None().into_bound(py)))),
            );
        });
        let id = store.commit_signal().wake_past(seen, waker);
        Ok((future, id.map(|id| (id, token))))
    }

    /// Drops a waker that `wait` registered (its wait timed out or was cancelled), given the
    /// handle `wait` returned.
    fn forget(&self, completions: &Bound<'_, Completions>, handle: WakerHandle) {
        let (id, token) = handle;
        if let Some(store) = self.state.store.lock().as_ref() {
            store.commit_signal().forget_waker(id);
        }
        completions.get().discard(token);
    }

    /// `sub.ack()`: the batch received last counts as processed. Writes the cursor on an
    /// engine thread at once (the next read or the close writes it too, whichever comes first).
    /// Resolves with None when written.
    fn ack<'py>(
        &self,
        py: Python<'py>,
        completions: &Bound<'py, Completions>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.state.ack_requested.store(true, Ordering::Release);
        let state = self.state.clone();
        completions.get().run(py, move || {
            let acked = unwound(|| {
                let mut slot = state.subscriber.lock();
                let Some(subscriber) = slot.as_mut() else {
                    return Ok(());
                };
                // A batch in the stash was read but not received: the acknowledgement was for
                // the one before it, which the read that found this one already acknowledged.
                if state.stash.lock().is_empty()
                    && state.ack_requested.swap(false, Ordering::AcqRel)
                {
                    subscriber.ack()?;
                }
                Ok(())
            });
            outcome(acked, |py, ()| Ok(py.None()))
        })
    }

    /// Ends the subscription on an engine thread (writing a requested acknowledgement first);
    /// a durable name is released, its cursor stays. Resolves with None.
    fn close<'py>(
        &self,
        py: Python<'py>,
        completions: &Bound<'py, Completions>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.state.closed.store(true, Ordering::Release);
        let state = self.state.clone();
        completions.get().run(py, move || {
            let closed = unwound(|| {
                let Some(mut subscriber) = state.subscriber.lock().take() else {
                    return Ok(());
                };
                let received_all = state.stash.lock().is_empty();
                state.stash.lock().clear();
                let acked = if state.ack_requested.swap(false, Ordering::AcqRel) && received_all {
                    subscriber.ack()
                } else {
                    Ok(())
                };
                // Close (release the name) even when the acknowledgement failed.
                let released = subscriber.close();
                acked.and(released)
            });
            outcome(closed, |py, ()| Ok(py.None()))
        })
    }

    /// The batch handed out last was not received after all (its task was cancelled before it
    /// resumed): it is handed out again first.
    fn unreceive(&self) {
        if let Some(batch) = self.state.handed.lock().take() {
            self.state.stash.lock().push_front(batch);
        }
    }

    /// Whether `close` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.state.closed.load(Ordering::Acquire)
    }

    /// The durable name, or None for a live subscription.
    #[getter]
    fn durable_name(&self) -> Option<String> {
        self.state.durable.clone()
    }
}

/// Hands the first stashed batch to the consumer, unless its call was cancelled (then the
/// batch stays for the next call). The batch is kept as `handed` until the next call.
fn hand_out(py: Python<'_>, state: &State, future: &Bound<'_, PyAny>) -> PyResult<()> {
    if future.call_method0("done")?.is_truthy()? {
        return Ok(());
    }
    let Some(batch) = state.stash.lock().pop_front() else {
        // Closed meanwhile (the stash was cleared).
        return settle(py, future, Ok(py.None().into_bound(py)));
    };
    match records_to_python(py, &batch.records) {
        Ok(records) => {
            *state.handed.lock() = Some(batch);
            settle(py, future, Ok(records.into_any()))
        }
        Err(error) => {
            // Not received: it stays first.
            state.stash.lock().push_front(batch);
            settle(py, future, Err(error))
        }
    }
}
