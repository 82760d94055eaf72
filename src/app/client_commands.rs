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
    build: for<'a> fn(&'a str) -> ClientCommand<'a>,
}

/// Every client command.
pub const CLIENT_COMMANDS: &[ClientCommandSpec] = &[
    ClientCommandSpec {
        name: "query",
        args: "NICK",
        help: "commands.query",
        build: |rest| ClientCommand::Query(rest),
    },
    ClientCommandSpec {
        name: "close",
        args: "",
        help: "commands.close",
        build: |_| ClientCommand::Close,
    },
    ClientCommandSpec {
        name: "lab",
        args: "[recv|delay|pause|resume|send|nagle|rcvbuf|probe|off …]",
        help: "lab.command",
        build: |rest| ClientCommand::Lab(rest),
    },
    ClientCommandSpec {
        name: "shutdown",
        args: "wr|rd",
        help: "lab.command_shutdown",
        build: |rest| ClientCommand::Shutdown(rest),
    },
    ClientCommandSpec {
        name: "reset",
        args: "",
        help: "lab.command_reset",
        build: |_| ClientCommand::Reset,
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

/// The help's line for the client commands: their usages, and what each does in `language`.
pub fn help_row(language: Language) -> (String, String) {
    let usage: Vec<String> = CLIENT_COMMANDS
        .iter()
        .map(|spec| match spec.args {
            "" => format!("/{}", spec.name),
            args => format!("/{} {args}", spec.name),
        })
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
    fn the_help_row_lists_every_client_command() {
        let (usage, what) = help_row(Language::English);
        assert_eq!(
            usage,
            "/query NICK, /close, /lab [recv|delay|pause|resume|send|nagle|rcvbuf|probe|off …], \
             /shutdown wr|rd, /reset"
        );
        assert_eq!(
            what,
            "typed: open a private buffer; close this buffer; the framing lab (recv size, pause, \
             send mode, Nagle, probe); close one half (our FIN, or stop reading); close with an RST"
        );
        let (_, chinese) = help_row(Language::Chinese);
        assert_eq!(
            chinese,
            "输入命令：打开私聊缓冲区；关闭本缓冲区；分帧实验（recv 大小、暂停、发送方式、Nagle、探测）；\
             关闭一半（我们的 FIN，或停止读取）；以 RST 关闭"
        );
    }
}
