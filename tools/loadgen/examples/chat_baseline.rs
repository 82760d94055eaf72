//! tokio's chat example (`examples/chat.rs` in tokio-rs/tokio), re-created for this project from
//! its design, to be measured next to `tcpchat --serve` by `tools/loadgen/bench/run.sh`. Written
//! here, not copied; checked against the example at tokio's HEAD of 2026-08-20 (`ea91b33`).
//!
//! The same as the example, because this is what is measured:
//!
//! - one task per connection, `select!`-ing between its channel and its socket;
//! - the room is a `HashMap` from peer address to that peer's **unbounded** `mpsc` sender, behind
//!   one `tokio::sync::Mutex`; a broadcast clones the line into every other peer's channel (so a
//!   peer that does not read grows the server's memory without bound), and forgets peers whose
//!   channel is closed;
//! - `LinesCodec::new()` (no length limit) through `Framed`, and **one write per line**
//!   (`SinkExt::send` encodes and flushes each line on its own); no `TCP_NODELAY`;
//! - the lines: `Please enter your username:` on connect; the first line read is the name, and
//!   the peer joins the room only then; `NAME has joined the chat` and `NAME has left the chat`
//!   to the others, and each line as `NAME: text` to everyone but its sender. The new client is
//!   told nothing when it is in (the load generator finds out with a probe, see its `proto`).
//!
//! Where it differs, none of it on the path of a relayed line:
//!
//! - the example logs with `tracing-subscriber` to stdout (a line per join and per leave at its
//!   default level); this logs the same events to stderr, one write each, and as there, a log
//!   that cannot be written is not an error;
//! - the example takes the address as its only argument and exits when `accept` fails (as when
//!   it runs out of file descriptors); this takes `--listen ADDR`, prints the bound address
//!   (port 0 picks one), and waits 10 ms and goes on after a failed `accept`.
//!
//! Usage: `chat_baseline [--listen 127.0.0.1:PORT]`; prints `listening on ADDR` on stderr once
//! bound.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, mpsc};
use tokio_util::codec::{Framed, LinesCodec};

/// The room: every joined peer's channel, by address.
#[derive(Default)]
struct Room {
    peers: HashMap<SocketAddr, mpsc::UnboundedSender<String>>,
}

impl Room {
    /// Queues `line` for every peer but `from`; never waits, never drops a line for a live peer.
    fn broadcast(&mut self, from: SocketAddr, line: &str) {
        let line = line.to_owned();
        let mut gone = Vec::new();
        for (addr, peer) in &self.peers {
            if *addr != from && peer.send(line.clone()).is_err() {
                gone.push(*addr);
            }
        }
        for addr in gone {
            self.peers.remove(&addr);
        }
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = match (args.next().as_deref(), args.next()) {
        (None, _) => "127.0.0.1:6142".to_owned(),
        (Some("--listen"), Some(addr)) => addr,
        _ => bail!("usage: chat_baseline [--listen 127.0.0.1:PORT]"),
    };
    let listener = TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    eprintln!("listening on {}", listener.local_addr()?);
    let room = Arc::new(Mutex::new(Room::default()));
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                log(&format!("accept failed: {error}"));
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let room = room.clone();
        tokio::spawn(async move {
            if let Err(error) = serve(room, stream, addr).await {
                log(&format!("{addr}: {error:#}"));
            }
        });
    }
}

/// One connection: the username prompt, then lines in and out until either side ends.
async fn serve(room: Arc<Mutex<Room>>, stream: TcpStream, addr: SocketAddr) -> Result<()> {
    let mut lines = Framed::new(stream, LinesCodec::new());
    lines.send("Please enter your username:").await?;
    let Some(Ok(name)) = lines.next().await else {
        return Ok(()); // left (or sent garbage) before choosing a name
    };

    let (tx, mut rx) = mpsc::unbounded_channel();
    room.lock().await.peers.insert(addr, tx);
    {
        let joined = format!("{name} has joined the chat");
        log(&joined);
        room.lock().await.broadcast(addr, &joined);
    }

    let ended = loop {
        tokio::select! {
            Some(line) = rx.recv() => {
                if let Err(error) = lines.send(&line).await {
                    break Err(error.into());
                }
            }
            received = lines.next() => match received {
                Some(Ok(line)) => {
                    let mut room = room.lock().await;
                    room.broadcast(addr, &format!("{name}: {line}"));
                }
                Some(Err(error)) => break Err(error.into()),
                None => break Ok(()),
            },
        }
    };

    let mut room = room.lock().await;
    room.peers.remove(&addr);
    let left = format!("{name} has left the chat");
    log(&left);
    room.broadcast(addr, &left);
    ended
}

/// One line of log on stderr; one that cannot be written is dropped.
fn log(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}
