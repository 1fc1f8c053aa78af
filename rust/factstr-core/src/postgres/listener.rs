//! Seeing every process's commits: a connection of its own LISTENs on the channel that the
//! `events` trigger notifies at each commit, and raises the store's commit signal. A
//! notification is only a wake-up; streams read the batches from the database by position, so
//! a lost notification (while reconnecting) loses nothing: after every (re)connect the signal is
//! raised once so that streams catch up.

use std::sync::Weak;
use std::thread;
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;

use super::schema::NOTIFY_CHANNEL;
use super::Shared;

const WAIT: Duration = Duration::from_millis(250);
const RETRY: Duration = Duration::from_millis(500);

pub fn spawn(shared: Weak<Shared>) {
    let spawned = thread::Builder::new().name("factstr-postgres-listener".to_owned()).spawn(move || loop {
        let Some(strong) = shared.upgrade() else { return };
        if strong.is_closed() {
            return;
        }
        let connected = strong.pool.connect().and_then(|mut client| {
            client.batch_execute(&format!("LISTEN {NOTIFY_CHANNEL}")).map_err(|e| strong.pool.error(e))?;
            Ok(client)
        });
        drop(strong);
        let mut client = match connected {
            Ok(client) => client,
            Err(_) => {
                thread::sleep(RETRY);
                continue;
            }
        };
        // Commits made while we were not listening: look once.
        if let Some(strong) = shared.upgrade() {
            strong.signal.notify();
        }
        loop {
            let Some(strong) = shared.upgrade() else { return };
            if strong.is_closed() {
                return;
            }
            drop(strong);
            let next = client.notifications().timeout_iter(WAIT).next();
            match next {
                Ok(Some(_)) => {
                    if let Some(strong) = shared.upgrade() {
                        strong.signal.notify();
                    }
                }
                Ok(None) if !client.is_closed() => {}
                // The connection broke: wake streams (they retry or report) and reconnect.
                _ => {
                    if let Some(strong) = shared.upgrade() {
                        strong.signal.notify();
                    }
                    break;
                }
            }
        }
    });
    drop(spawned);
}
