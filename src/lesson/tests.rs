//! The lesson table against its text files and its experiments.

use super::*;
use crate::i18n::Language;

#[test]
fn lessons_are_numbered_from_one_and_each_has_steps() {
    assert_eq!(LESSONS.len(), 10);
    assert_eq!(numbered(1).map(|l| l.id), Some(LessonId::Listen));
    assert_eq!(numbered(10).map(|l| l.id), Some(LessonId::Ports));
    assert!(numbered(0).is_none() && numbered(11).is_none());
    for lesson in LESSONS {
        assert!(!lesson.steps.is_empty(), "{}", lesson.slug);
    }
    for language in Language::ALL {
        assert_eq!(texts(language).len(), LESSONS.len());
    }
}
