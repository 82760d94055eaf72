//! The lessons' words, in English and 中文: `assets/lessons/en.toml` and
//! `assets/lessons/zh-CN.toml`, built into the binary. Each lesson's prose is one entry — its
//! title, the article's step, the question, the choices, what to watch and the explanation —
//! which keeps a lesson readable (and translatable) as a whole, unlike a row of catalogue keys.
//! The calls and the kernel's facts are not here: they read the same in both languages.

use std::sync::OnceLock;

use serde::Deserialize;

use crate::i18n::Language;

/// One lesson's prose.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LessonText {
    /// Which lesson ([`super::Lesson::slug`]).
    pub slug: String,
    /// Its title.
    pub title: String,
    /// The article's step it teaches, in the article's words.
    pub article: String,
    /// The question the learner answers before the steps.
    pub question: String,
    /// The answers to choose from, in the order the experiment numbers its outcomes.
    pub choices: Vec<String>,
    /// What to watch in the steps' facts.
    pub watch: String,
    /// Why it happens, shown with the verdict.
    pub explain: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    lesson: Vec<LessonText>,
}

const ENGLISH: &str = include_str!("../../assets/lessons/en.toml");
const CHINESE: &str = include_str!("../../assets/lessons/zh-CN.toml");

fn parse(text: &str) -> Result<Vec<LessonText>, toml::de::Error> {
    toml::from_str::<File>(text).map(|file| file.lesson)
}

/// The lessons' prose in `language`, in [`super::LESSONS`]'s order. The files are built in and a
/// test parses both, so the empty fallback is never seen.
pub fn texts(language: Language) -> &'static [LessonText] {
    static ENGLISH_TEXTS: OnceLock<Vec<LessonText>> = OnceLock::new();
    static CHINESE_TEXTS: OnceLock<Vec<LessonText>> = OnceLock::new();
    let (cell, text) = match language {
        Language::English => (&ENGLISH_TEXTS, ENGLISH),
        Language::Chinese => (&CHINESE_TEXTS, CHINESE),
    };
    cell.get_or_init(|| parse(text).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lesson::LESSONS;

    #[test]
    fn both_languages_have_every_lesson_in_order_with_the_same_choices() {
        let english = parse(ENGLISH).unwrap();
        let chinese = parse(CHINESE).unwrap();
        for texts in [&english, &chinese] {
            let slugs: Vec<&str> = texts.iter().map(|t| t.slug.as_str()).collect();
            let wanted: Vec<&str> = LESSONS.iter().map(|l| l.slug).collect();
            assert_eq!(slugs, wanted);
            for text in texts.iter() {
                for field in [
                    &text.title,
                    &text.article,
                    &text.question,
                    &text.watch,
                    &text.explain,
                ] {
                    assert!(!field.trim().is_empty(), "{}: an empty field", text.slug);
                }
                assert!((2..=4).contains(&text.choices.len()), "{}", text.slug);
            }
        }
        for (en, zh) in english.iter().zip(&chinese) {
            assert_eq!(en.choices.len(), zh.choices.len(), "{}", en.slug);
        }
        assert_eq!(texts(Language::Chinese).len(), LESSONS.len());
    }
}
