//! The TCP inspector's model: the session as the article teaches it.
//!
//! Fed with every [`NetEvent`] (and live `TCP_INFO` samples), it keeps a bounded timeline in
//! the article's vocabulary (`socket()`, `connect()`, `send()`, `recv()`, FIN, `close()`), the
//! handshake and the close reconstructed as ladders of arrows from the kernel's own counters —
//! each arrow labelled *observed* or *inferred* with its evidence — the latest kernel figures
//! next to the previous ones (so the screen can mark what changed), and the raw bytes of the
//! last reads, so read boundaries can be seen. [`crate::ui`] draws it; nothing here draws.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use crate::net::{Close, NetEvent};
use crate::tcpinfo::{self, TcpInfo};
use crate::tls::record::{Content, Record, Way, handshake_name};

/// Timeline entries kept; the oldest go first.
pub const TIMELINE_LEN: usize = 1000;

/// Reads whose bytes are kept for the raw view.
pub const READS_KEPT: usize = 64;

/// Bytes kept of each read (the size is always the real one).
pub const READ_BYTES_KEPT: usize = 512;

/// Which part of the inspector is shown when the pane is too small for all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Page {
    /// The session's steps, with times.
    #[default]
    Timeline,
    /// The handshake and close ladders.
    Ladder,
    /// The kernel's `TCP_INFO` figures and queue sizes.
    Kernel,
    /// The raw bytes of the last reads.
    Reads,
}

impl Page {
    /// Every page, in order.
    pub const ALL: [Self; 4] = [Self::Timeline, Self::Ladder, Self::Kernel, Self::Reads];

    /// The next page, wrapping around.
    pub fn next(self) -> Self {
        let at = Self::ALL.iter().position(|&p| p == self).unwrap_or(0);
        Self::ALL[(at + 1) % Self::ALL.len()]
    }

    /// The page's name on its tab.
    pub fn title(self) -> &'static str {
        match self {
            Self::Timeline => "timeline",
            Self::Ladder => "handshake & close",
            Self::Kernel => "kernel",
            Self::Reads => "reads",
        }
    }
}

/// What a timeline entry is about, for its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Resolving, connecting, established.
    Setup,
    /// Bytes out.
    Send,
    /// Bytes in.
    Recv,
    /// FIN, close, reconnect.
    Close,
    /// Refused, reset, failed.
    Error,
}

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEntry {
    /// Time since the first event.
    pub at: Duration,
    /// What happened, in the article's words.
    pub text: String,
    /// For the colour.
    pub step: Step,
}

/// Which way a segment went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From us (the client) to the server.
    Out,
    /// From the server to us.
    In,
}

/// How we know a segment was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Knowledge {
    /// A counter or a system call result shows it.
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

/// Who began the close: the side that sends the first FIN ends in TIME-WAIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closer {
    /// Our FIN went first.
    Us,
    /// The server's FIN went first.
    Server,
    /// The FINs crossed (simultaneous close): both sides pass through TIME-WAIT.
    Both,
}

/// One `recv()` as it really fell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRecord {
    /// 1 for the first read of the program, counting on over reconnects.
    pub number: u64,
    /// Time since the first event.
    pub at: Duration,
    /// Bytes the read returned.
    pub len: usize,
    /// Its first [`READ_BYTES_KEPT`] bytes.
    pub bytes: Bytes,
    /// With TLS: the records that came off the socket for it (content type, body length),
    /// the ciphertext beside the plaintext `bytes` it carried.
    pub tls: Vec<(Content, u16)>,
}

/// The inspector's state.
#[derive(Debug, Default)]
pub struct Inspector {
    /// Whether the pane is shown.
    pub visible: bool,
    /// The page shown.
    pub page: Page,
    start: Option<Instant>,
    timeline: VecDeque<TimelineEntry>,
    /// The three-way handshake of the current (or last) connection.
    pub handshake: Vec<Arrow>,
    /// `connect()`'s duration.
    pub handshake_took: Option<Duration>,
    /// The close of the last connection, as far as it went.
    pub close: Vec<Arrow>,
    /// Who sent the first FIN, once known.
    pub closer: Option<Closer>,
    /// The latest kernel figures.
    pub info: Option<TcpInfo>,
    /// The figures before those, to mark what changed.
    pub previous: Option<TcpInfo>,
    reads: VecDeque<ReadRecord>,
    reads_total: u64,
    /// TLS records received since the last read, for the read they carried.
    carried: Vec<(Content, u16)>,
    /// Whether a TLS handshake is under way: its records go to the timeline.
    tls_handshaking: bool,
}

impl Inspector {
    /// The timeline, oldest first.
    pub fn timeline(&self) -> impl DoubleEndedIterator<Item = &TimelineEntry> + ExactSizeIterator {
        self.timeline.iter()
    }

    /// The kept reads, oldest first.
    pub fn reads(&self) -> impl DoubleEndedIterator<Item = &ReadRecord> + ExactSizeIterator {
        self.reads.iter()
    }

    /// A live `TCP_INFO` sample.
    pub fn on_sample(&mut self, info: TcpInfo) {
        self.previous = self.info.replace(info);
    }

    fn record(&mut self, at: Instant, step: Step, text: String) {
        let start = *self.start.get_or_insert(at);
        if self.timeline.len() == TIMELINE_LEN {
            self.timeline.pop_front();
        }
        self.timeline.push_back(TimelineEntry {
            at: at.saturating_duration_since(start),
            text,
            step,
        });
    }

    fn sample(&mut self, info: Option<&TcpInfo>) {
        if let Some(info) = info {
            self.on_sample(*info);
        }
    }

    /// Adds what `event` shows to the timeline, the ladders and the reads.
    pub fn on_net(&mut self, event: &NetEvent, at: Instant) {
        match event {
            NetEvent::Resolving { target } => {
                self.record(at, Step::Setup, format!("resolve {target}"));
            }
            NetEvent::Resolved { addrs } => {
                let list: Vec<String> = addrs.iter().map(ToString::to_string).collect();
                self.record(at, Step::Setup, format!("  → {}", list.join(", ")));
            }
            NetEvent::Connecting { addr } => {
                self.record(at, Step::Setup, format!("socket(); connect({addr}): SYN →"));
            }
            NetEvent::Connected {
                local,
                handshake,
                info,
                ..
            } => {
                let ms = millis(*handshake);
                self.record(
                    at,
                    Step::Setup,
                    format!("established in {ms}: SYN →, SYN-ACK ←, ACK →"),
                );
                self.record(
                    at,
                    Step::Setup,
                    format!("  local port {} picked by the kernel", local.port()),
                );
                // A new connection: the last one's ladders stay up until this moment, so a
                // failed reconnect attempt does not wipe what the last session showed.
                self.close.clear();
                self.closer = None;
                self.info = None;
                self.previous = None;
                self.handshake_took = Some(*handshake);
                self.tls_handshaking = true;
                self.carried.clear();
                self.handshake = handshake_ladder(info.as_ref(), *handshake);
                self.sample(info.as_ref());
            }
            NetEvent::ConnectFailed(reason) => {
                let text = if reason.contains("refused") {
                    format!("{reason} (RST ← to our SYN)")
                } else {
                    reason.clone()
                };
                self.record(at, Step::Error, text);
            }
            NetEvent::Received(bytes) => {
                self.record(at, Step::Recv, format!("recv() → {} B", bytes.len()));
                self.keep_read(at, bytes);
            }
            NetEvent::Sent { bytes, exit } => {
                let what = if *exit { ": exit" } else { "" };
                self.record(at, Step::Send, format!("send({bytes} B){what}"));
            }
            NetEvent::FinSent { info } => {
                self.record(at, Step::Close, "shutdown(WR): our FIN →".to_owned());
                self.on_fin_sent(info.and_then(|i| i.state));
                self.sample(info.as_ref());
            }
            NetEvent::Closed { how, info } => {
                self.on_closed(how, info.as_ref(), at);
                self.sample(info.as_ref());
            }
            NetEvent::Reconnecting { delay } => {
                let secs = delay.as_secs();
                self.record(at, Step::Close, format!("reconnect in {secs} s"));
            }
            NetEvent::NotSent(_) => {}
            NetEvent::TookOver { .. } => {
                let text = "the host left: bind() + listen() here, hosting the room";
                self.record(at, Step::Setup, text.to_owned());
            }
            NetEvent::TlsRecords(records) => self.on_records(records, at),
            NetEvent::TlsEstablished {
                established,
                handshake,
            } => {
                self.tls_handshaking = false;
                let ms = millis(*handshake);
                let trips = match self.handshake_took {
                    Some(tcp) if !tcp.is_zero() => {
                        let ratio = handshake.as_secs_f64() / tcp.as_secs_f64();
                        format!(" ({ratio:.1}× TCP's handshake)")
                    }
                    _ => String::new(),
                };
                let agreed = established.negotiated;
                self.record(
                    at,
                    Step::Setup,
                    format!("TLS established in {ms}{trips}: {agreed}"),
                );
            }
            NetEvent::TlsFailed(failure) => {
                self.tls_handshaking = false;
                self.record(at, Step::Error, failure.to_string());
            }
        }
    }

    /// TLS records: the handshake's go to the timeline one by one; received ones wait for the
    /// read whose plaintext they carried.
    fn on_records(&mut self, records: &[Record], at: Instant) {
        for record in records {
            if record.way == Way::Received && !self.tls_handshaking {
                self.carried.push((record.content, record.len));
            }
            let arrow = match record.way {
                Way::Sent => "→",
                Way::Received => "←",
            };
            let what = match (record.content, record.handshake, record.way) {
                (Content::Handshake, Some(kind), _) => handshake_name(kind).to_owned(),
                (Content::ChangeCipherSpec, ..) => "ChangeCipherSpec (compatibility)".to_owned(),
                (Content::Alert, ..) => "alert".to_owned(),
                (Content::ApplicationData, _, Way::Sent) if self.tls_handshaking => {
                    "Finished (encrypted)".to_owned()
                }
                (Content::ApplicationData, _, Way::Received) if self.tls_handshaking => {
                    "EncryptedExtensions … Finished (encrypted)".to_owned()
                }
                (Content::Other(byte), ..) => format!("not TLS (first byte {byte:#04x})"),
                // After the handshake, data records are shown with the reads they carried.
                _ => continue,
            };
            let step = match record.way {
                Way::Sent => Step::Send,
                Way::Received => Step::Recv,
            };
            let name = record.content.name();
            let len = record.len;
            self.record(
                record.at.min(at),
                step,
                format!("TLS {what} {arrow} [{name} {len} B]"),
            );
        }
    }

    fn keep_read(&mut self, at: Instant, bytes: &Bytes) {
        self.reads_total += 1;
        if self.reads.len() == READS_KEPT {
            self.reads.pop_front();
        }
        let start = self.start.unwrap_or(at);
        self.reads.push_back(ReadRecord {
            number: self.reads_total,
            at: at.saturating_duration_since(start),
            len: bytes.len(),
            bytes: bytes.slice(..bytes.len().min(READ_BYTES_KEPT)),
            tls: std::mem::take(&mut self.carried),
        });
    }

    /// Our FIN is out; the state at that moment tells who was first: FIN-WAIT means us,
    /// LAST-ACK means the server's FIN had already arrived, CLOSING means they crossed.
    fn on_fin_sent(&mut self, state: Option<u8>) {
        let ours = fin(
            Direction::Out,
            Knowledge::Observed,
            "shutdown(WR) returned".to_owned(),
        );
        match state {
            Some(tcpinfo::LAST_ACK) => {
                self.closer = Some(Closer::Server);
                self.close.push(fin(
                    Direction::In,
                    Knowledge::Observed,
                    "state LAST-ACK at our shutdown: theirs came first".to_owned(),
                ));
                self.close
                    .push(ack(Direction::Out, "the kernel acks a FIN at once"));
                self.close.push(ours);
            }
            Some(tcpinfo::CLOSING) => {
                self.closer = Some(Closer::Both);
                self.close.push(ours);
                self.close.push(fin(
                    Direction::In,
                    Knowledge::Observed,
                    "state CLOSING: the FINs crossed".to_owned(),
                ));
            }
            _ => {
                self.closer = Some(Closer::Us);
                self.close.push(ours);
                if state == Some(tcpinfo::FIN_WAIT2) {
                    self.close.push(Arrow {
                        label: "ACK",
                        direction: Direction::In,
                        knowledge: Knowledge::Observed,
                        evidence: "state FIN-WAIT-2: our FIN is acked".to_owned(),
                    });
                }
            }
        }
    }

    fn on_closed(&mut self, how: &Close, info: Option<&TcpInfo>, at: Instant) {
        let state = info.and_then(|i| i.state);
        let state_name = state.map(tcpinfo::state_name);
        let recv_zero = match state_name {
            Some(name) => format!("recv() returned 0; state {name}"),
            None => "recv() returned 0".to_owned(),
        };
        match (how, self.closer) {
            (Close::PeerFin, Some(Closer::Us)) => {
                self.record(at, Step::Close, "recv() → 0: the server's FIN ←".to_owned());
                if !self.close.iter().any(|a| a.label == "ACK") {
                    self.close
                        .push(ack(Direction::In, "our FIN is acked before theirs"));
                }
                self.close
                    .push(fin(Direction::In, Knowledge::Observed, recv_zero));
                let (knowledge, why) = match state {
                    Some(tcpinfo::TIME_WAIT) => (
                        Knowledge::Observed,
                        "state TIME-WAIT: we closed first, we wait",
                    ),
                    // Linux hands the TIME-WAIT to a small socket of its own and marks ours
                    // CLOSED once the last ACK is out.
                    Some(tcpinfo::CLOSED) => (
                        Knowledge::Inferred,
                        "state CLOSED: the kernel holds TIME-WAIT apart",
                    ),
                    _ => (Knowledge::Inferred, "the kernel acks a FIN at once"),
                };
                self.close.push(Arrow {
                    label: "ACK",
                    direction: Direction::Out,
                    knowledge,
                    evidence: why.to_owned(),
                });
                self.record(
                    at,
                    Step::Close,
                    "close(): we are left in TIME-WAIT".to_owned(),
                );
            }
            (Close::PeerFin, Some(Closer::Server)) => {
                self.record(
                    at,
                    Step::Close,
                    "recv() → 0: their FIN, read at last".to_owned(),
                );
                self.close
                    .push(ack(Direction::In, "our FIN is acked: we are done"));
                self.record(
                    at,
                    Step::Close,
                    "close(): the server is left in TIME-WAIT".to_owned(),
                );
            }
            (Close::PeerFin, Some(Closer::Both)) => {
                self.record(at, Step::Close, "recv() → 0: the FINs crossed".to_owned());
                self.close
                    .push(ack(Direction::Out, "each side acks the other's FIN"));
                self.close
                    .push(ack(Direction::In, "each side acks the other's FIN"));
                self.record(
                    at,
                    Step::Close,
                    "close(): both sides pass TIME-WAIT".to_owned(),
                );
            }
            (Close::PeerFin, None) => {
                self.record(at, Step::Close, "recv() → 0: the server's FIN ←".to_owned());
                self.closer = Some(Closer::Server);
                self.close
                    .push(fin(Direction::In, Knowledge::Observed, recv_zero));
                self.close
                    .push(ack(Direction::Out, "the kernel acks a FIN at once"));
                self.close.push(fin(
                    Direction::Out,
                    Knowledge::Inferred,
                    "close() sends ours".to_owned(),
                ));
                self.close
                    .push(ack(Direction::In, "the server is left in TIME-WAIT"));
                self.record(at, Step::Close, "close(): our FIN →".to_owned());
            }
            (Close::Reset, _) => {
                self.record(
                    at,
                    Step::Error,
                    "recv() failed: ECONNRESET (RST ←)".to_owned(),
                );
                self.close.push(Arrow {
                    label: "RST",
                    direction: Direction::In,
                    knowledge: Knowledge::Observed,
                    evidence: "recv() failed with ECONNRESET".to_owned(),
                });
                self.record(at, Step::Close, "close(): nothing left to say".to_owned());
            }
            (Close::Failed(error), _) => {
                self.record(at, Step::Error, format!("failed: {error}"));
                self.record(at, Step::Close, "close()".to_owned());
            }
            (Close::HungUp, _) => {
                self.record(
                    at,
                    Step::Close,
                    "close(): not a tcpchat server; not connecting again".to_owned(),
                );
            }
        }
    }
}

fn ack(direction: Direction, evidence: &str) -> Arrow {
    Arrow {
        label: "ACK",
        direction,
        knowledge: Knowledge::Inferred,
        evidence: evidence.to_owned(),
    }
}

fn fin(direction: Direction, knowledge: Knowledge, evidence: String) -> Arrow {
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
fn handshake_ladder(info: Option<&TcpInfo>, took: Duration) -> Vec<Arrow> {
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
        Arrow {
            label: "ACK",
            direction: Direction::Out,
            knowledge: Knowledge::Inferred,
            evidence: match (established, out) {
                (true, 2) => "segment 2 out; state ESTABLISHED".to_owned(),
                (true, _) => format!("segment 2 of {out} out; state ESTABLISHED"),
                (false, _) => format!("segment 2 of {out} out"),
            },
        },
    ]
}

/// A duration as milliseconds with enough digits for loopback (0.05 ms).
pub fn millis(duration: Duration) -> String {
    let ms = duration.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(inspector: &Inspector) -> Vec<String> {
        inspector.timeline().map(|e| e.text.clone()).collect()
    }

    fn handshake_info() -> TcpInfo {
        TcpInfo {
            state: Some(tcpinfo::ESTABLISHED),
            segs_out: Some(2),
            segs_in: Some(1),
            bytes_acked: Some(1),
            ..TcpInfo::default()
        }
    }

    fn connect(inspector: &mut Inspector, at: Instant) {
        let addr = "127.0.0.1:8888".parse().unwrap();
        inspector.on_net(&NetEvent::Connecting { addr }, at);
        let connected = NetEvent::Connected {
            local: "127.0.0.1:50000".parse().unwrap(),
            peer: addr,
            handshake: Duration::from_micros(80),
            info: Some(handshake_info()),
        };
        inspector.on_net(&connected, at + Duration::from_micros(80));
    }

    #[test]
    fn the_handshake_is_observed_from_the_counters() {
        let mut inspector = Inspector::default();
        connect(&mut inspector, Instant::now());
        let knowledge: Vec<_> = inspector
            .handshake
            .iter()
            .map(|a| (a.label, a.knowledge))
            .collect();
        assert_eq!(
            knowledge,
            [
                ("SYN", Knowledge::Observed),
                ("SYN-ACK", Knowledge::Observed),
                ("ACK", Knowledge::Inferred)
            ]
        );
        assert_eq!(
            inspector.handshake[0].evidence,
            "segs_out 0→2, bytes_acked 0→1"
        );
        assert_eq!(inspector.handshake[1].evidence, "segs_in 0→1");
        assert!(texts(&inspector)[2].contains("local port 50000"));
    }

    #[test]
    fn data_that_arrived_before_the_sample_is_not_passed_off_as_handshake() {
        let info = TcpInfo {
            segs_out: Some(3),
            segs_in: Some(2),
            bytes_received: Some(68),
            ..handshake_info()
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

    #[test]
    fn closing_first_leaves_us_in_time_wait() {
        let mut inspector = Inspector::default();
        let at = Instant::now();
        connect(&mut inspector, at);
        inspector.on_net(
            &NetEvent::Sent {
                bytes: 5,
                exit: true,
            },
            at,
        );
        let fin_wait = TcpInfo {
            state: Some(tcpinfo::FIN_WAIT2),
            ..TcpInfo::default()
        };
        inspector.on_net(
            &NetEvent::FinSent {
                info: Some(fin_wait),
            },
            at,
        );
        let time_wait = TcpInfo {
            state: Some(tcpinfo::TIME_WAIT),
            ..TcpInfo::default()
        };
        let closed = NetEvent::Closed {
            how: Close::PeerFin,
            info: Some(time_wait),
        };
        inspector.on_net(&closed, at);
        let ladder: Vec<_> = inspector
            .close
            .iter()
            .map(|a| (a.label, a.direction))
            .collect();
        assert_eq!(
            ladder,
            [
                ("FIN", Direction::Out),
                ("ACK", Direction::In),
                ("FIN", Direction::In),
                ("ACK", Direction::Out)
            ]
        );
        assert_eq!(inspector.close[3].knowledge, Knowledge::Observed);
        assert!(texts(&inspector).iter().any(|t| t == "send(5 B): exit"));
        assert!(texts(&inspector).last().unwrap().contains("TIME-WAIT"));
    }

    #[test]
    fn the_server_closing_first_is_told_apart_and_a_reset_is_not_a_fin() {
        let mut inspector = Inspector::default();
        let at = Instant::now();
        connect(&mut inspector, at);
        let close_wait = TcpInfo {
            state: Some(tcpinfo::CLOSE_WAIT),
            ..TcpInfo::default()
        };
        let closed = NetEvent::Closed {
            how: Close::PeerFin,
            info: Some(close_wait),
        };
        inspector.on_net(&closed, at);
        assert_eq!(inspector.closer, Some(Closer::Server));
        assert_eq!(
            inspector.close[0].evidence,
            "recv() returned 0; state CLOSE-WAIT"
        );
        assert_eq!(inspector.close.len(), 4);

        connect(&mut inspector, at);
        let reset = NetEvent::Closed {
            how: Close::Reset,
            info: None,
        };
        inspector.on_net(&reset, at);
        assert_eq!(inspector.close[0].label, "RST");
        assert!(texts(&inspector).iter().any(|t| t.contains("ECONNRESET")));
    }

    #[test]
    fn our_exit_after_the_servers_fin_is_not_called_first() {
        // The echo server closes on `exit` at once; its FIN can beat our shutdown(WR).
        let mut inspector = Inspector::default();
        let at = Instant::now();
        connect(&mut inspector, at);
        let last_ack = TcpInfo {
            state: Some(tcpinfo::LAST_ACK),
            ..TcpInfo::default()
        };
        inspector.on_net(
            &NetEvent::FinSent {
                info: Some(last_ack),
            },
            at,
        );
        let closed = NetEvent::Closed {
            how: Close::PeerFin,
            info: None,
        };
        inspector.on_net(&closed, at);
        assert_eq!(inspector.closer, Some(Closer::Server));
        let ladder: Vec<_> = inspector
            .close
            .iter()
            .map(|a| (a.label, a.direction))
            .collect();
        assert_eq!(
            ladder,
            [
                ("FIN", Direction::In),
                ("ACK", Direction::Out),
                ("FIN", Direction::Out),
                ("ACK", Direction::In)
            ]
        );
        assert!(
            texts(&inspector)
                .last()
                .unwrap()
                .contains("the server is left in TIME-WAIT")
        );
    }

    #[test]
    fn a_failed_reconnect_keeps_the_last_sessions_ladders() {
        let mut inspector = Inspector::default();
        let at = Instant::now();
        connect(&mut inspector, at);
        let closed = NetEvent::Closed {
            how: Close::Reset,
            info: None,
        };
        inspector.on_net(&closed, at);
        let addr = "127.0.0.1:8888".parse().unwrap();
        inspector.on_net(&NetEvent::Connecting { addr }, at);
        inspector.on_net(&NetEvent::ConnectFailed("refused".into()), at);
        assert_eq!(inspector.handshake.len(), 3);
        assert_eq!(inspector.close[0].label, "RST");
    }

    #[test]
    fn reads_keep_their_real_boundaries_and_are_bounded() {
        let mut inspector = Inspector::default();
        let at = Instant::now();
        for n in 0..(READS_KEPT + 3) {
            let bytes = Bytes::from(vec![b'x'; n + 1]);
            inspector.on_net(&NetEvent::Received(bytes), at);
        }
        assert_eq!(inspector.reads().len(), READS_KEPT);
        let last = inspector.reads().next_back().unwrap();
        assert_eq!(
            (last.number, last.len),
            (READS_KEPT as u64 + 3, READS_KEPT + 3)
        );
        let big = Bytes::from(vec![0u8; 3000]);
        inspector.on_net(&NetEvent::Received(big), at);
        let last = inspector.reads().next_back().unwrap();
        assert_eq!((last.len, last.bytes.len()), (3000, READ_BYTES_KEPT));
    }

    #[test]
    fn the_timeline_is_bounded_and_timed_from_the_first_event() {
        let mut inspector = Inspector::default();
        let at = Instant::now();
        for n in 0..(TIMELINE_LEN + 10) {
            let sent = NetEvent::Sent {
                bytes: n,
                exit: false,
            };
            inspector.on_net(&sent, at + Duration::from_millis(n as u64));
        }
        assert_eq!(inspector.timeline().len(), TIMELINE_LEN);
        let last = inspector.timeline().next_back().unwrap();
        assert_eq!(last.at, Duration::from_millis(TIMELINE_LEN as u64 + 9));
    }
}
