//! The transitions the network task drives: connecting, bytes received (split into lines,
//! sent to their buffers, classified, and read for what they say about us), sent, closed,
//! reconnecting.

use std::borrow::Cow;

use tokio::time::Instant;

use super::buffers::{self, Place, Target};
use super::ingest::{self, Fact};
use super::numbering::Verdict;
use super::{App, Bell, Conn, Effect, Lifecycle, Role, masked};
use crate::codec::sanitize;
use crate::i18n::tr;
use crate::inspector;
use crate::net::{Close, NetEvent, Outgoing};
use crate::protocol::{Command, Event, Framing, LOBBY, Refusal, Scope, Scoped, ServerLine};
use crate::scrollback::{Kind, MAX_ENTRY_BYTES};

/// Most bytes of a line about a room or a conversation held back before its newline; past
/// this it cannot be a chat line and is shown as it comes, like any text without a newline.
pub const MAX_HELD: usize = MAX_ENTRY_BYTES;

/// The lobby's buffer: where lines outside the protocol and lines still arriving go.
const LOBBY_BUFFER: usize = 0;

impl App {
    /// A network event that happened `at`.
    pub fn on_net(&mut self, event: NetEvent, at: Instant) -> Vec<Effect> {
        let mut effects = self.net_event(event, at);
        effects.extend(self.retitle());
        effects
    }

    fn net_event(&mut self, event: NetEvent, at: Instant) -> Vec<Effect> {
        self.dirty = true;
        self.inspector.on_net(&event, at);
        match event {
            NetEvent::Resolving { .. } | NetEvent::Resolved { .. } => {
                self.conn = Conn::Connecting;
            }
            NetEvent::Connecting { addr } => {
                self.conn = Conn::Connecting;
                self.note(&tr!(self.language, "note.connecting", addr = addr), at);
            }
            NetEvent::Connected {
                local,
                peer,
                handshake,
                ..
            } => {
                self.local = Some(local);
                self.peer = Some(peer);
                self.forget_session();
                let took = inspector::millis(handshake);
                let connected = tr!(
                    self.language,
                    "note.connected",
                    local = local,
                    peer = peer,
                    took = took
                );
                if self.awaits_tls() {
                    // The chat starts once TLS is up (`on_tls_established`).
                    let connected = connected.as_str();
                    self.note(
                        &tr!(self.language, "note.tls_handshake", connected = connected),
                        at,
                    );
                    return Vec::new();
                }
                self.note(&connected, at);
                self.conn = Conn::Connected;
                self.await_greeting(at);
            }
            NetEvent::TlsEstablished {
                established,
                handshake,
            } => return self.on_tls_established(established, handshake, at),
            NetEvent::TlsFailed(failure) => self.on_tls_failed(failure, at),
            NetEvent::TlsRecords(_) => {}
            NetEvent::ConnectFailed(reason) => self.note(&reason, at),
            NetEvent::Received(bytes) => {
                self.bytes_in += bytes.len() as u64;
                return self.ingest(&bytes, at);
            }
            NetEvent::Sent { bytes, .. } => self.bytes_out += bytes as u64,
            NetEvent::FinSent { .. } => self.note(&tr!(self.language, "note.fin_sent"), at),
            NetEvent::Closed { how, .. } => self.on_closed(how, at),
            NetEvent::Reconnecting { delay } => {
                self.conn = Conn::Reconnecting {
                    at: at + delay,
                    secs: delay.as_secs(),
                };
                let secs = delay.as_secs();
                self.note(&tr!(self.language, "note.reconnecting", secs = secs), at);
            }
            NetEvent::TookOver { no_history } => {
                self.settings.role = Role::Hosting;
                let addr = self.settings.target.clone();
                self.note(&tr!(self.language, "note.took_over", addr = addr), at);
                if let Some(error) = no_history {
                    let note = tr!(self.language, "note.no_room_history", error = error);
                    self.note(&note, at);
                }
            }
            NetEvent::Lab(event) => self.on_lab(&event, at),
            NetEvent::NotSent(line) => {
                let line = masked(&line, self.language);
                self.note(&tr!(self.language, "note.not_sent", line = line), at);
            }
        }
        Vec::new()
    }

    fn on_closed(&mut self, how: Close, at: Instant) {
        if let Some(tls) = &mut self.tls {
            tls.session = None;
        }
        self.utf8.clear();
        self.buffers
            .lines_mut(LOBBY_BUFFER, &mut self.scrollback)
            .close_open_line();
        if !self.held.is_empty() {
            // It was received; it will never be finished now.
            let held = std::mem::take(&mut self.held);
            let time = self.clock.wall(at);
            self.push_line(LOBBY_BUFFER, &held, Kind::Plain, time);
        }
        let reason = match how {
            Close::PeerFin => tr!(self.language, "note.closed_fin"),
            Close::Reset => tr!(self.language, "note.closed_reset"),
            Close::Failed(error) => tr!(self.language, "note.closed_failed", error = error),
            Close::HungUp => tr!(self.language, "note.closed_hung_up"),
            Close::Aborted => tr!(self.language, "lab.closed_reset_by_us"),
        };
        self.note(&reason, at);
        self.conn = Conn::Closed(reason);
        self.forget_session();
        if let Lifecycle::Exiting { .. } = self.lifecycle {
            if self.inspector.visible {
                // The close is what the inspector is there to show: stay on it.
                self.lifecycle = Lifecycle::Over;
                self.note(&tr!(self.language, "note.session_over"), at);
            } else {
                self.lifecycle = Lifecycle::Done;
            }
        }
    }

    /// What the server told us belongs to one session; so does where it talks and what we
    /// asked to join. Every room's numbering waits for its rejoin's replay.
    fn forget_session(&mut self) {
        self.forget_greeting();
        self.nick = None;
        self.talking_in = Some(buffers::room_key(LOBBY));
        self.joining.clear();
        for index in 0..self.buffers.count() {
            let buffer = self.buffers.get_mut(index);
            buffer.online = None;
            buffer.numbering.on_connected();
        }
    }

    /// The server greeted us: ask for our nick (logging in again, if we did before), and
    /// join again every room whose buffer is open. Not before the greeting: a server with a
    /// password takes nothing but `/pass` first.
    fn greeted(&mut self) -> Vec<Effect> {
        let mut effects = Vec::new();
        let ask = self.secrets.login_line().or_else(|| {
            self.settings
                .nick
                .as_deref()
                .map(|nick| Command::Nick(nick).to_string())
        });
        if let Some(line) = ask {
            effects.push(Effect::Send(Outgoing::Line(line)));
        }
        effects.extend(self.rejoin());
        effects
    }

    /// What a line says about the passwords we give: the server asks for its own (given
    /// again if we know it, otherwise the edit box is readied for it), confirms a login, or
    /// refuses one; a nick we asked for is registered (the edit box is readied to log in).
    fn about_passwords(&mut self, line: &ServerLine<'_>, at: Instant) -> Vec<Effect> {
        match line {
            ServerLine::Event(Event::PasswordNeeded) => {
                if let Some(pass) = self.secrets.pass_line() {
                    self.note(&tr!(self.language, "note.password_again"), at);
                    return vec![Effect::Send(Outgoing::Line(pass))];
                }
                self.note(&tr!(self.language, "note.password_prompt"), at);
                self.input.prefill("/pass ");
            }
            ServerLine::Event(Event::LoggedIn { nick } | Event::Registered { nick }) => {
                self.secrets.confirmed(nick);
            }
            ServerLine::Error(error) => {
                self.secrets.refused(error);
                let wanted = self.settings.nick.clone();
                if let Some(nick) = wanted
                    && **error == Refusal::NickRegistered(nick.clone()).to_string()
                {
                    self.note(&tr!(self.language, "note.login_prompt", nick = nick), at);
                    self.input.prefill(&format!("/login {nick} "));
                }
            }
            _ => {}
        }
        Vec::new()
    }

    /// After a reconnect: joins every room whose buffer is open again, then talks in the one on
    /// screen. The buffers stay where they are: the server's joins move nothing.
    fn rejoin(&mut self) -> Vec<Effect> {
        let rooms: Vec<String> = self
            .buffers
            .iter()
            .filter(|buffer| !buffer.is_lobby())
            .filter_map(|buffer| buffer.room().map(str::to_owned))
            .collect();
        if rooms.is_empty() {
            return Vec::new();
        }
        let mut effects: Vec<Effect> = rooms
            .iter()
            .map(|room| Effect::Send(Outgoing::Line(Command::Join(room).to_string())))
            .collect();
        self.talking_in = None;
        effects.extend(self.talk_here());
        effects
    }

    /// Splits received bytes into lines. A UTF-8 character cut by the read boundary waits for
    /// the next read. In chat mode a complete line goes to its buffer; text without a newline
    /// is shown now in the lobby's buffer and grows there until the rest of its line arrives
    /// (unless it starts like a line about a room or a conversation, which waits). In raw mode
    /// every read ends its line, as the article's client prints each `recv()`.
    fn ingest(&mut self, bytes: &[u8], at: Instant) -> Vec<Effect> {
        let text = self.utf8.decode(bytes);
        let raw = self.settings.framing == Framing::Raw;
        let mut effects = Vec::new();
        for piece in text.split_inclusive('\n') {
            let complete = piece.ends_with('\n');
            let piece = piece.strip_suffix('\n').unwrap_or(piece);
            let piece = piece.strip_suffix('\r').unwrap_or(piece);
            let clean = sanitize(piece);
            if raw {
                self.show_read(&clean, at);
            } else if complete {
                let line = self.complete_line(&clean, at);
                effects.extend(self.take_line(&line, at));
            } else {
                self.show_partial(&clean, at);
            }
        }
        effects
    }

    /// Raw mode: one read, one line (the article's servers speak no protocol to learn from).
    fn show_read(&mut self, text: &str, at: Instant) {
        let time = self.clock.wall(at);
        let own = self.nick.as_deref();
        let lines = self.buffers.lines_mut(LOBBY_BUFFER, &mut self.scrollback);
        lines.append(text, true, time.time(), |line| ingest::classify(line, own));
        let shown = lines
            .entries()
            .next_back()
            .map(|entry| entry.text.to_string());
        if let Some(shown) = shown {
            self.transcribe(LOBBY_BUFFER, time, &shown);
        }
    }

    /// Text that is not yet a whole line: held back if it may be a room's or a conversation's
    /// line, otherwise shown, growing, in the lobby's buffer.
    fn show_partial(&mut self, text: &str, at: Instant) {
        let time = self.clock.wall(at).time();
        let own = self.nick.as_deref();
        let lines = self.buffers.lines_mut(LOBBY_BUFFER, &mut self.scrollback);
        let scoped = !self.held.is_empty() || text.starts_with(['#', '@']);
        if !lines.is_open() && scoped {
            if self.held.len() + text.len() <= MAX_HELD {
                self.held.push_str(text);
                return;
            }
            let held = std::mem::take(&mut self.held) + text;
            lines.append(&held, false, time, |line| ingest::classify(line, own));
            return;
        }
        lines.append(text, false, time, |line| ingest::classify(line, own));
    }

    /// The whole of a line whose end is `text`: with what was held back, or taken back from
    /// the lobby's buffer where its start was shown.
    fn complete_line<'a>(&mut self, text: &'a str, at: Instant) -> Cow<'a, str> {
        let time = self.clock.wall(at).time();
        let lines = self.buffers.lines_mut(LOBBY_BUFFER, &mut self.scrollback);
        if lines.is_open() {
            lines.append(text, true, time, |_| Kind::Plain);
            let whole = lines
                .entries()
                .next_back()
                .map(|entry| entry.text.to_string())
                .unwrap_or_default();
            lines.drop_last();
            return Cow::Owned(whole);
        }
        if self.held.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut whole = std::mem::take(&mut self.held);
        whole.push_str(text);
        Cow::Owned(whole)
    }

    /// A complete line in chat mode: what it says about us, which buffer it goes to, whether
    /// it is shown (a rejoin hides what was already seen) and how, whether it counts as unread
    /// or rings the bell.
    fn take_line(&mut self, whole: &str, at: Instant) -> Vec<Effect> {
        let parsed = Scoped::parse(whole);
        if let Some(effects) = self.first_line(parsed.as_ref().map(|s| &s.line), whole, at) {
            let time = self.clock.wall(at);
            self.push_line(LOBBY_BUFFER, whole, Kind::Plain, time);
            return effects;
        }
        let Some(Scoped { scope, line }) = parsed else {
            let time = self.clock.wall(at);
            self.push_line(LOBBY_BUFFER, whole, Kind::Plain, time);
            return Vec::new();
        };
        // What the line is to us, read with our nick as it was before the line.
        let own = self.nick.as_deref();
        let fact = ingest::fact(&line, own);
        let mine = own_event(&line, own);
        let said_by_other = said_by_someone_else(&line, own);
        let named = said_by_other && ingest::names_us(&line, own);
        let (index, fit) = self.buffer_for(scope, &line, mine);
        let home = fit == Fit::Own;
        let mut effects = Vec::new();
        match fact {
            Some(Fact::Greeted { nick, online }) => {
                self.nick = Some(nick);
                self.buffers.get_mut(LOBBY_BUFFER).online = Some(online);
                effects.extend(self.greeted());
            }
            Some(Fact::Nick(nick)) => self.nick = Some(nick),
            Some(Fact::Online(online)) if home => self.buffers.get_mut(index).online = Some(online),
            _ => {}
        }
        if let (ServerLine::Event(Event::Online { nicks }), true) = (&line, home) {
            self.buffers.get_mut(index).online = Some(nicks.len());
        }
        if home && index != LOBBY_BUFFER && mine == Some(Own::Left) {
            // Our part closes the room's buffer; where we are now says we left, room and all.
            let effects = self.close_buffer(index);
            let time = self.clock.wall(at);
            self.push_line(self.buffers.current_index(), whole, Kind::Event, time);
            return effects;
        }
        let is_room = home
            && self
                .buffers
                .get(index)
                .is_some_and(|b| b.target == Target::Room);
        let verdict = match is_room {
            true => self.buffers.get_mut(index).numbering.on_line(Some(&line)),
            false => Verdict::Show,
        };
        match verdict {
            Verdict::Show => {
                let shown = match fit {
                    Fit::Own | Fit::Reply => &whole[prefix_len(whole, scope)..],
                    Fit::Stray => whole,
                };
                let kind = ingest::kind_of(Some(&line), self.nick.as_deref(), named);
                self.show_line(index, fit, shown, &line, kind, at);
            }
            Verdict::Hide => {}
            Verdict::Replace { note, ask } => {
                self.note_in(index, &note.words(self.language), at);
                if let (Some(ask), Some(room)) =
                    (ask, self.buffers.get(index).and_then(|b| b.room()))
                {
                    // `/history` answers about the room the server talks in.
                    let room = room.to_owned();
                    effects.push(Effect::Send(Outgoing::Line(
                        Command::Switch(&room).to_string(),
                    )));
                    effects.push(Effect::Send(Outgoing::Line(ask)));
                    self.talking_in = Some(buffers::room_key(&room));
                }
            }
        }
        effects.extend(self.about_passwords(&line, at));
        match &line {
            ServerLine::Message { nick, .. }
            | ServerLine::Action { nick, .. }
            | ServerLine::Replayed { nick, .. }
            | ServerLine::Event(Event::Joined { nick, .. }) => self.completer.saw(nick),
            ServerLine::Event(Event::Renamed { old, new }) => self.completer.renamed(old, new),
            ServerLine::Event(Event::Online { nicks }) => {
                nicks.iter().for_each(|nick| self.completer.present(nick));
            }
            _ => {}
        }
        if said_by_other {
            let named = named || matches!(scope, Scope::Private(_));
            if index != self.buffers.current_index() {
                let buffer = self.buffers.get_mut(index);
                buffer.unread += 1;
                buffer.mentions += usize::from(named);
            }
            if named && self.bell == Bell::Ring {
                effects.push(Effect::Bell);
            }
        }
        effects.extend(self.after_line(index, home, &line, mine, at));
        effects
    }

    /// The buffer a line goes to, opened if it is a private line or our own join, and how
    /// the line fits there.
    fn buffer_for(
        &mut self,
        scope: Scope<'_>,
        line: &ServerLine<'_>,
        mine: Option<Own>,
    ) -> (usize, Fit) {
        let current = self.buffers.current_index();
        let found = match buffers::place(scope, line) {
            Place::Lobby => return (LOBBY_BUFFER, Fit::Own),
            Place::Current => return (current, Fit::Reply),
            Place::Room(room) => match self.buffers.find(&buffers::room_key(room)) {
                Some(index) => Some(index),
                None if mine == Some(Own::Joined) => self.open_buffer(Target::Room, room),
                None => None,
            },
            Place::Private(nick) => self.open_buffer(Target::Private, nick),
        };
        found.map_or((current, Fit::Stray), |index| (index, Fit::Own))
    }

    /// Shows a line the numbering lets through, in buffer `index`: `shown` is its text
    /// without the prefix its own buffer makes plain, `kind` how it is drawn there.
    fn show_line(
        &mut self,
        index: usize,
        fit: Fit,
        shown: &str,
        line: &ServerLine<'_>,
        kind: Kind,
        at: Instant,
    ) {
        if let ServerLine::Event(Event::Talking { .. }) = line {
            // Where we talk is the buffer on screen; the server's word for it is not shown.
            return;
        }
        let when = match line {
            ServerLine::Replayed { at, .. } => self.clock.local(*at),
            _ => None,
        }
        .unwrap_or_else(|| self.clock.wall(at));
        let (text, kind) = match fit {
            Fit::Own | Fit::Reply => {
                ingest::presented(line, self.language).unwrap_or_else(|| (shown.to_owned(), kind))
            }
            Fit::Stray => (shown.to_owned(), unprefixed(kind)),
        };
        self.push_line(index, &text, kind, when);
    }

    /// What a line does to the buffers once shown: our join puts the room on screen if we
    /// asked for it, a rename renames a conversation.
    fn after_line(
        &mut self,
        index: usize,
        home: bool,
        line: &ServerLine<'_>,
        mine: Option<Own>,
        at: Instant,
    ) -> Vec<Effect> {
        match (mine, line) {
            (Some(Own::Joined), _) if home => {
                self.buffers.get_mut(index).numbering.on_entered();
                let key = self.buffers.get(index).map(|b| b.key().to_owned());
                if key.is_some_and(|key| self.joining.contains(&key)) {
                    return self.go_to(index);
                }
            }
            (_, ServerLine::Event(Event::Talking { room })) => {
                let key = buffers::room_key(room);
                if self.joining.contains(&key)
                    && let Some(index) = self.open_buffer(Target::Room, room)
                {
                    return self.go_to(index);
                }
            }
            (_, ServerLine::Event(Event::Renamed { old, new })) => {
                if let Some(renamed) = self.buffers.rename_private(old, new)
                    && renamed != index
                {
                    // The conversation's own buffer says so too.
                    let time = self.clock.wall(at);
                    self.push_line(renamed, &line.to_string(), Kind::Event, time);
                }
            }
            _ => {}
        }
        Vec::new()
    }
}

/// How a line fits the buffer it is shown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fit {
    /// Its room's or conversation's own buffer: shown there without its prefix, numbered there.
    Own,
    /// The buffer on screen, as a reply about no room (which has no prefix).
    Reply,
    /// The buffer on screen, for a line about a room without a buffer (a `/who #elsewhere`):
    /// shown whole, so it says which room it is about.
    Stray,
}

/// Our own join or part, as a line says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Own {
    Joined,
    Left,
}

fn own_event(line: &ServerLine<'_>, own: Option<&str>) -> Option<Own> {
    match line {
        ServerLine::Event(Event::Joined { nick, .. }) if Some(*nick) == own => Some(Own::Joined),
        ServerLine::Event(Event::Left { nick, .. }) if Some(*nick) == own => Some(Own::Left),
        _ => None,
    }
}

/// Whether a line is a live message or action someone else said.
fn said_by_someone_else(line: &ServerLine<'_>, own: Option<&str>) -> bool {
    match line {
        ServerLine::Message { nick, .. } | ServerLine::Action { nick, .. } => Some(*nick) != own,
        _ => false,
    }
}

/// The length of the prefix `whole`, read with `scope`, starts with (`#room `, `@nick `,
/// nothing; or `#lobby ` when a server names the lobby, which it need not).
fn prefix_len(whole: &str, scope: Scope<'_>) -> usize {
    match scope {
        Scope::Lobby if whole.starts_with('#') => whole.find(' ').map_or(0, |space| space + 1),
        Scope::Lobby => 0,
        Scope::Room(room) => room.len() + 1,
        Scope::Private(nick) => nick.len() + 2,
    }
}

/// A line shown with its room's prefix is drawn without the nick's colours (its prefix is not
/// where a kind that has one says).
fn unprefixed(kind: Kind) -> Kind {
    match kind {
        Kind::Own { .. } | Kind::Message { .. } | Kind::Mention { .. } => Kind::Plain,
        kind => kind,
    }
}
