//! One chat connection: its [`Session`] in the room reads lines ([`LineReader`]) and acts on
//! each [`Command`], while its writer ([`writer::write_outbox`]) empties the member's outbox;
//! both run side by side in one task, so a blocked write never stops reads.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use tokio::net::TcpStream;
use tokio::net::tcp::ReadHalf;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::flood::FloodGate;
use super::line_reader::{Input, LineReader};
use super::outbox::OutboxRoom;
use super::room::{Joined, MemberId, Room};
use super::writer::{self, DROPPED_NOTICE_TIMEOUT};
use super::{Ending, LINGER, Limits, kernel_summary, linger};
use crate::codec::sanitize;
use crate::nick::Nick;
use crate::protocol::{Command, Event, Refusal, ServerLine, help_lines};

/// Seconds between two flood-limit notices to the same client.
const FLOOD_NOTICE_EVERY: Duration = Duration::from_secs(10);

/// Bytes of said lines gathered before they go to the room even if more are ready: bounds what
/// one queue entry holds, so the send queue's bound stays a bound on memory.
const SAID_BATCH: usize = 4 * 1024;

/// Most lines one client line can queue for its own sender (`/help` is the longest reply).
fn reply_headroom() -> usize {
    help_lines().len() + 1
}

/// Serves one chat connection until it ends, then logs how.
pub async fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    room: &Room,
    limits: &Limits,
    shutdown: &CancellationToken,
) {
    let Some(Joined {
        id,
        nick,
        outbox,
        dropped,
        own_outbox,
    }) = room.join()
    else {
        return; // shutting down: the socket closes without a word, like a full listen queue
    };
    info!(%peer, %nick, "joined");
    // Leaves the room even if this task panics, so no ghost member stays behind.
    let _seat = Seat { room, id };
    let session = Session {
        id,
        room,
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
    /// Cancelled when the room drops this member as too slow.
    dropped: &'a CancellationToken,
    shutdown: &'a CancellationToken,
    /// How full this member's own outbox is: the session waits there for room before
    /// handling a line (see [`Session::pace`]).
    own_outbox: OutboxRoom,
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

    /// Sends the lines gathered in `said` to the whole room as one entry.
    fn flush(&self, said: &mut BytesMut) {
        if !said.is_empty() {
            self.room.broadcast(said.split().freeze());
        }
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
        // Lines said in one read go to the room as one entry: a burst of 100 lines costs each
        // member one queue slot and one wake-up, not 100 (see `Session::flush`).
        let mut said = BytesMut::new();

        let ending = loop {
            if !said.is_empty() && !lines.has_buffered_line() {
                self.flush(&mut said); // nothing more is ready without waiting for the socket
            }
            let input = match self.unless_ended(lines.next()).await {
                Ok(input) => input,
                Err(ending) => break ending,
            };
            match input {
                Input::Ended(ending) => break ending,
                // Nothing to relay or answer: no flood token, no queue room.
                Input::Line { text, .. } if text.trim().is_empty() => continue,
                Input::TooLong { max } => {
                    if let Err(ending) = self.pace(&mut flood, &mut said).await {
                        break ending;
                    }
                    self.flush(&mut said);
                    self.tell(Refusal::LineTooLong { max });
                }
                Input::Line { text, invalid_utf8 } => {
                    if let Err(ending) = self.pace(&mut flood, &mut said).await {
                        break ending;
                    }
                    if invalid_utf8 && !told_invalid_utf8 {
                        told_invalid_utf8 = true;
                        self.flush(&mut said);
                        self.tell(Refusal::InvalidUtf8);
                    }
                    if let Some(ending) = self.handle_line(&text, &mut nick, &mut said) {
                        break ending;
                    }
                }
            }
            if said.len() >= SAID_BATCH {
                self.flush(&mut said);
            }
            // Lines already buffered never touch the socket, so yield by budget: a burst from
            // one client must not hold a worker thread away from everyone else's writers.
            tokio::task::consume_budget().await;
        };
        // What was said before the end is still said, unless the room is gone or dropped us.
        if !matches!(ending, Ending::Shutdown | Ending::TooSlow) {
            self.flush(&mut said);
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
    async fn pace(&self, flood: &mut Flood, said: &mut BytesMut) -> Result<(), Ending> {
        let now = Instant::now();
        if let Some(wait) = flood.gate.take(now) {
            self.flush(said);
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
            self.flush(said);
            let room = self.own_outbox.wait_for_room(reply_headroom());
            self.unless_ended(room).await?;
        }
        Ok(())
    }

    /// Acts on one line; returns how the connection ends if the line ends it. What is said
    /// (plain text, `/me`) is gathered in `said`; anything else first sends what was gathered,
    /// so every member sees this member's lines and replies in the order they were sent.
    fn handle_line(&self, text: &str, nick: &mut Nick, said: &mut BytesMut) -> Option<Ending> {
        #[cfg(debug_assertions)]
        if fault_injection::panics_on(text) {
            panic!("fault injection: a connection task panics on {text:?}");
        }
        let clean = sanitize(text);
        let command = Command::parse(&clean);
        let nick_str = nick.as_str();
        match command {
            Command::Say(text) if !text.trim().is_empty() => {
                ServerLine::Message {
                    nick: nick_str,
                    text,
                }
                .write_to(said);
                return None;
            }
            Command::Me(text) if !text.is_empty() => {
                ServerLine::Action {
                    nick: nick_str,
                    text,
                }
                .write_to(said);
                return None;
            }
            _ => self.flush(said),
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
            Command::Unknown(name) => self.tell(Refusal::UnknownCommand(name)),
            Command::Exit => return Some(Ending::Exit),
            Command::Quit(reason) => return Some(Ending::Quit(reason.to_owned())),
        }
        None
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
