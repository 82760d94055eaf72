//! Lesson 5: the ~40 ms stall. With Nagle's algorithm on, a second small `send()` waits for the
//! ACK of the first; the server delays that ACK (it hopes to ride it on a reply it is not
//! going to send before the line is whole). `TCP_NODELAY` sends at once.

use std::io;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::time::Instant;

use super::{Experiment, Fact, Pair, Side, WAIT, millis, out_of_order, pair};

/// Round trips of whole lines before the probe: the server's kernel acknowledges at once
/// ("quick ACK") at the start of a connection and delays only once it sees a conversation.
const WARM_UP: usize = 20;

/// Probes per setting; the card shows each and the median decides.
const PROBES: usize = 3;

/// The run: the connection, and the median probe with Nagle on and off.
#[derive(Default)]
pub struct Nagle {
    pair: Option<Pair>,
    with_nagle: Option<Duration>,
}

/// Writes `he`, writes `llo\n`, and waits for the server's answer to the whole line.
async fn probe(pair: &Pair) -> io::Result<Duration> {
    let started = Instant::now();
    pair.client.send(b"he")?;
    pair.client.send(b"llo\n")?;
    round_trip_rest(pair).await?;
    Ok(started.elapsed())
}

/// The server reads until its line is whole and answers; the client reads the answer.
async fn round_trip_rest(pair: &Pair) -> io::Result<()> {
    let mut line = Vec::new();
    while !line.ends_with(b"\n") {
        match pair.server.recv(1024, WAIT).await? {
            Some(read) if !read.is_empty() => line.extend(read),
            _ => return Err(io::Error::other("the line never arrived whole")),
        }
    }
    pair.server.send(b"ok\n")?;
    match pair.client.recv(1024, WAIT).await? {
        Some(read) if !read.is_empty() => Ok(()),
        _ => Err(io::Error::other("the answer never came")),
    }
}

/// Several probes and their median.
async fn probes(pair: &Pair, setting: &str) -> io::Result<(Duration, Vec<Fact>)> {
    let mut times = Vec::with_capacity(PROBES);
    for _ in 0..PROBES {
        times.push(probe(pair).await?);
    }
    let shown: Vec<String> = times.iter().map(|&time| millis(time)).collect();
    times.sort();
    let median = times[PROBES / 2];
    let facts = vec![Fact::clock(
        Side::Client,
        format!(
            "{setting}: send(\"he\"), send(\"llo\\n\"), answer after {} (median; {})",
            millis(median),
            shown.join(", ")
        ),
    )];
    Ok((median, facts))
}

impl Experiment for Nagle {
    fn step(&mut self, n: usize) -> BoxFuture<'_, io::Result<Vec<Fact>>> {
        Box::pin(async move {
            match (n, self.pair.as_ref()) {
                (0, _) => {
                    let (made, mut facts) = pair().await?;
                    made.client.no_delay(false)?;
                    for _ in 0..WARM_UP {
                        made.client.send(b"ping\n")?;
                        round_trip_rest(&made).await?;
                    }
                    facts.push(Fact::returned(
                        Side::Client,
                        format!("{WARM_UP} × send(\"ping\\n\") and its answer: a conversation"),
                    ));
                    self.pair = Some(made);
                    Ok(facts)
                }
                (1, Some(pair)) => {
                    pair.client.no_delay(false)?;
                    let (median, facts) = probes(pair, "Nagle on").await?;
                    self.with_nagle = Some(median);
                    Ok(facts)
                }
                (2, Some(pair)) => {
                    pair.client.no_delay(true)?;
                    let mut facts = vec![Fact::returned(
                        Side::Client,
                        "setsockopt(TCP_NODELAY, 1) = 0",
                    )];
                    facts.extend(probes(pair, "TCP_NODELAY").await?.1);
                    Ok(facts)
                }
                _ => Err(out_of_order()),
            }
        })
    }

    fn outcome(&self) -> Option<usize> {
        let stall = self.with_nagle?;
        Some(match stall.as_millis() {
            0..10 => 0,
            10..120 => 1,
            _ => 2,
        })
    }

    fn server_ports(&self) -> Vec<u16> {
        self.pair.as_ref().map_or_else(Vec::new, Pair::port)
    }
}
