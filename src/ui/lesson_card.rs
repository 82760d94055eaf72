//! The lesson card (`/lesson N`), drawn over the scrollback: the question and its choices, the
//! steps with what each showed, and the verdict. Everything comes from the card's state and the
//! lesson's text; when the pane is short, the article's line and the watch line go first, then
//! the oldest facts (a marker says how many rows are above).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Padding, Paragraph, Widget};
use unicode_width::UnicodeWidthStr;

use super::style;
use crate::i18n::{Language, tr};
use crate::lesson::{Card, Fact, LESSONS, LessonText, Phase, Source};
use crate::scrollback::wrap;

/// The card and the words it needs.
#[derive(Debug)]
pub struct LessonCard<'a> {
    /// The card's state.
    pub card: &'a Card,
    /// The lesson's prose in the user's language.
    pub text: &'a LessonText,
    /// The language of the chrome.
    pub language: Language,
}

/// `text` wrapped to `width` cells, each row styled `style`, after `indent` spaces.
fn rows(text: &str, width: usize, indent: usize, style: Style) -> Vec<Line<'static>> {
    let room = width.saturating_sub(indent).max(1);
    let starts = wrap(text, room);
    let ends = starts
        .iter()
        .skip(1)
        .map(|&s| s as usize)
        .chain([text.len()]);
    let pad = " ".repeat(indent);
    starts
        .iter()
        .zip(ends)
        .map(|(&start, end)| {
            let row = text[start as usize..end].trim_end();
            Line::styled(format!("{pad}{row}"), style)
        })
        .collect()
}

/// One fact: its side, its text (wrapped under itself), and its source at the right edge of
/// the last row, or of a row of its own when the last row has no room for it. A captured
/// segment's side, `wire`, is its source.
fn fact_rows(fact: &Fact, width: usize, style: Style) -> Vec<Line<'static>> {
    const INDENT: usize = 9; // two spaces, the side in six, one space
    let source = format!("[{}]", fact.source.name());
    let mut lines = rows(&fact.text, width, INDENT, style);
    if let Some(first) = lines.first_mut() {
        let text = first.to_string();
        *first = Line::styled(
            format!("  {:<6} {}", fact.side.name(), text.trim_start()),
            style,
        );
    }
    // A segment's row says where it comes from in its side column (`wire`): no tag needed.
    if fact.source == Source::Captured {
        return lines;
    }
    let last = lines.last().map_or(0, |line| line.width());
    if last + 2 + source.width() <= width {
        let pad = " ".repeat(width - last - source.width());
        if let Some(line) = lines.last_mut() {
            line.push_span(Span::styled(format!("{pad}{source}"), style::DIM));
        }
    } else {
        let pad = " ".repeat(width.saturating_sub(source.width()));
        lines.push(Line::styled(format!("{pad}{source}"), style::DIM));
    }
    lines
}

impl LessonCard<'_> {
    /// The question and the choices, the prediction and (after the verdict) the outcome marked.
    fn question(&self, width: usize) -> Vec<Line<'static>> {
        let mut lines = rows(&self.text.question, width, 0, style::STRONG);
        let judged = self.card.phase() == Phase::Verdict;
        for (index, choice) in self.text.choices.iter().enumerate() {
            let chosen = self.card.prediction == Some(index);
            let shown = judged && self.card.outcome == Some(index);
            let mark = match (chosen, shown) {
                (_, true) => '✓',
                (true, false) => '▶',
                _ => ' ',
            };
            let style = match (chosen, shown) {
                (_, true) => style::RIGHT,
                (true, false) => style::STRONG,
                _ => Style::new(),
            };
            let mut choice_rows = rows(choice, width, 5, style);
            if let Some(first) = choice_rows.first_mut() {
                *first = Line::styled(
                    format!(" {mark} {} {}", index + 1, first.to_string().trim_start()),
                    style,
                );
            }
            lines.extend(choice_rows);
        }
        lines
    }

    /// Each step: made (with its facts), being made, next, or still ahead.
    fn steps(&self, width: usize) -> Vec<Line<'static>> {
        let mut lines = Vec::new();
        let made = self.card.steps.len();
        for (index, label) in self.card.spec().steps.iter().enumerate() {
            let step = match index {
                i if i < made => Line::styled(format!("▸ {label}"), style::STRONG),
                i if i == made && self.card.running => Line::styled(
                    tr!(self.language, "lesson.running", step = label),
                    style::ASK,
                ),
                i if i == made
                    && self.card.phase() == Phase::Doing
                    && self.card.error.is_none() =>
                {
                    Line::styled(tr!(self.language, "lesson.next", step = label), style::ASK)
                }
                _ => Line::styled(format!("  {label}"), style::DIM),
            };
            lines.push(step);
            for fact in self.card.steps.get(index).into_iter().flatten() {
                let style = match fact.source {
                    Source::TcpInfo | Source::Table | Source::Captured => style::kernel_fact(),
                    Source::Inferred => style::DIM,
                    Source::Returned | Source::Clock | Source::Counted => Style::new(),
                };
                lines.extend(fact_rows(fact, width, style));
            }
        }
        lines
    }

    /// The verdict and why, or what to do first.
    fn ending(&self, width: usize) -> Vec<Line<'static>> {
        let language = self.language;
        let choices = self.text.choices.len();
        let name = |choice: usize| format!("{}", choice + 1);
        match self.card.phase() {
            Phase::Predict => vec![Line::styled(
                tr!(language, "lesson.predict", count = choices),
                style::ASK,
            )],
            Phase::Doing => Vec::new(),
            Phase::Verdict => {
                let (verdict, verdict_style) = match (&self.card.error, self.card.verdict()) {
                    (Some(error), _) => (
                        tr!(language, "lesson.failed", error = error),
                        style::wrong(),
                    ),
                    (None, Some(true)) => (
                        tr!(
                            language,
                            "lesson.right",
                            choice = name(self.card.outcome.unwrap_or(0))
                        ),
                        style::RIGHT,
                    ),
                    (None, Some(false)) => (
                        tr!(
                            language,
                            "lesson.wrong",
                            chosen = name(self.card.prediction.unwrap_or(0)),
                            choice = name(self.card.outcome.unwrap_or(0))
                        ),
                        style::wrong(),
                    ),
                    (None, None) => (tr!(language, "lesson.undecided"), style::wrong()),
                };
                let mut lines = rows(&verdict, width, 0, verdict_style);
                lines.extend(rows(&self.text.explain, width, 0, Style::new()));
                lines
            }
        }
    }

    fn keys(&self) -> String {
        let language = self.language;
        match self.card.phase() {
            Phase::Predict => tr!(
                language,
                "lesson.keys_predict",
                count = self.text.choices.len()
            ),
            Phase::Doing => tr!(language, "lesson.keys_doing"),
            Phase::Verdict if self.card.lesson + 1 < LESSONS.len() => {
                tr!(language, "lesson.keys_verdict")
            }
            Phase::Verdict => tr!(language, "lesson.keys_last"),
        }
    }

    /// Every row the card shows in `height` rows of `width` cells, in order.
    pub fn lines(&self, width: usize, height: usize) -> Vec<Line<'static>> {
        let article = rows(
            &tr!(self.language, "lesson.article", code = self.text.article),
            width,
            0,
            style::DIM,
        );
        let watch = rows(
            &tr!(self.language, "lesson.watch", what = self.text.watch),
            width,
            0,
            style::DIM,
        );
        let question = self.question(width);
        let mut steps = self.steps(width);
        let ending = self.ending(width);
        let needed = question.len() + steps.len() + ending.len();
        let mut lines = Vec::new();
        let spare = height.saturating_sub(needed);
        if spare >= article.len() + watch.len() {
            lines.extend(article);
            lines.extend(question);
            lines.extend(watch);
        } else if spare >= watch.len() {
            lines.extend(question);
            lines.extend(watch);
        } else {
            lines.extend(question);
        }
        let room = height.saturating_sub(lines.len() + ending.len());
        if steps.len() > room {
            // The newest rows show, unless PgUp scrolled back; a marker row at each end that
            // has rows beyond it.
            let back = self.card.scrolled_back;
            let markers = if back > 0 { 2 } else { 1 };
            let shown = room.saturating_sub(markers).max(1).min(steps.len());
            let back = back.min(steps.len() - shown);
            let end = steps.len() - back;
            let start = end - shown;
            let below = steps.len() - end;
            let mut window: Vec<Line<'static>> = steps.drain(start..end).collect();
            if start > 0 {
                let marker = tr!(self.language, "lesson.earlier", count = start);
                window.insert(0, Line::styled(marker, style::DIM));
            }
            if below > 0 {
                let marker = tr!(self.language, "lesson.later", count = below);
                window.push(Line::styled(marker, style::DIM));
            }
            steps = window;
        }
        // Blank rows between the parts, where the pane has rows to spare.
        let spare = height.saturating_sub(lines.len() + steps.len() + ending.len());
        if spare >= 1 {
            lines.push(Line::default());
        }
        lines.extend(steps);
        if spare >= 2 && !ending.is_empty() {
            lines.push(Line::default());
        }
        lines.extend(ending);
        lines
    }
}

impl Widget for LessonCard<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        Clear.render(area, buf);
        let number = self.card.lesson + 1;
        let title = tr!(
            self.language,
            "lesson.title",
            number = number,
            count = LESSONS.len(),
            title = self.text.title
        );
        let block = Block::bordered()
            .padding(Padding::horizontal(1))
            .border_style(style::POPUP_BORDER)
            .title(Line::styled(title, style::POPUP_BORDER))
            .title_bottom(Line::styled(self.keys(), style::POPUP_BORDER));
        let inner = block.inner(area);
        let lines = self.lines(usize::from(inner.width), usize::from(inner.height));
        Paragraph::new(lines).block(block).render(area, buf);
    }
}
