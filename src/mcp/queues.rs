//! The queue operations behind the tools, all through the connection pool.
//!
//! Every call checks a connection out of the pool (the back-pressure point), runs on its
//! thread and gives it back, so the handle budget of each connection holds for the MCP
//! server as for the worker. Destructive gets are under syncpoint: `receive` commits only
//! after the result is built, `lock` keeps the lease (and so the unit of work) in
//! [`Locks`]. Policy checks happen before any of this, in the tools.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::catalog::{AdminStatus, Catalog};
use super::locks::{Lifetime, LockError, LockLimit, Locks};
use super::schema::{ConnectionOut, MessageOut, PoolStatus};
use crate::Error;
use crate::mq::message::Message;
use crate::mq::session::{Browsed, GetRequest, Got, QueueAttrs, is_commit_outcome_unknown, is_connection_lost};
use crate::pool::{Lease, Patience, Pool};

/// What a receive took off the queue.
#[derive(Debug)]
pub struct Taken {
    /// The messages, in delivery order.
    pub messages: Vec<MessageOut>,
    /// Set when MQCMIT failed with the connection: MQ may have committed the messages or
    /// backed them out (for a client, a call failing that way may have completed), so they
    /// are returned and may be delivered again.
    pub commit_unknown: Option<Error>,
    /// The MQGET failure that ended the batch after some messages were got (see
    /// `get_batch`); those are returned.
    pub stopped_by: Option<Error>,
}

/// What a lock took.
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
    got: Vec<Message>,
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

/// Tells a call that its answer can no longer reach its caller: the request's own token
/// (the client sent `notifications/cancelled`, or rmcp saw a stateless client go away) or,
/// over HTTP, the response dropped before it was sent (any client that disconnected).
#[derive(Clone, Debug)]
pub struct CallerGone {
    request: CancellationToken,
    response: CancellationToken,
}

impl CallerGone {
    /// Watches `request` and `response` (a token nothing cancels where there is no HTTP
    /// response to watch).
    #[must_use]
    pub const fn new(request: CancellationToken, response: CancellationToken) -> Self {
        Self { request, response }
    }

    /// Whether the caller has gone.
    #[must_use]
    pub fn is_gone(&self) -> bool {
        self.request.is_cancelled() || self.response.is_cancelled()
    }

    /// Completes when the caller has gone.
    pub async fn gone(&self) {
        tokio::select! {
            () = self.request.cancelled() => {}
            () = self.response.cancelled() => {}
        }
    }
}

/// Gets up to `limit` messages of at most `max_bytes` payload bytes in all, under
/// syncpoint. The message that would go past `max_bytes` is not taken: MQ refuses the get
/// (2080, truncation not accepted) and leaves it on the queue, so nothing is lost or
/// counted as backed out. When even the first message does not fit, that is the error.
/// `stop` is asked before each MQGET: once it says so, no more messages are taken (a caller
/// that has gone would only see them backed out, their backout counts raised). A get that
/// fails after some messages were got ends the batch without failing it: those are kept
/// ([`Batch::stopped_by`] says why there are no more), since backing them out would raise
/// the backout counts of messages nobody saw; the failed get took nothing. A failure of the
/// first get, or a lost connection (MQ has backed the unit of work out), is the error.
fn get_batch(
    conn: &mut crate::pool::PooledConn,
    queue: &Arc<str>,
    limit: usize,
    wait_ms: u32,
    max_bytes: usize,
    stop: &dyn Fn() -> bool,
) -> Result<Batch, Error> {
    let mut got = Vec::with_capacity(limit);
    let mut left = max_bytes;
    while got.len() < limit && left > 0 && !stop() {
        let wait = if got.is_empty() { wait_ms } else { 0 };
        let request = GetRequest {
            syncpoint: true,
            wait_ms: wait,
        };
        let next = match conn.get_within(queue, request, left) {
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
                left -= m.data.len().min(left);
                got.push(m);
            }
            Got::Empty => break,
            Got::TooLong if got.is_empty() => return Err(over_result_cap(queue, max_bytes)),
            Got::TooLong => break,
        }
    }
    Ok(Batch { got, stopped_by: None })
}

/// The error for a first message longer than the whole result may be.
fn over_result_cap(queue: &str, max_bytes: usize) -> Error {
    Error::Mq {
        verb: "MQGET",
        object: queue.to_owned(),
        reason: crate::mq::reason::Reason::TRUNCATED_MSG_FAILED,
        detail: Some(format!(
            "the next message is longer than limits.max_result_bytes ({max_bytes} bytes); it stays on the queue"
        )),
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

    /// Browses up to `limit` messages, `max_payload_bytes` of each and `max_total_bytes` in
    /// all (see `Session::browse`).
    ///
    /// # Errors
    /// [`Error::Mq`].
    pub async fn browse(
        &self,
        queue: &str,
        limit: usize,
        max_payload_bytes: usize,
        max_total_bytes: usize,
    ) -> Result<Vec<Browsed>, Error> {
        let q = queue.to_owned();
        self.lease()
            .await?
            .run(move |c| c.browse(&q, limit, max_payload_bytes, max_total_bytes))
            .await
    }

    /// Gets up to `limit` messages, `max_bytes` of payload in all (see `get_batch`), under
    /// syncpoint, builds the result, then commits. A failed get, or a commit that fails on a
    /// live connection, backs out: nothing is lost. A commit that fails with the connection
    /// may have taken effect: the messages are returned all the same, marked
    /// ([`Taken::commit_unknown`]), and the connection is replaced.
    ///
    /// # Errors
    /// [`Error::Mq`].
    pub async fn receive(
        &self,
        queue: &str,
        limit: usize,
        wait_ms: u32,
        max_bytes: usize,
        caller: &CallerGone,
    ) -> Result<Taken, Error> {
        let q: Arc<str> = queue.into();
        let mut lease = tokio::select! {
            lease = self.lease() => lease?,
            () = caller.gone() => return Err(cancelled_request()),
        };
        let caller = caller.clone();
        let taken = lease
            .run(move |c| {
                let Batch { got, stopped_by } = match get_batch(c, &q, limit, wait_ms, max_bytes, &|| caller.is_gone())
                {
                    Ok(batch) => batch,
                    Err(e) => {
                        if c.in_unit_of_work() {
                            let _ = c.backout();
                        }
                        return Err(e);
                    }
                };
                // A caller that cancelled or went away would never see these messages:
                // they go back to the queue instead of being committed.
                if caller.is_gone() {
                    if c.in_unit_of_work() {
                        c.backout()?;
                    }
                    return Err(cancelled_request());
                }
                let messages: Vec<MessageOut> = got.iter().map(|m| MessageOut::new(m, true, false)).collect();
                if !c.in_unit_of_work() {
                    return Ok(Taken {
                        messages,
                        commit_unknown: None,
                        stopped_by,
                    });
                }
                match c.commit() {
                    Ok(()) => Ok(Taken {
                        messages,
                        commit_unknown: None,
                        stopped_by,
                    }),
                    // Committed or backed out, nobody can tell: the caller gets them, and
                    // another consumer may get them too.
                    Err(e) if is_commit_outcome_unknown(&e) => Ok(Taken {
                        messages,
                        commit_unknown: Some(e),
                        stopped_by,
                    }),
                    Err(e) => {
                        if c.in_unit_of_work() {
                            let _ = c.backout();
                        }
                        Err(e)
                    }
                }
            })
            .await?;
        if let Some(e) = &taken.commit_unknown {
            lease.mark_broken();
            tracing::warn!(queue, messages = taken.messages.len(), error = %e, "MQCMIT failed with the connection: the messages are returned and may be delivered again");
        }
        Ok(taken)
    }

    /// Gets up to `limit` messages, `max_bytes` of payload in all (see `get_batch`), under
    /// syncpoint on a connection that stays reserved for the lock; `None` id when no message
    /// came (nothing is held). The lock lives as `life` says.
    ///
    /// # Errors
    /// [`LockError`].
    pub async fn lock(
        &self,
        owner: &str,
        queue: &str,
        limit: usize,
        max_bytes: usize,
        life: Lifetime,
    ) -> Result<Locking, LockError> {
        let reservation = self.locks.reserve()?;
        let mut lease = self.lease().await.map_err(LockError::Mq)?;
        let q: Arc<str> = queue.into();
        let Batch { got, stopped_by } = lease
            .run(move |c| match get_batch(c, &q, limit, 0, max_bytes, &|| false) {
                Ok(batch) => Ok(batch),
                Err(e) => {
                    if c.in_unit_of_work() {
                        let _ = c.backout();
                    }
                    Err(e)
                }
            })
            .await
            .map_err(LockError::Mq)?;
        let messages: Vec<MessageOut> = got.iter().map(|m| MessageOut::new(m, true, false)).collect();
        if got.is_empty() {
            return Ok(Locking {
                held: None,
                messages,
                stopped_by,
            });
        }
        let held = self
            .locks
            .insert(reservation, owner, queue, lease, got.len(), life)
            .await?;
        Ok(Locking {
            held: Some(held),
            messages,
            stopped_by,
        })
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
        PoolStatus {
            connections: s
                .connections
                .iter()
                .map(|(id, c)| ConnectionOut {
                    id: *id,
                    handles: c.handles,
                    peak_handles: c.peak_handles,
                    budget: c.budget,
                    max_handles: c.max_handles,
                })
                .collect(),
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

/// The error for a request its caller cancelled (or abandoned) before it finished.
pub(crate) fn cancelled_request() -> Error {
    Error::Options {
        source_name: "request".into(),
        message: "cancelled by the caller: nothing was taken from the queue".into(),
    }
}
