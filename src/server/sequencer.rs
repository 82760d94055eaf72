//! The sequencer: the one thread everything said in the room passes through, so that each
//! line is numbered, stored and only then delivered, in one order for everyone.
//!
//! Sessions hand it what they said ([`Said`], the lines one read brought, as one request) and
//! joins ([`Request::Join`]); it takes whatever has queued up (group commit: one transaction
//! for the lot, while the next batch queues), writes it to the store, then hands it to a second
//! thread that delivers it through the room — while the first writes the next batch. So a line
//! anyone received is a line in the store, and the room's fan-out never waits on the disk. A
//! join is handed over between two batches, which makes its history replay end exactly where
//! its live lines begin (none missing, none twice).
//!
//! If the store fails (a full disk), the sequencer says so in the log once, keeps delivering
//! from memory, and tries the disk again with every batch: the room never stops for its store.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};

use super::room::{Joined, Room};
use crate::protocol::{Event, LOBBY, SaidKind, ServerLine};
use crate::store::{NewLine, Reader, Store, StoredLine};

/// Requests queued towards the sequencer before sessions wait (TCP then pushes back on their
/// clients); each is one read's worth of lines or one join.
const QUEUE: usize = 1024;

/// Most requests taken into one batch (one transaction, one pass over the room).
const BATCH: usize = 256;

/// What the sequencer is asked to do.
#[derive(Debug)]
pub enum Request {
    /// A member joins: register it, queue its greeting and the room's recent history, tell
    /// the others. `None` once the server is shutting down.
    Join(oneshot::Sender<Option<Joined>>),
    /// Lines a member said, to number, store and deliver.
    Said(Said),
}

/// The lines one member said in one go.
#[derive(Debug)]
pub struct Said {
    /// Its nick when it said them.
    pub nick: String,
    /// Each line: message or action, and its sanitised text.
    pub lines: Vec<(SaidKind, String)>,
    /// Told once the lines are delivered, so the member's next reply comes after them.
    pub delivered: oneshot::Sender<()>,
}

/// The room's history as the sequencer keeps it.
#[derive(Debug)]
pub struct History {
    /// Where lines are written.
    pub store: Store,
    /// Lines replayed to a member when it joins (0: none).
    pub replay: usize,
    /// Most bytes a replay may take (the newest lines are kept): it must fit the member's
    /// outbox with room to spare, or the member would be dropped as it joins.
    pub replay_bytes: usize,
    /// Told after each commit that there are lines to index for search.
    pub indexer: Option<std::sync::mpsc::SyncSender<()>>,
}

/// The sequencer's handle: where to send requests, how far delivery has got, and its thread.
#[derive(Debug)]
pub struct Sequencer {
    /// Requests in.
    pub requests: mpsc::Sender<Request>,
    /// The number of the last line delivered in the lobby: what a query may read up to.
    pub delivered: Arc<AtomicU64>,
    /// The thread; it ends once every sender is gone.
    pub thread: JoinHandle<()>,
}

/// Starts the sequencer for `room`, storing into `history` if there is one.
pub fn spawn(room: Arc<Room>, history: Option<History>) -> std::io::Result<Sequencer> {
    let (requests, rx) = mpsc::channel(QUEUE);
    let next = match &history {
        Some(history) => history.store.last_seq(LOBBY).unwrap_or_else(|error| {
            warn!(%error, "cannot read the last line number; numbering from 1");
            0
        }),
        None => 0,
    } + 1;
    let delivered = Arc::new(AtomicU64::new(next - 1));
    let replay = history.as_ref().map(|history| Replay {
        path: history.store.path().to_owned(),
        lines: history.replay,
        bytes: history.replay_bytes,
        reader: None,
    });
    let (handover, handed) = std::sync::mpsc::sync_channel(HANDOVER);
    let delivering = Delivering {
        room,
        replay,
        next,
        delivered: delivered.clone(),
    };
    let storing = Storing {
        history,
        next,
        health: Health::default(),
        handover,
    };
    let thread = std::thread::Builder::new()
        .name("sequencer".into())
        .spawn(move || {
            let delivery = std::thread::Builder::new()
                .name("delivery".into())
                .spawn(move || delivering.run(&handed));
            match delivery {
                Ok(delivery) => {
                    storing.run(rx);
                    // The storing side is done and has dropped its end: delivery finishes
                    // what was handed over, then stops.
                    let _ = delivery.join();
                }
                Err(error) => error!(%error, "cannot start the delivery thread"),
            }
            info!("sequencer stopped");
        })?;
    Ok(Sequencer {
        requests,
        delivered,
        thread,
    })
}

/// Batches handed from storing to delivery before storing waits: delivery lagging behind the
/// disk by more than this slows the sessions, as the request queue does.
const HANDOVER: usize = 64;

/// What storing hands to delivery, in the order it must happen.
enum Handover {
    /// Lines now stored: deliver them, then tell their senders.
    Said {
        /// One entry per request, every member gets each.
        entries: Vec<Bytes>,
        /// The number of the last line among them.
        last: u64,
        /// The senders to tell.
        delivered: Vec<oneshot::Sender<()>>,
    },
    /// A member joins after everything handed over before it.
    Join(oneshot::Sender<Option<Joined>>),
}

/// The first stage, on the sequencer thread: numbers lines and stores them.
struct Storing {
    history: Option<History>,
    /// The number the next line in the lobby gets.
    next: u64,
    /// Whether writes to the store fail, for the log.
    health: Health,
    handover: std::sync::mpsc::SyncSender<Handover>,
}

impl Storing {
    fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        let mut batch = Vec::with_capacity(BATCH);
        while let Some(first) = rx.blocking_recv() {
            batch.push(first);
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            let mut said = Vec::new();
            for request in batch.drain(..) {
                match request {
                    Request::Said(lines) => said.push(lines),
                    Request::Join(reply) => {
                        // Everything before the join is delivered before it: the replay ends
                        // where live lines begin.
                        self.store(std::mem::take(&mut said));
                        let _ = self.handover.send(Handover::Join(reply));
                    }
                }
            }
            self.store(said);
        }
    }

    /// Numbers and stores `said`, then hands it to delivery.
    fn store(&mut self, said: Vec<Said>) {
        if said.is_empty() {
            return;
        }
        let at_ms = now_ms();
        let first = self.next;
        let count: usize = said.iter().map(|s| s.lines.len()).sum();
        self.next += count as u64;
        if let Some(history) = &mut self.history {
            let rows: Vec<NewLine<'_>> = said
                .iter()
                .flat_map(|one| one.lines.iter().map(move |line| (one, line)))
                .zip(first..)
                .map(|((one, (kind, text)), seq)| NewLine {
                    room: LOBBY,
                    seq,
                    at_ms,
                    kind: *kind,
                    nick: &one.nick,
                    text,
                })
                .collect();
            let stored = history.store.append(&rows);
            if stored.is_ok()
                && let Some(indexer) = &history.indexer
            {
                // Full: a nudge is pending already, and it covers these lines too.
                let _ = indexer.try_send(());
            }
            let now = Instant::now();
            match stored {
                Ok(()) => {
                    if self.health.recovered(now) {
                        info!("the store accepts lines again");
                    }
                }
                Err(error) => {
                    if self.health.failed(now) {
                        error!(
                            %error,
                            "cannot write to the store; lines are delivered but not kept until it recovers"
                        );
                    }
                }
            }
        }
        let mut entries = Vec::with_capacity(said.len());
        let mut delivered = Vec::with_capacity(said.len());
        for one in said {
            let mut bytes = BytesMut::new();
            for (kind, text) in &one.lines {
                said_line(*kind, &one.nick, text).write_to(&mut bytes);
            }
            entries.push(bytes.freeze());
            delivered.push(one.delivered);
        }
        let last = self.next - 1;
        let _ = self.handover.send(Handover::Said {
            entries,
            last,
            delivered,
        });
    }
}

/// What a joiner is replayed, and where it is read from.
struct Replay {
    path: std::path::PathBuf,
    /// Lines replayed (0: none).
    lines: usize,
    /// Most bytes a replay takes.
    bytes: usize,
    /// Opened on first use.
    reader: Option<Reader>,
}

/// The second stage, on a thread of its own: delivers what is stored, and lets members join
/// between two deliveries. While it delivers one batch, storing writes the next.
struct Delivering {
    room: Arc<Room>,
    replay: Option<Replay>,
    /// The number the next line delivered will have.
    next: u64,
    delivered: Arc<AtomicU64>,
}

impl Delivering {
    fn run(mut self, handed: &std::sync::mpsc::Receiver<Handover>) {
        for handover in handed {
            match handover {
                Handover::Said {
                    entries,
                    last,
                    delivered,
                } => {
                    self.room.broadcast_each(entries);
                    self.next = last + 1;
                    self.delivered.store(last, Ordering::Release);
                    for sender in delivered {
                        let _ = sender.send(());
                    }
                }
                Handover::Join(reply) => {
                    let replay = self.replay_block();
                    let _ = reply.send(self.room.join(&replay));
                }
            }
        }
    }

    /// The history block a joining member gets: the lobby's last lines up to the last one
    /// delivered, between rules. Empty without a store.
    fn replay_block(&mut self) -> Vec<Bytes> {
        let Some(replay) = &mut self.replay else {
            return Vec::new();
        };
        if replay.lines == 0 {
            return Vec::new();
        }
        if replay.reader.is_none() {
            match Reader::open(&replay.path) {
                Ok(reader) => replay.reader = Some(reader),
                Err(error) => warn!(%error, "cannot open a reader on the store"),
            }
        }
        let lines = match &replay.reader {
            Some(reader) => reader.last(LOBBY, self.next - 1, replay.lines),
            None => Ok(Vec::new()),
        };
        let lines = lines.unwrap_or_else(|error| {
            warn!(%error, "cannot read history for a join; it gets none");
            Vec::new()
        });
        replay_block(&lines, self.next, replay.bytes)
    }
}

/// How long writes must succeed, after a failure, before the store counts as recovered. A
/// nearly full disk takes some small batches and refuses bigger ones: without this, each
/// flip would be logged.
const RECOVERED_AFTER: Duration = Duration::from_secs(60);

/// Whether the store's writes fail: one report per episode, however the writes flip within it.
#[derive(Debug, Default)]
struct Health {
    /// The last failure, while the episode lasts.
    failed_at: Option<Instant>,
}

impl Health {
    /// A write failed; whether this starts an episode (to be reported).
    fn failed(&mut self, now: Instant) -> bool {
        self.failed_at.replace(now).is_none()
    }

    /// A write succeeded; whether this ends an episode (to be reported).
    fn recovered(&mut self, now: Instant) -> bool {
        let over = self
            .failed_at
            .is_some_and(|at| now.duration_since(at) >= RECOVERED_AFTER);
        if over {
            self.failed_at = None;
        }
        over
    }
}

/// The protocol line for one said line.
fn said_line<'a>(kind: SaidKind, nick: &'a str, text: &'a str) -> ServerLine<'a> {
    match kind {
        SaidKind::Message => ServerLine::Message { nick, text },
        SaidKind::Action => ServerLine::Action { nick, text },
    }
}

/// `lines` as a history block: the opening rule (which says which number comes next), each
/// line with its time and number, the closing rule (when there were lines). One entry, so it reaches the member's outbox whole; if
/// the lines take more than `max_bytes`, only the newest that fit are kept.
pub fn replay_block(lines: &[StoredLine], next: u64, max_bytes: usize) -> Vec<Bytes> {
    let mut kept: Vec<String> = Vec::new();
    let mut bytes = 0;
    for line in lines.iter().rev() {
        let text = replayed(line).to_string();
        bytes += text.len() + 1;
        if bytes > max_bytes {
            break;
        }
        kept.push(text);
    }
    let mut block = BytesMut::new();
    ServerLine::Event(Event::History {
        room: LOBBY,
        count: kept.len(),
        next,
    })
    .write_to(&mut block);
    for text in kept.iter().rev() {
        block.extend_from_slice(text.as_bytes());
        block.extend_from_slice(b"\n");
    }
    if !kept.is_empty() {
        ServerLine::Event(Event::HistoryEnd { room: LOBBY }).write_to(&mut block);
    }
    vec![block.freeze()]
}

/// A stored line as the protocol replays it.
pub fn replayed(line: &StoredLine) -> ServerLine<'_> {
    ServerLine::Replayed {
        at: line.at_ms.div_euclid(1000),
        seq: line.seq,
        kind: line.kind,
        nick: &line.nick,
        text: &line.text,
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flapping_store_is_reported_once_per_episode() {
        let mut health = Health::default();
        let t0 = Instant::now();
        assert!(health.failed(t0), "the first failure is reported");
        assert!(!health.recovered(t0 + Duration::from_secs(1)));
        assert!(!health.failed(t0 + Duration::from_secs(2)), "a flip is not");
        assert!(!health.recovered(t0 + Duration::from_secs(61)));
        assert!(
            health.recovered(t0 + Duration::from_secs(62)),
            "a minute without failing"
        );
        assert!(health.failed(t0 + Duration::from_secs(63)), "a new episode");
    }
}
