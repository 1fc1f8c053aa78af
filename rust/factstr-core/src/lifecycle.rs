//! Whether a store is open. `Store` checks it first in each call (before its storage sees the
//! call), so that calls after `close()` fail with `StoreClosed` (SPEC §11).
//!
//! A store on a database (SQLite, PostgreSQL) also belongs to the process that opened it
//! (SPEC §7): after `fork()` the child has a copy of the store but shares its sockets, files and
//! locks with the parent, and its background threads are gone. So in the child the store is
//! closed: every call fails with `StoreClosed`, and closing or dropping it there must leave
//! those sockets and files alone (no TLS close_notify, no Terminate message, no unlock): `Store`
//! leaks its storage in the child instead (see `inherited`, and `Storage::BOUND_TO_PROCESS` for
//! the kinds this applies to).

use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};

#[derive(Default)]
pub struct Lifecycle {
    closed: AtomicBool,
    /// The process that opened the store, for stores that belong to it.
    owner: Option<u32>,
}

impl Lifecycle {
    /// For a store whose connections belong to this process: closed in a forked child.
    pub fn process_bound() -> Self {
        Self {
            closed: AtomicBool::new(false),
            owner: Some(std::process::id()),
        }
    }

    /// Whether this is a forked child's copy of a process-bound store.
    pub fn inherited(&self) -> bool {
        self.owner.is_some_and(|owner| owner != std::process::id())
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire) || self.inherited()
    }

    pub fn check_open(&self) -> Result<()> {
        if self.is_closed() {
            Err(Error::StoreClosed)
        } else {
            Ok(())
        }
    }

    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }
}
