//! Who may connect, decided at accept before any task is spawned: `--deny` and `--allow`
//! networks, then a cap on connections open from one address and on how fast one address may
//! open new ones (a token bucket). The defaults are generous — a classroom behind one NAT
//! address must fit — and the loopback addresses every local client uses, 127.0.0.1 and ::1,
//! are exempt from both caps, so local mode and load tests are never limited (the rest of
//! 127.0.0.0/8 is counted like any address, which is how the caps are tested end to end);
//! `--deny` and `--allow` apply to every address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ipnet::IpNet;

use super::lock;
use crate::protocol::Refusal;

/// Default most connections open at once from one address (ergo's is 16; a classroom or an
/// office behind one NAT address needs more).
pub const DEFAULT_PER_ADDRESS: usize = 64;

/// Default most new connections one address may open per minute, after a burst of as many.
pub const DEFAULT_NEW_PER_MINUTE: u32 = 120;

/// Addresses remembered before those with nothing open and a full bucket are forgotten.
const SWEEP_AT: usize = 4_096;

/// The rules, as the command line gives them.
#[derive(Debug, Clone)]
pub struct AccessRules {
    /// If any, only these networks may connect.
    pub allow: Vec<IpNet>,
    /// These networks may not connect.
    pub deny: Vec<IpNet>,
    /// Most connections open from one address ([`DEFAULT_PER_ADDRESS`]; 0: no cap).
    pub per_address: usize,
    /// Most new connections per minute from one address ([`DEFAULT_NEW_PER_MINUTE`]; 0: no cap).
    pub new_per_minute: u32,
}

impl Default for AccessRules {
    fn default() -> Self {
        Self {
            allow: Vec::new(),
            deny: Vec::new(),
            per_address: DEFAULT_PER_ADDRESS,
            new_per_minute: DEFAULT_NEW_PER_MINUTE,
        }
    }
}

/// What one address has open, and its bucket of new connections.
#[derive(Debug)]
struct Seen {
    open: usize,
    tokens: f64,
    at: Instant,
}

/// The rules and what each address has open.
#[derive(Debug)]
pub struct Access {
    rules: AccessRules,
    seen: Arc<Mutex<HashMap<IpAddr, Seen>>>,
}

/// Held while a connection from a counted address is open.
#[derive(Debug)]
pub struct AddressSlot {
    address: IpAddr,
    seen: Option<Arc<Mutex<HashMap<IpAddr, Seen>>>>,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        if let Some(seen) = &self.seen
            && let Some(entry) = lock(seen).get_mut(&self.address)
        {
            entry.open = entry.open.saturating_sub(1);
        }
    }
}

impl Access {
    /// Applies `rules`.
    pub fn new(rules: AccessRules) -> Self {
        Self {
            rules,
            seen: Arc::default(),
        }
    }

    /// Whether a connection from `address` may be served; its slot if so.
    pub fn admit(&self, address: IpAddr) -> Result<AddressSlot, Refusal<'static>> {
        let address = canonical(address);
        if self.rules.deny.iter().any(|net| net.contains(&address))
            || (!self.rules.allow.is_empty()
                && !self.rules.allow.iter().any(|net| net.contains(&address)))
        {
            return Err(Refusal::NotAllowed);
        }
        if is_local_default(address) {
            return Ok(AddressSlot {
                address,
                seen: None,
            });
        }
        let now = Instant::now();
        let rate = f64::from(self.rules.new_per_minute);
        let mut seen = lock(&self.seen);
        if seen.len() >= SWEEP_AT {
            seen.retain(|_, entry| entry.open > 0 || refilled(entry, rate, now) < rate);
        }
        let entry = seen.entry(address).or_insert(Seen {
            open: 0,
            tokens: rate,
            at: now,
        });
        if self.rules.per_address > 0 && entry.open >= self.rules.per_address {
            return Err(Refusal::TooManyFromAddress {
                max: self.rules.per_address,
            });
        }
        if self.rules.new_per_minute > 0 {
            entry.tokens = refilled(entry, rate, now);
            entry.at = now;
            if entry.tokens < 1.0 {
                return Err(Refusal::TooFastFromAddress {
                    per_minute: self.rules.new_per_minute,
                });
            }
            entry.tokens -= 1.0;
        }
        entry.open += 1;
        Ok(AddressSlot {
            address,
            seen: Some(Arc::clone(&self.seen)),
        })
    }
}

/// 127.0.0.1 or ::1: the server's own machine, as every local client reaches it.
pub fn is_local_default(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => v4 == std::net::Ipv4Addr::LOCALHOST,
        IpAddr::V6(v6) => v6.is_loopback(),
    }
}

/// The tokens `entry` has at `now`: refilled at `rate` per minute, up to `rate`.
fn refilled(entry: &Seen, rate: f64, now: Instant) -> f64 {
    let minutes = now.duration_since(entry.at).as_secs_f64() / 60.0;
    (entry.tokens + minutes * rate).min(rate)
}

/// An IPv4 address seen through an IPv6 socket (`::ffff:a.b.c.d`) is the IPv4 address, so
/// rules and counts written for it apply.
pub fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn deny_and_allow_apply_to_every_address() {
        let access = Access::new(AccessRules {
            allow: vec![
                "10.0.0.0/8".parse().unwrap(),
                "127.0.0.0/8".parse().unwrap(),
            ],
            deny: vec!["10.9.0.0/16".parse().unwrap()],
            ..AccessRules::default()
        });
        assert!(access.admit(ip("10.1.2.3")).is_ok());
        assert!(access.admit(ip("127.0.0.1")).is_ok());
        assert_eq!(
            access.admit(ip("10.9.1.1")).unwrap_err(),
            Refusal::NotAllowed
        );
        assert_eq!(
            access.admit(ip("192.0.2.1")).unwrap_err(),
            Refusal::NotAllowed
        );
        assert_eq!(
            access.admit(ip("::ffff:10.9.1.1")).unwrap_err(),
            Refusal::NotAllowed,
            "a mapped address is its IPv4 address"
        );
    }

    #[test]
    fn one_address_is_capped_and_a_closed_connection_frees_its_place() {
        let access = Access::new(AccessRules {
            per_address: 2,
            new_per_minute: 0,
            ..AccessRules::default()
        });
        let first = access.admit(ip("192.0.2.1")).unwrap();
        let _second = access.admit(ip("192.0.2.1")).unwrap();
        assert_eq!(
            access.admit(ip("192.0.2.1")).unwrap_err(),
            Refusal::TooManyFromAddress { max: 2 }
        );
        assert!(access.admit(ip("192.0.2.2")).is_ok(), "another address");
        drop(first);
        assert!(access.admit(ip("192.0.2.1")).is_ok());
        let local: Vec<_> = (0..10).map(|_| access.admit(ip("127.0.0.1"))).collect();
        assert!(local.iter().all(Result::is_ok), "127.0.0.1 is exempt");
        let _third = access.admit(ip("127.0.0.2")).unwrap();
        let _fourth = access.admit(ip("127.0.0.2")).unwrap();
        assert!(
            access.admit(ip("127.0.0.2")).is_err(),
            "the rest of 127/8 is not"
        );
    }

    #[test]
    fn new_connections_are_paced_per_address() {
        let access = Access::new(AccessRules {
            per_address: 0,
            new_per_minute: 3,
            ..AccessRules::default()
        });
        let slots: Vec<_> = (0..3)
            .map(|_| access.admit(ip("192.0.2.1")).unwrap())
            .collect();
        drop(slots);
        assert_eq!(
            access.admit(ip("192.0.2.1")).unwrap_err(),
            Refusal::TooFastFromAddress { per_minute: 3 }
        );
        assert!(access.admit(ip("192.0.2.9")).is_ok());
    }
}
