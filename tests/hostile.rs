//! The hostile-case catalogue of issue 6 (item 1), server side: every case the issue lists,
//! each with what must happen, and where its test is. Everything runs over real TCP on
//! loopback (127.0.0.1, ::1) on ports the OS picks; every wait has a deadline.
//!
//! Tests marked *here* are in this file; `server.rs`, `cli.rs` and `tui/...` are the other test
//! crates. Cases that involve the real client in a terminal (a hostile *server*) are in
//! `tests/tui/hostile.rs`. Five cases marked "fixed" were defects this catalogue found; their
//! tests failed before the fix and pass now. No test here is ignored, and none skips itself
//! silently (see *Prerequisites* below).
//!
//! # Framing
//! | case | must happen | test |
//! |---|---|---|
//! | a line sent one byte at a time | arrives whole, once | here: `framing_a_line_sent_one_byte_at_a_time_arrives_whole` |
//! | a multi-byte character split across reads | reassembled, no U+FFFD, no notice | here: `framing_a_multibyte_character_split_across_reads_is_reassembled`; unit: `codec::tests` |
//! | three lines in one send | three lines, each with its prefix, in order | here: `framing_three_lines_in_one_send_are_three_lines`; `server.rs::each_line_of_one_write_gets_its_own_prefix` |
//! | a line one under, exactly at, one over the limit, a multi-byte character straddling it | under and at relayed whole; over refused with `! line too long`, skipped to its end, the connection stays | here: `framing_lines_at_the_default_limit_with_a_character_straddling_it`; `server.rs::max_line_*` (limit 16) |
//! | 10 MB with no newline | sender told `! line too long` once, the rest skipped, server RSS grows < 4 MiB, others chat meanwhile | here: `framing_ten_megabytes_without_a_newline_is_refused_in_bounded_memory` |
//! | 100,000 empty lines | nothing relayed, no flood notice, done quickly, others unaffected | here: `framing_a_hundred_thousand_empty_lines_are_ignored_quickly` |
//! | a last line without newline, then FIN | delivered (like `printf bye \| nc -N`), then `left (closed)` | here: `framing_a_last_line_without_newline_then_fin_is_delivered` |
//!
//! # Bytes
//! | case | must happen | test |
//! |---|---|---|
//! | invalid UTF-8: stray continuations, overlongs, surrogates, truncated, > U+10FFFF, 5/6-byte forms, FE/FF | each maximal invalid subpart becomes one U+FFFD; the sender is told once; valid text around it intact | here: `bytes_invalid_utf8_of_every_kind_becomes_replacement_characters` |
//! | NUL bytes, a UTF-8 BOM, Latin-1 text | NUL dropped; the BOM passes (it is valid U+FEFF); Latin-1 bytes become U+FFFD | here: `bytes_nul_bom_and_latin1` |
//!
//! # Injection (to `nc` users; the TUI side is in `tui/hostile.rs`)
//! | case | must happen | test |
//! |---|---|---|
//! | CSI (clear, cursor moves, colours, modes, queries, 8-bit CSI) | removed whole, the text around it kept | here: `injection_escape_sequences_and_controls_are_never_relayed`; `server.rs::control_characters_never_reach_other_clients` |
//! | OSC (title, clipboard 52, hyperlink 8, 8-bit OSC, unterminated), DCS/APC/PM/SOS, RIS, charset | removed whole | same test |
//! | C1 controls encoded as UTF-8 (U+0080–U+009F) | removed (string introducers with their string) | same test |
//! | backspace / DEL runs, CR, BEL, VT, FF, NUL | removed; tab kept | same test |
//! | bidi overrides and isolates | removed | same test |
//! | the same through `/me` and `/quit REASON` | removed there too | here: `injection_through_me_and_quit_reason_is_removed` |
//! | zero-width and invisible characters in nicks (ZW*, LRM/RLM, word joiner, BOM, soft hyphen, CGJ, Hangul fillers, variation selectors, tags, odd spaces, controls, bidi) | no nick ever holds one: refused with a `! ` line, or (controls and bidi, which the sanitiser removes before the command is read) taken without them | here: `injection_invisible_characters_in_nicks_are_refused`; `server.rs::invalid_nicks_are_refused_and_the_connection_stays` |
//! | the rest of Unicode's default-ignorable characters in nicks (U+061C, U+17B4/5, U+180B–D, U+180F, U+1BCA0–3, U+1D173–A) | refused | fixed (a defect this catalogue found): `injection_every_default_ignorable_character_in_a_nick_is_refused` |
//! | the client drawing them raw (chat lines, events, the nick in the status bar, a sequence cut between reads) | never; the visible text shown | `tui/hostile.rs::hostile_server_escape_sequences_never_reach_the_terminal`, `tui/main.rs::network_control_sequences_never_reach_the_terminal` |
//! | the same bytes in the inspector's raw reads (F2) | shown as hex and `.`, never sent | `tui/hostile.rs::hostile_bytes_in_the_inspectors_raw_reads_are_shown_not_sent` |
//!
//! # Width (the client; the server relays text byte for byte)
//! | case | must happen | test |
//! |---|---|---|
//! | wide characters at every wrap boundary, widths 1 to 200 | no panic, alive, wraps whole | `tui/hostile.rs::width_sweep_from_1_to_200_columns_with_wide_text`, `tui/main.rs::wide_characters_wrap_whole_at_an_odd_width`; unit: `scrollback` |
//! | emoji with variation selectors and ZWJ sequences | relayed byte-identical; drawn | `server.rs::valid_utf8_passes_byte_identical`, `tui/hostile.rs::width_sweep_from_1_to_200_columns_with_wide_text` |
//! | a 5,000-character token with no spaces | broken at the width, nothing lost | `tui/hostile.rs::a_five_thousand_character_token_is_broken_at_the_width` |
//! | 100,000 messages of 1 KB in the scrollback (`--scrollback 100000`: all kept) | a key typed mid-flood is echoed, Page Up is prompt, the last is shown, RSS < 512 MiB | `tui/hostile.rs::a_hundred_thousand_messages_of_one_kilobyte_keep_the_client_responsive` |
//! | (client side) 10 MB without a newline from a server | shown, responsive, bounded | fixed (a defect this catalogue found): `tui/hostile.rs::a_server_line_of_ten_megabytes_without_newline` |
//!
//! # Load
//! | case | must happen | test |
//! |---|---|---|
//! | one client flooding 200,000 lines (at a flood rate of 25,000/s: the default 250/s would take 800 s) | the flooder is delayed (no faster than the rate, told), never dropped, every line delivered in order; others' lines arrive within 1 s and none is lost | here: `load_a_flood_of_two_hundred_thousand_lines_is_delayed_not_dropped`; `server.rs::flood_is_delayed_not_dropped_and_does_not_delay_others` |
//! | a client that never reads | dropped alone as too slow, told why; others unaffected | `server.rs::slow_reader_is_dropped_alone_and_told_why` |
//! | ten clients that send `/who` 1,100 times in a 300-member room and never read | each pins at most its outbox budget (1 MiB): it is not read while its own queue is half full; others chat; every reply arrives once they read | fixed (a defect an independent chaos run found: 7 → 239 MiB): `load_clients_that_ask_and_never_read_pin_a_bounded_amount_of_memory` |
//! | a client with a 1 KB receive window that reads slowly | gets everything in order, or is dropped with the notice; never corrupt data | here: `load_a_one_kilobyte_receive_window_gets_everything_or_the_notice` |
//! | 1,000 connections that send one byte and stall | each told `! line not finished` and closed after the line timeout; sockets back to baseline; slots reusable; others chat meanwhile | here: `load_a_thousand_slowloris_connections_are_freed_by_the_line_timeout`; `server.rs::a_line_left_unfinished_past_the_line_timeout_closes_the_connection` |
//! | a steady stream whose every write ends one line and begins the next | not mistaken for slowloris | fixed (a defect this catalogue found): `load_a_steady_stream_that_splits_every_line_is_not_a_slowloris` |
//! | 2,000 connect-and-close per second for 10 s | server alive, a normal client chats during and after, sockets back to baseline | here: `load_two_thousand_connect_and_close_per_second_for_ten_seconds` |
//! | 10,000 join/leave cycles | sockets back to baseline, RSS near it, only the observer online | here: `load_ten_thousand_join_leave_cycles_leak_nothing` |
//!
//! # Faults
//! | case | must happen | test |
//! |---|---|---|
//! | a client reset (RST) mid-stream | others see `left (reset)`; its unfinished line is not relayed; the room goes on | here: `faults_a_reset_mid_stream_is_announced_and_the_room_goes_on`; `server.rs::reset_is_announced_as_reset` |
//! | a client half-close (FIN) that keeps reading | gets every reply it is owed (`/who`, `/help`, its own line, `exit`'s goodbye), then the server's FIN | here: `faults_a_half_closed_client_still_gets_what_it_is_owed` |
//! | a client that vanishes without FIN | TCP keepalive notices (`--keepalive`), the room is told | here: `faults_a_client_that_vanishes_without_fin_is_noticed_by_keepalive` (a network namespace whose policy routing drops the client's packets) |
//! | the same, while the server has data in flight to it | noticed in about the same time | fixed (a defect this catalogue found): `faults_a_vanished_client_with_data_in_flight_is_noticed` |
//! | many clients leaving at once | each one's last line is the reason for its close (`* bye`, `! line not finished`) | fixed (a defect this catalogue found): `faults_the_goodbye_is_the_last_line` |
//! | the server killed under the client | the client says so and reconnects when it is back | `tui/main.rs::server_killed_under_the_client_reconnects` (SIGTERM), `tui/hostile.rs::server_sigkilled_under_the_client_is_reported_and_rejoined` (SIGKILL) |
//! | `--serve` on a port in use | one line, exit 1 | `cli.rs::serve_on_a_port_in_use_exits_1_with_one_line` |
//! | `--serve` on a privileged port | one line, exit 1 (as root, CI included: run as `nobody` in a network namespace of its own) | here: `faults_serve_on_a_privileged_port_fails_with_one_line` |
//! | `--serve` on an address not on this host (192.0.2.1, 2001:db8::1) | one line naming it (EADDRNOTAVAIL), exit 1, at once | here: `faults_serve_on_an_address_not_on_this_host_fails_with_one_line` |
//! | `--serve` on a name that does not resolve | one line, exit 1, at once (a name glibc refuses before any query: no test waits on a resolver) | here: `faults_serve_on_a_name_that_does_not_resolve_fails_with_one_line` |
//! | IPv6 `[::1]` | works | `cli.rs::serve_over_ipv6_loopback`; `2001:db8::1` here: `faults_serve_on_an_address_not_on_this_host_fails_with_one_line` |
//! | a name that does not resolve (client) | `cannot resolve` shown, keeps running | `tui/hostile.rs::a_name_that_does_not_resolve_is_shown_and_the_client_keeps_running` |
//! | a panic in a per-connection task | that member `left (server error)`, the server lives, others chat, new clients join, SIGTERM still exits 0 | here: `faults_a_panic_in_one_connection_task_leaves_the_server_running`; the TUI on such a connection: `tui/hostile.rs::a_server_task_panic_under_the_client_is_survived` |
//! | SIGTERM, SIGHUP, SIGINT to the server | `* server shutting down` to every client, clean FIN, exit 0 | `cli.rs::serve_chats_and_sigterm_says_goodbye_then_exits_0` (TERM), here: `faults_sighup_and_sigint_to_the_server_shut_down_cleanly` |
//! | SIGTERM, SIGHUP, SIGINT to the client | terminal restored (`ESC [?1049l`, and the pty's termios modes as they were), exit 0 | `tui/main.rs::sigterm_restores_terminal`, `tui/main.rs::ctrl_c_quits_at_once_and_restores` (Ctrl-C as a key), `tui/hostile.rs::sighup_and_sigint_to_the_client_restore_the_terminal` |
//! | a panic in the client, an error exit | terminal restored (modes too) before the message, which is on the main screen; exit 101, exit 1 | `tui/hostile.rs::a_panic_in_the_client_restores_the_terminal`, `tui/hostile.rs::an_error_exit_restores_the_terminal` (the debug-build fault hook `TCPCHAT_FAULT_ON_F12`) |
//! | resizes to 1×1 and 200 in a row | no panic, alive, a correct screen after | `tui/main.rs::resize_rewraps` (1×1), `tui/hostile.rs::width_sweep_from_1_to_200_columns_with_wide_text` |
//!
//! The heavy cases take the `HEAVY` lock so that at most one runs at a time on a small machine;
//! their memory and socket figures are read from `/proc/PID` of a spawned `tcpchat --serve`,
//! which no other test shares.
//!
//! Timing: what a heavy case asserts is behaviour (nothing lost, in order, nobody blocked,
//! sockets back, memory bounded). Where a time is asserted, the bound is a margin stated
//! next to it, far from what the defect it catches would cost, so a busy machine cannot break
//! it: a round trip through a loaded server must come back within `common::NOT_BLOCKED` (5 s;
//! idle it takes under a millisecond). Memory bounds are not margins for load: memory does not
//! grow when the machine is busy.
//!
//! # Prerequisites
//! Three cases need what not every machine has: `netns` (the keepalive cases: `unshare`,
//! `nsenter`, `ip`, and root or user namespaces), `ipv6` (`::1`) and, for a user other than
//! root, `privport` (a port only root may bind: `net.ipv4.ip_unprivileged_port_start` above 1).
//! Missing, such a case fails and says so, unless `TCPCHAT_TEST_SKIP` names the prerequisite
//! (`TCPCHAT_TEST_SKIP=netns,ipv6`): then it prints `SKIPPED <test>: needs ...` on the real
//! stderr, visible in every run, and returns. `.ci/run` makes sure CI has all three and never
//! sets the variable, so in CI every case runs.

// Raising RLIMIT_NOFILE and entering a network namespace need libc; each call says why it is
// sound.
#![allow(unsafe_code)]
// In a test a failed expectation is meant to panic: that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use common::{
    Client, DEADLINE, NOT_BLOCKED, Reader, Server, join, prerequisite, spawn_server, std_line,
};
use tcpchat::server::{FloodLimit, Limits, Mode};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpSocket;
use tokio::time::timeout;

/// One heavy case at a time: they measure time, memory and descriptors.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const NO_FLOOD_LIMIT: FloodLimit = FloodLimit {
    burst: 1_000_000,
    per_second: 0.0,
};

const TOO_LONG_8K: &str = "! line too long (limit 8192 bytes); skipped to its end";
const NOT_UTF8: &str = "! your line had bytes that are not UTF-8; they became U+FFFD";
const DROPPED: &str = "! you were dropped: too slow (your send queue was full)";

async fn chat() -> Server {
    spawn_server(Mode::Chat, Limits::default()).await
}

/// Two joined clients, `guest-1` and `guest-2`, with the join already read by the first.
async fn pair(server: &Server) -> (Client, Client) {
    let (mut a, _) = join(server.addr).await;
    let (b, _) = join(server.addr).await;
    a.expect("*** guest-2 joined; 2 online").await;
    (a, b)
}

/// Whether `c` is something that must never reach another person's terminal.
fn is_terminal_control(c: char) -> bool {
    (c.is_control() && c != '\t') || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Fails unless `line` is free of terminal control.
fn assert_inert(line: &str) {
    if let Some(bad) = line.chars().find(|&c| is_terminal_control(c)) {
        panic!(
            "{:?} reached a client in {line:?}",
            bad.escape_unicode().to_string()
        );
    }
}

/// Reads lines until `marker` and returns those before it.
async fn lines_until(rx: &mut Reader, marker: &str) -> Vec<String> {
    let mut seen = Vec::new();
    for _ in 0..10_000 {
        let line = rx.line().await;
        if line == marker {
            return seen;
        }
        seen.push(line);
    }
    panic!("{marker:?} never came; saw {seen:?}");
}

// ---------------------------------------------------------------- the real binary

/// A `tcpchat --serve` child on 127.0.0.1:0 with its log collected; killed on drop.
struct Bin {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    /// Its own data home (`XDG_DATA_HOME`): no test shares a store or writes the user's.
    _data: tempfile::TempDir,
}

impl Bin {
    /// `tcpchat --serve --listen 127.0.0.1:0 ARGS` with `env` set.
    fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tcpchat"));
        command
            .args(["--serve", "--listen", "127.0.0.1:0"])
            .args(args);
        Self::spawn(command, env)
    }

    /// Runs `command` (which must start a server whose log says `listening on ADDR`).
    fn spawn(mut command: Command, env: &[(&str, &str)]) -> Self {
        let data = tempfile::tempdir().expect("a temporary data home");
        command
            .env("XDG_DATA_HOME", data.path())
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn tcpchat --serve");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        {
            let log = log.clone();
            // Drains the log for the life of the process, so logging never blocks it; only the
            // lines that matter to a test are kept.
            thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    let _ = tx.send(line.clone());
                    let routine = line.contains(" accepted") || line.contains(" joined");
                    if !routine && !line.contains(" closed") {
                        log.lock().unwrap().push(line);
                    }
                }
            });
        }
        let deadline = Instant::now() + DEADLINE;
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the server never said `listening on`; its log:\n{}",
                    log.lock().unwrap().join("\n")
                );
            };
            if let Some((_, rest)) = line.split_once("listening on ") {
                break rest
                    .split_whitespace()
                    .next()
                    .and_then(|a| a.parse().ok())
                    .expect("an address after `listening on`");
            }
        };
        Self {
            child,
            addr,
            log,
            _data: data,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sockets the server process holds open: its listener and one per connection, what a
    /// leaked connection would leave behind. (Its other descriptors come and go on their own:
    /// the store opens a reader at the first join with history to replay, and one per
    /// `/history` question.)
    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .expect("read /proc/PID/fd")
            .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
            .filter(|target| target.to_string_lossy().starts_with("socket:"))
            .count()
    }

    /// Resident memory of the server process, in KiB.
    fn rss_kib(&self) -> u64 {
        rss_kib(self.pid())
    }

    /// Waits (polling, within `within`) until the socket count is at most `want`.
    fn wait_fds_at_most(&self, want: usize, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let now = self.fds();
            if now <= want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the server still has {now} sockets open, {want} before"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Sends `signal` and returns the exit code, which must come within 3 s.
    fn stop_with(&mut self, signal: libc::c_int) -> i32 {
        kill(self.pid(), signal);
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code().unwrap_or_else(|| {
                    panic!("killed by a signal: {status}; log:\n{}", self.log_text())
                });
            }
            assert!(
                Instant::now() < deadline,
                "no exit within 3 s of signal {signal}"
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Bin {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// Sends `signal` to process `pid`.
fn kill(pid: u32, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(pid).expect("pid fits pid_t");
    // SAFETY: kill(2) takes plain integers and touches no memory of ours; `pid` is a child we
    // spawned and have not reaped, so it names no unrelated process.
    let result = unsafe { libc::kill(pid, signal) };
    assert_eq!(result, 0, "kill({pid}, {signal})");
}

/// Makes sure this process (and the servers it spawns after) may open `want` descriptors,
/// raising the soft limit up to the hard one if needed.
fn raise_nofile(want: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we own, which lives across the call.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) },
        0
    );
    if limit.rlim_cur >= want {
        return;
    }
    assert!(
        limit.rlim_max >= want,
        "RLIMIT_NOFILE hard limit {} < {want}",
        limit.rlim_max
    );
    limit.rlim_cur = want;
    // SAFETY: setrlimit only reads the struct we own; raising the soft limit up to the hard one
    // is always allowed and affects only descriptor numbering limits.
    assert_eq!(
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const limit) },
        0
    );
}

/// A std client of the binary: connects, reads its greeting, returns the stream.
/// Joins a `tcpchat --serve` and reads its greeting and the history that follows it (its
/// servers keep history, each in a data home of its own).
fn std_join(addr: SocketAddr) -> BufReader<TcpStream> {
    let mut client = common::std_connect(addr);
    let greeting = std_line(&mut client);
    assert!(greeting.starts_with("*** 连接成功"), "{greeting:?}");
    let history = std_line(&mut client);
    assert!(
        history.starts_with("*** history of #lobby: "),
        "{history:?}"
    );
    if !history.contains("none yet") {
        while !std_line(&mut client).starts_with("*** end of history") {}
    }
    client
}

/// Closes with RST (SO_LINGER 0) instead of FIN.
fn reset_std(stream: TcpStream) {
    socket2::SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .expect("SO_LINGER");
    drop(stream);
}

/// A thread reading an observer's lines: each line with its arrival time, for the test to
/// look at; it never lets the observer's queue fill up.
struct Observer {
    writer: TcpStream,
    lines: mpsc::Receiver<(Instant, String)>,
    seen: Vec<String>,
}

impl Observer {
    fn new(reader: BufReader<TcpStream>) -> Self {
        let writer = reader.get_ref().try_clone().expect("clone the stream");
        reader
            .get_ref()
            .set_read_timeout(None)
            .expect("blocking reads");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            let mut reader = reader;
            let mut line = String::new();
            loop {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let text = line.trim_end_matches('\n').to_owned();
                        if tx.send((Instant::now(), text)).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        Self {
            writer,
            lines,
            seen: Vec::new(),
        }
    }

    fn send(&mut self, text: &str) {
        self.writer
            .write_all(text.as_bytes())
            .expect("observer send");
    }

    /// Waits for a line satisfying `want`; returns it with its arrival time.
    fn expect(
        &mut self,
        want: impl Fn(&str) -> bool,
        what: &str,
        within: Duration,
    ) -> (Instant, String) {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((at, line)) => {
                    let found = want(&line);
                    if self.seen.len() > 50 {
                        self.seen.remove(0);
                    }
                    self.seen.push(line.clone());
                    if found {
                        return (at, line);
                    }
                }
                Err(_) => panic!(
                    "the observer never got {what} within {within:?}; its last lines:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Says `text` and measures how long until its own line comes back (waiting up to 30 s,
    /// so that a slow answer is measured and reported rather than mistaken for none).
    fn round_trip(&mut self, nick: &str, text: &str) -> Duration {
        let sent = Instant::now();
        self.send(&format!("{text}\n"));
        let want = format!("<{nick}> {text}");
        let (at, _) = self.expect(|l| l == want, &want, Duration::from_secs(30));
        at - sent
    }

    /// [`Observer::round_trip`], which must take less than [`NOT_BLOCKED`]: the room goes on
    /// whatever load the test puts on the server.
    fn not_blocked(&mut self, nick: &str, text: &str) -> Duration {
        let took = self.round_trip(nick, text);
        assert!(
            took < NOT_BLOCKED,
            "{text:?} took {took:?} to come back: the room was blocked (margin {NOT_BLOCKED:?})"
        );
        took
    }
}

// ---------------------------------------------------------------- framing

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framing_a_line_sent_one_byte_at_a_time_arrives_whole() {
    let server = chat().await;
    let (mut a, mut b) = pair(&server).await;
    let text = "slow 你好 😀 é line";
    for byte in format!("{text}\n").bytes() {
        a.send([byte]).await;
        // Pacing, not synchronisation: gives each byte its own segment and (usually) its own
        // read on the server; the expectations hold however the bytes are grouped.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    b.expect(&format!("<guest-1> {text}")).await;
    a.expect(&format!("<guest-1> {text}")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framing_a_multibyte_character_split_across_reads_is_reassembled() {
    let server = chat().await;
    let (mut a, mut b) = pair(&server).await;
    for character in ["é", "你", "😀"] {
        let bytes = character.as_bytes();
        for cut in 1..bytes.len() {
            a.send([b"x".as_slice(), &bytes[..cut]].concat()).await;
            // Pacing (see above): the two parts arrive in two segments.
            tokio::time::sleep(Duration::from_millis(20)).await;
            a.send([&bytes[cut..], format!(" cut {cut}\n").as_bytes()].concat())
                .await;
            let want = format!("<guest-1> x{character} cut {cut}");
            // No `! not UTF-8` notice comes first: the character was never seen as invalid.
            a.expect(&want).await;
            b.expect(&want).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framing_three_lines_in_one_send_are_three_lines() {
    let server = chat().await;
    let (mut a, mut b) = pair(&server).await;
    a.send("one\ntwo 二\r\nthree 三\n").await;
    for client in [&mut a, &mut b] {
        client.expect("<guest-1> one").await;
        client.expect("<guest-1> two 二").await;
        client.expect("<guest-1> three 三").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framing_lines_at_the_default_limit_with_a_character_straddling_it() {
    let server = chat().await;
    let (mut a, mut b) = pair(&server).await;
    // 你 is 3 bytes. At the default limit of 8192 bytes: 8191 and 8192 fit; in the 8193-byte
    // line the limit falls inside the character.
    let under = format!("{}你", "u".repeat(8188));
    let at = format!("{}你", "a".repeat(8189));
    let over = format!("{}你", "o".repeat(8190));
    assert_eq!((under.len(), at.len(), over.len()), (8191, 8192, 8193));
    a.send(format!("{under}\n{at}\n{over}\nnext\n")).await;
    a.expect(&format!("<guest-1> {under}")).await;
    a.expect(&format!("<guest-1> {at}")).await;
    a.expect(TOO_LONG_8K).await;
    a.expect("<guest-1> next").await;
    b.expect(&format!("<guest-1> {under}")).await;
    b.expect(&format!("<guest-1> {at}")).await;
    b.expect("<guest-1> next").await;
}

#[test]
fn framing_ten_megabytes_without_a_newline_is_refused_in_bounded_memory() {
    let _heavy = HEAVY.blocking_lock();
    let mut server = Bin::start(&[], &[]);
    let mut observer = Observer::new(std_join(server.addr));
    let sender = std_join(server.addr);
    observer.expect(
        |l| l == "*** guest-2 joined; 2 online",
        "the join",
        DEADLINE,
    );
    let mut sender_rx = Observer::new(sender);
    let mut sender_tx = sender_rx.writer.try_clone().expect("clone");
    sender_tx
        .set_write_timeout(Some(DEADLINE))
        .expect("write timeout");

    let before = server.rss_kib();
    let chunk = vec![b'x'; 64 * 1024];
    let mut peak = before;
    let mut told_at = None;
    for i in 0..160 {
        sender_tx
            .write_all(&chunk)
            .expect("the server kept reading");
        peak = peak.max(server.rss_kib());
        if i == 80 {
            // Half way, with the line unfinished (its newline comes last): others chat as
            // usual. A server that waited for the line's end would never answer here.
            observer.not_blocked("guest-1", "during the 10 MB");
        }
        if told_at.is_none()
            && let Ok((_, line)) = sender_rx.lines.try_recv()
        {
            assert_eq!(line, TOO_LONG_8K);
            told_at = Some(i);
        }
    }
    sender_tx.write_all(b"\nafter\n").expect("send");
    if told_at.is_none() {
        sender_rx.expect(|l| l == TOO_LONG_8K, "the too-long notice", DEADLINE);
    }
    // Nothing of the 10 MB reached anyone, and the sender was told once.
    sender_rx.expect(|l| l == "<guest-2> after", "the line after", DEADLINE);
    let sender_saw = sender_rx.seen.clone();
    assert!(
        sender_saw.iter().all(|l| l == TOO_LONG_8K
            || l.starts_with("<guest-1> during")
            || l == "<guest-2> after"),
        "{sender_saw:?}"
    );
    assert!(sender_saw.iter().filter(|l| *l == TOO_LONG_8K).count() <= 1);
    observer.expect(
        |l| l == "<guest-2> after",
        "the sender's next line",
        DEADLINE,
    );
    assert!(
        observer.seen.iter().all(|l| !l.contains("xxxx")),
        "{:?}",
        observer.seen
    );
    // Measured: +64 KiB. Keeping the line, or any sizeable part of it, would cost 10 MiB;
    // 4 MiB is the margin (memory, unlike time, does not grow when the machine is busy).
    let grew = peak.saturating_sub(before);
    assert!(
        grew < 4 * 1024,
        "the server's RSS grew by {grew} KiB while it skipped 10 MB"
    );
    assert!(server.is_running());
    eprintln!("10 MB without newline: server RSS {before} KiB, peak +{grew} KiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framing_a_hundred_thousand_empty_lines_are_ignored_quickly() {
    let server = chat().await; // the default flood limit: 100 lines, then 250 a second
    let (mut a, mut b) = pair(&server).await;
    let (mut c, _) = join(server.addr).await;
    a.expect("*** guest-3 joined; 3 online").await;
    b.expect("*** guest-3 joined; 3 online").await;
    let blank: String = ["\n", "   \n", "\t\n", "\r\n"]
        .iter()
        .cycle()
        .take(100_000)
        .copied()
        .collect();
    let started = Instant::now();
    a.tx.write_all(blank.as_bytes()).await.expect("send");
    a.send("after\n").await;
    c.send("meanwhile\n").await;
    // At 250 lines a second 100,000 counted lines would take 400 s: they must not count.
    let b_saw = lines_until(&mut b.rx, "<guest-1> after").await;
    assert!(
        b_saw.iter().all(|l| l == "<guest-3> meanwhile"),
        "{b_saw:?}"
    );
    let a_saw = lines_until(&mut a.rx, "<guest-1> after").await;
    assert!(
        a_saw.iter().all(|l| l == "<guest-3> meanwhile"),
        "the sender was told something: {a_saw:?}"
    );
    // Counted against the flood limit, they would take 400 s (and the sender would be told
    // `! flood limit`, which the checks above refuse); measured: well under a second. 60 s is
    // the margin for a debug build on a busy machine.
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(60),
        "100,000 empty lines took {took:?}"
    );
    c.expect("<guest-3> meanwhile").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framing_a_last_line_without_newline_then_fin_is_delivered() {
    let server = chat().await;
    let (mut a, mut b) = pair(&server).await;
    a.send("bye").await;
    a.tx.shutdown().await.expect("shutdown(Write)");
    b.expect("<guest-1> bye").await;
    b.expect("*** guest-1 left (closed); 1 online").await;
    a.expect("<guest-1> bye").await;
    assert_eq!(String::from_utf8_lossy(&a.read_to_eof().await), "");
}

// ---------------------------------------------------------------- bytes

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_invalid_utf8_of_every_kind_becomes_replacement_characters() {
    const R: char = '\u{FFFD}';
    let server = chat().await;
    let (mut a, mut b) = pair(&server).await;
    // Each maximal invalid subpart becomes one U+FFFD (Unicode's recommended practice, which
    // is what the protocol's "replaced by U+FFFD" means).
    let cases: &[(&str, &[u8], String)] = &[
        ("stray continuation", b"\x80", format!("{R}")),
        (
            "stray continuations",
            b"a\x80\xbf\x80b",
            format!("a{R}{R}{R}b"),
        ),
        ("overlong slash, 2 bytes", b"\xc0\xaf", format!("{R}{R}")),
        (
            "overlong NUL (modified UTF-8)",
            b"\xc0\x80",
            format!("{R}{R}"),
        ),
        (
            "overlong slash, 3 bytes",
            b"\xe0\x80\xaf",
            format!("{R}{R}{R}"),
        ),
        (
            "overlong slash, 4 bytes",
            b"\xf0\x80\x80\xaf",
            format!("{R}{R}{R}{R}"),
        ),
        ("high surrogate", b"\xed\xa0\x80", format!("{R}{R}{R}")),
        ("low surrogate", b"\xed\xbf\xbf", format!("{R}{R}{R}")),
        (
            "surrogate pair (CESU-8)",
            b"\xed\xa0\xbd\xed\xb8\x80",
            R.to_string().repeat(6),
        ),
        (
            "above U+10FFFF",
            b"\xf4\x90\x80\x80",
            format!("{R}{R}{R}{R}"),
        ),
        ("F5 lead", b"\xf5\x80\x80\x80", format!("{R}{R}{R}{R}")),
        (
            "5-byte form",
            b"\xf8\x88\x80\x80\x80",
            R.to_string().repeat(5),
        ),
        (
            "6-byte form",
            b"\xfc\x84\x80\x80\x80\x80",
            R.to_string().repeat(6),
        ),
        ("FE and FF", b"\xfe\xff", format!("{R}{R}")),
        ("truncated 2-byte", b"\xc3x", format!("{R}x")),
        ("truncated 3-byte", b"\xe4\xbdx", format!("{R}x")),
        ("truncated 4-byte", b"\xf0\x9f\x98 end", format!("{R} end")),
        ("truncated at the end", b"end\xe4\xbd", format!("end{R}")),
        ("between valid text", "你".as_bytes(), "你".to_owned()),
        (
            "inside valid text",
            b"\xe4\xbd\xa0\xff\xe5\xa5\xbd",
            format!("你{R}好"),
        ),
    ];
    let mut wire = Vec::new();
    for (i, (_, bytes, _)) in cases.iter().enumerate() {
        wire.extend_from_slice(format!("{i:02}:").as_bytes());
        wire.extend_from_slice(bytes);
        wire.push(b'\n');
    }
    a.send(&wire).await;
    a.expect(NOT_UTF8).await;
    for (i, (what, _, want)) in cases.iter().enumerate() {
        let want = format!("<guest-1> {i:02}:{want}");
        // `line()` also checks that what was relayed is valid UTF-8.
        let got = b.rx.line().await;
        assert_eq!(got, want, "{what}");
        assert_eq!(a.line().await, want, "{what}");
    }
    // Told once only, and the connection is fine.
    a.send(b"\xff again\n").await;
    a.expect(&format!("<guest-1> {R} again")).await;
    b.expect(&format!("<guest-1> {R} again")).await;
    let (mut c, _) = join(server.addr).await;
    c.send("still serving\n").await;
    c.expect("<guest-3> still serving").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_nul_bom_and_latin1() {
    const R: char = '\u{FFFD}';
    let server = chat().await;
    let (mut a, mut b) = pair(&server).await;
    // NUL: dropped, like every C0 control but tab. A line of NULs alone says nothing.
    a.send(b"a\0b\0\0c\n\0\0\0\nnul done\n").await;
    b.expect("<guest-1> abc").await;
    b.expect("<guest-1> nul done").await;
    a.expect("<guest-1> abc").await;
    a.expect("<guest-1> nul done").await;

    // A BOM is the valid character U+FEFF: it passes byte for byte.
    a.send("\u{feff}hello with a BOM\n").await;
    assert_eq!(
        b.rx.line_bytes().await,
        "<guest-1> \u{feff}hello with a BOM\n".as_bytes()
    );
    a.expect("<guest-1> \u{feff}hello with a BOM").await;

    // Latin-1 is not UTF-8: each non-ASCII byte becomes U+FFFD, the sender is told once.
    a.send(b"caf\xe9 na\xefve \xa9 \xb1\n").await;
    a.expect(NOT_UTF8).await;
    let want = format!("<guest-1> caf{R} na{R}ve {R} {R}");
    a.expect(&want).await;
    b.expect(&want).await;
}

// ---------------------------------------------------------------- injection

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injection_escape_sequences_and_controls_are_never_relayed() {
    let server = chat().await;
    let (mut a, mut b) = pair(&server).await;
    let mut cases: Vec<(String, &str)> = [
        // CSI
        ("\x1b[2J\x1b[3J\x1b[Hclear", "clear"),
        ("up\x1b[5A\x1b[10;20Hmove\x1b[2K\x1b[1;1f", "upmove"),
        (
            "\x1b[31mred\x1b[38;5;196m256\x1b[38;2;255;0;0mtrue\x1b[0m",
            "red256true",
        ),
        ("\x1b[?1049l\x1b[?25l\x1b[?1000h\x1b[?2004lmodes", "modes"),
        ("\x1b[6n\x1b[c\x1b[>0q\x1b[21tqueries", "queries"),
        (
            "\x1b[1;2;3;4;5;6;7;8;9;10;11;12;13;14;15;16mlong params",
            "long params",
        ),
        ("\u{9b}2J\u{9b}31m8-bit csi", "8-bit csi"),
        // OSC
        ("\x1b]0;pwned\x07title", "title"),
        ("\x1b]2;pwned\x1b\\title st", "title st"),
        ("\x1b]52;c;cm0gLXJmIH4K\x07clipboard", "clipboard"),
        ("\x1b]52;c;?\x1b\\clipboard read", "clipboard read"),
        (
            "\x1b]8;;https://evil.example/\x1b\\link\x1b]8;;\x1b\\",
            "link",
        ),
        ("\x1b]1337;SetUserVar=x\x07iterm", "iterm"),
        ("\u{9d}0;pwned\u{9c}8-bit osc", "8-bit osc"),
        ("open\x1b]0;never closed", "open"),
        // DCS, SOS, PM, APC, and the other ESC forms
        ("\x1bP+q544e\x1b\\dcs", "dcs"),
        (
            "\x1b_apc\x1b\\\x1b^pm\x1b\\\x1bXsos\x1b\\strings",
            "strings",
        ),
        ("\u{90}1$r\u{9c}8-bit dcs", "8-bit dcs"),
        ("\x1bcreset", "reset"),
        ("\x1b7save\x1b8", "save"),
        ("\x1b(0charset\x1b(B", "charset"),
        ("\x1b#8align", "align"),
        ("dangling\x1b", "dangling"),
        // C0 runs: backspace, DEL, CR, BEL, VT, FF, NUL; tab stays
        ("secret\x08\x08\x08\x08\x08\x08public", "secretpublic"),
        ("del\x7f\x7f\x7f\x7frun", "delrun"),
        ("good\rEVIL", "goodEVIL"),
        ("bell\x07\x07\x07", "bell"),
        ("vt\x0bff\x0cnul\0", "vtffnul"),
        ("tab\tkept", "tab\tkept"),
        // bidi overrides and isolates
        ("\u{202e}gnp.exe", "gnp.exe"),
        ("a\u{202a}b\u{202b}c\u{202c}d\u{202d}e", "abcde"),
        ("admin\u{2066}\u{2067}\u{2068}x\u{2069}", "adminx"),
    ]
    .iter()
    .map(|&(input, want)| (input.to_owned(), want))
    .collect();
    // Every C1 control as UTF-8 on its own; the string introducers take their string along.
    for code in 0x80u32..=0x9f {
        let c = char::from_u32(code).unwrap();
        let input = match code {
            0x90 | 0x98 | 0x9d | 0x9e | 0x9f => format!("c1{c}payload\u{9c} {code:x}"),
            0x9b => format!("c1{c}1m {code:x}"),
            _ => format!("c1{c} {code:x}"),
        };
        let want: &str = Box::leak(format!("c1 {code:x}").into_boxed_str());
        cases.push((input, want));
    }
    let wire: String = cases
        .iter()
        .enumerate()
        .map(|(i, (input, _))| format!("{i:02} {input}\n"))
        .collect();
    a.send(wire).await;
    for (i, (input, want)) in cases.iter().enumerate() {
        let want = format!("<guest-1> {i:02} {want}");
        for client in [&mut b, &mut a] {
            let got = client.line().await;
            assert_inert(&got);
            assert_eq!(got, want, "from {input:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injection_through_me_and_quit_reason_is_removed() {
    let server = chat().await;
    let (mut a, mut b) = pair(&server).await;
    a.send("/me \x1b]0;pwned\x07waves\u{202e} \x1b[31mred\n")
        .await;
    for client in [&mut a, &mut b] {
        let got = client.line().await;
        assert_inert(&got);
        assert_eq!(got, "* guest-1 waves red");
    }
    b.send("/quit \x1b[2Jgone\x07\u{9b}1m home\x1b]52;c;eA==\x07\n")
        .await;
    b.expect("*** bye, guest-2; closing the connection").await;
    let left = a.line().await;
    assert_inert(&left);
    assert_eq!(left, "*** guest-2 left (quit: gone home); 1 online");
}

/// Sends `/nick ATTEMPT` for each `(c, attempt)` and checks that no nick containing `c` is
/// ever taken: each is refused with a `! ` line, or (where the sanitiser removes `c` first, as
/// it does every control and bidi character) becomes a nick without it. Then checks that the
/// other client heard nothing it should not have.
async fn no_nick_takes(attempts: &[(char, String)]) {
    // Hundreds of attempts: no flood limit, so that no `! flood limit` notice comes between.
    let limits = Limits {
        flood: NO_FLOOD_LIMIT,
        ..Limits::default()
    };
    let server = spawn_server(Mode::Chat, limits).await;
    let (mut a, mut b) = pair(&server).await;
    let mut taken = Vec::new();
    for (c, attempt) in attempts {
        a.send(format!("/nick {attempt}\n")).await;
        let reply = a.line().await;
        assert_inert(&reply);
        // Refused as a bad character, or (for spaces, which /nick trims) as no nick at all.
        if reply.starts_with("! ") {
            continue;
        }
        let new = reply
            .strip_prefix("*** guest-1 is now known as ")
            .unwrap_or_else(|| panic!("{attempt:?}: {reply:?}"))
            .to_owned();
        if new.contains(*c) {
            taken.push(format!("{} → {new:?}", c.escape_unicode()));
        }
        b.expect(&reply).await;
        // Back to guest-1 for the next attempt.
        a.send("/nick guest-1\n").await;
        let back = format!("*** {new} is now known as guest-1");
        a.expect(&back).await;
        b.expect(&back).await;
    }
    assert!(
        taken.is_empty(),
        "nicks with invisible characters were taken:\n{}",
        taken.join("\n")
    );
    a.send("done\n").await;
    b.expect("<guest-1> done").await;
    a.send("/who\n").await;
    a.expect("<guest-1> done").await;
    a.expect("*** online (2): guest-1, guest-2").await;
}

/// `/nick` attempts around `c`: in the middle, alone, and three of them.
fn nick_attempts(chars: impl IntoIterator<Item = char>) -> Vec<(char, String)> {
    chars
        .into_iter()
        .flat_map(|c| [format!("a{c}b"), c.to_string(), format!("{c}{c}{c}")].map(|n| (c, n)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injection_invisible_characters_in_nicks_are_refused() {
    let mut chars: Vec<char> = vec![
        '\u{200b}',
        '\u{200c}',
        '\u{200d}',
        '\u{200e}',
        '\u{200f}', // zero-width, LRM, RLM
        '\u{2060}',
        '\u{2061}',
        '\u{2062}',
        '\u{2063}',
        '\u{2064}', // word joiner, invisible ops
        '\u{feff}',
        '\u{00ad}',
        '\u{034f}',
        '\u{180e}', // BOM/ZWNBSP, soft hyphen, CGJ, MVS
        '\u{115f}',
        '\u{1160}',
        '\u{3164}',
        '\u{ffa0}', // Hangul fillers
        '\u{fe00}',
        '\u{fe0f}',
        '\u{e0001}',
        '\u{e0041}',
        '\u{e007f}', // selectors, tags
        '\u{00a0}',
        '\u{2007}',
        '\u{202f}',
        '\u{3000}',
        '\u{2028}',
        '\u{2029}', // spaces
        '\u{1b}',
        '\u{7f}',
        '\u{85}',
        '\u{9b}', // controls
    ];
    chars.extend('\u{202a}'..='\u{202e}'); // bidi embeddings and overrides
    chars.extend('\u{2066}'..='\u{2069}'); // bidi isolates
    chars.extend('\u{206a}'..='\u{206f}'); // deprecated format characters
    let mut attempts = nick_attempts(chars);
    attempts.push(('\x1b', "\x1b]0;pwned\x07".to_owned()));
    attempts.push(('<', "<admin>".to_owned()));
    no_nick_takes(&attempts).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injection_every_default_ignorable_character_in_a_nick_is_refused() {
    // Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt): characters a
    // renderer shows as nothing. Unassigned ones are left out (they may be refused or not).
    let mut chars: Vec<char> = vec!['\u{061c}', '\u{17b4}', '\u{17b5}', '\u{180f}'];
    chars.extend('\u{180b}'..='\u{180d}');
    chars.extend('\u{1bca0}'..='\u{1bca3}');
    chars.extend('\u{1d173}'..='\u{1d17a}');
    no_nick_takes(&nick_attempts(chars)).await;
}

// ---------------------------------------------------------------- load

/// Reads `<NICK> f000000`-numbered lines in order until `count` of them; `pings` are another
/// client's lines (`<guest-2> ping N`) whose arrival times are recorded. Any other line is
/// returned in `other`.
struct FloodSeen {
    count: usize,
    pings: Vec<(usize, Instant)>,
    other: Vec<String>,
}

async fn read_flood(
    mut rx: Reader,
    flooder: &str,
    count: usize,
    progress: Arc<AtomicUsize>,
) -> FloodSeen {
    let mut seen = FloodSeen {
        count: 0,
        pings: Vec::new(),
        other: Vec::new(),
    };
    let prefix = format!("<{flooder}> f");
    while seen.count < count {
        let line = timeout(Duration::from_secs(20), rx.line())
            .await
            .expect("the flood stalled");
        if let Some(n) = line.strip_prefix(&prefix) {
            assert_eq!(n, format!("{:06}", seen.count), "out of order or lost");
            seen.count += 1;
            progress.store(seen.count, Ordering::Relaxed);
        } else if let Some(n) = line.strip_prefix("<guest-2> ping ") {
            seen.pings
                .push((n.parse().expect("ping number"), Instant::now()));
        } else {
            seen.other.push(line);
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_a_flood_of_two_hundred_thousand_lines_is_delayed_not_dropped() {
    const LINES: usize = 200_000;
    const RATE: f64 = 25_000.0;
    let _heavy = HEAVY.lock().await;
    // The default rate (250 lines a second) would take 800 s for this flood; a higher rate
    // keeps the test short while the flood still outruns it all the way.
    let limits = Limits {
        flood: FloodLimit {
            burst: 100,
            per_second: RATE,
        },
        ..Limits::default()
    };
    let server = spawn_server(Mode::Chat, limits).await;
    let (a, b) = pair(&server).await;
    let Client {
        rx: a_rx,
        tx: mut a_tx,
    } = a;
    let Client {
        rx: b_rx,
        tx: mut b_tx,
    } = b;
    let a_got = Arc::new(AtomicUsize::new(0));
    let b_got = Arc::new(AtomicUsize::new(0));
    let a_reads = tokio::spawn(read_flood(a_rx, "guest-1", LINES, a_got));
    let b_reads = tokio::spawn(read_flood(b_rx, "guest-1", LINES, b_got.clone()));

    let started = Instant::now();
    let flood = tokio::spawn(async move {
        let mut chunk = String::new();
        for i in 0..LINES {
            chunk.push_str(&format!("f{i:06}\n"));
            if chunk.len() >= 64 * 1024 || i == LINES - 1 {
                timeout(Duration::from_secs(20), a_tx.write_all(chunk.as_bytes()))
                    .await
                    .expect("the flooder's writes stalled")
                    .expect("the flooder was cut off");
                chunk.clear();
            }
        }
        a_tx
    });
    // b chats while the flood is being delivered: a line every 100 ms.
    let mut sent_at = Vec::new();
    while b_got.load(Ordering::Relaxed) < LINES - 2000 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the flood stalled"
        );
        sent_at.push(Instant::now());
        b_tx.write_all(format!("ping {}\n", sent_at.len() - 1).as_bytes())
            .await
            .expect("b's write");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _a_tx = flood.await.expect("flooder task");
    let a_seen = timeout(Duration::from_secs(30), a_reads)
        .await
        .expect("a's reads")
        .expect("a");
    let b_seen = timeout(Duration::from_secs(30), b_reads)
        .await
        .expect("b's reads")
        .expect("b");
    let took = started.elapsed();

    // Delayed: at least the time the rate allows, and the flooder was told.
    let least = Duration::from_secs_f64((LINES - 100) as f64 / RATE);
    assert!(
        took >= least,
        "200,000 lines in {took:?}, faster than the limit"
    );
    let notice = format!("! flood limit: {RATE} lines/s; your lines are delayed, none dropped");
    assert!(a_seen.other.contains(&notice), "{:?}", a_seen.other);
    // Not dropped, and nobody else heard anything but the flood and b's lines.
    assert!(
        a_seen.other.iter().all(|l| *l == notice),
        "{:?}",
        a_seen.other
    );
    assert!(b_seen.other.is_empty(), "{:?}", b_seen.other);
    // b's lines all came back, in order, without waiting for the flood: it lasts at least
    // `least` (8 s), so a line queued behind it would wait seconds. (The time measured
    // includes this test's own readers, which a busy machine slows down: half the flood's
    // length is the margin.)
    let prompt = least / 2;
    for seen in [&a_seen, &b_seen] {
        let numbers: Vec<usize> = seen.pings.iter().map(|&(n, _)| n).collect();
        let sent_before_end: Vec<usize> = (0..numbers.len()).collect();
        assert_eq!(numbers, sent_before_end, "b's lines lost or reordered");
        for &(n, at) in &seen.pings {
            let waited = at - sent_at[n];
            assert!(
                waited < prompt,
                "b's line {n} took {waited:?}: it waited for the flood (margin {prompt:?})"
            );
        }
    }
    assert!(
        b_seen.pings.len() + 2 >= sent_at.len(),
        "{} of {} of b's lines",
        b_seen.pings.len(),
        sent_at.len()
    );
    eprintln!(
        "flood: {LINES} lines in {took:?}; b said {} lines meanwhile",
        sent_at.len()
    );
}

/// Line `i` of a stream with Chinese and emoji, its number and a checksum of its body.
fn varied_line(i: usize) -> String {
    let words = ["你好", "世界", "😀", "👨‍👩‍👧", "chat", "TCP", "é", "line"];
    let body: String = (0..(20 + i % 40))
        .map(|k| words[(i * 7 + k * 3) % words.len()])
        .collect::<Vec<_>>()
        .join(" ");
    let sum = body
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    format!("{i:05} {sum:08x} {body}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_a_one_kilobyte_receive_window_gets_everything_or_the_notice() {
    const LINES: usize = 3000;
    let _heavy = HEAVY.lock().await;
    let limits = Limits {
        flood: NO_FLOOD_LIMIT,
        ..Limits::default()
    };
    let server = spawn_server(Mode::Chat, limits).await;
    let (mut a, mut b) = pair(&server).await;
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(1024).expect("SO_RCVBUF");
    let stream = timeout(DEADLINE, socket.connect(server.addr))
        .await
        .expect("connect timed out")
        .expect("connect");
    a.expect("*** guest-3 joined; 3 online").await;
    b.expect("*** guest-3 joined; 3 online").await;

    // d reads 1 KiB at a time with a pause after each read, until EOF or everything.
    let total: usize = (0..LINES)
        .map(|i| varied_line(i).len() + "<guest-1> \n".len())
        .sum();
    let d = tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let mut stream = stream;
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        // Alone this takes ~3.5 s; with a 1 KiB window every ACK the kernel delays stalls a
        // whole window, and in a loaded full run it once took over 30 s: 120 s is the bound
        // for "it never finishes", the per-read stall (DEADLINE) the one for "it hangs".
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            assert!(Instant::now() < deadline, "d still reading after 120 s");
            let n = timeout(DEADLINE, stream.read(&mut buf))
                .await
                .expect("d's read stalled")
                .expect("d's read failed");
            if n == 0 {
                break (got, true);
            }
            got.extend_from_slice(&buf[..n]);
            let greeting = got.iter().position(|&b| b == b'\n').map_or(0, |p| p + 1);
            if got.len() >= greeting + total {
                break (got, false);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    let b_reads = tokio::spawn(async move {
        for i in 0..LINES {
            b.expect(&format!("<guest-1> {}", varied_line(i))).await;
        }
        b
    });
    for i in 0..LINES {
        a.send(format!("{}\n", varied_line(i))).await;
        a.expect(&format!("<guest-1> {}", varied_line(i))).await;
    }
    let _b = timeout(Duration::from_secs(30), b_reads)
        .await
        .expect("b")
        .expect("b");
    let (got, eof) = timeout(Duration::from_secs(125), d)
        .await
        .expect("d")
        .expect("d");

    // Whatever d got is its greeting, then a's lines in order and intact; if it was dropped,
    // perhaps one line cut short, then the notice, then EOF.
    let text = String::from_utf8(got).expect("d got valid UTF-8 only");
    let mut lines: VecDeque<&str> = text.split_inclusive('\n').collect();
    assert!(
        lines
            .pop_front()
            .is_some_and(|l| l.contains("you are guest-3"))
    );
    let dropped = lines.back().is_some_and(|l| l.trim_end() == DROPPED);
    if dropped {
        lines.pop_back();
        assert!(eof, "the notice, then EOF");
    } else {
        assert!(!eof, "EOF without the notice");
    }
    let mut complete = 0;
    for (i, line) in lines.iter().enumerate() {
        let want = format!("<guest-1> {}\n", varied_line(i));
        if *line == want {
            complete += 1;
            continue;
        }
        // Only the last line before the notice may be cut short (the notice follows a newline).
        assert!(
            dropped && i + 1 == lines.len() && want.starts_with(line.trim_end_matches('\n')),
            "d's line {i} is corrupt: {line:?}"
        );
    }
    if !dropped {
        assert_eq!(complete, LINES);
    }
    eprintln!("1 KiB window: {complete} of {LINES} lines, dropped: {dropped}");
}

/// Replies only the asker receives count against its outbox as everyone's lines do; before
/// this, an outbox was bounded in entries only, and a `/who` reply (7.8 KB here) is one entry.
#[test]
fn load_clients_that_ask_and_never_read_pin_a_bounded_amount_of_memory() {
    const MEMBERS: usize = 300;
    const ASKERS: usize = 10;
    const ASKS: usize = 1100;
    let _heavy = HEAVY.blocking_lock();
    let server = Bin::start(&["--max-clients", "2000", "--flood-rate", "0"], &[]);
    let mut observer = Observer::new(std_join(server.addr));
    // Members with 24-character nicks make each `/who` reply about 7.8 KB.
    let members: Vec<_> = (0..MEMBERS)
        .map(|i| {
            let mut member = std_join(server.addr);
            let rename = format!("/nick member-{i:0>17}\n");
            member
                .get_mut()
                .write_all(rename.as_bytes())
                .expect("rename");
            member
        })
        .collect();
    let last = format!("is now known as member-{:0>17}", MEMBERS - 1);
    observer.expect(|l| l.ends_with(&last), "the last rename", DEADLINE);
    let baseline = server.rss_kib();

    let asks = "/who\n".repeat(ASKS);
    let askers: Vec<_> = (0..ASKERS)
        .map(|_| {
            let mut asker = std_join(server.addr);
            asker.get_mut().write_all(asks.as_bytes()).expect("ask");
            asker
        })
        .collect();
    // The old server queued all of it within a fraction of a second; three seconds of looking
    // is a wide margin. The budget: each asker's outbox (1 MiB) twice over, and 16 MiB for the
    // allocator (measured: +12 MiB in all; without the byte bound, +232 MiB). Meanwhile the
    // room goes on as usual.
    let budget_kib = ASKERS as u64 * 2 * 1024 + 16 * 1024;
    let mut peak = baseline;
    let watch_until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < watch_until {
        peak = peak.max(server.rss_kib());
        observer.not_blocked("guest-1", "still chatting");
        thread::sleep(Duration::from_millis(100)); // pacing the samples
    }
    eprintln!("server RSS {baseline} KiB before, {peak} KiB at most while they did not read");
    assert!(
        peak - baseline < budget_kib,
        "{ASKERS} clients that do not read took the server from {baseline} to {peak} KiB \
         (bound: {budget_kib} KiB more)"
    );
    // They were paused, not dropped: reading now, each gets every reply.
    for mut asker in askers {
        asker
            .get_ref()
            .set_read_timeout(Some(DEADLINE))
            .expect("timeout");
        let mut replies = 0;
        while replies < ASKS {
            let line = std_line(&mut asker);
            if line.starts_with("*** online (") {
                replies += 1;
            } else {
                let chat = line == "<guest-1> still chatting";
                assert!(chat || line.starts_with("*** "), "{line:?}");
            }
        }
    }
    drop(members);
}

#[test]
fn load_a_thousand_slowloris_connections_are_freed_by_the_line_timeout() {
    const STALLERS: usize = 1000;
    let _heavy = HEAVY.blocking_lock();
    raise_nofile(4 * STALLERS as u64 + 256);
    // Every join is announced here (the default stops at 256 members): the joins show when
    // all the stallers are in.
    let server = Bin::start(
        &[
            "--line-timeout",
            "1",
            "--max-clients",
            "1001",
            "--announce-up-to",
            "2000",
        ],
        &[],
    );
    let mut observer = Observer::new(std_join(server.addr));
    let baseline = server.fds();

    let started = Instant::now();
    let mut stallers: Vec<TcpStream> = (0..STALLERS)
        .map(|_| {
            let stream = TcpStream::connect_timeout(&server.addr, DEADLINE).expect("connect");
            stream.set_nodelay(true).expect("nodelay");
            stream
        })
        .collect();
    observer.expect(
        |l| l == format!("*** guest-{} joined; {} online", STALLERS + 1, STALLERS + 1),
        "the last staller's join",
        Duration::from_secs(30),
    );
    assert!(server.fds() >= baseline + STALLERS);
    for stream in &mut stallers {
        stream.write_all(b"x").expect("one byte");
    }
    // The room goes on while they stall.
    observer.not_blocked("guest-1", "chatting past the stallers");

    // Each is told and closed once its line has been unfinished for 1 s. (Room events that
    // raced with the notice may follow it: see `faults_the_goodbye_is_the_last_line`.)
    let notice = "! line not finished within 1 s; closing";
    for (i, stream) in stallers.iter_mut().enumerate() {
        // The first is told after 1 s; 30 s is the margin for a busy machine.
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let mut tail = Vec::new();
        let mut buf = [0u8; 64 * 1024];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    tail.extend_from_slice(&buf[..n]);
                    let keep = tail.len().saturating_sub(16 * 1024);
                    tail.drain(..keep);
                }
                Err(e) => panic!("staller {i}: {e} before the server closed"),
            }
        }
        let tail = String::from_utf8_lossy(&tail);
        let after = tail
            .rsplit_once(&format!("{notice}\n"))
            .map(|(_, after)| after)
            .unwrap_or_else(|| panic!("staller {i} was not told; it ended with {tail:?}"));
        assert!(
            after.lines().all(|l| l.starts_with("*** ")),
            "staller {i}: {after:?} after the notice"
        );
    }
    let freed = started.elapsed();
    drop(stallers);
    server.wait_fds_at_most(baseline, Duration::from_secs(5));
    observer.expect(
        |l| l.ends_with("left (timed out); 1 online"),
        "the last staller leaving",
        DEADLINE,
    );

    // Every slot is usable again: 1000 newcomers all get in (the limit is 1001).
    let newcomers: Vec<BufReader<TcpStream>> =
        (0..STALLERS).map(|_| std_join(server.addr)).collect();
    drop(newcomers);
    server.wait_fds_at_most(baseline, Duration::from_secs(5));
    observer.not_blocked("guest-1", "after the stallers");
    eprintln!("slowloris: {STALLERS} stallers freed {freed:?} after they connected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_a_steady_stream_that_splits_every_line_is_not_a_slowloris() {
    let limits = Limits {
        line_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let server = spawn_server(Mode::Chat, limits).await;
    let (mut a, mut b) = pair(&server).await;
    // Each write ends one line and begins the next: every line is finished within 100 ms, but
    // from the first write on there is always an unfinished line in the server's buffer.
    a.send("line 0 first half").await;
    for i in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await; // pacing: how the writes come
        a.send(format!(", second half\nline {} first half", i + 1))
            .await;
        b.expect(&format!("<guest-1> line {i} first half, second half"))
            .await;
    }
    a.send(", second half\n").await;
    b.expect("<guest-1> line 20 first half, second half").await;
}

#[test]
fn load_two_thousand_connect_and_close_per_second_for_ten_seconds() {
    const PER_SECOND: u32 = 2000;
    const SECONDS: u32 = 10;
    let _heavy = HEAVY.blocking_lock();
    raise_nofile(4096);
    let server = Bin::start(&[], &[]);
    let mut observer = Observer::new(std_join(server.addr));
    let baseline_fds = server.fds();
    let baseline_rss = server.rss_kib();

    // The storm: 2,000 connection attempts a second, each closed as soon as it is made, half
    // with FIN, half with RST. Spread over threads, so that a connect the kernel has to retry
    // (a SYN dropped while the accept queue is full) delays only its own thread's share.
    const THREADS: u32 = 20;
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let storm: Vec<_> = (0..THREADS)
        .map(|t| {
            let (addr, stop, done) = (server.addr, stop.clone(), done.clone());
            thread::spawn(move || {
                let rate = f64::from(PER_SECOND / THREADS);
                let mut failures = Vec::new();
                for n in 0..(PER_SECOND / THREADS * SECONDS) {
                    let due = started + Duration::from_secs_f64(f64::from(n) / rate);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        thread::sleep(wait); // pacing the storm, not synchronising
                    }
                    // A SYN the kernel retried at 1, 3, 7 and 15 s still gets in.
                    match TcpStream::connect_timeout(&addr, Duration::from_secs(30)) {
                        Ok(stream) if (n + t) % 2 == 0 => drop(stream),
                        Ok(stream) => reset_std(stream),
                        Err(e) => failures.push(e.to_string()),
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                }
                failures
            })
        })
        .collect();
    // A normal client chats throughout: a line every 250 ms, each back within NOT_BLOCKED.
    let mut trips = Vec::new();
    while storm.iter().any(|t| !t.is_finished()) {
        let n = trips.len();
        let took = observer.round_trip("guest-1", &format!("during the storm {n}"));
        trips.push(took);
        if took >= NOT_BLOCKED {
            stop.store(true, Ordering::Relaxed);
            panic!("a line took {took:?} during the storm (margin {NOT_BLOCKED:?})");
        }
        thread::sleep(Duration::from_millis(250)); // pacing the chat
    }
    let took = started.elapsed();
    let failures: Vec<String> = storm
        .into_iter()
        .flat_map(|t| t.join().expect("storm thread"))
        .collect();
    // Every connection got in: none failed, none was left out.
    let connections = done.load(Ordering::Relaxed);
    assert!(
        failures.is_empty(),
        "{} connects failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert_eq!(
        connections,
        (PER_SECOND / THREADS * SECONDS * THREADS) as usize
    );
    assert!(!trips.is_empty(), "nobody chatted during the storm");
    // 10 s when the server keeps up (it does on an idle 2-core machine, in a debug build);
    // on a loaded machine the accept queue overflows, the kernel retries dropped SYNs after
    // 1 s, 3 s, 7 s... and the storm takes longer, but every connection still gets in. How
    // long is not a promise of the server's; 120 s (12 times the storm) only bounds the test.
    assert!(
        took < Duration::from_secs(120),
        "{connections} connections took {took:?}"
    );
    if took > Duration::from_secs(u64::from(SECONDS) + 3) {
        eprintln!("storm: the server did not keep up with {PER_SECOND}/s on this machine now");
    }

    // After: the server is fine, every socket closed, memory near where it was.
    server.wait_fds_at_most(baseline_fds, Duration::from_secs(5));
    observer.not_blocked("guest-1", "after the storm");
    observer.send("/who\n");
    observer.expect(
        |l| l == "*** online (1): guest-1",
        "only the observer online",
        DEADLINE,
    );
    let rss = server.rss_kib();
    let worst = trips.iter().max().copied().unwrap_or_default();
    eprintln!(
        "storm: {connections} connect-and-close in {took:?}; worst chat round trip {worst:?}; \
         server RSS {baseline_rss} → {rss} KiB"
    );
    // Measured: +4 MiB (the allocator keeps what 20,000 short sessions used). A leak of even
    // 1 KiB per connection would be 20 MiB.
    assert!(
        rss < baseline_rss + 16 * 1024,
        "RSS {baseline_rss} → {rss} KiB"
    );
}

/// Reads lines (others' joins and leaves may come first) until one satisfying `want`.
fn std_line_where(client: &mut BufReader<TcpStream>, want: impl Fn(&str) -> bool) -> String {
    for _ in 0..10_000 {
        let line = std_line(client);
        if want(&line) {
            return line;
        }
    }
    panic!("the line never came");
}

/// One join/leave cycle of kind `n % 5`: FIN, `exit`, `/quit`, RST, or a rename then FIN.
fn join_and_leave(addr: SocketAddr, n: usize) {
    let mut client = std_join(addr);
    match n % 5 {
        0 => {}
        1 | 2 => {
            let line = if n % 5 == 1 {
                "exit\n"
            } else {
                "/quit cycling\n"
            };
            client.get_mut().write_all(line.as_bytes()).expect("send");
            std_line_where(&mut client, |l| l.starts_with("*** bye, "));
            // Whatever raced with the goodbye, then a clean EOF.
            common::std_read_to_eof(&mut client);
        }
        3 => return reset_std(client.into_inner()),
        _ => {
            client
                .get_mut()
                .write_all(format!("/nick cycle{n}\n").as_bytes())
                .expect("send");
            let renamed = format!(" is now known as cycle{n}");
            std_line_where(&mut client, |l| l.ends_with(&renamed));
        }
    }
    drop(client);
}

#[test]
fn load_ten_thousand_join_leave_cycles_leak_nothing() {
    const CYCLES: usize = 10_000;
    const THREADS: usize = 4;
    let _heavy = HEAVY.blocking_lock();
    let server = Bin::start(&[], &[]);
    let mut observer = Observer::new(std_join(server.addr));
    let idle_fds = server.fds();
    let run = |cycles: usize| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let addr = server.addr;
                thread::spawn(move || {
                    for n in (t..cycles).step_by(THREADS) {
                        join_and_leave(addr, n);
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().expect("a cycle failed");
        }
    };
    // Warm up first, so the allocator's and the runtime's one-time growth is in the baseline.
    run(500);
    server.wait_fds_at_most(idle_fds, Duration::from_secs(5));
    observer.send("/who\n");
    observer.expect(
        |l| l == "*** online (1): guest-1",
        "only the observer online",
        DEADLINE,
    );
    let (fds, rss) = (server.fds(), server.rss_kib());

    let started = Instant::now();
    run(CYCLES);
    let took = started.elapsed();
    server.wait_fds_at_most(fds, Duration::from_secs(5));
    observer.send("/who\n");
    observer.expect(
        |l| l == "*** online (1): guest-1",
        "only the observer online",
        DEADLINE,
    );
    let rss_after = server.rss_kib();
    eprintln!("{CYCLES} join/leave cycles in {took:?}; fds {fds}; RSS {rss} → {rss_after} KiB");
    // Measured: +0.1 MiB. A leak of 1 KiB per cycle would be 10 MiB.
    assert!(
        rss_after < rss + 8 * 1024,
        "RSS grew from {rss} to {rss_after} KiB over {CYCLES} cycles"
    );
    // Measured: 4 s in a debug build. The bound, 30 times that, is only there to catch a cost
    // per cycle that grows with the cycles (what a leak in a list walked per join would do),
    // not to time the server on a busy machine.
    assert!(took < Duration::from_secs(120), "{took:?}");
}

// ---------------------------------------------------------------- faults

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_a_reset_mid_stream_is_announced_and_the_room_goes_on() {
    let limits = Limits {
        flood: NO_FLOOD_LIMIT,
        ..Limits::default()
    };
    let server = spawn_server(Mode::Chat, limits).await;
    let (mut a, mut b) = pair(&server).await;
    let (c, _) = join(server.addr).await;
    a.expect("*** guest-3 joined; 3 online").await;
    b.expect("*** guest-3 joined; 3 online").await;
    // Data both ways in flight: c has 2,000 lines unread, and half a line sent.
    let burst: String = (0..2000).map(|i| format!("burst {i}\n")).collect();
    a.send(burst).await;
    for i in 0..2000 {
        b.expect(&format!("<guest-1> burst {i}")).await;
    }
    let mut c = c;
    c.send("half a li").await;
    c.reset();
    let heard = lines_until(&mut b.rx, "*** guest-3 left (reset); 2 online").await;
    assert!(heard.is_empty(), "{heard:?}");
    a.send("still here\n").await;
    b.expect("<guest-1> still here").await;
    let (mut d, nick) = join(server.addr).await;
    assert_eq!(nick, "guest-4");
    d.send("newcomer\n").await;
    b.expect("*** guest-4 joined; 3 online").await;
    b.expect("<guest-4> newcomer").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_a_half_closed_client_still_gets_what_it_is_owed() {
    let server = chat().await;
    let (mut a, mut b) = pair(&server).await;

    // /who, then FIN at once: the reply, then the server's FIN.
    a.send("/who\n").await;
    a.tx.shutdown().await.expect("shutdown(Write)");
    a.expect("*** online (2): guest-1, guest-2").await;
    assert_eq!(String::from_utf8_lossy(&a.read_to_eof().await), "");
    b.expect("*** guest-1 left (closed); 1 online").await;

    // /help and a line, then FIN: every help line and its own line.
    let (mut c, _) = join(server.addr).await;
    b.expect("*** guest-3 joined; 2 online").await;
    c.send("/help\nlast words\n").await;
    c.tx.shutdown().await.expect("shutdown(Write)");
    let rest = String::from_utf8(c.read_to_eof().await).expect("UTF-8");
    let lines: Vec<&str> = rest.lines().collect();
    let help = tcpchat::protocol::help_lines().len();
    assert_eq!(lines.len(), help + 1, "{lines:?}");
    assert!(
        lines[..help].iter().all(|l| l.starts_with("*** ")),
        "{lines:?}"
    );
    assert_eq!(lines[help], "<guest-3> last words");
    b.expect("<guest-3> last words").await;
    b.expect("*** guest-3 left (closed); 1 online").await;

    // exit, then FIN: the goodbye.
    let (mut d, _) = join(server.addr).await;
    b.expect("*** guest-4 joined; 2 online").await;
    d.send("exit\n").await;
    d.tx.shutdown().await.expect("shutdown(Write)");
    d.expect("*** bye, guest-4; closing the connection").await;
    assert_eq!(String::from_utf8_lossy(&d.read_to_eof().await), "");
    b.expect("*** guest-4 left (exit); 1 online").await;
}

/// `clients` join, then all say `exit` at once; returns those whose last line before EOF was
/// not their own goodbye.
async fn exit_together(server: &Server, clients: usize) -> Vec<String> {
    let mut joined = Vec::new();
    for _ in 0..clients {
        joined.push(join(server.addr).await);
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(clients));
    let tasks: Vec<_> = joined
        .into_iter()
        .map(|(mut client, nick)| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                client.send("exit\n").await;
                let rest = timeout(Duration::from_secs(20), client.rx.read_to_eof())
                    .await
                    .expect("EOF");
                let text = String::from_utf8(rest).expect("UTF-8");
                let last = text.lines().last().unwrap_or_default().to_owned();
                let want = format!("*** bye, {nick}; closing the connection");
                (last == want)
                    .then_some(())
                    .ok_or(format!("{nick}: {last:?}"))
            })
        })
        .collect();
    let mut wrong = Vec::new();
    for task in tasks {
        if let Err(last) = task.await.expect("client task") {
            wrong.push(last);
        }
    }
    wrong
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_the_goodbye_is_the_last_line() {
    let _heavy = HEAVY.lock().await;
    // The race needs contention on the room: hundreds of members leaving at once. It shows in
    // about every other round of 500 here; five rounds at most.
    const CLIENTS: usize = 500;
    let server = chat().await;
    let mut wrong = Vec::new();
    for _ in 0..5 {
        wrong.extend(exit_together(&server, CLIENTS).await);
        if !wrong.is_empty() {
            break;
        }
    }
    assert!(
        wrong.is_empty(),
        "{} clients got something after their goodbye, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(3)]
    );
}

/// Whether this machine can make a network namespace and work in it (root, or user
/// namespaces; `unshare`, `nsenter` and `ip`), and if not, why.
fn netns_available() -> Result<(), String> {
    let ran = |program: &str, args: &[&str]| {
        let output = Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("{program}: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            let stderr = String::from_utf8_lossy(&output.stderr);
            Err(format!(
                "{program} {args:?}: {} {}",
                output.status,
                stderr.trim()
            ))
        }
    };
    ran("unshare", &["--net", "ip", "link", "set", "lo", "up"])?;
    ran("nsenter", &["--version"])
}

/// A server in a network namespace of its own, where policy routing can make one client
/// address vanish. `None` where namespaces cannot be made and `TCPCHAT_TEST_SKIP` names
/// `netns` (see [`prerequisite`]); elsewhere that is a failure.
struct Netns {
    server: Bin,
}

impl Netns {
    fn start(args: &[&str]) -> Option<Self> {
        if !prerequisite("netns", netns_available()) {
            return None;
        }
        let mut command = Command::new("unshare");
        command
            .args(["--net", "sh", "-c"])
            .arg(r#"ip link set lo up && exec "$0" --serve --listen 127.0.0.1:0 "$@""#)
            .arg(env!("CARGO_BIN_EXE_tcpchat"))
            .args(args);
        Some(Self {
            server: Bin::spawn(command, &[]),
        })
    }

    /// Connects from `from` inside the namespace (sockets belong to the namespace they are
    /// made in, whichever thread uses them later).
    fn connect(&self, from: &'static str) -> BufReader<TcpStream> {
        let ns = format!("/proc/{}/ns/net", self.server.pid());
        let addr = self.server.addr;
        thread::spawn(move || {
            let file = std::fs::File::open(&ns).expect("open the namespace");
            // SAFETY: setns takes a descriptor we own (open for the whole call) and a flag; it
            // moves only this short-lived thread into the namespace.
            let entered =
                unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&file), libc::CLONE_NEWNET) };
            assert_eq!(entered, 0, "setns: {}", std::io::Error::last_os_error());
            let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                .expect("socket");
            let local: SocketAddr = format!("{from}:0").parse().expect("address");
            socket.bind(&local.into()).expect("bind");
            socket
                .connect_timeout(&addr.into(), DEADLINE)
                .expect("connect");
            let stream: TcpStream = socket.into();
            stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
            let mut client = BufReader::new(stream);
            let greeting = std_line(&mut client);
            assert!(greeting.starts_with("*** 连接成功"), "{greeting:?}");
            client
        })
        .join()
        .expect("connecting inside the namespace")
    }

    /// From now on nothing from `addr` reaches anyone: its packets are dropped, no FIN, no RST.
    fn vanish(&self, addr: &str) {
        let ns = format!("--net=/proc/{}/ns/net", self.server.pid());
        let pref = "10";
        for rule in [
            // The local table normally comes first (pref 0); move it behind the drop rule.
            vec!["add", "pref", "100", "lookup", "local"],
            vec!["del", "pref", "0"],
            vec!["add", "pref", pref, "from", addr, "blackhole"],
        ] {
            let status = Command::new("nsenter")
                .arg(&ns)
                .args(["ip", "rule"])
                .args(&rule)
                .status()
                .expect("run nsenter ip rule");
            assert!(status.success(), "ip rule {rule:?}");
        }
    }
}

#[test]
fn faults_a_client_that_vanishes_without_fin_is_noticed_by_keepalive() {
    let _heavy = HEAVY.blocking_lock();
    let Some(ns) = Netns::start(&["--keepalive", "1"]) else {
        return;
    };
    let mut observer = Observer::new(ns.connect("127.0.0.1"));
    let _gone = ns.connect("127.0.0.2");
    observer.expect(
        |l| l == "*** guest-2 joined; 2 online",
        "the join",
        DEADLINE,
    );

    let started = Instant::now();
    ns.vanish("127.0.0.2");
    // Keepalive 1 s: idle 1 s, then 3 probes 1 s apart.
    let (_, left) = observer.expect(
        |l| l.starts_with("*** guest-2 left ("),
        "the vanished client leaving",
        Duration::from_secs(15),
    );
    let took = started.elapsed();
    eprintln!("vanished client noticed after {took:?}: {left:?}");
    assert!(left.ends_with("; 1 online"), "{left}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    observer.not_blocked("guest-1", "still here");
}

#[test]
fn faults_a_vanished_client_with_data_in_flight_is_noticed() {
    let _heavy = HEAVY.blocking_lock();
    let Some(ns) = Netns::start(&["--keepalive", "1"]) else {
        return;
    };
    let mut observer = Observer::new(ns.connect("127.0.0.1"));
    let _gone = ns.connect("127.0.0.2");
    observer.expect(
        |l| l == "*** guest-2 joined; 2 online",
        "the join",
        DEADLINE,
    );

    let started = Instant::now();
    ns.vanish("127.0.0.2");
    // One line to the room: the server's copy for the vanished client is never acknowledged.
    observer.round_trip("guest-1", "anyone there?");
    observer.expect(
        |l| l.starts_with("*** guest-2 left ("),
        "the vanished client leaving",
        Duration::from_secs(15),
    );
    eprintln!(
        "vanished client with data in flight noticed after {:?}",
        started.elapsed()
    );
}

/// Runs `tcpchat ARGS` to completion within 10 s; returns exit code, stderr lines and time.
fn run_bin(args: &[&str]) -> (Option<i32>, Vec<String>, Duration) {
    let data = tempfile::tempdir().expect("a temporary data home");
    let mut command = Command::new(env!("CARGO_BIN_EXE_tcpchat"));
    command.args(args).env("XDG_DATA_HOME", data.path());
    run_to_end(command)
}

/// Runs `command` (a `tcpchat`) to completion within 10 s; returns exit code, stderr lines
/// and time.
fn run_to_end(mut command: Command) -> (Option<i32>, Vec<String>, Duration) {
    let started = Instant::now();
    let mut child = command
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tcpchat");
    let deadline = started + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} did not exit within 10 s");
        }
        thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    let lines = stderr.lines().map(str::to_owned).collect();
    (status.code(), lines, started.elapsed())
}

/// Asserts a failed `--serve`: exit 1, one `tcpchat: cannot listen on ADDR: ...` line that
/// says `because`, at once.
fn assert_cannot_listen(listen: &str, because: &str) {
    let (code, lines, took) = run_bin(&["--serve", "--listen", listen]);
    assert_failed_to_listen(listen, because, code, &lines, took);
}

fn assert_failed_to_listen(
    listen: &str,
    because: &str,
    code: Option<i32>,
    lines: &[String],
    took: Duration,
) {
    assert!(!because.is_empty(), "say what the error must say");
    assert_eq!(code, Some(1), "{listen}: {lines:?}");
    assert_eq!(lines.len(), 1, "{listen}: {lines:?}");
    assert!(
        lines[0].starts_with(&format!("tcpchat: cannot listen on {listen}: ")),
        "{lines:?}"
    );
    assert!(lines[0].contains(because), "{listen}: {lines:?}");
    assert!(took < Duration::from_secs(5), "{listen}: {took:?}");
}

/// The user `nobody`: no capability, so no privileged port.
const NOBODY: u32 = 65_534;

/// `path`, or a copy of it that every user may run (each directory above the test binaries may
/// be closed to others, as `/root` is), kept in `dir`.
fn runnable_by_anyone(path: &std::path::Path, dir: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let open_to_others = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o001 != 0)
    };
    if path.ancestors().all(open_to_others) {
        return path.to_owned();
    }
    let copy = dir.join("tcpchat");
    std::fs::copy(path, &copy).expect("copy tcpchat");
    for p in [dir, &copy] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    copy
}

/// Runs `tcpchat --serve --listen 127.0.0.1:1` as `nobody` in a network namespace of its own,
/// where the privileged ports are the kernel's default (below 1024, whatever this host's
/// `net.ipv4.ip_unprivileged_port_start` says, which containers often set to 0).
fn serve_on_port_1_as_nobody() -> (Option<i32>, Vec<String>, Duration) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let binary = runnable_by_anyone(
        std::path::Path::new(env!("CARGO_BIN_EXE_tcpchat")),
        dir.path(),
    );
    // A namespace belongs to the thread that made it, and a child to its parent thread's.
    thread::spawn(move || {
        // SAFETY: unshare takes one flag and touches no memory; CLONE_NEWNET moves only this
        // short-lived thread (and what it spawns) into a new network namespace.
        let made = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(made, 0, "unshare: {}", std::io::Error::last_os_error());
        let lo = Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status()
            .expect("run ip");
        assert!(lo.success(), "ip link set lo up: {lo}");
        let mut command = Command::new(&binary);
        command
            // No store: it would be opened (as nobody) before the port is tried.
            .args(["--serve", "--listen", "127.0.0.1:1", "--retain", "0"])
            .env("XDG_DATA_HOME", "/nonexistent")
            .uid(NOBODY)
            .gid(NOBODY);
        run_to_end(command)
    })
    .join()
    .expect("the namespace thread")
}

#[test]
fn faults_serve_on_a_privileged_port_fails_with_one_line() {
    // SAFETY: geteuid has no preconditions and touches no memory.
    if unsafe { libc::geteuid() } == 0 {
        // Root may bind it: run the server as nobody (in CI, which runs as root, too).
        let (code, lines, took) = serve_on_port_1_as_nobody();
        assert_failed_to_listen("127.0.0.1:1", "Permission denied", code, &lines, took);
        return;
    }
    let start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|s| s.trim().parse::<u16>().ok())
        .unwrap_or(1024);
    let available = if start > 1 {
        Ok(())
    } else {
        Err(format!(
            "every user may bind port 1 here (ip_unprivileged_port_start = {start}) and only \
             root can run the case in a namespace of its own"
        ))
    };
    if prerequisite("privport", available) {
        assert_cannot_listen("127.0.0.1:1", "Permission denied");
    }
}

#[test]
fn faults_serve_on_an_address_not_on_this_host_fails_with_one_line() {
    // TEST-NET-1 and the IPv6 documentation prefix: never assigned to a host.
    assert_cannot_listen("192.0.2.1:0", "Cannot assign requested address");
    let ipv6 = std::net::TcpListener::bind("[::1]:0")
        .map(drop)
        .map_err(|e| format!("cannot bind [::1]: {e}"));
    if prerequisite("ipv6", ipv6) {
        assert_cannot_listen("[2001:db8::1]:0", "Cannot assign requested address");
    }
}

/// A name that cannot resolve, and fails at once on any network: glibc refuses a label longer
/// than 63 bytes before it sends a query. (`nosuch.invalid` also never resolves, but asking
/// about it waits for the resolver: 10 s when the configured one does not answer.)
fn unresolvable_at_once() -> String {
    format!("{}.invalid", "a".repeat(64))
}

#[test]
fn faults_serve_on_a_name_that_does_not_resolve_fails_with_one_line() {
    let listen = format!("{}:0", unresolvable_at_once());
    assert_cannot_listen(&listen, "failed to lookup address information");
}

#[test]
fn faults_a_panic_in_one_connection_task_leaves_the_server_running() {
    const BOOM: &str = "fault: panic here";
    let mut server = Bin::start(&[], &[("TCPCHAT_FAULT_PANIC_LINE", BOOM)]);
    let mut a = Observer::new(std_join(server.addr));
    let mut b = std_join(server.addr);
    a.expect(
        |l| l == "*** guest-2 joined; 2 online",
        "b's join",
        DEADLINE,
    );
    let mut c = Observer::new(std_join(server.addr));
    a.expect(
        |l| l == "*** guest-3 joined; 3 online",
        "c's join",
        DEADLINE,
    );
    assert_eq!(std_line(&mut b), "*** guest-3 joined; 3 online");

    b.get_mut()
        .write_all(format!("{BOOM}\n").as_bytes())
        .expect("send");
    // b's connection ends (FIN or RST: its task is gone), with nothing more said.
    let mut rest = Vec::new();
    match b.read_to_end(&mut rest) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("b's connection did not end: {e}"),
    }
    assert!(
        !String::from_utf8_lossy(&rest).contains(BOOM),
        "{:?}",
        String::from_utf8_lossy(&rest)
    );
    for client in [&mut a, &mut c] {
        client.expect(
            |l| l == "*** guest-2 left (server error); 2 online",
            "b leaving with a server error",
            DEADLINE,
        );
    }
    assert!(
        server.is_running(),
        "the server died:\n{}",
        server.log_text()
    );
    assert!(
        server.log_text().contains("panicked"),
        "{}",
        server.log_text()
    );

    // The others chat, newcomers join, the same line panics again only its own connection.
    a.round_trip("guest-1", "still here");
    c.expect(|l| l == "<guest-1> still here", "a's line", DEADLINE);
    let mut d = std_join(server.addr);
    a.expect(
        |l| l == "*** guest-4 joined; 3 online",
        "d's join",
        DEADLINE,
    );
    d.get_mut()
        .write_all(format!("{BOOM}\n").as_bytes())
        .expect("send");
    a.expect(
        |l| l == "*** guest-4 left (server error); 2 online",
        "d leaving",
        DEADLINE,
    );
    a.send("/who\n");
    a.expect(
        |l| l == "*** online (2): guest-1, guest-3",
        "who is left",
        DEADLINE,
    );

    assert_eq!(server.stop_with(libc::SIGTERM), 0, "{}", server.log_text());
    a.expect(|l| l == "*** server shutting down", "the goodbye", DEADLINE);
}

#[test]
fn faults_sighup_and_sigint_to_the_server_shut_down_cleanly() {
    for (name, signal) in [("SIGHUP", libc::SIGHUP), ("SIGINT", libc::SIGINT)] {
        let mut server = Bin::start(&[], &[]);
        let mut a = std_join(server.addr);
        let mut b = std_join(server.addr);
        assert_eq!(std_line(&mut a), "*** guest-2 joined; 2 online");
        let started = Instant::now();
        assert_eq!(server.stop_with(signal), 0, "{name}: {}", server.log_text());
        assert!(started.elapsed() < Duration::from_secs(2), "{name}");
        for client in [&mut a, &mut b] {
            assert_eq!(std_line(client), "*** server shutting down", "{name}");
            assert_eq!(
                String::from_utf8_lossy(&common::std_read_to_eof(client)),
                "",
                "{name}"
            );
        }
    }
}
