//! The account commands: `/register PASSWORD` claims the nick in use (an operator's nick only
//! from the server's own machine), `/login NICK PASSWORD`
//! takes a registered nick (from a connection of the same account that is still there, if
//! need be: a client reconnecting before its old connection timed out gets its nick back),
//! and `/pass` after the start, which has nothing left to do.

use super::{Me, Session};
use crate::names::{Nick, fold};
use crate::protocol::{Event, Refusal};
use crate::server::access::is_local_default;
use crate::server::removal::Removal;

impl Session<'_> {
    /// `/register PASSWORD`.
    pub(super) async fn register(&self, me: &mut Me, password: &str) {
        let Some(accounts) = &self.identity.accounts else {
            return self.tell(Refusal::NoAccounts);
        };
        if password.is_empty() {
            return self.tell(Refusal::Usage("/register PASSWORD"));
        }
        // Whoever registers an operator's nick first is an operator: only someone on the
        // server's own machine may be first.
        if self.identity.operators.contains(&me.nick.key()) && !is_local_default(self.address) {
            return self.tell(Refusal::OperatorFromAfar(me.nick.to_string()));
        }
        match accounts.register(&me.nick, password).await {
            Ok(()) => {
                tracing::info!(nick = %me.nick, "registered");
                me.account = Some(me.nick.key());
                self.tell(Event::Registered {
                    nick: me.nick.as_str(),
                });
            }
            Err(refusal) => self.tell(refusal),
        }
    }

    /// `/login NICK PASSWORD`.
    pub(super) async fn login(&self, me: &mut Me, args: &str) {
        let Some(accounts) = &self.identity.accounts else {
            return self.tell(Refusal::NoAccounts);
        };
        let Some((nick, password)) = args.split_once(' ') else {
            return self.tell(Refusal::Usage("/login NICK PASSWORD"));
        };
        let password = password.trim();
        // Registered is what a login is for; banned is not.
        if let Some(banned) = self.identity.nick_banned(&fold(nick)) {
            return self.tell(banned);
        }
        let registered = match accounts
            .login(&self.identity.throttle, self.address, nick, password)
            .await
        {
            Ok(registered) => registered,
            Err(refusal) => {
                tracing::info!(nick, address = %self.address, "login failed");
                return self.tell(refusal);
            }
        };
        let Ok(nick) = Nick::parse(&registered) else {
            return self.tell(Refusal::LoginFailed);
        };
        let key = nick.key();
        let replace = || {
            if let Some((holder, _, _)) = self.rooms.find(&key)
                && holder != self.id
            {
                // Only the account's own connections can hold its nick: this is an older one.
                self.rooms.remove(holder, Removal::Replaced);
            }
            Ok(())
        };
        if let Some(nicks) = self.nicks {
            // In a cluster the nick is claimed first: held on another node, it is refused
            // (accounts are each node's own), and the login with it.
            let renamed = nicks
                .rename(self.rooms, self.id, &me.nick, nick.clone(), replace)
                .await;
            if let Err(refusal) = renamed {
                return self.tell(refusal);
            }
            me.account = Some(key);
        } else {
            let _ = replace();
            me.account = Some(key);
            if let Err(error) = self.rooms.rename(self.id, nick.clone()) {
                return self.tell(Refusal::Nick(error));
            }
        }
        tracing::info!(%nick, address = %self.address, "logged in");
        me.nick = nick;
        self.tell(Event::LoggedIn {
            nick: me.nick.as_str(),
        });
    }
}
