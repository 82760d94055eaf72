//! The server's view of its own sockets (the inspector's server page), against the real server
//! on 127.0.0.1:0 with accepting paused: the accept queue as the kernel counts it, the accepted
//! connections' real 4-tuples, the SYN the kernel saved, and who holds each TIME-WAIT.

#![cfg(target_os = "linux")]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tcpchat::server::listen::{self, AcceptGate, ListenOptions};
use tcpchat::server::observe::{ServerSample, ServerView};
use tcpchat::server::{self, Config};
use tcpchat::tcp_table::Holder;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// Longest wait for the kernel or the server to get where a step expects.
const DEADLINE: Duration = Duration::from_secs(10);

/// The backlog given to `listen()`: small, so the limit the kernel reports is ours.
const BACKLOG: u32 = 4;

/// Samples `view` until `done` holds for a sample, and returns it; panics with the last sample
/// after [`DEADLINE`].
async fn sample_until(
    view: &ServerView,
    what: &str,
    done: impl Fn(&ServerSample) -> bool,
) -> ServerSample {
    let until = tokio::time::Instant::now() + DEADLINE;
    let mut last = None;
    while tokio::time::Instant::now() < until {
        if let Some(sample) = view.sample().await {
            if done(&sample) {
                return sample;
            }
            last = Some(sample);
        }
        // Polling the kernel's state, not waiting a fixed time: each turn looks again.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: not seen within {DEADLINE:?}; last sample: {last:#?}");
}

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: timed out"))
}

#[tokio::test]
async fn the_view_shows_the_queue_the_connections_the_syn_and_who_holds_time_wait() {
    let options = ListenOptions {
        backlog: BACKLOG,
        save_syn: true,
        ..ListenOptions::default()
    };
    let listener = listen::listen("127.0.0.1:0", options).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let view = ServerView::new();
    let (key, gate) = AcceptGate::closed();
    let token = CancellationToken::new();
    let server = tokio::spawn(server::run(
        listener,
        Config {
            accept_gate: Some(gate),
            observe: Some(Arc::clone(&view)),
            ..Config::default()
        },
        token.clone(),
    ));

    // Paused: the kernel finishes both handshakes into the accept queue; nobody accepts.
    let listening = sample_until(&view, "paused listener", |s| s.listener.paused).await;
    assert_eq!(listening.listener.addr, addr);
    assert_eq!(listening.listener.reuse_address, Some(true));
    let first = within("connect", TcpStream::connect(addr)).await.unwrap();
    let second = within("connect", TcpStream::connect(addr)).await.unwrap();
    let queued = sample_until(&view, "accept queue 2", |s| {
        s.listener.info.and_then(|i| i.unacked) == Some(2)
    })
    .await;
    let info = queued.listener.info.unwrap();
    assert_eq!(info.state, Some(10), "the listener is in LISTEN");
    let somaxconn: u64 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(info.sacked, Some(u64::from(BACKLOG).min(somaxconn)));
    assert!(queued.connections.is_empty(), "nothing accepted yet");

    // Accepting: both appear with the 4-tuples their clients see, the queue empties.
    key.open();
    let (first_end, second_end) = (first.local_addr().unwrap(), second.local_addr().unwrap());
    let accepted = sample_until(&view, "two connections, joined", |s| {
        s.connections.len() == 2 && s.connections.iter().all(|c| c.nick.is_some())
    })
    .await;
    assert_eq!(accepted.listener.info.and_then(|i| i.unacked), Some(0));
    assert!(!accepted.listener.paused);
    let peers: Vec<SocketAddr> = accepted.connections.iter().map(|c| c.peer).collect();
    assert_eq!(peers, [first_end, second_end]);
    for connection in &accepted.connections {
        assert_eq!(connection.local, Some(addr));
        let info = connection.info.expect("TCP_INFO of the server's end");
        assert_eq!(info.state, Some(1), "ESTABLISHED");
        assert!(
            info.segs_in.unwrap_or(0) >= 2,
            "at least the handshake's ACK and more"
        );
        assert!(
            connection
                .nick
                .as_deref()
                .unwrap_or("")
                .starts_with("guest-")
        );
    }

    // The last SYN the kernel saved is the second client's, with its MSS option.
    let syn = accepted.last_syn.clone().expect("a SYN").expect("decoded");
    assert_eq!(syn.source, second_end);
    assert_eq!(syn.destination, addr);
    assert!(syn.mss().is_some(), "the MSS option: {:?}", syn.options);

    // The server closes first (the client says exit): the server's end holds the TIME-WAIT.
    let mut first = BufReader::new(first);
    first.get_mut().write_all(b"exit\n").await.unwrap();
    let mut rest = Vec::new();
    within("the server's FIN", first.read_to_end(&mut rest))
        .await
        .unwrap();
    drop(first);
    let held = sample_until(&view, "the server's TIME-WAIT", |s| {
        s.lingering.as_ref().is_ok_and(|rows| {
            rows.iter()
                .any(|r| r.client == first_end && r.holder == Holder::Server)
        })
    })
    .await;
    let row = held
        .lingering
        .unwrap()
        .into_iter()
        .find(|r| r.client == first_end)
        .unwrap();
    let left = row.left.expect("the TIME-WAIT timer's countdown");
    assert!(
        left <= Duration::from_secs(60) && left > Duration::ZERO,
        "{left:?}"
    );

    // The client closes first: it holds the TIME-WAIT; the server holds none.
    let mut second = BufReader::new(second);
    let mut greeting = String::new();
    within("greeting", second.read_line(&mut greeting))
        .await
        .unwrap();
    second.get_mut().shutdown().await.unwrap();
    let mut rest = Vec::new();
    within("the server's FIN", second.read_to_end(&mut rest))
        .await
        .unwrap();
    drop(second);
    let after = sample_until(&view, "the client's TIME-WAIT", |s| {
        s.connections.is_empty()
            && s.lingering.as_ref().is_ok_and(|rows| {
                rows.iter()
                    .any(|r| r.client == second_end && r.holder == Holder::Client)
            })
    })
    .await;
    let rows = after.lingering.unwrap();
    assert!(
        !rows
            .iter()
            .any(|r| r.client == second_end && r.holder == Holder::Server),
        "a client that closes first leaves no TIME-WAIT on the server: {rows:?}"
    );

    token.cancel();
    within("server stop", server).await.unwrap();
    assert!(view.sample().await.is_none(), "nothing listens any more");
}
