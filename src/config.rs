//! The config file, `$XDG_CONFIG_HOME/tcpchat/config.toml` (or `--config FILE`): defaults for
//! the flags, and the few settings that have none (timestamps, mouse).
//!
//! A setting that has a flag becomes that flag, placed before the command line's own, and is
//! checked by clap as the flag would be; so a value is valid in the file exactly when it is
//! valid on the command line, and the flags win because one given there is never taken from
//! the file. What cannot be used is reported with the file, the line and the key — an unknown
//! key, a wrong type, a value clap refuses, a file that is a directory, too large or not UTF-8
//! — and the program starts with the rest. (The TUI shows these as notes in the scrollback,
//! where the alternate screen cannot hide them.)
//!
//! ```toml
//! nick = "alice"
//! server = "chat.example.org:8888"   # joined when no HOST:PORT is given
//! scrollback = 20000
//! bell = false
//! theme = "light"
//! timestamps = true
//!
//! [serve]                            # defaults for --serve and the room local mode hosts
//! max_clients = 200
//! op = ["root"]
//! cluster = "redis://10.0.0.5:6379"  # --serve alone: a node of several (with node)
//! node = "n1"
//!
//! [keys]                             # actions given other keys (crate::app::keymap)
//! help = "F10"
//! inspector = ["F6", "Alt-I"]
//! ```

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};
use toml::de::{DeTable, DeValue};

use crate::app::keymap::{self, Chord, Rebinding};
use crate::cli::Cli;

/// A larger file is refused unread: a config file is a few lines.
pub const MAX_BYTES: u64 = 1024 * 1024;

/// Settings that are client flags: key, flag, kind, the flag's id in [`Cli`].
const CLIENT_KEYS: &[(&str, &str, Kind, &str)] = &[
    ("nick", "--nick", Kind::Text, "nick"),
    ("server", "", Kind::Text, "target"),
    ("scrollback", "--scrollback", Kind::Number, "scrollback"),
    ("bell", "--no-bell", Kind::Negated, "no_bell"),
    ("log", "--log", Kind::Switch, "log"),
    ("theme", "--theme", Kind::Text, "theme"),
    ("language", "--lang", Kind::Text, "lang"),
    ("tls", "--tls", Kind::Switch, "tls"),
    ("tls_ca", "--tls-ca", Kind::Text, "tls_ca"),
    ("data_dir", "--data-dir", Kind::Text, "data_dir"),
];

/// Settings with no flag.
const PREFERENCE_KEYS: &[&str] = &["timestamps", "mouse"];

/// Settings under `[serve]`: key, flag, kind (the flag's id in [`Cli`] is the key, but for
/// `history` and `op`, see [`serve_id`]).
const SERVE_KEYS: &[(&str, &str, Kind)] = &[
    ("listen", "--listen", Kind::Text),
    ("mode", "--mode", Kind::Text),
    ("max_line", "--max-line", Kind::Number),
    ("max_clients", "--max-clients", Kind::Number),
    ("outbox", "--outbox", Kind::Number),
    ("outbox_bytes", "--outbox-bytes", Kind::Number),
    ("flood_rate", "--flood-rate", Kind::Number),
    ("flood_burst", "--flood-burst", Kind::Number),
    ("line_timeout", "--line-timeout", Kind::Number),
    ("keepalive", "--keepalive", Kind::Number),
    ("announce_up_to", "--announce-up-to", Kind::Number),
    ("rooms_per_client", "--rooms-per-client", Kind::Number),
    ("max_rooms", "--max-rooms", Kind::Number),
    ("room_members", "--room-members", Kind::Number),
    ("history", "--history", Kind::Number),
    ("retain", "--retain", Kind::Number),
    ("retain_lines", "--retain-lines", Kind::Number),
    ("op", "--op", Kind::List),
    ("password_file", "--password-file", Kind::Text),
    ("max_per_address", "--max-per-address", Kind::Number),
    ("new_per_minute", "--new-per-minute", Kind::Number),
    ("allow", "--allow", Kind::List),
    ("deny", "--deny", Kind::List),
    ("quiet", "--quiet", Kind::Switch),
    ("tls", "--tls", Kind::Switch),
    ("tls_cert", "--tls-cert", Kind::Text),
    ("tls_key", "--tls-key", Kind::Text),
    (
        "tls_handshake_timeout",
        "--tls-handshake-timeout",
        Kind::Number,
    ),
    ("log_file", "--log-file", Kind::Text),
    ("cluster", "--cluster", Kind::Text),
    ("node", "--node", Kind::Text),
];

/// `[serve]` settings for `--serve` alone, not the room local mode hosts (a cluster node is a
/// headless server).
const HEADLESS_ONLY: &[&str] = &["cluster", "node"];

/// A valid value of each flag that needs another beside it, to check one alone: `--cluster`
/// and `--node` need each other. (Given only one of them, clap's own refusal at resolution
/// says which is missing.)
const PARTNERS: &[(&str, [&str; 2])] = &[
    ("cluster", ["--node", "n"]),
    ("node", ["--cluster", "redis://127.0.0.1:6379"]),
];

/// The id in [`Cli`] of the flag `[serve]`'s `key` stands for.
fn serve_id(key: &str) -> &str {
    match key {
        "history" => "replay",
        "op" => "operators",
        key => key,
    }
}

/// What a setting's value must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A string, given as the flag's value.
    Text,
    /// An integer or a float, given as the flag's value.
    Number,
    /// `true` gives the flag; `false` does not.
    Switch,
    /// `false` gives the flag (`bell = false` is `--no-bell`).
    Negated,
    /// An array of strings: the flag once per entry.
    List,
}

/// One setting the file gives as flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileArgs {
    /// The key, as written (`serve.max_clients`).
    pub key: String,
    /// Its line in the file, from 1.
    pub line: usize,
    /// The flag's id in [`Cli`] (`max_clients`), or `target` for `server`.
    pub id: String,
    /// Whether it is a `[serve]` setting.
    pub serve: bool,
    /// The arguments it stands for.
    pub args: Vec<String>,
}

/// The settings that have no flag.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Preferences {
    /// Show each line's arrival time from the start.
    pub timestamps: Option<bool>,
    /// Capture the mouse from the start (the wheel scrolls; selecting text needs F4).
    pub mouse: Option<bool>,
}

/// One `[keys]` entry: an action given other keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySetting {
    /// The action's name, as written (`help`).
    pub name: String,
    /// The line (from 1).
    pub line: usize,
    /// What it does to the keymap.
    pub rebinding: Rebinding,
}

/// What the file says, and what in it could not be used.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The file read, if there was one.
    pub path: Option<PathBuf>,
    /// The settings that are flags.
    pub args: Vec<FileArgs>,
    /// The settings that are not.
    pub preferences: Preferences,
    /// `[keys]`, in the file's order.
    pub keys: Vec<KeySetting>,
    /// `FILE:LINE: key: what is wrong`, one per problem.
    pub problems: Vec<String>,
}

/// The command line, with the config file's settings placed under it.
#[derive(Debug)]
pub struct Resolved {
    /// The settings in force.
    pub cli: Cli,
    /// What the file said, and its problems.
    pub loaded: Loaded,
    /// The parsed arguments, for `--print-config`.
    matches: ArgMatches,
    /// The flags the file gave: id → (key, line).
    from_file: HashMap<String, (String, usize)>,
}

/// Parses `args` (the program's name first) with the config file's settings under them: a
/// flag on the command line wins over the file; `[serve]` settings apply where a server runs
/// (`--serve`, or local mode's room), client settings where the TUI does; `server` only when
/// no address to join or host is given.
pub fn resolve(args: &[OsString]) -> Result<Resolved, clap::Error> {
    let first = Cli::command().try_get_matches_from(args)?;
    let given = Cli::from_arg_matches(&first)?;
    let Some(path) = path(given.config.as_deref()) else {
        return Ok(Resolved {
            cli: given,
            loaded: Loaded::default(),
            matches: first,
            from_file: HashMap::new(),
        });
    };
    let mut loaded = load(&path);
    let on_line = |id: &str| first.value_source(id) == Some(ValueSource::CommandLine);
    let joins_default = !given.serve && given.target.is_none() && !on_line("local");
    let takes_server = joins_default && loaded.args.iter().any(|a| a.id == "target");
    let hosts = given.serve || (given.target.is_none() && !takes_server);
    let mut injected: Vec<OsString> = Vec::new();
    let mut from_file = HashMap::new();
    for setting in &loaded.args {
        let applies = if setting.serve {
            hosts && (given.serve || !HEADLESS_ONLY.contains(&setting.id.as_str()))
        } else if setting.id == "target" {
            joins_default
        } else {
            !given.serve || setting.id == "data_dir"
        };
        if on_line(&setting.id) || !applies {
            continue;
        }
        injected.extend(setting.args.iter().map(OsString::from));
        from_file.insert(setting.id.clone(), (setting.key.clone(), setting.line));
    }
    let mut argv: Vec<OsString> = args.iter().take(1).cloned().collect();
    argv.extend(injected);
    argv.extend(args.iter().skip(1).cloned());
    match Cli::command().try_get_matches_from(&argv) {
        Ok(matches) => Ok(Resolved {
            cli: Cli::from_arg_matches(&matches)?,
            loaded,
            matches,
            from_file,
        }),
        Err(error) => {
            let rendered = error.to_string();
            let why = rendered.lines().next().unwrap_or_default();
            loaded.problems.push(format!(
                "{}: its settings do not go with the command line ({why}); not used",
                path.display()
            ));
            Ok(Resolved {
                cli: given,
                loaded,
                matches: first,
                from_file: HashMap::new(),
            })
        }
    }
}

impl Resolved {
    /// `--print-config`: every setting in force and where it came from, then the file's
    /// problems.
    pub fn describe(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let file = self.loaded.path.as_ref().map_or_else(
            || "none (no config file)".to_owned(),
            |path| path.display().to_string(),
        );
        let _ = writeln!(out, "config file: {file}");
        let command = Cli::command();
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            if ["help", "version", "print_config", "config"].contains(&id) {
                continue;
            }
            let name = arg
                .get_long()
                .map_or_else(|| id.to_uppercase(), |long| format!("--{long}"));
            let value = self
                .matches
                .get_raw(id)
                .map(|raw| {
                    raw.map(|v| v.to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            let source = match (self.from_file.get(id), self.matches.value_source(id)) {
                (Some((key, line)), _) => format!("config file, line {line} ({key})"),
                (None, Some(ValueSource::CommandLine)) => "command line".to_owned(),
                (None, Some(ValueSource::DefaultValue)) => "default".to_owned(),
                (None, Some(ValueSource::EnvVariable)) => "environment".to_owned(),
                (None, _) => "not set".to_owned(),
            };
            let value = if value.is_empty() { "-" } else { &value };
            let _ = writeln!(out, "{name:<22} {value:<24} {source}");
        }
        let preferences = self.loaded.preferences;
        let show = |on: Option<bool>, default: &str| {
            on.map_or_else(
                || format!("{default:<24} default"),
                |on| format!("{on:<24} config file"),
            )
        };
        let _ = writeln!(
            out,
            "{:<22} {}",
            "timestamps",
            show(preferences.timestamps, "false")
        );
        let _ = writeln!(out, "{:<22} {}", "mouse", show(preferences.mouse, "true"));
        for key in &self.loaded.keys {
            let keys = keymap::names(key.rebinding.chords.iter().copied());
            let name = format!("keys.{}", key.name);
            let _ = writeln!(out, "{name:<22} {keys:<24} config file, line {}", key.line);
        }
        for problem in &self.loaded.problems {
            let _ = writeln!(out, "problem: {problem}");
        }
        out
    }
}

/// The config file: `explicit` (`--config`), else the default one if it exists.
pub fn path(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(explicit) = explicit {
        return Some(explicit.to_owned());
    }
    let default = directories::ProjectDirs::from("", "", "tcpchat")?
        .config_dir()
        .join("config.toml");
    default.exists().then_some(default)
}

/// Reads the config file at `path`.
pub fn load(path: &Path) -> Loaded {
    let mut loaded = Loaded {
        path: Some(path.to_owned()),
        ..Loaded::default()
    };
    let shown = path.display().to_string();
    let text = match read(path) {
        Ok(text) => text,
        Err(problem) => {
            loaded.problems.push(format!("{shown}: {problem}"));
            return loaded;
        }
    };
    let table = match DeTable::parse(&text) {
        Ok(table) => table,
        Err(error) => {
            let line = error.span().map_or(1, |span| line_of(&text, span.start));
            let message = error.message().trim().to_owned();
            loaded.problems.push(format!("{shown}:{line}: {message}"));
            return loaded;
        }
    };
    let problem = |line: usize, key: &str, what: &str| format!("{shown}:{line}: {key}: {what}");
    let mut problems: Vec<(usize, String)> = Vec::new();
    for (key, value) in table.get_ref() {
        let name = key.get_ref().as_ref();
        let line = line_of(&text, key.span().start);
        if name == "serve" {
            let DeValue::Table(serve) = value.get_ref() else {
                problems.push((line, problem(line, name, "must be a table ([serve])")));
                continue;
            };
            for (key, value) in serve {
                let inner = key.get_ref().as_ref();
                let line = line_of(&text, key.span().start);
                let full = format!("serve.{inner}");
                match SERVE_KEYS.iter().find(|(known, _, _)| *known == inner) {
                    Some(&(_, flag, kind)) => match file_args(flag, kind, value.get_ref()) {
                        Ok(args) => loaded.args.push(FileArgs {
                            key: full,
                            line,
                            id: serve_id(inner).to_owned(),
                            serve: true,
                            args,
                        }),
                        Err(what) => problems.push((line, problem(line, &full, &what))),
                    },
                    None => problems.push((line, problem(line, &full, "not a setting; ignored"))),
                }
            }
            continue;
        }
        if name == "keys" {
            let DeValue::Table(keys) = value.get_ref() else {
                problems.push((line, problem(line, name, "must be a table ([keys])")));
                continue;
            };
            for (key, value) in keys {
                let inner = key.get_ref().as_ref();
                let line = line_of(&text, key.span().start);
                let full = format!("keys.{inner}");
                match rebinding(inner, value.get_ref()) {
                    Ok(rebinding) => loaded.keys.push(KeySetting {
                        name: inner.to_owned(),
                        line,
                        rebinding,
                    }),
                    Err(what) => problems.push((line, problem(line, &full, &what))),
                }
            }
            continue;
        }
        if PREFERENCE_KEYS.contains(&name) {
            match value.get_ref().as_bool() {
                Some(on) if name == "timestamps" => loaded.preferences.timestamps = Some(on),
                Some(on) => loaded.preferences.mouse = Some(on),
                None => problems.push((line, problem(line, name, "must be true or false"))),
            }
            continue;
        }
        match CLIENT_KEYS.iter().find(|(known, _, _, _)| *known == name) {
            Some(&(_, flag, kind, id)) => match file_args(flag, kind, value.get_ref()) {
                Ok(args) => loaded.args.push(FileArgs {
                    key: name.to_owned(),
                    line,
                    id: id.to_owned(),
                    serve: false,
                    args,
                }),
                Err(what) => problems.push((line, problem(line, name, &what))),
            },
            None => problems.push((line, problem(line, name, "not a setting; ignored"))),
        }
    }
    problems.extend(check_with_clap(&mut loaded, &shown));
    // The file's order, whatever order the parser kept its keys in.
    loaded.args.sort_by_key(|setting| setting.line);
    loaded.keys.sort_by_key(|setting| setting.line);
    problems.extend(shared_keys(&loaded.keys, &shown));
    problems.sort_by_key(|(line, _)| *line);
    loaded.problems = problems.into_iter().map(|(_, problem)| problem).collect();
    loaded
}

/// The file's text, or why it cannot be had.
fn read(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|error| format!("cannot read it: {error}"))?;
    if meta.is_dir() {
        return Err("is a directory, not a file".to_owned());
    }
    if meta.len() > MAX_BYTES {
        return Err(format!(
            "is {} bytes; a config file is at most {MAX_BYTES}: not read",
            meta.len()
        ));
    }
    let bytes = std::fs::read(path).map_err(|error| format!("cannot read it: {error}"))?;
    String::from_utf8(bytes).map_err(|error| {
        format!(
            "is not UTF-8 (at byte {}): not read",
            error.utf8_error().valid_up_to()
        )
    })
}

/// The arguments a value stands for, as `flag` of `kind` takes them.
fn file_args(flag: &str, kind: Kind, value: &DeValue<'_>) -> Result<Vec<String>, String> {
    let scalar = |value: &DeValue<'_>| match value {
        DeValue::String(text) => Some(text.to_string()),
        DeValue::Integer(number) => Some(number.to_string()),
        DeValue::Float(number) => Some(number.to_string()),
        _ => None,
    };
    let with_flag = |value: String| {
        if flag.is_empty() {
            vec![value]
        } else {
            vec![format!("{flag}={value}")]
        }
    };
    match kind {
        Kind::Text => match value {
            DeValue::String(text) => Ok(with_flag(text.to_string())),
            _ => Err("must be a string".to_owned()),
        },
        Kind::Number => match value {
            DeValue::Integer(_) | DeValue::Float(_) => {
                Ok(with_flag(scalar(value).unwrap_or_default()))
            }
            _ => Err("must be a number".to_owned()),
        },
        Kind::Switch | Kind::Negated => match value.as_bool() {
            Some(on) if on == (kind == Kind::Switch) => Ok(vec![flag.to_owned()]),
            Some(_) => Ok(Vec::new()),
            None => Err("must be true or false".to_owned()),
        },
        Kind::List => match value {
            DeValue::Array(items) => items
                .iter()
                .map(|item| match item.get_ref() {
                    DeValue::String(text) => Ok(format!("{flag}={text}")),
                    _ => Err("must be an array of strings".to_owned()),
                })
                .collect(),
            _ => Err("must be an array of strings".to_owned()),
        },
    }
}

/// The `[keys]` entry `name = value`: an action and the keys it is given.
fn rebinding(name: &str, value: &DeValue<'_>) -> Result<Rebinding, String> {
    let action = keymap::action_named(name)
        .ok_or_else(|| format!("not an action; ignored (the actions: {})", action_list()))?;
    let written: Vec<&str> = match value {
        DeValue::String(text) => vec![text.as_ref()],
        DeValue::Array(items) => items
            .iter()
            .map(|item| match item.get_ref() {
                DeValue::String(text) => Ok(text.as_ref()),
                _ => Err("must be a key or an array of keys (strings)".to_owned()),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err("must be a key or an array of keys (strings)".to_owned()),
    };
    let chords = written
        .iter()
        .map(|text| Chord::parse(text))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|why| format!("{why}; the default keys kept"))?;
    if chords.is_empty() && action == crate::app::keys::Action::QuitNow {
        return Err("quit must keep a key (it is the way out); the default kept".to_owned());
    }
    Ok(Rebinding { action, chords })
}

/// The actions' names, for the message about one that is not.
fn action_list() -> String {
    let names: Vec<&str> = keymap::ACTIONS.iter().map(|(name, _)| *name).collect();
    names.join(", ")
}

/// A key given to two actions: the later has it, and the earlier's line says so.
fn shared_keys(keys: &[KeySetting], shown: &str) -> Vec<(usize, String)> {
    let mut problems = Vec::new();
    for (i, later) in keys.iter().enumerate() {
        for chord in &later.rebinding.chords {
            if let Some(earlier) = keys[..i]
                .iter()
                .find(|earlier| earlier.rebinding.chords.contains(chord))
            {
                let what = format!(
                    "{} is given to keys.{} too (line {}), which has it",
                    chord.name(),
                    later.name,
                    later.line
                );
                let line = earlier.line;
                problems.push((
                    line,
                    format!("{shown}:{line}: keys.{}: {what}", earlier.name),
                ));
            }
        }
    }
    problems
}

/// Each setting alone through clap, as its flag would be: a value clap refuses is dropped, and
/// returned as a problem with its line.
fn check_with_clap(loaded: &mut Loaded, shown: &str) -> Vec<(usize, String)> {
    let mut problems = Vec::new();
    let mut kept = Vec::new();
    for setting in std::mem::take(&mut loaded.args) {
        let mut argv = vec!["tcpchat".to_owned()];
        if setting.serve {
            argv.push("--serve".to_owned());
        }
        argv.extend(setting.args.iter().cloned());
        if let Some((_, partner)) = PARTNERS.iter().find(|(id, _)| *id == setting.id) {
            argv.extend(partner.iter().map(|arg| (*arg).to_owned()));
        }
        match Cli::command().try_get_matches_from(&argv) {
            Ok(_) => kept.push(setting),
            Err(error) => {
                let rendered = error.to_string();
                let first = rendered
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim_start_matches("error: ");
                let problem = format!("{shown}:{}: {}: {first}", setting.line, setting.key);
                problems.push((setting.line, problem));
            }
        }
    }
    loaded.args = kept;
    problems
}

/// The line (from 1) of byte `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded(text: &str) -> Loaded {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        std::fs::write(&file, text).unwrap();
        load(&file)
    }

    #[test]
    fn settings_become_flags_and_every_problem_names_its_line_and_key() {
        let loaded = loaded(
            "nick = \"alice\"\n\
             scrollback = 500\n\
             bell = false\n\
             colour = \"blue\"\n\
             timestamps = \"yes\"\n\
             mouse = false\n\
             \n\
             [serve]\n\
             max_clients = 0\n\
             op = [\"root\", \"admin\"]\n\
             retain = \"forever\"\n",
        );
        let args: Vec<(&str, Vec<String>)> = loaded
            .args
            .iter()
            .map(|a| (a.key.as_str(), a.args.clone()))
            .collect();
        assert_eq!(
            args,
            [
                ("nick", vec!["--nick=alice".to_owned()]),
                ("scrollback", vec!["--scrollback=500".to_owned()]),
                ("bell", vec!["--no-bell".to_owned()]),
                (
                    "serve.op",
                    vec!["--op=root".to_owned(), "--op=admin".to_owned()]
                ),
            ]
        );
        assert_eq!(loaded.preferences.mouse, Some(false));
        assert_eq!(loaded.preferences.timestamps, None);
        let problems: Vec<&str> = loaded
            .problems
            .iter()
            .map(|p| p.split_once("config.toml:").unwrap().1)
            .collect();
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert_eq!(problems[0], "4: colour: not a setting; ignored");
        assert_eq!(problems[1], "5: timestamps: must be true or false");
        assert!(
            problems[2].starts_with("9: serve.max_clients: invalid value '0'"),
            "clap's own check: {problems:#?}"
        );
        assert_eq!(problems[3], "11: serve.retain: must be a number");
    }

    #[test]
    fn a_cluster_node_can_be_set_up_in_the_file_and_each_half_is_checked() {
        let loaded = loaded(
            "[serve]\n\
             cluster = \"redis://127.0.0.1:6390\"\n\
             node = \"n1\"\n",
        );
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        let keys: Vec<&str> = loaded.args.iter().map(|a| a.key.as_str()).collect();
        assert_eq!(keys, ["serve.cluster", "serve.node"]);
        let loaded = loaded_text_problems(
            "[serve]\n\
             cluster = \"rediss://127.0.0.1:6390\"\n\
             node = \"no spaces\"\n",
        );
        assert_eq!(loaded.len(), 2, "{loaded:#?}");
        assert!(loaded[0].starts_with("2: serve.cluster: "), "{loaded:#?}");
        assert!(loaded[1].starts_with("3: serve.node: "), "{loaded:#?}");
    }

    fn loaded_text_problems(text: &str) -> Vec<String> {
        loaded(text)
            .problems
            .iter()
            .map(|p| p.split_once("config.toml:").unwrap().1.to_owned())
            .collect()
    }

    #[test]
    fn keys_rebind_actions_and_every_bad_entry_is_a_problem_with_its_line() {
        let loaded = loaded(
            "[keys]\n\
             help = \"F10\"\n\
             inspector = [\"F6\", \"Alt-I\"]\n\
             timestamps = []\n\
             dance = \"F7\"\n\
             mouse = \"m\"\n\
             repaint = 5\n\
             quit = []\n\
             exit = \"F6\"\n\
             complete = \"\"\n",
        );
        let keys: Vec<(&str, usize, Vec<String>)> = loaded
            .keys
            .iter()
            .map(|k| {
                let names = k.rebinding.chords.iter().map(|c| c.name()).collect();
                (k.name.as_str(), k.line, names)
            })
            .collect();
        assert_eq!(
            keys,
            [
                ("help", 2, vec!["F10".to_owned()]),
                ("inspector", 3, vec!["F6".to_owned(), "Alt-I".to_owned()]),
                ("timestamps", 4, vec![]),
                ("exit", 9, vec!["F6".to_owned()]),
            ]
        );
        let problems: Vec<&str> = loaded
            .problems
            .iter()
            .map(|p| p.split_once("config.toml:").unwrap().1)
            .collect();
        assert_eq!(problems.len(), 6, "{problems:#?}");
        for (problem, starts) in problems.iter().zip([
            "3: keys.inspector: F6 is given to keys.exit too (line 9), which has it",
            "5: keys.dance: not an action; ignored (the actions: send, exit, quit",
            "6: keys.mouse: \"m\" types itself; a key for an action needs Ctrl or Alt",
            "7: keys.repaint: must be a key or an array of keys",
            "8: keys.quit: quit must keep a key",
            "10: keys.complete: \"\" is not a key",
        ]) {
            assert!(
                problem.starts_with(starts),
                "{problem:?} should start {starts:?}"
            );
        }
    }

    #[test]
    fn a_file_that_cannot_be_a_config_is_one_problem() {
        let dir = tempfile::tempdir().unwrap();
        let as_dir = load(dir.path());
        assert!(as_dir.problems[0].ends_with("is a directory, not a file"));
        let file = dir.path().join("config.toml");
        std::fs::write(&file, b"nick = \"al\xffice\"\n").unwrap();
        assert!(load(&file).problems[0].contains("is not UTF-8"));
        std::fs::write(&file, vec![b'#'; MAX_BYTES as usize + 1]).unwrap();
        assert!(load(&file).problems[0].contains("at most 1048576"));
        std::fs::write(&file, "nick = \n").unwrap();
        let broken = load(&file);
        assert!(broken.problems[0].contains("config.toml:1:"), "{broken:?}");
        assert!(broken.args.is_empty());
        let missing = load(&dir.path().join("nowhere.toml"));
        assert!(missing.problems[0].contains("cannot read it"));
    }
}
