//! Smoke runs of the real `tcpchat-load` binary against tcpchat's real server on loopback, so the
//! benchmark tooling (`tools/loadgen/bench/run.sh`) cannot rot: a tiny fan-out in chat mode and a
//! short echo run, each checked from the load generator's one-line report. Not the benchmarks.
//!
//! The server is the library's [`server::run`] in this process (the `tcpchat` binary belongs to
//! another package of the workspace, so Cargo does not build it for these tests); it serves what
//! `tcpchat --serve` serves. The load generator is this package's binary, run as a process.

// In a test a failed expectation is meant to panic: that is the test failing.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use tcpchat::server::{self, Config, Mode};
use tokio_util::sync::CancellationToken;

/// The longest either side may take.
const DEADLINE: Duration = Duration::from_secs(10);

/// tcpchat's server on 127.0.0.1 and a port the OS picks, on a runtime thread of its own; shut
/// down (as by SIGTERM) when dropped.
struct Served {
    addr: SocketAddr,
    shutdown: CancellationToken,
    thread: Option<JoinHandle<()>>,
}

impl Served {
    fn start(mode: Mode) -> Self {
        // Bound before the thread starts: connections made from now on wait in the backlog, so
        // the load generator may start at once.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("bound address");
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("the server's runtime");
            runtime.block_on(async move {
                let listener =
                    tokio::net::TcpListener::from_std(listener).expect("register the listener");
                let config = Config {
                    mode,
                    ..Config::default()
                };
                server::run(listener, config, token).await;
            });
        });
        Self {
            addr,
            shutdown,
            thread: Some(thread),
        }
    }

    fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// The process the server runs in (this one), for the load generator's CPU figures.
    fn pid() -> String {
        std::process::id().to_string()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(thread) = self.thread.take() {
            let joined = thread.join();
            if !std::thread::panicking() {
                assert!(joined.is_ok(), "the server thread panicked");
            }
        }
    }
}

/// Runs `tcpchat-load ARGS` to completion (killed after [`DEADLINE`]).
fn load(args: &[&str]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_tcpchat-load"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tcpchat-load");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(DEADLINE) {
        Ok(output) => output.expect("wait for tcpchat-load"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("tcpchat-load {args:?} did not finish within {DEADLINE:?}");
        }
    }
}

/// The report's `key=value` fields, after checking the run succeeded.
fn report(output: &Output, mode: &str) -> HashMap<String, String> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "tcpchat-load failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    let line = stdout.lines().last().expect("a report line");
    let mut words = line.split_whitespace();
    assert_eq!(words.next(), Some(mode), "{line}");
    words
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[test]
fn fanout_delivers_every_line_to_every_client_including_the_sender() {
    let server = Served::start(Mode::Chat);
    let output = load(&[
        "fanout",
        "--clients",
        "3",
        "--senders",
        "1",
        "--lines",
        "5",
        "--target",
        &server.addr(),
        "--server-pid",
        &Served::pid(),
        "--timeout",
        "8",
    ]);
    let fields = report(&output, "fanout");
    // tcpchat sends a line to everyone, its sender included: 3 receivers × 5 lines.
    assert_eq!(fields["expected"], "15");
    assert_eq!(fields["delivered"], "15");
    assert_eq!(fields["lost"], "0");
    assert_eq!(fields["duplicated"], "0");
    assert_eq!(fields["mangled"], "0");
    assert!(fields.contains_key("p99_ms"), "{fields:?}");
    assert!(
        fields.contains_key("server_cpu_us_per_delivery"),
        "{fields:?}"
    );
}

#[test]
fn echo_round_trips_against_the_articles_echo_server() {
    let server = Served::start(Mode::Echo);
    let output = load(&[
        "echo",
        "--conns",
        "2",
        "--seconds",
        "0.3",
        "--target",
        &server.addr(),
        "--timeout",
        "8",
    ]);
    let fields = report(&output, "echo");
    assert_eq!(fields["errors"], "0");
    let round_trips: u64 = fields["round_trips"].parse().unwrap();
    assert!(round_trips > 10, "{fields:?}");
}

#[test]
fn only_loopback_targets_are_accepted() {
    let output = load(&["idle", "--clients", "1", "--target", "192.0.2.1:8888"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("only 127.0.0.1 and ::1"), "{stderr}");
}
