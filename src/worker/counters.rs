//! What a run has done per queue: the numbers behind metrics, the status line and the summary.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters of one queue's pollers.
#[derive(Debug, Default)]
pub struct QueueCounters {
    received: AtomicU64,
    delivered: AtomicU64,
    backed_out: AtomicU64,
    poisoned: AtomicU64,
    sink_failures: AtomicU64,
    batches: AtomicU64,
    lost_at_most_once: AtomicU64,
}

/// A copy of one queue's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueTotals {
    /// Messages got from the queue.
    pub received: u64,
    /// Messages the sink took and MQ committed.
    pub delivered: u64,
    /// Messages returned to the queue by a backout.
    pub backed_out: u64,
    /// Messages moved to the backout queue.
    pub poisoned: u64,
    /// Batches the sink failed.
    pub sink_failures: u64,
    /// Batches committed.
    pub batches: u64,
    /// Messages got without syncpoint whose delivery failed (at-most-once mode only).
    pub lost_at_most_once: u64,
}

impl QueueCounters {
    pub(crate) fn received(&self, queue: &str, n: usize) {
        self.received.fetch_add(n as u64, Ordering::Relaxed);
        metrics::counter!("mqpilot_messages_received_total", "queue" => queue.to_owned()).increment(n as u64);
        metrics::histogram!("mqpilot_batch_size", "queue" => queue.to_owned()).record(n as f64);
    }

    pub(crate) fn committed(&self, queue: &str, delivered: usize, poisoned: usize) {
        self.delivered.fetch_add(delivered as u64, Ordering::Relaxed);
        self.poisoned.fetch_add(poisoned as u64, Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("mqpilot_messages_committed_total", "queue" => queue.to_owned()).increment(delivered as u64);
        metrics::counter!("mqpilot_messages_poisoned_total", "queue" => queue.to_owned()).increment(poisoned as u64);
    }

    pub(crate) fn backed_out(&self, queue: &str, n: usize) {
        self.backed_out.fetch_add(n as u64, Ordering::Relaxed);
        metrics::counter!("mqpilot_messages_backed_out_total", "queue" => queue.to_owned()).increment(n as u64);
    }

    pub(crate) fn sink_failed(&self, queue: &str) {
        self.sink_failures.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("mqpilot_sink_failures_total", "queue" => queue.to_owned()).increment(1);
    }

    pub(crate) fn lost(&self, n: usize) {
        self.lost_at_most_once.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// A copy of the counters.
    #[must_use]
    pub fn totals(&self) -> QueueTotals {
        QueueTotals {
            received: self.received.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
            backed_out: self.backed_out.load(Ordering::Relaxed),
            poisoned: self.poisoned.load(Ordering::Relaxed),
            sink_failures: self.sink_failures.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            lost_at_most_once: self.lost_at_most_once.load(Ordering::Relaxed),
        }
    }
}
