//! The framing lab's knobs and actions: what the user can change about how the network task
//! reads and writes the live connection, so that "TCP has no message boundaries" and flow
//! control can be seen happening. Typed here once: the client commands (`/lab ...`,
//! `/shutdown`, `/reset`) parse into these, the UI keeps the [`Knobs`] it last set, and the
//! network task ([`crate::net`]) obeys them. With the knobs at their defaults the task behaves
//! exactly as without the lab.

use std::time::Duration;

/// The size of each `recv()` when the lab does not choose one: the normal chat path's.
pub const NORMAL_RECV: usize = 8 * 1024;

/// Longest `/lab paste N` in KB: bigger would only trip the server's own limits.
pub const MAX_PASTE_KB: usize = 64;

/// Most sends in one `/lab send burst N`.
pub const MAX_BURST: usize = 100;

/// Write-write-read rounds one `/lab probe` makes.
pub const PROBE_ROUNDS: usize = 8;

/// How the reader takes bytes out of the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reader {
    /// Read as soon as bytes are there.
    #[default]
    Eager,
    /// Wait this long after each `recv()` before the next.
    Delayed(Duration),
    /// Do not read at all: the kernel's receive queue fills, our window goes to 0, and the
    /// peer's `send()` blocks (or its queue grows).
    Paused,
}

/// How a typed line goes to the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SendMode {
    /// One `send()` per line: the normal path.
    #[default]
    Line,
    /// One `send()` per character, as a typist would if each key were sent.
    Typewriter,
    /// The line `n` times, in `n` back-to-back `send()`s.
    Burst(usize),
    /// One `send()` of `n` KB of numbered lines (the typed text in each).
    Paste(usize),
}

/// Everything the lab can set; the network task reads the latest through a `watch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Knobs {
    /// Bytes asked of each `recv()`; `None`: the normal [`NORMAL_RECV`].
    pub recv: Option<usize>,
    /// How the reader reads.
    pub reader: Reader,
    /// How typed lines are written.
    pub send: SendMode,
    /// Nagle's algorithm on (`TCP_NODELAY` off); tcpchat turns it off at connect.
    pub nagle: bool,
    /// `SO_RCVBUF` asked for, in bytes; `None`: the kernel's default.
    pub rcvbuf: Option<usize>,
}

impl Knobs {
    /// Bytes to ask of the next `recv()`.
    pub fn recv_size(&self) -> usize {
        self.recv.unwrap_or(NORMAL_RECV)
    }
}

/// Which half of the connection `/shutdown` closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Half {
    /// `shutdown(SHUT_RD)`: we read no more.
    Read,
    /// `shutdown(SHUT_WR)`: our FIN; we send no more.
    Write,
}

/// A one-off thing the network task does to the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The write-write-read probe: half a line, the rest, then the time until the reply.
    Probe,
    /// Close one half now.
    Shutdown(Half),
    /// Close with `SO_LINGER` 0: the kernel sends RST instead of FIN.
    Reset,
}

/// What the network task reports about the lab's knobs and actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabEvent {
    /// The write-write-read probe ran: each round's time from the first write to the first
    /// read after the second (`None`: no reply within [`PROBE_WAIT`]).
    Probed {
        /// Whether Nagle was on for it.
        nagle: bool,
        /// One time per round, in order.
        rounds: Vec<Option<Duration>>,
    },
    /// `TCP_NODELAY` was set: Nagle is now on (`true`) or off.
    Nagle(bool),
    /// `SO_RCVBUF` was set to `asked`; the kernel reports `kernel` back (Linux doubles what it
    /// is given, for its own bookkeeping, and clamps it to `net.core.rmem_max`).
    RcvBuf {
        /// Bytes asked for.
        asked: usize,
        /// What `getsockopt(SO_RCVBUF)` says after.
        kernel: usize,
    },
    /// `shutdown(SHUT_RD)` is done: the reader reads no more.
    ReadShut,
    /// A socket option or a shutdown failed: what, and why.
    Failed(String),
}

/// How long one probe round waits for the reply.
pub const PROBE_WAIT: Duration = Duration::from_secs(2);

/// What one `/lab ...` line asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabCommand {
    /// `/lab`: show the knobs and the framing page.
    Show,
    /// Change the knobs to these.
    Set(Knobs),
    /// Do this now.
    Act(Action),
}

/// A `/lab` line that does not parse: the usage to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabUsage;

/// Parses the words after `/lab` against the current `knobs`.
pub fn parse(args: &str, knobs: Knobs) -> Result<LabCommand, LabUsage> {
    let words: Vec<&str> = args.split_whitespace().collect();
    let number = |word: &str| word.parse::<usize>().ok().filter(|n| *n > 0);
    let mut knobs = knobs;
    match words.as_slice() {
        [] => return Ok(LabCommand::Show),
        ["probe"] => return Ok(LabCommand::Act(Action::Probe)),
        ["off"] => return Ok(LabCommand::Set(Knobs::default())),
        ["recv", "off"] => knobs.recv = None,
        ["recv", size] => knobs.recv = Some(number(size).ok_or(LabUsage)?.min(NORMAL_RECV)),
        ["delay", "0"] => knobs.reader = Reader::Eager,
        ["delay", "pause"] => knobs.reader = Reader::Paused,
        ["delay", ms] => {
            let ms = number(ms).ok_or(LabUsage)?.min(10_000) as u64;
            knobs.reader = Reader::Delayed(Duration::from_millis(ms));
        }
        ["pause"] => knobs.reader = Reader::Paused,
        ["resume"] => knobs.reader = Reader::Eager,
        ["send", "line"] => knobs.send = SendMode::Line,
        ["send", "typewriter"] => knobs.send = SendMode::Typewriter,
        ["send", "burst", n] => {
            knobs.send = SendMode::Burst(number(n).ok_or(LabUsage)?.min(MAX_BURST));
        }
        ["send", "paste", n] => {
            knobs.send = SendMode::Paste(number(n).ok_or(LabUsage)?.min(MAX_PASTE_KB));
        }
        ["nagle", "on"] => knobs.nagle = true,
        ["nagle", "off"] => knobs.nagle = false,
        ["rcvbuf", "off"] => knobs.rcvbuf = None,
        ["rcvbuf", n] => knobs.rcvbuf = Some(number(n).ok_or(LabUsage)?),
        _ => return Err(LabUsage),
    }
    Ok(LabCommand::Set(knobs))
}

/// Parses the argument of `/shutdown`.
pub fn parse_half(args: &str) -> Option<Half> {
    match args.trim() {
        "wr" | "WR" => Some(Half::Write),
        "rd" | "RD" => Some(Half::Read),
        _ => None,
    }
}

/// The wire bytes of `/lab send paste kb`: `kb` KB of numbered lines, each carrying `text`,
/// each ended by `\n`, cut to exactly `kb * 1024` bytes on a line end (the last line padded).
pub fn paste(text: &str, kb: usize) -> Vec<u8> {
    let total = kb * 1024;
    let mut out = Vec::with_capacity(total);
    let mut number = 1;
    while out.len() < total {
        let line = format!("{number:04} {text}\n");
        if out.len() + line.len() > total {
            let room = total - out.len();
            out.extend(std::iter::repeat_n(b'.', room.saturating_sub(1)));
            out.push(b'\n');
            break;
        }
        out.extend_from_slice(line.as_bytes());
        number += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_lines_parse_into_knobs_and_actions() {
        let none = Knobs::default();
        assert_eq!(parse("", none), Ok(LabCommand::Show));
        assert_eq!(parse("probe", none), Ok(LabCommand::Act(Action::Probe)));
        let Ok(LabCommand::Set(four)) = parse("recv 4", none) else {
            panic!("recv 4 is a knob");
        };
        assert_eq!(four.recv_size(), 4);
        assert_eq!(parse("recv off", four), Ok(LabCommand::Set(none)));
        let Ok(LabCommand::Set(paused)) = parse(" delay  pause ", four) else {
            panic!("delay pause is a knob");
        };
        assert_eq!((paused.reader, paused.recv), (Reader::Paused, Some(4)));
        let Ok(LabCommand::Set(slow)) = parse("delay 100", none) else {
            panic!("delay 100 is a knob");
        };
        assert_eq!(slow.reader, Reader::Delayed(Duration::from_millis(100)));
        let Ok(LabCommand::Set(burst)) = parse("send burst 3", none) else {
            panic!("send burst 3 is a knob");
        };
        assert_eq!(burst.send, SendMode::Burst(3));
        let Ok(LabCommand::Set(nagle)) = parse("nagle on", none) else {
            panic!("nagle on is a knob");
        };
        assert!(nagle.nagle && nagle != none);
        assert_eq!(parse("off", nagle), Ok(LabCommand::Set(none)));
        for wrong in [
            "recv 0",
            "recv lots",
            "send burst",
            "send paste x",
            "nagle",
            "frob",
        ] {
            assert_eq!(parse(wrong, none), Err(LabUsage), "{wrong}");
        }
        assert_eq!(parse_half("wr"), Some(Half::Write));
        assert_eq!(parse_half("rd"), Some(Half::Read));
        assert_eq!(parse_half("both"), None);
    }

    #[test]
    fn a_paste_is_exactly_its_size_in_whole_lines() {
        let bytes = paste("hello", 3);
        assert_eq!(bytes.len(), 3 * 1024);
        assert_eq!(bytes.last(), Some(&b'\n'));
        assert!(bytes.starts_with(b"0001 hello\n0002 hello\n"));
    }
}
