//! What the pool has done, for logs, the status line, metrics and tests.
//!
//! Counters are atomics updated by the connection threads; per-connection figures (handles
//! now, peak, budget) sit behind a small mutex and are only touched when a handle opens or
//! closes, never per message. Per-connection metrics are labelled by pool slot (0 to P-1),
//! not by connection id: ids are never reused, so a label per id would leave a stale series
//! behind every reconnect. A slot also keeps what its connections did over the whole run
//! (the highest peak of any of them, how many there were), so that a connection replaced
//! after a reconnect does not take its peak with it.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use metrics::Unit;

/// Live counters of one pool.
#[derive(Debug, Default)]
pub struct PoolStats {
    connects: AtomicU64,
    connect_failures: AtomicU64,
    reconnects: AtomicU64,
    waits_for_connection: AtomicU64,
    budget_shrinks: AtomicU64,
    handle_closes_for_budget: AtomicU64,
    per_connection: Mutex<Connections>,
}

/// The connections open now, and every slot that has had one.
#[derive(Debug, Default)]
struct Connections {
    /// By connection id.
    open: BTreeMap<usize, ConnectionStats>,
    /// By pool slot.
    slots: BTreeMap<usize, SlotStats>,
}

/// One connection's handle figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    /// The pool slot it fills, 0 to P-1: the lowest free when it connected. Its metrics'
    /// `connection` label.
    pub slot: usize,
    /// Handles open now.
    pub handles: usize,
    /// Most handles open at once.
    pub peak_handles: usize,
    /// The handle budget: min(configured, MAXHANDS - reserve), lowered after a 2017.
    pub budget: usize,
    /// MAXHANDS as the queue manager reported it, or IBM's default when
    /// `max_handles_assumed`.
    pub max_handles: usize,
    /// The queue manager refused the MQINQ that reads MAXHANDS (no `+inq` on its object), so
    /// `max_handles` is IBM's default, not the queue manager's setting.
    pub max_handles_assumed: bool,
    /// A 2017 lowered `budget` below what MAXHANDS gave.
    pub budget_shrunk: bool,
}

/// One pool slot over the whole run: every connection that has filled it, in turn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlotStats {
    /// Connections that have filled it: the first, and one more per reconnect.
    pub connections: u64,
    /// Most handles any of them held at once.
    pub peak_handles: usize,
    /// The last of them: the one filling it now when `connected`.
    pub last: ConnectionStats,
    /// Whether a connection fills it now.
    pub connected: bool,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolSnapshot {
    /// Successful connects.
    pub connects: u64,
    /// Failed connect attempts.
    pub connect_failures: u64,
    /// Connections dropped for a connection-level reason code and replaced.
    pub reconnects: u64,
    /// Checkouts that had to wait for a free connection.
    pub waits_for_connection: u64,
    /// Times a 2017 shrank a connection's budget.
    pub budget_shrinks: u64,
    /// Handles closed to stay within the budget.
    pub handle_closes_for_budget: u64,
    /// Connections open now, by connection id (never reused; see [`ConnectionStats::slot`]).
    pub connections: BTreeMap<usize, ConnectionStats>,
    /// Every slot that has had a connection, by slot, with the connections that are gone.
    pub slots: BTreeMap<usize, SlotStats>,
}

impl PoolSnapshot {
    /// The highest peak handle count of any connection, open or closed.
    #[must_use]
    pub fn peak_handles(&self) -> usize {
        self.slots.values().map(|s| s.peak_handles).max().unwrap_or(0)
    }
}

/// The pool's series, by their Prometheus names.
const CONNECTS: &str = "mqpilot_connects_total";
const CONNECT_FAILURES: &str = "mqpilot_connect_failures_total";
const RECONNECTS: &str = "mqpilot_reconnects_total";
const CONNECTION_WAITS: &str = "mqpilot_connection_waits_total";
const BUDGET_SHRINKS: &str = "mqpilot_budget_shrinks_total";
const HANDLE_CLOSES_FOR_BUDGET: &str = "mqpilot_handle_closes_for_budget_total";
const CONNECTIONS: &str = "mqpilot_connections";
/// Per pool slot (label `connection`).
const HANDLES: &str = "mqpilot_handles";
const HANDLE_BUDGET: &str = "mqpilot_handle_budget";

/// Gives the pool's series their help text in the installed recorder and lists the pool-wide
/// ones at 0, so that a scrape shows them before their first event (an alert on
/// `mqpilot_connections == 0` fires while the queue manager cannot be reached at start).
pub fn register_metrics() {
    let counters = [
        (CONNECTS, "Connections made (MQCONNX that succeeded)"),
        (CONNECT_FAILURES, "MQCONNX calls that failed"),
        (RECONNECTS, "Connections replaced after a connection-level reason code"),
        (CONNECTION_WAITS, "Checkouts that waited for a connection of the pool"),
        (
            BUDGET_SHRINKS,
            "Handle budgets lowered after an unexpected 2017 (MQRC_HANDLE_NOT_AVAILABLE)",
        ),
        (
            HANDLE_CLOSES_FOR_BUDGET,
            "Cached handles closed to open another within the handle budget (a handle is never \
             waited for: the least recently used one is closed); a steady rise means the budget \
             is too small for the queues each connection uses",
        ),
    ];
    for (name, help) in counters {
        metrics::describe_counter!(name, Unit::Count, help);
        metrics::counter!(name).increment(0);
    }
    metrics::describe_gauge!(CONNECTIONS, Unit::Count, "Connections of the pool open now");
    metrics::describe_gauge!(
        HANDLES,
        Unit::Count,
        "Object handles open now on the pool slot's connection"
    );
    metrics::describe_gauge!(
        HANDLE_BUDGET,
        Unit::Count,
        "Handles the pool slot's connection may open: min(max_handles, MAXHANDS - handle_reserve), \
         lowered after a 2017; 0 while no connection fills the slot"
    );
    metrics::gauge!(CONNECTIONS).set(0.0);
}

impl PoolStats {
    /// Connection `id` is made, with `max_handles` (assumed rather than read when
    /// `max_handles_assumed`) and a handle `budget`; it takes the lowest free slot.
    pub(crate) fn connected(&self, id: usize, max_handles: usize, max_handles_assumed: bool, budget: usize) {
        self.connects.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(CONNECTS).increment(1);
        let mut per = self.lock();
        // A slot is free again once its connection has disconnected, which is before the
        // pool lets a new connection take its place: the lowest free one stays below P.
        let slot = (0..)
            .find(|s| per.open.values().all(|c| c.slot != *s))
            .unwrap_or_default();
        let stats = ConnectionStats {
            slot,
            handles: 0,
            peak_handles: 0,
            budget,
            max_handles,
            max_handles_assumed,
            budget_shrunk: false,
        };
        per.open.insert(id, stats);
        let history = per.slots.entry(slot).or_default();
        history.connections += 1;
        history.last = stats;
        history.connected = true;
        metrics::gauge!(CONNECTIONS).set(per.open.len() as f64);
        metrics::gauge!(HANDLES, "connection" => slot.to_string()).set(0.0);
        metrics::gauge!(HANDLE_BUDGET, "connection" => slot.to_string()).set(budget as f64);
    }

    /// Connection `id` is gone: its slot shows no handles and a budget of 0 until a
    /// connection fills it again.
    pub(crate) fn disconnected(&self, id: usize) {
        let mut per = self.lock();
        if let Some(c) = per.open.remove(&id) {
            if let Some(history) = per.slots.get_mut(&c.slot) {
                history.last = c;
                history.connected = false;
            }
            metrics::gauge!(HANDLES, "connection" => c.slot.to_string()).set(0.0);
            metrics::gauge!(HANDLE_BUDGET, "connection" => c.slot.to_string()).set(0.0);
        }
        metrics::gauge!(CONNECTIONS).set(per.open.len() as f64);
    }

    pub(crate) fn connect_failed(&self) {
        self.connect_failures.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(CONNECT_FAILURES).increment(1);
    }

    pub(crate) fn reconnect(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(RECONNECTS).increment(1);
    }

    pub(crate) fn waited_for_connection(&self) {
        self.waits_for_connection.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(CONNECTION_WAITS).increment(1);
    }

    pub(crate) fn budget_shrunk(&self, id: usize, budget: usize) {
        self.budget_shrinks.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(BUDGET_SHRINKS).increment(1);
        let mut per = self.lock();
        if let Some(c) = per.open.get_mut(&id) {
            c.budget = budget;
            c.budget_shrunk = true;
            let c = *c;
            if let Some(history) = per.slots.get_mut(&c.slot) {
                history.last = c;
            }
            metrics::gauge!(HANDLE_BUDGET, "connection" => c.slot.to_string()).set(budget as f64);
        }
    }

    pub(crate) fn closed_for_budget(&self) {
        self.handle_closes_for_budget.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(HANDLE_CLOSES_FOR_BUDGET).increment(1);
    }

    pub(crate) fn handles(&self, id: usize, handles: usize) {
        let mut per = self.lock();
        if let Some(c) = per.open.get_mut(&id) {
            c.handles = handles;
            c.peak_handles = c.peak_handles.max(handles);
            let c = *c;
            if let Some(history) = per.slots.get_mut(&c.slot) {
                history.peak_handles = history.peak_handles.max(handles);
                history.last = c;
            }
            metrics::gauge!(HANDLES, "connection" => c.slot.to_string()).set(handles as f64);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connections> {
        self.per_connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A copy of every counter.
    #[must_use]
    pub fn snapshot(&self) -> PoolSnapshot {
        let per = self.lock();
        PoolSnapshot {
            connects: self.connects.load(Ordering::Relaxed),
            connect_failures: self.connect_failures.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
            waits_for_connection: self.waits_for_connection.load(Ordering::Relaxed),
            budget_shrinks: self.budget_shrinks.load(Ordering::Relaxed),
            handle_closes_for_budget: self.handle_closes_for_budget.load(Ordering::Relaxed),
            connections: per.open.clone(),
            slots: per.slots.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_labelled_by_pool_slot_and_show_the_budget_from_the_connect() {
        // A recorder of this thread only: other tests' metrics go elsewhere.
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let stats = PoolStats::default();
        metrics::with_local_recorder(&recorder, || {
            stats.connected(0, 256, false, 248);
            stats.connected(1, 256, false, 248);
            stats.handles(1, 2);
            // A pool of two whose connections are replaced again and again: ids grow.
            for id in 2..10 {
                stats.disconnected(id - 2);
                stats.connected(id, 256, false, 100 + id);
            }
        });
        let text = recorder.handle().render();
        for series in [
            "mqpilot_handle_budget{connection=\"0\"} 108",
            "mqpilot_handle_budget{connection=\"1\"} 109",
            "mqpilot_handles{connection=\"1\"} 0",
        ] {
            assert!(text.contains(series), "{series} missing:\n{text}");
        }
        assert!(
            !text.contains("connection=\"2\""),
            "a series per connection id:\n{text}"
        );
        let slots: Vec<usize> = stats.snapshot().connections.values().map(|c| c.slot).collect();
        assert_eq!(slots, [0, 1]);
    }

    /// Regression: a slot's peak went with its connection when a reconnect replaced it.
    #[test]
    fn a_slots_peak_is_the_highest_of_every_connection_that_filled_it() {
        let stats = PoolStats::default();
        stats.connected(0, 256, false, 248);
        stats.handles(0, 2);
        stats.handles(0, 1);
        stats.disconnected(0);
        stats.connected(1, 3, true, 3);
        stats.handles(1, 1);
        stats.budget_shrunk(1, 1);
        let snapshot = stats.snapshot();
        let slot = snapshot.slots[&0];
        assert_eq!((slot.connections, slot.peak_handles, slot.connected), (2, 2, true));
        assert_eq!(slot.last.peak_handles, 1, "the connection filling it now");
        assert_eq!(
            (slot.last.budget, slot.last.max_handles_assumed, slot.last.budget_shrunk),
            (1, true, true)
        );
        assert_eq!(snapshot.peak_handles(), 2);
        stats.disconnected(1);
        let slot = stats.snapshot().slots[&0];
        assert_eq!((slot.connections, slot.peak_handles, slot.connected), (2, 2, false));
    }

    /// Regression: a slot left without a connection kept the budget of the one that was gone.
    #[test]
    fn a_slot_without_a_connection_shows_a_budget_of_0() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let stats = PoolStats::default();
        metrics::with_local_recorder(&recorder, || {
            for id in 0..3 {
                stats.connected(id, 256, false, 248);
            }
            stats.handles(2, 1);
            stats.disconnected(2);
        });
        let text = recorder.handle().render();
        for series in [
            "mqpilot_connections 2",
            "mqpilot_handles{connection=\"2\"} 0",
            "mqpilot_handle_budget{connection=\"2\"} 0",
            "mqpilot_handle_budget{connection=\"1\"} 248",
        ] {
            assert!(text.contains(series), "{series} missing:\n{text}");
        }
    }
}
