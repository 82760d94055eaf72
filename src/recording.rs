//! `--pcap FILE`: the session's segments, captured on loopback while the client runs and
//! written on quitting as a capture file for Wireshark or tcpdump, so every arrow the
//! inspector infers can be checked against the packets.
//!
//! The capture keeps the packets to and from the server's port; on quitting, those of this
//! client's own connections (their addresses from the inspector) are written, so other clients
//! of a room this process hosts are left out.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// A capture running for `--pcap`.
#[derive(Debug)]
pub struct Recording {
    file: PathBuf,
    #[cfg(target_os = "linux")]
    capture: crate::capture::Capture,
    #[cfg(target_os = "linux")]
    since: std::time::Instant,
    #[cfg(target_os = "linux")]
    server_port: u16,
}

impl Recording {
    /// Starts capturing the segments to and from `target`'s port, for `file`; why not, if it
    /// cannot (no privilege, not Linux, no port).
    pub fn start(file: &Path, target: &str) -> Result<Self, String> {
        #[cfg(target_os = "linux")]
        {
            let port = crate::net::host_and_port(target)
                .1
                .and_then(|port| port.parse::<u16>().ok())
                .ok_or_else(|| format!("{target} names no port"))?;
            let capture = crate::capture::Capture::open().map_err(|error| {
                format!("a packet socket: {error} (capturing needs root or CAP_NET_RAW)")
            })?;
            capture.keep_ports(vec![port]);
            Ok(Self {
                file: file.to_path_buf(),
                capture,
                since: std::time::Instant::now(),
                server_port: port,
            })
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = (file, target);
            Err("capturing packets needs Linux".to_owned())
        }
    }

    /// Writes the packets of `connections` (ours, the server's) to the file; how many, and
    /// where.
    pub fn finish(
        self,
        connections: &[(SocketAddr, SocketAddr)],
    ) -> std::io::Result<(usize, PathBuf)> {
        #[cfg(target_os = "linux")]
        {
            let ours = |packet: &crate::capture::Packet| {
                let (from, to) = (
                    SocketAddr::V4(packet.segment.from),
                    SocketAddr::V4(packet.segment.to),
                );
                connections.iter().any(|&(local, peer)| {
                    let same = |a: SocketAddr, b: SocketAddr| {
                        a.port() == b.port() && a.ip().to_canonical() == b.ip().to_canonical()
                    };
                    (same(from, local) && same(to, peer)) || (same(from, peer) && same(to, local))
                })
            };
            // The last ACK of the close crosses loopback as the session ends; the capture's
            // thread reads it within microseconds. A moment's grace lets it.
            std::thread::sleep(std::time::Duration::from_millis(20));
            let packets: Vec<_> = self
                .capture
                .take_packets(self.since, &[self.server_port])
                .into_iter()
                .filter(ours)
                .collect();
            std::fs::write(&self.file, crate::capture::pcap(&packets))?;
            Ok((packets.len(), self.file))
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = connections;
            Ok((0, self.file))
        }
    }
}
