//! One poller: check a connection out, run rounds on its thread, and decide what each outcome
//! leads to (another turn, a pause, a reconnect, waiting for room, the end).
//!
//! The invariant is the user's guarantee: a batch is committed only after its sink succeeded;
//! every failure (sink, put, commit, broken connection, shutdown mid-batch) backs it out, so
//! each message is either delivered once or back on its queue with its backout count raised.
//! A round itself (receive, poison, deliver, commit) is in `round.rs`; the run's limits
//! (`--max-messages`) are in `limits.rs`.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::counters::QueueCounters;
use super::limits::{Claim, NoRoom, RunLimits};
use super::round::{Idle, Outcome, Stop, claimed_round, classify};
use super::sink::Sink;
use crate::pool::{Backoff, BackoffConfig, Pool, PooledConn, Waiters};

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
    pub queue: Arc<str>,
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

/// Why a poller ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollEnd {
    /// Shutdown was asked for.
    Cancelled,
    /// The queue was empty and the run was `until_empty`.
    Empty,
    /// The run took `max_messages` messages off its queues (over all pollers).
    Limit,
    /// The poller stopped for a reason it cannot fix (it says which).
    Stopped(String),
}

/// Batches one checkout runs before it gives the connection back if another poller is
/// waiting for one, so pollers that outnumber connections get their turn.
const ROUNDS_PER_CHECKOUT: usize = 16;

/// Most batches one checkout runs even when nobody waits: the poller's task sees its
/// results (progress, backoff) at least this often.
const MAX_ROUNDS_PER_CHECKOUT: usize = 1024;

/// Shortest time an empty receive takes: with `wait_ms` 0 (or a few ms), an idle queue would
/// otherwise be polled in a tight loop, a round trip to the queue manager each time.
const EMPTY_RECEIVE_FLOOR: Duration = Duration::from_millis(100);

/// Polls `plan.queue` until cancelled, a limit is reached or a problem that will not fix
/// itself. Connection-level failures are retried on a new connection. While it runs, the
/// poller counts in `mqpilot_pollers`; one that stops says why in the log at once, not only
/// in the summary at exit, since the process and the queue's other pollers go on.
pub async fn poll(
    pool: Pool,
    plan: Arc<PollPlan>,
    counters: Arc<QueueCounters>,
    limits: Arc<RunLimits>,
    cancel: CancellationToken,
) -> PollEnd {
    let _running = counters.poller_running();
    let queue = Arc::clone(&plan.queue);
    let end = poll_until_end(pool, plan, counters, limits, cancel).await;
    if let PollEnd::Stopped(why) = &end {
        tracing::error!(queue = %queue, "a poller stopped polling the queue: {why}");
    }
    end
}

/// A poller's whole life: checkout, rounds on the connection's thread, and what each of their
/// outcomes leads to. (Long for that reason.)
async fn poll_until_end(
    pool: Pool,
    plan: Arc<PollPlan>,
    counters: Arc<QueueCounters>,
    limits: Arc<RunLimits>,
    cancel: CancellationToken,
) -> PollEnd {
    // Between retries of a batch (a sink that failed, a put refused): up to 5 s, so a sink
    // that is back is found soon.
    let mut pause = Backoff::new(BackoffConfig {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(5),
    });
    // Between connections lost one after the other: the pool's reconnect backoff
    // (`reconnect_initial_ms`, `reconnect_max_ms`), since the queue manager takes each
    // connect even when the connection dies on its first call (a proxy that resets
    // sessions, STOP CONN in a script).
    let mut reconnect = Backoff::new(pool.backoff());
    // Every message carries its queue's name; a private copy keeps the reference count of
    // that name on this poller's core instead of bouncing between pollers.
    let plan = Arc::new(PollPlan {
        queue: Arc::from(&*plan.queue),
        ..PollPlan::clone(&plan)
    });
    let runtime = tokio::runtime::Handle::current();
    let mut lost_in_a_row = 0_u32;
    // Room under `--max-messages` that this poller waited for, for its next round, and how
    // long that round's MQGET had already waited on an idle queue before it gave room up.
    let mut claim = None;
    let mut idle_for = Duration::ZERO;
    loop {
        if cancel.is_cancelled() {
            return PollEnd::Cancelled;
        }
        let mut lease = match pool.checkout(&cancel).await {
            Ok(lease) => lease,
            Err(_) if cancel.is_cancelled() => return PollEnd::Cancelled,
            Err(e) => return PollEnd::Stopped(format!("cannot connect: {e}")),
        };
        // Rounds run on the connection's thread: one hand-over for several batches. If this
        // future is dropped (the run is abandoned), `waiting` tells them to start no more.
        let waiting = Waiting::new();
        let turn = Turn {
            plan: Arc::clone(&plan),
            counters: Arc::clone(&counters),
            limits: Arc::clone(&limits),
            cancel: cancel.clone(),
            rt: runtime.clone(),
            waiting: Arc::clone(&waiting.0),
            others: lease.waiters(),
            claim: claim.take(),
            idle_for: Cell::new(std::mem::take(&mut idle_for)),
        };
        let Rounds(progressed, outcome) = {
            let rounds = lease.run(move |conn| Ok(rounds(conn, turn)));
            tokio::pin!(rounds);
            tokio::select! {
                done = &mut rounds => done,
                () = cancel.cancelled() => {
                    // The rounds see the flag between messages: a shared atomic, where the
                    // token would take its lock on every MQGET of every poller.
                    waiting.0.store(false, Ordering::Release);
                    rounds.await
                }
            }
        }
        .unwrap_or_else(|e| Rounds(false, Err(classify(&e))));
        drop(waiting);
        if progressed {
            pause.reset();
            reconnect.reset();
            lost_in_a_row = 0;
        }
        if matches!(outcome, Err(Stop::Lost(_) | Stop::Abort { retire: true, .. })) {
            lease.mark_broken();
        }
        drop(lease);
        match outcome {
            Ok(Next::Again) => {}
            Ok(Next::End(end)) => return end,
            // The connection is back in the pool while this poller waits.
            Ok(Next::WaitForRoom { idle_for: waited }) => match limits.wait_for_room(&cancel).await {
                Ok(room) => (claim, idle_for) = (Some(room), waited),
                Err(end) => return end,
            },
            Err(Stop::Fatal(why)) => return PollEnd::Stopped(why),
            // `cancel` is the run's own: every other poller finishes its batch and ends.
            Err(Stop::Abort { why, .. }) => {
                cancel.cancel();
                return PollEnd::Stopped(why);
            }
            Err(Stop::Lost(why)) if lost_in_a_row == 0 => {
                // The pool has dropped the idle connections with this one: retry at once on a
                // new connection. A second loss in a row pauses like any other failure.
                lost_in_a_row += 1;
                tracing::warn!(queue = %plan.queue, "{why}");
            }
            Err(Stop::Lost(why)) => {
                lost_in_a_row += 1;
                if !paused(&plan.queue, &why, reconnect.next_delay(), &cancel).await {
                    return PollEnd::Cancelled;
                }
            }
            Err(Stop::Retry(why)) => {
                if !paused(&plan.queue, &why, pause.next_delay(), &cancel).await {
                    return PollEnd::Cancelled;
                }
            }
        }
    }
}

/// Logs why a poller pauses and sleeps for `delay`; false if the run was cancelled meanwhile.
async fn paused(queue: &str, why: &str, delay: Duration, cancel: &CancellationToken) -> bool {
    tracing::warn!(queue = %queue, retry_in_ms = delay.as_millis() as u64, "{why}");
    tokio::select! {
        () = tokio::time::sleep(delay) => true,
        () = cancel.cancelled() => false,
    }
}

/// Set while a poller waits for its rounds; cleared when the run is cancelled or the poller
/// stops waiting, even by being dropped.
struct Waiting(Arc<std::sync::atomic::AtomicBool>);

impl Waiting {
    fn new() -> Self {
        Self(Arc::new(std::sync::atomic::AtomicBool::new(true)))
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// What one checkout's rounds need, moved to the connection's thread.
pub(super) struct Turn {
    pub(super) plan: Arc<PollPlan>,
    pub(super) counters: Arc<QueueCounters>,
    pub(super) limits: Arc<RunLimits>,
    pub(super) cancel: CancellationToken,
    pub(super) rt: tokio::runtime::Handle,
    /// Cleared when the poller stops waiting for these rounds.
    pub(super) waiting: Arc<std::sync::atomic::AtomicBool>,
    /// Other checkouts waiting for a connection.
    others: Waiters,
    /// Room the poller waited for, for the first round.
    claim: Option<Claim>,
    /// How long the first round's MQGET already waited before the poller gave its room up:
    /// the wait goes on from there (taken by that round).
    pub(super) idle_for: Cell<Duration>,
}

/// Rounds on one connection: [`ROUNDS_PER_CHECKOUT`] if another poller waits for a
/// connection, else up to [`MAX_ROUNDS_PER_CHECKOUT`].
fn rounds(c: &mut PooledConn, mut turn: Turn) -> Rounds {
    let mut progressed = false;
    for n in 0..MAX_ROUNDS_PER_CHECKOUT {
        if n >= ROUNDS_PER_CHECKOUT && turn.others.any() {
            break;
        }
        if turn.cancel.is_cancelled() || !turn.waiting.load(Ordering::Acquire) {
            return Rounds(progressed, Ok(Next::End(PollEnd::Cancelled)));
        }
        let claim = match turn.claim.take().map_or_else(|| turn.limits.claim_one(), Ok) {
            Ok(claim) => claim,
            Err(NoRoom::Reached) => return Rounds(progressed, Ok(Next::End(PollEnd::Limit))),
            Err(NoRoom::Claimed) => {
                let idle_for = Duration::ZERO;
                return Rounds(progressed, Ok(Next::WaitForRoom { idle_for }));
            }
        };
        let started = Instant::now();
        match claimed_round(c, &turn, claim) {
            Ok(Outcome::Idle(Idle::Empty)) if turn.limits.until_empty => {
                return Rounds(progressed, Ok(Next::End(PollEnd::Empty)));
            }
            // An empty wait already took wait_ms (made up to the floor here, as a longer
            // MQGET wait would have held the connection): give the connection back.
            Ok(Outcome::Idle(Idle::Empty)) => {
                if let Some(rest) = EMPTY_RECEIVE_FLOOR.checked_sub(started.elapsed()) {
                    std::thread::sleep(rest);
                }
                return Rounds(progressed, Ok(Next::Again));
            }
            Ok(Outcome::Idle(Idle::Yielded { idle_for })) => {
                return Rounds(progressed, Ok(Next::WaitForRoom { idle_for }));
            }
            Ok(Outcome::Idle(Idle::Cancelled)) => return Rounds(progressed, Ok(Next::End(PollEnd::Cancelled))),
            // A round that only moved poison messages is no sign that the sink is back: it
            // does not reset the retry pause, so an outage does not empty the queue into the
            // backout queue at full speed.
            Ok(Outcome::Done { delivered, .. }) => progressed |= delivered > 0,
            Err(stop) => return Rounds(progressed, Err(stop)),
        }
    }
    Rounds(progressed, Ok(Next::Again))
}

/// What a checkout's rounds came to: whether any message was delivered, and what the poller
/// does next.
struct Rounds(bool, Result<Next, Stop>);

/// What a poller does after a checkout's rounds.
enum Next {
    /// Checks a connection out again.
    Again,
    /// Waits, without a connection, for room under `--max-messages` that batches in flight
    /// hold (or that an idle poller gave up for it). `idle_for`: how long this poller's MQGET
    /// had waited on its idle queue before it gave its own room up, so that the wait resumes
    /// there and pollers passing room back and forth each still see a whole `wait_ms` (with
    /// `--until-empty`, the run would otherwise never end).
    WaitForRoom { idle_for: Duration },
    /// Ends.
    End(PollEnd),
}
