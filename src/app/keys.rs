//! The one key table: every key the client knows, what it does, and the help line that says so
//! (the line is a key in the catalogue, `locales/`, so the help reads in the user's language).
//! [`super::keymap::Keymap`] puts the config file's `[keys]` over it, and both dispatch and the
//! F1 help read that. Adding a key is one entry here (and its action's name in
//! [`super::keymap::ACTIONS`], which a test checks, and its line in each catalogue).
//!
//! Printable characters are not in the table: they always type themselves (so a message may
//! start with `?`). Every F-key has an Alt fallback for terminals and desktops that take the
//! F-keys (GNOME Terminal's F1, macOS media keys).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::editbox::Edit;

/// Everything a key can ask the client to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send the line typed (or start the exit if it is `exit` or `/quit`).
    Submit,
    /// Send `exit`, then wait for the server to close.
    Exit,
    /// Quit at once, without goodbyes.
    QuitNow,
    /// Open the key help.
    Help,
    /// Open or close the TCP inspector.
    ToggleInspector,
    /// Show the inspector's next page (when it shows one at a time).
    NextInspectorPage,
    /// Scroll the inspector's timeline this many entries back (negative: towards the newest),
    /// or its server page as many rows up.
    ScrollTimeline(i8),
    /// Show or hide each line's arrival time.
    ToggleTimestamps,
    /// Release the mouse to the terminal (text selection) or capture it (wheel scrolling).
    ToggleMouse,
    /// Clear the terminal and draw everything again.
    Repaint,
    /// Scroll towards older lines by a page.
    PageUp,
    /// Scroll towards newer lines by a page.
    PageDown,
    /// Scroll towards older lines by one row.
    LineUp,
    /// Scroll towards newer lines by one row.
    LineDown,
    /// Jump to the newest line and follow new ones again.
    ToBottom,
    /// Change the line being typed.
    Edit(Edit),
    /// Complete the word before the caret (again: the next candidate).
    Complete,
    /// Put buffer N on screen (from 0, as the bar numbers them from 1).
    GoToBuffer(u8),
    /// Put the buffer before this one on screen (the last after the first).
    PreviousBuffer,
    /// Put the buffer after this one on screen (the first after the last).
    NextBuffer,
}

/// When a key does what its entry says; otherwise the search goes on down the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Always.
    Always,
    /// Only while nothing is typed.
    EmptyLine,
    /// Only while the inspector is open.
    Inspecting,
}

/// What the state looks like to the keymap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    /// Nothing is typed.
    pub empty_line: bool,
    /// The inspector is open.
    pub inspecting: bool,
}

/// One key (code and modifiers), what it does, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// The key.
    pub code: KeyCode,
    /// Exactly these modifiers (Shift is ignored for characters, which carry it themselves).
    pub modifiers: KeyModifiers,
    /// When it applies.
    pub when: When,
    /// What it does.
    pub action: Action,
}

/// One line of the help and the keys it describes.
#[derive(Debug)]
pub struct Binding {
    /// The keys, as the help names them.
    pub keys: &'static str,
    /// What they do, as the help says it: its key in the catalogue.
    pub help: &'static str,
    /// The keys themselves; earlier entries win.
    pub chords: &'static [Key],
}

/// Entries Alt-PgUp/PgDn scroll the inspector's timeline: most of what a 100×30 terminal
/// shows of it.
pub(super) const PAGE: i8 = 10;

const NONE: KeyModifiers = KeyModifiers::NONE;
const CTRL: KeyModifiers = KeyModifiers::CONTROL;
const ALT: KeyModifiers = KeyModifiers::ALT;
const SHIFT: KeyModifiers = KeyModifiers::SHIFT;

const fn key(code: KeyCode, modifiers: KeyModifiers, action: Action) -> Key {
    Key {
        code,
        modifiers,
        when: When::Always,
        action,
    }
}

const fn only(when: When, key: Key) -> Key {
    Key { when, ..key }
}

const fn ch(c: char) -> KeyCode {
    KeyCode::Char(c)
}

const fn edit(code: KeyCode, modifiers: KeyModifiers, edit: Edit) -> Key {
    key(code, modifiers, Action::Edit(edit))
}

/// Every key, in the order the help lists them and dispatch searches them.
pub const BINDINGS: &[Binding] = &[
    Binding {
        keys: "Enter",
        help: "keys.send",
        chords: &[key(KeyCode::Enter, NONE, Action::Submit)],
    },
    Binding {
        keys: "Ctrl-D",
        help: "keys.exit",
        chords: &[only(When::EmptyLine, key(ch('d'), CTRL, Action::Exit))],
    },
    Binding {
        keys: "Ctrl-C",
        help: "keys.quit_now",
        chords: &[key(ch('c'), CTRL, Action::QuitNow)],
    },
    Binding {
        keys: "F1, Alt-H",
        help: "keys.help",
        chords: &[
            key(KeyCode::F(1), NONE, Action::Help),
            key(ch('h'), ALT, Action::Help),
        ],
    },
    Binding {
        keys: "F2, Alt-I",
        help: "keys.inspector",
        chords: &[
            key(KeyCode::F(2), NONE, Action::ToggleInspector),
            key(ch('i'), ALT, Action::ToggleInspector),
        ],
    },
    Binding {
        keys: "F5, Alt-N",
        help: "keys.next_page",
        chords: &[
            only(
                When::Inspecting,
                key(KeyCode::F(5), NONE, Action::NextInspectorPage),
            ),
            only(
                When::Inspecting,
                key(ch('n'), ALT, Action::NextInspectorPage),
            ),
        ],
    },
    Binding {
        keys: "F3, Alt-T",
        help: "keys.timestamps",
        chords: &[
            key(KeyCode::F(3), NONE, Action::ToggleTimestamps),
            key(ch('t'), ALT, Action::ToggleTimestamps),
        ],
    },
    Binding {
        keys: "F4, Alt-M",
        help: "keys.mouse",
        chords: &[
            key(KeyCode::F(4), NONE, Action::ToggleMouse),
            key(ch('m'), ALT, Action::ToggleMouse),
        ],
    },
    Binding {
        keys: "Ctrl-L",
        help: "keys.repaint",
        chords: &[key(ch('l'), CTRL, Action::Repaint)],
    },
    Binding {
        keys: "PageUp/PageDown",
        help: "keys.page",
        chords: &[
            key(KeyCode::PageUp, NONE, Action::PageUp),
            key(KeyCode::PageDown, NONE, Action::PageDown),
            only(
                When::Inspecting,
                key(KeyCode::PageUp, ALT, Action::ScrollTimeline(PAGE)),
            ),
            only(
                When::Inspecting,
                key(KeyCode::PageDown, ALT, Action::ScrollTimeline(-PAGE)),
            ),
        ],
    },
    Binding {
        keys: "Shift-Up/Down",
        help: "keys.line",
        chords: &[
            key(KeyCode::Up, SHIFT, Action::LineUp),
            key(KeyCode::Down, SHIFT, Action::LineDown),
            only(
                When::Inspecting,
                key(KeyCode::Up, ALT, Action::ScrollTimeline(1)),
            ),
            only(
                When::Inspecting,
                key(KeyCode::Down, ALT, Action::ScrollTimeline(-1)),
            ),
        ],
    },
    Binding {
        keys: "Ctrl-End, End",
        help: "keys.bottom",
        chords: &[
            key(KeyCode::End, CTRL, Action::ToBottom),
            only(When::EmptyLine, key(KeyCode::End, NONE, Action::ToBottom)),
        ],
    },
    Binding {
        keys: "Alt-1..9, Ctrl-P/N",
        help: "keys.buffers",
        chords: &[
            key(ch('1'), ALT, Action::GoToBuffer(0)),
            key(ch('2'), ALT, Action::GoToBuffer(1)),
            key(ch('3'), ALT, Action::GoToBuffer(2)),
            key(ch('4'), ALT, Action::GoToBuffer(3)),
            key(ch('5'), ALT, Action::GoToBuffer(4)),
            key(ch('6'), ALT, Action::GoToBuffer(5)),
            key(ch('7'), ALT, Action::GoToBuffer(6)),
            key(ch('8'), ALT, Action::GoToBuffer(7)),
            key(ch('9'), ALT, Action::GoToBuffer(8)),
            key(ch('p'), CTRL, Action::PreviousBuffer),
            key(ch('n'), CTRL, Action::NextBuffer),
            key(KeyCode::Left, ALT, Action::PreviousBuffer),
            key(KeyCode::Right, ALT, Action::NextBuffer),
        ],
    },
    Binding {
        keys: "Tab",
        help: "keys.complete",
        chords: &[key(KeyCode::Tab, NONE, Action::Complete)],
    },
    Binding {
        keys: "Up/Down",
        help: "keys.history",
        chords: &[
            edit(KeyCode::Up, NONE, Edit::HistoryPrev),
            edit(KeyCode::Down, NONE, Edit::HistoryNext),
        ],
    },
    Binding {
        keys: "Left/Right, Ctrl-B/F",
        help: "keys.character",
        chords: &[
            edit(KeyCode::Left, NONE, Edit::Left),
            edit(KeyCode::Right, NONE, Edit::Right),
            edit(ch('b'), CTRL, Edit::Left),
            edit(ch('f'), CTRL, Edit::Right),
        ],
    },
    Binding {
        keys: "Alt-B/F, Ctrl-Left/Right",
        help: "keys.word",
        chords: &[
            edit(ch('b'), ALT, Edit::WordLeft),
            edit(ch('f'), ALT, Edit::WordRight),
            edit(KeyCode::Left, CTRL, Edit::WordLeft),
            edit(KeyCode::Right, CTRL, Edit::WordRight),
        ],
    },
    Binding {
        keys: "Home/End, Ctrl-A/E",
        help: "keys.home_end",
        chords: &[
            edit(KeyCode::Home, NONE, Edit::Home),
            edit(KeyCode::End, NONE, Edit::End),
            edit(ch('a'), CTRL, Edit::Home),
            edit(ch('e'), CTRL, Edit::End),
        ],
    },
    Binding {
        keys: "Backspace, Delete",
        help: "keys.delete_character",
        chords: &[
            edit(KeyCode::Backspace, NONE, Edit::DeleteBack),
            edit(KeyCode::Delete, NONE, Edit::DeleteForward),
            edit(ch('h'), CTRL, Edit::DeleteBack),
            edit(ch('d'), CTRL, Edit::DeleteForward),
        ],
    },
    Binding {
        keys: "Ctrl-W, Alt-D",
        help: "keys.delete_word",
        chords: &[
            edit(ch('w'), CTRL, Edit::DeleteWordBack),
            edit(KeyCode::Backspace, ALT, Edit::DeleteWordBack),
            edit(KeyCode::Backspace, CTRL, Edit::DeleteWordBack),
            edit(ch('d'), ALT, Edit::DeleteWordForward),
        ],
    },
    Binding {
        // One row for the three, so the whole help fits 80×24 without its border.
        keys: "Ctrl-U/K, Ctrl-Y",
        help: "keys.delete_to_ends",
        chords: &[
            edit(ch('u'), CTRL, Edit::DeleteToStart),
            edit(ch('k'), CTRL, Edit::DeleteToEnd),
            edit(ch('y'), CTRL, Edit::Yank),
        ],
    },
];

/// What is not a key but belongs in the help beside them (what is typed, the catalogue's key).
pub const TYPED: &[(&str, &str)] = &[("exit, /quit", "keys.typed_exit")];

impl Key {
    /// Whether `key`, pressed in `context`, is this one.
    pub(super) fn matches(&self, key: &KeyEvent, context: Context) -> bool {
        let modifiers = match key.code {
            KeyCode::Char(_) => key.modifiers - KeyModifiers::SHIFT,
            _ => key.modifiers,
        };
        let applies = match self.when {
            When::Always => true,
            When::EmptyLine => context.empty_line,
            When::Inspecting => context.inspecting,
        };
        self.code == normalised(key.code) && self.modifiers == modifiers && applies
    }
}

/// Letters with Ctrl or Alt arrive in either case depending on the terminal and Shift.
fn normalised(code: KeyCode) -> KeyCode {
    match code {
        KeyCode::Char(c) => KeyCode::Char(c.to_ascii_lowercase()),
        other => other,
    }
}

/// Whether `key` types a character into the line: printable, and no Ctrl or Alt.
pub fn typed_char(key: &KeyEvent) -> Option<char> {
    match key.code {
        KeyCode::Char(c) if !key.modifiers.intersects(CTRL | ALT) => Some(c),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::{Language, tr};

    /// What `key` does in `context` with the table as it is.
    fn action_for(key: &KeyEvent, context: Context) -> Option<Action> {
        super::super::keymap::Keymap::default().action_for(key, context)
    }

    const TYPING: Context = Context {
        empty_line: false,
        inspecting: false,
    };
    const EMPTY: Context = Context {
        empty_line: true,
        inspecting: false,
    };

    fn press(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn context_decides_between_entries_for_the_same_key() {
        let ctrl_d = press(ch('d'), CTRL);
        assert_eq!(action_for(&ctrl_d, EMPTY), Some(Action::Exit));
        assert_eq!(
            action_for(&ctrl_d, TYPING),
            Some(Action::Edit(Edit::DeleteForward))
        );
        let end = press(KeyCode::End, NONE);
        assert_eq!(action_for(&end, EMPTY), Some(Action::ToBottom));
        assert_eq!(action_for(&end, TYPING), Some(Action::Edit(Edit::End)));
        let f5 = press(KeyCode::F(5), NONE);
        assert_eq!(action_for(&f5, EMPTY), None);
    }

    #[test]
    fn printable_keys_type_even_question_marks_and_shifted_letters() {
        for key in [
            press(ch('?'), SHIFT),
            press(ch('Q'), SHIFT),
            press(ch('q'), NONE),
        ] {
            assert_eq!(action_for(&key, EMPTY), None, "{key:?}");
            assert!(typed_char(&key).is_some(), "{key:?}");
        }
        assert_eq!(typed_char(&press(ch('w'), CTRL)), None);
    }

    #[test]
    fn ctrl_letters_match_in_either_case_and_every_f_key_has_a_fallback() {
        assert_eq!(
            action_for(&press(ch('L'), CTRL | SHIFT), TYPING),
            Some(Action::Repaint)
        );
        for binding in BINDINGS {
            let f_keys = binding
                .chords
                .iter()
                .filter(|k| matches!(k.code, KeyCode::F(_)))
                .count();
            let fallbacks = binding.chords.len() - f_keys;
            assert!(f_keys == 0 || fallbacks > 0, "{}", binding.keys);
        }
    }

    #[test]
    fn buffers_are_switched_by_number_and_in_turn() {
        let alt = |c| press(ch(c), ALT);
        assert_eq!(action_for(&alt('1'), TYPING), Some(Action::GoToBuffer(0)));
        assert_eq!(action_for(&alt('9'), EMPTY), Some(Action::GoToBuffer(8)));
        assert_eq!(action_for(&alt('0'), EMPTY), None);
        for (key, action) in [
            (press(ch('p'), CTRL), Action::PreviousBuffer),
            (press(ch('n'), CTRL), Action::NextBuffer),
            (press(KeyCode::Left, ALT), Action::PreviousBuffer),
            (press(KeyCode::Right, ALT), Action::NextBuffer),
        ] {
            assert_eq!(action_for(&key, TYPING), Some(action), "{key:?}");
        }
        assert_eq!(typed_char(&alt('1')), None, "Alt-1 types nothing");
        // Alt-N stays the inspector's next page while it is open.
        let inspecting = Context {
            inspecting: true,
            ..EMPTY
        };
        assert_eq!(
            action_for(&alt('n'), inspecting),
            Some(Action::NextInspectorPage)
        );
    }

    #[test]
    fn the_readme_lists_the_keys_as_the_help_does() {
        let readme = include_str!("../../README.md");
        let table: Vec<&str> = readme
            .lines()
            .skip_while(|line| *line != "| key | does |")
            .skip(2)
            .take_while(|line| line.starts_with('|'))
            .collect();
        let help: Vec<String> = BINDINGS
            .iter()
            .map(|b| (b.keys, b.help))
            .chain(TYPED.iter().copied())
            .map(|(keys, help)| format!("| {keys} | {} |", tr!(Language::English, help)))
            .collect();
        assert_eq!(table, help, "README.md's key table differs from the keymap");
    }

    #[test]
    fn no_entry_is_shadowed_by_an_earlier_one() {
        let contexts = [
            EMPTY,
            TYPING,
            Context {
                inspecting: true,
                ..EMPTY
            },
        ];
        let chords: Vec<&Key> = BINDINGS.iter().flat_map(|b| b.chords).collect();
        for (i, chord) in chords.iter().enumerate() {
            let event = press(chord.code, chord.modifiers);
            let reachable = contexts
                .iter()
                .filter(|&&context| chord.matches(&event, context))
                .any(|&context| action_for(&event, context) == Some(chord.action));
            assert!(reachable, "entry {i} ({chord:?}) can never be reached");
        }
    }
}
