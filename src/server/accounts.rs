//! Accounts: `/register PASSWORD` claims the nick in use, `/login NICK PASSWORD` takes it back
//! later, and a registered nick is refused to anyone not logged in as it.
//!
//! Hashes are argon2id in PHC form (salt and parameters inside), with the crate's defaults
//! (OWASP's: 19 MiB, 2 passes), made and checked on the blocking pool, at most
//! [`HASHING_AT_ONCE`] at a time: a crowd logging in at once waits its turn instead of taking
//! every core and a gigabyte of memory. Which nicks are registered is kept in memory, so a
//! `/nick` is checked without touching the disk; the store is read only for a login's hash.
//! Failed logins (and wrong room passwords) are limited per address ([`Throttle`]), and a
//! limited address is refused before any hashing, so a client that sends `/login` a thousand
//! times costs a thousand map lookups, not a thousand hashes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use tokio::sync::Semaphore;
use tracing::warn;

use super::lock;
use crate::names::{Nick, fold};
use crate::protocol::Refusal;
use crate::store::{Account, Registry};

/// Hashes computed at once, server-wide.
const HASHING_AT_ONCE: usize = 2;

/// Shortest password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 6;

/// Longest password, in bytes: enough for any passphrase, short enough to hash quickly.
pub const MAX_PASSWORD_BYTES: usize = 256;

/// Failed attempts an address may make in one [`THROTTLE_WINDOW`] before it must wait.
pub const FAILURES_ALLOWED: u32 = 5;

/// How long an address that failed [`FAILURES_ALLOWED`] times waits, from its first failure.
pub const THROTTLE_WINDOW: Duration = Duration::from_secs(60);

/// The accounts of a server that has a store.
#[derive(Debug)]
pub struct Accounts {
    registry: Mutex<Registry>,
    /// Registered nicks: key → nick as registered.
    registered: Mutex<HashMap<String, String>>,
    hashing: Semaphore,
}

impl Accounts {
    /// The accounts in `registry`.
    pub fn load(registry: Registry) -> rusqlite::Result<Self> {
        let registered = registry
            .accounts()?
            .into_iter()
            .map(|account| (account.key, account.nick))
            .collect();
        Ok(Self {
            registry: Mutex::new(registry),
            registered: Mutex::new(registered),
            hashing: Semaphore::new(HASHING_AT_ONCE),
        })
    }

    /// Whether the nick keyed `key` is registered.
    pub fn is_registered(&self, key: &str) -> bool {
        lock(&self.registered).contains_key(key)
    }

    /// Registers `nick` (the one in use) with `password`; returns the password's hash (PHC
    /// form) and when, for the other nodes of a cluster.
    pub async fn register(
        self: &Arc<Self>,
        nick: &Nick,
        password: &str,
    ) -> Result<(String, i64), Refusal<'static>> {
        check_password(password)?;
        if is_guest(nick.as_str()) {
            return Err(Refusal::GuestNick);
        }
        let key = nick.key();
        if self.is_registered(&key) {
            return Err(Refusal::AlreadyRegistered(nick.to_string()));
        }
        let account = Account {
            key,
            nick: nick.to_string(),
        };
        let password = password.to_owned();
        let accounts = Arc::clone(self);
        let _turn = self
            .hashing
            .acquire()
            .await
            .map_err(|_| Refusal::StoreUnavailable)?;
        let stored = tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            let hash = Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map_err(|error| warn!(%error, "cannot hash a password"))?
                .to_string();
            let now = unix_ms();
            let registry = lock(&accounts.registry);
            match registry.register(&account, &hash, now) {
                Ok(true) => {
                    lock(&accounts.registered).insert(account.key, account.nick);
                    Ok(Some((hash, now)))
                }
                Ok(false) => Ok(None),
                Err(error) => {
                    warn!(%error, "cannot store an account");
                    Err(())
                }
            }
        })
        .await;
        match stored {
            Ok(Ok(Some(made))) => Ok(made),
            Ok(Ok(None)) => Err(Refusal::AlreadyRegistered(nick.to_string())),
            _ => Err(Refusal::StoreUnavailable),
        }
    }

    /// Keeps an account another node of the cluster registered (nothing if this node has it
    /// already). Blocking: one small write.
    pub fn adopt(
        &self,
        key: &str,
        nick: &str,
        hash: &str,
        created_ms: i64,
    ) -> rusqlite::Result<()> {
        let account = Account {
            key: key.to_owned(),
            nick: nick.to_owned(),
        };
        if lock(&self.registry).register(&account, hash, created_ms)? {
            lock(&self.registered).insert(account.key, account.nick);
        }
        Ok(())
    }

    /// Checks `password` for the account `nick` names, from `address` (whose failures
    /// `throttle` counts); the nick as registered if it is right. Wrong nick and wrong password
    /// are one answer, so logins cannot be used to learn which nicks are registered (`/nick`
    /// tells that anyway, but not at this rate).
    pub async fn login(
        self: &Arc<Self>,
        throttle: &Throttle,
        address: IpAddr,
        nick: &str,
        password: &str,
    ) -> Result<String, Refusal<'static>> {
        throttle.check(address)?;
        let key = fold(nick);
        let Some(registered) = lock(&self.registered).get(&key).cloned() else {
            throttle.failed(address);
            return Err(Refusal::LoginFailed);
        };
        let password = password.to_owned();
        let accounts = Arc::clone(self);
        let _turn = self
            .hashing
            .acquire()
            .await
            .map_err(|_| Refusal::StoreUnavailable)?;
        let checked = tokio::task::spawn_blocking(move || {
            let hash = lock(&accounts.registry)
                .hash(&key)
                .map_err(|error| warn!(%error, "cannot read an account"))?;
            let Some(hash) = hash else {
                return Ok(false);
            };
            let parsed = PasswordHash::new(&hash)
                .map_err(|error| warn!(%error, %key, "a stored hash cannot be read"))?;
            Ok::<_, ()>(
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok(),
            )
        })
        .await;
        match checked {
            // A success does not clear the address's failures: it would let a client with an
            // account of its own reset the limit between guesses at another's.
            Ok(Ok(true)) => Ok(registered),
            Ok(Ok(false)) => {
                throttle.failed(address);
                Err(Refusal::LoginFailed)
            }
            _ => Err(Refusal::StoreUnavailable),
        }
    }
}

/// Whether `password` may be one.
pub fn check_password(password: &str) -> Result<(), Refusal<'static>> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS || password.len() > MAX_PASSWORD_BYTES {
        return Err(Refusal::PasswordLength {
            min: MIN_PASSWORD_CHARS,
            max: MAX_PASSWORD_BYTES,
        });
    }
    Ok(())
}

/// Whether `nick` is one the server hands out (`guest-N`): nobody may own those.
fn is_guest(nick: &str) -> bool {
    fold(nick)
        .strip_prefix("guest-")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Failed password attempts per address: after [`FAILURES_ALLOWED`] in a
/// [`THROTTLE_WINDOW`], the address waits for the window's end. Addresses whose window has
/// passed are forgotten as others fail, so the map holds only recent failures.
#[derive(Debug, Default)]
pub struct Throttle {
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl Throttle {
    /// An error saying how long to wait, if `address` has failed too often lately.
    pub fn check(&self, address: IpAddr) -> Result<(), Refusal<'static>> {
        let failures = lock(&self.failures);
        match failures.get(&address) {
            Some(&(count, since)) if count >= FAILURES_ALLOWED => {
                let left = THROTTLE_WINDOW.saturating_sub(since.elapsed());
                if left.is_zero() {
                    Ok(())
                } else {
                    Err(Refusal::Throttled {
                        secs: left.as_secs().max(1),
                    })
                }
            }
            _ => Ok(()),
        }
    }

    /// One more failure from `address`.
    pub fn failed(&self, address: IpAddr) {
        let now = Instant::now();
        let mut failures = lock(&self.failures);
        failures.retain(|_, (_, since)| now.duration_since(*since) < THROTTLE_WINDOW);
        let entry = failures.entry(address).or_insert((0, now));
        entry.0 += 1;
    }
}

/// Now, Unix milliseconds.
pub fn unix_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_nicks_cannot_be_owned() {
        assert!(is_guest("guest-12"));
        assert!(is_guest("GUEST-3"));
        assert!(!is_guest("guest-"));
        assert!(!is_guest("guest-x"));
        assert!(!is_guest("guesthouse"));
    }

    #[test]
    fn passwords_may_have_spaces_and_any_script_within_bounds() {
        assert!(check_password("correct horse").is_ok());
        assert!(check_password("密码是秘密的").is_ok());
        assert!(check_password("short").is_err());
        assert!(check_password(&"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
    }

    #[test]
    fn an_address_that_fails_too_often_waits_and_others_do_not() {
        let throttle = Throttle::default();
        let one: IpAddr = [10, 0, 0, 1].into();
        let other: IpAddr = [10, 0, 0, 2].into();
        for _ in 0..FAILURES_ALLOWED {
            assert!(throttle.check(one).is_ok());
            throttle.failed(one);
        }
        assert!(matches!(
            throttle.check(one),
            Err(Refusal::Throttled { secs }) if secs > 0 && secs <= 60
        ));
        assert!(throttle.check(other).is_ok());
    }
}
