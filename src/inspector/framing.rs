//! The framing lab's page model: what tcpchat counted of its own `send()` and `recv()` calls on
//! the current connection, the lines those reads assemble into (a line ends at `\n`, as the
//! client's own assembler cuts them) with the partial line still waiting, and what the lab's
//! knobs and actions last did. The kernel's side of the same story (`data_segs_out`, `SIOCINQ`,
//! `snd_wnd`...) is the latest `TCP_INFO` sample, which the page reads beside this.

use std::collections::VecDeque;
use std::time::Duration;

use crate::lab::{Knobs, LabEvent};

/// Sizes of the last calls kept for the page.
pub const SIZES_KEPT: usize = 16;

/// Bytes of the waiting partial line kept for the page (its size is always the real one).
const PARTIAL_KEPT: usize = 64;

/// Calls of one kind (`send()` or `recv()`) on this connection, counted by tcpchat.
#[derive(Debug, Default, Clone)]
pub struct Calls {
    /// How many.
    pub count: u64,
    /// Their bytes together.
    pub bytes: u64,
    /// The sizes of the last [`SIZES_KEPT`], oldest first.
    pub last: VecDeque<usize>,
}

impl Calls {
    fn record(&mut self, bytes: usize) {
        self.count += 1;
        self.bytes += bytes as u64;
        if self.last.len() == SIZES_KEPT {
            self.last.pop_front();
        }
        self.last.push_back(bytes);
    }
}

/// The framing lab's state for the page.
#[derive(Debug, Default, Clone)]
pub struct FramingLab {
    /// The knobs as the UI last set them.
    pub knobs: Knobs,
    /// `send()` calls that took bytes.
    pub sends: Calls,
    /// `recv()` calls that returned bytes.
    pub recvs: Calls,
    /// Complete lines the reads assembled into.
    pub lines: u64,
    /// Lines completed by the last read (one read can finish several, or none).
    pub lines_last_read: u64,
    partial: Vec<u8>,
    partial_len: usize,
    /// The last probe: whether Nagle was on, and each round's time.
    pub probe: Option<(bool, Vec<Option<Duration>>)>,
    /// The last `SO_RCVBUF` set on this connection: asked, and what the kernel reports.
    pub rcvbuf: Option<(usize, usize)>,
    /// Whether our reading side is shut (`shutdown(SHUT_RD)`).
    pub read_shut: bool,
    /// The last knob or action that failed, and why.
    pub failed: Option<String>,
}

impl FramingLab {
    /// A new connection: its calls count from zero, like the kernel's counters.
    pub(super) fn new_session(&mut self) {
        *self = Self {
            knobs: self.knobs,
            probe: self.probe.take(),
            ..Self::default()
        };
    }

    /// One `send()` of `bytes`.
    pub(super) fn on_send(&mut self, bytes: usize) {
        self.sends.record(bytes);
    }

    /// One `recv()` that returned `bytes`.
    pub(super) fn on_recv(&mut self, bytes: &[u8]) {
        self.recvs.record(bytes.len());
        let mut finished = 0;
        let mut rest = bytes;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            finished += 1;
            rest = &rest[end + 1..];
            self.partial.clear();
            self.partial_len = 0;
        }
        self.lines += finished;
        self.lines_last_read = finished;
        let room = PARTIAL_KEPT.saturating_sub(self.partial.len());
        self.partial
            .extend_from_slice(&rest[..rest.len().min(room)]);
        self.partial_len += rest.len();
    }

    /// What a knob or an action did.
    pub(super) fn on_lab(&mut self, event: &LabEvent) {
        match event {
            LabEvent::Probed { nagle, rounds } => self.probe = Some((*nagle, rounds.clone())),
            LabEvent::Nagle(_) => {}
            LabEvent::RcvBuf { asked, kernel } => self.rcvbuf = Some((*asked, *kernel)),
            LabEvent::ReadShut => self.read_shut = true,
            LabEvent::Failed(why) => self.failed = Some(why.clone()),
        }
    }

    /// The bytes received after the last `\n`: a line still waiting for its end (the first
    /// [`PARTIAL_KEPT`] of them), and how many there are.
    pub fn partial(&self) -> (&[u8], usize) {
        (&self.partial, self.partial_len)
    }
}

/// The median of the rounds that got a reply.
pub fn median(rounds: &[Option<Duration>]) -> Option<Duration> {
    let mut times: Vec<Duration> = rounds.iter().flatten().copied().collect();
    times.sort();
    times.get(times.len() / 2).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_assemble_into_lines_with_the_rest_waiting() {
        let mut lab = FramingLab::default();
        lab.on_recv(b"one\ntw");
        assert_eq!((lab.lines, lab.partial()), (1, (&b"tw"[..], 2)));
        lab.on_recv(b"o\nthree\nfo");
        assert_eq!((lab.lines, lab.lines_last_read), (3, 2));
        assert_eq!(lab.partial(), (&b"fo"[..], 2));
        lab.on_recv(b"ur");
        assert_eq!((lab.lines, lab.lines_last_read), (3, 0));
        assert_eq!(lab.partial(), (&b"four"[..], 4));
        assert_eq!((lab.recvs.count, lab.recvs.bytes), (3, 18));
        lab.on_send(5);
        lab.new_session();
        assert_eq!((lab.sends.count, lab.recvs.count, lab.lines), (0, 0, 0));
    }

    #[test]
    fn the_median_skips_rounds_without_a_reply() {
        let ms = Duration::from_millis;
        assert_eq!(
            median(&[Some(ms(40)), None, Some(ms(1)), Some(ms(41))]),
            Some(ms(40))
        );
        assert_eq!(median(&[None]), None);
    }
}
