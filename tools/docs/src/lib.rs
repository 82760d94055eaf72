//! tcpchat-docs: what the README and a package show of tcpchat, generated from the program
//! itself so it cannot go stale unnoticed.
//!
//! # Layout
//!
//! - [`session`]: the scripted sessions — the real `App`, fed the real protocol's lines and
//!   the network task's events at fixed moments, drawn by the real `ui` into a `TestBackend`.
//! - [`svg`]: a drawn buffer as an SVG picture of a terminal.
//! - [`manual`]: shell completions and the man page, from the real `Cli`.
//!
//! [`artifacts`] is everything, as bytes; `cargo run -p tcpchat-docs` writes it under
//! `assets/`, and `tests/current.rs` fails when what is committed differs from it.

pub mod manual;
pub mod session;
pub mod svg;

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use tcpchat::i18n::Language;

/// The directories this generator owns, relative to the repository's root: every file in them
/// is one it writes, so a file it no longer writes is stale too.
pub const OWNED: [&str; 3] = ["assets/screens", "assets/completions", "assets/man"];

/// The command that regenerates everything, as the README and the failures name it.
pub const COMMAND: &str = "cargo run -p tcpchat-docs";

/// One generated file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// Where it goes, relative to the repository's root.
    pub path: PathBuf,
    /// Its contents.
    pub bytes: Vec<u8>,
}

impl Artifact {
    fn new(dir: &str, name: &str, bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            path: Path::new(dir).join(name),
            bytes: bytes.into(),
        }
    }
}

/// The chat screen's size: 24 rows, wide enough for the whole status bar.
pub const CHAT_SIZE: (u16, u16) = (100, 24);

/// The inspector's: wide enough for it to sit beside the chat with its ladders whole, tall
/// enough for every part and the whole timeline.
pub const INSPECTOR_SIZE: (u16, u16) = (160, 46);

/// Everything this generator writes.
pub fn artifacts() -> anyhow::Result<Vec<Artifact>> {
    let (screens, completions, man) = (OWNED[0], OWNED[1], OWNED[2]);
    let chat =
        session::chat(CHAT_SIZE.0, CHAT_SIZE.1, Language::English).context("drawing the chat")?;
    let chat_zh = session::chat(CHAT_SIZE.0, CHAT_SIZE.1, Language::Chinese)
        .context("drawing the chat in 中文")?;
    let inspector =
        session::inspector(INSPECTOR_SIZE.0, INSPECTOR_SIZE.1).context("drawing the inspector")?;
    let mut out = vec![
        Artifact::new(
            screens,
            "chat.svg",
            svg::render(
                chat.terminal.backend().buffer(),
                chat.cursor,
                "tcpchat: a room with people talking, the buffer bar, the status bar",
            ),
        ),
        Artifact::new(
            screens,
            "chat-zh.svg",
            svg::render(
                chat_zh.terminal.backend().buffer(),
                chat_zh.cursor,
                "tcpchat 中文界面：聊天室、缓冲区栏、状态栏",
            ),
        ),
        Artifact::new(
            screens,
            "inspector.svg",
            svg::render(
                inspector.terminal.backend().buffer(),
                inspector.cursor,
                "tcpchat's TCP inspector beside the chat: handshake and close, kernel figures, reads, timeline",
            ),
        ),
    ];
    for shell in manual::SHELLS {
        let (name, script) = manual::completion(shell);
        out.push(Artifact::new(completions, &name, script));
    }
    out.push(Artifact::new(
        man,
        "tcpchat.1",
        manual::man_page().context("rendering the man page")?,
    ));
    Ok(out)
}

/// Writes `artifacts` under `root`, creating the directories.
pub fn write(root: &Path, artifacts: &[Artifact]) -> anyhow::Result<()> {
    for artifact in artifacts {
        let path = root.join(&artifact.path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(&path, &artifact.bytes)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// How the generated tree under `generated` and the one under `committed` differ in the
/// [`OWNED`] directories: each file missing, different or extra, one line each (empty when
/// they are the same).
pub fn differences(generated: &Path, committed: &Path) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for dir in OWNED {
        let mut names = files(&generated.join(dir))?;
        names.extend(files(&committed.join(dir))?);
        names.sort();
        names.dedup();
        for name in names {
            let path = Path::new(dir).join(&name);
            let new = std::fs::read(generated.join(&path)).ok();
            let old = std::fs::read(committed.join(&path)).ok();
            let what = match (new, old) {
                (Some(_), None) => "not committed",
                (None, Some(_)) => "no longer generated",
                (Some(new), Some(old)) if new != old => "differs from what is generated",
                _ => continue,
            };
            out.push(format!("{}: {what}", path.display()));
        }
    }
    Ok(out)
}

/// The names of the files in `dir` (none if it does not exist).
fn files(dir: &Path) -> anyhow::Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error).with_context(|| format!("listing {}", dir.display())),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    Ok(names)
}

/// The repository's root (this crate is `tools/docs` in it).
pub fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}
