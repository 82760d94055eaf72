//! The command line: every flag, its default, and the checks that turn a bad argument into a
//! one-line error with exit code 2 before anything starts.

use clap::Parser;

use crate::codec::DEFAULT_MAX_LINE;
use crate::names::Nick;
use crate::tls::server::{CertSource, DEFAULT_HANDSHAKE_TIMEOUT};
use std::time::Duration;

use crate::server::{
    DEFAULT_ANNOUNCE_UP_TO, DEFAULT_KEEPALIVE, DEFAULT_LINE_TIMEOUT, DEFAULT_MAX_CLIENTS,
    DEFAULT_MAX_ROOMS, DEFAULT_OUTBOX_BYTES, DEFAULT_OUTBOX_LINES, DEFAULT_REPLAY,
    DEFAULT_RETAIN_DAYS, DEFAULT_RETAIN_LINES, DEFAULT_ROOM_MEMBERS, DEFAULT_ROOMS_PER_CLIENT,
    FloodLimit, HistorySettings, Limits, Mode,
};

/// The article's address: the default to listen on and to join.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8888";

/// A terminal chat over plain TCP, its server, and a live view of the TCP session.
///
/// With no arguments: join the room on 127.0.0.1:8888, hosting it in this process first if
/// nobody listens there, so two terminals running `tcpchat` chat with each other.
#[derive(Debug, Parser)]
#[command(name = "tcpchat", version, about, long_about)]
pub struct Cli {
    /// Server to join (HOST:PORT, [IPv6]:PORT or PORT on 127.0.0.1). Never hosts.
    #[arg(value_name = "HOST:PORT", value_parser = host_port, conflicts_with = "serve")]
    pub target: Option<String>,

    /// Local mode's address: join the room there, hosting it first if nobody listens.
    #[arg(long, value_name = "ADDR", value_parser = host_port, default_value = DEFAULT_ADDR, conflicts_with_all = ["serve", "target"])]
    pub local: String,

    /// Run a headless server; its lifecycle log goes to stderr.
    #[arg(long)]
    pub serve: bool,

    /// Address to listen on with --serve (HOST:PORT, [IPv6]:PORT or PORT; port 0 picks a free one).
    #[arg(long, value_name = "ADDR", value_parser = host_port, default_value = DEFAULT_ADDR, requires = "serve")]
    pub listen: String,

    /// What the server speaks: a chat room, or one of the article's two servers.
    #[arg(long, value_enum, default_value_t, requires = "serve")]
    pub mode: Mode,

    /// Client: ask for this nick once connected (1-24 characters, no spaces).
    #[arg(long, value_name = "NAME", value_parser = nick, conflicts_with = "serve")]
    pub nick: Option<String>,

    /// Client: send exactly what was typed, with no newline (for the article's servers, which
    /// compare each read with b'exit').
    #[arg(long, conflicts_with = "serve")]
    pub raw: bool,

    /// Client: write what each room shows to a plain text file per room and day, under
    /// DATA_DIR/transcripts.
    #[arg(long, conflicts_with = "serve")]
    pub log: bool,

    /// Client: never ring the terminal bell (it rings once when a line names you or someone
    /// writes to you privately).
    #[arg(long, conflicts_with = "serve")]
    pub no_bell: bool,

    /// Client: lines of scrollback kept.
    #[arg(long, value_name = "LINES", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..), conflicts_with = "serve")]
    pub scrollback: u32,

    /// Server: longest line in bytes; a longer one is refused with a `! ` line and skipped.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_LINE, value_parser = at_least_one)]
    pub max_line: usize,

    /// Server: most concurrent connections; one more is told `! server full` and closed.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CLIENTS, value_parser = at_least_one)]
    pub max_clients: usize,

    /// Server: lines queued per client before a client that does not read is dropped as too slow.
    #[arg(long, value_name = "LINES", default_value_t = DEFAULT_OUTBOX_LINES, value_parser = at_least_one)]
    pub outbox: usize,

    /// Server: bytes queued per client before a client that does not read is dropped as too
    /// slow (its own replies count: it is not read while its queue is half full).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_OUTBOX_BYTES, value_parser = at_least_one)]
    pub outbox_bytes: usize,

    /// Server: lines per second a client may send after its burst (0 = unlimited); excess lines
    /// are delayed, never dropped.
    #[arg(long, value_name = "PER_SECOND", default_value_t = FloodLimit::default().per_second)]
    pub flood_rate: f64,

    /// Server: lines a client may send back to back before the flood rate applies.
    #[arg(long, value_name = "LINES", default_value_t = FloodLimit::default().burst)]
    pub flood_burst: u32,

    /// Server: seconds a client has to finish a line it has begun (slowloris defence).
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_LINE_TIMEOUT.as_secs_f64(), value_parser = positive_secs)]
    pub line_timeout: f64,

    /// Server: TCP keepalive idle seconds, so clients that vanish without FIN are noticed.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_KEEPALIVE.as_secs_f64(), value_parser = positive_secs)]
    pub keepalive: f64,

    /// Server: largest room in which every join and leave is announced to everyone.
    #[arg(long, value_name = "MEMBERS", default_value_t = DEFAULT_ANNOUNCE_UP_TO)]
    pub announce_up_to: usize,

    /// Server: most rooms one client may be in at once, #lobby included.
    #[arg(long, value_name = "ROOMS", default_value_t = DEFAULT_ROOMS_PER_CLIENT, value_parser = at_least_one)]
    pub rooms_per_client: usize,

    /// Server: most rooms the server holds at once, #lobby included.
    #[arg(long, value_name = "ROOMS", default_value_t = DEFAULT_MAX_ROOMS, value_parser = at_least_one)]
    pub max_rooms: usize,

    /// Server: most members one room holds (#lobby is bounded by --max-clients).
    #[arg(long, value_name = "MEMBERS", default_value_t = DEFAULT_ROOM_MEMBERS, value_parser = at_least_one)]
    pub room_members: usize,

    /// Where the server keeps its store (history): default $XDG_DATA_HOME/tcpchat. Local mode's
    /// room uses it too; so do the TLS certificate (DATA_DIR/tls) and the client's pinned keys
    /// (DATA_DIR/known_hosts).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<std::path::PathBuf>,

    /// Server: lines of history replayed to each client as it joins (0: none).
    #[arg(long = "history", value_name = "LINES", default_value_t = DEFAULT_REPLAY, value_parser = replay_lines)]
    pub replay: usize,

    /// Server: days history is kept (0: keep nothing, open no store).
    #[arg(long, value_name = "DAYS", default_value_t = DEFAULT_RETAIN_DAYS)]
    pub retain: u32,

    /// Server: most lines of history kept per room; the oldest beyond go first.
    #[arg(long, value_name = "LINES", default_value_t = DEFAULT_RETAIN_LINES)]
    pub retain_lines: u64,

    /// Speak TLS. Server: with a self-signed certificate made on first run and kept in
    /// DATA_DIR/tls, unless --tls-cert and --tls-key name one; SIGHUP then reloads the
    /// certificate instead of stopping. Client: connect with TLS; a certificate that chains to no
    /// trusted root is pinned on first use (DATA_DIR/known_hosts).
    #[arg(long)]
    pub tls: bool,

    /// Server: the certificate chain to serve (PEM, leaf first), with --tls-key; implies --tls.
    #[arg(long, value_name = "FILE", requires_all = ["serve", "tls_key"])]
    pub tls_cert: Option<std::path::PathBuf>,

    /// Server: the private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires_all = ["serve", "tls_cert"])]
    pub tls_key: Option<std::path::PathBuf>,

    /// Server: seconds a TLS client has from connecting to a finished handshake.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_HANDSHAKE_TIMEOUT.as_secs_f64(), value_parser = positive_secs)]
    pub tls_handshake_timeout: f64,

    /// Client: trust any certificate. The session is still encrypted, but anyone on the path
    /// could be the other end: no chain, name or pinned key is checked.
    #[arg(long, requires = "tls", conflicts_with = "serve")]
    pub tls_insecure: bool,

    /// Client: also trust the CA certificates in FILE (PEM), e.g. a private CA.
    #[arg(long, value_name = "FILE", requires = "tls", conflicts_with = "serve")]
    pub tls_ca: Option<std::path::PathBuf>,

    /// Forget the TLS key pinned for HOST:PORT (after its server's key changed), then exit;
    /// the next --tls connection pins the key it is shown.
    #[arg(long, value_name = "HOST:PORT", value_parser = host_port, conflicts_with_all = ["serve", "target", "tls"])]
    pub tls_forget: Option<String>,

    /// More detail in the log: -v shows each read (recv N bytes).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl Cli {
    /// What the flags say about history.
    pub fn history(&self) -> HistorySettings {
        HistorySettings {
            data_dir: self.data_dir.clone(),
            replay: self.replay,
            retain_days: self.retain,
            retain_lines: self.retain_lines,
        }
    }

    /// Whether the server speaks, or the client connects with, TLS.
    pub fn tls_enabled(&self) -> bool {
        self.tls || self.tls_cert.is_some()
    }

    /// The data directory: `--data-dir`, or the default one.
    pub fn data_dir(&self) -> Option<std::path::PathBuf> {
        self.data_dir.clone().or_else(crate::data_dir::default)
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
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
