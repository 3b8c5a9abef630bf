//! A whole run: every queue's pollers on one pool, until shutdown or a limit, then a summary.

use std::sync::Arc;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::counters::{QueueCounters, QueueTotals};
use super::poller::{PollEnd, PollPlan, RunLimits, poll};
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
/// The returned handle shows progress while `run` is awaited.
pub fn start(pool: &Pool, queues: &[QueueRun], limits: RunLimits, cancel: &CancellationToken) -> (RunHandle, Run) {
    let limits = Arc::new(limits);
    let mut tasks = JoinSet::new();
    let mut counters = Vec::new();
    for (qi, q) in queues.iter().enumerate() {
        let c = Arc::new(QueueCounters::default());
        counters.push((q.plan.queue.to_string(), Arc::clone(&c)));
        for _ in 0..q.workers.max(1) {
            let (pool, plan, c, limits, cancel) = (
                pool.clone(),
                Arc::clone(&q.plan),
                Arc::clone(&c),
                Arc::clone(&limits),
                cancel.clone(),
            );
            tasks.spawn(async move { (qi, poll(pool, plan, c, limits, cancel).await) });
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
            handle,
            queues: queues.len(),
        },
    )
}

/// A started run: await [`Run::finish`] for its summary.
#[derive(Debug)]
pub struct Run {
    tasks: JoinSet<(usize, PollEnd)>,
    handle: RunHandle,
    queues: usize,
}

impl Run {
    /// Waits for every poller to end and returns the summary.
    pub async fn finish(mut self) -> RunSummary {
        let mut ends: Vec<Vec<PollEnd>> = vec![Vec::new(); self.queues];
        while let Some(joined) = self.tasks.join_next().await {
            match joined {
                Ok((qi, end)) => ends[qi].push(end),
                Err(e) => tracing::error!(error = %e, "a poller panicked"),
            }
        }
        let pool = self.handle.pool.stats().snapshot();
        self.handle.pool.close_idle();
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
