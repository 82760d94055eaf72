//! `fanout`: N clients join a room, K of them send M lines each (as fast as possible, or paced
//! with `--rate`); every client checks every line it gets and counts deliveries, lost,
//! duplicated and mangled lines, and the latency from the send timestamp inside each line. With
//! `--server-pid`, the server's CPU time per delivery.
//!
//! With several `--target`s (the nodes of one cluster, one room spanning them) client i talks
//! to node i mod n, senders included, and every delivery is also counted as *same-node* (its
//! sender on the receiver's node) or *cross-node*: the figures apart (`expected_cross`,
//! `lost_cross`, `cross_p99_ms`...) say what going through the cluster's engine costs, and a
//! cluster that does not carry lines between nodes shows as cross-node lines lost, once the
//! run settles (`--settle`), not as a hang.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::cli::{FanoutArgs, secs};
use crate::conn::{enter_all, failures, open_all, probe};
use crate::data::data_line;
use crate::lines::{Lines, Raw};
use crate::proto::{Classifier, Proto, Received};
use crate::report::{Report, ms, percentile, value_name};
use crate::sys;
use crate::tls::{Read, Write};

/// Bytes read at a time by each receiver.
const CHUNK: usize = 64 * 1024;

/// What one receiver counted.
#[derive(Default)]
struct Tally {
    seen: Vec<u64>,
    unique: u64,
    duplicated: u64,
    mangled: u64,
    notices: u64,
    /// The first notice, for the log.
    first_notice: Option<String>,
    /// Latencies of the lines from senders on this receiver's server (all, with one server).
    latencies: Vec<u64>,
    /// Latencies of the lines from senders on other servers.
    cross: Vec<u64>,
    /// Distinct data lines from senders on other servers.
    unique_cross: u64,
    /// This receiver's server, by position among the targets.
    node: usize,
    last_ns: u64,
    ended: Option<&'static str>,
    /// Whether the probe's barrier arrived (see [`crate::proto`]).
    in_room: bool,
}

impl Tally {
    /// Counts one line; true if it is the first barrier.
    fn take(&mut self, received: Received, now_ns: u64, shared: &Shared) -> bool {
        let (senders, lines) = (shared.senders, shared.lines);
        match received {
            Received::Data(data) if data.sender < senders && data.seq < lines => {
                let bit = data.sender * lines as usize + data.seq as usize;
                let (word, mask) = (bit / 64, 1u64 << (bit % 64));
                if self.seen[word] & mask != 0 {
                    self.duplicated += 1;
                    return false;
                }
                self.seen[word] |= mask;
                self.unique += 1;
                let latency = now_ns.saturating_sub(data.sent_ns);
                // Sender k is client k, so it talks to server k mod n.
                if data.sender % shared.nodes == self.node {
                    self.latencies.push(latency);
                } else {
                    self.unique_cross += 1;
                    self.cross.push(latency);
                }
                self.last_ns = now_ns;
            }
            Received::Data(_) | Received::Mangled => self.mangled += 1,
            Received::Notice => self.notices += 1,
            Received::Barrier => return !std::mem::replace(&mut self.in_room, true),
            Received::Event => {}
        }
        false
    }
}

/// What every receiver shares with the coordinator.
struct Shared {
    epoch: Instant,
    proto: Proto,
    size: usize,
    senders: usize,
    lines: u32,
    /// Servers the clients are spread over.
    nodes: usize,
    delivered: AtomicU64,
    /// Receivers that heard the probe's barrier.
    in_room: AtomicUsize,
    stop: CancellationToken,
}

impl Shared {
    fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Reads and checks every line until `expected` distinct data lines arrived, the connection
/// ends, or the run stops.
async fn receive(
    mut incoming: Lines<Read>,
    shared: Arc<Shared>,
    expected: u64,
    node: usize,
) -> Tally {
    let words = (shared.senders * shared.lines as usize).div_ceil(64);
    let mut tally = Tally {
        seen: vec![0; words],
        node,
        ..Tally::default()
    };
    let mut classifier = Classifier::new(shared.proto, shared.size);
    let mut now_ns = shared.now_ns();
    loop {
        let before = tally.unique;
        while let Some(raw) = incoming.next_raw() {
            let received = match raw {
                Raw::Line(line) => {
                    let received = classifier.classify(line);
                    if received == Received::Notice && tally.first_notice.is_none() {
                        tally.first_notice = Some(String::from_utf8_lossy(line).into_owned());
                    }
                    received
                }
                // A line longer than any that was sent.
                Raw::TooLong => Received::Mangled,
            };
            if tally.take(received, now_ns, &shared) {
                shared.in_room.fetch_add(1, Ordering::Relaxed);
            }
        }
        shared
            .delivered
            .fetch_add(tally.unique - before, Ordering::Relaxed);
        // Done when every expected line is in, and the barrier too where there is one (a
        // sender of a server that sends it nothing expects no line, but must hear it).
        if tally.unique >= expected && (tally.in_room || !shared.proto.needs_barrier()) {
            break;
        }
        let read = tokio::select! {
            () = shared.stop.cancelled() => break,
            read = incoming.fill() => read,
        };
        now_ns = shared.now_ns();
        match read {
            Ok(0) => {
                tally.ended = Some("eof");
                break;
            }
            Ok(_) => {}
            Err(_) => {
                tally.ended = Some("error");
                break;
            }
        }
    }
    tally
}

/// Sends `lines` data lines, one write each, paced if `rate` is set; returns the write half
/// (dropping it would send FIN).
async fn send(
    mut writer: Write,
    sender: usize,
    shared: Arc<Shared>,
    rate: Option<f64>,
    offset: Duration,
    mut go: watch::Receiver<bool>,
) -> Result<Write> {
    go.wait_for(|&go| go).await?;
    let start = tokio::time::Instant::now() + offset;
    let mut line = Vec::with_capacity(shared.size + 1);
    for seq in 0..shared.lines {
        if let Some(rate) = rate {
            let due = start + Duration::from_secs_f64(f64::from(seq) / rate);
            tokio::select! {
                () = shared.stop.cancelled() => break,
                () = tokio::time::sleep_until(due) => {}
            }
        }
        line.clear();
        data_line(sender, seq, shared.now_ns(), shared.size, &mut line);
        tokio::select! {
            () = shared.stop.cancelled() => break,
            written = async {
                writer.write_all(&line).await?;
                writer.flush().await
            } => written?,
        }
    }
    Ok(writer)
}

/// Waits until the drained connections have read nothing for 200 ms (at most 5 s).
async fn settle_reads(read: &AtomicU64) {
    let until = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut last = read.load(Ordering::Relaxed);
    while tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = read.load(Ordering::Relaxed);
        if now == last {
            return;
        }
        last = now;
    }
}

/// Runs the mode.
pub async fn run(args: FanoutArgs) -> Result<Report> {
    let common = &args.common;
    common
        .check_targets(args.proto)
        .map_err(anyhow::Error::msg)?;
    if args.senders > args.clients {
        bail!("--senders cannot exceed --clients");
    }
    let epoch = Instant::now();
    let deadline = tokio::time::Instant::now() + secs(common.timeout);
    let (conns, failed) = open_all(common, args.proto, args.clients, true, CHUNK, deadline).await;
    let connected = conns.len();
    let mut report = Report::new("fanout");
    report.add("proto", value_name(args.proto));
    report.add("clients", args.clients);
    report.add("senders", args.senders);
    report.add("lines", args.lines);
    report.add("size", args.size);
    report.add(
        "rate",
        args.rate
            .map_or_else(|| "burst".to_owned(), |r| r.to_string()),
    );
    report.add("connected", connected);
    if connected < args.clients {
        report.add("failed", failures(&failed));
        report.complete = false;
        eprintln!(
            "fanout: only {connected} of {} clients connected",
            args.clients
        );
        return Ok(report);
    }

    let rooms_asked = args.room.is_some() || args.other_rooms > 0;
    if rooms_asked && args.proto != Proto::Chat {
        bail!("--room and --other-rooms are tcpchat's (--proto chat)");
    }
    // Held open until the run ends: the other rooms' members (their write halves; each one's
    // reads are drained by a task of its own, as a quiet client's would be).
    let mut others = Vec::new();
    let draining = Arc::new(AtomicU64::new(0));
    let stop_draining = CancellationToken::new();
    if args.other_rooms > 0 {
        let count = args.other_rooms * args.members;
        let (opened, failed) = open_all(common, args.proto, count, true, 4096, deadline).await;
        report.add("other_rooms", args.other_rooms);
        report.add("members", args.members);
        if opened.len() < count {
            report.add("failed", failures(&failed));
            report.complete = false;
            eprintln!(
                "fanout: only {} of {count} other members connected",
                opened.len()
            );
            return Ok(report);
        }
        let mut members = opened.into_iter().map(|(_, conn)| conn).collect::<Vec<_>>();
        // Every member is in #lobby; each joins one room more: what that adds to the server,
        // once every member has read what it was told, is the memory of a room membership.
        let rss_before = sys::rss_kib_each(&common.server_pids)?;
        let rooms = args.other_rooms;
        let mut entering: Vec<&mut _> = members.iter_mut().collect();
        enter_all(
            &mut entering,
            |i| format!("#other{}", i % rooms),
            false,
            deadline,
        )
        .await?;
        for conn in members {
            let mut lines = conn.lines;
            let (read, stop) = (draining.clone(), stop_draining.clone());
            tokio::spawn(async move {
                loop {
                    while lines.next_raw().is_some() {}
                    let filled = tokio::select! {
                        () = stop.cancelled() => return,
                        filled = lines.fill() => filled,
                    };
                    match filled {
                        Ok(0) | Err(_) => return,
                        Ok(n) => read.fetch_add(n as u64, Ordering::Relaxed),
                    };
                }
            });
            others.push(conn.writer);
        }
        settle_reads(&draining).await;
        let rss_after = sys::rss_kib_each(&common.server_pids)?;
        if !rss_before.is_empty() {
            let before: u64 = rss_before.iter().sum();
            let after: u64 = rss_after.iter().sum();
            let bytes = after.saturating_sub(before) as f64 * 1024.0 / count as f64;
            report.add("membership_bytes", format!("{bytes:.0}"));
        }
        // Then out of #lobby, so that rooms of `members` are all there is.
        for writer in &mut others {
            writer.write_all(b"/part #lobby\n").await?;
            writer.flush().await?;
        }
        settle_reads(&draining).await;
    }
    let mut conns = conns;
    if let Some(room) = &args.room {
        report.add("room", room);
        let mut entering: Vec<&mut _> = conns.iter_mut().map(|(_, conn)| conn).collect();
        enter_all(&mut entering, |_| room.clone(), true, deadline).await?;
    }

    let shared = Arc::new(Shared {
        epoch,
        proto: args.proto,
        size: usize::from(args.size),
        senders: args.senders,
        lines: args.lines,
        nodes: common.nodes(),
        delivered: AtomicU64::new(0),
        in_room: AtomicUsize::new(0),
        stop: CancellationToken::new(),
    });
    let (go_tx, go_rx) = watch::channel(false);
    let mut receivers = tokio::task::JoinSet::new();
    let mut senders = tokio::task::JoinSet::new();
    let mut idle_writers = Vec::new();
    let mut expected_total = 0u64;
    let mut expected_cross = 0u64;
    let per_sender = u64::from(args.lines);
    // Senders by server: client k talks to server k mod n.
    let nodes = common.nodes();
    let senders_on = |node: usize| (0..args.senders).filter(|k| k % nodes == node).count() as u64;
    // Senders start evenly spread over one pacing period, as independent clients would be.
    let period = args.rate.map_or(0.0, |rate| 1.0 / rate);
    for (index, conn) in conns {
        let own = args.proto.echoes_sender() || index >= args.senders;
        let expected = per_sender * (args.senders as u64 - u64::from(!own));
        let node = common.node_of(index);
        expected_total += expected;
        expected_cross += per_sender * (args.senders as u64 - senders_on(node));
        receivers.spawn(receive(conn.lines, shared.clone(), expected, node));
        if index < args.senders {
            let offset = secs(period * index as f64 / args.senders as f64);
            senders.spawn(send(
                conn.writer,
                index,
                shared.clone(),
                args.rate,
                offset,
                go_rx.clone(),
            ));
        } else {
            idle_writers.push(conn.writer);
        }
    }

    if args.proto.needs_barrier() {
        let mut probe = probe(common.target_of(0), args.proto, args.clients).await?;
        let all_in = || shared.in_room.load(Ordering::Relaxed) >= args.clients;
        if !probe.until(all_in, deadline).await? {
            bail!(
                "only {} of {} clients heard the probe: not all in the room",
                shared.in_room.load(Ordering::Relaxed),
                args.clients
            );
        }
    }

    let cpu_start = (!common.server_pids.is_empty())
        .then(|| sys::CpuTimesAll::of(&common.server_pids))
        .transpose()?;
    let start_ns = shared.now_ns();
    go_tx.send_replace(true);

    // Wait: every receiver done, or the senders done and nothing new for `settle`, or timeout.
    let mut senders_done = false;
    let mut send_errors = 0usize;
    let mut last = 0u64;
    let mut last_change = tokio::time::Instant::now();
    let mut timed_out = false;
    let mut writers = idle_writers;
    loop {
        if !senders_done {
            while let Some(done) = senders.try_join_next() {
                match done {
                    Ok(Ok(writer)) => writers.push(writer),
                    Ok(Err(error)) => {
                        send_errors += 1;
                        eprintln!("fanout: a sender failed: {error:#}");
                    }
                    Err(_) => send_errors += 1,
                }
            }
            senders_done = senders.is_empty();
        }
        let delivered = shared.delivered.load(Ordering::Relaxed);
        let now = tokio::time::Instant::now();
        if delivered != last {
            last = delivered;
            last_change = now;
        }
        if delivered >= expected_total {
            break;
        }
        if senders_done && now >= last_change + secs(args.settle) {
            break;
        }
        if now >= deadline {
            timed_out = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cpu_end = (!common.server_pids.is_empty())
        .then(|| sys::CpuTimesAll::of(&common.server_pids))
        .transpose()?;
    shared.stop.cancel();
    let mut tallies = Vec::with_capacity(args.clients);
    while let Some(tally) = receivers.join_next().await {
        tallies.push(tally.context("a receiver panicked")?);
    }
    senders.abort_all();
    drop(writers);
    stop_draining.cancel();
    drop(others);

    let delivered: u64 = tallies.iter().map(|t| t.unique).sum();
    let duplicated: u64 = tallies.iter().map(|t| t.duplicated).sum();
    let mangled: u64 = tallies.iter().map(|t| t.mangled).sum();
    let notices: u64 = tallies.iter().map(|t| t.notices).sum();
    let mut told: Vec<&str> = tallies
        .iter()
        .filter_map(|t| t.first_notice.as_deref())
        .collect();
    told.sort_unstable();
    told.dedup();
    for notice in told.iter().take(3) {
        eprintln!("fanout: the server told a client: {notice}");
    }
    let closed = tallies.iter().filter(|t| t.ended.is_some()).count();
    let last_ns = tallies.iter().map(|t| t.last_ns).max().unwrap_or(start_ns);
    let elapsed = last_ns.saturating_sub(start_ns).max(1) as f64 / 1e9;
    let mut same: Vec<u64> = tallies
        .iter_mut()
        .flat_map(|t| std::mem::take(&mut t.latencies))
        .collect();
    let mut cross: Vec<u64> = tallies
        .iter_mut()
        .flat_map(|t| std::mem::take(&mut t.cross))
        .collect();
    let mut latencies: Vec<u64> = same.iter().chain(&cross).copied().collect();
    let delivered_cross: u64 = tallies.iter().map(|t| t.unique_cross).sum();
    let lost = expected_total.saturating_sub(delivered);

    report.add("expected", expected_total);
    report.add("delivered", delivered);
    report.add("lost", lost);
    report.add("duplicated", duplicated);
    report.add("mangled", mangled);
    report.add("notices", notices);
    report.add("closed", closed);
    report.add("send_errors", send_errors);
    report.add("seconds", format!("{elapsed:.3}"));
    report.add(
        "deliveries_per_s",
        format!("{:.0}", delivered as f64 / elapsed),
    );
    if !latencies.is_empty() {
        report.add("p50_ms", ms(percentile(&mut latencies, 0.50)));
        report.add("p99_ms", ms(percentile(&mut latencies, 0.99)));
        report.add("max_ms", ms(latencies.iter().copied().max().unwrap_or(0)));
    }
    if nodes > 1 {
        // Same-node and cross-node deliveries apart; together above.
        let expected_same = expected_total - expected_cross;
        let delivered_same = delivered - delivered_cross;
        report.add("nodes", nodes);
        report.add("expected_same", expected_same);
        report.add("delivered_same", delivered_same);
        report.add("lost_same", expected_same.saturating_sub(delivered_same));
        report.add("expected_cross", expected_cross);
        report.add("delivered_cross", delivered_cross);
        report.add("lost_cross", expected_cross.saturating_sub(delivered_cross));
        for (name, values) in [("same", &mut same), ("cross", &mut cross)] {
            if !values.is_empty() {
                report.add(format!("{name}_p50_ms"), ms(percentile(values, 0.50)));
                report.add(format!("{name}_p99_ms"), ms(percentile(values, 0.99)));
            }
        }
    }
    if let (Some(start), Some(end)) = (cpu_start, cpu_end) {
        let cpu = end.seconds_since(&start);
        report.add("server_cpu_s", format!("{cpu:.3}"));
        report.add(
            "server_cpu_us_per_delivery",
            format!("{:.3}", cpu * 1e6 / delivered.max(1) as f64),
        );
    }
    report.add("timed_out", timed_out);
    report.complete =
        !timed_out && lost == 0 && duplicated == 0 && mangled == 0 && send_errors == 0;
    Ok(report)
}
