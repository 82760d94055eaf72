//! tcpchat: a terminal chat over plain TCP, its server, and a live lesson in TCP sessions.
//!
//! # Layout
//!
//! - [`cli`]: the command line and its checks.
//! - [`codec`]: bytes ⇄ lines (too-long and bad UTF-8 are items, not errors) and the sanitiser
//!   that keeps terminal control out of other people's screens.
//! - [`server`]: `--serve` — the accept loop, limits and shutdown; the chat room
//!   and the article's echo and ack servers.
//! - [`shutdown`]: signals → one cancellation token.

pub mod cli;
pub mod codec;
pub mod server;
pub mod shutdown;
