//! Which nodes are alive: each node's key, with a TTL its heartbeat renews, naming its epoch.
//!
//! The epoch is a number the engine hands out each time a node starts (`INCR` of the node's
//! counter), so it only grows, across restarts of the node and, with the append-only file,
//! of the engine. A node renews its key only while it still holds its own epoch's value: a
//! second process started under the same name is refused at [`Cluster::connect`] while the
//! first is alive, and a first that comes back from a pause to find a second in its place
//! learns it is [`Beat::Fenced`] instead of taking the name back.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{Cluster, Settings};
use crate::names::Nick;

/// Longest node name, in characters.
pub const MAX_NODE_CHARS: usize = 32;

/// A node's name (`--node`): 1–32 ASCII letters, digits, `.`, `_` or `-`, so it is the same
/// in a key, a log line and a shell.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeName(String);

impl NodeName {
    /// Validates a node name; the error says what is allowed.
    pub fn parse(text: &str) -> Result<Self, String> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if text.is_empty() || text.len() > MAX_NODE_CHARS || !text.chars().all(allowed) {
            return Err(format!(
                "a node name is 1 to {MAX_NODE_CHARS} ASCII letters, digits, '.', '_' or '-', \
                 got {text:?}"
            ));
        }
        Ok(Self(text.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A live node as its presence key says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Its name.
    pub node: NodeName,
    /// This run of it (grows with each start).
    pub epoch: u64,
    /// When this run started, Unix milliseconds (its own clock).
    pub since_ms: i64,
}

/// What the heartbeat found, for the server to act on and the operator to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Beat {
    /// These nicks are no longer this node's (their claims ran out while it could not beat,
    /// and someone may have claimed them since): their holders here must give them up.
    Lost(Vec<Nick>),
    /// The engine did not answer the beat: the node serves its own members from here on
    /// (degraded mode) and its claims run out after the TTL unless the engine returns first.
    EngineDown(String),
    /// The engine answers again after [`Beat::EngineDown`].
    EngineBack,
    /// Another run of this node's name holds the presence key: this one must stop.
    Fenced(NodeInfo),
}

/// Renews a presence key. KEYS: the node's key. ARGV: this run's value, the TTL in ms.
/// Returns nothing when renewed (or set, the key being gone), else the value of the run that
/// holds it.
static RENEW: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
        local held = redis.call('GET', KEYS[1])
        if held and held ~= ARGV[1] then return held end
        redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
        return false
        ",
    )
});

/// Takes a new epoch for `node` and registers its presence; fails if another run of it is
/// alive.
pub(super) async fn start(
    conn: &mut ConnectionManager,
    node: NodeName,
    settings: &Settings,
) -> anyhow::Result<NodeInfo> {
    let epoch: u64 = redis::cmd("INCR")
        .arg(super::key("epoch", node.as_str()))
        .query_async(conn)
        .await
        .context("cannot take an epoch from the engine")?;
    let me = NodeInfo {
        node,
        epoch,
        since_ms: now_ms(),
    };
    let value = serde_json::to_string(&me).context("cannot encode the node's presence")?;
    if let Some(other) = renew(conn, &me.node, &value, settings.claim_ttl).await? {
        bail!(
            "node {} is already in the cluster (epoch {}, since {} ms after the Unix epoch); \
             give this one another --node, or, if that run has stopped, start this one after \
             its presence runs out (within {:?})",
            me.node,
            other.epoch,
            other.since_ms,
            settings.claim_ttl
        );
    }
    Ok(me)
}

/// Renews `node`'s presence as `value`; the run holding it instead, if another does.
async fn renew(
    conn: &mut ConnectionManager,
    node: &NodeName,
    value: &str,
    ttl: Duration,
) -> anyhow::Result<Option<NodeInfo>> {
    let mut invocation = RENEW.prepare_invoke();
    invocation
        .key(super::key("node", node.as_str()))
        .arg(value)
        .arg(millis(ttl));
    let held: Option<String> = invocation
        .invoke_async(conn)
        .await
        .context("cannot renew the node's presence in the engine")?;
    held.map(|held| {
        serde_json::from_str(&held).with_context(|| format!("a presence key holds {held:?}"))
    })
    .transpose()
}

impl Cluster {
    /// One heartbeat: renews this node's presence, then its nicks' claims. The nicks lost are
    /// forgotten here and returned (an empty [`Beat::Lost`] means all were renewed).
    pub async fn beat(&self) -> anyhow::Result<Beat> {
        let mut conn = self.conn();
        let me = &self.inner;
        if let Some(other) =
            renew(&mut conn, &me.me.node, &me.me_value, me.settings.claim_ttl).await?
        {
            return Ok(Beat::Fenced(other));
        }
        Ok(Beat::Lost(self.refresh_claims().await?))
    }

    /// Beats every [`Settings::beat_interval`] until `stop`, sending what each beat found
    /// when it says something: lost nicks, the engine going and coming back, being fenced
    /// (after which it stops). A full `events` channel waits: the beats are what matter, and
    /// a server that does not read its events has stopped anyway.
    pub fn heartbeat(
        &self,
        stop: CancellationToken,
        events: mpsc::Sender<Beat>,
    ) -> tokio::task::JoinHandle<()> {
        let cluster = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(cluster.settings().beat_interval());
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut down = false;
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = ticks.tick() => {}
                }
                let event = match cluster.beat().await {
                    Ok(beat) => {
                        let back = std::mem::replace(&mut down, false);
                        if back {
                            info!("the engine answers again");
                            if events.send(Beat::EngineBack).await.is_err() {
                                return;
                            }
                        }
                        match beat {
                            Beat::Lost(lost) if lost.is_empty() => continue,
                            beat => beat,
                        }
                    }
                    Err(error) if !down => {
                        down = true;
                        warn!("the engine does not answer: {error:#}");
                        Beat::EngineDown(format!("{error:#}"))
                    }
                    Err(_) => continue,
                };
                let fenced = matches!(event, Beat::Fenced(_));
                if events.send(event).await.is_err() || fenced {
                    return;
                }
            }
        })
    }

    /// Leaves the cluster at once instead of after the TTL: gives up this node's nicks and
    /// its presence, so a new run of it may start straight away. Stop the heartbeat first,
    /// or its next beat registers the node again.
    pub async fn leave(&self) -> anyhow::Result<()> {
        self.release_all().await?;
        let me = &self.inner;
        super::delete_if(
            &mut self.conn(),
            &super::key("node", me.me.node.as_str()),
            &me.me_value,
        )
        .await
        .context("cannot remove the node's presence from the engine")
    }

    /// The nodes whose presence has not run out, by name.
    pub async fn live_nodes(&self) -> anyhow::Result<Vec<NodeInfo>> {
        let mut conn = self.conn();
        let pattern = super::key("node", "*");
        let mut keys: Vec<String> = Vec::new();
        let mut cursor = 0_u64;
        loop {
            let (next, found): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .context("cannot list the nodes in the engine")?;
            keys.extend(found);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let values: Vec<Option<String>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut conn)
            .await
            .context("cannot read the nodes' presence from the engine")?;
        let mut nodes = values
            .into_iter()
            .flatten()
            .map(|value| {
                serde_json::from_str::<NodeInfo>(&value)
                    .with_context(|| format!("a presence key holds {value:?}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        nodes.sort_by(|a, b| a.node.as_str().cmp(b.node.as_str()));
        Ok(nodes)
    }
}

/// A duration in whole milliseconds, at least 1 (Redis refuses `PX 0`).
pub(super) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_are_plain_ascii() {
        for good in ["a", "node-1", "eu.west_2", &"n".repeat(MAX_NODE_CHARS)] {
            assert!(NodeName::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "a b",
            "nöde",
            "a:b",
            "a*",
            &"n".repeat(MAX_NODE_CHARS + 1),
        ] {
            assert!(NodeName::parse(bad).is_err(), "{bad}");
        }
    }
}
