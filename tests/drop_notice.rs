//! The drop notice must reach a client dropped as too slow, even one that is still sending.
//!
//! Found by the soak in its overload mode (`SOAK_WINDOW=0 tools/loadgen/bench/soak.sh`), made
//! small here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Client, DEADLINE, join, spawn_server};
use tcpchat::server::{Limits, Mode};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

/// The notice's start.
const DROPPED: &str = "! you were dropped: too slow";

/// A client dropped as too slow while it still has lines on their way in. The server queues the
/// notice and its FIN, then closes the socket with that client's unread lines in its receive
/// buffer, so the kernel sends a reset instead and throws away what was not yet delivered: the
/// notice, which sat behind everything the slow client had not read. The client sees
/// `Connection reset by peer` and is never told why. Without its backlog of unread lines (the
/// `send` below), the same client gets the notice and a clean EOF.
#[tokio::test]
async fn a_slow_client_still_sending_is_told_why_it_was_dropped() {
    let limits = Limits {
        outbox_lines: 16,
        ..Limits::default()
    };
    let server = spawn_server(Mode::Chat, limits).await;
    let mut slow = Client::connect_small_rcvbuf(server.addr).await;
    let greeting = slow.line().await;
    let slow_nick = greeting
        .split_once("you are ")
        .and_then(|(_, rest)| rest.split_once(';'))
        .map(|(nick, _)| nick.to_owned())
        .unwrap();
    let (loud, _) = join(server.addr).await;

    // The slow client sends more than the flood limit lets the server read for a while, and
    // reads nothing.
    slow.send("x\n".repeat(20_000)).await;

    // Another client talks in long lines, at the flood limit's pace so that the slow client's
    // socket buffers fill before its 16-line queue does, until the room drops the slow one.
    let Client { mut rx, mut tx } = loud;
    let talking = tokio::spawn(async move {
        let line = format!("{}\n", "y".repeat(8000));
        for _ in 0..10_000 {
            if tx.write_all(line.as_bytes()).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(4)).await;
        }
        tx
    });
    let left = format!("*** {slow_nick} left (too slow)");
    tokio::time::timeout(Duration::from_secs(60), async {
        while !rx.line().await.starts_with(&left) {}
    })
    .await
    .expect("the slow client was never dropped");
    talking.abort();

    // Now it reads everything it was sent, a line a millisecond: the notice must be there,
    // then the end.
    let mut told = false;
    let mut lines = 0;
    let mut line = Vec::new();
    let end = loop {
        line.clear();
        match tokio::time::timeout(DEADLINE, slow.rx.0.read_until(b'\n', &mut line)).await {
            Err(_) => break "no end within the deadline".to_owned(),
            Ok(Ok(0)) => break "EOF".to_owned(),
            Ok(Ok(_)) => {
                lines += 1;
                told |= line.starts_with(DROPPED.as_bytes());
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Ok(Err(error)) => break error.to_string(),
        }
    };
    assert!(
        told,
        "the slow client was not told it was dropped; after {lines} lines its connection \
         ended: {end}"
    );
    assert_eq!(end, "EOF");
}
