//! The engine side of `factstr.aio` (SPEC §12): awaitable store calls whose waiting happens on
//! a bounded pool of engine threads, never on the event loop and never in Python's executor.
//!
//! How a call travels (the design, and why):
//! - On the loop thread the arguments are converted and checked with the existing converters
//!   (`values::events_arg`, `query_arg`, ...), so bad input raises at once, and the call gets
//!   an `asyncio.Future` of the running loop (`completions`).
//! - The engine work (locks, I/O, fsync, JSON) runs on one of a few engine threads (`pool`)
//!   that never take the GIL. The result goes into the loop's completion queue and, when the
//!   queue was empty, one byte into a socket pair whose reading end the loop watches
//!   (`loop.add_reader`). So a completing call costs no GIL hand-off on the engine side and no
//!   `call_soon_threadsafe` per result: many results completing together wake the loop once.
//! - The loop drains the queue and turns each result into Python objects there (the only part
//!   that needs the interpreter), then resolves the future.
//! - Fast path (`ready`): an append the engine can do at once, without waiting for a lock or
//!   I/O (a Memory store whose log nobody holds), is done on the loop thread right away; awaiting
//!   it gives the loop one turn and returns the answer. No engine thread, no wake-up.
//! - Waiting for new batches (`subscribe`) holds no thread at all: the store's commit signal
//!   calls a waker that posts a completion (`CommitSignal::wake_past`).
//!
//! Alternatives looked at: PyO3's `async fn` support (experimental; its futures must be polled
//! from Python, so a blocking engine call would still need a thread to wait on, plus a waker
//! that takes the GIL), a Tokio runtime (the stores are synchronous: it would only add a second
//! pool), and `call_soon_threadsafe` from the engine thread per result (each one takes the GIL
//! on the engine thread, competing with the loop for it). The socket pair is what asyncio's own
//! `call_soon_threadsafe` uses underneath, without the GIL and batched.

pub mod calls;
pub mod completions;
pub mod pool;
pub mod ready;
pub mod subscription;

use pyo3::prelude::*;

/// Adds the classes and functions of this module to `factstr._factstr`.
pub fn add_to(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<completions::Completions>()?;
    module.add_class::<ready::Ready>()?;
    module.add_class::<calls::AioOpener>()?;
    module.add_class::<subscription::AioSubscriptionCore>()?;
    calls::add_functions(module)?;
    module.add_function(wrap_pyfunction!(pool::_aio_engine_threads, module)?)?;
    Ok(())
}
