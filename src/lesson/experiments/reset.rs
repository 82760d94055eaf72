//! Lesson 8: FIN versus RST. A plain `close()` sends FIN and the other side reads end-of-file;
//! with `SO_LINGER` 0 it sends RST and the other side's next call fails with `ECONNRESET`.

use std::io;
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::{
    Experiment, Fact, Pair, Side, Sock, WAIT, out_of_order, pair, state, table, table_settles,
};
use crate::tcpinfo::{CLOSE_WAIT, CLOSED, FIN_WAIT2};

/// What the server's `recv()` after the client's close returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    EndOfFile,
    Reset,
    Other,
}

/// The run: connection A (closed with FIN) and B (closed with RST), and what B's server read.
#[derive(Default)]
pub struct Reset {
    a: Option<Pair>,
    b: Option<(Sock, Option<Sock>)>,
    seen_on_b: Option<Seen>,
}

/// The server's `recv()` after its client closed: the fact and what it was.
async fn read_after_close(server: &Sock) -> (Fact, Seen) {
    let (text, seen) = match server.recv(1024, WAIT).await {
        Ok(Some(bytes)) if bytes.is_empty() => {
            ("recv(1024) = 0: end of file".to_owned(), Seen::EndOfFile)
        }
        Ok(Some(bytes)) => (format!("recv(1024) = {} bytes", bytes.len()), Seen::Other),
        Ok(None) => ("recv(1024) is still waiting".to_owned(), Seen::Other),
        Err(error) if error.kind() == io::ErrorKind::ConnectionReset => {
            ("recv(1024) = -1 ECONNRESET".to_owned(), Seen::Reset)
        }
        Err(error) => (format!("recv(1024) = -1: {error}"), Seen::Other),
    };
    (Fact::returned(Side::Server, text), seen)
}

impl Experiment for Reset {
    fn step(&mut self, n: usize) -> BoxFuture<'_, io::Result<Vec<Fact>>> {
        Box::pin(async move {
            let settle = Duration::from_millis(200);
            match n {
                0 => {
                    let (a, mut facts) = pair().await?;
                    let mut b_client = Sock::new()?;
                    let addr = a.listener.local()?;
                    b_client.connect(addr, WAIT).await?;
                    let b_server = a.listener.accept(WAIT).await?;
                    facts.push(Fact::returned(
                        Side::Client,
                        format!("a second connect(): B is {} → {addr}", b_client.local()?),
                    ));
                    self.a = Some(a);
                    self.b = Some((b_server, Some(b_client)));
                    Ok(facts)
                }
                1 => {
                    let a = self.a.as_mut().ok_or_else(out_of_order)?;
                    let port = a.client.local()?.port();
                    // close(): the socket is dropped, its descriptor closed.
                    let closed = std::mem::replace(&mut a.client, Sock::new()?);
                    drop(closed);
                    let server = a
                        .server
                        .info_when(settle, |info| info.state == Some(CLOSE_WAIT))
                        .await?;
                    // The server's kernel may delay its ACK of the FIN (tens of ms): the
                    // closed client is FIN-WAIT-1 until it comes, FIN-WAIT-2 after.
                    table_settles(port, |rows| rows.iter().any(|row| row.state == FIN_WAIT2))
                        .await?;
                    let mut facts = vec![
                        Fact::returned(Side::Client, "A: close() = 0: a FIN"),
                        Fact::kernel(Side::Server, format!("A: {}", state(&server))),
                    ];
                    facts.extend(table(port).await);
                    Ok(facts)
                }
                2 => {
                    let a = self.a.as_ref().ok_or_else(out_of_order)?;
                    let (fact, _) = read_after_close(&a.server).await;
                    Ok(vec![fact])
                }
                3 => {
                    let (server, client) = self.b.as_mut().ok_or_else(out_of_order)?;
                    let client = client.take().ok_or_else(out_of_order)?;
                    let port = client.local()?.port();
                    client.linger_zero()?;
                    drop(client);
                    let info = server
                        .info_when(settle, |info| info.state == Some(CLOSED))
                        .await?;
                    let mut facts = vec![
                        Fact::returned(
                            Side::Client,
                            "B: setsockopt(SO_LINGER, 0), close() = 0: a RST",
                        ),
                        Fact::kernel(Side::Server, format!("B: {}", state(&info))),
                    ];
                    facts.extend(table(port).await);
                    Ok(facts)
                }
                4 => {
                    let (server, _) = self.b.as_ref().ok_or_else(out_of_order)?;
                    let (fact, seen) = read_after_close(server).await;
                    self.seen_on_b = Some(seen);
                    Ok(vec![fact])
                }
                _ => Err(out_of_order()),
            }
        })
    }

    fn outcome(&self) -> Option<usize> {
        self.seen_on_b.map(|seen| match seen {
            Seen::EndOfFile => 0,
            Seen::Reset => 1,
            Seen::Other => 2,
        })
    }

    fn server_ports(&self) -> Vec<u16> {
        self.a.as_ref().map_or_else(Vec::new, Pair::port)
    }
}
