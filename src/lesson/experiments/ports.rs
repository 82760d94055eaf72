//! Lesson 10: ports and 4-tuples. Two clients of one server port are told apart by their own
//! ports; the side that closes first keeps each connection's 4-tuple in TIME-WAIT, and a server
//! restarted at once cannot `bind()` its port again without `SO_REUSEADDR`.

use std::io;
use std::net::SocketAddr;

use futures_util::future::BoxFuture;

use super::{Experiment, Fact, Side, Sock, WAIT, listener, out_of_order, table, table_settles};

/// The run: the server's address, its connections, and whether the plain `bind()` failed.
#[derive(Default)]
pub struct Ports {
    addr: Option<SocketAddr>,
    listener: Option<Sock>,
    /// (client, server's end) of each connection.
    connections: Vec<(Sock, Sock)>,
    plain_bind_in_use: Option<bool>,
}

impl Experiment for Ports {
    fn step(&mut self, n: usize) -> BoxFuture<'_, io::Result<Vec<Fact>>> {
        Box::pin(async move {
            match n {
                0 => {
                    let (socket, addr) = listener(5)?;
                    let mut facts =
                        vec![Fact::returned(Side::Server, format!("listen(5) on {addr}"))];
                    for number in 1..=2 {
                        let mut client = Sock::new()?;
                        client.connect(addr, WAIT).await?;
                        let server = socket.accept(WAIT).await?;
                        facts.push(Fact::returned(
                            Side::Client,
                            format!("#{number} {} → {}", client.local()?, client.peer()?),
                        ));
                        self.connections.push((client, server));
                    }
                    facts.extend(table(addr.port()).await);
                    self.addr = Some(addr);
                    self.listener = Some(socket);
                    Ok(facts)
                }
                1 => {
                    let addr = self.addr.ok_or_else(out_of_order)?;
                    // The server closes first; each client reads the end and closes too.
                    for (client, server) in std::mem::take(&mut self.connections) {
                        drop(server);
                        let _ = client.recv(1024, WAIT).await?;
                        drop(client);
                    }
                    self.listener = None;
                    table_settles(addr.port(), |rows| {
                        rows.iter()
                            .all(|row| row.state == crate::tcpinfo::TIME_WAIT)
                    })
                    .await?;
                    let mut facts = vec![Fact::returned(
                        Side::Server,
                        "close() each connection first, then the listener",
                    )];
                    facts.extend(table(addr.port()).await);
                    Ok(facts)
                }
                2 => {
                    let addr = self.addr.ok_or_else(out_of_order)?;
                    let socket = Sock::new()?;
                    socket.reuse_address(false)?;
                    let text = match socket.bind(addr) {
                        Ok(_) => {
                            self.plain_bind_in_use = Some(false);
                            format!("bind({addr}) = 0")
                        }
                        Err(error) if error.kind() == io::ErrorKind::AddrInUse => {
                            self.plain_bind_in_use = Some(true);
                            format!("bind({addr}) = -1 EADDRINUSE")
                        }
                        // Neither choice: the verdict stays undecided, and the card says why.
                        Err(error) => format!("bind({addr}) = -1: {error}"),
                    };
                    Ok(vec![
                        Fact::returned(Side::Server, "a new socket(), SO_REUSEADDR off"),
                        Fact::returned(Side::Server, text),
                    ])
                }
                3 => {
                    let addr = self.addr.ok_or_else(out_of_order)?;
                    let socket = Sock::new()?;
                    socket.reuse_address(true)?;
                    let text = match socket.bind(addr) {
                        Ok(_) => format!("bind({addr}) = 0"),
                        Err(error) => format!("bind({addr}) = -1: {error}"),
                    };
                    Ok(vec![
                        Fact::returned(Side::Server, "a new socket(), setsockopt(SO_REUSEADDR, 1)"),
                        Fact::returned(Side::Server, text),
                    ])
                }
                _ => Err(out_of_order()),
            }
        })
    }

    fn outcome(&self) -> Option<usize> {
        self.plain_bind_in_use
            .map(|in_use| if in_use { 1 } else { 0 })
    }

    fn server_ports(&self) -> Vec<u16> {
        self.addr.iter().map(|addr| addr.port()).collect()
    }
}
