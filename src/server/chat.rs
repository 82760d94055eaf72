//! One chat connection: its reader (lines in, commands, flood limit) and its writer (the
//! member's outbox out, batched), run side by side in one task so a blocked write never stops
//! reads.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::codec::FramedRead;
use tokio_util::io::InspectReader;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::flood::FloodGate;
use super::nick::Nick;
use super::room::{Joined, MemberId, Room, line};
use super::{Ending, LINGER, Limits, kernel_summary, linger};
use crate::codec::{Frame, LineCodec, sanitize};

/// Most queued lines written with one syscall. Batching is what keeps fan-out cheap: a burst of
/// broadcasts costs each member one write, not one per line.
const WRITE_BATCH: usize = 256;

/// Capacities a writer keeps while idle; anything larger a burst grew is freed.
const IDLE_BATCH_CAPACITY: usize = 16;
const IDLE_BUFFER_CAPACITY: usize = 2 * 1024;

/// Initial read buffer; it grows up to the line limit only for clients that send long lines, so
/// an idle connection stays small.
const READ_BUFFER: usize = 1024;

/// How long a member dropped as too slow has to read the line telling it why.
const DROPPED_NOTICE_TIMEOUT: Duration = Duration::from_secs(5);

/// Seconds between two flood-limit notices to the same client.
const FLOOD_NOTICE_EVERY: Duration = Duration::from_secs(10);

/// Bytes of said lines gathered before they go to the room even if more are ready: bounds what
/// one queue entry holds, so the send queue's bound stays a bound on memory.
const SAID_BATCH: usize = 4 * 1024;

/// Most lines one client line can queue for its own sender (`/help` is the longest reply).
const REPLY_HEADROOM: usize = HELP.len() + 1;

const HELP: &[&str] = &[
    "* commands:",
    "*   /nick NAME      change your nick (1-24 characters, no spaces)",
    "*   /who            list who is online",
    "*   /me ACTION      say * nick ACTION",
    "*   /quit [REASON]  leave (the line exit does the same)",
    "*   /help           this list",
    "*   //text          send a line that starts with /",
];

/// A line from a client, parsed.
#[derive(Debug, PartialEq, Eq)]
enum Command<'a> {
    /// Plain text for everyone.
    Say(&'a str),
    /// `/me ACTION`.
    Me(&'a str),
    /// `/nick NAME`.
    Nick(&'a str),
    /// `/who`.
    Who,
    /// `/help`.
    Help,
    /// `/quit [REASON]`.
    Quit(&'a str),
    /// The article's `exit`.
    Exit,
    /// Any other `/word`.
    Unknown(&'a str),
}

impl<'a> Command<'a> {
    fn parse(text: &'a str) -> Self {
        if text == "exit" {
            return Self::Exit;
        }
        let Some(command) = text.strip_prefix('/') else {
            return Self::Say(text);
        };
        if command.starts_with('/') {
            return Self::Say(command);
        }
        let (name, rest) = command.split_once(' ').unwrap_or((command, ""));
        let rest = rest.trim();
        match name {
            "me" => Self::Me(rest),
            "nick" => Self::Nick(rest),
            "who" | "names" => Self::Who,
            "help" => Self::Help,
            "quit" => Self::Quit(rest),
            _ => Self::Unknown(name),
        }
    }
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
    let member = Member {
        id,
        peer,
        room,
        dropped: &dropped,
        shutdown,
    };
    let (rd, mut wr) = stream.split();
    let mut bytes_in = 0u64;
    let reading = read_lines(rd, &mut bytes_in, &member, nick, limits, &own_outbox);
    let writing = write_outbox(&mut wr, outbox, &dropped, shutdown, limits.shutdown_grace);
    let ((ending, nick), written) = tokio::join!(reading, writing);
    let bytes_out = written.as_ref().copied().unwrap_or_default();
    let tcp = kernel_summary(&stream);
    match written {
        Ok(_) => info!(%peer, %nick, how = %ending.how(), bytes_in, bytes_out, %tcp, "closed"),
        Err(error) => {
            info!(%peer, %nick, how = %ending.how(), %error, bytes_in, %tcp, "closed, write failed");
        }
    }
}

/// Removes its member from the room when dropped, with `left (server error)` if nothing else
/// removed it first (normally the reader leaves with the real reason, making this a no-op).
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
struct Member<'a> {
    id: MemberId,
    peer: SocketAddr,
    room: &'a Room,
    dropped: &'a CancellationToken,
    shutdown: &'a CancellationToken,
}

impl Member<'_> {
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
    fn tell(&self, text: impl std::fmt::Display) {
        self.room.send_to(self.id, line(text));
    }
}

/// Reads and handles lines until the connection should end, leaves the room (which closes the
/// outbox, so the writer flushes and sends FIN), then after `exit` or `/quit` drains what the
/// client still sends so our close is a FIN, not a reset. Returns the ending and the last nick.
async fn read_lines(
    rd: ReadHalf<'_>,
    bytes_in: &mut u64,
    member: &Member<'_>,
    mut nick: Nick,
    limits: &Limits,
    own_outbox: &mpsc::WeakSender<Bytes>,
) -> (Ending, Nick) {
    let id = member.id;
    let counted = InspectReader::new(rd, |read: &[u8]| {
        *bytes_in += read.len() as u64;
        debug!(peer = %member.peer, bytes = read.len(), "recv");
    });
    let mut lines =
        FramedRead::with_capacity(counted, LineCodec::new(limits.max_line), READ_BUFFER);
    let mut flood = FloodGate::new(limits.flood);
    let mut flood_notice_at: Option<Instant> = None;
    let mut told_invalid_utf8 = false;

    let mut partial_since: Option<Instant> = None;

    // Lines said in one read go to the room as one entry: a burst of 100 lines costs each
    // member one queue slot and one wake-up, not 100 (see `Member::flush`).
    let mut said = BytesMut::new();

    let ending = loop {
        if !said.is_empty() && !lines.read_buffer().contains(&b'\n') {
            member.flush(&mut said); // nothing more is ready without waiting for the socket
        }
        // A line begun but not finished within the timeout ends the connection: a client
        // trickling bytes (slowloris) must not hold a slot forever. A begun line is noticed
        // after a frame or when the wait below times out, so it gets between one and two
        // timeouts; an idle connection wakes once per timeout to look.
        if lines.read_buffer().is_empty() {
            partial_since = None;
        } else {
            partial_since.get_or_insert_with(Instant::now);
        }
        let deadline = partial_since.unwrap_or_else(Instant::now) + limits.line_timeout;
        let next = tokio::time::timeout_at(deadline, lines.next());
        let frame = match member.unless_ended(next).await {
            Ok(Ok(frame)) => {
                // A line ended: whatever follows it in the buffer began with the latest read.
                partial_since = None;
                frame
            }
            Ok(Err(_elapsed)) if partial_since.is_none() => continue,
            Ok(Err(_elapsed)) => break Ending::LineTimeout,
            Err(ending) => break ending,
        };
        let frame = match frame {
            None => break Ending::PeerClosed,
            Some(Err(error)) => break Ending::from_read_error(error),
            Some(Ok(frame)) => frame,
        };
        if matches!(&frame, Frame::Line { text, .. } if text.trim().is_empty()) {
            continue; // nothing to relay and nothing to answer: no flood token, no queue room
        }
        let now = Instant::now();
        if let Some(wait) = flood.take(now) {
            member.flush(&mut said);
            if flood_notice_at.is_none_or(|at| now >= at + FLOOD_NOTICE_EVERY) {
                flood_notice_at = Some(now);
                let per_second = limits.flood.per_second;
                member.tell(format!(
                    "! flood limit: {per_second} lines/s; your lines are delayed, none dropped"
                ));
            }
            if let Err(ending) = member.unless_ended(tokio::time::sleep(wait)).await {
                break ending;
            }
        }
        // One read can hold thousands of lines, and this member's own writer runs only when
        // this loop waits: make sure its queue has room for what this line may send back, so a
        // client that reads is never dropped as too slow for what it sent in one burst.
        if let Some(own) = own_outbox.upgrade()
            && own.capacity() < REPLY_HEADROOM
        {
            member.flush(&mut said);
            let replies = REPLY_HEADROOM.min(own.max_capacity());
            if let Err(ending) = member.unless_ended(own.reserve_many(replies)).await {
                break ending;
            }
        }
        let (text, invalid_utf8) = match frame {
            Frame::TooLong { max } => {
                member.flush(&mut said);
                member.tell(format!(
                    "! line too long (limit {max} bytes); skipped to its end"
                ));
                continue;
            }
            Frame::Line { text, invalid_utf8 } => (text, invalid_utf8),
        };
        if invalid_utf8 && !told_invalid_utf8 {
            told_invalid_utf8 = true;
            member.flush(&mut said);
            member.tell("! your line had bytes that are not UTF-8; they became U+FFFD");
        }
        if let Some(ending) = handle_line(&text, member, &mut nick, &mut said) {
            break ending;
        }
        if said.len() >= SAID_BATCH {
            member.flush(&mut said);
        }
        // Lines already buffered never touch the socket, so yield by budget: a burst from one
        // client must not hold a worker thread away from everyone else's writers.
        tokio::task::consume_budget().await;
    };
    // What was said before the end is still said, unless the room is gone or dropped us.
    if !matches!(ending, Ending::Shutdown | Ending::TooSlow) {
        member.flush(&mut said);
    }
    // On shutdown the room closes every outbox itself, without a `left` line for each.
    if !matches!(ending, Ending::Shutdown) {
        let farewell = farewell(&ending, &nick, limits);
        member.room.leave(id, &ending.to_string(), farewell);
    }
    match ending {
        Ending::Exit | Ending::Quit(_) | Ending::LineTimeout => {
            linger(lines.into_inner(), member.shutdown, LINGER).await;
        }
        // A dropped client may still be sending; unread input at close would turn our FIN into
        // a reset that destroys the notice telling it why. Drain while the notice is written.
        Ending::TooSlow => {
            linger(lines.into_inner(), member.shutdown, DROPPED_NOTICE_TIMEOUT).await;
        }
        _ => {}
    }
    (ending, nick)
}

/// Acts on one line; returns how the connection ends if the line ends it. What is said
/// (plain text, `/me`) is gathered in `said`; anything else first sends what was gathered, so
/// every member sees this member's lines and replies in the order they were sent.
fn handle_line(
    text: &str,
    member: &Member<'_>,
    nick: &mut Nick,
    said: &mut BytesMut,
) -> Option<Ending> {
    #[cfg(debug_assertions)]
    if fault_injection::panics_on(text) {
        panic!("fault injection: a connection task panics on {text:?}");
    }
    let room = member.room;
    let clean = sanitize(text);
    let command = Command::parse(&clean);
    match command {
        Command::Say(text) if !text.trim().is_empty() => {
            gather(said, ["<", nick.as_str(), "> ", text]);
            return None;
        }
        Command::Me(action) if !action.is_empty() => {
            gather(said, ["* ", nick.as_str(), " ", action]);
            return None;
        }
        _ => member.flush(said),
    }
    match command {
        Command::Say(_) => {}
        Command::Me(_) => member.tell("! usage: /me ACTION"),
        Command::Nick(requested) => {
            // Only this connection renames its member, so the nick kept here stays true.
            match Nick::parse(requested)
                .and_then(|new| room.rename(member.id, new.clone()).map(|()| new))
            {
                Ok(new) => *nick = new,
                Err(error) => member.tell(format!("! {error}")),
            }
        }
        Command::Who => {
            let who = room.who();
            member.tell(format!("* online ({}): {}", who.len(), who.join(", ")));
        }
        Command::Help => HELP.iter().for_each(|help| member.tell(help)),
        Command::Unknown(name) => {
            member.tell(format!(
                "! unknown command /{name}; /help lists the commands"
            ));
        }
        Command::Exit => return Some(Ending::Exit),
        Command::Quit(reason) => return Some(Ending::Quit(reason.to_owned())),
    }
    None
}

/// Appends one protocol line, made of `pieces` and a newline, to the gathered lines.
fn gather(said: &mut BytesMut, pieces: [&str; 4]) {
    for piece in pieces {
        said.extend_from_slice(piece.as_bytes());
    }
    said.extend_from_slice(b"\n");
}

/// The last line a member is sent when its connection ends this way, if any.
fn farewell(ending: &Ending, nick: &Nick, limits: &Limits) -> Option<Bytes> {
    match ending {
        Ending::Exit | Ending::Quit(_) => {
            Some(line(format!("* bye, {nick}; closing the connection")))
        }
        Ending::LineTimeout => {
            let secs = limits.line_timeout.as_secs_f64();
            Some(line(format!(
                "! line not finished within {secs} s; closing"
            )))
        }
        _ => None,
    }
}

/// Writes the member's outbox to the socket, many lines per write, until the room closes it;
/// then sends FIN. Returns the bytes written.
async fn write_outbox(
    wr: &mut WriteHalf<'_>,
    mut outbox: mpsc::Receiver<Bytes>,
    dropped: &CancellationToken,
    shutdown: &CancellationToken,
    grace: Duration,
) -> io::Result<u64> {
    let give_up = async {
        shutdown.cancelled().await;
        tokio::time::sleep(grace).await;
    };
    tokio::pin!(give_up);
    let mut batch = Vec::new();
    let mut pending = BytesMut::new();
    let mut written = 0u64;
    loop {
        let received = tokio::select! {
            biased;
            () = dropped.cancelled() => return tell_dropped(wr, written, false).await,
            received = outbox.recv_many(&mut batch, WRITE_BATCH) => received,
        };
        if received == 0 {
            break;
        }
        pending.clear();
        batch
            .drain(..)
            .for_each(|text| pending.extend_from_slice(&text));
        tokio::select! {
            biased;
            () = dropped.cancelled() => return tell_dropped(wr, written, true).await,
            () = &mut give_up => return Ok(written),
            result = wr.write_all(&pending) => result?,
        }
        written += pending.len() as u64;
        if outbox.is_empty() {
            // Idle again: give back what a burst grew, so ten thousand quiet members stay
            // small (a burst-sized batch and buffer would otherwise stay for good).
            if batch.capacity() > IDLE_BATCH_CAPACITY {
                batch = Vec::new();
            }
            if pending.capacity() > IDLE_BUFFER_CAPACITY {
                pending = BytesMut::new();
            }
        }
    }
    tokio::select! {
        () = &mut give_up => {}
        result = wr.shutdown() => result?,
    }
    Ok(written)
}

/// The queue of a member dropped as too slow is thrown away; what is left is one line saying
/// why (after a newline if a write was cut mid-line), given a few seconds to get through.
async fn tell_dropped(wr: &mut WriteHalf<'_>, written: u64, mid_line: bool) -> io::Result<u64> {
    let notice = "! you were dropped: too slow (your send queue was full)\n";
    let attempt = async {
        if mid_line {
            wr.write_all(b"\n").await?;
        }
        wr.write_all(notice.as_bytes()).await?;
        wr.shutdown().await
    };
    tokio::time::timeout(DROPPED_NOTICE_TIMEOUT, attempt)
        .await
        .ok()
        .transpose()?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_and_plain_text_is_said() {
        assert_eq!(Command::parse("hello"), Command::Say("hello"));
        assert_eq!(Command::parse("exit"), Command::Exit);
        assert_eq!(Command::parse("exit now"), Command::Say("exit now"));
        assert_eq!(Command::parse("/me waves  "), Command::Me("waves"));
        assert_eq!(Command::parse("/nick 小明"), Command::Nick("小明"));
        assert_eq!(Command::parse("/quit"), Command::Quit(""));
        assert_eq!(
            Command::parse("/quit gone home"),
            Command::Quit("gone home")
        );
        assert_eq!(Command::parse("/who"), Command::Who);
        assert_eq!(Command::parse("//etc/hosts"), Command::Say("/etc/hosts"));
        assert_eq!(
            Command::parse("/frobnicate x"),
            Command::Unknown("frobnicate")
        );
    }
}
