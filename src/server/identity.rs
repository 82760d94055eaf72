//! Who someone is on this server, beyond a nick: the accounts, the operators among them, the
//! bans and mutes they set, the server's password, and the failed-password limit. One
//! [`Identity`] is shared by every session and by the accept loop (which turns banned
//! addresses away before any task is spawned).

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use subtle::ConstantTimeEq;

use super::accounts::{Accounts, Throttle};
use super::bans::{Ban, Bans, Mutes};
use crate::protocol::Refusal;

/// Everything about identity a server was started with.
#[derive(Debug, Default)]
pub struct Identity {
    /// Registered accounts, if the server has a store.
    pub accounts: Option<Arc<Accounts>>,
    /// Bans in force, if the server has a store.
    pub bans: Option<Arc<Bans>>,
    /// Mutes in force.
    pub mutes: Mutes,
    /// The operators' account keys (`--op`).
    pub operators: HashSet<String>,
    /// The server's password (`--password-file`), if it has one.
    pub password: Option<String>,
    /// Failed passwords (logins and the server's), per address.
    pub throttle: Throttle,
}

impl Identity {
    /// Whether `given` is the server's password; timing says nothing about how much of it
    /// was right.
    pub fn password_is(&self, given: &str) -> bool {
        self.password
            .as_deref()
            .is_some_and(|password| bool::from(password.as_bytes().ct_eq(given.as_bytes())))
    }

    /// Whether the account keyed `account` is an operator's.
    pub fn is_operator(&self, account: Option<&str>) -> bool {
        account.is_some_and(|key| self.operators.contains(key))
    }

    /// The ban on the nick keyed `key`, as the refusal that tells it.
    pub fn nick_banned(&self, key: &str) -> Option<Refusal<'static>> {
        let ban = self.bans.as_ref()?.on_nick(key)?;
        Some(banned(&ban))
    }

    /// Whether a member logged in as `account` (if any) may take the nick keyed `key`.
    pub fn may_take(
        &self,
        key: &str,
        nick: &str,
        account: Option<&str>,
    ) -> Result<(), Refusal<'static>> {
        if let Some(banned) = self.nick_banned(key) {
            return Err(banned);
        }
        let registered = self
            .accounts
            .as_ref()
            .is_some_and(|accounts| accounts.is_registered(key));
        if registered && account != Some(key) {
            return Err(Refusal::NickRegistered(nick.to_owned()));
        }
        Ok(())
    }

    /// The ban on `address`, as the refusal that tells it.
    pub fn address_banned(&self, address: IpAddr) -> Option<Refusal<'static>> {
        let ban = self.bans.as_ref()?.on_address(address)?;
        Some(banned(&ban))
    }
}

/// A ban as the refusal that tells whom it keeps out.
pub fn banned(ban: &Ban) -> Refusal<'static> {
    Refusal::Banned {
        target: ban.target.to_string(),
        until: ban.until_ms.map(utc_minute),
        reason: ban.reason.clone(),
    }
}

/// A Unix time in ms, as a person reads it: `2026-11-30 14:05Z`.
pub fn utc_minute(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%d %H:%MZ")
        .to_string()
}
