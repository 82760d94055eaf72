//! Helpers shared by the integration tests: an in-process server on an OS-chosen loopback port,
//! and clients (tokio and std) whose every read has a deadline; a real redis-server ([`redis`])
//! and a loopback proxy that can be cut ([`proxy`]) for the cluster's fault tests.

// Each test crate uses its own subset of these helpers, and in a test a failed expectation is
// meant to panic: that is the test failing, with the message saying what was expected.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use std::io::{BufRead, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use tcpchat::server::{self, Config, Limits, Mode};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::timeout;

pub mod proxy;
pub mod redis;
use tokio_util::sync::CancellationToken;

/// How long a round trip through a server under the load a test puts on it may take and still
/// count as "nobody blocked": idle it is well under a millisecond, so this is the margin for a
/// debug build on a busy 2-core machine. A room that blocks on the load answers only when the
/// load ends, or never, which still fails.
pub const NOT_BLOCKED: Duration = Duration::from_secs(5);

/// Names the prerequisites this machine lacks, comma-separated (`netns`, `ipv6`, `privport`,
/// `openssl`, `redis`...), so that the tests needing them are skipped instead of failing. CI never sets it:
/// `.ci/run` provides every prerequisite, so there every test runs.
pub const SKIP_VAR: &str = "TCPCHAT_TEST_SKIP";

/// Whether a test needing `name` runs here. `available` says whether the machine has it, or why
/// not. Missing and not named in [`SKIP_VAR`]: the test fails, saying how to opt out. Named:
/// the test is skipped, and says so on the real stderr (not the captured output, which is shown
/// only for failures), so a skip never reads as a pass. Something the machine has always runs.
pub fn prerequisite(name: &str, available: Result<(), String>) -> bool {
    let Err(why) = available else {
        return true;
    };
    let opted_out = std::env::var(SKIP_VAR)
        .unwrap_or_default()
        .split(',')
        .any(|s| s.trim() == name);
    assert!(
        opted_out,
        "this test needs {name}, which this machine lacks: {why}. CI provides it (.ci/run); \
         to skip the tests that need it here, set {SKIP_VAR}={name}"
    );
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: needs {name} ({why}); {SKIP_VAR}={name} is set"
    );
    false
}

/// Whether `program args...` runs and succeeds here (a tool a test needs), or why not: for
/// [`prerequisite`].
pub fn runs(program: &str, args: &[&str]) -> Result<(), String> {
    match std::process::Command::new(program).args(args).output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "`{program} {}` exited with {}",
            args.join(" "),
            out.status
        )),
        Err(error) => Err(format!("cannot run {program}: {error}")),
    }
}

/// The longest any single wait (connect, read, write) may take.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// An in-process server: where it listens, how to stop it, and its task.
pub struct Server {
    pub addr: SocketAddr,
    pub token: CancellationToken,
    pub handle: JoinHandle<()>,
}

/// Binds 127.0.0.1 on a port the OS picks and runs [`server::run`] on it.
pub async fn spawn_server(mode: Mode, limits: Limits) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    let token = CancellationToken::new();
    let handle = tokio::spawn(server::run(
        listener,
        Config {
            mode,
            limits,
            ..Config::default()
        },
        token.clone(),
    ));
    Server {
        addr,
        token,
        handle,
    }
}

/// The reading side of a connection.
pub struct Reader(pub BufReader<OwnedReadHalf>);

impl Reader {
    /// The next line including its `\n`; panics on EOF, error or deadline.
    pub async fn line_bytes(&mut self) -> Vec<u8> {
        let mut line = Vec::new();
        let read = timeout(DEADLINE, self.0.read_until(b'\n', &mut line))
            .await
            .expect("timed out waiting for a line")
            .expect("read failed");
        assert!(read > 0, "EOF while waiting for a line");
        assert!(
            line.ends_with(b"\n"),
            "EOF inside a line: {:?}",
            String::from_utf8_lossy(&line)
        );
        line
    }

    /// The next line without its `\n`; it must be valid UTF-8.
    pub async fn line(&mut self) -> String {
        let mut line = String::from_utf8(self.line_bytes().await).expect("line is not UTF-8");
        line.pop();
        line
    }

    /// Asserts that the next line is exactly `want` + `\n`.
    pub async fn expect(&mut self, want: &str) {
        let got = self.line_bytes().await;
        assert_eq!(
            String::from_utf8_lossy(&got),
            format!("{want}\n"),
            "raw: {got:?}"
        );
    }

    /// Skips lines (at most 1000) until one starts with `prefix`, and returns it.
    pub async fn line_starting(&mut self, prefix: &str) -> String {
        for _ in 0..1000 {
            let line = self.line().await;
            if line.starts_with(prefix) {
                return line;
            }
        }
        panic!("no line starting with {prefix:?}");
    }

    /// Exactly `n` bytes.
    pub async fn exact(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        timeout(DEADLINE, self.0.read_exact(&mut buf))
            .await
            .expect("timed out waiting for bytes")
            .expect("read failed");
        buf
    }

    /// Whatever one read returns; panics on EOF.
    pub async fn chunk(&mut self) -> Vec<u8> {
        let mut buf = vec![0; 64 * 1024];
        let n = timeout(DEADLINE, self.0.read(&mut buf))
            .await
            .expect("timed out waiting for bytes")
            .expect("read failed");
        assert!(n > 0, "unexpected EOF");
        buf.truncate(n);
        buf
    }

    /// Everything up to EOF, which must be a clean close (FIN), not an error such as a reset.
    pub async fn read_to_eof(&mut self) -> Vec<u8> {
        let mut rest = Vec::new();
        timeout(DEADLINE, self.0.read_to_end(&mut rest))
            .await
            .expect("timed out waiting for EOF")
            .expect("connection ended with an error instead of a clean EOF");
        rest
    }
}

/// A client connection.
pub struct Client {
    pub rx: Reader,
    pub tx: OwnedWriteHalf,
}

impl Client {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = timeout(DEADLINE, TcpStream::connect(addr))
            .await
            .expect("connect timed out")
            .expect("connect failed");
        Self::from_stream(stream)
    }

    /// Connects to `addr` from the local address `from` (any of 127.0.0.0/8 works on Linux),
    /// so one test can be several hosts.
    pub async fn connect_from(addr: SocketAddr, from: std::net::IpAddr) -> Self {
        let socket = TcpSocket::new_v4().expect("socket");
        socket
            .bind(SocketAddr::new(from, 0))
            .expect("bind the source address");
        let stream = timeout(DEADLINE, socket.connect(addr))
            .await
            .expect("connect timed out")
            .expect("connect failed");
        Self::from_stream(stream)
    }

    /// Connects with a small receive buffer, so a client that does not read fills up quickly
    /// (an explicit SO_RCVBUF also turns off the kernel's receive-buffer autotuning).
    pub async fn connect_small_rcvbuf(addr: SocketAddr) -> Self {
        let socket = TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(16 * 1024).expect("SO_RCVBUF");
        let stream = timeout(DEADLINE, socket.connect(addr))
            .await
            .expect("connect timed out")
            .expect("connect failed");
        Self::from_stream(stream)
    }

    fn from_stream(stream: TcpStream) -> Self {
        stream.set_nodelay(true).expect("TCP_NODELAY");
        let (rd, wr) = stream.into_split();
        Self {
            rx: Reader(BufReader::new(rd)),
            tx: wr,
        }
    }

    /// Writes all of `bytes` in one call.
    pub async fn send(&mut self, bytes: impl AsRef<[u8]>) {
        timeout(DEADLINE, self.tx.write_all(bytes.as_ref()))
            .await
            .expect("write timed out")
            .expect("write failed");
    }

    /// See [`Reader::line`].
    pub async fn line(&mut self) -> String {
        self.rx.line().await
    }

    /// See [`Reader::expect`].
    pub async fn expect(&mut self, want: &str) {
        self.rx.expect(want).await;
    }

    /// See [`Reader::read_to_eof`].
    pub async fn read_to_eof(&mut self) -> Vec<u8> {
        self.rx.read_to_eof().await
    }

    /// Closes with RST instead of FIN (SO_LINGER 0), as a crashed or killed peer can.
    pub fn reset(self) {
        let stream = self
            .rx
            .0
            .into_inner()
            .reunite(self.tx)
            .expect("halves of one stream");
        stream.set_zero_linger().expect("SO_LINGER");
        drop(stream);
    }
}

/// Joins a chat server: connects, checks the greeting and returns the client and its nick.
pub async fn join(addr: SocketAddr) -> (Client, String) {
    let mut client = Client::connect(addr).await;
    let greeting = client.line().await;
    assert!(greeting.starts_with("*** "), "{greeting:?}");
    let nick = greeting
        .split_once("you are ")
        .and_then(|(_, rest)| rest.split_once(';'))
        .map(|(nick, _)| nick.to_owned())
        .unwrap_or_else(|| panic!("no nick in greeting {greeting:?}"));
    (client, nick)
}

/// A std client for the tests that run the real binary; every read times out after [`DEADLINE`].
pub fn std_connect(addr: SocketAddr) -> std::io::BufReader<std::net::TcpStream> {
    let stream = std::net::TcpStream::connect_timeout(&addr, DEADLINE).expect("connect");
    stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
    stream.set_write_timeout(Some(DEADLINE)).expect("timeout");
    std::io::BufReader::new(stream)
}

/// The next line from a std client, without its `\n`.
pub fn std_line(reader: &mut std::io::BufReader<std::net::TcpStream>) -> String {
    let mut line = String::new();
    let n = reader.read_line(&mut line).expect("read a line");
    assert!(n > 0 && line.ends_with('\n'), "EOF while reading {line:?}");
    line.pop();
    line
}

/// Everything a std client still gets up to a clean EOF.
pub fn std_read_to_eof(reader: &mut std::io::BufReader<std::net::TcpStream>) -> Vec<u8> {
    let mut rest = Vec::new();
    reader
        .read_to_end(&mut rest)
        .expect("a clean EOF, not an error or a timeout");
    rest
}

/// Starts the real binary as `tcpchat --serve --listen 127.0.0.1:0 ARGS...` and returns it
/// with the address its first log line names; the rest of the log is drained (and kept in
/// the returned buffer) so the server never blocks on it.
pub fn serve_binary(
    args: &[&std::ffi::OsStr],
) -> (Reaped, SocketAddr, std::sync::Arc<std::sync::Mutex<String>>) {
    use std::process::{Command, Stdio};
    let child = Command::new(env!("CARGO_BIN_EXE_tcpchat"))
        .args(["--serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("RUST_LOG")
        // No config file from the machine running the tests.
        .env("XDG_CONFIG_HOME", "/nonexistent/tcpchat-tests")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tcpchat --serve");
    let mut child = Reaped(child);
    let mut log = std::io::BufReader::new(child.stderr.take().expect("stderr"));
    let mut first = String::new();
    log.read_line(&mut first).expect("the first log line");
    let addr: SocketAddr = first
        .split_once("listening on ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {first:?}"));
    let kept = std::sync::Arc::new(std::sync::Mutex::new(first));
    let keeping = kept.clone();
    std::thread::spawn(move || {
        for line in log.lines().map_while(Result::ok) {
            let mut kept = keeping
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            kept.push_str(&line);
            kept.push('\n');
        }
    });
    (child, addr, kept)
}

/// A spawned process that is killed and reaped when dropped, so a failing test never leaves
/// a server running behind it.
pub struct Reaped(pub std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for Reaped {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Reaped {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}
