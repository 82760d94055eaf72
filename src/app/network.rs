//! The transitions the network task drives: connecting, bytes received (split into lines,
//! classified, and read for what they say about us), sent, closed, reconnecting.

use tokio::time::Instant;

use super::ingest::{self, Fact};
use super::numbering::Verdict;
use super::{App, Conn, Effect, Lifecycle};
use crate::codec::sanitize;
use crate::inspector;
use crate::net::{Close, NetEvent, Outgoing};
use crate::protocol::{Command, Framing, ServerLine};

impl App {
    /// A network event that happened `at`.
    pub fn on_net(&mut self, event: NetEvent, at: Instant) -> Vec<Effect> {
        self.dirty = true;
        self.inspector.on_net(&event, at);
        match event {
            NetEvent::Resolving { .. } | NetEvent::Resolved { .. } => {
                self.conn = Conn::Connecting;
            }
            NetEvent::Connecting { addr } => {
                self.conn = Conn::Connecting;
                self.note(&format!("connecting to {addr}..."), at);
            }
            NetEvent::Connected {
                local,
                peer,
                handshake,
                ..
            } => {
                self.conn = Conn::Connected;
                self.local = Some(local);
                self.peer = Some(peer);
                self.forget_session();
                self.numbering.on_connected();
                let took = inspector::millis(handshake);
                self.note(
                    &format!("connected {local} → {peer} (handshake {took})"),
                    at,
                );
                if let (Some(nick), Framing::Lines) = (&self.settings.nick, self.settings.framing) {
                    let line = Command::Nick(nick).to_string();
                    return vec![Effect::Send(Outgoing::Line(line))];
                }
            }
            NetEvent::ConnectFailed(reason) => self.note(&reason, at),
            NetEvent::Received(bytes) => {
                self.bytes_in += bytes.len() as u64;
                return self.ingest(&bytes, at);
            }
            NetEvent::Sent { bytes, .. } => self.bytes_out += bytes as u64,
            NetEvent::FinSent { .. } => self.note("our side is closed (FIN sent)", at),
            NetEvent::Closed { how, .. } => self.on_closed(how, at),
            NetEvent::Reconnecting { delay } => {
                self.conn = Conn::Reconnecting {
                    at: at + delay,
                    secs: delay.as_secs(),
                };
                self.note(&format!("reconnecting in {} s", delay.as_secs()), at);
            }
            NetEvent::NotSent(line) => self.note(&format!("not connected; not sent: {line}"), at),
        }
        Vec::new()
    }

    fn on_closed(&mut self, how: Close, at: Instant) {
        self.utf8.clear();
        self.scrollback.close_open_line();
        let reason = match how {
            Close::PeerFin => "closed by the server (FIN)".to_owned(),
            Close::Reset => "reset by the server (RST)".to_owned(),
            Close::Failed(error) => format!("connection failed: {error}"),
        };
        self.note(&reason, at);
        self.conn = Conn::Closed(reason);
        self.forget_session();
        if let Lifecycle::Exiting { .. } = self.lifecycle {
            if self.inspector.visible {
                // The close is what the inspector is there to show: stay on it.
                self.lifecycle = Lifecycle::Over;
                self.note(
                    "session over; the inspector shows how it closed. q, Esc or Enter quits",
                    at,
                );
            } else {
                self.lifecycle = Lifecycle::Done;
            }
        }
    }

    /// What the server told us belongs to one session.
    fn forget_session(&mut self) {
        self.nick = None;
        self.online = None;
    }

    /// Splits received bytes into lines. A UTF-8 character cut by the read boundary waits for
    /// the next read; text without a newline is shown now and, in chat mode, grows when the
    /// rest of its line arrives. In raw mode every read ends its line, as the article's client
    /// prints each `recv()`.
    fn ingest(&mut self, bytes: &[u8], at: Instant) -> Vec<Effect> {
        let text = self.utf8.decode(bytes);
        let time = self.clock.wall(at).time();
        let raw = self.settings.framing == Framing::Raw;
        let mut effects = Vec::new();
        for piece in text.split_inclusive('\n') {
            let complete = piece.ends_with('\n') || raw;
            let piece = piece.strip_suffix('\n').unwrap_or(piece);
            let piece = piece.strip_suffix('\r').unwrap_or(piece);
            let clean = sanitize(piece);
            let own = self.nick.as_deref();
            self.scrollback
                .append(&clean, complete, time, |line| ingest::classify(line, own));
            // The article's servers speak no protocol to learn from.
            if complete && !raw {
                effects.extend(self.learn_from_last_line(at));
            } else if complete {
                self.transcribe_last(self.clock.wall(at));
            }
        }
        effects
    }

    /// Adds the newest line to the transcript, if one is kept, dated `time`.
    fn transcribe_last(&mut self, time: chrono::NaiveDateTime) {
        if let (Some(lines), Some(entry)) =
            (&mut self.transcript, self.scrollback.entries().next_back())
        {
            lines.push((time, entry.text.to_string()));
        }
    }

    /// Reads a complete line for what it says about us (our nick, the count, the room's line
    /// numbers) and whether it is shown: a rejoin hides what was already seen.
    fn learn_from_last_line(&mut self, at: Instant) -> Option<Effect> {
        let entry = self.scrollback.entries().next_back()?;
        let line = ServerLine::parse(&entry.text);
        let fact = line
            .as_ref()
            .and_then(|l| ingest::fact(l, self.nick.as_deref()));
        let verdict = self.numbering.on_line(line.as_ref());
        let presented = line.as_ref().and_then(ingest::presented);
        let said_at = match line {
            Some(ServerLine::Replayed { at, .. }) => self.clock.local(at),
            _ => None,
        };

        match fact {
            Some(Fact::Greeted { nick, online }) => {
                self.nick = Some(nick);
                self.online = Some(online);
            }
            Some(Fact::Nick(nick)) => self.nick = Some(nick),
            Some(Fact::Online(online)) => self.online = Some(online),
            None => {}
        }
        match verdict {
            Verdict::Show => {
                let when = said_at.unwrap_or_else(|| self.clock.wall(at));
                if let Some((text, kind)) = presented {
                    self.scrollback.replace_last(&text, kind, when.time());
                }
                self.transcribe_last(when);
                None
            }
            Verdict::Hide => {
                self.scrollback.drop_last();
                None
            }
            Verdict::Replace { note, ask } => {
                self.scrollback.drop_last();
                self.note(&note, at);
                ask.map(|line| Effect::Send(Outgoing::Line(line)))
            }
        }
    }
}
