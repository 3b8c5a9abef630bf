//! What a run has done per queue: the numbers behind metrics, the status line and the summary.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Unit};

/// Live counters of one queue's pollers.
#[derive(Debug)]
pub struct QueueCounters {
    received: AtomicU64,
    delivered: AtomicU64,
    backed_out: AtomicU64,
    commit_unknown: AtomicU64,
    poisoned: AtomicU64,
    sink_failures: AtomicU64,
    batches: AtomicU64,
    lost_at_most_once: AtomicU64,
    /// Messages received without syncpoint whose batch is still with its sink.
    undelivered: AtomicU64,
    /// MQGETs without syncpoint under way.
    getting: AtomicU64,
    queue: Arc<str>,
    metrics: QueueMetrics,
}

/// The per-queue series, by their Prometheus names (label `queue`).
const RECEIVED: &str = "mqpilot_messages_received_total";
const BATCH_MESSAGES: &str = "mqpilot_batch_messages";
const COMMITTED: &str = "mqpilot_messages_committed_total";
const POISONED: &str = "mqpilot_messages_poisoned_total";
const BACKED_OUT: &str = "mqpilot_messages_backed_out_total";
const COMMIT_UNKNOWN: &str = "mqpilot_messages_commit_unknown_total";
const LOST: &str = "mqpilot_messages_lost_total";
const SINK_FAILURES: &str = "mqpilot_sink_failures_total";
const SINK_SECONDS: &str = "mqpilot_sink_seconds";
const POLLERS: &str = "mqpilot_pollers";

/// Histogram buckets, by series: messages per batch, and seconds per sink call.
pub const HISTOGRAM_BUCKETS: [(&str, &[f64]); 2] = [
    (
        BATCH_MESSAGES,
        &[1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 5000.0],
    ),
    (
        SINK_SECONDS,
        &[
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
        ],
    ),
];

/// Gives the per-queue series their help text and units in the installed recorder.
pub fn describe_metrics() {
    let counters = [
        (RECEIVED, "Messages got from the queue (under syncpoint or not)"),
        (COMMITTED, "Messages the sink took whose unit of work MQ committed"),
        (
            POISONED,
            "Messages moved to the backout queue (backout count at the threshold)",
        ),
        (
            BACKED_OUT,
            "Messages returned to the queue by MQBACK, their backout count raised",
        ),
        (
            COMMIT_UNKNOWN,
            "Messages whose MQCMIT failed with the connection: committed or backed out, unknown",
        ),
        (
            LOST,
            "Messages got without syncpoint whose delivery failed (receive = no-syncpoint only)",
        ),
        (SINK_FAILURES, "Batches the sink failed"),
    ];
    for (name, help) in counters {
        metrics::describe_counter!(name, Unit::Count, help);
    }
    metrics::describe_histogram!(BATCH_MESSAGES, Unit::Count, "Messages per batch received");
    metrics::describe_histogram!(SINK_SECONDS, Unit::Seconds, "Time the sink took per batch");
    metrics::describe_gauge!(
        POLLERS,
        Unit::Count,
        "Pollers of the queue still running: fewer than configured means some stopped (see the log)"
    );
}

/// The queue's Prometheus series, registered once: looking a series up by name and label
/// hashes and locks, five times a batch (five times a message with `receive = "single"`).
#[derive(Debug)]
struct QueueMetrics {
    received: Counter,
    batch_size: Histogram,
    committed: Counter,
    poisoned: Counter,
    backed_out: Counter,
    commit_unknown: Counter,
    lost: Counter,
    sink_failures: Counter,
    sink_seconds: Histogram,
    pollers: Gauge,
}

impl QueueMetrics {
    fn register(queue: &str) -> Self {
        let label = || [("queue", queue.to_owned())];
        Self {
            received: metrics::counter!(RECEIVED, &label()),
            batch_size: metrics::histogram!(BATCH_MESSAGES, &label()),
            committed: metrics::counter!(COMMITTED, &label()),
            poisoned: metrics::counter!(POISONED, &label()),
            backed_out: metrics::counter!(BACKED_OUT, &label()),
            commit_unknown: metrics::counter!(COMMIT_UNKNOWN, &label()),
            lost: metrics::counter!(LOST, &label()),
            sink_failures: metrics::counter!(SINK_FAILURES, &label()),
            sink_seconds: metrics::histogram!(SINK_SECONDS, &label()),
            pollers: metrics::gauge!(POLLERS, &label()),
        }
    }
}

/// A running poller, in `mqpilot_pollers` until dropped (also when its task panics or is
/// dropped).
pub(crate) struct PollerRunning(Gauge);

impl Drop for PollerRunning {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
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
    /// Messages whose MQCMIT failed with the connection: committed, or backed out by MQ (and
    /// then received again); nobody can tell which.
    pub commit_unknown: u64,
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
    /// Counters for `queue`, with its metrics series registered in the recorder installed
    /// now (none: they go nowhere).
    #[must_use]
    pub fn new(queue: &str) -> Self {
        Self {
            received: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            backed_out: AtomicU64::new(0),
            commit_unknown: AtomicU64::new(0),
            poisoned: AtomicU64::new(0),
            sink_failures: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            lost_at_most_once: AtomicU64::new(0),
            undelivered: AtomicU64::new(0),
            getting: AtomicU64::new(0),
            queue: queue.into(),
            metrics: QueueMetrics::register(queue),
        }
    }

    pub(crate) fn received(&self, n: usize) {
        self.received.fetch_add(n as u64, Ordering::Relaxed);
        self.metrics.received.increment(n as u64);
        self.metrics.batch_size.record(n as f64);
    }

    pub(crate) fn committed(&self, delivered: usize, poisoned: usize) {
        self.delivered.fetch_add(delivered as u64, Ordering::Relaxed);
        self.poisoned.fetch_add(poisoned as u64, Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.metrics.committed.increment(delivered as u64);
        self.metrics.poisoned.increment(poisoned as u64);
    }

    pub(crate) fn backed_out(&self, n: usize) {
        self.backed_out.fetch_add(n as u64, Ordering::Relaxed);
        self.metrics.backed_out.increment(n as u64);
    }

    pub(crate) fn commit_unknown(&self, n: usize) {
        self.commit_unknown.fetch_add(n as u64, Ordering::Relaxed);
        self.metrics.commit_unknown.increment(n as u64);
    }

    pub(crate) fn sink_failed(&self) {
        self.sink_failures.fetch_add(1, Ordering::Relaxed);
        self.metrics.sink_failures.increment(1);
    }

    pub(crate) fn sink_took(&self, elapsed: Duration) {
        self.metrics.sink_seconds.record(elapsed.as_secs_f64());
    }

    pub(crate) fn lost(&self, n: usize) {
        self.lost_at_most_once.fetch_add(n as u64, Ordering::Relaxed);
        self.metrics.lost.increment(n as u64);
    }

    /// Lists these counters in [`undelivered_without_syncpoint`] while they live: the queue
    /// is received without syncpoint.
    pub(crate) fn watch_undelivered(self: &Arc<Self>) {
        let mut watched = WITHOUT_SYNCPOINT.lock().unwrap_or_else(PoisonError::into_inner);
        watched.retain(|c| c.strong_count() > 0);
        watched.push(Arc::downgrade(self));
    }

    /// Counts the messages of a batch received without syncpoint until its delivery ends.
    pub(crate) const fn undelivered(&self) -> Undelivered<'_> {
        Undelivered {
            counters: self,
            n: 0,
            getting: false,
        }
    }

    /// Counts a poller of the queue as running until the returned guard is dropped.
    pub(crate) fn poller_running(&self) -> PollerRunning {
        self.metrics.pollers.increment(1.0);
        PollerRunning(self.metrics.pollers.clone())
    }

    /// A copy of the counters.
    #[must_use]
    pub fn totals(&self) -> QueueTotals {
        QueueTotals {
            received: self.received.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
            backed_out: self.backed_out.load(Ordering::Relaxed),
            commit_unknown: self.commit_unknown.load(Ordering::Relaxed),
            poisoned: self.poisoned.load(Ordering::Relaxed),
            sink_failures: self.sink_failures.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            lost_at_most_once: self.lost_at_most_once.load(Ordering::Relaxed),
        }
    }
}

/// The counters of the queues received without syncpoint in this process, for
/// [`undelivered_without_syncpoint`]; a run's counters leave it when the run is gone.
static WITHOUT_SYNCPOINT: Mutex<Vec<Weak<QueueCounters>>> = Mutex::new(Vec::new());

/// A batch being received without syncpoint, counted in [`undelivered_without_syncpoint`]
/// from each MQGET on until dropped, when its delivery has ended, whatever came of it.
pub(crate) struct Undelivered<'a> {
    counters: &'a QueueCounters,
    /// Messages got.
    n: u64,
    /// An MQGET is under way: it may be taking a message.
    getting: bool,
}

impl Undelivered<'_> {
    /// An MQGET is about to be issued.
    pub(crate) fn getting(&mut self) {
        self.counters.getting.fetch_add(1, Ordering::Relaxed);
        self.getting = true;
    }

    /// The MQGET ended; `took` whether it took a message.
    pub(crate) fn got(&mut self, took: bool) {
        if took {
            self.n += 1;
            self.counters.undelivered.fetch_add(1, Ordering::Relaxed);
        }
        if std::mem::take(&mut self.getting) {
            self.counters.getting.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Drop for Undelivered<'_> {
    fn drop(&mut self) {
        self.got(false);
        self.counters.undelivered.fetch_sub(self.n, Ordering::Relaxed);
    }
}

/// One queue's share of what exiting now would lose, received without syncpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsynced {
    /// The queue.
    pub queue: String,
    /// Messages got, in batches not yet delivered in full.
    pub messages: u64,
    /// MQGETs under way, each of which may be taking one more.
    pub gets: u64,
}

/// What exiting now would lose of the queues received without syncpoint (`receive =
/// "no-syncpoint"`), per queue with anything at stake: MQ has nothing to back out for them.
#[must_use]
pub fn undelivered_without_syncpoint() -> Vec<Unsynced> {
    let watched = WITHOUT_SYNCPOINT.lock().unwrap_or_else(PoisonError::into_inner);
    watched
        .iter()
        .filter_map(Weak::upgrade)
        .map(|c| Unsynced {
            queue: c.queue.to_string(),
            messages: c.undelivered.load(Ordering::Relaxed),
            gets: c.getting.load(Ordering::Relaxed),
        })
        .filter(|u| u.messages > 0 || u.gets > 0)
        .collect()
}
