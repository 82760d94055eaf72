//! Smoke runs of the real `tcpchat-load` binary against the real `tcpchat --serve` on loopback,
//! so the benchmark tooling (`bench/run.sh`) cannot rot: a tiny fan-out in chat mode and a short
//! echo run, each checked from the load generator's one-line report. Not the benchmarks.

// In a test a failed expectation is meant to panic: that is the test failing.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The longest either process may take.
const DEADLINE: Duration = Duration::from_secs(10);

/// A `tcpchat --serve` process on a port the OS picks; killed when dropped.
struct Served {
    child: Child,
    addr: String,
}

impl Served {
    fn start(mode: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tcpchat"))
            .args(["--serve", "--listen", "127.0.0.1:0", "--mode", mode])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tcpchat --serve");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        // Keeps draining the log for the life of the server, so logging never blocks it.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let addr = loop {
            let line = rx
                .recv_timeout(DEADLINE)
                .expect("the server logs its address");
            if let Some((_, rest)) = line.split_once("listening on ") {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        Self { child, addr }
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
    let server = Served::start("chat");
    let output = load(&[
        "fanout",
        "--clients",
        "3",
        "--senders",
        "1",
        "--lines",
        "5",
        "--target",
        &server.addr,
        "--server-pid",
        &server.pid(),
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
    let server = Served::start("echo");
    let output = load(&[
        "echo",
        "--conns",
        "2",
        "--seconds",
        "0.3",
        "--target",
        &server.addr,
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
