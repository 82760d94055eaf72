//! Nicks unique across a cluster: two real in-process nodes (`server::run` with a
//! `Cluster::connect`) on one real `redis-server` each test starts on a free loopback port,
//! and raw TCP clients speaking the line protocol to each. Guests never collide, a nick held
//! on one node is refused on the other (case folded) until its holder goes, a lost claim
//! renames its member, and a node without its engine refuses what it cannot claim. Without
//! redis-server these fail, saying so, unless `TCPCHAT_TEST_SKIP=redis`.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::redis::Redis;
use common::{Client, join};
use tcpchat::cluster::{Cluster, NodeName, Settings};
use tcpchat::server::{self, Config};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The claim TTL of these nodes: short, so their heartbeat (every third of it) runs often and
/// a lost claim is found within a fraction of a second.
const CLAIM_TTL: Duration = Duration::from_millis(900);

/// How long something the nodes do on their own (a release after a client goes, a rename
/// after the next beat) may take: a beat is 300 ms apart, a release one round trip on
/// loopback; the rest is margin for a debug build on a busy 2-core machine.
const WITHIN: Duration = Duration::from_secs(5);

/// A node serving on an OS-chosen loopback port; stopped when dropped.
struct Node {
    addr: SocketAddr,
    stop: CancellationToken,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn settings() -> Settings {
    Settings {
        claim_ttl: CLAIM_TTL,
        // A killed engine is noticed at once (connection refused); these bound the rest.
        connect_timeout: Duration::from_millis(500),
        response_timeout: Duration::from_millis(500),
        ..Settings::default()
    }
}

async fn node(redis: &Redis, name: &str) -> Node {
    let cluster = Cluster::connect(&redis.url(), NodeName::parse(name).unwrap(), settings())
        .await
        .unwrap_or_else(|error| panic!("node {name} cannot connect: {error:#}"));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    let stop = CancellationToken::new();
    let config = Config {
        cluster: Some(cluster),
        ..Config::default()
    };
    tokio::spawn(server::run(listener, config, stop.clone()));
    Node { addr, stop }
}

/// Sends `/nick NICK` and returns the one line that answers it (the rename or a refusal).
async fn ask_nick(client: &mut Client, nick: &str) -> String {
    client.send(format!("/nick {nick}\n")).await;
    // Its answer: a refusal, or its rename to exactly that spelling (members coming, going
    // and renaming on any node are told in the lobby meanwhile, from the cluster's log).
    let renamed = format!(" is now known as {nick}");
    loop {
        let line = client.line().await;
        if line.starts_with("! ") || (line.starts_with("*** ") && line.ends_with(&renamed)) {
            return line;
        }
    }
}

/// Reads lines until one is `want` (each within the harness's deadline).
async fn until(client: &mut Client, want: &str) {
    while client.line().await != want {}
}

/// Polls `attempt` every 50 ms until it gives `Some`, for at most [`WITHIN`].
async fn eventually<T, F: Future<Output = Option<T>>>(
    what: &str,
    mut attempt: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + WITHIN;
    loop {
        if let Some(done) = attempt().await {
            return done;
        }
        assert!(Instant::now() < deadline, "{what}: not within {WITHIN:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_on_two_nodes_never_share_a_nick() {
    let Some(redis) = Redis::start() else { return };
    let a = node(&redis, "a").await;
    let b = node(&redis, "b").await;
    let mut nicks = HashSet::new();
    let mut clients = Vec::new();
    let mut first_on_a = None;
    // Alternating, and then both at once: each node alone would start at guest-1.
    for _ in 0..3 {
        for addr in [a.addr, b.addr] {
            let (client, nick) = join(addr).await;
            first_on_a.get_or_insert_with(|| nick.clone());
            assert!(nicks.insert(nick.clone()), "{nick} given twice");
            clients.push(client);
        }
    }
    for _ in 0..5 {
        let ((ca, na), (cb, nb)) = tokio::join!(join(a.addr), join(b.addr));
        assert!(nicks.insert(na.clone()), "{na} given twice");
        assert!(nicks.insert(nb.clone()), "{nb} given twice");
        clients.extend([ca, cb]);
    }
    assert!(
        nicks.iter().all(|nick| nick.starts_with("guest-")),
        "{nicks:?}"
    );
    // Each is claimed in the engine, so a /nick to one on the other node is refused too.
    let (mut on_b, _) = join(b.addr).await;
    let first_on_a = first_on_a.unwrap();
    assert_eq!(
        ask_nick(&mut on_b, &first_on_a).await,
        format!("! nick {first_on_a} is already taken")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nick_held_on_one_node_is_refused_on_the_other_until_its_holder_goes() {
    let Some(redis) = Redis::start() else { return };
    let a = node(&redis, "a").await;
    let b = node(&redis, "b").await;
    let (mut alice, guest_a) = join(a.addr).await;
    let (mut other, guest_b) = join(b.addr).await;
    assert_eq!(
        ask_nick(&mut alice, "alice").await,
        format!("*** {guest_a} is now known as alice")
    );
    // Node b tells its members of the rename too (they share the lobby).
    while !other.line().await.ends_with("is now known as alice") {}
    // The same kind of line as a clash on one node, for every spelling that folds to it.
    for asked in ["alice", "ALICE", "Ａｌｉｃｅ"] {
        assert_eq!(
            ask_nick(&mut other, asked).await,
            format!("! nick {asked} is already taken")
        );
    }
    let holder = redis.command(&["GET", "tcpchat:nick:alice"]);
    assert!(holder.starts_with('$'), "alice is claimed: {holder}");
    // The old guest nick was released after the rename: b may take it at once.
    assert_eq!(
        ask_nick(&mut other, &guest_a).await,
        format!("*** {guest_b} is now known as {guest_a}")
    );
    // alice goes (FIN): her node releases the nick, and b can take it.
    drop(alice);
    let deadline = Instant::now() + WITHIN;
    let renamed = loop {
        let answer = ask_nick(&mut other, "Alice").await;
        if answer != "! nick Alice is already taken" {
            break answer;
        }
        assert!(
            Instant::now() < deadline,
            "alice not released within {WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(renamed, format!("*** {guest_a} is now known as Alice"));
    // And now a cannot.
    let (mut late, _) = join(a.addr).await;
    assert_eq!(
        ask_nick(&mut late, "alice").await,
        "! nick alice is already taken"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_claim_renames_its_member_and_tells_it_why() {
    let Some(redis) = Redis::start() else { return };
    let a = node(&redis, "a").await;
    let (mut dave, guest) = join(a.addr).await;
    let (mut watcher, _) = join(a.addr).await;
    assert_eq!(
        ask_nick(&mut dave, "dave").await,
        format!("*** {guest} is now known as dave")
    );
    // Told from the cluster's log, after any enter it holds (dave's own, say).
    until(&mut watcher, &format!("*** {guest} is now known as dave")).await;
    // Another node's value where a's claim was: what a finds after an outage past the TTL,
    // when someone else claimed the nick meanwhile.
    let other = r#"{"node":"z","epoch":1}"#;
    assert_eq!(redis.command(&["SET", "tcpchat:nick:dave", other]), "+OK");
    // The next beat (within a third of the TTL) finds it; each read waits up to 5 s.
    // (Past the watcher's enter, which the cluster's log may tell dave only now.)
    let renamed = loop {
        let line = dave.line().await;
        if !line.contains(" joined; ") {
            break line;
        }
    };
    let now = renamed
        .strip_prefix("*** dave is now known as ")
        .unwrap_or_else(|| panic!("not a rename: {renamed:?}"))
        .to_owned();
    assert!(now.starts_with("guest-"), "{now}");
    assert_eq!(
        dave.line().await,
        format!(
            "! your nick dave is no longer yours: its claim in the cluster ran out or another \
             server holds it; you are {now} now"
        )
    );
    until(&mut watcher, &format!("*** dave is now known as {now}")).await;
    // The engine still names the other holder: the node did not take the nick back.
    assert_eq!(redis.command(&["GET", "tcpchat:nick:dave"]), "$22");
    assert_eq!(
        ask_nick(&mut dave, "dave").await,
        "! nick dave is already taken"
    );
    // The member speaks under its new nick.
    dave.send("still here\n").await;
    dave.expect(&format!("<{now}> still here")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_its_engine_a_node_keeps_nicks_and_refuses_what_it_cannot_claim() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let a = node(&redis, "a").await;
    let (mut member, guest) = join(a.addr).await;
    redis.kill();
    assert_eq!(
        ask_nick(&mut member, "erin").await,
        "! the cluster is unavailable (this server cannot reach it): your nick is unchanged; \
         try again later"
    );
    // The member is still there, under its nick (a message to it is a message to oneself).
    member.send(format!("/msg {guest} hello\n")).await;
    assert_eq!(
        member.line().await,
        "! that is you; a private message needs someone else"
    );
    // A newcomer cannot be given a nick unique across the cluster: told, and closed.
    let mut newcomer = Client::connect(a.addr).await;
    assert_eq!(
        newcomer.line().await,
        "! the cluster is unavailable (this server cannot reach it), so no nick can be given; \
         closing, try again later"
    );
    assert!(newcomer.read_to_eof().await.is_empty());
    // The engine back: newcomers are given nicks again.
    redis.restart();
    let (_, nick) = eventually(
        "a newcomer is given a nick once the engine is back",
        || async {
            let mut client = Client::connect(a.addr).await;
            let greeting = client.line().await;
            greeting
                .split_once("you are ")
                .and_then(|(_, rest)| rest.split_once(';'))
                .map(|(nick, _)| (client, nick.to_owned()))
        },
    )
    .await;
    assert!(nick.starts_with("guest-"), "{nick}");
}
