//! The server's store: one SQLite file in the data directory, the only place history, accounts
//! and bans are kept, and the only module that speaks SQL.
//!
//! One [`Store`] writes, from one thread (the server's sequencer, which commits each batch of
//! lines before anyone receives them); any number of [`Reader`]s answer queries on connections
//! of their own, which WAL mode lets read while the writer writes. A lock file keeps a second
//! server off the same directory. `synchronous = NORMAL`: a committed line survives the process
//! being killed at any moment (the WAL is written before the commit returns); a power cut can
//! lose the last commits since the WAL was last synced, which the README states.

mod registry;
mod schema;

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::protocol::SaidKind;

pub use registry::{Account, BanRecord, Registry};
pub use schema::VERSION as SCHEMA_VERSION;

/// The database file's name in the data directory.
pub const FILE_NAME: &str = "tcpchat.sqlite3";

/// The lock file's name: held while a server uses the directory.
const LOCK_NAME: &str = "server.lock";

/// How long a reader waits for a lock the writer holds (a checkpoint, say) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest search query, in characters.
pub const MAX_SEARCH_CHARS: usize = 200;

fn kind_code(kind: SaidKind) -> i64 {
    match kind {
        SaidKind::Message => 0,
        SaidKind::Action => 1,
    }
}

fn kind_from_code(code: i64) -> SaidKind {
    match code {
        1 => SaidKind::Action,
        _ => SaidKind::Message,
    }
}

/// A line to store.
#[derive(Debug, Clone, Copy)]
pub struct NewLine<'a> {
    /// The room it was said in.
    pub room: &'a str,
    /// Its number in the room: one more than the last.
    pub seq: u64,
    /// When the server received it, Unix milliseconds.
    pub at_ms: i64,
    /// Message or action.
    pub kind: SaidKind,
    /// Who said it.
    pub nick: &'a str,
    /// What they said, sanitised.
    pub text: &'a str,
}

/// A line read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLine {
    /// Its number in its room.
    pub seq: u64,
    /// When it was said, Unix milliseconds.
    pub at_ms: i64,
    /// Message or action.
    pub kind: SaidKind,
    /// Who said it.
    pub nick: String,
    /// What they said.
    pub text: String,
}

/// Why a store could not be opened; each says what to do about it.
#[derive(Debug)]
pub enum OpenError {
    /// The data directory could not be created or used.
    Dir(PathBuf, std::io::Error),
    /// Another server holds the directory's lock.
    InUse(PathBuf),
    /// The file is not a tcpchat store (or is damaged).
    NotAStore(PathBuf, rusqlite::Error),
    /// A newer tcpchat wrote it.
    Newer(PathBuf, u32),
    /// Anything else SQLite refused (read-only file, full disk...).
    Sql(PathBuf, rusqlite::Error),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dir(dir, error) => {
                write!(
                    f,
                    "cannot use the data directory {}: {error}",
                    dir.display()
                )
            }
            Self::InUse(dir) => write!(
                f,
                "another tcpchat server is using {} (its lock file is held); give this one \
                 another --data-dir",
                dir.display()
            ),
            Self::NotAStore(file, error) => write!(
                f,
                "{} is not a usable tcpchat store ({error}); move it aside to start a new one",
                file.display()
            ),
            Self::Newer(file, version) => write!(
                f,
                "{} was written by a newer tcpchat (schema {version}, this one knows {})",
                file.display(),
                SCHEMA_VERSION
            ),
            Self::Sql(file, error) => write!(f, "cannot open {}: {error}", file.display()),
        }
    }
}

impl std::error::Error for OpenError {}

/// The writing side of the store.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// Held for the life of the store; the OS releases it if the process dies.
    _lock: File,
}

impl Store {
    /// Opens (creating if needed) the store in `dir`, brings its schema up to date and takes
    /// the directory's lock.
    pub fn open(dir: &Path) -> Result<Self, OpenError> {
        crate::data_dir::ensure(dir).map_err(|e| OpenError::Dir(dir.to_owned(), e))?;
        let lock =
            File::create(dir.join(LOCK_NAME)).map_err(|e| OpenError::Dir(dir.to_owned(), e))?;
        if lock.try_lock().is_err() {
            return Err(OpenError::InUse(dir.to_owned()));
        }
        let path = dir.join(FILE_NAME);
        let sql = |e| classify(&path, e);
        let mut conn = Connection::open(&path).map_err(sql)?;
        // The writer retries a lock every 200 µs: SQLite's own timeout backs off to sleeps of
        // 100 ms, which a line waiting for its batch would wait out in full.
        conn.busy_handler(Some(retry_soon)).map_err(sql)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql)?;
        // Checkpoints (which write the WAL back and sync) are the upkeep's, off the path of
        // lines; the writer checkpoints only if the WAL grows this large all the same.
        conn.pragma_update(None, "wal_autocheckpoint", WRITER_CHECKPOINT_PAGES)
            .map_err(sql)?;
        schema::migrate(&mut conn).map_err(|error| match error {
            schema::SchemaError::Newer { found } => OpenError::Newer(path.clone(), found),
            schema::SchemaError::Sql(e) => classify(&path, e),
        })?;
        #[cfg(debug_assertions)]
        fault_injection::limit_size(&conn);
        Ok(Self {
            conn,
            path,
            _lock: lock,
        })
    }

    /// Where the database file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A reader on a connection of its own.
    pub fn reader(&self) -> rusqlite::Result<Reader> {
        Reader::open(&self.path)
    }

    /// Stores `lines` in one transaction: all of them or, on error, none.
    pub fn append(&mut self, lines: &[NewLine<'_>]) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO lines (room, seq, at, kind, nick, text) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for line in lines {
                insert.execute(params![
                    line.room,
                    line.seq as i64,
                    line.at_ms,
                    kind_code(line.kind),
                    line.nick,
                    line.text
                ])?;
            }
        }
        tx.commit()
    }

    /// The highest `seq` stored for `room` (0 if none).
    pub fn last_seq(&self, room: &str) -> rusqlite::Result<u64> {
        let seq: Option<i64> = self.conn.query_row(
            "SELECT MAX(seq) FROM lines WHERE room = ?1",
            [room],
            |row| row.get(0),
        )?;
        Ok(seq.unwrap_or(0).max(0) as u64)
    }

    /// A connection of its own for accounts and bans.
    pub fn registry(&self) -> rusqlite::Result<Registry> {
        let conn = Connection::open(&self.path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        #[cfg(debug_assertions)]
        fault_injection::limit_size(&conn);
        Ok(Registry::new(conn))
    }

    /// A connection of its own for the store's upkeep (indexing lines for search, expiring
    /// old ones), so that neither ever holds up the writer by more than one small transaction.
    pub fn upkeep(&self) -> rusqlite::Result<Upkeep> {
        let conn = Connection::open(&self.path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        #[cfg(debug_assertions)]
        fault_injection::limit_size(&conn);
        Ok(Upkeep { conn })
    }
}

/// Lines expired per transaction.
const CHUNK: i64 = 5_000;

/// Lines indexed per transaction: the writer waits for the upkeep's transaction, so each is
/// kept to a millisecond or two.
const INDEX_CHUNK: i64 = 256;

/// WAL pages past which the writer checkpoints itself (64 MiB): normally the upkeep
/// checkpoints long before, after each round of indexing.
const WRITER_CHECKPOINT_PAGES: i64 = 16_384;

/// How the writer waits for a lock: every 200 µs, for about 5 s ([`BUSY_TIMEOUT`]).
fn retry_soon(attempts: i32) -> bool {
    const EVERY: Duration = Duration::from_micros(200);
    let waited = EVERY * u32::try_from(attempts).unwrap_or(u32::MAX);
    if waited >= BUSY_TIMEOUT {
        return false;
    }
    std::thread::sleep(EVERY);
    true
}

/// Indexes new lines for search and deletes what is past keeping.
#[derive(Debug)]
pub struct Upkeep {
    conn: Connection,
}

impl Upkeep {
    /// Adds up to [`INDEX_CHUNK`] lines not yet in the search index; returns how many.
    pub fn index(&mut self) -> rusqlite::Result<usize> {
        let tx = self.conn.transaction()?;
        let added = tx.execute(
            "INSERT INTO lines_text (rowid, text)
             SELECT id, text FROM lines WHERE id > (SELECT id FROM indexed) ORDER BY id LIMIT ?1",
            [INDEX_CHUNK],
        )?;
        tx.execute(
            "UPDATE indexed SET id = (SELECT IFNULL(MAX(rowid), 0) FROM lines_text)",
            [],
        )?;
        tx.commit()?;
        Ok(added)
    }

    /// Writes what the WAL holds back to the database as far as it can without waiting for
    /// anyone (a passive checkpoint), so the WAL stays small and the writer never syncs.
    pub fn checkpoint(&mut self) -> rusqlite::Result<()> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
    }

    /// Deletes lines older than `before_ms`, and in each room all but the newest `keep`;
    /// returns how many went. Only indexed lines go (the index must see each line it has
    /// leave), in small transactions so the writer is never held long.
    pub fn expire(&mut self, before_ms: i64, keep: u64) -> rusqlite::Result<usize> {
        let mut deleted = 0;
        // Oldest first, a chunk at a time, until a chunk holds a line young enough to keep
        // (ids follow the order lines were said in, so the rest are younger still).
        loop {
            let n = self.conn.execute(
                "DELETE FROM lines WHERE id IN (SELECT id FROM lines
                     WHERE id <= (SELECT id FROM indexed) ORDER BY id LIMIT ?2)
                 AND at < ?1",
                params![before_ms, CHUNK],
            )?;
            deleted += n;
            if (n as i64) < CHUNK {
                break;
            }
        }
        let rooms: Vec<(String, i64)> = {
            let mut query = self
                .conn
                .prepare("SELECT room, MAX(seq) FROM lines GROUP BY room")?;
            query
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?
        };
        for (room, max) in rooms {
            let floor = max - keep.min(i64::MAX as u64) as i64;
            loop {
                let n = self.conn.execute(
                    "DELETE FROM lines WHERE id IN (SELECT id FROM lines
                         WHERE room = ?1 AND seq <= ?2 AND id <= (SELECT id FROM indexed)
                         LIMIT ?3)",
                    params![room, floor, CHUNK],
                )?;
                deleted += n;
                if (n as i64) < CHUNK {
                    break;
                }
            }
        }
        Ok(deleted)
    }
}

/// Fault injection for tests, compiled into debug builds only: the environment variable
/// `TCPCHAT_FAULT_STORE_MAX_PAGES` caps the writer's database at that many pages, so a test
/// meets SQLite's `SQLITE_FULL` exactly as a full disk gives it.
#[cfg(debug_assertions)]
mod fault_injection {
    pub(super) fn limit_size(conn: &rusqlite::Connection) {
        if let Some(pages) = std::env::var("TCPCHAT_FAULT_STORE_MAX_PAGES")
            .ok()
            .and_then(|v| v.parse::<i64>().ok())
        {
            let _ = conn.pragma_update(None, "max_page_count", pages);
        }
    }
}

/// Tells a file that is not a database from other failures.
fn classify(path: &Path, error: rusqlite::Error) -> OpenError {
    use rusqlite::ErrorCode;
    match error.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
            OpenError::NotAStore(path.to_owned(), error)
        }
        _ => OpenError::Sql(path.to_owned(), error),
    }
}

/// A read-only connection for history and search.
#[derive(Debug)]
pub struct Reader {
    conn: Connection,
}

impl Reader {
    /// A read-only connection to the store file at `path` (see [`Store::path`]).
    pub fn open(path: &Path) -> rusqlite::Result<Self> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        Ok(Self { conn })
    }

    /// The newest `n` lines of `room` numbered at most `up_to`, oldest first.
    pub fn last(&self, room: &str, up_to: u64, n: usize) -> rusqlite::Result<Vec<StoredLine>> {
        let mut lines = self.query(
            "SELECT seq, at, kind, nick, text FROM lines WHERE room = ?1 AND seq <= ?2
             ORDER BY seq DESC LIMIT ?3",
            params![room, up_to as i64, n as i64],
        )?;
        lines.reverse();
        Ok(lines)
    }

    /// Lines of `room` numbered after `after` and at most `up_to`, oldest first, at most `n`
    /// (the oldest of them).
    pub fn since(
        &self,
        room: &str,
        after: u64,
        up_to: u64,
        n: usize,
    ) -> rusqlite::Result<Vec<StoredLine>> {
        self.query(
            "SELECT seq, at, kind, nick, text FROM lines WHERE room = ?1 AND seq > ?2 AND seq <= ?3
             ORDER BY seq LIMIT ?4",
            params![room, after as i64, up_to as i64, n as i64],
        )
    }

    /// Lines of `room` (numbered at most `up_to`) containing every word of `words`, any case,
    /// newest first, at most `n`. Words of three characters or more use the trigram index
    /// (lines not indexed yet are scanned); shorter ones are matched by scanning the room's
    /// newest lines. Every word is a bound parameter, taken literally: no SQL or FTS5 syntax
    /// in it means anything.
    pub fn search(
        &self,
        room: &str,
        words: &[&str],
        up_to: u64,
        n: usize,
    ) -> rusqlite::Result<Vec<StoredLine>> {
        use rusqlite::types::Value;
        /// How far back a search with only short words looks.
        const SCAN: i64 = 200_000;
        let (long, short): (Vec<&str>, Vec<&str>) =
            words.iter().partition(|w| w.chars().count() >= 3);
        let likes = |words: &[&str], values: &mut Vec<Value>| -> String {
            let mut filter = String::new();
            for word in words {
                values.push(Value::Text(format!("%{}%", like_pattern(word))));
                filter.push_str(&format!(" AND text LIKE ?{} ESCAPE '\\'", values.len()));
            }
            filter
        };
        let base = || {
            vec![
                Value::Text(room.to_owned()),
                Value::Integer(up_to as i64),
                Value::Integer(n as i64),
            ]
        };
        let select = |filter: &str| {
            format!(
                "SELECT seq, at, kind, nick, text FROM lines
                 WHERE room = ?1 AND seq <= ?2{filter} ORDER BY seq DESC LIMIT ?3"
            )
        };
        if long.is_empty() {
            let mut values = base();
            values.push(Value::Integer(SCAN));
            let filter = format!(" AND seq > ?2 - ?4{}", likes(&short, &mut values));
            return self.query(&select(&filter), rusqlite::params_from_iter(values));
        }
        // Both queries read one snapshot: were the upkeep to index lines between them, a line
        // could be found unindexed by the first and indexed by the second, and listed twice.
        let snapshot = self.conn.unchecked_transaction()?;
        // The newest lines, not yet indexed: every word scanned.
        let mut values = base();
        let filter = format!(
            " AND id > (SELECT id FROM indexed){}",
            likes(words, &mut values)
        );
        let mut found = self.query(&select(&filter), rusqlite::params_from_iter(values))?;
        // The indexed ones: each long word a quoted phrase, so FTS5 operators are plain text.
        let mut values = base();
        let phrases: Vec<String> = long
            .iter()
            .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
            .collect();
        values.push(Value::Text(phrases.join(" AND ")));
        let filter = format!(
            " AND id IN (SELECT rowid FROM lines_text WHERE lines_text MATCH ?4){}",
            likes(&short, &mut values)
        );
        found.extend(self.query(&select(&filter), rusqlite::params_from_iter(values))?);
        snapshot.finish()?;
        found.truncate(n);
        Ok(found)
    }

    fn query(&self, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<Vec<StoredLine>> {
        let mut statement = self.conn.prepare_cached(sql)?;
        statement
            .query_map(params, |row| {
                Ok(StoredLine {
                    seq: row.get::<_, i64>(0)?.max(0) as u64,
                    at_ms: row.get(1)?,
                    kind: kind_from_code(row.get(2)?),
                    nick: row.get(3)?,
                    text: row.get(4)?,
                })
            })?
            .collect()
    }

    /// The highest `seq` stored for `room`, if any line is.
    pub fn last_seq(&self, room: &str) -> rusqlite::Result<Option<u64>> {
        self.conn
            .query_row(
                "SELECT seq FROM lines WHERE room = ?1 ORDER BY seq DESC LIMIT 1",
                [room],
                |row| row.get::<_, i64>(0),
            )
            .optional()
            .map(|seq| seq.map(|s| s.max(0) as u64))
    }
}

/// `word` for a `LIKE` with `\` as the escape: `%`, `_` and `\` match only themselves.
fn like_pattern(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    for c in word.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests;
