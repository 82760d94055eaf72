//! What TLS does to the client's state: the status bar's TLS part, and the notes that tell the
//! user how the server was trusted — the pinned key on first use, the refusal of a changed
//! key with both fingerprints and the way to accept it, a plaintext server, `--tls-insecure`.

use std::time::Duration;

use tokio::time::Instant;

use super::{App, Conn, Effect};
use crate::i18n::tr;
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

impl App {
    /// The client connects with TLS (`--tls`); `insecure` if it trusts any certificate (said
    /// in the scrollback, dated `at`).
    pub fn expect_tls(&mut self, insecure: bool, at: Instant) {
        self.tls = Some(TlsStatus {
            insecure,
            session: None,
        });
        if insecure {
            // What `--tls-insecure` gives up, said once in the scrollback.
            self.note(&tr!(self.language, "tls.insecure"), at);
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
        let language = self.language;
        let how = match trust {
            Trust::Verified => tr!(language, "tls.verified", target = target),
            Trust::Pinned { fingerprint } => {
                tr!(
                    language,
                    "tls.pinned",
                    fingerprint = fingerprint,
                    target = target
                )
            }
            Trust::PinnedNow {
                fingerprint,
                kept: Ok(path),
            } => {
                let file = path.display();
                tr!(
                    language,
                    "tls.pinned_now",
                    fingerprint = fingerprint,
                    target = target,
                    file = file
                )
            }
            Trust::PinnedNow {
                fingerprint,
                kept: Err(why),
            } => tr!(
                language,
                "tls.pinned_for_this_run",
                fingerprint = fingerprint,
                why = why
            ),
            Trust::Unchecked { fingerprint } => {
                tr!(language, "tls.unchecked", fingerprint = fingerprint)
            }
        };
        let established = tr!(
            language,
            "tls.established",
            negotiated = negotiated,
            took = took,
            how = how
        );
        self.note(&established, at);
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
        let language = self.language;
        let short = match &failure {
            TlsFailure::KeyChanged {
                target,
                pinned,
                presented,
                known_hosts,
            } => {
                let file = known_hosts.display();
                for line in [
                    tr!(language, "tls.refused", target = target),
                    tr!(language, "tls.refused_pinned", pinned = pinned, file = file),
                    tr!(language, "tls.refused_presented", presented = presented),
                    tr!(language, "tls.refused_why"),
                    tr!(language, "tls.refused_forget", target = target),
                    tr!(
                        language,
                        "tls.refused_or_delete",
                        target = target,
                        file = file
                    ),
                ] {
                    self.note(&line, at);
                }
                tr!(language, "tls.key_changed")
            }
            TlsFailure::NotTls { target, answered } => {
                let words = tr!(
                    language,
                    "tls.not_tls_note",
                    target = target,
                    answered = answered
                );
                self.note(&words, at);
                tr!(language, "tls.not_tls")
            }
            TlsFailure::Refused(why) => {
                self.note(&tr!(language, "tls.refused_note", why = why), at);
                tr!(language, "tls.refused_short")
            }
            TlsFailure::Failed(why) => {
                self.note(&tr!(language, "tls.failed_note", why = why), at);
                tr!(language, "tls.failed")
            }
        };
        self.conn = Conn::Closed(short);
    }
}
