//! MQINQ on the fake: which attributes a queue manager and a queue answer, and how.
//!
//! A selector that is not one of the object's attributes fails the call with 2067
//! (MQRC_SELECTOR_ERROR), as MQ does: a queue manager selector asked of a queue, a queue
//! selector asked of the queue manager, or one the fake does not know. (MQ's warning 2068,
//! MQRC_SELECTOR_NOT_FOR_TYPE, is for a queue selector that another type of queue has, an
//! alias or a remote queue's; the fake's queues are all local.)

use libmqm_sys as mq;

use super::config::{Delivery, Sharing};
use super::state::{Reason, State, Target};
use super::verbs::Attr;

/// MQ takes at most 256 selectors in one MQINQ (2065 otherwise).
pub(super) const MAX_SELECTORS: usize = 256;

pub(super) fn inquire(st: &mut State, hconn: i32, hobj: i32, selectors: &[i32]) -> Result<Vec<Attr>, Reason> {
    let handle = st.live(hconn)?.handles.get(&hobj).ok_or(mq::MQRC_HOBJ_ERROR)?;
    if handle.options & mq::MQOO_INQUIRE == 0 {
        return Err(mq::MQRC_NOT_OPEN_FOR_INQUIRE);
    }
    if selectors.len() > MAX_SELECTORS {
        return Err(mq::MQRC_SELECTOR_COUNT_ERROR);
    }
    let target = handle.target;
    selectors
        .iter()
        .map(|&s| match target {
            Target::QueueManager => inquire_qmgr(st, s),
            Target::Queue(q) => inquire_queue(st, q, s),
        })
        .collect()
}

fn inquire_qmgr(st: &State, selector: i32) -> Result<Attr, Reason> {
    let d = &st.def;
    Ok(match selector {
        mq::MQCA_Q_MGR_NAME => Attr::Text(d.name.clone(), 48),
        mq::MQIA_MAX_HANDLES => Attr::Int(d.max_handles),
        mq::MQIA_MAX_UNCOMMITTED_MSGS => Attr::Int(d.max_uncommitted),
        mq::MQIA_MAX_MSG_LENGTH => Attr::Int(d.max_msg_length),
        mq::MQIA_COMMAND_LEVEL => Attr::Int(mq::MQCMDL_LEVEL_930),
        mq::MQIA_PLATFORM => Attr::Int(mq::MQPL_UNIX),
        _ => return Err(mq::MQRC_SELECTOR_ERROR),
    })
}

fn inquire_queue(st: &State, q: usize, selector: i32) -> Result<Attr, Reason> {
    let queue = &st.queues[q];
    let d = &queue.def;
    let flag = |inhibited: bool| {
        if inhibited {
            mq::MQQA_GET_INHIBITED
        } else {
            mq::MQQA_GET_ALLOWED
        }
    };
    Ok(match selector {
        mq::MQCA_Q_NAME => Attr::Text(d.name.clone(), 48),
        mq::MQCA_Q_DESC => Attr::Text(d.description.clone(), 64),
        mq::MQCA_BACKOUT_REQ_Q_NAME => Attr::Text(d.backout_queue.clone(), 48),
        mq::MQIA_CURRENT_Q_DEPTH => Attr::Int(queue.depth()),
        mq::MQIA_MAX_Q_DEPTH => Attr::Int(d.max_depth),
        mq::MQIA_OPEN_INPUT_COUNT => Attr::Int(i32::try_from(queue.ipprocs).unwrap_or(i32::MAX)),
        mq::MQIA_OPEN_OUTPUT_COUNT => Attr::Int(i32::try_from(queue.opprocs).unwrap_or(i32::MAX)),
        mq::MQIA_BACKOUT_THRESHOLD => Attr::Int(d.backout_threshold),
        // MQQA_GET_INHIBITED and MQQA_PUT_INHIBITED are both 1.
        mq::MQIA_INHIBIT_GET => Attr::Int(flag(!d.get_enabled)),
        mq::MQIA_INHIBIT_PUT => Attr::Int(flag(!d.put_enabled)),
        mq::MQIA_MAX_MSG_LENGTH => Attr::Int(d.max_msg_length),
        mq::MQIA_Q_TYPE => Attr::Int(mq::MQQT_LOCAL),
        mq::MQIA_DEF_INPUT_OPEN_OPTION => Attr::Int(match d.default_share {
            Sharing::Shared => mq::MQOO_INPUT_SHARED,
            Sharing::Exclusive => mq::MQOO_INPUT_EXCLUSIVE,
        }),
        mq::MQIA_SHAREABILITY => Attr::Int(match d.share {
            Sharing::Shared => mq::MQQA_SHAREABLE,
            Sharing::Exclusive => mq::MQQA_NOT_SHAREABLE,
        }),
        mq::MQIA_MSG_DELIVERY_SEQUENCE => Attr::Int(match d.delivery {
            Delivery::Priority => mq::MQMDS_PRIORITY,
            Delivery::Fifo => mq::MQMDS_FIFO,
        }),
        mq::MQIA_DEF_PRIORITY => Attr::Int(d.default_priority),
        mq::MQIA_DEF_PERSISTENCE => Attr::Int(i32::from(d.default_persistent)),
        _ => return Err(mq::MQRC_SELECTOR_ERROR),
    })
}
