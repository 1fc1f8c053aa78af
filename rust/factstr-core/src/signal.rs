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

/// Called once, on the thread that moves the generation (or at once), without the signal's
/// lock held; it must be quick (it hands a wake-up on, it does not read).
pub type Waker = Box<dyn FnOnce() + Send>;

/// Identifies a waker registered with `wake_past`, to take it back.
pub type WakerId = u64;

#[derive(Default)]
struct SignalState {
    generation: u64,
    closed: bool,
    /// Wakers of waits that hold no thread (the asyncio streams: `factstr.aio`).
    wakers: Vec<(WakerId, Waker)>,
    next_waker: WakerId,
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
        let wakers = std::mem::take(&mut state.wakers);
        drop(state);
        self.changed.notify_all();
        wake(wakers);
    }

    pub fn close(&self) {
        let mut state = self.state.lock();
        state.closed = true;
        state.generation = state.generation.wrapping_add(1);
        let wakers = std::mem::take(&mut state.wakers);
        drop(state);
        self.changed.notify_all();
        wake(wakers);
    }

    /// Like `wait_past` without holding a thread: calls `waker` once the generation differs
    /// from `seen` or the signal closes (at once when it already has). Returns an id for
    /// `forget_waker` when the waker was kept.
    pub fn wake_past(&self, seen: u64, waker: Waker) -> Option<WakerId> {
        let mut state = self.state.lock();
        if state.generation != seen || state.closed {
            drop(state);
            waker();
            return None;
        }
        state.next_waker = state.next_waker.wrapping_add(1);
        let id = state.next_waker;
        state.wakers.push((id, waker));
        Some(id)
    }

    /// Drops a waker registered by `wake_past` that is no longer wanted (its wait timed out or
    /// was cancelled), so that waits that never see a commit do not pile up.
    pub fn forget_waker(&self, id: WakerId) {
        let forgotten = {
            let mut state = self.state.lock();
            let index = state.wakers.iter().position(|(waker, _)| *waker == id);
            index.map(|index| state.wakers.swap_remove(index))
        };
        // Dropped outside the lock: a waker's captures may take locks of their own.
        drop(forgotten);
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

fn wake(wakers: Vec<(WakerId, Waker)>) {
    for (_, waker) in wakers {
        waker();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn counter() -> (Arc<AtomicUsize>, impl Fn() -> Waker) {
        let count = Arc::new(AtomicUsize::new(0));
        let shared = count.clone();
        (count, move || {
            let count = shared.clone();
            Box::new(move || {
                count.fetch_add(1, Ordering::SeqCst);
            })
        })
    }

    #[test]
    fn wakers_fire_once_on_the_next_change_and_at_once_when_it_already_moved() {
        let signal = CommitSignal::new();
        let (woken, waker) = counter();
        let seen = signal.generation();
        assert!(signal.wake_past(seen, waker()).is_some());
        assert_eq!(woken.load(Ordering::SeqCst), 0);
        signal.notify();
        assert_eq!(woken.load(Ordering::SeqCst), 1);
        signal.notify();
        assert_eq!(woken.load(Ordering::SeqCst), 1, "a waker fires once");
        assert!(signal.wake_past(seen, waker()).is_none(), "already moved");
        assert_eq!(woken.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn forgotten_wakers_never_fire_and_close_wakes_the_rest() {
        let signal = CommitSignal::new();
        let (woken, waker) = counter();
        let seen = signal.generation();
        let forgotten = signal.wake_past(seen, waker()).unwrap();
        signal.wake_past(seen, waker()).unwrap();
        signal.forget_waker(forgotten);
        signal.close();
        assert_eq!(woken.load(Ordering::SeqCst), 1);
        assert!(signal.wake_past(signal.generation(), waker()).is_none());
        assert_eq!(
            woken.load(Ordering::SeqCst),
            2,
            "a closed signal wakes at once"
        );
    }
}
