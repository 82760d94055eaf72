//! The sequencer: the one thread everything said in any room passes through, so that each
//! line is numbered in its room, stored and only then delivered, in one order for everyone.
//!
//! Sessions hand it what they said ([`Said`], the lines one read brought for one room, as one
//! request), their arrival ([`Request::Join`]) and their entering a room ([`Request::Enter`]);
//! it takes whatever has queued up (group commit: one transaction for the lot, while the next
//! batch queues), writes it to the store, then hands it to a second thread that delivers it
//! through [`Rooms`] — while the first writes the next batch. So a line anyone received is a
//! line in the store, and fan-out never waits on the disk. A join or an enter is handed over
//! between two batches, which makes its history replay end exactly where its live lines begin
//! (none missing, none twice).
//!
//! If the store fails (a full disk), the sequencer says so in the log once, keeps delivering
//! from memory, and tries the disk again with every batch: the room never stops for its store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};

use super::rooms::{Entered, Full, Joined, MemberId, Rooms};
use crate::names::RoomName;
use crate::protocol::{Event, LOBBY, SaidKind, Scope, Scoped, ServerLine};
use crate::store::{NewLine, Reader, Store, StoredLine};

/// Requests queued towards the sequencer before sessions wait (TCP then pushes back on their
/// clients); each is one read's worth of lines or one join.
pub(super) const QUEUE: usize = 1024;

/// Most requests taken into one batch (one transaction, one pass over the room).
const BATCH: usize = 256;

/// What the sequencer is asked to do.
#[derive(Debug)]
pub enum Request {
    /// A member comes online: register it, queue its greeting and the lobby's recent
    /// history, tell the lobby. `None` once the server is shutting down.
    Join(oneshot::Sender<Option<Joined>>),
    /// A member enters a room: put it there, then queue the room's recent history.
    Enter {
        /// The member.
        id: MemberId,
        /// The room, as it asked for it.
        room: RoomName,
        /// How it went.
        reply: oneshot::Sender<Result<Entered, Full>>,
    },
    /// Lines a member said, to number, store and deliver.
    Said(Said),
}

/// The lines one member said in one go, in one room.
#[derive(Debug)]
pub struct Said {
    /// The member who said them, told if they cannot be sent.
    pub from: MemberId,
    /// Its nick when it said them.
    pub nick: String,
    /// The room they were said in.
    pub room: RoomName,
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
    /// What is kept (in a cluster, the engine keeps as much).
    pub keep: super::upkeep::Keep,
}

/// How far delivery has got in each room: the number of the last line delivered, by room key.
/// A query reads up to it, never past, so no answer holds a line its room has not been given.
/// A room with no entry has had nothing said since the server started: all of its stored
/// lines are older than this run.
#[derive(Debug, Default)]
pub struct Delivered(Mutex<HashMap<String, u64>>);

impl Delivered {
    /// The last line delivered in the room keyed `key`, if anything was said there in this run.
    pub fn get(&self, key: &str) -> Option<u64> {
        self.lock().get(key).copied()
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The sequencer's handle: where to send requests, how far delivery has got, and its thread.
#[derive(Debug)]
pub struct Sequencer {
    /// Requests in.
    pub requests: mpsc::Sender<Request>,
    /// How far delivery has got in each room.
    pub delivered: Arc<Delivered>,
    /// The thread; it ends once every sender is gone.
    pub thread: JoinHandle<()>,
    /// In a cluster, told once the node has caught up with what it must know before it takes
    /// members (the lobby, every ban); `None`: ready now.
    pub ready: Option<oneshot::Receiver<()>>,
}

/// Starts the sequencer for `rooms`, storing into `history` if there is one; with a
/// `cluster`, the cluster numbers and orders the lines ([`super::cluster_link`]), and its
/// operators' decisions reach this node's `identity`.
pub fn spawn(
    rooms: Arc<Rooms>,
    history: Option<History>,
    cluster: Option<(crate::cluster::Cluster, Arc<super::identity::Identity>)>,
) -> std::io::Result<Sequencer> {
    if let Some((cluster, identity)) = cluster {
        return super::cluster_link::spawn(rooms, history, cluster, identity);
    }
    let (requests, rx) = mpsc::channel(QUEUE);
    let delivered = Arc::new(Delivered::default());
    let replay = history.as_ref().map(Replay::of);
    let (handover, handed) = std::sync::mpsc::sync_channel(HANDOVER);
    let delivering = Delivering {
        rooms,
        replay,
        delivered: delivered.clone(),
    };
    let storing = Storing {
        history,
        next: HashMap::new(),
        delivered: delivered.clone(),
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
        ready: None,
    })
}

/// Batches handed from storing to delivery before storing waits: delivery lagging behind the
/// disk by more than this slows the sessions, as the request queue does.
const HANDOVER: usize = 64;

/// What storing hands to delivery, in the order it must happen.
enum Handover {
    /// Lines now stored: deliver them, then tell their senders.
    Said {
        /// One entry per request, with the key of its room: every member there gets it.
        entries: Vec<(String, Bytes)>,
        /// The number of the last line among them, per room key.
        last: HashMap<String, u64>,
        /// The senders to tell.
        delivered: Vec<oneshot::Sender<()>>,
    },
    /// A member comes online after everything handed over before it; the lobby's next line
    /// will have number `next`.
    Join {
        next: u64,
        reply: oneshot::Sender<Option<Joined>>,
    },
    /// A member enters a room after everything handed over before it; the room's next line
    /// will have number `next`.
    Enter {
        id: MemberId,
        room: RoomName,
        next: u64,
        reply: oneshot::Sender<Result<Entered, Full>>,
    },
}

/// The first stage, on the sequencer thread: numbers lines and stores them.
struct Storing {
    history: Option<History>,
    /// The number the next line in each room gets, by room key; read from the store the first
    /// time a room is used.
    next: HashMap<String, u64>,
    /// Where a room's last stored number is recorded as delivered when the room is first
    /// used, before any line of this run is stored there.
    delivered: Arc<Delivered>,
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
                // Everything before a join or an enter is delivered before it: the replay
                // ends where live lines begin.
                let handover = match request {
                    Request::Said(lines) => {
                        said.push(lines);
                        continue;
                    }
                    Request::Join(reply) => {
                        self.store(std::mem::take(&mut said));
                        Handover::Join {
                            next: *self.next_in(LOBBY),
                            reply,
                        }
                    }
                    Request::Enter { id, room, reply } => {
                        self.store(std::mem::take(&mut said));
                        Handover::Enter {
                            id,
                            next: *self.next_in(&room.key()),
                            room,
                            reply,
                        }
                    }
                };
                let _ = self.handover.send(handover);
            }
            self.store(said);
        }
    }

    /// The number the next line in the room keyed `key` gets.
    fn next_in(&mut self, key: &str) -> &mut u64 {
        if !self.next.contains_key(key) {
            let last = match &self.history {
                Some(history) => history.store.last_seq(key).unwrap_or_else(|error| {
                    warn!(%error, room = key, "cannot read the last line number; numbering from 1");
                    0
                }),
                None => 0,
            };
            self.delivered.lock().entry(key.to_owned()).or_insert(last);
            self.next.insert(key.to_owned(), last + 1);
        }
        self.next.entry(key.to_owned()).or_default()
    }

    /// Numbers and stores `said`, then hands it to delivery.
    fn store(&mut self, said: Vec<Said>) {
        if said.is_empty() {
            return;
        }
        let at_ms = now_ms();
        let mut last = HashMap::new();
        let keys: Vec<String> = said.iter().map(|one| one.room.key()).collect();
        let firsts: Vec<u64> = said
            .iter()
            .zip(&keys)
            .map(|(one, key)| {
                let next = self.next_in(key);
                let first = *next;
                *next += one.lines.len() as u64;
                last.insert(key.clone(), *next - 1);
                first
            })
            .collect();
        if let Some(history) = &mut self.history {
            let rows: Vec<NewLine<'_>> = said
                .iter()
                .zip(&keys)
                .zip(&firsts)
                .flat_map(|((one, key), &first)| {
                    one.lines
                        .iter()
                        .zip(first..)
                        .map(move |((kind, text), seq)| NewLine {
                            room: key,
                            seq,
                            at_ms,
                            kind: *kind,
                            nick: &one.nick,
                            text,
                        })
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
        for (one, key) in said.into_iter().zip(keys) {
            let mut bytes = BytesMut::new();
            let scope = Scope::room(one.room.as_str());
            for (kind, text) in &one.lines {
                Scoped {
                    scope,
                    line: said_line(*kind, &one.nick, text),
                }
                .write_to(&mut bytes);
            }
            entries.push((key, bytes.freeze()));
            delivered.push(one.delivered);
        }
        let _ = self.handover.send(Handover::Said {
            entries,
            last,
            delivered,
        });
    }
}

/// What a joiner is replayed, and where it is read from.
pub(super) struct Replay {
    path: std::path::PathBuf,
    /// Lines replayed (0: none).
    lines: usize,
    /// Most bytes a replay takes.
    bytes: usize,
    /// Opened on first use.
    reader: Option<Reader>,
}

impl Replay {
    /// The replay `history` asks for, read from its store.
    pub(super) fn of(history: &History) -> Self {
        Self {
            path: history.store.path().to_owned(),
            lines: history.replay,
            bytes: history.replay_bytes,
            reader: None,
        }
    }

    /// The history block a member entering `room` gets: its last lines before number `next`,
    /// between rules.
    pub(super) fn block(&mut self, room: &RoomName, next: u64) -> Vec<Bytes> {
        if self.lines == 0 {
            return Vec::new();
        }
        if self.reader.is_none() {
            match Reader::open(&self.path) {
                Ok(reader) => self.reader = Some(reader),
                Err(error) => warn!(%error, "cannot open a reader on the store"),
            }
        }
        let lines = match &self.reader {
            Some(reader) => reader.last(&room.key(), next - 1, self.lines),
            None => Ok(Vec::new()),
        };
        let lines = lines.unwrap_or_else(|error| {
            warn!(%error, %room, "cannot read history for a join; it gets none");
            Vec::new()
        });
        replay_block(&lines, room, next, self.bytes)
    }
}

/// The second stage, on a thread of its own: delivers what is stored, and lets members join
/// and enter rooms between two deliveries. While it delivers one batch, storing writes the
/// next.
struct Delivering {
    rooms: Arc<Rooms>,
    replay: Option<Replay>,
    delivered: Arc<Delivered>,
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
                    self.rooms.broadcast(entries);
                    self.delivered.lock().extend(last);
                    for sender in delivered {
                        let _ = sender.send(());
                    }
                }
                Handover::Join { next, reply } => {
                    let lobby = RoomName::lobby();
                    let replay = self.replay_block(&lobby, next);
                    let _ = reply.send(self.rooms.join(&replay));
                }
                Handover::Enter {
                    id,
                    room,
                    next,
                    reply,
                } => {
                    let entered = self.rooms.enter(id, &room, None);
                    if let Ok(Entered::Joined(name)) = &entered {
                        // Only this thread delivers said lines: none can come between.
                        for block in self.replay_block(name, next) {
                            self.rooms.send_to(id, block);
                        }
                    }
                    let _ = reply.send(entered);
                }
            }
        }
    }

    /// The history block a member entering `room` gets. Empty without a store.
    fn replay_block(&mut self, room: &RoomName, next: u64) -> Vec<Bytes> {
        self.replay
            .as_mut()
            .map_or_else(Vec::new, |replay| replay.block(room, next))
    }
}

/// How long writes must succeed, after a failure, before the store counts as recovered. A
/// nearly full disk takes some small batches and refuses bigger ones: without this, each
/// flip would be logged.
const RECOVERED_AFTER: Duration = Duration::from_secs(60);

/// Whether the store's writes fail: one report per episode, however the writes flip within it.
#[derive(Debug, Default)]
pub(super) struct Health {
    /// The last failure, while the episode lasts.
    failed_at: Option<Instant>,
}

impl Health {
    /// A write failed; whether this starts an episode (to be reported).
    pub(super) fn failed(&mut self, now: Instant) -> bool {
        self.failed_at.replace(now).is_none()
    }

    /// A write succeeded; whether this ends an episode (to be reported).
    pub(super) fn recovered(&mut self, now: Instant) -> bool {
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
pub(super) fn said_line<'a>(kind: SaidKind, nick: &'a str, text: &'a str) -> ServerLine<'a> {
    match kind {
        SaidKind::Message => ServerLine::Message { nick, text },
        SaidKind::Action => ServerLine::Action { nick, text },
    }
}

/// `lines` of `room` as a history block: the opening rule (which says which number comes
/// next), each line with its time and number, the closing rule (when there were lines); each
/// named by the room unless it is the lobby. One entry, so it reaches the member's outbox
/// whole; if the lines take more than `max_bytes`, only the newest that fit are kept.
pub fn replay_block(
    lines: &[StoredLine],
    room: &RoomName,
    next: u64,
    max_bytes: usize,
) -> Vec<Bytes> {
    let scope = Scope::room(room.as_str());
    let mut kept: Vec<String> = Vec::new();
    let mut bytes = 0;
    for line in lines.iter().rev() {
        let text = Scoped {
            scope,
            line: replayed(line),
        }
        .to_string();
        bytes += text.len() + 1;
        if bytes > max_bytes {
            break;
        }
        kept.push(text);
    }
    let event = |event| Scoped {
        scope,
        line: ServerLine::Event(event),
    };
    let mut block = BytesMut::new();
    event(Event::History {
        room: room.as_str(),
        count: kept.len(),
        next,
    })
    .write_to(&mut block);
    for text in kept.iter().rev() {
        block.extend_from_slice(text.as_bytes());
        block.extend_from_slice(b"\n");
    }
    if !kept.is_empty() {
        event(Event::HistoryEnd {
            room: room.as_str(),
        })
        .write_to(&mut block);
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

pub(super) fn now_ms() -> i64 {
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
