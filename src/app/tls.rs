//! What TLS does to the client's state: the status bar's TLS part, and the notes that tell the
//! user how the server was trusted — the pinned key on first use, the refusal of a changed
//! key with both fingerprints and the way to accept it, a plaintext server, `--tls-insecure`.

use std::time::Duration;

use tokio::time::Instant;

use super::{App, Conn, Effect};
use crate::inspector;
use crate::tls::Negotiated;
use crate::tls::client::{Established, TlsFailure, Trust};

/// The TLS layer, as the status bar shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsStatus {
    /// `--tls-insecure`: the certificate is not checked (the bar says so in red).
    pub insecure: bool,
    /// The session's version and cipher, while one is up.
    pub session: Option<Negotiated>,
}

/// What `--tls-insecure` gives up, said once in the scrollback.
const INSECURE_NOTE: &str = "--tls-insecure: the server's certificate is NOT checked. The \
    session is encrypted, but anyone on the path could be the other end and read or change \
    everything; a pinned key is not compared either";

impl App {
    /// The client connects with TLS (`--tls`); `insecure` if it trusts any certificate (said
    /// in the scrollback, dated `at`).
    pub fn expect_tls(&mut self, insecure: bool, at: Instant) {
        self.tls = Some(TlsStatus {
            insecure,
            session: None,
        });
        if insecure {
            self.note(INSECURE_NOTE, at);
        }
    }

    /// Whether the chat starts only after a TLS handshake.
    pub(super) fn awaits_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The TLS handshake finished: the session is up, and the chat starts.
    pub(super) fn on_tls_established(
        &mut self,
        established: Established,
        handshake: Duration,
        at: Instant,
    ) -> Vec<Effect> {
        let Established { negotiated, trust } = established;
        if let Some(tls) = &mut self.tls {
            tls.session = Some(negotiated);
        }
        self.conn = Conn::Connected;
        let took = inspector::millis(handshake);
        let target = self.settings.target.clone();
        let how = match trust {
            Trust::Verified => format!("the certificate is valid for {target}"),
            Trust::Pinned { fingerprint } => {
                format!("the server's key {fingerprint} is the one pinned for {target}")
            }
            Trust::PinnedNow {
                fingerprint,
                kept: Ok(path),
            } => format!(
                "the certificate is self-signed: its key {fingerprint} is now pinned for {target} \
                 in {}. Check it against the key the server logs at start; a different key \
                 later is refused",
                path.display()
            ),
            Trust::PinnedNow {
                fingerprint,
                kept: Err(why),
            } => format!(
                "the certificate is self-signed: its key is {fingerprint}, trusted for this run \
                 only (not pinned: {why})"
            ),
            Trust::Unchecked { fingerprint } => {
                format!("NOT checked (--tls-insecure); the server's key is {fingerprint}")
            }
        };
        self.note(&format!("{negotiated} in {took}; {how}"), at);
        // The nick, the login and the rejoins wait for the greeting (`network.rs`).
        self.await_greeting(at);
        Vec::new()
    }

    /// The TLS handshake failed: said in the scrollback; a final refusal also says that the
    /// client will not try again.
    pub(super) fn on_tls_failed(&mut self, failure: TlsFailure, at: Instant) {
        if let Some(tls) = &mut self.tls {
            tls.session = None;
        }
        let short = match &failure {
            TlsFailure::KeyChanged {
                target,
                pinned,
                presented,
                known_hosts,
            } => {
                let file = known_hosts.display();
                for line in [
                    format!("REFUSED: the TLS key of {target} is not the one pinned for it."),
                    format!("   pinned:    {pinned}  (in {file})"),
                    format!("   presented: {presented}"),
                    "   Someone may be intercepting this connection, or the server got a new key."
                        .to_owned(),
                    format!(
                        "   If you know its key changed, accept the new one: tcpchat --tls-forget \
                         {target}"
                    ),
                    format!(
                        "   (or delete the line starting with {target} in {file}), then connect \
                         again. Not retrying."
                    ),
                ] {
                    self.note(&line, at);
                }
                "TLS key changed: refused".to_owned()
            }
            TlsFailure::NotTls { .. } => {
                self.note(&failure.to_string(), at);
                "not TLS".to_owned()
            }
            TlsFailure::Refused(_) => {
                self.note(&format!("{failure}; not retrying"), at);
                "TLS refused".to_owned()
            }
            TlsFailure::Failed(_) => {
                self.note(&failure.to_string(), at);
                "TLS handshake failed".to_owned()
            }
        };
        self.conn = Conn::Closed(short);
    }
}
