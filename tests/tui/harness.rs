//! The pseudo-terminal harness: the real `tcpchat` binary in a pty whose output is parsed by a
//! terminal emulator ([`vt100`]), so tests read the screen a user would see; a `--serve` server
//! child on an OS-chosen loopback port; and a plain-socket client (what `nc` would be).
//!
//! Every wait polls against a deadline and panics with what it saw; nothing sleeps a fixed time
//! to synchronise. Every child is killed when its handle drops, so a failing test leaves no
//! process behind.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use portable_pty::{Child, CommandBuilder, MasterPty, PtySize, native_pty_system};

/// The longest any single wait may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(20);

/// Key bytes as a terminal in raw mode sends them (xterm).
pub mod keys {
    /// Enter (carriage return in raw mode).
    pub const ENTER: &str = "\r";
    /// Ctrl-C.
    pub const CTRL_C: &str = "\x03";
    /// Ctrl-D.
    pub const CTRL_D: &str = "\x04";
    /// Ctrl-U.
    pub const CTRL_U: &str = "\x15";
    /// Left arrow.
    pub const LEFT: &str = "\x1b[D";
    /// Up arrow.
    pub const UP: &str = "\x1b[A";
    /// Home (xterm's normal cursor-key mode).
    pub const HOME: &str = "\x1b[H";
    /// Page Up.
    pub const PAGE_UP: &str = "\x1b[5~";
    /// End (xterm's normal cursor-key mode).
    pub const END: &str = "\x1b[F";
    /// Ctrl-End.
    pub const CTRL_END: &str = "\x1b[1;5F";
    /// F1.
    pub const F1: &str = "\x1bOP";
    /// Escape.
    pub const ESC: &str = "\x1b";
    /// Alt-H, the help's fallback for terminals that take F1.
    pub const ALT_H: &str = "\x1bh";
    /// Ctrl-L.
    pub const CTRL_L: &str = "\x0c";
    /// F2.
    pub const F2: &str = "\x1bOQ";
    /// Alt-I, the inspector's fallback for terminals that take F2.
    pub const ALT_I: &str = "\x1bi";
    /// F4.
    pub const F4: &str = "\x1bOS";
    /// F12 (bound to nothing; the client's fault-injection hook uses it).
    pub const F12: &str = "\x1b[24~";
    /// Mouse wheel up at column 40, row 5 (SGR encoding).
    pub const WHEEL_UP: &str = "\x1b[<64;40;5M";
    /// Mouse wheel down at column 40, row 5 (SGR encoding).
    pub const WHEEL_DOWN: &str = "\x1b[<65;40;5M";

    /// `text` as a bracketed paste.
    pub fn paste(text: &str) -> String {
        format!("\x1b[200~{text}\x1b[201~")
    }
}

/// The escape sequence that leaves the alternate screen.
pub const LEAVE_ALTERNATE_SCREEN: &str = "\x1b[?1049l";
/// The escape sequence that switches bracketed paste off.
pub const BRACKETED_PASTE_OFF: &str = "\x1b[?2004l";

/// The row the status bar is on: the second to last.
pub fn status_row(screen: &vt100::Screen) -> String {
    let (rows, cols) = screen.size();
    screen
        .rows(0, cols.get())
        .nth(usize::from(rows.get()) - 2)
        .unwrap_or_default()
}

/// The edit box's row, the last, without the blanks after its text (cells a shorter line
/// overwrote with spaces count as written).
pub fn input_row(screen: &vt100::Screen) -> String {
    let (_, cols) = screen.size();
    screen
        .rows(0, cols.get())
        .last()
        .unwrap_or_default()
        .trim_end()
        .to_owned()
}

/// The `tcpchat` binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_tcpchat")
}

/// A loopback port nobody listened on a moment ago (bound on port 0, then released).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// Sends `signal` to process `pid`.
pub fn signal(pid: u32, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(pid).expect("pid fits pid_t");
    // SAFETY: kill(2) only takes two integers; the pid is our own child's, not yet reaped.
    let result = unsafe { libc::kill(pid, signal) };
    assert_eq!(
        result,
        0,
        "kill({pid}, {signal}): {}",
        std::io::Error::last_os_error()
    );
}

/// The terminal's modes (termios flags) as the kernel keeps them for the pty: what raw mode
/// changes and what leaving it must put back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Modes {
    /// Input flags (`ICRNL`, `IXON`...).
    pub iflag: libc::tcflag_t,
    /// Output flags (`OPOST`...).
    pub oflag: libc::tcflag_t,
    /// Control flags (`CS8`...).
    pub cflag: libc::tcflag_t,
    /// Local flags (`ICANON`, `ECHO`, `ISIG`, `IEXTEN`).
    pub lflag: libc::tcflag_t,
}

impl Modes {
    /// Reads the modes of the pty whose master is `fd`. (On Linux the master's `TCGETS`
    /// answers for the slave, and keeps answering after the program on it has gone.)
    fn of(fd: std::os::unix::io::RawFd) -> Self {
        // SAFETY: an all-zero termios is a valid value of this plain C struct.
        let mut termios: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: tcgetattr writes one termios into the struct we own, which outlives the call;
        // `fd` is the pty master this harness holds open.
        let result = unsafe { libc::tcgetattr(fd, &raw mut termios) };
        assert_eq!(
            result,
            0,
            "tcgetattr on the pty: {}",
            std::io::Error::last_os_error()
        );
        Self {
            iflag: termios.c_iflag,
            oflag: termios.c_oflag,
            cflag: termios.c_cflag,
            lflag: termios.c_lflag,
        }
    }

    /// Line editing and echo on: the terminal a shell expects.
    pub fn cooked(&self) -> bool {
        self.lflag & libc::ICANON != 0 && self.lflag & libc::ECHO != 0
    }

    /// Line editing and echo off, as a TUI runs it.
    pub fn raw(&self) -> bool {
        self.lflag & (libc::ICANON | libc::ECHO) == 0
    }
}

/// The real TUI running in a pseudo-terminal.
pub struct Tui {
    parser: Arc<Mutex<vt100::Parser>>,
    raw: Arc<Mutex<Vec<u8>>>,
    eof: Arc<AtomicBool>,
    master: Box<dyn MasterPty + Send>,
    writer: Arc<Mutex<Box<dyn Write + Send>>>,
    child: Box<dyn Child + Send + Sync>,
    size: (u16, u16),
    /// The pty's modes before the program started.
    initial_modes: Modes,
    /// Its own data home (`XDG_DATA_HOME`): a room it hosts keeps history there, not in the
    /// user's store, and shares it with no other test.
    _data: tempfile::TempDir,
}

/// The cursor position query (DSR 6) a program writes; a terminal answers `ESC [ row ; col R`.
const CURSOR_QUERY: &[u8] = b"\x1b[6n";

/// Whether the emulated terminal answers cursor position queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queries {
    /// Answered at once, as xterm and every common terminal does.
    Answered,
    /// Never answered, as a terminal without DSR support (or a very slow link) behaves.
    Ignored,
}

impl Tui {
    /// Starts `tcpchat ARGS` in a `cols`×`rows` pty with `TERM=xterm-256color`, on a terminal
    /// that answers cursor position queries.
    pub fn spawn(args: &[&str], cols: u16, rows: u16) -> Self {
        Self::spawn_on(args, cols, rows, Queries::Answered)
    }

    /// [`Tui::spawn`] on a terminal that answers cursor position queries or not.
    pub fn spawn_on(args: &[&str], cols: u16, rows: u16, queries: Queries) -> Self {
        Self::spawn_full(args, &[], cols, rows, queries)
    }

    /// [`Tui::spawn`] with environment variables `env` set.
    pub fn spawn_with(args: &[&str], env: &[(&str, &str)], cols: u16, rows: u16) -> Self {
        Self::spawn_full(args, env, cols, rows, Queries::Answered)
    }

    fn spawn_full(
        args: &[&str],
        env: &[(&str, &str)],
        cols: u16,
        rows: u16,
        queries: Queries,
    ) -> Self {
        let pair = native_pty_system()
            .openpty(pty_size(cols, rows))
            .expect("openpty");
        let initial_modes = Modes::of(pair.master.as_raw_fd().expect("the pty's descriptor"));
        let data = tempfile::tempdir().expect("a temporary data home");
        let mut command = CommandBuilder::new(binary());
        command.args(args);
        // The screens the tests read are English whatever the locale of the machine running
        // them (LC_ALL, LC_MESSAGES, LANG, in that order, choose the language); a test that
        // wants another sets it in `env`.
        command.env_remove("LC_ALL");
        command.env_remove("LC_MESSAGES");
        command.env("LANG", "C.UTF-8");
        for (key, value) in env {
            command.env(key, value);
        }
        command.env("XDG_DATA_HOME", data.path());
        command.env("TERM", "xterm-256color");
        command.env_remove("RUST_LOG");
        // The nick defaults to the login name; tests name theirs or expect guest-N.
        command.env_remove("USER");
        command.env_remove("USERNAME");
        // No config file from the machine running the tests.
        command.env("XDG_CONFIG_HOME", data.path());
        command.cwd(env!("CARGO_MANIFEST_DIR"));
        let child = pair
            .slave
            .spawn_command(command)
            .expect("spawn tcpchat in a pty");
        // Only the child may hold the slave, so the reader sees EOF when the child is gone.
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().expect("pty reader");
        let writer = Arc::new(Mutex::new(pair.master.take_writer().expect("pty writer")));
        let parser = Arc::new(Mutex::new(vt100::Parser::new(
            nonzero(rows),
            nonzero(cols),
            0,
        )));
        let raw = Arc::new(Mutex::new(Vec::new()));
        let eof = Arc::new(AtomicBool::new(false));
        {
            let (parser, raw, eof) = (parser.clone(), raw.clone(), eof.clone());
            let answers = writer.clone();
            thread::spawn(move || {
                let mut buf = [0u8; 8192];
                loop {
                    match reader.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            let chunk = &buf[..n];
                            raw.lock().unwrap().extend_from_slice(chunk);
                            // Each query is answered with the cursor where the output before
                            // it left it. (A query cut between two reads goes unanswered; the
                            // programs under test write it in one piece.)
                            let mut rest = chunk;
                            while let Some(at) = find(rest, CURSOR_QUERY) {
                                let (before, after) = rest.split_at(at + CURSOR_QUERY.len());
                                let (row, col) = {
                                    let mut parser = parser.lock().unwrap();
                                    parser.process(before);
                                    parser.screen().cursor_position()
                                };
                                if queries == Queries::Answered {
                                    let answer = format!("\x1b[{};{}R", row + 1, col + 1);
                                    let mut writer = answers.lock().unwrap();
                                    let _ = writer.write_all(answer.as_bytes());
                                    let _ = writer.flush();
                                }
                                rest = after;
                            }
                            parser.lock().unwrap().process(rest);
                        }
                        Err(error) if error.kind() == ErrorKind::Interrupted => {}
                        // EIO: the slave side is closed for good.
                        Err(_) => break,
                    }
                }
                eof.store(true, Ordering::SeqCst);
            });
        }
        Self {
            parser,
            raw,
            eof,
            master: pair.master,
            writer,
            child,
            size: (cols, rows),
            initial_modes,
            _data: data,
        }
    }

    /// Writes raw bytes to the terminal, as keys typed or pasted.
    pub fn send(&mut self, bytes: &str) {
        let mut writer = self.writer.lock().unwrap();
        writer
            .write_all(bytes.as_bytes())
            .expect("write to the pty");
        writer.flush().expect("flush the pty");
    }

    /// Feeds `bytes` to the emulator only, as if another program had written to the terminal
    /// behind the TUI's back.
    pub fn garble(&self, bytes: &str) {
        self.parser.lock().unwrap().process(bytes.as_bytes());
    }

    /// The screen's text, one line per row.
    pub fn text(&self) -> String {
        self.parser.lock().unwrap().screen().contents()
    }

    /// Waits until `done` holds for the screen, or fails the test showing the screen.
    pub fn wait_for(&self, done: impl Fn(&vt100::Screen) -> bool, what: &str) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            // Read first: once the output has ended, the screen is final.
            let ended = self.eof.load(Ordering::SeqCst);
            if done(self.parser.lock().unwrap().screen()) {
                return;
            }
            if ended {
                panic!(
                    "tcpchat ended (its terminal closed) before {what}\n{}",
                    self.dump()
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {DEADLINE:?} waiting for {what}\n{}",
                    self.dump()
                );
            }
            thread::sleep(POLL);
        }
    }

    /// Waits until `text` is on the screen.
    pub fn wait_for_text(&self, text: &str) {
        self.wait_for(
            |screen| screen.contents().contains(text),
            &format!("{text:?} on the screen"),
        );
    }

    /// Waits until `text` is no longer on the screen.
    pub fn wait_for_no_text(&self, text: &str) {
        self.wait_for(
            |screen| !screen.contents().contains(text),
            &format!("{text:?} to leave the screen"),
        );
    }

    /// Waits until the cursor is at `(row, column)`.
    pub fn wait_for_cursor(&self, at: (u16, u16)) {
        self.wait_for(
            |screen| screen.cursor_position() == at,
            &format!("the cursor at {at:?}"),
        );
    }

    /// Resizes the terminal (the child gets SIGWINCH) and the emulator with it.
    pub fn resize(&mut self, cols: u16, rows: u16) {
        self.parser
            .lock()
            .unwrap()
            .set_size(nonzero(rows), nonzero(cols));
        self.size = (cols, rows);
        self.master
            .resize(pty_size(cols, rows))
            .expect("resize the pty");
    }

    /// The pty's modes now.
    pub fn modes(&self) -> Modes {
        Modes::of(self.master.as_raw_fd().expect("the pty's descriptor"))
    }

    /// The pty's modes before the program started.
    pub fn initial_modes(&self) -> Modes {
        self.initial_modes
    }

    /// Whether the program is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.process_id().expect("child pid")
    }

    /// Waits for the program to exit within `within` and returns its exit code; a death by
    /// signal or a timeout fails the test (the child is killed then).
    pub fn wait_exit(&mut self, within: Duration) -> u32 {
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!(
                    "tcpchat did not exit within {within:?}; killed it\n{}",
                    self.dump()
                );
            }
            thread::sleep(POLL);
        };
        // Let the reader collect what was written just before the exit.
        let drained = Instant::now() + Duration::from_secs(2);
        while !self.eof.load(Ordering::SeqCst) && Instant::now() < drained {
            thread::sleep(POLL);
        }
        assert!(
            status.signal().is_none(),
            "tcpchat died of a signal: {status}\n{}",
            self.dump()
        );
        status.exit_code()
    }

    /// Everything the program wrote to the terminal so far, as bytes.
    pub fn raw_output(&self) -> Vec<u8> {
        self.raw.lock().unwrap().clone()
    }

    /// Waits until the program has written `needle` to the terminal (escape sequences
    /// included), or fails the test.
    pub fn wait_for_output(&self, needle: &str) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let found = { find(&self.raw.lock().unwrap(), needle.as_bytes()).is_some() };
            if found {
                return;
            }
            if Instant::now() >= deadline {
                let raw = self.raw_output();
                let tail = &raw[raw.len().saturating_sub(400)..];
                panic!(
                    "tcpchat never wrote {needle:?}; the output ended with {:?}",
                    String::from_utf8_lossy(tail)
                );
            }
            thread::sleep(POLL);
        }
    }

    fn dump(&self) -> String {
        let parser = self.parser.lock().unwrap();
        let screen = parser.screen();
        let rows: Vec<String> = screen
            .rows(0, self.size.0)
            .enumerate()
            .map(|(i, row)| format!("{i:>3}|{}", row.trim_end()))
            .collect();
        format!(
            "--- screen {}x{}, cursor {:?} ---\n{}\n---",
            self.size.0,
            self.size.1,
            screen.cursor_position(),
            rows.join("\n")
        )
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn pty_size(cols: u16, rows: u16) -> PtySize {
    PtySize {
        rows,
        cols,
        pixel_width: 0,
        pixel_height: 0,
    }
}

fn nonzero(n: u16) -> std::num::NonZeroU16 {
    std::num::NonZeroU16::new(n).expect("a terminal is at least 1x1")
}

/// Accepts one connection on `listener` within [`DEADLINE`]: a hand-made server for tests that
/// need to send what no real server would.
pub fn accept_one(listener: &TcpListener) -> TcpStream {
    listener.set_nonblocking(true).expect("set_nonblocking");
    let deadline = Instant::now() + DEADLINE;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).expect("set_nonblocking");
                return stream;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                thread::sleep(POLL);
            }
            Err(e) => panic!("no connection to the hand-made server: {e}"),
        }
    }
}

/// A `tcpchat --serve` child process.
pub struct Server {
    child: std::process::Child,
    /// `127.0.0.1:PORT` as the server printed it.
    pub addr: String,
    log: Arc<Mutex<Vec<String>>>,
    /// Its own data home (`XDG_DATA_HOME`), so its history is its own.
    _data: tempfile::TempDir,
}

impl Server {
    /// A server in `mode` (`chat`, `echo`, `ack`) on a port the OS picks.
    pub fn start(mode: &str) -> Self {
        Self::try_start_at("127.0.0.1:0", mode).unwrap_or_else(|error| panic!("{error}"))
    }

    /// A server in `mode` listening on `listen`; `Err` with its log if it did not come up.
    pub fn try_start_at(listen: &str, mode: &str) -> Result<Self, String> {
        Self::try_start_with(listen, &["--mode", mode])
    }

    /// A server listening on `listen`, with more flags; `Err` with its log if it did not
    /// come up.
    pub fn try_start_with(listen: &str, flags: &[&str]) -> Result<Self, String> {
        let data = tempfile::tempdir().map_err(|e| format!("no temporary data home: {e}"))?;
        let mut child = Command::new(binary())
            .args(["--serve", "--listen", listen])
            .args(flags)
            .env("XDG_DATA_HOME", data.path())
            .env("XDG_CONFIG_HOME", data.path())
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|error| format!("cannot start the server: {error}"))?;
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        {
            let log = log.clone();
            // Keeps draining the log so the server never blocks on a full pipe.
            thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    let _ = tx.send(line.clone());
                    log.lock().unwrap().push(line);
                }
            });
        }
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some((_, rest)) = line.split_once("listening on ") {
                        let addr = rest.split_whitespace().next().unwrap_or_default();
                        return Ok(Self {
                            child,
                            addr: addr.to_owned(),
                            log,
                            _data: data,
                        });
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let log = log.lock().unwrap().join("\n");
                    return Err(format!(
                        "server on {listen} never said \"listening on\"; its log:\n{log}"
                    ));
                }
            }
        }
    }

    /// Sends SIGTERM (the orderly shutdown) and waits for the exit code.
    pub fn terminate(&mut self) -> i32 {
        signal(self.child.id(), libc::SIGTERM);
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "server did not stop after SIGTERM; log:\n{}",
                self.log.lock().unwrap().join("\n")
            );
            thread::sleep(POLL);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain socket client, as `nc` would be: writes text, reads lines with deadlines.
pub struct Peer {
    stream: TcpStream,
    pending: Vec<u8>,
    /// Every complete line read so far (without `\n`), for failure messages.
    seen: Vec<String>,
}

impl Peer {
    /// Connects to `addr`.
    pub fn connect(addr: &str) -> Self {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("set_read_timeout");
        Self {
            stream,
            pending: Vec::new(),
            seen: Vec::new(),
        }
    }

    /// Writes `text` as it is.
    pub fn send(&mut self, text: &str) {
        self.stream
            .write_all(text.as_bytes())
            .expect("write to the server");
    }

    /// The next line (without `\n`), or `None` if none came by `until` or the server closed.
    pub fn read_line(&mut self, until: Instant) -> Option<String> {
        loop {
            if let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line[..end]).into_owned();
                self.seen.push(line.clone());
                return Some(line);
            }
            if Instant::now() >= until {
                return None;
            }
            let mut buf = [0u8; 4096];
            match self.stream.read(&mut buf) {
                Ok(0) => return None,
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
    }

    /// Reads lines until one satisfies `want`, and returns it; fails the test after
    /// [`DEADLINE`] showing every line seen.
    pub fn expect_line(&mut self, want: impl Fn(&str) -> bool, what: &str) -> String {
        let until = Instant::now() + DEADLINE;
        while let Some(line) = self.read_line(until) {
            if want(&line) {
                return line;
            }
        }
        panic!(
            "the plain client never received {what}; it saw:\n{}",
            self.seen.join("\n")
        );
    }

    /// Every line that arrives within `window`.
    pub fn lines_within(&mut self, window: Duration) -> Vec<String> {
        let until = Instant::now() + window;
        let mut lines = Vec::new();
        while let Some(line) = self.read_line(until) {
            lines.push(line);
        }
        lines
    }
}
