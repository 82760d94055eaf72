//! The terminal session: raw mode, the alternate screen, bracketed paste and mouse capture
//! switched on, and always switched off again — on return, on error, and on a panic in any
//! thread (the panic hook restores before the message is printed). Also what is written to
//! the terminal besides frames: the bell and the window title; a title set is taken back on
//! restore.

use std::io::{self, IsTerminal, Stdout, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture, Event,
    EventStream,
};
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, SetTitle, disable_raw_mode, enable_raw_mode,
};
use crossterm::{cursor, execute};
use futures_util::Stream;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

/// xterm's "save the window title on the title stack" and "restore it from there" (XTWINOPS
/// 22 and 23); terminals without a title stack ignore both.
const PUSH_TITLE: &str = "\x1b[22;0t";
const POP_TITLE: &str = "\x1b[23;0t";

/// Whether the TUI owns the terminal ([`init`] ran, [`restore`] has not): only then do the bell
/// and the title reach it, so an event loop driven by a test backend writes nothing.
static OWNED: AtomicBool = AtomicBool::new(false);

/// Whether a title was set (and the terminal's own saved first), so restore takes it back.
static TITLE_SET: AtomicBool = AtomicBool::new(false);

/// The client was started without a terminal to draw on.
#[derive(Debug)]
pub struct NoTerminal;

impl std::fmt::Display for NoTerminal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the chat client needs a terminal (stdin and stdout must be a tty); use --serve to host without one")
    }
}

impl std::error::Error for NoTerminal {}

/// Owns the terminal while the TUI runs; dropping it restores the terminal.
#[derive(Debug)]
pub struct TerminalGuard {
    _private: (),
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

/// Fails with [`NoTerminal`] unless stdin and stdout are both terminals.
pub fn check() -> Result<(), NoTerminal> {
    if io::stdin().is_terminal() && io::stdout().is_terminal() {
        Ok(())
    } else {
        Err(NoTerminal)
    }
}

/// Switches the terminal to TUI mode and returns it with the guard that switches it back.
pub fn init() -> anyhow::Result<(Terminal<CrosstermBackend<Stdout>>, TerminalGuard)> {
    check()?;
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
    }));
    let guard = TerminalGuard { _private: () };
    // crossterm answers NO_COLOR by dropping every attribute, bold and reverse too; the UI
    // drops the colours itself (`ui::use_colour`) and keeps the rest.
    crossterm::style::force_color_output(true);
    enable_raw_mode()?;
    execute!(
        io::stdout(),
        EnterAlternateScreen,
        EnableBracketedPaste,
        EnableMouseCapture
    )?;
    let terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    OWNED.store(true, Ordering::SeqCst);
    Ok((terminal, guard))
}

/// Rings the terminal's bell, while the TUI owns the terminal. Written between frames (the
/// backend flushes each frame), so it never lands inside one.
pub fn bell() -> io::Result<()> {
    if !OWNED.load(Ordering::SeqCst) {
        return Ok(());
    }
    let mut out = io::stdout();
    out.write_all(b"\x07")?;
    out.flush()
}

/// Sets the window title, while the TUI owns the terminal; the terminal's own title is saved
/// first and put back by [`restore`].
pub fn set_title(title: &str) -> io::Result<()> {
    if !OWNED.load(Ordering::SeqCst) {
        return Ok(());
    }
    let mut out = io::stdout();
    if !TITLE_SET.swap(true, Ordering::SeqCst) {
        out.write_all(PUSH_TITLE.as_bytes())?;
    }
    execute!(out, SetTitle(title))
}

/// The terminal's events (keys, pastes, resizes, the mouse) for the loop to read. Debug builds
/// add a fault-injection hook for tests (see `fault_injection`).
pub fn events() -> impl Stream<Item = io::Result<Event>> + Unpin {
    fault_injection::wrap(EventStream::new())
}

/// Fault injection for tests, compiled into debug builds only: with the environment variable
/// `TCPCHAT_FAULT_ON_F12=panic` the key F12 panics the UI thread, and with
/// `TCPCHAT_FAULT_ON_F12=error` it arrives as a failed terminal read, which ends the client
/// with an error (exit 1). `tests/tui/` checks that the terminal is restored after each.
#[cfg(debug_assertions)]
mod fault_injection {
    use std::io;

    use crossterm::event::{Event, KeyCode, KeyEventKind};
    use futures_util::{Stream, StreamExt};

    pub(super) fn wrap(
        events: impl Stream<Item = io::Result<Event>> + Unpin,
    ) -> impl Stream<Item = io::Result<Event>> + Unpin {
        let fault = std::env::var("TCPCHAT_FAULT_ON_F12").ok();
        events.map(move |event| {
            let f12 = matches!(&event, Ok(Event::Key(key))
                if key.code == KeyCode::F(12) && key.kind == KeyEventKind::Press);
            match (f12, fault.as_deref()) {
                (true, Some("panic")) => panic!("fault injection: F12 with TCPCHAT_FAULT_ON_F12"),
                (true, Some("error")) => Err(io::Error::other(
                    "fault injection: F12 with TCPCHAT_FAULT_ON_F12",
                )),
                _ => event,
            }
        })
    }
}

/// Release builds have no fault injection.
#[cfg(not(debug_assertions))]
mod fault_injection {
    pub(super) fn wrap<S>(events: S) -> S {
        events
    }
}

/// Captures the mouse (wheel scrolling) or releases it to the terminal (text selection).
pub fn capture_mouse(on: bool) {
    let result = if on {
        execute!(io::stdout(), EnableMouseCapture)
    } else {
        execute!(io::stdout(), DisableMouseCapture)
    };
    // A failed mode switch leaves the previous mode; nothing else to do about it.
    drop(result);
}

/// Puts the terminal back as it was (the window title too, if one was set). Safe to call more
/// than once.
pub fn restore() {
    OWNED.store(false, Ordering::SeqCst);
    let mut out = io::stdout();
    if TITLE_SET.swap(false, Ordering::SeqCst) {
        // Cleared first, for terminals without a title stack: no unread count stays behind.
        let _ = execute!(out, SetTitle(""));
        let _ = out.write_all(POP_TITLE.as_bytes());
    }
    let _ = execute!(
        out,
        DisableMouseCapture,
        DisableBracketedPaste,
        LeaveAlternateScreen,
        cursor::Show
    );
    let _ = disable_raw_mode();
    let _ = out.flush();
}
