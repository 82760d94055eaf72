//! The command line: the three modes and their arguments, and the checks that keep every target
//! on loopback.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::proto::{EchoProto, Proto};

/// Load generator for tcpchat's server benchmarks; loopback targets only.
#[derive(Debug, Parser)]
#[command(name = "tcpchat-load", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub mode: Mode,
}

#[derive(Debug, Subcommand)]
pub enum Mode {
    /// Open N connections, read each greeting, hold them; report how many are held.
    Idle(IdleArgs),
    /// N clients in a room, K of them send M lines; count deliveries, losses, latency.
    Fanout(FanoutArgs),
    /// Request/response round trips per second against the article's echo server.
    Echo(EchoArgs),
}

#[derive(Debug, Args)]
pub struct Common {
    /// Server address: 127.0.0.1:PORT or [::1]:PORT, nothing else. Given more than once (or as
    /// a comma list), the clients are spread over the servers, client i on the (i mod n)-th:
    /// the nodes of one cluster (idle and fanout, tcpchat only).
    #[arg(long = "target", value_name = "ADDR", value_parser = loopback_target,
          value_delimiter = ',', required = true)]
    pub targets: Vec<SocketAddr>,
    /// Give up after this many seconds in all, report what was measured, and exit 3.
    #[arg(long, value_name = "SECS", default_value_t = 60.0, value_parser = positive)]
    pub timeout: f64,
    /// The server's process id, to read its memory and CPU time from /proc. With several
    /// `--target`s: one per target, in the same order (or none).
    #[arg(long = "server-pid", value_name = "PID", value_delimiter = ',')]
    pub server_pids: Vec<u32>,
    /// Connections being opened at once.
    #[arg(long, value_name = "N", default_value_t = 128)]
    pub connect_concurrency: usize,
    /// Runtime worker threads (default: one per CPU).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Speak TLS to the server (`tcpchat --serve --tls`); its certificate is not checked.
    /// Not for `echo`.
    #[arg(long)]
    pub tls: bool,
}

#[derive(Debug, Args)]
pub struct IdleArgs {
    /// Connections to open.
    #[arg(long, value_name = "N")]
    pub clients: usize,
    /// Seconds to hold them once all are open.
    #[arg(long, value_name = "SECS", default_value_t = 3.0)]
    pub hold: f64,
    /// The server's protocol (how its greeting looks).
    #[arg(long, value_enum, default_value_t = Proto::Chat)]
    pub proto: Proto,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct FanoutArgs {
    /// Clients in the room; all of them receive.
    #[arg(long, value_name = "N")]
    pub clients: usize,
    /// How many of the clients also send.
    #[arg(long, value_name = "K")]
    pub senders: usize,
    /// Lines each sender sends.
    #[arg(long, value_name = "M")]
    pub lines: u32,
    /// Bytes per line before its newline (at least 64).
    #[arg(long, value_name = "BYTES", default_value_t = 64, value_parser = clap::value_parser!(u16).range(64..=8000))]
    pub size: u16,
    /// Lines per second per sender (default: as fast as the server takes them).
    #[arg(long, value_name = "LINES_PER_SEC", value_parser = positive)]
    pub rate: Option<f64>,
    /// Once every sender is done, stop after this many seconds without a new delivery.
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    pub settle: f64,
    /// The server's protocol: its greeting, line prefix and events.
    #[arg(long, value_enum, default_value_t = Proto::Chat)]
    pub proto: Proto,
    /// tcpchat only: the clients talk in this room (joined, `#lobby` parted), not in `#lobby`.
    #[arg(long, value_name = "#ROOM")]
    pub room: Option<String>,
    /// tcpchat only: before measuring, fill this many other rooms with `--members` idle
    /// clients each (and report the server's memory per room membership).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub other_rooms: usize,
    /// Members of each of the `--other-rooms`.
    #[arg(long, value_name = "M", default_value_t = 100)]
    pub members: usize,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct EchoArgs {
    /// Connections, each with one request outstanding at a time.
    #[arg(long, value_name = "C")]
    pub conns: usize,
    /// Seconds to run.
    #[arg(long, value_name = "SECS", default_value_t = 3.0, value_parser = positive)]
    pub seconds: f64,
    /// The echo server spoken to (both speak the article's `server.py` protocol).
    #[arg(long, value_enum, default_value_t = EchoProto::Tcpchat)]
    pub proto: EchoProto,
    #[command(flatten)]
    pub common: Common,
}

impl Common {
    /// How many servers the clients are spread over.
    pub fn nodes(&self) -> usize {
        self.targets.len().max(1)
    }

    /// The server of client `index` (round robin), by its position among the targets.
    pub fn node_of(&self, index: usize) -> usize {
        index % self.nodes()
    }

    /// The address of client `index`'s server.
    pub fn target_of(&self, index: usize) -> SocketAddr {
        self.targets[self.node_of(index)]
    }

    /// Refuses what several targets cannot do: server ids that do not pair with the targets,
    /// and a protocol whose clients are told they are in the room by a probe (the probe's
    /// barrier goes through one server only).
    pub fn check_targets(&self, proto: Proto) -> Result<(), String> {
        if !self.server_pids.is_empty() && self.server_pids.len() != self.targets.len() {
            return Err(format!(
                "{} --server-pid for {} --target: give one per target, in the same order",
                self.server_pids.len(),
                self.targets.len()
            ));
        }
        if self.targets.len() > 1 && proto != Proto::Chat {
            return Err("several --target are for tcpchat's nodes (--proto chat)".to_owned());
        }
        Ok(())
    }
}

/// Accepts only 127.0.0.1:PORT and [::1]:PORT.
pub fn loopback_target(text: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = text
        .parse()
        .map_err(|_| format!("expected 127.0.0.1:PORT or [::1]:PORT, got {text:?}"))?;
    match addr.ip() {
        IpAddr::V4(ip) if ip == Ipv4Addr::LOCALHOST => Ok(addr),
        IpAddr::V6(ip) if ip == Ipv6Addr::LOCALHOST => Ok(addr),
        other => Err(format!(
            "refusing to target {other}: only 127.0.0.1 and ::1 are allowed"
        )),
    }
}

/// A finite number above zero (seconds, rates).
pub fn positive(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() && value > 0.0 => Ok(value),
        _ => Err(format!("expected a number above 0, got {text:?}")),
    }
}

/// Seconds given on the command line as a [`Duration`] (negative counts as zero).
pub fn secs(value: f64) -> Duration {
    Duration::from_secs_f64(value.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn common_of(args: &[&str]) -> Result<Common, clap::Error> {
        let cli = Cli::try_parse_from(
            [
                "tcpchat-load",
                "fanout",
                "--clients",
                "3",
                "--senders",
                "3",
                "--lines",
                "1",
            ]
            .iter()
            .chain(args),
        )?;
        match cli.mode {
            Mode::Fanout(args) => Ok(args.common),
            _ => unreachable!("parsed as fanout"),
        }
    }

    #[test]
    fn targets_repeat_or_come_as_a_list_and_clients_go_round_robin() {
        let one = common_of(&["--target", "127.0.0.1:7"]).unwrap();
        assert_eq!((one.nodes(), one.node_of(5)), (1, 0));
        assert!(one.check_targets(Proto::Relay).is_ok());
        let repeated = common_of(&["--target", "127.0.0.1:1", "--target", "127.0.0.1:2"]).unwrap();
        let listed = common_of(&["--target", "127.0.0.1:1,127.0.0.1:2"]).unwrap();
        assert_eq!(repeated.targets, listed.targets);
        assert_eq!(listed.nodes(), 2);
        assert_eq!(listed.target_of(3).port(), 2);
        assert_eq!(listed.target_of(4).port(), 1);
        assert!(listed.check_targets(Proto::Chat).is_ok());
        // The probe's barrier would go through one server only.
        assert!(listed.check_targets(Proto::Relay).is_err());
        let pids = common_of(&["--target", "127.0.0.1:1,127.0.0.1:2", "--server-pid", "9"]);
        assert!(pids.unwrap().check_targets(Proto::Chat).is_err());
        assert!(common_of(&["--target", "127.0.0.1:1,10.0.0.1:2"]).is_err());
        assert!(common_of(&[]).is_err());
    }

    #[test]
    fn only_loopback_targets_are_accepted() {
        assert!(loopback_target("127.0.0.1:8888").is_ok());
        assert!(loopback_target("[::1]:8888").is_ok());
        for bad in [
            "127.0.0.2:80",
            "10.0.0.1:80",
            "[::2]:80",
            "localhost:80",
            "0.0.0.0:1",
        ] {
            assert!(loopback_target(bad).is_err(), "{bad}");
        }
    }
}
