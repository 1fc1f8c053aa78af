//! Seeing other processes' commits. SQLite has no notifications; `PRAGMA data_version` on a
//! connection of its own changes whenever another connection commits, and reading it costs
//! about a microsecond. One thread per store reads it while streams exist and raises the
//! store's commit signal on a change: when the commit beacon (see `beacon`) is touched, which
//! our writers in any process do after each commit, and at least every poll interval (for
//! writers that do not touch it, and where the beacon cannot be watched).

use std::sync::Weak;
use std::thread;

use super::beacon;
use super::SqliteStorage;
use crate::signal::CommitSignal;

/// Starts the watcher of `storage`, raising `signal`; false when it could not (a later call
/// tries again). It ends when the signal is gone (the store dropped) or closed.
pub fn spawn(storage: &SqliteStorage, signal: Weak<CommitSignal>) -> bool {
    let connection = match super::schema::open_connection(
        &storage.path,
        storage.options.synchronous,
        storage.options.busy_timeout,
    ) {
        Ok(connection) => connection,
        // Without a watcher, streams still see this store's own commits; others' are seen on
        // the next own commit. Opening failed the same way for the store itself otherwise.
        Err(_) => return false,
    };
    let data_version = move || {
        connection
            .query_row("PRAGMA data_version", [], |row| row.get::<_, i64>(0))
            .ok()
    };
    // Watching and the first reading happen before the caller takes its stream's position, so
    // a commit right after that position is seen as a change.
    let watch = beacon::Watch::new(&storage.path);
    let mut last = data_version();
    let interval = storage.options.poll_interval;
    let spawned = thread::Builder::new()
        .name("factstr-sqlite-watcher".to_owned())
        .spawn(move || loop {
            watch.wait(interval);
            let Some(signal) = signal.upgrade() else {
                return;
            };
            if signal.is_closed() {
                return;
            }
            let version = {
                let _inside = super::fork_gate::enter();
                data_version()
            };
            if let Some(version) = version {
                if last.is_some_and(|l| l != version) {
                    signal.notify();
                }
                last = Some(version);
            }
        });
    spawned.is_ok()
}
