//! tcpchat: a terminal chat over plain TCP, its server, and a live lesson in TCP sessions.
//!
//! # Layout
//!
//! A line from the network walks downhill — socket → frame → protocol → state → picture — and
//! no layer reaches back up.
//!
//! Bytes and the wire, shared by both sides:
//!
//! - [`codec`]: bytes ⇄ lines (too-long and bad UTF-8 are items, not errors) and the sanitiser
//!   that keeps terminal control out of other people's screens.
//! - [`protocol`]: every line the server writes and the client reads, typed, with one writer
//!   and one reader; the commands and `/help` from one table; the `exit` rule; why an event
//!   cannot be forged.
//! - [`names`]: what a nick or a room name may be, and when two are the same.
//! - [`tcpinfo`]: the kernel's `TCP_INFO` for a socket (the only `unsafe`).
//! - [`tcp_table`]: the kernel's table of TCP connections: which end holds a TIME-WAIT, and
//!   for how long yet.
//! - [`saved_syn`]: a client's SYN as the kernel saved it for the listener, decoded.
//! - `capture`: segments read off loopback by a packet socket, where the process may (Linux,
//!   root or `CAP_NET_RAW`).
//!
//! The server (`--serve`, and the room local mode hosts):
//!
//! - [`server`]: the accept loop, limits and shutdown; each chat session's line reader and
//!   writer; the room; the article's echo and ack servers; the view of its own sockets that
//!   the inspector's server page shows.
//! - [`shutdown`]: signals → one cancellation token.
//! - [`tls`]: TLS for both sides: the server's certificate and accept step, the client's
//!   verifier and pinned keys, the record headers the inspector shows.
//! - [`cluster`]: several nodes as one chat through Redis (`--cluster`): the rooms' log with
//!   line numbers shared by every node, the follower that tails it, nick claims, node
//!   presence and its heartbeat.
//!
//! The client, the spine the project was asked for:
//!
//! - [`client`]: wiring — local mode, terminal, network task, loop.
//! - [`net`]: the task that owns the socket; every step a [`net::NetEvent`].
//! - [`event_loop`]: the one `select!`: terminal events, network events, deadlines; draws after
//!   each batch.
//! - [`app`]: the state and its synchronous transitions; the keymap; ingest of received bytes.
//! - [`scrollback`]: the bounded history, classified at ingest and wrapped by display width.
//! - [`editbox`]: the line editor and its edits, input history ([`input_history`] keeps it
//!   across runs).
//! - [`lab`]: the framing lab's knobs and actions, typed once for the commands and the network
//!   task.
//! - [`inspector`]: the TCP inspector's model, one module per part: timeline, ladders, the
//!   close and its verdict, reads, kernel samples.
//! - [`ui`]: draws an `&App`, widget by widget; every colour.
//! - [`terminal`]: raw mode and the alternate screen, always restored.
//! - [`cli`]: the command line and its checks.
//! - [`config`]: the config file, placed under the command line as flags.
//! - [`lesson`]: `/lesson N`, ten lessons made of real calls on loopback sockets, each with
//!   a prediction, the kernel's evidence and a verdict.
//! - [`i18n`]: the client's own words in English and 中文, from the one catalogue in `locales/`.

pub mod app;
#[cfg(target_os = "linux")]
pub mod capture;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod codec;
pub mod config;
pub mod data_dir;
pub mod editbox;
pub mod event_loop;
pub mod i18n;
pub mod input_history;
pub mod inspector;
pub mod lab;
pub mod lesson;
pub mod local_host;
pub mod names;
pub mod net;
pub mod protocol;
pub mod recording;
pub mod saved_syn;
pub mod scrollback;
pub mod server;
pub mod server_log;
pub mod shutdown;
pub mod store;
pub mod tcp_table;
pub mod tcpinfo;
pub mod terminal;
pub mod tls;
pub mod transcript;
pub mod ui;

// The catalogue (`locales/*.toml`), built in; `i18n::tr!` reads it. A word missing in one
// language falls back to English (and fails `i18n`'s tests).
rust_i18n::i18n!("locales", fallback = "en");

// `i18n!` reads the catalogue in a proc macro, which Cargo does not watch; reading the files
// here too is what rebuilds the crate when one of them changes.
const _: [&str; 2] = [
    include_str!("../locales/en.toml"),
    include_str!("../locales/zh-CN.toml"),
];
