//! The bare echo server: a ceiling for the article's echo server (`tcpchat --serve --mode echo`),
//! measured next to it by `tools/loadgen/bench/run.sh`. Written for this project.
//!
//! The least that speaks the article's `server.py` protocol byte for byte: `连接成功!` on
//! accept (no newline), then for each read of at most 1024 bytes one write of `第N条信息:` and
//! the bytes as read; a read of `exit` (with or without a line ending) closes. `TCP_NODELAY`, a
//! task per connection, no logging, no limits, no decoding.
//!
//! Usage: `bare_echo [--listen 127.0.0.1:PORT]` (port 0 picks one); prints `listening on ADDR`
//! on stderr once bound.

use std::io::Write as _;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = match (args.next().as_deref(), args.next()) {
        (None, _) => "127.0.0.1:8888".to_owned(),
        (Some("--listen"), Some(addr)) => addr,
        _ => bail!("usage: bare_echo [--listen 127.0.0.1:PORT]"),
    };
    let listener = TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    eprintln!("listening on {}", listener.local_addr()?);
    loop {
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
        // An error ends the connection as EOF does.
        tokio::spawn(async move { drop(echo(stream).await) });
    }
}

/// One connection: the greeting, then a reply per read until EOF or `exit`.
async fn echo(mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    stream.write_all("连接成功!".as_bytes()).await?;
    let mut read = [0u8; 1024];
    let mut reply = Vec::with_capacity(1100);
    for count in 1u64.. {
        let n = stream.read(&mut read).await?;
        let data = &read[..n];
        if n == 0 || [&b"exit"[..], b"exit\n", b"exit\r\n"].contains(&data) {
            break;
        }
        reply.clear();
        write!(reply, "第{count}条信息:")?;
        reply.extend_from_slice(data);
        stream.write_all(&reply).await?;
    }
    Ok(())
}
