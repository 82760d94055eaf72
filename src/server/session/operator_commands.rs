//! What operators may do: `/kick`, `/ban`, `/unban`, `/bans`, `/mute` and `/unmute`. An
//! operator is a member logged in as one of the accounts `--op` names; anyone else is told
//! so. Nothing here can hit the operator's own connection: banning a network it is in, or
//! kicking itself, is refused.

use std::net::IpAddr;

use ipnet::IpNet;

use super::{Me, Session};
use crate::cluster::{Direct, Op};
use crate::names::{Nick, fold};
use crate::protocol::{Event, Refusal};
use crate::server::bans::{self, Ban, Target};
use crate::server::identity::utc_minute;
use crate::server::removal::Removal;

/// Minutes a `/mute` lasts when none are given.
pub const DEFAULT_MUTE_MINUTES: u64 = 10;

/// Bans `/bans` lists; the rest are counted.
const BANS_LISTED: usize = 100;

/// `NICK [REASON]`, `TARGET [MINUTES] [REASON]` and the like: the first word, an optional
/// number of minutes, and the rest.
fn target_minutes_reason(args: &str) -> (&str, Option<u64>, &str) {
    let (target, rest) = args.split_once(' ').unwrap_or((args, ""));
    let rest = rest.trim_start();
    let (first, after) = rest.split_once(' ').unwrap_or((rest, ""));
    match first.parse::<u64>() {
        Ok(minutes) => (target, Some(minutes), after.trim()),
        Err(_) => (target, None, rest.trim()),
    }
}

impl Session<'_> {
    /// `Ok` if this member may act as an operator.
    fn operator(&self, me: &Me) -> Result<(), Refusal<'static>> {
        if self.identity.is_operator(me.account.as_deref()) {
            Ok(())
        } else {
            Err(Refusal::NotOperator)
        }
    }

    /// `/kick NICK [REASON]`: the member goes, and each of its rooms reads why; in a cluster,
    /// whatever node it is on (that node carries it out).
    pub(super) async fn kick(&self, me: &Me, args: &str) {
        if let Err(refusal) = self.operator(me) {
            return self.tell(refusal);
        }
        let (nick, reason) = args.split_once(' ').unwrap_or((args, ""));
        if nick.is_empty() {
            return self.tell(Refusal::Usage("/kick NICK [REASON]"));
        }
        let why = Removal::Kicked {
            by: me.nick.to_string(),
            reason: reason.trim().to_owned(),
        };
        let Some((id, nick, _)) = self.rooms.find(&fold(nick)) else {
            return Box::pin(self.kick_elsewhere(nick, why)).await;
        };
        if id == self.id {
            return self.tell(Refusal::OwnAddress);
        }
        tracing::info!(%nick, by = %me.nick, reason = reason.trim(), "kicked");
        self.rooms.remove(id, why);
    }

    /// `/kick` of a member this node does not have: its node is asked, if it is in the cluster.
    async fn kick_elsewhere(&self, nick: &str, why: Removal) {
        let (Some(cluster), Ok(target)) = (self.cluster, Nick::parse(nick)) else {
            return self.tell(Refusal::NoSuchNick(nick));
        };
        let Removal::Kicked { by, reason } = why else {
            return;
        };
        let asked = match cluster.holder_of(&target).await {
            Ok(Some(holder)) if holder.node != cluster.me().node => {
                tracing::info!(%target, by, reason, node = %holder.node, "kick asked of another node");
                let kick = Direct::Kick {
                    nick: target.key(),
                    by,
                    reason,
                };
                cluster.send_direct(&holder.node, &kick).await
            }
            Ok(_) => return self.tell(Refusal::NoSuchNick(nick)),
            Err(error) => Err(error),
        };
        if let Err(error) = asked {
            tracing::warn!("cannot ask another node to kick {target}: {error:#}");
            self.tell(Refusal::ClusterUnavailable);
        }
    }

    /// `/ban NICK|ADDRESS|CIDR [MINUTES] [REASON]`: stored, then everyone it covers is kicked.
    /// A nick's ban covers its address too while it is online, unless that is the
    /// operator's own.
    pub(super) async fn ban(&self, me: &Me, args: &str) {
        if let Err(refusal) = self.operator(me) {
            return self.tell(refusal);
        }
        let (text, minutes, reason) = target_minutes_reason(args);
        if text.is_empty() {
            return self.tell(Refusal::Usage("/ban NICK|ADDRESS|CIDR [MINUTES] [REASON]"));
        }
        let Some(target) = Target::parse(text) else {
            return self.tell(Refusal::BanTarget(text));
        };
        let mut targets = vec![target.clone()];
        match &target {
            Target::Net(net) if net.contains(&self.address) => {
                return self.tell(Refusal::OwnAddress);
            }
            Target::Net(_) => {}
            Target::Nick(key) => {
                if me.nick.key() == *key {
                    return self.tell(Refusal::OwnAddress);
                }
                if let Some((_, _, Some(address))) = self.rooms.find(key)
                    && address != self.address
                {
                    targets.push(Target::Net(IpNet::from(address)));
                }
            }
        }
        let until_ms = bans::until(minutes);
        let Some(list) = self.identity.bans.clone() else {
            return self.tell(Refusal::NoAccounts);
        };
        let by = me.nick.to_string();
        let reason = reason.to_owned();
        let bans: Vec<Ban> = targets
            .iter()
            .map(|target| Ban {
                target: target.clone(),
                by: by.clone(),
                reason: reason.clone(),
                until_ms,
            })
            .collect();
        let stored =
            tokio::task::spawn_blocking(move || bans.into_iter().try_for_each(|ban| list.add(ban)))
                .await;
        if !matches!(stored, Ok(Ok(()))) {
            tracing::warn!(?stored, "cannot store a ban");
            return self.tell(Refusal::StoreUnavailable);
        }
        let kicked = self.kick_covered(&targets, &by, &reason);
        let ops = targets.iter().map(|target| Op::Ban {
            target: target.stored(),
            by: by.clone(),
            reason: reason.clone(),
            until_ms,
        });
        let published = self.publish(ops.collect()).await;
        let until = until_ms.map_or_else(
            || "until lifted".to_owned(),
            |ms| format!("until {}", utc_minute(ms)),
        );
        let what: Vec<String> = targets.iter().map(Target::to_string).collect();
        tracing::info!(targets = ?what, by, %until, kicked, "banned");
        self.tell(Event::Notice(
            format!(
                "banned {} {until}; {kicked} disconnected",
                what.join(" and ")
            )
            .into(),
        ));
        if !published {
            self.tell(Refusal::ClusterUnavailable);
        }
    }

    /// In a cluster, tells every node of `ops`; whether it could (always, without a cluster).
    async fn publish(&self, ops: Vec<Op>) -> bool {
        let Some(cluster) = self.cluster else {
            return true;
        };
        for op in &ops {
            if let Err(error) = cluster.publish_op(op).await {
                tracing::warn!("{error:#}; the other nodes do not know of it");
                return false;
            }
        }
        true
    }

    /// Kicks everyone a new ban covers; how many.
    fn kick_covered(&self, targets: &[Target], by: &str, reason: &str) -> usize {
        let mut covered = self.rooms.connected_from(|address: IpAddr| {
            address != self.address && targets.iter().any(|target| target.covers(address))
        });
        for target in targets {
            if let Target::Nick(key) = target
                && let Some((id, _, _)) = self.rooms.find(key)
                && id != self.id
                && !covered.contains(&id)
            {
                covered.push(id);
            }
        }
        let reason = match reason {
            "" => "banned".to_owned(),
            reason => format!("banned: {reason}"),
        };
        covered
            .into_iter()
            .filter(|&id| {
                let why = Removal::Kicked {
                    by: by.to_owned(),
                    reason: reason.clone(),
                };
                self.rooms.remove(id, why).is_some()
            })
            .count()
    }

    /// `/unban NICK|ADDRESS|CIDR`.
    pub(super) async fn unban(&self, me: &Me, text: &str) {
        if let Err(refusal) = self.operator(me) {
            return self.tell(refusal);
        }
        let Some(target) = Target::parse(text) else {
            return self.tell(Refusal::BanTarget(text));
        };
        let Some(list) = self.identity.bans.clone() else {
            return self.tell(Refusal::NoAccounts);
        };
        let lifting = target.clone();
        match tokio::task::spawn_blocking(move || list.remove(&lifting)).await {
            Ok(Ok(true)) => {
                tracing::info!(%target, by = %me.nick, "unbanned");
                let published = self
                    .publish(vec![Op::Unban {
                        target: target.stored(),
                    }])
                    .await;
                self.tell(Event::Notice(
                    format!("the ban on {target} is lifted").into(),
                ));
                if !published {
                    self.tell(Refusal::ClusterUnavailable);
                }
            }
            Ok(Ok(false)) => self.tell(Refusal::NoSuchBan(text)),
            _ => self.tell(Refusal::StoreUnavailable),
        }
    }

    /// `/bans`: the bans in force, oldest first.
    pub(super) fn list_bans(&self, me: &Me) {
        if let Err(refusal) = self.operator(me) {
            return self.tell(refusal);
        }
        let list = self
            .identity
            .bans
            .as_ref()
            .map(|bans| bans.list())
            .unwrap_or_default();
        self.tell(Event::Notice(format!("bans ({}):", list.len()).into()));
        for ban in list.iter().take(BANS_LISTED) {
            let until = ban.until_ms.map_or_else(
                || "until lifted".to_owned(),
                |ms| format!("until {}", utc_minute(ms)),
            );
            let reason = match ban.reason.as_str() {
                "" => String::new(),
                reason => format!(": {reason}"),
            };
            self.tell(Event::Notice(
                format!("  {} by {} {until}{reason}", ban.target, ban.by).into(),
            ));
        }
        if list.len() > BANS_LISTED {
            let more = list.len() - BANS_LISTED;
            self.tell(Event::Notice(format!("  and {more} more").into()));
        }
    }

    /// `/mute NICK [MINUTES]`.
    pub(super) fn mute(&self, me: &Me, args: &str) {
        if let Err(refusal) = self.operator(me) {
            return self.tell(refusal);
        }
        let (nick, minutes, _) = target_minutes_reason(args);
        if nick.is_empty() {
            return self.tell(Refusal::Usage("/mute NICK [MINUTES]"));
        }
        let Some((id, nick, _)) = self.rooms.find(&fold(nick)) else {
            return self.tell(Refusal::NoSuchNick(nick));
        };
        if id == self.id {
            return self.tell(Refusal::OwnAddress);
        }
        let minutes = minutes.filter(|&m| m > 0).unwrap_or(DEFAULT_MUTE_MINUTES);
        let Some(until_ms) = bans::until(Some(minutes)) else {
            return;
        };
        self.identity.mutes.mute(id, &nick.key(), until_ms);
        let until = utc_minute(until_ms);
        tracing::info!(%nick, by = %me.nick, %until, "muted");
        self.rooms.send_to(
            id,
            crate::protocol::ServerLine::from(Refusal::Muted {
                until: until.clone(),
            })
            .to_bytes(),
        );
        self.tell(Event::Notice(
            format!("{nick} is muted until {until}").into(),
        ));
    }

    /// `/unmute NICK`.
    pub(super) fn unmute(&self, me: &Me, nick: &str) {
        if let Err(refusal) = self.operator(me) {
            return self.tell(refusal);
        }
        if nick.is_empty() {
            return self.tell(Refusal::Usage("/unmute NICK"));
        }
        let key = fold(nick);
        let holder = self.rooms.find(&key).map(|(id, _, _)| id);
        if self.identity.mutes.unmute(holder, &key) {
            self.tell(Event::Notice(format!("{nick} is no longer muted").into()));
        } else {
            self.tell(Event::Notice(format!("{nick} was not muted").into()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_are_optional_and_the_rest_is_the_reason() {
        assert_eq!(target_minutes_reason("bob"), ("bob", None, ""));
        assert_eq!(target_minutes_reason("bob 30"), ("bob", Some(30), ""));
        assert_eq!(
            target_minutes_reason("10.0.0.0/8 60 spam  bots "),
            ("10.0.0.0/8", Some(60), "spam  bots")
        );
        assert_eq!(
            target_minutes_reason("bob flooding #rust"),
            ("bob", None, "flooding #rust")
        );
    }
}
