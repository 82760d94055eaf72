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

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::lab::{self, Action, Half, Knobs, LabEvent, PROBE_ROUNDS, PROBE_WAIT, Reader, SendMode};
use crate::local_host::{Claim, LocalHost, TAKEOVER_STORE_WAIT};
use crate::protocol::Framing;
use crate::server::observe::ServerSample;
use crate::tcp_table::{self, TimeWait};
use crate::tcpinfo::{self, TcpInfo};
use crate::tls::client::{ClientTls, Established, TlsFailure};
use crate::tls::record::{Record, RecordTap};

/// How long a `connect()` may take before it counts as failed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

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
    /// The framing lab asks for this to be done to the socket now.
    Lab(Action),
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
    /// We closed with `SO_LINGER` 0 ([`Action::Reset`]): our RST, not a FIN.
    Aborted,
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
    /// What a framing lab knob or action did.
    Lab(LabEvent),
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
    /// The framing lab's knobs: the latest wins, and each new connection starts with them.
    pub lab: watch::Sender<Knobs>,
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
    let (lab, lab_rx) = watch::channel(Knobs::default());
    let task = tokio::spawn(async move {
        let mut link = Link {
            events: event_tx,
            framing,
            tls: options.tls,
            host: options.host,
            inspecting: inspecting_rx,
            tcp_info: tcp_info_tx,
            lab: lab_rx,
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
        lab,
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
    lab: watch::Receiver<Knobs>,
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
        let rcvbuf = link.lab.borrow().rcvbuf;
        if let Some(stream) = connect(target, &link.events, rcvbuf).await? {
            let started = Instant::now();
            let ends = Ends::of(&stream);
            let end = match link.tls.clone() {
                None => {
                    let fd = raw_socket(&stream);
                    // Not `into_split`: its write half sends a FIN when dropped, which would
                    // put a FIN before the lab's RST (`/reset`); every close we mean to make
                    // with a FIN is an explicit `shutdown` already.
                    let (rd, wr) = tokio::io::split(stream);
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
                    Some(Outgoing::Lab(_)) => {}
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

/// Resolves `target` and tries each address in turn (with the lab's `SO_RCVBUF`, if it sets
/// one, set before the handshake: the window scale is agreed in the SYN); `None` if none answered.
async fn connect(
    target: &str,
    events: &mpsc::Sender<Stamped>,
    rcvbuf: Option<usize>,
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
        let failure = match tokio::time::timeout(CONNECT_TIMEOUT, connect_to(addr, rcvbuf)).await {
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
            Outgoing::Lab(_) => {}
        }
    }
    Err(UiGone)
}

async fn connect_to(addr: SocketAddr, rcvbuf: Option<usize>) -> io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(bytes) = rcvbuf {
        socket.set_recv_buffer_size(u32::try_from(bytes).unwrap_or(u32::MAX))?;
    }
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
        lab,
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
    // Set by the lab's `shutdown(SHUT_RD)`: from then on a read of 0 is ours, not a FIN.
    let read_shut = AtomicBool::new(false);
    // Woken by each read, for the write-write-read probe waiting for its reply.
    let replied = Notify::new();
    let mut knobs_rx = lab.clone();
    let reading = async {
        let mut ticker = tokio::time::interval(SAMPLE_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut applied = Applied::at_connect(knobs_rx.borrow().rcvbuf);
        // With a reader delay: no `recv()` before this moment.
        let mut hold: Option<Instant> = None;
        loop {
            let knobs = *knobs_rx.borrow_and_update();
            applied.apply(&fd, &knobs, events).await?;
            let reads = knobs.reader != Reader::Paused
                && hold.is_none()
                && !read_shut.load(Ordering::Relaxed);
            let mut buf = vec![0; knobs.recv_size()];
            tokio::select! {
                read = rd.read(&mut buf), if reads => {
                    replied.notify_waiters();
                    records(events).await?;
                    match read {
                        Ok(0) if read_shut.load(Ordering::Relaxed) => {}
                        Ok(0) => return Ok(Close::PeerFin),
                        Ok(n) => {
                            buf.truncate(n);
                            emit(events, NetEvent::Received(Bytes::from(buf))).await?;
                            if let Reader::Delayed(delay) = knobs.reader {
                                hold = Some(Instant::now() + delay);
                            }
                        }
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
                () = sleep_until_some(hold), if hold.is_some() => hold = None,
                Ok(()) = knobs_rx.changed() => {}
                () = next_sample(inspecting, &mut ticker) => {
                    let info = tcpinfo::read(&fd).ok();
                    tcp_info.send_replace(info);
                    // With our reading side shut, a read says 0 whatever happens: the
                    // server's FIN shows only in the state (CLOSE-WAIT, or after our own FIN
                    // LAST-ACK or CLOSED), and only while the inspector samples it.
                    let state = info.and_then(|info| info.state);
                    let fin_in = matches!(
                        state,
                        Some(tcpinfo::CLOSE_WAIT | tcpinfo::LAST_ACK | tcpinfo::CLOSED)
                    );
                    if read_shut.load(Ordering::Relaxed) && fin_in {
                        return Ok(Close::PeerFin);
                    }
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
                Outgoing::Lab(Action::Reset) => {
                    // Linger 0: `close()` drops what is queued and sends RST. If it cannot be
                    // set, the close would be a FIN: say so and keep the connection.
                    let linger =
                        tcpinfo::with_socket(&fd, |socket| socket.set_linger(Some(Duration::ZERO)));
                    match linger {
                        Ok(()) => return Ok(Some(Close::Aborted)),
                        Err(error) => {
                            let why = format!("SO_LINGER 0: {error}");
                            emit(events, NetEvent::Lab(LabEvent::Failed(why))).await?;
                            continue;
                        }
                    }
                }
                Outgoing::Lab(Action::Shutdown(Half::Read)) => {
                    let shut = tcpinfo::with_socket(&fd, |socket| {
                        socket.shutdown(std::net::Shutdown::Read)
                    });
                    let event = match shut {
                        Ok(()) => {
                            read_shut.store(true, Ordering::Relaxed);
                            LabEvent::ReadShut
                        }
                        Err(error) => LabEvent::Failed(format!("shutdown(SHUT_RD): {error}")),
                    };
                    emit(events, NetEvent::Lab(event)).await?;
                    continue;
                }
                Outgoing::Lab(Action::Shutdown(Half::Write)) => {
                    let before = tcpinfo::read(&fd).ok().and_then(|info| info.state);
                    if let Err(error) = wr.shutdown().await {
                        let why = format!("shutdown(SHUT_WR): {error}");
                        emit(events, NetEvent::Lab(LabEvent::Failed(why))).await?;
                        continue;
                    }
                    let info = tcpinfo::read(&fd).ok();
                    emit(events, NetEvent::FinSent { before, info }).await?;
                    continue;
                }
                Outgoing::Lab(Action::Probe) => {
                    let nagle = lab.borrow().nagle;
                    match probe(&mut wr, &framing.encode(PROBE_LINE), &replied, events).await? {
                        Ok(rounds) => {
                            let event = LabEvent::Probed { nagle, rounds };
                            emit(events, NetEvent::Lab(event)).await?;
                        }
                        Err(error) => return Ok(Some(Close::Failed(error.to_string()))),
                    }
                    continue;
                }
            };
            let wire = framing.encode(&text);
            let mode = if exit {
                SendMode::Line
            } else {
                lab.borrow().send
            };
            if mode != SendMode::Line {
                if let Err(error) = send_as(&mut wr, &wire, &text, mode, events).await? {
                    return Ok(Some(Close::Failed(error.to_string())));
                }
                records(events).await?;
                continue;
            }
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
            Some(Close::Aborted) => (Close::Aborted, SessionEnd::Lost),
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

/// The line the write-write-read probe sends, cut in two: a command the server answers to us
/// alone (an echo server echoes it), so the room sees nothing.
const PROBE_LINE: &str = "/who";

/// The socket options the lab last set on this connection, so each is set only on a change.
struct Applied {
    nagle: bool,
    rcvbuf: Option<usize>,
}

impl Applied {
    /// A new connection: Nagle off (set at connect), and the `SO_RCVBUF` set before it.
    fn at_connect(rcvbuf: Option<usize>) -> Self {
        Self {
            nagle: false,
            rcvbuf,
        }
    }

    /// Sets what `knobs` changed and reports it. Going back to no `SO_RCVBUF` changes nothing
    /// on this connection (the kernel's default returns with the next one).
    async fn apply(
        &mut self,
        fd: &RawSocket,
        knobs: &Knobs,
        events: &mpsc::Sender<Stamped>,
    ) -> Result<(), UiGone> {
        if knobs.nagle != self.nagle {
            self.nagle = knobs.nagle;
            let nagle = knobs.nagle;
            let event = match tcpinfo::with_socket(fd, |socket| socket.set_tcp_nodelay(!nagle)) {
                Ok(()) => LabEvent::Nagle(nagle),
                Err(error) => LabEvent::Failed(format!("TCP_NODELAY: {error}")),
            };
            emit(events, NetEvent::Lab(event)).await?;
        }
        if knobs.rcvbuf != self.rcvbuf {
            self.rcvbuf = knobs.rcvbuf;
            if let Some(asked) = knobs.rcvbuf {
                let set = tcpinfo::with_socket(fd, |socket| {
                    socket.set_recv_buffer_size(asked)?;
                    socket.recv_buffer_size()
                });
                let event = match set {
                    Ok(kernel) => LabEvent::RcvBuf { asked, kernel },
                    Err(error) => LabEvent::Failed(format!("SO_RCVBUF: {error}")),
                };
                emit(events, NetEvent::Lab(event)).await?;
            }
        }
        Ok(())
    }
}

/// Waits until `at`, or for ever without one.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Writes a typed line's `wire` bytes as the lab's `mode` says, one [`NetEvent::Sent`] per
/// `write()` that took bytes (each is one `send()` call). The outer error: the UI is gone.
async fn send_as<W: AsyncWrite + Unpin>(
    wr: &mut W,
    wire: &[u8],
    text: &str,
    mode: SendMode,
    events: &mpsc::Sender<Stamped>,
) -> Result<io::Result<()>, UiGone> {
    let pasted;
    let chunks: Vec<&[u8]> = match mode {
        SendMode::Line => vec![wire],
        SendMode::Typewriter => {
            let mut chunks = Vec::new();
            let mut rest = wire;
            // One character (all its UTF-8 bytes) per send.
            while let Some(first) = rest.first() {
                let len = match first.leading_ones() {
                    2..=4 => first.leading_ones() as usize,
                    _ => 1,
                }
                .min(rest.len());
                let (chunk, after) = rest.split_at(len);
                chunks.push(chunk);
                rest = after;
            }
            chunks
        }
        SendMode::Burst(times) => vec![wire; times],
        SendMode::Paste(kb) => {
            pasted = lab::paste(text, kb);
            vec![&pasted]
        }
    };
    for chunk in chunks {
        let mut rest = chunk;
        while !rest.is_empty() {
            let bytes = match wr.write(rest).await {
                Ok(0) => return Ok(Err(io::Error::from(io::ErrorKind::WriteZero))),
                Ok(bytes) => bytes,
                Err(error) => return Ok(Err(error)),
            };
            if let Err(error) = wr.flush().await {
                return Ok(Err(error));
            }
            rest = &rest[bytes..];
            emit(events, NetEvent::Sent { bytes, exit: false }).await?;
        }
    }
    Ok(Ok(()))
}

/// The write-write-read probe: [`PROBE_ROUNDS`] times, half of `wire`, then the rest, then the
/// time until the next read (`replied`). With Nagle on, the second write waits for the ACK of
/// the first, which the server delays (nothing to answer yet): the ~40 ms stall.
/// Each round's two `send()`s are reported after it is timed, so reporting them does not
/// slow the round. The outer error: the UI is gone.
async fn probe<W: AsyncWrite + Unpin>(
    wr: &mut W,
    wire: &[u8],
    replied: &Notify,
    events: &mpsc::Sender<Stamped>,
) -> Result<io::Result<Vec<Option<Duration>>>, UiGone> {
    let (first, second) = wire.split_at(wire.len() / 2);
    let mut rounds = Vec::with_capacity(PROBE_ROUNDS);
    for _ in 0..PROBE_ROUNDS {
        let reply = replied.notified();
        tokio::pin!(reply);
        reply.as_mut().enable();
        let started = Instant::now();
        let written = async {
            wr.write_all(first).await?;
            wr.write_all(second).await?;
            wr.flush().await
        };
        if let Err(error) = written.await {
            return Ok(Err(error));
        }
        let took = tokio::time::timeout(PROBE_WAIT, reply).await.ok();
        rounds.push(took.map(|()| started.elapsed()));
        for bytes in [first.len(), second.len()] {
            emit(events, NetEvent::Sent { bytes, exit: false }).await?;
        }
        // Let the rest of the reply come in before the next round.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(Ok(rounds))
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
