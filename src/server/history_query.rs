//! `/history` and `/search`: a member's question to the store about its current room,
//! answered on a blocking thread
//! (SQLite is synchronous) and sent back in blocks small enough that the member's own outbox
//! paces the answer: up to 5,000 lines, never more than its outbox holds at once.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tracing::warn;

use super::sequencer::{Delivered, replayed};
use crate::names::RoomName;
use crate::protocol::{Event, HistoryRequest, Refusal, Scope, Scoped, ServerLine};
use crate::store::{MAX_SEARCH_CHARS, Reader, StoredLine};

/// Lines `/search` gives at most.
pub const SEARCH_RESULTS: usize = 50;

/// Lines per outbox entry in an answer: a block, then the session waits for room.
const LINES_PER_BLOCK: usize = 100;

/// What sessions need to read history: where the store is, and how far delivery has got in
/// each room (no answer includes a line the room has not been given yet).
#[derive(Debug, Clone)]
pub struct HistoryAccess {
    /// The store's file.
    pub path: PathBuf,
    /// The number of the last line delivered, per room.
    pub delivered: Arc<Delivered>,
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
    /// Answers `question` about `room`, as the blocks of lines to queue for the asker, in
    /// order.
    pub async fn answer(
        &self,
        room: &RoomName,
        question: Question,
    ) -> Result<Vec<Bytes>, Refusal<'static>> {
        let path = self.path.clone();
        let key = room.key();
        let delivered = self.delivered.get(&key);
        let found = tokio::task::spawn_blocking(move || -> rusqlite::Result<_> {
            let reader = Reader::open(&path)?;
            // Nothing said in this run: every stored line is older than it.
            let up_to = match delivered {
                Some(up_to) => up_to,
                None => reader.last_seq(&key)?.unwrap_or(0),
            };
            let lines = match &question {
                Question::History(HistoryRequest::Last(n)) => reader.last(&key, up_to, *n)?,
                Question::History(HistoryRequest::Since(after)) => {
                    reader.since(&key, *after, up_to, HistoryRequest::MAX)?
                }
                Question::Search(words) => {
                    let words: Vec<&str> = words.split_whitespace().collect();
                    reader.search(&key, &words, up_to, SEARCH_RESULTS)?
                }
            };
            Ok((question, lines, up_to))
        })
        .await;
        match found {
            Ok(Ok((question, lines, up_to))) => Ok(blocks(room, &question, &lines, up_to + 1)),
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
/// closing rule; each line named by the room unless it is the lobby.
fn blocks(room: &RoomName, question: &Question, lines: &[StoredLine], next: u64) -> Vec<Bytes> {
    let count = lines.len();
    let name = room.as_str();
    let scope = Scope::room(name);
    let (open, close) = match question {
        Question::History(_) => (
            Event::History {
                room: name,
                count,
                next,
            },
            Event::HistoryEnd { room: name },
        ),
        Question::Search(words) => (
            Event::Found {
                room: name,
                words,
                count,
            },
            Event::FoundEnd { room: name },
        ),
    };
    let event = |event| {
        Scoped {
            scope,
            line: ServerLine::Event(event),
        }
        .to_bytes()
    };
    let mut blocks = vec![event(open)];
    for chunk in lines.chunks(LINES_PER_BLOCK) {
        let mut block = BytesMut::new();
        for line in chunk {
            Scoped {
                scope,
                line: replayed(line),
            }
            .write_to(&mut block);
        }
        blocks.push(block.freeze());
    }
    if count > 0 {
        blocks.push(event(close));
    }
    blocks
}
