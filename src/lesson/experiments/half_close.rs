//! Lesson 7: FIN closes one direction. After the client's `shutdown(SHUT_WR)` the server reads
//! end-of-file, and can still send: the client still reads.

use std::io;
use std::net::Shutdown;
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::{Experiment, Fact, Pair, Side, WAIT, make_pair, out_of_order, shown, state};
use crate::tcpinfo::{CLOSE_WAIT, FIN_WAIT2};

/// The run: the connection, and what the client read after its own FIN.
#[derive(Default)]
pub struct HalfClose {
    pair: Option<Pair>,
    read_after_fin: Option<usize>,
}

impl Experiment for HalfClose {
    fn step(&mut self, n: usize) -> BoxFuture<'_, io::Result<Vec<Fact>>> {
        Box::pin(async move {
            match (n, self.pair.as_ref()) {
                (0, _) => make_pair(&mut self.pair).await,
                (1, Some(pair)) => {
                    pair.client.shutdown(Shutdown::Write)?;
                    let settle = Duration::from_millis(200);
                    let client = pair
                        .client
                        .info_when(settle, |info| info.state == Some(FIN_WAIT2))
                        .await?;
                    let server = pair
                        .server
                        .info_when(settle, |info| info.state == Some(CLOSE_WAIT))
                        .await?;
                    Ok(vec![
                        Fact::returned(Side::Client, "shutdown(SHUT_WR) = 0: a FIN"),
                        Fact::kernel(Side::Client, state(&client)),
                        Fact::kernel(Side::Server, state(&server)),
                    ])
                }
                (2, Some(pair)) => {
                    let read = pair.server.recv(1024, WAIT).await?;
                    let text = match read {
                        Some(bytes) if bytes.is_empty() => "recv(1024) = 0: end of file".to_owned(),
                        Some(bytes) => format!("recv(1024) = {} bytes", bytes.len()),
                        None => "recv(1024) is still waiting".to_owned(),
                    };
                    Ok(vec![Fact::returned(Side::Server, text)])
                }
                (3, Some(pair)) => {
                    let sent = pair.server.send(b"bye\n")?;
                    Ok(vec![Fact::returned(
                        Side::Server,
                        format!("send(\"bye\\n\") = {sent}"),
                    )])
                }
                (4, Some(pair)) => {
                    let read = pair.client.recv(1024, WAIT).await;
                    let fact = match &read {
                        Ok(Some(bytes)) => {
                            self.read_after_fin = Some(bytes.len());
                            format!("recv(1024) = {} bytes: {}", bytes.len(), shown(bytes))
                        }
                        Ok(None) => {
                            self.read_after_fin = Some(0);
                            "recv(1024) is still waiting".to_owned()
                        }
                        Err(error) => {
                            self.read_after_fin = Some(0);
                            format!("recv(1024) = -1: {error}")
                        }
                    };
                    Ok(vec![
                        Fact::returned(Side::Client, fact),
                        Fact::kernel(Side::Client, state(&pair.client.info()?)),
                    ])
                }
                _ => Err(out_of_order()),
            }
        })
    }

    fn outcome(&self) -> Option<usize> {
        self.read_after_fin.map(|read| if read > 0 { 1 } else { 0 })
    }

    fn server_ports(&self) -> Vec<u16> {
        self.pair.as_ref().map_or_else(Vec::new, Pair::port)
    }
}
