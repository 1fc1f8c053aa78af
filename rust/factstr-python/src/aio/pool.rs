//! The engine threads of `factstr.aio`: a bounded pool that runs blocking engine calls without
//! the GIL. Threads start when work is queued and none is idle, up to `MAX_THREADS`, and stay
//! (they are few). They never take the GIL, so interpreter exit has nothing to wait for.
//!
//! The pool uses the standard library's futex-based locks, not `parking_lot`'s: an idle thread
//! parked by `parking_lot` is registered in its process-wide table, and a fork that happens
//! while a thread is parking leaves that table locked in the child, where the next thread
//! that parks would hang (seen in `test_a_forked_child_has_engine_threads_of_its_own`).

use pyo3::prelude::*;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};

/// At most this many engine threads, however many calls are awaited: a store call waits at
/// most for its database (PostgreSQL's pool holds 4 connections by default, SQLite serialises
/// writers), so more threads would only queue inside the store. `FACTSTR_AIO_THREADS` (read
/// once, 1 to 256) changes it, e.g. for a PostgreSQL pool larger than this.
const DEFAULT_MAX_THREADS: usize = 8;

type Job = Box<dyn FnOnce() + Send>;

struct Pool {
    /// The process that made it.
    owner: u32,
    queue: Mutex<Queue>,
    ready: Condvar,
    max_threads: usize,
}

struct Queue {
    jobs: VecDeque<Job>,
    threads: usize,
    idle: usize,
}

/// The process's pool. A forked child starts a new one on first use (the parent's threads do
/// not exist there, and its queue's lock may be held by one of them).
static POOL: RwLock<Option<Arc<Pool>>> = RwLock::new(None);

/// Locks a std lock, ignoring poisoning: jobs run outside the locks and their panics are caught.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn pool() -> Arc<Pool> {
    let here = std::process::id();
    if let Some(pool) = POOL
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .filter(|pool| pool.owner == here)
    {
        return pool.clone();
    }
    let mut slot = POOL.write().unwrap_or_else(|p| p.into_inner());
    if let Some(pool) = slot.as_ref().filter(|pool| pool.owner == here) {
        return pool.clone();
    }
    // None yet, or the parent's (in a forked child): never touch the parent's queue.
    slot.insert(Arc::new(Pool {
        owner: here,
        queue: Mutex::new(Queue {
            jobs: VecDeque::new(),
            threads: 0,
            idle: 0,
        }),
        ready: Condvar::new(),
        max_threads: std::env::var("FACTSTR_AIO_THREADS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| (1..=256).contains(n))
            .unwrap_or(DEFAULT_MAX_THREADS),
    }))
    .clone()
}

/// Runs `job` on an engine thread (queued when all are busy).
pub fn spawn(job: impl FnOnce() + Send + 'static) {
    let pool = pool();
    let mut queue = lock(&pool.queue);
    queue.jobs.push_back(Box::new(job));
    // Idle threads that were woken but have not yet taken a job still count as idle: start a
    // thread only when the queue holds more jobs than there are idle threads.
    if queue.jobs.len() <= queue.idle {
        drop(queue);
        pool.ready.notify_one();
        return;
    }
    pool.ready.notify_one();
    if queue.threads < pool.max_threads {
        let for_thread = pool.clone();
        let started = std::thread::Builder::new()
            .name("factstr-aio".to_owned())
            .spawn(move || work(&for_thread));
        if started.is_ok() {
            queue.threads += 1;
        }
        // When no thread can be started the job waits for a running one (there is one unless
        // this was the first, and then the process is out of threads anyway).
    }
}

fn work(pool: &Pool) {
    loop {
        let job = {
            let mut queue = lock(&pool.queue);
            loop {
                if let Some(job) = queue.jobs.pop_front() {
                    break job;
                }
                queue.idle += 1;
                queue = pool
                    .ready
                    .wait(queue)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                queue.idle -= 1;
            }
        };
        // A panic is a bug; the job's own `unwound` already turned engine panics into errors.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
    }
}

/// How many engine threads exist now, and the most there may be (for tests and benchmarks).
#[pyfunction]
pub fn _aio_engine_threads() -> (usize, usize) {
    let pool = pool();
    let threads = lock(&pool.queue).threads;
    (threads, pool.max_threads)
}
