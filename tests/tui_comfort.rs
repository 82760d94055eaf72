//! Everyday comfort in the real TUI, in a pseudo-terminal against a real server: Tab
//! completion of nicks as a person types them.

// The harness sends signals with libc::kill; each call says why it is sound.
#![allow(unsafe_code)]
// In a test a failed expectation is meant to panic: that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "tui/harness.rs"]
#[allow(dead_code)]
mod harness;

use harness::{Peer, Server, Tui, input_row, keys};

#[test]
fn tab_completes_the_nick_of_who_spoke_last_and_sends_nothing() {
    let server = Server::start("chat");
    let mut tui = Tui::spawn(&["--nick", "alice", &server.addr], 80, 24);
    tui.wait_for_text("is now known as alice");
    let mut peers = Vec::new();
    for nick in ["bob", "bobby"] {
        let mut peer = Peer::connect(&server.addr);
        peer.expect_line(|l| l.contains("连接成功"), "the greeting");
        peer.send(&format!("/nick {nick}\nhi from {nick}\n"));
        tui.wait_for_text(&format!("<{nick}> hi from {nick}"));
        peers.push(peer);
    }
    tui.send("bo\t");
    tui.wait_for(|s| input_row(s) == "> bobby:", "bobby, who spoke last");
    tui.send("\t");
    tui.wait_for(|s| input_row(s) == "> bob:", "Tab again: bob");
    tui.send(&format!("there{}", keys::ENTER));
    peers[0].expect_line(|l| l == "<alice> bob: there", "the line as completed");
}

#[test]
fn the_config_file_sets_the_nick_its_problems_are_notes_and_typed_lines_outlive_the_run() {
    let server = Server::start("chat");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "nick = \"carol\"\ncolour = \"blue\"\ntimestamps = true\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let args = [
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        &server.addr,
    ];
    let mut tui = Tui::spawn(&args, 100, 24);
    tui.wait_for_text("is now known as carol");
    tui.wait_for_text("config.toml:2: colour: not a setting; ignored");
    tui.send(&format!("hello there{}", keys::ENTER));
    tui.wait_for_text("<carol> hello there");
    // Timestamps are on: the line starts with its time.
    tui.wait_for(
        |s| {
            s.contents().lines().map(str::trim_end).any(|l| {
                l.len() > 9 && l.as_bytes()[2] == b':' && l.ends_with(" <carol> hello there")
            })
        },
        "a timestamp before the line",
    );
    tui.send(&format!("/login carol {}", keys::ENTER));
    tui.send(keys::CTRL_D);
    tui.wait_exit(harness::DEADLINE);

    let mut again = Tui::spawn(&args, 100, 24);
    again.wait_for_text("is now known as carol");
    again.send(keys::UP);
    again.wait_for(
        |s| input_row(s) == "> hello there",
        "the line typed last run",
    );
}

#[test]
fn a_data_directory_that_cannot_be_used_costs_history_not_the_chat() {
    // Under a regular file, nothing can be created, whoever runs the test (root included).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let data = file.join("data");
    let port = harness::free_port().to_string();
    let addr = format!("127.0.0.1:{port}");
    let args = [
        "--local",
        &addr,
        "--nick",
        "lee",
        "--data-dir",
        data.to_str().unwrap(),
    ];
    let mut tui = Tui::spawn(&args, 120, 24);
    tui.wait_for_text("is now known as lee");
    tui.wait_for_text("this room keeps no history: cannot use the data directory");
    tui.send(&format!("still chatting{}", keys::ENTER));
    tui.wait_for_text("<lee> still chatting");
    tui.send(keys::CTRL_D);
    assert_eq!(tui.wait_exit(harness::DEADLINE), 0);
    let output = String::from_utf8_lossy(&tui.raw_output()).into_owned();
    assert!(
        output.contains("tcpchat: the lines typed were not kept in"),
        "the input history's failure said once the terminal is back: {output}"
    );
    assert!(!data.exists());
}

/// F10, as xterm sends it.
const F10: &str = "\x1b[21~";

#[test]
fn keys_rebound_in_the_config_file_work_show_in_the_help_and_a_bad_one_is_a_note() {
    let server = Server::start("chat");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "[keys]\nhelp = \"F10\"\ninspector = \"Alt-H\"\nrepaint = \"q\"\n",
    )
    .unwrap();
    let args = [
        "--config",
        config.to_str().unwrap(),
        "--nick",
        "kim",
        &server.addr,
    ];
    let mut tui = Tui::spawn(&args, 100, 24);
    tui.wait_for_text("is now known as kim");
    tui.wait_for_text("config.toml:4: keys.repaint: \"q\" types itself");
    // F1 no longer opens the help (which any key would close: the x would be eaten).
    tui.send(keys::F1);
    tui.send("x");
    tui.wait_for(|s| input_row(s) == "> x", "x typed: no help opened");
    tui.send(keys::CTRL_U);
    // F10 does, and the help lists the keys as they are now.
    tui.send(F10);
    tui.wait_for_text("tcpchat keys");
    tui.wait_for(
        |s| {
            s.contents()
                .lines()
                .any(|l| l.contains(" F10 ") && l.contains("this help"))
        },
        "the help naming F10 for itself",
    );
    tui.wait_for(
        |s| {
            s.contents()
                .lines()
                .any(|l| l.contains(" Alt-H ") && l.contains("TCP inspector"))
        },
        "the help naming Alt-H for the inspector",
    );
    tui.send(keys::ESC);
    tui.wait_for_no_text("tcpchat keys");
    // Alt-H, the help's own fallback before, opens the inspector now.
    tui.send(keys::ALT_H);
    tui.wait_for_text("timeline");
    // And `q` still types: a printable key is never bound.
    tui.send("q");
    tui.wait_for(|s| input_row(s) == "> q", "q typed into the line");
}

/// How many colour settings (foreground or background, any palette) the terminal was sent.
fn colour_codes(output: &[u8]) -> usize {
    let text = String::from_utf8_lossy(output);
    text.matches("\x1b[38;").count()
        + text.matches("\x1b[48;").count()
        + text.matches(";48;").count()
}

#[test]
fn themes_change_the_colours_and_no_color_turns_them_off() {
    let server = Server::start("chat");
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut all = vec!["--nick", "alice"];
        all.extend_from_slice(args);
        all.push(&server.addr);
        let mut tui = Tui::spawn_with(&all, env, 80, 24);
        tui.wait_for_text("is now known as alice");
        tui.send(&format!("hi{}", keys::ENTER));
        tui.wait_for_text("<alice> hi");
        let output = tui.raw_output();
        tui.send(keys::CTRL_D);
        tui.wait_exit(harness::DEADLINE);
        output
    };
    // Events in the light theme's deep teal (256-colour 23), not the terminal's cyan.
    let light = run(&["--theme", "light"], &[]);
    let light_event = "\x1b[38;5;23;";
    assert!(String::from_utf8_lossy(&light).contains(light_event));
    let default = run(&[], &[]);
    assert!(colour_codes(&default) > 0);
    assert!(!String::from_utf8_lossy(&default).contains(light_event));
    // NO_COLOR: no colour at all, whatever the theme; our own line is still reversed.
    let plain = run(&["--theme", "light"], &[("NO_COLOR", "1")]);
    assert_eq!(
        colour_codes(&plain),
        0,
        "{}",
        String::from_utf8_lossy(&plain)
    );
    assert!(
        String::from_utf8_lossy(&plain).contains("\x1b[7m"),
        "reverse for our own line"
    );
}
