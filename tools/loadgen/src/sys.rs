//! The system around the load generator: its open-file limit, and the server's memory and CPU
//! time from `/proc`. No `unsafe`: the limit goes through the `rlimit` crate, the clock tick
//! through `rustix`.

use std::collections::BTreeMap;

use anyhow::{Context, Result};

/// Raises the soft open-file limit to the hard limit; returns the new soft limit.
pub fn raise_nofile_limit() -> Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX).context("setrlimit(RLIMIT_NOFILE)")
}

/// A process's resident memory (`VmRSS`), in KiB.
pub fn rss_kib(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmRSS in {path}"))
}

/// The resident memory of each of `pids`, in KiB, in their order.
pub fn rss_kib_each(pids: &[u32]) -> Result<Vec<u64>> {
    pids.iter().map(|&pid| rss_kib(pid)).collect()
}

/// The CPU times of several processes (the nodes of one cluster), read together.
pub struct CpuTimesAll(Vec<CpuTimes>);

impl CpuTimesAll {
    /// Reads each of `pids`.
    pub fn of(pids: &[u32]) -> Result<Self> {
        pids.iter()
            .map(|&pid| CpuTimes::of(pid))
            .collect::<Result<_>>()
            .map(Self)
    }

    /// CPU time used by all of them since `earlier` (taken of the same `pids`), in seconds.
    pub fn seconds_since(&self, earlier: &Self) -> f64 {
        self.0
            .iter()
            .zip(&earlier.0)
            .map(|(now, then)| now.seconds_since(then))
            .sum()
    }
}

/// A process's CPU time so far, two ways: by thread, in nanoseconds on a CPU from each thread's
/// `/proc/PID/task/TID/schedstat` (exact, where `/proc/PID/stat` counts in 10 ms ticks: too
/// coarse for a paced run that costs the server a few hundred milliseconds); and in all, from
/// `/proc/PID/stat`, which also counts the threads that have ended (Python's threads end with
/// their connections).
pub struct CpuTimes {
    threads: BTreeMap<u32, u64>,
    ticks: u64,
}

impl CpuTimes {
    /// Reads every live thread of `pid`, and the process's total.
    pub fn of(pid: u32) -> Result<Self> {
        let dir = format!("/proc/{pid}/task");
        let mut threads = BTreeMap::new();
        for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {dir}"))? {
            let entry = entry?;
            let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse().ok()) else {
                continue;
            };
            // A thread that ended since the directory was listed is simply not counted.
            let Ok(stat) = std::fs::read_to_string(entry.path().join("schedstat")) else {
                continue;
            };
            let ns = stat
                .split_whitespace()
                .next()
                .and_then(|ns| ns.parse().ok())
                .with_context(|| format!("malformed {dir}/{tid}/schedstat"))?;
            threads.insert(tid, ns);
        }
        Ok(Self {
            threads,
            ticks: cpu_ticks(pid)?,
        })
    }

    /// CPU time used since `earlier`, in seconds: the threads' exact figure, unless the
    /// process's total in ticks says more (threads ended in between).
    pub fn seconds_since(&self, earlier: &Self) -> f64 {
        let ns: u64 = self
            .threads
            .iter()
            .map(|(tid, &now)| now.saturating_sub(earlier.threads.get(tid).copied().unwrap_or(0)))
            .sum();
        let ticks = self.ticks.saturating_sub(earlier.ticks) as f64 / ticks_per_second();
        (ns as f64 / 1e9).max(ticks)
    }
}

/// Clock ticks per second, the unit of `/proc/PID/stat`'s CPU times (`sysconf(_SC_CLK_TCK)`).
fn ticks_per_second() -> f64 {
    match rustix::param::clock_ticks_per_second() {
        0 => 100.0,
        ticks => ticks as f64,
    }
}

/// A process's user plus system CPU time so far, in clock ticks (all its threads, the ended ones
/// too).
fn cpu_ticks(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // The command name may contain spaces; fields are counted after its closing ')'.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .with_context(|| format!("malformed {path}"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat(5) are utime and stime; `after` starts at field 3.
    let field = |n: usize| -> Result<u64> {
        fields
            .get(n - 3)
            .and_then(|f| f.parse().ok())
            .with_context(|| format!("no field {n} in {path}"))
    };
    Ok(field(14)? + field(15)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_can_be_measured() {
        let pid = std::process::id();
        assert!(rss_kib(pid).unwrap() > 0);
        let before = CpuTimes::of(pid).unwrap();
        let spin = std::time::Instant::now();
        while spin.elapsed() < std::time::Duration::from_millis(20) {
            std::hint::black_box(0);
        }
        // At least some of the spin is counted (however busy the machine), and the other
        // tests running in this process meanwhile add no more than they could.
        let used = CpuTimes::of(pid).unwrap().seconds_since(&before);
        let bound = 2.0
            * spin.elapsed().as_secs_f64()
            * std::thread::available_parallelism().map_or(64.0, |n| n.get() as f64);
        assert!(used > 0.0 && used <= bound, "{used} s (at most {bound})");
        assert!(raise_nofile_limit().unwrap() >= 64);
    }
}
