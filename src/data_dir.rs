//! The directory a person's tcpchat data lives in (SPEC §4a): the server's store, and later the
//! client's transcripts and pinned keys. `$XDG_DATA_HOME/tcpchat` (`~/.local/share/tcpchat`)
//! unless `--data-dir` says otherwise; created private (0700) on first use. Nothing is written
//! outside it: every file name below it is chosen here, never taken from a peer.

use std::io;
use std::path::{Path, PathBuf};

/// The default data directory, if the platform has a home for one.
pub fn default() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "tcpchat").map(|dirs| dirs.data_dir().to_path_buf())
}

/// Creates `dir` (and its parents) if needed, private to this user, and checks that it is a
/// directory we can write.
pub fn ensure(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    let meta = std::fs::metadata(dir)?;
    if !meta.is_dir() {
        return Err(io::Error::other(format!(
            "{} is not a directory",
            dir.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(unix)]
    fn a_new_data_dir_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let base = std::env::temp_dir().join(format!("tcpchat-dd-{}", std::process::id()));
        let dir = base.join("a").join("b");
        ensure(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        ensure(&dir).unwrap(); // already there: fine
        std::fs::write(base.join("file"), b"x").unwrap();
        assert!(
            ensure(&base.join("file")).is_err(),
            "a file is not a data dir"
        );
        std::fs::remove_dir_all(&base).unwrap();
    }
}
