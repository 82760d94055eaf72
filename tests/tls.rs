//! TLS over real sockets (issue 12, item 1 and the TLS cases of item 7): the server and client
//! of this crate, `openssl s_client` as an independent client, and hand-made hostile clients.
//! Servers listen on loopback ports the OS picks; every wait has a deadline.
//!
//! | case | must happen | test |
//! |---|---|---|
//! | `openssl s_client` on `--serve --tls` | greeting and chat, nothing in plaintext on the wire | `openssl_s_client_chats_and_nothing_on_the_wire_is_plaintext` |
//! | the self-signed pair | made 0600 in a 0700 dir, reused (same key) on restart | `the_self_signed_pair_is_private_and_the_same_after_a_restart` |
//! | a damaged cert file | one error line, exit 1, the file untouched | `a_damaged_certificate_file_is_one_error_line_and_is_not_replaced` |
//! | SIGHUP with `--tls-cert/--tls-key` | new handshakes get the new cert, nobody dropped; a bad reload keeps the old | `sighup_reloads_the_certificate_without_dropping_anyone` |
//! | `nc` on the TLS port (speaking first, silent, input at EOF) | one plaintext line, then EOF | `a_plaintext_client_on_the_tls_port_gets_one_line_then_eof` |
//! | `--tls` client on a plaintext port | "does not speak TLS", quoting the greeting | `a_tls_client_on_a_plaintext_port_is_told_so` |
//! | first use, then the same key, then another key | pinned and shown; matched; refused with both fingerprints; `--tls-insecure` connects; `--tls-forget` accepts the new one | `a_key_is_pinned_on_first_use_and_a_changed_key_is_refused` |
//! | a server that offers session resumption | every connection still shows its certificate and is checked (fixed: a resumed session was refused as unchecked) | `every_connection_is_checked_even_where_the_server_offers_resumption` |
//! | the pinned certificate without its private key | refused: the handshake signature is still checked | `a_pinned_certificate_without_its_key_is_refused` |
//! | a CA-signed certificate (`--tls-ca`) | verified by the chain, not pinned; a wrong name refused | `a_ca_signed_certificate_is_verified_by_its_chain` |
//! | a client stalled mid-handshake | others unaffected; closed after the handshake timeout | `a_client_stalled_mid_handshake_delays_nobody_and_is_closed_at_the_timeout` |
//! | garbage after a handshake byte | closed cleanly, server goes on | `garbage_instead_of_a_client_hello_is_closed_cleanly` |
//! | a 16 KB ClientHello | answered or refused, no panic, server goes on | `a_sixteen_kilobyte_client_hello_is_handled` |

// In a test a failed expectation is meant to panic: that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use common::{DEADLINE, NOT_BLOCKED, Reaped, prerequisite};
use tcpchat::server::{self, Config, Limits};
use tcpchat::tls::client::{ClientOptions, ClientTls, Established, TlsFailure, Trust};
use tcpchat::tls::known_hosts::KnownHosts;
use tcpchat::tls::record::{RecordTap, Recorder};
use tcpchat::tls::server::{CertSource, ServerTls};
use tcpchat::tls::{Fingerprint, provider};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader as TokioBufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_tcpchat")
}

/// Whether `openssl` runs here; missing, the tests that use it fail (or skip if
/// `TCPCHAT_TEST_SKIP=openssl`): CI installs it (`.ci/run`).
fn openssl_available() -> bool {
    let ran = Command::new("openssl")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let available = match ran {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!("`openssl version` exited with {status}")),
        Err(error) => Err(format!("cannot run openssl: {error}")),
    };
    prerequisite("openssl", available)
}

// ---- in-process servers and clients ----

/// A chat server speaking TLS with the self-signed pair kept in `data`.
struct TlsServer {
    addr: SocketAddr,
    token: CancellationToken,
    handle: tokio::task::JoinHandle<()>,
    tls: Arc<ServerTls>,
}

impl TlsServer {
    async fn start(data: &Path, limits: Limits) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::on(
            listener,
            ServerTls::new(CertSource::self_signed(data, "")).unwrap(),
            limits,
        )
    }

    fn on(listener: TcpListener, tls: ServerTls, limits: Limits) -> Self {
        let addr = listener.local_addr().unwrap();
        let token = CancellationToken::new();
        let tls = Arc::new(tls);
        let config = Config {
            limits,
            tls: Some(tls.clone()),
            ..Config::default()
        };
        let handle = tokio::spawn(server::run(listener, config, token.clone()));
        Self {
            addr,
            token,
            handle,
            tls,
        }
    }

    async fn stop(self) {
        self.token.cancel();
        timeout(DEADLINE, self.handle).await.unwrap().unwrap();
    }
}

/// Client options pinning in `dir`.
fn pinning_in(dir: &Path) -> ClientOptions {
    ClientOptions {
        known_hosts: Some(KnownHosts::in_dir(dir)),
        ..ClientOptions::default()
    }
}

fn insecure() -> ClientOptions {
    ClientOptions {
        insecure: true,
        ..ClientOptions::default()
    }
}

type Tls = tokio_rustls::client::TlsStream<Recorder<TcpStream>>;

/// Connects to `target` and runs this crate's client handshake.
async fn handshake(target: &str, options: ClientOptions) -> Result<(Tls, Established), TlsFailure> {
    let tls = ClientTls::new(target, options).unwrap();
    let stream = timeout(DEADLINE, TcpStream::connect(target))
        .await
        .unwrap()
        .unwrap();
    tls.handshake(stream, &RecordTap::new()).await
}

/// A chat client over TLS.
struct TlsChat {
    stream: TokioBufReader<Tls>,
}

impl TlsChat {
    async fn join(target: &str) -> Self {
        let (stream, _) = handshake(target, insecure()).await.unwrap();
        let mut chat = Self {
            stream: TokioBufReader::new(stream),
        };
        let greeting = chat.line().await;
        assert!(greeting.starts_with("*** 连接成功!"), "{greeting:?}");
        chat
    }

    async fn line(&mut self) -> String {
        let mut line = String::new();
        let n = timeout(DEADLINE, self.stream.read_line(&mut line))
            .await
            .expect("a line in time")
            .expect("read");
        assert!(n > 0, "EOF while waiting for a line");
        line.trim_end_matches('\n').to_owned()
    }

    async fn line_containing(&mut self, text: &str) -> String {
        for _ in 0..100 {
            let line = self.line().await;
            if line.contains(text) {
                return line;
            }
        }
        panic!("no line containing {text:?}");
    }

    async fn send(&mut self, text: &str) {
        let stream = self.stream.get_mut();
        stream.write_all(text.as_bytes()).await.unwrap();
        stream.flush().await.unwrap();
    }
}

// ---- the real binary ----

/// `tcpchat --serve` with `args`, its log collected.
struct ServeProcess {
    child: Reaped,
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    lines: mpsc::Receiver<String>,
}

impl ServeProcess {
    fn start(args: &[&str]) -> Self {
        Self::try_start(args).unwrap_or_else(|log| panic!("the server did not start:\n{log}"))
    }

    /// `Err(its log)` if it exits before listening.
    fn try_start(args: &[&str]) -> Result<Self, String> {
        let mut child = Reaped(
            Command::new(binary())
                .args(["--serve", "--listen", "127.0.0.1:0"])
                .args(args)
                .env("NO_COLOR", "1")
                .env_remove("RUST_LOG")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, lines) = mpsc::channel();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    log.lock().unwrap().push(line.clone());
                    let _ = tx.send(line);
                }
            });
        }
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some((_, rest)) = line.split_once("listening on ") {
                        let addr = rest.split_whitespace().next().unwrap().parse().unwrap();
                        return Ok(Self {
                            child,
                            addr,
                            log,
                            lines,
                        });
                    }
                }
                Err(_) => return Err(log.lock().unwrap().join("\n")),
            }
        }
    }

    /// Waits for a log line containing `text`, and returns it.
    fn wait_log(&self, text: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => {}
                Err(_) => panic!(
                    "no log line with {text:?}; the log:\n{}",
                    self.log.lock().unwrap().join("\n")
                ),
            }
        }
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) takes two integers; the pid is our own child's, not yet reaped.
        #[allow(unsafe_code)]
        let result = unsafe { libc::kill(pid, signal) };
        assert_eq!(result, 0);
    }

    fn stop(mut self) {
        self.signal(libc::SIGTERM);
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status}");
    }
}

/// The key a server logs as it starts (`TLS certificate ..., key SHA256:...`).
fn logged_key(line: &str) -> Fingerprint {
    let key = line
        .split("key ")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap();
    Fingerprint::parse(key).unwrap()
}

/// `openssl s_client -quiet` connected to `addr`: lines out, and what it writes in.
struct OpenSsl {
    child: Reaped,
    lines: mpsc::Receiver<String>,
}

impl OpenSsl {
    fn connect(addr: SocketAddr) -> Self {
        let mut child = Reaped(
            Command::new("openssl")
                .args(["s_client", "-connect", &addr.to_string(), "-quiet"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        Self { child, lines }
    }

    fn line(&self) -> String {
        self.lines
            .recv_timeout(DEADLINE)
            .expect("a line from openssl")
    }

    fn line_containing(&self, text: &str) -> String {
        loop {
            let line = self.line();
            if line.contains(text) {
                return line;
            }
        }
    }

    fn send(&mut self, text: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }
}

/// A TCP relay between a client and `server` that keeps every byte going each way.
async fn wiretap(server: SocketAddr) -> (SocketAddr, Arc<Mutex<(Vec<u8>, Vec<u8>)>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new((Vec::new(), Vec::new())));
    let kept = seen.clone();
    tokio::spawn(async move {
        let (client, _) = listener.accept().await.unwrap();
        let upstream = TcpStream::connect(server).await.unwrap();
        let (mut client_rd, mut client_wr) = client.into_split();
        let (mut server_rd, mut server_wr) = upstream.into_split();
        let up = {
            let kept = kept.clone();
            async move {
                let mut buf = [0u8; 16 * 1024];
                while let Ok(n @ 1..) = client_rd.read(&mut buf).await {
                    kept.lock().unwrap().0.extend_from_slice(&buf[..n]);
                    if server_wr.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                let _ = server_wr.shutdown().await;
            }
        };
        let down = async move {
            let mut buf = [0u8; 16 * 1024];
            while let Ok(n @ 1..) = server_rd.read(&mut buf).await {
                kept.lock().unwrap().1.extend_from_slice(&buf[..n]);
                if client_wr.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
            let _ = client_wr.shutdown().await;
        };
        tokio::join!(up, down);
    });
    (addr, seen)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

// ---- interop ----

#[tokio::test]
async fn openssl_s_client_chats_and_nothing_on_the_wire_is_plaintext() {
    if !openssl_available() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let server = TlsServer::start(data.path(), Limits::default()).await;
    let (tapped, wire) = wiretap(server.addr).await;
    let alice = OpenSsl::connect(tapped);
    let greeting = tokio::task::spawn_blocking(move || {
        let greeting = alice.line();
        (alice, greeting)
    });
    let (mut alice, greeting) = greeting.await.unwrap();
    assert!(greeting.starts_with("*** 连接成功!"), "{greeting:?}");
    let mut bob = TlsChat::join(&server.addr.to_string()).await;
    alice.send("a secret over TLS\n");
    let heard = bob.line_containing("a secret").await;
    assert!(heard.ends_with("> a secret over TLS"), "{heard:?}");
    bob.send("and back\n").await;
    let (mut alice, back) = tokio::task::spawn_blocking(move || {
        let back = alice.line_containing("and back");
        (alice, back)
    })
    .await
    .unwrap();
    assert!(back.ends_with("> and back"), "{back:?}");
    // Killed (as `timeout` does to it), openssl leaves with a TCP FIN and no TLS close_notify:
    // to the room that is someone who closed, not an error with a link to rustls's manual.
    alice.child.0.kill().unwrap();
    let left = bob.line_containing(" left (").await;
    assert!(left.contains(" left (closed); "), "{left:?}");

    let (up, down) = wire.lock().unwrap().clone();
    assert_eq!(
        up.first(),
        Some(&0x16),
        "the client starts with a handshake record"
    );
    assert_eq!(down.first(), Some(&0x16), "the server answers with one");
    for plaintext in ["a secret".as_bytes(), b"and back", "连接成功".as_bytes()] {
        assert!(!contains(&up, plaintext), "plaintext going up");
        assert!(!contains(&down, plaintext), "plaintext coming down");
    }
    server.stop().await;
}

#[test]
fn the_self_signed_pair_is_private_and_the_same_after_a_restart() {
    use std::os::unix::fs::PermissionsExt;
    if !openssl_available() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    let server = ServeProcess::start(&["--tls", "--data-dir", dir]);
    let first = logged_key(&server.log.lock().unwrap().join("\n"));
    let mut client = OpenSsl::connect(server.addr);
    assert!(client.line().starts_with("*** 连接成功!"));
    client.send("/quit\n");
    server.stop();

    let mode = |path: PathBuf| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(data.path().join("tls")), 0o700);
    assert_eq!(mode(data.path().join("tls/key.pem")), 0o600);
    assert_eq!(mode(data.path().join("tls/cert.pem")), 0o600);
    let cert = std::fs::read(data.path().join("tls/cert.pem")).unwrap();

    let again = ServeProcess::start(&["--tls", "--data-dir", dir]);
    let second = logged_key(&again.log.lock().unwrap().join("\n"));
    assert_eq!(second, first, "the same key after a restart");
    assert_eq!(
        std::fs::read(data.path().join("tls/cert.pem")).unwrap(),
        cert
    );
    // What a client sees is that key, too.
    let presented = Command::new("openssl")
        .args(["s_client", "-connect", &again.addr.to_string()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&presented.stdout);
    assert!(text.contains("CN=tcpchat self-signed") || text.contains("CN = tcpchat self-signed"));
    again.stop();
}

#[test]
fn a_damaged_certificate_file_is_one_error_line_and_is_not_replaced() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    ServeProcess::start(&["--tls", "--data-dir", dir]).stop();
    let cert = data.path().join("tls/cert.pem");
    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\ndamaged\n").unwrap();
    let output = Command::new(binary())
        .args([
            "--serve",
            "--listen",
            "127.0.0.1:0",
            "--tls",
            "--data-dir",
            dir,
        ])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("tcpchat: ") && stderr.contains("cert.pem is damaged"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(&cert).unwrap(),
        "-----BEGIN CERTIFICATE-----\ndamaged\n"
    );
}

/// A certificate for 127.0.0.1 and localhost, signed by `ca` if given (else self-signed):
/// (certificate PEM, key PEM).
fn make_cert(ca: Option<&rcgen::Issuer<'_, rcgen::KeyPair>>, names: &[&str]) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let params = rcgen::CertificateParams::new(names).unwrap();
    let cert = match ca {
        Some(ca) => params.signed_by(&key, ca).unwrap(),
        None => params.self_signed(&key).unwrap(),
    };
    (cert.pem(), key.serialize_pem())
}

#[tokio::test]
async fn sighup_reloads_the_certificate_without_dropping_anyone() {
    let files = tempfile::tempdir().unwrap();
    let (cert, key) = (files.path().join("cert.pem"), files.path().join("key.pem"));
    let write = |(c, k): (String, String)| {
        std::fs::write(&cert, c).unwrap();
        std::fs::write(&key, k).unwrap();
    };
    write(make_cert(None, &["127.0.0.1"]));
    let server = ServeProcess::start(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--retain",
        "0",
    ]);
    let old = logged_key(&server.wait_log_or_seen("TLS certificate"));
    let target = server.addr.to_string();
    let (_, first) = handshake(&target, insecure()).await.unwrap();
    assert_eq!(first.trust, Trust::Unchecked { fingerprint: old });
    let mut alice = TlsChat::join(&target).await;

    write(make_cert(None, &["127.0.0.1"]));
    server.signal(libc::SIGHUP);
    let new = logged_key(&server.wait_log("TLS certificate reloaded"));
    assert_ne!(new, old);
    let (_, second) = handshake(&target, insecure()).await.unwrap();
    assert_eq!(second.trust, Trust::Unchecked { fingerprint: new });
    // Nobody was dropped: the session from before the reload still chats.
    let mut bob = TlsChat::join(&target).await;
    alice.send("still here\n").await;
    bob.line_containing("still here").await;

    std::fs::write(&key, "not a key").unwrap();
    server.signal(libc::SIGHUP);
    server.wait_log("not reloaded, the old one stays");
    let (_, third) = handshake(&target, insecure()).await.unwrap();
    assert_eq!(third.trust, Trust::Unchecked { fingerprint: new });
    server.stop();
}

impl ServeProcess {
    /// A log line with `text` already seen (or still to come).
    fn wait_log_or_seen(&self, text: &str) -> String {
        let seen = self
            .log
            .lock()
            .unwrap()
            .iter()
            .find(|l| l.contains(text))
            .cloned();
        seen.unwrap_or_else(|| self.wait_log(text))
    }
}

// ---- mismatches ----

#[tokio::test]
async fn a_plaintext_client_on_the_tls_port_gets_one_line_then_eof() {
    let data = tempfile::tempdir().unwrap();
    let server = TlsServer::start(data.path(), Limits::default()).await;
    let want = format!(
        "! this port speaks TLS; connect with tcpchat --tls {0} or openssl s_client -connect {0}\n",
        server.addr
    );
    // Speaking first (nc typing a line), silent (a TUI without --tls waits for the greeting),
    // and silent with its side closed (nc with its input at an end).
    for how in ["speaks", "silent", "half-closed"] {
        let mut client = TcpStream::connect(server.addr).await.unwrap();
        match how {
            "speaks" => client.write_all(b"hello?\n").await.unwrap(),
            "half-closed" => client.shutdown().await.unwrap(),
            _ => {}
        }
        let mut got = Vec::new();
        timeout(DEADLINE, client.read_to_end(&mut got))
            .await
            .expect("EOF in time")
            .expect("a clean EOF, not a reset");
        assert_eq!(String::from_utf8_lossy(&got), want, "{how}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_tls_client_on_a_plaintext_port_is_told_so() {
    let server = common::spawn_server(server::Mode::Chat, Limits::default()).await;
    let target = server.addr.to_string();
    let failure = handshake(&target, insecure()).await.unwrap_err();
    let TlsFailure::NotTls { answered, .. } = &failure else {
        panic!("{failure:?}");
    };
    assert!(answered.starts_with("*** 连接成功!"), "{answered:?}");
    assert!(failure.is_final());
    let said = failure.to_string();
    assert!(
        said.starts_with(&format!(
            "the server at {target} does not speak TLS (it answered in plaintext: \"*** 连接成功!"
        )) && said.ends_with("); connect without --tls"),
        "{said}"
    );
    server.token.cancel();
}

// ---- pinning ----

#[tokio::test]
async fn a_key_is_pinned_on_first_use_and_a_changed_key_is_refused() {
    let (first_data, second_data, mine) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let server = TlsServer::start(first_data.path(), Limits::default()).await;
    let addr = server.addr;
    let target = addr.to_string();
    let first_key = server.tls.fingerprint();

    let (_, established) = handshake(&target, pinning_in(mine.path())).await.unwrap();
    let known = KnownHosts::in_dir(mine.path());
    assert_eq!(
        established.trust,
        Trust::PinnedNow {
            fingerprint: first_key,
            kept: Ok(known.path().to_owned())
        }
    );
    let file = std::fs::read_to_string(known.path()).unwrap();
    assert!(file.contains(&format!("{target} {first_key}\n")), "{file}");
    let (_, again) = handshake(&target, pinning_in(mine.path())).await.unwrap();
    assert_eq!(
        again.trust,
        Trust::Pinned {
            fingerprint: first_key
        }
    );

    // Another server, another key, the same HOST:PORT.
    server.stop().await;
    let listener = TcpListener::bind(addr).await.unwrap();
    let tls = ServerTls::new(CertSource::self_signed(second_data.path(), "")).unwrap();
    let second_key = tls.fingerprint();
    assert_ne!(second_key, first_key);
    let server = TlsServer::on(listener, tls, Limits::default());
    let failure = handshake(&target, pinning_in(mine.path()))
        .await
        .unwrap_err();
    assert_eq!(
        failure,
        TlsFailure::KeyChanged {
            target: target.clone(),
            pinned: first_key,
            presented: second_key,
            known_hosts: known.path().to_owned(),
        }
    );
    assert!(failure.is_final(), "a changed key is not retried");
    assert_eq!(
        KnownHosts::in_dir(mine.path()).get(&target).unwrap(),
        Some(first_key)
    );

    // --tls-insecure connects, and says what it saw.
    let (_, unchecked) = handshake(&target, insecure()).await.unwrap();
    assert_eq!(
        unchecked.trust,
        Trust::Unchecked {
            fingerprint: second_key
        }
    );

    // The way the refusal tells: forget the old key, then the new one is pinned on first use.
    let forgot = Command::new(binary())
        .args([
            "--tls-forget",
            &target,
            "--data-dir",
            mine.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(forgot.status.success());
    let said = String::from_utf8_lossy(&forgot.stdout);
    assert!(
        said.contains(&format!("forgot the key pinned for {target} ({first_key})")),
        "{said}"
    );
    let (_, renewed) = handshake(&target, pinning_in(mine.path())).await.unwrap();
    assert!(
        matches!(renewed.trust, Trust::PinnedNow { fingerprint, .. } if fingerprint == second_key)
    );
    server.stop().await;
}

#[tokio::test]
async fn every_connection_is_checked_even_where_the_server_offers_resumption() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    // A server that sends session tickets (rustls's default), unlike tcpchat's.
    let (cert, key) = make_cert(None, &["127.0.0.1"]);
    let chain = vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    assert!(config.send_tls13_tickets > 0);
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(stream).await {
                    let _ = tls.write_all(b"hello\n").await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    let mine = tempfile::tempdir().unwrap();
    let tls = ClientTls::new(&target, pinning_in(mine.path())).unwrap();
    let mut trusts = Vec::new();
    for _ in 0..3 {
        let stream = TcpStream::connect(&target).await.unwrap();
        let (mut stream, established) = tls.handshake(stream, &RecordTap::new()).await.unwrap();
        // Read to the end, so that the tickets the server sent are taken in.
        let mut rest = Vec::new();
        let _ = timeout(DEADLINE, stream.read_to_end(&mut rest))
            .await
            .unwrap();
        trusts.push(established.trust);
    }
    assert!(matches!(trusts[0], Trust::PinnedNow { .. }), "{trusts:?}");
    assert!(matches!(trusts[1], Trust::Pinned { .. }), "{trusts:?}");
    assert!(matches!(trusts[2], Trust::Pinned { .. }), "{trusts:?}");
}

/// Presents a fixed certificate with a signing key that is not its own.
#[derive(Debug)]
struct Impostor(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for Impostor {
    fn resolve(
        &self,
        _: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
}

#[tokio::test]
async fn a_pinned_certificate_without_its_key_is_refused() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let (real_data, mine) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let real = TlsServer::start(real_data.path(), Limits::default()).await;
    let addr = real.addr;
    let target = addr.to_string();
    handshake(&target, pinning_in(mine.path())).await.unwrap();
    real.stop().await;

    // The impostor has the real certificate (it is public) but not its private key.
    let cert = CertificateDer::from_pem_file(real_data.path().join("tls/cert.pem")).unwrap();
    let (_, other_key) = make_cert(None, &["127.0.0.1"]);
    let key = PrivateKeyDer::from_pem_slice(other_key.as_bytes()).unwrap();
    let signer = provider().key_provider.load_private_key(key).unwrap();
    let impostor = rustls::sign::CertifiedKey::new(vec![cert], signer);
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Impostor(Arc::new(impostor))));
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind(addr).await.unwrap();
    let serving = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let _ = acceptor.accept(stream).await;
    });
    let failure = handshake(&target, pinning_in(mine.path()))
        .await
        .unwrap_err();
    assert!(
        matches!(&failure, TlsFailure::Refused(why) | TlsFailure::Failed(why) if why.contains("ignature")),
        "{failure:?}"
    );
    timeout(DEADLINE, serving).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_ca_signed_certificate_is_verified_by_its_chain() {
    let dir = tempfile::tempdir().unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "tcpchat test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let ca = rcgen::Issuer::new(ca_params, ca_key);
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_cert.pem()).unwrap();
    let with_ca = |known: &Path| ClientOptions {
        ca: Some(ca_file.clone()),
        ..pinning_in(known)
    };

    for (names, verified) in [
        (&["127.0.0.1", "localhost"][..], true),
        (&["other.example"][..], false),
    ] {
        let (cert, key) = make_cert(Some(&ca), names);
        let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert_path, cert).unwrap();
        std::fs::write(&key_path, key).unwrap();
        let source = CertSource::Files {
            cert: cert_path,
            key: key_path,
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = TlsServer::on(listener, ServerTls::new(source).unwrap(), Limits::default());
        let target = server.addr.to_string();
        let known = tempfile::tempdir().unwrap();
        let result = handshake(&target, with_ca(known.path())).await;
        if verified {
            assert_eq!(result.unwrap().1.trust, Trust::Verified);
            assert!(
                !KnownHosts::in_dir(known.path()).path().exists(),
                "nothing pinned"
            );
            // Without the CA it chains to nothing this client trusts: pinned instead.
            let (_, pinned) = handshake(&target, pinning_in(known.path())).await.unwrap();
            assert!(
                matches!(pinned.trust, Trust::PinnedNow { .. }),
                "{pinned:?}"
            );
        } else {
            let failure = result.unwrap_err();
            assert!(
                matches!(&failure, TlsFailure::Refused(why) if why.contains("not valid for name")),
                "{failure:?}"
            );
            assert!(failure.is_final());
        }
        server.stop().await;
    }
}

// ---- hostile clients ----

/// A real ClientHello, as rustls's client writes it.
fn client_hello() -> Vec<u8> {
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut client = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut hello = Vec::new();
    client.write_tls(&mut hello).unwrap();
    assert_eq!(hello[0], 0x16);
    hello
}

/// What a server does next: `Ok(first byte)` of what it sent, or `Err(())` for EOF or reset.
async fn next_byte(stream: &mut TcpStream) -> Result<u8, ()> {
    let mut byte = [0u8; 1];
    match timeout(DEADLINE, stream.read(&mut byte))
        .await
        .expect("an answer in time")
    {
        Ok(1) => Ok(byte[0]),
        _ => Err(()),
    }
}

/// The handshake timeout the hostile cases run with: short, so the test is.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);

fn hostile_limits() -> Limits {
    Limits {
        tls_handshake_timeout: HANDSHAKE_TIMEOUT,
        ..Limits::default()
    }
}

#[tokio::test]
async fn a_client_stalled_mid_handshake_delays_nobody_and_is_closed_at_the_timeout() {
    let data = tempfile::tempdir().unwrap();
    let server = TlsServer::start(data.path(), hostile_limits()).await;
    let hello = client_hello();
    // Taken before the connect: the server's clock for this client starts later, at accept.
    let stalled_at = Instant::now();
    let mut stalled = TcpStream::connect(server.addr).await.unwrap();
    stalled.write_all(&hello[..hello.len() / 2]).await.unwrap();

    // Meanwhile a whole session, well within the stalled client's timeout.
    let started = Instant::now();
    let mut alice = TlsChat::join(&server.addr.to_string()).await;
    alice.send("not delayed\n").await;
    alice.line_containing("not delayed").await;
    let took = started.elapsed();
    assert!(
        took < HANDSHAKE_TIMEOUT,
        "a full session took {took:?} beside a stalled one"
    );

    // The stalled one is closed at its timeout, not before (margin: the debug build's
    // scheduling on a busy machine, NOT_BLOCKED).
    let ended = next_byte(&mut stalled).await;
    let after = stalled_at.elapsed();
    assert!(
        ended.is_err() || ended == Ok(0x15),
        "closed (or an alert first): {ended:?}"
    );
    assert!(
        after >= HANDSHAKE_TIMEOUT && after < HANDSHAKE_TIMEOUT + NOT_BLOCKED,
        "closed after {after:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn garbage_instead_of_a_client_hello_is_closed_cleanly() {
    let data = tempfile::tempdir().unwrap();
    let server = TlsServer::start(data.path(), hostile_limits()).await;
    for garbage in [
        // A handshake record header, then noise.
        [&[0x16, 0x03, 0x01, 0x00, 0x40][..], &[0xAB; 64]].concat(),
        // A handshake record claiming more than a record may hold.
        vec![0x16, 0x03, 0x03, 0xff, 0xff, 1, 2, 3],
        // A record that is not a handshake at all, but starts like one.
        [&[0x16][..], &[0u8; 200]].concat(),
    ] {
        let mut client = TcpStream::connect(server.addr).await.unwrap();
        client.write_all(&garbage).await.unwrap();
        let started = Instant::now();
        // An alert, then the close; or the close at once. Never a wait for the timeout.
        let mut answer = Vec::new();
        let _ = timeout(DEADLINE, client.read_to_end(&mut answer))
            .await
            .expect("closed in time");
        assert!(answer.is_empty() || answer[0] == 0x15, "{answer:?}");
        assert!(
            started.elapsed() < HANDSHAKE_TIMEOUT,
            "closed at once, not at the timeout"
        );
    }
    // The server goes on.
    let mut alice = TlsChat::join(&server.addr.to_string()).await;
    alice.send("fine\n").await;
    alice.line_containing("fine").await;
    server.stop().await;
}

/// A TLS 1.3 ClientHello carrying one extension of `padding` bytes (an unknown type, which a
/// server must ignore), in as many handshake records as it takes.
fn big_client_hello(padding: usize) -> Vec<u8> {
    fn u16be(n: usize) -> [u8; 2] {
        u16::try_from(n).unwrap().to_be_bytes()
    }
    let mut extensions = Vec::new();
    let mut extension = |kind: u16, body: &[u8]| {
        extensions.extend(kind.to_be_bytes());
        extensions.extend(u16be(body.len()));
        extensions.extend(body);
    };
    extension(0x002b, &[2, 0x03, 0x04]); // supported_versions: TLS 1.3
    extension(0x000a, &[0, 2, 0x00, 0x1d]); // supported_groups: x25519
    extension(0x000d, &[0, 4, 0x04, 0x03, 0x08, 0x04]); // signature_algorithms
    let mut share = vec![0, 36, 0x00, 0x1d, 0, 32, 9];
    share.extend([0u8; 31]); // key_share: x25519, the base point
    extension(0x0033, &share);
    extension(0xfaba, &vec![0x5a; padding]); // unknown: must be ignored
    let mut body = vec![0x03, 0x03];
    body.extend([7u8; 32]); // random
    body.push(0); // session id
    body.extend([0, 2, 0x13, 0x01]); // TLS_AES_128_GCM_SHA256
    body.extend([1, 0]); // null compression
    body.extend(u16be(extensions.len()));
    body.extend(extensions);
    let mut message = vec![1]; // ClientHello
    message.extend(&u32::try_from(body.len()).unwrap().to_be_bytes()[1..]);
    message.extend(body);
    let mut records = Vec::new();
    for chunk in message.chunks(16 * 1024) {
        records.extend([0x16, 0x03, 0x01]);
        records.extend(u16be(chunk.len()));
        records.extend(chunk);
    }
    records
}

#[tokio::test]
async fn a_sixteen_kilobyte_client_hello_is_handled() {
    let data = tempfile::tempdir().unwrap();
    let server = TlsServer::start(data.path(), hostile_limits()).await;
    let hello = big_client_hello(16 * 1024);
    assert!(hello.len() > 16 * 1024 + 5, "it spans two records");
    let mut client = TcpStream::connect(server.addr).await.unwrap();
    client.write_all(&hello).await.unwrap();
    // rustls takes it (a ServerHello, 0x16) or refuses it (an alert, 0x15, or the close).
    let answer = next_byte(&mut client).await;
    assert!(matches!(answer, Ok(0x16 | 0x15) | Err(())), "{answer:?}");
    let _ = std::io::stderr().write_all(format!("a 16 KB ClientHello got {answer:?}\n").as_bytes());
    drop(client);
    // The server goes on.
    let mut alice = TlsChat::join(&server.addr.to_string()).await;
    alice.send("after the big hello\n").await;
    alice.line_containing("after the big hello").await;
    server.stop().await;
}
