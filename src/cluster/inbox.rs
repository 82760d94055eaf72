//! What one node asks of another about a member the other holds: a private message to deliver,
//! a kick to carry out. Each node has an inbox, one stream (`inbox:{NODE}`, capped), which its
//! follower reads with the rooms; the sender finds the recipient's node from its nick's claim
//! (see [`super::claims`]).
//!
//! An inbox is followed from where it ends when the node starts: what was sent to an earlier
//! run was for members that run had, who are gone.

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::log::Position;
use super::{Cluster, Holder, NodeName};
use crate::names::Nick;

/// The stream field that holds a [`Direct`], as JSON.
pub(super) const DIRECT_FIELD: &str = "direct";

/// Entries an inbox keeps (approximately): a node that reads its inbox at all is far behind
/// it only while it is paused or cut off, and a message to it older than this is stale.
const INBOX_KEEPS: usize = 10_000;

/// What a node is asked to do for one of its members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Direct {
    /// Deliver a private message.
    Private {
        /// Who sent it, as shown.
        from: String,
        /// The node the sender is on, told if the recipient is gone meanwhile.
        #[serde(default)]
        from_node: Option<String>,
        /// To whom (its nick's key).
        to: String,
        /// What it says.
        text: String,
    },
    /// Tell a member its private message found nobody: the recipient left while it travelled.
    Undelivered {
        /// The sender (its nick's key).
        to: String,
        /// The recipient, as the sender wrote it.
        nick: String,
    },
    /// Disconnect a member, as an operator asked.
    Kick {
        /// Whom (its nick's key).
        nick: String,
        /// The operator's nick.
        by: String,
        /// Why.
        reason: String,
    },
}

/// The inbox of node `node`.
pub(super) fn inbox_key(node: &str) -> String {
    super::key("inbox", &format!("{{{node}}}"))
}

impl Cluster {
    /// Who holds `nick` across the cluster, if anyone does.
    pub async fn holder_of(&self, nick: &Nick) -> anyhow::Result<Option<Holder>> {
        let value: Option<String> = redis::cmd("GET")
            .arg(super::claims::claim_key(nick))
            .query_async(&mut self.conn())
            .await
            .with_context(|| format!("cannot ask the engine who holds {nick}"))?;
        value
            .map(|json| {
                serde_json::from_str(&json)
                    .with_context(|| format!("{nick}'s claim in the engine is not one: {json}"))
            })
            .transpose()
    }

    /// Puts `direct` in node `node`'s inbox.
    pub async fn send_direct(&self, node: &NodeName, direct: &Direct) -> anyhow::Result<()> {
        let json = serde_json::to_string(direct).context("cannot encode a message to a node")?;
        let _: String = redis::cmd("XADD")
            .arg(inbox_key(node.as_str()))
            .arg("MAXLEN")
            .arg("~")
            .arg(INBOX_KEEPS)
            .arg("*")
            .arg(DIRECT_FIELD)
            .arg(json)
            .query_async(&mut self.conn())
            .await
            .with_context(|| format!("cannot write to node {node}'s inbox in the engine"))?;
        Ok(())
    }

    /// Where this node's inbox ends now: it is followed from there.
    pub async fn inbox_end(&self) -> anyhow::Result<Position> {
        let reply: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(inbox_key(self.me().node.as_str()))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut self.conn())
            .await
            .context("cannot read where this node's inbox ends")?;
        Ok(reply
            .ids
            .first()
            .and_then(|entry| Position::from_stream_id(&entry.id))
            .unwrap_or_default())
    }
}
