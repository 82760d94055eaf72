//! The sequencer in cluster mode (`--cluster`): the cluster's log numbers and orders every
//! room's lines, and each node delivers only what it reads back from the log, so every member
//! of a room sees the same lines in the same order, whatever node each is on.
//!
//! Three parts, each owning one thing:
//!
//! - the **router** (a tokio task) takes the sessions' requests: what they said goes to the
//!   appender, joins and enters to the delivery thread; it also forwards every line the
//!   node's [`Follower`] reads, so the delivery thread has one queue in one order;
//! - the **appender** (a tokio task) appends what members said to the log (group commit: what
//!   queued up meanwhile, one script per room), then tells the delivery thread which number
//!   each sender waits for. When the engine does not confirm, the member is told its lines may
//!   not have been sent, and nothing is delivered from memory: a line without a number in the
//!   log would break the one order and the gap fill;
//! - the **delivery thread** (a std thread, like the single node's) writes the lines it is
//!   given to the node's store, which is its copy of the log (the source of `/history`,
//!   `/search` and replays), then delivers them through [`Rooms`], then tells the senders. A
//!   join or an enter is handled between two deliveries, so its replay ends exactly where its
//!   live lines begin. A room is followed from its first local member's enter (caught up from
//!   the store's last line, at most [`CATCH_UP_MOST`] lines) until a line finds it empty here.
//!
//! While the engine is away: nothing said is delivered (the appender refuses it), a room not
//! followed yet cannot be entered, members already in rooms stay connected, and the follower
//! catches up from its cursors when the engine returns, so everyone gets what was said
//! meanwhile, once, in order.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};

use super::rooms::{Entered, Full, Joined, MemberId, Rooms};
use super::sequencer::{Delivered, Health, History, Replay, Request, Said, Sequencer, said_line};
use crate::cluster::{Cluster, Followed, Follows, LineId, LogLine};
use crate::names::RoomName;
use crate::protocol::{LOBBY, Refusal, Scope, Scoped, ServerLine};
use crate::store::NewLine;

/// Requests and lines queued towards the delivery thread before their senders wait.
const QUEUE: usize = 1024;

/// Most inputs the delivery thread takes in one go (one transaction, one pass over the rooms).
const BATCH: usize = 512;

/// Most said-requests appended in one go.
const APPEND_BATCH: usize = 256;

/// Lines the follower reads ahead of the delivery thread.
const FOLLOW_AHEAD: usize = 1024;

/// Most lines a room is caught up with when a node starts following it: a room with more new
/// lines than this since the node last followed it keeps a gap in this node's copy (replays
/// and `/history` here start after it), rather than stalling every join behind a long read.
pub const CATCH_UP_MOST: u64 = 10_000;

/// Lines read from the engine per catch-up request.
const CATCH_UP_PAGE: usize = 1000;

/// Longest a catch-up may take before the enter it serves is refused (every join and
/// delivery on this node waits for it meanwhile).
const CATCH_UP_WITHIN: Duration = Duration::from_secs(2);

/// What the delivery thread is given, in the order it must happen.
enum Input {
    /// A line of a followed room, read back from the log.
    Line(Followed),
    /// A member comes online.
    Join(oneshot::Sender<Option<Joined>>),
    /// A member enters a room.
    Enter {
        id: MemberId,
        room: RoomName,
        reply: oneshot::Sender<Result<Entered, Full>>,
    },
    /// A member's lines are in the log, the last under `last`: tell it once they are
    /// delivered here.
    Appended {
        room: String,
        last: LineId,
        delivered: oneshot::Sender<()>,
    },
}

/// Starts the cluster-mode sequencer for `rooms`, keeping this node's copy of the log in
/// `history` if there is one.
pub fn spawn(
    rooms: Arc<Rooms>,
    history: Option<History>,
    cluster: Cluster,
) -> std::io::Result<Sequencer> {
    let (requests, incoming) = mpsc::channel(super::sequencer::QUEUE);
    let (input, inputs) = mpsc::channel(QUEUE);
    let (to_append, said) = mpsc::channel(super::sequencer::QUEUE);
    let delivered = Arc::new(Delivered::default());
    let follower = cluster.follower(FOLLOW_AHEAD);
    let delivering = Delivering {
        rooms: rooms.clone(),
        replay: history.as_ref().map(Replay::of),
        history,
        delivered: delivered.clone(),
        cluster: cluster.clone(),
        follows: follower.follows(),
        runtime: tokio::runtime::Handle::current(),
        followed: HashMap::new(),
        waiting: HashMap::new(),
        health: Health::default(),
    };
    let thread = std::thread::Builder::new()
        .name("cluster delivery".into())
        .spawn(move || delivering.run(inputs))?;
    tokio::spawn(route(incoming, follower, to_append, input.clone()));
    tokio::spawn(append(said, cluster, rooms, input));
    Ok(Sequencer {
        requests,
        delivered,
        thread,
    })
}

/// The router: sessions' requests and the follower's lines, into the appender and the
/// delivery thread. Ends once every session and the server have let go of the requests; the
/// follower stops with it.
async fn route(
    mut incoming: mpsc::Receiver<Request>,
    mut follower: crate::cluster::Follower,
    to_append: mpsc::Sender<Said>,
    input: mpsc::Sender<Input>,
) {
    loop {
        let forwarded = tokio::select! {
            request = incoming.recv() => match request {
                None => return,
                Some(Request::Said(said)) => {
                    // The appender gone means the server is stopping.
                    let _ = to_append.send(said).await;
                    continue;
                }
                Some(Request::Join(reply)) => Input::Join(reply),
                Some(Request::Enter { id, room, reply }) => Input::Enter { id, room, reply },
            },
            Some(line) = follower.next() => Input::Line(line),
        };
        if input.send(forwarded).await.is_err() {
            return;
        }
    }
}

/// The appender: appends what members said to the log, what queued up meanwhile at once.
async fn append(
    mut said: mpsc::Receiver<Said>,
    cluster: Cluster,
    rooms: Arc<Rooms>,
    input: mpsc::Sender<Input>,
) {
    let node = cluster.me().node.to_string();
    let mut batch = Vec::with_capacity(APPEND_BATCH);
    let mut failing = false;
    while said.recv_many(&mut batch, APPEND_BATCH).await > 0 {
        // One script per room, in the order said; each member's requests stay in its order.
        let mut by_room: Vec<(RoomName, Vec<Said>)> = Vec::new();
        for one in batch.drain(..) {
            match by_room.iter_mut().find(|(room, _)| *room == one.room) {
                Some((_, saids)) => saids.push(one),
                None => by_room.push((one.room.clone(), vec![one])),
            }
        }
        let at_ms = super::sequencer::now_ms();
        let appends = by_room.iter().map(|(room, saids)| {
            let lines: Vec<LogLine> = saids
                .iter()
                .flat_map(|one| {
                    one.lines.iter().map(|(kind, text)| LogLine {
                        nick: one.nick.clone(),
                        kind: *kind,
                        text: text.clone(),
                        at_ms,
                        node: node.clone(),
                    })
                })
                .collect();
            let cluster = &cluster;
            async move { cluster.append_all(room, &lines).await }
        });
        let results = futures_util::future::join_all(appends).await;
        for ((room, saids), result) in by_room.into_iter().zip(results) {
            match result {
                Ok(ids) => {
                    if std::mem::replace(&mut failing, false) {
                        info!("the cluster's engine takes lines again");
                    }
                    let mut ids = ids.into_iter();
                    for one in saids {
                        let Some(last) = ids.by_ref().take(one.lines.len()).last() else {
                            continue;
                        };
                        let appended = Input::Appended {
                            room: room.key(),
                            last,
                            delivered: one.delivered,
                        };
                        if input.send(appended).await.is_err() {
                            return;
                        }
                    }
                }
                Err(error) => {
                    if !std::mem::replace(&mut failing, true) {
                        error!(
                            "cannot append to the cluster's log: {error:#}; members are told \
                             their lines may not have been sent"
                        );
                    }
                    for one in saids {
                        let refusal = Scoped {
                            scope: Scope::room(room.as_str()),
                            line: ServerLine::from(Refusal::NotConfirmed {
                                lines: one.lines.len(),
                            }),
                        };
                        rooms.send_to(one.from, refusal.to_bytes());
                        // Dropping `delivered` lets the session go on: nothing will come.
                    }
                }
            }
        }
    }
}

/// The delivery thread's state.
struct Delivering {
    rooms: Arc<Rooms>,
    /// This node's copy of the log, if it keeps one.
    history: Option<History>,
    replay: Option<Replay>,
    delivered: Arc<Delivered>,
    cluster: Cluster,
    follows: Follows,
    /// For the engine calls of a catch-up, made from this thread.
    runtime: tokio::runtime::Handle,
    /// Each room followed, by key: its name here and the last line delivered here.
    followed: HashMap<String, (RoomName, LineId)>,
    /// Senders waiting for their last line to be delivered, by room key.
    waiting: HashMap<String, Vec<(LineId, oneshot::Sender<()>)>>,
    /// Whether writes to this node's copy fail, for the log.
    health: Health,
}

impl Delivering {
    fn run(mut self, mut inputs: mpsc::Receiver<Input>) {
        let lobby = RoomName::lobby();
        if let Err(error) = self.follow(&lobby) {
            // The follower catches up once the engine answers; members who join meanwhile
            // get those lines as they come.
            warn!("cannot catch up with #lobby: {error:#}; following it from this node's copy");
            let after = self.stored_last(LOBBY);
            self.start_following(&lobby, after);
        }
        let mut batch = Vec::with_capacity(BATCH);
        let mut lines = Vec::new();
        while inputs.blocking_recv_many(&mut batch, BATCH) > 0 {
            for input in batch.drain(..) {
                match input {
                    Input::Line(line) => {
                        lines.push(line);
                        continue;
                    }
                    // Everything read before it is delivered before it.
                    Input::Join(reply) => {
                        self.deliver(std::mem::take(&mut lines));
                        let next = self.last_delivered(LOBBY).0 + 1;
                        let replay = self.replay_block(&lobby, next);
                        let _ = reply.send(self.rooms.join(&replay));
                    }
                    Input::Enter { id, room, reply } => {
                        self.deliver(std::mem::take(&mut lines));
                        let _ = reply.send(self.enter(id, &room));
                    }
                    Input::Appended {
                        room,
                        last,
                        delivered,
                    } => {
                        self.deliver(std::mem::take(&mut lines));
                        match self.followed.get(&room) {
                            Some((_, done)) if *done < last => {
                                self.waiting
                                    .entry(room)
                                    .or_default()
                                    .push((last, delivered));
                            }
                            // Delivered already, or the room is not followed here any more
                            // (its members left): nothing to wait for.
                            _ => {
                                let _ = delivered.send(());
                            }
                        }
                    }
                }
            }
            self.deliver(std::mem::take(&mut lines));
        }
        info!("cluster delivery stopped");
    }

    /// The last line delivered here in the room keyed `key`.
    fn last_delivered(&self, key: &str) -> LineId {
        self.followed
            .get(key)
            .map_or(LineId::START, |(_, last)| *last)
    }

    /// The last line of the room keyed `key` in this node's copy (0: none, or no copy).
    fn stored_last(&self, key: &str) -> LineId {
        let Some(history) = &self.history else {
            return LineId::START;
        };
        LineId(history.store.last_seq(key).unwrap_or_else(|error| {
            warn!(%error, room = key, "cannot read this node's last line number");
            0
        }))
    }

    /// Member `id` enters `room`: follows it first if nobody here is in it yet.
    fn enter(&mut self, id: MemberId, room: &RoomName) -> Result<Entered, Full> {
        let key = room.key();
        if !self.followed.contains_key(&key) {
            self.forget_empty_rooms();
            if let Err(error) = self.follow(room) {
                warn!("cannot catch up with {room}: {error:#}; refusing to enter it for now");
                return Err(Full::Unavailable);
            }
        }
        let entered = self.rooms.enter(id, room);
        if let Ok(Entered::Joined(name)) = &entered {
            if let Some((shown, _)) = self.followed.get_mut(&key) {
                shown.clone_from(name);
            }
            let next = self.last_delivered(&key).0 + 1;
            // Only this thread delivers said lines: none can come between.
            for block in self.replay_block(name, next) {
                self.rooms.send_to(id, block);
            }
        }
        entered
    }

    /// Starts following `room`: first brings this node's copy up to the log (at most
    /// [`CATCH_UP_MOST`] lines), then follows it from there.
    fn follow(&mut self, room: &RoomName) -> anyhow::Result<()> {
        let key = room.key();
        let stored = self.stored_last(&key);
        let cluster = self.cluster.clone();
        let caught_up = self.runtime.block_on(async {
            tokio::time::timeout(CATCH_UP_WITHIN, catch_up(&cluster, room, stored))
                .await
                .map_err(|_| anyhow::anyhow!("the engine did not answer in {CATCH_UP_WITHIN:?}"))?
        })?;
        let after = caught_up.last().map_or(stored, |line| line.id).max(stored);
        self.keep(&caught_up);
        self.start_following(room, after);
        Ok(())
    }

    fn start_following(&mut self, room: &RoomName, after: LineId) {
        let key = room.key();
        self.delivered.lock().insert(key.clone(), after.0);
        self.followed.insert(key, (room.clone(), after));
        self.follows.follow(room, after);
    }

    /// Stops following the rooms nobody here is in any more; their waiting senders are told.
    fn forget_empty_rooms(&mut self) {
        let empty: Vec<String> = self
            .followed
            .keys()
            .filter(|key| key.as_str() != LOBBY && !self.rooms.exists(key))
            .cloned()
            .collect();
        for key in empty {
            if let Some((room, _)) = self.followed.remove(&key) {
                self.follows.unfollow(&room);
            }
            for (_, sender) in self.waiting.remove(&key).unwrap_or_default() {
                let _ = sender.send(());
            }
        }
    }

    /// Keeps `lines` in this node's copy, then delivers them to the members here, then tells
    /// the senders waiting for them.
    fn deliver(&mut self, lines: Vec<Followed>) {
        if lines.is_empty() {
            return;
        }
        self.keep(&lines);
        // Consecutive lines of one room are one entry: one queue slot per member.
        let mut entries: Vec<(String, BytesMut)> = Vec::new();
        let mut stray = false;
        for line in &lines {
            let Some((room, last)) = self.followed.get_mut(&line.room) else {
                continue; // unfollowed meanwhile: read before the follower knew
            };
            if line.id <= *last {
                continue; // caught up with already
            }
            *last = line.id;
            stray |= !self.rooms.exists(&line.room);
            let scoped = Scoped {
                scope: Scope::room(room.as_str()),
                line: said_line(line.line.kind, &line.line.nick, &line.line.text),
            };
            match entries.last_mut() {
                Some((key, bytes)) if *key == line.room => scoped.write_to(bytes),
                _ => {
                    let mut bytes = BytesMut::new();
                    scoped.write_to(&mut bytes);
                    entries.push((line.room.clone(), bytes));
                }
            }
        }
        self.rooms.broadcast(
            entries
                .into_iter()
                .map(|(key, bytes)| (key, bytes.freeze()))
                .collect(),
        );
        let mut touched: Vec<&str> = lines.iter().map(|line| line.room.as_str()).collect();
        touched.dedup();
        let mut delivered = self.delivered.lock();
        for key in &touched {
            if let Some((_, last)) = self.followed.get(*key) {
                delivered.insert((*key).to_owned(), last.0);
            }
        }
        drop(delivered);
        for key in touched {
            let done = self.last_delivered(key);
            if let Some(senders) = self.waiting.get_mut(key) {
                for (_, sender) in senders.extract_if(.., |(last, _)| *last <= done) {
                    let _ = sender.send(());
                }
                if senders.is_empty() {
                    self.waiting.remove(key);
                }
            }
        }
        if stray {
            self.forget_empty_rooms();
        }
    }

    /// Writes `lines` to this node's copy of the log, if it keeps one.
    fn keep(&mut self, lines: &[Followed]) {
        let Some(history) = &mut self.history else {
            return;
        };
        let rows: Vec<NewLine<'_>> = lines
            .iter()
            .map(|line| NewLine {
                room: &line.room,
                seq: line.id.0,
                at_ms: line.line.at_ms,
                kind: line.line.kind,
                nick: &line.line.nick,
                text: &line.line.text,
            })
            .collect();
        let stored = history.store.append(&rows);
        let now = Instant::now();
        match stored {
            Ok(()) => {
                if let Some(indexer) = &history.indexer {
                    // Full: a nudge is pending already, and it covers these lines too.
                    let _ = indexer.try_send(());
                }
                if self.health.recovered(now) {
                    info!("this node's copy of the log accepts lines again");
                }
            }
            Err(error) => {
                if self.health.failed(now) {
                    error!(
                        %error,
                        "cannot write to this node's copy of the log; lines are delivered, and \
                         /history here misses them until it recovers"
                    );
                }
            }
        }
    }

    /// The history block a member entering `room` gets. Empty without a copy.
    fn replay_block(&mut self, room: &RoomName, next: u64) -> Vec<Bytes> {
        self.replay
            .as_mut()
            .map_or_else(Vec::new, |replay| replay.block(room, next))
    }
}

/// The lines of `room` after `stored` (this node's last), at most the newest
/// [`CATCH_UP_MOST`], read from the log in pages.
async fn catch_up(
    cluster: &Cluster,
    room: &RoomName,
    stored: LineId,
) -> anyhow::Result<Vec<Followed>> {
    let last = cluster.last_id(room).await?;
    if last < stored {
        error!(
            "the cluster's {room} ends at line {last} but this node's copy at {stored}: the \
             engine lost lines (restored from an older file?); lines {}..={stored} are only \
             on this node",
            last.0 + 1
        );
    }
    let mut after = LineId(stored.0.max(last.0.saturating_sub(CATCH_UP_MOST)));
    let mut lines = Vec::new();
    loop {
        let page = cluster.read_after(room, after, CATCH_UP_PAGE).await?;
        let Some((id, _)) = page.last() else {
            return Ok(lines);
        };
        after = *id;
        let full = page.len() == CATCH_UP_PAGE;
        lines.extend(page.into_iter().map(|(id, line)| Followed {
            room: room.key(),
            id,
            line,
        }));
        if !full {
            return Ok(lines);
        }
    }
}
