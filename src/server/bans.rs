//! Bans and mutes, the operators' tools besides `/kick`.
//!
//! A ban names a nick or a network (an address is a network of one); it is kept in the store,
//! so it outlives a restart, and in memory, where every accepted connection and every `/nick`
//! is checked against it. A banned address is told so and closed at accept; a banned nick
//! cannot be taken. A ban may end by itself (`/ban TARGET MINUTES`) or last until `/unban`.
//!
//! A mute lasts minutes, in memory only: the muted member's lines (and those of whoever takes
//! its nick until it ends) are refused with the time it ends. Checking a line costs one atomic
//! load while nobody is muted.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ipnet::IpNet;
use tracing::warn;

use super::accounts::unix_ms;
use super::lock;
use super::rooms::MemberId;
use crate::names::{Nick, fold};
use crate::store::{BanRecord, Registry};

/// Longest ban or mute in minutes that may be given (a year); longer is "until lifted".
pub const MAX_MINUTES: u64 = 525_600;

/// What a ban names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A nick, by its key.
    Nick(String),
    /// A network; one address is a /32 or /128.
    Net(IpNet),
}

impl Target {
    /// Reads what an operator typed: an address, a CIDR network, or a nick. Text made of
    /// address characters with a `.` or `:` in it is an address or nothing: `300.1.1.1/8` is
    /// a mistyped network, not a nick to ban.
    pub fn parse(text: &str) -> Option<Self> {
        if let Ok(address) = text.parse::<IpAddr>() {
            return Some(Self::Net(IpNet::from(address)));
        }
        if let Ok(net) = text.parse::<IpNet>() {
            return Some(Self::Net(net.trunc()));
        }
        let address_like = text.contains(['.', ':'])
            && text
                .chars()
                .all(|c| c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '/'));
        (!address_like && Nick::is_valid(text)).then(|| Self::Nick(fold(text)))
    }

    /// The form the store (and the cluster) keeps: `nick:KEY` or `net:CIDR`.
    pub fn stored(&self) -> String {
        match self {
            Self::Nick(key) => format!("nick:{key}"),
            Self::Net(net) => format!("net:{net}"),
        }
    }

    /// Reads the form [`Target::stored`] writes.
    pub fn from_stored(text: &str) -> Option<Self> {
        if let Some(key) = text.strip_prefix("nick:") {
            return Some(Self::Nick(key.to_owned()));
        }
        text.strip_prefix("net:")?.parse().ok().map(Self::Net)
    }

    /// Whether this target covers `address`.
    pub fn covers(&self, address: IpAddr) -> bool {
        match self {
            Self::Net(net) => net.contains(&address),
            Self::Nick(_) => false,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Nick(key) => f.write_str(key),
            Self::Net(net) if net.prefix_len() == net.max_prefix_len() => {
                write!(f, "{}", net.addr())
            }
            Self::Net(net) => write!(f, "{net}"),
        }
    }
}

/// One ban in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    /// What it names.
    pub target: Target,
    /// The operator who set it.
    pub by: String,
    /// Why (may be empty).
    pub reason: String,
    /// When it ends, Unix ms; `None` until lifted.
    pub until_ms: Option<i64>,
}

impl Ban {
    /// Whether it is still in force at `now_ms`.
    pub fn in_force(&self, now_ms: i64) -> bool {
        self.until_ms.is_none_or(|until| until > now_ms)
    }
}

/// Minutes as the end time they give, from now; 0 (or none) is "until lifted".
pub fn until(minutes: Option<u64>) -> Option<i64> {
    let minutes = minutes.filter(|&m| m > 0)?.min(MAX_MINUTES);
    Some(unix_ms() + Duration::from_secs(minutes * 60).as_millis() as i64)
}

/// The bans in force, kept in the store and in memory.
#[derive(Debug)]
pub struct Bans {
    registry: Mutex<Registry>,
    list: Mutex<Vec<Ban>>,
}

impl Bans {
    /// The bans in `registry` still in force.
    pub fn load(registry: Registry) -> rusqlite::Result<Self> {
        let list = registry
            .bans(unix_ms())?
            .into_iter()
            .filter_map(|record| {
                let target = Target::from_stored(&record.target);
                if target.is_none() {
                    warn!(
                        target = record.target,
                        "a stored ban cannot be read; ignored"
                    );
                }
                Some(Ban {
                    target: target?,
                    by: record.by,
                    reason: record.reason,
                    until_ms: record.until_ms,
                })
            })
            .collect();
        Ok(Self {
            registry: Mutex::new(registry),
            list: Mutex::new(list),
        })
    }

    /// The ban covering `address`, if one is in force.
    pub fn on_address(&self, address: IpAddr) -> Option<Ban> {
        let now = unix_ms();
        lock(&self.list)
            .iter()
            .find(|ban| ban.in_force(now) && ban.target.covers(address))
            .cloned()
    }

    /// The ban on the nick keyed `key`, if one is in force.
    pub fn on_nick(&self, key: &str) -> Option<Ban> {
        let now = unix_ms();
        lock(&self.list)
            .iter()
            .find(|ban| ban.in_force(now) && ban.target == Target::Nick(key.to_owned()))
            .cloned()
    }

    /// Every ban in force, oldest first.
    pub fn list(&self) -> Vec<Ban> {
        let now = unix_ms();
        let mut list = lock(&self.list);
        list.retain(|ban| ban.in_force(now));
        list.clone()
    }

    /// Sets `ban` (replacing one on the same target), in the store first. Blocking: the
    /// caller runs it off the async threads.
    pub fn add(&self, ban: Ban) -> rusqlite::Result<()> {
        let record = BanRecord {
            target: ban.target.stored(),
            by: ban.by.clone(),
            reason: ban.reason.clone(),
            created_ms: unix_ms(),
            until_ms: ban.until_ms,
        };
        lock(&self.registry).ban(&record)?;
        let mut list = lock(&self.list);
        list.retain(|old| old.target != ban.target);
        list.push(ban);
        Ok(())
    }

    /// Lifts the ban on `target`; `false` if there was none. Blocking, as [`Bans::add`].
    pub fn remove(&self, target: &Target) -> rusqlite::Result<bool> {
        let stored = lock(&self.registry).unban(&target.stored())?;
        let mut list = lock(&self.list);
        let before = list.len();
        list.retain(|ban| ban.target != *target);
        Ok(stored || list.len() < before)
    }
}

/// Members muted for a while, by connection and by nick.
#[derive(Debug, Default)]
pub struct Mutes {
    /// How many entries there are: 0 skips the lock on every line.
    count: AtomicUsize,
    entries: Mutex<HashMap<Muted, i64>>,
}

/// Who a mute holds: the connection (across renames) and the nick (across reconnects).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Muted {
    Member(MemberId),
    Nick(String),
}

impl Mutes {
    /// Mutes member `id`, whose nick has key `key`, until `until_ms`.
    pub fn mute(&self, id: MemberId, key: &str, until_ms: i64) {
        let mut entries = lock(&self.entries);
        entries.insert(Muted::Member(id), until_ms);
        entries.insert(Muted::Nick(key.to_owned()), until_ms);
        self.count.store(entries.len(), Ordering::Release);
    }

    /// Lifts the mute on the nick keyed `key` and on whoever holds it, `id`.
    pub fn unmute(&self, id: Option<MemberId>, key: &str) -> bool {
        let mut entries = lock(&self.entries);
        let mut lifted = entries.remove(&Muted::Nick(key.to_owned())).is_some();
        if let Some(id) = id {
            lifted |= entries.remove(&Muted::Member(id)).is_some();
        }
        self.count.store(entries.len(), Ordering::Release);
        lifted
    }

    /// Whether anyone is muted (one atomic load: what every line said checks first).
    pub fn any(&self) -> bool {
        self.count.load(Ordering::Acquire) > 0
    }

    /// Until when member `id` (nick key `key`) is muted, if it is.
    pub fn muted_until(&self, id: MemberId, key: &str) -> Option<i64> {
        if !self.any() {
            return None;
        }
        let now = unix_ms();
        let mut entries = lock(&self.entries);
        entries.retain(|_, until| *until > now);
        self.count.store(entries.len(), Ordering::Release);
        let by_member = entries.get(&Muted::Member(id)).copied();
        let by_nick = entries.get(&Muted::Nick(key.to_owned())).copied();
        by_member.max(by_nick)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_addresses_networks_or_nicks() {
        let one = Target::parse("192.0.2.7").unwrap();
        assert!(one.covers("192.0.2.7".parse().unwrap()));
        assert!(!one.covers("192.0.2.8".parse().unwrap()));
        assert_eq!(one.to_string(), "192.0.2.7");
        let net = Target::parse("192.0.2.99/24").unwrap();
        assert_eq!(net.to_string(), "192.0.2.0/24", "host bits dropped");
        assert!(net.covers("192.0.2.200".parse().unwrap()));
        let six = Target::parse("2001:db8::/32").unwrap();
        assert!(six.covers("2001:db8::1".parse().unwrap()));
        assert_eq!(Target::parse("Bob"), Some(Target::Nick("bob".into())));
        assert_eq!(Target::parse("#room"), None);
        assert_eq!(Target::parse("300.1.1.1/8"), None);
        for target in [one, net, six, Target::Nick("bob".into())] {
            assert_eq!(Target::from_stored(&target.stored()), Some(target));
        }
    }

    #[test]
    fn a_mute_holds_the_connection_and_the_nick_until_it_ends() {
        let mutes = Mutes::default();
        assert_eq!(mutes.muted_until(1, "bob"), None);
        let later = unix_ms() + 60_000;
        mutes.mute(1, "bob", later);
        assert_eq!(mutes.muted_until(1, "robert"), Some(later), "renamed");
        assert_eq!(mutes.muted_until(2, "bob"), Some(later), "reconnected");
        assert_eq!(mutes.muted_until(3, "carol"), None);
        mutes.mute(4, "dave", unix_ms() - 1);
        assert_eq!(mutes.muted_until(4, "dave"), None, "ended");
        assert!(mutes.unmute(Some(1), "bob"));
        assert_eq!(mutes.muted_until(1, "bob"), None);
    }
}
