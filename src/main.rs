//! Entry point: parse the command line, pick the mode (serve, or the client), run it, report
//! how it ended. Exit codes: 0 done, 1 failed, 2 bad arguments or no terminal.
//!
//! Nothing here may die because stderr did: a log read through `| head -1`, a collector that
//! restarts, a disk that fills up. Every write to stderr ignores its failure (`eprintln!` would
//! panic), and so does the log.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tcpchat::cli::Cli;
use tcpchat::client;
use tcpchat::server::{self, Config, Mode};
use tcpchat::shutdown::Hangup;
use tcpchat::terminal::NoTerminal;
use tcpchat::tls::server::ServerTls;
use tokio_util::sync::CancellationToken;
use tracing::info;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if !error.use_stderr() => {
            let _ = error.print(); // --help, --version
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            let rendered = error.to_string();
            let first = rendered
                .lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("error: ");
            report(format_args!("{first} (see --help)"));
            return ExitCode::from(2);
        }
    };
    if let Some(target) = &cli.tls_forget {
        return match client::forget_pin(&cli, target) {
            Ok(said) => {
                let _ = writeln!(std::io::stdout().lock(), "{said}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                report(format_args!("{error:#}"));
                ExitCode::FAILURE
            }
        };
    }
    let result = tokio::runtime::Runtime::new()
        .context("cannot start the async runtime")
        .and_then(|runtime| {
            if cli.serve {
                runtime.block_on(serve(cli))
            } else {
                runtime.block_on(client::run(&cli))
            }
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.is::<NoTerminal>() => {
            report(format_args!("{error}"));
            ExitCode::from(2)
        }
        Err(error) => {
            report(format_args!("{error:#}"));
            ExitCode::FAILURE
        }
    }
}

/// One line on stderr, `tcpchat: ` first; if stderr is gone there is nobody left to tell.
fn report(message: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "tcpchat: {message}");
}

async fn serve(cli: Cli) -> anyhow::Result<()> {
    init_logging(cli.verbose);
    // Only the chat room has history; the article's servers keep nothing.
    let history = match cli.mode {
        Mode::Chat => cli.history().open()?,
        Mode::Echo | Mode::Ack => None,
    };
    let tls = cli
        .cert_source(&cli.listen)?
        .map(ServerTls::open)
        .transpose()?;
    let listener = tokio::net::TcpListener::bind(&cli.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cli.listen))?;
    let local = listener
        .local_addr()
        .context("cannot read the bound address")?;
    let kept = match &history {
        Some(history) => format!("history in {}", history.store.path().display()),
        None => "no history".to_owned(),
    };
    let speaks = if tls.is_some() { "TLS" } else { "plain TCP" };
    info!("listening on {local} (mode {}, {kept}, {speaks})", cli.mode);
    let shutdown = CancellationToken::new();
    let hangup = tls
        .as_ref()
        .map_or(Hangup::Stop, ServerTls::reload_on_hangup);
    tcpchat::shutdown::on_signals(shutdown.clone(), hangup)
        .context("cannot install signal handlers")?;
    server::run(
        listener,
        Config {
            mode: cli.mode,
            limits: cli.limits(),
            history,
            tls,
        },
        shutdown,
    )
    .await;
    info!("stopped");
    Ok(())
}

fn init_logging(verbose: u8) {
    let default = if verbose > 0 { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("tcpchat={default}")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Otherwise a failed write is reported with `eprintln!`, which panics when stderr is a
        // closed pipe or a full disk: the server must outlive its log.
        .log_internal_errors(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}
