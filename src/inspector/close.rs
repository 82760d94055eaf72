//! The close: who sent the first FIN (the side that did ends in TIME-WAIT) and the close's
//! ladder, from the socket's state when our FIN went out and when the last read returned.

use tokio::time::Instant;

use super::Inspector;
use super::ladder::{Arrow, Direction, Knowledge, ack, fin};
use super::timeline::Step;
use crate::net::Close;
use crate::tcpinfo::{self, TcpInfo};

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

impl Inspector {
    /// Our FIN is out; the state at that moment tells who was first: FIN-WAIT means us,
    /// LAST-ACK means the server's FIN had already arrived, CLOSING means they crossed.
    pub(super) fn on_fin_sent(&mut self, state: Option<u8>) {
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

    pub(super) fn on_closed(&mut self, how: &Close, info: Option<&TcpInfo>, at: Instant) {
        let state = info.and_then(|i| i.state);
        let state_name = state.map(tcpinfo::state_name);
        let recv_zero = match state_name {
            Some(name) => format!("recv() returned 0; state {name}"),
            None => "recv() returned 0".to_owned(),
        };
        match (how, self.closer) {
            (Close::PeerFin, Some(Closer::Us)) => {
                self.timeline
                    .record(at, Step::Close, "recv() → 0: the server's FIN ←".to_owned());
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
                self.timeline.record(
                    at,
                    Step::Close,
                    "close(): we are left in TIME-WAIT".to_owned(),
                );
            }
            (Close::PeerFin, Some(Closer::Server)) => {
                self.timeline.record(
                    at,
                    Step::Close,
                    "recv() → 0: their FIN, read at last".to_owned(),
                );
                self.close
                    .push(ack(Direction::In, "our FIN is acked: we are done"));
                self.timeline.record(
                    at,
                    Step::Close,
                    "close(): the server is left in TIME-WAIT".to_owned(),
                );
            }
            (Close::PeerFin, Some(Closer::Both)) => {
                self.timeline
                    .record(at, Step::Close, "recv() → 0: the FINs crossed".to_owned());
                self.close
                    .push(ack(Direction::Out, "each side acks the other's FIN"));
                self.close
                    .push(ack(Direction::In, "each side acks the other's FIN"));
                self.timeline.record(
                    at,
                    Step::Close,
                    "close(): both sides pass TIME-WAIT".to_owned(),
                );
            }
            (Close::PeerFin, None) => {
                self.timeline
                    .record(at, Step::Close, "recv() → 0: the server's FIN ←".to_owned());
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
                self.timeline
                    .record(at, Step::Close, "close(): our FIN →".to_owned());
            }
            (Close::Reset, _) => {
                self.timeline.record(
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
                self.timeline
                    .record(at, Step::Close, "close(): nothing left to say".to_owned());
            }
            (Close::Failed(error), _) => {
                self.timeline
                    .record(at, Step::Error, format!("failed: {error}"));
                self.timeline.record(at, Step::Close, "close()".to_owned());
            }
            (Close::HungUp, _) => {
                self.timeline.record(
                    at,
                    Step::Close,
                    "close(): not a tcpchat server; not connecting again".to_owned(),
                );
            }
        }
    }
}
