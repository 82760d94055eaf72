//! Nicks unique across the cluster: one key per folded nick, whose value is the [`Holder`]
//! (node and epoch) and whose TTL only the holder's heartbeat extends.
//!
//! - [`Cluster::claim`] sets the key only if it is absent (or already this run's: a retried
//!   claim whose answer was lost is not refused by itself).
//! - The heartbeat ([`Cluster::beat`]) extends each held claim only while its value is still
//!   this run's (compare-and-extend, one script for all of them). A claim it finds gone or
//!   someone else's is lost: never set again by a refresh, so a node back from a pause or a
//!   partition cannot resurrect a nick someone claimed while it was away; it may [`claim`]
//!   it again, which succeeds only if nobody did.
//! - [`Cluster::release`] deletes the key only if it is still this run's.
//! - [`Cluster::claim_guest`] gives a fresh `guest-N`: N from one cluster-wide counter, so two
//!   nodes never both hand out `guest-1`; its claim is set only if nobody holds it (this run
//!   included: a member here may have taken `guest-N` with `/nick`), else the next N is tried.
//!
//! So a node that dies frees its nicks at most [`super::Settings::claim_ttl`] after its last
//! beat; a restarted node has a new epoch, so its previous run's claims are not its own and
//! run out the same way.
//!
//! [`claim`]: Cluster::claim

use std::fmt;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::presence::millis;
use super::{Cluster, NodeInfo, NodeName};
use crate::names::Nick;

/// Who holds a nick: the value of its claim key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The node.
    pub node: NodeName,
    /// Its run.
    pub epoch: u64,
}

impl Holder {
    /// The holder a node's run claims as.
    pub fn of(node: &NodeInfo) -> Self {
        Self {
            node: node.node.clone(),
            epoch: node.epoch,
        }
    }
}

/// A nick this node now holds across the cluster, until released or lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The nick, as claimed.
    pub nick: Nick,
}

/// A nick someone else holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    /// The nick asked for.
    pub nick: Nick,
    /// Who holds it.
    pub holder: Holder,
}

impl fmt::Display for Taken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is held by node {} (epoch {})",
            self.nick, self.holder.node, self.holder.epoch
        )
    }
}

/// KEYS: the claim. ARGV: this run's value, the TTL in ms. Returns nothing when the claim is
/// this run's now, else the holder's value.
static CLAIM: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
        local held = redis.call('GET', KEYS[1])
        if held and held ~= ARGV[1] then return held end
        redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
        return false
        ",
    )
});

/// KEYS: the claims to extend. ARGV: this run's value, the TTL in ms. Returns the (1-based)
/// positions of those that are not this run's any more; those are left alone.
static EXTEND: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
        local lost = {}
        for i, key in ipairs(KEYS) do
            if redis.call('GET', key) == ARGV[1] then
                redis.call('PEXPIRE', key, ARGV[2])
            else
                table.insert(lost, i)
            end
        end
        return lost
        ",
    )
});

pub(super) fn claim_key(nick: &Nick) -> String {
    super::key("nick", &nick.key())
}

/// The counter every node takes its guests' numbers from.
fn guests_key() -> String {
    format!("{}guests", super::PREFIX)
}

/// How many numbers [`Cluster::claim_guest`] tries before giving up: each one skipped is a
/// `guest-N` someone took with `/nick`, so more than a few in a row means something is wrong.
const GUEST_TRIES: usize = 16;

impl Cluster {
    /// Claims `nick` for this node across the cluster. `Ok(Err(Taken))` when another node (or
    /// another run of this one) holds it; `Err` when the engine cannot say.
    pub async fn claim(&self, nick: &Nick) -> anyhow::Result<Result<Claim, Taken>> {
        let mut invocation = CLAIM.prepare_invoke();
        invocation
            .key(claim_key(nick))
            .arg(&self.inner.holder_value)
            .arg(millis(self.settings().claim_ttl));
        let held: Option<String> = invocation
            .invoke_async(&mut self.conn())
            .await
            .with_context(|| format!("cannot claim the nick {nick} in the engine"))?;
        match held {
            None => {
                self.held().insert(nick.key(), nick.clone());
                Ok(Ok(Claim { nick: nick.clone() }))
            }
            Some(value) => {
                let holder = serde_json::from_str(&value)
                    .with_context(|| format!("the claim on {nick} holds {value:?}"))?;
                Ok(Err(Taken {
                    nick: nick.clone(),
                    holder,
                }))
            }
        }
    }

    /// Claims a fresh guest nick for this node: `guest-N`, N from the cluster's counter, and
    /// the first such nick nobody holds (not even this run). `Err` when the engine cannot say,
    /// or after [`GUEST_TRIES`] numbers all held.
    pub async fn claim_guest(&self) -> anyhow::Result<Claim> {
        let mut conn = self.conn();
        for _ in 0..GUEST_TRIES {
            let n: u64 = redis::cmd("INCR")
                .arg(guests_key())
                .query_async(&mut conn)
                .await
                .context("cannot number a guest in the engine")?;
            let nick = Nick::guest(n);
            let set: Option<String> = redis::cmd("SET")
                .arg(claim_key(&nick))
                .arg(&self.inner.holder_value)
                .arg("NX")
                .arg("PX")
                .arg(millis(self.settings().claim_ttl))
                .query_async(&mut conn)
                .await
                .with_context(|| format!("cannot claim the nick {nick} in the engine"))?;
            if set.is_some() {
                self.held().insert(nick.key(), nick.clone());
                return Ok(Claim { nick });
            }
        }
        anyhow::bail!("{GUEST_TRIES} guest nicks in a row were held already")
    }

    /// Whether this node holds `nick` (claimed and not lost or released since).
    pub fn holds(&self, nick: &Nick) -> bool {
        self.held().contains_key(&nick.key())
    }

    /// Gives `claim` up, if it is still this run's.
    pub async fn release(&self, claim: Claim) -> anyhow::Result<()> {
        self.held().remove(&claim.nick.key());
        super::delete_if(
            &mut self.conn(),
            &claim_key(&claim.nick),
            &self.inner.holder_value,
        )
        .await
        .with_context(|| format!("cannot release the nick {} in the engine", claim.nick))
    }

    /// Gives up every nick this node holds (as it leaves the cluster).
    pub(super) async fn release_all(&self) -> anyhow::Result<()> {
        let held: Vec<Nick> = self.held().drain().map(|(_, nick)| nick).collect();
        for nick in held {
            self.release(Claim { nick }).await?;
        }
        Ok(())
    }

    /// Extends every claim this node holds; returns (and forgets) those it holds no more.
    pub(super) async fn refresh_claims(&self) -> anyhow::Result<Vec<Nick>> {
        let held: Vec<Nick> = self.held().values().cloned().collect();
        if held.is_empty() {
            return Ok(Vec::new());
        }
        let mut invocation = EXTEND.prepare_invoke();
        for nick in &held {
            invocation.key(claim_key(nick));
        }
        invocation
            .arg(&self.inner.holder_value)
            .arg(millis(self.settings().claim_ttl));
        let positions: Vec<usize> = invocation
            .invoke_async(&mut self.conn())
            .await
            .context("cannot extend the nick claims in the engine")?;
        let lost: Vec<Nick> = positions
            .into_iter()
            .filter_map(|at| held.get(at.checked_sub(1)?).cloned())
            .collect();
        let mut still = self.held();
        for nick in &lost {
            still.remove(&nick.key());
        }
        Ok(lost)
    }
}
