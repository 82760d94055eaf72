//! Accounts and bans, in the same file as history: the SQL for both, on a connection of its
//! own. Both change rarely (a registration, a ban), so the server keeps what it checks on
//! every connection and every `/nick` in memory (see `server::accounts` and `server::bans`)
//! and comes here only to write, and to read a hash when someone logs in.

use rusqlite::{Connection, OptionalExtension, params};

/// A registered account: its key (the nick as nicks are compared) and the nick as registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// `names::fold` of the nick.
    pub key: String,
    /// The nick as it was registered.
    pub nick: String,
}

/// A ban as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BanRecord {
    /// `nick:KEY` or `net:CIDR`.
    pub target: String,
    /// The operator who set it.
    pub by: String,
    /// Why, as the operator said (may be empty).
    pub reason: String,
    /// When it was set, Unix ms.
    pub created_ms: i64,
    /// When it ends, Unix ms; `None` until lifted.
    pub until_ms: Option<i64>,
}

/// The store's connection for accounts and bans.
#[derive(Debug)]
pub struct Registry {
    conn: Connection,
}

impl Registry {
    pub(super) fn new(conn: Connection) -> Self {
        Self { conn }
    }

    /// Every account (keys and nicks, not hashes).
    pub fn accounts(&self) -> rusqlite::Result<Vec<Account>> {
        let mut query = self.conn.prepare("SELECT key, nick FROM accounts")?;
        let rows = query.query_map([], |row| {
            Ok(Account {
                key: row.get(0)?,
                nick: row.get(1)?,
            })
        })?;
        rows.collect()
    }

    /// The password hash of the account keyed `key`, if there is one.
    pub fn hash(&self, key: &str) -> rusqlite::Result<Option<String>> {
        self.conn
            .query_row("SELECT hash FROM accounts WHERE key = ?1", [key], |row| {
                row.get(0)
            })
            .optional()
    }

    /// Registers `account` with `hash`; `false` if its key is registered already.
    pub fn register(&self, account: &Account, hash: &str, now_ms: i64) -> rusqlite::Result<bool> {
        let added = self.conn.execute(
            "INSERT OR IGNORE INTO accounts (key, nick, hash, created) VALUES (?1, ?2, ?3, ?4)",
            params![account.key, account.nick, hash, now_ms],
        )?;
        Ok(added == 1)
    }

    /// The bans still in force at `now_ms`; the ones that ended are deleted.
    pub fn bans(&self, now_ms: i64) -> rusqlite::Result<Vec<BanRecord>> {
        self.conn.execute(
            "DELETE FROM bans WHERE until IS NOT NULL AND until <= ?1",
            [now_ms],
        )?;
        let mut query = self
            .conn
            .prepare("SELECT target, by, reason, created, until FROM bans ORDER BY created")?;
        let rows = query.query_map([], |row| {
            Ok(BanRecord {
                target: row.get(0)?,
                by: row.get(1)?,
                reason: row.get(2)?,
                created_ms: row.get(3)?,
                until_ms: row.get(4)?,
            })
        })?;
        rows.collect()
    }

    /// Sets a ban, replacing one on the same target.
    pub fn ban(&self, ban: &BanRecord) -> rusqlite::Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO bans (target, by, reason, created, until)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![ban.target, ban.by, ban.reason, ban.created_ms, ban.until_ms],
        )?;
        Ok(())
    }

    /// Lifts the ban on `target`; `false` if there was none.
    pub fn unban(&self, target: &str) -> rusqlite::Result<bool> {
        Ok(self
            .conn
            .execute("DELETE FROM bans WHERE target = ?1", [target])?
            == 1)
    }
}
