//! `/history` and `/search`: a member's question to the store, answered on a blocking thread
//! (SQLite is synchronous) and sent back in blocks small enough that the member's own outbox
//! paces the answer: up to 5,000 lines, never more than its outbox holds at once.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use tracing::warn;

use super::sequencer::replayed;
use crate::protocol::{Event, HistoryRequest, LOBBY, Refusal, ServerLine};
use crate::store::{MAX_SEARCH_CHARS, Reader, StoredLine};

/// Lines `/search` gives at most.
pub const SEARCH_RESULTS: usize = 50;

/// Lines per outbox entry in an answer: a block, then the session waits for room.
const LINES_PER_BLOCK: usize = 100;

/// What sessions need to read history: where the store is, and how far delivery has got (no
/// answer includes a line the room has not been given yet).
#[derive(Debug, Clone)]
pub struct HistoryAccess {
    /// The store's file.
    pub path: PathBuf,
    /// The number of the last line delivered.
    pub delivered: Arc<AtomicU64>,
}

/// A question a member asked.
#[derive(Debug)]
pub enum Question {
    /// `/history`.
    History(HistoryRequest),
    /// `/search WORDS`.
    Search(String),
}

impl Question {
    /// Reads `/search`'s words, refusing what is too long to be a search.
    pub fn search(words: &str) -> Result<Self, Refusal<'static>> {
        let words = words.trim();
        if words.is_empty() {
            return Err(Refusal::Usage("/search WORDS"));
        }
        if words.chars().count() > MAX_SEARCH_CHARS {
            return Err(Refusal::SearchTooLong {
                max: MAX_SEARCH_CHARS,
            });
        }
        Ok(Self::Search(words.to_owned()))
    }
}

impl HistoryAccess {
    /// Answers `question`, as the blocks of lines to queue for the asker, in order.
    pub async fn answer(&self, question: Question) -> Result<Vec<Bytes>, Refusal<'static>> {
        let path = self.path.clone();
        let up_to = self.delivered.load(Ordering::Acquire);
        let found = tokio::task::spawn_blocking(move || -> rusqlite::Result<_> {
            let reader = Reader::open(&path)?;
            Ok(match &question {
                Question::History(HistoryRequest::Last(n)) => reader.last(LOBBY, up_to, *n)?,
                Question::History(HistoryRequest::Since(after)) => {
                    reader.since(LOBBY, *after, up_to, HistoryRequest::MAX)?
                }
                Question::Search(words) => {
                    let words: Vec<&str> = words.split_whitespace().collect();
                    reader.search(LOBBY, &words, up_to, SEARCH_RESULTS)?
                }
            })
            .map(|lines| (question, lines))
        })
        .await;
        match found {
            Ok(Ok((question, lines))) => Ok(blocks(&question, &lines, up_to + 1)),
            Ok(Err(error)) => {
                warn!(%error, "a history query failed");
                Err(Refusal::StoreUnavailable)
            }
            Err(error) => {
                warn!(%error, "a history query panicked");
                Err(Refusal::StoreUnavailable)
            }
        }
    }
}

/// The answer as blocks: the opening rule, the lines in blocks of [`LINES_PER_BLOCK`], the
/// closing rule.
fn blocks(question: &Question, lines: &[StoredLine], next: u64) -> Vec<Bytes> {
    let count = lines.len();
    let (open, close) = match question {
        Question::History(_) => (
            Event::History {
                room: LOBBY,
                count,
                next,
            },
            Event::HistoryEnd { room: LOBBY },
        ),
        Question::Search(words) => (
            Event::Found {
                room: LOBBY,
                words,
                count,
            },
            Event::FoundEnd { room: LOBBY },
        ),
    };
    let mut blocks = vec![ServerLine::Event(open).to_bytes()];
    for chunk in lines.chunks(LINES_PER_BLOCK) {
        let mut block = BytesMut::new();
        for line in chunk {
            replayed(line).write_to(&mut block);
        }
        blocks.push(block.freeze());
    }
    if count > 0 {
        blocks.push(ServerLine::Event(close).to_bytes());
    }
    blocks
}
