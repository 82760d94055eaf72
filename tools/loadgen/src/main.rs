//! `tcpchat-load`: the load generator behind `tools/loadgen/bench/run.sh`, for `tcpchat --serve`
//! and the peers it is compared with (the bare relay and bare echo in `tools/loadgen/examples/`,
//! the re-creation of tokio's chat example there or the real one, `ncat --chat`, and the Python
//! threaded servers under `tools/loadgen/peers/`).
//!
//! Three modes, each bounded by `--timeout`:
//!
//! - `idle` ([`idle`]): open N connections, read each greeting, hold them; report how many were
//!   held and, with `--server-pid`, the server's resident memory per connection.
//! - `fanout` ([`fanout`]): N clients join a room, K of them send M lines each (as fast as
//!   possible, or paced with `--rate`); every client parses every line it gets and counts
//!   deliveries, lost, duplicated and mangled lines, and the latency from the send timestamp
//!   inside each line. With `--server-pid`, the server's CPU time per delivery.
//! - `echo` ([`echo`]): C connections each send a short message and wait for the whole reply,
//!   repeatedly; round trips per second against the article's echo server
//!   (`tcpchat --serve --mode echo`).
//!
//! `--target` may be given more than once (or as a comma list) for idle and fanout against
//! tcpchat: the clients are spread round robin over the servers, the nodes of one cluster
//! (`bench/cluster.sh`), and the report adds each node's figures (idle) or splits the
//! deliveries into same-node and cross-node ones (fanout). With one target the run and its
//! report are what they always were.
//!
//! The data lines are described in [`data`]; how each server's lines look, in [`proto`]. Lines
//! are read with tcpchat's own codec until a client is in, then split with `memchr`: the codec
//! cost more per line than the servers did per delivery ([`lines`]).
//!
//! The result is one line of `key=value` pairs on stdout (what `bench/run.sh` parses); progress
//! and problems go to stderr. Exit code 0: complete (every expected line arrived intact);
//! 3: incomplete (timeout, lost, duplicated or mangled lines, or connections not held);
//! 1: failure; 2: bad arguments. It only ever connects to 127.0.0.1 or ::1.

mod cli;
mod conn;
mod data;
mod echo;
mod fanout;
mod idle;
mod lines;
mod proto;
mod report;
mod sys;
mod tls;

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;

use cli::{Cli, Mode};

/// Exit code of a run that ended without every expected result.
const INCOMPLETE: u8 = 3;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() { 2 } else { 0 });
        }
    };
    match run(cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(INCOMPLETE),
        Err(error) => {
            eprintln!("tcpchat-load: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the chosen mode; `Ok(false)` when it ended incomplete.
fn run(cli: Cli) -> Result<bool> {
    let common = match &cli.mode {
        Mode::Idle(args) => &args.common,
        Mode::Fanout(args) => &args.common,
        Mode::Echo(args) => &args.common,
    };
    if common.tls {
        tls::enable();
    }
    let nofile = sys::raise_nofile_limit().context("cannot raise the open-file limit")?;
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = common.threads {
        builder.worker_threads(threads.max(1));
    }
    let runtime = builder
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = runtime.block_on(async {
        match cli.mode {
            Mode::Idle(args) => idle::run(args, nofile).await,
            Mode::Fanout(args) => fanout::run(args).await,
            Mode::Echo(args) => echo::run(args).await,
        }
    })?;
    let complete = report.complete;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", report.line()).context("cannot write the report")?;
    // Tasks still blocked on sockets must not delay the exit.
    runtime.shutdown_timeout(Duration::from_millis(100));
    Ok(complete)
}
