//! The transitions, driven directly: no terminal, no socket, time handed in.

use std::time::Duration;

use bytes::Bytes;
use chrono::NaiveDateTime;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::*;
use crate::net::{Close, NetEvent};

/// The moment every test's session starts: one fixed instant, so deadlines compare exactly.
fn start() -> Instant {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *START.get_or_init(Instant::now)
}

fn app(framing: Framing) -> App {
    let mut app = App::new(
        Settings {
            target: "127.0.0.1:8888".into(),
            framing,
            nick: Some("alice".into()),
            scrollback: 100,
            role: Role::Joined,
        },
        Clock::starting(start(), NaiveDateTime::MIN),
    );
    app.fit(80, 22);
    app
}

/// Connected from local port `port` to 127.0.0.1:8888.
pub(super) fn connected_from(port: u16) -> NetEvent {
    NetEvent::Connected {
        info: None,
        local: ([127, 0, 0, 1], port).into(),
        peer: ([127, 0, 0, 1], 8888).into(),
        handshake: Duration::from_micros(80),
    }
}

/// The connection reset under the client.
pub(super) fn reset() -> NetEvent {
    NetEvent::Closed {
        how: Close::Reset,
        info: None,
        time_wait: None,
    }
}

fn connected(framing: Framing) -> App {
    let mut app = app(framing);
    let effects = app.on_net(connected_from(50000), start());
    // The nick is asked for once the server greets (a server with a password takes nothing
    // but `/pass` first).
    assert!(effects.is_empty(), "nothing is sent before the greeting");
    app
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn ctrl(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
}

fn press(app: &mut App, key: KeyEvent) -> Vec<Effect> {
    app.on_key(key, start())
}

fn receive(app: &mut App, text: &str) {
    app.on_net(
        NetEvent::Received(Bytes::copy_from_slice(text.as_bytes())),
        start(),
    );
}

fn texts(app: &App) -> Vec<String> {
    app.scrollback
        .entries()
        .map(|e| e.text.to_string())
        .collect()
}

fn type_line(app: &mut App, text: &str) -> Vec<Effect> {
    app.on_paste(text);
    press(app, key(KeyCode::Enter))
}

#[test]
fn enter_sends_the_line_and_clears_the_box() {
    let mut app = connected(Framing::Lines);
    assert_eq!(
        type_line(&mut app, "你好"),
        [Effect::Send(Outgoing::Line("你好".into()))]
    );
    assert!(app.input.is_empty());
}

#[test]
fn a_message_may_start_with_a_question_mark() {
    let mut app = connected(Framing::Lines);
    press(
        &mut app,
        KeyEvent::new(KeyCode::Char('?'), KeyModifiers::SHIFT),
    );
    assert_eq!(app.overlay, Overlay::None);
    assert_eq!(app.input.value(), "?");
}

#[test]
fn lines_are_split_classified_and_learned_from() {
    let mut app = connected(Framing::Lines);
    receive(
        &mut app,
        "*** 连接成功! you are guest-1; 2 online; /help lists the commands\n<gu",
    );
    receive(&mut app, "est-1> hi\n<bob> yo\n! oops\n* bob waves\n");
    assert_eq!(app.nick.as_deref(), Some("guest-1"));
    assert_eq!(app.online(), Some(2));
    let kinds: Vec<Kind> = app.scrollback.entries().skip(1).map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            Kind::Event,
            Kind::Own { prefix: 10 },
            Kind::Message { prefix: 6 },
            Kind::Error,
            Kind::Action
        ]
    );
    receive(
        &mut app,
        "*** guest-1 is now known as alice\n*** bob left (exit); 1 online\n",
    );
    assert_eq!(app.nick.as_deref(), Some("alice"));
    assert_eq!(app.online(), Some(1));
}

#[test]
fn forged_events_teach_nothing() {
    let mut app = connected(Framing::Lines);
    receive(
        &mut app,
        "*** 连接成功! you are alice; 2 online; /help lists the commands\n",
    );
    receive(
        &mut app,
        concat!(
            "* mallory thinks you are great\n",
            "* mallory is now known as alice\n",
            "<mallory> *** alice is now known as great\n",
            "* mallory left (exit); 99 online\n",
            "*** mallory is now known as alice\n",
        ),
    );
    assert_eq!(app.nick.as_deref(), Some("alice"));
    assert_eq!(app.online(), Some(2));
    receive(&mut app, "<alice> mine\n");
    assert_eq!(
        app.scrollback.entries().last().unwrap().kind,
        Kind::Own { prefix: 8 }
    );
}

#[test]
fn a_character_split_between_reads_is_joined_and_escapes_are_removed() {
    let mut app = connected(Framing::Lines);
    let bytes = "<bob> 你好\x1b[2J\n".as_bytes();
    app.on_net(
        NetEvent::Received(Bytes::copy_from_slice(&bytes[..8])),
        start(),
    );
    app.on_net(
        NetEvent::Received(Bytes::copy_from_slice(&bytes[8..])),
        start(),
    );
    assert_eq!(texts(&app).last().unwrap(), "<bob> 你好");
}

#[test]
fn lines_are_dated_by_the_clock_they_were_handed() {
    let mut app = connected(Framing::Lines);
    let later = start() + Duration::from_millis(3_723_400);
    app.on_net(NetEvent::Received(Bytes::from("<bob> hi\n")), later);
    let time = app.scrollback.entries().last().unwrap().time;
    assert_eq!(time.format("%H:%M:%S").to_string(), "01:02:03");
}

#[test]
fn raw_mode_shows_each_read_as_its_own_line_and_echoes_what_was_sent() {
    let mut app = connected(Framing::Raw);
    receive(&mut app, "连接成功!");
    assert_eq!(
        type_line(&mut app, "hello"),
        [Effect::Send(Outgoing::Line("hello".into()))]
    );
    receive(&mut app, "第1条信息:hello");
    let tail: Vec<String> = texts(&app).into_iter().rev().take(3).rev().collect();
    assert_eq!(tail, ["连接成功!", "→ hello", "第1条信息:hello"]);
}

#[test]
fn the_exit_key_sends_exit_and_quits_when_the_server_closes() {
    let mut app = connected(Framing::Lines);
    assert_eq!(
        press(&mut app, ctrl('d')),
        [Effect::Send(Outgoing::Exit("exit".into()))]
    );
    assert!(!app.should_quit());
    app.on_net(
        NetEvent::FinSent {
            before: None,
            info: None,
        },
        start(),
    );
    receive(&mut app, "*** bye, alice; closing the connection\n");
    app.on_net(
        NetEvent::Closed {
            how: Close::PeerFin,
            info: None,
            time_wait: None,
        },
        start(),
    );
    assert!(app.should_quit());
    assert!(
        texts(&app)
            .iter()
            .any(|t| t.contains("closed by the server (FIN)"))
    );
}

#[test]
fn with_the_inspector_open_the_closed_session_stays_until_a_key() {
    let mut app = connected(Framing::Lines);
    press(&mut app, key(KeyCode::F(2)));
    press(&mut app, ctrl('d'));
    app.on_net(
        NetEvent::Closed {
            how: Close::PeerFin,
            info: None,
            time_wait: None,
        },
        start(),
    );
    assert!(!app.should_quit());
    assert!(app.exit_finished());
    assert_eq!(app.next_deadline(), None, "no timer left running");
    let page = app.inspector.page;
    press(&mut app, key(KeyCode::F(5)));
    assert_ne!(app.inspector.page, page, "the inspector's pages still turn");
    assert!(!app.should_quit());
    press(&mut app, key(KeyCode::Char('q')));
    assert!(app.should_quit());
}

#[test]
fn the_exit_key_gives_up_waiting_after_two_seconds() {
    let mut app = connected(Framing::Lines);
    press(&mut app, ctrl('d'));
    let deadline = app.next_deadline().unwrap();
    assert_eq!(deadline, start() + EXIT_WAIT);
    app.on_deadline(deadline - Duration::from_millis(1));
    assert!(!app.should_quit());
    app.on_deadline(deadline);
    assert!(app.should_quit());
}

#[test]
fn ctrl_d_with_text_deletes_instead_of_exiting() {
    let mut app = connected(Framing::Lines);
    app.on_paste("ab");
    press(&mut app, key(KeyCode::Home));
    assert!(press(&mut app, ctrl('d')).is_empty());
    assert_eq!(app.input.value(), "b");
}

#[test]
fn typed_exit_and_quit_start_the_exit() {
    let mut app = connected(Framing::Lines);
    assert_eq!(
        type_line(&mut app, "exit"),
        [Effect::Send(Outgoing::Exit("exit".into()))]
    );
    let mut app = connected(Framing::Lines);
    assert_eq!(
        type_line(&mut app, "/quit bye all"),
        [Effect::Send(Outgoing::Exit("/quit bye all".into()))]
    );
    let mut raw = connected(Framing::Raw);
    assert_eq!(
        type_line(&mut raw, "/quit"),
        [Effect::Send(Outgoing::Exit("exit".into()))]
    );
    let mut app = connected(Framing::Lines);
    assert_eq!(
        type_line(&mut app, "exit now"),
        [Effect::Send(Outgoing::Line("exit now".into()))],
        "only the whole line exit ends the session"
    );
}

#[test]
fn a_multi_line_paste_waits_for_enter() {
    let mut app = connected(Framing::Lines);
    app.on_paste("one\r\ntwo\n");
    assert_eq!(
        app.overlay,
        Overlay::Paste(vec!["one".into(), "two".into()])
    );
    assert_eq!(
        press(&mut app, key(KeyCode::Enter)),
        [
            Effect::Send(Outgoing::Line("one".into())),
            Effect::Send(Outgoing::Line("two".into()))
        ]
    );
    app.on_paste("three\nfour");
    press(&mut app, key(KeyCode::Esc));
    assert_eq!(app.overlay, Overlay::None);
    assert!(app.input.is_empty());
}

#[test]
fn lines_typed_while_disconnected_are_not_lost_silently() {
    let mut app = app(Framing::Lines);
    assert!(type_line(&mut app, "hello?").is_empty());
    assert!(texts(&app).last().unwrap().contains("not sent: hello?"));
}

#[test]
fn reconnect_counts_down() {
    let mut app = connected(Framing::Lines);
    app.on_net(reset(), start());
    app.on_net(
        NetEvent::Reconnecting {
            delay: Duration::from_secs(2),
        },
        start(),
    );
    let Conn::Reconnecting { at, secs: 2 } = app.conn else {
        panic!("{:?}", app.conn)
    };
    let tick = app.next_deadline().unwrap();
    assert_eq!(tick, at - Duration::from_secs(1));
    app.on_deadline(tick);
    assert!(matches!(app.conn, Conn::Reconnecting { secs: 1, .. }));
}

#[test]
fn scrolled_up_view_counts_new_lines_and_end_returns() {
    let mut app = connected(Framing::Lines);
    for n in 0..100 {
        receive(&mut app, &format!("<bob> {n}\n"));
    }
    press(&mut app, key(KeyCode::PageUp));
    assert_eq!(
        app.scrollback.offset(),
        21,
        "a page is the view less one row"
    );
    receive(&mut app, "<bob> new\n");
    assert_eq!(app.scrollback.unread(), 1);
    press(&mut app, key(KeyCode::End));
    assert_eq!(app.scrollback.offset(), 0);
}

#[test]
fn the_help_opens_from_f1_and_its_fallback_and_any_key_closes_it() {
    let mut app = connected(Framing::Lines);
    for opener in [
        key(KeyCode::F(1)),
        KeyEvent::new(KeyCode::Char('h'), KeyModifiers::ALT),
    ] {
        press(&mut app, opener);
        assert_eq!(app.overlay, Overlay::Help(0));
        press(&mut app, key(KeyCode::Char('x')));
        assert_eq!(app.overlay, Overlay::None);
        assert!(app.input.is_empty(), "the closing key types nothing");
    }
}

#[test]
fn replayed_lines_are_shown_without_their_stamp_at_the_time_they_were_said() {
    let mut app = connected(Framing::Lines);
    receive(
        &mut app,
        concat!(
            "*** 连接成功! you are alice; 1 online; /help lists the commands\n",
            "*** history of #lobby: 2 lines; the next line is #8\n",
            "[2026-11-30 10:01:02Z #6] <bob> earlier\n",
            "[2026-11-30 10:01:09Z #7] * bob waved\n",
            "*** end of history of #lobby\n",
        ),
    );
    let shown: Vec<(String, Kind)> = app
        .scrollback
        .entries()
        .skip(2)
        .map(|e| (e.text.to_string(), e.kind))
        .collect();
    assert_eq!(
        shown,
        [
            ("── history: 2 earlier lines ──".to_owned(), Kind::Rule),
            ("<bob> earlier".to_owned(), Kind::Replayed),
            ("* bob waved".to_owned(), Kind::Replayed),
            ("── end of history ──".to_owned(), Kind::Rule),
        ]
    );
    let said = chrono::DateTime::from_timestamp(1_796_032_862, 0)
        .unwrap()
        .with_timezone(&chrono::Local)
        .time();
    assert_eq!(app.scrollback.entries().nth(3).unwrap().time, said);
}

#[test]
fn the_nick_waits_for_the_greeting_and_a_confirmed_login_is_given_again() {
    let mut app = connected(Framing::Lines);
    let greet = |app: &mut App| {
        app.on_net(
            NetEvent::Received(Bytes::from_static(
                "*** 连接成功! you are guest-1; 1 online; /help lists the commands\n".as_bytes(),
            )),
            start(),
        )
    };
    assert_eq!(
        greet(&mut app),
        [Effect::Send(Outgoing::Line("/nick alice".into()))]
    );
    receive(
        &mut app,
        "! alice is registered; /login alice PASSWORD if it is yours\n",
    );
    assert_eq!(app.input.value(), "/login alice ", "readied to log in");
    let sent = type_line(&mut app, "pw pw pw");
    assert_eq!(
        sent,
        [Effect::Send(Outgoing::Line("/login alice pw pw pw".into()))]
    );
    receive(&mut app, "*** you are logged in as alice\n");

    // Reconnected: the server asks for its password, which was never given: the box is
    // readied; once given, it is given again by itself next time, and so is the login.
    app.on_net(reset(), start());
    let effects = app.on_net(connected_from(50001), start());
    assert!(effects.is_empty(), "nothing before the server speaks");
    receive(
        &mut app,
        "*** this server needs a password: /pass PASSWORD\n",
    );
    assert_eq!(app.input.value(), "/pass ");
    type_line(&mut app, "sesame!");
    assert!(
        texts(&app).iter().all(|line| !line.contains("sesame")),
        "{:?}",
        texts(&app)
    );
    assert_eq!(
        greet(&mut app),
        [Effect::Send(Outgoing::Line("/login alice pw pw pw".into()))]
    );
    app.on_net(reset(), start());
    app.on_net(connected_from(50002), start());
    let effects = app.on_net(
        NetEvent::Received(Bytes::from_static(
            b"*** this server needs a password: /pass PASSWORD\n",
        )),
        start(),
    );
    assert_eq!(
        effects,
        [Effect::Send(Outgoing::Line("/pass sesame!".into()))]
    );
}

#[test]
fn tab_completes_nicks_most_recent_first_commands_and_rooms_and_sends_nothing() {
    let mut app = connected(Framing::Lines);
    receive(
        &mut app,
        "*** 连接成功! you are alice; 4 online; /help lists the commands\n\
         <bob> hi\n<carol> hello\n<bobby> hey\n* alice waves\n",
    );
    let tab = |app: &mut App| {
        let effects = press(app, key(KeyCode::Tab));
        assert!(effects.is_empty(), "completing sends nothing");
        app.input.value().to_owned()
    };
    app.on_paste("b");
    assert_eq!(tab(&mut app), "bobby: ", "the most recently active first");
    assert_eq!(tab(&mut app), "bob: ", "Tab again: the next");
    assert_eq!(tab(&mut app), "bobby: ", "and round");
    app.on_paste("and C");
    assert_eq!(
        tab(&mut app),
        "bobby: and carol ",
        "any case; not at the start: a space"
    );
    press(&mut app, ctrl('u'));
    app.on_paste("A");
    assert_eq!(tab(&mut app), "A", "never our own nick");
    press(&mut app, ctrl('u'));
    app.on_paste("/jo");
    assert_eq!(tab(&mut app), "/join ");
    app.on_paste("#lo");
    assert_eq!(tab(&mut app), "/join #lobby ");
    press(&mut app, ctrl('u'));
    app.on_paste("/qu");
    assert_eq!(tab(&mut app), "/query ", "the client's own commands too");
    assert_eq!(tab(&mut app), "/quit ");
}

#[test]
fn tab_knows_the_nicks_of_history_renames_and_who() {
    let mut app = connected(Framing::Lines);
    receive(
        &mut app,
        "*** 连接成功! you are alice; 3 online; /help lists the commands\n\
         [2026-11-30 10:01:02Z #1] <dave> said yesterday\n\
         *** guest-2 joined; 3 online\n\
         *** guest-2 is now known as friend\n\
         *** online (3): alice, friend, zed\n",
    );
    let tab = |app: &mut App, typed: &str| {
        press(app, ctrl('u'));
        app.on_paste(typed);
        press(app, key(KeyCode::Tab));
        app.input.value().to_owned()
    };
    assert_eq!(tab(&mut app, "fr"), "friend: ", "a rename keeps its place");
    assert_eq!(tab(&mut app, "gu"), "gu", "the old nick is gone");
    assert_eq!(tab(&mut app, "da"), "dave: ", "a replayed speaker");
    assert_eq!(tab(&mut app, "z"), "zed: ", "someone /who names");
}

#[test]
fn a_lesson_card_takes_its_keys_and_lets_the_others_through() {
    use crate::lesson::{LessonEvent, Request};
    let mut app = app(Framing::Lines);
    type_line(&mut app, "/lesson");
    assert!(
        texts(&app).iter().any(|t| t.contains("/lesson 10")),
        "listed"
    );
    assert!(app.lesson.is_none());
    type_line(&mut app, "/lesson 11");
    assert!(texts(&app).iter().any(|t| t.contains("no lesson 11")));
    assert_eq!(
        type_line(&mut app, "/lesson 3"),
        vec![Effect::Lesson(Request::Start { lesson: 2, run: 1 })],
        "a lesson can be opened unconnected: it needs no server"
    );
    assert!(
        press(&mut app, key(KeyCode::Enter)).is_empty(),
        "no step before a prediction"
    );
    press(&mut app, key(KeyCode::Char('9')));
    assert_eq!(
        app.lesson.as_ref().unwrap().prediction,
        None,
        "no ninth choice"
    );
    press(&mut app, key(KeyCode::Char('2')));
    press(&mut app, key(KeyCode::Char('x')));
    assert!(app.input.is_empty(), "nothing is typed under the card");
    assert_eq!(
        press(&mut app, key(KeyCode::Enter)),
        vec![Effect::Lesson(Request::Step(0))]
    );
    app.on_lesson(LessonEvent::Done {
        run: 1,
        step: 0,
        facts: Vec::new(),
        outcome: None,
    });
    assert_eq!(
        press(&mut app, key(KeyCode::Enter)),
        vec![Effect::Lesson(Request::Step(1))]
    );
    // The key table still works: F2 opens the inspector beside the card.
    assert_eq!(
        press(&mut app, key(KeyCode::F(2))),
        vec![Effect::Inspect(true)]
    );
    press(&mut app, key(KeyCode::Esc));
    assert!(app.lesson.is_none(), "Esc closes the card");
    press(&mut app, key(KeyCode::Char('x')));
    assert_eq!(app.input.value(), "x", "and typing is back");
}
