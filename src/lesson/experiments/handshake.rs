//! Lesson 2: the handshake is the kernel's: a client's `connect()` returns ESTABLISHED while
//! the server has not called `accept()`; the connection waits in the accept queue.

use std::io;

use futures_util::future::BoxFuture;

use super::{
    Experiment, Fact, Side, Sock, WAIT, accept_queue, elapsed, listener, out_of_order, state, table,
};
use crate::tcpinfo::ESTABLISHED;
use std::net::SocketAddr;
use tokio::time::Instant;

/// The run: the listener, the client, and what the client saw before any `accept()`.
#[derive(Debug, Default)]
pub struct Handshake {
    listener: Option<(Sock, SocketAddr)>,
    client: Option<Sock>,
    /// The server's end, once accepted: kept, so the connection stays open.
    accepted: Option<Sock>,
    /// Whether `connect()` returned with the connection ESTABLISHED and not yet accepted.
    established_before_accept: Option<bool>,
}

impl Experiment for Handshake {
    fn step(&mut self, n: usize) -> BoxFuture<'_, io::Result<Vec<Fact>>> {
        Box::pin(async move {
            match n {
                0 => {
                    let (socket, addr) = listener(5)?;
                    let facts = vec![
                        Fact::returned(Side::Server, format!("listen(5) on {addr}")),
                        Fact::kernel(Side::Server, accept_queue(&socket.info()?)),
                    ];
                    self.listener = Some((socket, addr));
                    Ok(facts)
                }
                1 => {
                    let (listener, addr) = self.listener.as_ref().ok_or_else(out_of_order)?;
                    let mut client = Sock::new()?;
                    let started = Instant::now();
                    let result = client.connect(*addr, WAIT).await;
                    let took = elapsed(started);
                    let mut facts = match &result {
                        Ok(()) => vec![Fact::returned(
                            Side::Client,
                            format!("connect() = 0 after {took}"),
                        )],
                        Err(error) => vec![Fact::returned(
                            Side::Client,
                            format!("connect() failed after {took}: {error}"),
                        )],
                    };
                    let info = client.info()?;
                    // connect() returns when the SYN-ACK arrives; the server's kernel queues the
                    // connection when our ACK reaches it, an instant later on another CPU.
                    let queue = listener
                        .info_when(WAIT, |info| info.unacked >= Some(1))
                        .await?;
                    facts.push(Fact::kernel(Side::Client, state(&info)));
                    facts.push(Fact::kernel(Side::Server, accept_queue(&queue)));
                    facts.extend(table(addr.port()).await);
                    self.established_before_accept = Some(
                        result.is_ok()
                            && info.state == Some(ESTABLISHED)
                            && queue.unacked.unwrap_or(0) >= 1,
                    );
                    self.client = Some(client);
                    Ok(facts)
                }
                2 => {
                    let (listener, _) = self.listener.as_ref().ok_or_else(out_of_order)?;
                    let accepted = listener.accept(WAIT).await?;
                    let facts = Ok(vec![
                        Fact::returned(
                            Side::Server,
                            format!(
                                "accept() = a new socket: {} ⇄ {}",
                                accepted.local()?,
                                accepted.peer()?
                            ),
                        ),
                        Fact::kernel(Side::Server, accept_queue(&listener.info()?)),
                    ]);
                    self.accepted = Some(accepted);
                    facts
                }
                _ => Err(out_of_order()),
            }
        })
    }

    fn outcome(&self) -> Option<usize> {
        self.established_before_accept
            .map(|established| if established { 1 } else { 0 })
    }

    fn server_ports(&self) -> Vec<u16> {
        self.listener.iter().map(|(_, addr)| addr.port()).collect()
    }
}
