//! TLS as the user sees it: the real `tcpchat` binary in a pseudo-terminal (see
//! `tui/harness.rs`) against servers run in this process on loopback ports the OS picks. The
//! key pinned on first use and shown; a changed key refused in one block, with both
//! fingerprints and the command that accepts the new one, and never retried; each way of
//! reaching the wrong port said in one line; `--tls-insecure` said loudly; the status bar's TLS
//! version and cipher; the inspector's TLS view. Every wait is for screen content against a
//! deadline.

// The harness sends signals with libc::kill; each call says why it is sound.
#![allow(unsafe_code)]
// In a test a failed expectation is meant to panic: that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "tui/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::{Tui, keys, status_row};
use tcpchat::server::{self, Config};
use tcpchat::tls::server::{CertSource, ServerTls};
use tokio_util::sync::CancellationToken;

/// A chat server run on its own runtime in this process; TLS if given.
struct InProcess {
    runtime: tokio::runtime::Runtime,
    addr: SocketAddr,
    token: CancellationToken,
    done: tokio::task::JoinHandle<()>,
}

impl InProcess {
    fn start(listen: &str, tls: Option<Arc<ServerTls>>) -> Self {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(listen))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let token = CancellationToken::new();
        let config = Config {
            tls,
            ..Config::default()
        };
        let done = runtime.spawn(server::run(listener, config, token.clone()));
        Self {
            runtime,
            addr,
            token,
            done,
        }
    }

    /// A TLS server with the self-signed pair kept in `data`, and its key's fingerprint.
    fn tls(listen: &str, data: &Path) -> (Self, String) {
        let tls = ServerTls::new(CertSource::self_signed(data, "")).unwrap();
        let key = tls.fingerprint().to_string();
        (Self::start(listen, Some(Arc::new(tls))), key)
    }

    fn stop(self) {
        self.token.cancel();
        self.runtime
            .block_on(async { tokio::time::timeout(harness::DEADLINE, self.done).await })
            .expect("the server stops in time")
            .unwrap();
    }
}

fn wait_status(tui: &Tui, text: &str) {
    tui.wait_for(
        |s| status_row(s).contains(text),
        &format!("{text:?} in the status bar"),
    );
}

#[test]
fn a_key_pinned_on_first_use_and_then_changed_is_refused_in_one_block_and_not_retried() {
    let (first_data, second_data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (first, first_key) = InProcess::tls("127.0.0.1:0", first_data.path());
    let addr = first.addr.to_string();
    let tui = Tui::spawn(&["--tls", &addr], 200, 40);
    tui.wait_for_text("is now pinned for");
    tui.wait_for_text(&first_key);
    tui.wait_for_text("连接成功");
    wait_status(&tui, " TLS 1.3 TLS13_");

    // The server is replaced by one with another key, on the same HOST:PORT.
    first.stop();
    let (second, second_key) = InProcess::tls(&addr, second_data.path());
    tui.wait_for_text(&format!(
        "REFUSED: the TLS key of {addr} is not the one pinned"
    ));
    let screen = tui.text();
    assert!(
        screen.contains(&format!("pinned:    {first_key}")),
        "{screen}"
    );
    assert!(
        screen.contains(&format!("presented: {second_key}")),
        "{screen}"
    );
    assert!(
        screen.contains(&format!("accept the new one: tcpchat --tls-forget {addr}")),
        "{screen}"
    );
    wait_status(&tui, "closed: TLS key changed: refused");

    // Not retried: a reconnect would say "reconnecting" at once (the backoff's next step is
    // 2 s); nothing changes during 3 s.
    let reconnects = tui.text().matches("reconnecting in").count();
    let watch_until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < watch_until {
        let screen = tui.text();
        assert_eq!(
            screen.matches("reconnecting in").count(),
            reconnects,
            "{screen}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    second.stop();
}

#[test]
fn tls_to_a_plaintext_port_says_so_in_one_line() {
    let plain = InProcess::start("127.0.0.1:0", None);
    let addr = plain.addr.to_string();
    let tui = Tui::spawn(&["--tls", &addr], 200, 30);
    tui.wait_for_text(&format!(
        "the server at {addr} does not speak TLS (it answered in plaintext: \"*** 连接成功!"
    ));
    tui.wait_for_text("; connect without --tls");
    wait_status(&tui, "closed: not TLS");
    plain.stop();
}

#[test]
fn plaintext_to_a_tls_port_shows_the_servers_one_line() {
    let data = tempfile::tempdir().unwrap();
    let (server, _) = InProcess::tls("127.0.0.1:0", data.path());
    let addr = server.addr.to_string();
    // Without --nick the client sends nothing first: the server's line must still come.
    let tui = Tui::spawn(&[&addr], 200, 30);
    tui.wait_for_text(&format!(
        "! this port speaks TLS; connect with tcpchat --tls {addr} or openssl s_client -connect {addr}"
    ));
    server.stop();
}

#[test]
fn tls_insecure_says_what_it_gives_up_and_still_chats() {
    let data = tempfile::tempdir().unwrap();
    let (server, key) = InProcess::tls("127.0.0.1:0", data.path());
    let addr = server.addr.to_string();
    let mut tui = Tui::spawn(
        &["--tls", "--tls-insecure", "--nick", "eve", &addr],
        200,
        30,
    );
    tui.wait_for_text("--tls-insecure: the server's certificate is NOT checked");
    wait_status(&tui, "INSECURE: certificate not checked");
    tui.wait_for_text(&format!(
        "NOT checked (--tls-insecure); the server's key is {key}"
    ));
    wait_status(&tui, " eve ");
    tui.send("over tls");
    tui.send(keys::ENTER);
    tui.wait_for_text("<eve> over tls");
    server.stop();
}

#[test]
fn the_inspector_shows_the_tls_handshake_and_the_records_behind_each_read() {
    let data = tempfile::tempdir().unwrap();
    let (server, _) = InProcess::tls("127.0.0.1:0", data.path());
    let addr = server.addr.to_string();
    let mut tui = Tui::spawn(&["--tls", "--nick", "ann", &addr], 200, 50);
    wait_status(&tui, " ann ");
    tui.send(keys::F2);
    tui.wait_for_text("TCP inspector");
    tui.wait_for_text("TLS ClientHello → [handshake ");
    tui.wait_for_text("TLS ServerHello ← [handshake ");
    tui.wait_for_text("TLS Finished (encrypted) → [application_data ");
    tui.wait_for_text("TLS established in");
    // The reads page, shown beside the others on a screen this size: each read's plaintext
    // beside the records that carried it.
    tui.wait_for_text("⟨TLS data ");
    server.stop();
}

#[test]
fn the_client_reconnects_over_tls_to_a_restarted_server_with_the_same_key() {
    let data = tempfile::tempdir().unwrap();
    let (server, key) = InProcess::tls("127.0.0.1:0", data.path());
    let addr = server.addr.to_string();
    let mut tui = Tui::spawn(&["--tls", "--nick", "rae", &addr], 200, 40);
    tui.wait_for_text("is now pinned for");
    wait_status(&tui, " rae ");
    server.stop();
    tui.wait_for_text("reconnecting in");
    // The same data directory: the same key, which the client finds pinned.
    let (again, same) = InProcess::tls(&addr, data.path());
    assert_eq!(same, key);
    tui.wait_for_text(&format!(
        "the server's key {key} is the one pinned for {addr}"
    ));
    wait_status(&tui, " TLS 1.3 TLS13_");
    wait_status(&tui, " rae ");
    tui.send("back again");
    tui.send(keys::ENTER);
    tui.wait_for_text("<rae> back again");
    again.stop();
}

#[test]
fn a_tls_server_that_vanishes_without_close_notify_reads_as_a_close() {
    let data = tempfile::tempdir().unwrap();
    let (server, _) = InProcess::tls("127.0.0.1:0", data.path());
    let addr = server.addr.to_string();
    let tui = Tui::spawn(&["--tls", "--nick", "sam", &addr], 120, 24);
    wait_status(&tui, " sam ");
    // Its runtime dropped, the server's sockets are closed by the OS: a FIN, no TLS goodbye.
    drop(server);
    tui.wait_for_text("closed by the server (FIN)");
    tui.wait_for_text("reconnecting in");
    assert!(!tui.text().contains("close_notify"), "{}", tui.text());
}

#[test]
fn local_mode_with_tls_hosts_the_room_over_tls_and_joins_it() {
    let port = harness::free_port();
    let local = format!("127.0.0.1:{port}");
    let tui = Tui::spawn(&["--tls", "--local", &local], 200, 30);
    wait_status(&tui, " hosting ");
    wait_status(&tui, " TLS 1.3 TLS13_");
    tui.wait_for_text("连接成功");
    // Anyone else joining it needs TLS too.
    let mut plain = std::net::TcpStream::connect(&local).unwrap();
    plain.set_read_timeout(Some(harness::DEADLINE)).unwrap();
    let mut told = String::new();
    std::io::Read::read_to_string(&mut plain, &mut told).unwrap();
    assert!(told.starts_with("! this port speaks TLS"), "{told:?}");
}
