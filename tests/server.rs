//! End-to-end tests of `tcpchat::server::run` over real loopback TCP: the chat room, its limits
//! and shutdown, and the article's echo and ack servers. Every server binds 127.0.0.1:0.

// In a test a failed expectation is meant to panic: that is the test failing.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Client, DEADLINE, Reader, Server, join, spawn_server};
use tcpchat::server::{FloodLimit, Limits, Mode};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::time::timeout;

/// The flood limit off, so one client can fill another's buffers as fast as it can write.
const NO_FLOOD_LIMIT: FloodLimit = FloodLimit {
    burst: 1_000_000,
    per_second: 0.0,
};

async fn chat() -> Server {
    spawn_server(Mode::Chat, Limits::default()).await
}

/// Two joined clients, `guest-1` and `guest-2`, with the join already read by the first.
async fn pair(server: &Server) -> (Client, Client) {
    let (mut a, _) = join(server.addr).await;
    let (b, _) = join(server.addr).await;
    a.expect("*** guest-2 joined; 2 online").await;
    (a, b)
}

// ---------------------------------------------------------------- chat mode

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn greeting_names_the_guest_and_a_join_is_announced() {
    let server = chat().await;
    let mut a = Client::connect(server.addr).await;
    let greeting = a.line().await;
    assert!(greeting.starts_with("*** "), "{greeting:?}");
    assert!(greeting.contains("连接成功"), "{greeting:?}");
    assert!(greeting.contains("you are guest-1"), "{greeting:?}");
    assert!(greeting.contains("1 online"), "{greeting:?}");

    let mut b = Client::connect(server.addr).await;
    let greeting = b.line().await;
    assert!(greeting.starts_with("*** "), "{greeting:?}");
    assert!(greeting.contains("you are guest-2"), "{greeting:?}");
    assert!(greeting.contains("2 online"), "{greeting:?}");
    a.expect("*** guest-2 joined; 2 online").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_reaches_everyone_including_the_sender_unchanged() {
    let server = chat().await;
    let (mut a, mut b) = pair(&server).await;
    a.send("你好, world 😀 👨‍👩‍👧\n").await;
    a.expect("<guest-1> 你好, world 😀 👨‍👩‍👧").await;
    b.expect("<guest-1> 你好, world 😀 👨‍👩‍👧").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_line_of_one_write_gets_its_own_prefix() {
    let server = chat().await;
    let (mut a, mut b) = pair(&server).await;
    a.send("/nick alice\n").await;
    a.expect("*** guest-1 is now known as alice").await;
    b.expect("*** guest-1 is now known as alice").await;
    a.send("hi\n<bob> x\n").await;
    b.expect("<alice> hi").await;
    b.expect("<alice> <bob> x").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crlf_line_endings_are_accepted() {
    let server = chat().await;
    let (mut a, mut b) = pair(&server).await;
    a.send("hello\r\nagain\r\n").await;
    assert_eq!(b.rx.line_bytes().await, b"<guest-1> hello\n");
    assert_eq!(b.rx.line_bytes().await, b"<guest-1> again\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nick_rename_is_announced_to_everyone() {
    let server = chat().await;
    let (mut a, mut b) = pair(&server).await;
    b.send("/nick 小明\n").await;
    a.expect("*** guest-2 is now known as 小明").await;
    b.expect("*** guest-2 is now known as 小明").await;
    b.send("hi\n").await;
    a.expect("<小明> hi").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nick_taken_ignoring_case_is_refused() {
    let server = chat().await;
    let (mut a, mut b) = pair(&server).await;
    a.send("/nick Alice\n").await;
    b.expect("*** guest-1 is now known as Alice").await;
    b.send("/nick aLICE\n").await;
    b.expect("! nick aLICE is already taken").await;
    // Nobody was renamed: b still speaks as guest-2, and a heard nothing in between.
    b.send("still me\n").await;
    b.expect("<guest-2> still me").await;
    a.expect("*** guest-1 is now known as Alice").await;
    a.expect("<guest-2> still me").await;
}

/// Nicks that look the same are the same nick: `é` composed or as `e` + U+0301, and the
/// full-width forms of ASCII letters (found by an independent chaos run: `/who` showed `é, é`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn look_alike_nicks_are_one_nick() {
    let server = chat().await;
    let (mut a, mut b) = pair(&server).await;
    a.send("/nick caf\u{e9}\n").await;
    b.expect("*** guest-1 is now known as caf\u{e9}").await;
    b.send("/nick cafe\u{301}\n/nick ＣＡＦ\u{c9}\n/nick who\u{301}\n/who\n")
        .await;
    b.expect("! nick caf\u{e9} is already taken").await;
    b.expect("! nick ＣＡＦ\u{c9} is already taken").await;
    // A nick is stored composed, so every client sees one form of it.
    b.expect("*** guest-2 is now known as wh\u{f3}").await;
    b.expect("*** online (2): caf\u{e9}, wh\u{f3}").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_nicks_are_refused_and_the_connection_stays() {
    let server = chat().await;
    let (mut a, mut b) = pair(&server).await;
    b.send("/nick a b\n").await;
    let refused = b.line().await;
    assert!(
        refused.starts_with("! nick may not contain ") && refused.contains("u{20}"),
        "{refused:?}"
    );
    b.send(format!("/nick {}\n", "x".repeat(25))).await;
    b.expect("! nick too long: at most 24 characters").await;
    b.send("/nick zero\u{200b}width\n").await;
    let refused = b.line().await;
    assert!(
        refused.starts_with("! nick may not contain ") && refused.contains("u{200b}"),
        "{refused:?}"
    );
    b.send("/nick <bob>\n").await;
    let refused = b.line().await;
    assert!(
        refused.starts_with("! nick may not contain "),
        "{refused:?}"
    );
    // 24 characters is fine.
    b.send(format!("/nick {}\n", "y".repeat(24))).await;
    let renamed = format!("*** guest-2 is now known as {}", "y".repeat(24));
    b.expect(&renamed).await;
    // The connection is still open, and the others saw none of the refusals.
    b.send("still here\n").await;
    let said = format!("<{}> still here", "y".repeat(24));
    b.expect(&said).await;
    a.expect(&renamed).await;
    a.expect(&said).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_lists_everyone_online() {
    let server = chat().await;
    let (mut a, mut b) = pair(&server).await;
    b.send("/nick Zed\n").await;
    b.expect("*** guest-2 is now known as Zed").await;
    a.send("/nick alice\n").await;
    a.expect("*** guest-2 is now known as Zed").await;
    a.expect("*** guest-1 is now known as alice").await;
    b.expect("*** guest-1 is now known as alice").await;
    b.send("/who\n").await;
    b.expect("*** online (2): alice, Zed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_is_an_action_event_for_everyone() {
    let server = chat().await;
    let (mut a, mut b) = pair(&server).await;
    a.send("/me waves\n").await;
    a.expect("* guest-1 waves").await;
    b.expect("* guest-1 waves").await;
}

/// What a user can send that looks like an event, and what every client must receive instead:
/// the user's own `/me` or message, which the protocol reader takes for exactly that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_a_user_sends_reads_as_an_event() {
    use tcpchat::protocol::ServerLine;

    let server = chat().await;
    let (mut a, mut b) = pair(&server).await;
    let forgeries = [
        "/me is now known as alice",
        "/me 连接成功! you are great; 99 online; /help lists the commands",
        "*** guest-1 is now known as alice",
        "** server shutting down",
        "/me left (exit); 0 online",
        "/quit x); 99 online",
    ];
    for forged in forgeries {
        b.send(&format!("{forged}\n")).await;
    }
    let mut received = Vec::new();
    while received.len() < forgeries.len() {
        let line = a.line().await;
        if let Some(ServerLine::Event(_)) = ServerLine::parse(&line) {
            // Only the real leave at the end may be an event, and it must count right.
            assert_eq!(line, "*** guest-2 left (quit: x); 99 online); 1 online");
        }
        received.push(line);
    }
    assert!(received[5].starts_with("*** guest-2 left"), "{received:?}");
    assert_eq!(
        received[..5],
        [
            "* guest-2 is now known as alice",
            "* guest-2 连接成功! you are great; 99 online; /help lists the commands",
            "<guest-2> *** guest-1 is now known as alice",
            "<guest-2> ** server shutting down",
            "* guest-2 left (exit); 0 online",
        ]
    );
    for line in &received[..5] {
        assert!(
            matches!(
                ServerLine::parse(line),
                Some(
                    ServerLine::Action {
                        nick: "guest-2",
                        ..
                    } | ServerLine::Message {
                        nick: "guest-2",
                        ..
                    }
                )
            ),
            "{line:?}"
        );
    }
    // Nicks that would start like an event or a room are refused.
    a.send("/nick ***\n/nick #lobby\n").await;
    a.expect("! nick may not start with * (kept for events, rooms and private messages)")
        .await;
    a.expect("! nick may not start with # (kept for events, rooms and private messages)")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_lists_the_commands_as_events_to_the_asker_only() {
    let server = chat().await;
    let (mut a, mut b) = pair(&server).await;
    a.send("/help\nafter\n").await;
    let mut help = Vec::new();
    for _ in 0..50 {
        let line = a.line().await;
        if line == "<guest-1> after" {
            break;
        }
        help.push(line);
    }
    assert!(help.len() >= 5, "{help:?}");
    assert!(help.iter().all(|l| l.starts_with("*** ")), "{help:?}");
    for command in ["/nick", "/who", "/me", "/quit", "/help"] {
        assert!(
            help.iter().any(|l| l.contains(command)),
            "{command} in {help:?}"
        );
    }
    b.expect("<guest-1> after").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_command_is_an_error_to_the_sender_only() {
    let server = chat().await;
    let (mut a, mut b) = pair(&server).await;
    a.send("/foo bar\nok\n").await;
    a.expect("! unknown command /foo; /help lists the commands")
        .await;
    a.expect("<guest-1> ok").await;
    b.expect("<guest-1> ok").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn double_slash_sends_a_line_starting_with_slash() {
    let server = chat().await;
    let (mut a, mut b) = pair(&server).await;
    a.send("//x\n").await;
    a.expect("<guest-1> /x").await;
    b.expect("<guest-1> /x").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_sends_goodbye_then_fin() {
    let server = chat().await;
    let (mut a, mut b) = pair(&server).await;
    b.send("exit\n").await;
    b.expect("*** bye, guest-2; closing the connection").await;
    assert_eq!(String::from_utf8_lossy(&b.read_to_eof().await), "");
    a.expect("*** guest-2 left (exit); 1 online").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quit_with_a_reason_says_goodbye_and_announces_the_reason() {
    let server = chat().await;
    let (mut a, mut b) = pair(&server).await;
    b.send("/quit gone home\n").await;
    b.expect("*** bye, guest-2; closing the connection").await;
    assert_eq!(String::from_utf8_lossy(&b.read_to_eof().await), "");
    a.expect("*** guest-2 left (quit: gone home); 1 online")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_left_unfinished_past_the_line_timeout_closes_the_connection() {
    let limits = Limits {
        line_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let server = spawn_server(Mode::Chat, limits).await;
    let (mut a, mut b) = pair(&server).await;
    // Whole lines sent slowly are fine: the timeout is per begun line.
    b.send("one\n").await;
    b.expect("<guest-2> one").await;
    let started = Instant::now();
    b.send("never finish").await;
    b.expect("! line not finished within 0.3 s; closing").await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(String::from_utf8_lossy(&b.read_to_eof().await), "");
    a.expect("<guest-2> one").await;
    a.expect("*** guest-2 left (timed out); 1 online").await;
}

/// The deadline runs from the line's first byte, and more bytes do not move it. Before, the
/// unfinished line was noticed only when an idle timer fired, so it had up to two timeouts
/// (an independent chaos run measured 55-60 s for a 30 s timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_line_timeout_runs_from_the_first_byte_of_the_line() {
    const TIMEOUT: Duration = Duration::from_secs(2);
    let limits = Limits {
        line_timeout: TIMEOUT,
        ..Limits::default()
    };
    let server = spawn_server(Mode::Chat, limits).await;
    let (_a, mut b) = pair(&server).await;
    let started = Instant::now();
    b.send("never").await;
    tokio::time::sleep(TIMEOUT / 2).await;
    b.send(" finished").await;
    b.expect("! line not finished within 2 s; closing").await;
    let took = started.elapsed();
    // At least the timeout; well under two of them (the old behaviour), with a second to
    // spare for a busy machine.
    assert!(took >= TIMEOUT, "{took:?}");
    assert!(took < TIMEOUT + Duration::from_secs(1), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_without_exit_is_announced_as_closed() {
    let server = chat().await;
    let (mut a, b) = pair(&server).await;
    drop(b); // FIN: b has read everything it was sent (its greeting)
    a.expect("*** guest-2 left (closed); 1 online").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_is_announced_as_reset() {
    let server = chat().await;
    let (mut a, b) = pair(&server).await;
    b.reset();
    a.expect("*** guest-2 left (reset); 1 online").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_never_reach_other_clients() {
    let server = chat().await;
    let (mut a, mut b) = pair(&server).await;
    a.send("\x1b[2J\x1b]0;title\x07A\x07B\x7fC\u{9b}1mD\u{202e}E\u{2066}F\n")
        .await;
    assert_eq!(b.rx.line_bytes().await, b"<guest-1> ABCDEF\n");
    assert_eq!(a.rx.line_bytes().await, b"<guest-1> ABCDEF\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_utf8_passes_byte_identical() {
    let server = chat().await;
    let (mut a, mut b) = pair(&server).await;
    let text = "你好 👨‍👩‍👧 é\tok";
    a.send(format!("{text}\n")).await;
    assert_eq!(
        b.rx.line_bytes().await,
        format!("<guest-1> {text}\n").into_bytes()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_becomes_replacement_characters_with_one_notice() {
    let server = chat().await;
    let (mut a, mut b) = pair(&server).await;
    a.send(b"a\xffb\n").await;
    b.expect("<guest-1> a\u{FFFD}b").await;
    let notice = a.line().await;
    assert!(
        notice.starts_with("! ") && notice.contains("UTF-8"),
        "{notice:?}"
    );
    a.expect("<guest-1> a\u{FFFD}b").await;
    // Told once: a second bad line is relayed without another notice; the connection stays.
    a.send(b"\xc0x\nok\n").await;
    a.expect("<guest-1> \u{FFFD}x").await;
    a.expect("<guest-1> ok").await;
    b.expect("<guest-1> \u{FFFD}x").await;
    b.expect("<guest-1> ok").await;
}

fn max_line_16() -> Limits {
    Limits {
        max_line: 16,
        ..Limits::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_line_is_inclusive_and_a_longer_line_is_refused_not_fatal() {
    let server = spawn_server(Mode::Chat, max_line_16()).await;
    let (mut a, mut b) = pair(&server).await;
    let sixteen = "0123456789abcdef";
    a.send(format!("{sixteen}\n{sixteen}X\nnext\n")).await;
    a.expect(&format!("<guest-1> {sixteen}")).await;
    a.expect("! line too long (limit 16 bytes); skipped to its end")
        .await;
    a.expect("<guest-1> next").await;
    // The other client gets the 16-byte line and the next one, nothing of the 17-byte one.
    b.expect(&format!("<guest-1> {sixteen}")).await;
    b.expect("<guest-1> next").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_line_counts_bytes_of_a_multibyte_character() {
    let server = spawn_server(Mode::Chat, max_line_16()).await;
    let (mut a, mut b) = pair(&server).await;
    // 13 + 3 = 16 bytes fits; 14 + 3 = 17 bytes straddles the limit.
    let fits = format!("{}你", "a".repeat(13));
    let straddles = format!("{}你", "b".repeat(14));
    a.send(format!("{fits}\n{straddles}\nnext\n")).await;
    a.expect(&format!("<guest-1> {fits}")).await;
    a.expect("! line too long (limit 16 bytes); skipped to its end")
        .await;
    a.expect("<guest-1> next").await;
    b.expect(&format!("<guest-1> {fits}")).await;
    b.expect("<guest-1> next").await;
}

/// What `read_numbered` saw: how many numbered lines, the longest wait between two lines, and
/// how often the extra line it was told to expect came.
struct Numbered {
    rx: Reader,
    count: u64,
    longest_gap: Duration,
    notices: usize,
}

/// Reads `<guest-1> NNNNNN ...` lines, checking they come in order, until `<guest-1> END`.
/// `notice` is the one other line allowed among them.
async fn read_numbered(mut rx: Reader, notice: Option<&'static str>) -> Numbered {
    let (mut count, mut longest_gap, mut notices) = (0u64, Duration::ZERO, 0);
    let mut last = Instant::now();
    loop {
        let line = rx.line().await;
        let now = Instant::now();
        longest_gap = longest_gap.max(now - last);
        last = now;
        if line == "<guest-1> END" {
            return Numbered {
                rx,
                count,
                longest_gap,
                notices,
            };
        }
        if Some(line.as_str()) == notice {
            notices += 1;
            continue;
        }
        let want = format!("<guest-1> {count:06} ");
        assert!(
            line.starts_with(&want),
            "want {want:?}, got {:?}",
            line.chars().take(80).collect::<String>()
        );
        count += 1;
    }
}

/// Writes on a write half whose read half is busy in another task.
async fn write(tx: &mut OwnedWriteHalf, bytes: impl AsRef<[u8]>) {
    timeout(DEADLINE, tx.write_all(bytes.as_ref()))
        .await
        .expect("write blocked: the server stopped reading this client")
        .expect("write failed");
}

/// Line `i` of a numbered stream: 4 KiB with its newline.
fn numbered_line(i: u64) -> String {
    format!("{i:06} {}\n", "x".repeat(4088))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_reader_is_dropped_alone_and_told_why() {
    const C_DROPPED: &str = "*** guest-3 left (too slow); 2 online";
    let deadline = Instant::now() + Duration::from_secs(30);
    let limits = Limits {
        outbox_lines: 64,
        flood: NO_FLOOD_LIMIT,
        ..Limits::default()
    };
    let server = spawn_server(Mode::Chat, limits).await;
    let (mut a, mut b) = pair(&server).await;
    // c never reads (until the end); a small receive buffer makes its buffers fill after a few
    // MiB whatever the kernel's autotuning limits are.
    let mut c = Client::connect_small_rcvbuf(server.addr).await;
    a.expect("*** guest-3 joined; 3 online").await;
    b.expect("*** guest-3 joined; 3 online").await;

    let b_reads = tokio::spawn(read_numbered(b.rx, Some(C_DROPPED)));
    // a chats: it sends a 4 KiB line and reads it back before the next (so a, unlike c, keeps
    // up), until it hears that c was dropped; at most 64 MiB.
    let (mut sent, mut a_heard_it) = (0u64, false);
    while !a_heard_it {
        assert!(
            sent < 16 * 1024 && Instant::now() < deadline,
            "c was never dropped ({sent} lines sent)"
        );
        a.send(numbered_line(sent)).await;
        let mut echo = a.line().await;
        if echo == C_DROPPED {
            a_heard_it = true;
            echo = a.line().await;
        }
        assert!(echo.starts_with(&format!("<guest-1> {sent:06} ")));
        sent += 1;
    }
    a.send("END\n").await;
    a.expect("<guest-1> END").await;

    // c reads at last: what its buffers held (its greeting, then a's lines in order, the last
    // perhaps cut short), then the notice, then a clean EOF.
    let everything = c.read_to_eof().await;
    let text = String::from_utf8_lossy(&everything);
    let mut lines = text.lines();
    assert!(lines.next().is_some_and(|l| l.contains("you are guest-3")));
    assert_eq!(
        lines.next_back(),
        Some("! you were dropped: too slow (your send queue was full)")
    );
    assert!(text.ends_with('\n'));
    let full = "<guest-1> ".len() + numbered_line(0).len() - 1;
    let got: Vec<&str> = lines.filter(|l| l.len() == full).collect();
    assert!(
        !got.is_empty() && (got.len() as u64) < sent,
        "{} of {sent}",
        got.len()
    );
    for (i, line) in got.iter().enumerate() {
        assert!(
            line.starts_with(&format!("<guest-1> {i:06} ")),
            "c's line {i}"
        );
    }

    // b got every line of a, in order, promptly throughout, and heard once that c left.
    let b = timeout(DEADLINE, b_reads)
        .await
        .expect("b never got END")
        .expect("b's reader");
    assert_eq!(b.count, sent);
    assert_eq!(b.notices, 1);
    assert!(
        b.longest_gap < Duration::from_secs(2),
        "b waited {:?}",
        b.longest_gap
    );
    assert!(Instant::now() < deadline);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_lines_does_not_get_its_reading_sender_dropped() {
    const LINES: usize = 5000; // more than the default send queue of 1024 lines
    let limits = Limits {
        flood: NO_FLOOD_LIMIT,
        ..Limits::default()
    };
    let server = spawn_server(Mode::Chat, limits).await;
    let (mut a, mut b) = pair(&server).await;
    let burst: String = (0..LINES).map(|i| format!("{i}\n")).collect();
    a.send(burst).await; // 24 KiB: nowhere near filling any kernel buffer
    for i in 0..LINES {
        a.expect(&format!("<guest-1> {i}")).await;
    }
    for i in 0..LINES {
        b.expect(&format!("<guest-1> {i}")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_clients_refuses_the_extra_connection_until_a_slot_frees() {
    let limits = Limits {
        max_clients: 2,
        ..Limits::default()
    };
    let server = spawn_server(Mode::Chat, limits).await;
    let (mut a, mut b) = pair(&server).await;
    let mut third = Client::connect(server.addr).await;
    assert_eq!(
        String::from_utf8_lossy(&third.read_to_eof().await),
        "! server full, try again later\n"
    );
    // The refusal did not disturb the room.
    a.send("still\n").await;
    b.expect("<guest-1> still").await;

    b.send("exit\n").await;
    b.expect("*** bye, guest-2; closing the connection").await;
    b.read_to_eof().await;
    drop(b);
    a.expect("<guest-1> still").await;
    a.expect("*** guest-2 left (exit); 1 online").await;

    let deadline = Instant::now() + DEADLINE;
    loop {
        let mut next = Client::connect(server.addr).await;
        let first = next.line().await;
        if first.starts_with("*** 连接成功") {
            break;
        }
        assert_eq!(first, "! server full, try again later");
        assert!(Instant::now() < deadline, "the freed slot was never reused");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_is_delayed_not_dropped_and_does_not_delay_others() {
    let limits = Limits {
        flood: FloodLimit {
            burst: 5,
            per_second: 50.0,
        },
        ..Limits::default()
    };
    let server = spawn_server(Mode::Chat, limits).await;
    let (mut a, mut b) = pair(&server).await;
    let burst: String = (0..60).map(|i| format!("m{i:02}\n")).collect();
    let started = Instant::now();
    a.send(burst).await;

    b.expect("<guest-1> m00").await;
    b.send("from b\n").await;
    let (mut next, mut b_line_before) = (1, None);
    for _ in 0..200 {
        let line = b.line().await;
        if line == "<guest-2> from b" {
            b_line_before = Some(next);
            continue;
        }
        assert_eq!(line, format!("<guest-1> m{next:02}"));
        next += 1;
        if next == 60 {
            break;
        }
    }
    let took = started.elapsed();
    assert_eq!(next, 60, "not every line arrived");
    assert!(took >= Duration::from_millis(800), "60 lines in {took:?}");
    // a's lines trickle out over about 1.1 s; b's line, sent at the start, is not queued behind.
    let before = b_line_before.expect("b's own line never arrived");
    assert!(
        before < 30,
        "b's line waited behind the flood (at {before})"
    );

    assert_eq!(
        a.rx.line_starting("! flood").await,
        "! flood limit: 50 lines/s; your lines are delayed, none dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_says_goodbye_then_fin_to_everyone() {
    let server = chat().await;
    let (mut a, mut b) = pair(&server).await;
    let (mut c, _) = join(server.addr).await;
    a.expect("*** guest-3 joined; 3 online").await;
    b.expect("*** guest-3 joined; 3 online").await;
    server.token.cancel();
    for client in [&mut a, &mut b, &mut c] {
        client.expect("*** server shutting down").await;
        assert_eq!(String::from_utf8_lossy(&client.read_to_eof().await), "");
    }
    timeout(Duration::from_secs(2), server.handle)
        .await
        .expect("run did not return")
        .expect("run panicked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_returns_in_time_even_if_a_client_never_reads() {
    const LINES: u64 = 4096; // 16 MiB
    let limits = Limits {
        // Room for all of it: c must still be a member, its writer blocked, at shutdown.
        outbox_lines: 100_000,
        outbox_bytes: 64 << 20,
        flood: NO_FLOOD_LIMIT,
        ..Limits::default()
    };
    let server = spawn_server(Mode::Chat, limits).await;
    let (mut a, mut b) = pair(&server).await;
    let mut c = Client::connect_small_rcvbuf(server.addr).await;
    a.expect("*** guest-3 joined; 3 online").await;
    b.expect("*** guest-3 joined; 3 online").await;

    // Far more than c's buffers hold (a small receive buffer, a send buffer of a few MiB at
    // most): c's writer ends up blocked with lines still queued.
    let a_reads = tokio::spawn(read_numbered(a.rx, None));
    let b_reads = tokio::spawn(read_numbered(b.rx, None));
    for i in 0..LINES {
        write(&mut a.tx, numbered_line(i)).await;
    }
    write(&mut a.tx, "END\n").await;
    let mut readers = Vec::new();
    for reads in [a_reads, b_reads] {
        let read = timeout(Duration::from_secs(20), reads)
            .await
            .expect("a reader never got END")
            .expect("reader task");
        assert_eq!(read.count, LINES);
        readers.push(read.rx);
    }

    let started = Instant::now();
    server.token.cancel();
    // The server gives up on c after its grace period (1.5 s) and a backstop (0.25 s); the
    // bound adds two seconds for a busy machine, far below "never" (c never reads).
    let bound =
        Limits::default().shutdown_grace + Duration::from_millis(250) + Duration::from_secs(2);
    timeout(bound, server.handle)
        .await
        .unwrap_or_else(|_| panic!("run did not return within {bound:?}"))
        .expect("run panicked");
    let took = started.elapsed();
    assert!(
        took >= Limits::default().shutdown_grace,
        "it waited the grace period: {took:?}"
    );
    for rx in &mut readers {
        rx.expect("*** server shutting down").await;
        assert_eq!(String::from_utf8_lossy(&rx.read_to_eof().await), "");
    }
    // c really was stuck: what it can still read is less than what was sent.
    let got = c.read_to_eof().await.len() as u64;
    assert!(
        got < LINES * 4096,
        "c got all {got} bytes: it was never blocked"
    );
}

// ---------------------------------------------------------------- echo mode

async fn echo() -> Server {
    spawn_server(Mode::Echo, Limits::default()).await
}

/// Connects to an echo server and checks its greeting: exactly `连接成功!`.
async fn echo_client(server: &Server) -> Client {
    let mut client = Client::connect(server.addr).await;
    let greeting = "连接成功!".as_bytes();
    assert_eq!(client.rx.exact(greeting.len()).await, greeting);
    client
}

/// Sends `data` in one write and checks the reply is exactly `第N条信息:` + `data`.
async fn echo_round(client: &mut Client, n: u32, data: &[u8]) {
    client.send(data).await;
    let mut want = format!("第{n}条信息:").into_bytes();
    want.extend_from_slice(data);
    assert_eq!(client.rx.exact(want.len()).await, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_greets_and_numbers_each_read_per_connection() {
    let server = echo().await;
    // Exact reads back to back also prove nothing (such as a newline) comes in between.
    let mut a = echo_client(&server).await;
    echo_round(&mut a, 1, b"hello").await;
    echo_round(&mut a, 2, b"world").await;
    let mut b = echo_client(&server).await;
    echo_round(&mut b, 1, "你好".as_bytes()).await;
    echo_round(&mut a, 3, b"again").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_a_read_that_splits_a_character_is_echoed_as_raw_bytes() {
    let server = echo().await;
    let mut a = echo_client(&server).await;
    let ni = "你".as_bytes();
    echo_round(&mut a, 1, &ni[..2]).await;
    echo_round(&mut a, 2, &ni[2..]).await;
    echo_round(&mut a, 3, b"still serving").await;
    let mut b = echo_client(&server).await;
    echo_round(&mut b, 1, b"new client").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_exit_closes_without_a_reply() {
    let server = echo().await;
    for exit in ["exit", "exit\n", "exit\r\n"] {
        let mut client = echo_client(&server).await;
        client.send(exit).await;
        assert_eq!(
            String::from_utf8_lossy(&client.read_to_eof().await),
            "",
            "{exit:?}"
        );
    }
    // Only the exact word closes.
    let mut client = echo_client(&server).await;
    echo_round(&mut client, 1, b"exit now").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_a_client_vanishing_without_exit_does_not_affect_others() {
    let server = echo().await;
    let mut a = echo_client(&server).await;
    echo_round(&mut a, 1, b"before").await;
    let closed = echo_client(&server).await;
    drop(closed);
    let reset = echo_client(&server).await;
    reset.reset();
    echo_round(&mut a, 2, b"after").await;
    let mut b = echo_client(&server).await;
    echo_round(&mut b, 1, b"newcomer").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_one_big_send_comes_back_in_replies_of_at_most_1024_bytes() {
    let server = echo().await;
    let mut a = echo_client(&server).await;
    let data: Vec<u8> = (0..3000u32).map(|i| b'a' + (i % 26) as u8).collect();
    a.send(&data).await;
    // Payload bytes are a-z; the prefixes are 第, digits, 条信息 and ':', never a-z.
    let mut got: Vec<u8> = Vec::new();
    for _ in 0..1000 {
        if got.iter().filter(|b| b.is_ascii_lowercase()).count() >= data.len() {
            break;
        }
        got.extend(a.rx.chunk().await);
    }
    let mut rest = &got[..];
    let mut payloads: Vec<&[u8]> = Vec::new();
    while !rest.is_empty() {
        let prefix = format!("第{}条信息:", payloads.len() + 1);
        rest = rest
            .strip_prefix(prefix.as_bytes())
            .unwrap_or_else(|| panic!("expected {prefix} at {:?}", String::from_utf8_lossy(rest)));
        let len = rest.iter().take_while(|b| b.is_ascii_lowercase()).count();
        payloads.push(&rest[..len]);
        rest = &rest[len..];
    }
    assert!(payloads.len() >= 3, "{} replies", payloads.len());
    assert!(payloads.iter().all(|p| !p.is_empty() && p.len() <= 1024));
    assert_eq!(payloads.concat(), data);
}

// ---------------------------------------------------------------- ack mode

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_greets_and_acks_each_read_with_a_number_up_to_1000() {
    let server = spawn_server(Mode::Ack, Limits::default()).await;
    let mut a = Client::connect(server.addr).await;
    assert_eq!(a.rx.exact(12).await, b"Hello World!");
    for _ in 0..20 {
        a.send("ping").await;
        let mut reply = Vec::new();
        for _ in 0..10 {
            reply.extend(a.rx.chunk().await);
            if reply.ends_with(b":ACK!") {
                break;
            }
        }
        let reply = String::from_utf8(reply).expect("UTF-8");
        let number = reply
            .strip_suffix(":ACK!")
            .unwrap_or_else(|| panic!("{reply:?}"));
        assert!(
            (1..=4).contains(&number.len()) && number.bytes().all(|b| b.is_ascii_digit()),
            "{reply:?}"
        );
        let number: u32 = number.parse().expect("a number");
        assert!((1..=1000).contains(&number), "{reply:?}");
    }
    a.send("exit").await;
    assert_eq!(String::from_utf8_lossy(&a.read_to_eof().await), "");
}
