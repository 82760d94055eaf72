//! The transitions the network task drives: connecting, bytes received (split into lines,
//! classified, and read for what they say about us), sent, closed, reconnecting.

use tokio::time::Instant;

use super::ingest::{self, Fact};
use super::{App, Conn, Effect, Lifecycle};
use crate::codec::sanitize;
use crate::inspector;
use crate::net::{Close, NetEvent, Outgoing};
use crate::protocol::{Command, Framing};

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
                self.ingest(&bytes, at);
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
    fn ingest(&mut self, bytes: &[u8], at: Instant) {
        let text = self.utf8.decode(bytes);
        let time = self.clock.wall(at);
        let raw = self.settings.framing == Framing::Raw;
        for piece in text.split_inclusive('\n') {
            let complete = piece.ends_with('\n') || raw;
            let piece = piece.strip_suffix('\n').unwrap_or(piece);
            let piece = piece.strip_suffix('\r').unwrap_or(piece);
            let clean = sanitize(piece);
            let own = self.nick.as_deref();
            self.scrollback
                .append(&clean, complete, time, |line| ingest::classify(line, own));
            if complete {
                self.learn_from_last_line();
            }
        }
    }

    /// Picks up our nick and the online count from the server's events about us.
    fn learn_from_last_line(&mut self) {
        let Some(entry) = self.scrollback.entries().next_back() else {
            return;
        };
        match ingest::fact(&entry.text, self.nick.as_deref()) {
            Some(Fact::Greeted { nick, online }) => {
                self.nick = Some(nick);
                self.online = Some(online);
            }
            Some(Fact::Nick(nick)) => self.nick = Some(nick),
            Some(Fact::Online(online)) => self.online = Some(online),
            None => {}
        }
    }
}
