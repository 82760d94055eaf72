//! Resident memory of the client's state with a full scrollback.
//!
//! For each capacity (10,000 lines, the default, and 100,000, as with `--scrollback 100000`)
//! a fresh process of this same binary builds an [`tcpchat::app::App`] at 200×50, feeds it
//! twice its capacity of realistic lines in 8 KiB reads through `App::on_net` (so the
//! scrollback is full and has dropped its oldest lines, the steady state of a long session),
//! and reads `VmRSS` from `/proc/self/status` before and after. One process per case, so memory
//! freed by one case cannot hide the next one's. The input is generated one read at a time and
//! never held whole, so the growth is the client's own.
//!
//! Printed per case: resident growth in KiB, bytes per line kept, the text those lines hold
//! (what a `Vec<String>` of them would need at the least) and the ratio of the two.
//!
//! Run with `cargo bench --bench client_memory`; `tools/loadgen/bench/client.sh` runs it too.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod support;

use std::process::Command;

use support::{Chat, connected_app, fill};

/// Capacities measured: the default and a large `--scrollback`.
const CAPACITIES: [usize; 2] = [tcpchat::scrollback::DEFAULT_CAPACITY, 100_000];

/// What one case measured, all in bytes except `lines`.
struct Figures {
    lines: usize,
    grown: u64,
    text: usize,
    peak: u64,
}

/// `VmRSS` and `VmHWM` of this process, in bytes.
fn resident() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .expect("field in /proc/self/status")
            * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Runs one case in this process and prints it as `key=value` pairs for the parent.
fn child(capacity: usize) {
    let (before, _) = resident();
    let mut app = connected_app(capacity);
    fill(&mut app, &mut Chat::new(42), 2 * capacity);
    let (after, peak) = resident();
    let lines = app.scrollback.len();
    assert_eq!(lines, capacity, "the scrollback is full");
    let text: usize = app.scrollback.entries().map(|e| e.text.len()).sum();
    std::hint::black_box(&app);
    println!(
        "lines={lines} grown={} text={text} peak={}",
        after.saturating_sub(before),
        peak.saturating_sub(before)
    );
}

fn run_child(capacity: usize) -> Figures {
    let exe = std::env::current_exe().expect("current_exe");
    let output = Command::new(exe)
        .args(["--child", &capacity.to_string()])
        .output()
        .expect("run the measuring child");
    assert!(
        output.status.success(),
        "child failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    let value = |key: &str| -> u64 {
        stdout
            .split_whitespace()
            .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{key} in {stdout:?}"))
    };
    Figures {
        lines: value("lines") as usize,
        grown: value("grown"),
        text: value("text") as usize,
        peak: value("peak"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--child") {
        let capacity = args[at + 1].parse().expect("capacity");
        child(capacity);
        return;
    }
    println!("client memory: App at 200x50, scrollback full (fed 2x its capacity)");
    println!();
    println!(
        "| scrollback | resident growth | per line | text per line | growth ÷ text | peak growth |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    for capacity in CAPACITIES {
        let f = run_child(capacity);
        let lines = f.lines as f64;
        println!(
            "| {} lines | {} KiB | {:.0} B | {:.0} B | {:.2} | {} KiB |",
            f.lines,
            f.grown / 1024,
            f.grown as f64 / lines,
            f.text as f64 / lines,
            f.grown as f64 / f.text as f64,
            f.peak / 1024,
        );
    }
}
