//! One chat connection: its [`Session`] reads lines ([`LineReader`]) and acts on each
//! [`Command`], while its writer ([`writer::write_outbox`]) empties the member's outbox; both
//! run side by side in one task, so a blocked write never stops reads. What the member says
//! goes through the sequencer (numbered, stored, then delivered in its room); the session waits
//! for that before anything else it does reaches anyone, so its lines and replies keep their
//! order for everyone.
//!
//! The session keeps the member's *current* room, where a plain line goes: the lobby at first,
//! then the last room joined or switched to. Private messages are not stored: they go from
//! this session straight to the two outboxes.
//!
//! In a cluster the session claims its member's nicks across it ([`NickClaims`]): a guest nick
//! before joining, a new one before a rename; it releases them as they are given up, and
//! renames its member to a fresh guest when the heartbeat finds its nick's claim lost.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::access::canonical;
use super::flood::FloodGate;
use super::history_query::{HistoryAccess, Question};
use super::identity::{Identity, utc_minute};
use super::line_reader::{Input, LineReader};
use super::nick_claims::NickClaims;
use super::outbox::OutboxRoom;
use super::removal::Dropped;
use super::rooms::{Joined, MemberId, Rooms};
use super::sequencer::{Request, Said};
use super::writer::{self, DROPPED_NOTICE_TIMEOUT};
use super::{Ending, LINGER, Limits, kernel_summary, linger};
use crate::codec::sanitize;
use crate::names::{Nick, NickError, RoomName};
use crate::protocol::{
    Command, Event, HistoryRequest, Refusal, SaidKind, Scope, Scoped, ServerLine, help_lines,
};
use crate::tls::transport::Transport;

/// Seconds between two flood-limit notices to the same client.
const FLOOD_NOTICE_EVERY: Duration = Duration::from_secs(10);

/// Bytes of said lines gathered before they go to the room even if more are ready: bounds what
/// one queue entry holds, so the send queue's bound stays a bound on memory.
const SAID_BATCH: usize = 4 * 1024;

/// Most bytes the echoes of one member's undelivered lines may take. Every member of a room
/// gets every sender's lines, so this, times the senders of a burst, is what one reader must be
/// able to queue beyond what the senders' own pacing leaves (half the outbox): 16 KiB is four
/// hand-overs, enough to keep the sequencer's batches full.
const IN_FLIGHT_ECHO: usize = 16 * 1024;

/// Most lines one client line can queue for its own sender (`/help` is the longest reply).
fn reply_headroom() -> usize {
    help_lines().len() + 1
}

/// What every chat session shares.
#[derive(Debug)]
pub struct Shared {
    /// Accounts, operators, bans, mutes and the server's password.
    pub identity: Arc<Identity>,
    /// Everyone online and their rooms.
    pub rooms: Arc<Rooms>,
    /// The sequencer's requests.
    pub sequencer: mpsc::Sender<Request>,
    /// Where history is read from, if it is kept.
    pub history: Option<HistoryAccess>,
    /// The inspector's view of the server's sockets, if this process shows one.
    pub view: Option<Arc<super::observe::ServerView>>,
    /// The cluster this node is part of, if any.
    pub cluster: Option<crate::cluster::Cluster>,
    /// The claims on this node's nicks in its cluster, if it is in one.
    pub nicks: Option<NickClaims>,
}

/// Serves one chat connection, plain or TLS, until it ends, then logs how.
pub async fn serve<S: Transport>(
    mut stream: S,
    peer: SocketAddr,
    shared: &Shared,
    limits: &Limits,
    shutdown: &CancellationToken,
) {
    let rooms = &*shared.rooms;
    let address = canonical(peer.ip());
    let (rd, mut wr) = stream.halves();
    let mut lines = LineReader::new(rd, limits.max_line, limits.line_timeout, peer);
    if shared.identity.password.is_some()
        && !password_given(&mut lines, &mut wr, &shared.identity, address, shutdown).await
    {
        info!(%peer, "closed: no server password");
        Box::pin(linger(lines.into_inner(), shutdown, LINGER)).await;
        return;
    }
    if let Some(nicks) = &shared.nicks {
        let guest = tokio::select! {
            () = shutdown.cancelled() => return,
            guest = nicks.guest() => guest,
        };
        match guest {
            Ok(nick) => rooms.give_next_guest(nick),
            Err(error) => {
                warn!(%peer, "refused: {error:#}");
                refuse_unnamed(&mut wr).await;
                Box::pin(linger(lines.into_inner(), shutdown, LINGER)).await;
                return;
            }
        }
    }
    let (reply, joined) = oneshot::channel();
    let joined = match shared.sequencer.send(Request::Join(reply)).await {
        Ok(()) => joined.await.ok().flatten(),
        Err(_) => None,
    };
    let Some(Joined {
        id,
        nick,
        outbox,
        dropped,
        own_outbox,
        nick_lost,
    }) = joined
    else {
        return; // shutting down: the socket closes without a word, like a full listen queue
    };
    info!(%peer, %nick, "joined");
    rooms.set_address(id, address);
    if let Some(view) = &shared.view {
        view.joined(peer, id);
    }
    // Goes offline even if this task panics, so no ghost member stays behind.
    let _seat = Seat { rooms, id };
    let session = Session {
        id,
        rooms,
        sequencer: &shared.sequencer,
        history: shared.history.as_ref(),
        identity: &shared.identity,
        address,
        dropped: &dropped,
        shutdown,
        own_outbox,
        cluster: shared.cluster.as_ref(),
        nicks: shared.nicks.as_ref(),
        nick_lost: &nick_lost,
    };
    let me = Me {
        nick,
        current: Some(RoomName::lobby()),
        account: None,
    };
    let reading = session.run(lines, me, limits);
    let writing = writer::write_outbox(&mut wr, outbox, &dropped, shutdown, limits.shutdown_grace);
    let ((ending, nick, bytes_in), written) = tokio::join!(reading, writing);
    drop(wr);
    let tcp = kernel_summary(&stream);
    let how = ending.how();
    match written {
        Ok(bytes_out) => info!(%peer, %nick, how, bytes_in, bytes_out, %tcp, "closed"),
        Err(error) => info!(%peer, %nick, how, %error, bytes_in, %tcp, "closed, write failed"),
    }
}

/// Tells a client that no nick can be given to it (its node cannot reach the cluster), then
/// closes our side.
async fn refuse_unnamed<W: AsyncWrite + Unpin>(wr: &mut W) {
    use tokio::io::AsyncWriteExt as _;
    let line = ServerLine::from(Refusal::NoGuestNick).to_bytes();
    let _ = wr.write_all(&line).await;
    let _ = wr.shutdown().await;
}

/// Takes its member offline when dropped, with `left (server error)` if nothing else did
/// first (normally the session leaves with the real reason, making this a no-op).
struct Seat<'a> {
    rooms: &'a Rooms,
    id: MemberId,
}

impl Drop for Seat<'_> {
    fn drop(&mut self) {
        self.rooms.leave(self.id, "server error", None);
    }
}

/// Who the member is and where it talks; only its own session changes either.
struct Me {
    nick: Nick,
    /// Where a plain line goes; `None` once it parted every room.
    current: Option<RoomName>,
    /// The key of the account it logged in as (or registered), if any.
    account: Option<String>,
}

/// On a server with a password: asks for it, and reads the first line, which must be
/// `/pass PASSWORD` with the right one. Otherwise the client is told why, and `false`.
/// Wrong passwords count against the address as failed logins do.
async fn password_given<R, W>(
    lines: &mut LineReader<R>,
    wr: &mut W,
    identity: &Identity,
    address: std::net::IpAddr,
    shutdown: &CancellationToken,
) -> bool
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    use tokio::io::AsyncWriteExt as _;
    let ask = ServerLine::Event(Event::PasswordNeeded).to_bytes();
    if wr.write_all(&ask).await.is_err() {
        return false;
    }
    let input = tokio::select! {
        input = lines.next() => input,
        () = shutdown.cancelled() => return false,
    };
    let refusal = match input {
        Input::Ended(_) => return false,
        Input::TooLong { .. } => Refusal::PasswordNeeded,
        Input::Line { text, .. } => match Command::parse(&sanitize(&text)) {
            Command::Pass(given) => match identity.throttle.check(address) {
                Err(throttled) => throttled,
                Ok(()) if identity.password_is(given) => return true,
                Ok(()) => {
                    identity.throttle.failed(address);
                    Refusal::WrongPassword
                }
            },
            _ => Refusal::PasswordNeeded,
        },
    };
    let _ = wr.write_all(&ServerLine::from(refusal).to_bytes()).await;
    let _ = wr.shutdown().await;
    false
}

/// Fault injection for tests, compiled into debug builds only: a chat line equal to the
/// environment variable `TCPCHAT_FAULT_PANIC_LINE` panics its connection's task, which shows
/// that one connection's crash stays in that connection.
mod account_commands;
mod operator_commands;
mod room_commands;

use room_commands::room_message;

#[cfg(debug_assertions)]
mod fault_injection {
    use std::sync::OnceLock;

    pub(super) fn panics_on(text: &str) -> bool {
        static LINE: OnceLock<Option<String>> = OnceLock::new();
        LINE.get_or_init(|| std::env::var("TCPCHAT_FAULT_PANIC_LINE").ok())
            .as_deref()
            == Some(text)
    }
}

/// One connection's place among the rooms, and what can end it from outside.
struct Session<'a> {
    id: MemberId,
    rooms: &'a Rooms,
    /// Where what the member says goes to be numbered, stored and delivered.
    sequencer: &'a mpsc::Sender<Request>,
    /// Where `/history` and `/search` are answered from, if the server keeps history.
    history: Option<&'a HistoryAccess>,
    /// Accounts, operators, bans and mutes.
    identity: &'a Identity,
    /// Where the member connects from.
    address: std::net::IpAddr,
    /// Set when the server lets this member go.
    dropped: &'a Dropped,
    shutdown: &'a CancellationToken,
    /// How full this member's own outbox is: the session waits there for room before
    /// handling a line (see [`Session::pace`]).
    own_outbox: OutboxRoom,
    /// The cluster this node is part of: `/who`, `/rooms`, `/msg` and `/kick` ask it.
    cluster: Option<&'a crate::cluster::Cluster>,
    /// The cluster's claims on this node's nicks, if it is in one.
    nicks: Option<&'a NickClaims>,
    /// Woken when the member's nick's claim in the cluster is lost.
    nick_lost: &'a Notify,
}

/// What the member has said that is not delivered yet.
#[derive(Default)]
struct Saying {
    /// The room the gathered lines go to.
    room: Option<RoomName>,
    /// Gathered from the lines already read, not yet handed to the sequencer.
    lines: Vec<(SaidKind, String)>,
    /// Their size, which bounds a hand-over.
    bytes: usize,
    /// What they will take in this member's own outbox when they come back to it.
    echo_bytes: usize,
    /// Hand-overs not yet delivered, oldest first, each with the bytes its echo will take.
    in_flight: VecDeque<(usize, oneshot::Receiver<()>)>,
    /// The sum of those bytes.
    in_flight_bytes: usize,
}

impl Saying {
    fn push(&mut self, kind: SaidKind, text: &str, nick: &Nick) {
        self.bytes += text.len();
        let room = self.room.as_ref().map_or(0, |room| room.as_str().len());
        // As written back: `#room <nick> text\n`.
        self.echo_bytes += text.len() + nick.as_str().len() + room + 5;
        self.lines.push((kind, text.to_owned()));
    }

    /// Whether a line for `room` may join the gathered ones (one hand-over is one room).
    fn fits(&self, room: &RoomName) -> bool {
        self.lines.is_empty() || self.room.as_ref() == Some(room)
    }
}

impl Session<'_> {
    /// Awaits `future` unless the room drops this member or the server shuts down first.
    async fn unless_ended<T>(&self, future: impl Future<Output = T>) -> Result<T, Ending> {
        tokio::select! {
            biased;
            () = self.dropped.cancelled() => Err(Ending::Removed(self.dropped.why())),
            () = self.shutdown.cancelled() => Err(Ending::Shutdown),
            output = future => Ok(output),
        }
    }

    /// Hands what was gathered to the sequencer as one request: a burst of 100 lines from one
    /// read costs the room one pass and each member one queue entry, not 100.
    async fn flush(&self, saying: &mut Saying, nick: &Nick) -> Result<(), Ending> {
        if saying.lines.is_empty() {
            return Ok(());
        }
        let Some(room) = saying.room.clone() else {
            return Ok(()); // lines are only gathered with their room
        };
        // Hand-overs pipeline (the sequencer commits many at once), but their lines come back
        // to this member too: the room [`Session::pace`] checks for in its own outbox must not
        // be taken by them, so their echoes may fill at most a quarter of it.
        let echo = std::mem::take(&mut saying.echo_bytes);
        let most = (self.own_outbox.budget() / 4).min(IN_FLIGHT_ECHO);
        while saying.in_flight_bytes + echo > most
            && let Some((bytes, oldest)) = saying.in_flight.pop_front()
        {
            // An error only means the sequencer stopped, which shutdown reports on its own.
            let _ = self.unless_ended(oldest).await?;
            saying.in_flight_bytes -= bytes;
        }
        let (delivered, in_flight) = oneshot::channel();
        let said = Said {
            from: self.id,
            nick: nick.to_string(),
            room,
            lines: std::mem::take(&mut saying.lines),
            delivered,
        };
        saying.bytes = 0;
        saying.in_flight.push_back((echo, in_flight));
        saying.in_flight_bytes += echo;
        // Boxed: a send's future is the largest part of a session's, and it is alive only
        // while the queue is full; inline, every idle connection's task would carry its size.
        match Box::pin(self.unless_ended(self.sequencer.send(Request::Said(said)))).await? {
            Ok(()) => Ok(()),
            Err(_) => Err(Ending::Shutdown), // the sequencer is gone: the server is stopping
        }
    }

    /// Flushes, then waits until everything this member said is delivered, so that what comes
    /// next from it (a reply, a rename, its leaving) comes after its lines for everyone.
    async fn settle(&self, saying: &mut Saying, nick: &Nick) -> Result<(), Ending> {
        self.flush(saying, nick).await?;
        // Delivered in the order handed over: the newest delivered means all are.
        if let Some((_, newest)) = saying.in_flight.pop_back() {
            // An error only means the sequencer stopped, which shutdown reports on its own.
            let _ = self.unless_ended(newest).await?;
        }
        saying.in_flight.clear();
        saying.in_flight_bytes = 0;
        Ok(())
    }

    /// Queues one line for this member alone.
    fn tell<'l>(&self, line: impl Into<ServerLine<'l>>) {
        self.rooms.send_to(self.id, line.into().to_bytes());
    }

    /// Queues one line about `room` for this member alone.
    fn tell_about<'l>(&self, room: &RoomName, line: impl Into<ServerLine<'l>>) {
        let scoped = Scoped {
            scope: Scope::room(room.as_str()),
            line: line.into(),
        };
        self.rooms.send_to(self.id, scoped.to_bytes());
    }

    /// Reads and handles lines until the connection should end, leaves the room (which closes
    /// the outbox, so the writer flushes and sends FIN), then after `exit` or `/quit` drains
    /// what the client still sends so our close is a FIN, not a reset. Returns the ending, the
    /// last nick and the bytes read.
    async fn run<R: AsyncRead + Unpin>(
        &self,
        mut lines: LineReader<R>,
        mut me: Me,
        limits: &Limits,
    ) -> (Ending, Nick, u64) {
        let mut flood = Flood {
            gate: FloodGate::new(limits.flood),
            per_second: limits.flood.per_second,
            noticed_at: None,
        };
        let mut told_invalid_utf8 = false;
        let mut saying = Saying::default();

        let ending = loop {
            if !saying.lines.is_empty()
                && !lines.has_buffered_line()
                && let Err(ending) = Box::pin(self.flush(&mut saying, &me.nick)).await
            {
                break ending; // nothing more is ready without waiting for the socket
            }
            // Only in a cluster can a nick be lost; then its rename comes before the next line.
            let input = tokio::select! {
                biased;
                () = self.nick_lost.notified(), if self.nicks.is_some() => None,
                input = self.unless_ended(lines.next()) => Some(input),
            };
            let input = match input {
                None => match Box::pin(self.nick_was_lost(&mut me, &mut saying)).await {
                    Ok(()) => continue,
                    Err(ending) => break ending,
                },
                Some(Ok(input)) => input,
                Some(Err(ending)) => break ending,
            };
            let handled = match input {
                Input::Ended(ending) => break ending,
                // Nothing to relay or answer: no flood token, no queue room.
                Input::Line { text, .. } if text.trim().is_empty() => continue,
                // Each line's handling is boxed, and so is each flush: an idle connection's task
                // then holds only what waits for the next line (about 1 KiB less per
                // connection, for an allocation per line, which a line's fan-out dwarfs).
                Input::TooLong { max } => {
                    Box::pin(async {
                        if let Some(wait) = self.must_wait(&mut flood) {
                            Box::pin(self.pace(wait, &mut flood, &mut saying, &me.nick)).await?;
                        }
                        self.settle(&mut saying, &me.nick).await?;
                        self.tell(Refusal::LineTooLong { max });
                        Ok(None)
                    })
                    .await
                }
                Input::Line { text, invalid_utf8 } => {
                    Box::pin(async {
                        if let Some(wait) = self.must_wait(&mut flood) {
                            Box::pin(self.pace(wait, &mut flood, &mut saying, &me.nick)).await?;
                        }
                        if invalid_utf8 && !told_invalid_utf8 {
                            told_invalid_utf8 = true;
                            self.settle(&mut saying, &me.nick).await?;
                            self.tell(Refusal::InvalidUtf8);
                        }
                        self.handle_line(&text, &mut me, &mut saying).await
                    })
                    .await
                }
            };
            match handled {
                Ok(None) => {}
                Ok(Some(ending)) | Err(ending) => break ending,
            }
            if saying.bytes >= SAID_BATCH
                && let Err(ending) = Box::pin(self.flush(&mut saying, &me.nick)).await
            {
                break ending;
            }
            // Lines already buffered never touch the socket, so yield by budget: a burst from
            // one client must not hold a worker thread away from everyone else's writers.
            tokio::task::consume_budget().await;
        };
        // What was said before the end is still said, unless the server is going or dropped
        // us; then it leaves, after its lines.
        if !matches!(ending, Ending::Shutdown | Ending::Removed(_)) {
            let _ = Box::pin(self.settle(&mut saying, &me.nick)).await;
        }
        // On shutdown every outbox is closed at once, without a `left` line for each.
        if !matches!(ending, Ending::Shutdown) {
            let farewell = farewell(&ending, &me.nick, limits).map(|line| line.to_bytes());
            self.rooms.leave(self.id, &ending.to_string(), farewell);
            // Before lingering, so the nick is free as soon as the member is gone. On
            // shutdown the node leaves the cluster as a whole instead, all its nicks at once.
            if let Some(nicks) = self.nicks {
                Box::pin(nicks.release_unheld(self.rooms, &me.nick)).await;
            }
        }
        let bytes_in = lines.bytes_in();
        match ending {
            Ending::Exit | Ending::Quit(_) | Ending::LineTimeout => {
                Box::pin(linger(lines.into_inner(), self.shutdown, LINGER)).await;
            }
            // A dropped client may still be sending; unread input at close would turn our FIN
            // into a reset that destroys the notice telling it why. Drain while it is written.
            Ending::Removed(_) => {
                let reader = lines.into_inner();
                Box::pin(linger(reader, self.shutdown, DROPPED_NOTICE_TIMEOUT)).await;
            }
            _ => {}
        }
        (ending, me.nick, bytes_in)
    }

    /// Whether a line must wait before it is handled, and why ([`Session::pace`] waits). The
    /// common answer, no, costs no future: a paced wait is rare, so it is boxed.
    fn must_wait(&self, flood: &mut Flood) -> Option<Wait> {
        let now = Instant::now();
        match flood.gate.take(now) {
            Some(wait) => Some(Wait::Flood { wait, now }),
            None => (!self.own_outbox.has_room(reply_headroom())).then_some(Wait::Outbox),
        }
    }

    /// Waits before a line is handled, as long as the flood limit and this member's own
    /// outbox require; gathered lines go out first, so nothing said waits with it.
    async fn pace(
        &self,
        wait: Wait,
        flood: &mut Flood,
        saying: &mut Saying,
        nick: &Nick,
    ) -> Result<(), Ending> {
        if let Wait::Flood { wait, now } = wait {
            self.settle(saying, nick).await?;
            if flood
                .noticed_at
                .is_none_or(|at| now >= at + FLOOD_NOTICE_EVERY)
            {
                flood.noticed_at = Some(now);
                self.tell(Refusal::Flood {
                    per_second: flood.per_second,
                });
            }
            self.unless_ended(tokio::time::sleep(wait)).await?;
        }
        // One read can hold thousands of lines, and this member's own writer runs only when
        // the session waits: make sure its queue has room for what this line may send back, so
        // a client that reads is never dropped as too slow for what it sent in one burst, and
        // a client that asks faster than it reads is simply not read (TCP pushes back on it).
        if !self.own_outbox.has_room(reply_headroom()) {
            self.flush(saying, nick).await?;
            let room = self.own_outbox.wait_for_room(reply_headroom());
            self.unless_ended(room).await?;
        }
        Ok(())
    }

    /// Acts on one line; returns how the connection ends if the line ends it. What is said
    /// (plain text, `/me`, `/msg #room`) is gathered; anything else first waits until what was
    /// gathered is delivered, so every member sees this member's lines and replies in the
    /// order they were sent.
    async fn handle_line(
        &self,
        text: &str,
        me: &mut Me,
        saying: &mut Saying,
    ) -> Result<Option<Ending>, Ending> {
        #[cfg(debug_assertions)]
        if fault_injection::panics_on(text) {
            panic!("fault injection: a connection task panics on {text:?}");
        }
        let clean = sanitize(text);
        let command = Command::parse(&clean);
        let said = match command {
            Command::Say(text) if !text.trim().is_empty() => Some((SaidKind::Message, text)),
            Command::Me(text) if !text.is_empty() => Some((SaidKind::Action, text)),
            _ => None,
        };
        let speaks = said.is_some()
            || matches!(command, Command::Msg(_))
            || matches!(command, Command::Topic(topic) if !topic.is_empty());
        // Every line said passes here: the nick's key (a Unicode fold) is made only while
        // someone is muted at all.
        if speaks
            && self.identity.mutes.any()
            && let Some(until) = self.identity.mutes.muted_until(self.id, &me.nick.key())
        {
            self.settle(saying, &me.nick).await?;
            self.tell(Refusal::Muted {
                until: utc_minute(until),
            });
            return Ok(None);
        }
        if let Some((kind, text)) = said {
            match me.current.clone() {
                Some(room) => self.say(saying, &me.nick, room, kind, text).await?,
                None => {
                    self.settle(saying, &me.nick).await?;
                    self.tell(Refusal::NoRoom);
                }
            }
            return Ok(None);
        }
        if let Command::Msg(args) = command
            && let Some((room, text)) = room_message(args)
        {
            // Said in a room, like a plain line: gathered, numbered, stored.
            match self.joined(room) {
                Ok(room) => {
                    self.say(saying, &me.nick, room, SaidKind::Message, text)
                        .await?;
                }
                Err(refusal) => {
                    self.settle(saying, &me.nick).await?;
                    self.tell(refusal);
                }
            }
            return Ok(None);
        }
        self.settle(saying, &me.nick).await?;
        match command {
            Command::Say(_) => {}
            Command::Me(_) => self.tell(Refusal::Usage("/me ACTION")),
            Command::Nick(requested) => Box::pin(self.nick(me, requested)).await,
            Command::Who(room) => Box::pin(self.who(me, room)).await,
            // Rare, and their futures are large: boxed, they do not make every idle
            // connection's task larger.
            Command::Join(room) => Box::pin(self.join(me, room)).await?,
            Command::Part(args) => self.part(me, args),
            Command::Switch(room) => self.switch(me, room),
            Command::Rooms(page) => Box::pin(self.list_rooms(page)).await,
            Command::Topic(topic) => self.topic(me, topic),
            Command::Msg(args) => Box::pin(self.private(me, args)).await,
            Command::Help => {
                for line in help_lines() {
                    self.tell(Event::Notice(line.into()));
                }
            }
            Command::History(args) => {
                let question = HistoryRequest::parse(args).map(Question::History);
                Box::pin(self.answer(me, question)).await?;
            }
            Command::Search(words) => Box::pin(self.answer(me, Question::search(words))).await?,
            Command::Register(password) => Box::pin(self.register(me, password)).await,
            Command::Login(args) => Box::pin(self.login(me, args)).await,
            Command::Pass(_) => self.tell(Refusal::NoPasswordNeeded),
            Command::Kick(args) => Box::pin(self.kick(me, args)).await,
            Command::Ban(args) => Box::pin(self.ban(me, args)).await,
            Command::Unban(target) => Box::pin(self.unban(me, target)).await,
            Command::Bans => self.list_bans(me),
            Command::Mute(args) => self.mute(me, args),
            Command::Unmute(nick) => self.unmute(me, nick),
            Command::Unknown(name) => self.tell(Refusal::UnknownCommand(name)),
            Command::Exit => return Ok(Some(Ending::Exit)),
            Command::Quit(reason) => return Ok(Some(Ending::Quit(reason.to_owned()))),
        }
        Ok(None)
    }

    /// `/nick NAME`. Only this session renames its member, so the nick kept here stays true.
    async fn nick(&self, me: &mut Me, requested: &str) {
        let checked = Nick::parse(requested)
            .map_err(Refusal::Nick)
            .and_then(|new| {
                let account = me.account.as_deref();
                self.identity.may_take(&new.key(), new.as_str(), account)?;
                Ok(new)
            });
        let renamed = match (checked, self.nicks) {
            (Err(refusal), _) => Err(refusal),
            (Ok(new), None) => self
                .rooms
                .rename(self.id, new.clone())
                .map(|()| new)
                .map_err(Refusal::Nick),
            (Ok(new), Some(nicks)) => {
                // A member here with that nick is a local clash: refused before asking the
                // engine, and again under the nick's gate once it is claimed.
                let clash = || match self.rooms.find(&new.key()) {
                    Some((holder, _, _)) if holder != self.id => {
                        Err(Refusal::Nick(NickError::Taken(new.to_string())))
                    }
                    _ => Ok(()),
                };
                match clash() {
                    Err(refusal) => Err(refusal),
                    Ok(()) => nicks
                        .rename(self.rooms, self.id, &me.nick, new.clone(), clash)
                        .await
                        .map(|()| new.clone()),
                }
            }
        };
        match renamed {
            Ok(new) => me.nick = new,
            Err(refusal) => self.tell(refusal),
        }
    }

    /// The member's nick's claim in the cluster may be lost: once what it said is delivered,
    /// it becomes a fresh guest (its rooms see the rename) and is told why.
    async fn nick_was_lost(&self, me: &mut Me, saying: &mut Saying) -> Result<(), Ending> {
        let Some(nicks) = self.nicks else {
            return Ok(());
        };
        self.settle(saying, &me.nick).await?;
        // Not cut short: it is bounded, and a guest claimed must become this member's.
        if let Some((now, told)) = nicks.replace_lost(self.rooms, self.id, &me.nick).await {
            if let Some(now) = now {
                me.nick = now;
            }
            self.tell(told);
        }
        Ok(())
    }

    /// Gathers one line said in `room`; lines gathered for another room go first.
    async fn say(
        &self,
        saying: &mut Saying,
        nick: &Nick,
        room: RoomName,
        kind: SaidKind,
        text: &str,
    ) -> Result<(), Ending> {
        if !saying.fits(&room) {
            self.flush(saying, nick).await?;
        }
        saying.room = Some(room);
        saying.push(kind, text, nick);
        Ok(())
    }

    /// Answers `/history` or `/search` about the current room, block by block as the
    /// member's outbox has room.
    async fn answer(&self, me: &Me, question: Result<Question, Refusal<'_>>) -> Result<(), Ending> {
        let refusal = match (question, self.history, &me.current) {
            (Err(refusal), _, _) => refusal,
            (Ok(_), None, _) => Refusal::NoHistory,
            (Ok(_), Some(_), None) => Refusal::NoRoom,
            (Ok(question), Some(history), Some(room)) => {
                match self.unless_ended(history.answer(room, question)).await? {
                    Err(refusal) => refusal,
                    Ok(blocks) => {
                        for block in blocks {
                            self.unless_ended(self.own_outbox.wait_for_room(1)).await?;
                            self.rooms.send_to(self.id, block);
                        }
                        return Ok(());
                    }
                }
            }
        };
        self.tell(refusal);
        Ok(())
    }
}

/// Why a line waits before it is handled.
enum Wait {
    /// The flood limit: this long, from `now`.
    Flood { wait: Duration, now: Instant },
    /// This member's own outbox is too full for a reply.
    Outbox,
}

/// The flood limit as one session applies it.
struct Flood {
    gate: FloodGate,
    per_second: f64,
    /// When the client was last told it is being slowed, so it is told at most every
    /// [`FLOOD_NOTICE_EVERY`].
    noticed_at: Option<Instant>,
}

/// The last line a member is sent when its connection ends this way, if any.
fn farewell<'a>(ending: &Ending, nick: &'a Nick, limits: &Limits) -> Option<ServerLine<'a>> {
    match ending {
        Ending::Exit | Ending::Quit(_) => Some(ServerLine::Event(Event::Bye {
            nick: nick.as_str(),
        })),
        Ending::LineTimeout => Some(ServerLine::from(Refusal::LineTimeout {
            secs: limits.line_timeout.as_secs_f64(),
        })),
        _ => None,
    }
}
