//! The `--serve` side: accept loop, limits and shutdown for the three modes.
//!
//! [`run`] takes an already bound listener (so tests bind port 0), a [`Config`] and a shutdown
//! token. Each accepted connection gets one task that owns its socket: a chat [`session`]
//! (its input framed by [`line_reader`], its output by [`writer`]) or one of the [`article`]'s
//! servers. The rooms they share live in [`rooms`]; the lines they write, in
//! [`crate::protocol`]. With `--tls` the connection's task first runs the TLS handshake
//! ([`crate::tls::server`]), then the same session over it ([`crate::tls::transport`]).
//! Given a [`observe::ServerView`] (the room local mode hosts), it tells it what its sockets
//! are at listen, accept, join and close, for the inspector's server page.
//!
//! In a cluster (`Config::cluster`) this node's heartbeat runs here too, and its members'
//! nicks are claimed across the cluster ([`nick_claims`]).
//!
//! Shutdown: cancelling the token stops accepting, every chat client is told
//! `*** server shutting down` and closed cleanly, and `run` returns within
//! [`Limits::shutdown_grace`] even if some client never reads.

mod access;
mod accounts;
mod article;
mod bans;
mod cluster_link;
mod flood;
mod history_query;
mod identity;
mod line_reader;
pub mod listen;
mod nick_claims;
pub mod observe;
mod outbox;
mod removal;
mod rooms;
mod sequencer;
mod session;
mod upkeep;
mod writer;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

pub use access::{AccessRules, DEFAULT_NEW_PER_MINUTE, DEFAULT_PER_ADDRESS};
pub use flood::FloodLimit;

use crate::codec::DEFAULT_MAX_LINE;
use crate::protocol::article::ArticleMode;
use crate::protocol::{Refusal, ServerLine};
use crate::store::Store;
use crate::tls::server::{NotAccepted, ServerTls};
use crate::tls::transport::Transport;
use identity::Identity;
use removal::Removal;
use rooms::{OutboxLimits, RoomLimits, Rooms};

/// What the server speaks on each connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Mode {
    /// A multi-user room: greeting, `<nick> text` to everyone, `*** ` events, `/` commands,
    /// rooms and private messages.
    #[default]
    Chat,
    /// The article's `server.py`: `连接成功!`, then `第N条信息:` + each read echoed back.
    Echo,
    /// The article's threaded server: `Hello World!`, then `<1..=1000>:ACK!` per read.
    Ack,
}

impl Mode {
    /// Which of the article's servers this is, if it is one.
    pub fn article(self) -> Option<ArticleMode> {
        match self {
            Self::Chat => None,
            Self::Echo => Some(ArticleMode::Echo),
            Self::Ack => Some(ArticleMode::Ack),
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Chat => "chat",
            Self::Echo => "echo",
            Self::Ack => "ack",
        })
    }
}

/// Default most concurrent connections; one more is told `! server full` and closed.
pub const DEFAULT_MAX_CLIENTS: usize = 1024;

/// Default per-client send queue, in lines. A client whose queue is full (it stopped reading and
/// its kernel buffers are full too) is dropped alone, announced as `left (too slow)`: nobody else
/// ever waits for it, and its memory stays bounded.
pub const DEFAULT_OUTBOX_LINES: usize = 1024;

/// Default per-client send queue, in bytes: the same policy as [`DEFAULT_OUTBOX_LINES`], and
/// what bounds the memory a client that does not read can pin, whatever it asks for (its own
/// replies count too: a session whose own queue is half full stops reading until it drains).
pub const DEFAULT_OUTBOX_BYTES: usize = 1024 * 1024;

/// Default time a client has to finish a line it has begun; past it the connection is closed
/// with a `! ` line. Whole lines arrive at once from every real client, so only a client
/// trickling bytes to hold a slot (slowloris) ever meets it.
pub const DEFAULT_LINE_TIMEOUT: Duration = Duration::from_secs(30);

/// Default TCP keepalive idle time on accepted sockets: after this long without traffic the
/// kernel probes the client (3 probes, a sixth of this apart), so a client that vanished
/// without FIN (power off, cable out) is noticed and its slot freed.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(60);

/// Default largest room in which joins and leaves are announced to everyone. Announcing is
/// quadratic (each of N joins is a line to N members): ten thousand joins would write 1.6 GB.
/// Past this size the greeting still gives the count and `/who` still lists everyone.
pub const DEFAULT_ANNOUNCE_UP_TO: usize = 256;

/// Default most rooms one client may be in at once, `#lobby` included (ergo's default is 100;
/// a person rarely follows more than a few dozen). One more is a `! ` line.
pub const DEFAULT_ROOMS_PER_CLIENT: usize = 50;

/// Default most rooms the server holds at once, `#lobby` included: what bounds the memory a
/// room-creating client can pin (each empty room is gone, so only occupied ones count).
pub const DEFAULT_MAX_ROOMS: usize = 10_000;

/// Default most members one room holds (not `#lobby`, which `--max-clients` bounds).
pub const DEFAULT_ROOM_MEMBERS: usize = 10_000;

/// Default time shutdown waits for goodbyes to be written before closing regardless.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_millis(1500);

/// Every bound the server enforces, each with its policy stated on the constant it defaults to.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Longest line in bytes ([`DEFAULT_MAX_LINE`]).
    pub max_line: usize,
    /// Most concurrent connections ([`DEFAULT_MAX_CLIENTS`]).
    pub max_clients: usize,
    /// Per-client send queue in lines ([`DEFAULT_OUTBOX_LINES`]).
    pub outbox_lines: usize,
    /// Per-client send queue in bytes ([`DEFAULT_OUTBOX_BYTES`]).
    pub outbox_bytes: usize,
    /// Per-client line rate ([`FloodLimit::default`]).
    pub flood: FloodLimit,
    /// How long shutdown waits for goodbyes ([`DEFAULT_SHUTDOWN_GRACE`]).
    pub shutdown_grace: Duration,
    /// How long a begun line may take to finish ([`DEFAULT_LINE_TIMEOUT`]).
    pub line_timeout: Duration,
    /// TCP keepalive idle time ([`DEFAULT_KEEPALIVE`]).
    pub keepalive: Duration,
    /// Largest room that hears every join and leave ([`DEFAULT_ANNOUNCE_UP_TO`]).
    pub announce_up_to: usize,
    /// Rooms one client may be in ([`DEFAULT_ROOMS_PER_CLIENT`]).
    pub rooms_per_client: usize,
    /// Rooms the server holds ([`DEFAULT_MAX_ROOMS`]).
    pub max_rooms: usize,
    /// Members one room holds ([`DEFAULT_ROOM_MEMBERS`]).
    pub room_members: usize,
    /// How long a TLS client has to finish its handshake
    /// ([`crate::tls::server::DEFAULT_HANDSHAKE_TIMEOUT`]).
    pub tls_handshake_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_line: DEFAULT_MAX_LINE,
            max_clients: DEFAULT_MAX_CLIENTS,
            outbox_lines: DEFAULT_OUTBOX_LINES,
            outbox_bytes: DEFAULT_OUTBOX_BYTES,
            flood: FloodLimit::default(),
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            line_timeout: DEFAULT_LINE_TIMEOUT,
            keepalive: DEFAULT_KEEPALIVE,
            announce_up_to: DEFAULT_ANNOUNCE_UP_TO,
            rooms_per_client: DEFAULT_ROOMS_PER_CLIENT,
            max_rooms: DEFAULT_MAX_ROOMS,
            room_members: DEFAULT_ROOM_MEMBERS,
            tls_handshake_timeout: crate::tls::server::DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }
}

/// How the server behaves.
#[derive(Debug, Default)]
pub struct Config {
    /// The protocol spoken.
    pub mode: Mode,
    /// The bounds enforced.
    pub limits: Limits,
    /// Where history is kept; without one, lines are relayed and forgotten. Accounts and
    /// bans are kept in the same store, so a server without one has neither.
    pub history: Option<HistoryConfig>,
    /// Operators, the server's password, and who may connect.
    pub hosting: Hosting,
    /// TLS on every connection (`--tls`); without it, plain TCP.
    pub tls: Option<Arc<ServerTls>>,
    /// `--pause-accept`: nothing is accepted until the gate opens.
    pub accept_gate: Option<listen::AcceptGate>,
    /// Where the server tells what its sockets are, for the inspector's server page (the room
    /// local mode hosts); `None` costs nothing.
    pub observe: Option<Arc<observe::ServerView>>,
    /// The cluster this node is part of (`--cluster`): every room's lines are numbered and
    /// delivered through it, and nicks are unique across it. [`run`] beats for the node while
    /// it serves (and stops the server if another run of the node replaces it); the caller
    /// leaves the cluster after `run` returns. `None`: a single node, its store the only
    /// record.
    pub cluster: Option<crate::cluster::Cluster>,
}

/// What a host decides about who comes in and who runs the place.
#[derive(Debug, Clone, Default)]
pub struct Hosting {
    /// The nicks of the operators' accounts (`--op`).
    pub operators: Vec<crate::names::Nick>,
    /// The server's password (`--password-file`).
    pub password: Option<String>,
    /// Who may connect, and how much.
    pub access: AccessRules,
}

/// Default lines replayed to a member as it joins.
pub const DEFAULT_REPLAY: usize = 50;

/// Default days a line is kept.
pub const DEFAULT_RETAIN_DAYS: u32 = 30;

/// Default most lines kept per room: the oldest beyond it go, whatever their age.
pub const DEFAULT_RETAIN_LINES: u64 = 1_000_000;

/// What the command line says about history, before anything is opened.
#[derive(Debug, Clone)]
pub struct HistorySettings {
    /// The data directory (`None`: the default one, [`crate::data_dir::default`]).
    pub data_dir: Option<PathBuf>,
    /// Lines replayed on joining.
    pub replay: usize,
    /// Days lines are kept; 0 keeps nothing and opens no store.
    pub retain_days: u32,
    /// Most lines kept per room.
    pub retain_lines: u64,
}

impl Default for HistorySettings {
    fn default() -> Self {
        Self {
            data_dir: None,
            replay: DEFAULT_REPLAY,
            retain_days: DEFAULT_RETAIN_DAYS,
            retain_lines: DEFAULT_RETAIN_LINES,
        }
    }
}

impl HistorySettings {
    /// Opens the store these settings name; `None` if they keep nothing.
    pub fn open(&self) -> Result<Option<HistoryConfig>, crate::store::OpenError> {
        if self.retain_days == 0 {
            return Ok(None);
        }
        let dir = match self.data_dir.clone().or_else(crate::data_dir::default) {
            Some(dir) => dir,
            None => {
                let home = std::io::Error::other("no home directory; give --data-dir");
                return Err(crate::store::OpenError::Dir(PathBuf::new(), home));
            }
        };
        let store = Store::open(&dir)?;
        Ok(Some(HistoryConfig {
            store,
            replay: self.replay,
            retain: Duration::from_secs(u64::from(self.retain_days) * 86_400),
            retain_lines: self.retain_lines,
        }))
    }
}

/// History: the store it is written to, and what is replayed and kept.
#[derive(Debug)]
pub struct HistoryConfig {
    /// The open store.
    pub store: Store,
    /// Lines replayed on joining ([`DEFAULT_REPLAY`]; 0: none).
    pub replay: usize,
    /// How long lines are kept ([`DEFAULT_RETAIN_DAYS`]).
    pub retain: Duration,
    /// Most lines kept per room ([`DEFAULT_RETAIN_LINES`]).
    pub retain_lines: u64,
}

/// First and last pause after a failed `accept` (out of file descriptors, say); it doubles
/// between them and resets after a success, so a full process table never spins the CPU.
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(5), Duration::from_secs(1));

/// Serves `listener` until `shutdown` is cancelled, then closes every connection cleanly.
pub async fn run(listener: TcpListener, config: Config, shutdown: CancellationToken) {
    let Config {
        mode,
        limits,
        history,
        hosting,
        tls,
        accept_gate,
        observe,
        cluster,
    } = config;
    let identity = match identity(history.as_ref(), &hosting) {
        Ok(identity) => Arc::new(identity),
        Err(error) => {
            error!(%error, "cannot read accounts and bans from the store");
            return;
        }
    };
    let admission = access::Access::new(hosting.access);
    let outbox = OutboxLimits {
        entries: limits.outbox_lines,
        bytes: limits.outbox_bytes,
    };
    let rooms = Arc::new(Rooms::new(
        outbox,
        RoomLimits {
            per_member: limits.rooms_per_client,
            rooms: limits.max_rooms,
            members: limits.room_members,
            announce_up_to: limits.announce_up_to,
        },
    ));
    let (history, upkeep, access) = match history {
        Some(kept) => {
            let path = kept.store.path().to_owned();
            let keep = upkeep::Keep {
                for_: kept.retain,
                lines: kept.retain_lines,
            };
            let (nudge, upkeep) = upkeep::spawn(&kept.store, keep).unzip();
            let history = sequencer::History {
                store: kept.store,
                replay: kept.replay,
                replay_bytes: limits.outbox_bytes / 2,
                indexer: nudge,
                keep,
            };
            (Some(history), upkeep, Some(path))
        }
        None => (None, None, None),
    };
    let mut sequencer = match sequencer::spawn(
        rooms.clone(),
        history,
        cluster.clone().map(|cluster| (cluster, identity.clone())),
    ) {
        Ok(sequencer) => sequencer,
        Err(error) => {
            error!(%error, "cannot start the sequencer thread");
            return;
        }
    };
    let heartbeat = cluster
        .as_ref()
        .map(|cluster| nick_claims::beat(cluster, rooms.clone(), &shutdown));
    let shared = Arc::new(session::Shared {
        identity: identity.clone(),
        rooms: rooms.clone(),
        sequencer: sequencer.requests.clone(),
        history: access.map(|path| history_query::HistoryAccess {
            path,
            delivered: sequencer.delivered.clone(),
        }),
        view: observe.clone(),
        nicks: cluster.clone().map(nick_claims::NickClaims::new),
        cluster,
    });
    if let Some(ready) = sequencer.ready.take() {
        // A cluster node takes nobody before it knows every ban (connections wait in the
        // listen queue meanwhile).
        tokio::select! {
            () = shutdown.cancelled() => {}
            _ = ready => {}
        }
    }
    let limits = Arc::new(limits);
    let slots = Arc::new(Semaphore::new(limits.max_clients));
    let tracker = TaskTracker::new();
    let mut backoff = ACCEPT_BACKOFF.0;
    if let Some(view) = &observe {
        view.listening(&listener, &rooms);
    }
    if let Some(mut gate) = accept_gate {
        info!(
            "accepting paused: the kernel finishes handshakes into the accept queue, up to the \
             backlog; SIGUSR1 starts accepting"
        );
        if let Some(view) = &observe {
            view.paused(true);
        }
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = gate.opened() => {}
        }
        if let Some(view) = &observe {
            view.paused(false);
        }
    }

    loop {
        let accepted = tokio::select! {
            biased; // a cancelled server accepts no one more (after --pause-accept, say)
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => {
                backoff = ACCEPT_BACKOFF.0;
                pair
            }
            Err(error) => {
                warn!(%error, retry_in = ?backoff, "accept failed");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(ACCEPT_BACKOFF.1);
                continue;
            }
        };
        let address = access::canonical(peer.ip());
        if let Some(banned) = identity.address_banned(address) {
            info!(%peer, "refused: banned");
            refuse(stream, banned);
            continue;
        }
        let address_slot = match admission.admit(address) {
            Ok(slot) => slot,
            Err(refusal) => {
                warn!(%peer, %refusal, "refused");
                refuse(stream, refusal);
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            warn!(%peer, limit = limits.max_clients, "refused: server full");
            refuse(stream, Refusal::ServerFull);
            continue;
        };
        info!(%peer, "accepted");
        let seen = observe.as_ref().map(|view| view.accepted(&stream, peer));
        tracker.spawn(serve_connection(
            stream,
            peer,
            (slot, address_slot, seen),
            mode,
            limits.clone(),
            shared.clone(),
            shutdown.clone(),
            tls.clone(),
        ));
    }

    if let Some(view) = &observe {
        view.stopped();
    }
    drop(listener);
    info!(connections = tracker.len(), "shutting down");
    rooms.shut_down();
    tracker.close();
    // Each connection bounds its own goodbye by the grace period; this is the backstop.
    let backstop = limits.shutdown_grace + Duration::from_millis(250);
    if tokio::time::timeout(backstop, tracker.wait())
        .await
        .is_err()
    {
        warn!(
            left = tracker.len(),
            "connections still open after the grace period"
        );
    }
    // The sequencer ends once the last sender is gone: after every session, and this one.
    drop(shared);
    drop(sequencer.requests);
    let stopped = tokio::task::spawn_blocking(move || {
        let _ = sequencer.thread.join();
        // The sequencer's end drops the upkeep's nudge: it indexes what is left and stops.
        if let Some(upkeep) = upkeep {
            let _ = upkeep.join();
        }
    });
    if tokio::time::timeout(SEQUENCER_STOP, stopped).await.is_err() {
        warn!("the sequencer or the store's upkeep did not stop in time");
    }
    // Its token is the shutdown's child, cancelled by now; the caller leaves after it stops.
    if let Some(heartbeat) = heartbeat {
        let _ = heartbeat.await;
    }
}

/// Locks `mutex`, ignoring poison: a poisoned lock means a connection task panicked mid-update
/// of maps that are still whole, and everyone else must live on (each lock here is short and
/// never held across an await).
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How long shutdown waits for the sequencer's last batch to be stored.
const SEQUENCER_STOP: Duration = Duration::from_secs(2);

/// The accounts, bans and the rest of [`Identity`], read from the store if there is one.
fn identity(history: Option<&HistoryConfig>, hosting: &Hosting) -> rusqlite::Result<Identity> {
    let (accounts, bans) = match history {
        Some(kept) => (
            Some(Arc::new(accounts::Accounts::load(kept.store.registry()?)?)),
            Some(Arc::new(bans::Bans::load(kept.store.registry()?)?)),
        ),
        None => (None, None),
    };
    Ok(Identity {
        accounts,
        bans,
        operators: hosting.operators.iter().map(|nick| nick.key()).collect(),
        password: hosting.password.clone(),
        ..Identity::default()
    })
}

#[allow(clippy::too_many_arguments)] // one connection's whole context, handed over once
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    // Dropped as the task ends, after the session: the slots are freed, the view told.
    _slots: (
        OwnedSemaphorePermit,
        access::AddressSlot,
        Option<observe::Registration>,
    ),
    mode: Mode,
    limits: Arc<Limits>,
    shared: Arc<session::Shared>,
    shutdown: CancellationToken,
    tls: Option<Arc<ServerTls>>,
) {
    if let Err(error) = stream.set_nodelay(true) {
        warn!(%peer, %error, "set_nodelay failed");
    }
    let idle = limits.keepalive;
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(idle)
        .with_interval((idle / 6).max(Duration::from_secs(1)))
        .with_retries(3);
    let socket = socket2::SockRef::from(&stream);
    if let Err(error) = socket.set_tcp_keepalive(&keepalive) {
        warn!(%peer, %error, "setting TCP keepalive failed");
    }
    // Keepalive probes only an idle connection; with data unacknowledged the kernel would
    // retransmit for ~15 minutes. The user timeout bounds that case by the same budget.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Err(error) = socket.set_tcp_user_timeout(Some(idle + (idle / 6) * 3)) {
        warn!(%peer, %error, "setting TCP_USER_TIMEOUT failed");
    }
    match (tls, mode.article()) {
        // Plain TCP, as before TLS existed: no wrapper, so its task is no larger.
        (None, None) => session::serve(stream, peer, &shared, &limits, &shutdown).await,
        (None, Some(mode)) => article::serve(stream, peer, mode, &limits, &shutdown).await,
        // Boxed: a TLS stream is large, and inline it would make every plaintext
        // connection's task as large too.
        (Some(tls), _) => {
            let tls = serve_tls(stream, peer, mode, &limits, &shared, &shutdown, &tls);
            Box::pin(tls).await;
        }
    }
}

/// Serves one connection over `stream`, plain or TLS, in `mode`.
async fn serve_over<S: Transport>(
    stream: S,
    peer: SocketAddr,
    mode: Mode,
    limits: &Limits,
    shared: &session::Shared,
    shutdown: &CancellationToken,
) {
    match mode.article() {
        None => session::serve(stream, peer, shared, limits, shutdown).await,
        Some(mode) => article::serve(stream, peer, mode, limits, shutdown).await,
    }
}

/// The TLS handshake, in this connection's task and within the handshake timeout, then the
/// session over it. A plaintext client is told in one line that this port speaks TLS.
async fn serve_tls(
    stream: TcpStream,
    peer: SocketAddr,
    mode: Mode,
    limits: &Limits,
    shared: &session::Shared,
    shutdown: &CancellationToken,
    tls: &ServerTls,
) {
    let accepted = tokio::select! {
        () = shutdown.cancelled() => return,
        accepted = tls.accept(stream, limits.tls_handshake_timeout) => accepted,
    };
    match accepted {
        Ok(stream) => {
            let negotiated = crate::tls::Negotiated::of(stream.get_ref().1);
            info!(%peer, tls = %negotiated, "TLS established");
            serve_over(stream, peer, mode, limits, shared, shutdown).await;
        }
        Err(NotAccepted::Plaintext(stream) | NotAccepted::Silent(stream)) => {
            info!(%peer, "refused: plaintext on the TLS port");
            tell_tls_only(stream, shutdown).await;
        }
        Err(NotAccepted::TimedOut) => {
            let secs = limits.tls_handshake_timeout.as_secs_f64();
            info!(%peer, "closed: no TLS handshake within {secs} s");
        }
        Err(NotAccepted::Failed(error)) => info!(%peer, %error, "TLS handshake failed"),
    }
}

/// Tells a plaintext client on the TLS port, in one plaintext line, how to connect; then
/// closes with FIN after draining what it sent, so the line is not lost to a reset.
async fn tell_tls_only(mut stream: TcpStream, shutdown: &CancellationToken) {
    use tokio::io::AsyncWriteExt as _;
    let port = stream.local_addr().ok();
    let line = ServerLine::from(Refusal::TlsOnly { addr: port }).to_bytes();
    let told = async {
        stream.write_all(&line).await?;
        stream.shutdown().await
    };
    if tokio::time::timeout(LINGER, told).await.is_ok() {
        linger(&mut stream, shutdown, LINGER).await;
    }
}

/// Tells a client turned away at accept why, without a task: a fresh socket's send buffer is
/// empty, so a non-blocking write of one short line succeeds.
fn refuse(stream: TcpStream, why: Refusal<'_>) {
    let _ = stream.try_write(&ServerLine::from(why).to_bytes());
}

/// How a connection ended: the reason others are told, and the log's word for it.
#[derive(Debug)]
enum Ending {
    /// The client sent the article's `exit`.
    Exit,
    /// The client sent `/quit`, with an optional reason.
    Quit(String),
    /// The client closed its side (FIN) without saying goodbye.
    PeerClosed,
    /// The connection was reset (RST).
    Reset,
    /// The server let it go: it stopped reading, was kicked, or was replaced.
    Removed(Removal),
    /// The server is shutting down.
    Shutdown,
    /// A begun line was not finished within the line timeout.
    LineTimeout,
    /// The client stopped answering: keepalive or unacknowledged data timed out.
    Vanished,
    /// Any other read error.
    Failed(std::io::Error),
}

impl Ending {
    fn from_read_error(error: std::io::Error) -> Self {
        match error.kind() {
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted => {
                Self::Reset
            }
            std::io::ErrorKind::TimedOut => Self::Vanished,
            // TLS: the TCP connection ended (a FIN) without TLS's close_notify, as many
            // clients close (openssl s_client at the end of its input): a close all the same.
            std::io::ErrorKind::UnexpectedEof => Self::PeerClosed,
            _ => Self::Failed(error),
        }
    }

    /// The word the lifecycle log uses, in TCP's terms where there is one.
    fn how(&self) -> &'static str {
        match self {
            Self::Exit => "exit",
            Self::Quit(_) => "quit",
            Self::PeerClosed => "FIN",
            Self::Reset => "RST",
            Self::Removed(why) => why.how(),
            Self::Shutdown => "shutdown",
            Self::LineTimeout => "line timeout",
            Self::Vanished => "no answer (keepalive)",
            Self::Failed(_) => "error",
        }
    }
}

impl std::fmt::Display for Ending {
    /// The reason shown to each of its rooms in `*** nick left (REASON)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exit => f.write_str("exit"),
            Self::Quit(reason) if reason.is_empty() => f.write_str("quit"),
            Self::Quit(reason) => write!(f, "quit: {reason}"),
            Self::PeerClosed => f.write_str("closed"),
            Self::Reset => f.write_str("reset"),
            Self::Removed(why) => f.write_str(&why.reason()),
            Self::Shutdown => f.write_str("server shutting down"),
            Self::LineTimeout => f.write_str("timed out"),
            Self::Vanished => f.write_str("no answer"),
            Self::Failed(error) => write!(f, "error: {error}"),
        }
    }
}

/// The kernel's view of a connection as it closes, for the log: RTT, retransmits, bytes.
fn kernel_summary(stream: &impl Transport) -> String {
    let stream = stream.tcp();
    let Ok(info) = crate::tcpinfo::read(stream) else {
        return "n/a".to_owned();
    };
    let show = |value: Option<u64>| value.map_or_else(|| "-".to_owned(), |v| v.to_string());
    let rtt = info.rtt_us.map_or_else(
        || "-".to_owned(),
        |us| format!("{:.2}ms", us as f64 / 1000.0),
    );
    format!(
        "rtt={rtt} retrans={} acked={} received={} state={}",
        show(info.retransmits),
        show(info.bytes_acked),
        show(info.bytes_received),
        info.state.map_or("-", crate::tcpinfo::state_name),
    )
}

/// How long, after our FIN, the server keeps reading (and discarding) for the client's FIN.
/// Closing a socket with unread data sends RST instead of FIN, and an RST can make the client
/// lose our goodbye line; draining first makes the close the clean four-way one.
const LINGER: Duration = Duration::from_secs(2);

/// Discards what the peer still sends until its FIN, an error, `limit` or shutdown.
async fn linger<R: tokio::io::AsyncRead + Unpin>(
    mut reader: R,
    shutdown: &CancellationToken,
    limit: Duration,
) {
    let mut sink = tokio::io::sink();
    let drain = tokio::io::copy(&mut reader, &mut sink);
    tokio::select! {
        _ = drain => {}
        () = tokio::time::sleep(limit) => {}
        () = shutdown.cancelled() => {}
    }
}
