//! A whole run: every queue's pollers on one pool, until shutdown or a limit, then a summary.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::counters::{QueueCounters, QueueTotals};
use super::limits::RunLimits;
use super::poller::{PollEnd, PollPlan, poll};
use crate::pool::{Pool, PoolSnapshot};

/// One queue with its pollers.
#[derive(Debug, Clone)]
pub struct QueueRun {
    /// What each poller does.
    pub plan: Arc<PollPlan>,
    /// How many pollers (each checks out its own connection per batch).
    pub workers: usize,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Per queue: totals and how each of its pollers ended.
    pub queues: Vec<(String, QueueTotals, Vec<PollEnd>)>,
    /// The pool's counters at the end (peak handles per connection, budgets, reconnects).
    pub pool: PoolSnapshot,
}

impl RunSummary {
    /// Pollers that stopped for a reason they could not fix, with the reason.
    #[must_use]
    pub fn stopped(&self) -> Vec<(String, String)> {
        self.queues
            .iter()
            .flat_map(|(q, _, ends)| {
                ends.iter().filter_map(move |e| match e {
                    PollEnd::Stopped(why) => Some((q.clone(), why.clone())),
                    _ => None,
                })
            })
            .collect()
    }

    /// Totals over all queues.
    #[must_use]
    pub fn total(&self) -> QueueTotals {
        self.queues.iter().fold(QueueTotals::default(), |mut t, (_, q, _)| {
            t.received += q.received;
            t.delivered += q.delivered;
            t.backed_out += q.backed_out;
            t.commit_unknown += q.commit_unknown;
            t.poisoned += q.poisoned;
            t.sink_failures += q.sink_failures;
            t.batches += q.batches;
            t.lost_at_most_once += q.lost_at_most_once;
            t
        })
    }
}

/// Live view of a run for a status line.
#[derive(Debug, Clone)]
pub struct RunHandle {
    counters: Vec<(String, Arc<QueueCounters>)>,
    pool: Pool,
}

impl RunHandle {
    /// Totals per queue right now.
    #[must_use]
    pub fn totals(&self) -> Vec<(String, QueueTotals)> {
        self.counters.iter().map(|(q, c)| (q.clone(), c.totals())).collect()
    }

    /// The pool's counters right now.
    #[must_use]
    pub fn pool(&self) -> PoolSnapshot {
        self.pool.stats().snapshot()
    }
}

/// Runs every queue's pollers until `cancel`, the limits, or every poller has stopped.
/// A sink that can take nothing more (stdout closed) stops the whole run: its poller cancels
/// the run's own token, a child of `cancel`.
/// The returned handle shows progress while `run` is awaited.
pub fn start(pool: &Pool, queues: &[QueueRun], limits: RunLimits, cancel: &CancellationToken) -> (RunHandle, Run) {
    let limits = Arc::new(limits);
    let cancel = cancel.child_token();
    let mut tasks = JoinSet::new();
    let mut queue_of = HashMap::new();
    let mut counters = Vec::new();
    for (qi, q) in queues.iter().enumerate() {
        let c = Arc::new(QueueCounters::new(&q.plan.queue));
        if !q.plan.syncpoint {
            c.watch_undelivered();
        }
        counters.push((q.plan.queue.to_string(), Arc::clone(&c)));
        for _ in 0..q.workers.max(1) {
            let (pool, plan, c, limits, cancel) = (
                pool.clone(),
                Arc::clone(&q.plan),
                Arc::clone(&c),
                Arc::clone(&limits),
                cancel.clone(),
            );
            let task = tasks.spawn(async move { poll(pool, plan, c, limits, cancel).await });
            queue_of.insert(task.id(), qi);
        }
    }
    let handle = RunHandle {
        counters,
        pool: pool.clone(),
    };
    (
        handle.clone(),
        Run {
            tasks,
            queue_of,
            handle,
            queues: queues.len(),
        },
    )
}

/// How a poller that panicked (a bug) ended: stopped, so that the summary names it and the
/// run's exit code says a queue stopped, instead of the poller vanishing from the count.
fn failed(e: tokio::task::JoinError) -> (tokio::task::Id, PollEnd) {
    let id = e.id();
    let why = match e.try_into_panic() {
        Ok(panic) => panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into()),
        Err(e) => e.to_string(),
    };
    tracing::error!(error = %why, "a poller panicked");
    (id, PollEnd::Stopped(format!("the poller panicked: {why}")))
}

/// How long a finished run waits for its connections to close their handles and disconnect.
const DISCONNECT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A started run: await [`Run::finish`] for its summary.
#[derive(Debug)]
pub struct Run {
    tasks: JoinSet<PollEnd>,
    /// Which queue each poller task polls.
    queue_of: HashMap<tokio::task::Id, usize>,
    handle: RunHandle,
    queues: usize,
}

impl Run {
    /// Waits for every poller to end, then for the pool's connections to close their handles
    /// and disconnect (at most [`DISCONNECT_WAIT`]), and returns the summary.
    pub async fn finish(mut self) -> RunSummary {
        let mut ends: Vec<Vec<PollEnd>> = vec![Vec::new(); self.queues];
        while let Some(joined) = self.tasks.join_next_with_id().await {
            let (id, end) = joined.unwrap_or_else(failed);
            if let Some(&qi) = self.queue_of.get(&id) {
                ends[qi].push(end);
            }
        }
        let pool = self.handle.pool.stats().snapshot();
        self.handle.pool.close_idle();
        if !self.handle.pool.disconnected_within(DISCONNECT_WAIT).await {
            tracing::warn!(
                connections = self.handle.pool.connection_threads(),
                "connections not yet disconnected after {DISCONNECT_WAIT:?}: not waited for any longer; \
                 the queue manager backs out what they held when their sockets close"
            );
        }
        RunSummary {
            queues: self
                .handle
                .counters
                .iter()
                .zip(ends)
                .map(|((q, c), e)| (q.clone(), c.totals(), e))
                .collect(),
            pool,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{FakeConfig, FakeQm};
    use crate::mq::MqLibrary;
    use crate::mq::options::ConnectOptions;
    use crate::pool::PoolConfig;

    #[tokio::test]
    async fn a_poller_that_panics_ends_stopped_with_its_message() {
        let mut tasks = JoinSet::new();
        let mut queue_of = HashMap::new();
        for (qi, fails) in [(0, true), (0, false), (1, false)] {
            let task = tasks.spawn(async move {
                assert!(!fails, "the poller's bug");
                PollEnd::Empty
            });
            queue_of.insert(task.id(), qi);
        }
        let library = MqLibrary::fake(FakeQm::new(FakeConfig::default()).library("10.0.0.1"));
        let pool = Pool::new(
            library,
            ConnectOptions::builder().build().expect("options"),
            PoolConfig::default(),
        );
        let counters = ["A", "B"]
            .into_iter()
            .map(|q| (q.to_owned(), Arc::new(QueueCounters::new(q))))
            .collect();
        let run = Run {
            tasks,
            queue_of,
            handle: RunHandle { counters, pool },
            queues: 2,
        };
        let summary = run.finish().await;
        assert_eq!(
            summary.stopped(),
            [("A".to_owned(), "the poller panicked: the poller's bug".to_owned())]
        );
        assert_eq!(summary.queues[0].2.len(), 2, "both of A's pollers are accounted for");
        assert_eq!(summary.queues[1].2, [PollEnd::Empty]);
    }
}
