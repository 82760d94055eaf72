//! Tab completion in the edit box, as irssi and weechat do it: the word before the caret
//! becomes a nick (the most recently active first; `nick: ` at the start of a line), a
//! `/command` (the server's and the client's own, from their tables) or a `#room` (the open
//! buffers). Tab again puts the next candidate in its place; any other key keeps what is
//! there. Nothing is ever sent by completing.

use std::collections::VecDeque;

use super::App;
use super::buffers::Target;
use super::client_commands::CLIENT_COMMANDS;
use crate::names::fold;
use crate::protocol::COMMANDS;

/// Nicks remembered for completion, the most recently active first.
const RECENT_NICKS: usize = 256;

/// What completion knows between two key presses.
#[derive(Debug, Default)]
pub struct Completer {
    /// Nicks seen speaking or joining, the most recent first.
    recent: VecDeque<String>,
    /// The completion a next Tab continues, if the last key was Tab.
    cycle: Option<Cycle>,
}

#[derive(Debug)]
struct Cycle {
    /// Where the completed word starts, in bytes.
    start: usize,
    /// Where the text last put there ends (the caret), in bytes.
    end: usize,
    candidates: Vec<String>,
    /// The candidate the next Tab puts in.
    next: usize,
}

impl Completer {
    /// `nick` was just active (said something, joined).
    pub fn saw(&mut self, nick: &str) {
        // Every line said calls this: the same speaker again, the common case, costs one
        // comparison and no allocation.
        if self.recent.front().is_some_and(|last| last == nick) {
            return;
        }
        match self.recent.iter().position(|seen| seen == nick) {
            Some(at) => {
                if let Some(seen) = self.recent.remove(at) {
                    self.recent.push_front(seen);
                }
            }
            None => {
                self.recent.push_front(nick.to_owned());
                self.recent.truncate(RECENT_NICKS);
            }
        }
    }

    /// `old` is now known as `new`: it keeps its place.
    pub fn renamed(&mut self, old: &str, new: &str) {
        match self.recent.iter_mut().find(|seen| *seen == old) {
            Some(seen) => new.clone_into(seen),
            None => self.saw(new),
        }
        // The new nick may have been seen before, under it: one entry, the one kept in place.
        if let Some(at) = self.recent.iter().rposition(|seen| seen == new)
            && self.recent.iter().position(|seen| seen == new) != Some(at)
        {
            self.recent.remove(at);
        }
    }

    /// `nick` is in the room (a `/who` answer) but not known to be active: offered after the
    /// active ones.
    pub fn present(&mut self, nick: &str) {
        if !self.recent.iter().any(|seen| seen == nick) && self.recent.len() < RECENT_NICKS {
            self.recent.push_back(nick.to_owned());
        }
    }

    /// A key other than Tab: the next Tab starts afresh.
    pub fn interrupt(&mut self) {
        self.cycle = None;
    }
}

impl App {
    /// Tab: completes the word before the caret, or puts the next candidate in its place.
    pub(super) fn complete(&mut self) {
        let caret = self.input.caret();
        if let Some(cycle) = &mut self.completer.cycle
            && cycle.end == caret
            && !cycle.candidates.is_empty()
        {
            let candidate = cycle.candidates[cycle.next].clone();
            cycle.next = (cycle.next + 1) % cycle.candidates.len();
            let start = cycle.start;
            self.input.replace(start..caret, &candidate);
            cycle.end = start + candidate.len();
            return;
        }
        let line = self.input.value();
        let start = line[..caret].rfind(' ').map_or(0, |space| space + 1);
        let word = &line[start..caret];
        let candidates = self.candidates(word, start == 0);
        let Some(first) = candidates.first().cloned() else {
            self.completer.cycle = None;
            return;
        };
        self.input.replace(start..caret, &first);
        self.completer.cycle = Some(Cycle {
            start,
            end: start + first.len(),
            next: 1 % candidates.len(),
            candidates,
        });
    }

    /// What `word` may become, in the order Tab offers them, each with what follows it.
    fn candidates(&self, word: &str, line_start: bool) -> Vec<String> {
        let folded = fold(word);
        if line_start && let Some(name) = word.strip_prefix('/') {
            let mut names: Vec<&str> = COMMANDS
                .iter()
                .flat_map(|spec| std::iter::once(spec.name).chain(spec.aliases.iter().copied()))
                .chain(CLIENT_COMMANDS.iter().map(|spec| spec.name))
                .filter(|command| command.starts_with(name))
                .collect();
            names.sort_unstable();
            names.dedup();
            return names.iter().map(|name| format!("/{name} ")).collect();
        }
        if word.starts_with('#') {
            return self
                .buffers
                .iter()
                .filter(|buffer| buffer.target == Target::Room)
                .filter(|buffer| fold(&buffer.name).starts_with(&folded))
                .map(|buffer| format!("{} ", buffer.name))
                .collect();
        }
        let own = self.nick.as_deref().map(fold);
        let after = if line_start { ": " } else { " " };
        self.completer
            .recent
            .iter()
            .filter(|nick| Some(fold(nick)) != own && fold(nick).starts_with(&folded))
            .map(|nick| format!("{nick}{after}"))
            .collect()
    }
}
