//! Lesson 6: a reader that stops reading. Nothing is lost: the server's buffer fills, its
//! window goes to 0, the client's buffer fills behind it, and then `send()` takes no more.

use std::io;
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::{Experiment, Fact, Pair, Side, WAIT, figure, make_pair, out_of_order};

/// The size of each `send()`.
const CHUNK: usize = 64 * 1024;

/// At most this many `send()`s: far more than any buffer this machine allows (the kernel's
/// largest, `tcp_wmem` + `tcp_rmem`, is a few MiB), so the loop ends by itself either way.
const MOST_SENDS: usize = 4096;

/// The run: the connection, what `send()` took before it stopped, and what the server read.
#[derive(Default)]
pub struct StopReading {
    pair: Option<Pair>,
    /// Bytes `send()` took, and whether it then said it would block.
    sent: Option<(u64, bool)>,
    read: Option<u64>,
}

impl Experiment for StopReading {
    fn step(&mut self, n: usize) -> BoxFuture<'_, io::Result<Vec<Fact>>> {
        Box::pin(async move {
            match (n, self.pair.as_ref()) {
                (0, _) => make_pair(&mut self.pair).await,
                (1, Some(pair)) => {
                    let chunk = vec![b'z'; CHUNK];
                    let (mut total, mut calls, mut blocked) = (0u64, 0usize, false);
                    while calls < MOST_SENDS {
                        match pair.client.send(&chunk) {
                            Ok(sent) => {
                                total += sent as u64;
                                calls += 1;
                            }
                            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                                blocked = true;
                                break;
                            }
                            Err(error) => return Err(error),
                        }
                    }
                    self.sent = Some((total, blocked));
                    let client = pair
                        .client
                        .info_when(Duration::from_millis(500), |info| info.snd_wnd == Some(0))
                        .await?;
                    let server = pair.server.info()?;
                    let ending = match blocked {
                        true => "then -1 EAGAIN: it would block",
                        false => "and it never blocked",
                    };
                    Ok(vec![
                        Fact::returned(
                            Side::Client,
                            format!("{calls} × send(64 KiB) took {total} bytes, {ending}"),
                        ),
                        Fact::kernel(
                            Side::Server,
                            format!(
                                "SIOCINQ = {}: received, never read",
                                figure(server.recv_queue)
                            ),
                        ),
                        Fact::kernel(
                            Side::Client,
                            format!(
                                "SIOCOUTQ = {}: still in the client's kernel",
                                figure(client.send_queue)
                            ),
                        ),
                        Fact::kernel(
                            Side::Client,
                            format!(
                                "tcpi_snd_wnd = {}: the server's window",
                                figure(client.snd_wnd)
                            ),
                        ),
                    ])
                }
                (2, Some(pair)) => {
                    let (mut read, mut calls) = (0u64, 0usize);
                    let sent = self.sent.map_or(0, |(sent, _)| sent);
                    // Until every byte sent is read, or nothing comes for WAIT (a loaded
                    // machine can pause for longer than a moment); bounded like the sends.
                    while read < sent && calls < MOST_SENDS * 4 {
                        match pair.server.recv(CHUNK, WAIT).await? {
                            Some(bytes) if !bytes.is_empty() => {
                                read += bytes.len() as u64;
                                calls += 1;
                            }
                            _ => break,
                        }
                    }
                    self.read = Some(read);
                    Ok(vec![
                        Fact::returned(
                            Side::Server,
                            format!("{calls} × recv(64 KiB) read {read} bytes"),
                        ),
                        Fact::counted(
                            Side::Kernel,
                            match read >= sent {
                                true => format!("sent {sent}, read {read}: 0 lost"),
                                // TCP loses nothing; bytes still missing were slow, not gone.
                                false => format!(
                                    "sent {sent}, read {read}: {} not read within {} s",
                                    sent - read,
                                    WAIT.as_secs()
                                ),
                            },
                        ),
                    ])
                }
                _ => Err(out_of_order()),
            }
        })
    }

    fn outcome(&self) -> Option<usize> {
        let (sent, blocked) = self.sent?;
        let read = self.read?;
        // Bytes not read in time are undecided, never "lost": the card says which.
        match () {
            () if read < sent => None,
            () if blocked => Some(1),
            () => Some(2),
        }
    }

    fn server_ports(&self) -> Vec<u16> {
        self.pair.as_ref().map_or_else(Vec::new, Pair::port)
    }
}
