//! Opening connections: connect, read up to the line that says the client is in (answering the
//! tokio-chat design's username prompt on the way), and why one failed, for the report; the
//! probe that tells clients of servers that never say so that they are in (see [`crate::proto`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use rustix::io::Errno;
use tcpchat::codec::Frame;
use tcpchat::protocol::{Event, Scoped, ServerLine};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::cli::Common;
use crate::lines::Lines;
use crate::proto::{BARRIER, Proto};
use crate::tls::{self, Read, Write};

/// Longest wait for one connection to open and greet.
pub const CONNECT_DEADLINE: Duration = Duration::from_secs(10);

/// An open connection past its greeting, with what was read after the greeting.
pub struct Conn {
    /// The lines from the server, starting after the greeting.
    pub lines: Lines<Read>,
    /// The write half; dropping it sends FIN.
    pub writer: Write,
}

/// Why a connection failed to open and greet, for the report.
pub fn failure_kind(error: &anyhow::Error) -> &'static str {
    if let Some(io) = error.downcast_ref::<std::io::Error>() {
        return match io.kind() {
            std::io::ErrorKind::ConnectionRefused => "refused",
            std::io::ErrorKind::ConnectionReset => "reset",
            std::io::ErrorKind::TimedOut => "timeout",
            _ if Errno::from_io_error(io) == Some(Errno::MFILE) => "out_of_fds",
            _ => "io",
        };
    }
    if error.is::<tokio::time::error::Elapsed>() {
        return "timeout";
    }
    if error.is::<ClosedBeforeGreeting>() {
        return "closed";
    }
    "other"
}

/// The server closed a connection before saying the client was in.
#[derive(Debug)]
pub struct ClosedBeforeGreeting;

impl std::fmt::Display for ClosedBeforeGreeting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the server closed the connection before its greeting")
    }
}

impl std::error::Error for ClosedBeforeGreeting {}

/// Connects and reads up to the line saying this client is in; for tokio-chat, up to the
/// username prompt, answered with `u{index}` if `joining` (the client is then in once the server
/// has read it: [`probe`] tells when). The relay says nothing: connected is all there is. Reads
/// up to `chunk` bytes at a time, during the greeting and after it.
pub async fn open(
    target: SocketAddr,
    proto: Proto,
    index: usize,
    joining: bool,
    chunk: usize,
) -> Result<Conn> {
    let stream = TcpStream::connect(target).await?;
    stream.set_nodelay(true)?;
    let (reader, mut writer) = tls::connect(stream).await?;
    let mut lines = Lines::new(reader, chunk);
    if proto == Proto::Relay {
        return Ok(Conn { lines, writer });
    }
    loop {
        while let Some(frame) = lines.next_line() {
            let Frame::Line { text, .. } = frame else {
                continue;
            };
            if proto.is_ready(&text) {
                if proto == Proto::TokioChat && joining {
                    writer.write_all(format!("u{index}\n").as_bytes()).await?;
                    writer.flush().await?;
                }
                return Ok(Conn { lines, writer });
            }
        }
        if lines.fill().await? == 0 {
            return Err(ClosedBeforeGreeting.into());
        }
    }
}

/// Asks the server to take a tcpchat client into `room` (and out of `#lobby` if
/// `leave_lobby`); [`entered`] reads the answer.
async fn ask_to_enter(conn: &mut Conn, room: &str, leave_lobby: bool) -> Result<()> {
    let part = if leave_lobby { "/part #lobby\n" } else { "" };
    conn.writer
        .write_all(format!("/join {room}\n{part}").as_bytes())
        .await?;
    conn.writer.flush().await?;
    Ok(())
}

/// Reads up to the server's word that `conn`'s plain lines now go to `room`.
async fn entered(conn: &mut Conn, room: &str) -> Result<()> {
    loop {
        while let Some(frame) = conn.lines.next_line() {
            let Frame::Line { text, .. } = frame else {
                continue;
            };
            match Scoped::parse(&text).map(|scoped| scoped.line) {
                Some(ServerLine::Event(Event::Talking { room: now }))
                    if now.eq_ignore_ascii_case(room) =>
                {
                    return Ok(());
                }
                Some(ServerLine::Error(error)) => {
                    anyhow::bail!("the server refused {room}: {error}");
                }
                _ => {}
            }
        }
        if conn.lines.fill().await? == 0 {
            return Err(ClosedBeforeGreeting.into());
        }
    }
}

/// Takes every one of `conns` into its room (`room_of` its index), asking for all before
/// reading any answer, so a thousand clients take about one round trip, not a thousand.
pub async fn enter_all(
    conns: &mut [&mut Conn],
    room_of: impl Fn(usize) -> String,
    leave_lobby: bool,
    deadline: tokio::time::Instant,
) -> Result<()> {
    let entering = async {
        for (index, conn) in conns.iter_mut().enumerate() {
            ask_to_enter(conn, &room_of(index), leave_lobby).await?;
        }
        for (index, conn) in conns.iter_mut().enumerate() {
            entered(conn, &room_of(index)).await?;
        }
        Ok(())
    };
    tokio::time::timeout_at(deadline, entering)
        .await
        .map_err(|_| anyhow::anyhow!("clients did not all enter their rooms in time"))?
}

/// Joins one more client, `u{index}`, once all the others are open; see [`Probe::say`].
pub async fn probe(target: SocketAddr, proto: Proto, index: usize) -> Result<Probe> {
    let conn =
        tokio::time::timeout(CONNECT_DEADLINE, open(target, proto, index, true, 4096)).await??;
    Ok(Probe(conn))
}

/// The client that tells the others they are in the room, for servers that never say so.
pub struct Probe(Conn);

impl Probe {
    /// Says [`BARRIER`] once more. Whoever receives it was in the room when the server read it;
    /// a client whose join the server had not handled yet misses it, so the caller says it
    /// again until every client has heard it. Dropping the probe is a leave like any other.
    pub async fn say(&mut self) -> Result<()> {
        self.0.writer.write_all(&[BARRIER, b"\n"].concat()).await?;
        self.0.writer.flush().await?;
        Ok(())
    }

    /// Says [`BARRIER`] until `all_heard()` (true) or `deadline` (false): again after 20 ms,
    /// then twice as long each time up to a second, so that a room of thousands is not flooded
    /// with barriers while it catches up.
    pub async fn until(
        &mut self,
        all_heard: impl Fn() -> bool,
        deadline: tokio::time::Instant,
    ) -> Result<bool> {
        let mut wait = Duration::from_millis(20);
        while !all_heard() {
            self.say().await?;
            let again = tokio::time::Instant::now() + wait;
            while !all_heard() && tokio::time::Instant::now() < again {
                if tokio::time::Instant::now() >= deadline {
                    return Ok(false);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            wait = (wait * 2).min(Duration::from_secs(1));
        }
        Ok(true)
    }
}

/// Opens `count` connections, `concurrency` at a time, each bounded by [`CONNECT_DEADLINE`]
/// and all by `deadline`; connection i to the server [`Common::target_of`] i. Returns the open ones by index and the failures by kind.
pub async fn open_all(
    common: &Common,
    proto: Proto,
    count: usize,
    joining: bool,
    chunk: usize,
    deadline: tokio::time::Instant,
) -> (Vec<(usize, Conn)>, BTreeMap<&'static str, usize>) {
    let gate = Arc::new(Semaphore::new(common.connect_concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..count {
        let gate = gate.clone();
        let target = common.target_of(index);
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await;
            let opened =
                tokio::time::timeout(CONNECT_DEADLINE, open(target, proto, index, joining, chunk))
                    .await
                    .map_err(anyhow::Error::from)
                    .and_then(|opened| opened);
            (index, opened)
        });
    }
    let mut open = Vec::with_capacity(count);
    let mut failed = BTreeMap::new();
    loop {
        match tokio::time::timeout_at(deadline, tasks.join_next()).await {
            Ok(Some(Ok((index, Ok(conn))))) => open.push((index, conn)),
            Ok(Some(Ok((_, Err(error))))) => *failed.entry(failure_kind(&error)).or_insert(0) += 1,
            Ok(Some(Err(_))) => *failed.entry("panic").or_insert(0) += 1,
            Ok(None) => break,
            Err(_) => {
                *failed.entry("timeout").or_insert(0) += tasks.len();
                tasks.abort_all();
                break;
            }
        }
    }
    open.sort_by_key(|(index, _)| *index);
    (open, failed)
}

/// The failures by kind as one report value: `none`, or `kind:n,kind:n`.
pub fn failures(failed: &BTreeMap<&'static str, usize>) -> String {
    if failed.is_empty() {
        return "none".to_owned();
    }
    failed
        .iter()
        .map(|(kind, n)| format!("{kind}:{n}"))
        .collect::<Vec<_>>()
        .join(",")
}
