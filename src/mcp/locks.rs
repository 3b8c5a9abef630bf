//! Message locks: messages got under syncpoint on a pool connection reserved for the lock.
//!
//! A lock holds its pool lease until it is completed (commit: the messages are gone; abort:
//! MQBACK, they are back with backout count + 1), expires (MQBACK) or the server shuts down
//! (MQBACK). Lock ids are 128 random bits in hex, bound to the caller that took them: another
//! caller's id is answered exactly like an unknown one. Every path that does not commit backs
//! out, and a lease dropped in a unit of work is backed out by the pool as well. However a
//! lock ends, its connection closes its input handle for the queue before going back to the
//! pool, so an idle connection is never a consumer of the queue (IPPROCS) and never keeps an
//! exclusive one (DEFSOPT(EXCL), NOSHARE) out.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use super::queues::CallerGone;
use crate::Error;
use crate::mq::session::{Access, is_commit_outcome_unknown, is_connection_lost};
use crate::pool::{Lease, PooledConn};

/// One held lock.
struct Held {
    owner: String,
    queue: String,
    lease: Lease,
    messages: usize,
    expires: Instant,
}

/// How a lock ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// MQCMIT.
    Commit,
    /// MQBACK.
    Abort,
}

/// What sets the most locks held at once: the lower of the policy's `limits.max_locks` and
/// the pool's connections less one (a lock holds a connection until it is completed, and
/// one always stays free for the other tools).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockLimit {
    /// `limits.max_locks`, this many.
    Policy(usize),
    /// A pool of this many connections.
    Connections(usize),
}

impl LockLimit {
    /// The limit for a policy's `max_locks` and a pool of `connections`.
    #[must_use]
    pub const fn new(max_locks: usize, connections: usize) -> Self {
        if max_locks < connections {
            Self::Policy(max_locks)
        } else {
            Self::Connections(connections)
        }
    }

    /// Locks that may be held at once.
    #[must_use]
    pub const fn max(self) -> usize {
        match self {
            Self::Policy(n) => n,
            Self::Connections(c) => c.saturating_sub(1),
        }
    }

    /// The setting that sets it, as a refusal's `rule` names it.
    #[must_use]
    pub const fn rule(self) -> &'static str {
        match self {
            Self::Policy(_) => "limits.max_locks",
            Self::Connections(_) => "--connections",
        }
    }
}

/// The table of held locks. Cheap to clone.
#[derive(Clone)]
pub struct Locks {
    inner: Arc<Inner>,
}

struct Inner {
    held: Mutex<HashMap<String, Held>>,
    /// Ids that expired recently, with their owner, so a late completion gets a clear answer.
    expired: Mutex<VecDeque<(String, String)>>,
    limit: LockLimit,
    /// Locks being taken: they count against `max` from before their connection is checked
    /// out, so calls arriving together cannot all get messages and have the extra ones
    /// backed out (raising backout counts on messages nobody saw).
    reserved: AtomicUsize,
    shutdown: CancellationToken,
}

/// A lock being taken: holds its place against the maximum until it is inserted or given up.
pub struct Reservation(Arc<Inner>);

impl Drop for Reservation {
    fn drop(&mut self) {
        self.0.reserved.fetch_sub(1, Ordering::SeqCst);
    }
}

const EXPIRED_REMEMBERED: usize = 1024;

/// Why a lock operation failed.
#[derive(Debug)]
pub enum LockError {
    /// The id is not a lock this caller holds.
    Unknown,
    /// The lock expired and its messages were backed out.
    Expired,
    /// Too many locks are held (none may be, when the limit is 0).
    Full(LockLimit),
    /// The commit or backout failed.
    Mq(Error),
    /// MQCMIT failed with the connection: MQ may have committed the messages or backed
    /// them out.
    CommitUnknown(Error),
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unknown => f.write_str("no such lock is held by this caller (a wrong id, or already completed)"),
            Self::Expired => f.write_str("the lock expired: its messages were backed out and are on the queue again"),
            Self::Full(LockLimit::Policy(0)) => f.write_str("locks are disabled: limits.max_locks is 0"),
            Self::Full(LockLimit::Connections(c)) if *c <= 1 => write!(
                f,
                "locks are disabled: a lock holds a pool connection until it is completed and one \
                 connection always stays free for the other tools, so --connections {c} leaves none \
                 for a lock; raise --connections"
            ),
            Self::Full(LockLimit::Policy(n)) => {
                write!(f, "{} held already (limits.max_locks): complete one first", locks(*n))
            }
            Self::Full(LockLimit::Connections(c)) => write!(
                f,
                "{} held already: each holds one of the {c} pool connections (--connections) \
                 and one stays free for the other tools; complete one first",
                locks(c - 1)
            ),
            Self::Mq(e) => write!(f, "{e}"),
            Self::CommitUnknown(e) => {
                let why = e.reason().map_or_else(|| e.to_string(), |r| r.to_string());
                write!(
                    f,
                    "the commit's outcome is unknown: the connection was lost during MQCMIT ({why}); \
                     the messages were either removed or put back on the queue (backout count + 1), \
                     so they may be delivered again"
                )
            }
        }
    }
}

/// `n` locks, as a subject: "1 lock is", "2 locks are".
fn locks(n: usize) -> String {
    if n == 1 {
        "1 lock is".to_owned()
    } else {
        format!("{n} locks are")
    }
}

/// Why a lock ended without being completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// Its `lock_seconds` ran out.
    Ttl,
    /// The answer carrying its id never left the server.
    AnswerLost,
}

/// How long a lock lives: `ttl`, unless the answer carrying its id never reaches its
/// caller, who therefore cannot complete it: then it is backed out at once.
#[derive(Debug)]
pub struct Lifetime {
    /// Until the lock expires.
    pub ttl: Duration,
    /// Until the answer is handed back, any way of going ends the lock; after, only the
    /// answer lost on its way does (an HTTP response dropped or cut off before it was
    /// written, a stdio answer that could not be written): rmcp cancels a request's own
    /// token once its answer is sent too, so that token says nothing then.
    pub caller: CallerGone,
}

/// Who holds a lock, on which queue, under what id and until when: chosen before its
/// messages are got, so that its answer can be built before the lock is held.
#[derive(Debug)]
pub struct Ticket {
    /// Random and opaque.
    pub id: String,
    owner: String,
    queue: String,
    expires: Instant,
    /// When it expires, as the answer states it.
    pub expires_at: SystemTime,
}

impl Ticket {
    /// A new id, for a lock of `owner` on `queue` expiring `ttl` from now.
    #[must_use]
    pub fn new(owner: &str, queue: &str, ttl: Duration) -> Self {
        Self {
            id: new_id(),
            owner: owner.to_owned(),
            queue: queue.to_owned(),
            expires: Instant::now() + ttl,
            expires_at: SystemTime::now() + ttl,
        }
    }
}

/// A random, opaque lock id.
fn new_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system provides random bytes");
    crate::mq::message::hex(&bytes)
}

/// Closes `queue`'s input handle on a connection whose unit of work is over (see the file's
/// header).
pub(crate) fn stop_consuming(c: &mut PooledConn, queue: &str) {
    c.close(queue, Access::Input);
}

/// `when` as RFC 3339 UTC, to the second.
#[must_use]
pub fn rfc3339(when: SystemTime) -> String {
    let secs = when.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

async fn back_out(mut lease: Lease, queue: &str) -> Result<(), Error> {
    let queue = queue.to_owned();
    lease
        .run(move |c| {
            let backed_out = if c.in_unit_of_work() { c.backout() } else { Ok(()) };
            stop_consuming(c, &queue);
            backed_out
        })
        .await
}

impl Locks {
    /// A table holding at most `limit.max()` locks; `shutdown` backs every lock out.
    #[must_use]
    pub fn new(limit: LockLimit, shutdown: CancellationToken) -> Self {
        Self {
            inner: Arc::new(Inner {
                held: Mutex::new(HashMap::new()),
                expired: Mutex::new(VecDeque::new()),
                limit,
                reserved: AtomicUsize::new(0),
                shutdown,
            }),
        }
    }

    /// Locks held now.
    #[must_use]
    pub fn held(&self) -> usize {
        self.inner
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Reserves a place for a lock about to be taken (before its connection is checked out),
    /// counted against the maximum with the locks held and the other reservations.
    ///
    /// # Errors
    /// [`LockError::Full`].
    pub fn reserve(&self) -> Result<Reservation, LockError> {
        let held = self
            .inner
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if held.len() + self.inner.reserved.load(Ordering::SeqCst) >= self.inner.limit.max() {
            return Err(LockError::Full(self.inner.limit));
        }
        self.inner.reserved.fetch_add(1, Ordering::SeqCst);
        Ok(Reservation(Arc::clone(&self.inner)))
    }

    /// Registers a lease holding `messages` uncommitted gets as the lock `ticket`, until it
    /// expires or `answer_lost` fires (the answer carrying its id was lost after it was
    /// handed back).
    ///
    /// # Errors
    /// [`LockError::Full`]: the lease is backed out.
    pub async fn insert(
        &self,
        reservation: Reservation,
        lease: Lease,
        messages: usize,
        ticket: &Ticket,
        answer_lost: CancellationToken,
    ) -> Result<(), LockError> {
        let id = ticket.id.clone();
        let refused = {
            let mut held = self
                .inner
                .held
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if held.len() >= self.inner.limit.max() {
                Some(lease)
            } else {
                held.insert(
                    id.clone(),
                    Held {
                        owner: ticket.owner.clone(),
                        queue: ticket.queue.clone(),
                        lease,
                        messages,
                        expires: ticket.expires,
                    },
                );
                None
            }
        };
        drop(reservation);
        if let Some(lease) = refused {
            back_out(lease, &ticket.queue).await.map_err(LockError::Mq)?;
            return Err(LockError::Full(self.inner.limit));
        }
        let locks = self.clone();
        let expires = tokio::time::Instant::from_std(ticket.expires);
        tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep_until(expires) => locks.expire(&id, Expiry::Ttl).await,
                () = answer_lost.cancelled() => locks.expire(&id, Expiry::AnswerLost).await,
                () = locks.inner.shutdown.cancelled() => {}
            }
        });
        Ok(())
    }

    /// Backs lock `id` out, if it is still held, saying why in the log. Only a lock whose
    /// time ran out is remembered as expired: one whose answer was lost has an id nobody
    /// knows, and must not push a real expiry out of the bounded list.
    pub(crate) async fn expire(&self, id: &str, why: Expiry) {
        let taken = self
            .inner
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(id);
        let Some(held) = taken else { return };
        let why_text = match why {
            Expiry::Ttl => "lock expired",
            Expiry::AnswerLost => "the answer with this lock never reached its caller",
        };
        tracing::info!(queue = %held.queue, messages = held.messages, "{why_text}: backing its messages out");
        if why == Expiry::Ttl {
            let mut expired = self
                .inner
                .expired
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            expired.push_back((id.to_owned(), held.owner.clone()));
            if expired.len() > EXPIRED_REMEMBERED {
                expired.pop_front();
            }
        }
        if let Err(e) = back_out(held.lease, &held.queue).await {
            tracing::warn!(queue = %held.queue, error = %e, "MQBACK of an expired lock failed; MQ backs it out when the connection ends");
        }
    }

    /// Commits or backs out lock `id` of `owner`; returns its queue and message count.
    ///
    /// # Errors
    /// [`LockError::Unknown`], [`LockError::Expired`] or [`LockError::Mq`].
    pub async fn complete(&self, owner: &str, id: &str, action: Action) -> Result<(String, usize), LockError> {
        let taken = {
            let mut held = self
                .inner
                .held
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match held.get(id) {
                Some(h) if h.owner == owner && h.expires > Instant::now() => held.remove(id),
                _ => None,
            }
        };
        let Some(held) = taken else {
            let expired = self
                .inner
                .expired
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            return Err(if expired.iter().any(|(i, o)| i == id && o == owner) {
                LockError::Expired
            } else {
                LockError::Unknown
            });
        };
        let mut lease = held.lease;
        let queue = held.queue.clone();
        match action {
            Action::Commit => lease
                .run(move |c| {
                    let result = c.commit();
                    if result.is_err() && c.in_unit_of_work() {
                        let _ = c.backout();
                    }
                    stop_consuming(c, &queue);
                    result
                })
                .await
                .map_err(|e| {
                    if is_commit_outcome_unknown(&e) {
                        LockError::CommitUnknown(e)
                    } else {
                        LockError::Mq(e)
                    }
                })?,
            // MQ backs out the unit of work of a connection it lost: an abort whose MQBACK
            // failed with the connection has done what it was asked (the pool replaces it).
            Action::Abort => match lease
                .run(move |c| {
                    let result = c.backout();
                    stop_consuming(c, &queue);
                    result
                })
                .await
            {
                Err(e) if is_connection_lost(&e) => {
                    tracing::info!(lock = id, error = %e, "MQBACK failed with the connection: MQ backs the lock's messages out");
                }
                result => result.map_err(LockError::Mq)?,
            },
        }
        Ok((held.queue, held.messages))
    }

    /// Backs out every held lock (server shutdown). Returns how many there were.
    pub async fn release_all(&self) -> usize {
        let all: Vec<Held> = self
            .inner
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain()
            .map(|(_, h)| h)
            .collect();
        let n = all.len();
        for held in all {
            if let Err(e) = back_out(held.lease, &held.queue).await {
                tracing::warn!(queue = %held.queue, error = %e, "MQBACK of a lock at shutdown failed; MQ backs it out when the connection ends");
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_689_870);
        assert_eq!(rfc3339(t), "2026-11-26T10:44:30Z");
    }

    #[test]
    fn ids_are_random_and_opaque() {
        let a = new_id();
        assert_eq!(a.len(), 32);
        assert_ne!(a, new_id());
    }
}
