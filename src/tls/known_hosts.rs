//! The client's pinned keys: `DATA_DIR/known_hosts`, one `HOST:PORT SHA256:...` line per server
//! whose certificate chains to no root the client trusts (a self-signed one), as SSH keeps its
//! `known_hosts`. The first connection writes the line; later ones compare with it.
//!
//! The file is rewritten whole and atomically (a temporary file, then a rename), readable by
//! its owner alone (0600); lines it does not understand (comments, a hand edit) are kept as
//! they are. A changed key is never written over: `tcpchat --tls-forget HOST:PORT` removes the
//! line, or a person deletes it by hand.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use super::Fingerprint;

/// The file's name in the data directory.
pub const FILE_NAME: &str = "known_hosts";

/// The comment a new file starts with.
const HEADER: &str = "# tcpchat: the key pinned for each HOST:PORT whose certificate chains to no trusted root\n\
# (SHA-256 of its public key). To accept a changed key: tcpchat --tls-forget HOST:PORT, or delete its line.\n";

/// The known-hosts file of one data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownHosts {
    path: PathBuf,
}

/// A line for the host is there but cannot be read: nothing can be compared with it.
#[derive(Debug)]
pub struct Unreadable {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub why: String,
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.why)
    }
}

impl KnownHosts {
    /// The file in `data_dir`.
    pub fn in_dir(data_dir: &Path) -> Self {
        Self {
            path: data_dir.join(FILE_NAME),
        }
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The key pinned for `target` (`HOST:PORT`), if any.
    pub fn get(&self, target: &str) -> Result<Option<Fingerprint>, Unreadable> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => {
                return Err(Unreadable {
                    path: self.path.clone(),
                    why: error.to_string(),
                });
            }
        };
        for line in text.lines() {
            if let Some(fingerprint) = entry_for(line, target) {
                return match Fingerprint::parse(fingerprint) {
                    Some(fingerprint) => Ok(Some(fingerprint)),
                    None => Err(Unreadable {
                        path: self.path.clone(),
                        why: format!("the line for {target} has no SHA256: key: {line:?}"),
                    }),
                };
            }
        }
        Ok(None)
    }

    /// Pins `fingerprint` for `target`, replacing any line it had.
    pub fn pin(&self, target: &str, fingerprint: Fingerprint) -> io::Result<()> {
        let mut lines = self.lines_without(target)?;
        lines.push(format!("{target} {fingerprint}"));
        self.write(&lines)
    }

    /// Removes the line for `target`; returns the key it pinned, if there was one.
    pub fn forget(&self, target: &str) -> io::Result<Option<String>> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error),
        };
        let Some(old) = text
            .lines()
            .find_map(|line| entry_for(line, target))
            .map(str::to_owned)
        else {
            return Ok(None);
        };
        self.write(&self.lines_without(target)?)?;
        Ok(Some(old))
    }

    /// Every line of the file except `target`'s (a new file starts with the header).
    fn lines_without(&self, target: &str) -> io::Result<Vec<String>> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(error) if error.kind() == io::ErrorKind::NotFound => HEADER.to_owned(),
            Err(error) => return Err(error),
        };
        Ok(text
            .lines()
            .filter(|line| entry_for(line, target).is_none())
            .map(str::to_owned)
            .collect())
    }

    fn write(&self, lines: &[String]) -> io::Result<()> {
        if let Some(dir) = self.path.parent() {
            crate::data_dir::ensure(dir)?;
        }
        let temporary = self
            .path
            .with_file_name(format!("{FILE_NAME}.tmp-{}", std::process::id()));
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temporary)?;
        for line in lines {
            writeln!(file, "{line}")?;
        }
        file.sync_all()?;
        drop(file);
        fs::rename(&temporary, &self.path)
    }
}

/// The key part of `line` if it is the entry for `target`.
fn entry_for<'a>(line: &'a str, target: &str) -> Option<&'a str> {
    let line = line.trim();
    if line.starts_with('#') {
        return None;
    }
    let mut words = line.split_whitespace();
    (words.next()? == target).then(|| words.next().unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_kept_per_host_and_port_and_forgotten_one_by_one() {
        let dir = tempfile::tempdir().unwrap();
        let known = KnownHosts::in_dir(dir.path());
        let (a, b) = (Fingerprint::of_spki(b"a"), Fingerprint::of_spki(b"b"));
        assert_eq!(known.get("h:1").unwrap(), None);
        known.pin("h:1", a).unwrap();
        known.pin("h:2", b).unwrap();
        assert_eq!(known.get("h:1").unwrap(), Some(a));
        assert_eq!(known.get("h:2").unwrap(), Some(b));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(known.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let text = fs::read_to_string(known.path()).unwrap();
        assert!(text.starts_with("# tcpchat"), "{text}");
        assert_eq!(known.forget("h:1").unwrap(), Some(a.to_string()));
        assert_eq!(known.forget("h:1").unwrap(), None);
        assert_eq!(known.get("h:1").unwrap(), None);
        assert_eq!(known.get("h:2").unwrap(), Some(b));
    }

    #[test]
    fn a_damaged_line_for_the_host_is_an_error_and_others_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let known = KnownHosts::in_dir(dir.path());
        fs::write(known.path(), "# mine\nh:1 nonsense\nweird line\n").unwrap();
        assert!(known.get("h:1").is_err());
        assert_eq!(known.get("h:2").unwrap(), None);
        known.pin("h:2", Fingerprint::of_spki(b"b")).unwrap();
        let text = fs::read_to_string(known.path()).unwrap();
        assert!(text.starts_with("# mine\nh:1 nonsense\nweird line\nh:2 SHA256:"));
    }
}
