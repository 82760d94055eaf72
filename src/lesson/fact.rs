//! What a lesson's step showed, each line with where it comes from, so a learner can tell
//! what the kernel said from what tcpchat worked out. Facts are written in the kernel's and the
//! syscalls' own words (`tcpi_state = ESTABLISHED`, `recv(1024) = 14 bytes`), which read the
//! same in every language, as `ss` and `strace` do.

use std::fmt;

/// Which end of the lesson's connection a fact is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The article's server program (here, in this process).
    Server,
    /// The article's client program (here, in this process).
    Client,
    /// The machine as a whole: the kernel's table, the clock.
    Kernel,
    /// The segments between them, as captured on loopback.
    Wire,
}

impl Side {
    /// The side's name as the card's first column shows it.
    pub fn name(self) -> &'static str {
        match self {
            Side::Server => "server",
            Side::Client => "client",
            Side::Kernel => "kernel",
            Side::Wire => "wire",
        }
    }
}

/// Where a fact comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// What a call returned (a count, an address, an error).
    Returned,
    /// A field of the socket's `TCP_INFO`, or its `SIOCINQ`/`SIOCOUTQ` queue sizes.
    TcpInfo,
    /// The kernel's table of connections, `/proc/net/tcp`.
    Table,
    /// Timed by tcpchat around the calls.
    Clock,
    /// Counted by tcpchat (bytes sent and read, calls made).
    Counted,
    /// Worked out from the facts above it, not seen: said so.
    Inferred,
    /// A segment read off loopback by a packet socket ([`crate::capture`]).
    Captured,
}

impl Source {
    /// The source's name as the card's last column shows it.
    pub fn name(self) -> &'static str {
        match self {
            Source::Returned => "returned",
            Source::TcpInfo => "TCP_INFO",
            Source::Table => "/proc/net/tcp",
            Source::Clock => "clock",
            Source::Counted => "counted",
            Source::Inferred => "inferred",
            Source::Captured => "captured",
        }
    }
}

/// One line a step showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    /// Whose.
    pub side: Side,
    /// What, in the calls' and the kernel's words.
    pub text: String,
    /// From where.
    pub source: Source,
}

impl Fact {
    /// What `side`'s call returned.
    pub fn returned(side: Side, text: impl Into<String>) -> Self {
        Self {
            side,
            text: text.into(),
            source: Source::Returned,
        }
    }

    /// What `side`'s `TCP_INFO` (or queue sizes) say.
    pub fn kernel(side: Side, text: impl Into<String>) -> Self {
        Self {
            side,
            text: text.into(),
            source: Source::TcpInfo,
        }
    }

    /// What the kernel's table of connections says.
    pub fn table(text: impl Into<String>) -> Self {
        Self {
            side: Side::Kernel,
            text: text.into(),
            source: Source::Table,
        }
    }

    /// What tcpchat timed.
    pub fn clock(side: Side, text: impl Into<String>) -> Self {
        Self {
            side,
            text: text.into(),
            source: Source::Clock,
        }
    }
}

impl Fact {
    /// What tcpchat counted.
    pub fn counted(side: Side, text: impl Into<String>) -> Self {
        Self {
            side,
            text: text.into(),
            source: Source::Counted,
        }
    }

    /// What follows from the facts before it, and was not seen.
    pub fn inferred(side: Side, text: impl Into<String>) -> Self {
        Self {
            side,
            text: text.into(),
            source: Source::Inferred,
        }
    }
}

impl Fact {
    /// A segment as it was captured.
    pub fn captured(text: impl Into<String>) -> Self {
        Self {
            side: Side::Wire,
            text: text.into(),
            source: Source::Captured,
        }
    }
}

impl fmt::Display for Fact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<7} {}  [{}]",
            self.side.name(),
            self.text,
            self.source.name()
        )
    }
}
