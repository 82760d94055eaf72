//! Lesson 4: TCP carries bytes, not messages: three `send()`s can come out of one `recv()`, and
//! one `send()` out of several.

use std::io;
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::{Experiment, Fact, Pair, Side, WAIT, figure, make_pair, out_of_order, shown};

const LINES: [&[u8]; 3] = [b"one\n", b"two\n", b"three\n"];

/// The size of the one big `send()`: three reads' worth at `recv(1024)`.
const BIG: usize = 3000;

/// The run: the connection, and how many lines the first `recv()` held.
#[derive(Default)]
pub struct Boundaries {
    pair: Option<Pair>,
    lines_in_first_read: Option<usize>,
}

impl Boundaries {
    /// Waits until the server's kernel holds `bytes` unread (or [`WAIT`] passed).
    async fn arrived(pair: &Pair, bytes: u64) -> io::Result<Fact> {
        let info = pair
            .server
            .info_when(WAIT, |info| info.recv_queue >= Some(bytes))
            .await?;
        Ok(Fact::kernel(
            Side::Server,
            format!("SIOCINQ = {}: waiting for recv()", figure(info.recv_queue)),
        ))
    }
}

impl Experiment for Boundaries {
    fn step(&mut self, n: usize) -> BoxFuture<'_, io::Result<Vec<Fact>>> {
        Box::pin(async move {
            let made = self.pair.as_ref();
            match (n, made) {
                (0, _) => make_pair(&mut self.pair).await,
                (1, Some(pair)) => {
                    let before = pair.client.info()?.data_segs_out;
                    let mut facts = Vec::new();
                    for line in LINES {
                        let sent = pair.client.send(line)?;
                        facts.push(Fact::returned(
                            Side::Client,
                            format!("send({}) = {sent}", shown(line)),
                        ));
                    }
                    let total: usize = LINES.iter().map(|line| line.len()).sum();
                    facts.push(Self::arrived(pair, total as u64).await?);
                    let after = pair.client.info()?.data_segs_out;
                    if let (Some(before), Some(after)) = (before, after) {
                        facts.push(Fact::kernel(
                            Side::Client,
                            format!(
                                "tcpi_data_segs_out +{}: segments carrying data",
                                after - before
                            ),
                        ));
                    }
                    Ok(facts)
                }
                (2, Some(pair)) => {
                    let read = pair.server.recv(1024, WAIT).await?.unwrap_or_default();
                    let lines = read.iter().filter(|&&b| b == b'\n').count();
                    self.lines_in_first_read = Some(lines);
                    Ok(vec![Fact::returned(
                        Side::Server,
                        format!(
                            "recv(1024) = {} bytes, {lines} lines: {}",
                            read.len(),
                            shown(&read)
                        ),
                    )])
                }
                (3, Some(pair)) => {
                    let big = vec![b'x'; BIG];
                    let sent = pair.client.send(&big)?;
                    Ok(vec![
                        Fact::returned(Side::Client, format!("send({BIG} bytes) = {sent}")),
                        Self::arrived(pair, sent as u64).await?,
                    ])
                }
                (4, Some(pair)) => {
                    let mut facts = Vec::new();
                    // Bounded: 3000 bytes are three reads; a few more cannot hurt.
                    for _ in 0..8 {
                        match pair.server.recv(1024, Duration::from_millis(50)).await? {
                            Some(read) if !read.is_empty() => facts.push(Fact::returned(
                                Side::Server,
                                format!("recv(1024) = {} bytes", read.len()),
                            )),
                            _ => break,
                        }
                    }
                    Ok(facts)
                }
                _ => Err(out_of_order()),
            }
        })
    }

    fn outcome(&self) -> Option<usize> {
        self.lines_in_first_read
            .map(|lines| if lines >= LINES.len() { 1 } else { 0 })
    }

    fn server_ports(&self) -> Vec<u16> {
        self.pair.as_ref().map_or_else(Vec::new, Pair::port)
    }
}
