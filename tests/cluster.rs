//! The cluster's engine client (`tcpchat::cluster`) against a real `redis-server` each test
//! starts on a free loopback port: one order per room across nodes, gap fill, nick claims and
//! their TTL, node presence, and the engine killed and started again from its append-only
//! file. Without redis-server these fail, saying so, unless `TCPCHAT_TEST_SKIP=redis`.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::redis::Redis;
use tcpchat::cluster::{
    Beat, Cluster, Followed, Follower, LineId, LogLine, NodeName, Settings, Tailed,
};
use tcpchat::names::{Nick, RoomName};
use tcpchat::protocol::SaidKind;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The TTL the claim tests use: short, so a test waits it out in a second.
const SHORT_TTL: Duration = Duration::from_secs(1);

/// How much later than its TTL a claim may be seen free: the poll interval, the engine's
/// expiry (exact when the key is touched) and a debug build on a busy 2-core machine.
const TTL_MARGIN: Duration = Duration::from_secs(2);

/// Longest any one expected thing may take to happen.
const DEADLINE: Duration = Duration::from_secs(10);

fn settings(claim_ttl: Duration) -> Settings {
    Settings {
        claim_ttl,
        // Short, so a follower notices a dead engine soon.
        follow_block: Duration::from_millis(500),
        ..Settings::default()
    }
}

async fn node(redis: &Redis, name: &str, claim_ttl: Duration) -> Cluster {
    node_with(redis, name, settings(claim_ttl)).await
}

async fn node_with(redis: &Redis, name: &str, settings: Settings) -> Cluster {
    Cluster::connect(&redis.url(), NodeName::parse(name).unwrap(), settings)
        .await
        .unwrap_or_else(|error| panic!("node {name} cannot connect: {error:#}"))
}

fn line(node: &str, nick: &str, text: String) -> LogLine {
    LogLine {
        nick: nick.to_owned(),
        kind: SaidKind::Message,
        text,
        at_ms: 0,
        node: node.to_owned(),
    }
}

fn lobby() -> RoomName {
    RoomName::lobby()
}

fn nick(text: &str) -> Nick {
    Nick::parse(text).unwrap()
}

/// The next `n` lines the follower hands on, each within [`DEADLINE`].
async fn take(follower: &mut Follower, n: usize) -> Vec<Followed> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        let next = tokio::time::timeout(DEADLINE, follower.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} lines arrived", got.len()))
            .expect("the follower stopped");
        // These tests append lines only; a room's events are tested with the roster.
        if let Tailed::Line(line) = next {
            got.push(line);
        }
    }
    got
}

/// Polls `attempt` every 50 ms until it gives `Some`, for at most `within`.
async fn eventually<T, F: Future<Output = Option<T>>>(
    within: Duration,
    what: &str,
    mut attempt: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(done) = attempt().await {
            return done;
        }
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn two_nodes_appending_at_once_get_one_gap_free_order() {
    let Some(redis) = Redis::start() else { return };
    let a = node(&redis, "a", SHORT_TTL).await;
    let b = node(&redis, "b", SHORT_TTL).await;
    let mut seen_a = a.follower(64);
    let mut seen_b = b.follower(64);
    seen_a.follow(&lobby(), LineId::START);
    seen_b.follow(&lobby(), LineId::START);
    const EACH: usize = 300;
    let burst = |cluster: Cluster, name: &'static str| {
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..EACH {
                let said = line(name, name, format!("{name} {i}"));
                ids.push(cluster.append(&lobby(), &said).await.unwrap());
            }
            ids
        })
    };
    let (ids_a, ids_b) = tokio::join!(burst(a.clone(), "a"), burst(b.clone(), "b"));
    let (ids_a, ids_b) = (ids_a.unwrap(), ids_b.unwrap());
    let mut all: Vec<u64> = ids_a.iter().chain(&ids_b).map(|id| id.0).collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (1..=2 * EACH as u64).collect::<Vec<_>>(),
        "gap-free, none shared"
    );
    assert!(
        ids_a.windows(2).all(|w| w[0] < w[1]) && ids_b.windows(2).all(|w| w[0] < w[1]),
        "each node's lines keep the order it appended them in"
    );
    let got_a = take(&mut seen_a, 2 * EACH).await;
    let got_b = take(&mut seen_b, 2 * EACH).await;
    let ids: Vec<u64> = got_a.iter().map(|f| f.id.0).collect();
    assert_eq!(ids, (1..=2 * EACH as u64).collect::<Vec<_>>(), "in order");
    assert_eq!(got_a, got_b, "both nodes see the same sequence");
    // Both nodes' lines are in it, interleaved as the engine took them.
    let from_a = got_a.iter().filter(|f| f.line.node == "a").count();
    assert_eq!(from_a, EACH);
    for followed in &got_a {
        assert_eq!(followed.room, lobby().key());
        let (who, i) = followed.line.text.split_once(' ').unwrap();
        let appended_as = if who == "a" { &ids_a } else { &ids_b };
        assert_eq!(appended_as[i.parse::<usize>().unwrap()], followed.id);
    }
    // The log reads back as the followers saw it.
    let log = a.read_after(&lobby(), LineId::START, 10_000).await.unwrap();
    let followed: Vec<(LineId, LogLine)> = got_a.into_iter().map(|f| (f.id, f.line)).collect();
    assert_eq!(log, followed);
    assert_eq!(b.last_id(&lobby()).await.unwrap(), LineId(2 * EACH as u64));
}

#[tokio::test]
async fn a_block_of_lines_gets_consecutive_numbers_whoever_appends_at_once() {
    let Some(redis) = Redis::start() else { return };
    let a = node(&redis, "a", SHORT_TTL).await;
    let b = node(&redis, "b", SHORT_TTL).await;
    const BLOCKS: usize = 50;
    const BLOCK: usize = 5;
    let blocks = |cluster: Cluster, name: &'static str| {
        tokio::spawn(async move {
            let mut all = Vec::new();
            for i in 0..BLOCKS {
                let lines: Vec<LogLine> = (0..BLOCK)
                    .map(|j| line(name, name, format!("{i}.{j}")))
                    .collect();
                all.push(cluster.append_all(&lobby(), &lines).await.unwrap());
            }
            all
        })
    };
    let (from_a, from_b) = tokio::join!(blocks(a.clone(), "a"), blocks(b.clone(), "b"));
    let (from_a, from_b) = (from_a.unwrap(), from_b.unwrap());
    let mut all: Vec<u64> = Vec::new();
    for block in from_a.iter().chain(&from_b) {
        assert_eq!(block.len(), BLOCK);
        assert!(block.windows(2).all(|w| w[1].0 == w[0].0 + 1), "{block:?}");
        all.extend(block.iter().map(|id| id.0));
    }
    all.sort_unstable();
    assert_eq!(all, (1..=(2 * BLOCKS * BLOCK) as u64).collect::<Vec<_>>());
    // In the log, each block is whole and in its order.
    let log = a.read_after(&lobby(), LineId::START, 10_000).await.unwrap();
    for chunk in log.chunks(BLOCK) {
        let node = &chunk[0].1.node;
        let (block, _) = chunk[0].1.text.split_once('.').unwrap();
        for (j, (_, l)) in chunk.iter().enumerate() {
            assert_eq!(
                (&l.node, l.text.as_str()),
                (node, format!("{block}.{j}").as_str())
            );
        }
    }
    assert!(a.append_all(&lobby(), &[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn retention_drops_old_lines_and_never_a_number() {
    let Some(redis) = Redis::start() else { return };
    let a = node(&redis, "a", SHORT_TTL).await;
    let room = RoomName::parse("#old").unwrap();
    for i in 1..=10 {
        a.append(&room, &line("a", "ann", format!("{i}")))
            .await
            .unwrap();
    }
    assert_eq!(a.forget_before(&room, LineId(7)).await.unwrap(), 6);
    let kept = a.read_after(&room, LineId::START, 100).await.unwrap();
    let ids: Vec<u64> = kept.iter().map(|(id, _)| id.0).collect();
    assert_eq!(ids, [7, 8, 9, 10]);
    // Everything gone: the next line still takes the next number.
    assert_eq!(a.forget_before(&room, LineId(11)).await.unwrap(), 4);
    assert!(
        a.read_after(&room, LineId::START, 100)
            .await
            .unwrap()
            .is_empty()
    );
    let next = a
        .append(&room, &line("a", "ann", "11".into()))
        .await
        .unwrap();
    assert_eq!(next, LineId(11));
    // Even with its counter wound back (an engine restored from an older file than the
    // stream's, say), numbering goes on after the stream's last number: none is reused.
    let counter = "tcpchat:seq:{#old}";
    assert_eq!(redis.command(&["SET", counter, "3"]), "+OK");
    let next = a
        .append(&room, &line("a", "ann", "12".into()))
        .await
        .unwrap();
    assert_eq!(next, LineId(12));
    assert_eq!(redis.command(&["DEL", counter]), ":1");
    let next = a
        .append_all(&room, &[line("a", "ann", "13".into())])
        .await
        .unwrap();
    assert_eq!(next, [LineId(13)]);
}

#[tokio::test]
async fn gap_fill_returns_exactly_the_missed_lines_once_in_order() {
    let Some(redis) = Redis::start() else { return };
    let a = node(&redis, "a", SHORT_TTL).await;
    let room = RoomName::parse("#Gaps").unwrap();
    let mut seen = Vec::new();
    {
        // A member on node b sees five lines, then b goes away.
        let b = node(&redis, "b", SHORT_TTL).await;
        let mut follower = b.follower(16);
        follower.follow(&room, LineId::START);
        for i in 1..=5 {
            a.append(&room, &line("a", "ann", format!("line {i}")))
                .await
                .unwrap();
        }
        seen.extend(take(&mut follower, 5).await);
    }
    let last_seen = seen.last().unwrap().id;
    assert_eq!(last_seen, LineId(5));
    for i in 6..=12 {
        a.append(&room, &line("a", "ann", format!("line {i}")))
            .await
            .unwrap();
    }
    // It reconnects to node c, which fills the gap in pages of three.
    let c = node(&redis, "c", SHORT_TTL).await;
    let mut after = last_seen;
    let mut filled = Vec::new();
    loop {
        let page = c.read_after(&room, after, 3).await.unwrap();
        let Some((last, _)) = page.last() else { break };
        assert!(page.len() <= 3);
        after = *last;
        filled.extend(page);
    }
    let texts: Vec<(u64, &str)> = filled
        .iter()
        .map(|(id, l)| (id.0, l.text.as_str()))
        .collect();
    let want: Vec<(u64, String)> = (6..=12).map(|i| (i, format!("line {i}"))).collect();
    let want: Vec<(u64, &str)> = want.iter().map(|(i, t)| (*i, t.as_str())).collect();
    assert_eq!(texts, want, "exactly the missed lines, once, in order");
    // Then live lines follow from there: the next one, not a line it already has.
    let mut follower = c.follower(16);
    follower.follow(&room, after);
    a.append(&room, &line("a", "ann", "line 13".into()))
        .await
        .unwrap();
    let next = take(&mut follower, 1).await;
    assert_eq!(
        (next[0].id, next[0].line.text.as_str()),
        (LineId(13), "line 13")
    );
    // Another room's numbering is its own.
    let other = RoomName::parse("#other").unwrap();
    let first = a
        .append(&other, &line("a", "ann", "hello".into()))
        .await
        .unwrap();
    assert_eq!(first, LineId(1));
}

#[tokio::test]
async fn a_follower_takes_rooms_added_and_removed_while_it_runs() {
    let Some(redis) = Redis::start() else { return };
    // A long block, so a follower that waited it out would miss the bound below.
    let long_block = Settings {
        follow_block: Duration::from_secs(5),
        ..settings(SHORT_TTL)
    };
    let a = node_with(&redis, "a", long_block).await;
    let mut follower = a.follower(16);
    let (one, two) = (
        RoomName::parse("#one").unwrap(),
        RoomName::parse("#two").unwrap(),
    );
    follower.follow(&one, LineId::START);
    a.append(&one, &line("a", "ann", "1a".into()))
        .await
        .unwrap();
    assert_eq!(take(&mut follower, 1).await[0].line.text, "1a");
    // The follower is now blocked reading #one; adding #two must not wait out the block.
    follower.follow(&two, a.last_id(&two).await.unwrap());
    let started = Instant::now();
    a.append(&two, &line("a", "ann", "2a".into()))
        .await
        .unwrap();
    let got = take(&mut follower, 1).await;
    assert_eq!(
        (got[0].room.as_str(), got[0].line.text.as_str()),
        ("#two", "2a")
    );
    // Well under the 5 s block, with room for a loaded machine.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    follower.unfollow(&one);
    a.append(&one, &line("a", "ann", "1b".into()))
        .await
        .unwrap();
    a.append(&two, &line("a", "ann", "2b".into()))
        .await
        .unwrap();
    let got = take(&mut follower, 1).await;
    assert_eq!(got[0].line.text, "2b", "#one is not followed any more");
}

#[tokio::test]
async fn a_nick_is_held_by_one_node_at_a_time() {
    let Some(redis) = Redis::start() else { return };
    let a = node(&redis, "a", DEADLINE).await;
    let b = node(&redis, "b", DEADLINE).await;
    let alice = a.claim(&nick("alice")).await.unwrap().expect("free");
    let taken = b
        .claim(&nick("ALICE"))
        .await
        .unwrap()
        .expect_err("a holds it");
    assert_eq!(taken.holder.node.as_str(), "a");
    assert_eq!(taken.holder.epoch, a.me().epoch);
    assert!(
        a.claim(&nick("alice")).await.unwrap().is_ok(),
        "a retried claim is not refused"
    );
    a.release(alice).await.unwrap();
    let by_b = b.claim(&nick("Alice")).await.unwrap().expect("released");
    assert_eq!(by_b.nick.as_str(), "Alice");
    let taken = a
        .claim(&nick("alice"))
        .await
        .unwrap()
        .expect_err("b holds it");
    assert_eq!(taken.holder.node.as_str(), "b");
    // Both at once: exactly one wins.
    for round in 0..20 {
        let name = nick(&format!("bob{round}"));
        let (x, y) = tokio::join!(a.claim(&name), b.claim(&name));
        let won = [x.unwrap().is_ok(), y.unwrap().is_ok()];
        assert_eq!(
            won.iter().filter(|w| **w).count(),
            1,
            "round {round}: {won:?}"
        );
    }
    // A node that leaves gives its nicks and its name up at once, not a TTL later.
    a.claim(&nick("frank")).await.unwrap().expect("free");
    a.leave().await.unwrap();
    assert!(b.claim(&nick("frank")).await.unwrap().is_ok(), "given up");
    let again = node(&redis, "a", DEADLINE).await;
    assert!(again.me().epoch > a.me().epoch);
}

#[tokio::test]
async fn a_node_that_stops_beating_loses_its_nicks_after_the_ttl_and_cannot_take_them_back() {
    let Some(redis) = Redis::start() else { return };
    let a = node(&redis, "a", SHORT_TTL).await;
    let b = node(&redis, "b", SHORT_TTL).await;
    // b beats; a never does from here on (as if it were paused or cut off).
    let stop = CancellationToken::new();
    let (events, _beats) = mpsc::channel(16);
    let _beating = b.heartbeat(stop.clone(), events);
    let before = Instant::now();
    a.claim(&nick("carol")).await.unwrap().expect("free");
    assert!(
        b.claim(&nick("carol")).await.unwrap().is_err(),
        "held at first"
    );
    let claimed = eventually(SHORT_TTL + TTL_MARGIN, "a's claim runs out", || async {
        b.claim(&nick("carol")).await.unwrap().ok()
    })
    .await;
    let freed_after = before.elapsed();
    assert!(
        freed_after >= SHORT_TTL,
        "freed after {freed_after:?}, before the TTL"
    );
    // a comes back: its refresh is refused, the nick is reported lost, b keeps it.
    assert_eq!(a.beat().await.unwrap(), Beat::Lost(vec![nick("carol")]));
    let taken = a.claim(&nick("carol")).await.unwrap().expect_err("b's now");
    assert_eq!(taken.holder.node.as_str(), "b");
    assert_eq!(
        a.beat().await.unwrap(),
        Beat::Lost(Vec::new()),
        "forgotten once lost"
    );
    // b's heartbeat keeps its claim for longer than the TTL.
    let held_since = Instant::now();
    while held_since.elapsed() < 3 * SHORT_TTL {
        assert!(
            a.claim(&nick("carol")).await.unwrap().is_err(),
            "b's beats keep it"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.release(claimed).await.unwrap();
    stop.cancel();
}

#[tokio::test]
async fn presence_lists_live_nodes_and_refuses_a_second_run_of_one() {
    let Some(redis) = Redis::start() else { return };
    let a = node(&redis, "a", SHORT_TTL).await;
    let b = node(&redis, "b", SHORT_TTL).await;
    let names = |nodes: Vec<tcpchat::cluster::NodeInfo>| {
        nodes
            .into_iter()
            .map(|n| n.node.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(a.live_nodes().await.unwrap()), ["a", "b"]);
    let again = Cluster::connect(
        &redis.url(),
        NodeName::parse("a").unwrap(),
        settings(SHORT_TTL),
    )
    .await
    .expect_err("a is alive");
    assert!(
        format!("{again:#}").contains("already in the cluster"),
        "{again:#}"
    );
    // b beats, a does not: a drops out of the list after the TTL.
    let stop = CancellationToken::new();
    let (events, _beats) = mpsc::channel(16);
    let _beating = b.heartbeat(stop.clone(), events);
    eventually(SHORT_TTL + TTL_MARGIN, "a drops out", || async {
        let live = names(b.live_nodes().await.unwrap());
        (live == ["b"]).then_some(())
    })
    .await;
    // A new run of a takes a greater epoch.
    let a2 = node(&redis, "a", SHORT_TTL).await;
    assert!(a2.me().epoch > a.me().epoch);
    // The old run, back, is fenced: it learns another run holds its name.
    match a.beat().await.unwrap() {
        Beat::Fenced(other) => assert_eq!(other.epoch, a2.me().epoch),
        other => panic!("not fenced: {other:?}"),
    }
    stop.cancel();
}

#[tokio::test]
async fn the_heartbeat_reports_a_nick_taken_away_and_a_fenced_node() {
    let Some(redis) = Redis::start() else { return };
    let a = node(&redis, "a", SHORT_TTL).await;
    let stop = CancellationToken::new();
    let (events, mut beats) = mpsc::channel(16);
    let _beating = a.heartbeat(stop.clone(), events);
    a.claim(&nick("dave")).await.unwrap().expect("free");
    // Another node's value where a's claim was: what a finds after a pause past the TTL.
    let other = r#"{"node":"b","epoch":1}"#;
    assert_eq!(redis.command(&["SET", "tcpchat:nick:dave", other]), "+OK");
    let beat = tokio::time::timeout(DEADLINE, beats.recv()).await.unwrap();
    assert_eq!(beat, Some(Beat::Lost(vec![nick("dave")])));
    let run = r#"{"node":"a","epoch":999,"since_ms":0}"#;
    assert_eq!(redis.command(&["SET", "tcpchat:node:a", run]), "+OK");
    let beat = tokio::time::timeout(DEADLINE, beats.recv()).await.unwrap();
    assert!(
        matches!(beat, Some(Beat::Fenced(ref n)) if n.epoch == 999),
        "{beat:?}"
    );
    let end = tokio::time::timeout(DEADLINE, beats.recv()).await.unwrap();
    assert_eq!(end, None, "a fenced heartbeat stops");
}

#[tokio::test]
async fn the_engine_killed_and_restarted_keeps_the_log_and_its_numbering() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    // a's claim outlives the whole test; b beats every second, so it notices soon.
    let a = node(&redis, "a", Duration::from_secs(120)).await;
    let b = node(&redis, "b", Duration::from_secs(3)).await;
    let mut follower = b.follower(64);
    follower.follow(&lobby(), LineId::START);
    let stop = CancellationToken::new();
    let (events, mut beats) = mpsc::channel(16);
    let _beating = b.heartbeat(stop.clone(), events);
    a.claim(&nick("erin")).await.unwrap().expect("free");
    for i in 1..=50 {
        a.append(&lobby(), &line("a", "erin", format!("before {i}")))
            .await
            .unwrap();
    }
    assert_eq!(take(&mut follower, 50).await.last().unwrap().id, LineId(50));
    // Acknowledged, then SIGKILL: the append-only file has been written (fsync is not
    // needed for a process crash; a power cut could lose the last second).
    redis.kill();
    assert!(
        a.append(&lobby(), &line("a", "erin", "lost".into()))
            .await
            .is_err()
    );
    let beat = tokio::time::timeout(DEADLINE, beats.recv()).await.unwrap();
    assert!(matches!(beat, Some(Beat::EngineDown(_))), "{beat:?}");
    redis.restart();
    let id = eventually(DEADLINE, "appends work again", || async {
        a.append(&lobby(), &line("a", "erin", "after".into()))
            .await
            .ok()
    })
    .await;
    assert_eq!(id, LineId(51), "numbering goes on: no number used twice");
    let log = a.read_after(&lobby(), LineId::START, 1000).await.unwrap();
    let ids: Vec<u64> = log.iter().map(|(id, _)| id.0).collect();
    assert_eq!(ids, (1..=51).collect::<Vec<_>>());
    assert_eq!(log[49].1.text, "before 50");
    // The follower reconnects and goes on from where it was.
    let next = take(&mut follower, 1).await;
    assert_eq!(
        (next[0].id, next[0].line.text.as_str()),
        (LineId(51), "after")
    );
    let beat = tokio::time::timeout(DEADLINE, beats.recv()).await.unwrap();
    assert_eq!(beat, Some(Beat::EngineBack));
    // Claims live on with their TTL.
    assert!(b.claim(&nick("erin")).await.unwrap().is_err());
    stop.cancel();
}

#[tokio::test]
async fn a_line_reaches_another_node_within_milliseconds() {
    let Some(redis) = Redis::start() else { return };
    let a = node(&redis, "a", DEADLINE).await;
    let b = node(&redis, "b", DEADLINE).await;
    let mut follower = b.follower(16);
    follower.follow(&lobby(), LineId::START);
    const SAMPLES: usize = 300;
    let mut took = Vec::with_capacity(SAMPLES);
    for i in 0..SAMPLES {
        let sent = Instant::now();
        a.append(&lobby(), &line("a", "ann", format!("{i}")))
            .await
            .unwrap();
        let got = take(&mut follower, 1).await;
        took.push(sent.elapsed());
        assert_eq!(got[0].line.text, format!("{i}"));
    }
    took.sort_unstable();
    let (median, p99) = (took[SAMPLES / 2], took[SAMPLES * 99 / 100]);
    eprintln!(
        "append on a → delivered on b, {SAMPLES} lines one at a time: median {median:?}, p99 {p99:?}"
    );
    // On loopback it is well under a millisecond or two; this bound only catches a follower
    // that waits out its block instead of being woken by the line.
    assert!(median < Duration::from_millis(100), "median {median:?}");
}

#[tokio::test]
async fn an_engine_that_is_not_there_is_an_error_that_says_where() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}");
    let started = Instant::now();
    let error = Cluster::connect(&url, NodeName::parse("a").unwrap(), Settings::default())
        .await
        .expect_err("nobody listens there");
    assert!(format!("{error:#}").contains(&url), "{error:#}");
    assert!(started.elapsed() <= Settings::default().connect_timeout + Duration::from_secs(1));
    let error = Cluster::connect(
        "http://x",
        NodeName::parse("a").unwrap(),
        Settings::default(),
    )
    .await
    .expect_err("not redis");
    assert!(format!("{error:#}").contains("http://x"), "{error:#}");
}

/// `tcpchat --serve --cluster URL --node NAME ARGS...`, with no store (these tests are about
/// the node in the cluster, not its history).
fn serve_node(redis: &Redis, name: &str) -> common::Reaped {
    let url = redis.url();
    let args: Vec<&std::ffi::OsStr> = ["--retain", "0", "--cluster", &url, "--node", name]
        .into_iter()
        .map(std::ffi::OsStr::new)
        .collect();
    common::serve_binary(&args).0
}

/// Runs the binary to its end (within [`DEADLINE`]), for the runs that must fail to start.
fn run_to_exit(args: &[&str]) -> std::process::Output {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_tcpchat"))
        .args(args)
        .env_remove("RUST_LOG")
        .env("XDG_CONFIG_HOME", "/nonexistent/tcpchat-tests")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn tcpchat");
    let mut child = common::Reaped(child);
    let deadline = Instant::now() + DEADLINE;
    while child.try_wait().expect("poll tcpchat").is_none() {
        assert!(Instant::now() < deadline, "{args:?} did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().expect("stderr"), &mut stderr)
        .expect("read stderr");
    std::process::Output {
        status: child.try_wait().expect("status").expect("exited"),
        stdout: Vec::new(),
        stderr: stderr.into_bytes(),
    }
}

#[tokio::test]
async fn a_served_node_is_in_the_cluster_until_it_stops_and_its_name_is_its_own() {
    let Some(redis) = Redis::start() else { return };
    let watcher = node(&redis, "watcher", DEADLINE).await;
    let mut served = serve_node(&redis, "n1");
    let live =
        |nodes: Vec<tcpchat::cluster::NodeInfo>| nodes.iter().any(|n| n.node.as_str() == "n1");
    assert!(
        live(watcher.live_nodes().await.unwrap()),
        "registered before it listens"
    );
    // A second process under the same name is refused, in one line.
    let url = redis.url();
    let twin = run_to_exit(&[
        "--serve",
        "--listen",
        "127.0.0.1:0",
        "--retain",
        "0",
        "--cluster",
        &url,
        "--node",
        "n1",
    ]);
    let said = String::from_utf8_lossy(&twin.stderr);
    assert_eq!(twin.status.code(), Some(1), "{said}");
    assert!(said.contains("node n1 is already in the cluster"), "{said}");
    // SIGTERM: it leaves the cluster as it stops, not a TTL later.
    let pid = rustix::process::Pid::from_raw(i32::try_from(served.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = served.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status.code(), Some(0));
    assert!(!live(watcher.live_nodes().await.unwrap()), "gone at once");
}

#[test]
fn a_node_whose_engine_is_not_there_exits_1_saying_where() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}");
    let out = run_to_exit(&[
        "--serve",
        "--listen",
        "127.0.0.1:0",
        "--retain",
        "0",
        "--cluster",
        &url,
        "--node",
        "n1",
    ]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(
        said.starts_with("tcpchat: ") && said.contains(&url),
        "{said}"
    );
}
