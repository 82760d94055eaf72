//! The kernel's own table of TCP connections (Linux: `/proc/net/tcp` and `/proc/net/tcp6`), read
//! for one fact the socket itself cannot give once the close is over: which end holds the
//! connection's TIME-WAIT, i.e. whose FIN went first.
//!
//! Linux hands a TIME-WAIT to a small socket of its own and marks ours CLOSED, and a server
//! whose FIN came first leaves ours CLOSED too; the table tells them apart. Our end is listed
//! with our address as the local one; the server's end appears only when the server runs on
//! this machine (loopback), in the same network namespace.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// `TCP_TIME_WAIT` as the table prints it.
const TIME_WAIT: &str = "06";

/// Which ends of one connection the kernel lists in TIME-WAIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeWait {
    /// Ours: our FIN went first (or the two crossed).
    pub ours: bool,
    /// The server's, when it runs on this machine: its FIN went first (or the two crossed).
    pub theirs: bool,
}

/// Looks `local` ⇄ `peer` up in the kernel's tables. A machine without IPv6 has no tcp6 table;
/// an error only if neither table can be read.
#[cfg(target_os = "linux")]
pub async fn time_wait(local: SocketAddr, peer: SocketAddr) -> io::Result<TimeWait> {
    let mut found = TimeWait::default();
    let mut read_any = false;
    let mut last_error = None;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        match tokio::fs::read_to_string(table).await {
            Ok(text) => {
                read_any = true;
                let seen = listed_in_time_wait(&text, local, peer);
                found.ours |= seen.ours;
                found.theirs |= seen.theirs;
            }
            Err(error) => {
                last_error = Some(io::Error::new(error.kind(), format!("{table}: {error}")));
            }
        }
    }
    match last_error {
        Some(error) if !read_any => Err(error),
        _ => Ok(found),
    }
}

/// The table is Linux's; elsewhere the close's order is told by the socket's states alone.
#[cfg(not(target_os = "linux"))]
pub async fn time_wait(_local: SocketAddr, _peer: SocketAddr) -> io::Result<TimeWait> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// The TIME-WAIT rows of one table's `text` that are `local` ⇄ `peer`, either way round.
fn listed_in_time_wait(text: &str, local: SocketAddr, peer: SocketAddr) -> TimeWait {
    let mut found = TimeWait::default();
    for line in text.lines().skip(1) {
        let mut fields = line.split_whitespace().skip(1);
        let (Some(from), Some(to), Some(TIME_WAIT)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let (Some(from), Some(to)) = (parse_address(from), parse_address(to)) else {
            continue;
        };
        found.ours |= same(from, local) && same(to, peer);
        found.theirs |= same(from, peer) && same(to, local);
    }
    found
}

/// Equal, counting an IPv4 address and its IPv4-mapped IPv6 form (`::ffff:a.b.c.d`) as one.
fn same(a: SocketAddr, b: SocketAddr) -> bool {
    let canonical = |ip: IpAddr| ip.to_canonical();
    a.port() == b.port() && canonical(a.ip()) == canonical(b.ip())
}

/// One row of the kernel's table: a socket's two addresses and its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    /// The socket's own address.
    pub local: SocketAddr,
    /// The other end (`0.0.0.0:0` for a listening socket).
    pub remote: SocketAddr,
    /// The TCP state, numbered as [`crate::tcpinfo::state_name`] names them.
    pub state: u8,
}

/// Every row of the IPv4 table (`/proc/net/tcp`) with `port` at either end: a listener, its
/// connections, their TIME-WAITs.
#[cfg(target_os = "linux")]
pub async fn rows_with_port(port: u16) -> io::Result<Vec<Row>> {
    let text = tokio::fs::read_to_string("/proc/net/tcp")
        .await
        .map_err(|error| io::Error::new(error.kind(), format!("/proc/net/tcp: {error}")))?;
    Ok(rows(&text)
        .filter(|row| row.local.port() == port || row.remote.port() == port)
        .collect())
}

/// The rows of one table's `text`.
fn rows(text: &str) -> impl Iterator<Item = Row> + '_ {
    text.lines().skip(1).filter_map(|line| {
        let mut fields = line.split_whitespace().skip(1);
        let local = parse_address(fields.next()?)?;
        let remote = parse_address(fields.next()?)?;
        let state = u8::from_str_radix(fields.next()?, 16).ok()?;
        Some(Row {
            local,
            remote,
            state,
        })
    })
}

/// `0100007F:1F90`, or 32 hex digits and a port: the address in 32-bit words of the machine's
/// byte order, the port in hex.
fn parse_address(field: &str) -> Option<SocketAddr> {
    let (ip, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| {
        let hex = ip.get(i * 8..i * 8 + 8)?;
        u32::from_str_radix(hex, 16).ok().map(u32::to_ne_bytes)
    };
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut octets = [0u8; 16];
            for i in 0..4 {
                octets[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(octets))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two rows as a little-endian machine prints them: a TIME-WAIT from 127.0.0.1:8888 to
    /// 127.0.0.1:50000, and an ESTABLISHED one the other way round.
    const TABLE: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:22B8 0100007F:C350 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000
   1: 0100007F:C350 0100007F:22B8 01 00000000:00000000 00:00000000 00000000  1000        0 12345 1 0000000000000000 20 4 30 10 -1
";

    #[test]
    #[cfg(target_endian = "little")]
    fn the_servers_time_wait_is_told_from_ours() {
        let client: SocketAddr = "127.0.0.1:50000".parse().unwrap();
        let server: SocketAddr = "127.0.0.1:8888".parse().unwrap();
        let seen = listed_in_time_wait(TABLE, client, server);
        assert_eq!(
            seen,
            TimeWait {
                ours: false,
                theirs: true
            }
        );
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:50000".parse().unwrap();
        assert!(listed_in_time_wait(TABLE, mapped, server).theirs);
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn rows_carry_both_addresses_and_the_state() {
        let rows: Vec<Row> = rows(TABLE).collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].local, "127.0.0.1:8888".parse().unwrap());
        assert_eq!(rows[0].remote, "127.0.0.1:50000".parse().unwrap());
        assert_eq!((rows[0].state, rows[1].state), (6, 1));
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn ipv6_rows_are_read_word_by_word() {
        // ::1 port 8888, as /proc/net/tcp6 prints it on a little-endian machine.
        let field = "00000000000000000000000001000000:22B8";
        assert_eq!(parse_address(field), Some("[::1]:8888".parse().unwrap()));
        assert_eq!(parse_address("nonsense"), None);
    }
}
