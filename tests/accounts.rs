//! Accounts, the server's password, operators, bans, mutes and access limits, through the real
//! binary over real TCP, with its store in a temporary data directory. Several hosts are
//! played by binding clients to other loopback addresses (127.0.0.2, 127.0.0.3): Linux routes
//! all of 127.0.0.0/8 to `lo`.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::ffi::OsStr;
use std::net::{IpAddr, SocketAddr};

use common::{Client, serve_binary};

fn host(n: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, n])
}

/// Connects from `from`, reads the greeting and the lobby's history (its rule, and what it
/// replays), and returns the client with its guest nick.
async fn arrive(addr: SocketAddr, from: IpAddr) -> (Client, String) {
    let mut client = Client::connect_from(addr, from).await;
    let greeting = client.line().await;
    let nick = greeting
        .split_once("you are ")
        .and_then(|(_, rest)| rest.split_once(';'))
        .map(|(nick, _)| nick.to_owned())
        .unwrap_or_else(|| panic!("no greeting: {greeting:?}"));
    let rule = client.line().await;
    assert!(rule.starts_with("*** history of #lobby"), "{rule:?}");
    if !rule.contains("none yet") {
        client
            .rx
            .line_starting("*** end of history of #lobby")
            .await;
    }
    (client, nick)
}

async fn send(client: &mut Client, line: &str) {
    client.send(format!("{line}\n")).await;
}

/// Takes `nick` and registers it with `password`.
async fn register(client: &mut Client, old: &str, nick: &str, password: &str) {
    send(client, &format!("/nick {nick}")).await;
    client
        .expect(&format!("*** {old} is now known as {nick}"))
        .await;
    send(client, &format!("/register {password}")).await;
    client
        .expect(&format!(
            "*** {nick} is registered to you; next time: /login {nick} PASSWORD"
        ))
        .await;
}

fn args<'a>(dir: &'a std::path::Path, more: &'a [&'a str]) -> Vec<&'a OsStr> {
    let mut args: Vec<&OsStr> = vec![OsStr::new("--data-dir"), dir.as_os_str()];
    args.extend(more.iter().map(OsStr::new));
    args
}

#[tokio::test]
async fn a_registered_nick_is_kept_for_its_owner_across_cases_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    // Spaces and another script inside; the ends are trimmed as every argument is.
    let password = "correct horse 电池 staple";
    {
        let (_server, addr, _) = serve_binary(&args(dir.path(), &["--flood-rate", "0"]));
        let (mut alice, guest) = arrive(addr, host(1)).await;
        register(&mut alice, &guest, "Alice", password).await;
        send(&mut alice, "/register another-one").await;
        alice
            .expect("! Alice is registered already; /login Alice PASSWORD if it is yours")
            .await;

        let (mut bob, bob_guest) = arrive(addr, host(2)).await;
        alice
            .rx
            .line_starting(&format!("*** {bob_guest} joined"))
            .await;
        for taken in ["alice", "ALICE", "Alice"] {
            send(&mut bob, &format!("/nick {taken}")).await;
            bob.expect(&format!(
                "! {taken} is registered; /login {taken} PASSWORD if it is yours"
            ))
            .await;
        }
        send(&mut bob, &format!("/register {password}")).await;
        bob.expect("! guest nicks belong to the server; /nick NAME first, then /register")
            .await;
        send(&mut bob, "/nick bob").await;
        bob.expect(&format!("*** {bob_guest} is now known as bob"))
            .await;
        send(&mut bob, "/register short").await;
        bob.expect("! a password has 6 characters at least and 256 bytes at most")
            .await;
        send(&mut bob, "/login alice correct horse").await;
        bob.expect("! wrong nick or password").await;
    }
    // The account outlives the server; its owner logs in from a new connection, in any case.
    let (_server, addr, _) = serve_binary(&args(dir.path(), &[]));
    let (mut again, guest) = arrive(addr, host(1)).await;
    send(&mut again, "/nick alice").await;
    again
        .expect("! alice is registered; /login alice PASSWORD if it is yours")
        .await;
    send(&mut again, &format!("/login aLiCe  {password}  ")).await;
    again
        .expect(&format!("*** {guest} is now known as Alice"))
        .await;
    again.expect("*** you are logged in as Alice").await;
    send(&mut again, "hello as myself").await;
    again.expect("<Alice> hello as myself").await;
}

#[tokio::test]
async fn a_login_from_a_new_connection_takes_the_nick_from_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, addr, _) = serve_binary(&args(dir.path(), &[]));
    let (mut first, guest) = arrive(addr, host(1)).await;
    register(&mut first, &guest, "carol", "s3cret-enough").await;
    // Carol's client reconnects while the server still holds her old connection.
    let (mut second, guest) = arrive(addr, host(1)).await;
    first.rx.line_starting(&format!("*** {guest} joined")).await;
    send(&mut second, "/login carol s3cret-enough").await;
    first
        .expect("! your account logged in on another connection; closing this one")
        .await;
    first.read_to_eof().await;
    second
        .expect("*** carol left (logged in elsewhere); 1 online")
        .await;
    second
        .expect(&format!("*** {guest} is now known as carol"))
        .await;
    second.expect("*** you are logged in as carol").await;
}

#[tokio::test]
async fn a_thousand_logins_cost_five_hashes_and_the_server_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, addr, _) = serve_binary(&args(dir.path(), &["--flood-rate", "0"]));
    let (mut owner, guest) = arrive(addr, host(1)).await;
    register(&mut owner, &guest, "dave", "the-real-one").await;
    let (mut guesser, guesser_guest) = arrive(addr, host(2)).await;
    owner
        .rx
        .line_starting(&format!("*** {guesser_guest} joined"))
        .await;
    let guesses: String = (0..1000)
        .map(|n| format!("/login dave guess{n:04}\n"))
        .collect();
    guesser.send(guesses).await;
    for _ in 0..5 {
        guesser.expect("! wrong nick or password").await;
    }
    for _ in 5..1000 {
        let line = guesser.line().await;
        assert!(
            line.starts_with("! too many wrong passwords from your address; try again in "),
            "{line:?}"
        );
    }
    // The right password is refused too while the address waits: guessing stays five a
    // minute, whatever the guesser knows.
    send(&mut guesser, "/login dave the-real-one").await;
    let line = guesser.line().await;
    assert!(line.starts_with("! too many wrong passwords"), "{line:?}");
    // Another address is not held up, and the room never was.
    let (mut other, other_guest) = arrive(addr, host(3)).await;
    owner
        .rx
        .line_starting(&format!("*** {other_guest} joined"))
        .await;
    send(&mut other, "/login dave the-real-one").await;
    other
        .rx
        .line_starting("*** dave left (logged in elsewhere)")
        .await;
    other
        .rx
        .line_starting("*** you are logged in as dave")
        .await;
}

#[tokio::test]
async fn a_server_password_is_asked_first_and_a_wrong_one_closes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("password");
    std::fs::write(&file, "open sesame 芝麻开门\n").unwrap();
    let data = dir.path().join("data");
    let (_server, addr, _) = serve_binary(&[
        OsStr::new("--data-dir"),
        data.as_os_str(),
        OsStr::new("--password-file"),
        file.as_os_str(),
    ]);
    let asked = "*** this server needs a password: /pass PASSWORD";
    for (first, answer) in [
        (
            "hello",
            "! this server needs a password: send /pass PASSWORD first; closing",
        ),
        (
            "/nick eve",
            "! this server needs a password: send /pass PASSWORD first; closing",
        ),
        ("/pass open sesame", "! wrong password; closing"),
    ] {
        let mut client = Client::connect_from(addr, host(4)).await;
        client.expect(asked).await;
        send(&mut client, first).await;
        client.expect(answer).await;
        assert!(client.read_to_eof().await.is_empty(), "then the close");
    }
    let mut client = Client::connect_from(addr, host(5)).await;
    client.expect(asked).await;
    send(&mut client, "/pass open sesame 芝麻开门").await;
    let greeting = client.line().await;
    assert!(
        greeting.starts_with("*** 连接成功! you are guest-"),
        "{greeting:?}"
    );
    send(&mut client, "/pass open sesame 芝麻开门").await;
    client.rx.line_starting("*** history of #lobby").await;
    client.expect("! no password is needed now").await;
}

#[tokio::test]
async fn operators_kick_ban_and_mute_and_bans_outlive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let op_args = args(dir.path(), &["--op", "root", "--flood-rate", "0"]);
    let (server, addr, _) = serve_binary(&op_args);
    // An operator's nick is registered first from the server's own machine, not from afar.
    let (mut impostor, guest) = arrive(addr, host(7)).await;
    send(&mut impostor, "/nick root").await;
    impostor
        .expect(&format!("*** {guest} is now known as root"))
        .await;
    send(&mut impostor, "/register operator-pass").await;
    impostor
        .expect("! root is an operator's nick: register it from the server's own machine (127.0.0.1 or ::1)")
        .await;
    send(&mut impostor, "/kick root").await;
    impostor.expect("! only operators may do that").await;
    send(&mut impostor, "/quit").await;
    impostor.read_to_eof().await;
    let (mut root, guest) = arrive(addr, host(1)).await;
    register(&mut root, &guest, "root", "operator-pass").await;
    let (mut bob, bob_guest) = arrive(addr, host(2)).await;
    root.rx
        .line_starting(&format!("*** {bob_guest} joined"))
        .await;
    send(&mut bob, "/nick bob").await;
    bob.expect(&format!("*** {bob_guest} is now known as bob"))
        .await;
    root.expect(&format!("*** {bob_guest} is now known as bob"))
        .await;

    // Nobody else may.
    for command in [
        "/kick root",
        "/ban root",
        "/bans",
        "/mute root",
        "/unban 1.2.3.4",
    ] {
        send(&mut bob, command).await;
        bob.expect("! only operators may do that").await;
    }
    // Never the operator's own connection or address.
    for command in [
        "/kick root",
        "/ban root",
        "/ban 127.0.0.1",
        "/ban 127.0.0.0/8",
        "/mute root",
    ] {
        send(&mut root, command).await;
        root.expect("! that would hit your own connection; you would lock yourself out")
            .await;
    }
    send(&mut root, "/ban 300.1.1.1/8").await;
    root.expect("! 300.1.1.1/8 is not a nick, an address or a network (CIDR)")
        .await;

    // A mute refuses lines, with its end, and lifts.
    send(&mut root, "/mute bob 5").await;
    let muted = bob.line().await;
    assert!(muted.starts_with("! you are muted until "), "{muted:?}");
    root.rx.line_starting("*** bob is muted until ").await;
    send(&mut bob, "can anyone hear me").await;
    let refused = bob.line().await;
    assert!(
        refused.ends_with(": your lines are not sent"),
        "{refused:?}"
    );
    send(&mut root, "/unmute bob").await;
    root.expect("*** bob is no longer muted").await;
    send(&mut bob, "back").await;
    root.expect("<bob> back").await;

    // A kick: everyone reads why; the kicked one is told and closed.
    let (mut carol, carol_guest) = arrive(addr, host(3)).await;
    root.rx
        .line_starting(&format!("*** {carol_guest} joined"))
        .await;
    bob.rx
        .line_starting(&format!("*** {carol_guest} joined"))
        .await;
    send(&mut root, "/kick bob calm down").await;
    bob.expect("! you were kicked by root: calm down").await;
    bob.read_to_eof().await;
    root.expect("*** bob left (kicked by root: calm down); 2 online")
        .await;
    carol
        .expect("*** bob left (kicked by root: calm down); 2 online")
        .await;

    // A ban of a nick covers its address while it is online; both are kept.
    send(&mut carol, "/nick mallory").await;
    carol
        .expect(&format!("*** {carol_guest} is now known as mallory"))
        .await;
    root.rx
        .line_starting(&format!("*** {carol_guest} is now"))
        .await;
    send(&mut root, "/ban mallory 0 spam").await;
    carol
        .expect("! you were kicked by root: banned: spam")
        .await;
    carol.read_to_eof().await;
    root.expect("*** mallory left (kicked by root: banned: spam); 1 online")
        .await;
    root.expect("*** banned mallory and 127.0.0.3 until lifted; 1 disconnected")
        .await;
    send(&mut root, "/bans").await;
    root.expect("*** bans (2):").await;
    root.expect("***   mallory by root until lifted: spam")
        .await;
    root.expect("***   127.0.0.3 by root until lifted: spam")
        .await;
    drop(server);

    let (_server, addr, _) = serve_binary(&op_args);
    let mut banned = Client::connect_from(addr, host(3)).await;
    banned
        .expect("! 127.0.0.3 is banned from this server until an operator lifts it: spam")
        .await;
    assert!(banned.read_to_eof().await.is_empty());
    let (mut elsewhere, _) = arrive(addr, host(6)).await;
    send(&mut elsewhere, "/nick Mallory").await;
    elsewhere
        .expect("! mallory is banned from this server until an operator lifts it: spam")
        .await;
    let (mut root, root_guest) = arrive(addr, host(1)).await;
    elsewhere
        .rx
        .line_starting(&format!("*** {root_guest} joined"))
        .await;
    send(&mut root, "/login root operator-pass").await;
    root.rx.line_starting("*** you are logged in as root").await;
    send(&mut root, "/unban 127.0.0.3").await;
    root.expect("*** the ban on 127.0.0.3 is lifted").await;
    send(&mut root, "/unban 127.0.0.3").await;
    root.expect("! no ban on 127.0.0.3; /bans lists them").await;
    arrive(addr, host(3)).await;
}

#[tokio::test]
async fn addresses_are_capped_denied_and_allowed_as_the_flags_say() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, addr, _) = serve_binary(&args(
        dir.path(),
        &["--max-per-address", "2", "--deny", "127.0.0.9"],
    ));
    let first = arrive(addr, host(2)).await;
    let _second = arrive(addr, host(2)).await;
    let mut third = Client::connect_from(addr, host(2)).await;
    third
        .expect("! your address has 2 connections open, the most one may; close one first")
        .await;
    assert!(third.read_to_eof().await.is_empty());
    // 127.0.0.1 is exempt, and a closed connection frees its place.
    let _locals = [
        arrive(addr, host(1)).await,
        arrive(addr, host(1)).await,
        arrive(addr, host(1)).await,
    ];
    let (first, first_nick) = first;
    drop(first);
    let (mut second, _) = _second;
    second
        .rx
        .line_starting(&format!("*** {first_nick} left (closed)"))
        .await;
    // The place is given back when the connection's task ends, just after that line: poll.
    let mut retry = None;
    for _ in 0..200 {
        let mut client = Client::connect_from(addr, host(2)).await;
        let line = client.line().await;
        if line.starts_with("*** 连接成功!") {
            retry = Some(client);
            break;
        }
        assert!(line.starts_with("! your address has 2"), "{line:?}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(
        retry.is_some(),
        "the freed place was never given back (2 s)"
    );
    let mut denied = Client::connect_from(addr, host(9)).await;
    denied
        .expect("! this server does not take connections from your address")
        .await;

    let other = dir.path().join("other");
    let (_server, addr, _) = serve_binary(&args(
        &other,
        &["--allow", "127.0.0.0/30", "--new-per-minute", "3"],
    ));
    let mut outside = Client::connect_from(addr, host(5)).await;
    outside
        .expect("! this server does not take connections from your address")
        .await;
    for _ in 0..3 {
        drop(arrive(addr, host(2)).await);
    }
    let mut fourth = Client::connect_from(addr, host(2)).await;
    fourth
        .expect("! your address opens connections too fast (at most 3 a minute); wait")
        .await;
}
