//! The kernel's own figures for one TCP socket: Linux `TCP_INFO` (`getsockopt`), the queue
//! sizes (`SIOCINQ`/`SIOCOUTQ`), and the client's SYN as the kernel saved it for a listener
//! (`TCP_SAVE_SYN` / `TCP_SAVED_SYN`). The project's only `unsafe` lives here, one block per
//! call, each with its reason.
//!
//! Neither socket2 nor nix exposes `TCP_INFO`; `libc::tcp_info` has the struct. The struct is
//! zeroed before the call and a field is trusted only if it lies wholly within the length the
//! kernel returned: an older kernel fills a shorter prefix, and those fields read `None`.
//! On other systems [`read`] reports `Unsupported` and the inspector shows the timeline alone.

#![allow(unsafe_code)]

use std::io;
#[cfg(target_os = "linux")]
use std::os::fd::AsRawFd;

/// A snapshot of one socket as the kernel sees it. `None`: the kernel did not report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpInfo {
    /// The TCP state (`ESTABLISHED`, `FIN_WAIT2`, `TIME_WAIT`, ...), as a number; see [`state_name`].
    pub state: Option<u8>,
    /// Smoothed round-trip time, µs.
    pub rtt_us: Option<u64>,
    /// Round-trip time variance, µs.
    pub rttvar_us: Option<u64>,
    /// Retransmission timeout, µs.
    pub rto_us: Option<u64>,
    /// Congestion window, segments.
    pub cwnd: Option<u64>,
    /// Maximum segment size for sending, bytes.
    pub snd_mss: Option<u64>,
    /// Retransmitted segments over the connection's life.
    pub retransmits: Option<u64>,
    /// Bytes the peer has acknowledged (the SYN counts as one).
    pub bytes_acked: Option<u64>,
    /// Bytes received in order (the peer's FIN counts as one; its SYN does not).
    pub bytes_received: Option<u64>,
    /// Segments sent, including pure ACKs and retransmissions.
    pub segs_out: Option<u64>,
    /// Segments received.
    pub segs_in: Option<u64>,
    /// Segments sent and not yet acknowledged. On a listening socket: the connections that
    /// finished their handshake and wait for `accept()` (the accept queue's length).
    pub unacked: Option<u64>,
    /// On a listening socket: the accept queue's limit, `listen()`'s backlog as the kernel
    /// capped it (`tcpi_sacked`). On a connection: segments the peer selectively acknowledged.
    pub sacked: Option<u64>,
    /// Segments sent that carried data (`tcpi_data_segs_out`): one `send()` can be several, and
    /// several can be one.
    pub data_segs_out: Option<u64>,
    /// Segments received that carried data (`tcpi_data_segs_in`).
    pub data_segs_in: Option<u64>,
    /// The window the peer last advertised, bytes (`tcpi_snd_wnd`): 0 when its reader stopped
    /// and its buffer filled.
    pub snd_wnd: Option<u64>,
    /// The window we advertise, bytes (`tcpi_rcv_wnd`).
    pub rcv_wnd: Option<u64>,
    /// Zero-window probes sent and not answered (`tcpi_probes`).
    pub probes: Option<u64>,
    /// Bytes written by us and not yet sent.
    pub notsent_bytes: Option<u64>,
    /// Bytes received and not yet read by us (`SIOCINQ`).
    pub recv_queue: Option<u64>,
    /// Bytes written by us and not yet acknowledged (`SIOCOUTQ`).
    pub send_queue: Option<u64>,
}

/// The name of a TCP state number, as `ss` prints it.
pub fn state_name(state: u8) -> &'static str {
    match state {
        1 => "ESTABLISHED",
        2 => "SYN-SENT",
        3 => "SYN-RECV",
        4 => "FIN-WAIT-1",
        5 => "FIN-WAIT-2",
        6 => "TIME-WAIT",
        7 => "CLOSED",
        8 => "CLOSE-WAIT",
        9 => "LAST-ACK",
        10 => "LISTEN",
        11 => "CLOSING",
        _ => "UNKNOWN",
    }
}

/// `TCP_ESTABLISHED`.
pub const ESTABLISHED: u8 = 1;
/// `TCP_SYN_SENT`: our SYN is out, no answer yet.
pub const SYN_SENT: u8 = 2;
/// `TCP_FIN_WAIT1`: our FIN is sent and not yet acknowledged.
pub const FIN_WAIT1: u8 = 4;
/// `TCP_FIN_WAIT2`: our FIN was acknowledged, the peer's has not come.
pub const FIN_WAIT2: u8 = 5;
/// `TCP_TIME_WAIT`: both FINs exchanged, we closed first.
pub const TIME_WAIT: u8 = 6;
/// `TCP_CLOSE`: nothing left (Linux also sets it once a TIME-WAIT is handed to its own socket).
pub const CLOSED: u8 = 7;
/// `TCP_CLOSE_WAIT`: the peer closed first; we have not.
pub const CLOSE_WAIT: u8 = 8;
/// `TCP_LAST_ACK`: the peer closed first, then we did; waiting for the ACK of our FIN.
pub const LAST_ACK: u8 = 9;
/// `TCP_CLOSING`: both sides sent FIN before either was acknowledged.
pub const CLOSING: u8 = 11;

/// Reads `TCP_INFO` and the queue sizes of `socket`.
#[cfg(target_os = "linux")]
pub fn read(socket: &impl AsRawFd) -> io::Result<TcpInfo> {
    let fd = socket.as_raw_fd();
    // SAFETY: `tcp_info` is plain old data (integers only), so all-zero bytes are a valid value.
    let mut raw: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = libc::socklen_t::try_from(size_of::<libc::tcp_info>()).unwrap_or(0);
    // SAFETY: `fd` is open for the duration of the call (borrowed from `socket`); the pointer
    // and `len` describe `raw`, a live, writable `tcp_info`, and the kernel writes at most
    // `len` bytes and stores the length it wrote back into `len`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&raw mut raw).cast::<libc::c_void>(),
            &raw mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut info = from_raw(&raw, len as usize);
    info.recv_queue = queue_size(fd, libc::FIONREAD);
    info.send_queue = queue_size(fd, libc::TIOCOUTQ);
    Ok(info)
}

/// `TCP_INFO` is Linux's; elsewhere there is nothing to read (and a socket need not be a file
/// descriptor: on Windows it is a `SOCKET`).
#[cfg(not(target_os = "linux"))]
pub fn read<S: ?Sized>(_socket: &S) -> io::Result<TcpInfo> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// Asks the kernel to keep the headers of each client SYN that reaches `listener`
/// (`TCP_SAVE_SYN`), so that each accepted socket can hand its own back once with
/// [`saved_syn`]. Must be set before `listen()`. Needs no privilege (Linux 4.2 and later). The
/// kernel holds the copy (a hundred bytes or so) until it is read or the socket is closed.
#[cfg(target_os = "linux")]
pub fn save_syn(listener: &impl AsRawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    let len = libc::socklen_t::try_from(size_of::<libc::c_int>()).unwrap_or(0);
    // SAFETY: the fd is open for the call (borrowed from `listener`); the pointer and `len`
    // describe `on`, a live `c_int` the kernel only reads.
    let rc = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_SAVE_SYN,
            (&raw const on).cast::<libc::c_void>(),
            len,
        )
    };
    match rc {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// `TCP_SAVE_SYN` is Linux's.
#[cfg(not(target_os = "linux"))]
pub fn save_syn<S: ?Sized>(_listener: &S) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// Room for a saved SYN: an IPv6 header (40 bytes, no extension headers kept) and the largest
/// TCP header (60 bytes), with room to spare.
pub const SAVED_SYN_MAX: usize = 128;

/// The network and TCP headers of the SYN that opened `accepted`, as the kernel saved them on
/// its listener ([`save_syn`]): the raw bytes, IP header first. The kernel hands them over once
/// and frees them; a second call, or a listener without `TCP_SAVE_SYN`, reads empty.
#[cfg(target_os = "linux")]
pub fn saved_syn(accepted: &impl AsRawFd) -> io::Result<Vec<u8>> {
    let mut bytes = [0u8; SAVED_SYN_MAX];
    let mut len = libc::socklen_t::try_from(SAVED_SYN_MAX).unwrap_or(0);
    // SAFETY: the fd is open for the call (borrowed from `accepted`); the pointer and `len`
    // describe `bytes`, a live, writable array; the kernel writes at most `len` bytes (it fails
    // with EINVAL rather than truncate) and stores the length it wrote back into `len`.
    let rc = unsafe {
        libc::getsockopt(
            accepted.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_SAVED_SYN,
            bytes.as_mut_ptr().cast::<libc::c_void>(),
            &raw mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let len = (len as usize).min(SAVED_SYN_MAX);
    Ok(bytes[..len].to_vec())
}

/// `TCP_SAVED_SYN` is Linux's.
#[cfg(not(target_os = "linux"))]
pub fn saved_syn<S: ?Sized>(_accepted: &S) -> io::Result<Vec<u8>> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// Runs `change` on the socket behind `socket` as a [`socket2::SockRef`], for the framing lab's
/// socket options (`TCP_NODELAY`, `SO_LINGER`, `SO_RCVBUF`, `shutdown`) on a socket whose
/// stream has been split (the halves lend no `AsFd`, only the descriptor).
#[cfg(target_os = "linux")]
pub fn with_socket<T>(
    socket: &impl AsRawFd,
    change: impl FnOnce(socket2::SockRef<'_>) -> io::Result<T>,
) -> io::Result<T> {
    // SAFETY: the descriptor is open for as long as `socket` is borrowed, which outlives the
    // borrowed fd: it is dropped at the end of this call and never closes anything.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(socket.as_raw_fd()) };
    change(socket2::SockRef::from(&fd))
}

/// The framing lab's socket options are tried on Linux only, like `TCP_INFO`.
#[cfg(not(target_os = "linux"))]
pub fn with_socket<S: ?Sized, T>(
    _socket: &S,
    _change: impl FnOnce(socket2::SockRef<'_>) -> io::Result<T>,
) -> io::Result<T> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// `SIOCINQ` is `FIONREAD` and `SIOCOUTQ` is `TIOCOUTQ` for TCP sockets.
#[cfg(target_os = "linux")]
fn queue_size(fd: std::os::fd::RawFd, request: libc::Ioctl) -> Option<u64> {
    let mut bytes: libc::c_int = 0;
    // SAFETY: `fd` is open (see `read`); both requests write one `c_int` through the pointer,
    // which points to a live local `c_int`.
    let rc = unsafe { libc::ioctl(fd, request, &raw mut bytes) };
    (rc == 0).then(|| u64::try_from(bytes).unwrap_or(0))
}

/// Copies the fields of `raw` that lie wholly within the first `len` bytes.
#[cfg(target_os = "linux")]
fn from_raw(raw: &libc::tcp_info, len: usize) -> TcpInfo {
    macro_rules! field {
        ($name:ident) => {{
            let end = std::mem::offset_of!(libc::tcp_info, $name) + size_of_val(&raw.$name);
            (end <= len).then(|| u64::from(raw.$name))
        }};
    }
    TcpInfo {
        state: field!(tcpi_state).map(|s| s as u8),
        rtt_us: field!(tcpi_rtt),
        rttvar_us: field!(tcpi_rttvar),
        rto_us: field!(tcpi_rto),
        cwnd: field!(tcpi_snd_cwnd),
        snd_mss: field!(tcpi_snd_mss),
        retransmits: field!(tcpi_total_retrans),
        bytes_acked: field!(tcpi_bytes_acked),
        bytes_received: field!(tcpi_bytes_received),
        segs_out: field!(tcpi_segs_out),
        segs_in: field!(tcpi_segs_in),
        unacked: field!(tcpi_unacked),
        sacked: field!(tcpi_sacked),
        data_segs_out: field!(tcpi_data_segs_out),
        data_segs_in: field!(tcpi_data_segs_in),
        snd_wnd: field!(tcpi_snd_wnd),
        rcv_wnd: field!(tcpi_rcv_wnd),
        probes: field!(tcpi_probes),
        notsent_bytes: field!(tcpi_notsent_bytes),
        recv_queue: None,
        send_queue: None,
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn filled() -> libc::tcp_info {
        // SAFETY: plain old data; zero is valid.
        let mut raw: libc::tcp_info = unsafe { std::mem::zeroed() };
        raw.tcpi_state = ESTABLISHED;
        raw.tcpi_rtt = 50;
        raw.tcpi_total_retrans = 3;
        raw.tcpi_bytes_acked = 1;
        raw.tcpi_segs_out = 2;
        raw.tcpi_segs_in = 1;
        raw.tcpi_notsent_bytes = 7;
        raw
    }

    #[test]
    fn the_full_length_reads_every_field() {
        let info = from_raw(&filled(), size_of::<libc::tcp_info>());
        assert_eq!(info.state, Some(ESTABLISHED));
        assert_eq!(info.rtt_us, Some(50));
        assert_eq!(info.retransmits, Some(3));
        assert_eq!(
            (info.segs_out, info.segs_in, info.bytes_acked),
            (Some(2), Some(1), Some(1))
        );
        assert_eq!(info.notsent_bytes, Some(7));
    }

    #[test]
    fn fields_past_a_short_returned_length_are_not_trusted() {
        // An old kernel's struct ends after tcpi_total_retrans (104 bytes).
        let len = std::mem::offset_of!(libc::tcp_info, tcpi_pacing_rate);
        let info = from_raw(&filled(), len);
        assert_eq!(info.retransmits, Some(3));
        assert_eq!(info.bytes_acked, None);
        assert_eq!(info.segs_out, None);
        assert_eq!(info.notsent_bytes, None);
        // A field cut in half is not trusted either.
        let half = std::mem::offset_of!(libc::tcp_info, tcpi_rtt) + 2;
        assert_eq!(from_raw(&filled(), half).rtt_us, None);
        assert_eq!(from_raw(&filled(), 0), TcpInfo::default());
    }
}
