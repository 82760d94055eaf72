//! CPU and wake-ups of the real client while nothing happens.
//!
//! Starts the release `tcpchat --serve --listen 127.0.0.1:0`, then the release client against
//! it in a 200×50 pseudo-terminal (portable-pty; the screen is parsed with vt100 to know when
//! it is connected), lets it settle, and samples the client process over [`WINDOW`] of
//! idleness, summed over all its threads (`/proc/PID/task/*`):
//!
//! - CPU: `utime + stime` clock ticks from `stat` (the figure; the target is 0–1) and
//!   nanoseconds on a CPU from `schedstat` (finer grained);
//! - wake-ups: voluntary and involuntary context switches from `status`;
//! - bytes written to the terminal: a redraw while idle would show here.
//!
//! The same is measured with the TCP inspector open (F2), which samples `TCP_INFO` live while
//! it is shown and so is expected to wake; and, for reference, the idle server with the one
//! client. Loopback only; every child is killed when its guard drops.
//!
//! Run with `cargo bench --bench client_idle`; `tools/loadgen/bench/client.sh` runs it too.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::io::{BufRead, BufReader, Read, Write};
use std::num::NonZeroU16;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};

/// How long each idle sample lasts.
const WINDOW: Duration = Duration::from_secs(5);

/// Time after the last expected change before sampling starts.
const SETTLE: Duration = Duration::from_secs(1);

/// The longest any wait for the screen may take.
const DEADLINE: Duration = Duration::from_secs(15);

const COLS: u16 = 200;
const ROWS: u16 = 50;

/// F2 as xterm sends it.
const F2: &str = "\x1bOQ";

/// The cursor position query a program may write; a terminal answers it.
const CURSOR_QUERY: &[u8] = b"\x1b[6n";

/// A process's counters at one moment, summed over its threads.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    ticks: u64,
    cpu_ns: u64,
    voluntary: u64,
    involuntary: u64,
    threads: u64,
    rss_kib: u64,
}

fn sample(pid: u32) -> Sample {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // Fields after the command name (which is in parentheses and may hold spaces).
    let fields: Vec<&str> = stat[stat.rfind(')').expect("comm") + 2..]
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of stat(5); here index 11 and 12.
    let ticks =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    let mut s = Sample {
        ticks,
        ..Sample::default()
    };
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).expect("task dir") {
        let dir = task.expect("task").path();
        s.threads += 1;
        if let Ok(schedstat) = std::fs::read_to_string(dir.join("schedstat")) {
            s.cpu_ns += schedstat
                .split_whitespace()
                .next()
                .and_then(|ns| ns.parse::<u64>().ok())
                .unwrap_or(0);
        }
        let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
        s.voluntary += status_field(&status, "voluntary_ctxt_switches:");
        s.involuntary += status_field(&status, "nonvoluntary_ctxt_switches:");
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    s.rss_kib = status_field(&status, "VmRSS:");
    s
}

fn status_field(status: &str, name: &str) -> u64 {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The counters of `pid` (and the terminal output counter) across [`WINDOW`].
fn measure(pid: u32, output: &AtomicU64) -> (Sample, u64) {
    let (a, out_a) = (sample(pid), output.load(Ordering::SeqCst));
    thread::sleep(WINDOW);
    let (b, out_b) = (sample(pid), output.load(Ordering::SeqCst));
    let delta = Sample {
        ticks: b.ticks - a.ticks,
        cpu_ns: b.cpu_ns.saturating_sub(a.cpu_ns),
        voluntary: b.voluntary.saturating_sub(a.voluntary),
        involuntary: b.involuntary.saturating_sub(a.involuntary),
        threads: b.threads,
        rss_kib: b.rss_kib,
    };
    (delta, out_b - out_a)
}

/// Kills the child when dropped, so a failed run leaves nothing behind.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the server on an OS-chosen loopback port; returns it and the address it bound.
fn server() -> (Guard, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tcpchat"))
        .args(["--serve", "--listen", "127.0.0.1:0"])
        // An idle measurement needs no history: no store is opened or written.
        .arg("--retain=0")
        .env("RUST_LOG", "tcpchat=info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the server");
    let stderr = child.stderr.take().expect("stderr");
    let guard = Guard(child);
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut sent = false;
        // Keep draining, so the server never blocks on a full pipe.
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent && let Some(rest) = line.split("listening on ").nth(1) {
                let addr = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let _ = tx.send(addr);
                sent = true;
            }
        }
    });
    let addr = rx
        .recv_timeout(DEADLINE)
        .expect("the server names its address");
    assert!(addr.starts_with("127.0.0.1:"), "loopback only: {addr}");
    (guard, addr)
}

fn nonzero(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).expect("not zero")
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn main() {
    let (mut server, addr) = server();
    let server_pid = server.0.id();

    let pair = native_pty_system()
        .openpty(PtySize {
            rows: ROWS,
            cols: COLS,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("openpty");
    let mut command = CommandBuilder::new(env!("CARGO_BIN_EXE_tcpchat"));
    command.args([addr.as_str(), "--nick", "idler"]);
    command.env("TERM", "xterm-256color");
    command.env_remove("RUST_LOG");
    let mut client = pair.slave.spawn_command(command).expect("spawn the client");
    drop(pair.slave);
    let pid = client.process_id().expect("client pid");
    let mut reader = pair.master.try_clone_reader().expect("pty reader");
    let writer = Arc::new(Mutex::new(pair.master.take_writer().expect("pty writer")));
    let parser = Arc::new(Mutex::new(vt100::Parser::new(
        nonzero(ROWS),
        nonzero(COLS),
        0,
    )));
    let output = Arc::new(AtomicU64::new(0));
    {
        let (parser, output, writer) = (parser.clone(), output.clone(), writer.clone());
        thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                let chunk = &buf[..n];
                output.fetch_add(n as u64, Ordering::SeqCst);
                let mut parser = parser.lock().unwrap();
                let mut rest = chunk;
                while let Some(at) = find(rest, CURSOR_QUERY) {
                    let (before, after) = rest.split_at(at + CURSOR_QUERY.len());
                    parser.process(before);
                    let (row, col) = parser.screen().cursor_position();
                    let mut writer = writer.lock().unwrap();
                    let _ = write!(writer, "\x1b[{};{}R", row + 1, col + 1);
                    let _ = writer.flush();
                    rest = after;
                }
                parser.process(rest);
            }
        });
    }
    let wait_for = |text: &str| {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let screen = parser.lock().unwrap().screen().contents();
            if screen.contains(text) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {text:?}; screen:\n{screen}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for(" connected ");
    wait_for("now known as idler");
    thread::sleep(SETTLE);

    let (idle, idle_out) = measure(pid, &output);
    let (server_idle, _) = measure(server_pid, &output);

    writer.lock().unwrap().write_all(F2.as_bytes()).expect("F2");
    wait_for("TCP inspector");
    thread::sleep(SETTLE);
    let (inspecting, inspecting_out) = measure(pid, &output);

    let _ = writer.lock().unwrap().write_all(b"\x03"); // Ctrl-C
    let deadline = Instant::now() + Duration::from_secs(3);
    while client.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let _ = client.kill();
    let _ = server.0.kill();

    let secs = WINDOW.as_secs_f64();
    println!(
        "client idle: real binary in a {COLS}x{ROWS} pty, connected to --serve on loopback; \
         {secs:.0} s windows"
    );
    println!();
    println!(
        "| process | state | CPU ticks | CPU time | wake-ups (vol+invol ctx switches) | \
         terminal output | threads | VmRSS |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    let row = |who: &str, state: &str, s: Sample, out: Option<u64>| {
        println!(
            "| {who} | {state} | {} | {:.3} ms | {} ({}+{}) | {} | {} | {} KiB |",
            s.ticks,
            s.cpu_ns as f64 / 1e6,
            s.voluntary + s.involuntary,
            s.voluntary,
            s.involuntary,
            out.map_or("–".to_owned(), |b| format!("{b} B")),
            s.threads,
            s.rss_kib,
        );
    };
    row("client", "idle, connected", idle, Some(idle_out));
    row(
        "client",
        "idle, inspector open (F2)",
        inspecting,
        Some(inspecting_out),
    );
    row("server", "idle, 1 client", server_idle, None);
    println!();
    println!(
        "idle target (0–1 ticks, no fixed tick): {}",
        if idle.ticks <= 1 && idle.voluntary + idle.involuntary == 0 && idle_out == 0 {
            "met"
        } else if idle.ticks <= 1 {
            "met for CPU ticks; see wake-ups"
        } else {
            "MISSED"
        }
    );
}
