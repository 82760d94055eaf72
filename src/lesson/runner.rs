//! The task that owns the lessons' sockets: one at a time it starts a lesson's run or makes its
//! next step, and reports what the step showed. A new lesson drops the last one's sockets;
//! dropping the [`LessonHandle`] ends the task and closes them all.

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::fact::Fact;

/// What the card asks the task for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// A fresh run of a lesson.
    Start {
        /// Which lesson (index from 0 in [`super::LESSONS`]).
        lesson: usize,
        /// The run's number, which every report about it carries: a card opened again while
        /// an earlier run's step was still being made tells that step's report from its own.
        run: u64,
    },
    /// Make step `n` of the lesson started last.
    Step(usize),
}

/// What the task reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LessonEvent {
    /// Step `step` of run `run` was made.
    Done {
        /// Which run.
        run: u64,
        /// Which step.
        step: usize,
        /// What it showed.
        facts: Vec<Fact>,
        /// Which choice the run has shown, once it has.
        outcome: Option<usize>,
    },
    /// Step `step` of run `run` failed; the run cannot go on.
    Failed {
        /// Which run.
        run: u64,
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
        let mut current = None;
        while let Some(request) = incoming.recv().await {
            let event = match request {
                Request::Start { lesson, run } => {
                    current = start(current.take(), lesson, run);
                    continue;
                }
                Request::Step(step) => self::step(&mut current, step).await,
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

/// The lesson started last, its run, and the wire under it (the capture is opened with the
/// first lesson and kept for the next).
#[cfg(target_os = "linux")]
struct Run {
    run: u64,
    experiment: Box<dyn super::experiments::Experiment>,
    wire: super::wire::Wire,
}

#[cfg(target_os = "linux")]
fn start(previous: Option<Run>, lesson: usize, run: u64) -> Option<Run> {
    let spec = super::LESSONS.get(lesson)?;
    let mut wire = previous.map_or_else(super::wire::Wire::open, |run| run.wire);
    wire.restart();
    Some(Run {
        run,
        experiment: super::experiments::new(spec.id),
        wire,
    })
}

#[cfg(target_os = "linux")]
async fn step(run: &mut Option<Run>, step: usize) -> LessonEvent {
    let Some(Run {
        run,
        experiment,
        wire,
    }) = run
    else {
        return LessonEvent::Failed {
            run: 0,
            step,
            error: "no lesson was started".to_owned(),
        };
    };
    let began = std::time::Instant::now();
    match experiment.step(step).await {
        Ok(mut facts) => {
            // The last ACK of a step crosses loopback within microseconds of the call that
            // caused it; a millisecond lets the capture thread read it.
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            facts.extend(wire.facts(began, &experiment.server_ports(), step == 0));
            LessonEvent::Done {
                run: *run,
                step,
                facts,
                outcome: experiment.outcome(),
            }
        }
        Err(error) => LessonEvent::Failed {
            run: *run,
            step,
            error: error.to_string(),
        },
    }
}

/// Elsewhere the run is remembered only to say why it cannot go on.
#[cfg(not(target_os = "linux"))]
type Run = u64;

#[cfg(not(target_os = "linux"))]
fn start(_previous: Option<Run>, _lesson: usize, run: u64) -> Option<Run> {
    Some(run)
}

#[cfg(not(target_os = "linux"))]
async fn step(run: &mut Option<Run>, step: usize) -> LessonEvent {
    LessonEvent::Failed {
        run: run.unwrap_or(0),
        step,
        error: "the lessons read the kernel's TCP_INFO, which only Linux has".to_owned(),
    }
}

#[cfg(test)]
#[cfg(target_os = "linux")]
mod tests {
    use super::*;
    use crate::lesson::{LESSONS, LessonId, Source};

    /// Runs lesson `id` to its end through the task; every fact it showed.
    async fn facts_of(id: LessonId) -> Vec<Fact> {
        let index = LESSONS.iter().position(|spec| spec.id == id).unwrap();
        let mut handle = spawn();
        handle
            .requests
            .send(Request::Start {
                lesson: index,
                run: 1,
            })
            .await
            .unwrap();
        let mut facts = Vec::new();
        for step in 0..LESSONS[index].steps.len() {
            handle.requests.send(Request::Step(step)).await.unwrap();
            match handle.events.recv().await.unwrap() {
                LessonEvent::Done { facts: shown, .. } => facts.extend(shown),
                LessonEvent::Failed { error, .. } => panic!("step {step}: {error}"),
            }
        }
        facts
    }

    fn captured(facts: &[Fact]) -> Vec<&str> {
        facts
            .iter()
            .filter(|fact| fact.source == Source::Captured)
            .map(|fact| fact.text.as_str())
            .collect()
    }

    /// With a packet socket (root, as CI runs), the handshake's three segments are seen, in
    /// order, each way the right way; without one, the card says why at the first step.
    #[tokio::test]
    async fn the_handshake_is_captured_or_the_card_says_why_not() {
        let facts = facts_of(LessonId::Handshake).await;
        let wire = captured(&facts);
        if wire.is_empty() {
            assert!(
                facts
                    .iter()
                    .any(|fact| fact.text.starts_with("socket(AF_PACKET) = -1")),
                "{facts:#?}"
            );
            return;
        }
        let find = |wanted: &str| {
            wire.iter()
                .position(|text| text.contains(wanted))
                .unwrap_or_else(|| panic!("{wanted} in {wire:#?}"))
        };
        let syn = find("client ▸ server SYN     seq 0 win");
        let syn_ack = find("server ▸ client SYN-ACK seq 0 ack 1");
        let ack = find("client ▸ server ACK     seq 1 ack 1");
        assert!(syn < syn_ack && syn_ack < ack, "{wire:#?}");
        assert!(wire[syn].contains("mss "), "the SYN's options: {wire:#?}");
    }

    #[tokio::test]
    async fn a_linger_zero_close_is_seen_as_a_reset_on_the_wire() {
        let facts = facts_of(LessonId::Reset).await;
        let wire = captured(&facts);
        if wire.is_empty() {
            return assert!(
                facts
                    .iter()
                    .any(|f| f.text.starts_with("socket(AF_PACKET) = -1"))
            );
        }
        assert!(
            wire.iter().any(|t| t.contains("client ▸ server FIN")),
            "{wire:#?}"
        );
        assert!(
            wire.iter().any(|t| t.contains("client ▸ server RST")),
            "{wire:#?}"
        );
    }
}
