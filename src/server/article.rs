//! The article's two servers, `echo` (its `server.py`) and `ack` (its threaded server), byte
//! for byte on the wire. Unlike the article they serve many clients at once, survive a client
//! that vanishes without `exit`, and never decode what they echo, so a read that splits a
//! multi-byte character is echoed as it came instead of killing the server.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::{Ending, LINGER, Limits, kernel_summary, linger};
use crate::protocol::article::{ArticleMode, is_exit_read};
use crate::tls::transport::Transport;

/// The article's `recv(1024)`: each read of at most this many bytes is one message.
const RECV_SIZE: usize = 1024;

/// Serves one connection in `mode` until `exit`, close or shutdown.
pub async fn serve<S: Transport>(
    mut stream: S,
    peer: SocketAddr,
    mode: ArticleMode,
    limits: &Limits,
    shutdown: &CancellationToken,
) {
    let greeting = mode.greeting();
    let mut buf = [0u8; RECV_SIZE];
    let mut count = 0u64;
    let (mut bytes_in, mut bytes_out) = (0u64, greeting.len() as u64);
    let mut reply = Vec::with_capacity(RECV_SIZE + 32);
    let ending = 'session: {
        if let Err(error) = write_or_shutdown(&mut stream, greeting, limits, shutdown).await {
            break 'session error;
        }
        loop {
            let read = tokio::select! {
                () = shutdown.cancelled() => break 'session Ending::Shutdown,
                read = stream.read(&mut buf) => read,
            };
            let data = match read {
                Ok(0) => break 'session Ending::PeerClosed,
                Ok(n) => &buf[..n],
                Err(error) => break 'session Ending::from_read_error(error),
            };
            bytes_in += data.len() as u64;
            debug!(%peer, bytes = data.len(), text = %String::from_utf8_lossy(data), "recv");
            if is_exit_read(data) {
                break 'session Ending::Exit;
            }
            count += 1;
            mode.reply(count, data, &mut reply);
            if let Err(error) = write_or_shutdown(&mut stream, &reply, limits, shutdown).await {
                break 'session error;
            }
            bytes_out += reply.len() as u64;
        }
    };
    // The article closes right after `exit`; a FIN first, then draining, makes that close clean.
    if matches!(ending, Ending::Exit) {
        let _ = stream.shutdown().await;
        linger(&mut stream, shutdown, LINGER).await;
    }
    let tcp = kernel_summary(&stream);
    info!(%peer, how = %ending.how(), messages = count, bytes_in, bytes_out, %tcp, "closed");
}

/// Writes `data`; gives up once shutdown has waited [`Limits::shutdown_grace`] for a client
/// that does not read.
async fn write_or_shutdown<S: Transport>(
    stream: &mut S,
    data: &[u8],
    limits: &Limits,
    shutdown: &CancellationToken,
) -> Result<(), Ending> {
    let give_up = async {
        shutdown.cancelled().await;
        tokio::time::sleep(limits.shutdown_grace).await;
    };
    tokio::select! {
        // The flush is what puts TLS records on the wire; on plain TCP it does nothing.
        result = async {
            stream.write_all(data).await?;
            stream.flush().await
        } => result.map_err(Ending::from_read_error),
        () = give_up => Err(Ending::Shutdown),
    }
}
