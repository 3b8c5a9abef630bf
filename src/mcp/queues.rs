//! The queue operations behind the tools, all through the connection pool.
//!
//! Every call checks a connection out of the pool (the back-pressure point), runs on its
//! thread and gives it back, so the handle budget of each connection holds for the MCP
//! server as for the worker. Destructive gets are under syncpoint: `receive` builds its
//! whole answer, then commits, `lock` keeps the lease (and so the unit of work) in
//! [`Locks`]. A receive or lock closes its input handle when it ends, so between calls the
//! server is no consumer of the queue. Policy checks happen before any of this, in the tools.

use std::sync::Arc;

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::catalog::{AdminStatus, Catalog};
pub use super::delivery::CallerGone;
use super::locks::{Expiry, Lifetime, LockError, LockLimit, Locks, Ticket, stop_consuming};
use super::output::fits;
use super::schema::{ConnectionOut, MessageOut, PoolStatus};
use crate::Error;
use crate::mq::message::Message;
use crate::mq::session::{GetRequest, Got, QueueAttrs, is_commit_outcome_unknown, is_connection_lost};
use crate::pool::{Lease, Patience, Pool, PooledConn};

/// What a receive took off the queue, as the answer its `build` made.
#[derive(Debug)]
pub struct Taken<A> {
    /// The answer, built before the commit.
    pub answer: A,
    /// How many messages it holds.
    pub messages: usize,
    /// Set when MQCMIT failed with the connection: MQ may have committed the messages or
    /// backed them out (for a client, a call failing that way may have completed), so they
    /// are returned and may be delivered again.
    pub commit_unknown: Option<Error>,
    /// The MQGET failure that ended the batch after some messages were got (see
    /// `get_batch`); those are returned.
    pub stopped_by: Option<Error>,
}

/// What a lock took, for its answer to be built from.
#[derive(Debug)]
pub struct Locking {
    /// The lock's id and expiry; `None` when no message came (nothing is held).
    pub held: Option<(String, std::time::SystemTime)>,
    /// The locked messages, in delivery order.
    pub messages: Vec<MessageOut>,
    /// The MQGET failure that ended the batch after some messages were got.
    pub stopped_by: Option<Error>,
}

/// The messages a batch got, and the failure that ended it early, if one did.
struct Batch {
    got: Vec<MessageOut>,
    stopped_by: Option<Error>,
}

/// The MQ side of the server. Cheap to clone.
#[derive(Clone)]
pub struct Queues {
    pub(crate) pool: Pool,
    pub(crate) catalog: Arc<dyn Catalog>,
    pub(crate) locks: Locks,
    pub(crate) max_connections: usize,
    patience: Patience,
    cancel: CancellationToken,
}

impl std::fmt::Debug for Queues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queues")
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

/// Longest single MQGET wait: between slices of a receive's wait, a caller that has gone is
/// noticed, and the receive ends instead of waiting on (and getting a message only to back
/// it out).
const WAIT_SLICE: Duration = Duration::from_secs(1);

/// Gets up to `limit` messages under syncpoint, each as it will be in the answer, whose
/// payloads cost at most `budget` bytes of the result in all (see [`MessageOut::with_payload`]).
/// Each MQGET's buffer is what still fits in base64, the costliest encoding, so whatever
/// comes fits; a text payload whose text would not fit goes as base64. The message that is
/// longer than the buffer is not taken: MQ refuses the get (2080, truncation not accepted)
/// and leaves it on the queue, so nothing is lost or counted as backed out. When even the
/// first message does not fit, that is the error.
///
/// The first MQGET waits up to `wait_ms`, in slices of at most [`WAIT_SLICE`]. `stop` is
/// asked before each MQGET, and so between slices: once it says so, no more messages are
/// taken (a caller that has gone would only see them backed out, their backout counts
/// raised) and the wait ends. A get that
/// fails after some messages were got ends the batch without failing it: those are kept
/// ([`Batch::stopped_by`] says why there are no more), since backing them out would raise
/// the backout counts of messages nobody saw; the failed get took nothing. A failure of the
/// first get, or a lost connection (MQ has backed the unit of work out), is the error.
fn get_batch(
    conn: &mut PooledConn,
    queue: &Arc<str>,
    limit: usize,
    wait_ms: u32,
    budget: usize,
    stop: &dyn Fn() -> bool,
) -> Result<Batch, Error> {
    let mut got = Vec::with_capacity(limit);
    let mut left = budget;
    let waited = Instant::now() + Duration::from_millis(u64::from(wait_ms));
    while got.len() < limit && !stop() {
        let buffer = fits(left);
        if buffer == 0 {
            break;
        }
        let wait = if got.is_empty() {
            let slice = waited.saturating_duration_since(Instant::now()).min(WAIT_SLICE);
            u32::try_from(slice.as_millis()).unwrap_or(u32::MAX)
        } else {
            0
        };
        let request = GetRequest {
            syncpoint: true,
            wait_ms: wait,
        };
        let next = match conn.get_within(queue, request, buffer) {
            Ok(next) => next,
            Err(e) if !got.is_empty() && !is_connection_lost(&e) => {
                return Ok(Batch {
                    got,
                    stopped_by: Some(e),
                });
            }
            Err(e) => return Err(e),
        };
        match next {
            Got::Message(m) => {
                let (out, cost) = MessageOut::with_payload(&m, &m.data, false, left);
                left = left.saturating_sub(cost);
                got.push(out);
            }
            // Waited a slice: the next one, unless the wait is over (or `stop` says so).
            Got::Empty if got.is_empty() && Instant::now() < waited => {}
            Got::Empty => break,
            Got::TooLong if got.is_empty() => return Err(over_result_cap(queue, budget)),
            Got::TooLong => break,
        }
    }
    Ok(Batch { got, stopped_by: None })
}

/// The error for a first message longer than the whole result may hold.
fn over_result_cap(queue: &str, budget: usize) -> Error {
    Error::Mq {
        verb: "MQGET",
        object: queue.to_owned(),
        reason: crate::mq::reason::Reason::TRUNCATED_MSG_FAILED,
        detail: Some(format!(
            "the next message is longer than {} bytes, the largest payload a result can carry under \
             limits.max_result_bytes ({budget}); it stays on the queue",
            fits(budget)
        )),
    }
}

/// Backs out what `c` got, if anything; a failure is left for the pool, which backs out a
/// connection given back in a unit of work or replaces it.
fn back_out_quietly(c: &mut PooledConn) {
    if c.in_unit_of_work() {
        let _ = c.backout();
    }
}

impl Queues {
    /// The MQ side over `pool`: every call, browses included, runs on one of its
    /// connections within its handle budget; `locks` sets how many locks may be held. A call waits for a
    /// connection, or retries connecting, only as long as `patience` allows.
    #[must_use]
    pub fn new(
        pool: Pool,
        catalog: Arc<dyn Catalog>,
        max_connections: usize,
        locks: LockLimit,
        patience: Patience,
        cancel: CancellationToken,
    ) -> Self {
        Self {
            pool,
            catalog,
            locks: Locks::new(locks, cancel.clone()),
            max_connections,
            patience,
            cancel,
        }
    }

    /// A connection for one call: an agent gets an answer (all busy, or why connecting
    /// failed) instead of a call that hangs while the queue manager is down.
    async fn lease(&self) -> Result<Lease, Error> {
        self.pool.checkout_within(self.patience, &self.cancel).await
    }

    /// MQINQ of the queue's attributes.
    ///
    /// # Errors
    /// [`Error::Mq`] (2085 for an unknown queue).
    pub async fn attrs(&self, queue: &str) -> Result<QueueAttrs, Error> {
        let q = queue.to_owned();
        self.lease().await?.run(move |c| c.queue_attrs(&q)).await
    }

    /// MQINQ of several queues on one connection; each result separately.
    ///
    /// # Errors
    /// A checkout failure; per-queue failures are in the list.
    pub async fn attrs_many(&self, queues: Vec<String>) -> Result<Vec<(String, Result<QueueAttrs, Error>)>, Error> {
        self.lease()
            .await?
            .run(move |c| {
                Ok(queues
                    .into_iter()
                    .map(|q| {
                        let a = c.queue_attrs(&q);
                        (q, a)
                    })
                    .collect())
            })
            .await
    }

    /// UNCOM and MSGAGE, when the catalog knows them.
    #[must_use]
    pub fn admin_status(&self, queue: &str) -> AdminStatus {
        self.catalog.status(queue)
    }

    /// Browses up to `limit` messages: with `payload_bytes` (`None`: no payload), at most
    /// that many of each payload and at most `budget` bytes of payload as the result
    /// carries them (see [`MessageOut::with_payload`]). The browse stops before a message
    /// that would pass `budget`; a first message that would is cut to fit. A payload cut
    /// inside a character keeps the whole characters before the cut as text.
    ///
    /// # Errors
    /// [`Error::Mq`].
    pub async fn browse(
        &self,
        queue: &str,
        limit: usize,
        payload_bytes: Option<usize>,
        budget: usize,
    ) -> Result<Vec<MessageOut>, Error> {
        let q = queue.to_owned();
        // No payload byte costs less than 2: no result holds more than budget / 2 of them.
        let read = payload_bytes.unwrap_or(0);
        let browsed = self
            .lease()
            .await?
            .run(move |c| c.browse(&q, limit, read, budget / 2))
            .await?;
        let mut out = Vec::with_capacity(browsed.len());
        let mut left = budget;
        for b in browsed {
            if payload_bytes.is_none() {
                out.push(MessageOut::summary(&b.message));
                continue;
            }
            let (mut m, mut cost) = MessageOut::with_payload(&b.message, &b.message.data, b.truncated, left);
            if cost > left {
                if !out.is_empty() {
                    break;
                }
                (m, cost) = MessageOut::cut_to(&b.message, &b.message.data, left);
            }
            left = left.saturating_sub(cost);
            out.push(m);
        }
        Ok(out)
    }

    /// Gets up to `limit` messages whose payloads cost at most `budget` bytes of the
    /// result (see `get_batch`), under syncpoint; `build` makes the answer from them, and
    /// only then, if the caller is still there, are they committed. Building the answer
    /// before the commit leaves only MQCMIT itself and the hand-back of a ready answer
    /// between the commit and the caller: an answer found lost after the commit, then or
    /// on its way (see [`super::delivery`]), is logged with the message ids, since those
    /// messages are gone and nobody saw them.
    ///
    /// A failed get, a failed build, a caller gone before the commit, or a commit that
    /// fails on a live connection backs out: nothing is lost. A commit that fails with the
    /// connection may have taken effect: the answer is returned all the same, marked
    /// ([`Taken::commit_unknown`]), and the connection is replaced. The input handle is
    /// closed however it ends.
    ///
    /// # Errors
    /// [`Error::Mq`], or what `build` returned.
    pub async fn receive<A: Send + 'static>(
        &self,
        queue: &str,
        limit: usize,
        wait_ms: u32,
        budget: usize,
        caller: &CallerGone,
        build: impl FnOnce(Vec<MessageOut>) -> Result<A, Error> + Send + 'static,
    ) -> Result<Taken<A>, Error> {
        let q: Arc<str> = queue.into();
        let mut lease = tokio::select! {
            biased;
            () = caller.gone() => return Err(caller.stopped(0)),
            lease = self.lease() => lease?,
        };
        let watch = caller.clone();
        let (taken, ids) = lease
            .run(move |c| {
                let taken = take_and_commit(c, &q, limit, wait_ms, budget, &watch, build);
                stop_consuming(c, &q);
                taken
            })
            .await?;
        if let Some(e) = &taken.commit_unknown {
            lease.mark_broken();
            tracing::warn!(queue, messages = taken.messages, error = %e, "MQCMIT failed with the connection: the messages are returned and may be delivered again");
        }
        if taken.messages > 0 {
            caller.committed(queue, ids, taken.commit_unknown.is_some());
        }
        Ok(taken)
    }

    /// Gets up to `limit` messages whose payloads cost at most `budget` bytes of the
    /// result (see `get_batch`), under syncpoint, on a connection that then stays reserved
    /// for the lock. `build` makes the answer, with the lock's id and expiry when a message
    /// came (`None` and nothing held otherwise); the lock lives as `life` says. Until the
    /// answer is handed back, a caller that goes gets no message or, once it has some, has
    /// them backed out at once: nobody else could complete that lock.
    ///
    /// # Errors
    /// [`LockError`]; [`LockError::Mq`] with what `build` returned.
    pub async fn lock<A: Send + 'static>(
        &self,
        owner: &str,
        queue: &str,
        limit: usize,
        budget: usize,
        life: Lifetime,
        build: impl FnOnce(Locking) -> Result<A, Error> + Send + 'static,
    ) -> Result<A, LockError> {
        let caller = &life.caller;
        let reservation = self.locks.reserve()?;
        let mut lease = tokio::select! {
            biased;
            () = caller.gone() => return Err(LockError::Mq(caller.stopped(0))),
            lease = self.lease() => lease.map_err(LockError::Mq)?,
        };
        let ticket = Ticket::new(owner, queue, life.ttl);
        let q: Arc<str> = queue.into();
        let watch = caller.clone();
        let held = (ticket.id.clone(), ticket.expires_at);
        let (answer, messages) = lease
            .run(move |c| {
                let locked = take_for_lock(c, &q, limit, budget, &watch, held, build);
                if !matches!(locked, Ok((_, n)) if n > 0) {
                    stop_consuming(c, &q);
                }
                locked
            })
            .await
            .map_err(LockError::Mq)?;
        if messages == 0 {
            return Ok(answer);
        }
        self.locks
            .insert(reservation, lease, messages, &ticket, caller.response())
            .await?;
        // The last moment this call can tell: past it, the answer is on its way.
        if caller.is_gone() {
            self.locks.expire(&ticket.id, Expiry::AnswerLost).await;
            return Err(LockError::Mq(caller.stopped(messages)));
        }
        Ok(answer)
    }

    /// Puts one message outside syncpoint.
    ///
    /// # Errors
    /// [`Error::Mq`] (2030/2031 past MAXMSGL, 2053 queue full, 2051 put inhibited).
    pub async fn put(&self, message: Message, data: Vec<u8>) -> Result<(), Error> {
        self.lease()
            .await?
            .run(move |c| {
                let queue = message.queue.clone();
                c.put(&queue, &message, &data, false)
            })
            .await
    }

    /// The pool's connections, handles against budget and MAXHANDS, and counters.
    #[must_use]
    pub fn pool_status(&self) -> PoolStatus {
        let s = self.pool.stats().snapshot();
        let mut connections: Vec<ConnectionOut> = s
            .connections
            .values()
            .map(|c| ConnectionOut {
                id: c.slot,
                handles: c.handles,
                peak_handles: c.peak_handles,
                budget: c.budget,
                max_handles: (!c.max_handles_assumed).then_some(c.max_handles),
                max_handles_assumed: c.max_handles_assumed.then_some(c.max_handles),
                budget_shrunk: c.budget_shrunk,
            })
            .collect();
        connections.sort_by_key(|c| c.id);
        PoolStatus {
            connections,
            max_connections: self.max_connections,
            locks_held: self.locks.held(),
            connects: s.connects,
            reconnects: s.reconnects,
            budget_shrinks: s.budget_shrinks,
            waits_for_connection: s.waits_for_connection,
        }
    }

    /// Backs out every lock and closes idle connections.
    pub async fn shutdown(&self) -> usize {
        let n = self.locks.release_all().await;
        self.pool.close_idle();
        n
    }
}

/// The batch of a receive, its answer built, then committed if the caller is still there
/// (see [`Queues::receive`]); also the message ids, for the log. Every path that does not
/// commit backs out.
fn take_and_commit<A>(
    c: &mut PooledConn,
    queue: &Arc<str>,
    limit: usize,
    wait_ms: u32,
    budget: usize,
    caller: &CallerGone,
    build: impl FnOnce(Vec<MessageOut>) -> Result<A, Error>,
) -> Result<(Taken<A>, Vec<String>), Error> {
    let Batch { got, stopped_by } =
        get_batch(c, queue, limit, wait_ms, budget, &|| caller.is_gone()).inspect_err(|_| back_out_quietly(c))?;
    let messages = got.len();
    let ids: Vec<String> = got.iter().map(|m| m.msg_id.clone()).collect();
    let answer = build(got).inspect_err(|_| back_out_quietly(c))?;
    // A caller that cancelled or went away would never see these messages: they go back
    // to the queue instead of being committed.
    if caller.is_gone() {
        if c.in_unit_of_work() {
            c.backout()?;
        }
        return Err(caller.stopped(messages));
    }
    let taken = |commit_unknown| Taken {
        answer,
        messages,
        commit_unknown,
        stopped_by,
    };
    if !c.in_unit_of_work() {
        return Ok((taken(None), ids));
    }
    match c.commit() {
        Ok(()) => Ok((taken(None), ids)),
        // Committed or backed out, nobody can tell: the caller gets them, and another
        // consumer may get them too.
        Err(e) if is_commit_outcome_unknown(&e) => Ok((taken(Some(e)), ids)),
        Err(e) => {
            back_out_quietly(c);
            Err(e)
        }
    }
}

/// The batch of a lock, its answer built with `held` as the lock's id and expiry when a
/// message came; also how many came. A caller gone after the gets, or a failed build,
/// backs them out.
fn take_for_lock<A>(
    c: &mut PooledConn,
    queue: &Arc<str>,
    limit: usize,
    budget: usize,
    caller: &CallerGone,
    held: (String, std::time::SystemTime),
    build: impl FnOnce(Locking) -> Result<A, Error>,
) -> Result<(A, usize), Error> {
    let Batch { got, stopped_by } =
        get_batch(c, queue, limit, 0, budget, &|| caller.is_gone()).inspect_err(|_| back_out_quietly(c))?;
    let messages = got.len();
    if caller.is_gone() {
        back_out_quietly(c);
        return Err(caller.stopped(messages));
    }
    let locking = Locking {
        held: (messages > 0).then_some(held),
        messages: got,
        stopped_by,
    };
    let answer = build(locking).inspect_err(|_| back_out_quietly(c))?;
    Ok((answer, messages))
}

/// The error for a call that changes no queue, stopped before it finished: its caller
/// cancelled it or went away, or the server is stopping. Destructive calls say which, and
/// what became of their gets ([`CallerGone::stopped`]).
pub(crate) fn cancelled_request() -> Error {
    Error::Options {
        source_name: "request".into(),
        message: "stopped before it finished (the caller cancelled it or went away, or the server is stopping); \
                  this call takes no message from the queue"
            .into(),
    }
}
