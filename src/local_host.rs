//! Local mode's room: hosted in this process when nobody hosts it, and taken over when its host
//! leaves.
//!
//! `tcpchat` with no address hosts the room on `--local` (127.0.0.1:8888) if it can bind there,
//! and otherwise joins whoever listens. Binding is the test for "nobody hosts": it never
//! disturbs a running server the way a probe connection would (its room would see a guest join
//! and leave), and the kernel lets one socket at a time listen on the address. So when the host
//! quits and every remaining local client tries to bind at once ([`crate::net`] tries before
//! each reconnect), exactly one wins and hosts, and the others, refused the address, rejoin it.
//! With the same data directory the new host opens the same store: history, accounts and bans
//! are still there.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::cli::Cli;
use crate::server::listen::ListenOptions;
use crate::server::observe::{ServerSample, ServerView};
use crate::server::{self, Config, HistorySettings, Hosting, Limits};
use crate::store::OpenError;
use crate::tls::server::ServerTls;

/// How long a host that quits gets to say goodbye to its other clients.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);

/// How long a client taking over waits for the store while the host that left still closes
/// it (its last sessions and the writer's flush): well inside the 3 s in which the clients
/// rejoining must be greeted (3 s, or they take it for a stranger), since they queue in the listen
/// backlog meanwhile.
pub const TAKEOVER_STORE_WAIT: Duration = Duration::from_millis(1500);

/// How often the server's side is sampled for the inspector while it is open.
const SERVER_SAMPLE_EVERY: Duration = Duration::from_millis(500);

/// How often the store is tried again while it waits.
const STORE_RETRY: Duration = Duration::from_millis(50);

/// The room this process may host at the local address, and the server hosting it if it does.
#[derive(Debug)]
pub struct LocalHost {
    addr: String,
    history: HistorySettings,
    limits: Limits,
    hosting: Hosting,
    tls: Option<Arc<ServerTls>>,
    listen: ListenOptions,
    view: Arc<ServerView>,
    stop: CancellationToken,
    server: Mutex<Option<JoinHandle<()>>>,
}

/// What trying to host found.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// This process hosts the room now; `history` says why it keeps none, if it does not.
    Hosting {
        /// Why the room keeps no history (the store could not be opened), if so.
        no_history: Option<String>,
    },
    /// Another process listens at the address: join it.
    Taken,
}

impl LocalHost {
    /// The room `cli` describes (`--local`, the server flags, the data directory); nothing is
    /// bound yet. Fails if a server flag cannot be honoured (an unreadable password file, a
    /// TLS certificate that cannot be made).
    pub fn new(cli: &Cli) -> anyhow::Result<Self> {
        let tls = match cli.cert_source(&cli.local)? {
            Some(source) => Some(Arc::new(ServerTls::new(source)?)),
            None => None,
        };
        Ok(Self {
            addr: cli.local.clone(),
            history: cli.history(),
            limits: cli.limits(),
            hosting: cli.hosting().map_err(anyhow::Error::msg)?,
            tls,
            // The inspector's server page shows each client's SYN.
            listen: ListenOptions {
                save_syn: true,
                ..cli.listen_options()
            },
            view: ServerView::new(),
            stop: CancellationToken::new(),
            server: Mutex::new(None),
        })
    }

    /// The address the room is hosted at.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// What the server hosted here tells about its sockets (empty while this process does
    /// not host; a takeover fills it again).
    pub fn view(&self) -> &Arc<ServerView> {
        &self.view
    }

    /// Samples the server's side for the inspector into a `watch` (the latest wins): every
    /// [`SERVER_SAMPLE_EVERY`] while `inspecting` says the inspector is open, never while it
    /// is closed (no wake-ups when idle); `None` while this process hosts no room. Ends when
    /// either end of the channels is gone.
    pub fn feed(
        self: Arc<Self>,
        mut inspecting: watch::Receiver<bool>,
    ) -> watch::Receiver<Option<ServerSample>> {
        let (samples, feed) = watch::channel(None);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(SERVER_SAMPLE_EVERY);
            ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                if !*inspecting.borrow_and_update() {
                    let opened = async { inspecting.wait_for(|open| *open).await.is_ok() };
                    let opened = tokio::select! {
                        opened = opened => opened,
                        () = samples.closed() => false,
                    };
                    if !opened {
                        return;
                    }
                    ticker.reset_immediately();
                }
                tokio::select! {
                    _ = ticker.tick() => {}
                    () = samples.closed() => return,
                    // Closed meanwhile: stop at once; the UI is gone: stop.
                    changed = inspecting.changed() => match changed {
                        Ok(()) => continue,
                        Err(_) => return,
                    },
                }
                let sample = match self.is_hosting() {
                    true => self.view.sample().await,
                    false => None,
                };
                samples.send_if_modified(|last| {
                    let changed = *last != sample;
                    *last = sample;
                    changed
                });
            }
        });
        feed
    }

    /// Whether this process hosts the room now.
    pub fn is_hosting(&self) -> bool {
        server::lock(&self.server)
            .as_ref()
            .is_some_and(|server| !server.is_finished())
    }

    /// Hosts the room if nobody listens at the address: binds, opens the store (waiting up to
    /// `store_wait` for a host that is leaving to let go of it; without it the room is hosted
    /// without history), and starts the server. Any error but "address in use" is returned:
    /// nobody listens and we cannot either.
    pub async fn claim(&self, store_wait: Duration) -> io::Result<Claim> {
        let listener = match server::listen::listen(&self.addr, self.listen).await {
            Ok(listener) => listener,
            Err(error) if error.kind() == io::ErrorKind::AddrInUse => return Ok(Claim::Taken),
            Err(error) => return Err(error),
        };
        let (history, no_history) = match self.open_history(store_wait).await {
            Ok(history) => (history, None),
            Err(error) => (None, Some(error.to_string())),
        };
        let config = Config {
            limits: self.limits.clone(),
            history,
            hosting: self.hosting.clone(),
            tls: self.tls.clone(),
            observe: Some(self.view.clone()),
            ..Config::default()
        };
        let server = tokio::spawn(server::run(listener, config, self.stop.child_token()));
        *server::lock(&self.server) = Some(server);
        Ok(Claim::Hosting { no_history })
    }

    /// The store, tried again while another server holds it, until `wait` has passed.
    async fn open_history(
        &self,
        wait: Duration,
    ) -> Result<Option<server::HistoryConfig>, OpenError> {
        let until = tokio::time::Instant::now() + wait;
        loop {
            match self.history.open() {
                Err(OpenError::InUse(_)) if tokio::time::Instant::now() < until => {
                    tokio::time::sleep(STORE_RETRY).await;
                }
                result => return result,
            }
        }
    }

    /// Stops the room if this process hosts it, giving its clients a moment for goodbyes (they
    /// then take it over among themselves).
    pub async fn stop(&self) {
        self.stop.cancel();
        let server = server::lock(&self.server).take();
        if let Some(server) = server {
            let _ = tokio::time::timeout(SHUTDOWN_WAIT, server).await;
        }
    }
}
