//! The signals that end the program: Ctrl-C (SIGINT), SIGTERM and SIGHUP all become one
//! cancelled [`CancellationToken`], so every part shuts down the same orderly way. A TLS server
//! is the exception: there SIGHUP reloads the certificate ([`Hangup::Reload`]), as daemons do,
//! and only SIGINT and SIGTERM stop it.

use tokio_util::sync::CancellationToken;

/// What SIGHUP does.
pub enum Hangup {
    /// Stop, like SIGINT and SIGTERM.
    Stop,
    /// Call this, every time, and go on.
    Reload(Box<dyn Fn() + Send>),
}

impl std::fmt::Debug for Hangup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Stop => "Stop",
            Self::Reload(_) => "Reload",
        })
    }
}

/// Cancels `token` on the first SIGINT, SIGTERM or SIGHUP, and returns at once.
pub fn cancel_on_signals(token: CancellationToken) -> std::io::Result<()> {
    on_signals(token, Hangup::Stop)
}

/// Cancels `token` on the first SIGINT or SIGTERM; SIGHUP does what `hangup` says. Returns at
/// once.
pub fn on_signals(token: CancellationToken, hangup: Hangup) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let mut hangups = signal(SignalKind::hangup())?;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = interrupt.recv() => break,
                    _ = terminate.recv() => break,
                    _ = hangups.recv() => match &hangup {
                        Hangup::Stop => break,
                        Hangup::Reload(reload) => reload(),
                    },
                }
            }
            token.cancel();
        });
    }
    #[cfg(not(unix))]
    {
        let _ = hangup;
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                token.cancel();
            }
        });
    }
    Ok(())
}
