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
//! - [`tcpinfo`]: the kernel's `TCP_INFO` for a socket (the only `unsafe`).
//!
//! The client, the spine the project was asked for:
//!
//! - [`client`]: wiring — local mode, terminal, network task, loop.
//! - [`net`]: the task that owns the socket; every step a [`net::NetEvent`].
//! - [`app`]: the state and its synchronous transitions, and the one `select!` loop.
//! - [`scrollback`]: the bounded history, classified at ingest and wrapped by display width.
//! - [`editbox`]: the line editor, readline keys and history.
//! - [`inspector`]: the TCP inspector's model: timeline, handshake and close ladders, reads.
//! - [`ui`]: draws an `&App`.
//! - [`terminal`]: raw mode and the alternate screen, always restored.

pub mod app;
pub mod cli;
pub mod client;
pub mod codec;
pub mod editbox;
pub mod event_loop;
pub mod inspector;
pub mod net;
pub mod nick;
pub mod protocol;
pub mod scrollback;
pub mod server;
pub mod shutdown;
pub mod tcpinfo;
pub mod terminal;
pub mod ui;
