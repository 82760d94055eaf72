//! A re-creation of tokio's chat example's design, for comparison: the baseline peer that
//! `tools/loadgen/bench/run.sh` measures `tcpchat --serve` against. Written for this project
//! from a description of that design, not copied.
//!
//! The design, kept as it is because it is what is being measured:
//!
//! - one task per connection, `select!`-ing between its channel and its socket;
//! - the room is a `HashMap` from peer address to that peer's **unbounded** `mpsc` sender, behind
//!   one `tokio::sync::Mutex`; a broadcast clones the line into every other peer's channel, so a
//!   peer that does not read grows the server's memory without bound;
//! - `LinesCodec` framing through `Framed`, and **one write per line** (`SinkExt::send` encodes
//!   and flushes each line on its own); no `TCP_NODELAY`;
//! - a connection is asked for a username and joins the room only after sending one; the others
//!   are told `NAME has joined the chat`, lines go to everyone but their sender as `NAME: text`.
//!
//! One addition for the load generator: a joining client is told `* welcome NAME` once it is in
//! the room, so a benchmark knows when it may start sending.
//!
//! Usage: `chat_baseline [--listen 127.0.0.1:PORT]` (port 0 picks one); prints
//! `listening on ADDR` on stderr once bound.

use std::collections::HashMap;
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
    /// Queues `line` for every peer but `from`; never waits, never drops.
    fn broadcast(&self, from: SocketAddr, line: &str) {
        for (addr, peer) in &self.peers {
            if *addr != from {
                let _ = peer.send(line.to_owned());
            }
        }
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = match (args.next().as_deref(), args.next()) {
        (None, _) => "127.0.0.1:8888".to_owned(),
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
                eprintln!("accept failed: {error}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let room = room.clone();
        tokio::spawn(async move {
            if let Err(error) = serve(room, stream, addr).await {
                eprintln!("{addr}: {error:#}");
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
    {
        let mut room = room.lock().await;
        room.peers.insert(addr, tx);
        room.broadcast(addr, &format!("{name} has joined the chat"));
    }
    lines.send(format!("* welcome {name}")).await?;

    let ended = loop {
        tokio::select! {
            Some(line) = rx.recv() => {
                if let Err(error) = lines.send(line).await {
                    break Err(error.into());
                }
            }
            received = lines.next() => match received {
                Some(Ok(line)) => room.lock().await.broadcast(addr, &format!("{name}: {line}")),
                Some(Err(error)) => break Err(error.into()),
                None => break Ok(()),
            },
        }
    };

    let mut room = room.lock().await;
    room.peers.remove(&addr);
    room.broadcast(addr, &format!("{name} has left the chat"));
    ended
}
