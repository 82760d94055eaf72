//! The per-client flood limit: a token bucket that delays, never drops.
//!
//! A client may send [`FloodLimit::burst`] lines at once and [`FloodLimit::per_second`] lines a
//! second after that. Past the limit its connection simply stops being read until the bucket
//! refills, so TCP flow control pushes back on the flooder while everybody else's lines keep
//! flowing; nothing it sent is lost. The client is told once per episode with a `! ` line.

use std::time::Duration;

use tokio::time::Instant;

/// Lines a client may send at once, and per second after that.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FloodLimit {
    /// Lines that may arrive back to back before any delay.
    pub burst: u32,
    /// Lines per second allowed after the burst; `0.0` disables the limit.
    pub per_second: f64,
}

impl Default for FloodLimit {
    /// 100 lines at once, then 250 a second: far above typing or paced bots (100/s), low enough
    /// that one client cannot make the server fan out unbounded work.
    fn default() -> Self {
        Self {
            burst: 100,
            per_second: 250.0,
        }
    }
}

/// One client's bucket.
#[derive(Debug)]
pub struct FloodGate {
    limit: FloodLimit,
    tokens: f64,
    refilled_at: Instant,
}

impl FloodGate {
    /// A full bucket.
    pub fn new(limit: FloodLimit) -> Self {
        Self {
            limit,
            tokens: f64::from(limit.burst),
            refilled_at: Instant::now(),
        }
    }

    /// Takes one line's token; returns how long to wait first if the bucket is empty.
    pub fn take(&mut self, now: Instant) -> Option<Duration> {
        if self.limit.per_second <= 0.0 {
            return None;
        }
        let elapsed = now
            .saturating_duration_since(self.refilled_at)
            .as_secs_f64();
        self.tokens =
            (self.tokens + elapsed * self.limit.per_second).min(f64::from(self.limit.burst.max(1)));
        self.refilled_at = now;
        self.tokens -= 1.0;
        (self.tokens < 0.0).then(|| Duration::from_secs_f64(-self.tokens / self.limit.per_second))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_lines_are_spaced_at_the_rate() {
        let start = Instant::now();
        let mut gate = FloodGate {
            limit: FloodLimit {
                burst: 3,
                per_second: 10.0,
            },
            tokens: 3.0,
            refilled_at: start,
        };
        assert_eq!(gate.take(start), None);
        assert_eq!(gate.take(start), None);
        assert_eq!(gate.take(start), None);
        let wait = gate.take(start).expect("fourth line waits");
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-9, "{wait:?}");
        // After a full second the bucket is full again, capped at the burst.
        let later = start + Duration::from_secs(1);
        for _ in 0..3 {
            assert_eq!(gate.take(later), None);
        }
        assert!(gate.take(later).is_some());
    }

    #[test]
    fn zero_rate_disables_the_limit() {
        let mut gate = FloodGate::new(FloodLimit {
            burst: 1,
            per_second: 0.0,
        });
        let now = Instant::now();
        assert!((0..10_000).all(|_| gate.take(now).is_none()));
    }
}
