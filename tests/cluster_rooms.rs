//! Several real `tcpchat --serve --cluster` nodes on one real `redis-server`, with raw TCP
//! clients on each (issue 16): one room, one order, whichever node each member is on; a node
//! started late replays what was said before it; a node killed with SIGKILL mid-burst loses
//! nobody anything (its members rejoin elsewhere and fill the gap by line number, each line
//! once); the engine killed and started again (the nodes refuse lines meanwhile, saying so, and
//! go on after). Without redis-server these fail, saying so, unless `TCPCHAT_TEST_SKIP=redis`.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::redis::Redis;
use common::{Reaped, serve_binary};

/// Longest any one expected line may take to arrive: a debug build on a busy 2-core machine,
/// and the engine's restart (the follower's backoff reaches 2 s).
const DEADLINE: Duration = Duration::from_secs(15);

/// One node: the process, its address, its log.
struct Node {
    process: Reaped,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

fn node(redis: &Redis, name: &str, data: &Path) -> Node {
    node_with(redis, name, data, &[])
}

fn node_with(redis: &Redis, name: &str, data: &Path, more: &[&str]) -> Node {
    let url = redis.url();
    let mut args: Vec<&OsStr> = vec![
        "--cluster".as_ref(),
        url.as_ref(),
        "--node".as_ref(),
        name.as_ref(),
        "--data-dir".as_ref(),
        data.as_os_str(),
    ];
    args.extend(more.iter().map(OsStr::new));
    let (process, addr, log) = serve_binary(&args);
    Node { process, addr, log }
}

/// A raw client of one node.
struct Member {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Member {
    /// Connects and reads the greeting and the lobby's history up to where live lines begin;
    /// returns the member and the number the lobby's next line will have.
    fn join(addr: SocketAddr) -> (Self, u64) {
        let stream = TcpStream::connect_timeout(&addr, DEADLINE).expect("connect");
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let writer = stream.try_clone().unwrap();
        let mut member = Self {
            reader: BufReader::new(stream),
            writer,
        };
        let greeting = member.line();
        assert!(greeting.contains("连接成功"), "{greeting:?}");
        let history = member.line();
        let next = history
            .rsplit_once("the next line is #")
            .and_then(|(_, n)| n.parse().ok())
            .unwrap_or_else(|| panic!("no next number in {history:?}"));
        if !history.contains("none yet") {
            while !member.line().starts_with("*** end of history") {}
        }
        (member, next)
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).expect("a line in time");
        assert!(n > 0, "the connection ended while a line was awaited");
        line.truncate(line.trim_end_matches('\n').len());
        line
    }

    /// The next line that is something said (`[#room ]<nick> text`), skipping events and
    /// the flood limit's notice (which delays lines, dropping none).
    fn said(&mut self) -> String {
        loop {
            let line = self.line();
            if unscoped(&line).starts_with('<') {
                return said_text(&line).to_owned();
            }
            assert!(
                !line.starts_with("! ") || line.starts_with("! flood limit"),
                "refused: {line}"
            );
        }
    }

    fn send(&mut self, text: &str) {
        self.writer.write_all(text.as_bytes()).expect("send");
    }
}

/// A line without the room it is about (`#room ` first, for every room but the lobby).
fn unscoped(line: &str) -> &str {
    match line.strip_prefix('#') {
        Some(rest) => rest.split_once(' ').map_or(line, |(_, rest)| rest),
        None => line,
    }
}

/// What was said in a `<nick> text` or `[time #n] <nick> text` line.
fn said_text(line: &str) -> &str {
    line.split_once("> ").map_or(line, |(_, text)| text)
}

/// Waits until `log` holds `needle`, within [`DEADLINE`].
fn log_says(log: &Mutex<String>, needle: &str) {
    let deadline = Instant::now() + DEADLINE;
    while !log.lock().unwrap().contains(needle) {
        assert!(Instant::now() < deadline, "the log never said {needle:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn members_on_three_nodes_see_one_room_in_one_order() {
    let Some(redis) = Redis::start() else { return };
    let data = tempfile::tempdir().unwrap();
    let nodes: Vec<Node> = ["a", "b", "c"]
        .iter()
        .map(|name| node(&redis, name, data.path()))
        .collect();
    const PER_NODE: usize = 2;
    const LINES: usize = 40;
    let total = nodes.len() * PER_NODE * LINES;
    // Everyone joins before anyone speaks, so everyone's live lines begin at line 1.
    let mut members: Vec<Member> = Vec::new();
    for node in &nodes {
        for _ in 0..PER_NODE {
            let (member, next) = Member::join(node.addr);
            assert_eq!(next, 1, "nothing said yet");
            members.push(member);
        }
    }
    // Every member says its lines at once, from its own thread, while all of them read.
    let heard: Vec<Vec<String>> = std::thread::scope(|scope| {
        let readers: Vec<_> = members
            .iter_mut()
            .enumerate()
            .map(|(index, member)| {
                scope.spawn(move || {
                    let burst: String = (0..LINES).map(|n| format!("m{index} {n}\n")).collect();
                    member.send(&burst);
                    (0..total).map(|_| member.said()).collect::<Vec<_>>()
                })
            })
            .collect();
        readers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let first = &heard[0];
    assert_eq!(
        first.iter().collect::<HashSet<_>>().len(),
        total,
        "every line once"
    );
    for (index, sequence) in heard.iter().enumerate() {
        assert_eq!(sequence, first, "member {index} saw another order");
        // Each member's own lines keep the order it said them in.
        let own: Vec<&String> = sequence
            .iter()
            .filter(|line| line.starts_with(&format!("m{index} ")))
            .collect();
        let said: Vec<String> = (0..LINES).map(|n| format!("m{index} {n}")).collect();
        assert_eq!(own, said.iter().collect::<Vec<_>>());
    }
    // Lines of all three nodes interleave in that one order (not node by node).
    let node_of = |line: &String| {
        line[1..]
            .split(' ')
            .next()
            .unwrap()
            .parse::<usize>()
            .unwrap()
            / PER_NODE
    };
    let switches = first
        .windows(2)
        .filter(|w| node_of(&w[0]) != node_of(&w[1]))
        .count();
    assert!(switches > 0, "lines from every node are in one sequence");
    // One set of nicks: every member has its own, and every node lists the same six.
    let mut lists = Vec::new();
    for member in &mut members {
        member.send("/who\n");
        lists.push(member.until("online ("));
    }
    let nicks: HashSet<&str> = lists[0].split_once("): ").unwrap().1.split(", ").collect();
    assert_eq!(nicks.len(), members.len(), "{}", lists[0]);
    assert!(lists.iter().all(|list| *list == lists[0]), "{lists:#?}");
    drop(nodes);
}

#[test]
fn a_node_started_late_replays_what_other_nodes_heard_by_the_same_numbers() {
    let Some(redis) = Redis::start() else { return };
    let data = tempfile::tempdir().unwrap();
    let a = node(&redis, "a", data.path());
    let (mut speaker, _) = Member::join(a.addr);
    speaker.send("/join #Late\n");
    for n in 1..=5 {
        speaker.send(&format!("line {n}\n"));
    }
    for n in 1..=5 {
        assert_eq!(speaker.said(), format!("line {n}"));
    }
    // Node c was not there when they were said; it catches up from the log.
    let c = node(&redis, "c", data.path());
    let (mut late, _) = Member::join(c.addr);
    late.send("/join #late\n");
    let history = loop {
        let line = late.line();
        if line.contains("history of #late") {
            break line;
        }
    };
    assert!(history.ends_with("the next line is #6"), "{history}");
    for n in 1..=5 {
        let line = late.line();
        assert!(
            line.contains(&format!(" #{n}] ")),
            "numbered as said: {line}"
        );
        assert_eq!(said_text(&line), format!("line {n}"));
    }
    // The same numbers on every node: what a member missed is asked for by number.
    late.send("/history since 3\n");
    let mut answer = Vec::new();
    while answer.len() < 2 {
        let line = late.line();
        if unscoped(&line).starts_with('[') {
            answer.push(said_text(&line).to_owned());
        }
    }
    assert_eq!(answer, ["line 4", "line 5"]);
    // And it is live from there, both ways.
    late.send("from c\n");
    assert_eq!(speaker.said(), "from c");
    // Each node's log says which node it is, on every line.
    for (node, name) in [(&a, "a"), (&c, "c")] {
        let log = node.log.lock().unwrap().clone();
        assert!(log.lines().count() > 3, "{log}");
        let prefix = format!("[node {name}] ");
        assert!(log.lines().all(|line| line.starts_with(&prefix)), "{log}");
    }
    drop((a, c));
}

#[test]
fn a_node_killed_mid_burst_loses_nothing_anyone_received_and_its_members_fill_the_gap() {
    let Some(redis) = Redis::start() else { return };
    let data = tempfile::tempdir().unwrap();
    let mut a = node(&redis, "a", data.path());
    let b = node(&redis, "b", data.path());
    let (mut witness, first) = Member::join(b.addr);
    let (mut speaker, _) = Member::join(a.addr);
    const BURST: usize = 600;
    let burst: String = (0..BURST).map(|n| format!("burst {n}\n")).collect();
    // The speaker stops reading halfway (what it heard by then is what it knows).
    speaker.send(&burst);
    let mut heard_by_speaker = Vec::new();
    while heard_by_speaker.len() < BURST / 2 {
        heard_by_speaker.push(speaker.said());
    }
    a.process.kill().unwrap();
    a.process.wait().unwrap();
    // The witness on b: every line it gets is in the log, in order, once.
    let mut heard_by_witness = Vec::new();
    let end = "after the kill";
    let (mut rejoined, next) = Member::join(b.addr);
    rejoined.send(&format!("{end}\n"));
    loop {
        let line = witness.said();
        if line == end {
            break;
        }
        heard_by_witness.push(line);
    }
    assert!(
        heard_by_witness.len() >= heard_by_speaker.len(),
        "the witness got at least what the speaker did"
    );
    assert_eq!(
        heard_by_witness.iter().collect::<HashSet<_>>().len(),
        heard_by_witness.len(),
        "no line twice"
    );
    let expected: Vec<String> = (0..heard_by_witness.len())
        .map(|n| format!("burst {n}"))
        .collect();
    assert_eq!(heard_by_witness, expected, "in the order said, no gap");
    assert_eq!(
        &heard_by_witness[..heard_by_speaker.len()],
        &heard_by_speaker[..]
    );
    // The speaker's client rejoins on b; it saw lines up to number `first + heard - 1`, and
    // asks for what came after, by number.
    let last_seen = first + heard_by_speaker.len() as u64 - 1;
    assert!(next > last_seen);
    rejoined.send(&format!("/history since {last_seen}\n"));
    let missed = heard_by_witness.len() - heard_by_speaker.len();
    let mut gap = Vec::new();
    while gap.len() < missed.min(100) {
        let line = rejoined.line();
        if unscoped(&line).starts_with('[') {
            gap.push(said_text(&line).to_owned());
        }
    }
    assert_eq!(
        gap,
        heard_by_witness[heard_by_speaker.len()..][..gap.len()],
        "the gap, from where the speaker stopped"
    );
    drop(b);
}

#[test]
fn while_the_engine_is_down_lines_are_refused_and_after_it_returns_they_flow_again() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let a = node(&redis, "a", data.path());
    let b = node(&redis, "b", data.path());
    let (mut on_a, _) = Member::join(a.addr);
    let (mut on_b, _) = Member::join(b.addr);
    on_a.send("before\n");
    assert_eq!(on_b.said(), "before");
    assert_eq!(on_a.said(), "before");
    redis.kill();
    on_a.send("during\n");
    let refused = loop {
        let line = on_a.line();
        if line.starts_with("! ") {
            break line;
        }
        assert!(
            !line.starts_with('<'),
            "delivered without the engine: {line}"
        );
    };
    assert!(refused.contains("cluster is unavailable"), "{refused}");
    log_says(&a.log, "cannot append to the cluster's log");
    redis.restart();
    // Members stayed connected; once the engine is back, lines flow both ways again.
    let deadline = Instant::now() + DEADLINE;
    let mut n = 0;
    loop {
        n += 1;
        on_b.send(&format!("after {n}\n"));
        let line = loop {
            let line = on_b.line();
            if line.starts_with('<') || line.starts_with("! the cluster") {
                break line;
            }
        };
        if line.starts_with('<') {
            assert_eq!(said_text(&line), format!("after {n}"));
            break;
        }
        assert!(Instant::now() < deadline, "lines never flowed again");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        on_a.said(),
        format!("after {n}"),
        "and reach the other node"
    );
    drop((a, b));
}

impl Member {
    /// Reads until a line contains `needle`; returns it.
    fn until(&mut self, needle: &str) -> String {
        loop {
            let line = self.line();
            if line.contains(needle) {
                return line;
            }
        }
    }
}

#[test]
fn who_rooms_topics_enters_leaves_and_renames_span_the_nodes() {
    let Some(redis) = Redis::start() else { return };
    let data = tempfile::tempdir().unwrap();
    let a = node(&redis, "a", data.path());
    let b = node(&redis, "b", data.path());
    let (mut ann, _) = Member::join(a.addr);
    let (mut bob, _) = Member::join(b.addr);
    ann.send("/nick ann\n/join #Team\n");
    ann.until("now talking in #Team");
    bob.send("/nick bob\n/join #team\n");
    bob.until("now talking in #team");
    // Ann, on node a, is told of bob entering on node b, counted cluster-wide.
    assert_eq!(ann.until("bob joined"), "#Team *** bob joined; 2 online");
    // Who and the room list are the cluster's, from either node.
    bob.send("/who\n");
    assert_eq!(bob.until("online ("), "#team *** online (2): ann, bob");
    ann.send("/rooms\n");
    assert_eq!(ann.until("rooms: "), "*** rooms: 2; page 1 of 1");
    let listed = [ann.line(), ann.line()];
    assert!(
        listed.contains(&"*** #lobby: 2 online".to_owned()),
        "{listed:?}"
    );
    assert!(
        listed.contains(&"*** #Team: 2 online".to_owned()),
        "{listed:?}"
    );
    // A topic set on b reaches a, and a member entering later on a third node gets it.
    bob.send("/topic ship it\n");
    assert_eq!(
        ann.until("set the topic"),
        "#Team *** bob set the topic: ship it"
    );
    let c = node(&redis, "c", data.path());
    let (mut cat, _) = Member::join(c.addr);
    cat.send("/nick cat\n/join #team\n");
    assert_eq!(cat.until("the topic is"), "#team *** the topic is: ship it");
    // A rename and a part on b are told on a, in the room's order with its lines.
    bob.send("/nick robert\nsaid after\n/part #team\n");
    // Told in each room it shares with him, scoped to the room.
    ann.until("#Team *** bob is now known as robert");
    assert_eq!(ann.until("said after"), "#Team <robert> said after");
    assert!(
        ann.until("robert left")
            .starts_with("#Team *** robert left (")
    );
    ann.send("/who #team\n");
    assert_eq!(ann.until("online ("), "#Team *** online (2): ann, cat");
    drop((a, b, c));
}

#[test]
fn private_messages_and_kicks_reach_members_on_other_nodes() {
    let Some(redis) = Redis::start() else { return };
    let data = tempfile::tempdir().unwrap();
    // The operator's account is made on node a, from its own machine (loopback).
    let a = node_with(&redis, "a", data.path(), &["--op", "ann"]);
    let b = node(&redis, "b", data.path());
    let (mut ann, _) = Member::join(a.addr);
    let (mut bob, _) = Member::join(b.addr);
    ann.send("/nick ann\n/register hunter22-long\n");
    ann.until("registered");
    bob.send("/nick bob\n");
    bob.until("is now known as bob");
    // Private, both ways, echoed to the sender, nothing in any room.
    ann.send("/msg bob psst\n");
    assert_eq!(ann.until("psst"), "@bob <ann> psst");
    assert_eq!(bob.until("psst"), "@ann <ann> psst");
    bob.send("/msg ANN back\n");
    assert_eq!(ann.until("back"), "@bob <bob> back");
    // Nobody by that name anywhere.
    ann.send("/msg nobody hello\n");
    assert!(ann.until("nobody").starts_with("! nobody called nobody"));
    // The operator on a kicks bob, who is on b: b carries it out, and a is told in the lobby.
    ann.send("/kick bob enough\n");
    assert!(bob.until("kicked").contains("kicked by ann: enough"));
    assert!(ann.until("bob left").contains("kicked by ann: enough"));
    drop((a, b));
}

#[test]
fn a_ban_set_on_one_node_holds_on_every_node_even_one_started_later() {
    let Some(redis) = Redis::start() else { return };
    let data = tempfile::tempdir().unwrap();
    let a = node_with(&redis, "a", data.path(), &["--op", "ann"]);
    let b = node(&redis, "b", data.path());
    let (mut ann, _) = Member::join(a.addr);
    let (mut mal, _) = Member::join(b.addr);
    ann.send("/nick ann\n/register hunter22-long\n");
    ann.until("registered");
    mal.send("/nick mal\n");
    mal.until("is now known as mal");
    ann.send("/ban mal spam\n");
    assert!(ann.until("banned mal").contains("until lifted"));
    // Node b carries it out on its member, and keeps it.
    assert!(
        mal.until("banned").contains("kicked by ann: banned: spam"),
        "told why"
    );
    let (mut again, _) = Member::join(b.addr);
    again.send("/nick MAL\n");
    assert!(
        again
            .until("! ")
            .starts_with("! mal is banned from this server")
    );
    // A node that starts later learns it from the cluster.
    let c = node(&redis, "c", data.path());
    let (mut later, _) = Member::join(c.addr);
    later.send("/nick mal\n");
    assert!(
        later
            .until("! ")
            .starts_with("! mal is banned from this server")
    );
    // Lifted on a, lifted everywhere.
    ann.send("/unban mal\n");
    ann.until("lifted");
    let deadline = Instant::now() + DEADLINE;
    loop {
        later.send("/nick mal\n");
        let line = later.until("mal");
        if line.contains("is now known as mal") {
            break;
        }
        assert!(Instant::now() < deadline, "still banned on c: {line}");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop((a, b, c));
}

/// Sends `signal` to `node`'s process.
fn signal(node: &Node, signal: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(i32::try_from(node.process.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, signal).unwrap();
}

/// The median time a line said on one member takes to reach the other, over `n` lines.
fn median_relay(from: &mut Member, to: &mut Member, n: usize, tag: &str) -> Duration {
    let mut took: Vec<Duration> = (0..n)
        .map(|i| {
            let text = format!("{tag} {i}");
            let sent = Instant::now();
            from.send(&format!("{text}\n"));
            assert_eq!(to.said(), text);
            let took = sent.elapsed();
            assert_eq!(from.said(), text, "the sender's echo");
            took
        })
        .collect();
    took.sort();
    took[n / 2]
}

#[test]
fn a_node_paused_with_sigstop_slows_no_other_and_catches_up_when_it_resumes() {
    let Some(redis) = Redis::start() else { return };
    let data = tempfile::tempdir().unwrap();
    let a = node(&redis, "a", data.path());
    let b = node(&redis, "b", data.path());
    let c = node(&redis, "c", data.path());
    let (mut on_a, _) = Member::join(a.addr);
    let (mut on_b, _) = Member::join(b.addr);
    let (mut on_c, _) = Member::join(c.addr);
    const LINES: usize = 40;
    let running = median_relay(&mut on_a, &mut on_b, LINES, "running");
    for i in 0..LINES {
        assert_eq!(on_c.said(), format!("running {i}"));
    }
    signal(&c, rustix::process::Signal::STOP);
    let paused = median_relay(&mut on_a, &mut on_b, LINES, "paused");
    signal(&c, rustix::process::Signal::CONT);
    eprintln!("median a→b with c running {running:?}, with c paused {paused:?}");
    // Nothing waits for the paused node. The margin: a debug build on a noisy 2-core machine
    // where one median of 40 can be several times another for no reason at all.
    assert!(
        paused < running * 5 + Duration::from_millis(50),
        "a→b took {paused:?} with c paused, {running:?} with it running"
    );
    // The paused node's member gets everything said meanwhile, once, in order.
    for i in 0..LINES {
        assert_eq!(on_c.said(), format!("paused {i}"));
    }
    on_c.send("back\n");
    assert_eq!(on_a.said(), "back");
    drop((a, b, c));
}

/// Node `name` reaching the engine through `proxy` (a network path the test can cut).
fn node_through(proxy: &common::proxy::Proxy, name: &str, data: &Path) -> Node {
    let url = format!("redis://127.0.0.1:{}", proxy.port());
    let args: [&OsStr; 6] = [
        "--cluster".as_ref(),
        url.as_ref(),
        "--node".as_ref(),
        name.as_ref(),
        "--data-dir".as_ref(),
        data.as_os_str(),
    ];
    let (process, addr, log) = serve_binary(&args);
    Node { process, addr, log }
}

#[test]
fn a_node_cut_off_from_the_engine_refuses_lines_and_catches_up_once_the_path_heals() {
    let Some(redis) = Redis::start() else { return };
    let data = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let engine: SocketAddr = format!("127.0.0.1:{}", redis.port).parse().unwrap();
    let proxy = runtime.block_on(common::proxy::Proxy::start(engine));
    let a = node(&redis, "a", data.path());
    let b = node_through(&proxy, "b", data.path());
    let (mut on_a, _) = Member::join(a.addr);
    let (mut also_a, _) = Member::join(a.addr);
    let (mut on_b, _) = Member::join(b.addr);
    let (mut leaving, _) = Member::join(b.addr);
    leaving.send("/nick leaving\n");
    leaving.until("is now known as leaving");
    on_a.send("before\n");
    assert_eq!(on_b.said(), "before");
    assert_eq!(also_a.said(), "before");
    assert_eq!(on_a.said(), "before");
    // The path between b and the engine fails: every connection reset, new ones too.
    proxy.cut_reset();
    // Node b has noticed (else it might still read what a says next through the old path).
    log_says(&b.log, "the follower cannot read from the engine");
    // A member of b leaves meanwhile: b cannot tell the cluster's roster.
    leaving.send("/quit\n");
    drop(leaving);
    // Node a goes on as if nothing happened.
    for n in 0..20 {
        on_a.send(&format!("during {n}\n"));
    }
    for n in 0..20 {
        assert_eq!(also_a.said(), format!("during {n}"));
        assert_eq!(on_a.said(), format!("during {n}"));
    }
    // Node b refuses what its member says, saying why, and delivers nothing from memory.
    on_b.send("from the island\n");
    let refused = loop {
        let line = on_b.line();
        assert!(!line.starts_with('<'), "delivered while cut off: {line}");
        if line.starts_with("! ") {
            break line;
        }
    };
    assert!(refused.contains("cluster is unavailable"), "{refused}");
    log_says(&b.log, "cannot append to the cluster's log");
    // Healed: b reads on from where it was, so its member gets what a's said meanwhile,
    // once, in order, and lines flow both ways again.
    proxy.restore();
    for n in 0..20 {
        assert_eq!(on_b.said(), format!("during {n}"));
    }
    let deadline = Instant::now() + DEADLINE;
    let mut n = 0;
    loop {
        n += 1;
        on_b.send(&format!("healed {n}\n"));
        let line = loop {
            let line = on_b.line();
            if line.starts_with('<') || line.starts_with("! the cluster") {
                break line;
            }
        };
        if line.starts_with('<') {
            assert_eq!(said_text(&line), format!("healed {n}"));
            break;
        }
        assert!(Instant::now() < deadline, "b never took lines again");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(on_a.said(), format!("healed {n}"));
    // Once healed, b rebuilt its part of the roster: who left while it was cut off is gone
    // from it (and the three still here are in it).
    let deadline = Instant::now() + DEADLINE;
    loop {
        on_a.send("/who\n");
        let who = on_a.until("online (");
        if !who.contains("leaving") {
            assert!(who.starts_with("*** online (3): "), "{who}");
            break;
        }
        assert!(Instant::now() < deadline, "b's roster never rebuilt: {who}");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop((a, b));
}

#[test]
fn a_node_whose_engine_packets_vanish_refuses_lines_in_time_and_nothing_is_doubled_after() {
    let Some(redis) = Redis::start() else { return };
    let data = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let engine: SocketAddr = format!("127.0.0.1:{}", redis.port).parse().unwrap();
    let proxy = runtime.block_on(common::proxy::Proxy::start(engine));
    let a = node(&redis, "a", data.path());
    let b = node_through(&proxy, "b", data.path());
    let (mut on_a, _) = Member::join(a.addr);
    let (mut on_b, _) = Member::join(b.addr);
    on_a.send("before\n");
    assert_eq!(on_b.said(), "before");
    assert_eq!(on_a.said(), "before");
    // A partition where packets vanish: nothing forwarded, nothing closed.
    proxy.blackhole();
    for n in 0..10 {
        on_a.send(&format!("during {n}\n"));
    }
    for n in 0..10 {
        assert_eq!(on_a.said(), format!("during {n}"), "node a goes on");
    }
    // Node b's member is told within the engine's response time (and the retries' bound).
    let sent = Instant::now();
    on_b.send("from the island\n");
    let refused = loop {
        let line = on_b.line();
        assert!(!line.starts_with('<'), "delivered while cut off: {line}");
        if line.starts_with("! ") {
            break line;
        }
    };
    assert!(refused.contains("not confirmed"), "{refused}");
    eprintln!("refused after {:?}", sent.elapsed());
    proxy.restore();
    // What a's member said arrives at b once, in order. The island's line was sent into the
    // void and may arrive after all once the path heals (its member was told it may not):
    // if it does, it is there once.
    let mut heard = Vec::new();
    on_a.send("after\n");
    loop {
        let line = on_b.said();
        if line == "after" {
            break;
        }
        heard.push(line);
    }
    let island = heard
        .iter()
        .filter(|line| *line == "from the island")
        .count();
    assert!(island <= 1, "{heard:?}");
    heard.retain(|line| line != "from the island");
    let expected: Vec<String> = (0..10).map(|n| format!("during {n}")).collect();
    assert_eq!(heard, expected);
    drop((a, b));
}

#[test]
fn an_account_registered_on_one_node_is_kept_on_every_node() {
    let Some(redis) = Redis::start() else { return };
    let data = tempfile::tempdir().unwrap();
    let a = node(&redis, "a", data.path());
    let b = node(&redis, "b", data.path());
    let (mut ann, _) = Member::join(a.addr);
    let (mut other, _) = Member::join(b.addr);
    ann.send("/nick ann\n/register correct-horse\n");
    ann.until("registered");
    ann.send("/quit\n");
    drop(ann);
    // Node b tells of ann's leaving after it has read the account (decided before it).
    other.until("ann left (quit)");
    // On node b the nick is registered: not for a guest, but for whoever has the password.
    other.send("/nick ann\n");
    assert_eq!(
        other.until("! "),
        "! ann is registered; /login ann PASSWORD if it is yours"
    );
    other.send("/login ann wrong-password\n");
    assert_eq!(other.until("wrong"), "! wrong nick or password");
    other.send("/login ann correct-horse\n");
    other.until("is now known as ann");
    other.send("/quit\n");
    drop(other);
    let deadline = Instant::now() + DEADLINE;
    // A node started later knows it too.
    let c = node(&redis, "c", data.path());
    let (mut third, _) = Member::join(c.addr);
    loop {
        third.send("/nick ann\n");
        let answer = third.until("! ");
        if answer.starts_with("! ann is registered") {
            break;
        }
        assert!(answer.contains("taken"), "{answer}");
        assert!(Instant::now() < deadline, "never seen as registered on c");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop((a, b, c));
}

#[test]
fn a_private_message_whose_recipient_left_on_its_way_is_answered_as_nobody() {
    let Some(redis) = Redis::start() else { return };
    let data = tempfile::tempdir().unwrap();
    let a = node(&redis, "a", data.path());
    let b = node(&redis, "b", data.path());
    let (mut ann, _) = Member::join(a.addr);
    ann.send("/nick ann\n");
    ann.until("is now known as ann");
    // Node b is ready (it reads its inbox from there on) once it greets someone.
    let (_on_b, _) = Member::join(b.addr);
    // A claim that says node b holds ghost, whom b does not have: what a sender's node finds
    // when the recipient leaves b while the message travels.
    assert_eq!(
        redis.command(&["SET", "tcpchat:nick:ghost", r#"{"node":"b","epoch":1}"#]),
        "+OK"
    );
    ann.send("/msg ghost are you there\n");
    assert_eq!(
        ann.until("ghost"),
        "@ghost <ann> are you there",
        "echoed as sent"
    );
    assert_eq!(ann.until("! "), "! nobody called ghost is online");
    drop((a, b));
}

#[test]
fn a_node_set_up_in_the_config_file_is_one_of_the_cluster() {
    let Some(redis) = Redis::start() else { return };
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("config.toml");
    std::fs::write(
        &config,
        format!("[serve]\ncluster = \"{}\"\nnode = \"filed\"\n", redis.url()),
    )
    .unwrap();
    let args: [&OsStr; 4] = [
        "--config".as_ref(),
        config.as_os_str(),
        "--data-dir".as_ref(),
        data.path().as_os_str(),
    ];
    let (_process, addr, log) = serve_binary(&args);
    assert!(log.lock().unwrap().starts_with("[node filed] "));
    let other = node(&redis, "other", data.path());
    let (mut here, _) = Member::join(addr);
    let (mut there, _) = Member::join(other.addr);
    here.send("from the file's node\n");
    assert_eq!(there.said(), "from the file's node");
    drop(other);
}
