//! Ladder diagrams: segments drawn as arrows between client and server, each labelled
//! *observed* (a counter or a system call's result shows it) or *inferred* (it follows from what
//! was observed and how TCP works), with its evidence; and the handshake's ladder, rebuilt from
//! the kernel's counters right after `connect()`.

use std::time::Duration;

use super::millis;
use crate::tcpinfo::{self, TcpInfo};

/// Which way a segment went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From us (the client) to the server.
    Out,
    /// From the server to us.
    In,
}

/// How we know a segment was sent. One rule for every arrow: *observed* when something on our
/// own socket counts or shows that segment (a `TCP_INFO` counter or state, a system call's
/// result, the kernel's TIME-WAIT table); *inferred* when nothing does and it follows only
/// from what was observed and how TCP works, including whether it went alone or rode on
/// another segment, which only a packet capture shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Knowledge {
    /// Something on our socket counts or shows it.
    Observed,
    /// It follows from what was observed and how TCP works, but nothing shows it by itself.
    Inferred,
}

/// One segment of a ladder diagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrow {
    /// `SYN`, `SYN-ACK`, `ACK`, `FIN`, `RST`.
    pub label: &'static str,
    /// Which way it went.
    pub direction: Direction,
    /// Observed or inferred.
    pub knowledge: Knowledge,
    /// The evidence, e.g. `segs_out 0→2`.
    pub evidence: String,
}

pub(super) fn ack(direction: Direction, evidence: &str) -> Arrow {
    Arrow {
        label: "ACK",
        direction,
        knowledge: Knowledge::Inferred,
        evidence: evidence.to_owned(),
    }
}

pub(super) fn fin(direction: Direction, knowledge: Knowledge, evidence: String) -> Arrow {
    Arrow {
        label: "FIN",
        direction,
        knowledge,
        evidence,
    }
}

/// SYN, SYN-ACK, ACK, from the counters right after `connect()` when the kernel gives them:
/// a fresh socket starts at zero, so `segs_out 2` is the SYN and the ACK, `segs_in 1` the
/// SYN-ACK, and `bytes_acked 1` the SYN's one sequence number, acknowledged. A server that
/// writes at once can add segments before the sample is taken; the evidence then says so
/// (`bytes_received` counts data only) rather than pretending the counts are the handshake's.
pub(super) fn handshake_ladder(info: Option<&TcpInfo>, took: Duration) -> Vec<Arrow> {
    let counters = info.and_then(|i| Some((i.segs_out?, i.segs_in?, i.bytes_acked?)));
    let Some((out, inn, acked)) = counters else {
        let evidence = format!("connect() returned after {}", millis(took));
        return ["SYN", "SYN-ACK", "ACK"]
            .into_iter()
            .zip([Direction::Out, Direction::In, Direction::Out])
            .map(|(label, direction)| Arrow {
                label,
                direction,
                knowledge: Knowledge::Inferred,
                evidence: evidence.clone(),
            })
            .collect();
    };
    let established = info.and_then(|i| i.state) == Some(tcpinfo::ESTABLISHED);
    vec![
        Arrow {
            label: "SYN",
            direction: Direction::Out,
            knowledge: Knowledge::Observed,
            evidence: format!("segs_out 0→{out}, bytes_acked 0→{acked}"),
        },
        Arrow {
            label: "SYN-ACK",
            direction: Direction::In,
            knowledge: Knowledge::Observed,
            evidence: match info.and_then(|i| i.bytes_received).unwrap_or(0) {
                // A server that speaks first (ours greets) may already have been heard from.
                0 => format!("segs_in 0→{inn}"),
                data => format!("segs_in 0→{inn} (the first, then {data} B of data)"),
            },
        },
        // Counted as the SYN-ACK is: the second segment out, with nothing written yet.
        Arrow {
            label: "ACK",
            direction: Direction::Out,
            knowledge: Knowledge::Observed,
            evidence: match (established, out) {
                (true, 2) => "segment 2 out; state ESTABLISHED".to_owned(),
                (true, _) => format!("segment 2 of {out} out; state ESTABLISHED"),
                (false, _) => format!("segment 2 of {out} out"),
            },
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_that_arrived_before_the_sample_is_not_passed_off_as_handshake() {
        let info = TcpInfo {
            state: Some(tcpinfo::ESTABLISHED),
            segs_out: Some(3),
            segs_in: Some(2),
            bytes_acked: Some(1),
            bytes_received: Some(68),
            ..TcpInfo::default()
        };
        let ladder = handshake_ladder(Some(&info), Duration::from_micros(80));
        assert_eq!(
            ladder[1].evidence,
            "segs_in 0→2 (the first, then 68 B of data)"
        );
        assert_eq!(ladder[2].evidence, "segment 2 of 3 out; state ESTABLISHED");
    }

    #[test]
    fn without_tcp_info_every_arrow_is_inferred() {
        let ladder = handshake_ladder(None, Duration::from_micros(80));
        assert!(ladder.iter().all(|a| a.knowledge == Knowledge::Inferred));
        assert_eq!(ladder[0].evidence, "connect() returned after 0.08 ms");
    }
}
