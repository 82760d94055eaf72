//! Who closed first, checked against the kernel's own view. The real network task ends a session
//! with `exit` against a raw std server on 127.0.0.1 (a port from the OS), in both orders, many
//! times each, and the inspector's verdict is compared with the side that holds the TIME-WAIT in
//! `/proc/net/tcp` and `/proc/net/tcp6` (state 06, matched on the 4-tuple): the side whose FIN
//! went first is the one left in TIME-WAIT.
//!
//! - **Ours first**: the server reads until our FIN, then closes.
//! - **The server's first**: the server sends its FIN and the test waits until the client's
//!   kernel has acknowledged it (the server's socket is FIN-WAIT-2) before it hands the network
//!   task the exit. The test runs on a one-thread runtime, so the task has not run since and has
//!   not read that FIN: it is a client slowed between the server's FIN and its own `exit` and
//!   `shutdown()`, which is what a busy machine does to it now and then.
//! - **The server's FIN while our exit waits on a slow UI**: the queue of events to the UI is
//!   full, so the task stops right after writing `exit`; the session must still end as asked.

#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tcpchat::inspector::{Closer, Inspector};
use tcpchat::net::{self, NetEvent, NetHandle, Outgoing};
use tcpchat::protocol::Framing;
use tcpchat::tcpinfo;

/// Sessions closed in each order.
const RUNS: usize = 20;

/// How long one step may take: each is a loopback round trip or a thread waking, well under a
/// millisecond idle; the margin is for a debug build on a busy 2-core machine.
const DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    OursFirst,
    TheirsFirst,
}

/// The raw server's side of one run: it greets, then closes in `order`, and always reads to
/// our FIN so that its close is a FIN, never an RST.
fn raw_server(
    order: Order,
) -> (
    SocketAddr,
    mpsc::Sender<()>,
    mpsc::Receiver<()>,
    JoinHandle<()>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (go_tx, go) = mpsc::channel::<()>();
    let (acked, acked_rx) = mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        stream.write_all(b"hello\n").unwrap();
        if order == Order::TheirsFirst {
            go.recv_timeout(DEADLINE).expect("the test says when");
            stream.shutdown(Shutdown::Write).unwrap();
            // FIN-WAIT-2: the client's kernel has our FIN (and acknowledged it).
            let until = Instant::now() + DEADLINE;
            while tcpinfo::read(&stream).unwrap().state != Some(tcpinfo::FIN_WAIT2) {
                assert!(Instant::now() < until, "our FIN was never acknowledged");
                std::thread::yield_now();
            }
            acked.send(()).unwrap();
        }
        let mut rest = Vec::new();
        stream
            .read_to_end(&mut rest)
            .expect("the client's FIN in time");
        assert!(rest.ends_with(b"exit\n"), "{rest:?}");
    });
    (addr, go_tx, acked_rx, thread)
}

/// Feeds the inspector until `until` matches; returns the client's local address once known.
async fn pump(
    net: &mut NetHandle,
    inspector: &mut Inspector,
    local: &mut Option<SocketAddr>,
    until: impl Fn(&NetEvent) -> bool,
) {
    loop {
        let stamped = tokio::time::timeout(DEADLINE, net.events.recv())
            .await
            .expect("event in time")
            .expect("net task alive");
        inspector.on_net(&stamped.event, stamped.at);
        if let NetEvent::Connected { local: ours, .. } = stamped.event {
            *local = Some(ours);
        }
        if until(&stamped.event) {
            return;
        }
    }
}

/// One session closed in `order`: the verdict the inspector drew, and who holds the TIME-WAIT.
async fn run_once(order: Order) -> (Option<Closer>, Holder) {
    let fin_sent = |e: &NetEvent| matches!(e, NetEvent::FinSent { .. });
    let (server, go, acked, thread) = raw_server(order);
    let mut net = net::spawn(server.to_string(), Framing::Lines);
    let mut inspector = Inspector::default();
    let mut local = None;
    pump(
        &mut net,
        &mut inspector,
        &mut local,
        |e| matches!(e, NetEvent::Received(b) if b.ends_with(b"hello\n")),
    )
    .await;
    if order == Order::TheirsFirst {
        // Blocking on purpose: the network task shares this thread and must not run yet.
        go.send(()).unwrap();
        acked
            .recv_timeout(DEADLINE)
            .expect("the server's FIN acked");
    }
    net.outgoing
        .try_send(Outgoing::Exit("exit".into()))
        .unwrap();
    // Whichever FIN comes first, the exit goes out with our FIN after it: the session ends as
    // asked, not as a lost connection.
    pump(&mut net, &mut inspector, &mut local, fin_sent).await;
    pump(&mut net, &mut inspector, &mut local, |e| {
        matches!(e, NetEvent::Closed { .. })
    })
    .await;
    drop(net); // a session that ended some other way still closes its socket
    tokio::task::spawn_blocking(move || thread.join())
        .await
        .unwrap()
        .expect("the raw server saw exit and our FIN");
    let client = local.expect("connected");
    (inspector.closer, time_wait_holder(client, server).await)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holder {
    Client,
    Server,
    Both,
}

/// Which end of `client`–`server` the kernel lists in TIME-WAIT, once one is listed.
async fn time_wait_holder(client: SocketAddr, server: SocketAddr) -> Holder {
    let until = Instant::now() + DEADLINE;
    loop {
        let entries = time_wait_entries();
        let ours = entries.contains(&(client, server));
        let theirs = entries.contains(&(server, client));
        match (ours, theirs) {
            (true, true) => return Holder::Both,
            (true, false) => return Holder::Client,
            (false, true) => return Holder::Server,
            (false, false) => {
                assert!(
                    Instant::now() < until,
                    "no TIME-WAIT for {client} ⇄ {server}"
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
}

/// Every (local, remote) pair in TIME-WAIT (state `06`), IPv4 and IPv6.
fn time_wait_entries() -> Vec<(SocketAddr, SocketAddr)> {
    let mut pairs = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue; // no IPv6 on this machine
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.get(3) == Some(&"06") {
                pairs.push((proc_addr(fields[1]), proc_addr(fields[2])));
            }
        }
    }
    pairs
}

/// `0100007F:1F90` (IPv4) or 32 hex digits and a port (IPv6): the address as the kernel prints
/// it, in 32-bit words of host order, and the port in hex.
fn proc_addr(field: &str) -> SocketAddr {
    let (ip, port) = field.split_once(':').unwrap();
    let port = u16::from_str_radix(port, 16).unwrap();
    let words: Vec<[u8; 4]> = (0..ip.len() / 8)
        .map(|i| {
            u32::from_str_radix(&ip[i * 8..i * 8 + 8], 16)
                .unwrap()
                .to_ne_bytes()
        })
        .collect();
    let ip: std::net::IpAddr = match words.as_slice() {
        [v4] => std::net::Ipv4Addr::from(*v4).into(),
        _ => std::net::Ipv6Addr::from(<[u8; 16]>::try_from(words.concat()).unwrap()).into(),
    };
    SocketAddr::new(ip, port)
}

fn expected(holder: Holder) -> Closer {
    match holder {
        Holder::Client => Closer::Us,
        Holder::Server => Closer::Server,
        Holder::Both => Closer::Both,
    }
}

async fn check(order: Order) {
    let mut wrong = Vec::new();
    for run in 0..RUNS {
        let (verdict, holder) = run_once(order).await;
        if verdict != Some(expected(holder)) {
            wrong.push(format!(
                "run {run}: verdict {verdict:?}, TIME-WAIT held by {holder:?}"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{order:?}: {} of {RUNS} verdicts disagree with the kernel:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[tokio::test]
async fn when_we_close_first_the_verdict_matches_the_kernels_time_wait() {
    check(Order::OursFirst).await;
}

#[tokio::test]
async fn when_the_servers_fin_comes_first_the_verdict_matches_the_kernels_time_wait() {
    check(Order::TheirsFirst).await;
}

/// A UI too slow to take events (the queue to it is full) holds the network task right after
/// it wrote `exit`, before its `shutdown()`; the server reads `exit` and closes meanwhile. The
/// session must still end as asked: our FIN goes, the verdict is the server's, and nothing
/// reconnects. Whether the task's reader sees that FIN before its writer is let go is up to
/// the scheduler, so it runs many times; every run must end the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_fin_while_our_exit_waits_on_a_slow_ui_still_ends_the_session() {
    for run in 0..RUNS {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let server = listener.local_addr().unwrap();
        let (closed_tx, closed) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            stream.set_read_timeout(Some(DEADLINE)).unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 64 * 1024];
            while !seen.ends_with(b"exit\n") {
                let n = stream.read(&mut buf).expect("lines in time");
                assert!(n > 0, "closed before exit");
                seen.extend_from_slice(&buf[..n]);
            }
            stream.shutdown(Shutdown::Write).unwrap(); // the server's FIN, first
            let until = Instant::now() + DEADLINE;
            while tcpinfo::read(&stream).unwrap().state != Some(tcpinfo::FIN_WAIT2) {
                assert!(Instant::now() < until, "our FIN was never acknowledged");
                std::thread::yield_now();
            }
            closed_tx.send(()).unwrap();
            let mut rest = Vec::new();
            stream
                .read_to_end(&mut rest)
                .expect("the client's FIN in time");
        });
        let mut net = net::spawn(server.to_string(), Framing::Lines);
        let mut inspector = Inspector::default();
        let mut local = None;
        pump(&mut net, &mut inspector, &mut local, |e| {
            matches!(e, NetEvent::Connected { .. })
        })
        .await;
        // Nothing is taken from here on: one `Sent` per line fills the queue exactly, and the
        // task waits to report the exit it has already written.
        for n in 0..net::EVENT_QUEUE {
            net.outgoing
                .send(Outgoing::Line(format!("line {n}")))
                .await
                .unwrap();
        }
        net.outgoing
            .send(Outgoing::Exit("exit".into()))
            .await
            .unwrap();
        tokio::task::spawn_blocking(move || closed.recv_timeout(DEADLINE))
            .await
            .unwrap()
            .expect("the server read exit and sent its FIN");
        pump(&mut net, &mut inspector, &mut local, |e| {
            matches!(e, NetEvent::Closed { .. })
        })
        .await;
        let after = tokio::time::timeout(DEADLINE, net.events.recv())
            .await
            .expect("the task ends or goes on in time");
        assert!(
            after.is_none(),
            "run {run}: after an exit the task must end, not {:?}",
            after.map(|stamped| stamped.event)
        );
        assert_eq!(inspector.closer, Some(Closer::Server), "run {run}");
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .unwrap()
            .expect("the raw server saw our FIN");
    }
}
