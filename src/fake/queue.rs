//! One local queue of the fake: its messages, their states and the order MQ delivers them.
//!
//! Each message sits in exactly one of four maps by state, all keyed by delivery order:
//! `msgs` holds what every handle sees (committed, unlocked), `locked` what one handle has
//! browse-locked, `put` what a unit of work has put and not committed, `got` what a unit of
//! work has got and not committed. A get or browse walks `msgs` alone (plus its own handle's
//! lock), so it never steps over messages other handles or units of work hold: finding the
//! next candidate costs a B-tree search, whatever the queue holds besides. Messages got under
//! syncpoint are only looked up by key (commit, backout), never walked in order, so `got` is a
//! hash map: a get and its commit cost a hash insert and remove, and the map keeps its memory
//! from one unit of work to the next.
//! The order is priority then arrival (`MSGDLVSQ(PRIORITY)`) or arrival only (`FIFO`); the key
//! of a message never changes, so cursors, locks and units of work point at keys.

use std::collections::BTreeMap;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use std::sync::Condvar;

use libmqm_sys as mq;

use super::config::{Delivery, QueueDef};
use super::verbs::MAX_PRIORITY;

/// MQ's largest BackoutCount: a backout past it leaves the count there.
pub const MAX_BACKOUT_COUNT: i32 = 999_999_999;

/// Where a message sits in delivery order: (9 - priority or 0 for FIFO, arrival sequence).
pub(crate) type Key = (u8, u64);

/// Who may see a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MsgState {
    /// Committed and unlocked: every handle sees it.
    Visible,
    /// Browse-locked: only this handle sees it.
    Locked { hconn: i32, hobj: i32 },
    /// Got under syncpoint by this connection: nobody sees it until commit (gone) or backout.
    GetPending(i32),
    /// Put under syncpoint by this connection: nobody sees it until commit.
    PutPending(i32),
}

/// A stored message: its full descriptor, payload and state.
#[derive(Clone)]
pub(crate) struct Msg {
    pub md: mq::MQMD,
    pub data: Vec<u8>,
    pub state: MsgState,
    /// When it was put (also its PutDate/PutTime), for MSGAGE.
    pub arrived: std::time::SystemTime,
}

/// A local queue and its run-time status.
pub(crate) struct Queue {
    pub def: QueueDef,
    /// Committed, unlocked messages: what every handle sees. Boxed so that B-tree
    /// rebalancing moves pointers, not ~420-byte descriptors.
    pub msgs: BTreeMap<Key, Box<Msg>>,
    /// Browse-locked messages, each seen only by the handle its state names.
    locked: BTreeMap<Key, Box<Msg>>,
    /// Messages put under syncpoint and not yet committed: nobody sees them.
    put: BTreeMap<Key, Box<Msg>>,
    /// Handles open for input (IPPROCS).
    pub ipprocs: u32,
    /// Handles open for exclusive input.
    pub exclusive_inputs: u32,
    /// Handles open for output (OPPROCS).
    pub opprocs: u32,
    /// Messages got or put under syncpoint and not yet committed (UNCOM).
    pub uncommitted: u32,
    /// Messages got under syncpoint and not yet committed (hidden from CURDEPTH), in no
    /// particular order.
    got: FxHashMap<Key, Box<Msg>>,
    /// Highest CURDEPTH seen.
    pub peak_depth: i32,
    /// Waiting gets sleep here; every change that can satisfy or cancel a wait notifies it.
    pub cv: Arc<Condvar>,
    /// Gets currently waiting on this queue.
    pub waiters: u32,
}

impl Queue {
    pub fn new(def: QueueDef) -> Self {
        Self {
            def,
            msgs: BTreeMap::new(),
            locked: BTreeMap::new(),
            put: BTreeMap::new(),
            ipprocs: 0,
            exclusive_inputs: 0,
            opprocs: 0,
            uncommitted: 0,
            got: FxHashMap::default(),
            peak_depth: 0,
            cv: Arc::new(Condvar::new()),
            waiters: 0,
        }
    }

    /// The delivery-order key for a new message.
    pub fn key_for(&self, priority: i32, seq: u64) -> Key {
        match self.def.delivery {
            // A priority above MaxPriority (9) is queued at 9, as MQ queues it; the clamp
            // also keeps the cast from wrapping.
            Delivery::Priority => ((MAX_PRIORITY - priority.clamp(0, MAX_PRIORITY)) as u8, seq),
            // MQ enqueues every message of a FIFO queue at its default priority, so those
            // put before a change of MSGDLVSQ keep their place among later ones.
            Delivery::Fifo => (
                (MAX_PRIORITY - self.def.default_priority.clamp(0, MAX_PRIORITY)) as u8,
                seq,
            ),
        }
    }

    /// CURDEPTH: every message but those got under syncpoint (uncommitted puts count).
    pub fn depth(&self) -> i32 {
        i32::try_from(self.msgs.len() + self.locked.len() + self.put.len()).unwrap_or(i32::MAX)
    }

    /// A message a get may act on: visible to all, or browse-locked.
    pub fn available_mut(&mut self, key: Key) -> Option<&mut Msg> {
        match self.msgs.get_mut(&key) {
            Some(m) => Some(m),
            None => self.locked.get_mut(&key).map(AsMut::as_mut),
        }
    }

    /// Whether handle `viewer` sees the message at `key`.
    pub fn visible_to(&self, key: Key, viewer: (i32, i32)) -> bool {
        self.msgs.contains_key(&key) || self.locked.get(&key).is_some_and(|m| visible_to(m.state, viewer))
    }

    /// Takes a message off the queue for a destructive get (visible or locked by the getter).
    fn take(&mut self, key: Key) -> Option<Box<Msg>> {
        // Most gets take the first message: popping it needs no key comparisons.
        if self.msgs.first_key_value().is_some_and(|(first, _)| *first == key) {
            return self.msgs.pop_first().map(|(_, m)| m);
        }
        self.msgs.remove(&key).or_else(|| self.locked.remove(&key))
    }

    /// Moves a message into `hconn`'s unit of work.
    pub fn get_under_syncpoint(&mut self, key: Key, hconn: i32) {
        if let Some(mut m) = self.take(key) {
            m.state = MsgState::GetPending(hconn);
            self.got.insert(key, m);
            self.uncommitted += 1;
        }
    }

    /// Commit of a get: the message is gone.
    pub fn commit_get(&mut self, key: Key) {
        if self.got.remove(&key).is_some() {
            self.uncommitted -= 1;
        }
    }

    /// Backout of a get: the message returns to its place with BackoutCount + 1, at most
    /// [`MAX_BACKOUT_COUNT`] (where MQ stops counting). CURDEPTH grows again, so the peak
    /// depth may too: puts since the get may have filled the queue meanwhile.
    pub fn backout_get(&mut self, key: Key) {
        if let Some(mut m) = self.got.remove(&key) {
            m.state = MsgState::Visible;
            m.md.BackoutCount = m.md.BackoutCount.saturating_add(1).min(MAX_BACKOUT_COUNT);
            self.msgs.insert(key, m);
            self.uncommitted -= 1;
            self.peak_depth = self.peak_depth.max(self.depth());
            self.wake();
        }
    }

    /// Release of a get the application never received (a network client's read-ahead):
    /// the message returns to its place, visible, with its backout count unchanged (and the
    /// peak depth follows CURDEPTH, as after a backout).
    pub fn release_get(&mut self, key: Key) -> bool {
        let Some(mut m) = self.got.remove(&key) else {
            return false;
        };
        m.state = MsgState::Visible;
        self.msgs.insert(key, m);
        self.uncommitted -= 1;
        self.peak_depth = self.peak_depth.max(self.depth());
        self.wake();
        true
    }

    /// Commit of a put: the message becomes visible.
    pub fn commit_put(&mut self, key: Key) {
        if let Some(mut m) = self.put.remove(&key) {
            m.state = MsgState::Visible;
            self.msgs.insert(key, m);
            self.uncommitted -= 1;
            self.wake();
        }
    }

    /// Backout of a put: the message vanishes.
    pub fn backout_put(&mut self, key: Key) {
        if self.put.remove(&key).is_some() {
            self.uncommitted -= 1;
        }
    }

    /// Browse-locks a message to handle (`hconn`, `hobj`): from then on only it sees it.
    pub fn lock(&mut self, key: Key, hconn: i32, hobj: i32) {
        let state = MsgState::Locked { hconn, hobj };
        if let Some(mut m) = self.msgs.remove(&key) {
            m.state = state;
            self.locked.insert(key, m);
        } else if let Some(m) = self.locked.get_mut(&key) {
            m.state = state;
        }
    }

    /// Releases a browse lock: the message is visible to every handle again.
    pub fn unlock(&mut self, key: Key) {
        if let Some(mut m) = self.locked.remove(&key) {
            m.state = MsgState::Visible;
            self.msgs.insert(key, m);
            self.wake();
        }
    }

    /// Every message, pending gets included, in delivery order.
    pub fn all(&self) -> Vec<&Msg> {
        let mut all: Vec<(&Key, &Box<Msg>)> = self.every().collect();
        all.sort_by_key(|(k, _)| **k);
        all.into_iter().map(|(_, m)| m.as_ref()).collect()
    }

    /// Every message in every state, in no particular order.
    fn every(&self) -> impl Iterator<Item = (&Key, &Box<Msg>)> {
        self.msgs
            .iter()
            .chain(self.locked.iter())
            .chain(self.put.iter())
            .chain(self.got.iter())
    }

    /// Inserts a message (visible, or an uncommitted put by its state) and records the peak
    /// depth.
    pub fn insert(&mut self, key: Key, msg: Box<Msg>) {
        match msg.state {
            MsgState::PutPending(_) => self.put.insert(key, msg),
            MsgState::Locked { .. } => self.locked.insert(key, msg),
            MsgState::GetPending(_) => self.got.insert(key, msg),
            MsgState::Visible => self.msgs.insert(key, msg),
        };
        self.peak_depth = self.peak_depth.max(self.depth());
    }

    /// Removes a message for good (a destructive get outside syncpoint).
    pub fn remove(&mut self, key: Key) -> Option<Box<Msg>> {
        self.take(key)
    }

    /// The first message after `after` (or from the start) that handle `viewer` may see and
    /// that matches. `own_lock` is the message the handle has locked, if any: the only
    /// locked message it sees.
    pub fn find(
        &self,
        after: Option<Key>,
        viewer: (i32, i32),
        own_lock: Option<Key>,
        select: &Selector,
    ) -> Option<Key> {
        let range = match after {
            Some(k) => self
                .msgs
                .range((std::ops::Bound::Excluded(k), std::ops::Bound::Unbounded)),
            None => self.msgs.range(..),
        };
        let visible = range.filter(|(_, m)| select.matches(&m.md)).map(|(k, _)| *k).next();
        let own = own_lock.filter(|k| {
            after.is_none_or(|a| *k > a)
                && self
                    .locked
                    .get(k)
                    .is_some_and(|m| visible_to(m.state, viewer) && select.matches(&m.md))
        });
        match (visible, own) {
            (Some(v), Some(o)) => Some(v.min(o)),
            (v, o) => v.or(o),
        }
    }

    /// Wakes every get waiting on this queue (each re-checks what it waits for).
    pub fn wake(&self) {
        if self.waiters > 0 {
            self.cv.notify_all();
        }
    }

    /// Age in seconds of the oldest message (MSGAGE), 0 when empty.
    pub fn oldest_age_secs(&self) -> u64 {
        self.every()
            .map(|(_, m)| m.arrived.elapsed().unwrap_or_default().as_secs())
            .max()
            .unwrap_or(0)
    }
}

/// Whether a handle sees a message in this state.
fn visible_to(state: MsgState, (hconn, hobj): (i32, i32)) -> bool {
    match state {
        MsgState::Visible => true,
        MsgState::Locked { hconn: c, hobj: o } => c == hconn && o == hobj,
        MsgState::GetPending(_) | MsgState::PutPending(_) => false,
    }
}

/// What a get asks for: the message id and correlation id to match, if any.
#[derive(Debug, Clone, Default)]
pub(crate) struct Selector {
    pub msg_id: Option<[u8; 24]>,
    pub correl_id: Option<[u8; 24]>,
}

impl Selector {
    /// Builds the selector from the caller's MQMD and MatchOptions: an all-zero id matches any.
    pub fn from_md(md: &mq::MQMD, match_options: i32) -> Self {
        let pick = |flag: i32, id: [u8; 24]| (match_options & flag != 0 && id != [0; 24]).then_some(id);
        Self {
            msg_id: pick(mq::MQMO_MATCH_MSG_ID, md.MsgId),
            correl_id: pick(mq::MQMO_MATCH_CORREL_ID, md.CorrelId),
        }
    }

    fn matches(&self, md: &mq::MQMD) -> bool {
        self.msg_id.is_none_or(|id| id == md.MsgId) && self.correl_id.is_none_or(|id| id == md.CorrelId)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visible(data: &str) -> Box<Msg> {
        Box::new(Msg {
            md: libmqm_default::MQMD_DEFAULT,
            data: data.into(),
            state: MsgState::Visible,
            arrived: std::time::SystemTime::now(),
        })
    }

    #[test]
    fn a_release_that_raises_the_depth_raises_the_peak_depth() {
        let mut q = Queue::new(QueueDef::new("Q"));
        q.insert(q.key_for(0, 1), visible("one"));
        q.get_under_syncpoint(q.key_for(0, 1), 1);
        q.insert(q.key_for(0, 2), visible("two"));
        assert_eq!((q.depth(), q.peak_depth), (1, 1));
        assert!(q.release_get(q.key_for(0, 1)));
        assert_eq!((q.depth(), q.peak_depth), (2, 2));
    }
}
