//! The store's schema, as numbered migrations kept in the code. `PRAGMA user_version` says how
//! many have run; opening a store runs the rest, each in its own transaction, and refuses a
//! store made by a newer tcpchat (it would not know that store's tables).

use rusqlite::Connection;

/// Every migration, in order; `MIGRATIONS[n]` takes a store from version `n` to `n + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: history. `seq` numbers a room's lines from 1 with no gaps, so a client can tell what
    // it missed; `at` is Unix time in milliseconds (UTC). The trigram index answers `/search`
    // for words of three characters or more in any script (Chinese has no spaces to split on).
    "CREATE TABLE lines (
         id INTEGER PRIMARY KEY,
         room TEXT NOT NULL,
         seq INTEGER NOT NULL,
         at INTEGER NOT NULL,
         kind INTEGER NOT NULL,
         nick TEXT NOT NULL,
         text TEXT NOT NULL,
         UNIQUE (room, seq)
     );
     CREATE INDEX lines_by_time ON lines (at);
     CREATE VIRTUAL TABLE lines_text USING fts5 (
         text, content = 'lines', content_rowid = 'id', tokenize = 'trigram'
     );
     CREATE TRIGGER lines_indexed AFTER INSERT ON lines BEGIN
         INSERT INTO lines_text (rowid, text) VALUES (new.id, new.text);
     END;
     CREATE TRIGGER lines_unindexed AFTER DELETE ON lines BEGIN
         INSERT INTO lines_text (lines_text, rowid, text) VALUES ('delete', old.id, old.text);
     END;",
    // 2: the search index is brought up to date after the commit, not in it: indexing a line's
    // trigrams cost several times what storing it does, and every delivery waited for it.
    // `indexed` is the last line id in the index (all of them, when this runs). Lines are
    // stored in the order they are said, so expiry by age walks ids and needs no time index.
    "DROP TRIGGER lines_indexed;
     DROP INDEX lines_by_time;
     CREATE TABLE indexed (id INTEGER NOT NULL);
     INSERT INTO indexed VALUES ((SELECT IFNULL(MAX(id), 0) FROM lines));",
    // 3: accounts and bans. An account is keyed by its nick as nicks are compared (`names::
    // fold`), keeps the nick as registered and an argon2id hash in PHC form (the salt and the
    // parameters inside). A ban's target is `nick:KEY` or `net:CIDR`; times are Unix ms, and a
    // ban without `until` lasts until it is lifted.
    "CREATE TABLE accounts (
         key TEXT PRIMARY KEY,
         nick TEXT NOT NULL,
         hash TEXT NOT NULL,
         created INTEGER NOT NULL
     ) WITHOUT ROWID;
     CREATE TABLE bans (
         target TEXT PRIMARY KEY,
         by TEXT NOT NULL,
         reason TEXT NOT NULL,
         created INTEGER NOT NULL,
         until INTEGER
     ) WITHOUT ROWID;",
];

/// The schema version this build writes.
pub const VERSION: u32 = MIGRATIONS.len() as u32;

/// Why a store's schema could not be brought up to date.
#[derive(Debug)]
pub enum SchemaError {
    /// The store was written by a newer tcpchat.
    Newer {
        /// The store's version.
        found: u32,
    },
    /// SQLite refused.
    Sql(rusqlite::Error),
}

impl From<rusqlite::Error> for SchemaError {
    fn from(error: rusqlite::Error) -> Self {
        Self::Sql(error)
    }
}

/// Runs the migrations `conn` has not had yet.
pub fn migrate(conn: &mut Connection) -> Result<(), SchemaError> {
    let found: u32 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found > VERSION {
        return Err(SchemaError::Newer { found });
    }
    for (done, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", done as u32 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_run_once_and_a_newer_store_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        let version: u32 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, VERSION);
        conn.pragma_update(None, "user_version", VERSION + 1)
            .unwrap();
        assert!(matches!(
            migrate(&mut conn),
            Err(SchemaError::Newer { found }) if found == VERSION + 1
        ));
    }
}
