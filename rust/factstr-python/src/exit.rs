//! Interpreter exit, and why every wait without the GIL goes through `detach` here.
//!
//! During finalisation CPython (3.11, 3.12) ends a daemon thread that tries to take the GIL back
//! with `pthread_exit`. That is harmless in C frames, but its forced unwind must not cross a Rust
//! frame: PyO3 wraps every call from Python in `catch_unwind`, which catches the unwind and the
//! process aborts ("FATAL: exception not rethrown"). So the exit hook (`factstr._streams`)
//! closes this gate before finalisation begins, and a thread that comes back from a wait
//! afterwards parks for good instead of taking the GIL: the process ends around it. A thread
//! that passed the gate just before it closed is counted, and the hook waits for it to return
//! to Python. Handlers themselves run in a Python loop (`factstr._streams.deliver`), so a
//! handler busy in Python at exit has no Rust frame below it.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pyo3::prelude::*;

static CLOSED: AtomicBool = AtomicBool::new(false);

/// Threads that passed the open gate and have not yet returned to Python.
static REATTACHING: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// The thread that closed the gate finalises the interpreter; it is never ended.
    static CLOSER: Cell<bool> = const { Cell::new(false) };
}

/// Held from passing the gate until the thread is back in Python.
struct Passed;

impl Drop for Passed {
    fn drop(&mut self) {
        REATTACHING.fetch_sub(1, Ordering::SeqCst);
    }
}

fn pass() -> Passed {
    // Count first, then look: either this thread sees the gate closed, or the closer sees the
    // count (both sequentially consistent), so no thread slips through unseen.
    REATTACHING.fetch_add(1, Ordering::SeqCst);
    if CLOSED.load(Ordering::SeqCst) && !CLOSER.with(Cell::get) {
        REATTACHING.fetch_sub(1, Ordering::SeqCst);
        loop {
            std::thread::park();
        }
    }
    Passed
}

/// Runs `work` without the GIL (like `Python::detach`), then `then` with it; a thread that comes
/// back after the exit gate closed never re-enters the interpreter.
pub fn detach_then<T: Send, U>(
    py: Python<'_>,
    work: impl FnOnce() -> T + Send,
    then: impl FnOnce(Python<'_>, T) -> U,
) -> U {
    let (out, passed) = py.detach(|| {
        let out = work();
        (out, pass())
    });
    let result = then(py, out);
    drop(passed);
    result
}

/// Runs `work` without the GIL; see `detach_then`.
pub fn detach<T: Send>(py: Python<'_>, work: impl FnOnce() -> T + Send) -> T {
    detach_then(py, work, |_, out| out)
}

/// Closes the gate (called by the exit hook on the finalising thread) and waits, at most
/// `bound`, until every thread that passed it before is back in Python.
pub fn close(py: Python<'_>, bound: Duration) {
    CLOSER.with(|closer| closer.set(true));
    CLOSED.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + bound;
    py.detach(|| {
        while REATTACHING.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}

/// Whether the exit hook has closed the gate (the interpreter is about to finalise).
pub fn closing() -> bool {
    CLOSED.load(Ordering::SeqCst)
}

/// In a forked child only the forking thread exists: nobody is on the way back.
pub fn after_fork_in_child() {
    REATTACHING.store(0, Ordering::SeqCst);
}
