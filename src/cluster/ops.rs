//! What holds for the whole cluster once decided: bans and their lifting, and registered
//! accounts. One stream
//! (`ops`), which every node follows from its start each time it starts, so a node that was
//! away, or is new, learns every ban and account; applying one twice changes nothing (a ban
//! replaces the one on the same target, lifting a lifted ban does nothing, an account is kept
//! once), and the stream's order is the order they were decided in.
//!
//! An account is registered by the member holding its nick, and a nick is held by one member
//! in the whole cluster (see [`super::claims`]): two nodes cannot register one nick at once.
//! Its entry carries the password's argon2id hash (salted, in PHC form), so every node can
//! check a `/login`; the engine is as trusted as each node's store.

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::Cluster;
use super::log::Position;

/// The stream field that holds an [`Op`], as JSON.
pub(super) const OP_FIELD: &str = "op";

/// An operator's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Op {
    /// A ban is set (replacing one on the same target).
    Ban {
        /// What it names, as stored (`nick:KEY` or `net:CIDR`).
        target: String,
        /// The operator.
        by: String,
        /// Why.
        reason: String,
        /// When it ends, Unix ms; `None` until lifted.
        until_ms: Option<i64>,
    },
    /// The ban on a target is lifted.
    Unban {
        /// What it named, as stored.
        target: String,
    },
    /// An account was registered.
    Account {
        /// Its nick's key.
        key: String,
        /// Its nick as registered.
        nick: String,
        /// The password's hash, PHC form.
        hash: String,
        /// When, Unix ms.
        created_ms: i64,
    },
}

/// The cluster's stream of operators' decisions.
pub(super) fn ops_key() -> String {
    super::key("ops", "all")
}

impl Cluster {
    /// Tells every node of `op`.
    pub async fn publish_op(&self, op: &Op) -> anyhow::Result<()> {
        let json = serde_json::to_string(op).context("cannot encode an operator's decision")?;
        let _: String = redis::cmd("XADD")
            .arg(ops_key())
            .arg("*")
            .arg(OP_FIELD)
            .arg(json)
            .query_async(&mut self.conn())
            .await
            .context("cannot tell the cluster of an operator's decision")?;
        Ok(())
    }

    /// Up to `limit` decisions after `after`, in order, each with its position: a node reads
    /// them all before it takes members, then follows on from the last.
    pub async fn read_ops(
        &self,
        after: Position,
        limit: usize,
    ) -> anyhow::Result<Vec<(Position, Op)>> {
        let reply = self
            .range_after(&ops_key(), after, limit)
            .await
            .context("cannot read the operators' decisions from the engine")?;
        reply
            .ids
            .iter()
            .map(|entry| {
                let at = Position::from_stream_id(&entry.id)
                    .with_context(|| format!("{} is not a position", entry.id))?;
                let json: String = entry
                    .get(OP_FIELD)
                    .with_context(|| format!("decision {} has no {OP_FIELD} field", entry.id))?;
                let op = serde_json::from_str(&json)
                    .with_context(|| format!("decision {} is not one: {json}", entry.id))?;
                Ok((at, op))
            })
            .collect()
    }
}
