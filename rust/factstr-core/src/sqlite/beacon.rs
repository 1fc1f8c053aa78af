//! The commit beacon: a small file beside the database (`<database>-factstr-locks/commits`)
//! that our writers touch after every commit, so that watchers in other processes wake at once
//! instead of at their next poll. It only speeds delivery up: the watcher's poll of
//! `PRAGMA data_version` still sees every commit, including those of writers that do not touch
//! the beacon (the upstream crates). Waking on the beacon needs inotify (Linux); elsewhere the
//! watcher polls only.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::durable::lock_folder;

fn beacon_path(database: &Path) -> PathBuf {
    lock_folder(database).join("commits")
}

/// How often a writer looks again for a beacon that did not exist (nobody was watching).
const LOOK_AGAIN: Duration = Duration::from_millis(100);

/// The writer's side: touches the beacon after a commit, when a watcher has created it.
pub struct Ringer {
    path: PathBuf,
    file: Option<File>,
    looked: Option<Instant>,
}

impl Ringer {
    pub fn new(database: &Path) -> Self {
        Self {
            path: beacon_path(database),
            file: None,
            looked: None,
        }
    }

    /// Tells watchers that a commit happened. Failures are ignored: watchers poll anyway.
    pub fn ring(&mut self) {
        if self.file.is_none() {
            if self.looked.is_some_and(|at| at.elapsed() < LOOK_AGAIN) {
                return;
            }
            self.looked = Some(Instant::now());
            // Never created here: a beacon exists only where some process watches.
            self.file = OpenOptions::new().write(true).open(&self.path).ok();
        }
        if let Some(file) = &self.file {
            touch(file);
        }
    }
}

#[cfg(unix)]
fn touch(file: &File) {
    use std::os::unix::fs::FileExt;
    let _ = file.write_at(&[1], 0);
}

#[cfg(not(unix))]
fn touch(file: &File) {
    use std::io::{Seek, SeekFrom, Write};
    let mut file = file;
    let _ = file
        .seek(SeekFrom::Start(0))
        .and_then(|_| file.write_all(&[1]));
}

/// The watcher's side: waits until the beacon is touched or a timeout passes.
pub struct Watch {
    #[cfg(target_os = "linux")]
    inotify: Option<linux::Inotify>,
}

impl Watch {
    /// Creates the beacon and starts watching it; without inotify (or when the folder cannot be
    /// written), `wait` just sleeps.
    pub fn new(database: &Path) -> Self {
        let path = beacon_path(database);
        let created = std::fs::create_dir_all(lock_folder(database))
            .and_then(|_| {
                OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&path)
            })
            .is_ok();
        #[cfg(target_os = "linux")]
        {
            Self {
                inotify: created.then(|| linux::Inotify::watch(&path)).flatten(),
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = created;
            Self {}
        }
    }

    /// Returns when the beacon was touched (by any process) or after `timeout`.
    pub fn wait(&self, timeout: Duration) {
        #[cfg(target_os = "linux")]
        if let Some(inotify) = &self.inotify {
            inotify.wait(timeout);
            return;
        }
        std::thread::sleep(timeout);
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;
    use std::time::Duration;

    /// An inotify descriptor watching one file for writes.
    pub struct Inotify {
        fd: libc::c_int,
    }

    impl Inotify {
        pub fn watch(path: &Path) -> Option<Self> {
            let name = CString::new(path.as_os_str().as_bytes()).ok()?;
            // SAFETY: plain system calls; the descriptor is owned by the returned value (closed
            // on drop) or closed here when the watch cannot be added.
            unsafe {
                let fd = libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC);
                if fd < 0 {
                    return None;
                }
                if libc::inotify_add_watch(fd, name.as_ptr(), libc::IN_MODIFY) < 0 {
                    libc::close(fd);
                    return None;
                }
                Some(Self { fd })
            }
        }

        /// Waits for writes to the file (at most `timeout`), then drains the queued events.
        pub fn wait(&self, timeout: Duration) {
            let millis = libc::c_int::try_from(timeout.as_millis())
                .unwrap_or(libc::c_int::MAX)
                .max(1);
            let mut poll = libc::pollfd {
                fd: self.fd,
                events: libc::POLLIN,
                revents: 0,
            };
            let mut buffer = [0u8; 4096];
            // SAFETY: `poll` points to one valid pollfd; `read` writes at most `buffer.len()`
            // bytes into `buffer`; the descriptor is ours and open (closed only on drop).
            // A signal or the timeout returns early too: the caller checks for commits either way.
            unsafe {
                if libc::poll(&mut poll, 1, millis) > 0 {
                    while libc::read(self.fd, buffer.as_mut_ptr().cast(), buffer.len()) > 0 {}
                }
            }
        }
    }

    impl Drop for Inotify {
        fn drop(&mut self) {
            // SAFETY: the descriptor is ours and closed exactly once.
            unsafe {
                libc::close(self.fd);
            }
        }
    }
}
