//! `/lesson N`: ten lessons in TCP that are done, not read. Each is a card — the article's step,
//! a prediction to choose, steps the learner makes one at a time (real calls on real sockets
//! over loopback, both ends in this process), what each step made the kernel show, and a
//! verdict: the prediction checked against what *this* run showed, never against a script.
//!
//! - [`LESSONS`] is the one table: each lesson's calls, in the calls' own words.
//! - `text`: the lessons' prose in English and 中文 (`assets/lessons/*.toml`).
//! - `experiments`: the calls and the kernel's evidence, one file per lesson (Linux: every
//!   lesson reads `TCP_INFO`).
//! - `runner`: the task that owns the lessons' sockets.
//! - `wire`: the segments of each step, captured on loopback where this process may
//!   ([`crate::capture`]: root or `CAP_NET_RAW`), turned into facts.
//! - `card`: what the card shows and how keys move it; [`crate::ui`] draws it.

mod card;
#[cfg(target_os = "linux")]
mod experiments;
mod fact;
mod runner;
#[cfg(target_os = "linux")]
mod sock;
mod text;
#[cfg(target_os = "linux")]
mod wire;

pub use card::{Card, Phase};
pub use fact::{Fact, Side, Source};
pub use runner::{LessonEvent, LessonHandle, Request, spawn};
pub use text::{LessonText, texts};

/// The lessons, in the order they are numbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LessonId {
    /// `socket()`, `bind()`, `listen()`.
    Listen,
    /// The handshake finishes before `accept()`.
    Handshake,
    /// `send()` is not delivery.
    Send,
    /// No message boundaries.
    Boundaries,
    /// Nagle and the delayed ACK: the 40 ms stall.
    Nagle,
    /// A reader that stops reading: flow control.
    StopReading,
    /// FIN and the half-close.
    HalfClose,
    /// RST versus FIN.
    Reset,
    /// Refused versus a full accept queue.
    Backlog,
    /// Ports, 4-tuples, TIME-WAIT and `EADDRINUSE`.
    Ports,
}

/// One lesson: what it is called in the text files and the calls its steps make.
#[derive(Debug)]
pub struct Lesson {
    /// Which.
    pub id: LessonId,
    /// Its name in `assets/lessons/*.toml`.
    pub slug: &'static str,
    /// Each step's calls, as the card names them before they are made.
    pub steps: &'static [&'static str],
}

/// Every lesson, numbered from 1 in this order.
pub const LESSONS: &[Lesson] = &[
    Lesson {
        id: LessonId::Listen,
        slug: "listen",
        steps: &[
            "server: socket()",
            "server: bind(127.0.0.1:0)",
            "server: listen(5)",
        ],
    },
    Lesson {
        id: LessonId::Handshake,
        slug: "handshake",
        steps: &[
            "server: socket(), bind(), listen(5)",
            "client: connect()",
            "server: accept()",
        ],
    },
    Lesson {
        id: LessonId::Send,
        slug: "send",
        steps: &[
            "listen(), connect(), accept()",
            "client: send(\"hello\\n\")",
            "server: recv(1024)",
        ],
    },
    Lesson {
        id: LessonId::Boundaries,
        slug: "boundaries",
        steps: &[
            "listen(), connect(), accept()",
            "client: send() three lines",
            "server: recv(1024)",
            "client: send() 3000 bytes at once",
            "server: recv(1024) until nothing is left",
        ],
    },
    Lesson {
        id: LessonId::Nagle,
        slug: "nagle",
        steps: &[
            "listen(), connect(), accept(); 20 lines and answers",
            "client (Nagle on): send(\"he\"), send(\"llo\\n\"), recv() the answer",
            "client: setsockopt(TCP_NODELAY), the same again",
        ],
    },
    Lesson {
        id: LessonId::StopReading,
        slug: "stop_reading",
        steps: &[
            "listen(), connect(), accept(); the server stops calling recv()",
            "client: send(64 KiB) again and again",
            "server: recv() everything",
        ],
    },
    Lesson {
        id: LessonId::HalfClose,
        slug: "half_close",
        steps: &[
            "listen(), connect(), accept()",
            "client: shutdown(SHUT_WR)",
            "server: recv(1024)",
            "server: send(\"bye\\n\")",
            "client: recv(1024)",
        ],
    },
    Lesson {
        id: LessonId::Reset,
        slug: "reset",
        steps: &[
            "listen(); connections A and B",
            "client A: close()",
            "server: recv() on A",
            "client B: setsockopt(SO_LINGER, 0), close()",
            "server: recv() on B",
        ],
    },
    Lesson {
        id: LessonId::Backlog,
        slug: "backlog",
        steps: &[
            "client: connect() to a port nobody listens on",
            "server: listen(1), and never accept()",
            "clients 1 and 2: connect()",
            "client 3: connect(), watched for 2.5 s",
        ],
    },
    Lesson {
        id: LessonId::Ports,
        slug: "ports",
        steps: &[
            "server: listen(5); clients 1 and 2 connect()",
            "server: close() first, then the clients",
            "a new server: bind() the same port, no SO_REUSEADDR",
            "and with SO_REUSEADDR",
        ],
    },
];

/// Lesson `number` (from 1), if there is one.
pub fn numbered(number: usize) -> Option<&'static Lesson> {
    number.checked_sub(1).and_then(|index| LESSONS.get(index))
}

#[cfg(test)]
mod tests;
