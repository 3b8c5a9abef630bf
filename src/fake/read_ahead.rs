//! The queue manager's side of a network client's read-ahead: gets taken ahead into the
//! unit of work, given back when the client did not hand them out, and kept from other
//! consumers while the client may still hand them out.
//!
//! The invariant: a message is never with two consumers at once. A client hands out what
//! it fetched ahead without telling the server, so the server cannot know which of those
//! messages its application already has. The connection therefore remembers the messages
//! of its latest read-ahead ([`Conn::ahead`](super::state::Conn)) until the client's next
//! request, and a break (`break`, `stop`, an injected fault) keeps exactly those got by the
//! connection until then: the client learns of the break at that request (or its socket
//! closes), and only then do they come back for other consumers.
//!
//! A change that would make the client's next hand-out wrong (GET(DISABLED) of the queue,
//! or quiescing when the gets fail if quiescing) ends the connection's watch
//! ([`AheadWatch`]): the server tells the client before the change returns, and the client
//! then sends its next MQGET to the server, releasing what it holds in front of it.

use std::sync::MutexGuard;

use libmqm_sys as mq;

use super::FakeQm;
use super::get::{GrowBuffer, try_get};
use super::state::{QmgrStatus, State, Verb, Work};
use super::verbs::GetOptions;

/// Tells a network client to stop handing out what it fetched ahead. Called once, without
/// the queue manager's lock.
pub(crate) type AheadNotice = Box<dyn FnOnce() + Send>;

/// What a network client's latest read-ahead was fetched on, while its client may hand it
/// out, and how to tell the client when that would no longer be right.
pub(crate) struct AheadWatch {
    queue: usize,
    fail_if_quiescing: bool,
    notice: AheadNotice,
}

/// How much one read-ahead may take.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AheadLimit {
    /// Most messages.
    pub messages: usize,
    /// Most bytes in all, each message counted as its data plus `overhead`.
    pub bytes: usize,
    /// What each message costs besides its data (its MQMD and lengths in a reply frame).
    pub overhead: usize,
}

/// MQGMO options after which a get cannot be repeated ahead of the caller.
const NOT_AHEAD: i32 = mq::MQGMO_BROWSE_FIRST
    | mq::MQGMO_BROWSE_NEXT
    | mq::MQGMO_BROWSE_MSG_UNDER_CURSOR
    | mq::MQGMO_MSG_UNDER_CURSOR
    | mq::MQGMO_LOCK
    | mq::MQGMO_UNLOCK
    | mq::MQGMO_ACCEPT_TRUNCATED_MSG
    | mq::MQGMO_MARK_SKIP_BACKOUT
    | mq::MQGMO_SYNCPOINT_IF_PERSISTENT;

impl FakeQm {
    /// Read-ahead for a network client: up to `limit` more destructive gets on `hobj` under
    /// syncpoint, without waiting, each into `hconn`'s unit of work as an MQGET would (and
    /// counted as one), each handed to `each` with its MQMD and data, and each remembered as
    /// fetched ahead until [`FakeQm::ahead_settled`]. `md` carries what the gets match on.
    /// Stops at the first get that would not take a whole message: nothing left, MAXUMSGS
    /// reached, a message longer than `buffer` or than what is left of the limit's bytes, any
    /// failure (which is not counted: the client never made that call). Only a plain get
    /// under MQGMO_SYNCPOINT qualifies, and nothing is read ahead while a failure of MQGET is
    /// planned ([`FakeQm::fail_next`], [`FakeQm::fail_after`]). Returns how many it took. When it took any, `notice`
    /// is kept until the client's next request and called if GET(DISABLED) or quiescing
    /// (for gets that fail if quiescing) comes first (see [`unlock_revoking_ahead`]).
    #[allow(clippy::too_many_arguments)] // MQGET's own parameters, the limit, the sink, the notice
    pub(crate) fn get_ahead(
        &self,
        hconn: i32,
        hobj: i32,
        md: &mq::MQMD,
        gmo: &GetOptions,
        buffer: &mut GrowBuffer<'_>,
        limit: AheadLimit,
        mut each: impl FnMut(&mq::MQMD, &[u8]),
        notice: impl FnOnce() -> AheadNotice,
    ) -> usize {
        if gmo.options & mq::MQGMO_SYNCPOINT == 0 || gmo.options & NOT_AHEAD != 0 {
            return 0;
        }
        let gmo = GetOptions {
            options: gmo.options & !mq::MQGMO_WAIT,
            wait_interval: 0,
            match_options: gmo.match_options,
        };
        let mut st = self.lock();
        if st.faults.planned(Verb::Get) {
            return 0;
        }
        let (mut taken, mut bytes, mut queue) = (0, 0, None);
        while taken < limit.messages {
            let Some(room) = limit.bytes.checked_sub(bytes + limit.overhead) else {
                break;
            };
            let mut room = GrowBuffer {
                capacity: buffer.capacity.min(room),
                data: &mut *buffer.data,
            };
            let mut got_md = *md;
            let got = match try_get(&mut st, hconn, hobj, &mut got_md, &gmo, &mut room) {
                Ok((_, Some(got))) if got.warning == 0 => got,
                _ => break,
            };
            let Some(conn) = st.conns.get_mut(&hconn) else { break };
            let Some(&Work::Got(q, key)) = conn.uow.last() else {
                break;
            };
            conn.ahead.push((q, key));
            queue = Some(q);
            let _ = st.record(Verb::Get, Ok(()), 0);
            each(&got_md, &buffer.data[..got.data_length]);
            taken += 1;
            bytes += limit.overhead + got.data_length;
        }
        if let Some(queue) = queue {
            let watch = AheadWatch {
                queue,
                fail_if_quiescing: gmo.options & mq::MQGMO_FAIL_IF_QUIESCING != 0,
                notice: notice(),
            };
            st.ahead_watches.insert(hconn, watch);
        }
        taken
    }

    /// Puts the last `count` messages the latest read-ahead on `hconn` fetched back where
    /// they were, visible, with their backout count unchanged: the client never handed them
    /// out. The others were handed out and stay in the unit of work. Those no longer in it
    /// (it ended meanwhile) are skipped.
    ///
    /// # Errors
    /// How many messages the latest read-ahead fetched, when `count` is more.
    pub(crate) fn release_ahead(&self, hconn: i32, count: usize) -> Result<(), usize> {
        let mut st = self.lock();
        let Some(conn) = st.conns.get_mut(&hconn) else {
            return Err(0);
        };
        let fetched = std::mem::take(&mut conn.ahead);
        if count > fetched.len() {
            return Err(fetched.len());
        }
        for &(queue, key) in &fetched[fetched.len() - count..] {
            st.release_got(hconn, queue, key);
        }
        Ok(())
    }

    /// The client sent a request other than a release: it holds nothing fetched ahead any
    /// more (what it held it handed out, or released in front of this request). On a
    /// connection broken meanwhile, what the break kept for the client comes back now, with
    /// backout count + 1 (its application may have had those messages), before the request
    /// answers the break's reason.
    pub(crate) fn ahead_settled(&self, hconn: i32) {
        let mut st = self.lock();
        st.ahead_watches.remove(&hconn);
        let Some(conn) = st.conns.get_mut(&hconn) else { return };
        conn.ahead.clear();
        if conn.broken.is_some() {
            st.backout_uow(hconn);
        }
    }
}

/// Unlocks the queue manager after a change (GET(DISABLED), quiescing, a queue redefined),
/// first telling each network client whose next hand-out of messages fetched ahead the
/// change made wrong: the queue they came from is get-inhibited, or the queue manager
/// quiesces and they were fetched for gets that fail if quiescing. Those clients send their
/// next MQGET to the server instead, which answers 2016 or 2161 as in-process and gets the
/// messages back first, backout count unchanged. Returns once every such client was told
/// (its notice written), so a get the caller makes afterwards sees the change.
pub(crate) fn unlock_revoking_ahead(mut st: MutexGuard<'_, State>) {
    if st.ahead_watches.is_empty() {
        return;
    }
    let quiescing = st.status == QmgrStatus::Quiescing;
    let State {
        ahead_watches, queues, ..
    } = &mut *st;
    let revoked: Vec<i32> = ahead_watches
        .iter()
        .filter(|(_, w)| !queues[w.queue].def.get_enabled || (quiescing && w.fail_if_quiescing))
        .map(|(&hconn, _)| hconn)
        .collect();
    let notices: Vec<AheadNotice> = revoked
        .into_iter()
        .filter_map(|hconn| ahead_watches.remove(&hconn))
        .map(|w| w.notice)
        .collect();
    drop(st);
    for notice in notices {
        notice();
    }
}
