//! What is committed under assets/ is what the generator writes now: the screens are the real
//! UI's, the completions and the man page follow the real command line, and the check that
//! says so can fail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use clap::CommandFactory;
use ratatui::buffer::Buffer;
use tcpchat::cli::Cli;
use tcpchat::i18n::Language;
use tcpchat_docs::{Artifact, COMMAND, artifacts, differences, repository_root, session, write};

fn generated() -> (tempfile::TempDir, Vec<Artifact>) {
    let artifacts = artifacts().unwrap();
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &artifacts).unwrap();
    (dir, artifacts)
}

fn text_of(artifacts: &[Artifact], path: &str) -> String {
    let artifact = artifacts
        .iter()
        .find(|artifact| artifact.path == Path::new(path))
        .unwrap_or_else(|| panic!("{path} is not generated"));
    String::from_utf8(artifact.bytes.clone()).unwrap()
}

/// The check CI relies on: regenerate into a temporary directory and compare, file by file,
/// with what the repository holds.
#[test]
fn the_committed_screens_completions_and_man_page_are_current() {
    let (dir, _) = generated();
    let stale = differences(dir.path(), &repository_root()).unwrap();
    assert!(
        stale.is_empty(),
        "assets/ is out of date; run `{COMMAND}` and commit the result:\n{}",
        stale.join("\n")
    );
}

#[test]
fn the_check_notices_a_changed_a_missing_and_an_extra_file() {
    let (generated, _) = generated();
    let (committed, _) = self::generated();
    let root = committed.path();
    std::fs::write(root.join("assets/man/tcpchat.1"), "old page").unwrap();
    std::fs::remove_file(root.join("assets/screens/inspector.svg")).unwrap();
    std::fs::write(root.join("assets/completions/tcpchat.elv"), "").unwrap();
    let stale = differences(generated.path(), root).unwrap();
    assert_eq!(
        stale,
        [
            "assets/screens/inspector.svg: not committed",
            "assets/completions/tcpchat.elv: no longer generated",
            "assets/man/tcpchat.1: differs from what is generated",
        ],
    );
}

#[test]
fn two_runs_write_the_same_bytes() {
    assert_eq!(artifacts().unwrap(), artifacts().unwrap());
}

/// The words on each row of `buffer` (runs of ASCII non-blanks: a wide character is drawn on
/// its own, so it splits words in the picture).
fn words(buffer: &Buffer) -> Vec<String> {
    let mut words = Vec::new();
    for y in 0..buffer.area.height {
        let row: String = (0..buffer.area.width)
            .map(|x| buffer[(x, y)].symbol().to_owned())
            .map(|symbol| {
                if symbol.is_ascii() {
                    symbol
                } else {
                    " ".to_owned()
                }
            })
            .collect();
        words.extend(row.split_whitespace().map(str::to_owned));
    }
    words
}

fn escaped(word: &str) -> String {
    word.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Every word the app drew is in the picture, and the picture shows what the README promises:
/// people talking in 中文 and with emoji, the buffer bar, the status bar; the inspector's
/// ladders, kernel figures, reads and timeline.
#[test]
fn the_pictures_are_the_screens_the_app_draws() {
    let (_, artifacts) = generated();
    let (cols, rows) = tcpchat_docs::CHAT_SIZE;
    let chat = session::chat(cols, rows, Language::English).unwrap();
    let chat_zh = session::chat(cols, rows, Language::Chinese).unwrap();
    let (cols, rows) = tcpchat_docs::INSPECTOR_SIZE;
    let inspector = session::inspector(cols, rows).unwrap();
    for (screen, path, shows) in [
        (
            &chat,
            "assets/screens/chat.svg",
            &[
                "<bob>",
                "欢",
                "🦀",
                "1:#lobby",
                "2:#rust(2)",
                "3:@carol(1!)",
                "hosting",
                "online",
            ][..],
        ),
        (
            &chat_zh,
            "assets/screens/chat-zh.svg",
            // One character at a time: a wide one's second cell is a cell of its own.
            &["<bob>", "欢", "1:#lobby", "房", "线", "帮"][..],
        ),
        (
            &inspector,
            "assets/screens/inspector.svg",
            &[
                "TCP",
                "inspector",
                "SYN-ACK",
                "observed",
                "inferred",
                "FIN-WAIT-1",
                "TIME-WAIT",
                "rtt",
                "reads",
                "timeline",
                "shutdown(WR):",
            ][..],
        ),
    ] {
        let svg = text_of(&artifacts, path);
        let buffer = screen.terminal.backend().buffer();
        let words = words(buffer);
        assert!(
            words.len() > 100,
            "{path}: a full screen ({} words)",
            words.len()
        );
        for word in &words {
            assert!(svg.contains(&escaped(word)), "{path} lacks {word:?}");
        }
        let text: String = buffer.content().iter().map(|cell| cell.symbol()).collect();
        for shown in shows {
            assert!(
                text.contains(shown),
                "the screen for {path} shows {shown:?}"
            );
            assert!(svg.contains(&escaped(shown)), "{path} shows {shown:?}");
        }
    }
}

/// Each long option of the real command line, in each completion script and in the man page.
#[test]
fn completions_and_the_man_page_know_every_option() {
    let (_, artifacts) = generated();
    let bash = text_of(&artifacts, "assets/completions/tcpchat.bash");
    let zsh = text_of(&artifacts, "assets/completions/_tcpchat");
    let fish = text_of(&artifacts, "assets/completions/tcpchat.fish");
    let man = text_of(&artifacts, "assets/man/tcpchat.1");
    let command = Cli::command();
    let longs: Vec<&str> = command
        .get_arguments()
        .filter_map(|arg| arg.get_long())
        .collect();
    assert!(longs.len() > 10, "{longs:?}");
    for long in longs {
        assert!(bash.contains(&format!("--{long}")), "bash lacks --{long}");
        assert!(zsh.contains(&format!("--{long}")), "zsh lacks --{long}");
        assert!(fish.contains(&format!("-l {long}")), "fish lacks --{long}");
        let roff = format!("\\-\\-{}", long.replace('-', "\\-"));
        assert!(man.contains(&roff), "the man page lacks --{long}");
    }
    assert!(
        man.starts_with(".ie \\n(.g .ds Aq \\(aq"),
        "roff: {}",
        &man[..40]
    );
    assert!(man.contains(".TH tcpchat 1"), "a section 1 page");
}

/// The README shows both pictures and names the command that makes them.
#[test]
fn the_readme_shows_the_pictures_and_names_the_command() {
    let readme = std::fs::read_to_string(repository_root().join("README.md")).unwrap();
    for needle in [
        "assets/screens/chat.svg",
        "assets/screens/inspector.svg",
        COMMAND,
        "assets/completions/",
        "assets/man/tcpchat.1",
    ] {
        assert!(readme.contains(needle), "the README mentions {needle}");
    }
}
