//! Rooms and private messages over real TCP (`tcpchat::server::run` on 127.0.0.1, clients as
//! `nc` would be): every command, the isolation rules (a room's lines reach its members only, a
//! private message its two parties only, a lobby-only client sees the v1 protocol exactly), each
//! limit as one clear line, and the hostile cases: bad room names, 10,000 joins, a private
//! message flood, a rename in twenty rooms, a client that parts its last room, a slow reader in
//! another room.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::time::Instant;

use common::{Client, NOT_BLOCKED, join, spawn_server};
use tcpchat::protocol::{Event, Scoped, ServerLine};
use tcpchat::server::{FloodLimit, Limits, Mode};
use tokio::io::AsyncWriteExt;

/// No flood limit: these tests send thousands of lines on purpose.
fn unlimited() -> Limits {
    Limits {
        flood: FloodLimit {
            burst: 1_000_000,
            per_second: 0.0,
        },
        ..Limits::default()
    }
}

/// Sends one line.
async fn send(client: &mut Client, line: &str) {
    client.send(format!("{line}\n")).await;
}

/// Asserts the next lines, in order.
async fn expect_all(client: &mut Client, lines: &[&str]) {
    for line in lines {
        client.expect(line).await;
    }
}

/// Asserts that nothing else was queued for `client`: a `/who` is answered next.
async fn nothing_more(client: &mut Client) {
    send(client, "/who").await;
    let answer = client.line().await;
    let who = Scoped::parse(&answer).map(|scoped| scoped.line);
    assert!(
        matches!(
            who,
            Some(ServerLine::Event(Event::Online { .. }) | ServerLine::Error(_))
        ),
        "something else was queued: {answer:?}"
    );
}

/// Names a fresh guest, reading the rename line everyone in `others` gets too.
async fn rename(client: &mut Client, old: &str, new: &str, others: &mut [&mut Client]) {
    send(client, &format!("/nick {new}")).await;
    let renamed = format!("*** {old} is now known as {new}");
    client.expect(&renamed).await;
    for other in others {
        other.expect(&renamed).await;
    }
}

#[tokio::test]
async fn an_nc_session_with_two_rooms_and_a_private_message() {
    let server = spawn_server(Mode::Chat, Limits::default()).await;
    let (mut alice, _) = join(server.addr).await;
    let (mut bob, _) = join(server.addr).await;
    alice.expect("*** guest-2 joined; 2 online").await;
    let (mut carol, _) = join(server.addr).await; // never leaves #lobby: a v1 client
    alice.expect("*** guest-3 joined; 3 online").await;
    bob.expect("*** guest-3 joined; 3 online").await;
    rename(&mut alice, "guest-1", "alice", &mut [&mut bob, &mut carol]).await;
    rename(&mut bob, "guest-2", "bob", &mut [&mut alice, &mut carol]).await;

    send(&mut alice, "/join #rust").await;
    expect_all(
        &mut alice,
        &[
            "#rust *** alice joined; 1 online",
            "#rust *** no topic set",
            "*** now talking in #rust",
        ],
    )
    .await;
    send(&mut bob, "/join #Rust").await;
    alice.expect("#rust *** bob joined; 2 online").await;
    expect_all(
        &mut bob,
        &[
            "#rust *** bob joined; 2 online",
            "#rust *** no topic set",
            "*** now talking in #rust",
        ],
    )
    .await;
    send(&mut alice, "/topic Rust questions").await;
    send(&mut alice, "hello rust").await;
    for member in [&mut alice, &mut bob] {
        expect_all(
            member,
            &[
                "#rust *** alice set the topic: Rust questions",
                "#rust <alice> hello rust",
            ],
        )
        .await;
    }
    // To a room without switching to it, and privately.
    send(&mut bob, "/msg #lobby hi lobby").await;
    for member in [&mut alice, &mut bob, &mut carol] {
        member.expect("<bob> hi lobby").await;
    }
    send(&mut alice, "/msg bob psst").await;
    alice.expect("@bob <alice> psst").await;
    bob.expect("@alice <alice> psst").await;

    send(&mut bob, "/rooms").await;
    expect_all(
        &mut bob,
        &[
            "*** rooms: 2; page 1 of 1",
            "*** #lobby: 3 online",
            "*** #rust: 2 online; topic: Rust questions",
        ],
    )
    .await;
    send(&mut bob, "/who #rust").await;
    bob.expect("#rust *** online (2): alice, bob").await;
    send(&mut bob, "/switch #lobby").await;
    send(&mut bob, "back in the lobby").await;
    bob.expect("*** now talking in #lobby").await;
    for member in [&mut alice, &mut bob, &mut carol] {
        member.expect("<bob> back in the lobby").await;
    }
    send(&mut alice, "/part #rust bye").await;
    for member in [&mut alice, &mut bob] {
        member
            .expect("#rust *** alice left (part: bye); 1 online")
            .await;
    }
    alice.expect("*** now talking in #lobby").await;

    // Carol never left the lobby: she saw the v1 protocol and nothing else.
    send(&mut carol, "/who").await;
    carol.expect("*** online (3): alice, bob, guest-3").await;
    nothing_more(&mut alice).await;
    nothing_more(&mut bob).await;
}

#[tokio::test]
async fn each_limit_is_one_clear_line_and_changes_nothing() {
    let limits = Limits {
        rooms_per_client: 3,
        max_rooms: 3,
        room_members: 2,
        ..unlimited()
    };
    let server = spawn_server(Mode::Chat, limits).await;
    let (mut a, _) = join(server.addr).await;
    let (mut b, _) = join(server.addr).await;
    let (mut c, _) = join(server.addr).await;
    send(&mut a, "/join #one\n/join #two\n/join #three").await;
    a.rx.line_starting("*** now talking in #two").await;
    a.expect("! you are in 3 rooms, the most one may be in; /part one first")
        .await;
    send(&mut b, "/join #one\n/join #three").await;
    b.rx.line_starting("*** now talking in #one").await;
    b.expect("! this server holds 3 rooms, its most; join one of them")
        .await;
    send(&mut c, "/join #one").await;
    c.rx.line_starting("! #one is full (2 members)").await;
    send(&mut c, "/join #two").await;
    c.rx.line_starting("*** now talking in #two").await;
    send(&mut c, "/rooms").await;
    expect_all(
        &mut c,
        &[
            "*** rooms: 3; page 1 of 1",
            "*** #lobby: 3 online",
            "*** #one: 2 online",
            "*** #two: 2 online",
        ],
    )
    .await;
    // Room in #one once someone parts it.
    send(&mut a, "/part #one").await;
    send(&mut c, "/join #one").await;
    c.rx.line_starting("*** now talking in #one").await;
}

#[tokio::test]
async fn hostile_room_names_get_a_clear_answer() {
    let server = spawn_server(Mode::Chat, unlimited()).await;
    let (mut a, _) = join(server.addr).await;
    let long = format!("/join #{}", "x".repeat(10 * 1024));
    for (line, answer) in [
        ("/join", "! usage: /join #ROOM"),
        ("/join rust", "! a room's name starts with #, as in #lobby"),
        ("/join #", "! a room needs a name after its #"),
        ("/join ##x", "! a room needs a name after its #"),
        (
            "/join #abcdefghijklmnopqrstuvwxyz1234567",
            "! room name too long: at most 32 characters after the #",
        ),
        (
            long.as_str(),
            "! line too long (limit 8192 bytes); skipped to its end",
        ),
        (
            "/join #a\u{200b}b",
            "! a room's name may not contain \\u{200b} (no spaces, control or invisible characters, < or >)",
        ),
        (
            "/join #a<b>",
            "! a room's name may not contain \\u{3c} (no spaces, control or invisible characters, < or >)",
        ),
        (
            "/who #nowhere",
            "! there is no room called #nowhere; /rooms lists them",
        ),
        (
            "/switch #nowhere",
            "! you are not in #nowhere; /join #nowhere first",
        ),
        (
            "/part #nowhere",
            "! you are not in #nowhere; /join #nowhere first",
        ),
        (
            "/msg #nowhere hi",
            "! you are not in #nowhere; /join #nowhere first",
        ),
        ("/rooms two", "! usage: /rooms [PAGE]"),
    ] {
        send(&mut a, line).await;
        a.expect(answer).await;
    }
    // Control and bidi characters never reach anyone: the line is sanitised before it is read,
    // so these name the plain room #ab.
    send(&mut a, "/join #a\x07b").await;
    a.rx.line_starting("*** now talking in #ab").await;
    send(&mut a, "/join #a\u{202e}b").await;
    a.expect("*** now talking in #ab").await;
    // `/` and `..` are ordinary characters in a name; nothing on the server is a path.
    send(&mut a, "/join #../../etc/passwd").await;
    a.expect("#../../etc/passwd *** guest-1 joined; 1 online")
        .await;
    a.rx.line_starting("*** now talking in #../../etc/passwd")
        .await;
    send(&mut a, "/rooms").await;
    expect_all(
        &mut a,
        &[
            "*** rooms: 3; page 1 of 1",
            "*** #../../etc/passwd: 1 online",
            "*** #ab: 1 online",
            "*** #lobby: 1 online",
        ],
    )
    .await;
}

/// Splits `client`: its lines are written from a task of their own while the test reads.
fn write_in_background(client: Client, lines: String) -> common::Reader {
    let Client { rx, mut tx } = client;
    tokio::spawn(async move {
        tx.write_all(lines.as_bytes()).await.expect("write");
        // Kept open until the reader is done with it: dropping it would send FIN.
        std::future::pending::<()>().await;
    });
    rx
}

#[tokio::test]
async fn joining_ten_thousand_rooms_is_refused_past_the_limit_and_the_server_goes_on() {
    const JOINS: usize = 10_000;
    let server = spawn_server(Mode::Chat, unlimited()).await;
    let (a, _) = join(server.addr).await;
    let joins: String = (0..JOINS).map(|n| format!("/join #r{n}\n")).collect();
    let mut rx = write_in_background(a, joins);
    let per_client = tcpchat::server::DEFAULT_ROOMS_PER_CLIENT;
    let (mut talking, mut refused) = (0, 0);
    while talking + refused < JOINS {
        let line = rx.line().await;
        if line.starts_with("*** now talking in #r") {
            talking += 1;
        } else if line
            == format!("! you are in {per_client} rooms, the most one may be in; /part one first")
        {
            refused += 1;
        } else {
            assert!(line.starts_with("#r"), "unexpected {line:?}");
        }
    }
    assert_eq!(talking, per_client - 1, "the lobby counts as one");
    assert_eq!(refused, JOINS - (per_client - 1));
    // Everyone else is served as before.
    let (mut b, _) = join(server.addr).await;
    send(&mut b, "/rooms").await;
    b.expect(&format!("*** rooms: {per_client}; page 1 of 1"))
        .await;
}

#[tokio::test]
async fn ten_thousand_rooms_are_listed_a_bounded_page_at_a_time() {
    const ROOMS: usize = 10_000;
    let limits = Limits {
        rooms_per_client: ROOMS,
        max_rooms: ROOMS,
        ..unlimited()
    };
    let server = spawn_server(Mode::Chat, limits).await;
    let (a, _) = join(server.addr).await;
    // With the lobby, that is every room the server may hold.
    let joins: String = (1..ROOMS).map(|n| format!("/join #r{n:05}\n")).collect();
    let mut rx = write_in_background(a, joins);
    let last = format!("*** now talking in #r{:05}", ROOMS - 1);
    // Three lines a join: joined, topic, now talking.
    let mut lines = 0;
    while rx.line().await != last {
        lines += 1;
        assert!(lines < 3 * ROOMS, "the last join never answered");
    }
    let (mut b, _) = join(server.addr).await;
    let pages = ROOMS / 50;
    for (page, first, last) in [
        ("", "#lobby", "#r00049"),
        (" 2", "#r00050", "#r00099"),
        (&format!(" {pages}") as &str, "#r09950", "#r09999"),
    ] {
        let asked = Instant::now();
        send(&mut b, &format!("/rooms{page}")).await;
        let header = b.line().await;
        assert!(
            header.starts_with(&format!("*** rooms: {ROOMS}; page ")),
            "{header:?}"
        );
        assert!(header.ends_with(&format!(" of {pages}")), "{header:?}");
        let listed: Vec<String> = {
            let mut listed = Vec::new();
            for _ in 0..50 {
                listed.push(b.line().await);
            }
            listed
        };
        assert!(
            listed[0].starts_with(&format!("*** {first}: ")),
            "{:?}",
            listed[0]
        );
        assert!(
            listed[49].starts_with(&format!("*** {last}: ")),
            "{:?}",
            listed[49]
        );
        assert!(
            asked.elapsed() < NOT_BLOCKED,
            "a page took {:?}",
            asked.elapsed()
        );
    }
    // Past the last page: the header alone, so a client knows where the list ends.
    send(&mut b, &format!("/rooms {}", pages + 1)).await;
    b.expect(&format!(
        "*** rooms: {ROOMS}; page {} of {pages}",
        pages + 1
    ))
    .await;
    nothing_more(&mut b).await;
    send(&mut b, "/join #one-more").await;
    b.expect(&format!(
        "! this server holds {ROOMS} rooms, its most; join one of them"
    ))
    .await;
}

#[tokio::test]
async fn private_messages_reach_their_two_parties_only_and_refuse_clearly() {
    let server = spawn_server(Mode::Chat, unlimited()).await;
    let (mut a, _) = join(server.addr).await;
    let (mut b, _) = join(server.addr).await;
    let (mut c, _) = join(server.addr).await;
    a.rx.line_starting("*** guest-3 joined").await;
    b.rx.line_starting("*** guest-3 joined").await;
    for (line, answer) in [
        (
            "/msg guest-1 me",
            "! that is you; a private message needs someone else",
        ),
        (
            "/msg GUEST-1 me",
            "! that is you; a private message needs someone else",
        ),
        ("/msg nobody hi", "! nobody called nobody is online"),
        ("/msg guest-2", "! usage: /msg #ROOM|NICK TEXT"),
        ("/msg guest-2    ", "! usage: /msg #ROOM|NICK TEXT"),
        ("/msg", "! usage: /msg #ROOM|NICK TEXT"),
    ] {
        send(&mut a, line).await;
        a.expect(answer).await;
    }
    // A flood of them arrives whole and in order, to the recipient and the echo only.
    const FLOOD: usize = 2_000;
    let flood: String = (0..FLOOD)
        .map(|n| format!("/msg guest-2 secret {n}\n"))
        .collect();
    a.send(flood).await;
    for n in 0..FLOOD {
        b.expect(&format!("@guest-1 <guest-1> secret {n}")).await;
        a.expect(&format!("@guest-2 <guest-1> secret {n}")).await;
    }
    nothing_more(&mut c).await;
    // To a nick that has left.
    send(&mut b, "/quit").await;
    a.rx.line_starting("*** guest-2 left (quit)").await;
    send(&mut a, "/msg guest-2 still there?").await;
    a.expect("! nobody called guest-2 is online").await;
}

#[tokio::test]
async fn a_rename_in_twenty_rooms_is_one_line_for_each_who_shares_one() {
    let server = spawn_server(Mode::Chat, unlimited()).await;
    let (mut a, _) = join(server.addr).await;
    let (mut b, _) = join(server.addr).await;
    let (mut d, _) = join(server.addr).await; // parts the lobby: shares nothing with a
    send(&mut d, "/part").await;
    d.rx.line_starting("! you are in no room").await;
    let joins: String = (1..=20).map(|n| format!("/join #r{n}\n")).collect();
    a.send(&joins).await;
    a.rx.line_starting("*** now talking in #r20").await;
    b.send(&joins).await;
    b.rx.line_starting("*** now talking in #r20").await;
    a.rx.line_starting("#r20 *** guest-2 joined").await;
    send(&mut a, "/nick alice").await;
    a.expect("*** guest-1 is now known as alice").await;
    b.expect("*** guest-1 is now known as alice").await;
    nothing_more(&mut b).await;
    nothing_more(&mut d).await;
    for n in [1, 7, 20] {
        send(&mut b, &format!("/who #r{n}")).await;
        b.expect(&format!("#r{n} *** online (2): alice, guest-2"))
            .await;
    }
    send(&mut a, "/msg #r7 as alice").await;
    a.expect("#r7 <alice> as alice").await;
    b.expect("#r7 <alice> as alice").await;
}

#[tokio::test]
async fn a_client_that_parts_its_last_room_is_told_and_can_come_back() {
    let server = spawn_server(Mode::Chat, unlimited()).await;
    let (mut a, _) = join(server.addr).await;
    let (mut b, _) = join(server.addr).await;
    a.rx.line_starting("*** guest-2 joined").await;
    send(&mut a, "/part #lobby gone quiet").await;
    a.expect("*** guest-1 left (part: gone quiet); 1 online")
        .await;
    a.expect("! you are in no room; /join #ROOM (#lobby is everyone's)")
        .await;
    b.expect("*** guest-1 left (part: gone quiet); 1 online")
        .await;
    for line in ["hello?", "/me waves", "/topic x", "/who", "/part"] {
        send(&mut a, line).await;
        a.expect("! you are in no room; /join #ROOM (#lobby is everyone's)")
            .await;
    }
    // Still online: a private message reaches it, and it can come back.
    send(&mut b, "/msg guest-1 where are you").await;
    b.expect("@guest-1 <guest-2> where are you").await;
    a.expect("@guest-2 <guest-2> where are you").await;
    send(&mut a, "/join #lobby").await;
    for member in [&mut a, &mut b] {
        member.expect("*** guest-1 joined; 2 online").await;
    }
    expect_all(&mut a, &["*** no topic set", "*** now talking in #lobby"]).await;
    send(&mut a, "back").await;
    b.expect("<guest-1> back").await;
}

#[tokio::test]
async fn topics_are_shown_set_bounded_and_listed() {
    let server = spawn_server(Mode::Chat, unlimited()).await;
    let (mut a, _) = join(server.addr).await;
    send(&mut a, "/join #t").await;
    a.rx.line_starting("*** now talking in #t").await;
    send(&mut a, "/topic").await;
    a.expect("#t *** no topic set").await;
    send(&mut a, &format!("/topic {}", "x".repeat(391))).await;
    a.expect("! topic too long (at most 390 characters)").await;
    send(&mut a, "/topic  release on Friday ").await;
    a.expect("#t *** guest-1 set the topic: release on Friday")
        .await;
    let (mut b, _) = join(server.addr).await;
    send(&mut b, "/join #T").await;
    expect_all(
        &mut b,
        &[
            "#t *** guest-2 joined; 2 online",
            "#t *** the topic is: release on Friday",
            "*** now talking in #t",
        ],
    )
    .await;
    send(&mut b, "/rooms").await;
    b.rx.line_starting("*** #t: 2 online; topic: release on Friday")
        .await;
}

#[tokio::test]
async fn a_slow_reader_in_one_room_does_not_slow_another() {
    let limits = Limits {
        outbox_bytes: 64 * 1024,
        ..unlimited()
    };
    let server = spawn_server(Mode::Chat, limits).await;
    let (mut a, _) = join(server.addr).await;
    let (mut b, _) = join(server.addr).await;
    // The slow one: in #slow only, with a small receive buffer, and it never reads again.
    let mut slow = Client::connect_small_rcvbuf(server.addr).await;
    slow.rx.line_starting("*** 连接成功!").await;
    send(&mut slow, "/join #slow\n/part #lobby").await;
    let (talker, _) = join(server.addr).await;
    let mut talker = talker;
    send(&mut talker, "/join #slow").await;
    talker.rx.line_starting("*** now talking in #slow").await;
    for member in [&mut a, &mut b] {
        send(member, "/join #fast").await;
        member.rx.line_starting("*** now talking in #fast").await;
    }
    a.rx.line_starting("#fast *** guest-2 joined").await;
    // The talker floods #slow (bounded: 64 MB at most) until the slow reader is dropped.
    let big = "y".repeat(1000);
    let flood: String = (0..64 * 1024).map(|n| format!("{n} {big}\n")).collect();
    let mut talker = write_in_background(talker, flood);
    let dropped = tokio::spawn(async move {
        // Its own lines come back to it until the slow one is gone.
        for _ in 0..=64 * 1024 {
            if talker.line().await == "#slow *** guest-3 left (too slow); 1 online" {
                return;
            }
        }
        panic!("the slow reader was never dropped");
    });
    // Meanwhile #fast goes on at its usual pace.
    for n in 0..20 {
        let sent = Instant::now();
        send(&mut a, &format!("fast {n}")).await;
        a.expect(&format!("#fast <guest-1> fast {n}")).await;
        b.expect(&format!("#fast <guest-1> fast {n}")).await;
        assert!(
            sent.elapsed() < NOT_BLOCKED,
            "#fast waited {:?}",
            sent.elapsed()
        );
    }
    tokio::time::timeout(NOT_BLOCKED * 4, dropped)
        .await
        .expect("the slow reader is dropped")
        .expect("the talker saw it go");
}
