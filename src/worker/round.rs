//! One round of a poller, on its connection's thread: receive a batch, put its poison
//! messages to the backout queue, hand the rest to the sink, commit.
//!
//! A batch is committed only after its sink succeeded; any failure backs the whole batch out,
//! so each message is delivered once or back on its queue with its backout count raised (an
//! MQCMIT lost with its connection is the one outcome nobody can know: counted apart). Poison
//! messages (backout count at the threshold) go to the backout queue inside the same unit of
//! work and never reach the sink; with no backout queue the poller stops rather than loop.
//! Received without syncpoint (`no-syncpoint`, opted into), a failed delivery loses the batch,
//! which is counted and logged. A round's claim on the run's room (`--max-messages`) is
//! settled with the messages that left the queue for good.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::counters::{QueueCounters, Undelivered};
use super::limits::Claim;
use super::poller::{PollPlan, SinkTarget, Turn};
use super::sink::{Sink, SinkError};
use crate::Error;
use crate::mq::message::Message;
use crate::mq::reason::{Reason, ReasonClass};
use crate::mq::session::{GetRequest, is_commit_outcome_unknown, is_connection_lost};
use crate::pool::PooledConn;

/// What one round came to.
pub(super) enum Outcome {
    /// No message came.
    Idle(Idle),
    /// `taken` messages left the queue for good (committed, or got without syncpoint), and
    /// the sink took `delivered` of them.
    Done { taken: usize, delivered: usize },
}

/// Why a round's first MQGET ended without a message.
pub(super) enum Idle {
    /// It waited `wait_ms`.
    Empty,
    /// Shutdown came while it waited.
    Cancelled,
    /// A poller waits for room under `--max-messages`: this round's room went to it, after a
    /// wait of `idle_for` in all.
    Yielded { idle_for: Duration },
}

/// Why a round did not complete: retry later (on a new connection if it was lost), stop
/// polling this queue, or stop the whole run (a sink that can take nothing more). Messages
/// received in that round were backed out (or, without syncpoint, counted as lost).
pub(super) enum Stop {
    Retry(String),
    Lost(String),
    Fatal(String),
    /// The whole run stops; `retire` when MQBACK failed as well, so that the connection, left
    /// in a unit of work, is not reused. A connection whose MQBACK worked is sound.
    Abort {
        why: String,
        retire: bool,
    },
}

/// Sorts an MQ error into retry (after a pause) or stop.
pub(super) fn classify(e: &Error) -> Stop {
    match e.reason().map(|r| r.class()) {
        Some(ReasonClass::Config) | None => Stop::Fatal(e.to_string()),
        _ if is_connection_lost(e) => Stop::Lost(format!("{e}; reconnecting")),
        _ => Stop::Retry(e.to_string()),
    }
}

/// A round and its claim on the run's room: the messages that left the queue for good
/// keep their room, the rest goes back.
pub(super) fn claimed_round(c: &mut PooledConn, turn: &Turn, mut claim: Claim) -> Result<Outcome, Stop> {
    let result = round(c, turn, &mut claim);
    let taken = match &result {
        Ok(Outcome::Done { taken, .. }) | Err((taken, _)) => *taken,
        Ok(Outcome::Idle(_)) => 0,
    };
    turn.limits.settle(claim, taken);
    result.map_err(|(_, stop)| stop)
}

/// One round on the connection's thread: receive, deliver, commit (or back out). `turn.rt`
/// runs the sink's future: this thread is not one of the runtime's, so blocking on it here is
/// allowed, and the connection is this batch's until the round ends anyway.
///
/// A failed round still reports the messages it took off the queue for good (without
/// syncpoint, those delivered or lost; under syncpoint, those of an MQCMIT whose outcome is
/// unknown), so `--max-messages` counts them.
fn round(c: &mut PooledConn, turn: &Turn, claim: &mut Claim) -> Result<Outcome, (usize, Stop)> {
    let Turn { plan, counters, rt, .. } = turn;
    // Messages got without syncpoint are nowhere but here until the sink has them: an exit at
    // once in between loses them, and says how many.
    let mut unsynced = (!plan.syncpoint).then(|| counters.undelivered());
    let batch = match receive(c, turn, claim, &mut unsynced) {
        Ok(Received::Batch(batch)) => batch,
        Ok(Received::Idle(idle)) => return Ok(Outcome::Idle(idle)),
        // The messages got before the failure are in the unit of work, backed out with it.
        Err((got, e)) => {
            if got > 0 {
                counters.received(got);
            }
            return Err((0, back_out(c, plan, counters, got).unwrap_or_else(|| classify(&e))));
        }
    };
    claim.keep(batch.len());
    let received = batch.len();
    counters.received(received);
    if !plan.syncpoint {
        // Already off the queue: there is nothing to back out or move, so everything goes to
        // the sink, poison or not.
        return deliver_at_most_once(plan, counters, &batch, rt)
            .map(|()| Outcome::Done {
                taken: received,
                delivered: received,
            })
            .map_err(|stop| (received, stop));
    }
    syncpoint_round(c, plan, counters, batch, rt).map(|delivered| Outcome::Done {
        taken: received,
        delivered,
    })
}

/// The rest of a round under syncpoint: poison to the backout queue, then the good messages
/// to the sink, then commit; any failure backs the whole batch out. Returns how many
/// messages the sink took; a failure says how many left the queue all the same (those of a
/// commit whose outcome is unknown).
fn syncpoint_round(
    c: &mut PooledConn,
    plan: &PollPlan,
    counters: &QueueCounters,
    batch: Vec<Message>,
    rt: &tokio::runtime::Handle,
) -> Result<usize, (usize, Stop)> {
    let received = batch.len();
    let (poison, delivered) = move_and_deliver(c, plan, counters, batch, rt).map_err(|stop| (0, stop))?;
    if let Err(e) = c.commit() {
        return Err(failed_commit(c, plan, counters, received, &e));
    }
    counters.committed(delivered, poison.len());
    if !poison.is_empty() {
        let ids: Vec<String> = poison.iter().map(Message::msg_id_hex).collect();
        tracing::warn!(
            queue = %plan.queue,
            backout_queue = %plan.backout_queue.as_deref().unwrap_or_default(),
            count = poison.len(),
            msg_ids = %ids.join(","),
            "moved poison messages to the backout queue"
        );
    }
    Ok(delivered)
}

/// Whether `m`'s backout count has reached the threshold (none with a threshold of 0).
fn is_poison(plan: &PollPlan, m: &Message) -> bool {
    plan.backout_threshold > 0 && i64::from(m.backout_count()) >= i64::from(plan.backout_threshold)
}

/// Puts the batch's poison messages to the backout queue and hands the others to the sink,
/// in the unit of work. Returns the poison messages and how many the sink took.
fn move_and_deliver(
    c: &mut PooledConn,
    plan: &PollPlan,
    counters: &QueueCounters,
    batch: Vec<Message>,
    rt: &tokio::runtime::Handle,
) -> Result<(Vec<Message>, usize), Stop> {
    let received = batch.len();
    let threshold = plan.backout_threshold;
    let is_poison = |m: &Message| is_poison(plan, m);
    let (poison, good): (Vec<Message>, Vec<Message>) = if batch.iter().any(is_poison) {
        batch.into_iter().partition(is_poison)
    } else {
        (Vec::new(), batch)
    };
    if let Some(first) = poison.first()
        && plan.backout_queue.is_none()
    {
        if let Some(lost) = back_out(c, plan, counters, received) {
            return Err(lost);
        }
        return Err(Stop::Fatal(format!(
            "message {} has backout count {} (threshold {threshold}) and {} has no backout queue \
             (BOQNAME) and none is configured: stopped polling it rather than loop; set backout_queue",
            first.msg_id_hex(),
            first.backout_count(),
            plan.queue
        )));
    }
    // Poison first: if the backout queue refuses a put (full, put-inhibited), the unit of work
    // is backed out before the sink has seen any of it, so nothing is delivered twice.
    let moved = plan.backout_queue.as_deref().map_or(Ok(()), |boq| {
        poison.iter().try_for_each(|m| c.put(boq, m, &m.data, true))
    });
    if let Err(e) = moved {
        return Err(back_out(c, plan, counters, received).unwrap_or_else(|| classify(&e)));
    }
    if let Err(stop) = deliver(c, plan, counters, &good, rt) {
        counters.sink_failed();
        let backed_out = back_out(c, plan, counters, received);
        // A sink that can take nothing more stops the run whether or not MQBACK worked; the
        // poller retires the connection only if it did not, so a failed MQBACK is not left
        // behind and a sound connection is not counted as lost.
        return Err(match (stop, backed_out) {
            (Stop::Abort { why, .. }, lost) => Stop::Abort {
                why,
                retire: lost.is_some(),
            },
            (stop, lost) => lost.unwrap_or(stop),
        });
    }
    Ok((poison, good.len()))
}

/// After an MQCMIT of `n` messages failed: how many left the queue all the same, and what
/// next.
///
/// - 2003: MQ backed the unit of work out instead; they are back on the queue.
/// - The connection went (2009 ...), or client reconnection cut the call (2549): MQ may have
///   committed, or backed out, and cannot be asked. They are counted apart and taken as gone
///   (`--max-messages` counts them, so the sink never sees more than N); there is no MQBACK
///   to try, and the connection is replaced.
/// - Anything else: the unit of work is still open, and is backed out.
fn failed_commit(c: &mut PooledConn, plan: &PollPlan, counters: &QueueCounters, n: usize, e: &Error) -> (usize, Stop) {
    if e.reason() == Some(Reason::BACKED_OUT) {
        counters.backed_out(n);
        return (0, classify(e));
    }
    if is_commit_outcome_unknown(e) {
        counters.commit_unknown(n);
        tracing::error!(
            queue = %plan.queue,
            count = n,
            error = %e,
            "MQCMIT failed with the connection: whether MQ committed these messages or backed them out \
             is unknown; if it backed them out, the sink will see them again"
        );
        return (n, Stop::Lost(format!("{e}; reconnecting")));
    }
    (0, back_out(c, plan, counters, n).unwrap_or_else(|| classify(e)))
}

/// Longest single MQGET wait: between slices of a round's first wait, shutdown is noticed
/// (rather than after a `wait_ms` of up to a minute), and a poller waiting for room under
/// `--max-messages` is given this round's room.
const WAIT_SLICE: Duration = Duration::from_secs(1);

/// What a round's gets came to.
enum Received {
    Batch(Vec<Message>),
    Idle(Idle),
}

/// Gets up to `batch` messages, as many as the claim has room for: the first with a wait,
/// the rest without, until the batch is full or holds `max_batch_bytes`. Room for the rest
/// is claimed only once the first has come, so an idle poller holds room for one message.
/// Once shutdown is asked for, no message is added: those already got are delivered and
/// committed as any batch (backing them out would raise their backout counts, for nothing
/// wrong with them), and the poller ends.
///
/// A failed MQGET says how many messages were got before it, under syncpoint (without
/// syncpoint, those are delivered and the next round meets the error again).
///
/// A first message that was backed out before is a batch of its own. A failed batch comes
/// back in its order, so its messages are then retried one at a time: the one that made the
/// sink fail goes to the backout queue alone, and the others are delivered, instead of all of
/// them reaching the threshold together.
fn receive(
    c: &mut PooledConn,
    turn: &Turn,
    claim: &mut Claim,
    unsynced: &mut Option<Undelivered<'_>>,
) -> Result<Received, (usize, Error)> {
    let plan = &turn.plan;
    let m = match first_get(c, turn, unsynced).map_err(|e| (0, e))? {
        Ok(m) => m,
        Err(idle) => return Ok(Received::Idle(idle)),
    };
    if plan.syncpoint && m.backout_count() > 0 {
        return Ok(Received::Batch(vec![m]));
    }
    turn.limits.claim_more(claim, plan.batch.saturating_sub(claim.room()));
    let room = claim.room().min(plan.batch);
    let mut bytes = m.data.len();
    let mut unit = UnitOfWork::new(plan, c.max_uncommitted());
    unit.add(plan, &m);
    let mut batch = Vec::with_capacity(room);
    batch.push(m);
    let next = GetRequest {
        syncpoint: plan.syncpoint,
        wait_ms: 0,
    };
    while batch.len() < room && bytes < plan.max_batch_bytes && unit.has_room() && turn.waiting.load(Ordering::Acquire)
    {
        match counted_get(c, &plan.queue, next, unsynced) {
            Ok(Some(m)) => {
                bytes += m.data.len();
                unit.add(plan, &m);
                batch.push(m);
            }
            Ok(None) => break,
            // Without syncpoint the messages got so far are already off the queue: deliver
            // them; the next round meets the error again.
            Err(e) if !plan.syncpoint => {
                tracing::warn!(queue = %plan.queue, error = %e, "MQGET failed mid-batch; delivering what was got");
                break;
            }
            // GET(DISABLED) while a batch fills (an administrator pausing consumers): the
            // messages already got are fine and their unit of work intact, so they are
            // delivered and committed rather than backed out with their backout counts
            // raised; the next round's first MQGET meets 2016 and pauses.
            Err(e) if e.reason() == Some(Reason::GET_INHIBITED) => {
                tracing::info!(queue = %plan.queue, count = batch.len(), "the queue was get-inhibited (2016) mid-batch; delivering what was got");
                break;
            }
            Err(e) => return Err((batch.len(), e)),
        }
    }
    Ok(Received::Batch(batch))
}

/// The messages a batch's unit of work will hold, against MAXUMSGS: each get, and a put for
/// each message a queue sink takes or that goes to the backout queue. In a batch that fits
/// MAXUMSGS (as the start checks require: its gets, and a queue sink's puts), a message is
/// added only while the worst next one (a get and a put) still fits, so a poison message met
/// mid-batch cannot take the unit of work past MAXUMSGS (2024) and stop the queue. A batch
/// that does not fit (started without those checks) meets 2024 as MQ answers it. Without
/// syncpoint, or with MAXUMSGS unknown (0), there is no limit.
struct UnitOfWork {
    held: usize,
    limit: usize,
    /// Puts the worst next message can add: 1 with a queue sink or a backout queue.
    worst_put: usize,
}

impl UnitOfWork {
    fn new(plan: &PollPlan, max_uncommitted: usize) -> Self {
        let to_queue = matches!(plan.sink, SinkTarget::Queue(_));
        let puts = to_queue || (plan.backout_threshold > 0 && plan.backout_queue.is_some());
        let fits = plan.batch.saturating_mul(1 + usize::from(to_queue)) <= max_uncommitted;
        Self {
            held: 0,
            limit: if plan.syncpoint && fits {
                max_uncommitted
            } else {
                usize::MAX
            },
            worst_put: usize::from(puts),
        }
    }

    /// Counts `m`'s get and the put it will need.
    fn add(&mut self, plan: &PollPlan, m: &Message) {
        let put = matches!(plan.sink, SinkTarget::Queue(_)) || is_poison(plan, m);
        self.held += 1 + usize::from(put);
    }

    fn has_room(&self) -> bool {
        self.held.saturating_add(1 + self.worst_put) <= self.limit
    }
}

/// A round's first MQGET: waits up to `wait_ms` for a message (less what it waited before
/// it gave its room up), in slices of at most [`WAIT_SLICE`].
fn first_get(
    c: &mut PooledConn,
    turn: &Turn,
    unsynced: &mut Option<Undelivered<'_>>,
) -> Result<Result<Message, Idle>, Error> {
    let plan = &turn.plan;
    let started = Instant::now();
    let before = turn.idle_for.take();
    let deadline = started + Duration::from_millis(u64::from(plan.wait_ms)).saturating_sub(before);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let slice = left.min(WAIT_SLICE);
        let request = GetRequest {
            syncpoint: plan.syncpoint,
            wait_ms: u32::try_from(slice.as_millis()).unwrap_or(u32::MAX),
        };
        if let Some(m) = counted_get(c, &plan.queue, request, unsynced)? {
            return Ok(Ok(m));
        }
        if turn.cancel.is_cancelled() || !turn.waiting.load(Ordering::Acquire) {
            return Ok(Err(Idle::Cancelled));
        }
        if left <= WAIT_SLICE {
            return Ok(Err(Idle::Empty));
        }
        if turn.limits.others_waiting() {
            let idle_for = before + started.elapsed();
            return Ok(Err(Idle::Yielded { idle_for }));
        }
    }
}

/// An MQGET. Without syncpoint (`unsynced`), from the call on: a message it takes is off the
/// queue, and nowhere but here until the sink has it.
fn counted_get(
    c: &mut PooledConn,
    queue: &std::sync::Arc<str>,
    request: GetRequest,
    unsynced: &mut Option<Undelivered<'_>>,
) -> Result<Option<Message>, Error> {
    let Some(u) = unsynced else {
        return c.get(queue, request);
    };
    u.getting();
    let got = c.get(queue, request);
    u.got(matches!(got, Ok(Some(_))));
    got
}

/// Hands the batch to the sink. For a queue sink the puts join the unit of work, and a put's
/// reason code decides what happens next like any other MQ failure.
fn deliver(
    c: &mut PooledConn,
    plan: &PollPlan,
    counters: &QueueCounters,
    good: &[Message],
    rt: &tokio::runtime::Handle,
) -> Result<(), Stop> {
    if good.is_empty() {
        return Ok(());
    }
    let started = Instant::now();
    let result = match &plan.sink {
        SinkTarget::External(sink) => deliver_external(sink.as_ref(), good, rt).map_err(|e| {
            if e.permanent {
                Stop::Abort {
                    why: format!("{e}; the batch was backed out and the run stopped"),
                    retire: false,
                }
            } else {
                Stop::Retry(e.to_string())
            }
        }),
        SinkTarget::Queue(target) => good
            .iter()
            .try_for_each(|m| c.put(target, m, &m.data, true).map_err(|e| (m, e)))
            .map_err(|(m, e)| refused_put(target, m, &e)),
    };
    counters.sink_took(started.elapsed());
    result
}

/// What a queue sink's refused MQPUT leads to. A message too long for the target (2030,
/// 2031) is the message's fault, not the queue's: the batch is backed out and retried like a
/// failed external sink, so the message comes back alone and, at the backout threshold, goes
/// to the backout queue, while the rest of the queue flows on. Anything else is sorted like
/// any MQ failure.
fn refused_put(target: &str, m: &Message, e: &Error) -> Stop {
    match e.reason() {
        Some(Reason::MSG_TOO_BIG_FOR_Q | Reason::MSG_TOO_BIG_FOR_Q_MGR) => Stop::Retry(format!(
            "{e}: message {} of {} bytes does not fit {target}; backed out, it goes to the backout \
             queue at the backout threshold",
            m.msg_id_hex(),
            m.data.len()
        )),
        _ => classify(e),
    }
}

/// Runs a sink to completion on this (connection) thread. A sink that panics, or a runtime
/// that is shutting down under it, fails the batch instead of taking the thread down.
fn deliver_external(sink: &dyn Sink, good: &[Message], rt: &tokio::runtime::Handle) -> Result<(), SinkError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(sink.deliver(good))))
        .unwrap_or_else(|_| Err(SinkError::retry(sink.name(), "the sink panicked".into())))
}

fn deliver_at_most_once(
    plan: &PollPlan,
    counters: &QueueCounters,
    good: &[Message],
    rt: &tokio::runtime::Handle,
) -> Result<(), Stop> {
    let n = good.len();
    let started = Instant::now();
    let result = match &plan.sink {
        SinkTarget::External(sink) => deliver_external(sink.as_ref(), good, rt),
        SinkTarget::Queue(_) => Err(SinkError::retry(
            "queue",
            "a queue sink needs syncpoint; use receive = \"batch\"".to_owned(),
        )),
    };
    counters.sink_took(started.elapsed());
    match result {
        Ok(()) => {
            counters.committed(n, 0);
            Ok(())
        }
        Err(e) => {
            counters.sink_failed();
            counters.lost(n);
            tracing::error!(queue = %plan.queue, count = n, "{e}: these messages were received without syncpoint and are lost");
            Err(if e.permanent {
                Stop::Abort {
                    why: format!("{e}; the run stopped"),
                    retire: false,
                }
            } else {
                Stop::Retry(e.to_string())
            })
        }
    }
}

/// Backs the round's unit of work out. `Some(stop)` when MQBACK failed: the connection must
/// then be replaced (a lost connection was backed out by MQ; a live one is abandoned rather
/// than disconnected, since MQDISC would commit).
fn back_out(c: &mut PooledConn, plan: &PollPlan, counters: &QueueCounters, n: usize) -> Option<Stop> {
    if n > 0 {
        counters.backed_out(n);
    }
    let e = c.backout().err()?;
    if !is_connection_lost(&e) {
        tracing::error!(queue = %plan.queue, error = %e, "MQBACK failed: replacing the connection");
    }
    Some(Stop::Lost(format!("{e}; reconnecting")))
}
