//! Entry point: parse the command line, pick the mode (serve, or the client), run it, report
//! how it ended. Exit codes: 0 done, 1 failed, 2 bad arguments or no terminal.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tcpchat::cli::Cli;
use tcpchat::client;
use tcpchat::server::{self, Config};
use tcpchat::terminal::NoTerminal;
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
            eprintln!("tcpchat: {first} (see --help)");
            return ExitCode::from(2);
        }
    };
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
            eprintln!("tcpchat: {error}");
            ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("tcpchat: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(cli: Cli) -> anyhow::Result<()> {
    init_logging(cli.verbose);
    let listener = tokio::net::TcpListener::bind(&cli.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cli.listen))?;
    let local = listener
        .local_addr()
        .context("cannot read the bound address")?;
    info!("listening on {local} (mode {})", cli.mode);
    let shutdown = CancellationToken::new();
    tcpchat::shutdown::cancel_on_signals(shutdown.clone())
        .context("cannot install signal handlers")?;
    server::run(
        listener,
        Config {
            mode: cli.mode,
            limits: cli.limits(),
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
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}
