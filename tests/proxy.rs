//! The fault tests' loopback proxy (`tests/common/proxy.rs`) against a tiny echo listener: data
//! passes both ways; after `cut_reset` both sides see their connection end and new ones are
//! turned away; a `blackhole` forwards nothing and closes nothing; `restore` heals both; and
//! dropping the proxy leaves nothing behind. And the use it is for: a node's engine client
//! (`tcpchat::cluster`) talking to a real redis-server through it fails, within its response
//! timeout, while the proxy is cut or blackholed, and works again once it is restored.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::DEADLINE;
use common::proxy::Proxy;
use common::redis::Redis;
use tcpchat::cluster::{Cluster, NodeName, Settings};
use tcpchat::names::RoomName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::timeout;

/// How long "nothing arrives" is watched for: long against loopback's microseconds.
const QUIET: Duration = Duration::from_millis(300);

/// An echo listener on 127.0.0.1:0 that counts its open connections.
struct Echo {
    addr: SocketAddr,
    open: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Echo {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicUsize::new(0));
        let counting = open.clone();
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                counting.fetch_add(1, Ordering::SeqCst);
                let counting = counting.clone();
                connections.spawn(async move {
                    let (mut read, mut write) = stream.split();
                    let _ = tokio::io::copy(&mut read, &mut write).await;
                    let _ = write.shutdown().await;
                    counting.fetch_sub(1, Ordering::SeqCst);
                });
                while connections.try_join_next().is_some() {}
            }
        });
        Self { addr, open, task }
    }

    fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Waits until `condition` holds, or fails after [`DEADLINE`] saying `what`.
async fn eventually(what: &str, condition: impl Fn() -> bool) {
    timeout(DEADLINE, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("not within {DEADLINE:?}: {what}"));
}

/// Sends `text` and reads it back.
async fn round_trip(stream: &mut TcpStream, text: &[u8]) {
    stream.write_all(text).await.unwrap();
    let mut back = vec![0; text.len()];
    timeout(DEADLINE, stream.read_exact(&mut back))
        .await
        .expect("the echo in time")
        .unwrap();
    assert_eq!(back, text);
}

/// Whether the connection has ended (EOF or reset) within [`DEADLINE`], with no data first.
async fn ends(stream: &mut TcpStream) -> bool {
    let mut byte = [0; 1];
    matches!(
        timeout(DEADLINE, stream.read(&mut byte)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// Whether nothing arrives for [`QUIET`].
async fn stays_quiet(stream: &mut TcpStream) -> bool {
    let mut byte = [0; 1];
    timeout(QUIET, stream.read(&mut byte)).await.is_err()
}

#[tokio::test]
async fn data_passes_both_ways_and_a_half_close_too() {
    let echo = Echo::start().await;
    let proxy = Proxy::start(echo.addr).await;
    assert!(proxy.addr().ip().is_loopback() && proxy.port() != 0);
    assert_eq!(proxy.upstream(), echo.addr);
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    round_trip(&mut client, b"hello\n").await;
    // More than the kernel's buffers and the proxy's, both ways at once.
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let (mut read, mut write) = client.split();
    let sending = async {
        write.write_all(&big).await.unwrap();
        write.shutdown().await.unwrap();
    };
    let mut back = Vec::new();
    let receiving = timeout(DEADLINE, read.read_to_end(&mut back));
    let ((), received) = tokio::join!(sending, receiving);
    received.expect("the echo in time").unwrap();
    assert_eq!(back.len(), big.len());
    assert!(back == big, "the bytes came back changed");
    // The client's FIN reached the echo, whose FIN came back: the connection is done.
    eventually("the echo's side closed", || echo.open() == 0).await;
    eventually("the proxy let the connection go", || proxy.live() == 0).await;
}

#[tokio::test]
async fn cut_reset_ends_every_connection_and_turns_new_ones_away_until_restored() {
    let echo = Echo::start().await;
    let proxy = Proxy::start(echo.addr).await;
    let mut clients = Vec::new();
    for i in 0..3u8 {
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
        round_trip(&mut client, &[b'a' + i, b'\n']).await;
        clients.push(client);
    }
    assert_eq!(proxy.live(), 3);

    proxy.cut_reset();
    for client in &mut clients {
        assert!(ends(client).await, "a client's connection outlived the cut");
    }
    eventually("the upstream side of every connection ended", || {
        echo.open() == 0
    })
    .await;
    eventually("the proxy holds nothing", || proxy.live() == 0).await;
    // A new connection reaches the kernel's backlog, then is reset, never forwarded.
    if let Ok(mut late) = TcpStream::connect(proxy.addr()).await {
        let _ = late.write_all(b"lost\n").await;
        assert!(
            ends(&mut late).await,
            "a connection was taken during the cut"
        );
    }
    assert_eq!(echo.open(), 0);

    proxy.restore();
    let mut after = TcpStream::connect(proxy.addr()).await.unwrap();
    round_trip(&mut after, b"back\n").await;
    assert_eq!(proxy.live(), 1);
    // The ones that were cut stay dead.
    for client in &mut clients {
        assert!(client.write_all(b"x\n").await.is_err() || ends(client).await);
    }
}

#[tokio::test]
async fn a_blackhole_forwards_nothing_and_closes_nothing_until_restored() {
    let echo = Echo::start().await;
    let proxy = Proxy::start(echo.addr).await;
    let mut held = TcpStream::connect(proxy.addr()).await.unwrap();
    round_trip(&mut held, b"before\n").await;

    proxy.blackhole();
    held.write_all(b"during\n").await.unwrap();
    assert!(
        stays_quiet(&mut held).await,
        "a blackhole forwarded a reply"
    );
    // The kernel completes the handshake (a loopback SYN cannot be dropped without a
    // firewall), but nothing accepts it: its request goes unanswered.
    let mut waiting = TcpStream::connect(proxy.addr()).await.unwrap();
    waiting.write_all(b"queued\n").await.unwrap();
    assert!(
        stays_quiet(&mut waiting).await,
        "a new connection was served"
    );
    assert_eq!(proxy.live(), 1, "a new connection was accepted");
    assert_eq!(echo.open(), 1, "the upstream saw a new connection");

    // Healed: what was held goes through, in order, on the same connections.
    proxy.restore();
    let mut back = [0; 7];
    timeout(DEADLINE, held.read_exact(&mut back))
        .await
        .expect("the held line after the restore")
        .unwrap();
    assert_eq!(&back, b"during\n");
    let mut back = [0; 7];
    timeout(DEADLINE, waiting.read_exact(&mut back))
        .await
        .expect("the queued connection served after the restore")
        .unwrap();
    assert_eq!(&back, b"queued\n");
    round_trip(&mut held, b"after\n").await;

    // A cut during a blackhole still resets what the blackhole held.
    proxy.blackhole();
    proxy.cut_reset();
    assert!(ends(&mut held).await && ends(&mut waiting).await);
    eventually("the upstream side ended", || echo.open() == 0).await;
}

#[tokio::test]
async fn dropping_the_proxy_leaves_no_connection_and_no_listener() {
    let echo = Echo::start().await;
    let proxy = Proxy::start(echo.addr).await;
    let addr = proxy.addr();
    let mut client = TcpStream::connect(addr).await.unwrap();
    round_trip(&mut client, b"hi\n").await;
    proxy.blackhole(); // even a held connection goes with the proxy
    drop(proxy);
    assert!(ends(&mut client).await, "a connection outlived the proxy");
    eventually("the upstream side ended", || echo.open() == 0).await;
    // Nothing listens there any more (loopback answers a SYN to a closed port with RST).
    let refused = timeout(DEADLINE, TcpStream::connect(addr)).await.unwrap();
    assert!(refused.is_err(), "something still listens on {addr}");
}

/// Asks the engine through `node` until it answers (the client reconnects on its own after a
/// failure), within [`DEADLINE`].
async fn answers_again(node: &Cluster) {
    let room = RoomName::lobby();
    timeout(DEADLINE, async {
        while node.last_id(&room).await.is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the engine answers again after the restore");
}

#[tokio::test]
async fn a_node_cut_off_from_its_engine_fails_fast_and_recovers_on_restore() {
    let Some(redis) = Redis::start() else { return };
    let proxy = Proxy::start(format!("127.0.0.1:{}", redis.port).parse().unwrap()).await;
    let settings = Settings {
        response_timeout: Duration::from_millis(500),
        ..Settings::default()
    };
    let url = format!("redis://127.0.0.1:{}", proxy.port());
    let node = Cluster::connect(&url, NodeName::parse("behind-proxy").unwrap(), settings)
        .await
        .expect("the node connects through the proxy");
    let room = RoomName::lobby();
    node.last_id(&room)
        .await
        .expect("an answer through the proxy");

    proxy.cut_reset();
    let failed = timeout(DEADLINE, node.last_id(&room)).await;
    assert!(matches!(failed, Ok(Err(_))), "a command went through a cut");
    proxy.restore();
    answers_again(&node).await;

    proxy.blackhole();
    let failed = timeout(DEADLINE, node.last_id(&room)).await;
    assert!(
        matches!(failed, Ok(Err(_))),
        "a blackholed command did not fail within the response timeout"
    );
    proxy.restore();
    answers_again(&node).await;
}
