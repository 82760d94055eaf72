//! What the client knows of the room's line numbers, so that after a reconnect it shows what
//! was said while it was away once, and nothing it had already seen.
//!
//! The server numbers every line said in a room with no gaps, tells a joiner the next number
//! (in the history rule that follows the greeting), and replays lines with their numbers; live
//! lines carry none, so the client counts them. After a reconnect, the join's replay is
//! filtered: lines already seen are hidden, the rest are announced as missed. If more was
//! missed than the replay holds, the client asks `/history since N` and shows, from the answer,
//! only what it had not seen. Users of `nc` are never burdened with any of it.
//!
//! Each room's buffer keeps one: the lobby's replay follows the greeting, another room's
//! follows the member's own join and the room's topic ([`Numbering::on_entered`]).

use std::ops::Range;

use crate::i18n::{Language, tr};
use crate::protocol::{Command, Event, HistoryRequest, ServerLine};

/// Where numbering stands.
#[derive(Debug, Default)]
pub struct Numbering {
    /// The number the next live line will have, once a history rule said it.
    next: Option<u64>,
    /// Set by a reconnect: the next history rule is the rejoin's replay, to be filtered.
    rejoining: bool,
    /// Set by the greeting: the line after it is the history rule, if the server keeps one.
    greeted: bool,
    /// While a filtered block is being read: the numbers to show (others are hidden), and
    /// whether its rules are hidden too.
    block: Option<(Range<u64>, bool)>,
    /// The numbers a `/history since` asked for after a rejoin should show.
    fetching: Option<Range<u64>>,
}

/// What to do with a line just read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Show it.
    Show,
    /// Do not show it: already seen, or a rule of a filtered block.
    Hide,
    /// Hide it and say this instead; and maybe ask the server this.
    Replace {
        /// What the client's note says.
        note: Away,
        /// A line to send.
        ask: Option<String>,
    },
}

/// What a rejoin's note says about the lines said while we were away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Away {
    /// Nothing was said.
    Nothing,
    /// This many lines, all in the replay that follows.
    Missed(u64),
    /// More lines than the replay holds: the last `shown` of them are fetched.
    Fetching {
        /// Lines said while away.
        missed: u64,
        /// Lines asked for (at most what one `/history` gives).
        shown: u64,
    },
}

impl Away {
    /// The note, in `language`.
    pub fn words(self, language: Language) -> String {
        match self {
            Away::Nothing => tr!(language, "note.away_none"),
            Away::Missed(1) => tr!(language, "note.away_one", count = 1),
            Away::Missed(count) => tr!(language, "note.away_many", count = count),
            Away::Fetching { missed: 1, shown } => {
                tr!(language, "note.away_one_fetching", count = 1, shown = shown)
            }
            Away::Fetching { missed, shown } => {
                tr!(
                    language,
                    "note.away_many_fetching",
                    count = missed,
                    shown = shown
                )
            }
        }
    }
}

impl Numbering {
    /// The connection was re-established: the next replay is filtered against what was seen.
    pub fn on_connected(&mut self) {
        self.rejoining = self.next.is_some();
        self.block = None;
        self.fetching = None;
    }

    /// We entered the room (a join): its replay, if the server keeps one, comes after its
    /// topic, as the lobby's comes after the greeting.
    pub fn on_entered(&mut self) {
        self.greeted = true;
    }

    /// A complete line from the server, parsed; says whether to show it.
    pub fn on_line(&mut self, line: Option<&ServerLine<'_>>) -> Verdict {
        let after_greeting = std::mem::take(&mut self.greeted);
        match line {
            Some(ServerLine::Event(Event::TopicIs(_))) => {
                self.greeted = after_greeting;
                Verdict::Show
            }
            Some(ServerLine::Event(Event::Greeting { .. })) => {
                self.greeted = true;
                Verdict::Show
            }
            Some(ServerLine::Event(Event::History { count, next, .. })) => {
                let (count, next) = (*count as u64, *next);
                if after_greeting && std::mem::take(&mut self.rejoining) {
                    return self.rejoined(count, next);
                }
                if let Some(show) = self.fetching.take() {
                    self.block = Some((show, true));
                    return Verdict::Hide;
                }
                self.next = Some(self.next.map_or(next, |seen| seen.max(next)));
                Verdict::Show
            }
            Some(ServerLine::Event(Event::HistoryEnd { .. })) => match self.block.take() {
                Some((_, true)) => Verdict::Hide,
                _ => Verdict::Show,
            },
            Some(ServerLine::Replayed { seq, .. }) => match &self.block {
                Some((show, _)) if !show.contains(seq) => Verdict::Hide,
                _ => Verdict::Show,
            },
            Some(ServerLine::Message { .. } | ServerLine::Action { .. }) => {
                if let Some(next) = &mut self.next {
                    *next += 1;
                }
                Verdict::Show
            }
            _ => {
                if after_greeting {
                    // No history rule after the greeting: this server keeps none.
                    self.rejoining = false;
                }
                Verdict::Show
            }
        }
    }

    /// The rejoin's replay: `count` lines ending before `next`; we had seen up to `expected`.
    fn rejoined(&mut self, count: u64, next: u64) -> Verdict {
        let expected = self.next.unwrap_or(next);
        self.next = Some(next);
        if next < expected {
            // The server's numbering went back (a new store): nothing to compare with.
            return Verdict::Show;
        }
        let missed = next - expected;
        if missed == 0 {
            self.block = Some((0..0, true));
            return Verdict::Replace {
                note: Away::Nothing,
                ask: None,
            };
        }
        if missed <= count {
            self.block = Some((expected..next, true));
            return Verdict::Replace {
                note: Away::Missed(missed),
                ask: None,
            };
        }
        // More than the replay holds: hide it, ask for what is missing (up to 5,000).
        self.block = Some((0..0, true));
        self.fetching = Some(expected..next);
        let asked = Command::History(&format!("since {}", expected - 1)).to_string();
        let shown = missed.min(HistoryRequest::MAX as u64);
        Verdict::Replace {
            note: Away::Fetching { missed, shown },
            ask: Some(asked),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{LOBBY, SaidKind};

    fn history(count: usize, next: u64) -> ServerLine<'static> {
        ServerLine::Event(Event::History {
            room: LOBBY,
            count,
            next,
        })
    }

    fn greeting() -> ServerLine<'static> {
        ServerLine::Event(Event::Greeting {
            nick: "alice",
            online: 1,
        })
    }

    fn replayed(seq: u64) -> ServerLine<'static> {
        ServerLine::Replayed {
            at: 0,
            seq,
            kind: SaidKind::Message,
            nick: "bob",
            text: "x",
        }
    }

    fn live() -> ServerLine<'static> {
        ServerLine::Message {
            nick: "bob",
            text: "x",
        }
    }

    fn end() -> ServerLine<'static> {
        ServerLine::Event(Event::HistoryEnd { room: LOBBY })
    }

    /// A first session: joined at `next`, then `live` lines seen.
    fn seen(next: u64, live_lines: u64) -> Numbering {
        let mut numbering = Numbering::default();
        numbering.on_line(Some(&greeting()));
        assert_eq!(numbering.on_line(Some(&history(0, next))), Verdict::Show);
        for _ in 0..live_lines {
            numbering.on_line(Some(&live()));
        }
        numbering
    }

    #[test]
    fn a_rejoin_shows_only_the_lines_said_while_away() {
        let mut numbering = seen(1, 5); // saw #1..#5
        numbering.on_connected();
        numbering.on_line(Some(&greeting()));
        let verdict = numbering.on_line(Some(&history(4, 9))); // #5..#8 replayed
        assert_eq!(
            verdict,
            Verdict::Replace {
                note: Away::Missed(3),
                ask: None
            }
        );
        let english = |away: Away| away.words(Language::English);
        assert_eq!(
            english(Away::Missed(3)),
            "3 lines were said while you were away:"
        );
        assert_eq!(
            english(Away::Missed(1)),
            "1 line was said while you were away:"
        );
        let shown: Vec<u64> = (5..9)
            .filter(|&seq| numbering.on_line(Some(&replayed(seq))) == Verdict::Show)
            .collect();
        assert_eq!(shown, [6, 7, 8]);
        assert_eq!(numbering.on_line(Some(&end())), Verdict::Hide);
        numbering.on_line(Some(&live()));
        assert_eq!(
            numbering.next,
            Some(10),
            "live counting goes on from the rejoin"
        );
    }

    #[test]
    fn nothing_missed_hides_the_whole_replay() {
        let mut numbering = seen(1, 3);
        numbering.on_connected();
        numbering.on_line(Some(&greeting()));
        assert!(matches!(
            numbering.on_line(Some(&history(3, 4))),
            Verdict::Replace { ask: None, .. }
        ));
        for seq in 1..4 {
            assert_eq!(numbering.on_line(Some(&replayed(seq))), Verdict::Hide);
        }
        assert_eq!(numbering.on_line(Some(&end())), Verdict::Hide);
    }

    #[test]
    fn a_gap_larger_than_the_replay_is_fetched_and_shown_once() {
        let mut numbering = seen(1, 2); // saw #1, #2
        numbering.on_connected();
        numbering.on_line(Some(&greeting()));
        let Verdict::Replace { ask: Some(ask), .. } = numbering.on_line(Some(&history(2, 101)))
        else {
            panic!("a gap of 98 with a replay of 2 asks for the rest");
        };
        assert_eq!(ask, "/history since 2");
        for seq in [99, 100] {
            assert_eq!(numbering.on_line(Some(&replayed(seq))), Verdict::Hide);
        }
        numbering.on_line(Some(&end()));
        // A live line arrives before the answer: #101, already seen when the answer comes.
        numbering.on_line(Some(&live()));
        assert_eq!(numbering.on_line(Some(&history(99, 102))), Verdict::Hide);
        let shown = (3..102)
            .filter(|&seq| numbering.on_line(Some(&replayed(seq))) == Verdict::Show)
            .count();
        assert_eq!(shown, 98, "#3 to #100, not #101 which came live");
        assert_eq!(numbering.on_line(Some(&end())), Verdict::Hide);
        // A /history the user asks for later is shown whole.
        assert_eq!(numbering.on_line(Some(&history(2, 102))), Verdict::Show);
        assert_eq!(numbering.on_line(Some(&replayed(100))), Verdict::Show);
    }

    #[test]
    fn a_room_rejoined_is_filtered_after_its_topic() {
        let mut numbering = Numbering::default();
        numbering.on_entered();
        numbering.on_line(Some(&ServerLine::Event(Event::TopicIs(None))));
        assert_eq!(numbering.on_line(Some(&history(0, 4))), Verdict::Show);
        numbering.on_line(Some(&live())); // saw #4
        numbering.on_connected();
        numbering.on_entered();
        numbering.on_line(Some(&ServerLine::Event(Event::TopicIs(Some("t")))));
        assert_eq!(
            numbering.on_line(Some(&history(2, 6))),
            Verdict::Replace {
                note: Away::Missed(1),
                ask: None
            }
        );
        assert_eq!(numbering.on_line(Some(&replayed(4))), Verdict::Hide);
        assert_eq!(numbering.on_line(Some(&replayed(5))), Verdict::Show);
    }

    #[test]
    fn a_server_that_starts_numbering_again_is_shown_whole() {
        let mut numbering = seen(50, 10);
        numbering.on_connected();
        numbering.on_line(Some(&greeting()));
        assert_eq!(numbering.on_line(Some(&history(2, 3))), Verdict::Show);
        assert_eq!(numbering.on_line(Some(&replayed(1))), Verdict::Show);
    }
}
