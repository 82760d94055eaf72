//! Passwords in the real TUI, in a pseudo-terminal, against the real server: the server's
//! password is asked for, typed as dots, given again by itself after the server restarts, and
//! so is the account's login; no password ever reaches the terminal, the input history or a
//! file the client writes.

// The harness sends signals with libc::kill; each call says why it is sound.
#![allow(unsafe_code)]
// In a test a failed expectation is meant to panic: that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "tui/harness.rs"]
#[allow(dead_code)]
mod harness;

use harness::{Server, Tui, input_row, keys};

const SERVER_PASSWORD: &str = "open sesame 芝麻";
const ACCOUNT_PASSWORD: &str = "hunter2 horse";

/// Every file under `dir`, read.
fn files_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                found.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    found
}

#[test]
fn passwords_are_typed_as_dots_never_kept_and_given_again_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, format!("{SERVER_PASSWORD}\n")).unwrap();
    let server_data = dir.path().join("server");
    let client_data = dir.path().join("client");
    let flags = [
        "--data-dir",
        server_data.to_str().unwrap(),
        "--password-file",
        password_file.to_str().unwrap(),
    ];
    let mut server = Server::try_start_with("127.0.0.1:0", &flags).unwrap();
    let addr = server.addr.clone();
    let mut tui = Tui::spawn(
        &[
            "--nick",
            "alice",
            "--log",
            "--data-dir",
            client_data.to_str().unwrap(),
            &addr,
        ],
        80,
        24,
    );

    // Asked for, with the edit box readied; typed as dots.
    tui.wait_for_text("type the server's password after /pass");
    tui.wait_for(|s| input_row(s) == "> /pass", "/pass readied");
    tui.send(SERVER_PASSWORD);
    let dots = "•".repeat(SERVER_PASSWORD.chars().count() + 2); // 芝麻 are two cells each
    tui.wait_for(
        |s| input_row(s).starts_with(&format!("> /pass {dots}")),
        "the password as dots, a dot per cell",
    );
    tui.send(keys::ENTER);
    tui.wait_for_text("is now known as alice");

    // The account: registered, with its password as dots too.
    tui.send(&format!("/register {ACCOUNT_PASSWORD}"));
    tui.wait_for(
        |s| input_row(s).starts_with(&format!("> /register {}", "•".repeat(13))),
        "the account's password as dots",
    );
    tui.send(keys::ENTER);
    tui.wait_for_text("alice is registered to you");
    // Up brings back the last line typed that carried no password: there is none.
    tui.send(keys::UP);
    tui.send("x");
    tui.wait_for(
        |s| input_row(s).starts_with("> x"),
        "no password in the history",
    );
    tui.send(keys::CTRL_U);

    // The server restarts on the same port: the client gives both passwords again by itself.
    assert_eq!(server.terminate(), 0);
    let _server = Server::try_start_with(&addr, &flags).unwrap();
    tui.wait_for_text("giving the server's password again");
    tui.wait_for_text("you are logged in as alice");

    let output = String::from_utf8_lossy(&tui.raw_output()).into_owned();
    for secret in [SERVER_PASSWORD, ACCOUNT_PASSWORD, "hunter2", "sesame"] {
        assert!(!output.contains(secret), "{secret:?} reached the terminal");
    }
    tui.send(keys::CTRL_D);
    tui.wait_exit(harness::DEADLINE);
    let files = files_under(&client_data);
    assert!(
        files
            .iter()
            .any(|(path, _)| path.to_string_lossy().ends_with(".log")),
        "the transcript was written: {:?}",
        files.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    for (path, bytes) in files {
        let text = String::from_utf8_lossy(&bytes);
        for secret in ["hunter2", "sesame"] {
            assert!(!text.contains(secret), "{secret:?} in {}", path.display());
        }
    }
}
