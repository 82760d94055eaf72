//! The byte stream a server connection runs over: plain TCP, or TLS over it. The session, its
//! line reader and its writer are generic over [`Transport`], so the plaintext path compiles to
//! exactly what it was (TCP's own zero-cost split, no box, no lock), while TLS gets tokio's
//! split of its stream. Either way the kernel's view (`TCP_INFO`) is read from the TCP socket
//! underneath: TLS is a layer on the same TCP session, not a different one.

use tokio::io::{AsyncRead, AsyncWrite, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::net::tcp;
use tokio_rustls::server::TlsStream;

/// A connection's stream, split into a read and a write half that work side by side.
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send {
    /// The read half.
    type Read<'a>: AsyncRead + Unpin + Send
    where
        Self: 'a;
    /// The write half.
    type Write<'a>: AsyncWrite + Unpin + Send
    where
        Self: 'a;

    /// Both halves, borrowed: reads go on while a write waits.
    fn halves(&mut self) -> (Self::Read<'_>, Self::Write<'_>);

    /// The TCP socket underneath, for the kernel's figures.
    fn tcp(&self) -> &TcpStream;
}

impl Transport for TcpStream {
    type Read<'a> = tcp::ReadHalf<'a>;
    type Write<'a> = tcp::WriteHalf<'a>;

    fn halves(&mut self) -> (Self::Read<'_>, Self::Write<'_>) {
        self.split()
    }

    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl Transport for TlsStream<TcpStream> {
    type Read<'a> = ReadHalf<&'a mut Self>;
    type Write<'a> = WriteHalf<&'a mut Self>;

    fn halves(&mut self) -> (Self::Read<'_>, Self::Write<'_>) {
        // One task polls both halves in turn, so the lock between them is never contended.
        tokio::io::split(self)
    }

    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
}
