//! The client's state and its synchronous transitions: everything the screen shows, as data.
//!
//! [`App`] changes only through its transitions ([`App::on_key`], [`App::on_net`],
//! [`App::on_paste`], [`App::on_deadline`], ...), which do no I/O and never read the clock (the
//! moment is handed in): they update state and return [`Effect`]s for the event loop to carry
//! out, so tests drive them with neither a terminal nor a socket. What the layout means for the
//! state (the width lines wrap to, the rows a page scrolls) it is told through [`App::fit`];
//! it never imports the drawing code.
//!
//! - [`keys`]: the one key table; [`keymap`]: it with the config file's `[keys]` over it, from
//!   which dispatch and the help both come.
//! - `network`: the transitions the network task drives.
//! - [`ingest`]: received bytes to classified lines, and what they teach us about ourselves.
//! - [`buffers`]: one buffer per room and private conversation, and where each line goes.
//! - `focus`: which buffer is on screen, opening and closing them, keeping the server talking
//!   in the room on screen.
//! - `typed`: what a typed line does in the buffer on screen.
//! - [`client_commands`]: the commands the client answers itself (`/query`, `/close`).
//! - `mention`: whether a line names us.
//! - [`Clock`]: the wall-clock time of a moment, for the times shown beside lines.

pub mod buffers;
pub mod client_commands;
mod clock;
mod complete;
mod focus;
mod greeting;
pub mod ingest;
pub mod keymap;
pub mod keys;
mod lab;
mod lesson;
pub use lab::describe as lab_knobs;
mod mention;
mod network;
mod numbering;
mod secrets;
mod tls;
mod typed;

pub use clock::Clock;
pub use tls::TlsStatus;

use std::net::SocketAddr;
use std::time::Duration;

use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, MouseEventKind};
use tokio::time::Instant;

use crate::codec::sanitize;
use crate::editbox::EditBox;
use crate::i18n::{Language, tr};
use crate::inspector::{Inspector, ServerSide};
use crate::lab::Knobs;
use crate::net::Outgoing;
use crate::server::observe::ServerSample;
use chrono::NaiveDateTime;

use crate::protocol::{Command, EXIT, Framing};
use crate::scrollback::{Kind, Scrollback};
use crate::tcpinfo::TcpInfo;
use buffers::Buffers;
use ingest::Utf8Joiner;
use keys::{Action, Context};
use secrets::masked;

/// How long the exit key waits for the server to close before quitting anyway.
pub const EXIT_WAIT: Duration = Duration::from_secs(2);

/// Rows PgUp/PgDn scroll the key help.
const HELP_PAGE: u16 = 10;

/// Rows one mouse-wheel notch scrolls.
const WHEEL_ROWS: isize = 3;

/// What the event loop must do after a transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Hand this to the network task.
    Send(Outgoing),
    /// Capture the mouse (wheel scrolling) or release it for the terminal's own selection.
    CaptureMouse(bool),
    /// Clear the terminal and draw everything again.
    Repaint,
    /// The inspector opened or closed: start or stop live `TCP_INFO` samples.
    Inspect(bool),
    /// Hand this to the lessons' task (started the first time).
    Lesson(crate::lesson::Request),
    /// The framing lab's knobs changed: hand them to the network task.
    Lab(Knobs),
    /// Ring the terminal's bell: someone named us, or wrote to us privately.
    Bell,
    /// The terminal's title should say how many lines are unread in buffers not on screen
    /// (a number only: never a room's name or anyone's text).
    Title {
        /// Unread lines, all buffers together; 0 for the plain title.
        unread: usize,
    },
}

/// Whether a mention rings the terminal bell (`--no-bell` silences it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bell {
    /// Ring once per mention.
    Ring,
    /// Never ring.
    Silent,
}

/// One line for the transcript (`--log`): the room or `@nick` it is filed under, when it was
/// said or shown, and its text as shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptLine {
    /// The buffer's name (`#lobby`, `#rust`, `@bob`), or `raw` for the article's servers.
    pub room: String,
    /// Local date and time.
    pub at: NaiveDateTime,
    /// The line.
    pub text: String,
}

/// The connection as the status bar shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conn {
    /// Resolving or connecting.
    Connecting,
    /// Established.
    Connected,
    /// Waiting to try again; `secs` left, counting down.
    Reconnecting {
        /// When the attempt starts.
        at: Instant,
        /// Whole seconds left, as last shown.
        secs: u64,
    },
    /// Closed; why, in words.
    Closed(String),
}

/// A layer over the main screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlay {
    /// Nothing over the screen.
    None,
    /// The key help, scrolled this many rows down (PgDn, where the terminal is too short for
    /// all of it).
    Help(u16),
    /// A multi-line paste waiting for Enter (send each line) or Esc (drop it).
    Paste(Vec<String>),
}

/// Where the client is connected, and whether it hosts the room itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Joined a server someone else runs.
    Joined,
    /// Hosting the room in this process (local mode found nobody on the port).
    Hosting,
}

/// Where the session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// Chatting, connecting or reconnecting.
    Running,
    /// The exit was sent: waiting for the server to close, at most until `deadline`.
    Exiting {
        /// When the client gives up waiting and quits.
        deadline: Instant,
    },
    /// The exit finished while the inspector was open, which stays to show the close: q, Esc,
    /// Enter or Ctrl-D quits, the inspector's keys still work.
    Over,
    /// The event loop ends.
    Done,
}

/// What the client was started with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The `HOST:PORT` joined.
    pub target: String,
    /// Lines (the chat protocol), or raw reads and writes (the article's servers).
    pub framing: Framing,
    /// Nick to ask for once connected.
    pub nick: Option<String>,
    /// Lines of scrollback kept.
    pub scrollback: usize,
    /// Joined or hosting.
    pub role: Role,
}

/// Everything the client shows, and how it changes.
#[derive(Debug)]
pub struct App {
    /// The lines of the buffer on screen, received and noted. Every buffer keeps its own; the
    /// one on screen lends them here (see [`Buffers::focus`]), so drawing, scrolling and
    /// whatever reads the screen's lines see one scrollback.
    pub scrollback: Scrollback,
    /// Every room and private conversation, and which one is on screen.
    pub buffers: Buffers,
    /// The line being typed.
    pub input: EditBox,
    /// Connection state for the status bar.
    pub conn: Conn,
    /// What we were started with.
    pub settings: Settings,
    /// The keys in force (the key table, with the config file's `[keys]` over it).
    pub keymap: keymap::Keymap,
    /// Our address once connected.
    pub local: Option<SocketAddr>,
    /// The server's address once connected.
    pub peer: Option<SocketAddr>,
    /// Our nick, as the server's own events about us last said.
    pub nick: Option<String>,
    /// Bytes received over all connections.
    pub bytes_in: u64,
    /// Bytes sent over all connections.
    pub bytes_out: u64,
    /// Help or a paste confirmation, if one is open.
    pub overlay: Overlay,
    /// Whether lines show their arrival time.
    pub timestamps: bool,
    /// Whether the mouse is captured for wheel scrolling.
    pub mouse_captured: bool,
    /// The TCP inspector's model.
    pub inspector: Inspector,
    /// The lesson card, while one is open (`/lesson N`).
    pub lesson: Option<crate::lesson::Card>,
    /// Lesson runs started, so each run's reports reach only its own card.
    lesson_runs: u64,
    /// Where the session is in its life.
    pub lifecycle: Lifecycle,
    /// Whether a mention rings the bell.
    pub bell: Bell,
    /// The TLS layer, with `--tls`.
    pub tls: Option<TlsStatus>,
    /// The language of the client's own words (the server's are shown as sent).
    pub language: Language,
    utf8: Utf8Joiner,
    /// The start of a line about a room or a conversation (it begins with `#` or `@`), held
    /// back until its newline: only then is it known where it goes (the chat server always
    /// ends its lines). Bounded by [`network::MAX_HELD`].
    held: String,
    /// The key of the room the server talks in (where plain lines, `/me`, `/topic` go), as
    /// the lines sent so far decide it; `None` when a line sent may have changed it (a join, a
    /// part), so the next line typed in a room says `/switch` first.
    talking_in: Option<String>,
    /// Keys of the rooms the user asked to join: each one's buffer goes on screen when the
    /// server says we are in it.
    joining: Vec<String>,
    /// The unread total the terminal's title last showed.
    titled: usize,
    /// Passwords to give again after a reconnect.
    secrets: secrets::Secrets,
    /// Tab completion's recent nicks and its cycle.
    completer: complete::Completer,
    /// Whether what answered has greeted as a tcpchat server.
    greeting: greeting::Greeting,
    /// Lines shown and not yet collected for the transcript, if one is kept.
    transcript: Option<Vec<TranscriptLine>>,
    clock: Clock,
    /// Rows the scrollback pane shows, as [`App::fit`] last said.
    view_height: usize,
    /// Columns lines wrap to, as [`App::fit`] last said: a buffer put on screen is wrapped to it.
    width: usize,
    dirty: bool,
}

impl App {
    /// A fresh client, not yet connected; `clock` dates its lines.
    pub fn new(settings: Settings, clock: Clock) -> Self {
        Self {
            scrollback: Scrollback::new(settings.scrollback),
            buffers: Buffers::new(),
            input: EditBox::default(),
            conn: Conn::Connecting,
            settings,
            keymap: keymap::Keymap::default(),
            local: None,
            peer: None,
            nick: None,
            bytes_in: 0,
            bytes_out: 0,
            overlay: Overlay::None,
            timestamps: false,
            mouse_captured: true,
            inspector: Inspector::default(),
            lesson: None,
            lesson_runs: 0,
            lifecycle: Lifecycle::Running,
            bell: Bell::Ring,
            tls: None,
            language: Language::English,
            utf8: Utf8Joiner::default(),
            held: String::new(),
            talking_in: None,
            joining: Vec::new(),
            titled: 0,
            secrets: secrets::Secrets::default(),
            completer: complete::Completer::default(),
            greeting: greeting::Greeting::default(),
            transcript: None,
            clock,
            view_height: 1,
            width: 80,
            dirty: true,
        }
    }

    /// People in the room on screen, as the server last said.
    pub fn online(&self) -> Option<usize> {
        self.buffers.current().online
    }

    /// Whether the event loop should end.
    pub fn should_quit(&self) -> bool {
        self.lifecycle == Lifecycle::Done
    }

    /// Whether the session ended on purpose (the network task is expected to stop).
    pub fn exit_finished(&self) -> bool {
        matches!(self.lifecycle, Lifecycle::Over | Lifecycle::Done)
    }

    /// Whether anything changed since the last call.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// The scrollback's text is `width` columns wide (after any timestamps) and `height` rows
    /// tall: lines wrap to the one, pages scroll by the other.
    pub fn fit(&mut self, width: usize, height: usize) {
        if height != self.view_height {
            self.view_height = height;
            self.dirty = true;
        }
        self.width = width.max(1);
        self.scrollback.set_width(self.width);
    }

    /// A live `TCP_INFO` sample for the inspector.
    pub fn on_tcp_info(&mut self, info: TcpInfo) {
        self.inspector.on_sample(info);
        self.dirty = true;
    }

    /// A sample of the server's side, from the room this process hosts (`None`: it hosts
    /// none now).
    pub fn on_server_sample(&mut self, sample: Option<ServerSample>) {
        let side = match sample {
            Some(sample) => ServerSide::Sampled(Box::new(sample)),
            None => ServerSide::Elsewhere,
        };
        self.inspector.on_server(side);
        self.dirty = true;
    }

    /// Adds one of the client's own notes to the buffer on screen.
    pub fn note(&mut self, text: &str, at: Instant) {
        self.note_in(self.buffers.current_index(), text, at);
    }

    /// Adds one of the client's own notes to buffer `index`.
    fn note_in(&mut self, index: usize, text: &str, at: Instant) {
        // Notes can quote what came from outside (a host name, an OS error): sanitised too.
        let text = format!("-- {}", sanitize(text));
        let time = self.clock.wall(at);
        self.push_line(index, &text, Kind::Note, time);
    }

    /// Adds a complete line to buffer `index`, shown at `time`, and to the transcript.
    fn push_line(&mut self, index: usize, text: &str, kind: Kind, time: NaiveDateTime) {
        self.buffers
            .lines_mut(index, &mut self.scrollback)
            .push(text, kind, time.time());
        self.transcribe(index, time, text);
        self.dirty = true;
    }

    /// Keeps a transcript from now on: every line shown, with its date and time, for the
    /// event loop to collect ([`App::take_transcript`]) and write (`--log`).
    pub fn keep_transcript(&mut self) {
        self.transcript = Some(Vec::new());
    }

    /// The lines shown since the last call, for the transcript.
    pub fn take_transcript(&mut self) -> Vec<TranscriptLine> {
        self.transcript
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Files `text`, shown in buffer `index` at `at`, under that buffer's name (`raw` for
    /// the article's servers, which have no rooms).
    fn transcribe(&mut self, index: usize, at: NaiveDateTime, text: &str) {
        let Some(lines) = &mut self.transcript else {
            return;
        };
        let room = match (self.settings.framing, self.buffers.get(index)) {
            (Framing::Lines, Some(buffer)) => buffer.name.clone(),
            _ => "raw".to_owned(),
        };
        lines.push(TranscriptLine {
            room,
            at,
            text: text.to_owned(),
        });
    }

    /// Any terminal event, `now`.
    pub fn on_terminal(&mut self, event: Event, now: Instant) -> Vec<Effect> {
        match event {
            Event::Key(key) if key.kind != KeyEventKind::Release => return self.on_key(key, now),
            Event::Paste(text) => self.on_paste(&text),
            Event::Resize(..) => self.dirty = true, // the loop re-fits before drawing
            Event::Mouse(mouse) => match mouse.kind {
                MouseEventKind::ScrollUp => self.scroll(WHEEL_ROWS),
                MouseEventKind::ScrollDown => self.scroll(-WHEEL_ROWS),
                _ => {}
            },
            _ => {}
        }
        Vec::new()
    }

    fn scroll(&mut self, rows: isize) {
        self.scrollback.scroll(rows, self.view_height);
        self.dirty = true;
    }

    /// A key press, `now`.
    pub fn on_key(&mut self, key: KeyEvent, now: Instant) -> Vec<Effect> {
        let mut effects = self.key_pressed(key, now);
        effects.extend(self.retitle());
        effects
    }

    fn key_pressed(&mut self, key: KeyEvent, now: Instant) -> Vec<Effect> {
        self.dirty = true;
        let context = Context {
            empty_line: self.input.is_empty(),
            inspecting: self.inspector.visible,
        };
        let action = self.keymap.action_for(&key, context);
        if action != Some(Action::Complete) {
            self.completer.interrupt();
        }
        let leaves = matches!(
            key.code,
            KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q' | 'd')
        );
        if action == Some(Action::QuitNow) || (self.lifecycle == Lifecycle::Over && leaves) {
            self.lifecycle = Lifecycle::Done;
            return Vec::new();
        }
        match std::mem::replace(&mut self.overlay, Overlay::None) {
            Overlay::None => {}
            Overlay::Help(scrolled) => {
                // PgUp/PgDn scroll a help taller than the terminal; any other key closes it.
                let rows = crate::ui::Help {
                    keymap: &self.keymap,
                    language: self.language,
                    scrolled: 0,
                }
                .rows()
                .count();
                let most = u16::try_from(rows).unwrap_or(u16::MAX);
                match key.code {
                    KeyCode::PageDown => {
                        self.overlay = Overlay::Help(scrolled.saturating_add(HELP_PAGE).min(most));
                    }
                    KeyCode::PageUp => {
                        self.overlay = Overlay::Help(scrolled.saturating_sub(HELP_PAGE));
                    }
                    _ => {}
                }
                return Vec::new();
            }
            Overlay::Paste(lines) => {
                return match key.code {
                    KeyCode::Enter => lines
                        .into_iter()
                        .flat_map(|line| self.submit(line, now))
                        .collect(),
                    KeyCode::Esc => {
                        self.note(&tr!(self.language, "note.paste_dropped"), now);
                        Vec::new()
                    }
                    _ => {
                        self.overlay = Overlay::Paste(lines);
                        Vec::new()
                    }
                };
            }
        }
        if self.lesson.is_some()
            && let Some(effects) = self.lesson_key(&key, action)
        {
            return effects;
        }
        match action {
            Some(action) => self.perform(action, now),
            None => {
                if let Some(c) = keys::typed_char(&key) {
                    self.input.type_char(c);
                }
                Vec::new()
            }
        }
    }

    /// Does what a key asked for.
    fn perform(&mut self, action: Action, now: Instant) -> Vec<Effect> {
        let page = isize::try_from(self.view_height.saturating_sub(1).max(1)).unwrap_or(1);
        match action {
            Action::Submit => {
                let line = self.input.take();
                return self.submit(line, now);
            }
            Action::Exit => return self.begin_exit(EXIT.to_owned(), now),
            Action::QuitNow => self.lifecycle = Lifecycle::Done,
            Action::Help => self.overlay = Overlay::Help(0),
            Action::ToggleInspector => {
                self.inspector.visible = !self.inspector.visible;
                return vec![Effect::Inspect(self.inspector.visible)];
            }
            Action::NextInspectorPage => self.inspector.next_page(),
            Action::ScrollTimeline(rows) => self.inspector.scroll_timeline(rows.into()),
            Action::ToggleTimestamps => self.timestamps = !self.timestamps,
            Action::ToggleMouse => {
                self.mouse_captured = !self.mouse_captured;
                let key = match self.mouse_captured {
                    true => "note.mouse_captured",
                    false => "note.mouse_released",
                };
                self.note(&tr!(self.language, key), now);
                return vec![Effect::CaptureMouse(self.mouse_captured)];
            }
            Action::Repaint => return vec![Effect::Repaint],
            Action::PageUp => self.scroll(page),
            Action::PageDown => self.scroll(-page),
            Action::LineUp => self.scroll(1),
            Action::LineDown => self.scroll(-1),
            Action::ToBottom => self.scrollback.to_bottom(),
            Action::Edit(edit) => self.input.apply(edit),
            Action::Complete => self.complete(),
            Action::GoToBuffer(index) => return self.go_to(usize::from(index)),
            Action::PreviousBuffer | Action::NextBuffer => {
                let count = self.buffers.count();
                let step = if action == Action::NextBuffer {
                    1
                } else {
                    count - 1
                };
                return self.go_to((self.buffers.current_index() + step) % count);
            }
        }
        Vec::new()
    }

    /// Sends one typed line, or starts the exit if the line ends the session.
    fn submit(&mut self, line: String, now: Instant) -> Vec<Effect> {
        if line.is_empty() {
            return Vec::new();
        }
        let raw = self.settings.framing == Framing::Raw;
        match Command::parse(&line) {
            // The article's servers know only `exit`.
            Command::Quit(_) if raw => return self.begin_exit(EXIT.to_owned(), now),
            command if command.ends_session() => return self.begin_exit(line, now),
            _ => {}
        }
        if !raw && let Some(command) = client_commands::ClientCommand::parse(&line) {
            return self.client_command(command, now);
        }
        if self.conn != Conn::Connected {
            let line = masked(&line, self.language);
            self.note(&tr!(self.language, "note.not_sent", line = line), now);
            return Vec::new();
        }
        if raw {
            self.show_sent(&line, now);
            return vec![Effect::Send(Outgoing::Line(line))];
        }
        self.secrets
            .sent(&Command::parse(&line), self.nick.as_deref());
        self.typed(line, now)
    }

    /// In raw mode the server does not echo: what we sent is shown as `→ text`.
    fn show_sent(&mut self, line: &str, at: Instant) {
        let time = self.clock.wall(at);
        let shown = format!("→ {}", sanitize(line));
        self.push_line(self.buffers.current_index(), &shown, Kind::Sent, time);
    }

    /// The exit key: send `exit` (or `/quit`), then wait for the server to close.
    fn begin_exit(&mut self, line: String, now: Instant) -> Vec<Effect> {
        if self.conn != Conn::Connected {
            self.lifecycle = Lifecycle::Done;
            return Vec::new();
        }
        if self.settings.framing == Framing::Raw {
            self.show_sent(&line, now);
        }
        self.note(&tr!(self.language, "note.exiting", line = line), now);
        self.lifecycle = Lifecycle::Exiting {
            deadline: now + EXIT_WAIT,
        };
        vec![Effect::Send(Outgoing::Exit(line))]
    }

    /// A bracketed paste: one line goes into the edit box; several wait for confirmation so
    /// a paste never sends anything unasked.
    pub fn on_paste(&mut self, text: &str) {
        self.dirty = true;
        // Tabs become spaces: the edit box measures and draws text cell by cell.
        let text = text
            .replace("\r\n", "\n")
            .replace('\r', "\n")
            .replace('\t', "    ");
        let lines: Vec<String> = text
            .trim_end_matches('\n')
            .split('\n')
            .map(|line| sanitize(line).into_owned())
            .collect();
        match lines.as_slice() {
            [one] => self.input.insert(one),
            _ => self.overlay = Overlay::Paste(lines),
        }
    }

    /// When [`App::on_deadline`] must run next, if anything is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        let countdown = match self.conn {
            Conn::Reconnecting { at, secs } if secs > 0 => Some(at - Duration::from_secs(secs - 1)),
            _ => None,
        };
        let exit = match self.lifecycle {
            Lifecycle::Exiting { deadline } => Some(deadline),
            _ => None,
        };
        [exit, countdown, self.greeting_deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Time passed: the exit wait may be over, the reconnect countdown moves, a greeting
    /// awaited may be overdue.
    pub fn on_deadline(&mut self, now: Instant) -> Vec<Effect> {
        if let Conn::Reconnecting { at, secs } = &mut self.conn {
            *secs = at.saturating_duration_since(now).as_secs_f64().ceil() as u64;
            self.dirty = true;
        }
        if let Lifecycle::Exiting { deadline } = self.lifecycle
            && now >= deadline
        {
            self.note(&tr!(self.language, "note.exit_timeout"), now);
            self.lifecycle = Lifecycle::Done;
        }
        self.on_greeting_deadline(now)
    }
}

#[cfg(test)]
mod buffer_tests;
#[cfg(test)]
mod tests;
