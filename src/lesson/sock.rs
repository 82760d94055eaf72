//! The lessons' sockets: the article's calls one at a time — `socket()`, `bind()`, `listen(n)`,
//! `connect()`, `accept()`, `send()`, `recv(n)`, `shutdown()`, `close()` — each made when the
//! learner asks and never more than asked (no buffering, no retry, no framing), so what the
//! kernel shows after it is the effect of that call alone.
//!
//! A socket is made with socket2 (so each option and `listen()`'s backlog can be set before the
//! call that needs it) and handed to tokio once it listens or connects. Every socket is
//! non-blocking: a call that would block says so at once (that is itself a lesson: a full
//! buffer, an empty queue), and each wait for the kernel has a limit the lesson states.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, SockRef, Socket, Type};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, timeout};

use crate::tcpinfo::{self, TcpInfo};

/// The loopback address every lesson listens and connects on (port 0: the kernel picks).
pub const LOOPBACK: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

/// What a socket has become.
#[derive(Debug)]
enum Inner {
    /// Made, maybe bound: neither listening nor connecting.
    Fresh(Socket),
    /// `listen()` was called.
    Listener(TcpListener),
    /// `connect()` was called, or `accept()` made it.
    Stream(TcpStream),
}

/// One TCP socket of a lesson.
#[derive(Debug)]
pub struct Sock {
    inner: Option<Inner>,
}

/// The error of a call the socket cannot take in its state (`listen()` on a connection...).
fn wrong_state(call: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{call} does not apply to this socket now"),
    )
}

impl Sock {
    /// `socket(AF_INET, SOCK_STREAM)`, non-blocking.
    pub fn new() -> io::Result<Self> {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
        socket.set_nonblocking(true)?;
        Ok(Self {
            inner: Some(Inner::Fresh(socket)),
        })
    }

    fn options(&self) -> io::Result<SockRef<'_>> {
        Ok(match self.inner.as_ref() {
            Some(Inner::Fresh(socket)) => SockRef::from(socket),
            Some(Inner::Listener(listener)) => SockRef::from(listener),
            Some(Inner::Stream(stream)) => SockRef::from(stream),
            None => return Err(wrong_state("a call")),
        })
    }

    fn stream(&self, call: &str) -> io::Result<&TcpStream> {
        match self.inner.as_ref() {
            Some(Inner::Stream(stream)) => Ok(stream),
            _ => Err(wrong_state(call)),
        }
    }

    /// `setsockopt(SO_REUSEADDR)`.
    pub fn reuse_address(&self, on: bool) -> io::Result<()> {
        self.options()?.set_reuse_address(on)
    }

    /// `setsockopt(TCP_NODELAY)`: `false` leaves Nagle's algorithm on, as a new socket has it.
    pub fn no_delay(&self, on: bool) -> io::Result<()> {
        self.options()?.set_tcp_nodelay(on)
    }

    /// `setsockopt(SO_LINGER, 0)`: `close()` then resets the connection instead of a FIN.
    pub fn linger_zero(&self) -> io::Result<()> {
        self.options()?.set_linger(Some(Duration::ZERO))
    }

    /// `bind(addr)`; the address it got (the port the kernel chose for port 0).
    pub fn bind(&self, addr: SocketAddr) -> io::Result<SocketAddr> {
        match self.inner.as_ref() {
            Some(Inner::Fresh(socket)) => socket.bind(&SockAddr::from(addr))?,
            _ => return Err(wrong_state("bind()")),
        }
        self.local()
    }

    /// `listen(backlog)`.
    pub fn listen(&mut self, backlog: i32) -> io::Result<()> {
        let Some(Inner::Fresh(socket)) = self.inner.take() else {
            return Err(wrong_state("listen()"));
        };
        socket.listen(backlog)?;
        let listener = TcpListener::from_std(socket.into())?;
        self.inner = Some(Inner::Listener(listener));
        Ok(())
    }

    /// `connect(addr)` started: the SYN is out; [`Sock::connected`] waits for the answer.
    pub fn start_connect(&mut self, addr: SocketAddr) -> io::Result<()> {
        let Some(Inner::Fresh(socket)) = self.inner.take() else {
            return Err(wrong_state("connect()"));
        };
        match socket.connect(&SockAddr::from(addr)) {
            Ok(()) => {}
            Err(error) if error.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(error) => {
                self.inner = Some(Inner::Fresh(socket));
                return Err(error);
            }
        }
        self.inner = Some(Inner::Stream(TcpStream::from_std(socket.into())?));
        Ok(())
    }

    /// Waits at most `limit` for the handshake started by [`Sock::start_connect`]: `Ok(true)`
    /// when it finished, `Ok(false)` when it is still going, the error when it failed.
    pub async fn connected(&self, limit: Duration) -> io::Result<bool> {
        let stream = self.stream("waiting for connect()")?;
        match timeout(limit, stream.writable()).await {
            Err(_) => Ok(false),
            Ok(ready) => {
                ready?;
                match stream.take_error()? {
                    Some(error) => Err(error),
                    None => Ok(true),
                }
            }
        }
    }

    /// `connect(addr)` to the end: the SYN, the SYN-ACK, our ACK, within `limit`.
    pub async fn connect(&mut self, addr: SocketAddr, limit: Duration) -> io::Result<()> {
        self.start_connect(addr)?;
        match self.connected(limit).await? {
            true => Ok(()),
            false => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connect() did not finish in {} ms", limit.as_millis()),
            )),
        }
    }

    /// `accept()`, waiting at most `limit` for a connection.
    pub async fn accept(&self, limit: Duration) -> io::Result<Sock> {
        let Some(Inner::Listener(listener)) = self.inner.as_ref() else {
            return Err(wrong_state("accept()"));
        };
        match timeout(limit, listener.accept()).await {
            Ok(accepted) => Ok(Sock {
                inner: Some(Inner::Stream(accepted?.0)),
            }),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no connection to accept()",
            )),
        }
    }

    /// One `send(bytes)`: how many the kernel took (all, some, or `WouldBlock` for none).
    pub fn send(&self, bytes: &[u8]) -> io::Result<usize> {
        self.stream("send()")?.try_write(bytes)
    }

    /// One `recv(size)`, waiting at most `limit` for something to read: the bytes (empty: the
    /// peer's FIN), or `None` if nothing came.
    pub async fn recv(&self, size: usize, limit: Duration) -> io::Result<Option<Vec<u8>>> {
        let stream = self.stream("recv()")?;
        let deadline = Instant::now() + limit;
        let mut buffer = vec![0; size];
        loop {
            match stream.try_read(&mut buffer) {
                Ok(read) => {
                    buffer.truncate(read);
                    return Ok(Some(buffer));
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) => return Err(error),
            }
            match tokio::time::timeout_at(deadline, stream.readable()).await {
                Err(_) => return Ok(None),
                Ok(ready) => ready?,
            }
        }
    }

    /// `shutdown(how)`.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.options()?.shutdown(how)
    }

    /// The address `getsockname()` reports.
    pub fn local(&self) -> io::Result<SocketAddr> {
        address(&self.options()?.local_addr()?)
    }

    /// The address `getpeername()` reports.
    pub fn peer(&self) -> io::Result<SocketAddr> {
        address(&self.options()?.peer_addr()?)
    }

    /// The kernel's `TCP_INFO` and queue sizes for this socket.
    pub fn info(&self) -> io::Result<TcpInfo> {
        match self.inner.as_ref() {
            Some(Inner::Fresh(socket)) => tcpinfo::read(socket),
            Some(Inner::Listener(listener)) => tcpinfo::read(listener),
            Some(Inner::Stream(stream)) => tcpinfo::read(stream),
            None => Err(wrong_state("getsockopt(TCP_INFO)")),
        }
    }

    /// Waits at most `limit` until `TCP_INFO` satisfies `wanted`, looking every millisecond
    /// (the kernel does not signal a change of state to a socket nobody reads); the last
    /// reading either way.
    pub async fn info_when(
        &self,
        limit: Duration,
        wanted: impl Fn(&TcpInfo) -> bool,
    ) -> io::Result<TcpInfo> {
        let deadline = Instant::now() + limit;
        loop {
            let info = self.info()?;
            if wanted(&info) || Instant::now() >= deadline {
                return Ok(info);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

fn address(addr: &SockAddr) -> io::Result<SocketAddr> {
    addr.as_socket()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an IP address"))
}
