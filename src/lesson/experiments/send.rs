//! Lesson 3: `send()` returning is not delivery: the bytes sit in the server's kernel until the
//! server program calls `recv()`.

use std::io;
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::{Experiment, Fact, Pair, Side, WAIT, figure, make_pair, out_of_order, shown};

const LINE: &[u8] = b"hello\n";

/// The run: the connection, and where the line was once `send()` returned.
#[derive(Default)]
pub struct Send {
    pair: Option<Pair>,
    /// Bytes waiting in the client's send queue and in the server's receive queue.
    queued: Option<(u64, u64)>,
}

impl Experiment for Send {
    fn step(&mut self, n: usize) -> BoxFuture<'_, io::Result<Vec<Fact>>> {
        Box::pin(async move {
            match n {
                0 => make_pair(&mut self.pair).await,
                1 => {
                    let pair = self.pair.as_ref().ok_or_else(out_of_order)?;
                    let sent = pair.client.send(LINE)?;
                    // The ACK comes back within microseconds on loopback; give it that long.
                    let client = pair
                        .client
                        .info_when(Duration::from_millis(200), |info| {
                            info.send_queue == Some(0)
                        })
                        .await?;
                    let server = pair.server.info()?;
                    self.queued = Some((
                        client.send_queue.unwrap_or(0),
                        server.recv_queue.unwrap_or(0),
                    ));
                    Ok(vec![
                        Fact::returned(Side::Client, format!("send({}) = {sent}", shown(LINE))),
                        Fact::kernel(
                            Side::Client,
                            format!(
                                "SIOCOUTQ = {}: bytes sent and not yet acknowledged",
                                figure(client.send_queue)
                            ),
                        ),
                        Fact::kernel(
                            Side::Server,
                            format!(
                                "SIOCINQ = {}: received, not yet read",
                                figure(server.recv_queue)
                            ),
                        ),
                    ])
                }
                2 => {
                    let pair = self.pair.as_ref().ok_or_else(out_of_order)?;
                    let read = pair.server.recv(1024, WAIT).await?.unwrap_or_default();
                    let after = pair.server.info()?;
                    Ok(vec![
                        Fact::returned(
                            Side::Server,
                            format!("recv(1024) = {} bytes: {}", read.len(), shown(&read)),
                        ),
                        Fact::kernel(
                            Side::Server,
                            format!("SIOCINQ = {}", figure(after.recv_queue)),
                        ),
                    ])
                }
                _ => Err(out_of_order()),
            }
        })
    }

    fn outcome(&self) -> Option<usize> {
        let (client, server) = self.queued?;
        let length = LINE.len() as u64;
        Some(match () {
            () if server == length => 1,
            () if client > 0 => 2,
            () => 0,
        })
    }

    fn server_ports(&self) -> Vec<u16> {
        self.pair.as_ref().map_or_else(Vec::new, Pair::port)
    }
}
