//! What a client sends: a line is a [`Command`], parsed through the one table [`COMMANDS`],
//! which `/help` also lists; and what the server answers when it refuses one ([`Refusal`]).

use std::fmt;
use std::sync::LazyLock;

use super::EXIT;
use crate::names::{MAX_NICK_CHARS, NickError, RoomNameError};

/// A line from a client, parsed. Borrowed from the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    /// Plain text for the room (`//text` says a line that starts with `/`).
    Say(&'a str),
    /// `/me ACTION`.
    Me(&'a str),
    /// `/nick NAME`.
    Nick(&'a str),
    /// `/who [#room]` (or `/names`): who is in a room, the current one by default.
    Who(&'a str),
    /// `/join #room`: enter a room (made if new) and talk there.
    Join(&'a str),
    /// `/part [#room] [REASON]`: leave a room, the current one by default.
    Part(&'a str),
    /// `/switch #room`: talk in a room already joined, without joining again.
    Switch(&'a str),
    /// `/rooms [PAGE]`: the rooms, with their members and topics.
    Rooms(&'a str),
    /// `/topic [TEXT]`: show or set the current room's topic.
    Topic(&'a str),
    /// `/msg #room TEXT` or `/msg NICK TEXT`: say in a room, or to one person privately.
    Msg(&'a str),
    /// `/help`.
    Help,
    /// `/quit [REASON]`.
    Quit(&'a str),
    /// `/history [N]` or `/history since SEQ`: what the argument says is read by
    /// [`HistoryRequest::parse`].
    History(&'a str),
    /// `/search WORDS`.
    Search(&'a str),
    /// `/register PASSWORD`: claim the nick in use.
    Register(&'a str),
    /// `/login NICK PASSWORD`: take a registered nick.
    Login(&'a str),
    /// `/pass PASSWORD`: the server's password, before anything else.
    Pass(&'a str),
    /// `/kick NICK [REASON]` (operators).
    Kick(&'a str),
    /// `/ban NICK|ADDRESS|CIDR [MINUTES] [REASON]` (operators).
    Ban(&'a str),
    /// `/unban NICK|ADDRESS|CIDR` (operators).
    Unban(&'a str),
    /// `/bans` (operators).
    Bans,
    /// `/mute NICK [MINUTES]` (operators).
    Mute(&'a str),
    /// `/unmute NICK` (operators).
    Unmute(&'a str),
    /// The article's `exit`, alone on its line.
    Exit,
    /// Any other `/word`.
    Unknown(&'a str),
}

/// One command as `/help` lists it, and how its line becomes a [`Command`].
#[derive(Debug)]
pub struct CommandSpec {
    /// The name after `/`.
    pub name: &'static str,
    /// Other names accepted for it (IRC habits).
    pub aliases: &'static [&'static str],
    /// Its arguments, as the help shows them.
    pub args: &'static str,
    /// What it does, in a few words.
    pub help: &'static str,
    /// Builds the command from the rest of the line (trimmed).
    build: for<'a> fn(&'a str) -> Command<'a>,
}

/// Every command: [`Command::parse`] reads names from here and `/help` lists it.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "nick",
        aliases: &[],
        args: "NAME",
        help: "change your nick (1-24 characters, no spaces)",
        build: |rest| Command::Nick(rest),
    },
    CommandSpec {
        name: "who",
        aliases: &["names"],
        args: "[#ROOM]",
        help: "who is in a room (this one by default)",
        build: |rest| Command::Who(rest),
    },
    CommandSpec {
        name: "join",
        aliases: &[],
        args: "#ROOM",
        help: "enter a room (made if new) and talk there",
        build: |rest| Command::Join(rest),
    },
    CommandSpec {
        name: "part",
        aliases: &["leave"],
        args: "[#ROOM] [REASON]",
        help: "leave a room (this one by default)",
        build: |rest| Command::Part(rest),
    },
    CommandSpec {
        name: "switch",
        aliases: &[],
        args: "#ROOM",
        help: "talk in a room you are in",
        build: |rest| Command::Switch(rest),
    },
    CommandSpec {
        name: "rooms",
        aliases: &["list"],
        args: "[PAGE]",
        help: "the rooms, their members and topics",
        build: |rest| Command::Rooms(rest),
    },
    CommandSpec {
        name: "topic",
        aliases: &[],
        args: "[TEXT]",
        help: "show or set this room's topic",
        build: |rest| Command::Topic(rest),
    },
    CommandSpec {
        name: "msg",
        aliases: &[],
        args: "#ROOM|NICK TEXT",
        help: "say in a room, or to one person privately",
        build: |rest| Command::Msg(rest),
    },
    CommandSpec {
        name: "me",
        aliases: &[],
        args: "ACTION",
        help: "say * nick ACTION",
        build: |rest| Command::Me(rest),
    },
    CommandSpec {
        name: "history",
        aliases: &[],
        args: "[N]",
        help: "the last N lines said here (50; at most 5000)",
        build: |rest| Command::History(rest),
    },
    CommandSpec {
        name: "search",
        aliases: &[],
        args: "WORDS",
        help: "lines said here with every word, newest first",
        build: |rest| Command::Search(rest),
    },
    CommandSpec {
        name: "register",
        aliases: &[],
        args: "PASSWORD",
        help: "claim the nick you use; only you may use it after",
        build: |rest| Command::Register(rest),
    },
    CommandSpec {
        name: "login",
        aliases: &[],
        args: "NICK PASSWORD",
        help: "take back a nick you registered",
        build: |rest| Command::Login(rest),
    },
    CommandSpec {
        name: "pass",
        aliases: &[],
        args: "PASSWORD",
        help: "the server's password, if it has one (first)",
        build: |rest| Command::Pass(rest),
    },
    CommandSpec {
        name: "kick",
        aliases: &[],
        args: "NICK [REASON]",
        help: "operators: disconnect someone, saying why",
        build: |rest| Command::Kick(rest),
    },
    CommandSpec {
        name: "ban",
        aliases: &[],
        args: "NICK|ADDRESS|CIDR [MINUTES] [REASON]",
        help: "operators: keep a nick or addresses out (0 minutes: until lifted)",
        build: |rest| Command::Ban(rest),
    },
    CommandSpec {
        name: "unban",
        aliases: &[],
        args: "NICK|ADDRESS|CIDR",
        help: "operators: lift a ban",
        build: |rest| Command::Unban(rest),
    },
    CommandSpec {
        name: "bans",
        aliases: &[],
        args: "",
        help: "operators: the bans in force",
        build: |_| Command::Bans,
    },
    CommandSpec {
        name: "mute",
        aliases: &[],
        args: "NICK [MINUTES]",
        help: "operators: refuse someone's lines for a while (10 minutes)",
        build: |rest| Command::Mute(rest),
    },
    CommandSpec {
        name: "unmute",
        aliases: &[],
        args: "NICK",
        help: "operators: lift a mute",
        build: |rest| Command::Unmute(rest),
    },
    CommandSpec {
        name: "quit",
        aliases: &[],
        args: "[REASON]",
        help: "leave (the line exit does the same)",
        build: |rest| Command::Quit(rest),
    },
    CommandSpec {
        name: "help",
        aliases: &[],
        args: "",
        help: "this list",
        build: |_| Command::Help,
    },
];

impl<'a> Command<'a> {
    /// Reads one line (already sanitised).
    pub fn parse(line: &'a str) -> Self {
        if line == EXIT {
            return Self::Exit;
        }
        let Some(command) = line.strip_prefix('/') else {
            return Self::Say(line);
        };
        if command.starts_with('/') {
            return Self::Say(command);
        }
        let (name, rest) = command.split_once(' ').unwrap_or((command, ""));
        COMMANDS
            .iter()
            .find(|spec| spec.name == name || spec.aliases.contains(&name))
            .map_or(Self::Unknown(name), |spec| (spec.build)(rest.trim()))
    }

    /// Whether this line carries a password, which a client must never show, keep or log.
    pub fn is_secret(&self) -> bool {
        matches!(self, Self::Register(_) | Self::Login(_) | Self::Pass(_))
    }

    /// Whether this line ends the session (`exit` or `/quit`).
    pub fn ends_session(&self) -> bool {
        matches!(self, Self::Exit | Self::Quit(_))
    }
}

impl fmt::Display for Command<'_> {
    /// The line that parses back to this command.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let with_args = |f: &mut fmt::Formatter<'_>, name: &str, args: &str| {
            if args.is_empty() {
                write!(f, "/{name}")
            } else {
                write!(f, "/{name} {args}")
            }
        };
        match self {
            Self::Say(text) if text.starts_with('/') => write!(f, "/{text}"),
            Self::Say(text) => f.write_str(text),
            Self::Me(action) => with_args(f, "me", action),
            Self::Nick(nick) => with_args(f, "nick", nick),
            Self::Who(room) => with_args(f, "who", room),
            Self::Join(room) => with_args(f, "join", room),
            Self::Part(args) => with_args(f, "part", args),
            Self::Switch(room) => with_args(f, "switch", room),
            Self::Rooms(page) => with_args(f, "rooms", page),
            Self::Topic(text) => with_args(f, "topic", text),
            Self::Msg(args) => with_args(f, "msg", args),
            Self::Help => f.write_str("/help"),
            Self::Quit(reason) => with_args(f, "quit", reason),
            Self::History(args) => with_args(f, "history", args),
            Self::Search(words) => with_args(f, "search", words),
            Self::Register(password) => with_args(f, "register", password),
            Self::Login(args) => with_args(f, "login", args),
            Self::Pass(password) => with_args(f, "pass", password),
            Self::Kick(args) => with_args(f, "kick", args),
            Self::Ban(args) => with_args(f, "ban", args),
            Self::Unban(target) => with_args(f, "unban", target),
            Self::Bans => f.write_str("/bans"),
            Self::Mute(args) => with_args(f, "mute", args),
            Self::Unmute(nick) => with_args(f, "unmute", nick),
            Self::Exit => f.write_str(EXIT),
            Self::Unknown(name) => write!(f, "/{name}"),
        }
    }
}

/// Where the password begins in a line being typed that carries one (`/register PASSWORD`,
/// `/pass PASSWORD`, `/login NICK PASSWORD`), as a byte offset: what a client masks while it
/// is typed, and never keeps. `None` for any other line (or before the password's place).
pub fn secret_start(line: &str) -> Option<usize> {
    for command in ["/register ", "/pass "] {
        if line.starts_with(command) {
            return Some(command.len());
        }
    }
    let rest = line.strip_prefix("/login ")?;
    let nick_at = rest.len() - rest.trim_start().len();
    let after_nick = rest[nick_at..].find(' ')? + nick_at + 1;
    Some("/login ".len() + after_nick)
}

/// The text of `/help`, one notice per line, from [`COMMANDS`]; made once.
pub fn help_lines() -> &'static [String] {
    static LINES: LazyLock<Vec<String>> = LazyLock::new(make_help_lines);
    &LINES
}

/// Usages up to this long share a column with their help; a longer one has its help on the
/// next line.
const HELP_COLUMN: usize = 20;

/// The longest help line, so that none wraps at 80 columns after a client's `*** `.
const HELP_WIDTH: usize = 76;

fn make_help_lines() -> Vec<String> {
    let usage = |spec: &CommandSpec| match spec.args {
        "" => format!("/{}", spec.name),
        args => format!("/{} {args}", spec.name),
    };
    let entries = COMMANDS
        .iter()
        .map(|spec| (usage(spec), spec.help))
        .chain([("//text".to_owned(), "send a line that starts with /")]);
    let mut lines = vec!["commands:".to_owned()];
    for (usage, help) in entries {
        if usage.len() <= HELP_COLUMN && 2 + HELP_COLUMN + 2 + help.chars().count() <= HELP_WIDTH {
            lines.push(format!("  {usage:HELP_COLUMN$}  {help}"));
        } else {
            lines.push(format!("  {usage}"));
            lines.push(format!("      {help}"));
        }
    }
    lines
}

/// What `/history` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryRequest {
    /// The last `n` lines.
    Last(usize),
    /// The lines after number `seq` (what a client asks for after reconnecting).
    Since(u64),
}

impl HistoryRequest {
    /// Lines `/history` gives without a number.
    pub const DEFAULT: usize = 50;
    /// Most lines one answer holds.
    pub const MAX: usize = 5_000;

    /// Reads `/history`'s argument: nothing, a count (capped at [`Self::MAX`]), or
    /// `since SEQ`.
    pub fn parse(args: &str) -> Result<Self, Refusal<'static>> {
        const USAGE: Refusal<'static> = Refusal::Usage("/history [N] or /history since NUMBER");
        let args = args.trim();
        if args.is_empty() {
            return Ok(Self::Last(Self::DEFAULT));
        }
        if let Some(seq) = args.strip_prefix("since ") {
            return seq.trim().parse().map(Self::Since).map_err(|_| USAGE);
        }
        match args.parse::<usize>() {
            Ok(n) if n > 0 => Ok(Self::Last(n.min(Self::MAX))),
            _ => Err(USAGE),
        }
    }
}

/// Why the server refused a line or is closing; written after [`super::ERROR_PREFIX`].
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal<'a> {
    /// A line longer than the limit; the rest of it is skipped.
    LineTooLong {
        /// The limit, in bytes.
        max: usize,
    },
    /// Some bytes were not UTF-8 and became U+FFFD (said once per connection).
    InvalidUtf8,
    /// The client sends faster than the flood limit; its lines wait, none is dropped.
    Flood {
        /// The sustained rate allowed.
        per_second: f64,
    },
    /// A command without what it needs; the usage is shown.
    Usage(&'static str),
    /// A nick that was refused.
    Nick(NickError),
    /// A `/word` the server does not know.
    UnknownCommand(&'a str),
    /// A begun line was not finished in time; the connection closes.
    LineTimeout {
        /// The limit, in seconds.
        secs: f64,
    },
    /// The client stopped reading and its queue overflowed; the connection closes.
    TooSlow,
    /// The server is at its connection limit; the connection closes.
    ServerFull,
    /// A plaintext client on a TLS port; the connection closes. `addr` is the port's address
    /// as the server sees it, for the commands that would connect.
    TlsOnly {
        /// The address the client reached, if the socket could say.
        addr: Option<std::net::SocketAddr>,
    },
    /// `/history` or `/search` on a server that keeps no history.
    NoHistory,
    /// The store failed to answer; the session goes on.
    StoreUnavailable,
    /// The cluster's engine did not confirm lines said (cluster mode, engine unreachable): they
    /// may or may not reach the room. The session goes on.
    NotConfirmed {
        /// How many lines.
        lines: usize,
    },
    /// The cluster's engine cannot be reached, and what was asked needs it; the session goes
    /// on, in the rooms it is in.
    ClusterUnavailable,
    /// A search longer than the limit.
    SearchTooLong {
        /// The limit, in characters.
        max: usize,
    },
    /// A room name that cannot be one.
    RoomName(RoomNameError),
    /// Nobody online has that nick.
    NoSuchNick(&'a str),
    /// A room this member is not in.
    NotInRoom(&'a str),
    /// A room that does not exist.
    NoSuchRoom(&'a str),
    /// A topic longer than a topic may be.
    TopicTooLong {
        /// The limit, in characters.
        max: usize,
    },
    /// The member is in no room at all (it parted the last one).
    NoRoom,
    /// One room more than a member may be in.
    TooManyRooms {
        /// The limit.
        max: usize,
    },
    /// One room more than the server holds.
    ServerRoomsFull {
        /// The limit.
        max: usize,
    },
    /// One member more than a room holds.
    RoomFull {
        /// The room.
        room: &'a str,
        /// The limit.
        max: usize,
    },
    /// A private message to oneself.
    ToSelf,
    /// An account command on a server without a store.
    NoAccounts,
    /// A password too short or too long.
    PasswordLength {
        /// Fewest characters.
        min: usize,
        /// Most bytes.
        max: usize,
    },
    /// `/register` of a `guest-N` nick.
    GuestNick,
    /// `/register` of a nick registered already.
    AlreadyRegistered(String),
    /// `/register` of an operator's nick, not yet registered, from another machine.
    OperatorFromAfar(String),
    /// A registered nick asked for by someone not logged in as it.
    NickRegistered(String),
    /// `/login` with a wrong nick or password.
    LoginFailed,
    /// `/nick` or `/login` on a node that cannot reach its cluster's engine, so cannot claim
    /// the nick across the cluster: the member keeps the nick it has.
    NickUnclaimable,
    /// A connection to a node that cannot reach its cluster's engine, so cannot give it a
    /// guest nick unique across the cluster; the connection closes.
    NoGuestNick,
    /// The member's nick is no longer its own across the cluster (its claim ran out while
    /// this node could not reach the engine, or another node holds it now).
    NickLost {
        /// The nick it had.
        lost: String,
        /// The guest nick it has now; `None` if none could be given (it keeps `lost` here).
        now: Option<String>,
    },
    /// Too many failed passwords from this address lately.
    Throttled {
        /// Seconds left to wait.
        secs: u64,
    },
    /// An operator's command from someone who is not one.
    NotOperator,
    /// Not a nick, an address or a network.
    BanTarget(&'a str),
    /// A ban (or `/kick`) that would hit the operator's own connection.
    OwnAddress,
    /// No ban on that target.
    NoSuchBan(&'a str),
    /// The address or nick is banned.
    Banned {
        /// What the ban names, as written.
        target: String,
        /// When it ends, as written (UTC), if it does.
        until: Option<String>,
        /// The operator's reason (may be empty).
        reason: String,
    },
    /// The member's lines are refused for a while.
    Muted {
        /// When it ends, as written (UTC).
        until: String,
    },
    /// An operator kicked this member; the connection closes.
    Kicked {
        /// The operator.
        by: &'a str,
        /// The operator's reason (may be empty).
        reason: &'a str,
    },
    /// Its account logged in on another connection; this one closes.
    Replaced,
    /// The server has a password and the first line was not `/pass`; the connection closes.
    PasswordNeeded,
    /// `/pass` with the wrong password; the connection closes.
    WrongPassword,
    /// `/pass` when none is needed (or once it was given).
    NoPasswordNeeded,
    /// The address is outside `--allow` or inside `--deny`; the connection closes.
    NotAllowed,
    /// The address has as many connections open as one may; the connection closes.
    TooManyFromAddress {
        /// The limit.
        max: usize,
    },
    /// The address opens connections faster than one may; the connection closes.
    TooFastFromAddress {
        /// The limit.
        per_minute: u32,
    },
}

impl fmt::Display for Refusal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LineTooLong { max } => {
                write!(f, "line too long (limit {max} bytes); skipped to its end")
            }
            Self::InvalidUtf8 => {
                f.write_str("your line had bytes that are not UTF-8; they became U+FFFD")
            }
            Self::Flood { per_second } => write!(
                f,
                "flood limit: {per_second} lines/s; your lines are delayed, none dropped"
            ),
            Self::Usage(usage) => write!(f, "usage: {usage}"),
            Self::Nick(error) => write!(f, "{error}"),
            Self::UnknownCommand(name) => {
                write!(f, "unknown command /{name}; /help lists the commands")
            }
            Self::LineTimeout { secs } => write!(f, "line not finished within {secs} s; closing"),
            Self::TooSlow => f.write_str("you were dropped: too slow (your send queue was full)"),
            Self::ServerFull => f.write_str("server full, try again later"),
            Self::TlsOnly { addr: Some(addr) } => write!(
                f,
                "this port speaks TLS; connect with tcpchat --tls {addr} or openssl s_client \
                 -connect {addr}"
            ),
            Self::TlsOnly { addr: None } => f.write_str(
                "this port speaks TLS; connect with tcpchat --tls HOST:PORT or openssl s_client \
                 -connect HOST:PORT",
            ),
            Self::NoHistory => f.write_str("this server keeps no history"),
            Self::StoreUnavailable => {
                f.write_str("history cannot be read right now; the operator has been told")
            }
            Self::NotConfirmed { lines: 1 } => f.write_str(
                "the cluster is unavailable: your line was not confirmed and may not reach the \
                 room; the operator has been told",
            ),
            Self::NotConfirmed { lines } => write!(
                f,
                "the cluster is unavailable: your {lines} lines were not confirmed and may not \
                 reach the room; the operator has been told"
            ),
            Self::ClusterUnavailable => {
                f.write_str("the cluster is unavailable right now; try again once it is back")
            }
            Self::SearchTooLong { max } => write!(f, "search too long (at most {max} characters)"),
            Self::RoomName(error) => write!(f, "{error}"),
            Self::NoSuchNick(nick) => write!(f, "nobody called {nick} is online"),
            Self::NotInRoom(room) => write!(f, "you are not in {room}; /join {room} first"),
            Self::NoSuchRoom(room) => {
                write!(f, "there is no room called {room}; /rooms lists them")
            }
            Self::TopicTooLong { max } => write!(f, "topic too long (at most {max} characters)"),
            Self::NoRoom => f.write_str("you are in no room; /join #ROOM (#lobby is everyone's)"),
            Self::TooManyRooms { max } => {
                write!(
                    f,
                    "you are in {max} rooms, the most one may be in; /part one first"
                )
            }
            Self::ServerRoomsFull { max } => {
                write!(
                    f,
                    "this server holds {max} rooms, its most; join one of them"
                )
            }
            Self::RoomFull { room, max } => write!(f, "{room} is full ({max} members)"),
            Self::ToSelf => f.write_str("that is you; a private message needs someone else"),
            Self::NoAccounts => {
                f.write_str("this server keeps no accounts (it was started with no store)")
            }
            Self::PasswordLength { min, max } => write!(
                f,
                "a password has {min} characters at least and {max} bytes at most"
            ),
            Self::GuestNick => {
                f.write_str("guest nicks belong to the server; /nick NAME first, then /register")
            }
            Self::AlreadyRegistered(nick) => {
                write!(
                    f,
                    "{nick} is registered already; /login {nick} PASSWORD if it is yours"
                )
            }
            Self::OperatorFromAfar(nick) => write!(
                f,
                "{nick} is an operator's nick: register it from the server's own machine \
                 (127.0.0.1 or ::1)"
            ),
            Self::NickRegistered(nick) => {
                write!(
                    f,
                    "{nick} is registered; /login {nick} PASSWORD if it is yours"
                )
            }
            Self::LoginFailed => f.write_str("wrong nick or password"),
            Self::NickUnclaimable => f.write_str(
                "the cluster is unavailable (this server cannot reach it): your nick is \
                 unchanged; try again later",
            ),
            Self::NoGuestNick => f.write_str(
                "the cluster is unavailable (this server cannot reach it), so no nick can be \
                 given; closing, try again later",
            ),
            Self::NickLost { lost, now } => {
                write!(
                    f,
                    "your nick {lost} is no longer yours: its claim in the cluster ran out or \
                     another server holds it"
                )?;
                match now {
                    Some(now) => write!(f, "; you are {now} now"),
                    None => f.write_str("; no other can be given now, /nick NAME later"),
                }
            }
            Self::Throttled { secs } => write!(
                f,
                "too many wrong passwords from your address; try again in {secs} s"
            ),
            Self::NotOperator => f.write_str("only operators may do that"),
            Self::BanTarget(text) => {
                write!(f, "{text} is not a nick, an address or a network (CIDR)")
            }
            Self::OwnAddress => {
                f.write_str("that would hit your own connection; you would lock yourself out")
            }
            Self::NoSuchBan(target) => write!(f, "no ban on {target}; /bans lists them"),
            Self::Banned {
                target,
                until,
                reason,
            } => {
                write!(f, "{target} is banned from this server")?;
                match until {
                    Some(until) => write!(f, " until {until}")?,
                    None => f.write_str(" until an operator lifts it")?,
                }
                if !reason.is_empty() {
                    write!(f, ": {reason}")?;
                }
                Ok(())
            }
            Self::Muted { until } => {
                write!(f, "you are muted until {until}: your lines are not sent")
            }
            Self::Kicked { by, reason: "" } => {
                write!(f, "you were kicked by {by}")
            }
            Self::Kicked { by, reason } => write!(f, "you were kicked by {by}: {reason}"),
            Self::Replaced => {
                f.write_str("your account logged in on another connection; closing this one")
            }
            Self::PasswordNeeded => {
                f.write_str("this server needs a password: send /pass PASSWORD first; closing")
            }
            Self::WrongPassword => f.write_str("wrong password; closing"),
            Self::NoPasswordNeeded => f.write_str("no password is needed now"),
            Self::NotAllowed => {
                f.write_str("this server does not take connections from your address")
            }
            Self::TooManyFromAddress { max } => write!(
                f,
                "your address has {max} connections open, the most one may; close one first"
            ),
            Self::TooFastFromAddress { per_minute } => write!(
                f,
                "your address opens connections too fast (at most {per_minute} a minute); wait"
            ),
        }
    }
}

// `/nick`'s help above spells the limit out; this stops the two from drifting apart.
const _: () = assert!(MAX_NICK_CHARS == 24);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_and_plain_text_is_said() {
        assert_eq!(Command::parse("hello"), Command::Say("hello"));
        assert_eq!(Command::parse("exit"), Command::Exit);
        assert_eq!(Command::parse("exit now"), Command::Say("exit now"));
        assert_eq!(Command::parse("/me waves  "), Command::Me("waves"));
        assert_eq!(Command::parse("/nick 小明"), Command::Nick("小明"));
        assert_eq!(Command::parse("/quit"), Command::Quit(""));
        assert_eq!(
            Command::parse("/quit gone home"),
            Command::Quit("gone home")
        );
        assert_eq!(Command::parse("/who"), Command::Who(""));
        assert_eq!(Command::parse("/names #rust"), Command::Who("#rust"));
        assert_eq!(
            Command::parse("/msg bob  hi there "),
            Command::Msg("bob  hi there")
        );
        assert_eq!(Command::parse("//etc/hosts"), Command::Say("/etc/hosts"));
        assert_eq!(
            Command::parse("/frobnicate x"),
            Command::Unknown("frobnicate")
        );
    }

    #[test]
    fn every_command_in_the_table_parses_and_writes_back() {
        for spec in COMMANDS {
            let line = format!("/{} x", spec.name);
            let command = Command::parse(&line);
            assert!(!matches!(command, Command::Unknown(_)), "{}", spec.name);
            assert_eq!(Command::parse(&command.to_string()), command);
        }
        for command in [Command::Say("/x"), Command::Exit, Command::Quit("")] {
            assert_eq!(Command::parse(&command.to_string()), command);
        }
    }

    #[test]
    fn the_password_in_a_line_is_found_while_it_is_typed() {
        assert_eq!(secret_start("/register hunter22"), Some(10));
        assert_eq!(secret_start("/pass "), Some(6));
        assert_eq!(secret_start("/login alice"), None, "still the nick");
        assert_eq!(secret_start("/login alice "), Some(13));
        assert_eq!(secret_start("/login  alice pw pw"), Some(14));
        assert_eq!(secret_start("/logi"), None);
        assert_eq!(secret_start("/registered"), None);
        assert_eq!(secret_start("/nick alice"), None);
        for line in ["/register x", "/login a b", "/pass x"] {
            assert!(Command::parse(line).is_secret(), "{line}");
        }
    }

    #[test]
    fn history_takes_a_count_or_a_number_to_start_after() {
        assert_eq!(HistoryRequest::parse(""), Ok(HistoryRequest::Last(50)));
        assert_eq!(HistoryRequest::parse(" 7 "), Ok(HistoryRequest::Last(7)));
        assert_eq!(
            HistoryRequest::parse("999999999999"),
            Ok(HistoryRequest::Last(5_000))
        );
        assert_eq!(
            HistoryRequest::parse("since 170"),
            Ok(HistoryRequest::Since(170))
        );
        for bad in ["0", "-3", "lots", "since", "since x", "1e3"] {
            assert!(HistoryRequest::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn help_lists_every_command_and_fits_80_columns() {
        let help = help_lines().join("\n");
        for spec in COMMANDS {
            assert!(help.contains(&format!("/{}", spec.name)), "{help}");
            assert!(help.contains(spec.help), "{help}");
        }
        for line in help_lines() {
            // As a client shows it: after `*** `.
            assert!(
                line.chars().count() + 4 <= 80,
                "{line:?} wraps at 80 columns"
            );
        }
    }
}
