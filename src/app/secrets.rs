//! The passwords a session needs again after a reconnect: the server's (`/pass`) and the
//! account's (`/login`, `/register`). Kept in memory only, for this run; never in the
//! scrollback, the input history (see `EditBox::take`), a transcript, the inspector (which
//! shows only the size of what is sent) or on disk. A login is remembered once the server
//! confirms it, so a mistyped password is not sent again after every reconnect; the server's
//! password is forgotten when the server calls it wrong.

use std::borrow::Cow;

use crate::i18n::{Language, tr};
use crate::names::fold;
use crate::protocol::{Command, Refusal, secret_start};

/// A typed line as a note may show it: a password in it is replaced by `(password hidden)`,
/// said in `language`.
pub fn masked(line: &str, language: Language) -> Cow<'_, str> {
    match secret_start(line) {
        Some(at) => {
            let hidden = tr!(language, "note.password_hidden");
            Cow::Owned(format!("{}{hidden}", &line[..at]))
        }
        None => Cow::Borrowed(line),
    }
}

/// What the client remembers to log in again by itself.
#[derive(Debug, Default)]
pub struct Secrets {
    /// The server's password, as last sent with `/pass`.
    server: Option<String>,
    /// The account's nick and password, once the server said they are right.
    login: Option<(String, String)>,
    /// A `/login` or `/register` sent and not yet answered.
    pending: Option<(String, String)>,
}

impl Secrets {
    /// A line the user typed and the client sends; `own` is the nick in use.
    pub fn sent(&mut self, command: &Command<'_>, own: Option<&str>) {
        match command {
            Command::Pass(password) => self.server = Some((*password).to_owned()),
            Command::Login(args) => {
                if let Some((nick, password)) = args.split_once(' ') {
                    self.pending = Some((nick.to_owned(), password.trim().to_owned()));
                }
            }
            Command::Register(password) => {
                if let Some(own) = own {
                    self.pending = Some((own.to_owned(), (*password).to_owned()));
                }
            }
            _ => {}
        }
    }

    /// The server said we are logged in as (or registered) `nick`.
    pub fn confirmed(&mut self, nick: &str) {
        if let Some((pending, password)) = self.pending.take()
            && fold(&pending) == fold(nick)
        {
            self.login = Some((nick.to_owned(), password));
        }
    }

    /// The server refused something; a wrong password is not sent again.
    pub fn refused(&mut self, error: &str) {
        if error == Refusal::WrongPassword.to_string() {
            self.server = None;
        }
        if error == Refusal::LoginFailed.to_string() {
            self.pending = None;
        }
    }

    /// The line that gives the server's password again, if we know it.
    pub fn pass_line(&self) -> Option<String> {
        self.server
            .as_deref()
            .map(|password| Command::Pass(password).to_string())
    }

    /// The line that logs in again, if a login was confirmed.
    pub fn login_line(&self) -> Option<String> {
        let (nick, password) = self.login.as_ref()?;
        Some(Command::Login(&format!("{nick} {password}")).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_hide_passwords() {
        assert_eq!(
            masked("/login bob my secret", Language::English),
            "/login bob (password hidden)"
        );
        assert_eq!(
            masked("/pass x", Language::English),
            "/pass (password hidden)"
        );
        assert_eq!(masked("/pass x", Language::Chinese), "/pass （密码已隐藏）");
        assert_eq!(masked("hello", Language::Chinese), "hello");
    }

    #[test]
    fn a_login_is_remembered_once_confirmed_and_a_wrong_password_forgotten() {
        let mut secrets = Secrets::default();
        secrets.sent(&Command::parse("/login alice pw one"), Some("guest-1"));
        assert_eq!(secrets.login_line(), None, "not before the server says so");
        secrets.confirmed("Alice");
        assert_eq!(secrets.login_line().as_deref(), Some("/login Alice pw one"));

        secrets.sent(&Command::parse("/pass sesame"), None);
        assert_eq!(secrets.pass_line().as_deref(), Some("/pass sesame"));
        secrets.refused(&Refusal::WrongPassword.to_string());
        assert_eq!(secrets.pass_line(), None);

        let mut secrets = Secrets::default();
        secrets.sent(&Command::parse("/login bob wrong-one"), Some("guest-1"));
        secrets.refused(&Refusal::LoginFailed.to_string());
        secrets.confirmed("bob");
        assert_eq!(secrets.login_line(), None, "a refused login is not kept");
        secrets.sent(&Command::parse("/register hunter22"), Some("bob"));
        secrets.confirmed("bob");
        assert_eq!(secrets.login_line().as_deref(), Some("/login bob hunter22"));
    }
}
