//! A few whole MQI calls in safe Rust over any [`Verbs`], for code outside the MQ layer that
//! drives the fake directly (the planner's fleet runner): open a queue, browse-lock the first
//! message, get one message under syncpoint.
//!
//! The MQOO/MQGMO/MQMO option values stay here, so callers never name `libmqm_sys`. Each
//! helper answers exactly what the verb answers: `Err(reason)` when the call failed.

use libmqm_sys as mq;

use super::mqi_verbs::Verbs;
use super::verbs::{GetOptions, ObjectRef};

/// How a queue is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `MQOO_INPUT_AS_Q_DEF`: destructive gets.
    Input,
    /// `MQOO_OUTPUT`: puts.
    Output,
    /// `MQOO_BROWSE | MQOO_INPUT_AS_Q_DEF`: browse with locks, then get.
    BrowseInput,
}

impl Access {
    const fn options(self) -> i32 {
        match self {
            Self::Input => mq::MQOO_INPUT_AS_Q_DEF,
            Self::Output => mq::MQOO_OUTPUT,
            Self::BrowseInput => mq::MQOO_BROWSE | mq::MQOO_INPUT_AS_Q_DEF,
        }
    }
}

/// MQOPEN of local queue `name` on `hconn`: the object handle.
///
/// # Errors
/// The reason code MQOPEN returned (2017 past MAXHANDS, 2085 for an unknown queue, ...).
pub fn open_queue<V: Verbs + ?Sized>(verbs: &V, hconn: i32, name: &str, access: Access) -> Result<i32, i32> {
    let object = ObjectRef {
        object_type: mq::MQOT_Q,
        name: name.to_owned(),
    };
    verbs.open(hconn, &object, access.options())
}

/// One MQGET without waiting; the payload (up to 64 bytes) is discarded.
fn get_one<V: Verbs + ?Sized>(verbs: &V, hconn: i32, hobj: i32, options: i32) -> Result<(), i32> {
    let mut md = super::default_md();
    let gmo = GetOptions {
        options: options | mq::MQGMO_NO_WAIT,
        wait_interval: 0,
        match_options: mq::MQMO_NONE,
    };
    verbs.get(hconn, hobj, &mut md, &gmo, &mut [0u8; 64]).map(|_| ())
}

/// Browses the first visible message on `hobj` (opened with [`Access::BrowseInput`]) and
/// locks it to that handle (`MQGMO_BROWSE_FIRST | MQGMO_LOCK`).
///
/// # Errors
/// The reason code MQGET returned (2033 when nothing is visible).
pub fn browse_lock_first<V: Verbs + ?Sized>(verbs: &V, hconn: i32, hobj: i32) -> Result<(), i32> {
    get_one(verbs, hconn, hobj, mq::MQGMO_BROWSE_FIRST | mq::MQGMO_LOCK)
}

/// Gets one message under syncpoint: it stays in `hconn`'s unit of work until MQCMIT or
/// MQBACK.
///
/// # Errors
/// The reason code MQGET returned (2024 past MAXUMSGS, 2033 when the queue is empty).
pub fn get_under_syncpoint<V: Verbs + ?Sized>(verbs: &V, hconn: i32, hobj: i32) -> Result<(), i32> {
    get_one(verbs, hconn, hobj, mq::MQGMO_SYNCPOINT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{ChannelDef, ConnectRequest, FakeConfig, FakeQm, PutSpec, QueueDef};

    fn qm(max_uncommitted: i32) -> (FakeQm, i32) {
        let mut config = FakeConfig::default();
        config.queue_manager.max_uncommitted = max_uncommitted;
        config.channels.push(ChannelDef::new("APP.SVRCONN"));
        config.queues.push(QueueDef::new("Q"));
        let qm = FakeQm::new(config);
        for _ in 0..3 {
            qm.put_message("Q", PutSpec::text("m")).expect("put");
        }
        let hconn = Verbs::connect(&qm, &ConnectRequest::default()).expect("connect");
        (qm, hconn)
    }

    #[test]
    fn browse_locks_hide_a_message_per_handle_until_close() {
        let (qm, hconn) = qm(10);
        let a = open_queue(&qm, hconn, "Q", Access::BrowseInput).expect("open");
        let b = open_queue(&qm, hconn, "Q", Access::BrowseInput).expect("open");
        browse_lock_first(&qm, hconn, a).expect("lock one");
        browse_lock_first(&qm, hconn, b).expect("lock another");
        let states: Vec<&str> = qm.browse("Q").iter().map(|m| m.state).collect();
        assert_eq!(states, ["locked", "locked", "visible"]);
        assert_eq!(open_queue(&qm, hconn, "NOPE", Access::Output), Err(2085));
    }

    #[test]
    fn gets_under_syncpoint_stop_at_maxumsgs() {
        let (qm, hconn) = qm(2);
        let h = open_queue(&qm, hconn, "Q", Access::Input).expect("open");
        get_under_syncpoint(&qm, hconn, h).expect("first");
        get_under_syncpoint(&qm, hconn, h).expect("second");
        assert_eq!(get_under_syncpoint(&qm, hconn, h), Err(2024));
        assert_eq!(qm.depth("Q"), Some(1));
    }
}
