//! A loopback TCP proxy a test can cut, for fault tests: put it between a node and the cluster's
//! engine (`--cluster redis://127.0.0.1:PROXY_PORT`) and the test decides when the network
//! between them fails and heals, without root, network namespaces or firewall rules.
//!
//! [`Proxy::start`] listens on `127.0.0.1:0` and forwards every connection to one loopback
//! address, byte for byte, both ways, half-closes included. Two ways to fail, and one to heal:
//!
//! - [`Proxy::cut_reset`]: every connection forwarded so far is closed with RST (`SO_LINGER` 0)
//!   on both sides, as a peer that crashed or a middlebox that gave up would; new connections
//!   are accepted and reset at once, which is as close to "refused" as a listener that stays
//!   bound (so the port stays ours) can be. Each side sees its connection end immediately.
//! - [`Proxy::blackhole`]: nothing is forwarded any more, on the connections already open or
//!   on new ones, and nothing is closed: the peers time out, as across a partition where
//!   packets vanish. What each connection had read is held (one buffer each way) and new
//!   connections are not accepted. On loopback no SYN can be dropped without a firewall, so a
//!   new `connect` still completes in the kernel (up to the listen backlog, [`BACKLOG`]): the
//!   client's first request is what times out.
//! - [`Proxy::restore`]: forwarding resumes. A blackholed connection goes on where it stopped
//!   (a partition that healed before TCP gave up), and the connections waiting in the backlog
//!   are accepted; a reset connection stays dead. After `cut_reset` then `restore`, new
//!   connections are forwarded again.
//!
//! Bounded: at most [`MAX_CONNECTIONS`] forwarded at once (more are reset), one buffer of
//! [`BUFFER`] bytes per direction, the upstream connect within [`super::DEADLINE`]. Dropping the
//! proxy aborts its accept task, which owns every connection's task (a `JoinSet`), so nothing
//! outlives it: the listener closes and every forwarded connection ends.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// Connections waiting in the kernel for `accept` (while blackholed, say).
pub const BACKLOG: u32 = 64;
/// Connections forwarded at once; more are reset.
pub const MAX_CONNECTIONS: usize = 256;
/// Bytes read at a time, in each direction of each connection.
pub const BUFFER: usize = 16 * 1024;

/// What the proxy does now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Forward,
    Reset,
    Blackhole,
}

/// The control state every task watches: the mode, and how many cuts there have been, so a
/// connection opened before a cut is reset even if `restore` came before it looked.
#[derive(Clone, Copy, Debug)]
struct State {
    mode: Mode,
    cuts: u64,
}

/// A running proxy; see the module's documentation.
pub struct Proxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    control: watch::Sender<State>,
    live: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// Listens on `127.0.0.1:0` and forwards to `upstream` (a loopback address).
    pub async fn start(upstream: SocketAddr) -> Self {
        assert!(
            upstream.ip().is_loopback(),
            "the proxy forwards to loopback only, not {upstream}"
        );
        let socket = TcpSocket::new_v4().expect("a socket for the proxy");
        socket
            .bind("127.0.0.1:0".parse().expect("an address"))
            .expect("bind 127.0.0.1:0");
        let listener = socket.listen(BACKLOG).expect("listen");
        let addr = listener.local_addr().expect("the proxy's address");
        let (control, watching) = watch::channel(State {
            mode: Mode::Forward,
            cuts: 0,
        });
        let live = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(accept_loop(listener, upstream, watching, live.clone()));
        Self {
            addr,
            upstream,
            control,
            live,
            task,
        }
    }

    /// Where clients connect: `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Where it forwards to.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// Connections being forwarded (or held by a blackhole) now.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// Resets every connection (RST both ways) and resets new ones until [`Proxy::restore`].
    pub fn cut_reset(&self) {
        self.control.send_modify(|state| {
            state.mode = Mode::Reset;
            state.cuts += 1;
        });
    }

    /// Forwards nothing and accepts nothing until [`Proxy::restore`]; closes nothing.
    pub fn blackhole(&self) {
        self.control
            .send_modify(|state| state.mode = Mode::Blackhole);
    }

    /// Forwards again: held connections resume, new ones are accepted.
    pub fn restore(&self) {
        self.control.send_modify(|state| state.mode = Mode::Forward);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // The accept task owns the listener and the JoinSet of every connection's task:
        // aborting it drops them all.
        self.task.abort();
    }
}

/// Accepts while forwarding or resetting (not while blackholed), and reaps finished
/// connections so the set stays as small as what is open.
async fn accept_loop(
    listener: tokio::net::TcpListener,
    upstream: SocketAddr,
    mut control: watch::Receiver<State>,
    live: Arc<AtomicUsize>,
) {
    let mut connections = JoinSet::new();
    loop {
        let state = *control.borrow_and_update();
        if state.mode == Mode::Blackhole {
            tokio::select! {
                changed = control.changed() => if changed.is_err() { return },
                Some(_) = connections.join_next() => {}
            }
            continue;
        }
        tokio::select! {
            changed = control.changed() => if changed.is_err() { return },
            Some(_) = connections.join_next() => {}
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { continue };
                if state.mode == Mode::Reset || connections.len() >= MAX_CONNECTIONS {
                    reset(&client);
                    continue;
                }
                live.fetch_add(1, Ordering::SeqCst);
                let (control, live) = (control.clone(), live.clone());
                connections.spawn(async move {
                    forward(client, upstream, control, state.cuts).await;
                    live.fetch_sub(1, Ordering::SeqCst);
                });
            }
        }
    }
}

/// Closes `stream` with RST when it is dropped.
fn reset(stream: &TcpStream) {
    let _ = stream.set_zero_linger();
}

/// Forwards one connection until both directions end, or until a cut after `born` resets it.
async fn forward(
    mut client: TcpStream,
    upstream: SocketAddr,
    control: watch::Receiver<State>,
    born: u64,
) {
    let mut cut = control.clone();
    let is_cut = move |state: &State| state.cuts > born;
    let server = tokio::select! {
        connected = tokio::time::timeout(super::DEADLINE, TcpStream::connect(upstream)) => {
            match connected {
                Ok(Ok(server)) => server,
                _ => return reset(&client),
            }
        }
        _ = cut.wait_for(is_cut) => return reset(&client),
    };
    let mut server = server;
    let _ = server.set_nodelay(true);
    let _ = client.set_nodelay(true);
    let ended = {
        let (client_read, client_write) = client.split();
        let (server_read, server_write) = server.split();
        let both = async {
            tokio::join!(
                pump(client_read, server_write, control.clone()),
                pump(server_read, client_write, control.clone()),
            );
        };
        tokio::select! {
            () = both => false,
            _ = cut.wait_for(is_cut) => true,
        }
    };
    if ended {
        reset(&client);
        reset(&server);
    }
}

/// Copies `from` to `to` until `from` ends (then half-closes `to`) or either fails, waiting out
/// a blackhole before each read and before each write.
async fn pump(
    mut from: tokio::net::tcp::ReadHalf<'_>,
    mut to: tokio::net::tcp::WriteHalf<'_>,
    mut control: watch::Receiver<State>,
) {
    let mut buffer = vec![0; BUFFER];
    let forwarding = |state: &State| state.mode != Mode::Blackhole;
    loop {
        if control.wait_for(forwarding).await.is_err() {
            return;
        }
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if control.wait_for(forwarding).await.is_err() || to.write_all(&buffer[..n]).await.is_err()
        {
            return;
        }
    }
    let _ = to.shutdown().await;
}
