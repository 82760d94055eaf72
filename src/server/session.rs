//! One chat connection: its [`Session`] in the room reads lines ([`LineReader`]) and acts on
//! each [`Command`], while its writer ([`writer::write_outbox`]) empties the member's outbox;
//! both run side by side in one task, so a blocked write never stops reads. What the member
//! says goes through the sequencer (numbered, stored, then delivered); the session waits for
//! that before anything else it does reaches the room, so its lines and replies keep their
//! order for everyone.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::net::tcp::ReadHalf;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::flood::FloodGate;
use super::history_query::{HistoryAccess, Question};
use super::line_reader::{Input, LineReader};
use super::outbox::OutboxRoom;
use super::room::{Joined, MemberId, Room};
use super::sequencer::{Request, Said};
use super::writer::{self, DROPPED_NOTICE_TIMEOUT};
use super::{Ending, LINGER, Limits, kernel_summary, linger};
use crate::codec::sanitize;
use crate::names::Nick;
use crate::protocol::{Command, Event, HistoryRequest, Refusal, SaidKind, ServerLine, help_lines};

/// Seconds between two flood-limit notices to the same client.
const FLOOD_NOTICE_EVERY: Duration = Duration::from_secs(10);

/// Bytes of said lines gathered before they go to the room even if more are ready: bounds what
/// one queue entry holds, so the send queue's bound stays a bound on memory.
const SAID_BATCH: usize = 4 * 1024;

/// Most lines one client line can queue for its own sender (`/help` is the longest reply).
fn reply_headroom() -> usize {
    help_lines().len() + 1
}

/// What every chat session shares.
#[derive(Debug)]
pub struct Shared {
    /// The room.
    pub room: Arc<Room>,
    /// The sequencer's requests.
    pub sequencer: mpsc::Sender<Request>,
    /// Where history is read from, if it is kept.
    pub history: Option<HistoryAccess>,
}

/// Serves one chat connection until it ends, then logs how.
pub async fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    shared: &Shared,
    limits: &Limits,
    shutdown: &CancellationToken,
) {
    let room = &*shared.room;
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
    }) = joined
    else {
        return; // shutting down: the socket closes without a word, like a full listen queue
    };
    info!(%peer, %nick, "joined");
    // Leaves the room even if this task panics, so no ghost member stays behind.
    let _seat = Seat { room, id };
    let session = Session {
        id,
        room,
        sequencer: &shared.sequencer,
        history: shared.history.as_ref(),
        dropped: &dropped,
        shutdown,
        own_outbox,
    };
    let (rd, mut wr) = stream.split();
    let lines = LineReader::new(rd, limits.max_line, limits.line_timeout, peer);
    let reading = session.run(lines, nick, limits);
    let writing = writer::write_outbox(&mut wr, outbox, &dropped, shutdown, limits.shutdown_grace);
    let ((ending, nick, bytes_in), written) = tokio::join!(reading, writing);
    let tcp = kernel_summary(&stream);
    let how = ending.how();
    match written {
        Ok(bytes_out) => info!(%peer, %nick, how, bytes_in, bytes_out, %tcp, "closed"),
        Err(error) => info!(%peer, %nick, how, %error, bytes_in, %tcp, "closed, write failed"),
    }
}

/// Removes its member from the room when dropped, with `left (server error)` if nothing else
/// removed it first (normally the session leaves with the real reason, making this a no-op).
struct Seat<'a> {
    room: &'a Room,
    id: MemberId,
}

impl Drop for Seat<'_> {
    fn drop(&mut self) {
        self.room.leave(self.id, "server error", None);
    }
}

/// Fault injection for tests, compiled into debug builds only: a chat line equal to the
/// environment variable `TCPCHAT_FAULT_PANIC_LINE` panics its connection's task, which shows
/// that one connection's crash stays in that connection.
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

/// One connection's place in the room, and what can end it from outside.
struct Session<'a> {
    id: MemberId,
    room: &'a Room,
    /// Where what the member says goes to be numbered, stored and delivered.
    sequencer: &'a mpsc::Sender<Request>,
    /// Where `/history` and `/search` are answered from, if the server keeps history.
    history: Option<&'a HistoryAccess>,
    /// Cancelled when the room drops this member as too slow.
    dropped: &'a CancellationToken,
    shutdown: &'a CancellationToken,
    /// How full this member's own outbox is: the session waits there for room before
    /// handling a line (see [`Session::pace`]).
    own_outbox: OutboxRoom,
}

/// What the member has said that is not delivered yet.
#[derive(Default)]
struct Saying {
    /// Gathered from the lines already read, not yet handed to the sequencer.
    lines: Vec<(SaidKind, String)>,
    /// Their size, which bounds a hand-over.
    bytes: usize,
    /// The last hand-over, until the sequencer says it is delivered.
    in_flight: Option<oneshot::Receiver<()>>,
}

impl Saying {
    fn push(&mut self, kind: SaidKind, text: &str) {
        self.bytes += text.len();
        self.lines.push((kind, text.to_owned()));
    }
}

impl Session<'_> {
    /// Awaits `future` unless the room drops this member or the server shuts down first.
    async fn unless_ended<T>(&self, future: impl Future<Output = T>) -> Result<T, Ending> {
        tokio::select! {
            biased;
            () = self.dropped.cancelled() => Err(Ending::TooSlow),
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
        let (delivered, in_flight) = oneshot::channel();
        let said = Said {
            nick: nick.to_string(),
            lines: std::mem::take(&mut saying.lines),
            delivered,
        };
        saying.bytes = 0;
        saying.in_flight = Some(in_flight);
        match self
            .unless_ended(self.sequencer.send(Request::Said(said)))
            .await?
        {
            Ok(()) => Ok(()),
            Err(_) => Err(Ending::Shutdown), // the sequencer is gone: the server is stopping
        }
    }

    /// Flushes, then waits until everything this member said is delivered, so that what comes
    /// next from it (a reply, a rename, its leaving) comes after its lines for everyone.
    async fn settle(&self, saying: &mut Saying, nick: &Nick) -> Result<(), Ending> {
        self.flush(saying, nick).await?;
        if let Some(in_flight) = saying.in_flight.take() {
            // An error only means the sequencer stopped, which shutdown reports on its own.
            let _ = self.unless_ended(in_flight).await?;
        }
        Ok(())
    }

    /// Queues one line for this member alone.
    fn tell<'l>(&self, line: impl Into<ServerLine<'l>>) {
        self.room.send_to(self.id, line.into().to_bytes());
    }

    /// Reads and handles lines until the connection should end, leaves the room (which closes
    /// the outbox, so the writer flushes and sends FIN), then after `exit` or `/quit` drains
    /// what the client still sends so our close is a FIN, not a reset. Returns the ending, the
    /// last nick and the bytes read.
    async fn run(
        &self,
        mut lines: LineReader<ReadHalf<'_>>,
        mut nick: Nick,
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
                && let Err(ending) = self.flush(&mut saying, &nick).await
            {
                break ending; // nothing more is ready without waiting for the socket
            }
            let input = match self.unless_ended(lines.next()).await {
                Ok(input) => input,
                Err(ending) => break ending,
            };
            let handled = match input {
                Input::Ended(ending) => break ending,
                // Nothing to relay or answer: no flood token, no queue room.
                Input::Line { text, .. } if text.trim().is_empty() => continue,
                Input::TooLong { max } => {
                    async {
                        self.pace(&mut flood, &mut saying, &nick).await?;
                        self.settle(&mut saying, &nick).await?;
                        self.tell(Refusal::LineTooLong { max });
                        Ok(None)
                    }
                    .await
                }
                Input::Line { text, invalid_utf8 } => {
                    async {
                        self.pace(&mut flood, &mut saying, &nick).await?;
                        if invalid_utf8 && !told_invalid_utf8 {
                            told_invalid_utf8 = true;
                            self.settle(&mut saying, &nick).await?;
                            self.tell(Refusal::InvalidUtf8);
                        }
                        self.handle_line(&text, &mut nick, &mut saying).await
                    }
                    .await
                }
            };
            match handled {
                Ok(None) => {}
                Ok(Some(ending)) | Err(ending) => break ending,
            }
            if saying.bytes >= SAID_BATCH
                && let Err(ending) = self.flush(&mut saying, &nick).await
            {
                break ending;
            }
            // Lines already buffered never touch the socket, so yield by budget: a burst from
            // one client must not hold a worker thread away from everyone else's writers.
            tokio::task::consume_budget().await;
        };
        // What was said before the end is still said, unless the room is gone or dropped us;
        // then it leaves, after its lines.
        if !matches!(ending, Ending::Shutdown | Ending::TooSlow) {
            let _ = self.settle(&mut saying, &nick).await;
        }
        // On shutdown the room closes every outbox itself, without a `left` line for each.
        if !matches!(ending, Ending::Shutdown) {
            let farewell = farewell(&ending, &nick, limits).map(|line| line.to_bytes());
            self.room.leave(self.id, &ending.to_string(), farewell);
        }
        let bytes_in = lines.bytes_in();
        match ending {
            Ending::Exit | Ending::Quit(_) | Ending::LineTimeout => {
                linger(lines.into_inner(), self.shutdown, LINGER).await;
            }
            // A dropped client may still be sending; unread input at close would turn our FIN
            // into a reset that destroys the notice telling it why. Drain while it is written.
            Ending::TooSlow => {
                linger(lines.into_inner(), self.shutdown, DROPPED_NOTICE_TIMEOUT).await;
            }
            _ => {}
        }
        (ending, nick, bytes_in)
    }

    /// Waits before a line is handled, as long as the flood limit and this member's own
    /// outbox require; gathered lines go out first, so nothing said waits with it.
    async fn pace(
        &self,
        flood: &mut Flood,
        saying: &mut Saying,
        nick: &Nick,
    ) -> Result<(), Ending> {
        let now = Instant::now();
        if let Some(wait) = flood.gate.take(now) {
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
    /// (plain text, `/me`) is gathered; anything else first waits until what was gathered is
    /// delivered, so every member sees this member's lines and replies in the order they were
    /// sent.
    async fn handle_line(
        &self,
        text: &str,
        nick: &mut Nick,
        saying: &mut Saying,
    ) -> Result<Option<Ending>, Ending> {
        #[cfg(debug_assertions)]
        if fault_injection::panics_on(text) {
            panic!("fault injection: a connection task panics on {text:?}");
        }
        let clean = sanitize(text);
        let command = Command::parse(&clean);
        match command {
            Command::Say(text) if !text.trim().is_empty() => {
                saying.push(SaidKind::Message, text);
                return Ok(None);
            }
            Command::Me(text) if !text.is_empty() => {
                saying.push(SaidKind::Action, text);
                return Ok(None);
            }
            _ => self.settle(saying, nick).await?,
        }
        match command {
            Command::Say(_) => {}
            Command::Me(_) => self.tell(Refusal::Usage("/me ACTION")),
            Command::Nick(requested) => {
                // Only this session renames its member, so the nick kept here stays true.
                match Nick::parse(requested)
                    .and_then(|new| self.room.rename(self.id, new.clone()).map(|()| new))
                {
                    Ok(new) => *nick = new,
                    Err(error) => self.tell(Refusal::Nick(error)),
                }
            }
            Command::Who => {
                let who = self.room.who();
                let nicks = who.iter().map(String::as_str).collect();
                self.tell(Event::Online { nicks });
            }
            Command::Help => {
                for line in help_lines() {
                    self.tell(Event::Notice(line.into()));
                }
            }
            Command::History(args) => {
                let question = HistoryRequest::parse(args).map(Question::History);
                self.answer(question).await?;
            }
            Command::Search(words) => self.answer(Question::search(words)).await?,
            Command::Unknown(name) => self.tell(Refusal::UnknownCommand(name)),
            Command::Exit => return Ok(Some(Ending::Exit)),
            Command::Quit(reason) => return Ok(Some(Ending::Quit(reason.to_owned()))),
        }
        Ok(None)
    }

    /// Answers `/history` or `/search`, block by block as the member's outbox has room.
    async fn answer(&self, question: Result<Question, Refusal<'_>>) -> Result<(), Ending> {
        let refusal = match (question, self.history) {
            (Err(refusal), _) => refusal,
            (Ok(_), None) => Refusal::NoHistory,
            (Ok(question), Some(history)) => {
                match self.unless_ended(history.answer(question)).await? {
                    Err(refusal) => refusal,
                    Ok(blocks) => {
                        for block in blocks {
                            self.unless_ended(self.own_outbox.wait_for_room(1)).await?;
                            self.room.send_to(self.id, block);
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
