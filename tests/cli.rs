//! End-to-end tests of the real `tcpchat` binary: its command line, exit codes and `--serve`
//! over real loopback TCP. Every server listens on a port the OS picks.

// In a test a failed expectation is meant to panic: that is the test failing.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{DEADLINE, prerequisite, std_connect, std_line, std_read_to_eof};

fn tcpchat() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tcpchat"));
    command
        .stdin(Stdio::null())
        .env_remove("RUST_LOG")
        // No config file from the machine running the tests.
        .env("XDG_CONFIG_HOME", "/nonexistent/tcpchat-tests")
        // Nor its language: what the client says is read in English.
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .env("LANG", "C.UTF-8")
        .env("NO_COLOR", "1");
    command
}

/// Sends `signal` to process `pid`.
#[allow(unsafe_code)]
fn kill(pid: u32, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(pid).expect("pid fits pid_t");
    // SAFETY: kill(2) takes plain integers and touches no memory of ours; `pid` is a child we
    // spawned and have not reaped, so it cannot name an unrelated process.
    let result = unsafe { libc::kill(pid, signal) };
    assert_eq!(result, 0, "kill({pid}, {signal})");
}

/// A data home of its own for one spawned `tcpchat` (`XDG_DATA_HOME`), so no test writes the
/// user's real store or shares one with another test; removed when dropped.
fn data_home() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary data home")
}

/// Runs `tcpchat ARGS` to completion; killed and failed if it takes longer than 10 s.
fn run(args: &[&str]) -> Output {
    let data = data_home();
    let child = tcpchat()
        .args(args)
        .env("XDG_DATA_HOME", data.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tcpchat");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(output) => output.expect("wait for tcpchat"),
        Err(_) => {
            kill(pid, libc::SIGKILL);
            panic!("tcpchat {args:?} did not exit within 10 s");
        }
    }
}

/// A `tcpchat --serve` process, killed if the test ends without stopping it.
struct Served {
    child: Child,
    _data: tempfile::TempDir,
    addr: SocketAddr,
    /// The log's lines, and the thread that reads them (it stops, closing the pipe, at the
    /// first line after the receiver is dropped).
    log: Option<(mpsc::Receiver<String>, std::thread::JoinHandle<()>)>,
}

impl Served {
    /// Starts `tcpchat --serve --listen LISTEN` and waits for its `listening on ADDR` log line.
    fn start(listen: &str) -> Self {
        Self::start_with(listen, &[])
    }

    /// [`Served::start`] with more arguments (limits, mode).
    fn start_with(listen: &str, args: &[&str]) -> Self {
        let data = data_home();
        let mut child = tcpchat()
            .args(["--serve", "--listen", listen])
            .args(args)
            .env("XDG_DATA_HOME", data.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tcpchat --serve");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        // Keeps draining stderr, so logging never blocks the server, until told to stop.
        let drain = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break; // dropping `stderr` closes the pipe's reading end
                }
            }
        });
        let Some(addr) = listening_address(&rx) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no `listening on ADDR` line on stderr within {DEADLINE:?}");
        };
        Self {
            child,
            _data: data,
            addr,
            log: Some((rx, drain)),
        }
    }

    /// Closes the log pipe's reading end, as `| head -1` does once it has its line: the next
    /// log line (a connection, made here) ends the reader; every later one meets EPIPE.
    fn stop_reading_log(&mut self) {
        let (lines, drain) = self.log.take().expect("the log is being read");
        drop(lines);
        let _ = std_connect(self.addr);
        let deadline = Instant::now() + DEADLINE;
        while !drain.is_finished() {
            assert!(Instant::now() < deadline, "the log reader did not stop");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends SIGTERM and returns the exit code, which must come within 3 s.
    fn terminate(&mut self) -> i32 {
        kill(self.child.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code().expect("exited, not killed by a signal");
            }
            assert!(
                Instant::now() < deadline,
                "did not exit within 3 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The address in the server's `listening on ADDR (mode ...)` log line, if it comes in time.
fn listening_address(stderr: &mpsc::Receiver<String>) -> Option<SocketAddr> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = stderr.recv_timeout(left).ok()?;
        if let Some((_, rest)) = line.split_once("listening on ") {
            return rest.split_whitespace().next()?.parse().ok();
        }
    }
}

fn stderr_lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn help_and_version_exit_zero() {
    let help = run(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("--serve"));

    let version = run(&["--version"]);
    assert_eq!(version.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&version.stdout),
        format!("tcpchat {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn bad_arguments_exit_2_with_clap_s_whole_error() {
    let cases: &[(&[&str], &[&str])] = &[
        (&["--bogus"], &["unexpected argument '--bogus'"]),
        (
            &["--serve", "--nik", "x"],
            &["tip: a similar argument exists: '--nick'"],
        ),
        (
            &["--serve", "--listen", "nonsense"],
            &["invalid value 'nonsense' for '--listen <ADDR>'"],
        ),
        (
            &["--nick", "a b"],
            &["invalid value 'a b' for '--nick <NAME>'"],
        ),
        (
            &["--mode", "echo"],
            &[
                "the following required arguments were not provided",
                "--serve",
            ],
        ),
        (
            &["--mode", "chatty", "--serve"],
            &["possible values: chat, echo, ack"],
        ),
        // A server flag given to a client that joins elsewhere would be ignored: refused.
        (
            &["--max-clients", "5", "127.0.0.1:9"],
            &["'--max-clients <N>' cannot be used with '[HOST:PORT]'"],
        ),
        (&["--serve", "--no-bell"], &["cannot be used with"]),
        // Port 0 is any free port: no room can be found there (local mode hosted on one and
        // then connected to port 0, forever refused).
        (&["--local", "127.0.0.1:0"], &["port 0 is any free port"]),
        (&["127.0.0.1:0"], &["port 0 is any free port"]),
    ];
    for (args, wanted) in cases {
        let output = run(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        for want in *wanted {
            assert!(stderr.contains(want), "{args:?}: {want:?} not in {stderr}");
        }
        assert!(stderr.contains("--help"), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn serve_chats_and_sigterm_says_goodbye_then_exits_0() {
    let mut served = Served::start("127.0.0.1:0");
    assert!(served.addr.ip().is_loopback());
    let mut a = std_connect(served.addr);
    let greeting = std_line(&mut a);
    assert!(
        greeting.starts_with("*** ")
            && greeting.contains("连接成功")
            && greeting.contains("guest-1"),
        "{greeting:?}"
    );
    // The server keeps history by default (in the data home given to it): a new one has none.
    assert_eq!(
        std_line(&mut a),
        "*** history of #lobby: none yet; the next line is #1"
    );
    let mut b = std_connect(served.addr);
    assert!(std_line(&mut b).contains("you are guest-2"));
    assert!(std_line(&mut b).starts_with("*** history of #lobby"));
    assert_eq!(std_line(&mut a), "*** guest-2 joined; 2 online");

    a.get_mut()
        .write_all("你好 from a\n".as_bytes())
        .expect("send");
    assert_eq!(std_line(&mut a), "<guest-1> 你好 from a");
    assert_eq!(std_line(&mut b), "<guest-1> 你好 from a");

    assert_eq!(served.terminate(), 0);
    for client in [&mut a, &mut b] {
        assert_eq!(std_line(client), "*** server shutting down");
        assert_eq!(String::from_utf8_lossy(&std_read_to_eof(client)), "");
    }
}

/// Chats through a server: a greeting, a line relayed back; panics if the server is not there.
fn assert_serves(addr: SocketAddr) {
    let mut a = std_connect(addr);
    assert!(std_line(&mut a).contains("连接成功"));
    a.get_mut().write_all(b"still here\n").expect("send");
    // Others coming and going may be announced first.
    let relayed = (0..10)
        .map(|_| std_line(&mut a))
        .find(|line| !line.starts_with("*** "));
    assert!(relayed.is_some_and(|line| line.ends_with("> still here")));
}

#[test]
fn serve_outlives_a_log_pipe_that_closed() {
    // `tcpchat --serve 2>&1 | head -1`: the reader takes the first line and goes away.
    let mut served = Served::start("127.0.0.1:0");
    served.stop_reading_log();
    // Each connection writes several log lines into the closed pipe.
    for _ in 0..3 {
        assert_serves(served.addr);
    }
    assert_eq!(
        served.terminate(),
        0,
        "exits cleanly, not from a panic (101)"
    );
}

#[test]
fn serve_outlives_a_full_disk_under_its_log() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    // The log cannot say where it listens, so the port comes from a listener bound and closed
    // just before; another process taking it in between is retried.
    let mut last_error = String::new();
    for _ in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let listen = format!("127.0.0.1:{port}");
        let data = data_home();
        let mut child = tcpchat()
            .args(["--serve", "--listen", &listen])
            .env("XDG_DATA_HOME", data.path())
            .stdout(Stdio::null())
            .stderr(full.try_clone().expect("dup /dev/full"))
            .spawn()
            .expect("spawn tcpchat --serve");
        let addr: SocketAddr = listen.parse().expect("address");
        let deadline = Instant::now() + DEADLINE;
        let up = loop {
            if let Ok(Some(status)) = child.try_wait() {
                break Err(format!("exited with {status} before listening"));
            }
            if std::net::TcpStream::connect(addr).is_ok() {
                break Ok(());
            }
            if Instant::now() >= deadline {
                break Err("never listened".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Err(error) = up {
            let _ = child.kill();
            let _ = child.wait();
            last_error = error;
            continue;
        }
        let mut served = Served {
            child,
            _data: data,
            addr,
            log: None,
        };
        for _ in 0..3 {
            assert_serves(served.addr);
        }
        assert_eq!(
            served.terminate(),
            0,
            "exits cleanly, not from a panic (101)"
        );
        return;
    }
    panic!("could not start the server on a free port: {last_error}");
}

#[test]
fn serve_on_a_port_in_use_exits_1_with_one_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("local_addr").to_string();
    let output = run(&["--serve", "--listen", &addr]);
    let lines = stderr_lines(&output);
    assert_eq!(output.status.code(), Some(1), "{lines:?}");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("tcpchat: ") && lines[0].contains("cannot listen on"),
        "{lines:?}"
    );
}

#[test]
fn serve_over_ipv6_loopback() {
    let ipv6 = std::net::TcpListener::bind("[::1]:0")
        .map(drop)
        .map_err(|e| format!("cannot bind [::1]: {e}"));
    if !prerequisite("ipv6", ipv6) {
        return;
    }
    let mut served = Served::start("[::1]:0");
    assert_eq!(served.addr.ip(), std::net::Ipv6Addr::LOCALHOST);
    let mut a = std_connect(served.addr);
    assert!(std_line(&mut a).contains("you are guest-1"));
    assert!(std_line(&mut a).starts_with("*** history of #lobby"));
    a.get_mut().write_all(b"over v6\n").expect("send");
    assert_eq!(std_line(&mut a), "<guest-1> over v6");
    assert_eq!(served.terminate(), 0);
    assert_eq!(std_line(&mut a), "*** server shutting down");
    assert_eq!(String::from_utf8_lossy(&std_read_to_eof(&mut a)), "");
}

// ---------------------------------------------------------------- the limit flags

type Line = BufReader<std::net::TcpStream>;

/// Reads lines until one satisfies `want` (at most 10,000); returns the ones before it.
fn lines_until(client: &mut Line, want: impl Fn(&str) -> bool) -> Vec<String> {
    let mut before = Vec::new();
    for _ in 0..10_000 {
        let line = std_line(client);
        if want(&line) {
            return before;
        }
        before.push(line);
    }
    panic!("the line never came; the last seen: {:?}", before.last());
}

/// Joins a chat server: the greeting, and the history that follows it (the server keeps
/// history in the data home it was given); returns the nick the server gave.
fn join(addr: SocketAddr) -> (Line, String) {
    join_stream(std_connect(addr))
}

fn join_stream(mut client: Line) -> (Line, String) {
    let greeting = std_line(&mut client);
    let nick = greeting
        .split_once("you are ")
        .and_then(|(_, rest)| rest.split_once(';'))
        .map(|(nick, _)| nick.to_owned())
        .unwrap_or_else(|| panic!("no nick in {greeting:?}"));
    let history = std_line(&mut client);
    assert!(history.starts_with("*** history of "), "{history:?}");
    if !history.contains("none yet") {
        lines_until(&mut client, |l| l.starts_with("*** end of history"));
    }
    (client, nick)
}

fn say(client: &mut Line, text: &str) {
    client.get_mut().write_all(text.as_bytes()).expect("send");
}

#[test]
fn serve_max_line_refuses_longer_lines_and_keeps_the_connection() {
    let served = Served::start_with("127.0.0.1:0", &["--max-line", "16"]);
    let (mut a, nick) = join(served.addr);
    // 16 bytes, 16 with CRLF (the \r is not counted), 17, then a short one.
    say(
        &mut a,
        "0123456789abcdef\n0123456789ABCDEF\r\n0123456789abcdefg\nnext\n",
    );
    assert_eq!(std_line(&mut a), format!("<{nick}> 0123456789abcdef"));
    assert_eq!(std_line(&mut a), format!("<{nick}> 0123456789ABCDEF"));
    assert_eq!(
        std_line(&mut a),
        "! line too long (limit 16 bytes); skipped to its end"
    );
    assert_eq!(std_line(&mut a), format!("<{nick}> next"));
}

/// Line `i` of [`dropped_behind`]: a number, then `x`s up to `len` bytes.
fn numbered(i: usize, len: usize) -> String {
    let mut line = format!("{i:06} ");
    line.extend(std::iter::repeat_n('x', len - line.len()));
    line
}

/// Starts a server with `args`, a member that never reads (a small receive buffer, so its
/// socket fills after a few MiB) and one that says numbered lines of `len` bytes, each after
/// the last came back, until the room drops the first as too slow. Returns how many of the
/// talker's lines the dropped member never got: what its send queue held, the line it was
/// refused on, and the one its writer was in the middle of. (Checks on the way that it got a
/// prefix of the lines, in order, then the notice, then a clean EOF.)
fn lines_lost_by_a_member_that_does_not_read(args: &[&str], len: usize) -> usize {
    let mut args = args.to_vec();
    args.extend(["--flood-rate", "0"]);
    let served = Served::start_with("127.0.0.1:0", &args);
    let (mut talker, nick) = join(served.addr);
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    socket
        .connect_timeout(&served.addr.into(), DEADLINE)
        .expect("connect");
    let stream: std::net::TcpStream = socket.into();
    stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let (mut silent, silent_nick) = join_stream(BufReader::new(stream));
    lines_until(&mut talker, |l| {
        l.starts_with(&format!("*** {silent_nick} joined"))
    });

    let dropped = format!("*** {silent_nick} left (too slow)");
    let mut sent = 0;
    'talking: loop {
        assert!(
            sent < 20_000,
            "the member that does not read was never dropped"
        );
        say(&mut talker, &format!("{}\n", numbered(sent, len)));
        let echo = format!("<{nick}> {}", numbered(sent, len));
        sent += 1;
        loop {
            let line = std_line(&mut talker);
            if line.starts_with(&dropped) {
                break 'talking;
            }
            if line == echo {
                break;
            }
        }
    }

    let everything = std_read_to_eof(&mut silent);
    let text = String::from_utf8(everything).expect("UTF-8");
    let mut lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.pop(),
        Some("! you were dropped: too slow (your send queue was full)"),
        "the last line before EOF"
    );
    let prefix = format!("<{nick}> ");
    let got: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter(|l| l.len() == len)
        .collect();
    for (i, line) in got.iter().enumerate() {
        assert_eq!(*line, numbered(i, len), "line {i} of what it got");
    }
    let lost = sent - got.len();
    eprintln!(
        "{args:?}: {sent} lines said, {} received, {lost} lost",
        got.len()
    );
    lost
}

#[test]
fn serve_outbox_bounds_what_a_member_that_does_not_read_may_queue_in_lines() {
    // Lines of 1,000 bytes: 16 of them are far from the byte budget (1 MiB); the defaults
    // (1024 lines, 1 MiB) would lose about a thousand.
    let lost = lines_lost_by_a_member_that_does_not_read(&["--outbox", "16"], 1000);
    // The 16 queued, the line refused, the one being written (cut short); a few more if the
    // talker said them before it heard of the drop.
    assert!(
        (17..=32).contains(&lost),
        "{lost} lines lost with --outbox 16"
    );
}

#[test]
fn serve_outbox_bytes_bounds_what_a_member_that_does_not_read_may_queue_in_bytes() {
    // Lines of 4 KiB (4,106 bytes on the wire with `<guest-1> ` and the newline): 32 KiB holds
    // 7 of them, far below the line budget (1,000); the default of 1 MiB would lose 255.
    const LEN: usize = 4096;
    let wire = "<guest-1> ".len() + LEN + 1;
    let queued = 32 * 1024 / wire;
    let lost = lines_lost_by_a_member_that_does_not_read(
        &["--outbox", "1000", "--outbox-bytes", "32768"],
        LEN,
    );
    assert!(
        (queued + 1..=queued + 16).contains(&lost),
        "{lost} lines of {wire} bytes lost with --outbox-bytes 32768"
    );
}

#[test]
fn serve_flood_burst_and_rate_delay_lines_past_the_burst() {
    let served = Served::start_with(
        "127.0.0.1:0",
        &["--flood-burst", "10", "--flood-rate", "20"],
    );
    let (mut a, nick) = join(served.addr);
    let lines: String = (0..30).map(|i| format!("f{i:02}\n")).collect();
    let started = Instant::now();
    say(&mut a, &lines);
    // The burst at once, then the notice (once, with the rate), then the rest: nothing lost.
    for i in 0..10 {
        assert_eq!(std_line(&mut a), format!("<{nick}> f{i:02}"));
    }
    assert_eq!(
        std_line(&mut a),
        "! flood limit: 20 lines/s; your lines are delayed, none dropped"
    );
    for i in 10..30 {
        assert_eq!(std_line(&mut a), format!("<{nick}> f{i:02}"));
    }
    // 20 lines past the burst at 20 a second: a second at least (a busy machine only makes it
    // longer).
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900), "30 lines in {took:?}");
}

#[test]
fn serve_flood_rate_zero_turns_the_limit_off() {
    let served = Served::start_with("127.0.0.1:0", &["--flood-burst", "1", "--flood-rate", "0"]);
    let (mut a, nick) = join(served.addr);
    let lines: String = (0..300).map(|i| format!("f{i:03}\n")).collect();
    say(&mut a, &lines);
    for i in 0..300 {
        assert_eq!(
            std_line(&mut a),
            format!("<{nick}> f{i:03}"),
            "no notice, no delay"
        );
    }
}

#[test]
fn serve_ack_mode_is_the_articles_threaded_server() {
    let served = Served::start_with("127.0.0.1:0", &["--mode", "ack"]);
    let mut client = std_connect(served.addr).into_inner();
    let mut greeting = [0u8; 12];
    Read::read_exact(&mut client, &mut greeting).expect("the greeting");
    assert_eq!(&greeting, b"Hello World!");
    // Each read gets one `N:ACK!`, N from 1 to 1000, and nothing else (no newline).
    for i in 0..40 {
        let message = ["hello", "你好", "exit now", "x"][i % 4];
        client.write_all(message.as_bytes()).expect("send");
        let mut reply = Vec::new();
        while !reply.ends_with(b":ACK!") {
            let mut buf = [0u8; 64];
            let n = Read::read(&mut client, &mut buf).expect("the reply");
            assert!(n > 0, "closed after {message:?}");
            reply.extend_from_slice(&buf[..n]);
        }
        let reply = String::from_utf8(reply).expect("UTF-8");
        let n: u32 = reply
            .strip_suffix(":ACK!")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{reply:?} after {message:?}"));
        assert!((1..=1000).contains(&n), "{reply:?}");
    }
    // `exit` alone ends it: the server closes, with nothing more said.
    client.write_all(b"exit").expect("send");
    let mut rest = Vec::new();
    Read::read_to_end(&mut client, &mut rest).expect("a clean EOF");
    assert_eq!(rest, b"");
}

#[test]
fn quiet_keeps_the_listening_line_and_warnings_only() {
    let mut served = Served::start_with("127.0.0.1:0", &["-q"]);
    let mut client = std_connect(served.addr);
    std_line(&mut client); // greeting
    drop(client);
    assert_eq!(served.terminate(), 0);
    let (lines, drain) = served.log.take().expect("the log");
    drain.join().expect("the log reader");
    let rest: Vec<String> = lines.try_iter().collect();
    assert!(
        rest.iter().all(|line| !line.contains("INFO")),
        "only the listening line is info with -q: {rest:?}"
    );
}

#[test]
fn log_file_takes_the_log_and_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("server.log");
    let data = data_home();
    let child = tcpchat()
        .args(["--serve", "--listen", "127.0.0.1:0", "--log-file"])
        .arg(&file)
        .env("XDG_DATA_HOME", data.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tcpchat --serve");
    // The file is written as the server starts: poll it for the address (bounded).
    let deadline = Instant::now() + DEADLINE;
    let addr: SocketAddr = loop {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        if let Some(addr) = text
            .split_once("listening on ")
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .and_then(|addr| addr.parse().ok())
        {
            break addr;
        }
        assert!(
            Instant::now() < deadline,
            "no listening line in the log file"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut client = std_connect(addr);
    std_line(&mut client);
    drop(client);
    kill(child.id(), libc::SIGTERM);
    let output = child.wait_with_output().expect("wait");
    assert_eq!(output.status.code(), Some(0));
    assert!(
        output.stderr.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("accepted"), "{text}");
    assert!(!text.contains("\x1b["), "no colour codes in a file: {text}");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn the_config_file_gives_defaults_flags_win_and_problems_name_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tcpchat").join("config.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(
        &config,
        "nick = \"alice\"\nscrollback = \"lots\"\ncolour = \"blue\"\n\
         [serve]\nmax_clients = 7\nflood_rate = 0\n[keys]\nhelp = \"F10\"\n",
    )
    .unwrap();
    let print = |args: &[&str]| {
        let output = tcpchat()
            .env("XDG_CONFIG_HOME", dir.path())
            .args(args)
            .arg("--print-config")
            .output()
            .expect("run tcpchat");
        assert_eq!(output.status.code(), Some(0));
        String::from_utf8(output.stdout).unwrap()
    };
    let shown = print(&[]);
    let row = |shown: &str, flag: &str| {
        shown
            .lines()
            .find(|line| line.starts_with(&format!("{flag} ")))
            .unwrap_or_else(|| panic!("no {flag} in {shown}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        row(&shown, "--nick"),
        "--nick alice config file, line 1 (nick)"
    );
    assert_eq!(row(&shown, "--scrollback"), "--scrollback 10000 default");
    assert_eq!(
        row(&shown, "keys.help"),
        "keys.help F10 config file, line 8"
    );
    assert_eq!(
        row(&shown, "--max-clients"),
        "--max-clients 7 config file, line 5 (serve.max_clients)"
    );
    let file = config.display().to_string();
    assert!(
        shown.contains(&format!("problem: {file}:2: scrollback: must be a number")),
        "{shown}"
    );
    assert!(
        shown.contains(&format!(
            "problem: {file}:3: colour: not a setting; ignored"
        )),
        "{shown}"
    );
    // A flag wins over the file; a client joining elsewhere takes no [serve] setting.
    let shown = print(&["--serve", "--max-clients", "9"]);
    assert_eq!(row(&shown, "--max-clients"), "--max-clients 9 command line");
    assert_eq!(
        row(&shown, "--nick"),
        "--nick - not set",
        "no client settings for --serve"
    );
    let shown = print(&["127.0.0.1:9"]);
    assert_eq!(row(&shown, "--max-clients"), "--max-clients 1024 default");

    // And the server really runs with them.
    let mut served = {
        let data = data_home();
        let mut child = tcpchat()
            .env("XDG_CONFIG_HOME", dir.path())
            .env("XDG_DATA_HOME", data.path())
            .args(["--serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let drain = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let addr = listening_address(&rx).expect("listening");
        Served {
            child,
            _data: data,
            addr,
            log: Some((rx, drain)),
        }
    };
    let clients: Vec<_> = (0..7)
        .map(|_| {
            let mut client = std_connect(served.addr);
            std_line(&mut client);
            client
        })
        .collect();
    let mut eighth = std_connect(served.addr);
    assert_eq!(std_line(&mut eighth), "! server full, try again later");
    drop(clients);
    assert_eq!(served.terminate(), 0);
}

/// A connection to `addr` whose reads give up after `wait`.
fn connect_reading_within(addr: SocketAddr, wait: Duration) -> std::net::TcpStream {
    let stream = std::net::TcpStream::connect_timeout(&addr, DEADLINE).expect("connect");
    stream.set_read_timeout(Some(wait)).expect("read timeout");
    stream
}

#[test]
fn a_paused_server_queues_handshakes_up_to_the_backlog_drops_the_rest_and_greets_on_sigusr1() {
    let mut served = Served::start_with("127.0.0.1:0", &["--backlog", "1", "--pause-accept"]);
    // Linux queues backlog + 1 finished handshakes: both connect, and nobody greets them (a
    // greeting comes in microseconds; half a second of silence is far beyond it).
    let quiet = Duration::from_millis(500);
    let queued: Vec<_> = (0..2)
        .map(|_| connect_reading_within(served.addr, quiet))
        .collect();
    for stream in &queued {
        let mut byte = [0u8; 1];
        let error = (&*stream)
            .read(&mut byte)
            .expect_err("a greeting from a paused server");
        assert!(
            matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
            "{error}"
        );
    }
    // The queue is full: the next SYN is dropped, not refused (a refusal would be at once;
    // the first SYN retry comes after 1 s, so 700 ms sees only silence).
    let started = Instant::now();
    let third = std::net::TcpStream::connect_timeout(&served.addr, Duration::from_millis(700));
    let error = third.expect_err("connected past a full accept queue");
    assert_eq!(error.kind(), ErrorKind::TimedOut, "{error}");
    assert!(started.elapsed() >= Duration::from_millis(700), "{error}");

    kill(served.child.id(), libc::SIGUSR1);
    for stream in queued {
        stream
            .set_read_timeout(Some(DEADLINE))
            .expect("read timeout");
        let mut reader = BufReader::new(stream);
        let greeting = std_line(&mut reader);
        assert!(greeting.contains("连接成功"), "{greeting}");
    }
    let (log, _) = served.log.as_ref().expect("the log");
    let deadline = Instant::now() + DEADLINE;
    let said_paused = std::iter::from_fn(|| {
        log.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .ok()
    })
    .any(|line| line.contains("accepting paused"));
    assert!(said_paused, "no `accepting paused` in the log");
    assert_eq!(served.terminate(), 0);
}

#[test]
fn without_so_reuseaddr_a_restart_meets_time_wait_and_with_it_does_not() {
    let mut first = Served::start("127.0.0.1:0");
    let addr = first.addr.to_string();
    {
        let mut client = std_connect(first.addr);
        std_line(&mut client);
        // The server closes first (its goodbye, then FIN): its side of this connection waits
        // out TIME-WAIT on the port. The client reads to the end, then closes too.
        assert_eq!(first.terminate(), 0);
        std_read_to_eof(&mut client);
    }
    let output = run(&["--serve", "--listen", &addr, "--no-reuseaddr"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {addr}: ")) && stderr.contains("in use"),
        "{stderr}"
    );
    // With SO_REUSEADDR (the default) the same port binds at once.
    let mut again = Served::start(&addr);
    assert_eq!(again.terminate(), 0);
}

/// `language` in the config file is `--lang`: shown with its line by `--print-config`, beaten by
/// the flag, and a value `--lang` refuses is a problem naming the file, the line and the key.
#[test]
fn the_config_files_language_is_a_setting_like_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let print = |text: &str, args: &[&str]| {
        std::fs::write(&config, text).unwrap();
        let output = tcpchat()
            .arg("--config")
            .arg(&config)
            .args(args)
            .arg("--print-config")
            .output()
            .expect("run tcpchat");
        assert_eq!(output.status.code(), Some(0));
        String::from_utf8(output.stdout).unwrap()
    };
    let lang = |shown: &str| {
        shown
            .lines()
            .find(|line| line.starts_with("--lang "))
            .unwrap_or_else(|| panic!("no --lang in {shown}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let shown = print("nick = \"alice\"\nlanguage = \"zh\"\n", &[]);
    assert_eq!(lang(&shown), "--lang zh config file, line 2 (language)");
    let shown = print("language = \"zh\"\n", &["--lang", "en"]);
    assert_eq!(lang(&shown), "--lang en command line");
    let shown = print("\nlanguage = \"fr\"\n", &[]);
    assert_eq!(lang(&shown), "--lang auto default");
    let file = config.display().to_string();
    assert!(
        shown.contains(&format!(
            "problem: {file}:2: language: invalid value 'fr' for '--lang <LANG>'"
        )),
        "{shown}"
    );
}
