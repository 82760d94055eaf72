//! Nicks unique across a cluster (`--cluster`): whichever node each person is on, a nick a
//! member holds is claimed in the engine ([`crate::cluster::claims`]), and a nick claimed
//! elsewhere is refused here as a local clash is.
//!
//! - Joining: the session claims a fresh `guest-N` (N from the cluster's one counter) before
//!   it asks to join, and gives it to [`Rooms::give_next_guest`]. No engine, no nick: the
//!   connection is told so and closed, since a guest named from a local counter could be
//!   someone else's on another node.
//! - `/nick` and `/login`: the new nick is claimed before the rename, the old one released
//!   after it. An engine that does not answer refuses the change, and the member keeps the
//!   nick it has (degraded mode).
//! - Leaving: the nick is released (bounded in time; if the engine does not answer, the claim
//!   is no longer refreshed and its TTL frees it).
//! - The heartbeat runs here ([`beat`]), beside the rooms it acts on: a nick whose claim is
//!   lost (it ran out during an outage, or someone overwrote it) has its member here renamed
//!   to a fresh guest by its own session, which is told why; a node another run of its name
//!   replaced stops.
//!
//! Claims are the node's, not a member's: two members of one node asking for one nick both
//! get the claim, and one local member may still hold a nick as another's session goes. So
//! each change to one nick's claim (claim then rename, check then release) runs under a gate
//! for that nick, one at a time, and a nick is released only when no member here holds it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{OwnedMutexGuard, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::rooms::{MemberId, Rooms};
use crate::cluster::{Beat, Claim, Cluster};
use crate::names::{Nick, NickError};
use crate::protocol::Refusal;

/// How long one claim or release may take before the engine counts as unreachable for it.
/// Each command already has the cluster's response timeout; this bounds its reconnect
/// attempts too, so a `/nick` or a leaving member never waits longer.
pub const ENGINE_WITHIN: Duration = Duration::from_secs(3);

/// A node's nick claims, as its sessions make and give them up.
#[derive(Debug)]
pub struct NickClaims {
    cluster: Cluster,
    /// One gate per nick key being changed just now; gone once nobody holds it.
    gates: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl NickClaims {
    /// The claims of `cluster`'s node.
    pub fn new(cluster: Cluster) -> Self {
        Self {
            cluster,
            gates: Mutex::default(),
        }
    }

    /// Waits for the gate of the nick keyed `key`.
    async fn gate(&self, key: &str) -> OwnedMutexGuard<()> {
        let gate = {
            let mut gates = super::lock(&self.gates);
            gates.retain(|_, gate| Arc::strong_count(gate) > 1);
            gates.entry(key.to_owned()).or_default().clone()
        };
        gate.lock_owned().await
    }

    /// A fresh guest nick, claimed for this node.
    pub async fn guest(&self) -> anyhow::Result<Nick> {
        let claim = tokio::time::timeout(ENGINE_WITHIN, self.cluster.claim_guest())
            .await
            .map_err(|_| anyhow::anyhow!("the engine did not answer within {ENGINE_WITHIN:?}"))?
            .context("cannot give a guest nick")?;
        Ok(claim.nick)
    }

    /// Renames member `id` from `old` to `new` once `new` is claimed across the cluster, then
    /// releases `old`. `local` runs first, under the gate of `new`: it refuses (a `/nick` to a
    /// nick a member here has) or makes way (a `/login` replacing the account's older
    /// connection).
    pub async fn rename(
        &self,
        rooms: &Rooms,
        id: MemberId,
        old: &Nick,
        new: Nick,
        local: impl FnOnce() -> Result<(), Refusal<'static>>,
    ) -> Result<(), Refusal<'static>> {
        let key = new.key();
        let changes_key = key != old.key();
        let gate = self.gate(&key).await;
        local()?;
        if changes_key {
            match tokio::time::timeout(ENGINE_WITHIN, self.cluster.claim(&new)).await {
                Ok(Ok(Ok(_claim))) => {}
                Ok(Ok(Err(taken))) => {
                    info!(%taken, "nick refused: claimed on another node");
                    return Err(Refusal::Nick(NickError::Taken(new.to_string())));
                }
                Ok(Err(error)) => {
                    warn!("cannot claim a nick: {error:#}");
                    return Err(Refusal::NickUnclaimable);
                }
                Err(_) => {
                    warn!(nick = %new, "cannot claim a nick: no answer within {ENGINE_WITHIN:?}");
                    return Err(Refusal::NickUnclaimable);
                }
            }
        }
        let renamed = rooms.rename(id, new.clone()).map_err(Refusal::Nick);
        if renamed.is_err() && changes_key && rooms.find(&key).is_none() {
            self.release(new).await;
        }
        drop(gate);
        if renamed.is_ok() && changes_key {
            self.release_unheld(rooms, old).await;
        }
        renamed
    }

    /// Releases `nick` unless a member here holds it (another session may have taken it).
    pub async fn release_unheld(&self, rooms: &Rooms, nick: &Nick) {
        let _gate = self.gate(&nick.key()).await;
        if rooms.find(&nick.key()).is_none() {
            self.release(nick.clone()).await;
        }
    }

    /// Releases `nick` if this node holds it, within [`ENGINE_WITHIN`]; a failure is logged,
    /// and the claim, no longer refreshed, runs out with its TTL.
    async fn release(&self, nick: Nick) {
        if !self.cluster.holds(&nick) {
            return; // lost already, or never claimed
        }
        match tokio::time::timeout(ENGINE_WITHIN, self.cluster.release(Claim { nick })).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => warn!("{error:#}; its TTL will free it"),
            Err(_) => warn!("a nick's release had no answer in time; its TTL will free it"),
        }
    }

    /// For the session of member `id`, woken because a claim was lost: if it was `nick`'s,
    /// renames the member to a fresh guest (everyone sharing a room with it is told) and
    /// returns what the member is told. `None` when `nick` is still this node's.
    pub async fn replace_lost(
        &self,
        rooms: &Rooms,
        id: MemberId,
        nick: &Nick,
    ) -> Option<(Option<Nick>, Refusal<'static>)> {
        if self.cluster.holds(nick) {
            return None;
        }
        let now = match self.guest().await {
            Ok(guest) => match rooms.rename(id, guest.clone()) {
                Ok(()) => Some(guest),
                Err(error) => {
                    warn!(%nick, %error, "cannot rename a member whose nick was lost");
                    None
                }
            },
            Err(error) => {
                warn!(%nick, "a member keeps a lost nick here: {error:#}");
                None
            }
        };
        let told = Refusal::NickLost {
            lost: nick.to_string(),
            now: now.as_ref().map(ToString::to_string),
        };
        Some((now, told))
    }
}

/// Beats for this node until `shutdown`, and acts on what the beats find: a lost nick's member
/// here is told to its session (which renames it); a node replaced by another run of its name
/// stops the server. Ends once the heartbeat has.
pub fn beat(
    cluster: &Cluster,
    rooms: Arc<Rooms>,
    shutdown: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let (events, mut beats) = mpsc::channel(16);
    let heartbeat = cluster.heartbeat(shutdown.child_token(), events);
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        while let Some(beat) = beats.recv().await {
            match beat {
                Beat::Fenced(other) => {
                    error!(
                        "another run of this node (epoch {}) is in the cluster: stopping",
                        other.epoch
                    );
                    shutdown.cancel();
                }
                Beat::Lost(nicks) => {
                    for nick in nicks {
                        let held = rooms.nick_lost(&nick.key());
                        warn!(%nick, renamed = held, "a nick's claim ran out or was taken");
                    }
                }
                // The heartbeat logs these itself.
                Beat::EngineDown(_) | Beat::EngineBack => {}
            }
        }
        let _ = heartbeat.await;
    })
}
