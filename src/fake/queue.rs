//! One local queue of the fake: its messages, their states and the order MQ delivers them.
//!
//! Messages sit in one ordered map; a state says who may see each one (everyone, the handle
//! that locked it, nobody while an uncommitted put holds it). A message got under syncpoint
//! moves to a second map under the same key until commit (gone) or backout (back in its
//! place), so gets never step over a unit of work's messages.
//! The order is priority then arrival (`MSGDLVSQ(PRIORITY)`) or arrival only (`FIFO`); the key
//! of a message never changes, so cursors, locks and units of work point at keys.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Condvar;

use libmqm_sys as mq;

use super::config::{Delivery, QueueDef};

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
    /// Boxed so that B-tree rebalancing moves pointers, not ~420-byte descriptors.
    pub msgs: BTreeMap<Key, Box<Msg>>,
    /// Handles open for input (IPPROCS).
    pub ipprocs: u32,
    /// Handles open for exclusive input.
    pub exclusive_inputs: u32,
    /// Handles open for output (OPPROCS).
    pub opprocs: u32,
    /// Messages got or put under syncpoint and not yet committed (UNCOM).
    pub uncommitted: u32,
    /// Messages got under syncpoint and not yet committed, by key (hidden from CURDEPTH).
    pub got: BTreeMap<Key, Box<Msg>>,
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
            ipprocs: 0,
            exclusive_inputs: 0,
            opprocs: 0,
            uncommitted: 0,
            got: BTreeMap::new(),
            peak_depth: 0,
            cv: Arc::new(Condvar::new()),
            waiters: 0,
        }
    }

    /// The delivery-order key for a new message.
    pub fn key_for(&self, priority: i32, seq: u64) -> Key {
        match self.def.delivery {
            // Priority is 0..=9 once resolved, so the cast cannot wrap.
            Delivery::Priority => (9 - priority.clamp(0, 9) as u8, seq),
            Delivery::Fifo => (0, seq),
        }
    }

    /// CURDEPTH: every message but those got under syncpoint (uncommitted puts count).
    pub fn depth(&self) -> i32 {
        i32::try_from(self.msgs.len()).unwrap_or(i32::MAX)
    }

    /// Moves a message into `hconn`'s unit of work.
    pub fn get_under_syncpoint(&mut self, key: Key, hconn: i32) {
        if let Some(mut m) = self.msgs.remove(&key) {
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

    /// Backout of a get: the message returns to its place with BackoutCount + 1.
    pub fn backout_get(&mut self, key: Key) {
        if let Some(mut m) = self.got.remove(&key) {
            m.state = MsgState::Visible;
            m.md.BackoutCount += 1;
            self.msgs.insert(key, m);
            self.uncommitted -= 1;
            self.wake();
        }
    }

    /// Every message, pending gets included, in delivery order.
    pub fn all(&self) -> Vec<&Msg> {
        let mut all: Vec<(&Key, &Box<Msg>)> = self.msgs.iter().chain(self.got.iter()).collect();
        all.sort_by_key(|(k, _)| **k);
        all.into_iter().map(|(_, m)| m.as_ref()).collect()
    }

    /// Inserts a message and records the peak depth.
    pub fn insert(&mut self, key: Key, msg: Msg) {
        self.msgs.insert(key, Box::new(msg));
        self.peak_depth = self.peak_depth.max(self.depth());
    }

    /// Removes a message for good.
    pub fn remove(&mut self, key: Key) -> Option<Box<Msg>> {
        self.msgs.remove(&key)
    }

    /// The first message after `after` (or from the start) that `viewer` may see and that matches.
    pub fn find(&self, after: Option<Key>, viewer: (i32, i32), select: &Selector) -> Option<Key> {
        let range = match after {
            Some(k) => self
                .msgs
                .range((std::ops::Bound::Excluded(k), std::ops::Bound::Unbounded)),
            None => self.msgs.range(..),
        };
        range
            .filter(|(_, m)| visible_to(m.state, viewer) && select.matches(&m.md))
            .map(|(k, _)| *k)
            .next()
    }

    /// Wakes every get waiting on this queue (each re-checks what it waits for).
    pub fn wake(&self) {
        if self.waiters > 0 {
            self.cv.notify_all();
        }
    }

    /// Age in seconds of the oldest message (MSGAGE), 0 when empty.
    pub fn oldest_age_secs(&self) -> u64 {
        self.msgs
            .values()
            .chain(self.got.values())
            .map(|m| m.arrived.elapsed().unwrap_or_default().as_secs())
            .max()
            .unwrap_or(0)
    }
}

/// Whether a handle sees a message in this state.
pub(crate) fn visible_to(state: MsgState, (hconn, hobj): (i32, i32)) -> bool {
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
