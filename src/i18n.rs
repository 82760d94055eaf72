//! The client's own words in English and 中文: which language the TUI speaks, and [`tr!`], the
//! one way its words are had from the catalogue (`locales/en.toml`, `locales/zh-CN.toml`, built
//! into the binary by `rust-i18n`).
//!
//! Only the client's chrome and notes are translated: the status bar, the help, the edit box's
//! question, the scrollback's markers and rules, the notes it writes itself. What the server
//! sends is the protocol's and reaches the screen as sent (`连接成功!`, `第N条信息:…`, `*** `
//! events), as do the log, `--help` and `--print-config`.
//!
//! The language is a value the state carries ([`crate::app::App::language`]), never a
//! process-wide setting, so each screen (and each test) says its own.

use std::ffi::OsString;

/// A language the client's own words come in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Language {
    /// English, the catalogue's first language and every missing word's fallback.
    #[default]
    English,
    /// Simplified Chinese, for the article's readers.
    Chinese,
}

impl Language {
    /// Every language the catalogue has, with its file's locale.
    pub const ALL: [Language; 2] = [Language::English, Language::Chinese];

    /// The catalogue's name for it (`locales/<locale>.toml`).
    pub fn locale(self) -> &'static str {
        match self {
            Language::English => "en",
            Language::Chinese => "zh-CN",
        }
    }

    /// The language a POSIX locale name asks for: `zh`, `zh_CN.UTF-8`, `zh_TW`, `zh-Hans`
    /// are Chinese; anything else (`C`, `POSIX`, `en_US.UTF-8`, `fr_FR`) is English.
    pub fn of_locale(name: &str) -> Self {
        let chinese = name
            .strip_prefix("zh")
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['_', '-', '.', '@']));
        match chinese {
            true => Language::Chinese,
            false => Language::English,
        }
    }

    /// The environment's language, as POSIX orders it: the first of `LC_ALL`, `LC_MESSAGES`
    /// and `LANG` that is set and not empty decides; none is English. `var` reads one.
    pub fn of_environment(var: impl Fn(&str) -> Option<OsString>) -> Self {
        ["LC_ALL", "LC_MESSAGES", "LANG"]
            .into_iter()
            .filter_map(var)
            .find(|value| !value.is_empty())
            .map_or(Language::English, |value| {
                Self::of_locale(&value.to_string_lossy())
            })
    }
}

/// `--lang` and the config file's `language`: a language, or the environment's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LanguageChoice {
    /// From LC_ALL, LC_MESSAGES or LANG (zh_CN.UTF-8 and other zh locales: 中文).
    #[default]
    Auto,
    /// English.
    En,
    /// 中文.
    Zh,
}

impl LanguageChoice {
    /// The language this choice means where the environment is read by `var`.
    pub fn resolve(self, var: impl Fn(&str) -> Option<OsString>) -> Language {
        match self {
            LanguageChoice::Auto => Language::of_environment(var),
            LanguageChoice::En => Language::English,
            LanguageChoice::Zh => Language::Chinese,
        }
    }
}

/// The catalogue's words for `key` in `language`, each `%{name}` filled with `name`'s value:
/// `tr!(self.language, "note.connecting", addr = addr)`. A key the catalogue lacks would show
/// as itself; the tests below make that a failed test instead.
macro_rules! tr {
    ($language:expr, $key:expr $(, $name:ident = $value:expr)* $(,)?) => {{
        let text: std::borrow::Cow<'_, str> =
            rust_i18n::t!($key, locale = $language.locale() $(, $name = $value)*);
        text.into_owned()
    }};
}
pub(crate) use tr;

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    use super::*;

    /// Each language's catalogue, flattened: `status.online` → `%{count} online`.
    fn catalogue(language: Language) -> BTreeMap<String, String> {
        let file = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("locales")
            .join(format!("{}.toml", language.locale()));
        let text = std::fs::read_to_string(&file).unwrap();
        let table: toml::Table = toml::from_str(&text).unwrap();
        let mut flat = BTreeMap::new();
        for (section, entries) in table {
            let toml::Value::Table(entries) = entries else {
                panic!("{}: {section} is not a section", file.display());
            };
            for (key, value) in entries {
                let toml::Value::String(value) = value else {
                    panic!("{}: {section}.{key} is not a string", file.display());
                };
                flat.insert(format!("{section}.{key}"), value);
            }
        }
        flat
    }

    /// The `%{name}`s in `text`.
    fn placeholders(text: &str) -> BTreeSet<&str> {
        text.split("%{")
            .skip(1)
            .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
            .collect()
    }

    #[test]
    fn every_key_is_in_every_language_with_the_same_placeholders() {
        let english = catalogue(Language::English);
        assert!(english.len() > 50, "the catalogue was read");
        for language in Language::ALL {
            let other = catalogue(language);
            let missing: Vec<&String> =
                english.keys().filter(|k| !other.contains_key(*k)).collect();
            let extra: Vec<&String> = other.keys().filter(|k| !english.contains_key(*k)).collect();
            assert!(missing.is_empty(), "{language:?} lacks {missing:?}");
            assert!(
                extra.is_empty(),
                "{language:?} has keys English lacks: {extra:?}"
            );
            for (key, text) in &other {
                assert_eq!(
                    placeholders(text),
                    placeholders(&english[key]),
                    "{language:?} {key}: {text:?}"
                );
            }
        }
    }

    #[test]
    fn the_code_names_every_key_of_the_catalogue_and_no_other() {
        let english = catalogue(Language::English);
        let sections: BTreeSet<&str> = english.keys().filter_map(|k| k.split('.').next()).collect();
        let plain =
            |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c == '_');
        let mut named = BTreeSet::new();
        let mut paths = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
        while let Some(path) = paths.pop() {
            if path.is_dir() {
                paths.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // Every string literal that reads `section.name` for one of the catalogue's sections.
            for (at, _) in text.match_indices('"') {
                let rest = &text[at + 1..];
                let Some(literal) = rest.find('"').map(|end| &rest[..end]) else {
                    continue;
                };
                let Some((section, name)) = literal.split_once('.') else {
                    continue;
                };
                if sections.contains(section) && plain(name) {
                    assert!(
                        english.contains_key(literal),
                        "{}: {literal} is not in locales/en.toml",
                        path.display()
                    );
                    named.insert(literal.to_owned());
                }
            }
        }
        let unused: Vec<&String> = english.keys().filter(|k| !named.contains(*k)).collect();
        assert!(
            unused.is_empty(),
            "in the catalogue, named nowhere: {unused:?}"
        );
    }

    #[test]
    fn the_catalogue_is_built_in_and_fills_placeholders() {
        assert_eq!(
            tr!(Language::English, "status.online", count = 3),
            "3 online"
        );
        assert_eq!(
            tr!(Language::Chinese, "status.online", count = 3),
            "3 人在线"
        );
        assert_eq!(tr!(Language::Chinese, "status.connected"), "已连接");
    }

    #[test]
    fn the_environment_decides_in_posix_order_and_only_chinese_locales_are_chinese() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| OsString::from(value))
            }
        };
        let chinese = Language::Chinese;
        let english = Language::English;
        assert_eq!(Language::of_environment(env(&[])), english);
        assert_eq!(
            Language::of_environment(env(&[("LANG", "zh_CN.UTF-8")])),
            chinese
        );
        assert_eq!(
            Language::of_environment(env(&[("LANG", "zh_TW.UTF-8")])),
            chinese
        );
        assert_eq!(Language::of_environment(env(&[("LANG", "zh")])), chinese);
        for other in ["C", "POSIX", "C.UTF-8", "en_US.UTF-8", "fr_FR", "zhx", ""] {
            let var = |_: &str| Some(OsString::from(other));
            assert_eq!(Language::of_environment(var), english, "{other:?}");
        }
        // LC_ALL wins over LC_MESSAGES, which wins over LANG; an empty one does not count.
        let all = env(&[("LC_ALL", "C"), ("LC_MESSAGES", "zh_CN"), ("LANG", "zh_CN")]);
        assert_eq!(Language::of_environment(all), english);
        let messages = env(&[("LC_ALL", ""), ("LC_MESSAGES", "zh_CN"), ("LANG", "C")]);
        assert_eq!(Language::of_environment(messages), chinese);
        // A choice other than auto does not read the environment at all.
        let zh = env(&[("LANG", "zh_CN.UTF-8")]);
        assert_eq!(LanguageChoice::En.resolve(zh), english);
        assert_eq!(LanguageChoice::Zh.resolve(env(&[])), chinese);
        assert_eq!(LanguageChoice::Auto.resolve(zh), chinese);
    }
}
