//! In-memory token-bucket rate limiting keyed by strings such as
//! `login:ip:203.0.113.9` or `login:account:alice@example.org`.
//!
//! A bucket holds `burst` tokens and refills `burst` tokens every `window_secs`
//! seconds, continuously. Stale buckets are pruned as the map grows.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// One limit: at most `burst` requests, refilled at `burst` per `window_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    pub burst: u32,
    pub window_secs: u32,
}

impl Rate {
    pub const fn new(burst: u32, window_secs: u32) -> Self {
        Self { burst, window_secs }
    }

    fn refill_per_sec(self) -> f64 {
        f64::from(self.burst) / f64::from(self.window_secs.max(1))
    }
}

/// The limits of one rate class (a group of commands such as `login`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateRule {
    pub per_ip: Rate,
    pub per_account: Rate,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Thread-safe limiter over a fixed table of rate classes.
pub struct RateLimiter {
    rules: HashMap<String, RateRule>,
    buckets: Mutex<HashMap<String, Bucket>>,
    max_buckets: usize,
}

impl RateLimiter {
    pub fn new(rules: HashMap<String, RateRule>) -> Self {
        Self {
            rules,
            buckets: Mutex::new(HashMap::new()),
            max_buckets: 100_000,
        }
    }

    /// A limiter that never limits (for tests of other things).
    pub fn unlimited() -> Self {
        Self::new(HashMap::new())
    }

    pub fn rule(&self, class: &str) -> Option<RateRule> {
        self.rules.get(class).copied()
    }

    /// Takes one token from each given bucket, or none if any is empty; then
    /// returns the seconds to wait.
    pub fn check(&self, class: &str, ip: &str, account: Option<&str>) -> Result<(), u64> {
        let Some(rule) = self.rule(class) else {
            return Ok(());
        };
        let mut keys = vec![(format!("{class}:ip:{ip}"), rule.per_ip)];
        if let Some(account) = account {
            keys.push((format!("{class}:account:{account}"), rule.per_account));
        }
        let now = Instant::now();
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() > self.max_buckets {
            Self::prune(&mut buckets, now);
        }
        let mut wait: f64 = 0.0;
        for (key, rate) in &keys {
            let bucket = Self::refilled(buckets.get(key).copied(), *rate, now);
            if bucket.tokens < 1.0 {
                wait = wait.max((1.0 - bucket.tokens) / rate.refill_per_sec());
            }
        }
        if wait > 0.0 {
            return Err(wait.ceil().max(1.0) as u64);
        }
        for (key, rate) in keys {
            let mut bucket = Self::refilled(buckets.get(&key).copied(), rate, now);
            bucket.tokens -= 1.0;
            buckets.insert(key, bucket);
        }
        Ok(())
    }

    fn refilled(bucket: Option<Bucket>, rate: Rate, now: Instant) -> Bucket {
        let cap = f64::from(rate.burst);
        match bucket {
            None => Bucket {
                tokens: cap,
                updated: now,
            },
            Some(b) => {
                let elapsed = now.duration_since(b.updated).as_secs_f64();
                Bucket {
                    tokens: (b.tokens + elapsed * rate.refill_per_sec()).min(cap),
                    updated: now,
                }
            }
        }
    }

    /// Drops buckets idle for more than an hour (they would be full again).
    fn prune(buckets: &mut HashMap<String, Bucket>, now: Instant) {
        buckets.retain(|_, b| now.duration_since(b.updated).as_secs() < 3600);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(burst: u32) -> RateLimiter {
        let mut rules = HashMap::new();
        rules.insert(
            "login".to_owned(),
            RateRule {
                per_ip: Rate::new(burst * 2, 60),
                per_account: Rate::new(burst, 60),
            },
        );
        RateLimiter::new(rules)
    }

    #[test]
    fn allows_burst_then_refuses_with_retry_after() {
        let rl = limiter(3);
        for _ in 0..3 {
            assert!(rl.check("login", "1.2.3.4", Some("a@x")).is_ok());
        }
        let wait = rl.check("login", "1.2.3.4", Some("a@x")).unwrap_err();
        assert!((1..=20).contains(&wait), "wait {wait}");
        // another account from the same ip still has ip budget left
        assert!(rl.check("login", "1.2.3.4", Some("b@x")).is_ok());
    }

    #[test]
    fn ip_limit_applies_across_accounts() {
        let rl = limiter(2);
        for i in 0..4 {
            assert!(rl.check("login", "9.9.9.9", Some(&format!("u{i}"))).is_ok());
        }
        assert!(rl.check("login", "9.9.9.9", Some("fresh")).is_err());
        assert!(rl.check("login", "8.8.8.8", Some("fresh")).is_ok());
    }

    #[test]
    fn refused_request_takes_no_token() {
        let rl = limiter(1);
        assert!(rl.check("login", "1.1.1.1", Some("a")).is_ok());
        assert!(rl.check("login", "1.1.1.1", Some("a")).is_err());
        // the ip bucket (burst 2) was not charged by the refused call
        assert!(rl.check("login", "1.1.1.1", Some("b")).is_ok());
    }

    #[test]
    fn unknown_class_is_unlimited() {
        let rl = limiter(1);
        for _ in 0..100 {
            assert!(rl.check("other", "1.1.1.1", None).is_ok());
        }
    }
}
