//! MQGET on the fake: option checks, browse cursors, locks, syncpoint and truncation.
//!
//! One call of [`try_get`] is one attempt; waiting is the caller's (`FakeQm::get`), which
//! sleeps on the queue's condition variable between attempts. The order of checks is MQ's:
//! connection, handle, options against each other and against the open options, quiescing,
//! get-inhibit, then the message.

use libmqm_sys as mq;

use super::queue::Selector;
use super::state::{Reason, State, Target, Work, unlock};
use super::verbs::{GetOptions, Got};

/// Where an MQGET copies the message: at most BufferLength bytes.
pub(crate) trait Buffer {
    /// BufferLength: the most bytes the caller takes.
    fn capacity(&self) -> usize;
    /// Copies in the message's first bytes (never more than [`Buffer::capacity`]).
    fn fill(&mut self, data: &[u8]);
}

/// The caller's own buffer (the MQI's).
impl Buffer for [u8] {
    fn capacity(&self) -> usize {
        self.len()
    }

    fn fill(&mut self, data: &[u8]) {
        self[..data.len()].copy_from_slice(data);
    }
}

/// A buffer of BufferLength `capacity` that holds only what the message it gets fills, in a
/// vector the caller keeps: the network server's. A client's BufferLength (up to 4 GiB on
/// the wire) then costs memory only for a message that long, not for a get that finds
/// nothing or waits.
pub(crate) struct GrowBuffer<'a> {
    pub capacity: usize,
    pub data: &'a mut Vec<u8>,
}

impl Buffer for GrowBuffer<'_> {
    fn capacity(&self) -> usize {
        self.capacity
    }

    fn fill(&mut self, data: &[u8]) {
        self.data.clear();
        self.data.extend_from_slice(data);
    }
}

const BROWSE_OPTIONS: i32 = mq::MQGMO_BROWSE_FIRST | mq::MQGMO_BROWSE_NEXT | mq::MQGMO_BROWSE_MSG_UNDER_CURSOR;

/// Checks MQGMO options against each other and against how the handle was opened.
fn check_get_options(o: i32, wait_interval: i32, handle_options: i32, input: bool) -> Result<(), Reason> {
    let browse = o & BROWSE_OPTIONS;
    let under_cursor = o & mq::MQGMO_MSG_UNDER_CURSOR != 0;
    let lock = o & mq::MQGMO_LOCK != 0;
    let unlock = o & mq::MQGMO_UNLOCK != 0;
    let syncpoint = o & (mq::MQGMO_SYNCPOINT | mq::MQGMO_SYNCPOINT_IF_PERSISTENT) != 0;
    let unit_of_work = o & (mq::MQGMO_SYNCPOINT | mq::MQGMO_NO_SYNCPOINT | mq::MQGMO_SYNCPOINT_IF_PERSISTENT);
    let bad = browse.count_ones() > 1
        || (browse != 0 && (under_cursor || syncpoint))
        || unit_of_work.count_ones() > 1
        || (o & mq::MQGMO_MARK_SKIP_BACKOUT != 0 && o & mq::MQGMO_NO_SYNCPOINT != 0)
        || (lock && (unlock || browse == 0))
        || (unlock && (browse != 0 || under_cursor || syncpoint || o & mq::MQGMO_WAIT != 0));
    if bad {
        return Err(mq::MQRC_OPTIONS_ERROR);
    }
    if (browse != 0 || under_cursor) && handle_options & mq::MQOO_BROWSE == 0 {
        return Err(mq::MQRC_NOT_OPEN_FOR_BROWSE);
    }
    if browse == 0 && !unlock && !input {
        return Err(mq::MQRC_NOT_OPEN_FOR_INPUT);
    }
    if o & mq::MQGMO_WAIT != 0 && wait_interval < 0 && wait_interval != mq::MQWI_UNLIMITED {
        return Err(mq::MQRC_WAIT_INTERVAL_ERROR);
    }
    Ok(())
}

/// One attempt at an MQGET. `Ok((q, None))` means nothing is there yet (the caller may wait
/// on queue `q`).
pub(super) fn try_get<B: Buffer + ?Sized>(
    st: &mut State,
    hconn: i32,
    hobj: i32,
    md: &mut mq::MQMD,
    gmo: &GetOptions,
    buffer: &mut B,
) -> Result<(usize, Option<Got>), Reason> {
    let o = gmo.options;
    let quiescing = st.check_quiescing(o & mq::MQGMO_FAIL_IF_QUIESCING != 0);
    let max_uncommitted = usize::try_from(st.def.max_uncommitted).unwrap_or(0);
    let State { conns, queues, .. } = st;
    let conn = conns.get_mut(&hconn).ok_or(mq::MQRC_HCONN_ERROR)?;
    if let Some(reason) = conn.broken {
        return Err(reason);
    }
    conn.check_buffer(buffer.capacity())?;
    let handle = conn.handles.get_mut(&hobj).ok_or(mq::MQRC_HOBJ_ERROR)?;
    let Target::Queue(q) = handle.target else {
        return Err(mq::MQRC_NOT_OPEN_FOR_INPUT);
    };
    check_get_options(o, gmo.wait_interval, handle.options, handle.input.is_some())?;
    quiescing?;
    // A unit of work that can only back out takes no more gets (MQ's 2003).
    if o & mq::MQGMO_SYNCPOINT != 0 && conn.backout_only {
        return Err(mq::MQRC_BACKED_OUT);
    }
    let queue = &mut queues[q];
    if o & mq::MQGMO_UNLOCK != 0 {
        return Ok(match handle.locked.take() {
            Some(key) => {
                unlock(queue, key);
                (
                    q,
                    Some(Got {
                        data_length: 0,
                        warning: 0,
                    }),
                )
            }
            None => (
                q,
                Some(Got {
                    data_length: 0,
                    warning: mq::MQRC_NO_MSG_LOCKED,
                }),
            ),
        });
    }
    if !queue.def.get_enabled {
        return Err(mq::MQRC_GET_INHIBITED);
    }
    let viewer = (hconn, hobj);
    let browse = o & BROWSE_OPTIONS;
    let under_cursor = o & (mq::MQGMO_BROWSE_MSG_UNDER_CURSOR | mq::MQGMO_MSG_UNDER_CURSOR) != 0;
    if browse & (mq::MQGMO_BROWSE_FIRST | mq::MQGMO_BROWSE_NEXT) != 0
        && let Some(key) = handle.locked.take()
    {
        // The cursor leaves the locked message, so the lock goes.
        unlock(queue, key);
    }
    let found = if under_cursor {
        let on_cursor = handle.cursor.filter(|k| queue.visible_to(*k, viewer));
        Some(on_cursor.ok_or(mq::MQRC_NO_MSG_UNDER_CURSOR)?)
    } else {
        let after = if browse == mq::MQGMO_BROWSE_NEXT {
            handle.cursor
        } else {
            None
        };
        queue.find(after, viewer, handle.locked, &Selector::from_md(md, gmo.match_options))
    };
    let Some(key) = found else { return Ok((q, None)) };
    let msg = queue.available_mut(key).expect("found above");
    let destructive = browse == 0;
    let syncpoint = destructive
        && (o & mq::MQGMO_SYNCPOINT != 0
            || (o & mq::MQGMO_SYNCPOINT_IF_PERSISTENT != 0 && msg.md.Persistence == mq::MQPER_PERSISTENT));
    if syncpoint && conn.backout_only {
        return Err(mq::MQRC_BACKED_OUT);
    }
    if syncpoint && conn.uow.len() >= max_uncommitted {
        return Err(mq::MQRC_SYNCPOINT_LIMIT_REACHED);
    }
    let data_length = msg.data.len();
    let copied = data_length.min(buffer.capacity());
    buffer.fill(&msg.data[..copied]);
    *md = msg.md;
    let truncated = data_length > buffer.capacity();
    if truncated && o & mq::MQGMO_ACCEPT_TRUNCATED_MSG == 0 {
        // 2080: the message stays where it is; a browse cursor moves onto it so that
        // BROWSE_MSG_UNDER_CURSOR with a bigger buffer can read it again.
        if browse != 0 {
            handle.cursor = Some(key);
        }
        return Ok((
            q,
            Some(Got {
                data_length,
                warning: mq::MQRC_TRUNCATED_MSG_FAILED,
            }),
        ));
    }
    let warning = if truncated { mq::MQRC_TRUNCATED_MSG_ACCEPTED } else { 0 };
    if !destructive {
        handle.cursor = Some(key);
        if o & mq::MQGMO_LOCK != 0 {
            queue.lock(key, hconn, hobj);
            handle.locked = Some(key);
        }
        return Ok((q, Some(Got { data_length, warning })));
    }
    if handle.locked == Some(key) {
        handle.locked = None;
    }
    if syncpoint {
        queue.get_under_syncpoint(key, hconn);
        conn.uow.push(Work::Got(q, key));
    } else {
        queue.remove(key);
    }
    Ok((q, Some(Got { data_length, warning })))
}
