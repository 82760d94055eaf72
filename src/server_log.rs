//! The `--serve` lifecycle log: where it goes (stderr or `--log-file`), how much (`-v`, `-q`,
//! `RUST_LOG`), and, for a cluster node, which node says it: every line starts with
//! `[node NAME]`, so the logs of several nodes read side by side (or merged by a collector)
//! still say where each thing happened.

use anyhow::Context;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, format};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::cli::Cli;

/// The log target of the line that says where the server listens, which `-q` keeps.
pub const STARTUP: &str = "tcpchat::startup";

/// Starts the lifecycle log as the command line says.
pub fn init(cli: &Cli) -> anyhow::Result<()> {
    let default = match (cli.verbose, cli.quiet) {
        (0, true) => format!("tcpchat=warn,{STARTUP}=info"),
        (0, false) => "tcpchat=info".to_owned(),
        _ => "tcpchat=debug".to_owned(),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let named = NodeNamed {
        node: cli.cluster().map(|(_, node)| node.to_string()),
        inner: format().with_target(false),
    };
    let log = tracing_subscriber::fmt::layer()
        // Otherwise a failed write is reported with `eprintln!`, which panics when stderr is a
        // closed pipe or a full disk: the server must outlive its log.
        .log_internal_errors(false)
        .event_format(named);
    let logging = tracing_subscriber::registry().with(filter);
    match &cli.log_file {
        None => logging
            .with(
                log.with_writer(std::io::stderr)
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
            )
            .init(),
        Some(path) => {
            let file = open_log_file(path)
                .with_context(|| format!("cannot open the log file {}", path.display()))?;
            logging
                .with(
                    log.with_writer(std::sync::Mutex::new(file))
                        .with_ansi(false),
                )
                .init();
        }
    }
    Ok(())
}

/// The usual line, after `[node NAME] ` when the server is a cluster node.
struct NodeNamed<F> {
    node: Option<String>,
    inner: F,
}

impl<S, N, F> FormatEvent<S, N> for NodeNamed<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        if let Some(node) = &self.node {
            write!(writer, "[node {node}] ")?;
        }
        self.inner.format_event(ctx, writer, event)
    }
}

/// `--log-file`: appended to, made private (0600) if new.
fn open_log_file(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}
