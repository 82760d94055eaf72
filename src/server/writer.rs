//! A chat connection's output: its member's outbox written to the write half of the socket,
//! many queued lines per write, then FIN; or, for a member the room dropped, one line saying why.

use std::io;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::outbox::OutboxReader;
use super::removal::Dropped;
use crate::protocol::ServerLine;

/// Most queued lines written with one syscall. Batching is what keeps fan-out cheap: a burst of
/// broadcasts costs each member one write, not one per line.
const WRITE_BATCH: usize = 256;

/// Capacities a writer keeps while idle; anything larger a burst grew is freed.
const IDLE_BATCH_CAPACITY: usize = 16;
const IDLE_BUFFER_CAPACITY: usize = 2 * 1024;

/// How long a member dropped as too slow has to read the line telling it why.
pub const DROPPED_NOTICE_TIMEOUT: Duration = Duration::from_secs(5);

/// Writes the member's outbox to the socket until the room closes it, then sends FIN. Returns
/// the bytes written. `dropped` (the room gave up on this member) and `shutdown` (after `grace`)
/// end it early.
pub async fn write_outbox<W: AsyncWrite + Unpin>(
    wr: &mut W,
    mut outbox: OutboxReader,
    dropped: &Dropped,
    shutdown: &CancellationToken,
    grace: Duration,
) -> io::Result<u64> {
    let give_up = async {
        shutdown.cancelled().await;
        tokio::time::sleep(grace).await;
    };
    tokio::pin!(give_up);
    let mut batch = Vec::new();
    let mut pending = BytesMut::new();
    let mut written = 0u64;
    loop {
        let received = tokio::select! {
            biased;
            () = dropped.cancelled() => {
                return Box::pin(tell_dropped(wr, dropped, written, false)).await;
            }
            received = outbox.take(&mut batch, WRITE_BATCH) => received,
        };
        if received == 0 {
            break;
        }
        pending.clear();
        batch
            .drain(..)
            .for_each(|text| pending.extend_from_slice(&text));
        tokio::select! {
            biased;
            () = dropped.cancelled() => return Box::pin(tell_dropped(wr, dropped, written, true)).await,
            () = &mut give_up => return Ok(written),
            // The flush is what puts TLS records on the wire; on plain TCP it does nothing.
            result = write_flushed(wr, &pending) => result?,
        }
        written += pending.len() as u64;
        if outbox.is_empty() {
            // Idle again: give back what a burst grew, so ten thousand quiet members stay
            // small (a burst-sized batch and buffer would otherwise stay for good).
            if batch.capacity() > IDLE_BATCH_CAPACITY {
                batch = Vec::new();
            }
            if pending.capacity() > IDLE_BUFFER_CAPACITY {
                pending = BytesMut::new();
            }
        }
    }
    tokio::select! {
        () = &mut give_up => {}
        result = wr.shutdown() => result?,
    }
    Ok(written)
}

/// The queue of a member the room let go (too slow, kicked, replaced) is thrown away; what is
/// left is one line saying why (after a newline if a write was cut mid-line), given a few seconds to get through.
/// (Rare, with a timer: its callers box it, so an idle writer does not carry its size.)
async fn tell_dropped<W: AsyncWrite + Unpin>(
    wr: &mut W,
    dropped: &Dropped,
    written: u64,
    mid_line: bool,
) -> io::Result<u64> {
    let notice = ServerLine::from(dropped.why().refusal()).to_bytes();
    let attempt = async {
        if mid_line {
            wr.write_all(b"\n").await?;
        }
        write_flushed(wr, &notice).await?;
        wr.shutdown().await
    };
    tokio::time::timeout(DROPPED_NOTICE_TIMEOUT, attempt)
        .await
        .ok()
        .transpose()?;
    Ok(written)
}

/// Writes all of `bytes` and flushes them through any layer that buffers (TLS).
async fn write_flushed<W: AsyncWrite + Unpin>(wr: &mut W, bytes: &[u8]) -> io::Result<()> {
    wr.write_all(bytes).await?;
    wr.flush().await
}
