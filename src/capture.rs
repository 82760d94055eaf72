//! The segments themselves, as they cross loopback: a packet socket (`AF_PACKET`) reads every
//! IPv4 packet on the machine's interfaces, and the TCP ones between two loopback addresses are
//! kept, decoded (ports, flags, sequence and acknowledgement numbers, window, length, the SYN's
//! options), in a bounded ring the lessons read after each step.
//!
//! This turns arrows the sockets can only imply into segments seen: the SYN-ACK, the delayed
//! ACK, the RST. [`pcap`] writes what was kept as a capture file Wireshark and tcpdump open
//! (each packet's first [`SNAPLEN`] bytes: every header, and the start of the data). It needs `CAP_NET_RAW` (root has it); without it [`Capture::open`] fails with
//! `EPERM` and the lessons say so. The time of a segment is when tcpchat read it, within
//! microseconds of the wire on loopback, not the kernel's own timestamp.
//!
//! One `unsafe` block: the `setsockopt` that asks the kernel not to hand us each looped-back
//! packet twice (once leaving, once arriving), which socket2 does not offer.

#![allow(unsafe_code)]

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use socket2::{Domain, Protocol, Socket, Type};

/// Packets kept: the newest win. Far more than a lesson's step makes, so a busy machine's
/// other loopback traffic does not push a step's segments out before they are read; at most
/// [`SNAPLEN`] bytes each, so at most 8 MiB.
const KEPT: usize = 1 << 14;

/// Bytes kept of each packet for [`pcap`]: the IP and TCP headers with any options (at most
/// 120), and the first bytes of the data, as tcpdump's snapshot length does.
pub const SNAPLEN: usize = 512;

/// How long the reading thread blocks in one read, so it notices it should stop.
const READ_TIMEOUT: Duration = Duration::from_millis(100);

/// The TCP flags, as tcpdump prints them.
const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

/// A SYN's options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SynOptions {
    /// Maximum segment size.
    pub mss: Option<u16>,
    /// Window scale shift.
    pub window_scale: Option<u8>,
    /// Selective acknowledgements allowed.
    pub sack_permitted: bool,
    /// Timestamps offered.
    pub timestamps: bool,
}

/// One TCP segment seen on loopback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// When tcpchat read it.
    pub at: Instant,
    /// Its sender.
    pub from: SocketAddrV4,
    /// Its receiver.
    pub to: SocketAddrV4,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number (meaningful with ACK).
    pub ack: u32,
    /// The flag bits.
    pub flags: u8,
    /// The advertised window, unscaled as on the wire.
    pub window: u16,
    /// Payload bytes.
    pub len: usize,
    /// The options, on a SYN.
    pub options: SynOptions,
}

impl Segment {
    /// Whether one of its ends has `port`.
    pub fn has_port(&self, port: u16) -> bool {
        self.from.port() == port || self.to.port() == port
    }

    /// Its flags as a name: `SYN`, `SYN-ACK`, `ACK`, `PSH-ACK`, `FIN-ACK`, `RST`...
    pub fn flag_names(&self) -> String {
        let names = [
            (SYN, "SYN"),
            (FIN, "FIN"),
            (RST, "RST"),
            (PSH, "PSH"),
            (ACK, "ACK"),
        ];
        let set: Vec<&str> = names
            .iter()
            .filter(|(bit, _)| self.flags & bit != 0)
            .map(|&(_, name)| name)
            .collect();
        if set.is_empty() {
            "none".to_owned()
        } else {
            set.join("-")
        }
    }

    /// Whether it is a SYN (the first segment of either side).
    pub fn is_syn(&self) -> bool {
        self.flags & SYN != 0
    }

    /// Whether it opens, ends or aborts its connection (SYN, FIN, RST).
    pub fn flags_show_a_change(&self) -> bool {
        self.flags & (SYN | FIN | RST) != 0
    }

    /// Whether it carries ACK.
    pub fn is_ack(&self) -> bool {
        self.flags & ACK != 0
    }

    /// The SYN's options as tcpdump prints them (`mss 65495,sackOK,TS,wscale 7`).
    pub fn options_text(&self) -> String {
        let mut text = String::new();
        let options = self.options;
        if let Some(mss) = options.mss {
            let _ = write!(text, "mss {mss},");
        }
        if options.sack_permitted {
            text.push_str("sackOK,");
        }
        if options.timestamps {
            text.push_str("TS,");
        }
        if let Some(shift) = options.window_scale {
            let _ = write!(text, "wscale {shift},");
        }
        text.trim_end_matches(',').to_owned()
    }
}

/// Decodes an IPv4 packet (as a packet socket of type `SOCK_DGRAM` gives it: from the IP
/// header on) if it is TCP between two loopback addresses.
pub fn decode(packet: &[u8], at: Instant) -> Option<Segment> {
    let version = packet.first()? >> 4;
    let header = usize::from(packet.first()? & 0x0f) * 4;
    if version != 4 || header < 20 || *packet.get(9)? != 6 {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([*packet.get(2)?, *packet.get(3)?]));
    let address = |at: usize| -> Option<Ipv4Addr> {
        let bytes: [u8; 4] = packet.get(at..at + 4)?.try_into().ok()?;
        Some(Ipv4Addr::from(bytes))
    };
    let (source, destination) = (address(12)?, address(16)?);
    if !source.is_loopback() || !destination.is_loopback() {
        return None;
    }
    let tcp = packet.get(header..total.min(packet.len()))?;
    let word16 = |at: usize| -> Option<u16> {
        Some(u16::from_be_bytes(tcp.get(at..at + 2)?.try_into().ok()?))
    };
    let word32 = |at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(tcp.get(at..at + 4)?.try_into().ok()?))
    };
    let offset = usize::from(tcp.get(12)? >> 4) * 4;
    if offset < 20 || offset > tcp.len() {
        return None;
    }
    let flags = *tcp.get(13)?;
    let options = match flags & SYN {
        0 => SynOptions::default(),
        _ => syn_options(&tcp[20..offset]),
    };
    Some(Segment {
        at,
        from: SocketAddrV4::new(source, word16(0)?),
        to: SocketAddrV4::new(destination, word16(2)?),
        seq: word32(4)?,
        ack: word32(8)?,
        flags,
        window: word16(14)?,
        len: tcp.len() - offset,
        options,
    })
}

/// The options of a SYN's header (RFC 9293 §3.1, RFC 7323, RFC 2018).
fn syn_options(mut bytes: &[u8]) -> SynOptions {
    let mut options = SynOptions::default();
    while let Some((&kind, rest)) = bytes.split_first() {
        match kind {
            0 => break,
            1 => {
                bytes = rest;
                continue;
            }
            _ => {}
        }
        let Some(&length) = rest.first() else { break };
        let length = usize::from(length);
        if length < 2 || length > bytes.len() {
            break;
        }
        let value = &bytes[2..length];
        match (kind, value) {
            (2, [high, low]) => options.mss = Some(u16::from_be_bytes([*high, *low])),
            (3, [shift]) => options.window_scale = Some(*shift),
            (4, []) => options.sack_permitted = true,
            (8, _) => options.timestamps = true,
            _ => {}
        }
        bytes = &bytes[length..];
    }
    options
}

/// A segment with the packet it came in, for [`pcap`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// What the packet says, decoded.
    pub segment: Segment,
    /// The wall-clock time it was read (a capture file's timestamps are dates).
    pub wall: SystemTime,
    /// Its length on the wire.
    pub len: usize,
    /// Its first [`SNAPLEN`] bytes, from the IP header on.
    pub bytes: Vec<u8>,
}

/// A running capture on loopback. Dropping it stops the reading thread.
#[derive(Debug)]
pub struct Capture {
    ring: Arc<Mutex<VecDeque<Packet>>>,
    /// Ports the packets kept must have at one end; `None`: every loopback TCP packet.
    ports: Arc<Mutex<Option<Vec<u16>>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Capture {
    /// Opens the packet socket and starts reading; `EPERM` without `CAP_NET_RAW`.
    pub fn open() -> io::Result<Self> {
        let protocol = (libc::ETH_P_IP as u16).to_be();
        let socket = Socket::new(
            Domain::PACKET,
            Type::DGRAM,
            Some(Protocol::from(i32::from(protocol))),
        )?;
        ignore_outgoing(&socket);
        socket.set_read_timeout(Some(READ_TIMEOUT))?;
        let ring = Arc::new(Mutex::new(VecDeque::with_capacity(1024)));
        let ports = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new().name("capture".into()).spawn({
            let kept = Kept {
                ring: Arc::clone(&ring),
                ports: Arc::clone(&ports),
            };
            let stop = Arc::clone(&stop);
            move || read_packets(&socket, &kept, &stop)
        })?;
        Ok(Self {
            ring,
            ports,
            stop,
            thread: Some(thread),
        })
    }

    /// Keeps from now on only the packets with one of `ports` at an end.
    pub fn keep_ports(&self, ports: Vec<u16>) {
        *self.ports.lock().unwrap_or_else(PoisonError::into_inner) = Some(ports);
    }

    /// Takes the packets seen since `since` with one of `ports` at either end, oldest first.
    pub fn take_packets(&self, since: Instant, ports: &[u16]) -> Vec<Packet> {
        let mut ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        let wanted = |packet: &Packet| {
            packet.segment.at >= since && ports.iter().any(|&port| packet.segment.has_port(port))
        };
        let taken: Vec<Packet> = ring.iter().filter(|p| wanted(p)).cloned().collect();
        ring.retain(|packet| !wanted(packet));
        taken
    }

    /// [`Capture::take_packets`], the segments only.
    pub fn take(&self, since: Instant, ports: &[u16]) -> Vec<Segment> {
        self.take_packets(since, ports)
            .into_iter()
            .map(|packet| packet.segment)
            .collect()
    }
}

/// What the reading thread keeps, and by which ports.
struct Kept {
    ring: Arc<Mutex<VecDeque<Packet>>>,
    ports: Arc<Mutex<Option<Vec<u16>>>>,
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn read_packets(socket: &Socket, kept: &Kept, stop: &AtomicBool) {
    let mut buffer = vec![0u8; 65_536];
    let mut reader = socket;
    while !stop.load(Ordering::Relaxed) {
        let read = match reader.read(&mut buffer) {
            Ok(read) => read,
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(_) => return,
        };
        let Some(segment) = decode(&buffer[..read], Instant::now()) else {
            continue;
        };
        let ports = kept.ports.lock().unwrap_or_else(PoisonError::into_inner);
        if ports
            .as_ref()
            .is_some_and(|ports| !ports.iter().any(|&port| segment.has_port(port)))
        {
            continue;
        }
        drop(ports);
        let packet = Packet {
            segment,
            wall: SystemTime::now(),
            len: read,
            bytes: buffer[..read.min(SNAPLEN)].to_vec(),
        };
        let mut ring = kept.ring.lock().unwrap_or_else(PoisonError::into_inner);
        if ring.len() == KEPT {
            ring.pop_front();
        }
        ring.push_back(packet);
    }
}

/// A capture file (pcap, as libpcap writes it: microsecond times, `LINKTYPE_RAW`, so each
/// packet starts at its IP header) of `packets`.
pub fn pcap(packets: &[Packet]) -> Vec<u8> {
    /// The link type of packets that begin with an IPv4 or IPv6 header.
    const LINKTYPE_RAW: u32 = 101;
    let mut file = Vec::with_capacity(24 + packets.len() * 80);
    file.extend(0xa1b2_c3d4_u32.to_le_bytes()); // magic: microsecond timestamps
    file.extend(2u16.to_le_bytes()); // version 2.4
    file.extend(4u16.to_le_bytes());
    file.extend(0i32.to_le_bytes()); // time zone: UTC
    file.extend(0u32.to_le_bytes()); // accuracy
    file.extend(u32::try_from(SNAPLEN).unwrap_or(u32::MAX).to_le_bytes());
    file.extend(LINKTYPE_RAW.to_le_bytes());
    for packet in packets {
        let since = packet.wall.duration_since(UNIX_EPOCH).unwrap_or_default();
        let seconds = u32::try_from(since.as_secs()).unwrap_or(u32::MAX);
        let as_u32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        file.extend(seconds.to_le_bytes());
        file.extend(since.subsec_micros().to_le_bytes());
        file.extend(as_u32(packet.bytes.len()).to_le_bytes());
        file.extend(as_u32(packet.len).to_le_bytes());
        file.extend(&packet.bytes);
    }
    file
}

/// Asks the kernel not to hand us the copy of each looped-back packet it makes on the way out
/// (`PACKET_IGNORE_OUTGOING`, Linux 4.20); on an older kernel each segment shows twice.
fn ignore_outgoing(socket: &Socket) {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: the descriptor is open (borrowed from `socket` for the call); the pointer and
    // length describe `on`, a live `c_int`, which the kernel only reads.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_IGNORE_OUTGOING,
            (&raw const on).cast::<libc::c_void>(),
            libc::socklen_t::try_from(size_of::<libc::c_int>()).unwrap_or(0),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A SYN from 127.0.0.1:40000 to 127.0.0.1:8888 as Linux sends it on loopback: mss 65495,
    /// sackOK, TS, nop, wscale 7.
    const SYN_PACKET: [u8; 60] = [
        0x45, 0x00, 0x00, 0x3c, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, 127, 0, 0, 1, 127,
        0, 0, 1, // IP
        0x9c, 0x40, 0x22, 0xb8, 0x00, 0x00, 0x03, 0xe8, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0xff,
        0xd7, 0x00, 0x00, 0x00, 0x00, // TCP, seq 1000, SYN, window 65495
        0x02, 0x04, 0xff, 0xd7, 0x04, 0x02, 0x08, 0x0a, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
        0x00, 0x01, 0x03, 0x03, 0x07, // options
    ];

    #[test]
    fn a_syn_is_decoded_with_its_options() {
        let segment = decode(&SYN_PACKET, Instant::now()).unwrap();
        assert_eq!(segment.from, "127.0.0.1:40000".parse().unwrap());
        assert_eq!(segment.to, "127.0.0.1:8888".parse().unwrap());
        assert_eq!((segment.seq, segment.window, segment.len), (1000, 65495, 0));
        assert_eq!(segment.flag_names(), "SYN");
        assert_eq!(segment.options_text(), "mss 65495,sackOK,TS,wscale 7");
    }

    #[test]
    fn what_is_not_loopback_tcp_or_is_cut_short_is_not_a_segment() {
        let now = Instant::now();
        let mut udp = SYN_PACKET;
        udp[9] = 17;
        assert_eq!(decode(&udp, now), None);
        let mut elsewhere = SYN_PACKET;
        elsewhere[16] = 10;
        assert_eq!(decode(&elsewhere, now), None);
        for cut in 0..40 {
            assert_eq!(decode(&SYN_PACKET[..cut], now), None, "{cut} bytes");
        }
        let mut bad_offset = SYN_PACKET;
        bad_offset[32] = 0xf0; // 60 bytes of TCP header in a 40-byte segment
        assert_eq!(decode(&bad_offset, now), None);
    }

    #[test]
    fn a_capture_file_has_libpcaps_header_and_each_packet_as_it_came() {
        let at = Instant::now();
        let packet = Packet {
            segment: decode(&SYN_PACKET, at).unwrap(),
            wall: UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456),
            len: SYN_PACKET.len(),
            bytes: SYN_PACKET.to_vec(),
        };
        let file = pcap(&[packet]);
        assert_eq!(
            &file[..4],
            &[0xd4, 0xc3, 0xb2, 0xa1],
            "little-endian µs magic"
        );
        assert_eq!(u32::from_le_bytes(file[20..24].try_into().unwrap()), 101);
        let record = &file[24..];
        assert_eq!(
            u32::from_le_bytes(record[..4].try_into().unwrap()),
            1_700_000_000
        );
        assert_eq!(
            u32::from_le_bytes(record[4..8].try_into().unwrap()),
            123_456
        );
        assert_eq!(u32::from_le_bytes(record[8..12].try_into().unwrap()), 60);
        assert_eq!(u32::from_le_bytes(record[12..16].try_into().unwrap()), 60);
        assert_eq!(&record[16..], &SYN_PACKET);
    }

    #[test]
    fn options_that_lie_about_their_length_stop_the_parse() {
        assert_eq!(syn_options(&[2, 9, 1, 2]), SynOptions::default());
        assert_eq!(syn_options(&[2, 1]), SynOptions::default());
        assert!(syn_options(&[1, 1, 4, 2]).sack_permitted);
    }
}
