//! Client transcripts (`--log`): the lines a room shows, sanitised, appended to a plain UTF-8
//! file per server, room and day under `DATA_DIR/transcripts/`, written by a thread of its own
//! so the screen never waits on the disk.
//!
//! Every path component that comes from outside (the server's address, a room's name) goes
//! through [`file_name`], which keeps letters, digits, `-`, `_` and inner dots and
//! percent-encodes every other byte, so `..`, `/`, control characters or a 10 KB name can
//! never leave the transcripts directory or make a file the system refuses.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use chrono::NaiveDateTime;

/// Lines queued towards the writer thread; past this they are counted and dropped, and the
/// next note says so (the chat itself never waits for the transcript).
const QUEUE: usize = 4096;

/// Longest file name component made from outside text, in bytes.
const MAX_NAME: usize = 96;

/// One line to write.
#[derive(Debug)]
struct Record {
    room: String,
    at: NaiveDateTime,
    text: String,
}

/// The client's transcript: where lines go, and what went wrong if anything did.
#[derive(Debug)]
pub struct Transcript {
    lines: SyncSender<Record>,
    /// The writer's first failure, taken once by [`Transcript::trouble`].
    failure: Arc<Mutex<Option<String>>>,
    dropped: u64,
    dir: PathBuf,
    thread: std::thread::JoinHandle<()>,
}

impl Transcript {
    /// Starts writing transcripts of `server` under `data_dir`.
    pub fn start(data_dir: &Path, server: &str) -> io::Result<Self> {
        let dir = data_dir.join("transcripts").join(file_name(server));
        crate::data_dir::ensure(&dir)?;
        let (lines, records) = mpsc::sync_channel(QUEUE);
        let failure = Arc::new(Mutex::new(None));
        let writer = Writer {
            dir: dir.clone(),
            open: None,
            failure: failure.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("transcript".into())
            .spawn(move || writer.run(&records))?;
        Ok(Self {
            lines,
            failure,
            dropped: 0,
            dir,
            thread,
        })
    }

    /// Where this server's transcripts are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Queues `text`, said in `room` at `at`.
    pub fn write(&mut self, room: &str, at: NaiveDateTime, text: &str) {
        let record = Record {
            room: room.to_owned(),
            at,
            text: text.to_owned(),
        };
        match self.lines.try_send(record) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.dropped += 1,
            Err(TrySendError::Disconnected(_)) => {} // the writer failed; `trouble` says why
        }
    }

    /// Writes what is queued and stops the writer.
    pub fn finish(self) {
        let Self { lines, thread, .. } = self;
        drop(lines);
        // A writer that panicked has nothing left to write.
        let _ = thread.join();
    }

    /// What went wrong since the last call, in words, if anything did.
    pub fn trouble(&mut self) -> Option<String> {
        let failed = self
            .failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(error) = failed {
            return Some(format!("the transcript stopped: {error}"));
        }
        let dropped = std::mem::take(&mut self.dropped);
        (dropped > 0).then(|| format!("the transcript fell behind; {dropped} lines not written"))
    }
}

/// The writer thread: one open file at a time, for the room and day of the last line.
struct Writer {
    dir: PathBuf,
    open: Option<((String, chrono::NaiveDate), File)>,
    failure: Arc<Mutex<Option<String>>>,
}

impl Writer {
    fn run(mut self, records: &mpsc::Receiver<Record>) {
        for record in records {
            if let Err(error) = self.write(&record) {
                *self
                    .failure
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(error.to_string());
                return;
            }
        }
    }

    fn write(&mut self, record: &Record) -> io::Result<()> {
        let key = (record.room.clone(), record.at.date());
        let file = match &mut self.open {
            Some((open, file)) if *open == key => file,
            _ => {
                let dir = self.dir.join(file_name(&record.room));
                crate::data_dir::ensure(&dir)?;
                let path = dir.join(format!("{}.log", record.at.date().format("%Y-%m-%d")));
                let file = OpenOptions::new().create(true).append(true).open(path)?;
                &mut self.open.insert((key, file)).1
            }
        };
        writeln!(
            file,
            "{} {}",
            record.at.time().format("%H:%M:%S"),
            record.text
        )
    }
}

/// `raw` as one safe file name component: letters, digits, `-`, `_` and dots not at the start
/// stay; every other byte becomes `%XX`; at most [`MAX_NAME`] bytes (a longer name keeps its
/// start and gets a hash of the whole, so two long names stay apart).
pub fn file_name(raw: &str) -> String {
    let mut name = String::with_capacity(raw.len());
    for (i, byte) in raw.bytes().enumerate() {
        let keep =
            byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_') || (byte == b'.' && i > 0);
        if keep {
            name.push(char::from(byte));
        } else {
            name.push_str(&format!("%{byte:02X}"));
        }
    }
    if name.is_empty() {
        return "%".to_owned();
    }
    if name.len() > MAX_NAME {
        let hash = raw.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        name.truncate(MAX_NAME - 17);
        name.push_str(&format!("~{hash:016x}"));
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_outside_never_leave_the_directory() {
        assert_eq!(file_name("#lobby"), "%23lobby");
        assert_eq!(file_name("127.0.0.1:8888"), "127.0.0.1%3A8888");
        assert_eq!(file_name(".."), "%2E.");
        assert_eq!(file_name("../../etc/passwd"), "%2E.%2F..%2Fetc%2Fpasswd");
        assert_eq!(file_name("a\u{0}b\nc"), "a%00b%0Ac");
        assert_eq!(file_name(""), "%");
        assert_eq!(file_name("你"), "%E4%BD%A0");
        let long = file_name(&"x".repeat(10_000));
        assert_eq!(long.len(), MAX_NAME);
        assert_ne!(long, file_name(&"x".repeat(9_999)), "long names stay apart");
        for name in ["..", ".", "a/b", "\\", "~", "C:"] {
            let made = file_name(name);
            assert!(
                !made.starts_with('.') && !made.contains(['/', '\\', ':']),
                "{made}"
            );
        }
    }

    #[test]
    fn lines_go_to_a_file_per_room_and_day() {
        let dir = tempfile::tempdir().unwrap();
        let mut transcript = Transcript::start(dir.path(), "127.0.0.1:8888").unwrap();
        let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        let at = |h, m| day.and_hms_opt(h, m, 0).unwrap();
        transcript.write("#lobby", at(10, 0), "<bob> 你好");
        transcript.write("#../../x", at(10, 1), "<eve> escape?");
        transcript.write(
            "#lobby",
            day.succ_opt().unwrap().and_hms_opt(0, 1, 0).unwrap(),
            "late",
        );
        let base = transcript.dir().to_owned();
        transcript.finish();
        let read = |room: &str, date: &str| {
            let path = base.join(file_name(room)).join(format!("{date}.log"));
            std::fs::read_to_string(&path).unwrap()
        };
        assert_eq!(read("#lobby", "2026-11-30"), "10:00:00 <bob> 你好\n");
        assert_eq!(read("#lobby", "2026-12-01"), "00:01:00 late\n");
        assert_eq!(read("#../../x", "2026-11-30"), "10:01:00 <eve> escape?\n");
        assert!(base.starts_with(dir.path().join("transcripts")));
    }

    #[test]
    fn rooms_and_conversations_named_like_paths_stay_inside() {
        let dir = tempfile::tempdir().unwrap();
        let mut transcript = Transcript::start(dir.path(), "127.0.0.1:8888").unwrap();
        let at = chrono::NaiveDate::from_ymd_opt(2026, 11, 30)
            .unwrap()
            .and_hms_opt(10, 0, 0)
            .unwrap();
        // A room name may hold `/` and `..`; so may a nick, and a private buffer is `@nick`.
        for room in ["#../../etc", "@../../etc", "@..", "#.."] {
            transcript.write(room, at, "<eve> escape?");
        }
        let base = transcript.dir().to_owned();
        transcript.finish();
        let mut rooms: Vec<String> = std::fs::read_dir(&base)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        rooms.sort();
        assert_eq!(
            rooms,
            ["%23..", "%23..%2F..%2Fetc", "%40..", "%40..%2F..%2Fetc"]
        );
        let escaped = dir.path().join("etc");
        assert!(!escaped.exists(), "nothing outside the transcripts");
    }
}
