//! The inspector fed event by event, as the network task would.

use bytes::Bytes;

use super::*;
use crate::net::Close;
use crate::tcp_table::TimeWait;
use crate::tcpinfo;

fn texts(inspector: &Inspector) -> Vec<String> {
    inspector.timeline().map(|e| e.text.clone()).collect()
}

fn handshake_info() -> TcpInfo {
    TcpInfo {
        state: Some(tcpinfo::ESTABLISHED),
        segs_out: Some(2),
        segs_in: Some(1),
        bytes_acked: Some(1),
        ..TcpInfo::default()
    }
}

fn connect(inspector: &mut Inspector, at: Instant) {
    let addr = "127.0.0.1:8888".parse().unwrap();
    inspector.on_net(&NetEvent::Connecting { addr }, at);
    let connected = NetEvent::Connected {
        local: "127.0.0.1:50000".parse().unwrap(),
        peer: addr,
        handshake: Duration::from_micros(80),
        info: Some(handshake_info()),
    };
    inspector.on_net(&connected, at + Duration::from_micros(80));
}

#[test]
fn the_handshake_is_observed_from_the_counters() {
    let mut inspector = Inspector::default();
    connect(&mut inspector, Instant::now());
    let knowledge: Vec<_> = inspector
        .handshake
        .iter()
        .map(|a| (a.label, a.knowledge))
        .collect();
    assert_eq!(
        knowledge,
        [
            ("SYN", Knowledge::Observed),
            ("SYN-ACK", Knowledge::Observed),
            ("ACK", Knowledge::Observed)
        ]
    );
    assert_eq!(
        inspector.handshake[0].evidence,
        "segs_out 0→2, bytes_acked 0→1"
    );
    assert_eq!(inspector.handshake[1].evidence, "segs_in 0→1");
    assert!(texts(&inspector)[2].contains("local port 50000"));
}

#[test]
fn closing_first_leaves_us_in_time_wait() {
    let mut inspector = Inspector::default();
    let at = Instant::now();
    connect(&mut inspector, at);
    inspector.on_net(
        &NetEvent::Sent {
            bytes: 5,
            exit: true,
        },
        at,
    );
    let fin_wait = TcpInfo {
        state: Some(tcpinfo::FIN_WAIT2),
        ..TcpInfo::default()
    };
    inspector.on_net(
        &NetEvent::FinSent {
            before: Some(tcpinfo::ESTABLISHED),
            info: Some(fin_wait),
        },
        at,
    );
    let time_wait = TcpInfo {
        state: Some(tcpinfo::TIME_WAIT),
        ..TcpInfo::default()
    };
    let closed = NetEvent::Closed {
        how: Close::PeerFin,
        info: Some(time_wait),
        time_wait: None,
    };
    inspector.on_net(&closed, at);
    let ladder: Vec<_> = inspector
        .close
        .iter()
        .map(|a| (a.label, a.direction))
        .collect();
    assert_eq!(
        ladder,
        [
            ("FIN", Direction::Out),
            ("ACK", Direction::In),
            ("FIN", Direction::In),
            ("ACK", Direction::Out)
        ]
    );
    assert_eq!(inspector.close[3].knowledge, Knowledge::Observed);
    assert!(texts(&inspector).iter().any(|t| t == "send(5 B): exit"));
    assert!(texts(&inspector).last().unwrap().contains("TIME-WAIT"));
}

#[test]
fn the_server_closing_first_is_told_apart_and_a_reset_is_not_a_fin() {
    let mut inspector = Inspector::default();
    let at = Instant::now();
    connect(&mut inspector, at);
    let close_wait = TcpInfo {
        state: Some(tcpinfo::CLOSE_WAIT),
        ..TcpInfo::default()
    };
    let closed = NetEvent::Closed {
        how: Close::PeerFin,
        info: Some(close_wait),
        time_wait: None,
    };
    inspector.on_net(&closed, at);
    assert_eq!(inspector.closer, Some(Closer::Server));
    assert_eq!(
        inspector.close[0].evidence,
        "recv() returned 0; state CLOSE-WAIT"
    );
    assert_eq!(inspector.close.len(), 4);

    connect(&mut inspector, at);
    let reset = NetEvent::Closed {
        how: Close::Reset,
        info: None,
        time_wait: None,
    };
    inspector.on_net(&reset, at);
    assert_eq!(inspector.close[0].label, "RST");
    assert!(texts(&inspector).iter().any(|t| t.contains("ECONNRESET")));
}

#[test]
fn our_exit_after_the_servers_fin_is_not_called_first() {
    // The echo server closes on `exit` at once; its FIN can beat our shutdown(WR).
    let mut inspector = Inspector::default();
    let at = Instant::now();
    connect(&mut inspector, at);
    let last_ack = TcpInfo {
        state: Some(tcpinfo::LAST_ACK),
        ..TcpInfo::default()
    };
    inspector.on_net(
        &NetEvent::FinSent {
            before: Some(tcpinfo::ESTABLISHED),
            info: Some(last_ack),
        },
        at,
    );
    let closed = NetEvent::Closed {
        how: Close::PeerFin,
        info: None,
        time_wait: None,
    };
    inspector.on_net(&closed, at);
    assert_eq!(inspector.closer, Some(Closer::Server));
    let ladder: Vec<_> = inspector
        .close
        .iter()
        .map(|a| (a.label, a.direction))
        .collect();
    assert_eq!(
        ladder,
        [
            ("FIN", Direction::In),
            ("ACK", Direction::Out),
            ("FIN", Direction::Out),
            ("ACK", Direction::In)
        ]
    );
    assert!(
        texts(&inspector)
            .last()
            .unwrap()
            .contains("the server is left in TIME-WAIT")
    );
}

#[test]
fn a_failed_reconnect_keeps_the_last_sessions_ladders() {
    let mut inspector = Inspector::default();
    let at = Instant::now();
    connect(&mut inspector, at);
    let closed = NetEvent::Closed {
        how: Close::Reset,
        info: None,
        time_wait: None,
    };
    inspector.on_net(&closed, at);
    let addr = "127.0.0.1:8888".parse().unwrap();
    inspector.on_net(&NetEvent::Connecting { addr }, at);
    inspector.on_net(&NetEvent::ConnectFailed("refused".into()), at);
    assert!(
        texts(&inspector)
            .last()
            .unwrap()
            .ends_with("(RST ←, inferred)")
    );
    assert_eq!(inspector.handshake.len(), 3);
    assert_eq!(inspector.close[0].label, "RST");
}

#[test]
fn reads_keep_their_real_boundaries_and_are_bounded() {
    let mut inspector = Inspector::default();
    let at = Instant::now();
    for n in 0..(READS_KEPT + 3) {
        let bytes = Bytes::from(vec![b'x'; n + 1]);
        inspector.on_net(&NetEvent::Received(bytes), at);
    }
    assert_eq!(inspector.reads().len(), READS_KEPT);
    let last = inspector.reads().next_back().unwrap();
    assert_eq!(
        (last.number, last.len),
        (READS_KEPT as u64 + 3, READS_KEPT + 3)
    );
    let big = Bytes::from(vec![0u8; 3000]);
    inspector.on_net(&NetEvent::Received(big), at);
    let last = inspector.reads().next_back().unwrap();
    assert_eq!((last.len, last.bytes.len()), (3000, READ_BYTES_KEPT));
}

#[test]
fn the_timeline_is_bounded_and_timed_from_the_first_event() {
    let mut inspector = Inspector::default();
    let at = Instant::now();
    for n in 0..(TIMELINE_LEN + 10) {
        let sent = NetEvent::Sent {
            bytes: n,
            exit: false,
        };
        inspector.on_net(&sent, at + Duration::from_millis(n as u64));
    }
    assert_eq!(inspector.timeline().len(), TIMELINE_LEN);
    let last = inspector.timeline().next_back().unwrap();
    assert_eq!(last.at, Duration::from_millis(TIMELINE_LEN as u64 + 9));
}

/// A session closed with `exit`: the states around our `shutdown(WR)`, then the FIN read with
/// the state then and the kernel's TIME-WAIT table.
fn exit_close(before: u8, after: u8, time_wait: Option<TimeWait>) -> Inspector {
    let mut inspector = Inspector::default();
    let at = Instant::now();
    connect(&mut inspector, at);
    let state = |state| TcpInfo {
        state: Some(state),
        ..TcpInfo::default()
    };
    let fin_sent = NetEvent::FinSent {
        before: Some(before),
        info: Some(state(after)),
    };
    inspector.on_net(&fin_sent, at);
    let closed = NetEvent::Closed {
        how: Close::PeerFin,
        info: Some(state(tcpinfo::CLOSED)),
        time_wait,
    };
    inspector.on_net(&closed, at);
    inspector
}

#[test]
fn closed_right_after_our_shutdown_is_not_read_as_ours_first() {
    // The race a busy machine loses: their FIN is in before our shutdown(WR), and by the time
    // it returns LAST-ACK is over too. CLOSED alone would read as "ours first".
    let inspector = exit_close(tcpinfo::CLOSE_WAIT, tcpinfo::CLOSED, None);
    assert_eq!(inspector.closer, Some(Closer::Server));
    assert_eq!(
        inspector.close[0].evidence,
        "state CLOSE-WAIT before our shutdown(WR): theirs was in"
    );
    assert!(
        texts(&inspector)
            .last()
            .unwrap()
            .contains("the server is left in TIME-WAIT")
    );
}

#[test]
fn when_the_states_cannot_tell_the_kernels_time_wait_table_does() {
    let ours = TimeWait {
        ours: true,
        theirs: false,
    };
    let theirs = TimeWait {
        ours: false,
        theirs: true,
    };
    let both = TimeWait {
        ours: true,
        theirs: true,
    };
    let established = tcpinfo::ESTABLISHED;
    for (table, closer) in [
        (Some(ours), Closer::Us),
        (Some(theirs), Closer::Server),
        (Some(both), Closer::Both),
        (None, Closer::Unknown),
    ] {
        let inspector = exit_close(established, tcpinfo::CLOSED, table);
        assert_eq!(inspector.closer, Some(closer), "{table:?}");
    }
    // Until the end is read, nothing is claimed.
    let mut inspector = Inspector::default();
    connect(&mut inspector, Instant::now());
    let fin_sent = NetEvent::FinSent {
        before: Some(established),
        info: None,
    };
    inspector.on_net(&fin_sent, Instant::now());
    assert_eq!(inspector.closer, None);
    assert_eq!(inspector.close.len(), 1);
}

#[test]
fn the_ack_of_a_fin_is_inferred_unless_a_state_shows_it_alone() {
    // FIN-WAIT-1 after our shutdown: their ACK may yet ride on their FIN.
    let ours = TimeWait {
        ours: true,
        theirs: false,
    };
    let inspector = exit_close(tcpinfo::ESTABLISHED, tcpinfo::FIN_WAIT1, Some(ours));
    let arrows: Vec<_> = inspector
        .close
        .iter()
        .map(|a| (a.label, a.direction, a.knowledge))
        .collect();
    assert_eq!(
        arrows,
        [
            ("FIN", Direction::Out, Knowledge::Observed),
            ("ACK", Direction::In, Knowledge::Inferred),
            ("FIN", Direction::In, Knowledge::Observed),
            ("ACK", Direction::Out, Knowledge::Observed),
        ]
    );
    assert_eq!(
        inspector.close[1].evidence,
        "may ride on their next segment"
    );
    // Theirs first: ours acks theirs late, usually riding on our FIN.
    let inspector = exit_close(tcpinfo::CLOSE_WAIT, tcpinfo::LAST_ACK, None);
    assert_eq!(inspector.close[1].knowledge, Knowledge::Inferred);
    assert_eq!(
        inspector.close[1].evidence,
        "Linux delays it: may ride on our FIN"
    );
}

#[test]
fn a_timeline_scrolled_back_stays_on_what_it_shows() {
    let mut inspector = Inspector::default();
    let at = Instant::now();
    let sent = |n| NetEvent::Sent {
        bytes: n,
        exit: false,
    };
    for n in 0..20 {
        inspector.on_net(&sent(n), at);
    }
    inspector.scroll_timeline(5);
    inspector.on_net(&sent(99), at);
    assert_eq!(
        inspector.timeline_scrolled_back(),
        6,
        "the new entry is below"
    );
    inspector.scroll_timeline(-100);
    assert_eq!(inspector.timeline_scrolled_back(), 0, "following again");
    inspector.scroll_timeline(1000);
    assert_eq!(
        inspector.timeline_scrolled_back(),
        20,
        "never past the first"
    );
}

#[test]
fn reads_count_from_one_on_each_connection() {
    let mut inspector = Inspector::default();
    let at = Instant::now();
    let read = NetEvent::Received(Bytes::from_static(b"hi"));
    connect(&mut inspector, at);
    inspector.on_net(&read, at);
    inspector.on_net(&read, at);
    connect(&mut inspector, at);
    inspector.on_net(&read, at);
    let numbers: Vec<_> = inspector.reads().map(|r| (r.session, r.number)).collect();
    assert_eq!(numbers, [(1, 1), (1, 2), (2, 1)]);
}
