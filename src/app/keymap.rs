//! The keymap in force: the one key table ([`super::keys::BINDINGS`]) with the config file's
//! `[keys]` over it, and the names keys and actions go by there.
//!
//! ```toml
//! [keys]
//! help = "F10"                  # one key: it replaces F1 and Alt-H
//! inspector = ["F6", "Alt-I"]   # or several
//! timestamps = []               # or none
//! ```
//!
//! A key given to an action is taken from whatever action had it, so no key does two things and
//! the help shows each key once. A rebound key keeps the condition its action's keys had (Ctrl-D
//! sends `exit` only on an empty line, whatever key it is). Printable keys are never bound: they
//! always type themselves. Dispatch and the help both read the keymap, so they cannot disagree.

use std::borrow::Cow;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::keys::{Action, BINDINGS, Context, Key, PAGE, When};
use crate::editbox::Edit;

/// Every action the config file can rebind, by the name it has there.
pub const ACTIONS: &[(&str, Action)] = &[
    ("send", Action::Submit),
    ("exit", Action::Exit),
    ("quit", Action::QuitNow),
    ("help", Action::Help),
    ("inspector", Action::ToggleInspector),
    ("inspector_page", Action::NextInspectorPage),
    ("timestamps", Action::ToggleTimestamps),
    ("mouse", Action::ToggleMouse),
    ("repaint", Action::Repaint),
    ("page_up", Action::PageUp),
    ("page_down", Action::PageDown),
    ("line_up", Action::LineUp),
    ("line_down", Action::LineDown),
    ("bottom", Action::ToBottom),
    ("timeline_page_up", Action::ScrollTimeline(PAGE)),
    ("timeline_page_down", Action::ScrollTimeline(-PAGE)),
    ("timeline_line_up", Action::ScrollTimeline(1)),
    ("timeline_line_down", Action::ScrollTimeline(-1)),
    ("complete", Action::Complete),
    ("buffer_1", Action::GoToBuffer(0)),
    ("buffer_2", Action::GoToBuffer(1)),
    ("buffer_3", Action::GoToBuffer(2)),
    ("buffer_4", Action::GoToBuffer(3)),
    ("buffer_5", Action::GoToBuffer(4)),
    ("buffer_6", Action::GoToBuffer(5)),
    ("buffer_7", Action::GoToBuffer(6)),
    ("buffer_8", Action::GoToBuffer(7)),
    ("buffer_9", Action::GoToBuffer(8)),
    ("previous_buffer", Action::PreviousBuffer),
    ("next_buffer", Action::NextBuffer),
    ("history_previous", Action::Edit(Edit::HistoryPrev)),
    ("history_next", Action::Edit(Edit::HistoryNext)),
    ("left", Action::Edit(Edit::Left)),
    ("right", Action::Edit(Edit::Right)),
    ("word_left", Action::Edit(Edit::WordLeft)),
    ("word_right", Action::Edit(Edit::WordRight)),
    ("line_start", Action::Edit(Edit::Home)),
    ("line_end", Action::Edit(Edit::End)),
    ("delete_back", Action::Edit(Edit::DeleteBack)),
    ("delete_forward", Action::Edit(Edit::DeleteForward)),
    ("delete_word_back", Action::Edit(Edit::DeleteWordBack)),
    ("delete_word_forward", Action::Edit(Edit::DeleteWordForward)),
    ("delete_to_start", Action::Edit(Edit::DeleteToStart)),
    ("delete_to_end", Action::Edit(Edit::DeleteToEnd)),
    ("yank", Action::Edit(Edit::Yank)),
];

/// The action the config file calls `name`.
pub fn action_named(name: &str) -> Option<Action> {
    ACTIONS
        .iter()
        .find(|(known, _)| *known == name)
        .map(|&(_, action)| action)
}

/// One key, as the config file and the help write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chord {
    /// The key (a letter in lower case: Ctrl and Alt letters match in either).
    pub code: KeyCode,
    /// Its modifiers (never Shift with a character, which carries it itself).
    pub modifiers: KeyModifiers,
}

/// Keys with a name of more than one character, as written (matched in any case).
const NAMED: &[(&str, KeyCode)] = &[
    ("Enter", KeyCode::Enter),
    ("Tab", KeyCode::Tab),
    ("Backspace", KeyCode::Backspace),
    ("Delete", KeyCode::Delete),
    ("Insert", KeyCode::Insert),
    ("Home", KeyCode::Home),
    ("End", KeyCode::End),
    ("PageUp", KeyCode::PageUp),
    ("PageDown", KeyCode::PageDown),
    ("Up", KeyCode::Up),
    ("Down", KeyCode::Down),
    ("Left", KeyCode::Left),
    ("Right", KeyCode::Right),
    ("Esc", KeyCode::Esc),
    ("Space", KeyCode::Char(' ')),
];

/// Modifier prefixes, as written (matched in any case).
const MODIFIERS: &[(&str, KeyModifiers)] = &[
    ("Ctrl-", KeyModifiers::CONTROL),
    ("Alt-", KeyModifiers::ALT),
    ("Shift-", KeyModifiers::SHIFT),
];

impl Chord {
    /// Reads a key as written in the config file: `F10`, `Alt-H`, `Ctrl-Left`, `PageUp`...
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut rest = text.trim();
        let mut modifiers = KeyModifiers::NONE;
        while let Some(&(prefix, modifier)) = MODIFIERS.iter().find(|(prefix, _)| {
            rest.len() > prefix.len()
                && rest
                    .get(..prefix.len())
                    .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
        }) {
            modifiers |= modifier;
            rest = &rest[prefix.len()..];
        }
        let code = if let Some(&(_, code)) = NAMED
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(rest))
        {
            code
        } else if let Some(n) = function_key(rest) {
            KeyCode::F(n)
        } else {
            let mut chars = rest.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if !c.is_control() => KeyCode::Char(c.to_ascii_lowercase()),
                _ => {
                    return Err(format!(
                        "{text:?} is not a key (write one like \"F10\", \"Alt-H\", \
                         \"Ctrl-Left\" or \"PageUp\")"
                    ));
                }
            }
        };
        if let KeyCode::Char(_) = code {
            modifiers -= KeyModifiers::SHIFT;
            if !modifiers.intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) {
                return Err(format!(
                    "{text:?} types itself; a key for an action needs Ctrl or Alt"
                ));
            }
        }
        Ok(Self { code, modifiers })
    }

    /// The key as the help writes it (`Alt-H`, `F10`, `Ctrl-Left`).
    pub fn name(self) -> String {
        let mut name = String::new();
        for &(prefix, modifier) in MODIFIERS {
            if self.modifiers.contains(modifier) {
                name.push_str(prefix);
            }
        }
        match self.code {
            KeyCode::F(n) => name.push_str(&format!("F{n}")),
            KeyCode::Char(' ') => name.push_str("Space"),
            KeyCode::Char(c) => name.push(c.to_ascii_uppercase()),
            code => {
                let named = NAMED.iter().find(|(_, known)| *known == code);
                name.push_str(named.map_or("?", |(written, _)| written));
            }
        }
        name
    }

    fn of(key: &Key) -> Self {
        Self {
            code: key.code,
            modifiers: key.modifiers,
        }
    }
}

/// `F1` to `F24`, in any case.
fn function_key(text: &str) -> Option<u8> {
    let digits = text.strip_prefix(['F', 'f'])?;
    let n: u8 = digits.parse().ok()?;
    (1..=24).contains(&n).then_some(n)
}

/// An action given other keys (none: it has no key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebinding {
    /// What the keys do.
    pub action: Action,
    /// The keys, in the order given; the first is the one hints name.
    pub chords: Vec<Chord>,
}

/// One row of the help: the keys, what they do, and the keys themselves.
#[derive(Debug, Clone)]
struct Row {
    keys: Cow<'static, str>,
    help: &'static str,
    chords: Vec<Key>,
}

/// The keys in force.
#[derive(Debug, Clone)]
pub struct Keymap {
    rows: Vec<Row>,
    /// The name of the first key that opens the help, for the status bar's hint (drawn every
    /// frame, so named once here).
    help_key: Option<String>,
}

/// Keys as the help lists them: `F10, Alt-I`, or `(no key)`.
pub fn names(chords: impl IntoIterator<Item = Chord>) -> String {
    let names: Vec<String> = chords.into_iter().map(Chord::name).collect();
    match names.is_empty() {
        true => "(no key)".to_owned(),
        false => names.join(", "),
    }
}

impl Default for Keymap {
    fn default() -> Self {
        Self::new(&[])
    }
}

impl Keymap {
    /// The key table with `rebindings` over it, each taking its keys from whatever had them;
    /// a later rebinding wins a key two give.
    pub fn new(rebindings: &[Rebinding]) -> Self {
        let mut rows: Vec<Row> = BINDINGS
            .iter()
            .map(|binding| Row {
                keys: Cow::Borrowed(binding.keys),
                help: binding.help,
                chords: binding.chords.to_vec(),
            })
            .collect();
        for rebinding in rebindings {
            let Some(home) = rows
                .iter()
                .position(|row| row.chords.iter().any(|k| k.action == rebinding.action))
            else {
                continue;
            };
            let when = rows[home]
                .chords
                .iter()
                .find(|k| k.action == rebinding.action)
                .map_or(When::Always, |k| k.when);
            for row in &mut rows {
                let before = row.chords.len();
                row.chords.retain(|k| {
                    k.action != rebinding.action && !rebinding.chords.contains(&Chord::of(k))
                });
                if row.chords.len() != before {
                    row.keys = Cow::Owned(String::new()); // named again below
                }
            }
            let new = rebinding.chords.iter().map(|chord| Key {
                code: chord.code,
                modifiers: chord.modifiers,
                when,
                action: rebinding.action,
            });
            rows[home].chords.splice(0..0, new);
        }
        for row in &mut rows {
            if row.keys.is_empty() {
                row.keys = Cow::Owned(names(row.chords.iter().map(Chord::of)));
            }
        }
        let mut keymap = Self {
            rows,
            help_key: None,
        };
        keymap.help_key = keymap.key_for(Action::Help);
        keymap
    }

    /// What `key` does in `context`, if anything.
    pub fn action_for(&self, key: &KeyEvent, context: Context) -> Option<Action> {
        self.rows
            .iter()
            .flat_map(|row| &row.chords)
            .find(|chord| chord.matches(key, context))
            .map(|chord| chord.action)
    }

    /// The help's rows: the keys as written, and what they do.
    pub fn help_rows(&self) -> impl Iterator<Item = (&str, &'static str)> {
        self.rows.iter().map(|row| (row.keys.as_ref(), row.help))
    }

    /// The name of the first key that opens the help, if one does.
    pub fn help_key(&self) -> Option<&str> {
        self.help_key.as_deref()
    }

    /// The name of the first key that does `action` (what a hint shows), if one does.
    pub fn key_for(&self, action: Action) -> Option<String> {
        self.rows
            .iter()
            .flat_map(|row| &row.chords)
            .find(|chord| chord.action == action)
            .map(|chord| Chord::of(chord).name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: Context = Context {
        empty_line: true,
        inspecting: false,
    };
    const TYPING: Context = Context {
        empty_line: false,
        inspecting: false,
    };

    fn chord(text: &str) -> Chord {
        Chord::parse(text).unwrap_or_else(|error| panic!("{error}"))
    }

    fn press(text: &str) -> KeyEvent {
        let chord = chord(text);
        KeyEvent::new(chord.code, chord.modifiers)
    }

    #[test]
    fn keys_are_read_in_any_case_and_named_back_as_the_help_writes_them() {
        for (written, name) in [
            ("F10", "F10"),
            ("f2", "F2"),
            ("alt-h", "Alt-H"),
            ("ALT-SHIFT-h", "Alt-H"),
            ("Ctrl-Left", "Ctrl-Left"),
            ("pageup", "PageUp"),
            ("Shift-Up", "Shift-Up"),
            ("Ctrl-Alt-x", "Ctrl-Alt-X"),
            ("Alt--", "Alt--"),
            ("Ctrl-Space", "Ctrl-Space"),
        ] {
            assert_eq!(chord(written).name(), name, "{written}");
        }
    }

    #[test]
    fn what_is_not_a_key_or_types_itself_is_refused_with_a_reason() {
        for (written, why) in [
            ("", "is not a key"),
            ("F25", "is not a key"),
            ("Hyper-X", "is not a key"),
            ("Ctrl-", "is not a key"),
            ("Alt-\u{1b}", "is not a key"),
            ("q", "types itself"),
            ("Shift-q", "types itself"),
            ("Space", "types itself"),
            ("中", "types itself"),
        ] {
            let error = Chord::parse(written).expect_err(written);
            assert!(error.contains(why), "{written:?}: {error}");
        }
    }

    #[test]
    fn a_rebound_action_leaves_its_old_keys_and_takes_the_new_from_others() {
        // F10 was nobody's; Alt-I was the inspector's.
        let keymap = Keymap::new(&[Rebinding {
            action: Action::Help,
            chords: vec![chord("F10"), chord("Alt-I")],
        }]);
        assert_eq!(keymap.action_for(&press("F10"), TYPING), Some(Action::Help));
        assert_eq!(
            keymap.action_for(&press("Alt-I"), TYPING),
            Some(Action::Help)
        );
        assert_eq!(keymap.action_for(&press("F1"), TYPING), None);
        assert_eq!(keymap.action_for(&press("Alt-H"), TYPING), None);
        // The inspector keeps F2, and the help says so.
        assert_eq!(
            keymap.action_for(&press("F2"), TYPING),
            Some(Action::ToggleInspector)
        );
        let rows: Vec<(&str, &str)> = keymap.help_rows().collect();
        assert!(rows.contains(&("F10, Alt-I", "keys.help")), "{rows:?}");
        assert!(rows.iter().any(|(keys, _)| *keys == "F2"), "{rows:?}");
        assert_eq!(keymap.key_for(Action::Help).as_deref(), Some("F10"));
        // Rows nobody touched keep their own wording.
        assert!(rows.contains(&("Ctrl-L", "keys.repaint")), "{rows:?}");
    }

    #[test]
    fn a_rebound_key_keeps_its_actions_condition_and_none_means_no_key() {
        let keymap = Keymap::new(&[
            Rebinding {
                action: Action::Exit,
                chords: vec![chord("Ctrl-Q")],
            },
            Rebinding {
                action: Action::ToggleTimestamps,
                chords: Vec::new(),
            },
        ]);
        assert_eq!(
            keymap.action_for(&press("Ctrl-Q"), EMPTY),
            Some(Action::Exit)
        );
        assert_eq!(keymap.action_for(&press("Ctrl-Q"), TYPING), None);
        // Ctrl-D is still the editor's delete while typing, and no longer exits.
        assert_eq!(
            keymap.action_for(&press("Ctrl-D"), TYPING),
            Some(Action::Edit(Edit::DeleteForward))
        );
        assert_eq!(
            keymap.action_for(&press("Ctrl-D"), EMPTY),
            Some(Action::Edit(Edit::DeleteForward))
        );
        assert_eq!(keymap.action_for(&press("F3"), TYPING), None);
        assert_eq!(keymap.key_for(Action::ToggleTimestamps), None);
        assert!(
            keymap
                .help_rows()
                .any(|row| row == ("(no key)", "keys.timestamps"))
        );
    }

    #[test]
    fn every_action_in_the_table_has_a_name_and_every_name_one_action() {
        for binding in BINDINGS {
            for key in binding.chords {
                assert!(
                    ACTIONS.iter().any(|&(_, action)| action == key.action),
                    "{:?} has no name for [keys]",
                    key.action
                );
            }
        }
        for (i, (name, _)) in ACTIONS.iter().enumerate() {
            assert!(
                ACTIONS[..i].iter().all(|(other, _)| other != name),
                "{name} twice"
            );
            assert_eq!(action_named(name), Some(ACTIONS[i].1));
        }
    }

    #[test]
    fn the_default_keymap_is_the_table() {
        let keymap = Keymap::default();
        let rows: Vec<(&str, &str)> = keymap.help_rows().collect();
        let table: Vec<(&str, &str)> = BINDINGS.iter().map(|b| (b.keys, b.help)).collect();
        assert_eq!(rows, table);
    }
}
