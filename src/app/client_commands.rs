//! The commands the client answers itself and never sends: one table, [`CLIENT_COMMANDS`],
//! which [`ClientCommand::parse`] reads and the F1 help lists. The server's own commands and
//! their `/help` come from [`crate::protocol::COMMANDS`]; none of these names is one of them.

use crate::i18n::{Language, tr};

/// A line the client answers itself, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientCommand<'a> {
    /// `/query NICK`: open (and go to) the private buffer with NICK.
    Query(&'a str),
    /// `/close`: close the buffer on screen.
    Close,
    /// `/lesson [N]`: list the lessons, or open lesson N's card.
    Lesson(&'a str),
}

/// One client command as the help lists it, and how its line becomes a [`ClientCommand`].
#[derive(Debug)]
pub struct ClientCommandSpec {
    /// The name after `/`.
    pub name: &'static str,
    /// What it does, in a few words: its key in the catalogue (`locales/`).
    pub help: &'static str,
    build: for<'a> fn(&'a str) -> ClientCommand<'a>,
}

/// Every client command.
pub const CLIENT_COMMANDS: &[ClientCommandSpec] = &[
    ClientCommandSpec {
        name: "query",
        help: "commands.query",
        build: |rest| ClientCommand::Query(rest),
    },
    ClientCommandSpec {
        name: "close",
        help: "commands.close",
        build: |_| ClientCommand::Close,
    },
    ClientCommandSpec {
        name: "lesson",
        help: "commands.lesson",
        build: |rest| ClientCommand::Lesson(rest),
    },
];

impl<'a> ClientCommand<'a> {
    /// The client command `line` is, if it is one (the rest of the line trimmed).
    pub fn parse(line: &'a str) -> Option<Self> {
        let command = line.strip_prefix('/')?;
        let (name, rest) = command.split_once(' ').unwrap_or((command, ""));
        CLIENT_COMMANDS
            .iter()
            .find(|spec| spec.name == name)
            .map(|spec| (spec.build)(rest.trim()))
    }
}

/// The help's line for the client commands: their names, and what each does in `language`,
/// in a few words. One line, names only, keeps the help within 80×24; each command without
/// its argument says how it is used.
pub fn help_row(language: Language) -> (String, String) {
    let usage: Vec<String> = CLIENT_COMMANDS
        .iter()
        .map(|spec| format!("/{}", spec.name))
        .collect();
    let what: Vec<String> = CLIENT_COMMANDS
        .iter()
        .map(|spec| tr!(language, spec.help))
        .collect();
    let what = what.join(&tr!(language, "help.separator"));
    (usage.join(", "), tr!(language, "help.typed", what = what))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::COMMANDS;

    #[test]
    fn client_commands_parse_and_never_shadow_the_servers() {
        assert_eq!(
            ClientCommand::parse("/query  bob "),
            Some(ClientCommand::Query("bob"))
        );
        assert_eq!(ClientCommand::parse("/close"), Some(ClientCommand::Close));
        assert_eq!(ClientCommand::parse("/closer"), None);
        assert_eq!(ClientCommand::parse("query bob"), None);
        assert_eq!(ClientCommand::parse("//query bob"), None);
        for spec in CLIENT_COMMANDS {
            assert!(
                !COMMANDS
                    .iter()
                    .any(|s| s.name == spec.name || s.aliases.contains(&spec.name)),
                "/{} is the server's",
                spec.name
            );
        }
    }

    #[test]
    fn the_help_row_lists_every_client_command() {
        let (usage, what) = help_row(Language::English);
        assert_eq!(usage, "/query, /close, /lesson");
        assert_eq!(what, "typed: private buffer; close it; TCP lessons");
        let (_, chinese) = help_row(Language::Chinese);
        assert_eq!(chinese, "输入命令：私聊；关闭；TCP 课");
    }
}
