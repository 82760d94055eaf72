//! A client's SYN as the kernel saved it on a listener (`TCP_SAVED_SYN`, read by
//! [`crate::tcpinfo::saved_syn`]), decoded: the addresses, the initial sequence number, the
//! window and the options the client offered (MSS, window scale, SACK permitted, timestamps).
//!
//! The bytes are the network header (IPv4 or IPv6) and the TCP header exactly as they arrived:
//! this is the one segment of the handshake the server's side can *observe* without capture
//! rights. Decoding is plain byte reading and never fails loudly: bytes that are not a SYN are
//! a [`SynError`].

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// `IPPROTO_TCP` in an IP header's protocol / next-header field.
const TCP: u8 = 6;
/// The SYN bit in the TCP flags byte.
const SYN_FLAG: u8 = 0x02;
/// The ACK bit: a SYN with it is the server's SYN-ACK, not a client's SYN.
const ACK_FLAG: u8 = 0x10;

/// One option of the SYN's TCP header, in the order the client sent them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SynOption {
    /// Maximum segment size the client can receive, bytes. On loopback 65495: the 65536-byte
    /// MTU of `lo` less 40 bytes of IPv4 and TCP headers (65476 over IPv6), not a figure a real
    /// network shows (1460 on Ethernet); with timestamps on, 12 of those bytes go to the
    /// option, which is why `TCP_INFO`'s mss reads 65483.
    Mss(u16),
    /// The client's window scale: its windows are to be read shifted left by this.
    WindowScale(u8),
    /// The client can take selective acknowledgements.
    SackPermitted,
    /// Timestamps: the client's clock value, and the echo (0 in a SYN).
    Timestamps {
        /// `TSval`.
        value: u32,
        /// `TSecr`.
        echo: u32,
    },
    /// No-operation, padding so the next option is aligned.
    Nop,
    /// Any other option: its kind and length.
    Other {
        /// The option's kind.
        kind: u8,
        /// Its length in bytes, kind and length included.
        len: u8,
    },
}

impl fmt::Display for SynOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Mss(mss) => write!(f, "mss {mss}"),
            Self::WindowScale(shift) => write!(f, "wscale {shift}"),
            Self::SackPermitted => f.write_str("sackOK"),
            Self::Timestamps { value, echo } => write!(f, "TS val {value} ecr {echo}"),
            Self::Nop => f.write_str("nop"),
            Self::Other { kind, len } => write!(f, "opt {kind} ({len} B)"),
        }
    }
}

/// A client's SYN, decoded, with the bytes it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Syn {
    /// The client's address and port.
    pub source: SocketAddr,
    /// The address and port it asked for (the listener's).
    pub destination: SocketAddr,
    /// The initial sequence number the client chose.
    pub isn: u32,
    /// The window the client offered, unscaled (a SYN's window is never scaled).
    pub window: u16,
    /// The TCP options, in order.
    pub options: Vec<SynOption>,
    /// Bytes of the network header at the front of `raw`.
    pub ip_header_len: usize,
    /// The headers as the kernel saved them: network header, then TCP header.
    pub raw: Vec<u8>,
}

impl Syn {
    /// The MSS option, if the client sent one.
    pub fn mss(&self) -> Option<u16> {
        self.options.iter().find_map(|option| match option {
            SynOption::Mss(mss) => Some(*mss),
            _ => None,
        })
    }

    /// The TCP header's bytes.
    pub fn tcp_header(&self) -> &[u8] {
        self.raw.get(self.ip_header_len..).unwrap_or_default()
    }
}

/// Why saved bytes could not be read as a client's SYN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SynError {
    /// Nothing was saved (the listener had no `TCP_SAVE_SYN`, or it was read already).
    Empty,
    /// The bytes end inside a header.
    Short,
    /// The IP version is neither 4 nor 6.
    NotIp(u8),
    /// The network header does not carry TCP directly (IPv6 extension headers included).
    NotTcp(u8),
    /// The TCP flags are not a client's SYN.
    NotSyn(u8),
}

impl fmt::Display for SynError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("nothing saved"),
            Self::Short => f.write_str("cut short"),
            Self::NotIp(version) => write!(f, "IP version {version}"),
            Self::NotTcp(protocol) => write!(f, "protocol {protocol}, not TCP"),
            Self::NotSyn(flags) => write!(f, "flags {flags:#04x}, not a SYN"),
        }
    }
}

impl std::error::Error for SynError {}

/// Decodes the headers `raw` (network header first) as a client's SYN.
pub fn decode(raw: &[u8]) -> Result<Syn, SynError> {
    let first = *raw.first().ok_or(SynError::Empty)?;
    let (source, destination, protocol, ip_header_len) = match first >> 4 {
        4 => {
            let ihl = usize::from(first & 0x0f) * 4;
            let header = raw.get(..ihl.max(20)).ok_or(SynError::Short)?;
            let ip = |at: usize| {
                Ipv4Addr::new(header[at], header[at + 1], header[at + 2], header[at + 3])
            };
            (
                IpAddr::V4(ip(12)),
                IpAddr::V4(ip(16)),
                header[9],
                ihl.max(20),
            )
        }
        6 => {
            let header = raw.get(..40).ok_or(SynError::Short)?;
            let ip = |at: usize| {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(&header[at..at + 16]);
                Ipv6Addr::from(octets)
            };
            (IpAddr::V6(ip(8)), IpAddr::V6(ip(24)), header[6], 40)
        }
        version => return Err(SynError::NotIp(version)),
    };
    if protocol != TCP {
        return Err(SynError::NotTcp(protocol));
    }
    let tcp = raw.get(ip_header_len..).ok_or(SynError::Short)?;
    let fixed = tcp.get(..20).ok_or(SynError::Short)?;
    let u16_at = |at: usize| u16::from_be_bytes([fixed[at], fixed[at + 1]]);
    let flags = fixed[13];
    if flags & (SYN_FLAG | ACK_FLAG) != SYN_FLAG {
        return Err(SynError::NotSyn(flags));
    }
    let data_offset = usize::from(fixed[12] >> 4) * 4;
    let options = tcp.get(20..data_offset.max(20)).ok_or(SynError::Short)?;
    Ok(Syn {
        source: SocketAddr::new(source, u16_at(0)),
        destination: SocketAddr::new(destination, u16_at(2)),
        isn: u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
        window: u16_at(14),
        options: decode_options(options),
        ip_header_len,
        raw: raw
            .get(..ip_header_len + data_offset.max(20))
            .unwrap_or(raw)
            .to_vec(),
    })
}

/// The options in `bytes`, up to the end-of-list option or a malformed one.
fn decode_options(mut bytes: &[u8]) -> Vec<SynOption> {
    let mut options = Vec::new();
    while let Some((&kind, rest)) = bytes.split_first() {
        match kind {
            0 => break,
            1 => {
                options.push(SynOption::Nop);
                bytes = rest;
                continue;
            }
            _ => {}
        }
        let Some(&len) = rest.first() else { break };
        let Some(body) = bytes.get(2..usize::from(len)) else {
            break;
        };
        options.push(match (kind, body) {
            (2, &[a, b]) => SynOption::Mss(u16::from_be_bytes([a, b])),
            (3, &[shift]) => SynOption::WindowScale(shift),
            (4, &[]) => SynOption::SackPermitted,
            (8, &[a, b, c, d, e, f, g, h]) => SynOption::Timestamps {
                value: u32::from_be_bytes([a, b, c, d]),
                echo: u32::from_be_bytes([e, f, g, h]),
            },
            _ => SynOption::Other { kind, len },
        });
        bytes = &bytes[usize::from(len)..];
    }
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    /// A SYN from 127.0.0.1:55932 to 127.0.0.1:52143, as `TCP_SAVED_SYN` returned it on
    /// Linux 6.18 (captured with the kernel's own call, unprivileged).
    const V4: &str = "4500003ceb164000400651a37f0000017f000001da7ccbaf7ac4225000000000\
                      a002ffd7fe3000000204ffd70402080a201b9a83000000000103030a";

    /// The same from [::1]:42366 to [::1]:54551.
    const V6: &str = "6003ee0d002806400000000000000000000000000000000100000000000000000000\
                      000000000001a57ed517fb6e2e0200000000a002ffc4003000000204ffc40402080a\
                      9f448119000000000103030a";

    #[test]
    fn a_captured_ipv4_syn_is_decoded() {
        let syn = decode(&hex(V4)).unwrap();
        assert_eq!(syn.source, "127.0.0.1:55932".parse().unwrap());
        assert_eq!(syn.destination, "127.0.0.1:52143".parse().unwrap());
        assert_eq!(syn.isn, 0x7ac4_2250);
        assert_eq!(syn.window, 65495);
        assert_eq!(
            syn.options,
            [
                SynOption::Mss(65495),
                SynOption::SackPermitted,
                SynOption::Timestamps {
                    value: 0x201b_9a83,
                    echo: 0
                },
                SynOption::Nop,
                SynOption::WindowScale(10),
            ]
        );
        assert_eq!(syn.mss(), Some(65495));
        assert_eq!((syn.ip_header_len, syn.tcp_header().len()), (20, 40));
    }

    #[test]
    fn a_captured_ipv6_syn_is_decoded() {
        let syn = decode(&hex(V6)).unwrap();
        assert_eq!(syn.source, "[::1]:42366".parse().unwrap());
        assert_eq!(syn.destination, "[::1]:54551".parse().unwrap());
        assert_eq!(syn.isn, 0xfb6e_2e02);
        assert_eq!(syn.mss(), Some(65476));
        assert_eq!(syn.options.len(), 5);
        assert_eq!(syn.ip_header_len, 40);
    }

    #[test]
    fn what_is_not_a_clients_syn_is_said() {
        assert_eq!(decode(&[]), Err(SynError::Empty));
        let bytes = hex(V4);
        assert_eq!(decode(&bytes[..30]), Err(SynError::Short));
        let mut syn_ack = bytes.clone();
        syn_ack[20 + 13] = 0x12;
        assert_eq!(decode(&syn_ack), Err(SynError::NotSyn(0x12)));
        let mut udp = bytes.clone();
        udp[9] = 17;
        assert_eq!(decode(&udp), Err(SynError::NotTcp(17)));
        // Options cut short end the list; what came before stays.
        let cut = &bytes[..bytes.len() - 1];
        assert_eq!(decode(cut), Err(SynError::Short));
    }

    #[test]
    fn malformed_options_stop_the_list_without_panicking() {
        assert_eq!(decode_options(&[2, 4, 0xff]), []);
        assert_eq!(
            decode_options(&[1, 1, 0, 2, 4, 1, 2]),
            [SynOption::Nop, SynOption::Nop]
        );
        assert_eq!(
            decode_options(&[30, 3, 7]),
            [SynOption::Other { kind: 30, len: 3 }]
        );
        // A length under 2 would never advance.
        assert_eq!(decode_options(&[5, 1, 2, 4, 0, 1]), []);
    }
}
