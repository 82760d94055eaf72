//! The client's one loop: a `select!` over terminal events, network events, live `TCP_INFO`
//! (and the server's side, when this process hosts the room), signals and a deadline armed only when something is due; then one draw for the whole
//! batch. Nothing ticks while idle.
//!
//! It owns no decisions: each event goes to an [`App`] transition, and the [`Effect`]s that come
//! back are carried out here (a line to the network task, the mouse mode, a repaint, the bell,
//! the window title). The
//! terminal's events are any `Stream`, so a test drives the whole loop with scripted keys
//! against a real server and a `TestBackend`.

use std::io;
use std::time::Duration;

use crossterm::event::Event;
use futures_util::{Stream, StreamExt};
use ratatui::Terminal;
use ratatui::backend::Backend;
use ratatui::layout::Rect;
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::app::{App, Effect};
use crate::i18n::tr;
use crate::lesson::{self, LessonEvent, LessonHandle};
use crate::net::{NetHandle, Stamped};
use crate::transcript::Transcript;
use crate::ui;

/// Most network events handled before the screen is drawn again during a burst.
const DRAIN_BATCH: usize = 512;

/// Longest time spent on a burst of network events before drawing and looking at the
/// keyboard again, so typing stays responsive while a server floods us.
const DRAIN_BUDGET: Duration = Duration::from_millis(8);

/// What the loop needs from outside besides the app: the terminal, its events, the network
/// task, the signal to stop, and how to switch mouse capture.
pub struct Io<'a, B: Backend, E> {
    /// Where frames are drawn.
    pub terminal: &'a mut Terminal<B>,
    /// Keys, pastes, resizes and mouse events.
    pub events: E,
    /// The network task's channels.
    pub net: &'a mut NetHandle,
    /// Cancelled by a signal: the loop ends at once.
    pub shutdown: &'a CancellationToken,
    /// Captures (`true`) or releases the mouse.
    pub capture_mouse: &'a mut dyn FnMut(bool),
    /// Where the lines shown are written, with `--log`.
    pub transcript: Option<&'a mut Transcript>,
}

/// Runs the client until it quits: reads the terminal and the network, applies events to
/// `app`, carries out the effects, and draws after each batch of changes.
pub async fn run<B, E>(app: &mut App, io: Io<'_, B, E>) -> anyhow::Result<()>
where
    B: Backend,
    B::Error: Send + Sync + 'static,
    E: Stream<Item = io::Result<Event>> + Unpin,
{
    let Io {
        terminal,
        mut events,
        net,
        shutdown,
        capture_mouse,
        mut transcript,
    } = io;
    let mut net_done = false;
    // Started by the first `/lesson N`; it owns the lessons' sockets.
    let mut lessons: Option<LessonHandle> = None;
    while !app.should_quit() {
        let size = terminal.size()?;
        fit(app, (size.width, size.height));
        if app.take_dirty() {
            terminal.draw(|frame| ui::render(app, frame))?;
        }
        let deadline = app.next_deadline();
        let effects = tokio::select! {
            () = shutdown.cancelled() => break,
            event = events.next() => match event {
                Some(event) => app.on_terminal(event?, Instant::now()),
                None => break,
            },
            event = net.events.recv(), if !net_done => match event {
                Some(Stamped { at, event }) => app.on_net(event, at),
                // The task ends by itself only after a deliberate exit.
                None if app.exit_finished() => {
                    net_done = true;
                    Vec::new()
                }
                None => anyhow::bail!("the network task stopped unexpectedly"),
            },
            Ok(()) = net.tcp_info.changed() => {
                if let Some(info) = *net.tcp_info.borrow_and_update() {
                    app.on_tcp_info(info);
                }
                Vec::new()
            },
            Some(event) = next_lesson_event(&mut lessons) => {
                app.on_lesson(event);
                Vec::new()
            },
            Ok(()) = net.server.changed() => {
                let sample = net.server.borrow_and_update().clone();
                app.on_server_sample(sample);
                Vec::new()
            },
            () = sleep_until_some(deadline) => app.on_deadline(Instant::now()),
        };
        let mut effects = effects;
        let drain_until = Instant::now() + DRAIN_BUDGET;
        for _ in 0..DRAIN_BATCH {
            if Instant::now() >= drain_until {
                break;
            }
            match net.events.try_recv() {
                Ok(Stamped { at, event }) => effects.extend(app.on_net(event, at)),
                Err(_) => break,
            }
        }
        // A burst of mentions rings once.
        let mut rang = false;
        for effect in effects {
            match effect {
                Effect::Send(message) => match net.outgoing.try_send(message) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => {
                        app.note(&tr!(app.language, "note.queue_full"), Instant::now());
                    }
                    Err(TrySendError::Closed(_)) => {
                        app.note(&tr!(app.language, "note.line_not_sent"), Instant::now());
                    }
                },
                Effect::CaptureMouse(on) => capture_mouse(on),
                // The card makes one request per key press and waits for its answer, so the
                // queue is never full; a task that is gone answers nothing, which the card shows
                // as a step still running.
                Effect::Lesson(request) => {
                    let _ = lessons
                        .get_or_insert_with(lesson::spawn)
                        .requests
                        .try_send(request);
                }
                // Not `clear()`: it asks the terminal for the cursor position first and blocks
                // (then fails) on a terminal that does not answer. A full-screen resize to the
                // same size clears and forces a full redraw without asking anything.
                Effect::Repaint => {
                    let size = terminal.size()?;
                    terminal.resize(Rect::new(0, 0, size.width, size.height))?;
                }
                Effect::Inspect(open) => {
                    net.inspecting.send_replace(open);
                }
                Effect::Lab(knobs) => {
                    net.lab.send_replace(knobs);
                }
                // The bell and the title are niceties: a terminal that refuses them changes
                // nothing else.
                Effect::Bell if !rang => {
                    rang = true;
                    let _ = crate::terminal::bell();
                }
                Effect::Bell => {}
                Effect::Title { unread } => {
                    let _ = crate::terminal::set_title(&ui::window_title(unread, app.language));
                }
            }
        }
        if let Some(transcript) = transcript.as_deref_mut() {
            for line in app.take_transcript() {
                transcript.write(&line.room, line.at, &line.text);
            }
            if let Some(trouble) = transcript.trouble() {
                app.note(&trouble, Instant::now());
            }
        }
    }
    Ok(())
}

/// Tells `app` what the layout of a `(cols, rows)` terminal means for it (see [`App::fit`]).
/// Called before every draw: a resize, the inspector or timestamps can each change it.
pub fn fit(app: &mut App, size: (u16, u16)) {
    let (width, height) = ui::text_area(app, size);
    app.fit(width, height);
    app.inspector.set_stacked(ui::inspector_stacked(app, size));
}

/// The lessons task's next report; never, while no lesson was started.
async fn next_lesson_event(lessons: &mut Option<LessonHandle>) -> Option<LessonEvent> {
    match lessons {
        Some(handle) => handle.events.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
