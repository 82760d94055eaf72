//! The client's wiring: local mode (host the room here if nobody does), the terminal session,
//! the network task and the app loop, and an orderly end for all of them.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::app::keymap::Keymap;
use crate::app::{App, Bell, Clock, Role, Settings};
use crate::cli::Cli;
use crate::event_loop::{self, Io};
use crate::i18n::tr;
use crate::inspector::Heading;
use crate::local_host::{Claim, LocalHost};
use crate::protocol::Framing;
use crate::recording::Recording;
use crate::tls::client::{ClientOptions, ClientTls};
use crate::tls::known_hosts::KnownHosts;
use crate::transcript::Transcript;
use crate::{config, input_history, net, shutdown, terminal};

/// Runs the TUI client as `cli` asks, until the user quits or a signal arrives.
pub async fn run(cli: &Cli, config: &config::Loaded) -> anyhow::Result<()> {
    terminal::check()?;
    let (target, role, host) = match &cli.target {
        Some(target) => (target.clone(), Role::Joined, None),
        None => {
            let host = Arc::new(LocalHost::new(cli)?);
            // The room hosted here keeps history in the same store `--serve` would; if it
            // cannot (another server holds it), the room is hosted without.
            let claim = host.claim(Duration::ZERO).await.with_context(|| {
                format!(
                    "cannot host the room on {} and nobody listens there; give another \
                     address with --local ADDR",
                    cli.local
                )
            })?;
            match claim {
                Claim::Hosting { no_history } => {
                    (cli.local.clone(), Role::Hosting, Some((host, no_history)))
                }
                // Someone listens there: join it (it must greet like a tcpchat server, or the
                // client hangs up and says what answered).
                Claim::Taken => (cli.local.clone(), Role::Joined, Some((host, None))),
            }
        }
    };
    let signals = CancellationToken::new();
    shutdown::cancel_on_signals(signals.clone()).context("cannot install signal handlers")?;

    let framing = if cli.raw {
        Framing::Raw
    } else {
        Framing::Lines
    };
    let settings = Settings {
        target: target.clone(),
        framing,
        nick: cli.nick.clone().or_else(login_name),
        scrollback: cli.scrollback as usize,
        role,
    };
    crate::ui::use_theme(cli.theme);
    let local_mode = cli.target.is_none();
    // https://no-color.org: any non-empty value.
    crate::ui::use_colour(std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty()));
    let mut app = App::new(settings, Clock::now());
    let language = cli.lang.resolve(|name| std::env::var_os(name));
    app.language = language;
    if local_mode {
        app.hang_up_on_strangers();
    }
    if cli.no_bell {
        app.bell = Bell::Silent;
    }
    if let Some(timestamps) = config.preferences.timestamps {
        app.timestamps = timestamps;
    }
    if let Some(mouse) = config.preferences.mouse {
        app.mouse_captured = mouse;
    }
    let rebindings: Vec<_> = config
        .keys
        .iter()
        .map(|key| key.rebinding.clone())
        .collect();
    app.keymap = Keymap::new(&rebindings);
    let history_file = cli.data_dir().map(|dir| input_history::file(&dir));
    if let Some(file) = &history_file {
        app.input.set_history(input_history::load(file));
    }
    // Behind the alternate screen stderr is not seen: the file's problems are notes.
    for problem in &config.problems {
        app.note(
            &tr!(language, "note.config", problem = problem),
            Instant::now(),
        );
    }
    let mut transcript = match start_transcript(cli, &target) {
        Ok(None) => None,
        Ok(Some(transcript)) => {
            app.keep_transcript();
            let dir = transcript.dir().display().to_string();
            app.note(&tr!(language, "note.transcript", dir = dir), Instant::now());
            Some(transcript)
        }
        Err(error) => {
            app.note(
                &tr!(language, "note.no_transcript", error = error),
                Instant::now(),
            );
            None
        }
    };
    if role == Role::Hosting {
        let addr = &cli.local;
        let nc = match net::host_and_port(addr) {
            (host, Some(port)) => tr!(language, "note.hosting_nc", host = host, port = port),
            (_, None) => String::new(),
        };
        app.note(
            &tr!(language, "note.hosting", addr = addr, nc = nc),
            Instant::now(),
        );
    }
    if let Some((_, Some(error))) = &host {
        app.note(
            &tr!(language, "note.no_room_history", error = error),
            Instant::now(),
        );
    }
    let tls = match cli.tls_enabled() {
        true => Some(client_tls(cli, &target)?),
        false => None,
    };
    if let Some(tls) = &tls {
        app.expect_tls(tls.insecure(), Instant::now());
    }
    let options = net::Options {
        tls,
        // Local mode: when the host leaves, try to host the room before reconnecting.
        host: host.as_ref().map(|(host, _)| host.clone()),
    };
    let recording = cli.pcap.as_ref().and_then(|file| {
        Recording::start(file, &target)
            .inspect_err(|why| app.note(&tr!(language, "note.no_pcap", why = why), Instant::now()))
            .ok()
    });
    let mut net = net::spawn_with(target, framing, options);
    let result = {
        let (mut tui, _guard) = terminal::init()?;
        if !app.mouse_captured {
            terminal::capture_mouse(false); // `mouse = false` in the config file
        }
        let io = Io {
            terminal: &mut tui,
            events: terminal::events(),
            net: &mut net,
            shutdown: &signals,
            capture_mouse: &mut terminal::capture_mouse,
            transcript: transcript.as_mut(),
        };
        event_loop::run(&mut app, io).await
    };
    drop(net);
    if let Some(file) = &cli.export {
        let exported = chrono::Local::now()
            .format("%Y-%m-%d %H:%M:%S %z")
            .to_string();
        let heading = Heading {
            exported: &exported,
            target: &app.settings.target,
        };
        // The terminal is the user's again: these lines are seen.
        match std::fs::write(file, app.inspector.export(heading)) {
            Ok(()) => eprintln_lossy(&format!("tcpchat: the session is in {}", file.display())),
            Err(error) => eprintln_lossy(&format!(
                "tcpchat: the session was not written to {}: {error}",
                file.display()
            )),
        }
    }
    if let Some(recording) = recording {
        // The terminal is the user's again: these lines are seen.
        match recording.finish(&app.inspector.connections) {
            Ok((count, file)) => eprintln_lossy(&format!(
                "tcpchat: {count} packets of the session are in {}",
                file.display()
            )),
            Err(error) => {
                eprintln_lossy(&format!("tcpchat: the packets were not written: {error}"));
            }
        }
    }
    if let Some(transcript) = transcript {
        transcript.finish();
    }
    if let Some(file) = &history_file
        && let Err(error) = input_history::save(file, app.input.history())
    {
        // The terminal is the user's again: this line is seen.
        eprintln_lossy(&format!(
            "tcpchat: the lines typed were not kept in {}: {error}",
            file.display()
        ));
    }
    if let Some((host, _)) = host {
        host.stop().await;
    }
    result
}

/// One line on stderr; if stderr is gone, nobody is left to tell.
fn eprintln_lossy(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// The nick asked for when neither `--nick` nor the config file names one: the login name
/// (`$USER`), if it can be a nick; otherwise the server's `guest-N` stays.
fn login_name() -> Option<String> {
    let name = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .ok()?;
    crate::names::Nick::parse(&name)
        .ok()
        .map(|nick| nick.to_string())
}

/// The client's TLS for `target`, pinning in the data directory's `known_hosts`.
fn client_tls(cli: &Cli, target: &str) -> anyhow::Result<Arc<ClientTls>> {
    let options = ClientOptions {
        insecure: cli.tls_insecure,
        ca: cli.tls_ca.clone(),
        known_hosts: cli.data_dir().map(|dir| KnownHosts::in_dir(&dir)),
    };
    let tls = ClientTls::new(target, options).map_err(anyhow::Error::msg)?;
    Ok(Arc::new(tls))
}

/// `--tls-forget HOST:PORT`: removes the pin, and says what was forgotten.
pub fn forget_pin(cli: &Cli, target: &str) -> anyhow::Result<String> {
    let dir = cli
        .data_dir()
        .context("no home directory for known_hosts; give --data-dir")?;
    let known = KnownHosts::in_dir(&dir);
    let path = known.path().display().to_string();
    match known
        .forget(target)
        .with_context(|| format!("cannot rewrite {path}"))?
    {
        Some(key) => Ok(format!(
            "forgot the key pinned for {target} ({key}) in {path}; the next `tcpchat --tls \
             {target}` pins the key the server presents then"
        )),
        None => Ok(format!("no key was pinned for {target} in {path}")),
    }
}

/// The transcript `--log` asks for, under the data directory.
fn start_transcript(cli: &Cli, target: &str) -> anyhow::Result<Option<Transcript>> {
    if !cli.log {
        return Ok(None);
    }
    let dir = cli
        .data_dir()
        .context("no home directory for transcripts; give --data-dir")?;
    let transcript = Transcript::start(&dir, target)
        .with_context(|| format!("cannot write transcripts under {}", dir.display()))?;
    Ok(Some(transcript))
}
