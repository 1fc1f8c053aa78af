//! SQLite file locks that another SQLite library in the same process cannot break (SPEC §7).
//!
//! The extension bundles its own SQLite; Python's `sqlite3` module brings another copy. SQLite's
//! unix VFS locks with POSIX record locks, which belong to the *process*: the two copies cannot
//! see each other's locks, and closing any descriptor of the file (the stdlib connection's
//! `close()`) releases every lock of the process, ours included. The stdlib copy then believes it
//! is the file's last user, checkpoints and deletes the WAL under our connections: acknowledged
//! batches vanished and sequence numbers were handed out twice (the reproduction; also
//! sqlite.org "How To Corrupt An SQLite Database File" §2.2).
//!
//! Options weighed: using Python's own SQLite (the process's one library) would need its shared
//! library or extension API table, which static Pythons (python-build-standalone, uv) and a
//! manylinux wheel cannot count on, and would tie us to whatever old SQLite the interpreter
//! brings. Instead the bundled SQLite keeps its locks on one private open file description per
//! file (Linux OFD locks, through the unix VFS's replaceable system calls): to the other library
//! we then look exactly like another process, the protocol SQLite is built for, and its
//! `close()` cannot release our locks. Our own `close()` would still release *its* POSIX locks,
//! so a descriptor of a locked file is kept open (and reused) while that library holds a lock on
//! the file. The C side (`file_locks.c`, C because `fcntl` is variadic) has the details.
//!
//! Other platforms keep SQLite's default locking (no OFD locks there; documented).

#[cfg(target_os = "linux")]
mod linux {
    use std::sync::Once;

    use rusqlite::ffi;

    extern "C" {
        // Only their addresses are used: SQLite calls them with the signatures of `fcntl`,
        // `open(path, flags, mode)` and `close`.
        fn factstr_sqlite_fcntl();
        fn factstr_sqlite_open();
        fn factstr_sqlite_close();
        fn factstr_sqlite_file_locks_init();
    }

    /// Replaces the unix VFS's `fcntl`, `open` and `close`, once, before any connection opens.
    pub fn install() {
        static INSTALL: Once = Once::new();
        INSTALL.call_once(|| unsafe {
            factstr_sqlite_file_locks_init();
            // Every unix VFS variant shares one system-call table; the default one reaches it.
            let vfs = ffi::sqlite3_vfs_find(std::ptr::null());
            assert!(!vfs.is_null(), "the bundled SQLite has a default VFS");
            let set = (*vfs)
                .xSetSystemCall
                .expect("the unix VFS replaces system calls");
            for (name, call) in [
                (c"fcntl", factstr_sqlite_fcntl as unsafe extern "C" fn()),
                (c"open", factstr_sqlite_open as unsafe extern "C" fn()),
                (c"close", factstr_sqlite_close as unsafe extern "C" fn()),
            ] {
                let rc = set(vfs, name.as_ptr(), Some(call));
                assert_eq!(
                    rc,
                    ffi::SQLITE_OK,
                    "the unix VFS has a {name:?} system call"
                );
            }
        });
    }
}

/// Makes the bundled SQLite's file locks safe beside another SQLite library (see the module
/// documentation); call before opening a connection.
pub fn install() {
    #[cfg(target_os = "linux")]
    linux::install();
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::os::fd::AsRawFd;

    use serde_json::json;

    use crate::sqlite::{SqliteOptions, SqliteStore};
    use crate::store::EventStore;
    use crate::types::NewEvent;

    /// SQLite's shared-lock range of the database file, which every connection in WAL mode
    /// holds a read lock on for as long as it is open.
    const SHARED_FIRST: i64 = 0x4000_0002;
    const SHARED_SIZE: i64 = 510;

    /// Tries what another SQLite library in this process would do to become the file's last
    /// user: a POSIX write lock on the shared range.
    fn posix_write_lock_succeeds(file: &std::fs::File) -> bool {
        let mut lock: libc::flock = unsafe { std::mem::zeroed() };
        lock.l_type = libc::F_WRLCK as _;
        lock.l_whence = libc::SEEK_SET as _;
        lock.l_start = SHARED_FIRST;
        lock.l_len = SHARED_SIZE;
        let acquired = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &lock) } == 0;
        if acquired {
            lock.l_type = libc::F_UNLCK as _;
            unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &lock) };
        }
        acquired
    }

    #[test]
    fn another_library_in_this_process_sees_the_stores_locks_and_cannot_drop_them() {
        let folder =
            std::env::temp_dir().join(format!("factstr-file-locks-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&folder);
        std::fs::create_dir_all(&folder).unwrap();
        let path = folder.join("events.db");
        let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
        store.append(vec![NewEvent::new("a", json!({}))]).unwrap();
        for _ in 0..3 {
            // With POSIX locks (owned by the process) this lock would be granted, and closing
            // the descriptor would release the store's locks.
            let other = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .unwrap();
            assert!(
                !posix_write_lock_succeeds(&other),
                "the store's shared lock is visible"
            );
            drop(other);
        }
        store.close().unwrap();
        let other = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        assert!(
            posix_write_lock_succeeds(&other),
            "a closed store holds no lock"
        );
        let _ = std::fs::remove_dir_all(&folder);
    }
}
