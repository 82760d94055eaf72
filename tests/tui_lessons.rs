//! `/lesson N` end to end (issue 15, item 3): each lesson in the real binary in a
//! pseudo-terminal. The test makes a prediction, makes every step with Enter, reads what the
//! kernel showed off the card, decides from that evidence alone which choice this run showed,
//! and checks that the card's verdict agrees: "Right" exactly when the prediction was that
//! choice. Some predictions are right on Linux and some wrong, so both verdicts are seen.

// The harness sends signals with libc::kill; each call says why it is sound.
#![allow(unsafe_code)]
// In a test a failed expectation is meant to panic: that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(target_os = "linux")]

mod common;
#[path = "tui/harness.rs"]
#[allow(dead_code)]
mod harness;

use common::{prerequisite, runs};
use harness::{Server, Tui, keys};
use tcpchat::lesson::LESSONS;

/// Big enough that every lesson's facts fit without wrapping or scrolling.
const COLS: u16 = 120;
const ROWS: u16 = 50;

/// Makes every step of lesson `number` with Enter, each once the card offers it; from the
/// second on, the card offers it only once the one before has shown what it did.
fn make_steps(tui: &mut Tui, number: usize) {
    for step in LESSONS[number - 1].steps {
        tui.wait_for(
            |s| s.contents().contains(&format!("Enter ▸ {step}")),
            &format!("the card offering {step:?}"),
        );
        tui.send(keys::ENTER);
    }
}

/// Runs lesson `number` with `prediction` (1-based); the card's text once the verdict shows.
fn run(tui: &mut Tui, number: usize, prediction: usize) -> String {
    tui.send(&format!("/lesson {number}{}", keys::ENTER));
    tui.wait_for_text(&format!("Lesson {number}/10"));
    tui.send(&prediction.to_string());
    tui.wait_for_text(&format!("▶ {prediction} "));
    make_steps(tui, number);
    tui.wait_for(
        |s| {
            let text = s.contents();
            text.contains("✓ Right") || text.contains("✗ Not this time") || text.contains("failed")
        },
        "the verdict",
    );
    tui.text()
}

/// The lesson's verdict checked against `shown`, the choice the evidence on the card shows.
fn check(card: &str, prediction: usize, shown: usize) {
    assert!(!card.contains("The step failed"), "{card}");
    match prediction == shown {
        true => assert!(
            card.contains(&format!("✓ Right: this run showed {shown}.")),
            "predicted {prediction}, the evidence shows {shown}:\n{card}"
        ),
        false => assert!(
            card.contains(&format!(
                "✗ Not this time: you chose {prediction}; this run showed {shown}."
            )),
            "predicted {prediction}, the evidence shows {shown}:\n{card}"
        ),
    }
    // The card marks the choice the run showed.
    assert!(card.contains(&format!("✓ {shown} ")), "{card}");
}

fn lesson(number: usize, prediction: usize, evidence: fn(&str) -> usize) {
    let server = Server::start("chat");
    let mut tui = Tui::spawn(&[&server.addr], COLS, ROWS);
    tui.wait_for_text("连接成功");
    let card = run(&mut tui, number, prediction);
    check(&card, prediction, evidence(&card));
}

#[test]
fn lesson_1_listen_makes_a_listen_row() {
    lesson(1, 1, |card| {
        let listed = |state: &str| {
            card.lines()
                .any(|l| l.contains(&format!(" {state} ")) && l.contains("[/proc/net/tcp]"))
        };
        match () {
            () if listed("ESTABLISHED") => 3,
            () if listed("LISTEN") => 2,
            () => 1,
        }
    });
}

#[test]
fn lesson_2_the_handshake_finishes_before_accept() {
    lesson(2, 2, |card| {
        // Where the segments are captured (root: CI), the handshake's are on the card.
        if card.contains(" wire   +") {
            assert!(
                card.contains("server ▸ client SYN-ACK seq 0 ack 1"),
                "{card}"
            );
        } else {
            assert!(card.contains("socket(AF_PACKET) = -1"), "{card}");
        }
        let established = card.contains("client tcpi_state = ESTABLISHED");
        let queued = card.contains("accept queue 1 of 5");
        if established && queued { 2 } else { 1 }
    });
}

#[test]
fn lesson_3_a_sent_line_waits_in_the_servers_kernel() {
    lesson(3, 1, |card| match () {
        () if card.contains("server SIOCINQ = 6:") => 2,
        () if card.contains("client SIOCOUTQ = 6:") => 3,
        () => 1,
    });
}

#[test]
fn lesson_4_three_sends_are_one_read() {
    lesson(4, 2, |card| {
        if card.contains("14 bytes, 3 lines") {
            2
        } else {
            1
        }
    });
}

#[test]
fn lesson_5_nagle_stalls_for_the_delayed_ack() {
    lesson(5, 1, |card| {
        let line = card.lines().find(|l| l.contains("Nagle on: ")).unwrap();
        let after = line.split("answer after ").nth(1).unwrap();
        let millis: f64 = after.split(" ms").next().unwrap().parse().unwrap();
        match millis {
            m if m < 10.0 => 1,
            m if m < 120.0 => 2,
            _ => 3,
        }
    });
}

#[test]
fn lesson_6_a_reader_that_stops_fills_the_window() {
    lesson(6, 2, |card| {
        let blocked = card.contains("EAGAIN");
        let lost_nothing = card.contains(": 0 lost");
        match (blocked, lost_nothing) {
            (true, true) => 2,
            (_, false) => 1,
            (false, true) => 3,
        }
    });
}

#[test]
fn lesson_7_after_its_fin_the_client_still_reads() {
    lesson(7, 1, |card| {
        if card.contains("client recv(1024) = 4 bytes") {
            2
        } else {
            1
        }
    });
}

#[test]
fn lesson_8_linger_zero_resets() {
    lesson(8, 1, |card| {
        let last_read = card
            .lines()
            .rfind(|l| l.contains("server recv(1024)"))
            .unwrap();
        match () {
            () if last_read.contains("ECONNRESET") => 2,
            () if last_read.contains("= 0: end of file") => 1,
            () => 3,
        }
    });
}

#[test]
fn lesson_9_a_full_queue_drops_the_syn() {
    lesson(9, 2, |card| match () {
        () if card.contains("client #3 connect() still waiting") => 2,
        () if card.contains("client #3 connect() = -1 ECONNREFUSED") => 1,
        () => 3,
    });
}

#[test]
fn lesson_10_time_wait_holds_the_port() {
    lesson(10, 2, |card| {
        if card.contains("= -1 EADDRINUSE") {
            2
        } else {
            1
        }
    });
}

#[test]
fn at_80_by_24_the_card_keeps_the_question_and_the_verdict_and_says_what_scrolled_away() {
    let server = Server::start("chat");
    let mut tui = Tui::spawn(&[&server.addr], 80, 24);
    tui.wait_for_text("连接成功");
    let card = run(&mut tui, 4, 2);
    assert!(card.contains("What does it get?"), "{card}");
    assert!(card.contains("rows above"), "{card}");
    assert!(card.contains("this run showed"), "{card}");
    for line in card.lines() {
        assert!(line.chars().count() <= 80, "{line}");
    }
    // PgUp brings the first steps back; PgDn returns to the newest.
    assert!(!card.contains("▸ listen(), connect(), accept()"), "{card}");
    // More pages than the card has: it stops at the first step.
    for _ in 0..6 {
        tui.send(keys::PAGE_UP);
    }
    tui.wait_for_text("▸ listen(), connect(), accept()");
    tui.wait_for_no_text("rows above");
    tui.wait_for_text("rows below · PgDn");
    for _ in 0..6 {
        tui.send("\x1b[6~");
    }
    tui.wait_for_no_text("rows below · PgDn");
    // After the verdict Enter opens the next lesson; Esc closes the card, and the chat is back.
    tui.send(keys::ENTER);
    tui.wait_for_text("Lesson 5/10");
    tui.send(keys::ESC);
    tui.wait_for_no_text("Lesson 5/10");
    tui.wait_for_text("连接成功");
}

#[test]
fn a_chinese_locale_gets_the_lesson_in_chinese_and_the_kernels_words_as_they_are() {
    let server = Server::start("chat");
    // 80 columns, where Chinese text is widest; rows enough for every fact to stay on screen.
    let mut tui = Tui::spawn_with(&[&server.addr], &[("LANG", "zh_CN.UTF-8")], 80, 40);
    tui.wait_for_text("连接成功");
    tui.send(&format!("/lesson 2{}", keys::ENTER));
    tui.wait_for_text("第 2/10 课");
    tui.send("2");
    make_steps(&mut tui, 2);
    tui.wait_for(
        |s| s.contents().contains("答对了") || s.contents().contains("这次不对"),
        "the verdict in Chinese",
    );
    let card = tui.text();
    assert!(card.contains("accept queue 0 of 5"), "{card}");
    let shown = if card.contains("tcpi_state = ESTABLISHED") {
        2
    } else {
        1
    };
    assert_eq!(card.contains("答对了"), shown == 2, "{card}");
}

#[test]
fn without_a_packet_socket_the_card_says_so_once_and_the_lesson_still_runs() {
    if !prerequisite("setpriv", runs("setpriv", &["--version"])) {
        return;
    }
    let server = Server::start("chat");
    // Without CAP_NET_RAW in its bounding set the client cannot have it, root or not
    // (setpriv: util-linux, which .ci/run installs).
    let unprivileged = [
        "setpriv",
        "--bounding-set=-net_raw",
        "--inh-caps=-net_raw",
        "--",
    ];
    let mut tui = Tui::spawn_under(&unprivileged, &[&server.addr], COLS, ROWS);
    tui.wait_for_text("连接成功");
    let card = run(&mut tui, 7, 2);
    assert!(!card.contains(" wire   +"), "no segment rows: {card}");
    assert_eq!(card.matches("socket(AF_PACKET) = -1").count(), 1, "{card}");
    assert!(card.contains("CAP_NET_RAW"), "{card}");
    let shown = if card.contains("client recv(1024) = 4 bytes") {
        2
    } else {
        1
    };
    check(&card, 2, shown);
}
