//! Buffers driven through the transitions: where each kind of line goes, what counts as unread
//! or as a mention, the marker, opening and closing, and what is sent to keep the server
//! talking in the room on screen.

use bytes::Bytes;
use chrono::NaiveDateTime;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::*;
use crate::net::NetEvent;

fn start() -> Instant {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *START.get_or_init(Instant::now)
}

/// Connected and greeted as alice, with `/join #rust` answered.
fn in_rust() -> App {
    let mut app = App::new(
        Settings {
            target: "127.0.0.1:8888".into(),
            framing: Framing::Lines,
            nick: None,
            scrollback: 100,
            role: Role::Joined,
        },
        Clock::starting(start(), NaiveDateTime::MIN),
    );
    app.fit(80, 20);
    app.keep_transcript();
    app.on_net(tests::connected_from(50000), start());
    receive(
        &mut app,
        "*** 连接成功! you are alice; 2 online; /help lists the commands\n",
    );
    assert_eq!(typed(&mut app, "/join #rust"), [send("/join #rust")]);
    let effects = receive(
        &mut app,
        "#rust *** alice joined; 1 online\n#rust *** no topic set\n*** now talking in #rust\n",
    );
    // The client cannot know the join succeeded before the server says it talks there: it
    // makes sure (a `/switch` to where the server already is costs one line).
    assert_eq!(effects, [send("/switch #rust")]);
    assert_eq!(app.buffers.current().name, "#rust");
    app
}

fn receive(app: &mut App, text: &str) -> Vec<Effect> {
    app.on_net(
        NetEvent::Received(Bytes::copy_from_slice(text.as_bytes())),
        start(),
    )
}

fn press(app: &mut App, code: KeyCode, modifiers: KeyModifiers) -> Vec<Effect> {
    app.on_key(KeyEvent::new(code, modifiers), start())
}

fn alt(app: &mut App, c: char) -> Vec<Effect> {
    press(app, KeyCode::Char(c), KeyModifiers::ALT)
}

fn typed(app: &mut App, line: &str) -> Vec<Effect> {
    app.on_paste(line);
    press(app, KeyCode::Enter, KeyModifiers::NONE)
}

fn send(line: &str) -> Effect {
    Effect::Send(Outgoing::Line(line.into()))
}

/// The texts of buffer `index`'s lines.
fn lines_of(app: &mut App, index: usize) -> Vec<String> {
    app.buffers
        .lines_mut(index, &mut app.scrollback)
        .entries()
        .map(|e| e.text.to_string())
        .collect()
}

fn names(app: &App) -> Vec<&str> {
    app.buffers.iter().map(|b| b.name.as_str()).collect()
}

#[test]
fn each_line_goes_to_its_room_the_lobby_or_the_screen() {
    let mut app = in_rust();
    receive(
        &mut app,
        concat!(
            "#rust <bob> in rust\n",
            "<carol> in the lobby\n",
            "*** dave joined; 3 online\n",
            "! nick bob is already taken\n",
            "*** rooms: 2; page 1 of 1\n",
            "*** #rust: 2 online\n",
            "#go *** online (1): eve\n",
        ),
    );
    assert_eq!(
        lines_of(&mut app, 1),
        [
            "*** alice joined; 1 online",
            "*** no topic set",
            "<bob> in rust",
            "! nick bob is already taken",
            "*** rooms: 2; page 1 of 1",
            "*** #rust: 2 online",
            "#go *** online (1): eve",
        ],
        "the room's lines without their prefix; replies about no room (or a room without a \
         buffer) where the user looks; now talking is not shown"
    );
    receive(&mut app, "#Lobby <carol> the lobby by name\n");
    let lobby = lines_of(&mut app, 0);
    assert_eq!(
        lobby[lobby.len() - 3..],
        [
            "<carol> in the lobby",
            "*** dave joined; 3 online",
            "<carol> the lobby by name"
        ]
    );
    assert_eq!(app.online(), Some(1), "the room's own count");
    assert_eq!(app.buffers.get(0).unwrap().online, Some(3));
}

#[test]
fn a_line_split_between_reads_goes_whole_to_its_room() {
    let mut app = in_rust();
    alt(&mut app, '1');
    let lobby_before = lines_of(&mut app, 0).len();
    receive(&mut app, "#ru");
    receive(&mut app, "st <bob> split");
    assert_eq!(lines_of(&mut app, 0).len(), lobby_before, "held, not shown");
    receive(&mut app, " line\n<bob> lob");
    receive(&mut app, "by\n");
    assert_eq!(lines_of(&mut app, 1).last().unwrap(), "<bob> split line");
    assert_eq!(lines_of(&mut app, 0).last().unwrap(), "<bob> lobby");
    assert_eq!(lines_of(&mut app, 0).len(), lobby_before + 1);
}

#[test]
fn unread_and_mentions_count_while_away_and_clear_on_return() {
    let mut app = in_rust();
    alt(&mut app, '1');
    let effects = receive(
        &mut app,
        concat!(
            "#rust <bob> one\n",
            "#rust * bob waves at ALICE\n",
            "#rust *** carol joined; 3 online\n",
            "#rust <alice> my own\n",
            "#rust [2026-11-30 10:01:02Z #7] <bob> alice, replayed\n",
        ),
    );
    assert_eq!(effects, [Effect::Bell, Effect::Title { unread: 2 }]);
    let rust = app.buffers.get(1).unwrap();
    assert_eq!((rust.unread, rust.mentions), (2, 1));
    let kinds: Vec<Kind> = app
        .buffers
        .lines_mut(1, &mut app.scrollback)
        .entries()
        .map(|e| e.kind)
        .collect();
    assert!(kinds.contains(&Kind::Mention { prefix: 6 }), "{kinds:?}");
    assert_eq!(
        alt(&mut app, '2'),
        [send("/switch #rust"), Effect::Title { unread: 0 }]
    );
    let rust = app.buffers.current();
    assert_eq!((rust.unread, rust.mentions), (0, 0));
    // A mention in the buffer on screen rings, counts nothing.
    let effects = receive(&mut app, "#rust <bob> alice?\n");
    assert_eq!(effects, [Effect::Bell]);
    app.bell = Bell::Silent;
    assert_eq!(receive(&mut app, "#rust <bob> alice!!\n"), []);
}

#[test]
fn the_unread_marker_stands_before_the_first_line_that_came_while_away() {
    let mut app = in_rust();
    receive(&mut app, "#rust <bob> seen\n");
    alt(&mut app, '1');
    receive(&mut app, "#rust <bob> first new\n#rust <bob> second new\n");
    alt(&mut app, '2');
    let marker = app.buffers.current().marker.unwrap();
    assert_eq!(
        app.scrollback.get(marker).map(|e| &*e.text),
        Some("<bob> first new")
    );
    // Left and come back with nothing new: no marker (one per buffer, moved on leaving).
    alt(&mut app, '1');
    alt(&mut app, '2');
    let marker = app.buffers.current().marker.unwrap();
    assert!(app.scrollback.get(marker).is_none());
}

#[test]
fn switching_buffers_keeps_the_server_talking_where_the_user_looks() {
    let mut app = in_rust();
    assert_eq!(alt(&mut app, '1'), [send("/switch #lobby")]);
    assert_eq!(typed(&mut app, "hi lobby"), [send("hi lobby")]);
    assert_eq!(
        press(&mut app, KeyCode::Char('n'), KeyModifiers::CONTROL),
        [send("/switch #rust")]
    );
    assert_eq!(typed(&mut app, "/me waves"), [send("/me waves")]);
    assert_eq!(
        press(&mut app, KeyCode::Char('p'), KeyModifiers::CONTROL),
        [send("/switch #lobby")]
    );
    assert_eq!(
        press(&mut app, KeyCode::Left, KeyModifiers::ALT),
        [send("/switch #rust")],
        "previous from the first is the last"
    );
    assert_eq!(
        press(&mut app, KeyCode::Right, KeyModifiers::ALT),
        [send("/switch #lobby")],
        "next from the last is the first"
    );
    assert_eq!(alt(&mut app, '9'), [], "no ninth buffer");
    assert_eq!(app.buffers.current_index(), 0);
    // A join that may have failed: the next line typed in a room says where it goes first.
    assert_eq!(typed(&mut app, "/join #go"), [send("/join #go")]);
    assert_eq!(
        typed(&mut app, "still lobby"),
        [send("/switch #lobby"), send("still lobby")]
    );
    // Typed /switch goes to the buffer.
    assert_eq!(typed(&mut app, "/switch #RUST"), [send("/switch #rust")]);
    assert_eq!(app.buffers.current().name, "#rust");
}

#[test]
fn private_lines_open_a_buffer_and_typing_there_is_private() {
    let mut app = in_rust();
    let effects = receive(&mut app, "@bob <bob> psst\n");
    assert_eq!(effects, [Effect::Bell, Effect::Title { unread: 1 }]);
    assert_eq!(names(&app), ["#lobby", "#rust", "@bob"]);
    let bob = app.buffers.get(2).unwrap();
    assert_eq!(
        (bob.unread, bob.mentions),
        (1, 1),
        "a private line is a mention"
    );
    assert_eq!(app.buffers.current().name, "#rust", "not put on screen");
    alt(&mut app, '3');
    assert_eq!(lines_of(&mut app, 2), ["<bob> psst"]);
    assert_eq!(typed(&mut app, "hi bob"), [send("/msg bob hi bob")]);
    assert_eq!(typed(&mut app, "//etc"), [send("/msg bob /etc")]);
    assert_eq!(typed(&mut app, "/me waves"), []);
    assert!(lines_of(&mut app, 2).last().unwrap().contains("no /me"));
    assert_eq!(
        receive(&mut app, "@bob <alice> hi bob\n"),
        [],
        "our echo rings nothing"
    );
    // A rename renames the conversation.
    receive(&mut app, "*** bob is now known as robert\n");
    assert_eq!(names(&app), ["#lobby", "#rust", "@robert"]);
    // /part closes it without a word to the server about it; the lobby comes on screen.
    assert_eq!(typed(&mut app, "/part"), [send("/switch #lobby")]);
    assert_eq!(names(&app), ["#lobby", "#rust"]);
    assert_eq!(app.buffers.current().name, "#lobby");
}

#[test]
fn query_and_close_are_answered_by_the_client() {
    let mut app = in_rust();
    assert_eq!(typed(&mut app, "/query carol"), []);
    assert_eq!(app.buffers.current().name, "@carol");
    assert_eq!(typed(&mut app, "/query Alice"), []);
    assert!(
        lines_of(&mut app, 2)
            .last()
            .unwrap()
            .contains("that is you")
    );
    assert_eq!(typed(&mut app, "/query"), []);
    assert_eq!(typed(&mut app, "/close"), [send("/switch #lobby")]);
    assert_eq!(names(&app), ["#lobby", "#rust"]);
    assert_eq!(app.buffers.current().name, "#lobby");
    assert_eq!(typed(&mut app, "/close"), []);
    assert_eq!(names(&app), ["#lobby", "#rust"], "the lobby's stays");
    // Closing a room's buffer parts the room; the buffer goes when the server says so.
    alt(&mut app, '2');
    assert_eq!(typed(&mut app, "/close"), [send("/part #rust")]);
    assert_eq!(names(&app), ["#lobby", "#rust"]);
    let effects = receive(
        &mut app,
        "#rust *** alice left (part); 0 online\n*** now talking in #lobby\n",
    );
    assert_eq!(effects, [send("/switch #lobby")]);
    assert_eq!(names(&app), ["#lobby"]);
    assert!(
        lines_of(&mut app, 0)
            .last()
            .unwrap()
            .contains("#rust *** alice left (part)"),
        "the lobby says where we left"
    );
}

#[test]
fn msg_to_a_nick_opens_the_conversation_and_shows_it() {
    let mut app = in_rust();
    assert_eq!(typed(&mut app, "/msg bob hello"), [send("/msg bob hello")]);
    assert_eq!(app.buffers.current().name, "@bob");
    assert_eq!(
        typed(&mut app, "/msg #rust hi all"),
        [send("/msg #rust hi all")]
    );
    assert_eq!(app.buffers.current().name, "@bob");
}

#[test]
fn our_join_typed_shows_the_room_and_our_part_closes_it() {
    let mut app = in_rust();
    alt(&mut app, '1');
    typed(&mut app, "/join #go");
    receive(
        &mut app,
        "#go *** alice joined; 2 online\n#go *** the topic is: gophers\n*** now talking in #go\n",
    );
    assert_eq!(app.buffers.current().name, "#go");
    // Someone else's join opens nothing.
    receive(&mut app, "#c *** bob joined; 1 online\n");
    assert_eq!(names(&app), ["#lobby", "#rust", "#go"]);
    // /join of a room already open goes to it.
    assert_eq!(typed(&mut app, "/join #rust"), [send("/switch #rust")]);
    assert_eq!(app.buffers.current().name, "#rust");
    let effects = typed(&mut app, "/part");
    assert_eq!(effects, [send("/part")]);
    receive(
        &mut app,
        "#rust *** alice left (part); 0 online\n*** now talking in #go\n",
    );
    assert_eq!(names(&app), ["#lobby", "#go"]);
    assert_eq!(app.buffers.current().name, "#lobby");
}

#[test]
fn after_a_reconnect_rooms_are_joined_again_without_moving_the_screen() {
    let mut app = in_rust();
    receive(
        &mut app,
        "*** history of #lobby: none yet; the next line is #1\n",
    );
    typed(&mut app, "/join #go");
    receive(
        &mut app,
        "#go *** alice joined; 1 online\n#go *** no topic set\n*** now talking in #go\n",
    );
    alt(&mut app, '2'); // #rust on screen
    app.on_net(tests::reset(), start());
    let effects = app.on_net(tests::connected_from(50001), start());
    assert_eq!(effects, [], "nothing before the greeting");
    let effects = receive(
        &mut app,
        "*** 连接成功! you are alice; 1 online; /help lists the commands\n",
    );
    assert_eq!(
        effects,
        [
            send("/join #rust"),
            send("/join #go"),
            send("/switch #rust")
        ]
    );
    receive(
        &mut app,
        "#rust *** alice joined; 1 online\n#rust *** no topic set\n*** now talking in #rust\n\
         #go *** alice joined; 1 online\n#go *** no topic set\n*** now talking in #go\n\
         *** now talking in #rust\n",
    );
    assert_eq!(app.buffers.current().name, "#rust", "focus stays");
    assert_eq!(names(&app), ["#lobby", "#rust", "#go"]);
}

#[test]
fn a_gap_in_a_room_is_fetched_from_that_room() {
    let mut app = in_rust();
    receive(
        &mut app,
        "#rust *** history of #rust: none yet; the next line is #1\n",
    );
    receive(&mut app, "#rust <bob> one\n"); // #1 seen
    alt(&mut app, '1');
    app.on_net(tests::connected_from(50001), start());
    receive(
        &mut app,
        "*** 连接成功! you are alice; 1 online; /help lists the commands\n",
    );
    receive(
        &mut app,
        "#rust *** alice joined; 1 online\n#rust *** no topic set\n",
    );
    let effects = receive(
        &mut app,
        "#rust *** history of #rust: 1 lines; the next line is #100\n",
    );
    assert_eq!(
        effects,
        [send("/switch #rust"), send("/history since 1")],
        "asked of #rust, whatever the server talks in"
    );
}

#[test]
fn transcripts_file_lines_under_their_buffer() {
    let mut app = in_rust();
    app.take_transcript();
    receive(
        &mut app,
        "#rust <bob> r\n<bob> l\n@bob <bob> p\n#../../etc *** alice joined; 1 online\n",
    );
    let filed: Vec<(String, String)> = app
        .take_transcript()
        .into_iter()
        .map(|line| (line.room, line.text))
        .collect();
    assert_eq!(
        filed,
        [
            ("#rust".to_owned(), "<bob> r".to_owned()),
            ("#lobby".to_owned(), "<bob> l".to_owned()),
            ("@bob".to_owned(), "<bob> p".to_owned()),
            (
                "#../../etc".to_owned(),
                "*** alice joined; 1 online".to_owned()
            ),
        ]
    );
}

#[test]
fn switch_to_a_room_without_a_buffer_opens_it_once_the_server_agrees() {
    let mut app = in_rust();
    assert_eq!(
        typed(&mut app, "/switch #nowhere"),
        [send("/switch #nowhere")]
    );
    receive(
        &mut app,
        "! you are not in #nowhere; /join #nowhere first\n",
    );
    assert_eq!(names(&app), ["#lobby", "#rust"], "refused: nothing opens");
    assert_eq!(typed(&mut app, "/switch #quiet"), [send("/switch #quiet")]);
    receive(&mut app, "*** now talking in #quiet\n");
    assert_eq!(names(&app), ["#lobby", "#rust", "#quiet"]);
    assert_eq!(app.buffers.current().name, "#quiet");
}
