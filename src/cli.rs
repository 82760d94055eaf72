//! The command line: every flag, its default, and the checks that turn a bad argument into
//! clap's whole error (what is wrong, its tip, the usage) with exit code 2 before anything
//! starts. Server flags are refused beside a `HOST:PORT` to join (they would change nothing);
//! without one, they apply to the room local mode hosts.

use clap::Parser;

use crate::cluster::NodeName;
use crate::codec::DEFAULT_MAX_LINE;
use crate::names::Nick;
use crate::tls::server::{CertSource, DEFAULT_HANDSHAKE_TIMEOUT};
use std::time::Duration;

use crate::server::listen::{DEFAULT_BACKLOG, ListenOptions};
use crate::server::{
    DEFAULT_ANNOUNCE_UP_TO, DEFAULT_KEEPALIVE, DEFAULT_LINE_TIMEOUT, DEFAULT_MAX_CLIENTS,
    DEFAULT_MAX_ROOMS, DEFAULT_NEW_PER_MINUTE, DEFAULT_OUTBOX_BYTES, DEFAULT_OUTBOX_LINES,
    DEFAULT_PER_ADDRESS, DEFAULT_REPLAY, DEFAULT_RETAIN_DAYS, DEFAULT_RETAIN_LINES,
    DEFAULT_ROOM_MEMBERS, DEFAULT_ROOMS_PER_CLIENT, FloodLimit, HistorySettings, Hosting, Limits,
    Mode,
};

/// The heading of the flags for `--serve` (and for the room local mode hosts).
const SERVER_FLAGS: &str = "Server (--serve, and the room local mode hosts)";

/// The heading of the flags for the TUI.
const CLIENT_FLAGS: &str = "Client";

/// The help heading of the flags the TCP lessons turn.
const LESSON_FLAGS: &str = "Server, for the TCP lessons";

/// What `--help` ends with.
const AFTER_HELP: &str = "\
Examples:
  tcpchat                                 chat on 127.0.0.1:8888, hosting the room if nobody does
  tcpchat --nick alice 192.0.2.7:8888     join a server elsewhere as alice
  tcpchat --serve --listen 0.0.0.0:8888   host a room for the network (a headless server)
  tcpchat --serve --mode echo --listen 127.0.0.1:9999 2>/dev/null &
  tcpchat --raw 127.0.0.1:9999            the article's lesson: its server, and a raw client

The log: RUST_LOG=tcpchat=debug (or warn, info...) overrides -v and -q.
Exit codes: 0 done; 1 failed (cannot listen, a damaged store...); 2 bad arguments or no terminal.";

/// The article's address: the default to listen on and to join.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8888";

/// A terminal chat over plain TCP, its server, and a live view of the TCP session.
///
/// With no arguments: join the room on 127.0.0.1:8888, hosting it in this process first if
/// nobody listens there, so two terminals running `tcpchat` chat with each other.
#[derive(Debug, Parser)]
#[command(name = "tcpchat", version, about, long_about, after_help = AFTER_HELP)]
pub struct Cli {
    /// Server to join (HOST:PORT, [IPv6]:PORT or PORT on 127.0.0.1). Never hosts.
    #[arg(value_name = "HOST:PORT", value_parser = room_addr, conflicts_with = "serve")]
    pub target: Option<String>,

    /// Local mode's address: join the room there, hosting it first if nobody listens.
    #[arg(long, value_name = "ADDR", value_parser = room_addr, default_value = DEFAULT_ADDR, conflicts_with_all = ["serve", "target"])]
    pub local: String,

    /// Read settings from FILE instead of $XDG_CONFIG_HOME/tcpchat/config.toml (flags win).
    #[arg(long, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,

    /// Show every setting in force and where it came from (flag, config file, default).
    #[arg(long)]
    pub print_config: bool,

    /// Run a headless server; its lifecycle log goes to stderr.
    #[arg(long)]
    pub serve: bool,

    /// Address to listen on with --serve (HOST:PORT, [IPv6]:PORT or PORT; port 0 picks a free one).
    #[arg(long, value_name = "ADDR", value_parser = host_port, default_value = DEFAULT_ADDR, requires = "serve")]
    pub listen: String,

    /// What the server speaks: a chat room, or one of the article's two servers.
    #[arg(long, value_enum, default_value_t, requires = "serve")]
    pub mode: Mode,

    /// Ask for this nick once connected (1-24 characters, no spaces).
    #[arg(long, value_name = "NAME", value_parser = nick, conflicts_with = "serve", help_heading = CLIENT_FLAGS)]
    pub nick: Option<String>,

    /// Send exactly what was typed, with no newline (for the article's servers, which
    /// compare each read with b'exit').
    #[arg(long, conflicts_with = "serve", help_heading = CLIENT_FLAGS)]
    pub raw: bool,

    /// Write what each room shows to a plain text file per room and day, under
    /// DATA_DIR/transcripts.
    #[arg(long, conflicts_with = "serve", help_heading = CLIENT_FLAGS)]
    pub log: bool,

    /// On quitting, write the TCP session as the inspector saw it to FILE, as text to hand in
    /// or diff against another run: the timeline, the handshake and close with what each
    /// arrow rests on, the kernel's last figures, the reads.
    #[arg(long, value_name = "FILE", conflicts_with = "serve", help_heading = CLIENT_FLAGS)]
    pub export: Option<std::path::PathBuf>,

    /// Capture the session's segments as they cross loopback and, on quitting, write them to
    /// FILE as a capture file Wireshark and tcpdump open (Linux; needs root or CAP_NET_RAW).
    #[arg(long, value_name = "FILE", conflicts_with = "serve", help_heading = CLIENT_FLAGS)]
    pub pcap: Option<std::path::PathBuf>,

    /// Never ring the terminal bell (it rings once when a line names you or someone
    /// writes to you privately).
    #[arg(long, conflicts_with = "serve", help_heading = CLIENT_FLAGS)]
    pub no_bell: bool,

    /// Colours: 16 (the terminal's own, which follow its theme), dark or light (256-colour
    /// picks for that background). NO_COLOR turns colour off whatever this says.
    #[arg(long, value_enum, default_value_t, help_heading = CLIENT_FLAGS, conflicts_with = "serve")]
    pub theme: crate::ui::Theme,

    /// The TUI's own words (status bar, help, notes): en, zh (中文), or auto from LC_ALL,
    /// LC_MESSAGES, LANG. What the server sends is shown as it is.
    #[arg(long, value_enum, default_value_t, help_heading = CLIENT_FLAGS, conflicts_with = "serve")]
    pub lang: crate::i18n::LanguageChoice,

    /// Lines of scrollback kept.
    #[arg(long, value_name = "LINES", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..), conflicts_with = "serve", help_heading = CLIENT_FLAGS)]
    pub scrollback: u32,

    /// Longest line in bytes; a longer one is refused with a `! ` line and skipped.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_LINE, value_parser = at_least_one, help_heading = SERVER_FLAGS, conflicts_with = "target")]
    pub max_line: usize,

    /// Most concurrent connections; one more is told `! server full` and closed.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CLIENTS, value_parser = at_least_one, help_heading = SERVER_FLAGS, conflicts_with = "target")]
    pub max_clients: usize,

    /// Lines queued per client before a client that does not read is dropped as too slow.
    #[arg(long, value_name = "LINES", default_value_t = DEFAULT_OUTBOX_LINES, value_parser = at_least_one, help_heading = SERVER_FLAGS, conflicts_with = "target")]
    pub outbox: usize,

    /// Bytes queued per client before a client that does not read is dropped as too
    /// slow (its own replies count: it is not read while its queue is half full).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_OUTBOX_BYTES, value_parser = at_least_one, help_heading = SERVER_FLAGS, conflicts_with = "target")]
    pub outbox_bytes: usize,

    /// Lines per second a client may send after its burst (0 = unlimited); excess lines
    /// are delayed, never dropped.
    #[arg(long, value_name = "PER_SECOND", default_value_t = FloodLimit::default().per_second, help_heading = SERVER_FLAGS, conflicts_with = "target")]
    pub flood_rate: f64,

    /// Lines a client may send back to back before the flood rate applies.
    #[arg(long, value_name = "LINES", default_value_t = FloodLimit::default().burst, help_heading = SERVER_FLAGS, conflicts_with = "target")]
    pub flood_burst: u32,

    /// Seconds a client has to finish a line it has begun (slowloris defence).
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_LINE_TIMEOUT.as_secs_f64(), value_parser = positive_secs, help_heading = SERVER_FLAGS, conflicts_with = "target")]
    pub line_timeout: f64,

    /// TCP keepalive idle seconds, so clients that vanish without FIN are noticed.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_KEEPALIVE.as_secs_f64(), value_parser = positive_secs, help_heading = SERVER_FLAGS, conflicts_with = "target")]
    pub keepalive: f64,

    /// Largest room in which every join and leave is announced to everyone.
    #[arg(long, value_name = "MEMBERS", default_value_t = DEFAULT_ANNOUNCE_UP_TO, help_heading = SERVER_FLAGS, conflicts_with = "target")]
    pub announce_up_to: usize,

    /// Most rooms one client may be in at once, #lobby included.
    #[arg(long, value_name = "ROOMS", default_value_t = DEFAULT_ROOMS_PER_CLIENT, value_parser = at_least_one, help_heading = SERVER_FLAGS, conflicts_with = "target")]
    pub rooms_per_client: usize,

    /// Most rooms the server holds at once, #lobby included.
    #[arg(long, value_name = "ROOMS", default_value_t = DEFAULT_MAX_ROOMS, value_parser = at_least_one, help_heading = SERVER_FLAGS, conflicts_with = "target")]
    pub max_rooms: usize,

    /// Most members one room holds (#lobby is bounded by --max-clients).
    #[arg(long, value_name = "MEMBERS", default_value_t = DEFAULT_ROOM_MEMBERS, value_parser = at_least_one, help_heading = SERVER_FLAGS, conflicts_with = "target")]
    pub room_members: usize,

    /// Where the server keeps its store (history): default $XDG_DATA_HOME/tcpchat. Local mode's
    /// room uses it too; so do the TLS certificate (DATA_DIR/tls) and the client's pinned keys
    /// (DATA_DIR/known_hosts).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<std::path::PathBuf>,

    /// Lines of history replayed to each client as it joins (0: none).
    #[arg(long = "history", value_name = "LINES", default_value_t = DEFAULT_REPLAY, value_parser = replay_lines, help_heading = SERVER_FLAGS, conflicts_with = "target")]
    pub replay: usize,

    /// Days history is kept (0: keep nothing, open no store).
    #[arg(long, value_name = "DAYS", default_value_t = DEFAULT_RETAIN_DAYS, help_heading = SERVER_FLAGS, conflicts_with = "target")]
    pub retain: u32,

    /// Most lines of history kept per room; the oldest beyond go first.
    #[arg(long, value_name = "LINES", default_value_t = DEFAULT_RETAIN_LINES, help_heading = SERVER_FLAGS, conflicts_with = "target")]
    pub retain_lines: u64,

    /// An operator's account (repeatable): logged in as it, one may /kick, /ban,
    /// /unban, /bans, /mute. Needs the store (not --retain 0).
    #[arg(long = "op", value_name = "NICK", value_parser = nick, help_heading = SERVER_FLAGS, conflicts_with = "target")]
    pub operators: Vec<String>,

    /// A file whose first line is the server's password; clients send /pass PASSWORD
    /// first. (A file, not a flag: `ps` shows flags to everyone.)
    #[arg(long, value_name = "FILE", help_heading = SERVER_FLAGS, conflicts_with = "target")]
    pub password_file: Option<std::path::PathBuf>,

    /// Most connections open at once from one address (0: no cap; 127.0.0.1 and ::1
    /// exempt).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_PER_ADDRESS, help_heading = SERVER_FLAGS, conflicts_with = "target")]
    pub max_per_address: usize,

    /// Most new connections one address may open per minute (0: no cap; 127.0.0.1 and
    /// ::1 exempt).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_NEW_PER_MINUTE, help_heading = SERVER_FLAGS, conflicts_with = "target")]
    pub new_per_minute: u32,

    /// Only addresses in this network may connect (repeatable), e.g. 10.0.0.0/8.
    #[arg(long, value_name = "CIDR", value_parser = network, help_heading = SERVER_FLAGS, conflicts_with = "target")]
    pub allow: Vec<ipnet::IpNet>,

    /// Addresses in this network may not connect (repeatable).
    #[arg(long, value_name = "CIDR", value_parser = network, help_heading = SERVER_FLAGS, conflicts_with = "target")]
    pub deny: Vec<ipnet::IpNet>,

    /// Speak TLS. Server: with a self-signed certificate made on first run and kept in
    /// DATA_DIR/tls, unless --tls-cert and --tls-key name one; SIGHUP then reloads the
    /// certificate instead of stopping. Client: connect with TLS; a certificate that chains to no
    /// trusted root is pinned on first use (DATA_DIR/known_hosts).
    #[arg(long)]
    pub tls: bool,

    /// The certificate chain to serve (PEM, leaf first), with --tls-key; implies --tls.
    #[arg(long, value_name = "FILE", requires_all = ["serve", "tls_key"], help_heading = SERVER_FLAGS)]
    pub tls_cert: Option<std::path::PathBuf>,

    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires_all = ["serve", "tls_cert"], help_heading = SERVER_FLAGS)]
    pub tls_key: Option<std::path::PathBuf>,

    /// Seconds a TLS client has from connecting to a finished handshake.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_HANDSHAKE_TIMEOUT.as_secs_f64(), value_parser = positive_secs, help_heading = SERVER_FLAGS, conflicts_with = "target")]
    pub tls_handshake_timeout: f64,

    /// Trust any certificate. The session is still encrypted, but anyone on the path
    /// could be the other end: no chain, name or pinned key is checked.
    #[arg(long, requires = "tls", conflicts_with = "serve", help_heading = CLIENT_FLAGS)]
    pub tls_insecure: bool,

    /// Also trust the CA certificates in FILE (PEM), e.g. a private CA.
    #[arg(long, value_name = "FILE", requires = "tls", conflicts_with = "serve", help_heading = CLIENT_FLAGS)]
    pub tls_ca: Option<std::path::PathBuf>,

    /// Forget the TLS key pinned for HOST:PORT (after its server's key changed), then exit;
    /// the next --tls connection pins the key it is shown.
    #[arg(long, value_name = "HOST:PORT", value_parser = host_port, conflicts_with_all = ["serve", "target", "tls"], help_heading = CLIENT_FLAGS)]
    pub tls_forget: Option<String>,

    /// listen()'s backlog: finished handshakes the kernel queues for accept() (capped at
    /// net.core.somaxconn); past it a client's SYN is dropped and retried, not refused.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BACKLOG, value_parser = clap::value_parser!(u32).range(1..), help_heading = LESSON_FLAGS, conflicts_with = "target")]
    pub backlog: u32,

    /// Do not set SO_REUSEADDR: a restart then cannot bind while a connection on the port
    /// waits out TIME-WAIT (EADDRINUSE).
    #[arg(long, help_heading = LESSON_FLAGS, conflicts_with = "target")]
    pub no_reuseaddr: bool,

    /// Listen but accept() nothing until SIGUSR1 (kill -USR1 PID): clients finish the
    /// handshake into the accept queue and wait, ungreeted; past the backlog their SYNs are
    /// dropped. (Unix.)
    #[arg(long, requires = "serve", help_heading = LESSON_FLAGS)]
    pub pause_accept: bool,

    /// More detail in the log: -v shows each read (recv N bytes). RUST_LOG, if set, wins.
    #[arg(short, long, action = clap::ArgAction::Count, help_heading = SERVER_FLAGS, conflicts_with_all = ["target", "quiet"])]
    pub verbose: u8,

    /// Log only warnings and errors (not every connection). RUST_LOG, if set, wins.
    #[arg(short, long, help_heading = SERVER_FLAGS, conflicts_with = "target")]
    pub quiet: bool,

    /// Append the lifecycle log to FILE instead of stderr (created private, 0600).
    #[arg(long, value_name = "FILE", help_heading = SERVER_FLAGS, requires = "serve")]
    pub log_file: Option<std::path::PathBuf>,

    /// Be one node of several, which meet through the Redis at URL (redis://HOST:PORT[/DB]);
    /// needs --node. Without it the server is a single node with its own store.
    #[arg(long, value_name = "URL", value_parser = cluster_url, requires_all = ["serve", "node"], help_heading = SERVER_FLAGS)]
    pub cluster: Option<String>,

    /// This node's name in the cluster: 1-32 ASCII letters, digits, '.', '_' or '-', one
    /// live node per name. Its copy of the history is kept in DATA_DIR/node-NAME.
    #[arg(long, value_name = "NAME", value_parser = NodeName::parse, requires = "cluster", help_heading = SERVER_FLAGS)]
    pub node: Option<NodeName>,
}

impl Cli {
    /// What the flags say about history.
    pub fn history(&self) -> HistorySettings {
        // A cluster node keeps its copy of the cluster's history apart from a single node's
        // (the same line numbers there mean other lines), one directory per node name so that
        // several nodes on one host share a --data-dir. The prefix keeps any name a plain
        // directory name (`..` is a valid node name).
        let data_dir = match self.cluster() {
            Some((_, node)) => self.data_dir().map(|dir| dir.join(format!("node-{node}"))),
            None => self.data_dir.clone(),
        };
        HistorySettings {
            data_dir,
            replay: self.replay,
            retain_days: self.retain,
            retain_lines: self.retain_lines,
        }
    }

    /// Who comes in and who runs the place, as the flags say; reads the password file.
    pub fn hosting(&self) -> Result<Hosting, String> {
        let password = match &self.password_file {
            None => None,
            Some(path) => Some(read_password(path)?),
        };
        let operators = self
            .operators
            .iter()
            .map(|nick| Nick::parse(nick).map_err(|error| format!("--op {nick}: {error}")))
            .collect::<Result<_, _>>()?;
        Ok(Hosting {
            operators,
            password,
            access: crate::server::AccessRules {
                allow: self.allow.clone(),
                deny: self.deny.clone(),
                per_address: self.max_per_address,
                new_per_minute: self.new_per_minute,
            },
        })
    }

    /// The cluster to join (`--cluster`, `--node`), if any.
    pub fn cluster(&self) -> Option<(String, NodeName)> {
        Some((self.cluster.clone()?, self.node.clone()?))
    }

    /// Whether the server speaks, or the client connects with, TLS.
    pub fn tls_enabled(&self) -> bool {
        self.tls || self.tls_cert.is_some()
    }

    /// The data directory: `--data-dir`, or the default one.
    pub fn data_dir(&self) -> Option<std::path::PathBuf> {
        self.data_dir.clone().or_else(crate::data_dir::default)
    }

    /// How the listening socket is made (`--backlog`, `--no-reuseaddr`).
    pub fn listen_options(&self) -> ListenOptions {
        ListenOptions {
            backlog: self.backlog,
            reuse_address: !self.no_reuseaddr,
            save_syn: false,
        }
    }

    /// Where the server's certificate comes from (`--tls-cert`, or the self-signed one kept
    /// in the data directory, made for `listen`'s host), if it speaks TLS.
    pub fn cert_source(&self, listen: &str) -> anyhow::Result<Option<CertSource>> {
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            return Ok(Some(CertSource::Files {
                cert: cert.clone(),
                key: key.clone(),
            }));
        }
        if !self.tls {
            return Ok(None);
        }
        let dir = self.data_dir().ok_or_else(|| {
            anyhow::anyhow!("no home directory for the TLS certificate; give --data-dir")
        })?;
        let host = listen.rsplit_once(':').map_or(listen, |(host, _)| host);
        Ok(Some(CertSource::self_signed(&dir, host)))
    }

    /// The server limits the flags describe.
    pub fn limits(&self) -> Limits {
        Limits {
            max_line: self.max_line,
            max_clients: self.max_clients,
            outbox_lines: self.outbox,
            outbox_bytes: self.outbox_bytes,
            flood: FloodLimit {
                burst: self.flood_burst,
                per_second: self.flood_rate.max(0.0),
            },
            line_timeout: Duration::from_secs_f64(self.line_timeout),
            keepalive: Duration::from_secs_f64(self.keepalive),
            announce_up_to: self.announce_up_to,
            rooms_per_client: self.rooms_per_client,
            max_rooms: self.max_rooms,
            room_members: self.room_members,
            tls_handshake_timeout: Duration::from_secs_f64(self.tls_handshake_timeout),
            ..Limits::default()
        }
    }
}

/// The first line of a password file, without its line ending; an empty one is refused.
fn read_password(path: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read the password file {}: {error}", path.display()))?;
    let first = text
        .lines()
        .next()
        .unwrap_or_default()
        .trim_end_matches('\r');
    if first.is_empty() {
        return Err(format!(
            "the password file {} is empty; its first line is the password",
            path.display()
        ));
    }
    Ok(first.to_owned())
}

/// An engine's address: `redis://` and what the Redis client accepts after it. TLS to the
/// engine (`rediss://`) is not built in yet.
fn cluster_url(text: &str) -> Result<String, String> {
    if text.starts_with("rediss://") {
        return Err(format!(
            "TLS to the engine is not built in yet; give a redis:// URL, got {text:?}"
        ));
    }
    if !text.starts_with("redis://") {
        return Err(format!("expected redis://HOST:PORT, got {text:?}"));
    }
    redis::Client::open(text)
        .map(|_| text.to_owned())
        .map_err(|error| format!("{text:?} is not an engine address: {error}"))
}

/// A network in CIDR form, or one address.
fn network(text: &str) -> Result<ipnet::IpNet, String> {
    text.parse::<ipnet::IpNet>()
        .map(|net| net.trunc())
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{text} is not a network (10.0.0.0/8) or an address"))
}

/// Accepts `HOST:PORT`, `[IPv6]:PORT` or a bare `PORT` (meaning 127.0.0.1); name resolution
/// happens later, when the address is used.
fn host_port(text: &str) -> Result<String, String> {
    if text.parse::<u16>().is_ok() {
        return Ok(format!("127.0.0.1:{text}"));
    }
    let bad = || format!("expected HOST:PORT, [IPv6]:PORT or PORT, got {text:?}");
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let host_ok = match host.strip_prefix('[') {
        Some(v6) => v6
            .strip_suffix(']')
            .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok()),
        None => !host.is_empty() && !host.contains(':'),
    };
    if !host_ok || port.parse::<u16>().is_err() {
        return Err(bad());
    }
    Ok(text.to_owned())
}

/// A room's address, to join or to host in local mode: [`host_port`], and a real port. Port 0
/// asks the kernel for any free port, a different one each time, so nobody could find the
/// room there (and nothing can be connected to on port 0); `--serve --listen` takes it.
fn room_addr(text: &str) -> Result<String, String> {
    let addr = host_port(text)?;
    match addr.rsplit_once(':') {
        Some((_, "0")) => Err(format!(
            "{text:?}: port 0 is any free port, a different one each time, so a room there \
             could not be found; give the room's port, e.g. 127.0.0.1:8888 (to host on a port \
             the kernel picks, use --serve --listen 127.0.0.1:0)"
        )),
        _ => Ok(addr),
    }
}

fn nick(text: &str) -> Result<String, String> {
    Nick::parse(text)
        .map(|n| n.to_string())
        .map_err(|e| e.to_string())
}

fn replay_lines(text: &str) -> Result<usize, String> {
    let most = crate::protocol::HistoryRequest::MAX;
    match text.parse::<usize>() {
        Ok(n) if n <= most => Ok(n),
        _ => Err(format!(
            "expected a number of lines from 0 to {most}, got {text:?}"
        )),
    }
}

fn positive_secs(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs <= 86_400.0 => Ok(secs),
        _ => Err(format!(
            "expected seconds between 0 and 86400, got {text:?}"
        )),
    }
}

fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "expected a whole number of at least 1, got {text:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_take_the_three_forms() {
        assert_eq!(host_port("9000").unwrap(), "127.0.0.1:9000");
        assert_eq!(host_port("localhost:0").unwrap(), "localhost:0");
        for zero in ["0", "127.0.0.1:0", "[::1]:0", "localhost:0"] {
            let refused = room_addr(zero).unwrap_err();
            assert!(refused.contains("port 0 is any free port"), "{refused}");
        }
        assert_eq!(room_addr("8888").unwrap(), "127.0.0.1:8888");
        assert_eq!(host_port("[::1]:8888").unwrap(), "[::1]:8888");
        for bad in [
            "",
            "host",
            "host:",
            ":80",
            "host:99999",
            "::1:80",
            "[zz]:80",
            "[::1]",
        ] {
            assert!(host_port(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cluster_flags_come_together_and_are_checked() {
        let parse = |args: &[&str]| Cli::try_parse_from([&["tcpchat"], args].concat());
        let cli = parse(&[
            "--serve",
            "--cluster",
            "redis://127.0.0.1:6379",
            "--node",
            "n1",
        ])
        .unwrap();
        assert_eq!(
            cli.cluster().map(|(url, node)| (url, node.to_string())),
            Some(("redis://127.0.0.1:6379".to_owned(), "n1".to_owned()))
        );
        assert!(
            parse(&["--serve"]).unwrap().cluster().is_none(),
            "off by default"
        );
        for bad in [
            &["--serve", "--cluster", "redis://127.0.0.1:6379"][..],
            &["--serve", "--node", "n1"],
            &["--cluster", "redis://127.0.0.1:6379", "--node", "n1"],
            &[
                "--serve",
                "--cluster",
                "nats://127.0.0.1:4222",
                "--node",
                "n1",
            ],
            &[
                "--serve",
                "--cluster",
                "rediss://127.0.0.1:6379",
                "--node",
                "n1",
            ],
            &[
                "--serve",
                "--cluster",
                "redis://127.0.0.1:6379",
                "--node",
                "n 1",
            ],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
