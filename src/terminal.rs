//! The terminal session: raw mode, the alternate screen, bracketed paste and mouse capture
//! switched on, and always switched off again — on return, on error, and on a panic in any
//! thread (the panic hook restores before the message is printed).

use std::io::{self, IsTerminal, Stdout, Write};

use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
};
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use crossterm::{cursor, execute};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

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
    enable_raw_mode()?;
    execute!(
        io::stdout(),
        EnterAlternateScreen,
        EnableBracketedPaste,
        EnableMouseCapture
    )?;
    let terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    Ok((terminal, guard))
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

/// Puts the terminal back as it was. Safe to call more than once.
pub fn restore() {
    let mut out = io::stdout();
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
