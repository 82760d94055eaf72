//! The client's network task: the one owner of the socket.
//!
//! [`spawn`] starts a task that resolves, connects (with a timeout), and then runs a reader and
//! a writer side by side, so a write blocked on a peer that does not read never stops reads.
//! Every step is reported to the UI as a [`NetEvent`]; the UI sends [`Outgoing`] back. After an
//! unexpected close the task reconnects with backoff; after a deliberate exit it ends.
//!
//! Channel policy: `NetEvent`s go over a bounded channel, each stamped with the moment it
//! happened, and the task awaits room in it, so a slow UI slows reading and TCP flow control
//! does the rest. The UI `try_send`s `Outgoing` and shows a note when the queue is full. The
//! kernel's `TCP_INFO` is sampled at each lifecycle step, and while the UI says the inspector is
//! open (a `watch` of `bool`) also every [`SAMPLE_EVERY`] into a `watch` where the latest wins.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::local_host::{Claim, LocalHost, TAKEOVER_STORE_WAIT};
use crate::protocol::Framing;
use crate::server::observe::ServerSample;
use crate::tcp_table::{self, TimeWait};
use crate::tcpinfo::{self, TcpInfo};
use crate::tls::client::{ClientTls, Established, TlsFailure};
use crate::tls::record::{Record, RecordTap};

/// How long a `connect()` may take before it counts as failed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Size of each `recv()`: the most one [`NetEvent::Received`] carries.
const READ_SIZE: usize = 8 * 1024;

/// Events queued towards the UI before the task waits.
pub const EVENT_QUEUE: usize = 256;

/// Lines queued towards the socket before the UI is told the queue is full.
pub const OUTGOING_QUEUE: usize = 256;

/// How often `TCP_INFO` is sampled while the inspector is open.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(250);

/// A connection that lasts at least this long resets the reconnect backoff; a shorter one
/// (a server that accepts and closes at once, or says it is full) keeps it doubling.
const STABLE_SESSION: Duration = Duration::from_secs(10);

/// First and last pause between reconnect attempts; it doubles in between.
const RECONNECT_BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(30));

/// The host and the port of `HOST:PORT` or `[IPv6]:PORT`, the brackets dropped.
pub fn host_and_port(target: &str) -> (&str, Option<&str>) {
    let (host, port) = target
        .rsplit_once(':')
        .map_or((target, None), |(host, port)| (host, Some(port)));
    (host.trim_start_matches('[').trim_end_matches(']'), port)
}

/// What the UI asks the network task to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    /// A line typed by the user; written as the session's [`Framing`] says.
    Line(String),
    /// End the session: write this line (`exit` or `/quit ...`), then close our sending side
    /// (FIN), then wait for the server to close its side.
    Exit(String),
    /// Close now, saying nothing and waiting for nothing, and never connect again: what
    /// answered is not a tcpchat server.
    HangUp,
}

/// How a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Close {
    /// The server closed its side: a read returned 0 (FIN).
    PeerFin,
    /// The connection was reset (RST).
    Reset,
    /// Any other error.
    Failed(String),
    /// We hung up ([`Outgoing::HangUp`]).
    HungUp,
}

/// Everything the network task reports, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetEvent {
    /// Looking up the host's addresses.
    Resolving {
        /// The `HOST:PORT` being resolved.
        target: String,
    },
    /// The addresses the name resolved to, in the order they will be tried.
    Resolved {
        /// Every address found.
        addrs: Vec<SocketAddr>,
    },
    /// A `connect()` to one address is starting.
    Connecting {
        /// The address being tried.
        addr: SocketAddr,
    },
    /// The three-way handshake finished.
    Connected {
        /// Our address, with the ephemeral port the kernel chose.
        local: SocketAddr,
        /// The server's address.
        peer: SocketAddr,
        /// How long `connect()` took: one handshake round trip.
        handshake: Duration,
        /// The kernel's figures right after the handshake (Linux).
        info: Option<TcpInfo>,
    },
    /// Resolving or connecting failed; the reason in words.
    ConnectFailed(String),
    /// The TLS handshake finished (after [`NetEvent::Connected`], with `--tls`).
    TlsEstablished {
        /// What was agreed, and how the server's certificate was trusted.
        established: Established,
        /// How long the TLS handshake took after TCP's.
        handshake: Duration,
    },
    /// The TLS handshake failed; the connection is closed. A [`TlsFailure::is_final`] one is
    /// not retried: the task waits for the user to quit.
    TlsFailed(TlsFailure),
    /// TLS records that crossed the socket since the last event, oldest first: what the
    /// plaintext of the next [`NetEvent::Received`] (or the last [`NetEvent::Sent`]) was
    /// carried in, and the handshake.
    TlsRecords(Vec<Record>),
    /// One `recv()`: the bytes exactly as this read returned them.
    Received(Bytes),
    /// One line written, `bytes` long on the wire.
    Sent {
        /// Bytes written.
        bytes: usize,
        /// Whether it was the exit line of [`Outgoing::Exit`].
        exit: bool,
    },
    /// After [`Outgoing::Exit`]: our sending side is shut down (FIN sent).
    FinSent {
        /// The socket's state read just before `shutdown(Write)`: CLOSE-WAIT there means the
        /// server's FIN had already come, whatever the state is after.
        before: Option<u8>,
        /// The kernel's figures just after `shutdown(Write)`. On loopback the whole close can
        /// be over by then (CLOSED), whichever FIN went first.
        info: Option<TcpInfo>,
    },
    /// The connection ended.
    Closed {
        /// How.
        how: Close,
        /// The kernel's figures at that moment, before the socket is closed.
        info: Option<TcpInfo>,
        /// After a FIN: which ends of this connection the kernel lists in TIME-WAIT (Linux;
        /// `None` where its table cannot be read).
        time_wait: Option<TimeWait>,
    },
    /// Local mode: nobody hosted the room any more, so this process hosts it now (the next
    /// connection is to itself).
    TookOver {
        /// Why the room keeps no history, if it does not.
        no_history: Option<String>,
    },
    /// The next connection attempt is in `delay`.
    Reconnecting {
        /// Time until the attempt.
        delay: Duration,
    },
    /// A line the UI sent while there was no connection; it was not sent.
    NotSent(String),
}

/// A [`NetEvent`] and when it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamped {
    /// When the network task saw it.
    pub at: Instant,
    /// What happened.
    pub event: NetEvent,
}

/// The UI's ends of the channels. Dropping it stops the task and closes the socket.
#[derive(Debug)]
pub struct NetHandle {
    /// Events from the network task.
    pub events: mpsc::Receiver<Stamped>,
    /// Lines towards the socket.
    pub outgoing: mpsc::Sender<Outgoing>,
    /// Whether the inspector is open: live `TCP_INFO` sampling runs only while it is.
    pub inspecting: watch::Sender<bool>,
    /// The latest live `TCP_INFO` sample.
    pub tcp_info: watch::Receiver<Option<TcpInfo>>,
    /// Local mode: the server's side of the room hosted here, sampled while the inspector is
    /// open ([`LocalHost::feed`]); never changes when this process cannot host.
    pub server: watch::Receiver<Option<ServerSample>>,
    task: JoinHandle<()>,
}

impl Drop for NetHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the network task for `target` (`HOST:PORT`), writing what it is given as `framing`
/// says.
pub fn spawn(target: String, framing: Framing) -> NetHandle {
    spawn_with(target, framing, Options::default())
}

/// What a connection may need beyond its address and framing.
#[derive(Debug, Default)]
pub struct Options {
    /// TLS over each connection.
    pub tls: Option<Arc<ClientTls>>,
    /// Local mode's room: when the connection is lost, the task first tries to host it here
    /// (the host may have quit), and connects to whoever hosts it.
    pub host: Option<Arc<LocalHost>>,
}

/// [`spawn`], with what `options` add.
pub fn spawn_with(target: String, framing: Framing, options: Options) -> NetHandle {
    let (event_tx, events) = mpsc::channel(EVENT_QUEUE);
    let (outgoing, outgoing_rx) = mpsc::channel(OUTGOING_QUEUE);
    let (inspecting, inspecting_rx) = watch::channel(false);
    let (tcp_info_tx, tcp_info) = watch::channel(None);
    let server = match &options.host {
        Some(host) => host.clone().feed(inspecting.subscribe()),
        None => watch::channel(None).1,
    };
    let task = tokio::spawn(async move {
        let mut link = Link {
            events: event_tx,
            framing,
            tls: options.tls,
            host: options.host,
            inspecting: inspecting_rx,
            tcp_info: tcp_info_tx,
        };
        // An error here only means the UI is gone, which ends the task either way.
        let _ = run(&target, &mut link, outgoing_rx).await;
    });
    NetHandle {
        events,
        outgoing,
        inspecting,
        tcp_info,
        server,
        task,
    }
}

/// The network task's ends of the channels to the UI, and its settings.
struct Link {
    events: mpsc::Sender<Stamped>,
    framing: Framing,
    tls: Option<Arc<ClientTls>>,
    host: Option<Arc<LocalHost>>,
    inspecting: watch::Receiver<bool>,
    tcp_info: watch::Sender<Option<TcpInfo>>,
}

/// The UI dropped its receiver: nothing left to do.
#[derive(Debug)]
struct UiGone;

async fn emit(events: &mpsc::Sender<Stamped>, event: NetEvent) -> Result<(), UiGone> {
    let stamped = Stamped {
        at: Instant::now(),
        event,
    };
    events.send(stamped).await.map_err(|_| UiGone)
}

/// Waits for the next moment to sample `TCP_INFO`: every [`SAMPLE_EVERY`] while the inspector
/// is open, never while it is closed (no wake-ups while idle).
async fn next_sample(inspecting: &mut watch::Receiver<bool>, ticker: &mut tokio::time::Interval) {
    if !*inspecting.borrow_and_update() && inspecting.wait_for(|open| *open).await.is_err() {
        return std::future::pending().await; // the UI is gone; the reader notices that
    }
    ticker.tick().await;
}

/// Whether the session ended on purpose (no reconnect) or was lost.
enum SessionEnd {
    /// The exit was sent and the server closed: the task is done.
    Deliberate,
    /// We hung up on what is not a tcpchat server: no reconnecting.
    HungUp,
    /// Lost: reconnect.
    Lost,
}

async fn run(
    target: &str,
    link: &mut Link,
    mut outgoing: mpsc::Receiver<Outgoing>,
) -> Result<(), UiGone> {
    let mut delay = RECONNECT_BACKOFF.0;
    loop {
        if let Some(stream) = connect(target, &link.events).await? {
            let started = Instant::now();
            let ends = Ends::of(&stream);
            let end = match link.tls.clone() {
                None => {
                    let fd = raw_socket(&stream);
                    let (rd, wr) = stream.into_split();
                    session(rd, wr, (fd, ends), None, link, &mut outgoing).await?
                }
                Some(tls) => match secure(&tls, stream, &link.events).await? {
                    Ok((stream, tap)) => {
                        let fd = raw_socket(stream.get_ref().0.get_ref());
                        let (rd, wr) = tokio::io::split(stream);
                        session(rd, wr, (fd, ends), Some(&tap), link, &mut outgoing).await?
                    }
                    // A deliberate refusal (a changed key, say) is not retried in a loop.
                    Err(true) => return park(&link.events, &mut outgoing).await,
                    Err(false) => SessionEnd::Lost,
                },
            };
            match end {
                SessionEnd::Deliberate => return Ok(()),
                // Not a tcpchat server: never again, but the UI stays until the user quits.
                SessionEnd::HungUp => return park(&link.events, &mut outgoing).await,
                SessionEnd::Lost => {}
            }
            if started.elapsed() >= STABLE_SESSION {
                delay = RECONNECT_BACKOFF.0;
            }
        }
        if take_over(link).await? {
            continue; // connect to the room we host now, at once
        }
        emit(&link.events, NetEvent::Reconnecting { delay }).await?;
        let until = Instant::now() + delay;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(until) => break,
                message = outgoing.recv() => match message {
                    None | Some(Outgoing::Exit(_) | Outgoing::HangUp) => return Ok(()),
                    Some(Outgoing::Line(line)) => {
                        emit(&link.events, NetEvent::NotSent(line)).await?;
                    }
                },
            }
        }
        delay = (delay * 2).min(RECONNECT_BACKOFF.1);
    }
}

/// Local mode, the connection lost or refused: hosts the room here if nobody does now (its
/// host quit). `true` if this process took it over.
async fn take_over(link: &Link) -> Result<bool, UiGone> {
    let Some(host) = link.host.as_ref().filter(|host| !host.is_hosting()) else {
        return Ok(false);
    };
    match host.claim(TAKEOVER_STORE_WAIT).await {
        Ok(Claim::Hosting { no_history }) => {
            emit(&link.events, NetEvent::TookOver { no_history }).await?;
            Ok(true)
        }
        Ok(Claim::Taken) => Ok(false),
        Err(error) => {
            let reason = format!("cannot host the room on {}: {error}", host.addr());
            emit(&link.events, NetEvent::ConnectFailed(reason)).await?;
            Ok(false)
        }
    }
}

/// The socket a session's kernel figures (`TCP_INFO`) are read from: a file descriptor on
/// Unix, a `SOCKET` on Windows (where [`tcpinfo::read`] has nothing to read).
#[cfg(unix)]
type RawSocket = std::os::fd::RawFd;
#[cfg(windows)]
type RawSocket = std::os::windows::io::RawSocket;

#[cfg(unix)]
fn raw_socket(stream: &TcpStream) -> RawSocket {
    std::os::fd::AsRawFd::as_raw_fd(stream)
}

#[cfg(windows)]
fn raw_socket(stream: &TcpStream) -> RawSocket {
    std::os::windows::io::AsRawSocket::as_raw_socket(stream)
}

/// Resolves `target` and tries each address in turn; `None` if none answered.
async fn connect(
    target: &str,
    events: &mpsc::Sender<Stamped>,
) -> Result<Option<TcpStream>, UiGone> {
    let target = target.to_owned();
    emit(
        events,
        NetEvent::Resolving {
            target: target.clone(),
        },
    )
    .await?;
    let addrs: Vec<SocketAddr> = match tokio::net::lookup_host(&target).await {
        Ok(addrs) => addrs.collect(),
        Err(error) => {
            let reason = format!("cannot resolve {target}: {error}");
            emit(events, NetEvent::ConnectFailed(reason)).await?;
            return Ok(None);
        }
    };
    emit(
        events,
        NetEvent::Resolved {
            addrs: addrs.clone(),
        },
    )
    .await?;
    for addr in addrs {
        emit(events, NetEvent::Connecting { addr }).await?;
        let started = Instant::now();
        let failure = match tokio::time::timeout(CONNECT_TIMEOUT, connect_to(addr)).await {
            Ok(Ok(stream)) => {
                let handshake = started.elapsed();
                // Sampled before anything else can move the counters: the handshake alone.
                let info = tcpinfo::read(&stream).ok();
                let local = stream.local_addr().unwrap_or(addr);
                let connected = NetEvent::Connected {
                    local,
                    peer: addr,
                    handshake,
                    info,
                };
                emit(events, connected).await?;
                return Ok(Some(stream));
            }
            Ok(Err(error)) => format!("cannot connect to {addr}: {error}"),
            Err(_) => {
                let secs = CONNECT_TIMEOUT.as_secs();
                format!("cannot connect to {addr}: no answer in {secs} s")
            }
        };
        emit(events, NetEvent::ConnectFailed(failure)).await?;
    }
    Ok(None)
}

/// A TLS session over the socket, and the tap that sees its records.
type Secured = (
    tokio_rustls::client::TlsStream<crate::tls::record::Recorder<TcpStream>>,
    RecordTap,
);

/// Whether a failed handshake is final: another try would meet the same answer.
type Final = bool;

/// Runs the TLS handshake over a connected `stream` and reports it, success or failure.
async fn secure(
    tls: &ClientTls,
    stream: TcpStream,
    events: &mpsc::Sender<Stamped>,
) -> Result<Result<Secured, Final>, UiGone> {
    let tap = RecordTap::new();
    let started = Instant::now();
    let result = tls.handshake(stream, &tap).await;
    let records = tap.take();
    if !records.is_empty() {
        emit(events, NetEvent::TlsRecords(records)).await?;
    }
    match result {
        Ok((stream, established)) => {
            let handshake = started.elapsed();
            emit(
                events,
                NetEvent::TlsEstablished {
                    established,
                    handshake,
                },
            )
            .await?;
            Ok(Ok((stream, tap)))
        }
        Err(failure) => {
            let last = failure.is_final();
            emit(events, NetEvent::TlsFailed(failure)).await?;
            Ok(Err(last))
        }
    }
}

/// After a refusal that another try would meet again: no more connections; lines typed are
/// reported as not sent until the user quits (which drops the task).
async fn park(
    events: &mpsc::Sender<Stamped>,
    outgoing: &mut mpsc::Receiver<Outgoing>,
) -> Result<(), UiGone> {
    while let Some(message) = outgoing.recv().await {
        match message {
            Outgoing::Exit(_) | Outgoing::HangUp => return Ok(()),
            Outgoing::Line(line) => emit(events, NetEvent::NotSent(line)).await?,
        }
    }
    Err(UiGone)
}

async fn connect_to(addr: SocketAddr) -> io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// The two ends of a connection, to find it in the kernel's tables.
#[derive(Debug, Clone, Copy)]
struct Ends {
    local: Option<SocketAddr>,
    peer: Option<SocketAddr>,
}

impl Ends {
    fn of(stream: &TcpStream) -> Self {
        Self {
            local: stream.local_addr().ok(),
            peer: stream.peer_addr().ok(),
        }
    }

    /// Which ends the kernel lists in TIME-WAIT; `None` where that cannot be read.
    async fn time_wait(self) -> Option<TimeWait> {
        let (local, peer) = (self.local?, self.peer?);
        tcp_table::time_wait(local, peer).await.ok()
    }
}

/// Runs one connection until it closes; reports each read, write and the close. `rd` and `wr`
/// are the halves of the TCP socket `fd` (whose ends are `ends`), or of TLS over it (then `tap`
/// has its records).
async fn session<R, W>(
    mut rd: R,
    mut wr: W,
    (fd, ends): (RawSocket, Ends),
    tap: Option<&RecordTap>,
    link: &mut Link,
    outgoing: &mut mpsc::Receiver<Outgoing>,
) -> Result<SessionEnd, UiGone>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let Link {
        events,
        framing,
        inspecting,
        tcp_info,
        ..
    } = link;
    let records = async |events: &mpsc::Sender<Stamped>| -> Result<(), UiGone> {
        if let Some(tap) = tap {
            let records = tap.take();
            if !records.is_empty() {
                emit(events, NetEvent::TlsRecords(records)).await?;
            }
        }
        Ok(())
    };
    let reading = async {
        let mut ticker = tokio::time::interval(SAMPLE_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let mut buf = BytesMut::with_capacity(READ_SIZE);
            tokio::select! {
                read = rd.read_buf(&mut buf) => {
                    records(events).await?;
                    match read {
                        Ok(0) => return Ok(Close::PeerFin),
                        Ok(_) => emit(events, NetEvent::Received(buf.freeze())).await?,
                        Err(error) if error.kind() == io::ErrorKind::ConnectionReset => {
                            return Ok(Close::Reset);
                        }
                        // TLS: the server's FIN came without TLS's close_notify (a server
                        // that died): a close all the same, not rustls's words about it.
                        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
                            return Ok(Close::PeerFin);
                        }
                        Err(error) => return Ok(Close::Failed(error.to_string())),
                    }
                },
                () = next_sample(inspecting, &mut ticker) => {
                    tcp_info.send_replace(tcpinfo::read(&fd).ok());
                }
            }
        }
    };
    // Set once the exit line is written: from then on, the server's FIN ends the session as asked.
    let exit_written = AtomicBool::new(false);
    let writing = async {
        while let Some(message) = outgoing.recv().await {
            let (text, exit) = match message {
                Outgoing::Line(text) => (text, false),
                Outgoing::Exit(text) => (text, true),
                Outgoing::HangUp => return Ok(Some(Close::HungUp)),
            };
            let wire = framing.encode(&text);
            // The flush is what puts TLS records on the wire; on plain TCP it does nothing.
            let written = async {
                wr.write_all(&wire).await?;
                wr.flush().await
            };
            if let Err(error) = written.await {
                return Ok(Some(Close::Failed(error.to_string())));
            }
            if exit {
                exit_written.store(true, Ordering::Relaxed);
            }
            let bytes = wire.len();
            emit(events, NetEvent::Sent { bytes, exit }).await?;
            records(events).await?;
            if exit {
                // Read right before and right after: on loopback the close can be over by the
                // time `shutdown` returns, and only the state before tells whose FIN came first.
                let before = tcpinfo::read(&fd).ok().and_then(|info| info.state);
                if let Err(error) = wr.shutdown().await {
                    return Ok(Some(Close::Failed(error.to_string())));
                }
                let info = tcpinfo::read(&fd).ok();
                records(events).await?;
                emit(events, NetEvent::FinSent { before, info }).await?;
                return Ok(None);
            }
        }
        Err(UiGone)
    };
    tokio::pin!(reading);
    tokio::pin!(writing);
    let (how, end) = tokio::select! {
        close = &mut reading => match close? {
            // The server's FIN came while our exit was on its way (a slow UI, a busy machine):
            // the session still ends as asked, with our FIN after theirs.
            Close::PeerFin if exit_written.load(Ordering::Relaxed) => match writing.await? {
                None => (Close::PeerFin, SessionEnd::Deliberate),
                Some(failed) => (failed, SessionEnd::Lost),
            },
            close => (close, SessionEnd::Lost),
        },
        written = &mut writing => match written? {
            Some(Close::HungUp) => (Close::HungUp, SessionEnd::HungUp),
            Some(failed) => (failed, SessionEnd::Lost),
            // Exit sent and our FIN out: keep reading until the server closes too.
            None => (reading.await?, SessionEnd::Deliberate),
        },
    };
    // The socket is still open here, so its state (CLOSE-WAIT, CLOSED...) can be read.
    let info = tcpinfo::read(&fd).ok();
    let time_wait = match how {
        Close::PeerFin => ends.time_wait().await,
        _ => None,
    };
    emit(
        events,
        NetEvent::Closed {
            how,
            info,
            time_wait,
        },
    )
    .await?;
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::host_and_port;

    #[test]
    fn hosts_and_ports_come_out_of_targets() {
        assert_eq!(host_and_port("127.0.0.1:8888"), ("127.0.0.1", Some("8888")));
        assert_eq!(host_and_port("[::1]:8888"), ("::1", Some("8888")));
        assert_eq!(
            host_and_port("chat.example:7000"),
            ("chat.example", Some("7000"))
        );
        assert_eq!(host_and_port("localhost"), ("localhost", None));
    }
}
