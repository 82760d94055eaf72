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
use tokio_util::task::AbortOnDropHandle;
use tracing::{error, info, warn};

use super::bans::{Ban, Target};
use super::identity::Identity;
use super::removal::Removal;
use super::rooms::{Change, Entered, Full, Joined, MemberId, Rooms};
use super::sequencer::{Delivered, Health, History, Replay, Request, Said, Sequencer, said_line};
use super::upkeep::{EXPIRE_EVERY, Keep};
use crate::cluster::{
    Cluster, Direct, Entry, Followed, FollowedEvent, Follows, LineId, LogLine, NodeName, Op,
    Position, RoomEvent, Tailed,
};
use crate::names::{RoomName, fold};
use crate::protocol::{Event, LOBBY, Refusal, Scope, Scoped, ServerLine};
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

/// What the engine keeps when this node keeps no history (`--retain 0`): enough for a client
/// that reconnects within the hour to fill its gap.
const NO_STORE_KEEP: Keep = Keep {
    for_: Duration::from_secs(3600),
    lines: 10_000,
};

/// Trims every room in the engine to what `keep` says, at start and then every
/// [`EXPIRE_EVERY`] (see [`crate::cluster::retention`]: every node may, none needs to wait for
/// another). Runs until the server's runtime stops.
async fn retain(cluster: Cluster, keep: Keep) {
    loop {
        let before_ms = super::sequencer::now_ms()
            .saturating_sub(i64::try_from(keep.for_.as_millis()).unwrap_or(i64::MAX));
        match cluster.listed_rooms().await {
            Ok(rooms) => {
                let mut trimmed = 0;
                for room in rooms {
                    match cluster.trim(&room, keep.lines, before_ms).await {
                        Ok(gone) => trimmed += gone,
                        Err(error) => warn!("cannot trim {room} in the engine: {error:#}"),
                    }
                }
                if trimmed > 0 {
                    info!(trimmed, "lines past keeping dropped from the engine");
                }
            }
            Err(error) => warn!("cannot list the rooms to trim: {error:#}"),
        }
        tokio::time::sleep(EXPIRE_EVERY).await;
    }
}

/// What the delivery thread is given, in the order it must happen.
enum Input {
    /// A line or an event of a followed room, read back from the log.
    Tailed(Tailed),
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
    identity: Arc<Identity>,
) -> std::io::Result<Sequencer> {
    let keep = history
        .as_ref()
        .map_or(NO_STORE_KEEP, |history| history.keep);
    let (requests, incoming) = mpsc::channel(super::sequencer::QUEUE);
    let (input, inputs) = mpsc::channel(QUEUE);
    let (to_append, said) = mpsc::channel(super::sequencer::QUEUE);
    let delivered = Arc::new(Delivered::default());
    let follower = cluster.follower(FOLLOW_AHEAD);
    let (ready, readied) = oneshot::channel();
    let delivering = Delivering {
        rooms: rooms.clone(),
        replay: history.as_ref().map(Replay::of),
        history,
        delivered: delivered.clone(),
        cluster: cluster.clone(),
        identity,
        follows: follower.follows(),
        runtime: tokio::runtime::Handle::current(),
        followed: HashMap::new(),
        waiting: HashMap::new(),
        health: Health::default(),
        ready: Some(ready),
    };
    let thread = std::thread::Builder::new()
        .name("cluster delivery".into())
        .spawn(move || delivering.run(inputs))?;
    // Stops with the router, when the server does.
    let retention = AbortOnDropHandle::new(tokio::spawn(retain(cluster.clone(), keep)));
    let (mirror, changes) = mpsc::unbounded_channel();
    rooms.mirror_to(mirror);
    let roster = Roster::new(cluster.clone(), rooms.clone(), changes);
    tokio::spawn(route(
        incoming,
        follower,
        to_append,
        input.clone(),
        retention,
    ));
    tokio::spawn(append(said, cluster, rooms, roster, input));
    Ok(Sequencer {
        requests,
        delivered,
        thread,
        ready: Some(readied),
    })
}

/// The router: sessions' requests and the follower's lines, into the appender and the
/// delivery thread. Ends once every session and the server have let go of the requests; the
/// follower and the engine's retention stop with it.
async fn route(
    mut incoming: mpsc::Receiver<Request>,
    mut follower: crate::cluster::Follower,
    to_append: mpsc::Sender<Said>,
    input: mpsc::Sender<Input>,
    _retention: AbortOnDropHandle<()>,
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
            Some(tailed) = follower.next() => Input::Tailed(tailed),
        };
        if input.send(forwarded).await.is_err() {
            return;
        }
    }
}

/// The appender: appends what members said to the log, what queued up meanwhile at once; and
/// keeps the roster, settled before each append.
async fn append(
    mut said: mpsc::Receiver<Said>,
    cluster: Cluster,
    rooms: Arc<Rooms>,
    mut roster: Roster,
    input: mpsc::Sender<Input>,
) {
    let node = cluster.me().node.to_string();
    let mut batch = Vec::with_capacity(APPEND_BATCH);
    let mut failing = false;
    loop {
        tokio::select! {
            taken = said.recv_many(&mut batch, APPEND_BATCH) => if taken == 0 {
                return; // every session and the router are gone: the server stopped
            },
            Some(change) = roster.changes.recv() => {
                roster.apply(change).await;
                roster.settle().await;
                continue;
            }
            () = tokio::time::sleep_until(roster.retry_at), if roster.stale => {
                roster.settle().await;
                continue;
            }
        }
        roster.settle().await;
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

/// How long the roster waits before it is rebuilt after the engine failed it: first, and at
/// most (it doubles between).
const ROSTER_RETRY_FIRST: Duration = Duration::from_millis(100);
const ROSTER_RETRY_MOST: Duration = Duration::from_secs(2);

/// The roster's keeper: tells the cluster who is in which room here, and topics, as they
/// change (see [`crate::cluster::roster`]). It runs in the appender's task, which settles it
/// before each append: a change a member made before it said a line (a rename, a part) is in
/// the room's log before that line. If the engine fails one change, the rest of the node's
/// roster may be off: it is rebuilt from [`Rooms::snapshot`] once the engine answers, which
/// holds the changes queued meanwhile. A node's earlier runs' records are cleared first.
struct Roster {
    cluster: Cluster,
    rooms: Arc<Rooms>,
    changes: mpsc::UnboundedReceiver<Change>,
    announce_up_to: usize,
    /// The cluster's record of this node may be off: rebuild it (at `retry_at`).
    stale: bool,
    retry_at: tokio::time::Instant,
    backoff: Duration,
}

impl Roster {
    fn new(cluster: Cluster, rooms: Arc<Rooms>, changes: mpsc::UnboundedReceiver<Change>) -> Self {
        Self {
            announce_up_to: rooms.announce_up_to(),
            cluster,
            rooms,
            changes,
            stale: true,
            retry_at: tokio::time::Instant::now(),
            backoff: ROSTER_RETRY_FIRST,
        }
    }

    /// Tells the cluster every change made here so far (or rebuilds the record, when due).
    async fn settle(&mut self) {
        if self.stale {
            // The rebuild's snapshot will hold them.
            while self.changes.try_recv().is_ok() {}
            if tokio::time::Instant::now() < self.retry_at {
                return;
            }
            match rebuild_roster(&self.cluster, &self.rooms).await {
                Ok(()) => {
                    self.stale = false;
                    self.backoff = ROSTER_RETRY_FIRST;
                }
                Err(error) => {
                    warn!("cannot write this node's members to the cluster: {error:#}");
                    self.retry_at = tokio::time::Instant::now() + self.backoff;
                    self.backoff = (self.backoff * 2).min(ROSTER_RETRY_MOST);
                }
            }
            return;
        }
        while let Ok(change) = self.changes.try_recv() {
            self.apply(change).await;
            if self.stale {
                return;
            }
        }
    }

    async fn apply(&mut self, change: Change) {
        if self.stale {
            return; // the rebuild will hold it
        }
        if let Err(error) = tell_roster(&self.cluster, change, self.announce_up_to).await {
            warn!("cannot tell the cluster who is where: {error:#}; rebuilding it");
            self.stale = true;
            self.retry_at = tokio::time::Instant::now();
        }
    }
}

/// Clears this node's records in the cluster's roster and writes them again from what is here.
async fn rebuild_roster(cluster: &Cluster, rooms: &Rooms) -> anyhow::Result<()> {
    let forgotten = cluster.forget_node_records().await?;
    if forgotten > 0 {
        info!("cleared {forgotten} of this node's earlier records from the cluster's roster");
    }
    let records: Vec<_> = rooms
        .snapshot()
        .into_iter()
        .flat_map(|(room, nicks)| nicks.into_iter().map(move |nick| (room.clone(), nick)))
        .collect();
    // Many at once (the engine's connection pipelines them): appends wait behind a rebuild,
    // and 5,000 members one round trip each would hold them for seconds. Quietly: the rooms
    // were told when the members came.
    for chunk in records.chunks(REBUILD_AT_ONCE) {
        let entered = chunk
            .iter()
            .map(|(room, nick)| cluster.entered(room, nick, None, 0));
        futures_util::future::try_join_all(entered).await?;
    }
    Ok(())
}

/// Records written at once while the roster is rebuilt.
const REBUILD_AT_ONCE: usize = 256;

async fn tell_roster(
    cluster: &Cluster,
    change: Change,
    announce_up_to: usize,
) -> anyhow::Result<()> {
    match change {
        Change::Entered { room, nick, member } => {
            cluster
                .entered(&room, &nick, Some(member), announce_up_to)
                .await?;
        }
        Change::Left { room, nick, reason } => {
            cluster.left(&room, &nick, &reason, announce_up_to).await?;
        }
        Change::Renamed {
            rooms,
            old,
            new,
            member,
        } => {
            for room in rooms {
                cluster.renamed(&room, &old, &new, member).await?;
            }
        }
        Change::Topic {
            room,
            nick,
            topic,
            member,
        } => cluster.set_topic(&room, &nick, &topic, member).await?,
    }
    Ok(())
}

/// A room this node follows.
struct Room {
    /// Its name as spelt here.
    name: RoomName,
    /// The last line delivered here.
    line: LineId,
    /// The last entry (line or event) handed on here.
    at: Position,
}

/// The delivery thread's state.
struct Delivering {
    rooms: Arc<Rooms>,
    /// This node's copy of the log, if it keeps one.
    history: Option<History>,
    replay: Option<Replay>,
    delivered: Arc<Delivered>,
    cluster: Cluster,
    /// Where the operators' decisions from other nodes are kept.
    identity: Arc<Identity>,
    follows: Follows,
    /// For the engine calls of a catch-up, made from this thread.
    runtime: tokio::runtime::Handle,
    /// Each room followed, by key.
    followed: HashMap<String, Room>,
    /// Senders waiting for their last line to be delivered, by room key.
    waiting: HashMap<String, Vec<(LineId, oneshot::Sender<()>)>>,
    /// Whether writes to this node's copy fail, for the log.
    health: Health,
    /// Told once the node knows every ban: then it may take members.
    ready: Option<oneshot::Sender<()>>,
}

impl Delivering {
    fn run(mut self, mut inputs: mpsc::Receiver<Input>) {
        let lobby = RoomName::lobby();
        if let Err(error) = self.follow(&lobby) {
            // The follower catches up once the engine answers; members who join meanwhile
            // get those lines as they come.
            warn!("cannot catch up with #lobby: {error:#}; following it from this node's copy");
            let after = self.stored_last(LOBBY);
            self.start_following(&lobby, after, Position::of_line(after));
        }
        // From where it ends now: what was sent to an earlier run was for its members.
        let me = self.cluster.me().node.to_string();
        let cluster = self.cluster.clone();
        let inbox_end = self
            .runtime
            .block_on(async { tokio::time::timeout(CATCH_UP_WITHIN, cluster.inbox_end()).await });
        let from = match inbox_end {
            Ok(Ok(end)) => end,
            failed => {
                warn!("cannot read where this node's inbox ends ({failed:?}); reading from now");
                Position::of_line(LineId(
                    u64::try_from(super::sequencer::now_ms()).unwrap_or_default(),
                ))
            }
        };
        self.follows.follow_inbox(&me, from);
        let decided = self.catch_up_ops();
        self.follows.follow_ops(decided);
        // Every ban known: the server may take members.
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(());
        }
        let mut batch = Vec::with_capacity(BATCH);
        let mut lines = Vec::new();
        while inputs.blocking_recv_many(&mut batch, BATCH) > 0 {
            for input in batch.drain(..) {
                match input {
                    Input::Tailed(tailed) => {
                        lines.push(tailed);
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
                            Some(followed) if followed.line < last => {
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
            .map_or(LineId::START, |room| room.line)
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
        let mut topic = None;
        // A room nobody here is in any more is caught up with again: its topic too.
        if !self.followed.contains_key(&key) || !self.rooms.exists(&key) {
            self.forget_empty_rooms();
            match self.follow(room) {
                Ok(known) => topic = known,
                Err(error) => {
                    warn!("cannot catch up with {room}: {error:#}; refusing to enter it for now");
                    return Err(Full::Unavailable);
                }
            }
        }
        let entered = self.rooms.enter(id, room, topic);
        if let Ok(Entered::Joined(name)) = &entered {
            if let Some(followed) = self.followed.get_mut(&key) {
                followed.name.clone_from(name);
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
    /// [`CATCH_UP_MOST`] lines), then follows it from there. What happened in the room before
    /// (enters, leaves) is not told to anyone: it is the past.
    /// Returns the room's topic.
    fn follow(&mut self, room: &RoomName) -> anyhow::Result<Option<String>> {
        let key = room.key();
        let stored = self.stored_last(&key);
        let cluster = self.cluster.clone();
        let (at, caught_up, topic) = self.runtime.block_on(async {
            let caught_up = async {
                let (at, lines) = catch_up(&cluster, room, stored).await?;
                anyhow::Ok((at, lines, cluster.topic(room).await?))
            };
            tokio::time::timeout(CATCH_UP_WITHIN, caught_up)
                .await
                .map_err(|_| anyhow::anyhow!("the engine did not answer in {CATCH_UP_WITHIN:?}"))?
        })?;
        self.keep(&caught_up);
        let line = caught_up.last().map_or(stored, |line| line.id).max(stored);
        self.start_following(room, line, at.max(Position::of_line(stored)));
        Ok(topic)
    }

    fn start_following(&mut self, room: &RoomName, line: LineId, at: Position) {
        let key = room.key();
        self.delivered.lock().insert(key.clone(), line.0);
        let followed = Room {
            name: room.clone(),
            line,
            at,
        };
        self.followed.insert(key, followed);
        self.follows.follow(room, at);
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
            if let Some(room) = self.followed.remove(&key) {
                self.follows.unfollow(&room.name);
            }
            for (_, sender) in self.waiting.remove(&key).unwrap_or_default() {
                let _ = sender.send(());
            }
        }
    }

    /// Keeps the lines among `tailed` in this node's copy, then delivers lines and events to
    /// the members here, in order, then tells the senders waiting for them. Events that
    /// happened on this node were told here as they happened.
    fn deliver(&mut self, tailed: Vec<Tailed>) {
        if tailed.is_empty() {
            return;
        }
        let mut lines = Vec::new();
        let mut events = Vec::new();
        for one in tailed {
            match one {
                Tailed::Line(line) => {
                    events.push(None);
                    lines.push(line);
                }
                Tailed::Event(event) => events.push(Some(event)),
                Tailed::Direct(direct) => self.carry_out(direct),
                Tailed::Op(op) => self.apply(op),
            }
        }
        self.keep(&lines);
        // Consecutive entries of one room are one entry (one queue slot per member), but for
        // an event about a member, whom it skips: it was told at once on its own node.
        let mut entries: Vec<(String, Option<MemberId>, BytesMut)> = Vec::new();
        let mut touched: Vec<String> = Vec::new();
        let mut lines = lines.into_iter();
        for event in events {
            let (key, at, line) = match &event {
                None => {
                    let Some(line) = lines.next() else { break };
                    (line.room.clone(), Position::of_line(line.id), Some(line))
                }
                Some(event) => (event.room.clone(), event.at, None),
            };
            let Some(room) = self.followed.get_mut(&key) else {
                continue; // unfollowed meanwhile: read before the follower knew
            };
            if at <= room.at {
                continue; // caught up with already
            }
            room.at = at;
            let scope = Scope::room(room.name.as_str());
            let mut bytes = BytesMut::new();
            let mut but = None;
            match (&line, &event) {
                (Some(line), _) => {
                    room.line = line.id;
                    Scoped {
                        scope,
                        line: said_line(line.line.kind, &line.line.nick, &line.line.text),
                    }
                    .write_to(&mut bytes);
                }
                (None, Some(event)) => {
                    if let RoomEvent::Topic { topic, .. } = &event.happened.what {
                        self.rooms.remember_topic(&key, topic);
                    }
                    but = event
                        .happened
                        .member
                        .filter(|_| event.happened.node == self.cluster.me().node.as_str());
                    told(scope, event).write_to(&mut bytes);
                }
                (None, None) => continue,
            }
            if touched.last() != Some(&key) {
                touched.push(key.clone());
            }
            match entries.last_mut() {
                Some((last, None, all)) if *last == key && but.is_none() => {
                    all.extend_from_slice(&bytes);
                }
                _ => entries.push((key, but, bytes)),
            }
        }
        self.rooms.broadcast_but(
            entries
                .into_iter()
                .map(|(key, but, bytes)| (key, but, bytes.freeze()))
                .collect(),
        );
        // Once per room a batch touched, not per line: each look takes the rooms' lock.
        let stray = touched.iter().any(|key| !self.rooms.exists(key));
        let mut delivered = self.delivered.lock();
        for key in &touched {
            if let Some(room) = self.followed.get(key) {
                delivered.insert(key.clone(), room.line.0);
            }
        }
        drop(delivered);
        for key in touched {
            let done = self.last_delivered(&key);
            if let Some(senders) = self.waiting.get_mut(&key) {
                for (_, sender) in senders.extract_if(.., |(last, _)| *last <= done) {
                    let _ = sender.send(());
                }
                if senders.is_empty() {
                    self.waiting.remove(&key);
                }
            }
        }
        if stray {
            self.forget_empty_rooms();
        }
    }

    /// Does what another node asks for a member of this one. A private message to a member
    /// gone meanwhile is sent back as undelivered, so its sender is told, as here.
    fn carry_out(&self, direct: Direct) {
        match direct {
            Direct::Private {
                from,
                from_node,
                to,
                text,
            } => {
                let Some((id, _, _)) = self.rooms.find(&to) else {
                    let Some(node) = from_node.and_then(|node| NodeName::parse(&node).ok()) else {
                        return;
                    };
                    let back = Direct::Undelivered {
                        to: fold(&from),
                        nick: to,
                    };
                    let cluster = self.cluster.clone();
                    // Not waited for: delivery goes on; the engine away, the sender is not told.
                    self.runtime.spawn(async move {
                        if let Err(error) = cluster.send_direct(&node, &back).await {
                            warn!(
                                "cannot tell node {node} a private message found nobody: {error:#}"
                            );
                        }
                    });
                    return;
                };
                let said = Scoped {
                    scope: Scope::Private(&from),
                    line: ServerLine::Message {
                        nick: &from,
                        text: &text,
                    },
                };
                self.rooms.send_to(id, said.to_bytes());
            }
            Direct::Undelivered { to, nick } => {
                // As a /msg to nobody is answered here.
                if let Some((id, _, _)) = self.rooms.find(&to) {
                    let refused = ServerLine::from(Refusal::NoSuchNick(&nick));
                    self.rooms.send_to(id, refused.to_bytes());
                }
            }
            Direct::Kick { nick, by, reason } => {
                if let Some((id, nick, _)) = self.rooms.find(&nick) {
                    info!(%nick, by, reason, "kicked from another node");
                    self.rooms.remove(id, Removal::Kicked { by, reason });
                }
            }
        }
    }

    /// Applies every operator's decision made so far, in pages; returns where following them
    /// goes on. If the engine fails meanwhile, the follower reads on from where this stopped.
    fn catch_up_ops(&self) -> Position {
        let mut after = Position::default();
        loop {
            let cluster = self.cluster.clone();
            let page = self.runtime.block_on(async {
                tokio::time::timeout(CATCH_UP_WITHIN, cluster.read_ops(after, CATCH_UP_PAGE)).await
            });
            let page = match page {
                Ok(Ok(page)) => page,
                failed => {
                    warn!("cannot read the operators' decisions ({failed:?}); following them");
                    return after;
                }
            };
            let whole = page.len() == CATCH_UP_PAGE;
            for (at, op) in page {
                self.apply(op);
                after = at;
            }
            if !whole {
                return after;
            }
        }
    }

    /// Applies an operator's decision made anywhere in the cluster (again, for the ones made
    /// here or before this run: the same ban set twice is one ban). A ban in force disconnects
    /// the members it covers here, as on the node where it was set.
    fn apply(&self, op: Op) {
        let (Some(bans), Some(accounts)) = (&self.identity.bans, &self.identity.accounts) else {
            return; // a node without a store keeps neither, as a single node without one
        };
        match op {
            Op::Account {
                key,
                nick,
                hash,
                created_ms,
            } => {
                if let Err(error) = accounts.adopt(&key, &nick, &hash, created_ms) {
                    error!(%error, %nick, "cannot keep an account from the cluster");
                }
            }
            Op::Ban {
                target,
                by,
                reason,
                until_ms,
            } => {
                let Some(target) = Target::from_stored(&target) else {
                    return warn!(target, "a ban from the cluster names nothing; ignored");
                };
                let ban = Ban {
                    target: target.clone(),
                    by: by.clone(),
                    reason: reason.clone(),
                    until_ms,
                };
                if !ban.in_force(super::sequencer::now_ms()) {
                    return;
                }
                if let Err(error) = bans.add(ban) {
                    error!(%error, %target, "cannot keep a ban from the cluster");
                }
                let mut covered = self.rooms.connected_from(|address| target.covers(address));
                if let Target::Nick(key) = &target
                    && let Some((id, _, _)) = self.rooms.find(key)
                {
                    covered.push(id);
                }
                let reason = match reason.as_str() {
                    "" => "banned".to_owned(),
                    reason => format!("banned: {reason}"),
                };
                for id in covered {
                    let why = Removal::Kicked {
                        by: by.clone(),
                        reason: reason.clone(),
                    };
                    self.rooms.remove(id, why);
                }
            }
            Op::Unban { target } => {
                let Some(target) = Target::from_stored(&target) else {
                    return;
                };
                if let Err(error) = bans.remove(&target) {
                    error!(%error, %target, "cannot lift a ban from the cluster");
                }
            }
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
/// [`CATCH_UP_MOST`], read from the log in pages; and the position of the last entry read,
/// where following goes on.
async fn catch_up(
    cluster: &Cluster,
    room: &RoomName,
    stored: LineId,
) -> anyhow::Result<(Position, Vec<Followed>)> {
    let last = cluster.last_id(room).await?;
    if last < stored {
        error!(
            "the cluster's {room} ends at line {last} but this node's copy at {stored}: the \
             engine lost lines (restored from an older file?); lines {}..={stored} are only \
             on this node",
            last.0 + 1
        );
    }
    let mut after = Position::of_line(LineId(stored.0.max(last.0.saturating_sub(CATCH_UP_MOST))));
    let mut lines = Vec::new();
    loop {
        let page = cluster
            .read_entries_after(room, after, CATCH_UP_PAGE)
            .await?;
        let Some((at, _)) = page.last() else {
            return Ok((after, lines));
        };
        after = *at;
        let whole = page.len() == CATCH_UP_PAGE;
        lines.extend(page.into_iter().filter_map(|(at, entry)| match entry {
            Entry::Line(line) => Some(Followed {
                room: room.key(),
                id: at.line,
                line,
            }),
            Entry::Event(_) => None,
        }));
        if !whole {
            return Ok((after, lines));
        }
    }
}

/// The line that tells the members here what happened in a room.
fn told<'a>(scope: Scope<'a>, event: &'a FollowedEvent) -> Scoped<'a> {
    let online = event.happened.online.unwrap_or(0);
    let line = match &event.happened.what {
        RoomEvent::Entered { nick } => Event::Joined { nick, online },
        RoomEvent::Left { nick, reason } => Event::Left {
            nick,
            reason,
            online,
        },
        RoomEvent::Renamed { old, new } => Event::Renamed { old, new },
        RoomEvent::Topic { nick, topic } => Event::TopicSet { nick, topic },
    };
    Scoped {
        scope,
        line: ServerLine::Event(line),
    }
}
