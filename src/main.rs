//! Entry point: parse the command line, pick the mode (serve, or the client), run it, report
//! how it ended. Exit codes: 0 done, 1 failed, 2 bad arguments or no terminal.
//!
//! Nothing here may die because stderr did: a log read through `| head -1`, a collector that
//! restarts, a disk that fills up. Every write to stderr ignores its failure (`eprintln!` would
//! panic), and so does the log.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context;
use tcpchat::cli::Cli;
use tcpchat::cluster::{self, Cluster};
use tcpchat::server::{self, Config, Mode};
use tcpchat::shutdown::Hangup;
use tcpchat::terminal::NoTerminal;
use tcpchat::tls::server::ServerTls;
use tcpchat::{client, config, server_log};
use tokio_util::sync::CancellationToken;
use tracing::info;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let resolved = match config::resolve(&args) {
        Ok(resolved) => resolved,
        Err(error) if !error.use_stderr() => {
            let _ = error.print(); // --help, --version
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            // clap's whole message: what is wrong, the tip it has (a flag it meant, the
            // possible values), the usage line. If stderr is gone, nobody is left to tell.
            let _ = error.print();
            return ExitCode::from(2);
        }
    };
    if resolved.cli.print_config {
        let _ = std::io::stdout()
            .lock()
            .write_all(resolved.describe().as_bytes());
        return ExitCode::SUCCESS;
    }
    let config::Resolved { cli, loaded, .. } = resolved;
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
                runtime.block_on(serve(cli, &loaded.problems))
            } else {
                runtime.block_on(client::run(&cli, &loaded))
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

async fn serve(cli: Cli, config_problems: &[String]) -> anyhow::Result<()> {
    server_log::init(&cli)?;
    for problem in config_problems {
        tracing::warn!("config: {problem}");
    }
    // Only the chat room has history; the article's servers keep nothing.
    let history = match cli.mode {
        Mode::Chat => cli.history().open()?,
        Mode::Echo | Mode::Ack => None,
    };
    let hosting = cli.hosting().map_err(anyhow::Error::msg)?;
    if cli.mode != Mode::Chat && (hosting.password.is_some() || !hosting.operators.is_empty()) {
        anyhow::bail!("--password-file and --op are for the chat room (--mode chat)");
    }
    if !hosting.operators.is_empty() && history.is_none() {
        anyhow::bail!("--op needs accounts, which are kept in the store: drop --retain 0");
    }
    // Before listening: a node that cannot join its cluster must not take clients alone.
    let cluster = match cli.cluster() {
        None => None,
        Some(_) if cli.mode != Mode::Chat => {
            anyhow::bail!("--cluster is for the chat room (--mode chat)")
        }
        Some((url, node)) => Some((
            Cluster::connect(&url, node, cluster::Settings::default()).await?,
            url,
        )),
    };
    let tls = cli
        .cert_source(&cli.listen)?
        .map(ServerTls::open)
        .transpose()?;
    let listener = server::listen::listen(&cli.listen, cli.listen_options())
        .await
        .with_context(|| format!("cannot listen on {}", cli.listen))?;
    let local = listener
        .local_addr()
        .context("cannot read the bound address")?;
    let kept = match &history {
        Some(history) => format!("history in {}", history.store.path().display()),
        None => "no history".to_owned(),
    };
    // Before the line that says the server is there: a SIGTERM sent on reading it must find
    // the handler installed, not the default action (which kills without a goodbye).
    let shutdown = CancellationToken::new();
    let hangup = tls
        .as_ref()
        .map_or(Hangup::Stop, ServerTls::reload_on_hangup);
    tcpchat::shutdown::on_signals(shutdown.clone(), hangup)
        .context("cannot install signal handlers")?;
    let accept_gate = match cli.pause_accept {
        false => None,
        #[cfg(unix)]
        true => Some(
            server::listen::AcceptGate::until_sigusr1()
                .context("cannot install the SIGUSR1 handler")?,
        ),
        #[cfg(not(unix))]
        true => anyhow::bail!("--pause-accept waits for SIGUSR1, which only Unix has"),
    };
    // Its own target, which -q keeps: the one line that says where the server is.
    let speaks = if tls.is_some() { "TLS" } else { "plain TCP" };
    info!(target: server_log::STARTUP, "listening on {local} (mode {}, {kept}, {speaks})", cli.mode);
    for nick in &hosting.operators {
        info!(
            "operator {nick}: logged in as this account, one may /kick, /ban and /mute \
             (a new one is registered from this machine)"
        );
    }
    if let Some((cluster, url)) = &cluster {
        info!(
            "node {} (epoch {}) is in the cluster at {url}: every room's lines are numbered and \
             ordered there, and nicks are unique across it",
            cluster.me().node,
            cluster.me().epoch
        );
    }
    if !local.ip().is_loopback() && tls.is_none() {
        tracing::warn!(
            "{local} is reachable from other machines and this server speaks plain text: \
             anyone on the path can read every line (--tls encrypts it)"
        );
    }
    server::run(
        listener,
        Config {
            mode: cli.mode,
            limits: cli.limits(),
            history,
            hosting,
            tls,
            accept_gate,
            // Headless: nobody shows a view, so the server keeps none.
            observe: None,
            cluster: cluster.as_ref().map(|(cluster, _)| cluster.clone()),
        },
        shutdown,
    )
    .await;
    // `run` beat for the node, and has stopped beating: leaving now is for good.
    if let Some((cluster, _)) = cluster {
        leave_cluster(&cluster).await;
    }
    info!("stopped");
    Ok(())
}

/// How long a stopping node tries to tell the engine it has gone before leaving it to the TTL.
const LEAVE_WITHIN: std::time::Duration = std::time::Duration::from_secs(3);

/// Leaves the cluster, so the node's name and its nicks are free at once.
async fn leave_cluster(cluster: &Cluster) {
    match tokio::time::timeout(LEAVE_WITHIN, cluster.leave()).await {
        Ok(Ok(())) => info!("left the cluster"),
        Ok(Err(error)) => tracing::warn!("cannot leave the cluster: {error:#}; its TTL will"),
        Err(_) => {
            tracing::warn!("the engine did not answer in time; the TTL will remove this node");
        }
    }
}
