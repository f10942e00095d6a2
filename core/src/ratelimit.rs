//! In-memory rate limiting per rate class: token buckets for attempts, and
//! counters of failed proofs (wrong password, wrong code) with exponential
//! back-off.
//!
//! A class's rule may limit attempts per client address (`per_ip`) and per
//! account (`per_account`: the account a request names or the caller's own),
//! and count failures per (account, address) pair and per address. Failures
//! are never counted per account alone: then anyone could lock a chosen
//! account by failing on purpose, while a pair only ever blocks the address
//! that failed.
//!
//! A bucket holds `burst` tokens and refills `burst` tokens every `window_secs`
//! seconds, continuously. IPv6 addresses count by their /64 prefix (one
//! subscriber usually holds a whole /64).
//!
//! Memory is bounded and no check ever walks the table: state lives in two
//! generations of hash maps keyed by a keyed 64-bit hash of the key. Entries
//! are looked up in the current generation, then moved over from the previous
//! one; when the current generation is older than the longest time any rule
//! remembers, or holds `max_keys / 2` entries, the previous generation is
//! dropped whole and the current one becomes the previous. An entry untouched
//! for a whole generation is therefore forgotten, which for a bucket means
//! "full again" and for a failure counter "forgiven".

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// Failed proofs (a wrong password or code) allowed before back-off, and
/// how long the back-off lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureRule {
    /// Failures for one account from one address before that address waits
    /// (for that account only).
    pub per_account_ip: u32,
    /// Failures from one address, all accounts together, before it waits.
    pub per_ip: u32,
    /// The first wait; each further failure doubles it.
    pub backoff_secs: u32,
    /// The longest wait.
    pub max_backoff_secs: u32,
    /// A counter without a new failure for this long starts again at zero.
    pub forget_after_secs: u32,
}

impl FailureRule {
    /// The wait after `count` failures, the last one at `last`, if any.
    fn wait(&self, threshold: u32, count: u32, last: Instant, now: Instant) -> Option<Duration> {
        if count < threshold {
            return None;
        }
        let doublings = (count - threshold).min(30);
        let secs = u64::from(self.backoff_secs)
            .saturating_mul(1 << doublings)
            .min(u64::from(self.max_backoff_secs));
        let until = last + Duration::from_secs(secs);
        (now < until).then(|| until - now)
    }
}

/// The limits of one rate class (a group of commands such as `login`). A
/// missing limit does not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_ip: Option<Rate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_account: Option<Rate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures: Option<FailureRule>,
}

impl RateRule {
    /// Attempts per address only.
    pub const fn per_ip(rate: Rate) -> Self {
        Self {
            per_ip: Some(rate),
            per_account: None,
            failures: None,
        }
    }

    /// Attempts per account only.
    pub const fn per_account(rate: Rate) -> Self {
        Self {
            per_ip: None,
            per_account: Some(rate),
            failures: None,
        }
    }

    /// Attempts per address and per account.
    pub const fn both(per_ip: Rate, per_account: Rate) -> Self {
        Self {
            per_ip: Some(per_ip),
            per_account: Some(per_account),
            failures: None,
        }
    }

    /// This rule, also counting failures.
    #[must_use]
    pub const fn with_failures(mut self, failures: FailureRule) -> Self {
        self.failures = Some(failures);
        self
    }

    /// How long this rule may need to remember anything, in seconds.
    fn memory_secs(&self) -> u64 {
        let window = |r: Option<Rate>| r.map_or(0, |r| u64::from(r.window_secs));
        let failures = self.failures.map_or(0, |f| {
            u64::from(f.forget_after_secs).max(u64::from(f.max_backoff_secs))
        });
        window(self.per_ip)
            .max(window(self.per_account))
            .max(failures)
    }
}

/// Default of [`RateLimiter::with_max_keys`].
pub const DEFAULT_MAX_KEYS: usize = 200_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

#[derive(Debug, Clone, Copy)]
struct Strikes {
    count: u32,
    last: Instant,
}

#[derive(Debug, Clone, Copy)]
enum Slot {
    Bucket(Bucket),
    Strikes(Strikes),
}

/// Two generations of slots; see the module documentation.
struct Table {
    current: HashMap<u64, Slot>,
    previous: HashMap<u64, Slot>,
    started: Instant,
    /// Slots read or written since the start: at most two per key and
    /// operation, whatever the table holds (for tests).
    touched: u64,
    rotations: u64,
}

impl Table {
    /// Moves to a new generation when due; returns the dropped one so the
    /// caller frees it after unlocking.
    fn rotate_if_due(
        &mut self,
        now: Instant,
        period: Duration,
        half: usize,
    ) -> Option<HashMap<u64, Slot>> {
        if now.duration_since(self.started) < period && self.current.len() < half {
            return None;
        }
        self.started = now;
        self.rotations += 1;
        let current = std::mem::take(&mut self.current);
        Some(std::mem::replace(&mut self.previous, current))
    }

    fn get(&mut self, key: u64) -> Option<Slot> {
        self.touched += 1;
        if let Some(slot) = self.current.get(&key) {
            return Some(*slot);
        }
        self.touched += 1;
        self.previous.get(&key).copied()
    }

    fn put(&mut self, key: u64, slot: Slot) {
        self.touched += 1;
        self.previous.remove(&key);
        self.current.insert(key, slot);
    }

    fn forget(&mut self, key: u64) {
        self.touched += 1;
        self.current.remove(&key);
        self.previous.remove(&key);
    }
}

/// What the table holds, for tests and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimiterStats {
    /// Entries held, both generations together.
    pub entries: usize,
    /// Entries read or written by all operations so far.
    pub touched: u64,
    pub rotations: u64,
}

/// Thread-safe limiter over a fixed table of rate classes.
pub struct RateLimiter {
    rules: HashMap<String, RateRule>,
    table: Mutex<Table>,
    hasher: RandomState,
    /// Length of one generation: the longest any rule remembers.
    period: Duration,
    /// Entries per generation.
    half: usize,
}

/// Which counter a key names.
#[derive(Clone, Copy)]
enum Scope {
    Ip,
    Account,
    AccountIp,
}

impl RateLimiter {
    pub fn new(rules: HashMap<String, RateRule>) -> Self {
        Self::with_max_keys(rules, DEFAULT_MAX_KEYS)
    }

    /// A limiter that holds at most about `max_keys` entries.
    pub fn with_max_keys(rules: HashMap<String, RateRule>, max_keys: usize) -> Self {
        let period_secs = rules
            .values()
            .map(RateRule::memory_secs)
            .max()
            .unwrap_or(0)
            .max(1);
        Self {
            rules,
            table: Mutex::new(Table {
                current: HashMap::new(),
                previous: HashMap::new(),
                started: Instant::now(),
                touched: 0,
                rotations: 0,
            }),
            hasher: RandomState::new(),
            period: Duration::from_secs(period_secs),
            half: (max_keys / 2).max(1),
        }
    }

    /// A limiter that never limits (for tests of other things).
    pub fn unlimited() -> Self {
        Self::new(HashMap::new())
    }

    pub fn rule(&self, class: &str) -> Option<RateRule> {
        self.rules.get(class).copied()
    }

    pub fn stats(&self) -> LimiterStats {
        let table = self.lock();
        LimiterStats {
            entries: table.current.len() + table.previous.len(),
            touched: table.touched,
            rotations: table.rotations,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The keyed hash of one counter. Keys of attackers' choosing cannot be
    /// made to collide: the hash key is random per process.
    fn key(&self, kind: u8, class: &str, scope: Scope, ip: IpAddr, account: Option<&str>) -> u64 {
        use std::hash::Hasher;
        let mut h = self.hasher.build_hasher();
        h.write_u8(kind);
        h.write(class.as_bytes());
        h.write_u8(0xff);
        let ip = ip_key(ip);
        match scope {
            Scope::Ip => {
                h.write_u8(1);
                h.write_u128(ip);
            }
            Scope::Account => {
                h.write_u8(2);
                h.write(account.unwrap_or("").as_bytes());
            }
            Scope::AccountIp => {
                h.write_u8(3);
                h.write_u128(ip);
                h.write(account.unwrap_or("").as_bytes());
            }
        }
        h.finish()
    }

    /// Admits one request of `class` from `ip`, about `account` if given:
    /// takes one token from each of its buckets (or none if any is empty)
    /// after checking that neither the (account, address) pair nor the
    /// address is backing off after failures. `Err` is the seconds to wait.
    pub fn check(&self, class: &str, ip: IpAddr, account: Option<&str>) -> Result<(), u64> {
        let Some(rule) = self.rule(class) else {
            return Ok(());
        };
        let now = Instant::now();
        let mut buckets = Vec::with_capacity(2);
        if let Some(rate) = rule.per_ip {
            buckets.push((self.key(b'b', class, Scope::Ip, ip, None), rate));
        }
        if let (Some(rate), Some(_)) = (rule.per_account, account) {
            buckets.push((self.key(b'b', class, Scope::Account, ip, account), rate));
        }
        let mut strikes = Vec::with_capacity(2);
        if let Some(f) = rule.failures {
            strikes.push((self.key(b's', class, Scope::Ip, ip, None), f.per_ip));
            if account.is_some() {
                strikes.push((
                    self.key(b's', class, Scope::AccountIp, ip, account),
                    f.per_account_ip,
                ));
            }
        }
        let mut table = self.lock();
        let dropped = table.rotate_if_due(now, self.period, self.half);
        let mut wait = Duration::ZERO;
        if let Some(f) = rule.failures {
            for &(key, threshold) in &strikes {
                if let Some(Slot::Strikes(s)) = table.get(key) {
                    if let Some(w) = f.wait(threshold, s.count, s.last, now) {
                        wait = wait.max(w);
                    }
                }
            }
        }
        let mut refilled = Vec::with_capacity(buckets.len());
        for &(key, rate) in &buckets {
            let bucket = refill(table.get(key), rate, now);
            if bucket.tokens < 1.0 {
                wait = wait.max(Duration::from_secs_f64(
                    (1.0 - bucket.tokens) / rate.refill_per_sec(),
                ));
            }
            refilled.push((key, bucket));
        }
        let verdict = if wait > Duration::ZERO {
            Err(wait.as_secs_f64().ceil().max(1.0) as u64)
        } else {
            for (key, mut bucket) in refilled {
                bucket.tokens -= 1.0;
                table.put(key, Slot::Bucket(bucket));
            }
            Ok(())
        };
        drop(table);
        drop(dropped);
        verdict
    }

    /// Records a failed proof (wrong password or code) of `class`.
    pub fn record_failure(&self, class: &str, ip: IpAddr, account: Option<&str>) {
        let Some(f) = self.rule(class).and_then(|r| r.failures) else {
            return;
        };
        let now = Instant::now();
        let forget = Duration::from_secs(u64::from(f.forget_after_secs));
        let mut keys = vec![self.key(b's', class, Scope::Ip, ip, None)];
        if account.is_some() {
            keys.push(self.key(b's', class, Scope::AccountIp, ip, account));
        }
        let mut table = self.lock();
        let dropped = table.rotate_if_due(now, self.period, self.half);
        for key in keys {
            let count = match table.get(key) {
                Some(Slot::Strikes(s)) if now.duration_since(s.last) < forget => s.count,
                _ => 0,
            };
            table.put(
                key,
                Slot::Strikes(Strikes {
                    count: count.saturating_add(1),
                    last: now,
                }),
            );
        }
        drop(table);
        drop(dropped);
    }

    /// Records a successful proof: the (account, address) pair starts over.
    /// The address's own count stays (one right password must not wash away
    /// the failures it made for other accounts).
    pub fn record_success(&self, class: &str, ip: IpAddr, account: Option<&str>) {
        if account.is_none() || self.rule(class).and_then(|r| r.failures).is_none() {
            return;
        }
        let key = self.key(b's', class, Scope::AccountIp, ip, account);
        self.lock().forget(key);
    }
}

/// The address as counted: IPv4 (and IPv4-mapped IPv6) whole, other IPv6
/// by their /64 prefix.
fn ip_key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => u128::from(u32::from(v4)),
            None => (u128::from(v6) & !((1u128 << 64) - 1)) | 1,
        },
    }
}

fn refill(slot: Option<Slot>, rate: Rate, now: Instant) -> Bucket {
    let cap = f64::from(rate.burst);
    match slot {
        Some(Slot::Bucket(b)) => {
            let elapsed = now.duration_since(b.updated).as_secs_f64();
            Bucket {
                tokens: (b.tokens + elapsed * rate.refill_per_sec()).min(cap),
                updated: now,
            }
        }
        _ => Bucket {
            tokens: cap,
            updated: now,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn limiter(burst: u32) -> RateLimiter {
        let mut rules = HashMap::new();
        rules.insert(
            "login".to_owned(),
            RateRule::both(Rate::new(burst * 2, 60), Rate::new(burst, 60)),
        );
        RateLimiter::new(rules)
    }

    const FAILURES: FailureRule = FailureRule {
        per_account_ip: 3,
        per_ip: 10,
        backoff_secs: 60,
        max_backoff_secs: 3600,
        forget_after_secs: 3600,
    };

    fn failing() -> RateLimiter {
        let mut rules = HashMap::new();
        rules.insert(
            "login".to_owned(),
            RateRule::per_ip(Rate::new(1000, 60)).with_failures(FAILURES),
        );
        RateLimiter::new(rules)
    }

    #[test]
    fn allows_burst_then_refuses_with_retry_after() {
        let rl = limiter(3);
        for _ in 0..3 {
            assert!(rl.check("login", ip("1.2.3.4"), Some("a@x")).is_ok());
        }
        let wait = rl.check("login", ip("1.2.3.4"), Some("a@x")).unwrap_err();
        assert!((1..=20).contains(&wait), "wait {wait}");
        // another account from the same ip still has ip budget left
        assert!(rl.check("login", ip("1.2.3.4"), Some("b@x")).is_ok());
    }

    #[test]
    fn ip_limit_applies_across_accounts() {
        let rl = limiter(2);
        for i in 0..4 {
            assert!(rl
                .check("login", ip("9.9.9.9"), Some(&format!("u{i}")))
                .is_ok());
        }
        assert!(rl.check("login", ip("9.9.9.9"), Some("fresh")).is_err());
        assert!(rl.check("login", ip("8.8.8.8"), Some("fresh")).is_ok());
    }

    #[test]
    fn refused_request_takes_no_token() {
        let rl = limiter(1);
        assert!(rl.check("login", ip("1.1.1.1"), Some("a")).is_ok());
        assert!(rl.check("login", ip("1.1.1.1"), Some("a")).is_err());
        // the ip bucket (burst 2) was not charged by the refused call
        assert!(rl.check("login", ip("1.1.1.1"), Some("b")).is_ok());
    }

    #[test]
    fn unknown_class_is_unlimited() {
        let rl = limiter(1);
        for _ in 0..100 {
            assert!(rl.check("other", ip("1.1.1.1"), None).is_ok());
        }
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_prefix() {
        let mut rules = HashMap::new();
        rules.insert("c".to_owned(), RateRule::per_ip(Rate::new(2, 60)));
        let rl = RateLimiter::new(rules);
        assert!(rl.check("c", ip("2001:db8:1:2::1"), None).is_ok());
        assert!(rl.check("c", ip("2001:db8:1:2:ffff::9"), None).is_ok());
        assert!(rl.check("c", ip("2001:db8:1:2::77"), None).is_err());
        assert!(rl.check("c", ip("2001:db8:1:3::1"), None).is_ok());
        // an IPv4-mapped address is the IPv4 address
        assert!(rl.check("c", ip("10.0.0.1"), None).is_ok());
        assert!(rl.check("c", ip("::ffff:10.0.0.1"), None).is_ok());
        assert!(rl.check("c", ip("10.0.0.1"), None).is_err());
    }

    #[test]
    fn failures_back_off_the_pair_not_the_account() {
        let rl = failing();
        let attacker = ip("203.0.113.66");
        let owner = ip("198.51.100.7");
        for _ in 0..3 {
            assert!(rl.check("login", attacker, Some("v@x")).is_ok());
            rl.record_failure("login", attacker, Some("v@x"));
        }
        let wait = rl.check("login", attacker, Some("v@x")).unwrap_err();
        assert!((59..=60).contains(&wait), "{wait}");
        // the owner, from elsewhere, is not blocked
        assert!(rl.check("login", owner, Some("v@x")).is_ok());
        // the attacker may still try other accounts until the per-ip count
        assert!(rl.check("login", attacker, Some("w@x")).is_ok());
    }

    #[test]
    fn failures_per_ip_cover_all_accounts_and_back_off_doubles() {
        let rl = failing();
        let attacker = ip("203.0.113.66");
        for i in 0..10 {
            rl.record_failure("login", attacker, Some(&format!("u{i}@x")));
        }
        let first = rl.check("login", attacker, Some("new@x")).unwrap_err();
        rl.record_failure("login", attacker, Some("new@x"));
        let second = rl.check("login", attacker, Some("other@x")).unwrap_err();
        assert!((59..=60).contains(&first), "{first}");
        assert!((119..=120).contains(&second), "{second}");
        assert!(rl.check("login", ip("192.0.2.1"), Some("new@x")).is_ok());
    }

    #[test]
    fn a_success_clears_the_pair_only() {
        let rl = failing();
        let me = ip("198.51.100.7");
        for _ in 0..2 {
            rl.record_failure("login", me, Some("me@x"));
        }
        rl.record_success("login", me, Some("me@x"));
        // two more failures are allowed again before the third blocks
        for _ in 0..2 {
            rl.record_failure("login", me, Some("me@x"));
        }
        assert!(rl.check("login", me, Some("me@x")).is_ok());
        rl.record_failure("login", me, Some("me@x"));
        assert!(rl.check("login", me, Some("me@x")).is_err());
    }

    #[test]
    fn a_million_keys_stay_bounded_and_checks_never_scan() {
        let mut rules = HashMap::new();
        rules.insert(
            "c".to_owned(),
            RateRule::both(Rate::new(5, 60), Rate::new(5, 60)).with_failures(FAILURES),
        );
        let max_keys = 20_000;
        let rl = RateLimiter::with_max_keys(rules, max_keys);
        let mut most_touched_by_one_check = 0;
        for i in 0u32..1_000_000 {
            let addr = IpAddr::from(i.to_be_bytes());
            let account = format!("account{i}");
            let before = rl.stats().touched;
            assert!(rl.check("c", addr, Some(&account)).is_ok());
            if i % 10 == 0 {
                rl.record_failure("c", addr, Some(&account));
            }
            let touched = rl.stats().touched - before;
            most_touched_by_one_check = most_touched_by_one_check.max(touched);
            // a check adds at most a few entries past the rotation point
            assert!(rl.stats().entries <= max_keys + 4, "at {i}");
        }
        // Two buckets and two failure counters, each read in at most two
        // generations and written once: a constant, not the table size.
        assert!(
            most_touched_by_one_check <= 16,
            "{most_touched_by_one_check}"
        );
        let stats = rl.stats();
        assert!(stats.rotations >= 2_000_000 / max_keys as u64, "{stats:?}");
    }

    #[test]
    fn idle_state_is_forgotten_after_a_generation() {
        let mut rules = HashMap::new();
        rules.insert("c".to_owned(), RateRule::per_ip(Rate::new(1, 60)));
        let rl = RateLimiter::with_max_keys(rules, 4);
        assert!(rl.check("c", ip("1.1.1.1"), None).is_ok());
        assert!(rl.check("c", ip("1.1.1.1"), None).is_err());
        // two more generations of other keys push the idle one out
        for i in 2..=5u8 {
            let _ = rl.check("c", IpAddr::from([1, 1, 1, i]), None);
        }
        assert!(rl.stats().entries <= 4);
        assert!(rl.check("c", ip("1.1.1.1"), None).is_ok());
    }
}
