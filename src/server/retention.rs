//! Retention: a thread that deletes what history is past keeping — lines older than the
//! retention period, and the oldest beyond the per-room cap — at start and then every
//! [`EVERY`], on a connection of its own so the sequencer's writes never wait more than one
//! small transaction. Dropping [`Retention`] stops it.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::{info, warn};

use crate::store::Store;

/// How often expired lines are looked for.
pub const EVERY: Duration = Duration::from_secs(3600);

/// The running retention thread; dropping it stops the thread (at once, between passes).
#[derive(Debug)]
pub struct Retention {
    _stop: mpsc::Sender<()>,
    _thread: JoinHandle<()>,
}

/// Starts retention for `store`: keep lines for `retain`, and at most `keep` per room.
pub fn spawn(store: &Store, retain: Duration, keep: u64) -> Option<Retention> {
    let mut expirer = match store.expirer() {
        Ok(expirer) => expirer,
        Err(error) => {
            warn!(%error, "cannot open the store for expiry; old lines will stay");
            return None;
        }
    };
    let (stop, stopped) = mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("retention".into())
        .spawn(move || {
            loop {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .saturating_sub(retain);
                let before_ms = i64::try_from(now.as_millis()).unwrap_or(i64::MAX);
                match expirer.expire(before_ms, keep) {
                    Ok(0) => {}
                    Ok(deleted) => info!(deleted, "expired old lines"),
                    Err(error) => warn!(%error, "expiring old lines failed"),
                }
                // Disconnected (the server stops) or a message ends the thread; a timeout
                // starts the next pass.
                if stopped.recv_timeout(EVERY) != Err(mpsc::RecvTimeoutError::Timeout) {
                    return;
                }
            }
        })
        .map_err(|error| warn!(%error, "cannot start the retention thread"))
        .ok()?;
    Some(Retention {
        _stop: stop,
        _thread: thread,
    })
}
