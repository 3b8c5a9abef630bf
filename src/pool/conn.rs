//! One pooled connection as its own thread sees it: the MQ session plus the handle budget.
//!
//! The budget is min(configured maximum, MAXHANDS read at connect - reserve), at least 1. A
//! handle that would pass it first closes the least recently used one (closing a handle does
//! not touch the unit of work, which belongs to the connection), so this connection never
//! issues an MQOPEN past its budget. If MQ still answers 2017 (another application shares the
//! limit), the budget shrinks to what is open, one handle is closed, the open is retried once,
//! and the event is counted.
//!
//! A user without inquire authority on the queue manager object (2035 on that MQOPEN) still
//! connects: MAXHANDS and MAXUMSGS are then taken to be IBM's defaults, 256 and 10000 (and
//! the pool's stats say they were assumed), and one warning names the missing authority with
//! the queue manager and user to grant it to. A MAXHANDS set lower shows up as 2017 and
//! shrinks the budget as above; a MAXUMSGS set lower shows up as 2024 on a batch.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::Error;
use crate::mq::message::Message;
use crate::mq::options::ConnectOptions;
use crate::mq::reason::Reason;
use crate::mq::session::{
    Access, Browsed, GetRequest, Got, QueueAttrs, Session, is_commit_outcome_unknown, is_connection_lost,
};

use super::stats::PoolStats;

/// A connection and its cached handles, owned by one pool thread.
#[derive(Debug)]
pub struct PooledConn {
    session: Session,
    /// Open handles, least recently used first.
    lru: Vec<(String, Access)>,
    budget: usize,
    id: usize,
    stats: Arc<PoolStats>,
    in_unit_of_work: bool,
    max_uncommitted: usize,
}

/// MAXHANDS assumed when the queue manager object cannot be inquired: IBM's default.
pub const ASSUMED_MAX_HANDLES: usize = 256;

/// MAXUMSGS assumed when the queue manager object cannot be inquired: IBM's default.
pub const ASSUMED_MAX_UNCOMMITTED: usize = 10_000;

/// Whether the warning about the missing inquire authority was logged: once per process,
/// since every connection of every pool meets the same authority.
static WARNED_NO_QMGR_INQUIRE: AtomicBool = AtomicBool::new(false);

/// MAXHANDS and MAXUMSGS as a connection knows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Limits {
    max_handles: usize,
    max_uncommitted: usize,
    /// IBM's defaults, because the queue manager refused the MQINQ that reads them.
    assumed: bool,
}

/// MAXHANDS and MAXUMSGS as the queue manager states them, or IBM's defaults when this user
/// may not inquire on the queue manager object (2035). The warning names the authority to
/// grant, with the queue manager and user of `options` (placeholders where they are not set).
fn qmgr_limits(session: &Session, id: usize, options: &ConnectOptions) -> Result<Limits, Error> {
    match session.limits() {
        Ok(limits) => Ok(Limits {
            max_handles: usize::try_from(limits.max_handles).unwrap_or(1),
            max_uncommitted: usize::try_from(limits.max_uncommitted).unwrap_or(0),
            assumed: false,
        }),
        Err(e) if e.reason() == Some(Reason::NOT_AUTHORIZED) => {
            if WARNED_NO_QMGR_INQUIRE.swap(true, Ordering::Relaxed) {
                tracing::debug!(connection = id, error = %e, "MAXHANDS and MAXUMSGS assumed");
            } else {
                let grant = inquire_grant(options.queue_manager(), options.user());
                tracing::warn!(
                    connection = id,
                    error = %e,
                    assumed_maxhands = ASSUMED_MAX_HANDLES,
                    assumed_maxumsgs = ASSUMED_MAX_UNCOMMITTED,
                    "cannot read MAXHANDS and MAXUMSGS: this user has no inquire authority on the queue \
                     manager object; assuming IBM's defaults (MAXHANDS {ASSUMED_MAX_HANDLES}, MAXUMSGS \
                     {ASSUMED_MAX_UNCOMMITTED}). To let mqpilot read them, grant it: {grant}"
                );
            }
            Ok(Limits {
                max_handles: ASSUMED_MAX_HANDLES,
                max_uncommitted: ASSUMED_MAX_UNCOMMITTED,
                assumed: true,
            })
        }
        Err(e) => Err(e),
    }
}

/// The commands that grant `+inq` on the queue manager object to `user` on `queue_manager`;
/// one not known (the client's default queue manager, a user MQ takes from the channel or
/// the client's login) is a placeholder to fill in.
fn inquire_grant(queue_manager: Option<&str>, user: Option<&str>) -> String {
    let qm = queue_manager.unwrap_or("<qmgr>");
    let user = user.unwrap_or("<user>");
    format!("setmqaut -m {qm} -t qmgr -p {user} +inq (or SET AUTHREC OBJTYPE(QMGR) PRINCIPAL('{user}') AUTHADD(INQ))")
}

/// The handle budget for a connection.
#[must_use]
pub fn budget(configured: usize, max_handles: usize, reserve: usize) -> usize {
    configured.min(max_handles.saturating_sub(reserve)).max(1)
}

impl PooledConn {
    /// A connection made with `options` (whose queue manager and user the warning about a
    /// missing inquire authority names), its budget from `configured`, MAXHANDS and `reserve`.
    pub(crate) fn new(
        session: Session,
        id: usize,
        options: &ConnectOptions,
        configured: usize,
        reserve: usize,
        stats: Arc<PoolStats>,
    ) -> Result<Self, Error> {
        let limits = qmgr_limits(&session, id, options)?;
        let budget = budget(configured, limits.max_handles, reserve);
        stats.connected(id, limits.max_handles, limits.assumed, budget);
        Ok(Self {
            session,
            lru: Vec::new(),
            budget,
            id,
            stats,
            in_unit_of_work: false,
            max_uncommitted: limits.max_uncommitted,
        })
    }

    /// MAXUMSGS of the queue manager, read at connect ([`ASSUMED_MAX_UNCOMMITTED`] when it
    /// could not be).
    #[must_use]
    pub const fn max_uncommitted(&self) -> usize {
        self.max_uncommitted
    }

    /// The pool slot this connection fills.
    #[must_use]
    pub const fn id(&self) -> usize {
        self.id
    }

    /// The current handle budget.
    #[must_use]
    pub const fn budget(&self) -> usize {
        self.budget
    }

    /// Handles open now.
    #[must_use]
    pub fn handles(&self) -> usize {
        self.lru.len()
    }

    /// Whether gets or puts under syncpoint are waiting for commit or backout.
    #[must_use]
    pub const fn in_unit_of_work(&self) -> bool {
        self.in_unit_of_work
    }

    /// Makes sure (queue, access) is open within the budget and marks it most recently used.
    fn ensure_open(&mut self, queue: &str, access: Access) -> Result<(), Error> {
        if let Some(pos) = self.lru.iter().position(|(q, a)| q == queue && *a == access) {
            if pos + 1 < self.lru.len() {
                let k = self.lru.remove(pos);
                self.lru.push(k);
            }
            return Ok(());
        }
        while self.lru.len() >= self.budget {
            self.close_least_recent();
            self.stats.closed_for_budget();
        }
        match self.session.open(queue, access) {
            Ok(()) => {}
            Err(e) if e.reason() == Some(Reason::HANDLE_NOT_AVAILABLE) => {
                // Someone else's handles count against this connection's MAXHANDS too.
                self.budget = self.lru.len().max(1);
                self.stats.budget_shrunk(self.id, self.budget);
                tracing::warn!(
                    connection = self.id,
                    queue,
                    budget = self.budget,
                    "MQOPEN got 2017 MQRC_HANDLE_NOT_AVAILABLE below the handle budget: budget shrunk, retrying once"
                );
                self.close_least_recent();
                self.stats.closed_for_budget();
                self.session.open(queue, access)?;
            }
            Err(e) => return Err(e),
        }
        self.lru.push((queue.to_owned(), access));
        self.stats.handles(self.id, self.lru.len());
        Ok(())
    }

    /// Closes the cached handle when `result` says it is of no more use: 2019 (the handle is
    /// not valid) or 2041 (the queue's definition changed since it was opened). The next
    /// call opens it again instead of failing on it forever.
    fn drop_stale<T>(&mut self, queue: &str, access: Access, result: Result<T, Error>) -> Result<T, Error> {
        if let Err(e) = &result
            && matches!(e.reason(), Some(Reason::HOBJ_ERROR | Reason::OBJECT_CHANGED))
        {
            tracing::warn!(connection = self.id, queue, error = %e, "closing the handle to open it again");
            self.close(queue, access);
        }
        result
    }

    /// Closes the handle for (queue, access), if one is open. The unit of work is not
    /// touched.
    pub fn close(&mut self, queue: &str, access: Access) {
        self.lru.retain(|(q, a)| !(q == queue && *a == access));
        self.session.close(queue, access);
        self.stats.handles(self.id, self.lru.len());
    }

    fn close_least_recent(&mut self) {
        if self.lru.is_empty() {
            return;
        }
        let (queue, access) = self.lru.remove(0);
        self.session.close(&queue, access);
        self.stats.handles(self.id, self.lru.len());
    }

    /// Gets one message (see [`Session::get`]).
    ///
    /// # Errors
    /// [`Error::Mq`].
    pub fn get(&mut self, queue: &std::sync::Arc<str>, request: GetRequest) -> Result<Option<Message>, Error> {
        self.ensure_open(&queue[..], Access::Input)?;
        let got = self.session.get(queue, request);
        let got = self.drop_stale(queue, Access::Input, got)?;
        if got.is_some() && request.syncpoint {
            self.in_unit_of_work = true;
        }
        Ok(got)
    }

    /// Gets one message of at most `max_bytes` (see [`Session::get_within`]).
    ///
    /// # Errors
    /// [`Error::Mq`].
    pub fn get_within(
        &mut self,
        queue: &std::sync::Arc<str>,
        request: GetRequest,
        max_bytes: usize,
    ) -> Result<Got, Error> {
        self.ensure_open(&queue[..], Access::Input)?;
        let got = self.session.get_within(queue, request, max_bytes);
        let got = self.drop_stale(queue, Access::Input, got)?;
        if matches!(got, Got::Message(_)) && request.syncpoint {
            self.in_unit_of_work = true;
        }
        Ok(got)
    }

    /// Puts a copy of `message` with `data` (see [`Session::put`]).
    ///
    /// # Errors
    /// [`Error::Mq`].
    pub fn put(&mut self, queue: &str, message: &Message, data: &[u8], syncpoint: bool) -> Result<(), Error> {
        self.ensure_open(queue, Access::Output)?;
        let put = self.session.put(queue, message, data, syncpoint);
        self.drop_stale(queue, Access::Output, put)?;
        self.in_unit_of_work |= syncpoint;
        Ok(())
    }

    /// MQCMIT.
    ///
    /// # Errors
    /// [`Error::Mq`].
    pub fn commit(&mut self) -> Result<(), Error> {
        let result = self.session.commit();
        // Only a commit that happened, one MQ backed out instead (2003), or one whose outcome
        // is unknown (a lost connection, 2549 after client reconnection) ends the unit of
        // work; after any other failure it is still open, and must be backed out rather than
        // left for MQDISC, which would commit it.
        if result.as_ref().map_or_else(
            |e| e.reason() == Some(Reason::BACKED_OUT) || is_commit_outcome_unknown(e),
            |()| true,
        ) {
            self.in_unit_of_work = false;
        }
        result
    }

    /// MQBACK.
    ///
    /// # Errors
    /// [`Error::Mq`].
    pub fn backout(&mut self) -> Result<(), Error> {
        let result = self.session.backout();
        // Only a backout that happened (or a lost connection, which MQ backs out itself)
        // ends the unit of work; otherwise it is still open and must not be committed.
        if result.as_ref().map_or_else(is_connection_lost, |()| true) {
            self.in_unit_of_work = false;
        }
        result
    }

    /// Browses up to `limit` messages of `queue` (see [`Session::browse`]) on a cached browse
    /// handle, counted against the budget like any other.
    ///
    /// # Errors
    /// [`Error::Mq`].
    pub fn browse(
        &mut self,
        queue: &str,
        limit: usize,
        max_payload_bytes: usize,
        max_total_bytes: usize,
    ) -> Result<Vec<Browsed>, Error> {
        self.ensure_open(queue, Access::Browse)?;
        let browsed = self.session.browse(queue, limit, max_payload_bytes, max_total_bytes);
        self.drop_stale(queue, Access::Browse, browsed)
    }

    /// Checks that `queue` can be opened for output (MQOPEN and MQCLOSE; the handle is not
    /// kept, so the check takes no budget slot).
    ///
    /// # Errors
    /// [`Error::Mq`] from MQOPEN.
    pub fn check_output(&mut self, queue: &str) -> Result<(), Error> {
        if self.lru.iter().any(|(q, a)| q == queue && *a == Access::Output) {
            return Ok(());
        }
        self.ensure_open(queue, Access::Output)?;
        self.close(queue, Access::Output);
        Ok(())
    }

    /// Opens `queue` for output and keeps the handle cached, as a put would leave it.
    ///
    /// # Errors
    /// [`Error::Mq`] from MQOPEN.
    pub fn open_output(&mut self, queue: &str) -> Result<(), Error> {
        self.ensure_open(queue, Access::Output)
    }

    /// The queue's attributes (an inquire handle, counted against the budget like any other).
    ///
    /// # Errors
    /// [`Error::Mq`].
    pub fn queue_attrs(&mut self, queue: &str) -> Result<QueueAttrs, Error> {
        self.ensure_open(queue, Access::Inquire)?;
        let attrs = self.session.queue_attrs(queue);
        // Inquiries are rare: give the handle back rather than let it take a budget slot.
        self.close(queue, Access::Inquire);
        attrs
    }
}

impl Drop for PooledConn {
    /// Backs out an open unit of work before the session disconnects, because MQDISC commits.
    /// If that backout fails on a live connection, the connection is abandoned instead of
    /// disconnected, and MQ backs the unit of work out when the process ends.
    fn drop(&mut self) {
        if self.in_unit_of_work
            && let Err(e) = self.backout()
            && !is_connection_lost(&e)
        {
            tracing::error!(
                connection = self.id,
                error = %e,
                "MQBACK failed on a connection with uncommitted messages: leaving it open so MQ backs them out"
            );
            self.session.abandon();
        }
        self.stats.disconnected(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::{budget, inquire_grant};

    #[test]
    fn the_inquire_grant_names_the_queue_manager_and_user_or_says_what_to_fill_in() {
        assert_eq!(
            inquire_grant(Some("QM2"), Some("app")),
            "setmqaut -m QM2 -t qmgr -p app +inq (or SET AUTHREC OBJTYPE(QMGR) PRINCIPAL('app') AUTHADD(INQ))"
        );
        assert_eq!(
            inquire_grant(None, None),
            "setmqaut -m <qmgr> -t qmgr -p <user> +inq (or SET AUTHREC OBJTYPE(QMGR) PRINCIPAL('<user>') AUTHADD(INQ))"
        );
    }

    #[test]
    fn budget_is_the_smaller_of_configured_and_maxhands_minus_reserve() {
        assert_eq!(budget(256, 256, 8), 248);
        assert_eq!(budget(10, 256, 8), 10);
        assert_eq!(budget(256, 4, 8), 1, "never below one handle");
        assert_eq!(budget(256, 20, 0), 20);
    }
}
