//! Every lesson run to its end against this machine's kernel: each step succeeds, the run shows
//! an outcome that is one of the lesson's choices, and the outcome is what Linux does, read
//! again here from the facts' own evidence where a second reading is possible.

use super::*;
use crate::i18n::Language;
use crate::lesson::{LESSONS, texts};

/// Runs every step of `lesson`; its facts, and the outcome.
async fn run(lesson: LessonId) -> (Vec<Fact>, Option<usize>) {
    let spec = LESSONS.iter().find(|spec| spec.id == lesson).unwrap();
    let mut experiment = new(lesson);
    let mut facts = Vec::new();
    for step in 0..spec.steps.len() {
        let shown = experiment
            .step(step)
            .await
            .unwrap_or_else(|error| panic!("{} step {step}: {error}", spec.slug));
        assert!(
            !shown.is_empty(),
            "{} step {step} showed nothing",
            spec.slug
        );
        facts.extend(shown);
    }
    assert!(
        experiment.step(spec.steps.len()).await.is_err(),
        "no step past the last"
    );
    for fact in &facts {
        eprintln!("{} | {fact}", spec.slug);
    }
    let outcome = experiment.outcome();
    let choices = texts(Language::English)
        .iter()
        .find(|text| text.slug == spec.slug)
        .unwrap()
        .choices
        .len();
    assert!(
        outcome.is_some_and(|o| o < choices),
        "{}: {outcome:?}",
        spec.slug
    );
    (facts, outcome)
}

fn said(facts: &[Fact], text: &str) -> bool {
    facts.iter().any(|fact| fact.text.contains(text))
}

#[tokio::test]
async fn listen_shows_a_listen_row_only_after_listen() {
    let (facts, outcome) = run(LessonId::Listen).await;
    assert_eq!(outcome, Some(1));
    assert!(said(&facts, "tcpi_state = CLOSED"));
    assert!(said(&facts, "LISTEN"));
    assert!(said(&facts, "accept queue 0 of 5"));
}

#[tokio::test]
async fn handshake_finishes_before_accept() {
    let (facts, outcome) = run(LessonId::Handshake).await;
    assert_eq!(outcome, Some(1));
    assert!(said(&facts, "accept queue 1 of 5"));
    assert!(said(&facts, "accept queue 0 of 5"));
}

#[tokio::test]
async fn a_sent_line_waits_in_the_servers_kernel() {
    let (facts, outcome) = run(LessonId::Send).await;
    assert_eq!(outcome, Some(1));
    assert!(said(&facts, "SIOCINQ = 6"));
    assert!(said(&facts, "recv(1024) = 6 bytes"));
}

#[tokio::test]
async fn three_sends_come_out_of_one_recv_and_one_send_out_of_three() {
    let (facts, outcome) = run(LessonId::Boundaries).await;
    assert_eq!(outcome, Some(1));
    assert!(said(&facts, "14 bytes, 3 lines"));
    let reads = facts
        .iter()
        .filter(|fact| fact.text.starts_with("recv(1024) = ") && fact.text.ends_with(" bytes"))
        .count();
    assert_eq!(reads, 3, "3000 bytes at recv(1024)");
}

#[tokio::test]
async fn nagle_and_the_delayed_ack_stall_and_nodelay_does_not() {
    let (facts, outcome) = run(LessonId::Nagle).await;
    assert_eq!(outcome, Some(1), "Linux's delayed ACK is at least 40 ms");
    assert!(said(&facts, "TCP_NODELAY: send"));
}

#[tokio::test]
async fn a_reader_that_stops_fills_the_window_and_loses_nothing() {
    let (facts, outcome) = run(LessonId::StopReading).await;
    assert_eq!(outcome, Some(1));
    assert!(said(&facts, "EAGAIN"));
    assert!(said(&facts, ": 0 lost"));
    assert!(said(&facts, "tcpi_snd_wnd = 0"));
}

#[tokio::test]
async fn after_its_own_fin_the_client_still_reads() {
    let (facts, outcome) = run(LessonId::HalfClose).await;
    assert_eq!(outcome, Some(1));
    assert!(said(&facts, "FIN-WAIT-2"));
    assert!(said(&facts, "CLOSE-WAIT"));
    assert!(said(&facts, "recv(1024) = 0: end of file"));
}

#[tokio::test]
async fn linger_zero_resets_and_a_plain_close_ends() {
    let (facts, outcome) = run(LessonId::Reset).await;
    assert_eq!(outcome, Some(1));
    assert!(said(&facts, "recv(1024) = 0: end of file"));
    assert!(said(&facts, "ECONNRESET"));
}

#[tokio::test]
async fn a_closed_port_refuses_and_a_full_queue_makes_the_syn_wait() {
    let (facts, outcome) = run(LessonId::Backlog).await;
    assert_eq!(outcome, Some(1));
    assert!(said(&facts, "ECONNREFUSED"));
    assert!(said(&facts, "SYN-SENT"));
    assert!(said(&facts, "accept queue 2 of 1"));
}

#[tokio::test]
async fn time_wait_holds_the_port_without_reuseaddr() {
    let (facts, outcome) = run(LessonId::Ports).await;
    assert_eq!(outcome, Some(1));
    assert!(said(&facts, "TIME-WAIT"));
    assert!(said(&facts, "EADDRINUSE"));
    assert!(facts.last().is_some_and(|fact| fact.text.ends_with("= 0")));
}
