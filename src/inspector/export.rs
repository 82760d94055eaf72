//! The session as text, to hand in or to diff against another run (`/export`): the timeline
//! (when, what the program did, what TCP did), the handshake and close ladders with what each
//! arrow rests on, the kernel's last figures, and the size of each read. Written like a
//! packetdrill script is read: one event per line, time first; every arrow says whether it was
//! observed or inferred, as on screen. English, as the kernel's own field names are.

use std::fmt::Write as _;

use super::close::Closer;
use super::ladder::{Arrow, Direction, Knowledge};
use super::{Inspector, millis};
use crate::tcpinfo::{self, TcpInfo};

/// What the header says about the session.
#[derive(Debug, Clone, Copy)]
pub struct Heading<'a> {
    /// When it was exported, as the reader's clock says (`2026-11-30 17:30:02`).
    pub exported: &'a str,
    /// The server asked for (`HOST:PORT`).
    pub target: &'a str,
}

impl Inspector {
    /// The session so far, as text (see the module's documentation).
    pub fn export(&self, heading: Heading<'_>) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# tcpchat session with {}", heading.target);
        let _ = writeln!(out, "# exported {}", heading.exported);
        let _ = writeln!(
            out,
            "# times are from the first event; observed = a counter, state or system call \
             showed it; inferred = it follows from those and how TCP works"
        );
        out.push_str("\n# timeline\n");
        if self.timeline().len() == 0 {
            out.push_str("(nothing yet)\n");
        }
        for entry in self.timeline() {
            let _ = writeln!(out, "{:>10.4}s  {}", entry.at.as_secs_f64(), entry.text);
        }
        let took = self.handshake_took.map_or_else(String::new, |took| {
            format!(", connect() took {}", millis(took))
        });
        let _ = writeln!(out, "\n# handshake{took}");
        ladder(&mut out, &self.handshake);
        let closer = match self.closer {
            None => "",
            Some(Closer::Us) => ": we closed first",
            Some(Closer::Server) => ": the server closed first",
            Some(Closer::Both) => ": both closed at once",
            Some(Closer::Unknown) => ": who closed first cannot be told",
        };
        let _ = writeln!(out, "\n# close{closer}");
        ladder(&mut out, &self.close);
        out.push_str("\n# kernel: the last TCP_INFO sample\n");
        if is_loopback(heading.target) {
            out.push_str(
                "  (loopback: the MSS is near 64 KiB, RTTs are microseconds, nothing is lost)\n",
            );
        }
        match self.kernel.latest {
            Some(info) => kernel(&mut out, &info),
            None => out.push_str("(none: not connected yet, or not Linux)\n"),
        }
        let kept = super::READS_KEPT;
        let _ = writeln!(out, "\n# reads: the size of each recv() (the last {kept})");
        if self.reads().len() == 0 {
            out.push_str("(none)\n");
        }
        for read in self.reads() {
            let _ = writeln!(
                out,
                "{:>10.4}s  connection {} read {}: {} B",
                read.at.as_secs_f64(),
                read.session,
                read.number,
                read.len
            );
        }
        out
    }
}

/// Whether `target` (`HOST:PORT`) names this machine, where TCP's figures are not a network's.
fn is_loopback(target: &str) -> bool {
    let (host, _) = crate::net::host_and_port(target);
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn ladder(out: &mut String, arrows: &[Arrow]) {
    if arrows.is_empty() {
        out.push_str("(not yet)\n");
    }
    for arrow in arrows {
        let way = match arrow.direction {
            Direction::Out => "client → server",
            Direction::In => "server → client",
        };
        let knowledge = match arrow.knowledge {
            Knowledge::Observed => "observed",
            Knowledge::Inferred => "inferred",
        };
        let _ = writeln!(
            out,
            "  {:<8} {way}  {knowledge:<8}  {}",
            arrow.label, arrow.evidence
        );
    }
}

fn kernel(out: &mut String, info: &TcpInfo) {
    let state = info.state.map(tcpinfo::state_name);
    let fields: [(&str, Option<String>); 15] = [
        ("state", state.map(str::to_owned)),
        ("rtt_us", info.rtt_us.map(|v| v.to_string())),
        ("rttvar_us", info.rttvar_us.map(|v| v.to_string())),
        ("rto_us", info.rto_us.map(|v| v.to_string())),
        ("snd_cwnd", info.cwnd.map(|v| v.to_string())),
        ("snd_mss", info.snd_mss.map(|v| v.to_string())),
        ("retransmits", info.retransmits.map(|v| v.to_string())),
        ("bytes_acked", info.bytes_acked.map(|v| v.to_string())),
        ("bytes_received", info.bytes_received.map(|v| v.to_string())),
        ("segs_out", info.segs_out.map(|v| v.to_string())),
        ("segs_in", info.segs_in.map(|v| v.to_string())),
        ("unacked", info.unacked.map(|v| v.to_string())),
        ("notsent_bytes", info.notsent_bytes.map(|v| v.to_string())),
        (
            "recv_queue (SIOCINQ)",
            info.recv_queue.map(|v| v.to_string()),
        ),
        (
            "send_queue (SIOCOUTQ)",
            info.send_queue.map(|v| v.to_string()),
        ),
    ];
    for (name, value) in fields {
        let value = value.unwrap_or_else(|| "-".to_owned());
        let _ = writeln!(out, "  {name:<22} {value}");
    }
}
