//! The store's upkeep, on a thread and a connection of its own: new lines are added to the
//! search index as soon as the sequencer has stored them (it nudges), and lines past keeping —
//! older than the retention period, or the oldest beyond the per-room cap — are deleted at
//! start and then every [`EXPIRE_EVERY`]. Neither holds up the sequencer's writes by more than
//! one small transaction. The thread ends when the sequencer drops its nudge.
//!
//! Indexing a line's trigrams costs several times what storing it does; on a busy machine the
//! thread runs at the lowest priority (nice 19), so the chat comes first and the index catches
//! up when there is time (a search scans what is not indexed yet, so it is never incomplete).

use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tracing::{debug, info, warn};

use crate::store::{Store, Upkeep};

/// How often expired lines are looked for.
pub const EXPIRE_EVERY: Duration = Duration::from_secs(3600);

/// What retention keeps.
#[derive(Debug, Clone, Copy)]
pub struct Keep {
    /// How long lines are kept.
    pub for_: Duration,
    /// Most lines kept per room.
    pub lines: u64,
}

/// Starts the upkeep of `store`; returns the nudge the sequencer sends after each commit, and
/// the thread. `None` (with a warning) if it cannot start: search then sees no new lines and
/// nothing expires, but the room is unaffected.
pub fn spawn(store: &Store, keep: Keep) -> Option<(SyncSender<()>, JoinHandle<()>)> {
    let upkeep = match store.upkeep() {
        Ok(upkeep) => upkeep,
        Err(error) => {
            warn!(%error, "cannot open the store for its upkeep; search and expiry are off");
            return None;
        }
    };
    // One pending nudge is enough: the indexer catches up with everything at once.
    let (nudge, nudges) = mpsc::sync_channel(1);
    let thread = std::thread::Builder::new()
        .name("store upkeep".into())
        .spawn(move || run(upkeep, &nudges, keep))
        .map_err(|error| warn!(%error, "cannot start the store's upkeep thread"))
        .ok()?;
    Some((nudge, thread))
}

fn run(mut upkeep: Upkeep, nudges: &mpsc::Receiver<()>, keep: Keep) {
    #[cfg(target_os = "linux")]
    {
        // On Linux a thread id names just this thread.
        let this = Some(rustix::thread::gettid());
        if let Err(error) = rustix::process::setpriority_process(this, 19) {
            warn!(%error, "cannot lower the store upkeep's priority");
        }
    }
    let mut failing = false;
    let mut next_expiry = Instant::now();
    loop {
        if Instant::now() >= next_expiry {
            expire(&mut upkeep, keep);
            next_expiry = Instant::now() + EXPIRE_EVERY;
        }
        match nudges.recv_timeout(next_expiry.saturating_duration_since(Instant::now())) {
            Ok(()) => index(&mut upkeep, &mut failing),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                index(&mut upkeep, &mut failing); // whatever the last batches added
                return;
            }
        }
    }
}

/// Indexes until caught up; a failure is logged once until indexing works again.
/// Index chunks between two checkpoints while lines keep coming.
const CHECKPOINT_EVERY: u32 = 64;

fn index(upkeep: &mut Upkeep, failing: &mut bool) {
    let mut chunks = 0u32;
    loop {
        let indexed = upkeep.index();
        chunks += 1;
        if matches!(indexed, Ok(0)) || chunks.is_multiple_of(CHECKPOINT_EVERY) {
            // The writer leaves checkpoints to this thread; a failed one is retried with the
            // next, and the writer's own backstop bounds the WAL meanwhile.
            if let Err(error) = upkeep.checkpoint() {
                debug!(%error, "a checkpoint of the store's WAL did not complete");
            }
        }
        match indexed {
            Ok(0) => return,
            Ok(_) if *failing => {
                *failing = false;
                info!("indexing for search works again");
            }
            Ok(_) => {}
            Err(error) => {
                if !std::mem::replace(failing, true) {
                    warn!(%error, "indexing new lines for search failed; searches scan them");
                }
                return;
            }
        }
    }
}

fn expire(upkeep: &mut Upkeep, keep: Keep) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_sub(keep.for_);
    let before_ms = i64::try_from(now.as_millis()).unwrap_or(i64::MAX);
    match upkeep.expire(before_ms, keep.lines) {
        Ok(0) => {}
        Ok(deleted) => info!(deleted, "expired old lines"),
        Err(error) => warn!(%error, "expiring old lines failed"),
    }
}
