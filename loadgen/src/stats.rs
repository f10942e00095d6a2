//! What a run counts and how it is reported: per-message delivery tracking
//! (lost and duplicated deliveries), HDR latency histograms, and the final
//! report as a table and as JSON.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::time::Duration;

/// Highest latency a histogram records (longer ones are clamped): one hour, in µs.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// A latency histogram in microseconds, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("static histogram bounds are valid")
}

/// The delivery state of every message of one phase, shared by the sender
/// and every receiving connection (lock-free: one slot per message).
pub struct Tracker {
    /// Receipts each message should get (the chat's members minus the sender).
    expected: Vec<AtomicU16>,
    delivered: Vec<AtomicU16>,
    acked: Vec<AtomicBool>,
    pub sent: AtomicU64,
    pub acknowledged: AtomicU64,
    /// Receipts, each (connection, message) counted once.
    pub deliveries: AtomicU64,
    /// Receipts a connection had already had (same chat, seq not newer).
    pub duplicates: AtomicU64,
    /// Events of a message that reached its own sender's connection: none
    /// from a current server, which does not push a message back to the
    /// connection that sent it (older servers did).
    pub echoes: AtomicU64,
    /// Receipts naming a message this phase does not know (from an earlier phase).
    pub strays: AtomicU64,
    /// Microseconds from the phase start to the last ack or receipt.
    pub last_activity_us: AtomicU64,
}

impl Tracker {
    pub fn new(messages: u64) -> Self {
        let n = usize::try_from(messages).unwrap_or(usize::MAX);
        let zeros16 = || (0..n).map(|_| AtomicU16::new(0)).collect();
        Self {
            expected: zeros16(),
            delivered: zeros16(),
            acked: (0..n).map(|_| AtomicBool::new(false)).collect(),
            sent: AtomicU64::new(0),
            acknowledged: AtomicU64::new(0),
            deliveries: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            echoes: AtomicU64::new(0),
            strays: AtomicU64::new(0),
            last_activity_us: AtomicU64::new(0),
        }
    }

    pub fn capacity(&self) -> u64 {
        self.expected.len() as u64
    }

    /// Message `index` was written to its sender's socket, for `expected` receipts.
    pub fn record_sent(&self, index: u64, expected: u16) {
        if let Some(slot) = Self::slot(&self.expected, index) {
            slot.store(expected, Ordering::Relaxed);
            self.sent.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The server acknowledged message `index` (stored). False for a second ack.
    pub fn record_ack(&self, index: u64, at_us: u64) -> bool {
        let Some(flag) = self.acked.get(usize::try_from(index).unwrap_or(usize::MAX)) else {
            return false;
        };
        if flag.swap(true, Ordering::Relaxed) {
            return false;
        }
        self.acknowledged.fetch_add(1, Ordering::Relaxed);
        self.last_activity_us.fetch_max(at_us, Ordering::Relaxed);
        true
    }

    /// The server refused message `index` (an error reply): it is counted
    /// as an error, not as lost.
    pub fn record_refused(&self, index: u64) {
        if let Some(slot) = Self::slot(&self.expected, index) {
            slot.store(0, Ordering::Relaxed);
        }
    }

    /// A new (not duplicated) receipt of message `index` by a recipient.
    pub fn record_delivery(&self, index: u64, at_us: u64) {
        match Self::slot(&self.delivered, index) {
            Some(slot) => {
                slot.fetch_add(1, Ordering::Relaxed);
                self.deliveries.fetch_add(1, Ordering::Relaxed);
                self.last_activity_us.fetch_max(at_us, Ordering::Relaxed);
            }
            None => {
                self.strays.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn slot(slots: &[AtomicU16], index: u64) -> Option<&AtomicU16> {
        slots.get(usize::try_from(index).ok()?)
    }

    /// Adds up expected and missing receipts: (expected receipts of the
    /// acknowledged messages, missing receipts of those, messages sent but
    /// never acknowledged, messages acknowledged but not received by every
    /// recipient).
    pub fn tally(&self) -> Tally {
        let mut tally = Tally::default();
        for i in 0..self.expected.len() {
            let expected = u64::from(self.expected[i].load(Ordering::Relaxed));
            let delivered = u64::from(self.delivered[i].load(Ordering::Relaxed));
            let acked = self.acked[i].load(Ordering::Relaxed);
            if expected == 0 && !acked {
                continue; // never sent
            }
            if acked {
                tally.expected_deliveries += expected;
                tally.lost_deliveries += expected.saturating_sub(delivered);
                if delivered < expected {
                    tally.incomplete_messages += 1;
                    if tally.first_incomplete.is_none() {
                        tally.first_incomplete = Some(i as u64);
                    }
                }
            } else {
                tally.unacknowledged += 1;
                // Stored and delivered without an ack reaching us still counts
                // as delivered; what is missing of it is lost as well.
                tally.expected_deliveries += expected;
                tally.lost_deliveries += expected.saturating_sub(delivered);
            }
        }
        tally
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// The first acknowledged message some recipient did not get (for debugging).
    pub first_incomplete: Option<u64>,
    pub expected_deliveries: u64,
    pub lost_deliveries: u64,
    pub incomplete_messages: u64,
    pub unacknowledged: u64,
}

/// Percentiles of one histogram, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

#[allow(clippy::cast_precision_loss)] // microsecond counts, far below 2^52
fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

impl LatencySummary {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        Self {
            count: h.len(),
            mean_ms: h.mean() / 1000.0,
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

/// The server process as seen from /proc during the phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ServerUsage {
    pub pid: u32,
    /// Highest resident set size sampled during the phase.
    pub peak_rss_kib: u64,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    /// User + system CPU time the server used during the phase.
    pub cpu_seconds: f64,
    /// `cpu_seconds` per second of the phase (2.0 = both cores of a 2-core machine).
    pub cpu_cores_busy: f64,
    /// `cpu_seconds` per message sent in the phase, in microseconds.
    pub cpu_us_per_message: f64,
}

/// The generator's own CPU time during the phase (this process, from
/// /proc/self): on a shared machine, what it takes is not the server's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct GeneratorUsage {
    pub cpu_seconds: f64,
    pub cpu_cores_busy: f64,
    pub cpu_us_per_message: f64,
}

/// CPU seconds as (seconds, cores busy over `wall`, µs per message).
#[allow(clippy::cast_precision_loss)]
pub fn cpu_shares(cpu_seconds: f64, wall: Duration, messages: u64) -> (f64, f64, f64) {
    (
        cpu_seconds,
        cpu_seconds / wall.as_secs_f64().max(1e-9),
        cpu_seconds * 1e6 / messages.max(1) as f64,
    )
}

/// One phase's result.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    pub workload: String,
    pub users: usize,
    pub connections: usize,
    pub group_size: usize,
    pub message_bytes: usize,
    pub target_rate: f64,
    pub duration_s: f64,
    /// Seconds from the phase start to the last ack or receipt (at least the
    /// duration): the rates below are over this span.
    pub span_s: f64,
    pub sent: u64,
    pub acknowledged: u64,
    pub unacknowledged: u64,
    /// Refused sends by error code.
    pub errors: BTreeMap<String, u64>,
    pub expected_deliveries: u64,
    pub delivered: u64,
    pub lost: u64,
    /// The first message (phase index) a recipient did not get, if any.
    pub first_lost_index: Option<u64>,
    pub duplicated: u64,
    /// Receipts of a message by its own sender's connection (not counted as delivered).
    pub echoes: u64,
    /// Receipts of messages of another phase (late ones from a warm-up).
    pub strays: u64,
    pub acked_per_sec: f64,
    pub delivered_per_sec: f64,
    pub e2e_latency: LatencySummary,
    pub ack_latency: LatencySummary,
    /// Connections of the fleet closed before the end of the phase (during
    /// it, or earlier, e.g. in the warm-up: they are missing from it too).
    pub connection_errors: u64,
    /// Moments the generator itself fell behind its schedule by more than
    /// 10 ms (then it is the bottleneck, not the server).
    pub generator_lag_ms_max: f64,
    pub server: Option<ServerUsage>,
    pub generator: Option<GeneratorUsage>,
}

impl Report {
    /// Nothing lost, nothing refused, nothing unanswered, no broken connection.
    pub fn clean(&self) -> bool {
        self.lost == 0
            && self.unacknowledged == 0
            && self.duplicated == 0
            && self.errors.is_empty()
            && self.connection_errors == 0
    }

    /// Fills the rates from the counts and the span.
    pub fn set_span(&mut self, duration: Duration, last_activity: Duration) {
        self.duration_s = duration.as_secs_f64();
        self.span_s = duration.max(last_activity).as_secs_f64().max(1e-9);
        #[allow(clippy::cast_precision_loss)]
        {
            self.acked_per_sec = self.acknowledged as f64 / self.span_s;
            self.delivered_per_sec = self.delivered as f64 / self.span_s;
        }
    }

    /// A human-readable table.
    pub fn table(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let mut row = |name: &str, value: String| {
            let _ = writeln!(out, "  {name:<22} {value}");
        };
        row(
            "workload",
            format!(
                "{} ({} users, {} connections, group size {}, {} B messages)",
                self.workload, self.users, self.connections, self.group_size, self.message_bytes
            ),
        );
        row(
            "target rate",
            format!(
                "{:.0} msg/s for {:.1} s (span {:.2} s)",
                self.target_rate, self.duration_s, self.span_s
            ),
        );
        row("sent", self.sent.to_string());
        row(
            "acknowledged",
            format!("{} ({:.0}/s)", self.acknowledged, self.acked_per_sec),
        );
        row("unacknowledged", self.unacknowledged.to_string());
        row(
            "delivered",
            format!(
                "{} of {} expected ({:.0}/s)",
                self.delivered, self.expected_deliveries, self.delivered_per_sec
            ),
        );
        row("lost", self.lost.to_string());
        row("duplicated", self.duplicated.to_string());
        if !self.errors.is_empty() {
            let errors: Vec<String> = self
                .errors
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            row("errors", errors.join(", "));
        }
        row("connection errors", self.connection_errors.to_string());
        for (name, l) in [
            ("end-to-end latency", &self.e2e_latency),
            ("ack latency", &self.ack_latency),
        ] {
            row(
                name,
                format!(
                    "p50 {:.2} ms  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}  (mean {:.2}, n={})",
                    l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms, l.mean_ms, l.count
                ),
            );
        }
        row(
            "generator lag (max)",
            format!("{:.1} ms", self.generator_lag_ms_max),
        );
        if let Some(s) = &self.server {
            row(
                "server",
                format!(
                    "pid {}: peak RSS {:.1} MiB (before {:.1}, after {:.1}), CPU {:.2} s ({:.2} cores, {:.1} µs per message)",
                    s.pid,
                    kib_to_mib(s.peak_rss_kib),
                    kib_to_mib(s.rss_before_kib),
                    kib_to_mib(s.rss_after_kib),
                    s.cpu_seconds,
                    s.cpu_cores_busy,
                    s.cpu_us_per_message
                ),
            );
        }
        if let Some(g) = &self.generator {
            row(
                "generator",
                format!(
                    "CPU {:.2} s ({:.2} cores, {:.1} µs per message)",
                    g.cpu_seconds, g.cpu_cores_busy, g.cpu_us_per_message
                ),
            );
        }
        out
    }
}

#[allow(clippy::cast_precision_loss)]
fn kib_to_mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_shared_out_over_the_wall_time_and_the_messages() {
        let (seconds, cores, per_message) = cpu_shares(3.0, Duration::from_secs(2), 30_000);
        assert!((seconds - 3.0).abs() < 1e-9);
        assert!((cores - 1.5).abs() < 1e-9);
        assert!((per_message - 100.0).abs() < 1e-9);
        // no messages, no wall time: finite numbers, no division by zero
        let (_, cores, per_message) = cpu_shares(1.0, Duration::ZERO, 0);
        assert!(cores.is_finite() && per_message.is_finite());
        let report = Report {
            generator: Some(GeneratorUsage {
                cpu_seconds: 4.2,
                cpu_cores_busy: 0.42,
                cpu_us_per_message: 42.0,
            }),
            ..Report::default()
        };
        assert!(report
            .table()
            .contains("generator              CPU 4.20 s (0.42 cores, 42.0 µs per message)"));
    }

    #[test]
    fn percentiles_come_from_the_histogram_in_milliseconds() {
        let mut h = new_histogram();
        for us in 1..=1000u64 {
            h.record(us * 1000).unwrap(); // 1 ms .. 1000 ms
        }
        let s = LatencySummary::of(&h);
        assert_eq!(s.count, 1000);
        let close = |a: f64, b: f64| (a - b).abs() <= b * 0.002 + 0.01;
        assert!(close(s.p50_ms, 500.0), "{s:?}");
        assert!(close(s.p90_ms, 900.0), "{s:?}");
        assert!(close(s.p99_ms, 990.0), "{s:?}");
        assert!(close(s.p999_ms, 999.0), "{s:?}");
        assert!(close(s.max_ms, 1000.0), "{s:?}");
        assert!(close(s.mean_ms, 500.5), "{s:?}");
        assert_eq!(
            LatencySummary::of(&new_histogram()),
            LatencySummary::default()
        );
    }

    #[test]
    fn histograms_of_many_connections_merge() {
        let mut a = new_histogram();
        let mut b = new_histogram();
        a.record(1000).unwrap();
        b.record(3000).unwrap();
        a.add(&b).unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a.max(), a.highest_equivalent(3000));
    }

    #[test]
    fn the_tracker_counts_lost_unacknowledged_and_strays() {
        let t = Tracker::new(4);
        // 0: 1:1, acked, delivered; 1: group of 3, acked, one receipt missing;
        // 2: sent, never acked nor delivered; 3: never sent
        t.record_sent(0, 1);
        t.record_sent(1, 2);
        t.record_sent(2, 1);
        assert!(t.record_ack(0, 10));
        assert!(!t.record_ack(0, 11), "a second ack is not counted");
        assert!(t.record_ack(1, 12));
        t.record_delivery(0, 20);
        t.record_delivery(1, 21);
        t.record_delivery(99, 22);
        assert_eq!(t.strays.load(Ordering::Relaxed), 1);
        assert_eq!(t.deliveries.load(Ordering::Relaxed), 2);
        assert_eq!(t.last_activity_us.load(Ordering::Relaxed), 21);
        assert_eq!(
            t.tally(),
            Tally {
                first_incomplete: Some(1),
                expected_deliveries: 4,
                lost_deliveries: 2,
                incomplete_messages: 1,
                unacknowledged: 1,
            }
        );
    }

    #[test]
    fn rates_are_over_the_span_and_clean_means_nothing_missing() {
        let mut r = Report {
            acknowledged: 2000,
            delivered: 4000,
            ..Report::default()
        };
        r.set_span(Duration::from_secs(2), Duration::from_secs(4));
        assert!((r.acked_per_sec - 500.0).abs() < 1e-9);
        assert!((r.delivered_per_sec - 1000.0).abs() < 1e-9);
        r.set_span(Duration::from_secs(2), Duration::from_secs(1));
        assert!(
            (r.span_s - 2.0).abs() < 1e-9,
            "never shorter than the phase"
        );
        assert!(r.clean());
        r.lost = 1;
        assert!(!r.clean());
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["lost"], 1);
        assert!(json["e2e_latency"]["p99_ms"].is_number());
        assert!(r.table().contains("lost"));
    }
}
