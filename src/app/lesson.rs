//! The app's side of `/lesson`: opening a card, the keys while one is open, and the lessons
//! task's reports. The card's state is [`crate::lesson::Card`]; this only routes to it.
//!
//! While a card is open it takes the keys a lesson needs — a digit chooses, Enter makes the
//! next step (after the verdict: opens the next lesson), PgUp/PgDn scroll its steps when they
//! do not all fit, Esc closes — and lets every other key
//! of the key table through (F2 opens the inspector beside it, F1 the help, Ctrl-C quits).
//! Other printable keys do nothing, so nothing is typed into a line the card hides.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use tokio::time::Instant;

use super::keys::Action;
use super::{App, Effect};
use crate::i18n::tr;
use crate::lesson::{Card, LESSONS, LessonEvent, Phase, numbered, texts};

/// Rows PgUp and PgDn scroll the card's steps.
const PAGE: isize = 8;

impl App {
    /// `/lesson` lists the lessons; `/lesson N` opens lesson N's card.
    pub(super) fn open_lesson(&mut self, number: &str, now: Instant) -> Vec<Effect> {
        if number.is_empty() {
            self.note(&tr!(self.language, "note.lessons"), now);
            for (index, text) in texts(self.language).iter().enumerate() {
                self.note(&format!("  /lesson {}  {}", index + 1, text.title), now);
            }
            return Vec::new();
        }
        let chosen = number.parse::<usize>().ok().and_then(numbered);
        let Some(lesson) = chosen else {
            let note = tr!(
                self.language,
                "note.lesson_unknown",
                number = number,
                count = LESSONS.len()
            );
            self.note(&note, now);
            return Vec::new();
        };
        let index = LESSONS
            .iter()
            .position(|spec| spec.id == lesson.id)
            .unwrap_or(0);
        self.show_lesson(index)
    }

    fn show_lesson(&mut self, index: usize) -> Vec<Effect> {
        self.lesson_runs += 1;
        let (card, start) = Card::open(index, self.lesson_runs);
        self.lesson = Some(card);
        self.dirty = true;
        vec![Effect::Lesson(start)]
    }

    /// A key while a card is open: the card's effects if it took the key, `None` to let the
    /// key table have it.
    pub(super) fn lesson_key(
        &mut self,
        key: &KeyEvent,
        action: Option<Action>,
    ) -> Option<Vec<Effect>> {
        let card = self.lesson.as_mut()?;
        let plain = key.modifiers.difference(KeyModifiers::SHIFT).is_empty();
        match key.code {
            KeyCode::Esc if plain => {
                self.lesson = None;
                Some(Vec::new())
            }
            KeyCode::Enter if plain => Some(match card.phase() {
                Phase::Verdict if card.lesson + 1 < LESSONS.len() => {
                    let next = card.lesson + 1;
                    self.show_lesson(next)
                }
                Phase::Verdict => {
                    self.lesson = None;
                    Vec::new()
                }
                _ => card.next_step().map(Effect::Lesson).into_iter().collect(),
            }),
            KeyCode::Char(digit @ '1'..='9') if plain => {
                let choices = texts(self.language)
                    .get(card.lesson)
                    .map_or(0, |text| text.choices.len());
                let choice = digit as usize - '1' as usize;
                card.choose(choice, choices);
                Some(Vec::new())
            }
            KeyCode::PageUp => {
                card.scroll(PAGE);
                Some(Vec::new())
            }
            KeyCode::PageDown => {
                card.scroll(-PAGE);
                Some(Vec::new())
            }
            // Printable keys would type into the line the card hides.
            KeyCode::Char(_) if plain && action.is_none() => Some(Vec::new()),
            _ => None,
        }
    }

    /// What the lessons' task reports.
    pub fn on_lesson(&mut self, event: LessonEvent) {
        if let Some(card) = self.lesson.as_mut() {
            card.on_event(event);
            self.dirty = true;
        }
    }
}
