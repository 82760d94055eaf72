//! The listening socket, made the way the article makes it — `socket()`,
//! `setsockopt(SO_REUSEADDR)`, `bind()`, `listen(backlog)` — with the two knobs its lessons
//! turn: the backlog (how many finished handshakes the kernel queues for `accept()`; past it,
//! a client's SYN is dropped and retried, not refused) and `SO_REUSEADDR` (without it, a
//! restarted server cannot bind while an old connection on its port waits out TIME-WAIT).

use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};

/// The backlog std and tokio pass to `listen()`, which the kernel then caps at
/// `net.core.somaxconn` (4096 on recent Linux).
pub const DEFAULT_BACKLOG: u32 = 128;

/// How the listening socket is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenOptions {
    /// `listen()`'s backlog.
    pub backlog: u32,
    /// Set `SO_REUSEADDR` before `bind()` (Unix; on Windows it would let another process take
    /// the port, so it is never set there).
    pub reuse_address: bool,
    /// Ask the kernel to keep each client's SYN (`TCP_SAVE_SYN`, Linux) for the inspector's
    /// server page, which reads it once per accepted socket. Off for a headless server: the
    /// kernel would hold a copy per connection that nobody reads.
    pub save_syn: bool,
}

impl Default for ListenOptions {
    fn default() -> Self {
        Self {
            backlog: DEFAULT_BACKLOG,
            reuse_address: true,
            save_syn: false,
        }
    }
}

/// Resolves `addr` (`HOST:PORT`) and listens on the first address that can be bound, as
/// [`TcpListener::bind`] does, made as `options` say.
pub async fn listen(addr: &str, options: ListenOptions) -> io::Result<TcpListener> {
    let mut last_error = None;
    for addr in tokio::net::lookup_host(addr).await? {
        match listen_on(addr, options) {
            Ok(listener) => return Ok(listener),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any address",
        )
    }))
}

fn listen_on(addr: SocketAddr, options: ListenOptions) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    #[cfg(unix)]
    socket.set_reuseaddr(options.reuse_address)?;
    if options.save_syn {
        // Without it the server page says no SYN was saved; the room is hosted all the same.
        let _ = crate::tcpinfo::save_syn(&socket);
    }
    socket.bind(addr)?;
    socket.listen(options.backlog)
}

/// `--pause-accept`: whether the server calls `accept()` yet. Paused, the kernel still
/// finishes handshakes into the accept queue until the backlog is full: clients are
/// ESTABLISHED and greeted by no one.
#[derive(Debug, Clone)]
pub struct AcceptGate(tokio::sync::watch::Receiver<bool>);

/// What opens an [`AcceptGate`]; dropped unused, the gate stays closed.
#[derive(Debug)]
pub struct GateKey(tokio::sync::watch::Sender<bool>);

impl GateKey {
    /// Opens the gate for good.
    pub fn open(self) {
        let _ = self.0.send(true);
    }
}

impl AcceptGate {
    /// A closed gate and its key.
    pub fn closed() -> (GateKey, Self) {
        let (open, gate) = tokio::sync::watch::channel(false);
        (GateKey(open), Self(gate))
    }

    /// Closed until the process gets SIGUSR1 (`kill -USR1 PID`), then open for good.
    #[cfg(unix)]
    pub fn until_sigusr1() -> io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut user1 = signal(SignalKind::user_defined1())?;
        let (key, gate) = Self::closed();
        tokio::spawn(async move {
            if user1.recv().await.is_some() {
                tracing::info!("SIGUSR1: accepting the connections queued, and new ones");
                key.open();
            }
        });
        Ok(gate)
    }

    /// Waits until accepting may start (at once if it may).
    pub async fn opened(&mut self) {
        if self.0.wait_for(|open| *open).await.is_err() {
            // The key is gone unused: the gate never opens (the server's shutdown still ends
            // the wait).
            std::future::pending::<()>().await;
        }
    }
}
