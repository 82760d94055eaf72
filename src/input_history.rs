//! The lines typed, kept across runs in `DATA_DIR/input_history` (0600), so Up brings back
//! yesterday's commands. Lines carrying a password never get here (the edit box does not keep
//! them), and a file that is not ours to trust is read defensively: at most
//! [`MAX_FILE_BYTES`], invalid UTF-8 replaced, controls removed, the newest
//! [`crate::editbox::HISTORY_LEN`] lines kept.

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use crate::codec::sanitize;
use crate::editbox::HISTORY_LEN;
use crate::protocol::secret_start;

/// The file's name in the data directory.
pub const FILE_NAME: &str = "input_history";

/// A larger file is not read: 500 lines of normal length are far smaller.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// The file in `data_dir`.
pub fn file(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// The lines kept in `path`, oldest first; none if there is no such file or it cannot be
/// trusted (too large, not a file).
pub fn load(path: &Path) -> Vec<String> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Vec::new();
    };
    if !meta.is_file() || meta.len() > MAX_FILE_BYTES {
        return Vec::new();
    }
    let Ok(bytes) = std::fs::read(path) else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<String> = text
        .lines()
        .map(|line| sanitize(line).into_owned())
        .filter(|line| !line.is_empty() && secret_start(line).is_none())
        .collect();
    let skip = lines.len().saturating_sub(HISTORY_LEN);
    lines.into_iter().skip(skip).collect()
}

/// Writes `lines` to `path` whole or not at all (a temporary file, then a rename), private.
pub fn save(path: &Path, lines: &[String]) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        crate::data_dir::ensure(dir)?;
    }
    let temporary = path.with_extension("new");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temporary)?;
    for line in lines.iter().filter(|line| secret_start(line).is_none()) {
        writeln!(file, "{line}")?;
    }
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_come_back_cleaned_bounded_and_without_passwords() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(dir.path());
        assert!(load(&path).is_empty(), "no file: nothing");
        let lines = vec!["/join #rust".to_owned(), "hello 你好".to_owned()];
        save(&path, &lines).unwrap();
        assert_eq!(load(&path), lines);
        std::fs::write(
            &path,
            b"ok\n\x1b[31mred\x1b[0m\n/login bob secret\n\xff\xfe\n",
        )
        .unwrap();
        assert_eq!(load(&path), ["ok", "red", "\u{fffd}\u{fffd}"]);
        let many: String = (0..HISTORY_LEN + 10)
            .map(|n| format!("line {n}\n"))
            .collect();
        std::fs::write(&path, many).unwrap();
        let kept = load(&path);
        assert_eq!(kept.len(), HISTORY_LEN);
        assert_eq!(kept[0], "line 10", "the newest are kept");
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        assert!(load(&path).is_empty(), "a directory is not a history");
    }
}
