//! A wake-up for waiting streams: a generation number bumped on every commit and on close.
//! Streams hold a position in the log, not a queue: the signal only says "look again".

use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// The instant `timeout` from now. A timeout beyond what the clock can hold (a caller's
/// "practically forever", e.g. `Duration::MAX`) saturates at about 30 years from now instead of
/// overflowing, which would panic.
pub fn deadline_after(timeout: Duration) -> Instant {
    const FAR_FUTURE: Duration = Duration::from_secs(30 * 365 * 86_400);
    let now = Instant::now();
    now.checked_add(timeout.min(FAR_FUTURE)).unwrap_or(now)
}

#[derive(Default)]
pub struct CommitSignal {
    state: Mutex<SignalState>,
    changed: Condvar,
}

#[derive(Default, Clone, Copy)]
struct SignalState {
    generation: u64,
    closed: bool,
}

impl CommitSignal {
    pub fn new() -> Self {
        Self::default()
    }

    /// The current generation; pass it to `wait_past` to sleep until something changes.
    pub fn generation(&self) -> u64 {
        self.state.lock().generation
    }

    pub fn notify(&self) {
        let mut state = self.state.lock();
        state.generation = state.generation.wrapping_add(1);
        drop(state);
        self.changed.notify_all();
    }

    pub fn close(&self) {
        let mut state = self.state.lock();
        state.closed = true;
        state.generation = state.generation.wrapping_add(1);
        drop(state);
        self.changed.notify_all();
    }

    pub fn is_closed(&self) -> bool {
        self.state.lock().closed
    }

    /// Sleeps until the generation differs from `seen`, the signal closes, or `timeout` passes.
    /// Returns true when something changed.
    pub fn wait_past(&self, seen: u64, timeout: Duration) -> bool {
        let deadline = deadline_after(timeout);
        let mut state = self.state.lock();
        while state.generation == seen && !state.closed {
            if self.changed.wait_until(&mut state, deadline).timed_out() {
                return state.generation != seen || state.closed;
            }
        }
        true
    }
}
