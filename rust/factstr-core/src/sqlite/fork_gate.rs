//! Forking while one of our threads is inside SQLite: SQLite keeps process-wide state (its
//! mutexes, the per-file lock and shared-memory records) that a forked child inherits as it was
//! at the fork. A mutex held by a thread that does not exist in the child is held forever there,
//! and the child's own store on the same file hung on it (seen in the fork test). So a fork waits
//! until no thread of ours is inside SQLite: every use of a connection holds this gate shared,
//! and `os.fork()` takes it exclusively around the fork (the binding's at-fork hooks).

use parking_lot::{RwLock, RwLockReadGuard};

static GATE: RwLock<()> = RwLock::new(());

/// Held while a thread uses a SQLite connection (recursive: nested uses do not wait for a fork).
pub fn enter() -> RwLockReadGuard<'static, ()> {
    GATE.read_recursive()
}

/// Before `fork()`: waits until no thread is inside SQLite and keeps new ones out.
pub fn before_fork() {
    std::mem::forget(GATE.write());
}

/// After `fork()`, in the parent and in the child: lets threads in again.
pub fn after_fork() {
    // SAFETY: `before_fork` took the write lock and forgot its guard; this process (the parent,
    // or the child that copied its state) holds it.
    unsafe { GATE.force_unlock_write() };
}
