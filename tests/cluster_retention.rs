//! Retention in the cluster's engine (`tcpchat::cluster::retention`), against a real
//! `redis-server` the test starts: a room keeps its newest lines and its young ones, whatever
//! events sit between them, numbering goes on after a trim, and trimming twice is trimming
//! once (every node may trim every room). Without redis-server this fails, saying so, unless
//! `TCPCHAT_TEST_SKIP=redis`.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use common::redis::Redis;
use tcpchat::cluster::{Cluster, LineId, LogLine, NodeName, Settings};
use tcpchat::names::{Nick, RoomName};
use tcpchat::protocol::SaidKind;

fn said(text: &str, at_ms: i64) -> LogLine {
    LogLine {
        nick: "ann".to_owned(),
        kind: SaidKind::Message,
        text: text.to_owned(),
        at_ms,
        node: "a".to_owned(),
    }
}

async fn texts(cluster: &Cluster, room: &RoomName) -> Vec<(u64, String)> {
    cluster
        .read_after(room, LineId::START, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|(id, line)| (id.0, line.text))
        .collect()
}

#[tokio::test]
async fn a_room_keeps_its_newest_and_its_young_lines_and_numbers_on() {
    let Some(redis) = Redis::start() else { return };
    let cluster = Cluster::connect(
        &redis.url(),
        NodeName::parse("a").unwrap(),
        Settings::default(),
    )
    .await
    .unwrap();
    let room = RoomName::parse("#kept").unwrap();
    let ann = Nick::parse("ann").unwrap();
    // Ten old lines, with an enter between them (an event, not a line), then ten young.
    let old: Vec<LogLine> = (1..=10).map(|n| said(&format!("old {n}"), 1_000)).collect();
    cluster.append_all(&room, &old).await.unwrap();
    cluster.entered(&room, &ann, None, 100).await.unwrap();
    let young: Vec<LogLine> = (11..=20)
        .map(|n| said(&format!("young {n}"), 2_000_000))
        .collect();
    cluster.append_all(&room, &young).await.unwrap();

    // By age: everything said before 1,000,000 ms goes.
    assert_eq!(
        cluster.trim(&room, 1_000, 1_000_000).await.unwrap(),
        11,
        "ten lines and the event between"
    );
    let kept = texts(&cluster, &room).await;
    assert_eq!(kept.first(), Some(&(11, "young 11".to_owned())));
    assert_eq!(kept.len(), 10);
    assert_eq!(
        cluster.trim(&room, 1_000, 1_000_000).await.unwrap(),
        0,
        "twice is once"
    );

    // By count: the newest 4 stay.
    cluster.trim(&room, 4, 0).await.unwrap();
    let kept: Vec<u64> = texts(&cluster, &room)
        .await
        .iter()
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(kept, [17, 18, 19, 20]);

    // Numbering goes on after the trim.
    let next = cluster
        .append(&room, &said("after", 2_000_001))
        .await
        .unwrap();
    assert_eq!(next, LineId(21));
}
