//! The lessons' experiments: each one the article's calls, made one step at a time on real
//! sockets over loopback in this process (both the server's end and the client's), with what the
//! kernel showed after each step, and at the end which of the lesson's choices the run showed.
//!
//! One file per lesson; [`Experiment`] is what they have in common, [`new`] makes one.

mod backlog;
mod boundaries;
mod half_close;
mod handshake;
mod listen;
mod nagle;
mod ports;
mod reset;
mod send;
mod stop_reading;

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::time::Instant;

use super::LessonId;
use super::fact::{Fact, Side};
use super::sock::{LOOPBACK, Sock};
use crate::tcp_table;
use crate::tcpinfo::{TcpInfo, state_name};

/// One lesson's run.
pub trait Experiment: Send {
    /// Makes step `n` (from 0) of the lesson's steps and says what it showed.
    fn step(&mut self, n: usize) -> BoxFuture<'_, io::Result<Vec<Fact>>>;

    /// Which of the lesson's choices (from 0) the run showed, once it has shown it.
    fn outcome(&self) -> Option<usize>;

    /// The ports of the run's servers (listening, or refusing), so the segments of its
    /// connections can be told from everything else on loopback.
    fn server_ports(&self) -> Vec<u16>;
}

/// A fresh run of `lesson`: nothing made yet.
pub fn new(lesson: LessonId) -> Box<dyn Experiment> {
    match lesson {
        LessonId::Listen => Box::<listen::Listen>::default(),
        LessonId::Handshake => Box::<handshake::Handshake>::default(),
        LessonId::Send => Box::<send::Send>::default(),
        LessonId::Boundaries => Box::<boundaries::Boundaries>::default(),
        LessonId::Nagle => Box::<nagle::Nagle>::default(),
        LessonId::StopReading => Box::<stop_reading::StopReading>::default(),
        LessonId::HalfClose => Box::<half_close::HalfClose>::default(),
        LessonId::Reset => Box::<reset::Reset>::default(),
        LessonId::Backlog => Box::<backlog::Backlog>::default(),
        LessonId::Ports => Box::<ports::Ports>::default(),
    }
}

/// The longest any one wait for the kernel lasts: everything here happens on loopback in well
/// under a millisecond, so a step that needs longer says that something else is going on.
const WAIT: Duration = Duration::from_secs(2);

/// The error a step reports when it is asked for before the step it needs.
fn out_of_order() -> io::Error {
    io::Error::other("that step needs the one before it")
}

/// A listening socket on loopback, as the article makes one: `socket()`, `bind()`, `listen(n)`.
fn listener(backlog: i32) -> io::Result<(Sock, SocketAddr)> {
    let mut listener = Sock::new()?;
    listener.reuse_address(true)?;
    let addr = listener.bind(LOOPBACK)?;
    listener.listen(backlog)?;
    Ok((listener, addr))
}

/// The two ends of one connection, and the listener that made the server's.
struct Pair {
    listener: Sock,
    client: Sock,
    server: Sock,
}

/// `listen(5)`, `connect()`, `accept()`: a connection to teach with, and the facts of making it.
async fn pair() -> io::Result<(Pair, Vec<Fact>)> {
    let (listener, addr) = listener(5)?;
    let mut client = Sock::new()?;
    client.connect(addr, WAIT).await?;
    let server = listener.accept(WAIT).await?;
    let facts = vec![
        Fact::returned(Side::Server, format!("listen(5) on {addr}")),
        Fact::returned(
            Side::Client,
            format!("connect() = 0: {} → {addr}", client.local()?),
        ),
        Fact::returned(
            Side::Server,
            format!("accept() = a new socket for {}", server.peer()?),
        ),
    ];
    Ok((
        Pair {
            listener,
            client,
            server,
        },
        facts,
    ))
}

impl Pair {
    /// The listener's port.
    fn port(&self) -> Vec<u16> {
        self.listener
            .local()
            .map(|addr| addr.port())
            .into_iter()
            .collect()
    }
}

/// Step 0 of the lessons that need one connection: makes it into `slot`.
async fn make_pair(slot: &mut Option<Pair>) -> io::Result<Vec<Fact>> {
    let (made, facts) = pair().await?;
    *slot = Some(made);
    Ok(facts)
}

/// `tcpi_state = NAME`.
fn state(info: &TcpInfo) -> String {
    format!("tcpi_state = {}", info.state.map_or("unknown", state_name))
}

/// A figure the kernel may not report, as `?` when it did not.
fn figure(value: Option<u64>) -> String {
    value.map_or_else(|| "?".to_owned(), |value| value.to_string())
}

/// The listener's accept queue: `tcpi_unacked` of `tcpi_sacked`.
fn accept_queue(info: &TcpInfo) -> String {
    format!(
        "accept queue {} of {} (tcpi_unacked, limit tcpi_sacked)",
        figure(info.unacked),
        figure(info.sacked)
    )
}

/// The kernel's table's rows on `port`, one fact each (or one saying there are none).
async fn table(port: u16) -> Vec<Fact> {
    match tcp_table::rows_with_port(port).await {
        Ok(rows) if rows.is_empty() => vec![Fact::table(format!("no row with port {port}"))],
        Ok(rows) => rows
            .iter()
            .map(|row| {
                Fact::table(format!(
                    "{} ⇄ {} {}",
                    row.local,
                    row.remote,
                    state_name(row.state)
                ))
            })
            .collect(),
        Err(error) => vec![Fact::table(format!("cannot be read: {error}"))],
    }
}

/// Waits until the kernel's table's rows on `port` are `settled` (a close's last segments
/// cross loopback within a millisecond, a delayed ACK within tens), looking every millisecond
/// for at most 200 ms: the table does not signal a change.
async fn table_settles(port: u16, settled: impl Fn(&[tcp_table::Row]) -> bool) -> io::Result<()> {
    for _ in 0..200 {
        if settled(&tcp_table::rows_with_port(port).await?) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

/// Milliseconds with two decimals: loopback's times are tenths of a millisecond.
fn millis(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

/// How long `since` was.
fn elapsed(since: Instant) -> String {
    millis(since.elapsed())
}

/// `bytes` as the card shows them: printable, a newline as `\n`, cut after 40 characters.
fn shown(bytes: &[u8]) -> String {
    let text: String = String::from_utf8_lossy(bytes)
        .chars()
        .flat_map(char::escape_default)
        .take(40)
        .collect();
    format!("\"{text}\"")
}

#[cfg(test)]
mod tests;
