//! Smoke runs of the real `tcpchat-load` binary against tcpchat's real server and this
//! package's peers on loopback, so the benchmark tooling (`tools/loadgen/bench/run.sh`) cannot
//! rot: tiny fan-outs, short echo runs and a few idle connections, each checked from the load
//! generator's one-line report. Not the benchmarks.
//!
//! tcpchat's server is the library's [`server::run`] in this process (the `tcpchat` binary
//! belongs to another package of the workspace, so Cargo does not build it for these tests); it
//! serves what `tcpchat --serve` serves. The peers are this package's examples (`bare_relay`,
//! `bare_echo`, `chat_baseline`), which `cargo test` builds next to the binaries. The load
//! generator is this package's binary, run as a process.

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
        Self::start_with(Config {
            mode,
            ..Config::default()
        })
    }

    fn start_with(config: Config) -> Self {
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

/// One of this package's examples, listening on 127.0.0.1 and a port the OS picks; killed when
/// dropped.
struct Peer {
    child: std::process::Child,
    addr: String,
}

impl Peer {
    fn start(example: &str) -> Self {
        // Examples are built into `examples/` beside the directory of the package's binaries.
        let bin = std::path::Path::new(env!("CARGO_BIN_EXE_tcpchat-load"));
        let path = bin.with_file_name("examples").join(example);
        assert!(
            path.exists(),
            "{} is not built: run `cargo test -p tcpchat-load`, which builds the examples",
            path.display()
        );
        let mut child = Command::new(&path)
            .args(["--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the peer");
        // Its first line says where it listens; the rest of its log is read and dropped (a
        // closed pipe would fail its writes).
        let mut first = String::new();
        let mut stderr = std::io::BufReader::new(child.stderr.take().expect("the peer's stderr"));
        std::io::BufRead::read_line(&mut stderr, &mut first).expect("the peer's first line");
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        let addr = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("{example} said {first:?}"))
            .to_owned();
        Self { child, addr }
    }
}

impl Drop for Peer {
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

/// The report's fields of a run that ended incomplete (exit code 3).
fn incomplete_report(output: &Output, mode: &str) -> HashMap<String, String> {
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().expect("a report line");
    let mut words = line.split_whitespace();
    assert_eq!(words.next(), Some(mode), "{line}");
    words
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Several `--target`s, as `bench/cluster.sh` gives a cluster's nodes: here two servers that
/// share nothing, so every same-server line arrives and every cross-server one is reported
/// lost once the run settles, apart from the others, rather than waited for.
#[test]
fn clients_spread_over_two_servers_and_report_same_and_cross_server_lines_apart() {
    let (a, b) = (Served::start(Mode::Chat), Served::start(Mode::Chat));
    let targets = format!("{},{}", a.addr(), b.addr());
    let pids = format!("{},{}", Served::pid(), Served::pid());
    let output = load(&[
        "fanout",
        "--clients",
        "4",
        "--senders",
        "2",
        "--lines",
        "5",
        "--settle",
        "0.3",
        "--target",
        &targets,
        "--server-pid",
        &pids,
        "--timeout",
        "8",
    ]);
    let fields = incomplete_report(&output, "fanout");
    // Clients 0 and 2 on a, 1 and 3 on b; sender 0 on a, sender 1 on b: each receiver expects
    // 5 lines from its own server and 5 from the other.
    for (key, value) in [
        ("nodes", "2"),
        ("expected", "40"),
        ("delivered", "20"),
        ("lost", "20"),
        ("expected_same", "20"),
        ("delivered_same", "20"),
        ("lost_same", "0"),
        ("expected_cross", "20"),
        ("delivered_cross", "0"),
        ("lost_cross", "20"),
        ("duplicated", "0"),
        ("timed_out", "false"),
    ] {
        assert_eq!(fields[key], value, "{key}: {fields:?}");
    }
    assert!(fields.contains_key("same_p99_ms") && !fields.contains_key("cross_p99_ms"));

    let idle = load(&[
        "idle",
        "--clients",
        "6",
        "--hold",
        "0.2",
        "--target",
        &targets,
        "--server-pid",
        &pids,
        "--timeout",
        "8",
    ]);
    let fields = report(&idle, "idle");
    assert_eq!(fields["held"], "6");
    assert_eq!(
        (fields["held_n0"].as_str(), fields["held_n1"].as_str()),
        ("3", "3")
    );
    assert!(fields.contains_key("rss_per_conn_kib_n1"), "{fields:?}");
}

/// `--tls`: the same fan-out and idle runs against the server speaking TLS.
#[test]
fn fanout_and_idle_over_tls() {
    let dir = std::env::temp_dir().join(format!("tcpchat-load-tls-{}", std::process::id()));
    let source = tcpchat::tls::server::CertSource::self_signed(&dir, "");
    let tls = tcpchat::tls::server::ServerTls::new(source).expect("a certificate");
    let server = Served::start_with(Config {
        tls: Some(std::sync::Arc::new(tls)),
        ..Config::default()
    });
    let addr = server.addr();
    let fanout = load(&[
        "fanout",
        "--tls",
        "--clients",
        "3",
        "--senders",
        "1",
        "--lines",
        "5",
        "--target",
        &addr,
        "--timeout",
        "8",
    ]);
    let fields = report(&fanout, "fanout");
    assert_eq!(fields["delivered"], "15");
    assert_eq!(fields["lost"], "0");
    let idle = load(&[
        "idle",
        "--tls",
        "--clients",
        "5",
        "--hold",
        "0.2",
        "--target",
        &addr,
        "--timeout",
        "8",
    ]);
    assert_eq!(report(&idle, "idle")["held"], "5");
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
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

/// A fan-out of 3 clients, one sending 5 lines, through `peer` spoken to as `proto`: every line
/// reaches the two others intact (neither server sends a line back to its sender).
fn fanout_through(example: &str, proto: &str) {
    let peer = Peer::start(example);
    let pid = peer.child.id().to_string();
    let output = load(&[
        "fanout",
        "--clients",
        "3",
        "--senders",
        "1",
        "--lines",
        "5",
        "--proto",
        proto,
        "--target",
        &peer.addr,
        "--server-pid",
        &pid,
        "--timeout",
        "8",
    ]);
    let fields = report(&output, "fanout");
    assert_eq!(fields["expected"], "10", "{fields:?}");
    assert_eq!(fields["delivered"], "10", "{fields:?}");
    assert_eq!(fields["mangled"], "0", "{fields:?}");
    assert!(
        fields.contains_key("server_cpu_us_per_delivery"),
        "{fields:?}"
    );
}

#[test]
fn fanout_through_the_bare_relay_which_never_says_who_is_in() {
    fanout_through("bare_relay", "relay");
}

#[test]
fn fanout_through_the_tokio_chat_re_creation() {
    fanout_through("chat_baseline", "tokio-chat");
}

#[test]
fn idle_connections_to_the_bare_relay_are_held_once_it_has_taken_them() {
    let peer = Peer::start("bare_relay");
    let pid = peer.child.id().to_string();
    let output = load(&[
        "idle",
        "--clients",
        "20",
        "--hold",
        "0.2",
        "--proto",
        "relay",
        "--target",
        &peer.addr,
        "--server-pid",
        &pid,
        "--timeout",
        "8",
    ]);
    let fields = report(&output, "idle");
    assert_eq!(fields["held"], "20", "{fields:?}");
    // Each heard the probe's barrier at least once (11 bytes with its newline).
    let bytes: u64 = fields["bytes_in"].parse().unwrap();
    assert!(bytes >= 20 * 11, "{fields:?}");
}

#[test]
fn echo_round_trips_against_the_bare_echo_server() {
    let peer = Peer::start("bare_echo");
    let output = load(&[
        "echo",
        "--conns",
        "2",
        "--seconds",
        "0.3",
        "--proto",
        "bare-echo",
        "--target",
        &peer.addr,
        "--timeout",
        "8",
    ]);
    let fields = report(&output, "echo");
    assert_eq!(fields["errors"], "0");
    let round_trips: u64 = fields["round_trips"].parse().unwrap();
    assert!(round_trips > 10, "{fields:?}");
}
