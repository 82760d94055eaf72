//! Client benchmarks (criterion): frame time at 200×50 as history grows, and ingest rate.
//!
//! Every frame is the real [`tcpchat::ui::render`] of a real [`App`] filled through
//! [`App::on_net`] with a realistic history (see `support`), drawn by a ratatui [`Terminal`] on
//! a [`TestBackend`], so the figure includes ratatui's buffer reset and diff but no terminal
//! I/O. Cases, each at 1k, 10k and 100k lines:
//!
//! - `frame_follow`: the view follows the newest line, nothing changed since the last frame;
//! - `frame_new_line`: one read with one new line arrives, then a frame (every row moves);
//! - `frame_inspector`: the same as `frame_follow` with the TCP inspector open (F2);
//! - `frame_scrolled_top`: scrolled up to the oldest row;
//! - `peer_paragraph_wrap`: what a naive client does instead — the whole history handed to
//!   ratatui's `Paragraph` with `Wrap { trim: false }` and `.scroll()` to the bottom, each frame;
//! - `rewrap_resize`: not a frame but what precedes one after a resize, F2 or F3: every line
//!   wrapped again for the new width.
//!
//! Ingest: `ingest` feeds 1,000 lines per iteration in 8 KiB reads into a client whose 10,000
//! line scrollback is full (so every line also drops the oldest); `ingest_draw` draws a frame
//! after every read as well, the most the client's loop ever draws during a burst.
//!
//! Run with `cargo bench --bench client`; `tools/loadgen/bench/client.sh` runs it and tabulates
//! medians.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::hint::black_box;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use bytes::Bytes;
use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};
use tcpchat::app::App;
use tcpchat::event_loop::fit;
use tcpchat::net::NetEvent;
use tcpchat::ui;
use tokio::time::Instant;

use support::{COLS, Chat, ROWS, full_app, reads};

/// History sizes every frame case runs at.
const SIZES: [usize; 3] = [1_000, 10_000, 100_000];

/// Lines fed per ingest iteration.
const INGEST_LINES: usize = 1_000;

/// Scrollback capacity for the ingest cases (the default).
const INGEST_CAPACITY: usize = tcpchat::scrollback::DEFAULT_CAPACITY;

fn terminal() -> Terminal<TestBackend> {
    Terminal::new(TestBackend::new(COLS, ROWS)).expect("test backend")
}

/// One frame. Not inlined, so a profiler can count exactly the frames
/// (`valgrind --tool=callgrind --toggle-collect=client::draw`).
#[inline(never)]
fn draw(terminal: &mut Terminal<TestBackend>, app: &App) {
    terminal.draw(|frame| ui::render(app, frame)).expect("draw");
}

fn f2() -> KeyEvent {
    KeyEvent::new(KeyCode::F(2), KeyModifiers::NONE)
}

/// One full app per history size, built once and shared by the frame cases.
fn apps() -> Vec<(usize, App)> {
    SIZES.iter().map(|&n| (n, full_app(n))).collect()
}

fn frames(c: &mut Criterion) {
    let mut apps = apps();
    for (n, app) in &apps {
        assert_eq!(app.scrollback.len(), *n, "{n} lines kept");
        let bytes: usize = app.scrollback.entries().map(|e| e.text.len()).sum();
        let rows: usize = app.scrollback.entries().map(|e| e.rows().count()).sum();
        let wrapped = app
            .scrollback
            .entries()
            .filter(|e| e.rows().count() > 1)
            .count();
        eprintln!(
            "history {n}: {:.0} B per line, {:.1}% of lines wrap at {} columns, {rows} rows",
            bytes as f64 / *n as f64,
            100.0 * wrapped as f64 / *n as f64,
            ui::text_area(app, (COLS, ROWS)).0
        );
    }

    let mut group = c.benchmark_group("frame_follow");
    for (n, app) in &apps {
        let mut terminal = terminal();
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| draw(&mut terminal, app));
        });
    }
    group.finish();

    let mut group = c.benchmark_group("frame_new_line");
    for (n, app) in &mut apps {
        let mut chat = Chat::new(7);
        let lines: Vec<Bytes> = (0..4096)
            .map(|_| Bytes::from(format!("{}\n", chat.line())))
            .collect();
        let mut terminal = terminal();
        let mut next = lines.iter().cycle();
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                let line = next.next().expect("cycle").clone();
                support::net(app, NetEvent::Received(line));
                draw(&mut terminal, app);
            });
        });
    }
    group.finish();

    let mut group = c.benchmark_group("frame_inspector");
    for (n, app) in &mut apps {
        app.on_key(f2(), Instant::now());
        fit(app, (COLS, ROWS));
        assert!(app.inspector.visible);
        let mut terminal = terminal();
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| draw(&mut terminal, app));
        });
        app.on_key(f2(), Instant::now());
        fit(app, (COLS, ROWS));
    }
    group.finish();

    let mut group = c.benchmark_group("frame_scrolled_top");
    for (n, app) in &mut apps {
        let height = ui::text_area(app, (COLS, ROWS)).1;
        app.scrollback.scroll(isize::MAX, height);
        let mut terminal = terminal();
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| draw(&mut terminal, app));
        });
        app.scrollback.to_bottom();
    }
    group.finish();

    peer_paragraph(c, &apps);
    rewrap(c, &mut apps);
}

/// What a resize, F2 (inspector) or F3 (timestamps) costs: every line is wrapped again for the
/// new width. Alternates between 200 and 199 columns so each iteration re-wraps.
fn rewrap(c: &mut Criterion, apps: &mut [(usize, App)]) {
    let mut group = c.benchmark_group("rewrap_resize");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    for (n, app) in apps.iter_mut() {
        let mut narrow = false;
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                narrow = !narrow;
                fit(app, (if narrow { COLS - 1 } else { COLS }, ROWS));
            });
        });
        fit(app, (COLS, ROWS));
    }
    group.finish();
}

/// The naive client: every frame, the whole history as one wrapped, scrolled `Paragraph`.
/// It is given the lines as borrowed `&str` (no copy) and the wrapped row count computed once
/// outside the timing, the most favourable setup it can have; it draws only the history pane
/// (no status bar, no edit box). `Paragraph::scroll` takes a `u16`, so past 65,535 wrapped
/// rows it cannot reach the bottom at all: it is clamped there and still walks that far.
fn peer_paragraph(c: &mut Criterion, apps: &[(usize, App)]) {
    let mut group = c.benchmark_group("peer_paragraph_wrap");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    for (n, app) in apps {
        let history = ui::layout((COLS, ROWS), app.inspector.visible).scrollback;
        let total_rows: usize = app.scrollback.entries().map(|e| e.rows().count()).sum();
        let bottom = total_rows.saturating_sub(usize::from(history.height));
        let scroll = u16::try_from(bottom).unwrap_or(u16::MAX);
        if bottom > usize::from(u16::MAX) {
            eprintln!(
                "peer_paragraph_wrap/{n}: {total_rows} wrapped rows; Paragraph::scroll is a u16, \
                 clamped at {scroll} rows: the naive client cannot show its newest lines"
            );
        }
        let render = |terminal: &mut Terminal<TestBackend>| {
            terminal
                .draw(|frame| {
                    let lines: Vec<Line<'_>> = app
                        .scrollback
                        .entries()
                        .map(|e| Line::raw(&*e.text))
                        .collect();
                    let paragraph = Paragraph::new(lines)
                        .wrap(Wrap { trim: false })
                        .scroll((scroll, 0));
                    frame.render_widget(paragraph, history);
                })
                .map(|_| ())
        };
        // ratatui 0.30's wrap can panic on wide characters at narrow widths (#2679): probe once.
        let mut terminal = terminal();
        match catch_unwind(AssertUnwindSafe(|| render(&mut terminal))) {
            Ok(result) => result.expect("draw"),
            Err(_) => {
                eprintln!("peer_paragraph_wrap/{n}: Paragraph panicked (ratatui #2679); skipped");
                continue;
            }
        }
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| render(&mut terminal).expect("draw"));
        });
    }
    group.finish();
}

/// Feeds one stream's reads. Not inlined, so a profiler can count exactly the ingest
/// (`valgrind --tool=callgrind --toggle-collect=client::feed`).
#[inline(never)]
fn feed(app: &mut App, reads: &[Bytes]) {
    for read in reads {
        black_box(app.on_net(NetEvent::Received(read.clone()), Instant::now()));
    }
}

fn ingest(c: &mut Criterion) {
    // Twenty different thousand-line streams, each cut into 8 KiB reads; every stream ends
    // with a complete line, so each iteration starts on a fresh line.
    let mut chat = Chat::new(1);
    let streams: Vec<Vec<Bytes>> = (0..20).map(|_| reads(&chat.stream(INGEST_LINES))).collect();
    let reads_per_stream =
        streams.iter().map(Vec::len).sum::<usize>() as f64 / streams.len() as f64;
    eprintln!(
        "ingest: {INGEST_LINES} lines in {reads_per_stream:.1} reads of up to {} B per iteration",
        support::READ_SIZE
    );

    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(INGEST_LINES as u64));
    let mut app = full_app(INGEST_CAPACITY);
    let mut next = streams.iter().cycle();
    group.bench_function(BenchmarkId::from_parameter(INGEST_CAPACITY), |b| {
        b.iter(|| feed(&mut app, next.next().expect("cycle")));
    });
    assert_eq!(
        app.scrollback.len(),
        INGEST_CAPACITY,
        "the oldest were dropped"
    );
    group.finish();

    let mut group = c.benchmark_group("ingest_draw");
    group.throughput(Throughput::Elements(INGEST_LINES as u64));
    let mut app = full_app(INGEST_CAPACITY);
    let mut terminal = terminal();
    group.bench_function(BenchmarkId::from_parameter(INGEST_CAPACITY), |b| {
        b.iter(|| {
            for read in next.next().expect("cycle") {
                support::net(&mut app, NetEvent::Received(read.clone()));
                draw(&mut terminal, &app);
            }
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = frames, ingest
}
criterion_main!(benches);
