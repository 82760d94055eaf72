//! The TCP inspector's model: the session as the article teaches it.
//!
//! Fed with every [`NetEvent`] (and live `TCP_INFO` samples), it keeps what the pane shows;
//! [`crate::ui`] draws it; nothing here draws. Each part owns one thing:
//!
//! - `timeline`: the session's steps in the article's vocabulary (`socket()`, `connect()`,
//!   `send()`, `recv()`, FIN, `close()`), timed and bounded.
//! - `ladder`: segments as arrows, each *observed* or *inferred* with its evidence; the
//!   handshake rebuilt from the kernel's counters.
//! - `close`: who closed first, and the close's ladder.
//! - `reads`: the raw bytes of the last reads, so read boundaries can be seen.
//! - `kernel`: the latest kernel figures next to the previous ones, so the screen can mark what
//!   changed.
//! - `framing`: the framing lab's counts of our own `send()`/`recv()` calls and the lines
//!   they assemble into, beside the knobs.
//! - `tls`: TLS records, on the timeline during the handshake and with their reads after it.
//! - `server`: the server's side of the sockets, when this process hosts the room.

mod close;
mod export;
mod framing;
mod kernel;
mod ladder;
mod reads;
mod server;
mod timeline;
mod tls;

pub use close::Closer;
pub use export::Heading;
pub use framing::{Calls, FramingLab, SIZES_KEPT, median};
pub use kernel::KernelSamples;
pub use ladder::{Arrow, Direction, Knowledge};
pub use reads::{READ_BYTES_KEPT, READS_KEPT, ReadRecord};
pub use server::ServerSide;
pub use timeline::{Step, TIMELINE_LEN, TimelineEntry};

use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use crate::lab::LabEvent;
use crate::net::NetEvent;
use crate::tcpinfo::TcpInfo;
use close::CloseFacts;
use ladder::handshake_ladder;
use reads::Reads;
use timeline::Timeline;

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
    /// The server's side: its listener, the connections it accepted, the last SYN, its
    /// TIME-WAITs (shown when this process hosts the room).
    Server,
    /// The framing lab: our `send()`/`recv()` calls, the segments, the queues, the lines.
    Framing,
}

impl Page {
    /// Every page, in order.
    pub const ALL: [Self; 6] = [
        Self::Timeline,
        Self::Ladder,
        Self::Kernel,
        Self::Reads,
        Self::Server,
        Self::Framing,
    ];

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
            Self::Server => "server",
            Self::Framing => "framing",
        }
    }
}

/// The inspector's state.
#[derive(Debug, Default)]
pub struct Inspector {
    /// Whether the pane is shown.
    pub visible: bool,
    /// The page shown.
    pub page: Page,
    timeline: Timeline,
    /// The three-way handshake of the current (or last) connection.
    pub handshake: Vec<Arrow>,
    /// `connect()`'s duration.
    pub handshake_took: Option<Duration>,
    /// The close of the last connection, as far as it went.
    pub close: Vec<Arrow>,
    /// Who sent the first FIN, once known.
    pub closer: Option<Closer>,
    close_facts: CloseFacts,
    /// The kernel's figures for the current (or last) connection.
    pub kernel: KernelSamples,
    reads: Reads,
    /// The framing lab's counts and knobs.
    pub framing: FramingLab,
    /// Whether a TLS handshake is under way: its records go to the timeline.
    tls_handshaking: bool,
    /// Each connection's (ours, the server's) addresses, oldest first: what `--pcap` keeps.
    pub connections: Vec<(SocketAddr, SocketAddr)>,
    /// The server's side of the sockets, as last sampled.
    pub server: ServerSide,
    /// Whether the pane is tall enough to stack the client's pages (set from the layout).
    stacked: bool,
    /// Rows the server's page is scrolled down.
    server_scroll: usize,
}

impl Inspector {
    /// The timeline, oldest first.
    pub fn timeline(&self) -> impl DoubleEndedIterator<Item = &TimelineEntry> + ExactSizeIterator {
        self.timeline.iter()
    }

    /// Entries newer than the timeline view's last row (0: it follows the newest).
    pub fn timeline_scrolled_back(&self) -> usize {
        self.timeline.scrolled_back()
    }

    /// Scrolls the timeline's view `rows` entries back (negative: towards the newest); on
    /// the server's page, scrolls that page `rows` rows up (negative: down).
    pub fn scroll_timeline(&mut self, rows: isize) {
        match self.page {
            Page::Server => self.server_scroll = self.server_scroll.saturating_add_signed(-rows),
            _ => self.timeline.scroll(rows),
        }
    }

    /// Rows the server's page is scrolled down from its top (the drawing caps it at the page's
    /// length).
    pub fn server_scroll(&self) -> usize {
        self.server_scroll
    }

    /// The layout stacks the client's four pages in one (a tall pane): turning pages then
    /// goes between that stack and the server's page.
    pub fn set_stacked(&mut self, stacked: bool) {
        self.stacked = stacked;
    }

    /// Shows the next page (F5): each in turn, or, stacked, the stack and the server's page
    /// by turns.
    pub fn next_page(&mut self) {
        self.page = match (self.stacked, self.page) {
            (true, Page::Server) => Page::Framing,
            (true, Page::Framing) => Page::Timeline,
            (true, _) => Page::Server,
            (false, page) => page.next(),
        };
    }

    /// A new sample of the server's side.
    pub fn on_server(&mut self, side: ServerSide) {
        self.server = side;
    }

    /// The kept reads, oldest first.
    pub fn reads(&self) -> impl DoubleEndedIterator<Item = &ReadRecord> + ExactSizeIterator {
        self.reads.iter()
    }

    /// A live `TCP_INFO` sample.
    pub fn on_sample(&mut self, info: TcpInfo) {
        self.kernel.push(info);
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
                self.timeline
                    .record(at, Step::Setup, format!("resolve {target}"));
            }
            NetEvent::Resolved { addrs } => {
                let list: Vec<String> = addrs.iter().map(ToString::to_string).collect();
                self.timeline
                    .record(at, Step::Setup, format!("  → {}", list.join(", ")));
            }
            NetEvent::Connecting { addr } => {
                self.timeline
                    .record(at, Step::Setup, format!("socket(); connect({addr}): SYN →"));
            }
            NetEvent::Connected {
                local,
                peer,
                handshake,
                info,
            } => {
                self.connections.push((*local, *peer));
                let ms = millis(*handshake);
                self.timeline.record(
                    at,
                    Step::Setup,
                    format!("established in {ms}: SYN →, SYN-ACK ←, ACK →"),
                );
                self.timeline.record(
                    at,
                    Step::Setup,
                    format!("  local port {} picked by the kernel", local.port()),
                );
                // A new connection: the last one's ladders stay up until this moment, so a
                // failed reconnect attempt does not wipe what the last session showed.
                self.close.clear();
                self.closer = None;
                self.close_facts = CloseFacts::default();
                self.kernel.clear();
                self.handshake_took = Some(*handshake);
                self.tls_handshaking = true;
                self.reads.new_session();
                self.framing.new_session();
                self.handshake = handshake_ladder(info.as_ref(), *handshake);
                self.sample(info.as_ref());
            }
            NetEvent::ConnectFailed(reason) => {
                let text = if reason.contains("refused") {
                    // ECONNREFUSED: an RST answered our SYN (or an ICMP port unreachable
                    // did); no counter shows which.
                    format!("{reason} (RST ←, inferred)")
                } else {
                    reason.clone()
                };
                self.timeline.record(at, Step::Error, text);
            }
            NetEvent::Received(bytes) => {
                self.timeline
                    .record(at, Step::Recv, format!("recv() → {} B", bytes.len()));
                self.reads.keep(self.timeline.since_start(at), bytes);
                self.framing.on_recv(bytes);
            }
            NetEvent::Sent { bytes, exit } => {
                let what = if *exit { ": exit" } else { "" };
                self.timeline
                    .record(at, Step::Send, format!("send({bytes} B){what}"));
                self.framing.on_send(*bytes);
            }
            NetEvent::FinSent { before, info } => {
                self.timeline
                    .record(at, Step::Close, "shutdown(WR): our FIN →".to_owned());
                self.on_fin_sent(*before, info.and_then(|i| i.state));
                self.sample(info.as_ref());
            }
            NetEvent::Closed {
                how,
                info,
                time_wait,
            } => {
                self.on_closed(how, info.as_ref(), *time_wait, at);
                self.sample(info.as_ref());
            }
            NetEvent::Reconnecting { delay } => {
                let secs = delay.as_secs();
                self.timeline
                    .record(at, Step::Close, format!("reconnect in {secs} s"));
            }
            NetEvent::NotSent(_) => {}
            NetEvent::Lab(lab) => {
                self.timeline.record(at, Step::Setup, lab_step(lab));
                self.framing.on_lab(lab);
            }
            NetEvent::TookOver { .. } => {
                let text = "the host left: bind() + listen() here, hosting the room";
                self.timeline.record(at, Step::Setup, text.to_owned());
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
                self.timeline.record(
                    at,
                    Step::Setup,
                    format!("TLS established in {ms}{trips}: {agreed}"),
                );
            }
            NetEvent::TlsFailed(failure) => {
                self.tls_handshaking = false;
                self.timeline.record(at, Step::Error, failure.to_string());
            }
        }
    }
}

/// A lab event on the timeline, in the syscalls' words.
fn lab_step(event: &LabEvent) -> String {
    match event {
        LabEvent::Probed { nagle, rounds } => {
            let nagle = if *nagle { "on" } else { "off" };
            let median = median(rounds).map_or_else(|| "no reply".to_owned(), millis);
            format!("probe, Nagle {nagle}: write, write, read: median {median}")
        }
        LabEvent::Nagle(true) => "setsockopt(TCP_NODELAY, 0): Nagle on".to_owned(),
        LabEvent::Nagle(false) => "setsockopt(TCP_NODELAY, 1): Nagle off".to_owned(),
        LabEvent::RcvBuf { asked, kernel } => {
            format!("setsockopt(SO_RCVBUF, {asked}): the kernel keeps {kernel}")
        }
        LabEvent::ReadShut => "shutdown(SHUT_RD): we read no more".to_owned(),
        LabEvent::Failed(why) => format!("failed: {why}"),
    }
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
mod tests;
