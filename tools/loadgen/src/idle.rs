//! `idle`: open N connections, read each greeting, hold them; how many were held and, with
//! `--server-pid`, the server's resident memory per connection. With several `--target`s (a
//! cluster's nodes) the connections are spread round robin, and each node's figures are
//! reported beside the totals (`held_nI`, `rss_per_conn_kib_nI`), since the question there is
//! what one node holds per client.
//!
//! tokio-chat's connections stay at its username prompt, outside the room: there every join is
//! announced to everyone (the example has no limit), so 10,000 joins make 50 million notices,
//! minutes of work and gigabytes of queues before anything is idle.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::cli::{IdleArgs, secs};
use crate::conn::{CONNECT_DEADLINE, Conn, failure_kind, failures, open, probe};
use crate::lines::Raw;
use crate::proto::BARRIER;
use crate::report::{Report, value_name};
use crate::sys;

/// Bytes read at a time from each connection: what arrives is counted and dropped.
const CHUNK: usize = 4096;

/// Runs the mode; `nofile` is the open-file limit it runs under, for the report.
pub async fn run(args: IdleArgs, nofile: u64) -> Result<Report> {
    let common = &args.common;
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + secs(common.timeout);
    common
        .check_targets(args.proto)
        .map_err(anyhow::Error::msg)?;
    let rss_before = sys::rss_kib_each(&common.server_pids)?;

    // Each connection is read (and what arrives discarded) from the moment it is greeted, as a
    // real client would, so the server's join announcements never back up in its kernel
    // buffers; one that ends is no longer held.
    let counts = Arc::new(IdleCounts {
        open_by_node: (0..common.nodes()).map(|_| AtomicUsize::new(0)).collect(),
        ..IdleCounts::default()
    });
    let gate = Arc::new(Semaphore::new(common.connect_concurrency.max(1)));
    let stop = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..args.clients {
        let (counts, gate, stop) = (counts.clone(), gate.clone(), stop.clone());
        let (target, node, proto) = (common.target_of(index), common.node_of(index), args.proto);
        tasks.spawn(async move {
            let permit = gate.acquire_owned().await;
            let opened =
                tokio::time::timeout(CONNECT_DEADLINE, open(target, proto, index, false, CHUNK))
                    .await
                    .map_err(anyhow::Error::from)
                    .and_then(|opened| opened);
            drop(permit);
            let Conn {
                mut lines,
                writer: _writer, // held: dropping it would send FIN
            } = match opened {
                Ok(conn) => conn,
                Err(error) => return Some(failure_kind(&error)),
            };
            counts.connected.fetch_add(1, Ordering::Relaxed);
            counts.open.fetch_add(1, Ordering::Relaxed);
            counts.open_by_node[node].fetch_add(1, Ordering::Relaxed);
            let mut in_room = false;
            loop {
                while let Some(raw) = lines.next_raw() {
                    if !in_room && matches!(raw, Raw::Line(line) if line.ends_with(BARRIER)) {
                        in_room = true;
                        counts.in_room.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let read = tokio::select! {
                    () = stop.cancelled() => return None,
                    read = lines.fill() => read,
                };
                match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => counts.bytes.fetch_add(n as u64, Ordering::Relaxed),
                };
            }
            counts.open.fetch_sub(1, Ordering::Relaxed);
            counts.open_by_node[node].fetch_sub(1, Ordering::Relaxed);
            None
        });
    }

    // Wait until every connection is open or has failed.
    let mut failed = BTreeMap::<&'static str, usize>::new();
    let mut failures_seen = 0;
    loop {
        while let Some(done) = tasks.try_join_next() {
            match done {
                Ok(Some(kind)) => *failed.entry(kind).or_insert(0) += 1,
                Ok(None) => {}
                Err(_) => *failed.entry("panic").or_insert(0) += 1,
            }
            failures_seen += 1;
        }
        let connected = counts.connected.load(Ordering::Relaxed);
        if connected + failures_seen >= args.clients {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            *failed.entry("timeout").or_insert(0) += args.clients - connected - failures_seen;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let connected = counts.connected.load(Ordering::Relaxed);
    if !args.proto.greets() && connected > 0 {
        // Nothing says the server has taken them in: the probe joins, says its barrier until
        // every open connection heard it, and leaves.
        let mut probe = probe(common.target_of(0), args.proto, args.clients).await?;
        let all_in =
            || counts.in_room.load(Ordering::Relaxed) >= counts.open.load(Ordering::Relaxed);
        if !probe.until(all_in, deadline).await? {
            eprintln!(
                "idle: only {} of {connected} heard the probe",
                counts.in_room.load(Ordering::Relaxed)
            );
        }
    }
    let connect_secs = started.elapsed().as_secs_f64();
    eprintln!(
        "idle: {connected} of {} connected in {connect_secs:.1} s",
        args.clients
    );

    // Wait for the server to settle (nothing arriving for a second), then sample its memory.
    let hold_until = tokio::time::Instant::now() + secs(args.hold);
    let settle_deadline = hold_until.min(deadline);
    let mut last = u64::MAX;
    let mut quiet_since = tokio::time::Instant::now();
    loop {
        let now = tokio::time::Instant::now();
        let seen = counts.bytes.load(Ordering::Relaxed);
        if seen != last {
            last = seen;
            quiet_since = now;
        } else if now >= quiet_since + Duration::from_secs(1) || now >= settle_deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rss_after = sys::rss_kib_each(&common.server_pids)?;
    tokio::time::sleep_until(hold_until.min(deadline)).await;
    let held = counts.open.load(Ordering::Relaxed);
    let held_by_node: Vec<usize> = counts
        .open_by_node
        .iter()
        .map(|open| open.load(Ordering::Relaxed))
        .collect();
    stop.cancel();
    tasks.abort_all();

    let mut report = Report::new("idle");
    report.add("proto", value_name(args.proto));
    report.add("clients", args.clients);
    report.add("connected", connected);
    report.add("held", held);
    report.add("failed", failures(&failed));
    report.add("connect_s", format!("{connect_secs:.2}"));
    report.add("bytes_in", counts.bytes.load(Ordering::Relaxed));
    report.add("nofile", nofile);
    if !rss_before.is_empty() {
        // With several servers: the sums, then each one's own.
        let (before, after) = (
            rss_before.iter().sum::<u64>(),
            rss_after.iter().sum::<u64>(),
        );
        report.add("rss_before_kib", before);
        report.add("rss_after_kib", after);
        let per = after.saturating_sub(before) as f64 / held.max(1) as f64;
        report.add("rss_per_conn_kib", format!("{per:.2}"));
    }
    if common.nodes() > 1 {
        report.add("nodes", common.nodes());
        for (node, held) in held_by_node.iter().enumerate() {
            report.add(format!("held_n{node}"), held);
            if let (Some(before), Some(after)) = (rss_before.get(node), rss_after.get(node)) {
                let per = after.saturating_sub(*before) as f64 / (*held).max(1) as f64;
                report.add(format!("rss_per_conn_kib_n{node}"), format!("{per:.2}"));
            }
        }
    }
    report.complete = held == args.clients;
    Ok(report)
}

/// What the idle connections count together.
#[derive(Default)]
struct IdleCounts {
    /// Greeted so far.
    connected: AtomicUsize,
    /// Greeted and not yet closed by the server.
    open: AtomicUsize,
    /// The same, by server (one entry with a single `--target`).
    open_by_node: Vec<AtomicUsize>,
    /// Heard the probe's barrier (for servers that never say a client is in).
    in_room: AtomicUsize,
    /// Bytes received (and discarded) by all of them.
    bytes: AtomicU64,
}
