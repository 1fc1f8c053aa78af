//! Seeing other processes' commits. SQLite has no notifications; `PRAGMA data_version` on a
//! connection of its own changes whenever another connection commits, and reading it costs
//! about a microsecond. One thread per store reads it while streams exist and raises the
//! store's commit signal on a change: when the commit beacon (see `beacon`) is touched, which
//! our writers in any process do after each commit, and at least every poll interval (for
//! writers that do not touch it, and where the beacon cannot be watched).

use std::sync::Weak;
use std::thread;

use super::beacon;
use super::Shared;

/// Starts the watcher; false when it could not (a later call tries again).
pub fn spawn(shared: Weak<Shared>) -> bool {
    let Some(strong) = shared.upgrade() else {
        return false;
    };
    let connection = match super::schema::open_connection(
        &strong.path,
        strong.options.synchronous,
        strong.options.busy_timeout,
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
    let watch = beacon::Watch::new(&strong.path);
    let mut last = data_version();
    let interval = strong.options.poll_interval;
    drop(strong);
    let spawned = thread::Builder::new()
        .name("factstr-sqlite-watcher".to_owned())
        .spawn(move || loop {
            watch.wait(interval);
            let Some(shared) = shared.upgrade() else {
                return;
            };
            if shared.is_closed() {
                return;
            }
            let version = {
                let _inside = super::fork_gate::enter();
                data_version()
            };
            if let Some(version) = version {
                if last.is_some_and(|l| l != version) {
                    shared.signal.notify();
                }
                last = Some(version);
            }
        });
    spawned.is_ok()
}
