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
    /// `/lab ...`: the framing lab's knobs and probe (the words after it, parsed by
    /// [`crate::lab::parse`]).
    Lab(&'a str),
    /// `/shutdown wr|rd`: close one half of the connection now.
    Shutdown(&'a str),
    /// `/reset`: close with `SO_LINGER` 0, an RST.
    Reset,
    /// `/lesson [N]`: list the lessons, or open lesson N's card.
    Lesson(&'a str),
}

/// One client command as the help lists it, and how its line becomes a [`ClientCommand`].
#[derive(Debug)]
pub struct ClientCommandSpec {
    /// The name after `/`.
    pub name: &'static str,
    /// Its arguments, as the help shows them.
    pub args: &'static str,
    /// What it does, in a few words: its key in the catalogue (`locales/`).
    pub help: &'static str,
    /// The help's row it is listed on, with the others of its group.
    pub group: Group,
    build: for<'a> fn(&'a str) -> ClientCommand<'a>,
}

/// The help's rows of client commands: the buffers' commands, and the framing lab's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// Buffers: `/query`, `/close`.
    Buffers,
    /// The lessons: `/lesson`.
    Lessons,
    /// The framing lab and the socket's own close: `/lab`, `/shutdown`, `/reset`.
    Lab,
}

/// Every client command.
pub const CLIENT_COMMANDS: &[ClientCommandSpec] = &[
    ClientCommandSpec {
        name: "query",
        args: "NICK",
        help: "commands.query",
        group: Group::Buffers,
        build: |rest| ClientCommand::Query(rest),
    },
    ClientCommandSpec {
        name: "close",
        args: "",
        help: "commands.close",
        group: Group::Buffers,
        build: |_| ClientCommand::Close,
    },
    ClientCommandSpec {
        name: "lab",
        args: "",
        help: "lab.command",
        group: Group::Lab,
        build: |rest| ClientCommand::Lab(rest),
    },
    ClientCommandSpec {
        name: "shutdown",
        args: "",
        help: "lab.command_shutdown",
        group: Group::Lab,
        build: |rest| ClientCommand::Shutdown(rest),
    },
    ClientCommandSpec {
        name: "reset",
        args: "",
        help: "lab.command_reset",
        group: Group::Lab,
        build: |_| ClientCommand::Reset,
    },
    ClientCommandSpec {
        name: "lesson",
        args: "[N]",
        help: "commands.lesson",
        group: Group::Lessons,
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

/// The help's lines for the client commands, one per [`Group`]: their usages, and what each
/// does in `language` (`/lab` with no argument names its knobs, a wrong one its usage).
pub fn help_rows(language: Language) -> Vec<(String, String)> {
    [Group::Buffers, Group::Lessons, Group::Lab]
        .into_iter()
        .map(|group| {
            let specs = || {
                CLIENT_COMMANDS
                    .iter()
                    .filter(move |spec| spec.group == group)
            };
            let usage: Vec<String> = specs()
                .map(|spec| match spec.args {
                    "" => format!("/{}", spec.name),
                    args => format!("/{} {args}", spec.name),
                })
                .collect();
            let what: Vec<String> = specs().map(|spec| tr!(language, spec.help)).collect();
            let what = what.join(&tr!(language, "help.separator"));
            (usage.join(", "), tr!(language, "help.typed", what = what))
        })
        .collect()
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
        assert_eq!(
            ClientCommand::parse("/lab recv 4"),
            Some(ClientCommand::Lab("recv 4"))
        );
        assert_eq!(
            ClientCommand::parse("/shutdown wr"),
            Some(ClientCommand::Shutdown("wr"))
        );
        assert_eq!(ClientCommand::parse("/reset"), Some(ClientCommand::Reset));
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
    fn the_help_rows_list_every_client_command() {
        let rows = help_rows(Language::English);
        let usages: Vec<&str> = rows.iter().map(|(usage, _)| usage.as_str()).collect();
        assert_eq!(
            usages,
            [
                "/query NICK, /close",
                "/lesson [N]",
                "/lab, /shutdown, /reset"
            ]
        );
        assert_eq!(rows[0].1, "typed: open a private buffer; close this buffer");
        assert_eq!(rows[1].1, "typed: a TCP lesson you do");
        assert_eq!(
            rows[2].1,
            "typed: the framing lab; half-close; close by RST"
        );
        let chinese = help_rows(Language::Chinese);
        assert_eq!(chinese[0].1, "输入命令：打开私聊缓冲区；关闭本缓冲区");
        assert_eq!(chinese[1].1, "输入命令：动手做的 TCP 课");
        assert_eq!(chinese[2].1, "输入命令：分帧实验；半关闭；以 RST 关闭");
    }
}
