//! Lesson 9: how connecting fails. A port nobody listens on answers the SYN with RST at once
//! (`ECONNREFUSED`); a listener whose accept queue is full drops the SYN, and the client's
//! kernel sends it again after a second: `connect()` waits, it is not refused.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::time::Instant;

use super::{
    Experiment, Fact, LOOPBACK, Side, Sock, WAIT, accept_queue, elapsed, figure, listener,
    out_of_order, state,
};
use crate::tcpinfo::SYN_SENT;

/// How long the third client is watched: past the first SYN retransmission (after 1 s).
const WATCH: Duration = Duration::from_millis(2500);

/// What happened to the third client's `connect()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Third {
    Refused,
    Waiting,
    Connected,
    /// Another error: this run shows none of the choices.
    Failed,
}

/// The run: the listener nobody accepts on, its clients, and how the third fared.
#[derive(Default)]
pub struct Backlog {
    /// The port nobody listens on.
    refusing: Option<u16>,
    listener: Option<(Sock, SocketAddr)>,
    clients: Vec<Sock>,
    third: Option<Third>,
}

impl Experiment for Backlog {
    fn step(&mut self, n: usize) -> BoxFuture<'_, io::Result<Vec<Fact>>> {
        Box::pin(async move {
            match n {
                0 => {
                    // A port bound and not listening: nobody can take it while we look.
                    let closed = Sock::new()?;
                    let addr = closed.bind(LOOPBACK)?;
                    self.refusing = Some(addr.port());
                    let mut client = Sock::new()?;
                    let started = Instant::now();
                    let result = client.connect(addr, WAIT).await;
                    let took = elapsed(started);
                    let text = match result {
                        Err(error) if error.kind() == io::ErrorKind::ConnectionRefused => {
                            format!("connect({addr}) = -1 ECONNREFUSED after {took}")
                        }
                        Err(error) => format!("connect({addr}) failed after {took}: {error}"),
                        Ok(()) => format!("connect({addr}) = 0 after {took}"),
                    };
                    Ok(vec![
                        Fact::returned(Side::Client, text),
                        Fact::inferred(
                            Side::Kernel,
                            "the SYN was answered with RST: that is what ECONNREFUSED means",
                        ),
                    ])
                }
                1 => {
                    let (socket, addr) = listener(1)?;
                    let facts = vec![
                        Fact::returned(
                            Side::Server,
                            format!("listen(1) on {addr}; no accept() ever"),
                        ),
                        Fact::kernel(Side::Server, accept_queue(&socket.info()?)),
                    ];
                    self.listener = Some((socket, addr));
                    Ok(facts)
                }
                2 => {
                    let (listener, addr) = self.listener.as_ref().ok_or_else(out_of_order)?;
                    let mut facts = Vec::new();
                    for number in 1..=2 {
                        let mut client = Sock::new()?;
                        let result = client.connect(*addr, WAIT).await;
                        let text = match &result {
                            Ok(()) => format!("#{number} connect() = 0"),
                            Err(error) => format!("#{number} connect() failed: {error}"),
                        };
                        facts.push(Fact::returned(Side::Client, text));
                        facts.push(Fact::kernel(
                            Side::Client,
                            format!("#{number} {}", state(&client.info()?)),
                        ));
                        self.clients.push(client);
                    }
                    // Both ACKs reach the listener an instant after connect() returns: wait
                    // for both to be queued, so the queue is full before client 3's SYN.
                    let queue = listener
                        .info_when(WAIT, |info| info.unacked >= Some(2))
                        .await?;
                    facts.push(Fact::kernel(Side::Server, accept_queue(&queue)));
                    Ok(facts)
                }
                3 => {
                    let (listener, addr) = self.listener.as_ref().ok_or_else(out_of_order)?;
                    let mut client = Sock::new()?;
                    let started = Instant::now();
                    client.start_connect(*addr)?;
                    let (text, third) = match client.connected(WATCH).await {
                        Ok(true) => ("#3 connect() = 0".to_owned(), Third::Connected),
                        Ok(false) => (
                            format!("#3 connect() still waiting after {}", elapsed(started)),
                            Third::Waiting,
                        ),
                        Err(error) if error.kind() == io::ErrorKind::ConnectionRefused => {
                            ("#3 connect() = -1 ECONNREFUSED".to_owned(), Third::Refused)
                        }
                        Err(error) => (format!("#3 connect() failed: {error}"), Third::Failed),
                    };
                    self.third = Some(third);
                    let info = client
                        .info_when(WAIT, |info| {
                            info.state != Some(SYN_SENT) || info.retransmits >= Some(1)
                        })
                        .await?;
                    let facts = vec![
                        Fact::returned(Side::Client, text),
                        Fact::kernel(Side::Client, format!("#3 {}", state(&info))),
                        Fact::kernel(
                            Side::Client,
                            format!(
                                "#3 tcpi_total_retrans = {}: SYNs sent again",
                                figure(info.retransmits)
                            ),
                        ),
                        Fact::kernel(Side::Server, accept_queue(&listener.info()?)),
                    ];
                    self.clients.push(client);
                    Ok(facts)
                }
                _ => Err(out_of_order()),
            }
        })
    }

    fn outcome(&self) -> Option<usize> {
        match self.third? {
            Third::Refused => Some(0),
            Third::Waiting => Some(1),
            Third::Connected => Some(2),
            Third::Failed => None,
        }
    }

    fn server_ports(&self) -> Vec<u16> {
        self.refusing
            .into_iter()
            .chain(self.listener.iter().map(|(_, addr)| addr.port()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_third_connect_that_fails_otherwise_shows_no_choice() {
        let shown = |third| {
            Backlog {
                third: Some(third),
                ..Backlog::default()
            }
            .outcome()
        };
        assert_eq!(shown(Third::Refused), Some(0));
        assert_eq!(shown(Third::Waiting), Some(1));
        assert_eq!(shown(Third::Failed), None, "not 'refused'");
    }
}
