//! The engine threads of `factstr.aio`: a bounded pool that runs blocking engine calls without
//! the GIL. Threads start when work is queued and none is idle, up to `MAX_THREADS`, and stay
//! (they are few). They never take the GIL, so interpreter exit has nothing to wait for.

use std::collections::VecDeque;
use std::sync::OnceLock;

use parking_lot::{Condvar, Mutex};
use pyo3::prelude::*;

/// At most this many engine threads, however many calls are awaited: a store call waits at
/// most for its database (PostgreSQL's pool holds 4 connections by default, SQLite serialises
/// writers), so more threads would only queue inside the store. `FACTSTR_AIO_THREADS` (read
/// once, 1 to 256) changes it, e.g. for a PostgreSQL pool larger than this.
const DEFAULT_MAX_THREADS: usize = 8;

type Job = Box<dyn FnOnce() + Send>;

struct Pool {
    queue: Mutex<Queue>,
    ready: Condvar,
    max_threads: usize,
}

struct Queue {
    jobs: VecDeque<Job>,
    threads: usize,
    idle: usize,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
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
    })
}

/// Runs `job` on an engine thread (queued when all are busy).
pub fn spawn(job: impl FnOnce() + Send + 'static) {
    let pool = pool();
    let mut queue = pool.queue.lock();
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
        let started = std::thread::Builder::new()
            .name("factstr-aio".to_owned())
            .spawn(work);
        if started.is_ok() {
            queue.threads += 1;
        }
        // When no thread can be started the job waits for a running one (there is one unless
        // this was the first, and then the process is out of threads anyway).
    }
}

fn work() {
    let pool = pool();
    loop {
        let job = {
            let mut queue = pool.queue.lock();
            loop {
                if let Some(job) = queue.jobs.pop_front() {
                    break job;
                }
                queue.idle += 1;
                pool.ready.wait(&mut queue);
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
    (pool.queue.lock().threads, pool.max_threads)
}
