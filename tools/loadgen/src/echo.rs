//! `echo`: C connections each send a short message and wait for the whole reply, repeatedly;
//! round trips per second against the article's echo server (`tcpchat --serve --mode echo`, or
//! `peers/echo_server.py`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::cli::{EchoArgs, secs};
use crate::conn::CONNECT_DEADLINE;
use crate::proto::ECHO_GREETING;
use crate::report::{Report, ms, percentile, value_name};
use crate::sys;

/// Longest wait for one echo reply.
const REPLY_DEADLINE: Duration = Duration::from_secs(5);

/// What one echo connection counted.
struct EchoTally {
    round_trips: u64,
    rtts: Vec<u64>,
    error: Option<String>,
}

/// One connection: greeted, then round trips until the deadline `go` announces.
async fn echo_conn(
    target: SocketAddr,
    index: usize,
    ready: Arc<AtomicUsize>,
    mut go: watch::Receiver<Option<tokio::time::Instant>>,
) -> Result<EchoTally> {
    let mut stream = TcpStream::connect(target).await?;
    stream.set_nodelay(true)?;
    let mut greeting = vec![0; ECHO_GREETING.len()];
    tokio::time::timeout(REPLY_DEADLINE, stream.read_exact(&mut greeting))
        .await
        .context("no greeting")??;
    if greeting != ECHO_GREETING.as_bytes() {
        bail!(
            "unexpected greeting {:?}",
            String::from_utf8_lossy(&greeting)
        );
    }
    ready.fetch_add(1, Ordering::Relaxed);
    let end = go
        .wait_for(Option::is_some)
        .await?
        .unwrap_or_else(tokio::time::Instant::now);
    let message = format!("ping {index:04} hello");
    let mut tally = EchoTally {
        round_trips: 0,
        rtts: Vec::new(),
        error: None,
    };
    let mut reply = Vec::new();
    while tokio::time::Instant::now() < end {
        let expected = format!("第{}条信息:{message}", tally.round_trips + 1);
        reply.resize(expected.len(), 0);
        let sent = Instant::now();
        let trip = async {
            stream.write_all(message.as_bytes()).await?;
            stream.read_exact(&mut reply).await?;
            anyhow::Ok(())
        };
        match tokio::time::timeout(REPLY_DEADLINE, trip).await {
            Ok(Ok(())) if reply == expected.as_bytes() => {}
            Ok(Ok(())) => {
                tally.error = Some(format!(
                    "unexpected reply {:?}",
                    String::from_utf8_lossy(&reply)
                ));
                break;
            }
            Ok(Err(error)) => {
                tally.error = Some(format!("{error:#}"));
                break;
            }
            Err(_) => {
                tally.error = Some("reply timed out".to_owned());
                break;
            }
        }
        if tokio::time::Instant::now() > end {
            break; // counted in the time it took: only trips done by the end count
        }
        tally
            .rtts
            .push(u64::try_from(sent.elapsed().as_nanos()).unwrap_or(u64::MAX));
        tally.round_trips += 1;
    }
    let _ = stream.write_all(b"exit").await;
    Ok(tally)
}

/// Runs the mode.
pub async fn run(args: EchoArgs) -> Result<Report> {
    anyhow::ensure!(
        !crate::tls::enabled(),
        "--tls is for idle and fanout, not echo"
    );
    let common = &args.common;
    anyhow::ensure!(
        common.targets.len() == 1,
        "echo measures one server: give one --target"
    );
    common
        .check_targets(crate::proto::Proto::Chat)
        .map_err(anyhow::Error::msg)?;
    let deadline = tokio::time::Instant::now() + secs(common.timeout);
    let (go_tx, go_rx) = watch::channel(None);
    let ready = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..args.conns {
        tasks.spawn(echo_conn(
            common.target_of(index),
            index,
            ready.clone(),
            go_rx.clone(),
        ));
    }
    // Start together once every connection is greeted (or has failed: it is counted below).
    let greet_deadline = tokio::time::Instant::now() + CONNECT_DEADLINE;
    while ready.load(Ordering::Relaxed) + (args.conns - tasks.len()) < args.conns
        && tokio::time::Instant::now() < greet_deadline.min(deadline)
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let cpu_start = (!common.server_pids.is_empty())
        .then(|| sys::CpuTimesAll::of(&common.server_pids))
        .transpose()?;
    let started = tokio::time::Instant::now();
    let end = started + secs(args.seconds);
    go_tx.send_replace(Some(end));
    // The server's CPU time up to the end, before the connections say `exit` (a thread per
    // connection ends with it).
    tokio::time::sleep_until(end.min(deadline)).await;
    let cpu_end = (!common.server_pids.is_empty())
        .then(|| sys::CpuTimesAll::of(&common.server_pids))
        .transpose()?;
    let elapsed = started.elapsed().as_secs_f64();

    let mut round_trips = 0u64;
    let mut rtts = Vec::new();
    let mut errors = BTreeMap::<String, usize>::new();
    let mut timed_out = false;
    loop {
        match tokio::time::timeout_at(deadline, tasks.join_next()).await {
            Ok(Some(Ok(Ok(tally)))) => {
                round_trips += tally.round_trips;
                rtts.extend(tally.rtts);
                if let Some(error) = tally.error {
                    *errors.entry(error).or_insert(0) += 1;
                }
            }
            Ok(Some(Ok(Err(error)))) => *errors.entry(format!("{error:#}")).or_insert(0) += 1,
            Ok(Some(Err(_))) => *errors.entry("panic".to_owned()).or_insert(0) += 1,
            Ok(None) => break,
            Err(_) => {
                timed_out = true;
                tasks.abort_all();
                break;
            }
        }
    }
    for (error, count) in &errors {
        eprintln!("echo: {count} connection(s): {error}");
    }

    let mut report = Report::new("echo");
    report.add("proto", value_name(args.proto));
    report.add("conns", args.conns);
    report.add("seconds", format!("{elapsed:.3}"));
    report.add("round_trips", round_trips);
    report.add(
        "round_trips_per_s",
        format!("{:.0}", round_trips as f64 / elapsed),
    );
    report.add("errors", errors.values().sum::<usize>());
    if !rtts.is_empty() {
        report.add("p50_ms", ms(percentile(&mut rtts, 0.50)));
        report.add("p99_ms", ms(percentile(&mut rtts, 0.99)));
    }
    if let (Some(start), Some(end)) = (cpu_start, cpu_end) {
        let cpu = end.seconds_since(&start);
        report.add("server_cpu_s", format!("{cpu:.3}"));
        report.add(
            "server_cpu_us_per_round_trip",
            format!("{:.3}", cpu * 1e6 / round_trips.max(1) as f64),
        );
    }
    report.add("timed_out", timed_out);
    report.complete = !timed_out && errors.is_empty() && round_trips > 0;
    Ok(report)
}
