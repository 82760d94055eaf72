//! The framing lab's transitions: a parsed `/lab`, `/shutdown` or `/reset` becomes new knobs
//! for the network task (the latest wins) or an action on the socket, and opens the inspector on
//! its framing page; what the network task reports back becomes a note in the user's language.

use tokio::time::Instant;

use super::{App, Conn, Effect};
use crate::i18n::{Language, tr};
use crate::inspector::{Page, median, millis};
use crate::lab::{Action, Half, Knobs, LabCommand, LabEvent, PROBE_ROUNDS, Reader, SendMode};
use crate::net::Outgoing;

impl App {
    /// Does what a lab command asks, and shows the framing page.
    pub(super) fn lab(&mut self, command: LabCommand, now: Instant) -> Vec<Effect> {
        let mut effects = self.show_framing();
        match command {
            LabCommand::Show => {
                let knobs = describe(&self.inspector.framing.knobs, self.language);
                self.note(&tr!(self.language, "lab.knobs", knobs = knobs), now);
            }
            LabCommand::Set(knobs) => {
                let was_paused = self.inspector.framing.knobs.reader == Reader::Paused;
                self.inspector.framing.knobs = knobs;
                let shown = describe(&knobs, self.language);
                self.note(&tr!(self.language, "lab.knobs", knobs = shown), now);
                if knobs.reader == Reader::Paused && !was_paused {
                    // What a reader that stops leads to is the server's policy: say it.
                    self.note(&tr!(self.language, "lab.paused_note"), now);
                }
                effects.push(Effect::Lab(knobs));
            }
            LabCommand::Act(_) if self.conn != Conn::Connected => {
                self.note(&tr!(self.language, "lab.not_connected"), now);
            }
            LabCommand::Act(action) => {
                let language = self.language;
                let text = match action {
                    Action::Probe => tr!(language, "lab.probing", rounds = PROBE_ROUNDS),
                    Action::Shutdown(Half::Write) => tr!(language, "lab.shutting_wr"),
                    Action::Shutdown(Half::Read) => tr!(language, "lab.shutting_rd"),
                    Action::Reset => tr!(language, "lab.resetting"),
                };
                self.note(&text, now);
                effects.push(Effect::Send(Outgoing::Lab(action)));
            }
        }
        effects
    }

    /// Opens the inspector on the framing page (sampling starts with it).
    fn show_framing(&mut self) -> Vec<Effect> {
        self.inspector.page = Page::Framing;
        self.dirty = true;
        if self.inspector.visible {
            return Vec::new();
        }
        self.inspector.visible = true;
        vec![Effect::Inspect(true)]
    }

    /// What the network task did for the lab, as a note.
    pub(super) fn on_lab(&mut self, event: &LabEvent, at: Instant) {
        let language = self.language;
        let text = match event {
            LabEvent::Probed { nagle, rounds } => {
                let nagle = on_off(*nagle, language);
                let median = median(rounds).map_or_else(|| "-".to_owned(), millis);
                let times: Vec<String> = rounds
                    .iter()
                    .map(|round| round.map_or_else(|| "-".to_owned(), millis))
                    .collect();
                let times = times.join(", ");
                tr!(
                    language,
                    "lab.probed",
                    nagle = nagle,
                    median = median,
                    times = times
                )
            }
            LabEvent::Nagle(on) => {
                let nagle = on_off(*on, language);
                tr!(language, "lab.nagle_set", nagle = nagle)
            }
            LabEvent::RcvBuf { asked, kernel } => {
                tr!(language, "lab.rcvbuf_set", asked = asked, kernel = kernel)
            }
            LabEvent::ReadShut => tr!(language, "lab.read_shut"),
            LabEvent::Failed(why) => tr!(language, "lab.failed", why = why),
        };
        self.note(&text, at);
    }
}

fn on_off(on: bool, language: Language) -> String {
    tr!(language, if on { "lab.on" } else { "lab.off" })
}

/// The knobs in the article's words: `recv(1024) · reader paused · send: burst 3 · Nagle on`.
pub fn describe(knobs: &Knobs, language: Language) -> String {
    let size = knobs.recv_size();
    let reader = match knobs.reader {
        Reader::Eager => tr!(language, "lab.reader_eager"),
        Reader::Delayed(delay) => {
            let ms = delay.as_millis();
            tr!(language, "lab.reader_delayed", ms = ms)
        }
        Reader::Paused => tr!(language, "lab.reader_paused"),
    };
    let send = match knobs.send {
        SendMode::Line => tr!(language, "lab.send_line"),
        SendMode::Typewriter => tr!(language, "lab.send_typewriter"),
        SendMode::Burst(n) => tr!(language, "lab.send_burst", n = n),
        SendMode::Paste(kb) => tr!(language, "lab.send_paste", kb = kb),
    };
    let nagle = on_off(knobs.nagle, language);
    let rcvbuf = knobs
        .rcvbuf
        .map_or_else(|| tr!(language, "lab.rcvbuf_default"), |n| n.to_string());
    tr!(
        language,
        "lab.describe",
        size = size,
        reader = reader,
        send = send,
        nagle = nagle,
        rcvbuf = rcvbuf
    )
}
