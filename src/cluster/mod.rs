//! Several `--serve` nodes as one chat, through an existing engine: Redis (issue 16). This is
//! the engine client and nothing else; the server's sequencer and rooms are what use it.
//!
//! Why Redis, and why this shape (`docs/cluster.md` has the whole page):
//!
//! - [`log`]: each room is one Redis stream whose entry ids are the room's line numbers
//!   (`N-0`). A Lua script takes the next number from the room's counter and appends under it
//!   in one atomic step, so every node sees one gap-free order per room, and a line's number
//!   means the same on every node (gap fill is "everything after N").
//! - [`follower`]: one task per node tails the streams of the rooms it has members in, on a
//!   connection of its own (a blocking `XREAD` would stall every other command multiplexed on
//!   a shared one), and hands each new line on in order.
//! - [`claims`]: a nick is one key per folded nick, set only if absent, with a TTL the node's
//!   heartbeat extends only while the value is still its own (compare-and-extend): a node that
//!   stops beating loses its nicks after the TTL, and one that comes back cannot take back a
//!   nick someone else claimed meanwhile.
//! - [`presence`]: the node's own key with the same TTL, naming its epoch (a number the engine
//!   hands out at each start), so two live processes cannot share a node name and a restarted
//!   node is told apart from its previous life.
//!
//! Every key starts with [`PREFIX`]. Keys of one room share a hash tag (`{room}`), so the
//! scripts stay valid on a Redis Cluster too.

pub mod claims;
pub mod follower;
pub mod inbox;
pub mod log;
pub mod ops;
pub mod presence;
pub mod retention;
pub mod roster;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, bail};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tracing::warn;

pub use claims::{Claim, Holder, Taken};
pub use follower::{Followed, FollowedEvent, Follower, Follows, Tailed};
pub use inbox::Direct;
pub use log::{Entry, LineId, LogLine, Position};
pub use ops::Op;
pub use presence::{Beat, NodeInfo, NodeName};
pub use roster::{Happened, ListedRoom, RoomEvent};

/// What every key this module writes starts with, so one Redis can hold other things too.
pub const PREFIX: &str = "tcpchat:";

/// Default time to reach the engine (TCP connect and first reply) before giving up.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Default time one command may take. On loopback a command takes well under a millisecond;
/// past this the engine counts as unreachable for that command (the caller's degraded mode).
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Default lifetime of a nick claim and of a node's presence without a heartbeat: a node that
/// dies (or is cut off from the engine) loses its nicks at most this long after its last beat.
/// Beats come every third of it, so two lost beats in a row cost nothing.
pub const DEFAULT_CLAIM_TTL: Duration = Duration::from_secs(15);

/// Default longest wait of one blocking read of the follower: what bounds how late it notices
/// that the engine went away while nothing is said (a room added wakes it at once).
pub const DEFAULT_FOLLOW_BLOCK: Duration = Duration::from_secs(5);

/// How a node talks to the engine.
#[derive(Debug, Clone)]
pub struct Settings {
    /// See [`DEFAULT_CONNECT_TIMEOUT`].
    pub connect_timeout: Duration,
    /// See [`DEFAULT_RESPONSE_TIMEOUT`].
    pub response_timeout: Duration,
    /// See [`DEFAULT_CLAIM_TTL`].
    pub claim_ttl: Duration,
    /// See [`DEFAULT_FOLLOW_BLOCK`].
    pub follow_block: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            claim_ttl: DEFAULT_CLAIM_TTL,
            follow_block: DEFAULT_FOLLOW_BLOCK,
        }
    }
}

impl Settings {
    /// How often the heartbeat refreshes the node's presence and claims: a third of the TTL.
    pub fn beat_interval(&self) -> Duration {
        self.claim_ttl / 3
    }
}

/// One node's handle on the cluster: cheap to clone; every clone is the same node.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

struct Inner {
    /// Where the engine is, for connections of their own (the follower's).
    client: redis::Client,
    /// Shared by every command that does not block; reconnects after the engine returns.
    conn: ConnectionManager,
    settings: Settings,
    /// This node, this run.
    me: NodeInfo,
    /// [`Inner::me`] as stored in the presence key, made once so a compare is exact.
    me_value: String,
    /// The value of this node's nick claims, made once likewise.
    holder_value: String,
    /// The nicks this node holds, by folded key: what the heartbeat refreshes.
    held: Mutex<std::collections::HashMap<String, crate::names::Nick>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node", &self.inner.me.node)
            .field("epoch", &self.inner.me.epoch)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Connects to the engine at `url` (`redis://HOST:PORT[/DB]`) as node `node`: takes a new
    /// epoch for this run and registers the node's presence. Fails, saying why, when the
    /// engine cannot be reached within the connect timeout, is older than Redis 6.2 (the
    /// exclusive ranges gap fill needs), or another live process is node `node` already.
    pub async fn connect(url: &str, node: NodeName, settings: Settings) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)
            .with_context(|| format!("{url} is not an engine address (redis://HOST:PORT)"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.connect_timeout))
            .set_response_timeout(Some(settings.response_timeout))
            .set_number_of_retries(2);
        let mut conn = tokio::time::timeout(
            settings.connect_timeout,
            ConnectionManager::new_with_config(client.clone(), config),
        )
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "the engine at {url} did not answer within {:?}",
                settings.connect_timeout
            )
        })?
        .with_context(|| format!("cannot reach the engine at {url}"))?;
        check_engine(&mut conn, url).await?;
        let me = presence::start(&mut conn, node, &settings).await?;
        let me_value = serde_json::to_string(&me).context("cannot encode the node's presence")?;
        let holder_value = serde_json::to_string(&Holder::of(&me))
            .context("cannot encode the node's claim value")?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                conn,
                settings,
                me,
                me_value,
                holder_value,
                held: Mutex::default(),
            }),
        })
    }

    /// This node, this run.
    pub fn me(&self) -> &NodeInfo {
        &self.inner.me
    }

    /// How this node talks to the engine.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// A connection shared by every non-blocking command (cheap to clone).
    fn conn(&self) -> ConnectionManager {
        self.inner.conn.clone()
    }

    fn held(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, crate::names::Nick>> {
        self.inner
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Refuses an engine this module cannot work with, and warns about one that would lose
/// lines on its own restart.
async fn check_engine(conn: &mut ConnectionManager, url: &str) -> anyhow::Result<()> {
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(conn)
        .await
        .with_context(|| format!("the engine at {url} does not answer INFO"))?;
    let version = info
        .lines()
        .find_map(|line| line.strip_prefix("redis_version:"))
        .map(str::trim)
        .unwrap_or_default()
        .to_owned();
    let mut parts = version
        .split('.')
        .map(|part| part.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) < (6, 2) {
        bail!("the engine at {url} is Redis {version:?}; the cluster needs 6.2 or newer");
    }
    // CONFIG may be renamed away by a managed service: then nothing is known, and nothing said.
    let appendonly: Result<Vec<String>, _> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("appendonly")
        .query_async(conn)
        .await;
    if let Ok(pair) = appendonly
        && pair.get(1).is_some_and(|value| value == "no")
    {
        warn!(
            "the engine at {url} runs without its append-only file (appendonly no): if it \
             restarts, the rooms' recent lines and their numbering are lost (see docs/cluster.md)"
        );
    }
    Ok(())
}

/// KEYS: a key. ARGV: a value. Deletes the key if it holds that value.
static DELETE_IF: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
        if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
        return 0
        ",
    )
});

/// Deletes `key` if it still holds `value` (this run's claim or presence, not a later one's).
async fn delete_if(conn: &mut ConnectionManager, key: &str, value: &str) -> anyhow::Result<()> {
    let mut invocation = DELETE_IF.prepare_invoke();
    invocation.key(key).arg(value);
    let _: i64 = invocation.invoke_async(conn).await?;
    Ok(())
}

/// The key of `name` in the engine's namespace.
fn key(kind: &str, name: &str) -> String {
    format!("{PREFIX}{kind}:{name}")
}
