//! Lesson 1: `socket()`, `bind()`, `listen(5)` — what each call makes the kernel hold, before
//! any client comes.

use std::io;

use futures_util::future::BoxFuture;

use super::{Experiment, Fact, LOOPBACK, Side, Sock, accept_queue, out_of_order, state, table};
use crate::tcp_table;
use crate::tcpinfo::state_name;

/// The run: the socket as it is made, and what the table listed after `listen()`.
#[derive(Debug, Default)]
pub struct Listen {
    socket: Option<Sock>,
    port: Option<u16>,
    /// The states the table listed for the port after `listen()`.
    listed: Option<Vec<u8>>,
}

impl Experiment for Listen {
    fn step(&mut self, n: usize) -> BoxFuture<'_, io::Result<Vec<Fact>>> {
        Box::pin(async move {
            match n {
                0 => {
                    let socket = Sock::new()?;
                    let facts = vec![
                        Fact::returned(Side::Server, "socket(AF_INET, SOCK_STREAM) = a new socket"),
                        Fact::kernel(Side::Server, state(&socket.info()?)),
                    ];
                    self.socket = Some(socket);
                    Ok(facts)
                }
                1 => {
                    let socket = self.socket.as_ref().ok_or_else(out_of_order)?;
                    socket.reuse_address(true)?;
                    let addr = socket.bind(LOOPBACK)?;
                    self.port = Some(addr.port());
                    let mut facts = vec![Fact::returned(
                        Side::Server,
                        format!("bind(127.0.0.1:0) = 0: the kernel chose {addr}"),
                    )];
                    facts.extend(table(addr.port()).await);
                    Ok(facts)
                }
                2 => {
                    let (socket, port) = self
                        .socket
                        .as_mut()
                        .zip(self.port)
                        .ok_or_else(out_of_order)?;
                    socket.listen(5)?;
                    let info = socket.info()?;
                    let mut facts = vec![
                        Fact::returned(Side::Server, "listen(5) = 0"),
                        Fact::kernel(Side::Server, state(&info)),
                        Fact::kernel(Side::Server, accept_queue(&info)),
                    ];
                    facts.extend(table(port).await);
                    let rows = tcp_table::rows_with_port(port).await?;
                    self.listed = Some(rows.iter().map(|row| row.state).collect());
                    Ok(facts)
                }
                _ => Err(out_of_order()),
            }
        })
    }

    fn outcome(&self) -> Option<usize> {
        let listed = self.listed.as_ref()?;
        let named = |name| listed.iter().any(|&s| state_name(s) == name);
        Some(match () {
            () if named("ESTABLISHED") => 2,
            () if named("LISTEN") => 1,
            () => 0,
        })
    }

    fn server_ports(&self) -> Vec<u16> {
        self.port.into_iter().collect()
    }
}
