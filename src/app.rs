//! The client's state and its transitions, and the one loop that feeds them.
//!
//! [`App`] holds everything the screen shows. Its transitions ([`App::on_key`],
//! [`App::on_net`], [`App::on_paste`], [`App::on_deadline`], ...) are synchronous and do no I/O:
//! they update state and return [`Action`]s for the loop to carry out, so tests drive them
//! without a terminal or a socket. [`run`] is the loop: one `select!` over terminal input,
//! network events, signals and a deadline that is armed only when something is due, then one
//! draw for the whole batch. Nothing ticks while idle.

use std::net::SocketAddr;
use std::time::Duration;

use crossterm::event::{
    Event, EventStream, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEventKind,
};
use futures_util::StreamExt;
use ratatui::Terminal;
use ratatui::backend::Backend;
use ratatui::layout::Rect;
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::codec::sanitize;
use crate::editbox::EditBox;
use crate::inspector::{self, Inspector};
use crate::net::{Close, NetEvent, NetHandle, Outgoing, Stamped};
use crate::scrollback::{Kind, Scrollback};
use crate::tcpinfo::TcpInfo;
use crate::ui;

/// How long the exit key waits for the server to close before quitting anyway.
pub const EXIT_WAIT: Duration = Duration::from_secs(2);

/// Rows one mouse-wheel notch scrolls.
const WHEEL_ROWS: isize = 3;

/// Most network events handled before the screen is drawn again during a burst.
const DRAIN_BATCH: usize = 512;

/// Longest time spent on a burst of network events before drawing and looking at the
/// keyboard again, so typing stays responsive while a server floods us.
const DRAIN_BUDGET: Duration = Duration::from_millis(8);

/// What the loop must do after a transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Hand this to the network task.
    Send(Outgoing),
    /// Capture the mouse (wheel scrolling) or release it for the terminal's own selection.
    CaptureMouse(bool),
    /// Clear the terminal and draw everything again.
    Repaint,
    /// The inspector opened or closed: start or stop live `TCP_INFO` samples.
    Inspect(bool),
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
    /// The key help.
    Help,
    /// A multi-line paste waiting for Enter (send each line) or Esc (drop it).
    Paste(Vec<String>),
}

/// Where the client is connected, and whether it hosts the room itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Joined a server someone else runs.
    Joined,
    /// Hosting the room in this process (local mode found nobody on the port).
    Hosting,
}

/// What the client was started with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The `HOST:PORT` joined.
    pub target: String,
    /// Send exactly what was typed, without a newline.
    pub raw: bool,
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
    /// Received lines and the client's notes.
    pub scrollback: Scrollback,
    /// The line being typed.
    pub input: EditBox,
    /// Connection state for the status bar.
    pub conn: Conn,
    /// What we were started with.
    pub settings: Settings,
    /// Our address once connected.
    pub local: Option<SocketAddr>,
    /// The server's address once connected.
    pub peer: Option<SocketAddr>,
    /// Our nick as the server last told it.
    pub nick: Option<String>,
    /// Users online, as the server last told it.
    pub online: Option<usize>,
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
    /// The TCP inspector's model (F2).
    pub inspector: Inspector,
    /// Terminal size, columns and rows.
    pub size: (u16, u16),
    /// Bytes of a UTF-8 character cut off at the end of the last read.
    utf8_tail: Vec<u8>,
    /// Set once the exit key was pressed: quit when the server closes or at this deadline.
    exit_deadline: Option<Instant>,
    /// The exit finished while the inspector was open: q, Esc, Enter or Ctrl-D quits; the
    /// inspector's keys still work.
    session_over: bool,
    quit: bool,
    dirty: bool,
}

impl App {
    /// A fresh client, not yet connected.
    pub fn new(settings: Settings) -> Self {
        let mut app = Self {
            scrollback: Scrollback::new(settings.scrollback),
            input: EditBox::default(),
            conn: Conn::Connecting,
            settings,
            local: None,
            peer: None,
            nick: None,
            online: None,
            bytes_in: 0,
            bytes_out: 0,
            overlay: Overlay::None,
            timestamps: false,
            mouse_captured: true,
            inspector: Inspector::default(),
            size: (80, 24),
            utf8_tail: Vec::new(),
            exit_deadline: None,
            session_over: false,
            quit: false,
            dirty: true,
        };
        app.on_resize(80, 24);
        app
    }

    /// Whether the loop should end.
    pub fn should_quit(&self) -> bool {
        self.quit
    }

    /// Whether anything changed since the last call.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// Rows the scrollback pane has.
    pub fn view_height(&self) -> usize {
        usize::from(self.layout().scrollback.height)
    }

    /// Where each part of the screen goes at the current size.
    pub fn layout(&self) -> ui::Areas {
        ui::layout(self.size, self.inspector.visible)
    }

    /// A live `TCP_INFO` sample for the inspector.
    pub fn on_tcp_info(&mut self, info: TcpInfo) {
        self.inspector.on_sample(info);
        self.dirty = true;
    }

    /// Adds one of the client's own notes to the scrollback.
    pub fn note(&mut self, text: &str) {
        // Notes can quote what came from outside (a host name, an OS error): sanitised too.
        let text = sanitize(text);
        self.scrollback
            .push(&format!("-- {text}"), Kind::Note, now());
        self.dirty = true;
    }

    /// The terminal was resized.
    pub fn on_resize(&mut self, cols: u16, rows: u16) {
        self.size = (cols, rows);
        self.rewrap();
        self.dirty = true;
    }

    fn rewrap(&mut self) {
        let width = usize::from(self.layout().scrollback.width);
        let stamp = if self.timestamps {
            ui::TIMESTAMP_WIDTH
        } else {
            0
        };
        self.scrollback
            .set_width(width.saturating_sub(stamp).max(1));
    }

    /// Any terminal event.
    pub fn on_terminal(&mut self, event: Event) -> Vec<Action> {
        match event {
            Event::Key(key) if key.kind != KeyEventKind::Release => self.on_key(key),
            Event::Paste(text) => {
                self.on_paste(&text);
                Vec::new()
            }
            Event::Resize(cols, rows) => {
                self.on_resize(cols, rows);
                Vec::new()
            }
            Event::Mouse(mouse) => {
                let rows = match mouse.kind {
                    MouseEventKind::ScrollUp => WHEEL_ROWS,
                    MouseEventKind::ScrollDown => -WHEEL_ROWS,
                    _ => return Vec::new(),
                };
                self.scroll(rows);
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn scroll(&mut self, rows: isize) {
        let height = self.view_height();
        self.scrollback.scroll(rows, height);
        self.dirty = true;
    }

    /// A key press.
    pub fn on_key(&mut self, key: KeyEvent) -> Vec<Action> {
        self.dirty = true;
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let shift = key.modifiers.contains(KeyModifiers::SHIFT);
        let page = isize::try_from(self.view_height().saturating_sub(1).max(1)).unwrap_or(1);
        let leaves = matches!(
            key.code,
            KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q' | 'd')
        );
        if (ctrl && key.code == KeyCode::Char('c')) || (self.session_over && leaves) {
            self.quit = true;
            return Vec::new();
        }
        match std::mem::replace(&mut self.overlay, Overlay::None) {
            Overlay::None => {}
            Overlay::Help => return Vec::new(), // any key closes the help
            Overlay::Paste(lines) => {
                return match key.code {
                    KeyCode::Enter => lines
                        .into_iter()
                        .flat_map(|line| self.submit(line))
                        .collect(),
                    KeyCode::Esc => {
                        self.note("paste dropped");
                        Vec::new()
                    }
                    _ => {
                        self.overlay = Overlay::Paste(lines);
                        Vec::new()
                    }
                };
            }
        }
        let empty = self.input.is_empty();
        match key.code {
            KeyCode::F(1) => self.overlay = Overlay::Help,
            KeyCode::Char('?') if empty => self.overlay = Overlay::Help,
            KeyCode::F(2) => {
                self.inspector.visible = !self.inspector.visible;
                self.rewrap();
                return vec![Action::Inspect(self.inspector.visible)];
            }
            KeyCode::F(5) if self.inspector.visible => {
                self.inspector.page = self.inspector.page.next();
            }
            KeyCode::F(3) => {
                self.timestamps = !self.timestamps;
                self.rewrap();
            }
            KeyCode::F(4) => {
                self.mouse_captured = !self.mouse_captured;
                self.note(if self.mouse_captured {
                    "mouse captured: the wheel scrolls (F4 releases it for selecting text)"
                } else {
                    "mouse released: select text as usual (F4 captures it again)"
                });
                return vec![Action::CaptureMouse(self.mouse_captured)];
            }
            KeyCode::Char('l') if ctrl => return vec![Action::Repaint],
            KeyCode::Char('d') if ctrl && empty => return self.begin_exit("exit".to_owned()),
            KeyCode::PageUp => self.scroll(page),
            KeyCode::PageDown => self.scroll(-page),
            KeyCode::Up if shift => self.scroll(1),
            KeyCode::Down if shift => self.scroll(-1),
            KeyCode::End if ctrl || empty => self.scrollback.to_bottom(),
            KeyCode::Enter => {
                let line = self.input.take();
                return self.submit(line);
            }
            _ => {
                self.input.on_key(key);
            }
        }
        Vec::new()
    }

    /// Sends one typed line, or starts the exit if it is `exit` or `/quit`.
    fn submit(&mut self, line: String) -> Vec<Action> {
        if line.is_empty() {
            return Vec::new();
        }
        if line == "exit" {
            return self.begin_exit(line);
        }
        if line == "/quit" || line.starts_with("/quit ") {
            let line = if self.settings.raw {
                "exit".to_owned()
            } else {
                line
            };
            return self.begin_exit(line);
        }
        if self.conn != Conn::Connected {
            self.note(&format!("not connected; not sent: {line}"));
            return Vec::new();
        }
        if self.settings.raw {
            self.scrollback
                .push(&format!("→ {}", sanitize(&line)), Kind::Sent, now());
        }
        vec![Action::Send(Outgoing::Line(line))]
    }

    /// The exit key: send `exit` (or `/quit`), then wait for the server to close.
    fn begin_exit(&mut self, line: String) -> Vec<Action> {
        if self.conn != Conn::Connected {
            self.quit = true;
            return Vec::new();
        }
        if self.settings.raw {
            self.scrollback
                .push(&format!("→ {line}"), Kind::Sent, now());
        }
        self.note(&format!("sending {line}; waiting for the server to close"));
        self.exit_deadline = Some(Instant::now() + EXIT_WAIT);
        vec![Action::Send(Outgoing::Exit(line))]
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

    /// A network event that happened just now.
    pub fn on_net(&mut self, event: NetEvent) -> Vec<Action> {
        self.on_net_at(event, Instant::now())
    }

    /// A network event that happened `at`.
    pub fn on_net_at(&mut self, event: NetEvent, at: Instant) -> Vec<Action> {
        self.dirty = true;
        self.inspector.on_net(&event, at);
        match event {
            NetEvent::Resolving { .. } | NetEvent::Resolved { .. } => {
                self.conn = Conn::Connecting;
            }
            NetEvent::Connecting { addr } => {
                self.conn = Conn::Connecting;
                self.note(&format!("connecting to {addr}..."));
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
                self.nick = None;
                self.online = None;
                let took = inspector::millis(handshake);
                self.note(&format!("connected {local} → {peer} (handshake {took})"));
                if let (Some(nick), false) = (&self.settings.nick, self.settings.raw) {
                    return vec![Action::Send(Outgoing::Line(format!("/nick {nick}")))];
                }
            }
            NetEvent::ConnectFailed(reason) => self.note(&reason),
            NetEvent::Received(bytes) => {
                self.bytes_in += bytes.len() as u64;
                self.ingest(&bytes);
            }
            NetEvent::Sent { bytes, .. } => self.bytes_out += bytes as u64,
            NetEvent::FinSent { .. } => self.note("our side is closed (FIN sent)"),
            NetEvent::Closed { how, .. } => {
                self.flush_open_line();
                let reason = match how {
                    Close::PeerFin => "closed by the server (FIN)".to_owned(),
                    Close::Reset => "reset by the server (RST)".to_owned(),
                    Close::Failed(error) => format!("connection failed: {error}"),
                };
                self.note(&reason);
                self.conn = Conn::Closed(reason);
                // What the server told us belongs to that session.
                self.nick = None;
                self.online = None;
                if self.exit_deadline.take().is_some() {
                    if self.inspector.visible {
                        // The close is what the inspector is there to show: stay on it.
                        self.session_over = true;
                        self.note("session over; the inspector shows how it closed. q, Esc or Enter quits");
                    } else {
                        self.quit = true;
                    }
                }
            }
            NetEvent::Reconnecting { delay } => {
                self.conn = Conn::Reconnecting {
                    at: at + delay,
                    secs: delay.as_secs(),
                };
                self.note(&format!("reconnecting in {} s", delay.as_secs()));
            }
            NetEvent::NotSent(line) => self.note(&format!("not connected; not sent: {line}")),
        }
        Vec::new()
    }

    /// When [`App::on_deadline`] must run next, if anything is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        let countdown = match self.conn {
            Conn::Reconnecting { at, secs } if secs > 0 => Some(at - Duration::from_secs(secs - 1)),
            _ => None,
        };
        match (self.exit_deadline, countdown) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Time passed: the exit wait may be over, the reconnect countdown moves.
    pub fn on_deadline(&mut self, now: Instant) {
        if let Conn::Reconnecting { at, secs } = &mut self.conn {
            *secs = at.saturating_duration_since(now).as_secs_f64().ceil() as u64;
            self.dirty = true;
        }
        if self.exit_deadline.is_some_and(|deadline| now >= deadline) {
            self.note("the server did not close in time; closing anyway");
            self.quit = true;
        }
    }

    /// Splits received bytes into lines. A UTF-8 character cut by the read boundary waits for
    /// the next read; text without a newline is shown now and, in chat mode, grows when the
    /// rest of its line arrives. In raw mode every read ends its line, as the article's client
    /// prints each `recv()`.
    fn ingest(&mut self, bytes: &[u8]) {
        let mut data = std::mem::take(&mut self.utf8_tail);
        data.extend_from_slice(bytes);
        let keep = incomplete_utf8_tail(&data);
        self.utf8_tail = data.split_off(data.len() - keep);
        let text = String::from_utf8_lossy(&data);
        let time = now();
        for piece in text.split_inclusive('\n') {
            let complete = piece.ends_with('\n') || self.settings.raw;
            let piece = piece.strip_suffix('\n').unwrap_or(piece);
            let piece = piece.strip_suffix('\r').unwrap_or(piece);
            let clean = sanitize(piece);
            // Disjoint borrows: no copy of the nick per line.
            let Self {
                scrollback, nick, ..
            } = self;
            scrollback.append(&clean, complete, time.clone(), |line| {
                classify(line, nick.as_deref())
            });
            if complete {
                self.learn_from_last_line();
            }
        }
    }

    fn flush_open_line(&mut self) {
        self.utf8_tail.clear();
        self.scrollback.close_open_line();
    }

    /// Picks up our nick and the online count from the server's `* ` lines.
    fn learn_from_last_line(&mut self) {
        let Some(entry) = self.scrollback.entries().next_back() else {
            return;
        };
        let Some(event) = entry.text.strip_prefix("* ") else {
            return;
        };
        if let Some(rest) = event.split_once("you are ").map(|(_, rest)| rest) {
            self.nick = rest.split([';', ' ']).next().map(str::to_owned);
        }
        if let Some((old, new)) = event.split_once(" is now known as ")
            && self.nick.as_deref() == Some(old)
        {
            self.nick = Some(new.to_owned());
        }
        if let Some((before, _)) = event.rsplit_once(" online") {
            let count = before
                .rsplit([' ', '('])
                .next()
                .and_then(|n| n.parse().ok());
            self.online = count.or(self.online);
        }
    }
}

/// Classifies a server line: `<nick> text`, `* event`, `! error` or plain text.
pub fn classify(line: &str, own_nick: Option<&str>) -> Kind {
    if let Some(rest) = line.strip_prefix('<')
        && let Some(end) = rest.find("> ")
    {
        let nick = &rest[..end];
        if !nick.is_empty() && !nick.contains(' ') {
            if Some(nick) == own_nick {
                return Kind::Own;
            }
            return Kind::Message {
                nick_len: end + 2,
                color: nick_color(nick),
            };
        }
    }
    if line.starts_with("* ") {
        Kind::Event
    } else if line.starts_with("! ") {
        Kind::Error
    } else {
        Kind::Plain
    }
}

/// A stable palette index for a nick (FNV-1a of its lower-case form).
fn nick_color(nick: &str) -> u8 {
    let hash = nick.to_lowercase().bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    (hash % u32::from(ui::NICK_COLORS)) as u8
}

/// How many bytes at the end of `data` are the start of a UTF-8 character still missing its
/// continuation bytes.
fn incomplete_utf8_tail(data: &[u8]) -> usize {
    for back in 1..=data.len().min(3) {
        let byte = data[data.len() - back];
        if byte & 0xC0 != 0x80 {
            let needed = match byte {
                0xC2..=0xDF => 2,
                0xE0..=0xEF => 3,
                0xF0..=0xF4 => 4,
                _ => return 0,
            };
            return if needed > back { back } else { 0 };
        }
    }
    0
}

fn now() -> String {
    chrono::Local::now().format("%H:%M:%S").to_string()
}

/// Runs the client until it quits: reads the terminal and the network, applies events to
/// `app`, carries out the actions, and draws after each batch of changes.
pub async fn run<B: Backend>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    net: &mut NetHandle,
    shutdown: &CancellationToken,
    mut on_mouse: impl FnMut(bool),
) -> anyhow::Result<()>
where
    B::Error: Send + Sync + 'static,
{
    let mut terminal_events = EventStream::new();
    let mut net_done = false;
    let size = terminal.size()?;
    app.on_resize(size.width, size.height);
    while !app.should_quit() {
        if app.take_dirty() {
            terminal.draw(|frame| ui::render(app, frame))?;
        }
        let deadline = app.next_deadline();
        let actions = tokio::select! {
            () = shutdown.cancelled() => break,
            event = terminal_events.next() => match event {
                Some(event) => app.on_terminal(event?),
                None => break,
            },
            event = net.events.recv(), if !net_done => match event {
                Some(Stamped { at, event }) => app.on_net_at(event, at),
                // The task ends by itself only after a deliberate exit.
                None if app.session_over => {
                    net_done = true;
                    Vec::new()
                }
                None => anyhow::bail!("the network task stopped unexpectedly"),
            },
            Ok(()) = net.tcp_info.changed() => {
                if let Some(info) = *net.tcp_info.borrow_and_update() {
                    app.on_tcp_info(info);
                }
                Vec::new()
            },
            () = sleep_until_some(deadline) => {
                app.on_deadline(Instant::now());
                Vec::new()
            },
        };
        let mut actions = actions;
        let drain_until = Instant::now() + DRAIN_BUDGET;
        for _ in 0..DRAIN_BATCH {
            if Instant::now() >= drain_until {
                break;
            }
            match net.events.try_recv() {
                Ok(Stamped { at, event }) => actions.extend(app.on_net_at(event, at)),
                Err(_) => break,
            }
        }
        for action in actions {
            match action {
                Action::Send(message) => match net.outgoing.try_send(message) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => {
                        app.note("send queue full; that line was not sent");
                    }
                    Err(TrySendError::Closed(_)) => {
                        app.note("not connected; that line was not sent");
                    }
                },
                Action::CaptureMouse(on) => on_mouse(on),
                // Not `clear()`: it asks the terminal for the cursor position first and blocks
                // (then fails) on a terminal that does not answer. A full-screen resize to the
                // same size clears and forces a full redraw without asking anything.
                Action::Repaint => {
                    let size = terminal.size()?;
                    terminal.resize(Rect::new(0, 0, size.width, size.height))?;
                }
                Action::Inspect(open) => {
                    net.inspecting.send_replace(open);
                }
            }
        }
    }
    Ok(())
}

async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn app(raw: bool) -> App {
        App::new(Settings {
            target: "127.0.0.1:8888".into(),
            raw,
            nick: Some("alice".into()),
            scrollback: 100,
            role: Role::Joined,
        })
    }

    fn connected(raw: bool) -> App {
        let mut app = app(raw);
        let local = "127.0.0.1:50000".parse().unwrap();
        let peer = "127.0.0.1:8888".parse().unwrap();
        let actions = app.on_net(NetEvent::Connected {
            info: None,
            local,
            peer,
            handshake: Duration::from_micros(80),
        });
        if raw {
            assert!(actions.is_empty(), "raw mode sends no /nick");
        } else {
            assert_eq!(
                actions,
                [Action::Send(Outgoing::Line("/nick alice".into()))]
            );
        }
        app
    }

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn ctrl(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
    }

    fn texts(app: &App) -> Vec<String> {
        app.scrollback.entries().map(|e| e.text.clone()).collect()
    }

    fn type_line(app: &mut App, text: &str) -> Vec<Action> {
        app.on_paste(text);
        app.on_key(key(KeyCode::Enter))
    }

    #[test]
    fn enter_sends_the_line_and_clears_the_box() {
        let mut app = connected(false);
        assert_eq!(
            type_line(&mut app, "你好"),
            [Action::Send(Outgoing::Line("你好".into()))]
        );
        assert!(app.input.is_empty());
    }

    #[test]
    fn lines_are_split_classified_and_learned_from() {
        let mut app = connected(false);
        app.on_net(NetEvent::Received(Bytes::from(
            "* 连接成功! you are guest-1; 2 online; /help\n<gu",
        )));
        app.on_net(NetEvent::Received(Bytes::from(
            "est-1> hi\n<bob> yo\n! oops\n",
        )));
        assert_eq!(app.nick.as_deref(), Some("guest-1"));
        assert_eq!(app.online, Some(2));
        let kinds: Vec<Kind> = app
            .scrollback
            .entries()
            .skip(1)
            .map(|e| e.kind.clone())
            .collect();
        assert_eq!(kinds[0], Kind::Event);
        assert_eq!(kinds[1], Kind::Own);
        assert!(matches!(kinds[2], Kind::Message { nick_len: 5, .. }));
        assert_eq!(kinds[3], Kind::Error);
        app.on_net(NetEvent::Received(Bytes::from(
            "* guest-1 is now known as alice\n* bob left (exit); 1 online\n",
        )));
        assert_eq!(app.nick.as_deref(), Some("alice"));
        assert_eq!(app.online, Some(1));
    }

    #[test]
    fn a_character_split_between_reads_is_joined_and_escapes_are_removed() {
        let mut app = connected(false);
        let bytes = "<bob> 你好\x1b[2J\n".as_bytes();
        app.on_net(NetEvent::Received(Bytes::copy_from_slice(&bytes[..8])));
        app.on_net(NetEvent::Received(Bytes::copy_from_slice(&bytes[8..])));
        assert_eq!(texts(&app).last().unwrap(), "<bob> 你好");
    }

    #[test]
    fn raw_mode_shows_each_read_as_its_own_line_and_echoes_what_was_sent() {
        let mut app = connected(true);
        app.on_net(NetEvent::Received(Bytes::from("连接成功!")));
        assert_eq!(
            type_line(&mut app, "hello"),
            [Action::Send(Outgoing::Line("hello".into()))]
        );
        app.on_net(NetEvent::Received(Bytes::from("第1条信息:hello")));
        let tail: Vec<String> = texts(&app).into_iter().rev().take(3).rev().collect();
        assert_eq!(tail, ["连接成功!", "→ hello", "第1条信息:hello"]);
    }

    #[test]
    fn the_exit_key_sends_exit_and_quits_when_the_server_closes() {
        let mut app = connected(false);
        assert_eq!(
            app.on_key(ctrl('d')),
            [Action::Send(Outgoing::Exit("exit".into()))]
        );
        assert!(!app.should_quit());
        app.on_net(NetEvent::FinSent { info: None });
        app.on_net(NetEvent::Received(Bytes::from(
            "* bye, alice; closing the connection\n",
        )));
        app.on_net(NetEvent::Closed {
            how: Close::PeerFin,
            info: None,
        });
        assert!(app.should_quit());
        assert!(
            texts(&app)
                .iter()
                .any(|t| t.contains("closed by the server (FIN)"))
        );
    }

    #[test]
    fn with_the_inspector_open_the_closed_session_stays_until_a_key() {
        let mut app = connected(false);
        app.on_key(key(KeyCode::F(2)));
        app.on_key(ctrl('d'));
        app.on_net(NetEvent::Closed {
            how: Close::PeerFin,
            info: None,
        });
        assert!(!app.should_quit());
        assert_eq!(app.next_deadline(), None, "no timer left running");
        app.on_key(key(KeyCode::F(5)));
        assert!(
            !app.should_quit(),
            "the inspector's pages can still be turned"
        );
        app.on_key(key(KeyCode::Char('q')));
        assert!(app.should_quit());
    }

    #[test]
    fn the_exit_key_gives_up_waiting_after_two_seconds() {
        let mut app = connected(false);
        app.on_key(ctrl('d'));
        let deadline = app.next_deadline().unwrap();
        app.on_deadline(deadline - Duration::from_millis(1));
        assert!(!app.should_quit());
        app.on_deadline(deadline);
        assert!(app.should_quit());
    }

    #[test]
    fn ctrl_d_with_text_deletes_instead_of_exiting() {
        let mut app = connected(false);
        app.on_paste("ab");
        app.on_key(key(KeyCode::Home));
        assert!(app.on_key(ctrl('d')).is_empty());
        assert_eq!(app.input.value(), "b");
    }

    #[test]
    fn typed_exit_and_quit_start_the_exit() {
        let mut app = connected(false);
        assert_eq!(
            type_line(&mut app, "/quit bye all"),
            [Action::Send(Outgoing::Exit("/quit bye all".into()))]
        );
        let mut raw = connected(true);
        assert_eq!(
            type_line(&mut raw, "/quit"),
            [Action::Send(Outgoing::Exit("exit".into()))]
        );
    }

    #[test]
    fn a_multi_line_paste_waits_for_enter() {
        let mut app = connected(false);
        app.on_paste("one\r\ntwo\n");
        assert_eq!(
            app.overlay,
            Overlay::Paste(vec!["one".into(), "two".into()])
        );
        assert_eq!(
            app.on_key(key(KeyCode::Enter)),
            [
                Action::Send(Outgoing::Line("one".into())),
                Action::Send(Outgoing::Line("two".into()))
            ]
        );
        app.on_paste("three\nfour");
        app.on_key(key(KeyCode::Esc));
        assert_eq!(app.overlay, Overlay::None);
        assert!(app.input.is_empty());
    }

    #[test]
    fn lines_typed_while_disconnected_are_not_lost_silently() {
        let mut app = app(false);
        assert!(type_line(&mut app, "hello?").is_empty());
        assert!(texts(&app).last().unwrap().contains("not sent: hello?"));
    }

    #[test]
    fn reconnect_counts_down() {
        let mut app = connected(false);
        app.on_net(NetEvent::Closed {
            how: Close::Reset,
            info: None,
        });
        app.on_net(NetEvent::Reconnecting {
            delay: Duration::from_secs(2),
        });
        let Conn::Reconnecting { at, secs: 2 } = app.conn else {
            panic!("{:?}", app.conn)
        };
        let tick = app.next_deadline().unwrap();
        assert_eq!(tick, at - Duration::from_secs(1));
        app.on_deadline(tick);
        assert!(matches!(app.conn, Conn::Reconnecting { secs: 1, .. }));
    }

    #[test]
    fn scrolled_up_view_counts_new_lines_and_end_returns() {
        let mut app = connected(false);
        for n in 0..100 {
            app.on_net(NetEvent::Received(Bytes::from(format!("<bob> {n}\n"))));
        }
        app.on_key(key(KeyCode::PageUp));
        assert!(app.scrollback.offset() > 0);
        app.on_net(NetEvent::Received(Bytes::from("<bob> new\n")));
        assert_eq!(app.scrollback.unread(), 1);
        app.on_key(key(KeyCode::End));
        assert_eq!(app.scrollback.offset(), 0);
    }

    #[test]
    fn utf8_tail_detection() {
        assert_eq!(incomplete_utf8_tail("你".as_bytes()), 0);
        assert_eq!(incomplete_utf8_tail(&"你".as_bytes()[..2]), 2);
        assert_eq!(incomplete_utf8_tail(&"a你".as_bytes()[..2]), 1);
        assert_eq!(incomplete_utf8_tail(b"abc\xff"), 0);
    }
}
