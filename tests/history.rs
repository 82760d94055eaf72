//! History over real TCP: `tcpchat::server::run` with a real SQLite store in a temporary data
//! directory — replay on join with nothing missing or twice at the boundary, `/history`,
//! `/search` with hostile words, a restart on the same directory — and the real binary killed
//! with SIGKILL mid-burst, which must lose no line any client received.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::{Client, DEADLINE};
use tcpchat::protocol::{Event, SaidKind, ServerLine};
use tcpchat::server::{self, Config, HistorySettings, Limits, Mode};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

/// A server keeping history in `dir`, replaying `replay` lines on join.
struct Kept {
    addr: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Kept {
    async fn start(dir: &Path, replay: usize) -> Self {
        let settings = HistorySettings {
            data_dir: Some(dir.to_owned()),
            replay,
            ..HistorySettings::default()
        };
        let history = settings.open().expect("open the store");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let config = Config {
            mode: Mode::Chat,
            limits: Limits {
                flood: server::FloodLimit {
                    burst: 1_000_000,
                    per_second: 0.0,
                },
                ..Limits::default()
            },
            history,
            ..Config::default()
        };
        let stop = CancellationToken::new();
        let task = tokio::spawn(server::run(listener, config, stop.clone()));
        Self { addr, stop, task }
    }

    /// Stops the server and waits until it has let go of its store.
    async fn stop(self) {
        self.stop.cancel();
        timeout(DEADLINE, self.task)
            .await
            .expect("the server stops")
            .expect("the server task");
    }
}

/// What a client read on joining: the replayed lines (seq, text) and the next number.
struct Joined {
    client: Client,
    replayed: Vec<(u64, String)>,
    next: u64,
}

/// Connects, reads the greeting and the history block.
async fn join(addr: SocketAddr) -> Joined {
    let mut client = Client::connect(addr).await;
    let greeting = client.line().await;
    assert!(greeting.contains("连接成功"), "{greeting:?}");
    let (count, next) = match ServerLine::parse(&client.line().await) {
        Some(ServerLine::Event(Event::History { count, next, .. })) => (count, next),
        other => panic!("expected the history rule, got {other:?}"),
    };
    let mut replayed = Vec::new();
    for _ in 0..count {
        let line = client.line().await;
        match ServerLine::parse(&line) {
            Some(ServerLine::Replayed { seq, text, .. }) => replayed.push((seq, text.to_owned())),
            other => panic!("expected a replayed line, got {other:?} from {line:?}"),
        }
    }
    if count > 0 {
        let end = client.line().await;
        assert!(end.starts_with("*** end of history"), "{end:?}");
    }
    Joined {
        client,
        replayed,
        next,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joiner_gets_the_last_lines_then_live_ones_and_a_restart_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let server = Kept::start(dir.path(), 2).await;
    let mut a = join(server.addr).await;
    assert_eq!(
        (a.replayed.len(), a.next),
        (0, 1),
        "a new store has no history"
    );
    a.client.send("one\n/me waves\nthree\n").await;
    for want in ["<guest-1> one", "* guest-1 waves", "<guest-1> three"] {
        a.client.expect(want).await;
    }
    let mut b = join(server.addr).await;
    assert_eq!(
        b.replayed,
        [(2, "waves".to_owned()), (3, "three".to_owned())],
        "the last two, numbered"
    );
    assert_eq!(b.next, 4);
    a.client.expect("*** guest-2 joined; 2 online").await;
    a.client.send("four\n").await;
    b.client.expect("<guest-1> four").await;
    server.stop().await;

    // The same directory after a restart: everything is still there, numbering goes on.
    let server = Kept::start(dir.path(), 50).await;
    let mut c = join(server.addr).await;
    let texts: Vec<&str> = c.replayed.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(texts, ["one", "waves", "three", "four"]);
    assert_eq!(c.next, 5);
    c.client.send("five\n").await;
    c.client.expect("<guest-1> five").await;
    c.client.send("/history 2\n").await;
    c.client
        .expect("*** history of #lobby: 2 lines; the next line is #6")
        .await;
    for want in ["] <guest-1> four", "] <guest-1> five"] {
        let line = c.client.line().await;
        assert!(line.ends_with(want), "{line:?}");
    }
    c.client.expect("*** end of history of #lobby").await;
    server.stop().await;
}

/// Each room keeps, numbers and replays its own lines: entering `#rust` replays `#rust`'s, each
/// named by the room; `/history` and `/search` answer about the current room; a restart keeps
/// every room's numbering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_room_replays_and_numbers_its_own_history() {
    let dir = tempfile::tempdir().unwrap();
    let server = Kept::start(dir.path(), 50).await;
    let mut a = join(server.addr).await;
    a.client
        .send("in the lobby\n/join #rust\nin rust one\nin rust two\n")
        .await;
    for want in [
        "<guest-1> in the lobby",
        "#rust *** guest-1 joined; 1 online",
        "#rust *** no topic set",
        "#rust *** history of #rust: none yet; the next line is #1",
        "*** now talking in #rust",
        "#rust <guest-1> in rust one",
        "#rust <guest-1> in rust two",
    ] {
        a.client.expect(want).await;
    }
    let mut b = join(server.addr).await;
    let texts: Vec<&str> = b.replayed.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(
        texts,
        ["in the lobby"],
        "the lobby replays the lobby's lines only"
    );
    assert_eq!(b.next, 2);
    b.client.send("/join #RUST\n").await;
    b.client.expect("#rust *** guest-2 joined; 2 online").await;
    b.client.expect("#rust *** no topic set").await;
    b.client
        .expect("#rust *** history of #rust: 2 lines; the next line is #3")
        .await;
    for (seq, text) in [(1, "in rust one"), (2, "in rust two")] {
        let line = b.client.line().await;
        assert!(line.starts_with("#rust [20"), "named by its room: {line:?}");
        assert!(
            line.ends_with(&format!(" #{seq}] <guest-1> {text}")),
            "{line:?}"
        );
    }
    b.client.expect("#rust *** end of history of #rust").await;
    b.client.expect("*** now talking in #rust").await;
    b.client.send("/search one\n").await;
    b.client
        .expect("#rust *** search in #rust for one: 1 lines, newest first")
        .await;
    assert!(b.client.line().await.ends_with("<guest-1> in rust one"));
    b.client.expect("#rust *** end of search in #rust").await;
    server.stop().await;

    let server = Kept::start(dir.path(), 50).await;
    let mut c = join(server.addr).await;
    assert_eq!(c.next, 2, "the lobby's numbering goes on");
    c.client.send("/join #rust\nthree\n/history 1\n").await;
    c.client
        .rx
        .line_starting("#rust *** history of #rust: 2 lines; the next line is #3")
        .await;
    for seq in [1, 2] {
        assert!(c.client.line().await.contains(&format!(" #{seq}] ")));
    }
    c.client.expect("#rust *** end of history of #rust").await;
    c.client.expect("*** now talking in #rust").await;
    c.client.expect("#rust <guest-1> three").await;
    c.client
        .expect("#rust *** history of #rust: 1 lines; the next line is #4")
        .await;
    assert!(c.client.line().await.ends_with(" #3] <guest-1> three"));
    server.stop().await;
}

/// While one client talks without a pause, others join: each one's replay ends exactly where
/// its live lines begin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replay_and_live_lines_meet_with_nothing_missing_or_twice() {
    const LINES: usize = 3_000;
    const JOINERS: usize = 12;
    let dir = tempfile::tempdir().unwrap();
    let server = Kept::start(dir.path(), 20).await;
    let mut talker = join(server.addr).await;
    let addr = server.addr;
    let talking = tokio::spawn(async move {
        for n in 1..=LINES {
            talker.client.send(format!("n{n}\n")).await;
            if n % 100 == 0 {
                // Read up to its own echo, so its queue never fills.
                while talker.client.line().await != format!("<guest-1> n{n}") {}
            }
        }
        talker
    });
    let mut joiners = Vec::new();
    for _ in 0..JOINERS {
        joiners.push(tokio::spawn(async move {
            let mut joined = join(addr).await;
            // Replayed lines are contiguous and end just before `next`.
            for (i, (seq, text)) in joined.replayed.iter().enumerate() {
                assert_eq!(*text, format!("n{seq}"));
                assert_eq!(*seq, joined.next - (joined.replayed.len() - i) as u64);
            }
            // The first live line from the talker is line `next`.
            let want_next = joined.next;
            if want_next as usize <= LINES {
                let first = loop {
                    let line = joined.client.line().await;
                    if let Some(n) = line.strip_prefix("<guest-1> n") {
                        break n.parse::<u64>().unwrap();
                    }
                };
                assert_eq!(first, want_next, "the first live line follows the replay");
            }
        }));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for joiner in joiners {
        timeout(Duration::from_secs(30), joiner)
            .await
            .expect("a joiner finished")
            .expect("joiner");
    }
    timeout(Duration::from_secs(30), talking)
        .await
        .expect("the talker finished")
        .expect("talker");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_and_search_answer_hostile_questions_with_lines_or_a_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let server = Kept::start(dir.path(), 0).await;
    let mut a = Client::connect(server.addr).await;
    a.line().await; // the greeting; no replay with --history 0
    a.send("Rust is great\n今天天气很好\n100% sure\n'; DROP TABLE lines; --\n")
        .await;
    for _ in 0..4 {
        a.line().await;
    }
    let questions: [(&str, &[&str]); 9] = [
        (
            "/search rust",
            &["search in #lobby for rust: 1 lines", "Rust is great"],
        ),
        ("/search 天气", &["for 天气: 1 lines", "今天天气很好"]),
        ("/search %", &["for %: 1 lines", "100% sure"]),
        (
            "/search DROP TABLE",
            &["for DROP TABLE: 1 lines", "DROP TABLE lines"],
        ),
        ("/search \"x\" OR NEAR(a b) *", &["0 lines, newest first"]),
        ("/search", &["! usage: /search WORDS"]),
        (
            "/history -1",
            &["! usage: /history [N] or /history since NUMBER"],
        ),
        (
            "/history since 2",
            &["history of #lobby: 2 lines", "100% sure"],
        ),
        ("/history 999999", &["history of #lobby: 4 lines"]),
    ];
    for (question, wants) in questions {
        // `/who` after each question: its answer marks where the question's answer ended.
        a.send(format!("{question}\n/who\n")).await;
        let mut answer = Vec::new();
        loop {
            let line = a.line().await;
            if line == "*** online (1): guest-1" {
                break;
            }
            answer.push(line);
        }
        let text = answer.join("\n");
        for want in wants {
            assert!(text.contains(want), "{question:?} gave {text:?}");
        }
    }
    // A search longer than 200 characters is refused, and the session goes on.
    a.send(format!("/search {}\nstill here\n", "字".repeat(300)))
        .await;
    a.expect("! search too long (at most 200 characters)").await;
    a.expect("<guest-1> still here").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_lines_of_history_arrive_whole_paced_by_the_asker() {
    const LINES: usize = 5_000;
    let dir = tempfile::tempdir().unwrap();
    let server = Kept::start(dir.path(), 0).await;
    let mut a = Client::connect(server.addr).await;
    a.line().await;
    let burst: String = (1..=LINES)
        .map(|n| format!("line {n} {}\n", "x".repeat(150)))
        .collect();
    a.send(burst).await;
    for n in 1..=LINES {
        assert!(a.line().await.starts_with(&format!("<guest-1> line {n} ")));
    }
    a.send("/history 5000\n").await;
    a.expect(&format!(
        "*** history of #lobby: {LINES} lines; the next line is #{}",
        LINES + 1
    ))
    .await;
    for n in 1..=LINES {
        let line = a.line().await;
        assert!(
            line.contains(&format!(" #{n}] <guest-1> line {n} ")),
            "{line:?}"
        );
    }
    a.expect("*** end of history of #lobby").await;
    server.stop().await;
}

/// The real binary, SIGKILLed while several clients talk without pause: every line any client
/// received is in the store after a restart on the same directory, once, numbered with no gaps.
#[test]
fn sigkill_mid_burst_loses_no_line_anyone_received() {
    use std::io::{BufRead, Write};

    const SENDERS: usize = 4;
    /// Lines each sender writes at most, 50 every millisecond (a fifth of a second or more).
    const MOST: usize = 10_000;
    /// Deliveries a watching client sees before the kill: early in the burst.
    const KILL_AFTER: usize = 1_000;
    let dir = tempfile::tempdir().unwrap();
    let start = || {
        let (child, addr, _log) = common::serve_binary(&[
            "--flood-rate".as_ref(),
            "0".as_ref(),
            "--data-dir".as_ref(),
            dir.path().as_os_str(),
        ]);
        (child, addr)
    };
    let joined = |addr| {
        let mut client = common::std_connect(addr);
        common::std_line(&mut client); // greeting
        common::std_line(&mut client); // history rule
        client
    };
    let (mut child, addr) = start();
    // The watcher joins first, so the burst cannot be over before it starts counting.
    let mut watcher = joined(addr);
    let clients: Vec<_> = (0..SENDERS)
        .map(|i| {
            let mut client = joined(addr);
            let mut writer = client.get_ref().try_clone().unwrap();
            let sending = std::thread::spawn(move || {
                for chunk in 0..MOST / 50 {
                    let lines: String = (0..50)
                        .map(|n| format!("s{i} n{}\n", chunk * 50 + n))
                        .collect();
                    if writer.write_all(lines.as_bytes()).is_err() {
                        return; // the server is gone
                    }
                    // Pacing, so the burst lasts long enough to be cut; not synchronisation.
                    std::thread::sleep(Duration::from_millis(1));
                }
            });
            let receiving = std::thread::spawn(move || {
                // Everything this client received until the connection died.
                let mut got = Vec::new();
                let mut line = String::new();
                while let Ok(n) = client.read_line(&mut line) {
                    if n == 0 || !line.ends_with('\n') {
                        break; // EOF, or a line cut by the kill: not received whole
                    }
                    got.push(line.trim_end().to_owned());
                    line.clear();
                }
                got
            });
            (sending, receiving)
        })
        .collect();
    let mut seen = 0;
    while seen < KILL_AFTER {
        if common::std_line(&mut watcher).starts_with("<guest-") {
            seen += 1;
        }
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let mut received = Vec::new();
    for (sending, receiving) in clients {
        sending.join().unwrap();
        received.extend(
            receiving
                .join()
                .unwrap()
                .into_iter()
                .filter(|l| l.starts_with('<')),
        );
    }

    // Restart on the same directory and read everything back, 5,000 lines at a time.
    let (mut child, addr) = start();
    let mut client = common::std_connect(addr);
    common::std_line(&mut client);
    let rule = common::std_line(&mut client);
    let replayed = match ServerLine::parse(&rule) {
        Some(ServerLine::Event(Event::History { count, .. })) => count,
        other => panic!("{other:?}"),
    };
    // The join's own replay (its lines and closing rule) is skipped.
    for _ in 0..=replayed {
        common::std_line(&mut client);
    }
    let mut stored: BTreeMap<u64, String> = BTreeMap::new();
    loop {
        let after = stored.keys().next_back().copied().unwrap_or(0);
        let ask = format!("/history since {after}\n");
        client.get_mut().write_all(ask.as_bytes()).unwrap();
        let count = match ServerLine::parse(&common::std_line(&mut client)) {
            Some(ServerLine::Event(Event::History { count, .. })) => count,
            other => panic!("{other:?}"),
        };
        if count == 0 {
            break;
        }
        for _ in 0..count {
            let line = common::std_line(&mut client);
            let Some(ServerLine::Replayed {
                seq,
                kind: SaidKind::Message,
                nick,
                text,
                ..
            }) = ServerLine::parse(&line)
            else {
                panic!("{line:?}");
            };
            let previous = stored.insert(seq, format!("<{nick}> {text}"));
            assert!(previous.is_none(), "seq {seq} twice");
        }
        assert!(common::std_line(&mut client).starts_with("*** end of history"));
    }
    let kept: std::collections::HashSet<&String> = stored.values().collect();
    let lost: Vec<&String> = received.iter().filter(|l| !kept.contains(l)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} received lines are not in the store, e.g. {:?}",
        lost.len(),
        received.len(),
        lost.first()
    );
    let numbers: Vec<u64> = stored.keys().copied().collect();
    assert_eq!(
        numbers,
        (1..=numbers.len() as u64).collect::<Vec<_>>(),
        "no gaps"
    );
    assert!(
        stored.len() < SENDERS * MOST,
        "the kill came after everything was said: nothing was tested"
    );
    eprintln!(
        "SIGKILL mid-burst: {} lines stored, {} deliveries received, none lost",
        stored.len(),
        received.len()
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

/// The real binary with a store that fills up (a debug-build fault injection caps the database
/// as a full disk would): the operator is told once, the room goes on from memory, and history
/// keeps what was stored before.
#[test]
fn a_full_store_is_reported_and_the_room_goes_on() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_tcpchat"))
        .args(["--serve", "--listen", "127.0.0.1:0", "--flood-rate", "0"])
        .arg("--data-dir")
        .arg(dir.path())
        .env("TCPCHAT_FAULT_STORE_MAX_PAGES", "40")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tcpchat --serve");
    let mut child = common::Reaped(child);
    let (log_tx, log) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = log_tx.send(line);
        }
    });
    let first = log.recv_timeout(DEADLINE).expect("the first log line");
    let addr: SocketAddr = first
        .split_once("listening on ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("{first:?}"));
    let mut a = common::std_connect(addr);
    common::std_line(&mut a);
    common::std_line(&mut a);
    // 40 pages of 4 KiB cannot hold 2,000 lines of 200 bytes: the store fills part way.
    let burst: String = (0..2_000)
        .map(|n| format!("n{n} {}\n", "x".repeat(200)))
        .collect();
    a.get_mut().write_all(burst.as_bytes()).unwrap();
    for n in 0..2_000 {
        let line = common::std_line(&mut a);
        assert!(line.starts_with(&format!("<guest-1> n{n} ")), "{line:?}");
    }
    let deadline = std::time::Instant::now() + DEADLINE;
    let mut reports = Vec::new();
    while let Ok(line) =
        log.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
    {
        if line.contains("cannot write to the store") {
            reports.push(line);
            break;
        }
    }
    assert_eq!(reports.len(), 1, "the operator is told");
    // The room goes on, and history still answers with what it kept.
    a.get_mut()
        .write_all(b"still here\n/history 5000\n")
        .unwrap();
    assert_eq!(common::std_line(&mut a), "<guest-1> still here");
    let rule = common::std_line(&mut a);
    let Some(ServerLine::Event(Event::History { count, .. })) = ServerLine::parse(&rule) else {
        panic!("{rule:?}");
    };
    assert!(
        count > 0 && count < 2_000,
        "{count} lines kept of 2,001: {rule:?}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    // Logged once per episode, not once per batch.
    let more = log
        .try_iter()
        .filter(|l| l.contains("cannot write to the store"))
        .count();
    assert_eq!(more, 0);
}

/// A store that cannot be opened stops `--serve` at once with one line saying why and what to
/// do, exit 1, before it listens.
#[test]
fn a_store_that_cannot_be_opened_is_one_line_and_exit_1() {
    use std::process::{Command, Stdio};

    let run = |data_dir: &Path| {
        let output = Command::new(env!("CARGO_BIN_EXE_tcpchat"))
            .args(["--serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .expect("run tcpchat --serve");
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        (output.status.code(), stderr)
    };
    let dir = tempfile::tempdir().unwrap();

    let damaged = dir.path().join("damaged");
    std::fs::create_dir(&damaged).unwrap();
    std::fs::write(damaged.join("tcpchat.sqlite3"), vec![0x5a; 8192]).unwrap();
    let (code, stderr) = run(&damaged);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("is not a usable tcpchat store") && stderr.contains("move it aside"));

    let a_file = dir.path().join("a-file");
    std::fs::write(&a_file, b"not a directory").unwrap();
    let (code, stderr) = run(&a_file.join("store"));
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("cannot use the data directory"), "{stderr}");
    assert!(!stderr.contains("listening"), "it never listened: {stderr}");
}

/// Two servers on one data directory would interleave one history: the second is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_server_per_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let first = Kept::start(dir.path(), 0).await;
    let settings = HistorySettings {
        data_dir: Some(dir.path().to_owned()),
        ..HistorySettings::default()
    };
    let refused = settings.open().expect_err("the directory is in use");
    assert!(
        refused.to_string().contains("another tcpchat server"),
        "{refused}"
    );
    first.stop().await;
    assert!(
        settings.open().is_ok(),
        "free again once the first server stopped"
    );
}
