//! Is it a tcpchat server? A chat server greets at once (`*** 连接成功! you are …`, or asks for
//! its password); anything else that answers — Jupyter on 8888, a web server, one of the
//! article's servers, a port that accepts and says nothing — is told apart by its first line,
//! or by its silence, within [`GREETING_WAIT`]. One line says what answered. In local mode,
//! where the address was not the user's choice, the client then hangs up and does not
//! reconnect ([`crate::net::Outgoing::HangUp`]); joining an address by name, it only says so
//! and goes on showing what comes (`--raw` suits servers with no chat protocol).

use std::time::Duration;

use tokio::time::Instant;

use super::{App, Effect};
use crate::codec::sanitize;
use crate::i18n::tr;
use crate::net::Outgoing;
use crate::protocol::{Event, Framing, ServerLine};

/// How long a server has to greet after the connection (or TLS) is up: a tcpchat server
/// greets in the same instant.
pub const GREETING_WAIT: Duration = Duration::from_secs(3);

/// Most characters of a stranger's answer quoted.
const QUOTED: usize = 60;

/// The greeting the client waits for.
#[derive(Debug, Default)]
pub struct Greeting {
    /// When the silence counts as an answer, while no line has come yet.
    due: Option<Instant>,
    /// Hang up on what is not a tcpchat server (local mode).
    strict: bool,
}

impl App {
    /// Local mode: what answers at the address must be a tcpchat server, or the client hangs
    /// up and says so.
    pub fn hang_up_on_strangers(&mut self) {
        self.greeting.strict = true;
    }

    /// The connection (and TLS, if any) is up: the greeting is due.
    pub(super) fn await_greeting(&mut self, now: Instant) {
        if self.settings.framing == Framing::Lines {
            self.greeting.due = Some(now + GREETING_WAIT);
        }
    }

    /// The connection is gone (or a new one starts): nothing is awaited.
    pub(super) fn forget_greeting(&mut self) {
        self.greeting.due = None;
    }

    /// When the silence will count, if the greeting is awaited.
    pub(super) fn greeting_deadline(&self) -> Option<Instant> {
        self.greeting.due
    }

    /// The first whole line, if the greeting is awaited: a greeting (or the password
    /// question) ends the wait; anything else means a stranger, and `Some` with what to do
    /// about it (the line is shown as it came either way).
    pub(super) fn first_line(
        &mut self,
        line: Option<&ServerLine<'_>>,
        whole: &str,
        at: Instant,
    ) -> Option<Vec<Effect>> {
        self.greeting.due.take()?;
        match line {
            Some(ServerLine::Event(Event::Greeting { .. } | Event::PasswordNeeded)) => None,
            _ => {
                let answered = tr!(self.language, "stranger.answered", text = quote(whole));
                Some(self.stranger(&answered, at))
            }
        }
    }

    /// Time passed: a greeting still awaited means a stranger (silent, or speaking without a
    /// line end, as the article's servers do).
    pub(super) fn on_greeting_deadline(&mut self, now: Instant) -> Vec<Effect> {
        match self.greeting.due {
            Some(due) if now >= due => {
                self.greeting.due = None;
                // Text without a line end is shown, growing, in the lobby's buffer.
                let lobby = self.buffers.lines_mut(0, &mut self.scrollback);
                let partial = lobby
                    .entries()
                    .next_back()
                    .filter(|_| lobby.is_open())
                    .map(|entry| quote(&entry.text));
                let what = match partial {
                    Some(text) => tr!(self.language, "stranger.sent", text = text),
                    None => tr!(self.language, "stranger.silent"),
                };
                self.stranger(&what, now)
            }
            _ => Vec::new(),
        }
    }

    /// One line saying what answered, and in local mode the hang-up.
    fn stranger(&mut self, what: &str, at: Instant) -> Vec<Effect> {
        let target = self.settings.target.clone();
        if self.greeting.strict {
            let words = tr!(
                self.language,
                "stranger.hang_up",
                target = target,
                what = what
            );
            self.note(&words, at);
            return vec![Effect::Send(Outgoing::HangUp)];
        }
        let words = tr!(
            self.language,
            "stranger.shown",
            target = target,
            what = what
        );
        self.note(&words, at);
        Vec::new()
    }
}

/// A stranger's words as a note quotes them: no controls, at most [`QUOTED`] characters.
fn quote(text: &str) -> String {
    let clean = sanitize(text);
    let mut quoted: String = clean.chars().take(QUOTED).collect();
    if clean.chars().count() > QUOTED {
        quoted.push('…');
    }
    quoted
}
