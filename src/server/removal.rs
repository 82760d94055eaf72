//! Why the server let a member go before it said goodbye itself: it stopped reading, an
//! operator kicked it, or its account logged in on another connection. [`Dropped`] is the one
//! signal its session and writer wait on, with the reason beside it, so the writer's last
//! line and the lifecycle log say what really happened.

use std::sync::{Arc, OnceLock};

use tokio_util::sync::CancellationToken;

use crate::protocol::Refusal;

/// Why a member was let go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// Its outbox overflowed: it stopped reading.
    TooSlow,
    /// An operator kicked it (or banned it, which kicks).
    Kicked {
        /// The operator.
        by: String,
        /// What the operator said (may be empty).
        reason: String,
    },
    /// Its account logged in from another connection, which took the nick over.
    Replaced,
}

impl Removal {
    /// What each of its rooms is told, in `*** nick left (REASON)`.
    pub fn reason(&self) -> String {
        match self {
            Self::TooSlow => super::rooms::TOO_SLOW.to_owned(),
            Self::Kicked { by, reason } if reason.is_empty() => format!("kicked by {by}"),
            Self::Kicked { by, reason } => format!("kicked by {by}: {reason}"),
            Self::Replaced => "logged in elsewhere".to_owned(),
        }
    }

    /// The last line the member itself gets.
    pub fn refusal(&self) -> Refusal<'_> {
        match self {
            Self::TooSlow => Refusal::TooSlow,
            Self::Kicked { by, reason } => Refusal::Kicked { by, reason },
            Self::Replaced => Refusal::Replaced,
        }
    }

    /// The lifecycle log's word for it.
    pub fn how(&self) -> &'static str {
        match self {
            Self::TooSlow => "dropped (too slow)",
            Self::Kicked { .. } => "kicked",
            Self::Replaced => "replaced (logged in elsewhere)",
        }
    }
}

/// Set once when the server lets a member go; its session and writer wait on it.
#[derive(Debug, Clone, Default)]
pub struct Dropped {
    token: CancellationToken,
    why: Arc<OnceLock<Removal>>,
}

impl Dropped {
    /// Lets the member go for `why` (the first reason given stays).
    pub fn drop_for(&self, why: Removal) {
        let _ = self.why.set(why);
        self.token.cancel();
    }

    /// Resolves once the member was let go.
    pub async fn cancelled(&self) {
        self.token.cancelled().await;
    }

    /// Whether the member was let go.
    #[cfg(test)]
    pub fn is_dropped(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Why it was let go (too slow, if asked before it was).
    pub fn why(&self) -> Removal {
        self.why.get().cloned().unwrap_or(Removal::TooSlow)
    }
}
