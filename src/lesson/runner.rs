//! The task that owns the lessons' sockets: one at a time it starts a lesson's run or makes its
//! next step, and reports what the step showed. A new lesson drops the last one's sockets;
//! dropping the [`LessonHandle`] ends the task and closes them all.

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::fact::Fact;

/// What the card asks the task for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// A fresh run of lesson `index` (from 0 in [`super::LESSONS`]).
    Start(usize),
    /// Make step `n` of the lesson started last.
    Step(usize),
}

/// What the task reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LessonEvent {
    /// Step `step` of lesson `lesson` was made.
    Done {
        /// Which lesson (index).
        lesson: usize,
        /// Which step.
        step: usize,
        /// What it showed.
        facts: Vec<Fact>,
        /// Which choice the run has shown, once it has.
        outcome: Option<usize>,
    },
    /// Step `step` of lesson `lesson` failed; the run cannot go on.
    Failed {
        /// Which lesson (index).
        lesson: usize,
        /// Which step.
        step: usize,
        /// Why, in the system's words.
        error: String,
    },
}

/// The card's ends of the task's channels. Dropping it ends the task.
#[derive(Debug)]
pub struct LessonHandle {
    /// Requests towards the task.
    pub requests: mpsc::Sender<Request>,
    /// What the steps showed.
    pub events: mpsc::Receiver<LessonEvent>,
    task: JoinHandle<()>,
}

impl Drop for LessonHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Requests or events queued before the sender waits: a learner presses keys slower than this.
const QUEUE: usize = 16;

/// Starts the task.
pub fn spawn() -> LessonHandle {
    let (requests, mut incoming) = mpsc::channel(QUEUE);
    let (outgoing, events) = mpsc::channel(QUEUE);
    let task = tokio::spawn(async move {
        let mut run = None;
        while let Some(request) = incoming.recv().await {
            let event = match request {
                Request::Start(lesson) => {
                    run = start(lesson);
                    continue;
                }
                Request::Step(step) => self::step(&mut run, step).await,
            };
            if outgoing.send(event).await.is_err() {
                return;
            }
        }
    });
    LessonHandle {
        requests,
        events,
        task,
    }
}

#[cfg(target_os = "linux")]
type Run = (usize, Box<dyn super::experiments::Experiment>);

#[cfg(target_os = "linux")]
fn start(lesson: usize) -> Option<Run> {
    super::LESSONS
        .get(lesson)
        .map(|spec| (lesson, super::experiments::new(spec.id)))
}

#[cfg(target_os = "linux")]
async fn step(run: &mut Option<Run>, step: usize) -> LessonEvent {
    let Some((lesson, experiment)) = run else {
        return LessonEvent::Failed {
            lesson: 0,
            step,
            error: "no lesson was started".to_owned(),
        };
    };
    match experiment.step(step).await {
        Ok(facts) => LessonEvent::Done {
            lesson: *lesson,
            step,
            facts,
            outcome: experiment.outcome(),
        },
        Err(error) => LessonEvent::Failed {
            lesson: *lesson,
            step,
            error: error.to_string(),
        },
    }
}

/// Elsewhere the lesson is remembered only to say why it cannot run.
#[cfg(not(target_os = "linux"))]
type Run = usize;

#[cfg(not(target_os = "linux"))]
fn start(lesson: usize) -> Option<Run> {
    Some(lesson)
}

#[cfg(not(target_os = "linux"))]
async fn step(run: &mut Option<Run>, step: usize) -> LessonEvent {
    LessonEvent::Failed {
        lesson: run.unwrap_or(0),
        step,
        error: "the lessons read the kernel's TCP_INFO, which only Linux has".to_owned(),
    }
}
