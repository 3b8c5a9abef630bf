//! One poller: receive a batch on a pooled connection, deliver it, commit or back out.
//!
//! The invariant is the user's guarantee: a batch is committed only after its sink succeeded;
//! every failure (sink, put, commit, broken connection, shutdown mid-batch) backs it out, so
//! each message is either delivered once or back on its queue with its backout count raised.
//! Poison messages (backout count at the threshold) go to the backout queue inside the same
//! unit of work and never reach the sink; with no backout queue the poller stops rather than
//! loop. Received without syncpoint (`no-syncpoint`, opted into), a failed delivery loses the
//! batch, which is counted and logged.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::counters::QueueCounters;
use super::sink::Sink;
use crate::Error;
use crate::mq::message::Message;
use crate::mq::reason::ReasonClass;
use crate::mq::session::{GetRequest, is_connection_lost};
use crate::pool::{Backoff, BackoffConfig, Lease, Pool, PooledConn};

/// Where a queue's batches go.
#[derive(Clone)]
pub enum SinkTarget {
    /// A sink outside MQ: commit after it succeeded.
    External(Arc<dyn Sink>),
    /// Another queue on the same connection, in the same unit of work (exactly once).
    Queue(String),
}

impl std::fmt::Debug for SinkTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::External(s) => write!(f, "External({})", s.name()),
            Self::Queue(q) => write!(f, "Queue({q})"),
        }
    }
}

/// Everything a poller needs to know about its queue, resolved before it starts.
#[derive(Debug, Clone)]
pub struct PollPlan {
    /// The queue.
    pub queue: String,
    /// Under syncpoint (batch, single) or not (no-syncpoint).
    pub syncpoint: bool,
    /// Most messages per batch (1 for single).
    pub batch: usize,
    /// Stop adding messages to a batch once it holds this many bytes.
    pub max_batch_bytes: usize,
    /// Wait for the first message of a batch.
    pub wait_ms: u32,
    /// Backout threshold (0 = none): BOTHRESH or the configured override.
    pub backout_threshold: u32,
    /// Backout queue: BOQNAME or the configured override.
    pub backout_queue: Option<String>,
    /// The sink.
    pub sink: SinkTarget,
}

/// When a run ends on its own.
#[derive(Debug, Default)]
pub struct RunLimits {
    /// Stop each poller at its first empty receive.
    pub until_empty: bool,
    /// Stop after this many messages were received over all pollers; `None` = no limit.
    pub max_messages: Option<u64>,
    claimed: AtomicU64,
}

impl RunLimits {
    /// Limits for a run.
    #[must_use]
    pub fn new(until_empty: bool, max_messages: Option<u64>) -> Self {
        Self {
            until_empty,
            max_messages,
            claimed: AtomicU64::new(0),
        }
    }

    /// Claims room for up to `want` messages; 0 means the limit is reached.
    fn claim(&self, want: usize) -> usize {
        let Some(max) = self.max_messages else { return want };
        let mut current = self.claimed.load(Ordering::Relaxed);
        loop {
            let n = max.saturating_sub(current).min(want as u64);
            if n == 0 {
                return 0;
            }
            match self
                .claimed
                .compare_exchange(current, current + n, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return usize::try_from(n).unwrap_or(want),
                Err(actual) => current = actual,
            }
        }
    }

    /// Gives back room that a batch did not use.
    fn unclaim(&self, n: usize) {
        if self.max_messages.is_some() && n > 0 {
            self.claimed.fetch_sub(n as u64, Ordering::AcqRel);
        }
    }
}

/// Why a poller ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollEnd {
    /// Shutdown was asked for.
    Cancelled,
    /// The queue was empty and the run was `until_empty`.
    Empty,
    /// `max_messages` was reached.
    Limit,
    /// The poller stopped for a reason it cannot fix (it says which).
    Stopped(String),
}

/// Polls `plan.queue` until cancelled, a limit is reached or a problem that will not fix
/// itself. Connection-level failures are retried on a new connection.
pub async fn poll(
    pool: Pool,
    plan: Arc<PollPlan>,
    counters: Arc<QueueCounters>,
    limits: Arc<RunLimits>,
    cancel: CancellationToken,
) -> PollEnd {
    let mut pause = Backoff::new(BackoffConfig {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(5),
    });
    loop {
        if cancel.is_cancelled() {
            return PollEnd::Cancelled;
        }
        let room = limits.claim(plan.batch);
        if room == 0 {
            return PollEnd::Limit;
        }
        let mut lease = match pool.checkout(&cancel).await {
            Ok(lease) => lease,
            Err(_) if cancel.is_cancelled() => {
                limits.unclaim(room);
                return PollEnd::Cancelled;
            }
            Err(e) => {
                limits.unclaim(room);
                return PollEnd::Stopped(format!("cannot connect: {e}"));
            }
        };
        let outcome = poll_once(&mut lease, &plan, &counters, room).await;
        drop(lease);
        match outcome {
            Ok(received) => {
                limits.unclaim(room - received.min(room));
                if received == 0 && limits.until_empty {
                    return PollEnd::Empty;
                }
                pause.reset();
            }
            Err(Stop::Fatal(why)) => {
                limits.unclaim(room);
                return PollEnd::Stopped(why);
            }
            Err(Stop::Retry(why, received)) => {
                limits.unclaim(room - received.min(room));
                let delay = pause.next_delay();
                tracing::warn!(queue = %plan.queue, retry_in_ms = delay.as_millis() as u64, "{why}");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = cancel.cancelled() => return PollEnd::Cancelled,
                }
            }
        }
    }
}

/// Why one round did not complete: retry later, or stop polling this queue.
enum Stop {
    Retry(String, usize),
    Fatal(String),
}

/// Sorts an MQ error into retry (after a pause) or stop.
fn classify(e: &Error, received: usize) -> Stop {
    match e.reason().map(|r| r.class()) {
        Some(ReasonClass::Config) => Stop::Fatal(e.to_string()),
        None => Stop::Fatal(e.to_string()),
        _ if is_connection_lost(e) => Stop::Retry(format!("{e}; reconnecting"), received),
        _ => Stop::Retry(e.to_string(), received),
    }
}

/// One round: receive, deliver, commit. Returns how many messages were received.
async fn poll_once(
    lease: &mut Lease,
    plan: &Arc<PollPlan>,
    counters: &QueueCounters,
    room: usize,
) -> Result<usize, Stop> {
    let p = Arc::clone(plan);
    let batch = lease
        .run(move |c| receive(c, &p, room))
        .await
        .map_err(|e| classify(&e, 0))?;
    if batch.is_empty() {
        return Ok(0);
    }
    let received = batch.len();
    counters.received(&plan.queue, received);
    let threshold = plan.backout_threshold;
    let (poison, good): (Vec<Message>, Vec<Message>) = batch
        .into_iter()
        .partition(|m| threshold > 0 && m.backout_count() >= i32::try_from(threshold).unwrap_or(i32::MAX));
    if !poison.is_empty() && plan.backout_queue.is_none() {
        back_out(lease, plan, counters, received).await;
        return Err(Stop::Fatal(format!(
            "message {} has backout count {} (threshold {threshold}) and {} has no backout queue \
             (BOQNAME) and none is configured: stopped polling it rather than loop; set backout_queue",
            poison[0].msg_id_hex(),
            poison[0].backout_count(),
            plan.queue
        )));
    }
    if !plan.syncpoint {
        return deliver_at_most_once(plan, counters, good).await.map(|()| received);
    }
    let delivered = good.len();
    if let Err(why) = deliver(lease, plan, good).await {
        counters.sink_failed(&plan.queue);
        back_out(lease, plan, counters, received).await;
        return Err(Stop::Retry(why, received));
    }
    let p = Arc::clone(plan);
    let poisoned = poison.len();
    let finish = lease
        .run(move |c| {
            if let Some(boq) = &p.backout_queue {
                for m in &poison {
                    c.put(boq, m, &m.data, true)?;
                }
            }
            c.commit()
        })
        .await;
    match finish {
        Ok(()) => {
            counters.committed(&plan.queue, delivered, poisoned);
            if poisoned > 0 {
                tracing::warn!(queue = %plan.queue, count = poisoned, "moved poison messages to the backout queue");
            }
            Ok(received)
        }
        Err(e) => {
            back_out(lease, plan, counters, received).await;
            Err(classify(&e, received))
        }
    }
}

/// Gets up to `room` messages: the first with a wait, the rest without, until the batch is
/// full or holds `max_batch_bytes`.
fn receive(c: &mut PooledConn, plan: &PollPlan, room: usize) -> Result<Vec<Message>, Error> {
    let first = GetRequest {
        syncpoint: plan.syncpoint,
        wait_ms: plan.wait_ms,
    };
    let Some(m) = c.get(&plan.queue, first)? else {
        return Ok(Vec::new());
    };
    let mut bytes = m.data.len();
    let mut batch = vec![m];
    let next = GetRequest { wait_ms: 0, ..first };
    while batch.len() < room && bytes < plan.max_batch_bytes {
        match c.get(&plan.queue, next)? {
            Some(m) => {
                bytes += m.data.len();
                batch.push(m);
            }
            None => break,
        }
    }
    Ok(batch)
}

/// Hands the batch to the sink. For a queue sink the puts join the unit of work.
async fn deliver(lease: &mut Lease, plan: &PollPlan, good: Vec<Message>) -> Result<(), String> {
    if good.is_empty() {
        return Ok(());
    }
    let started = std::time::Instant::now();
    let result = match &plan.sink {
        SinkTarget::External(sink) => sink.deliver(&good).await.map_err(|e| e.to_string()),
        SinkTarget::Queue(target) => {
            let target = target.clone();
            lease
                .run(move |c| {
                    for m in &good {
                        c.put(&target, m, &m.data, true)?;
                    }
                    Ok(())
                })
                .await
                .map_err(|e| e.to_string())
        }
    };
    metrics::histogram!("mqpilot_sink_seconds", "queue" => plan.queue.clone()).record(started.elapsed().as_secs_f64());
    result
}

async fn deliver_at_most_once(plan: &PollPlan, counters: &QueueCounters, good: Vec<Message>) -> Result<(), Stop> {
    let n = good.len();
    let result = match &plan.sink {
        SinkTarget::External(sink) => sink.deliver(&good).await.map_err(|e| e.to_string()),
        SinkTarget::Queue(_) => Err("a queue sink needs syncpoint; use receive = \"batch\"".to_owned()),
    };
    match result {
        Ok(()) => {
            counters.committed(&plan.queue, n, 0);
            Ok(())
        }
        Err(why) => {
            counters.sink_failed(&plan.queue);
            counters.lost(n);
            tracing::error!(queue = %plan.queue, count = n, "{why}: these messages were received without syncpoint and are lost");
            Err(Stop::Retry(why, n))
        }
    }
}

async fn back_out(lease: &mut Lease, plan: &PollPlan, counters: &QueueCounters, n: usize) {
    counters.backed_out(&plan.queue, n);
    if let Err(e) = lease.run(PooledConn::backout).await {
        // A broken connection backs the unit of work out by itself.
        tracing::debug!(queue = %plan.queue, error = %e, "MQBACK failed");
    }
}

#[cfg(test)]
mod tests {
    use super::RunLimits;

    #[test]
    fn limits_hand_out_exactly_max_messages() {
        let limits = RunLimits::new(false, Some(25));
        assert_eq!(limits.claim(10), 10);
        assert_eq!(limits.claim(10), 10);
        assert_eq!(limits.claim(10), 5);
        assert_eq!(limits.claim(10), 0);
        limits.unclaim(3);
        assert_eq!(limits.claim(10), 3);
        assert_eq!(RunLimits::new(false, None).claim(7), 7);
    }
}
