//! The close: who sent the first FIN (that side ends in TIME-WAIT), told from what the socket
//! showed as it went, and the close's ladder drawn from the same facts.
//!
//! The evidence, strongest first:
//! 1. the state right before our `shutdown(WR)`: CLOSE-WAIT means the server's FIN was already
//!    in, so it was first;
//! 2. the state right after it: FIN-WAIT-1/2 means ours went first, LAST-ACK theirs, CLOSING
//!    that they crossed;
//! 3. on loopback the whole close can be over by then (CLOSED after either order), so the
//!    kernel's table says who holds the TIME-WAIT ([`crate::tcp_table`]);
//! 4. a `recv()` of 0 before we shut anything down: theirs was first.
//!
//! When none of them settles it, the verdict says so ([`Closer::Unknown`]). The ACK of a FIN is
//! never drawn as a separate segment for a fact: Linux delays the ACK of a FIN and usually
//! lets it ride on its own FIN (a close is often three segments, not four), and nothing on our
//! socket tells the two apart, so such an ACK is inferred unless a state shows it went alone.

use tokio::time::Instant;

use super::Inspector;
use super::ladder::{Arrow, Direction, Knowledge, ack, fin};
use super::timeline::Step;
use crate::net::Close;
use crate::tcp_table::TimeWait;
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
    /// Both FINs went, but nothing the socket showed tells in which order (no `TCP_INFO`, or
    /// no table of connections to look the TIME-WAIT up in).
    Unknown,
}

/// What the socket showed about the close, gathered as it went.
#[derive(Debug, Default, Clone)]
pub(super) struct CloseFacts {
    /// Our FIN: the state right before and right after `shutdown(WR)`.
    shutdown: Option<(Option<u8>, Option<u8>)>,
    /// The end: how it came, the state then, and who the kernel lists in TIME-WAIT.
    end: Option<(Close, Option<u8>, Option<TimeWait>)>,
}

/// A verdict and the evidence for it.
type Verdict = (Closer, String);

impl CloseFacts {
    /// Who closed first, once anything settles it.
    fn verdict(&self) -> Option<Verdict> {
        let name = |state: u8| tcpinfo::state_name(state);
        if let Some((before, after)) = self.shutdown {
            match (before, after) {
                (Some(tcpinfo::CLOSE_WAIT), _) => {
                    let why = "state CLOSE-WAIT before our shutdown(WR): theirs was in";
                    return Some((Closer::Server, why.to_owned()));
                }
                (_, Some(tcpinfo::LAST_ACK)) => {
                    let why = "state LAST-ACK after our shutdown(WR): theirs came first";
                    return Some((Closer::Server, why.to_owned()));
                }
                (_, Some(tcpinfo::CLOSING)) => {
                    let why = "state CLOSING after our shutdown(WR): the FINs crossed";
                    return Some((Closer::Both, why.to_owned()));
                }
                (_, Some(state @ (tcpinfo::FIN_WAIT1 | tcpinfo::FIN_WAIT2))) => {
                    let why = format!("state {} after our shutdown(WR)", name(state));
                    return Some((Closer::Us, why));
                }
                _ => {}
            }
        }
        let (how, state, time_wait) = self.end.as_ref()?;
        if *how != Close::PeerFin {
            return None;
        }
        if self.shutdown.is_none() {
            let why = "recv() returned 0 before we sent ours".to_owned();
            return Some((Closer::Server, why));
        }
        if *state == Some(tcpinfo::CLOSING) {
            let why = "state CLOSING: the FINs crossed".to_owned();
            return Some((Closer::Both, why));
        }
        let verdict = match time_wait {
            Some(TimeWait {
                ours: true,
                theirs: true,
            }) => (Closer::Both, "both ends in TIME-WAIT (/proc/net/tcp)"),
            Some(TimeWait { ours: true, .. }) => (Closer::Us, "our TIME-WAIT in /proc/net/tcp"),
            Some(TimeWait { theirs: true, .. }) => {
                (Closer::Server, "the server's TIME-WAIT in /proc/net/tcp")
            }
            Some(TimeWait { .. }) => (Closer::Server, "no TIME-WAIT of ours in /proc/net/tcp"),
            None => (
                Closer::Unknown,
                "the close was over before it could be read",
            ),
        };
        Some((verdict.0, verdict.1.to_owned()))
    }

    /// The close's ladder as far as it is known.
    fn ladder(&self) -> (Option<Closer>, Vec<Arrow>) {
        let verdict = self.verdict();
        let after = self.shutdown.and_then(|(_, after)| after);
        let ours = self.shutdown.map(|_| {
            let evidence = match after {
                Some(state) => format!("shutdown(WR); now {}", tcpinfo::state_name(state)),
                None => "shutdown(WR) returned".to_owned(),
            };
            fin(Direction::Out, Knowledge::Observed, evidence)
        });
        let end = self.end.as_ref();
        let reset = end.is_some_and(|(how, ..)| *how == Close::Reset);
        let their_fin_read = end.is_some_and(|(how, ..)| *how == Close::PeerFin);
        let time_wait = end.and_then(|(_, _, table)| *table).unwrap_or_default();
        let recv_zero = match end.and_then(|(_, state, _)| *state) {
            Some(state) => format!("recv() returned 0; state {}", tcpinfo::state_name(state)),
            None => "recv() returned 0".to_owned(),
        };
        let mut arrows = Vec::new();
        let Some((closer, why)) = verdict else {
            // Not settled yet (or the end was not a FIN): what happened, nothing more.
            arrows.extend(ours);
            if reset {
                arrows.push(Arrow {
                    label: "RST",
                    direction: Direction::In,
                    knowledge: Knowledge::Observed,
                    evidence: "recv() failed with ECONNRESET".to_owned(),
                });
            }
            return (None, arrows);
        };
        let observed_ack = |direction, evidence: &str| Arrow {
            label: "ACK",
            direction,
            knowledge: Knowledge::Observed,
            evidence: evidence.to_owned(),
        };
        match closer {
            Closer::Us => {
                arrows.extend(ours);
                arrows.push(if after == Some(tcpinfo::FIN_WAIT2) {
                    observed_ack(Direction::In, "state FIN-WAIT-2: acked alone")
                } else {
                    ack(Direction::In, "may ride on their next segment")
                });
                if their_fin_read {
                    arrows.push(fin(Direction::In, Knowledge::Observed, recv_zero));
                    let end_state = end.and_then(|(_, state, _)| *state);
                    arrows.push(if end_state == Some(tcpinfo::TIME_WAIT) {
                        observed_ack(Direction::Out, "state TIME-WAIT: we closed first, we wait")
                    } else if time_wait.ours {
                        observed_ack(Direction::Out, "our TIME-WAIT in /proc/net/tcp")
                    } else {
                        ack(Direction::Out, "acked at once from FIN-WAIT-2")
                    });
                }
            }
            Closer::Server => {
                let theirs = if self.shutdown.is_some() {
                    fin(Direction::In, Knowledge::Observed, why)
                } else {
                    fin(Direction::In, Knowledge::Observed, recv_zero)
                };
                arrows.push(theirs);
                arrows.push(ack(Direction::Out, "Linux delays it: may ride on our FIN"));
                arrows.push(ours.unwrap_or_else(|| {
                    fin(
                        Direction::Out,
                        Knowledge::Inferred,
                        "close() sends ours".to_owned(),
                    )
                }));
                arrows.push(match after {
                    Some(tcpinfo::CLOSED) => {
                        observed_ack(Direction::In, "state CLOSED after LAST-ACK: ours is acked")
                    }
                    _ if time_wait.theirs => {
                        observed_ack(Direction::In, "the server's TIME-WAIT in /proc/net/tcp")
                    }
                    _ => ack(Direction::In, "the server is left in TIME-WAIT"),
                });
            }
            Closer::Both => {
                arrows.extend(ours);
                arrows.push(fin(Direction::In, Knowledge::Observed, why));
                let both = time_wait.ours && time_wait.theirs;
                for direction in [Direction::Out, Direction::In] {
                    arrows.push(if both {
                        observed_ack(direction, "both ends in TIME-WAIT (/proc/net/tcp)")
                    } else {
                        ack(direction, "each side acks the other's FIN")
                    });
                }
            }
            Closer::Unknown => {
                arrows.extend(ours);
                arrows.push(fin(Direction::In, Knowledge::Observed, recv_zero));
                arrows.push(ack(Direction::In, "acked, alone or riding on a FIN"));
                arrows.push(ack(Direction::Out, "acked, alone or riding on a FIN"));
            }
        }
        (Some(closer), arrows)
    }
}

impl Inspector {
    /// Our FIN is out; `before` and `after` are the socket's states around `shutdown(WR)`.
    pub(super) fn on_fin_sent(&mut self, before: Option<u8>, after: Option<u8>) {
        self.close_facts.shutdown = Some((before, after));
        self.redraw_close();
    }

    pub(super) fn on_closed(
        &mut self,
        how: &Close,
        info: Option<&TcpInfo>,
        time_wait: Option<TimeWait>,
        at: Instant,
    ) {
        let state = info.and_then(|i| i.state);
        self.close_facts.end = Some((how.clone(), state, time_wait));
        self.redraw_close();
        let mut record = |step, text: &str| self.timeline.record(at, step, text.to_owned());
        match (how, self.closer) {
            (Close::PeerFin, Some(Closer::Us)) => {
                record(Step::Close, "recv() → 0: the server's FIN ←");
                record(Step::Close, "close(): we are left in TIME-WAIT");
            }
            (Close::PeerFin, Some(Closer::Server)) if self.close_facts.shutdown.is_some() => {
                record(Step::Close, "recv() → 0: their FIN, read at last");
                record(Step::Close, "close(): the server is left in TIME-WAIT");
            }
            (Close::PeerFin, Some(Closer::Server)) => {
                record(Step::Close, "recv() → 0: the server's FIN ←");
                record(Step::Close, "close(): our FIN →");
            }
            (Close::PeerFin, Some(Closer::Both)) => {
                record(Step::Close, "recv() → 0: the FINs crossed");
                record(Step::Close, "close(): both sides pass TIME-WAIT");
            }
            (Close::PeerFin, _) => {
                record(Step::Close, "recv() → 0: the server's FIN ←");
                record(Step::Close, "close(): whose FIN went first is not known");
            }
            (Close::Reset, _) => {
                record(Step::Error, "recv() failed: ECONNRESET (RST ←)");
                record(Step::Close, "close(): nothing left to say");
            }
            (Close::Failed(error), _) => {
                record(Step::Error, &format!("failed: {error}"));
                record(Step::Close, "close()");
            }
            (Close::Aborted, _) => {
                record(Step::Close, "close() with SO_LINGER 0: our RST →, no FIN");
            }
            (Close::HungUp, _) => {
                record(
                    Step::Close,
                    "close(): not a tcpchat server; not connecting again",
                );
            }
        }
    }

    fn redraw_close(&mut self) {
        (self.closer, self.close) = self.close_facts.ladder();
    }
}
