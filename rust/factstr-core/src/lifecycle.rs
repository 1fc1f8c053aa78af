//! Whether a store is open. Every store checks it first in each call, so that calls after
//! `close()` fail with `StoreClosed` (SPEC §11).

use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};

#[derive(Default)]
pub struct Lifecycle {
    closed: AtomicBool,
}

impl Lifecycle {
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
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
