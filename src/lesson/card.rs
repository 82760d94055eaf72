//! The lesson card's state: the prediction chosen, the steps made and what each showed, and the
//! verdict. Keys move it (see [`crate::app`]); the runner's reports fill it; it draws nothing.

use super::fact::Fact;
use super::runner::{LessonEvent, Request};
use super::{LESSONS, Lesson};

/// Where the learner is in a lesson.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Choosing an answer: the steps wait for it.
    Predict,
    /// Making the steps.
    Doing,
    /// Every step made (or one failed): the verdict is shown.
    Verdict,
}

/// One open lesson.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    /// The lesson's index in [`LESSONS`].
    pub lesson: usize,
    /// This run's number: reports about other runs are not this card's.
    pub run: u64,
    /// The choice made (from 0).
    pub prediction: Option<usize>,
    /// What each step made so far showed, in order.
    pub steps: Vec<Vec<Fact>>,
    /// A step is being made.
    pub running: bool,
    /// Which choice the run showed, once it has.
    pub outcome: Option<usize>,
    /// Why the run stopped, if a step failed.
    pub error: Option<String>,
    /// Rows the steps are scrolled back from the newest (PgUp), when they do not all fit.
    pub scrolled_back: usize,
}

impl Card {
    /// Lesson `index` as run number `run`, nothing chosen or made; and the request that
    /// starts the run.
    pub fn open(index: usize, run: u64) -> (Self, Request) {
        let card = Self {
            lesson: index,
            run,
            prediction: None,
            steps: Vec::new(),
            running: false,
            outcome: None,
            error: None,
            scrolled_back: 0,
        };
        (card, Request::Start { lesson: index, run })
    }

    /// The lesson's calls.
    pub fn spec(&self) -> &'static Lesson {
        &LESSONS[self.lesson.min(LESSONS.len() - 1)]
    }

    /// Where the learner is.
    pub fn phase(&self) -> Phase {
        match () {
            () if self.prediction.is_none() => Phase::Predict,
            () if self.error.is_some() || self.steps.len() == self.spec().steps.len() => {
                Phase::Verdict
            }
            () => Phase::Doing,
        }
    }

    /// Chooses answer `choice` (from 0) of `choices`; only before any step is made.
    pub fn choose(&mut self, choice: usize, choices: usize) -> bool {
        let open = self.steps.is_empty() && !self.running && choice < choices;
        if open {
            self.prediction = Some(choice);
        }
        open
    }

    /// The request for the next step, if one may be made now.
    pub fn next_step(&mut self) -> Option<Request> {
        if self.phase() != Phase::Doing || self.running {
            return None;
        }
        self.running = true;
        Some(Request::Step(self.steps.len()))
    }

    /// Scrolls the steps `rows` back (negative: towards the newest), at most as far as they
    /// have rows (drawing clamps it to what the pane leaves hidden).
    pub fn scroll(&mut self, rows: isize) {
        let most = self.spec().steps.len() + self.steps.iter().map(Vec::len).sum::<usize>();
        self.scrolled_back = self.scrolled_back.saturating_add_signed(rows).min(most);
    }

    /// The runner reports a step; reports about another run (a card closed or reopened while
    /// its step was being made) are ignored.
    pub fn on_event(&mut self, event: LessonEvent) {
        match event {
            LessonEvent::Done {
                run,
                step,
                facts,
                outcome,
            } if run == self.run && step == self.steps.len() => {
                self.steps.push(facts);
                self.outcome = outcome.or(self.outcome);
                self.running = false;
                self.scrolled_back = 0;
            }
            LessonEvent::Failed { run, step, error }
                if run == self.run && step == self.steps.len() =>
            {
                self.error = Some(error);
                self.running = false;
            }
            _ => {}
        }
    }

    /// Whether the prediction was right, once every step is made and the run showed an outcome.
    pub fn verdict(&self) -> Option<bool> {
        if self.phase() != Phase::Verdict || self.error.is_some() {
            return None;
        }
        Some(self.prediction? == self.outcome?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lesson::Side;

    fn done(run: u64, step: usize, outcome: Option<usize>) -> LessonEvent {
        LessonEvent::Done {
            run,
            step,
            facts: vec![Fact::returned(Side::Server, format!("step {step}"))],
            outcome,
        }
    }

    #[test]
    fn a_card_waits_for_a_prediction_then_makes_each_step_once_then_judges() {
        let (mut card, start) = Card::open(0, 1);
        assert_eq!(start, Request::Start { lesson: 0, run: 1 });
        assert_eq!(card.phase(), Phase::Predict);
        assert_eq!(card.next_step(), None, "no step before a prediction");
        assert!(!card.choose(3, 3), "there is no fourth choice");
        assert!(card.choose(1, 3));
        let steps = card.spec().steps.len();
        for step in 0..steps {
            assert_eq!(card.next_step(), Some(Request::Step(step)));
            assert_eq!(card.next_step(), None, "one step at a time");
            assert!(
                !card.choose(0, 3),
                "the prediction is fixed once a step is made"
            );
            let outcome = (step + 1 == steps).then_some(1);
            card.on_event(done(1, step, outcome));
        }
        assert_eq!(card.phase(), Phase::Verdict);
        assert_eq!(card.verdict(), Some(true));
        assert_eq!(card.next_step(), None);
    }

    #[test]
    fn a_wrong_prediction_and_a_failed_step_are_told_apart() {
        let (mut card, _) = Card::open(1, 4);
        card.choose(0, 3);
        let steps = card.spec().steps.len();
        for step in 0..steps {
            card.next_step();
            card.on_event(done(4, step, Some(1)));
        }
        assert_eq!(card.verdict(), Some(false));

        let (mut card, _) = Card::open(2, 5);
        card.choose(0, 3);
        card.next_step();
        card.on_event(done(7, 0, None)); // another run's: ignored
        assert!(card.running);
        card.on_event(LessonEvent::Failed {
            run: 5,
            step: 0,
            error: "no".into(),
        });
        assert_eq!(card.phase(), Phase::Verdict);
        assert_eq!(card.verdict(), None);
    }

    #[test]
    fn a_lesson_reopened_while_its_step_runs_ignores_the_old_runs_report() {
        let (mut old, _) = Card::open(3, 1);
        old.choose(0, 3);
        assert_eq!(old.next_step(), Some(Request::Step(0)));
        let (mut card, start) = Card::open(3, 2);
        assert_eq!(start, Request::Start { lesson: 3, run: 2 });
        card.choose(1, 3);
        assert_eq!(card.next_step(), Some(Request::Step(0)));
        card.on_event(done(1, 0, Some(0)));
        assert!(card.running, "step 0 of run 1 is not this card's step 0");
        assert!(card.steps.is_empty());
        card.on_event(done(2, 0, None));
        assert!(!card.running);
        assert_eq!(card.steps.len(), 1);
    }
}
