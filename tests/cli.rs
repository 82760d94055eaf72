//! End-to-end tests of the real `tcpchat` binary: its command line, exit codes and `--serve`
//! over real loopback TCP. Every server listens on a port the OS picks.

// In a test a failed expectation is meant to panic: that is the test failing.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{DEADLINE, std_connect, std_line, std_read_to_eof};

fn tcpchat() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tcpchat"));
    command
        .stdin(Stdio::null())
        .env_remove("RUST_LOG")
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
        let data = data_home();
        let mut child = tcpchat()
            .args(["--serve", "--listen", listen])
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
fn bad_arguments_exit_2_with_one_line_on_stderr() {
    let cases: &[&[&str]] = &[
        &["--bogus"],
        &["--serve", "--listen", "nonsense"],
        &["--nick", "a b"],
        &["--mode", "echo"],
    ];
    for args in cases {
        let output = run(args);
        let lines = stderr_lines(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {lines:?}");
        assert_eq!(lines.len(), 1, "{args:?}: {lines:?}");
        assert!(lines[0].starts_with("tcpchat: "), "{args:?}: {lines:?}");
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
    if let Err(error) = std::net::TcpListener::bind("[::1]:0") {
        eprintln!("skipped: cannot bind [::1] here ({error})");
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
