//! The open-loop send schedule: message `k` of a phase is due at `k / rate`
//! seconds, whatever happened to the messages before it. The generator never
//! waits for an answer before sending the next message, and latency is
//! measured from this planned time (not from when a busy generator got round
//! to sending), so a slow server cannot hide its queueing delay
//! ("coordinated omission").

use std::time::Duration;

/// A fixed aggregate rate for a fixed duration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    /// Messages per second, all senders together.
    pub rate: f64,
    pub duration: Duration,
}

impl Schedule {
    pub fn new(rate: f64, duration: Duration) -> Self {
        Self {
            rate: rate.max(0.0),
            duration,
        }
    }

    /// Messages the whole phase sends.
    pub fn total(&self) -> u64 {
        (self.rate * self.duration.as_secs_f64()).floor() as u64
    }

    /// When message `k` (0-based) is due, from the start of the phase.
    pub fn due(&self, k: u64) -> Duration {
        if self.rate <= 0.0 {
            return Duration::MAX;
        }
        #[allow(clippy::cast_precision_loss)] // k stays far below 2^52
        Duration::from_secs_f64(k as f64 / self.rate)
    }

    /// How many messages are due by `elapsed` (the first `n` messages, `n`
    /// never more than [`Schedule::total`]).
    pub fn due_by(&self, elapsed: Duration) -> u64 {
        if self.rate <= 0.0 {
            return 0;
        }
        // Message k is due once k / rate <= elapsed, so floor(elapsed * rate) + 1
        // of them are; small epsilon against float rounding at exact ticks.
        let n = (elapsed.as_secs_f64() * self.rate + 1e-6).floor() as u64 + 1;
        n.min(self.total())
    }
}

/// A small, fast, seedable generator (xorshift64*) for picking senders and
/// chats: the generator must not be the bottleneck, and runs must be
/// repeatable for a seed. Not for anything secret.
#[derive(Debug, Clone)]
pub struct FastRng(u64);

impl FastRng {
    pub fn new(seed: u64) -> Self {
        // Zero is the one state xorshift never leaves.
        Self((seed ^ 0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0), without modulo bias worth noticing here.
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        #[allow(clippy::cast_precision_loss)]
        let x = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        x < p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_spread_evenly_over_the_phase() {
        let s = Schedule::new(1000.0, Duration::from_secs(2));
        assert_eq!(s.total(), 2000);
        assert_eq!(s.due(0), Duration::ZERO);
        assert_eq!(s.due(500), Duration::from_millis(500));
        assert_eq!(s.due(1999), Duration::from_millis(1999));
        // at t = 0 the first message is due, at 1 ms the second as well
        assert_eq!(s.due_by(Duration::ZERO), 1);
        assert_eq!(s.due_by(Duration::from_millis(1)), 2);
        assert_eq!(s.due_by(Duration::from_micros(1500)), 2);
        assert_eq!(s.due_by(Duration::from_millis(999)), 1000);
        // never more than the phase holds, however late the generator looks
        assert_eq!(s.due_by(Duration::from_secs(60)), 2000);
    }

    #[test]
    fn due_and_due_by_agree() {
        let s = Schedule::new(7.0, Duration::from_secs(3));
        for k in 0..s.total() {
            assert!(s.due_by(s.due(k)) > k, "message {k} is due at its own time");
        }
    }

    #[test]
    fn fractional_and_zero_rates() {
        let s = Schedule::new(2.5, Duration::from_secs(2));
        assert_eq!(s.total(), 5);
        assert_eq!(s.due(1), Duration::from_millis(400));
        let none = Schedule::new(0.0, Duration::from_secs(5));
        assert_eq!(none.total(), 0);
        assert_eq!(none.due_by(Duration::from_secs(5)), 0);
    }

    #[test]
    fn the_fast_rng_is_repeatable_and_roughly_uniform() {
        let mut a = FastRng::new(42);
        let mut b = FastRng::new(42);
        let mut counts = [0u32; 10];
        for _ in 0..100_000 {
            let x = a.below(10);
            assert_eq!(x, b.below(10));
            counts[x] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
        let mut zero = FastRng::new(0x9E37_79B9_7F4A_7C15);
        assert_ne!(zero.next_u64(), 0);
    }
}
