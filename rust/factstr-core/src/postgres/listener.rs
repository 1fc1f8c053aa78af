//! Seeing every process's commits: a connection of its own LISTENs on the channel that the
//! `events` trigger notifies at each commit, and raises the store's commit signal. A
//! notification is only a wake-up; streams read the batches from the database by position, so
//! a lost notification (while reconnecting) loses nothing: after every (re)connect the signal is
//! raised once so that streams catch up.

use std::sync::Weak;
use std::thread;
use std::time::{Duration, Instant};

use super::pool::Pool;
use super::schema::NOTIFY_CHANNEL;
use crate::signal::CommitSignal;

const WAIT: Duration = Duration::from_millis(250);
const RETRY: Duration = Duration::from_millis(500);
/// How long the listener waits in silence before it checks the server still answers (a round
/// trip bounded by `statement_timeout`): a connection to a server that vanished or stopped would
/// otherwise wait for notifications that never come, until TCP keepalive (hours).
const CHECK_AFTER: Duration = Duration::from_secs(15);

/// Starts the listener: it connects through `pool` and raises `signal`, and ends when either is
/// gone (the store dropped) or the signal is closed (the store closed).
pub fn spawn(pool: Weak<Pool>, signal: Weak<CommitSignal>) {
    let live = move || {
        let signal = signal.upgrade().filter(|signal| !signal.is_closed())?;
        Some((pool.upgrade()?, signal))
    };
    let spawned = thread::Builder::new()
        .name("factstr-postgres-listener".to_owned())
        .spawn(move || loop {
            let Some((pool, _)) = live() else {
                return;
            };
            let connected = pool.connect().and_then(|mut client| {
                client
                    .batch_execute(&format!("LISTEN {NOTIFY_CHANNEL}"))
                    .map_err(|e| pool.error(e))?;
                Ok(client)
            });
            drop(pool);
            let mut client = match connected {
                Ok(client) => client,
                Err(_) => {
                    thread::sleep(RETRY);
                    continue;
                }
            };
            // Commits made while we were not listening: look once.
            if let Some((_, signal)) = live() {
                signal.notify();
            }
            let mut heard = Instant::now();
            loop {
                if live().is_none() {
                    return;
                }
                let mut next = client.next_notification(WAIT);
                if matches!(next, Ok(None)) && heard.elapsed() >= CHECK_AFTER {
                    next = client.batch_execute("").map(|()| None);
                    heard = Instant::now();
                }
                match next {
                    Ok(Some(_)) => {
                        heard = Instant::now();
                        if let Some((_, signal)) = live() {
                            signal.notify();
                        }
                    }
                    Ok(None) if !client.is_closed() => {}
                    // The connection broke: wake streams (they retry or report) and reconnect.
                    _ => {
                        if let Some((_, signal)) = live() {
                            signal.notify();
                        }
                        break;
                    }
                }
            }
        });
    drop(spawned);
}
