//! The bare relay: a ceiling for a chat server's fan-out, measured next to `tcpchat --serve` by
//! `tools/loadgen/bench/run.sh`. Written for this project.
//!
//! Everything a chat server must do and nothing more: accept, `TCP_NODELAY`, read, and write
//! what was read to every other connection. No names, no prefix, no sanitising, no limits, no
//! line framing: what a client sends reaches the others as it was sent. One concession to the
//! lines inside: each read is relayed up to its last newline, and the rest waits for the next
//! read (one `memrchr` per read, no work per line). Without it a read cut by the buffer's end
//! would interleave half a line with another sender's lines, and the load generator would count
//! mangled lines where tcpchat delivers whole ones.
//!
//! Per connection: a reader task, a writer task and an unbounded channel of shared byte chunks
//! (`Bytes`: a chunk is copied once, whatever the number of receivers); the room is a `HashMap`
//! of those channels behind a `std::sync::Mutex`, held only to queue a chunk. The writer writes
//! each chunk with its own `write` as it comes. Reads go through a 16 KiB buffer on the reader's
//! stack, so an idle connection holds no buffer at all. It listens with the kernel's largest
//! backlog (see [`listen_on`]).
//!
//! Usage: `bare_relay [--listen 127.0.0.1:PORT]` (port 0 picks one); prints `listening on ADDR`
//! on stderr once bound.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::mpsc;

/// Every connection's queue of chunks to write, by connection number.
type Room = Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<Bytes>>>>;

/// The most one read takes.
const READ: usize = 16 * 1024;

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = match (args.next().as_deref(), args.next()) {
        (None, _) => "127.0.0.1:8888".to_owned(),
        (Some("--listen"), Some(addr)) => addr,
        _ => bail!("usage: bare_relay [--listen 127.0.0.1:PORT]"),
    };
    let listener = listen_on(&listen).with_context(|| format!("cannot listen on {listen}"))?;
    eprintln!("listening on {}", listener.local_addr()?);
    let room = Room::default();
    for id in 0u64.. {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of descriptors, most likely: wait for some to be closed. The log may be
                // gone; this goes on without it.
                let _ = writeln!(std::io::stderr(), "accept failed: {error}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        stream.set_nodelay(true)?;
        let (reader, mut writer) = stream.into_split();
        let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
        lock(&room).insert(id, tx);
        tokio::spawn(async move {
            while let Some(chunk) = rx.recv().await {
                if writer.write_all(&chunk).await.is_err() {
                    break;
                }
            }
        });
        let room = room.clone();
        tokio::spawn(async move {
            // An error ends the connection as EOF does.
            let _ = relay(reader, id, &room).await;
            lock(&room).remove(&id);
        });
    }
    Ok(())
}

/// Listens with the largest backlog the kernel allows (`somaxconn`, 4096 by default; tokio's
/// `bind` asks for 1024). A client of this relay is told nothing once it is accepted, so the
/// load generator opens connections without waiting for each; when the queue of connections
/// not yet accepted overflows, the kernel drops the handshake's last ACK, the client believes it
/// is connected, and the server takes it only after retransmitting its SYN-ACK, seconds later.
fn listen_on(addr: &str) -> std::io::Result<TcpListener> {
    let addr: std::net::SocketAddr = addr
        .parse()
        .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidInput, error))?;
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(u32::from(u16::MAX))
}

/// Reads from one connection until it ends, queueing what it sends for every other one.
async fn relay(reader: OwnedReadHalf, id: u64, room: &Room) -> std::io::Result<()> {
    let mut unfinished = Vec::new();
    loop {
        reader.readable().await?;
        let mut buffer = [0u8; READ];
        let read = match reader.try_read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(read) => &buffer[..read],
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(error) => return Err(error),
        };
        let Some(last) = memchr::memrchr(b'\n', read) else {
            unfinished.extend_from_slice(read);
            continue;
        };
        let chunk = if unfinished.is_empty() {
            Bytes::copy_from_slice(&read[..=last])
        } else {
            unfinished.extend_from_slice(&read[..=last]);
            Bytes::from(std::mem::take(&mut unfinished))
        };
        unfinished.extend_from_slice(&read[last + 1..]);
        for (&other, queue) in lock(room).iter() {
            if other != id {
                // A closed queue is a connection on its way out.
                let _ = queue.send(chunk.clone());
            }
        }
    }
}

/// The room, even if a task panicked while holding it.
fn lock(room: &Room) -> std::sync::MutexGuard<'_, HashMap<u64, mpsc::UnboundedSender<Bytes>>> {
    room.lock().unwrap_or_else(PoisonError::into_inner)
}
