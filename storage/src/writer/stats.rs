//! Batch-size statistics of the writer.

use std::sync::atomic::{AtomicU64, Ordering};

/// Batch-size statistics, for benchmarks and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Committed transactions.
    pub transactions: u64,
    /// Transactions rolled back because a statement or the commit failed.
    pub failed_transactions: u64,
    /// Requests in committed transactions (refused ones included).
    pub requests: u64,
    pub largest_batch: u64,
    /// `batch_sizes[i]`: committed batches of `2^i` to `2^(i+1) - 1`
    /// requests; the last bucket also counts every larger batch.
    pub batch_sizes: [u64; STAT_BUCKETS],
}

pub const STAT_BUCKETS: usize = 10;

impl WriterStats {
    #[allow(clippy::cast_precision_loss)] // a statistic; counts stay far below 2^52
    pub fn mean_batch(&self) -> f64 {
        if self.transactions == 0 {
            0.0
        } else {
            self.requests as f64 / self.transactions as f64
        }
    }
}

#[derive(Default)]
pub(super) struct StatsCell {
    transactions: AtomicU64,
    pub(super) failed_transactions: AtomicU64,
    requests: AtomicU64,
    largest_batch: AtomicU64,
    batch_sizes: [AtomicU64; STAT_BUCKETS],
}

impl StatsCell {
    pub(super) fn committed(&self, size: usize) {
        let size = size as u64;
        self.transactions.fetch_add(1, Ordering::Relaxed);
        self.requests.fetch_add(size, Ordering::Relaxed);
        self.largest_batch.fetch_max(size, Ordering::Relaxed);
        let bucket = (size.max(1).ilog2() as usize).min(STAT_BUCKETS - 1);
        self.batch_sizes[bucket].fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn snapshot(&self) -> WriterStats {
        WriterStats {
            transactions: self.transactions.load(Ordering::Relaxed),
            failed_transactions: self.failed_transactions.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            largest_batch: self.largest_batch.load(Ordering::Relaxed),
            batch_sizes: std::array::from_fn(|i| self.batch_sizes[i].load(Ordering::Relaxed)),
        }
    }
}
