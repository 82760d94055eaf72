//! The server's view of its own sockets, for the inspector's server page: the listening
//! socket (its accept queue, `SO_REUSEADDR`, whether accepting is paused), each accepted
//! connection (its 4-tuple, the kernel's `TCP_INFO` of the server's end, the nick), the last
//! client SYN as the kernel saved it, and the connections closed into TIME-WAIT.
//!
//! The server writes here only at the moments it already works — listen, accept, join,
//! close — and only when it is given a [`ServerView`] (the room local mode hosts; a headless
//! `--serve` has none, so its connections pay one `None` in their task and nothing else). All
//! the reading is done by [`ServerView::sample`], called by whoever shows the view and only
//! while it is shown: the kernel is asked for each registered socket's figures then, under the
//! registry's lock, and never otherwise.
//!
//! The registry keeps each socket's raw descriptor, never the socket: the session task owns
//! it. A connection is struck off when its task ends, just after its socket closed; in that
//! instant another socket may get the same number. Two registrations with one number are
//! therefore not sampled (the older is stale), and a number reused by anything that is not a
//! TCP socket just reads as an error. The worst left is one sample of another socket's figures
//! under a connection that was closing anyway.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};

use tokio::net::{TcpListener, TcpStream};

use super::lock;
use super::rooms::{MemberId, Rooms};
use crate::saved_syn::{self, Syn};
use crate::tcp_table::{self, Lingering};
use crate::tcpinfo::{self, TcpInfo};

#[cfg(unix)]
use std::os::fd::{AsRawFd, RawFd};
/// Windows has no file descriptors and no `TCP_INFO`: nothing is sampled there.
#[cfg(not(unix))]
type RawFd = i32;

/// What the server tells the view, and what the view reads back while it is shown.
#[derive(Debug, Default)]
pub struct ServerView {
    registry: Mutex<Registry>,
}

#[derive(Debug, Default)]
struct Registry {
    listener: Option<Listening>,
    rooms: Weak<Rooms>,
    /// By registration order, which is accept order.
    connections: BTreeMap<u64, Accepted>,
    next: u64,
    last_syn: Option<Result<Syn, String>>,
}

#[derive(Debug, Clone, Copy)]
struct Listening {
    fd: RawFd,
    addr: SocketAddr,
    reuse_address: Option<bool>,
    paused: bool,
}

#[derive(Debug, Clone, Copy)]
struct Accepted {
    fd: RawFd,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    member: Option<MemberId>,
}

/// One accepted connection, struck off the view when dropped (when its task ends).
#[derive(Debug)]
pub(super) struct Registration {
    view: Arc<ServerView>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        lock(&self.view.registry).connections.remove(&self.id);
    }
}

impl ServerView {
    /// An empty view; a server given it fills it in.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// The server listens on `listener` now (a server taking over replaces the last one).
    pub(super) fn listening(&self, listener: &TcpListener, rooms: &Arc<Rooms>) {
        let Ok(addr) = listener.local_addr() else {
            return;
        };
        let socket = socket2::SockRef::from(listener);
        let mut registry = lock(&self.registry);
        registry.listener = Some(Listening {
            fd: raw_fd(listener),
            addr,
            reuse_address: socket.reuse_address().ok(),
            paused: false,
        });
        registry.rooms = Arc::downgrade(rooms);
        registry.connections.clear();
    }

    /// Accepting is paused (`--pause-accept`) or runs.
    pub(super) fn paused(&self, paused: bool) {
        if let Some(listener) = &mut lock(&self.registry).listener {
            listener.paused = paused;
        }
    }

    /// The listener is closed: nothing is listening any more.
    pub(super) fn stopped(&self) {
        lock(&self.registry).listener = None;
    }

    /// A connection was accepted: registers it, and takes its SYN from the kernel (which
    /// holds it until then).
    pub(super) fn accepted(self: &Arc<Self>, stream: &TcpStream, peer: SocketAddr) -> Registration {
        let syn = tcpinfo::saved_syn(stream)
            .map_err(|error| error.to_string())
            .and_then(|bytes| saved_syn::decode(&bytes).map_err(|error| error.to_string()));
        let accepted = Accepted {
            fd: raw_fd(stream),
            peer,
            local: stream.local_addr().ok(),
            member: None,
        };
        let mut registry = lock(&self.registry);
        let id = registry.next;
        registry.next += 1;
        registry.connections.insert(id, accepted);
        registry.last_syn = Some(syn);
        Registration {
            view: self.clone(),
            id,
        }
    }

    /// The connection from `peer` joined the room as `member` (its nick is read from the
    /// room when sampled, so a rename shows).
    pub(super) fn joined(&self, peer: SocketAddr, member: MemberId) {
        let mut registry = lock(&self.registry);
        if let Some(accepted) = registry
            .connections
            .values_mut()
            .find(|accepted| accepted.peer == peer)
        {
            accepted.member = Some(member);
        }
    }

    /// The kernel's figures for every registered socket, and its table's TIME-WAITs on the
    /// listener's port. `None` when nothing listens.
    pub async fn sample(&self) -> Option<ServerSample> {
        let mut sample = self.sample_sockets()?;
        sample.lingering = tcp_table::lingering(sample.listener.addr)
            .await
            .map_err(|error| error.to_string());
        Some(sample)
    }

    /// Everything but the table: the registry's sockets, each asked under the lock (so none
    /// is struck off, its number reused, mid-question).
    fn sample_sockets(&self) -> Option<ServerSample> {
        let registry = lock(&self.registry);
        let listening = registry.listener?;
        let rooms = registry.rooms.upgrade();
        let mut seen = std::collections::HashMap::new();
        for accepted in registry.connections.values() {
            *seen.entry(accepted.fd).or_insert(0u32) += 1;
        }
        let connections = registry
            .connections
            .values()
            .map(|accepted| {
                let stale = seen.get(&accepted.fd).copied().unwrap_or(0) > 1;
                ConnectionSample {
                    peer: accepted.peer,
                    local: accepted.local,
                    nick: accepted
                        .member
                        .and_then(|id| rooms.as_ref()?.nick_of(id))
                        .map(|nick| nick.to_string()),
                    info: match stale {
                        true => None,
                        false => read(accepted.fd),
                    },
                }
            })
            .collect();
        Some(ServerSample {
            listener: ListenerSample {
                addr: listening.addr,
                info: read(listening.fd),
                reuse_address: listening.reuse_address,
                paused: listening.paused,
            },
            connections,
            last_syn: registry.last_syn.clone(),
            lingering: Ok(Vec::new()),
        })
    }
}

#[cfg(unix)]
fn raw_fd(socket: &impl AsRawFd) -> RawFd {
    socket.as_raw_fd()
}

#[cfg(not(unix))]
fn raw_fd<S: ?Sized>(_socket: &S) -> RawFd {
    -1
}

#[cfg(unix)]
fn read(fd: RawFd) -> Option<TcpInfo> {
    tcpinfo::read(&fd).ok()
}

#[cfg(not(unix))]
fn read(_fd: RawFd) -> Option<TcpInfo> {
    None
}

/// The server's sockets at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSample {
    /// The listening socket.
    pub listener: ListenerSample,
    /// The accepted connections still served, oldest first.
    pub connections: Vec<ConnectionSample>,
    /// The last client SYN the kernel saved, decoded, or why it could not be.
    pub last_syn: Option<Result<Syn, String>>,
    /// Connections to the listener in TIME-WAIT (`/proc/net/tcp`), or why they are unknown.
    pub lingering: Result<Vec<Lingering>, String>,
}

/// The listening socket at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerSample {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its `TCP_INFO`: the state (LISTEN), the accept queue's length (`unacked`) and limit
    /// (`sacked`).
    pub info: Option<TcpInfo>,
    /// `SO_REUSEADDR`, as `getsockopt` reads it.
    pub reuse_address: Option<bool>,
    /// Whether `accept()` is held back (`--pause-accept`).
    pub paused: bool,
}

/// One accepted connection at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionSample {
    /// The client's address and port.
    pub peer: SocketAddr,
    /// The server's end (`getsockname()` at accept).
    pub local: Option<SocketAddr>,
    /// The nick in the room, once joined.
    pub nick: Option<String>,
    /// The kernel's figures for the server's end.
    pub info: Option<TcpInfo>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_without_a_view_pays_two_words() {
        // What each connection's task carries for the view: an empty `Option` when nobody
        // shows one (`--serve`), the handle that strikes it off when somebody does.
        assert_eq!(size_of::<Option<Registration>>(), 2 * size_of::<usize>());
    }

    #[tokio::test]
    async fn nothing_is_sampled_before_a_server_listens_or_after_it_stops() {
        let view = ServerView::new();
        assert!(view.sample().await.is_none());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let rooms = Arc::new(Rooms::new(
            super::super::rooms::OutboxLimits {
                entries: 1,
                bytes: 1,
            },
            super::super::rooms::RoomLimits {
                per_member: 1,
                rooms: 1,
                members: 1,
                announce_up_to: 1,
            },
        ));
        view.listening(&listener, &rooms);
        let sample = view.sample().await.unwrap();
        assert_eq!(sample.listener.addr, listener.local_addr().unwrap());
        assert!(sample.connections.is_empty() && sample.last_syn.is_none());
        view.stopped();
        assert!(view.sample().await.is_none());
    }
}
