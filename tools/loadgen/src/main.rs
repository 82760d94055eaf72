//! `tcpchat-load`: the load generator behind `tools/loadgen/bench/run.sh`, for `tcpchat --serve`
//! and the peers it is compared with (`ncat --chat`, the Python threaded servers under
//! `tools/loadgen/peers/`, and `tools/loadgen/examples/chat_baseline.rs`).
//!
//! Three modes, each bounded by `--timeout`:
//!
//! - `idle`: open N connections, read each greeting, hold them; report how many were held and,
//!   with `--server-pid`, the server's resident memory per connection (`/proc/PID/status`).
//! - `fanout`: N clients join a room, K of them send M lines each (as fast as possible, or paced
//!   with `--rate`); every client parses every line it gets and counts deliveries, lost,
//!   duplicated and mangled lines, and the latency from the send timestamp inside each line.
//!   With `--server-pid`, the server's CPU time (`/proc/PID/stat`) per delivery.
//! - `echo`: C connections each send a short message and wait for the whole reply, repeatedly;
//!   round trips per second against the article's echo server (`tcpchat --serve --mode echo`).
//!
//! Each data line is `@L SENDER SEQ SEND_NS xxx…x HASH`: exactly `--size` bytes before the
//! newline, where `SEND_NS` is nanoseconds since an `Instant` taken before connecting (one
//! process, so one clock) and `HASH` is a 64-bit checksum of everything before it, so a line
//! that was cut, merged or altered is caught as mangled. The server's prefix (`<guest-N> `, ncat's
//! `<userN> `, …) is checked per protocol, see [`Proto`].
//!
//! The result is one line of `key=value` pairs on stdout (what `bench/run.sh` parses); progress
//! and problems go to stderr. Exit code 0: complete (every expected line arrived intact);
//! 3: incomplete (timeout, lost, duplicated or mangled lines, or connections not held);
//! 1: failure; 2: bad arguments. It only ever connects to 127.0.0.1 or ::1.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::ControlFlow;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use tcpchat::protocol::{Event, ServerLine};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;

/// Load generator for tcpchat's server benchmarks; loopback targets only.
#[derive(Debug, Parser)]
#[command(name = "tcpchat-load", version, about)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Open N connections, read each greeting, hold them; report how many are held.
    Idle(IdleArgs),
    /// N clients in a room, K of them send M lines; count deliveries, losses, latency.
    Fanout(FanoutArgs),
    /// Request/response round trips per second against the article's echo server.
    Echo(EchoArgs),
}

#[derive(Debug, Args)]
struct Common {
    /// Server address: 127.0.0.1:PORT or [::1]:PORT, nothing else.
    #[arg(long, value_name = "ADDR", value_parser = loopback_target)]
    target: SocketAddr,
    /// Give up after this many seconds in all, report what was measured, and exit 3.
    #[arg(long, value_name = "SECS", default_value_t = 60.0, value_parser = positive)]
    timeout: f64,
    /// The server's process id, to read its memory and CPU time from /proc.
    #[arg(long, value_name = "PID")]
    server_pid: Option<u32>,
    /// Connections being opened at once.
    #[arg(long, value_name = "N", default_value_t = 128)]
    connect_concurrency: usize,
    /// Runtime worker threads (default: one per CPU).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
}

#[derive(Debug, Args)]
struct IdleArgs {
    /// Connections to open.
    #[arg(long, value_name = "N")]
    clients: usize,
    /// Seconds to hold them once all are open.
    #[arg(long, value_name = "SECS", default_value_t = 3.0)]
    hold: f64,
    /// The server's protocol (how its greeting looks).
    #[arg(long, value_enum, default_value_t = Proto::Chat)]
    proto: Proto,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Args)]
struct FanoutArgs {
    /// Clients in the room; all of them receive.
    #[arg(long, value_name = "N")]
    clients: usize,
    /// How many of the clients also send.
    #[arg(long, value_name = "K")]
    senders: usize,
    /// Lines each sender sends.
    #[arg(long, value_name = "M")]
    lines: u32,
    /// Bytes per line before its newline (at least 64).
    #[arg(long, value_name = "BYTES", default_value_t = 64, value_parser = clap::value_parser!(u16).range(64..=8000))]
    size: u16,
    /// Lines per second per sender (default: as fast as the server takes them).
    #[arg(long, value_name = "LINES_PER_SEC", value_parser = positive)]
    rate: Option<f64>,
    /// Once every sender is done, stop after this many seconds without a new delivery.
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    settle: f64,
    /// The server's protocol: its greeting, line prefix and events.
    #[arg(long, value_enum, default_value_t = Proto::Chat)]
    proto: Proto,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Args)]
struct EchoArgs {
    /// Connections, each with one request outstanding at a time.
    #[arg(long, value_name = "C")]
    conns: usize,
    /// Seconds to run.
    #[arg(long, value_name = "SECS", default_value_t = 3.0, value_parser = positive)]
    seconds: f64,
    /// The echo server spoken to (both speak the article's `server.py` protocol).
    #[arg(long, value_enum, default_value_t = EchoProto::TcpchatEcho)]
    proto: EchoProto,
    #[command(flatten)]
    common: Common,
}

/// A chat server's conventions, as the load generator needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Proto {
    /// `tcpchat --serve`: greeting `*** 连接成功! …`, lines `<guest-N> text` to everyone (the
    /// sender included), events `*** …`, errors `! …`; read with tcpchat's own
    /// [`ServerLine::parse`], so the load generator and the server cannot disagree.
    Chat,
    /// `ncat --chat`: `<announce> already connected: …` on connect; each *read* (not line)
    /// prefixed `<userFD> `; nothing is sent back to the sender.
    Ncat,
    /// `peers/chat_server.py`: `* welcome, you are user-N`, lines `<user-N> text` to
    /// everyone, the sender included.
    Python,
    /// `examples/chat_baseline.rs` (tokio's chat example's design): a username prompt, then
    /// `* welcome …`; lines `NAME: text` to everyone but the sender; `NAME has joined the chat`.
    TokioChat,
}

/// An echo server speaking the article's `server.py` protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum EchoProto {
    /// `tcpchat --serve --mode echo`.
    TcpchatEcho,
    /// `peers/echo_server.py`.
    PythonEcho,
}

/// The echo servers' greeting, sent on accept without a newline.
const ECHO_GREETING: &str = "连接成功!";

/// The start of every data line's body.
const MARKER: &[u8] = b"@L ";

/// Bytes after the padding: a space and 16 hex digits of hash.
const HASH_TAIL: usize = 17;

/// Longest line kept whole while looking for its newline; longer is counted mangled.
const MAX_LINE_BUFFER: usize = 1 << 20;

/// Longest wait for one connection to open and greet.
const CONNECT_DEADLINE: Duration = Duration::from_secs(10);

/// Longest wait for one echo reply.
const REPLY_DEADLINE: Duration = Duration::from_secs(5);

/// Exit code of a run that ended without every expected result.
const INCOMPLETE: u8 = 3;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() { 2 } else { 0 });
        }
    };
    match run(cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(INCOMPLETE),
        Err(error) => {
            eprintln!("tcpchat-load: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the chosen mode; `Ok(false)` when it ended incomplete.
fn run(cli: Cli) -> Result<bool> {
    let common = match &cli.mode {
        Mode::Idle(args) => &args.common,
        Mode::Fanout(args) => &args.common,
        Mode::Echo(args) => &args.common,
    };
    let nofile = sys::raise_nofile_limit().context("cannot raise the open-file limit")?;
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = common.threads {
        builder.worker_threads(threads.max(1));
    }
    let runtime = builder
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = runtime.block_on(async {
        match cli.mode {
            Mode::Idle(args) => idle(args, nofile).await,
            Mode::Fanout(args) => fanout(args).await,
            Mode::Echo(args) => echo(args).await,
        }
    })?;
    let complete = report.complete;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", report.line()).context("cannot write the report")?;
    // Tasks still blocked on sockets must not delay the exit.
    runtime.shutdown_timeout(Duration::from_millis(100));
    Ok(complete)
}

/// Accepts only 127.0.0.1:PORT and [::1]:PORT.
fn loopback_target(text: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = text
        .parse()
        .map_err(|_| format!("expected 127.0.0.1:PORT or [::1]:PORT, got {text:?}"))?;
    match addr.ip() {
        IpAddr::V4(ip) if ip == Ipv4Addr::LOCALHOST => Ok(addr),
        IpAddr::V6(ip) if ip == Ipv6Addr::LOCALHOST => Ok(addr),
        other => Err(format!(
            "refusing to target {other}: only 127.0.0.1 and ::1 are allowed"
        )),
    }
}

/// A finite number above zero (seconds, rates).
fn positive(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() && value > 0.0 => Ok(value),
        _ => Err(format!("expected a number above 0, got {text:?}")),
    }
}

/// The result line: `MODE key=value ...`, plus whether the run was complete.
struct Report {
    mode: &'static str,
    fields: Vec<(&'static str, String)>,
    complete: bool,
}

impl Report {
    fn new(mode: &'static str) -> Self {
        Self {
            mode,
            fields: Vec::new(),
            complete: true,
        }
    }

    fn add(&mut self, key: &'static str, value: impl std::fmt::Display) {
        self.fields.push((key, value.to_string()));
    }

    fn line(&self) -> String {
        let mut line = self.mode.to_owned();
        for (key, value) in &self.fields {
            line.push(' ');
            line.push_str(key);
            line.push('=');
            line.push_str(value);
        }
        line
    }
}

/// The name clap gives a value on the command line.
fn value_name(value: impl ValueEnum) -> String {
    value
        .to_possible_value()
        .map_or_else(String::new, |v| v.get_name().to_owned())
}

fn secs(value: f64) -> Duration {
    Duration::from_secs_f64(value.max(0.0))
}

fn ms(nanos: u64) -> String {
    format!("{:.3}", nanos as f64 / 1e6)
}

// ---------------------------------------------------------------------------------------------
// Lines

/// A read buffer that hands out complete lines and keeps the partial one for the next read.
struct LineBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl LineBuf {
    fn new(capacity: usize) -> Self {
        Self {
            buf: vec![0; capacity],
            start: 0,
            end: 0,
        }
    }

    /// Reads once more; returns the bytes read (0 at EOF). A partial line longer than
    /// [`MAX_LINE_BUFFER`] is handed to `too_long` and dropped.
    async fn fill<R: AsyncRead + Unpin>(
        &mut self,
        reader: &mut R,
        too_long: impl FnOnce(),
    ) -> std::io::Result<usize> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            if self.buf.len() >= MAX_LINE_BUFFER {
                too_long();
                self.end = 0;
            } else {
                self.buf.resize(self.buf.len() * 2, 0);
            }
        }
        let read = reader.read(&mut self.buf[self.end..]).await?;
        self.end += read;
        Ok(read)
    }

    /// Hands each complete line (without its `\n`) to `each` until it breaks.
    fn lines(&mut self, mut each: impl FnMut(&[u8]) -> ControlFlow<()>) -> ControlFlow<()> {
        while let Some(at) = find_byte(b'\n', &self.buf[self.start..self.end]) {
            let line = &self.buf[self.start..self.start + at];
            self.start += at + 1;
            each(line)?;
        }
        ControlFlow::Continue(())
    }
}

/// The position of the first `byte` in `bytes`, eight bytes at a time: the receivers look at
/// every byte the server sends, so this is the load generator's hottest loop.
fn find_byte(byte: u8, bytes: &[u8]) -> Option<usize> {
    const LOW: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let pattern = LOW * u64::from(byte);
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in chunks.by_ref() {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word) ^ pattern;
        let found = x.wrapping_sub(LOW) & !x & HIGH;
        if found != 0 {
            return Some(offset + (found.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == byte)
        .map(|at| offset + at)
}

/// A 64-bit checksum of `bytes`, a word at a time; any cut, merge or changed byte alters it.
fn checksum(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut chunks = bytes.chunks_exact(8);
    let mut hash = bytes.len() as u64;
    for chunk in chunks.by_ref() {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        hash = (hash ^ u64::from_le_bytes(word))
            .wrapping_mul(K)
            .rotate_left(29);
    }
    for &b in chunks.remainder() {
        hash = (hash ^ u64::from(b)).wrapping_mul(K).rotate_left(29);
    }
    hash ^ (hash >> 32)
}

/// Appends one data line of exactly `size` bytes plus `\n` to `out`.
fn data_line(sender: usize, seq: u32, sent_ns: u64, size: usize, out: &mut Vec<u8>) {
    let start = out.len();
    // Writing to a Vec cannot fail.
    let _ = write!(out, "@L {sender} {seq} {sent_ns} ");
    let used = out.len() - start;
    out.resize(start + size.saturating_sub(HASH_TAIL).max(used + 1), b'x');
    let hash = checksum(&out[start..]);
    let _ = writeln!(out, " {hash:016x}");
}

/// A parsed data line.
#[derive(Debug, PartialEq, Eq)]
struct Data {
    sender: usize,
    seq: u32,
    sent_ns: u64,
}

/// What one received line is.
#[derive(Debug, PartialEq, Eq)]
enum Received {
    Data(Data),
    /// A server event (join, leave, announce…): not counted.
    Event,
    /// A server notice to this client (`! …` in tcpchat): counted apart.
    Notice,
    /// Cut, merged, altered or unexpected.
    Mangled,
}

/// Parses a data line body (from the marker on) of `size` bytes.
fn parse_body(body: &[u8], size: usize) -> Option<Data> {
    if body.len() != size {
        return None;
    }
    let (signed, tail) = body.split_at(size - HASH_TAIL);
    let (&space, hex) = tail.split_first()?;
    if space != b' ' || parse_hex(hex)? != checksum(signed) {
        return None;
    }
    let mut fields = signed.strip_prefix(MARKER)?.split(|&b| b == b' ');
    Some(Data {
        sender: usize::try_from(parse_decimal(fields.next()?)?).ok()?,
        seq: u32::try_from(parse_decimal(fields.next()?)?).ok()?,
        sent_ns: parse_decimal(fields.next()?)?,
    })
}

fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0'))
    })
}

fn parse_hex(digits: &[u8]) -> Option<u64> {
    if digits.len() != 16 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        let value = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => return None,
        };
        Some(n << 4 | u64::from(value))
    })
}

/// Where the data marker starts in `line`, if anywhere.
fn find_marker(line: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = find_byte(MARKER[0], &line[from..]) {
        let at = from + at;
        if line[at..].starts_with(MARKER) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// A tcpchat chat line, if `line` is one.
fn chat_line(line: &[u8]) -> Option<ServerLine<'_>> {
    std::str::from_utf8(line).ok().and_then(ServerLine::parse)
}

/// `<name> ` with no other angle brackets inside.
fn angle_prefix(prefix: &[u8]) -> bool {
    prefix.len() > 3
        && prefix[0] == b'<'
        && prefix.ends_with(b"> ")
        && !prefix[1..prefix.len() - 2]
            .iter()
            .any(|&b| b == b'<' || b == b'>')
}

impl Proto {
    /// Whether the server sends a line back to its own sender.
    fn echoes_sender(self) -> bool {
        matches!(self, Self::Chat | Self::Python)
    }

    fn classify(self, line: &[u8], size: usize) -> Received {
        if let Some(at) = find_marker(line) {
            let (prefix, body) = line.split_at(at);
            let prefix_ok = match self {
                // The whole line is a message whose text starts at the marker.
                Self::Chat => matches!(
                    chat_line(line),
                    Some(ServerLine::Message { text, .. }) if text.len() == body.len()
                ),
                Self::Python => angle_prefix(prefix),
                Self::Ncat => prefix.is_empty() || angle_prefix(prefix),
                Self::TokioChat => {
                    prefix.len() > 2
                        && prefix.ends_with(b": ")
                        && !prefix[..prefix.len() - 2].contains(&b' ')
                }
            };
            return match parse_body(body, size) {
                Some(data) if prefix_ok => Received::Data(data),
                _ => Received::Mangled,
            };
        }
        let event = match self {
            Self::Chat => {
                return match chat_line(line) {
                    Some(ServerLine::Event(_)) => Received::Event,
                    Some(ServerLine::Error(_)) => Received::Notice,
                    // A message without a data line, or someone's `/me`: nobody in a benchmark
                    // says either.
                    Some(ServerLine::Message { .. } | ServerLine::Action { .. }) | None => {
                        Received::Mangled
                    }
                };
            }
            Self::Python => line.starts_with(b"* "),
            Self::Ncat => line.starts_with(b"<announce> "),
            Self::TokioChat => {
                line.starts_with(b"* ")
                    || line.ends_with(b" has joined the chat")
                    || line.ends_with(b" has left the chat")
            }
        };
        if event {
            Received::Event
        } else {
            Received::Mangled
        }
    }

    /// Whether `line` tells a new client it is in the room (for idle: that it was served).
    fn is_ready(self, line: &[u8], joining: bool) -> bool {
        match self {
            Self::Chat => matches!(
                chat_line(line),
                Some(ServerLine::Event(Event::Greeting { .. }))
            ),
            Self::Python => line.starts_with(b"* welcome"),
            Self::Ncat => line.starts_with(b"<announce> already connected:"),
            Self::TokioChat if joining => line.starts_with(b"* welcome"),
            Self::TokioChat => line.starts_with(b"Please enter your username"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Connections

/// An open connection past its greeting, with what was read after the greeting.
struct Conn {
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
    buffered: LineBuf,
}

/// Why a connection failed to open and greet, for the report.
fn failure_kind(error: &anyhow::Error) -> &'static str {
    if let Some(io) = error.downcast_ref::<std::io::Error>() {
        return match io.kind() {
            std::io::ErrorKind::ConnectionRefused => "refused",
            std::io::ErrorKind::ConnectionReset => "reset",
            std::io::ErrorKind::TimedOut => "timeout",
            _ if io.raw_os_error() == Some(libc::EMFILE) => "out_of_fds",
            _ => "io",
        };
    }
    if error.is::<tokio::time::error::Elapsed>() {
        return "timeout";
    }
    if error.is::<ClosedBeforeGreeting>() {
        return "closed";
    }
    "other"
}

#[derive(Debug)]
struct ClosedBeforeGreeting;

impl std::fmt::Display for ClosedBeforeGreeting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the server closed the connection before its greeting")
    }
}

impl std::error::Error for ClosedBeforeGreeting {}

/// Connects and reads up to the line saying this client is in (joining the room, for the
/// protocols where that takes a step).
async fn open(
    target: SocketAddr,
    proto: Proto,
    index: usize,
    joining: bool,
    buffer: usize,
) -> Result<Conn> {
    let stream = TcpStream::connect(target).await?;
    stream.set_nodelay(true)?;
    let (mut reader, mut writer) = stream.into_split();
    let mut buffered = LineBuf::new(buffer);
    let mut ready = false;
    // tokio-chat asks for a username first; joining means answering it.
    let mut must_name = proto == Proto::TokioChat && joining;
    let mut prompted = false;
    loop {
        let _ = buffered.lines(|line| {
            if must_name {
                prompted = line.starts_with(b"Please enter your username");
                return if prompted {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                };
            }
            if proto.is_ready(line, joining) {
                ready = true;
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        });
        if ready {
            return Ok(Conn {
                reader,
                writer,
                buffered,
            });
        }
        if prompted {
            (must_name, prompted) = (false, false);
            writer.write_all(format!("u{index}\n").as_bytes()).await?;
            continue;
        }
        if buffered.fill(&mut reader, || {}).await? == 0 {
            return Err(ClosedBeforeGreeting.into());
        }
    }
}

/// Opens `count` connections, `concurrency` at a time, each bounded by [`CONNECT_DEADLINE`]
/// and all by `deadline`. Returns the open ones by index and the failures by kind.
async fn open_all(
    common: &Common,
    proto: Proto,
    count: usize,
    joining: bool,
    buffer: usize,
    deadline: tokio::time::Instant,
) -> (Vec<(usize, Conn)>, BTreeMap<&'static str, usize>) {
    let gate = Arc::new(Semaphore::new(common.connect_concurrency.max(1)));
    let target = common.target;
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..count {
        let gate = gate.clone();
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await;
            let opened = tokio::time::timeout(
                CONNECT_DEADLINE,
                open(target, proto, index, joining, buffer),
            )
            .await
            .map_err(anyhow::Error::from)
            .and_then(|opened| opened);
            (index, opened)
        });
    }
    let mut open = Vec::with_capacity(count);
    let mut failed = BTreeMap::new();
    loop {
        match tokio::time::timeout_at(deadline, tasks.join_next()).await {
            Ok(Some(Ok((index, Ok(conn))))) => open.push((index, conn)),
            Ok(Some(Ok((_, Err(error))))) => *failed.entry(failure_kind(&error)).or_insert(0) += 1,
            Ok(Some(Err(_))) => *failed.entry("panic").or_insert(0) += 1,
            Ok(None) => break,
            Err(_) => {
                *failed.entry("timeout").or_insert(0) += tasks.len();
                tasks.abort_all();
                break;
            }
        }
    }
    open.sort_by_key(|(index, _)| *index);
    (open, failed)
}

fn failures(failed: &BTreeMap<&'static str, usize>) -> String {
    if failed.is_empty() {
        return "none".to_owned();
    }
    failed
        .iter()
        .map(|(kind, n)| format!("{kind}:{n}"))
        .collect::<Vec<_>>()
        .join(",")
}

// ---------------------------------------------------------------------------------------------
// Idle

async fn idle(args: IdleArgs, nofile: u64) -> Result<Report> {
    let common = &args.common;
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + secs(common.timeout);
    let rss_before = common.server_pid.map(sys::rss_kib).transpose()?;

    // Each connection is read (and what arrives discarded) from the moment it is greeted, as a
    // real client would, so the server's join announcements never back up in its kernel
    // buffers; one that ends is no longer held.
    let counts = Arc::new(IdleCounts::default());
    let gate = Arc::new(Semaphore::new(common.connect_concurrency.max(1)));
    let stop = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..args.clients {
        let (counts, gate, stop) = (counts.clone(), gate.clone(), stop.clone());
        let (target, proto) = (common.target, args.proto);
        tasks.spawn(async move {
            let permit = gate.acquire_owned().await;
            let opened =
                tokio::time::timeout(CONNECT_DEADLINE, open(target, proto, index, false, 4096))
                    .await
                    .map_err(anyhow::Error::from)
                    .and_then(|opened| opened);
            drop(permit);
            let Conn {
                mut reader,
                writer: _writer, // held: dropping it would send FIN
                mut buffered,
            } = match opened {
                Ok(conn) => conn,
                Err(error) => return Some(failure_kind(&error)),
            };
            counts.connected.fetch_add(1, Ordering::Relaxed);
            counts.open.fetch_add(1, Ordering::Relaxed);
            loop {
                buffered.start = 0;
                buffered.end = 0;
                let read = tokio::select! {
                    () = stop.cancelled() => return None,
                    read = buffered.fill(&mut reader, || {}) => read,
                };
                match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => counts.bytes.fetch_add(n as u64, Ordering::Relaxed),
                };
            }
            counts.open.fetch_sub(1, Ordering::Relaxed);
            None
        });
    }

    // Wait until every connection is open or has failed.
    let mut failed = BTreeMap::<&'static str, usize>::new();
    let mut failures_seen = 0;
    loop {
        while let Some(done) = tasks.try_join_next() {
            match done {
                Ok(Some(kind)) => *failed.entry(kind).or_insert(0) += 1,
                Ok(None) => {}
                Err(_) => *failed.entry("panic").or_insert(0) += 1,
            }
            failures_seen += 1;
        }
        let connected = counts.connected.load(Ordering::Relaxed);
        if connected + failures_seen >= args.clients {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            *failed.entry("timeout").or_insert(0) += args.clients - connected - failures_seen;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let connect_secs = started.elapsed().as_secs_f64();
    let connected = counts.connected.load(Ordering::Relaxed);
    eprintln!(
        "idle: {connected} of {} connected in {connect_secs:.1} s",
        args.clients
    );

    // Wait for the server to settle (nothing arriving for a second), then sample its memory.
    let hold_until = tokio::time::Instant::now() + secs(args.hold);
    let settle_deadline = hold_until.min(deadline);
    let mut last = u64::MAX;
    let mut quiet_since = tokio::time::Instant::now();
    loop {
        let now = tokio::time::Instant::now();
        let seen = counts.bytes.load(Ordering::Relaxed);
        if seen != last {
            last = seen;
            quiet_since = now;
        } else if now >= quiet_since + Duration::from_secs(1) || now >= settle_deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rss_after = common.server_pid.map(sys::rss_kib).transpose()?;
    tokio::time::sleep_until(hold_until.min(deadline)).await;
    let held = counts.open.load(Ordering::Relaxed);
    stop.cancel();
    tasks.abort_all();

    let mut report = Report::new("idle");
    report.add("proto", value_name(args.proto));
    report.add("clients", args.clients);
    report.add("connected", connected);
    report.add("held", held);
    report.add("failed", failures(&failed));
    report.add("connect_s", format!("{connect_secs:.2}"));
    report.add("bytes_in", counts.bytes.load(Ordering::Relaxed));
    report.add("nofile", nofile);
    if let (Some(before), Some(after)) = (rss_before, rss_after) {
        report.add("rss_before_kib", before);
        report.add("rss_after_kib", after);
        let per = after.saturating_sub(before) as f64 / held.max(1) as f64;
        report.add("rss_per_conn_kib", format!("{per:.2}"));
    }
    report.complete = held == args.clients;
    Ok(report)
}

/// What the idle connections count together.
#[derive(Default)]
struct IdleCounts {
    /// Greeted so far.
    connected: AtomicUsize,
    /// Greeted and not yet closed by the server.
    open: AtomicUsize,
    /// Bytes received (and discarded) by all of them.
    bytes: AtomicU64,
}

// ---------------------------------------------------------------------------------------------
// Fan-out

/// What one receiver counted.
#[derive(Default)]
struct Tally {
    seen: Vec<u64>,
    unique: u64,
    duplicated: u64,
    mangled: u64,
    notices: u64,
    latencies: Vec<u64>,
    last_ns: u64,
    ended: Option<&'static str>,
}

impl Tally {
    fn take(&mut self, received: Received, now_ns: u64, senders: usize, lines: u32) {
        match received {
            Received::Data(data) if data.sender < senders && data.seq < lines => {
                let bit = data.sender * lines as usize + data.seq as usize;
                let (word, mask) = (bit / 64, 1u64 << (bit % 64));
                if self.seen[word] & mask != 0 {
                    self.duplicated += 1;
                    return;
                }
                self.seen[word] |= mask;
                self.unique += 1;
                self.latencies.push(now_ns.saturating_sub(data.sent_ns));
                self.last_ns = now_ns;
            }
            Received::Data(_) | Received::Mangled => self.mangled += 1,
            Received::Notice => self.notices += 1,
            Received::Event => {}
        }
    }
}

/// What every receiver shares with the coordinator.
struct Shared {
    epoch: Instant,
    proto: Proto,
    size: usize,
    senders: usize,
    lines: u32,
    delivered: AtomicU64,
    stop: CancellationToken,
}

impl Shared {
    fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

async fn receive(
    mut reader: OwnedReadHalf,
    mut buffered: LineBuf,
    shared: Arc<Shared>,
    expected: u64,
) -> Tally {
    let words = (shared.senders * shared.lines as usize).div_ceil(64);
    let mut tally = Tally {
        seen: vec![0; words],
        ..Tally::default()
    };
    let (proto, size, senders, lines) = (shared.proto, shared.size, shared.senders, shared.lines);
    let mut now_ns = shared.now_ns();
    loop {
        let before = tally.unique;
        let _ = buffered.lines(|line| {
            tally.take(proto.classify(line, size), now_ns, senders, lines);
            ControlFlow::Continue(())
        });
        shared
            .delivered
            .fetch_add(tally.unique - before, Ordering::Relaxed);
        if tally.unique >= expected {
            break;
        }
        let mut too_long = false;
        let read = tokio::select! {
            () = shared.stop.cancelled() => break,
            read = buffered.fill(&mut reader, || too_long = true) => read,
        };
        if too_long {
            tally.mangled += 1;
        }
        now_ns = shared.now_ns();
        match read {
            Ok(0) => {
                tally.ended = Some("eof");
                break;
            }
            Ok(_) => {}
            Err(_) => {
                tally.ended = Some("error");
                break;
            }
        }
    }
    tally
}

/// Sends `lines` data lines, one write each, paced if `rate` is set; returns the write half
/// (dropping it would send FIN).
async fn send(
    mut writer: OwnedWriteHalf,
    sender: usize,
    shared: Arc<Shared>,
    rate: Option<f64>,
    offset: Duration,
    mut go: watch::Receiver<bool>,
) -> Result<OwnedWriteHalf> {
    go.wait_for(|&go| go).await?;
    let start = tokio::time::Instant::now() + offset;
    let mut line = Vec::with_capacity(shared.size + 1);
    for seq in 0..shared.lines {
        if let Some(rate) = rate {
            let due = start + Duration::from_secs_f64(f64::from(seq) / rate);
            tokio::select! {
                () = shared.stop.cancelled() => break,
                () = tokio::time::sleep_until(due) => {}
            }
        }
        line.clear();
        data_line(sender, seq, shared.now_ns(), shared.size, &mut line);
        tokio::select! {
            () = shared.stop.cancelled() => break,
            written = writer.write_all(&line) => written?,
        }
    }
    Ok(writer)
}

async fn fanout(args: FanoutArgs) -> Result<Report> {
    let common = &args.common;
    if args.senders > args.clients {
        bail!("--senders cannot exceed --clients");
    }
    let epoch = Instant::now();
    let deadline = tokio::time::Instant::now() + secs(common.timeout);
    let (conns, failed) =
        open_all(common, args.proto, args.clients, true, 64 * 1024, deadline).await;
    let connected = conns.len();
    let mut report = Report::new("fanout");
    report.add("proto", value_name(args.proto));
    report.add("clients", args.clients);
    report.add("senders", args.senders);
    report.add("lines", args.lines);
    report.add("size", args.size);
    report.add(
        "rate",
        args.rate
            .map_or_else(|| "burst".to_owned(), |r| r.to_string()),
    );
    report.add("connected", connected);
    if connected < args.clients {
        report.add("failed", failures(&failed));
        report.complete = false;
        eprintln!(
            "fanout: only {connected} of {} clients connected",
            args.clients
        );
        return Ok(report);
    }

    let shared = Arc::new(Shared {
        epoch,
        proto: args.proto,
        size: usize::from(args.size),
        senders: args.senders,
        lines: args.lines,
        delivered: AtomicU64::new(0),
        stop: CancellationToken::new(),
    });
    let (go_tx, go_rx) = watch::channel(false);
    let mut receivers = tokio::task::JoinSet::new();
    let mut senders = tokio::task::JoinSet::new();
    let mut idle_writers = Vec::new();
    let mut expected_total = 0u64;
    let per_sender = u64::from(args.lines);
    // Senders start evenly spread over one pacing period, as independent clients would be.
    let period = args.rate.map_or(0.0, |rate| 1.0 / rate);
    for (index, conn) in conns {
        let own = args.proto.echoes_sender() || index >= args.senders;
        let expected = per_sender * (args.senders as u64 - u64::from(!own));
        expected_total += expected;
        receivers.spawn(receive(
            conn.reader,
            conn.buffered,
            shared.clone(),
            expected,
        ));
        if index < args.senders {
            let offset = secs(period * index as f64 / args.senders as f64);
            senders.spawn(send(
                conn.writer,
                index,
                shared.clone(),
                args.rate,
                offset,
                go_rx.clone(),
            ));
        } else {
            idle_writers.push(conn.writer);
        }
    }

    let cpu_start = common.server_pid.map(sys::cpu_ticks).transpose()?;
    let start_ns = shared.now_ns();
    go_tx.send_replace(true);

    // Wait: every receiver done, or the senders done and nothing new for `settle`, or timeout.
    let mut senders_done = false;
    let mut send_errors = 0usize;
    let mut last = 0u64;
    let mut last_change = tokio::time::Instant::now();
    let mut timed_out = false;
    let mut writers = idle_writers;
    loop {
        if !senders_done {
            while let Some(done) = senders.try_join_next() {
                match done {
                    Ok(Ok(writer)) => writers.push(writer),
                    Ok(Err(error)) => {
                        send_errors += 1;
                        eprintln!("fanout: a sender failed: {error:#}");
                    }
                    Err(_) => send_errors += 1,
                }
            }
            senders_done = senders.is_empty();
        }
        let delivered = shared.delivered.load(Ordering::Relaxed);
        let now = tokio::time::Instant::now();
        if delivered != last {
            last = delivered;
            last_change = now;
        }
        if delivered >= expected_total {
            break;
        }
        if senders_done && now >= last_change + secs(args.settle) {
            break;
        }
        if now >= deadline {
            timed_out = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cpu_end = common.server_pid.map(sys::cpu_ticks).transpose()?;
    shared.stop.cancel();
    let mut tallies = Vec::with_capacity(args.clients);
    while let Some(tally) = receivers.join_next().await {
        tallies.push(tally.context("a receiver panicked")?);
    }
    senders.abort_all();
    drop(writers);

    let delivered: u64 = tallies.iter().map(|t| t.unique).sum();
    let duplicated: u64 = tallies.iter().map(|t| t.duplicated).sum();
    let mangled: u64 = tallies.iter().map(|t| t.mangled).sum();
    let notices: u64 = tallies.iter().map(|t| t.notices).sum();
    let closed = tallies.iter().filter(|t| t.ended.is_some()).count();
    let last_ns = tallies.iter().map(|t| t.last_ns).max().unwrap_or(start_ns);
    let elapsed = last_ns.saturating_sub(start_ns).max(1) as f64 / 1e9;
    let mut latencies: Vec<u64> = tallies
        .iter_mut()
        .flat_map(|t| std::mem::take(&mut t.latencies))
        .collect();
    let lost = expected_total.saturating_sub(delivered);

    report.add("expected", expected_total);
    report.add("delivered", delivered);
    report.add("lost", lost);
    report.add("duplicated", duplicated);
    report.add("mangled", mangled);
    report.add("notices", notices);
    report.add("closed", closed);
    report.add("send_errors", send_errors);
    report.add("seconds", format!("{elapsed:.3}"));
    report.add(
        "deliveries_per_s",
        format!("{:.0}", delivered as f64 / elapsed),
    );
    if !latencies.is_empty() {
        report.add("p50_ms", ms(percentile(&mut latencies, 0.50)));
        report.add("p99_ms", ms(percentile(&mut latencies, 0.99)));
        report.add("max_ms", ms(latencies.iter().copied().max().unwrap_or(0)));
    }
    if let (Some(start), Some(end)) = (cpu_start, cpu_end) {
        let cpu = end.saturating_sub(start) as f64 / sys::ticks_per_second();
        report.add("server_cpu_s", format!("{cpu:.2}"));
        report.add(
            "server_cpu_us_per_delivery",
            format!("{:.3}", cpu * 1e6 / delivered.max(1) as f64),
        );
    }
    report.add("timed_out", timed_out);
    report.complete =
        !timed_out && lost == 0 && duplicated == 0 && mangled == 0 && send_errors == 0;
    Ok(report)
}

/// The value below which `fraction` of `values` fall (nearest rank); reorders `values`.
fn percentile(values: &mut [u64], fraction: f64) -> u64 {
    if values.is_empty() {
        return 0;
    }
    let rank = ((values.len() as f64 * fraction).ceil() as usize).clamp(1, values.len()) - 1;
    *values.select_nth_unstable(rank).1
}

// ---------------------------------------------------------------------------------------------
// Echo

/// What one echo connection counted.
struct EchoTally {
    round_trips: u64,
    rtts: Vec<u64>,
    error: Option<String>,
}

async fn echo_conn(
    target: SocketAddr,
    index: usize,
    ready: Arc<AtomicUsize>,
    mut go: watch::Receiver<Option<tokio::time::Instant>>,
) -> Result<EchoTally> {
    let mut stream = TcpStream::connect(target).await?;
    stream.set_nodelay(true)?;
    let mut greeting = vec![0; ECHO_GREETING.len()];
    tokio::time::timeout(REPLY_DEADLINE, stream.read_exact(&mut greeting))
        .await
        .context("no greeting")??;
    if greeting != ECHO_GREETING.as_bytes() {
        bail!(
            "unexpected greeting {:?}",
            String::from_utf8_lossy(&greeting)
        );
    }
    ready.fetch_add(1, Ordering::Relaxed);
    let end = go
        .wait_for(Option::is_some)
        .await?
        .unwrap_or_else(tokio::time::Instant::now);
    let message = format!("ping {index:04} hello");
    let mut tally = EchoTally {
        round_trips: 0,
        rtts: Vec::new(),
        error: None,
    };
    let mut reply = Vec::new();
    while tokio::time::Instant::now() < end {
        let expected = format!("第{}条信息:{message}", tally.round_trips + 1);
        reply.resize(expected.len(), 0);
        let sent = Instant::now();
        let trip = async {
            stream.write_all(message.as_bytes()).await?;
            stream.read_exact(&mut reply).await?;
            anyhow::Ok(())
        };
        match tokio::time::timeout(REPLY_DEADLINE, trip).await {
            Ok(Ok(())) if reply == expected.as_bytes() => {}
            Ok(Ok(())) => {
                tally.error = Some(format!(
                    "unexpected reply {:?}",
                    String::from_utf8_lossy(&reply)
                ));
                break;
            }
            Ok(Err(error)) => {
                tally.error = Some(format!("{error:#}"));
                break;
            }
            Err(_) => {
                tally.error = Some("reply timed out".to_owned());
                break;
            }
        }
        tally
            .rtts
            .push(u64::try_from(sent.elapsed().as_nanos()).unwrap_or(u64::MAX));
        tally.round_trips += 1;
    }
    let _ = stream.write_all(b"exit").await;
    Ok(tally)
}

async fn echo(args: EchoArgs) -> Result<Report> {
    let common = &args.common;
    let deadline = tokio::time::Instant::now() + secs(common.timeout);
    let (go_tx, go_rx) = watch::channel(None);
    let ready = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..args.conns {
        tasks.spawn(echo_conn(
            common.target,
            index,
            ready.clone(),
            go_rx.clone(),
        ));
    }
    // Start together once every connection is greeted (or has failed: it is counted below).
    let greet_deadline = tokio::time::Instant::now() + CONNECT_DEADLINE;
    while ready.load(Ordering::Relaxed) + (args.conns - tasks.len()) < args.conns
        && tokio::time::Instant::now() < greet_deadline.min(deadline)
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let cpu_start = common.server_pid.map(sys::cpu_ticks).transpose()?;
    let started = tokio::time::Instant::now();
    go_tx.send_replace(Some(started + secs(args.seconds)));

    let mut round_trips = 0u64;
    let mut rtts = Vec::new();
    let mut errors = BTreeMap::<String, usize>::new();
    let mut timed_out = false;
    loop {
        match tokio::time::timeout_at(deadline, tasks.join_next()).await {
            Ok(Some(Ok(Ok(tally)))) => {
                round_trips += tally.round_trips;
                rtts.extend(tally.rtts);
                if let Some(error) = tally.error {
                    *errors.entry(error).or_insert(0) += 1;
                }
            }
            Ok(Some(Ok(Err(error)))) => *errors.entry(format!("{error:#}")).or_insert(0) += 1,
            Ok(Some(Err(_))) => *errors.entry("panic".to_owned()).or_insert(0) += 1,
            Ok(None) => break,
            Err(_) => {
                timed_out = true;
                tasks.abort_all();
                break;
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_end = common.server_pid.map(sys::cpu_ticks).transpose()?;
    for (error, count) in &errors {
        eprintln!("echo: {count} connection(s): {error}");
    }

    let mut report = Report::new("echo");
    report.add("proto", value_name(args.proto));
    report.add("conns", args.conns);
    report.add("seconds", format!("{elapsed:.3}"));
    report.add("round_trips", round_trips);
    report.add(
        "round_trips_per_s",
        format!("{:.0}", round_trips as f64 / elapsed),
    );
    report.add("errors", errors.values().sum::<usize>());
    if !rtts.is_empty() {
        report.add("p50_ms", ms(percentile(&mut rtts, 0.50)));
        report.add("p99_ms", ms(percentile(&mut rtts, 0.99)));
    }
    if let (Some(start), Some(end)) = (cpu_start, cpu_end) {
        let cpu = end.saturating_sub(start) as f64 / sys::ticks_per_second();
        report.add("server_cpu_s", format!("{cpu:.2}"));
        report.add(
            "server_cpu_us_per_round_trip",
            format!("{:.3}", cpu * 1e6 / round_trips.max(1) as f64),
        );
    }
    report.add("timed_out", timed_out);
    report.complete = !timed_out && errors.is_empty() && round_trips > 0;
    Ok(report)
}

// ---------------------------------------------------------------------------------------------
// The system: file-descriptor limit and /proc

mod sys {
    //! The only `unsafe` in the load generator (two libc calls), and `/proc` readers.

    use anyhow::{Context, Result};

    /// Raises the soft open-file limit to the hard limit; returns the new soft limit.
    #[allow(unsafe_code)]
    pub fn raise_nofile_limit() -> Result<u64> {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes one `rlimit` through a pointer to a live, aligned local.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) } != 0 {
            return Err(std::io::Error::last_os_error()).context("getrlimit");
        }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            // SAFETY: setrlimit only reads the `rlimit` the pointer refers to.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const limit) } != 0 {
                return Err(std::io::Error::last_os_error()).context("setrlimit");
            }
        }
        Ok(limit.rlim_cur)
    }

    /// Clock ticks per second, the unit of `/proc/PID/stat`'s CPU times.
    #[allow(unsafe_code)]
    pub fn ticks_per_second() -> f64 {
        // SAFETY: sysconf takes an integer and touches no memory of ours.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        if ticks > 0 { ticks as f64 } else { 100.0 }
    }

    /// A process's resident memory (`VmRSS`), in KiB.
    pub fn rss_kib(pid: u32) -> Result<u64> {
        let path = format!("/proc/{pid}/status");
        let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("no VmRSS in {path}"))
    }

    /// A process's user plus system CPU time so far, in clock ticks (all its threads).
    pub fn cpu_ticks(pid: u32) -> Result<u64> {
        let path = format!("/proc/{pid}/stat");
        let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        // The command name may contain spaces; fields are counted after its closing ')'.
        let after = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .with_context(|| format!("malformed {path}"))?;
        let fields: Vec<&str> = after.split_whitespace().collect();
        // Fields 14 and 15 of stat(5) are utime and stime; `after` starts at field 3.
        let field = |n: usize| -> Result<u64> {
            fields
                .get(n - 3)
                .and_then(|f| f.parse().ok())
                .with_context(|| format!("no field {n} in {path}"))
        };
        Ok(field(14)? + field(15)?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn line(sender: usize, seq: u32, size: usize) -> Vec<u8> {
        let mut out = Vec::new();
        data_line(sender, seq, 123_456_789, size, &mut out);
        out
    }

    #[test]
    fn data_lines_have_the_exact_size_and_parse_back() {
        for size in [64, 100, 1000] {
            let mut out = line(7, 42, size);
            assert_eq!(out.pop(), Some(b'\n'));
            assert_eq!(out.len(), size);
            assert_eq!(
                parse_body(&out, size),
                Some(Data {
                    sender: 7,
                    seq: 42,
                    sent_ns: 123_456_789
                })
            );
        }
    }

    #[test]
    fn prefixes_are_checked_per_protocol_and_damage_is_mangled() {
        let mut body = line(1, 2, 64);
        body.pop();
        let with = |prefix: &str| [prefix.as_bytes(), &body].concat();
        assert!(matches!(
            Proto::Chat.classify(&with("<guest-3> "), 64),
            Received::Data(_)
        ));
        assert!(matches!(Proto::Ncat.classify(&body, 64), Received::Data(_)));
        assert!(matches!(
            Proto::TokioChat.classify(&with("u3: "), 64),
            Received::Data(_)
        ));
        assert_eq!(Proto::Chat.classify(&body, 64), Received::Mangled);
        // ncat's prefix in the middle of a line split across two of its reads.
        let mut cut = with("<user5> ");
        cut.splice(30..30, b"<user5> ".iter().copied());
        assert_eq!(Proto::Ncat.classify(&cut, 64), Received::Mangled);
        assert_eq!(
            Proto::Chat.classify(b"*** guest-9 joined; 2 online", 64),
            Received::Event
        );
        assert_eq!(
            Proto::Chat.classify(b"*** guest-9 left (too slow); 1 online", 64),
            Received::Event
        );
        assert_eq!(Proto::Chat.classify(b"! flood limit", 64), Received::Notice);
        // Someone's `/me` and a plain message are not what a benchmark room says.
        assert_eq!(
            Proto::Chat.classify(b"* guest-9 joined", 64),
            Received::Mangled
        );
        assert_eq!(Proto::Chat.classify(b"<guest-9> hi", 64), Received::Mangled);
        // A data line behind something that is not a nick.
        assert_eq!(
            Proto::Chat.classify(&with("<guest 3> "), 64),
            Received::Mangled
        );
        assert_eq!(Proto::Ncat.classify(b"@<user5> L 1", 64), Received::Mangled);
    }

    #[test]
    fn a_chat_client_is_in_at_the_typed_greeting_only() {
        let greeting = "*** 连接成功! you are guest-1; 3 online; /help lists the commands";
        assert!(Proto::Chat.is_ready(greeting.as_bytes(), true));
        for not_yet in [
            // The greeting before the events got their own prefix, and a `/me` forging it.
            "* 连接成功! you are guest-1; 3 online; /help lists the commands",
            "*** guest-2 joined; 2 online",
            "<guest-2> *** 连接成功! you are guest-1; 3 online; /help lists the commands",
        ] {
            assert!(!Proto::Chat.is_ready(not_yet.as_bytes(), true), "{not_yet}");
        }
    }

    #[test]
    fn only_loopback_targets_are_accepted() {
        assert!(loopback_target("127.0.0.1:8888").is_ok());
        assert!(loopback_target("[::1]:8888").is_ok());
        for bad in [
            "127.0.0.2:80",
            "10.0.0.1:80",
            "[::2]:80",
            "localhost:80",
            "0.0.0.0:1",
        ] {
            assert!(loopback_target(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn find_byte_agrees_with_a_plain_search() {
        let text = b"0123456789abcdef\n0123\n";
        for from in 0..text.len() {
            assert_eq!(
                find_byte(b'\n', &text[from..]),
                text[from..].iter().position(|&b| b == b'\n')
            );
        }
        assert_eq!(find_byte(b'@', b"<a> x@L 1"), Some(5));
        assert_eq!(find_marker(b"<a> @x @L 1"), Some(7));
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let mut values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&mut values, 0.5), 50);
        assert_eq!(percentile(&mut values, 0.99), 99);
        assert_eq!(percentile(&mut [5], 0.99), 5);
    }
}
