//! Read-ahead of MQGET under syncpoint: which gets qualify, how many messages a client asks
//! for, and the client's store of messages fetched ahead.
//!
//! The invariant: a message fetched ahead sits in the connection's unit of work on the
//! server, hidden from every other handle, until the client either hands it out to one MQGET
//! (then it is that get's message, committed or backed out with the unit of work) or gives
//! it back with a `RELEASE` frame (visible again where it was, backout count unchanged). The
//! client releases before every request it sends while it holds messages, so whatever the
//! server does next (commit, backout, a put that counts against MAXUMSGS, a get on other
//! terms, close, disconnect) sees the unit of work the application's own calls made. It
//! hands nothing out once the server sent a `REVOKE` frame (the link looks before each
//! hand-out): that get goes to the server instead.

use std::collections::VecDeque;
use std::ops::Range;

use libmqm_sys as mq;
use rustc_hash::FxHashMap;

use super::super::verbs::{GetOptions, Got};

/// Default and largest number of messages one MQGET fetches ahead.
pub const DEFAULT_READ_AHEAD: u32 = 64;

/// Most bytes one reply carries ahead (the first message aside; each message counted with
/// its MQMD), and never more than the frame has room for after the first message.
pub(super) const AHEAD_BYTES: usize = 1024 * 1024;

/// The MQGMO options a get may carry and still be read ahead: a plain destructive get under
/// syncpoint, waiting or not. Anything else (browse, lock, unlock, under cursor, accept
/// truncated, mark skip backout, conversion, groups, logical order, ...) goes to the server
/// one call at a time.
const AHEAD_OPTIONS: i32 = mq::MQGMO_SYNCPOINT | mq::MQGMO_WAIT | mq::MQGMO_FAIL_IF_QUIESCING;

/// Whether a get may be served from, and may fetch, messages read ahead: MQGMO_SYNCPOINT,
/// no option besides a wait and FAIL_IF_QUIESCING, and nothing to match (MatchOptions at
/// most message id and correlation id, each all zeros).
#[must_use]
pub(super) fn qualifies(gmo: &GetOptions, md: &mq::MQMD) -> bool {
    let o = gmo.options;
    let m = gmo.match_options;
    o & mq::MQGMO_SYNCPOINT != 0
        && o & !AHEAD_OPTIONS == 0
        && m & !(mq::MQMO_MATCH_MSG_ID | mq::MQMO_MATCH_CORREL_ID) == 0
        && (m & mq::MQMO_MATCH_MSG_ID == 0 || md.MsgId == [0; 24])
        && (m & mq::MQMO_MATCH_CORREL_ID == 0 || md.CorrelId == [0; 24])
}

/// Gets handed out under syncpoint on one handle: in this unit of work and the previous one.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    current: u32,
    previous: u32,
}

/// One connection's read-ahead: what it holds and what it learnt.
#[derive(Debug, Default)]
pub(super) struct ReadAhead {
    /// The server's limit, announced at MQCONNX (0: off).
    limit: u32,
    /// The handle and MQGMO options (without MQGMO_WAIT) the held messages were fetched on.
    terms: (i32, i32),
    /// Held messages in delivery order: MQMD and where the data is in `data`.
    held: VecDeque<(mq::MQMD, Range<usize>)>,
    data: Vec<u8>,
    counts: FxHashMap<i32, Counts>,
    /// Set when a request other than the end of the unit of work released held messages: the
    /// handle, and how many it had handed out by then. Nothing more is read ahead until the
    /// unit of work ends, and that count is what the handle remembers of it, so a bridge that
    /// puts after every get does not fetch and release the rest of its batch at every message.
    interrupted: Option<(i32, u32)>,
    /// Held messages the end of the unit of work gave up, for the MQCMIT or MQBACK request.
    ending: Option<u32>,
}

impl ReadAhead {
    /// Read-ahead up to the server's `limit` messages per get (0: off).
    pub(super) fn new(limit: u32) -> Self {
        Self {
            limit: limit.min(DEFAULT_READ_AHEAD),
            ..Self::default()
        }
    }

    /// How many messages to ask for beyond this get on `hobj`: what is left of the batch the
    /// handle's previous unit of work got, capped by the server's limit. The first unit of
    /// work on a handle reads nothing ahead, and neither does one past its predecessor's size.
    pub(super) fn wanted(&self, hobj: i32) -> u32 {
        if self.interrupted.is_some() {
            return 0;
        }
        let c = self.counts.get(&hobj).copied().unwrap_or_default();
        c.previous.saturating_sub(c.current + 1).min(self.limit)
    }

    /// Whether messages fetched for a get on `hobj` with these options are held.
    pub(super) fn holds(&self, hobj: i32, options: i32) -> bool {
        self.terms == (hobj, options & !mq::MQGMO_WAIT) && !self.held.is_empty()
    }

    /// Hands out the next held message to a qualifying get, as the server's MQGET would:
    /// MQMD, data, DataLength. A message longer than `buffer` is not handed out: 2080 with
    /// its length, and it stays first. `None` when nothing is held for these terms.
    pub(super) fn hand_out(&mut self, hobj: i32, options: i32, md: &mut mq::MQMD, buffer: &mut [u8]) -> Option<Got> {
        if self.terms != (hobj, options & !mq::MQGMO_WAIT) {
            return None;
        }
        let (held_md, range) = self.held.front()?;
        let data = &self.data[range.clone()];
        let copied = data.len().min(buffer.len());
        buffer[..copied].copy_from_slice(&data[..copied]);
        *md = *held_md;
        let data_length = data.len();
        if data_length > buffer.len() {
            return Some(Got {
                data_length,
                warning: mq::MQRC_TRUNCATED_MSG_FAILED,
            });
        }
        self.held.pop_front();
        if self.held.is_empty() {
            self.data.clear();
        }
        self.handed_out(hobj);
        Some(Got {
            data_length,
            warning: 0,
        })
    }

    /// Counts a message handed out under syncpoint on `hobj` in this unit of work.
    pub(super) fn handed_out(&mut self, hobj: i32) {
        self.counts.entry(hobj).or_default().current += 1;
    }

    /// Keeps a message fetched ahead on `hobj` with these options.
    pub(super) fn hold(&mut self, hobj: i32, options: i32, md: mq::MQMD, data: &[u8]) {
        self.terms = (hobj, options & !mq::MQGMO_WAIT);
        let start = self.data.len();
        self.data.extend_from_slice(data);
        self.held.push_back((md, start..self.data.len()));
    }

    /// How many held messages to release before the next request, forgetting them; `None`
    /// when nothing is held. Released for anything but the end of the unit of work, they
    /// interrupt it (see `interrupted`).
    pub(super) fn take_release(&mut self) -> Option<u32> {
        if let Some(n) = self.ending.take() {
            return Some(n);
        }
        let n = self.forget_held()?;
        let hobj = self.terms.0;
        let handed_out = self.counts.get(&hobj).map_or(0, |c| c.current);
        self.interrupted.get_or_insert((hobj, handed_out));
        Some(n)
    }

    fn forget_held(&mut self) -> Option<u32> {
        if self.held.is_empty() {
            return None;
        }
        let n = u32::try_from(self.held.len()).unwrap_or(u32::MAX);
        self.held.clear();
        self.data.clear();
        Some(n)
    }

    /// The unit of work is ending (MQCMIT, MQBACK, before the request): what is held goes
    /// back with that request, and each handle that got messages in it remembers how many
    /// (up to an interruption), for the next one.
    pub(super) fn end_unit_of_work(&mut self) {
        self.ending = self.forget_held();
        let interrupted = self.interrupted.take();
        for (hobj, c) in &mut self.counts {
            if c.current > 0 {
                c.previous = match interrupted {
                    Some((h, n)) if h == *hobj => n,
                    _ => c.current,
                };
                c.current = 0;
            }
        }
    }

    /// The handle was closed.
    pub(super) fn forget(&mut self, hobj: i32) {
        self.counts.remove(&hobj);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gmo(options: i32) -> GetOptions {
        GetOptions {
            options,
            wait_interval: 0,
            match_options: mq::MQMO_MATCH_MSG_ID | mq::MQMO_MATCH_CORREL_ID,
        }
    }

    #[test]
    fn only_plain_gets_under_syncpoint_qualify() {
        let md = libmqm_default::MQMD_DEFAULT;
        assert!(qualifies(&gmo(mq::MQGMO_SYNCPOINT | mq::MQGMO_WAIT), &md));
        assert!(qualifies(&gmo(mq::MQGMO_SYNCPOINT | mq::MQGMO_FAIL_IF_QUIESCING), &md));
        for other in [
            mq::MQGMO_NO_SYNCPOINT,
            mq::MQGMO_SYNCPOINT_IF_PERSISTENT,
            mq::MQGMO_SYNCPOINT | mq::MQGMO_ACCEPT_TRUNCATED_MSG,
            mq::MQGMO_SYNCPOINT | mq::MQGMO_MARK_SKIP_BACKOUT,
            mq::MQGMO_SYNCPOINT | mq::MQGMO_MSG_UNDER_CURSOR,
            mq::MQGMO_SYNCPOINT | mq::MQGMO_CONVERT,
            mq::MQGMO_SYNCPOINT | mq::MQGMO_LOGICAL_ORDER,
            mq::MQGMO_BROWSE_FIRST,
        ] {
            assert!(!qualifies(&gmo(other), &md), "options {other:#x}");
        }
        let mut by_id = md;
        by_id.CorrelId = [1; 24];
        assert!(
            !qualifies(&gmo(mq::MQGMO_SYNCPOINT), &by_id),
            "a correlation id to match"
        );
        let any = GetOptions {
            match_options: mq::MQMO_NONE,
            ..gmo(mq::MQGMO_SYNCPOINT)
        };
        assert!(qualifies(&any, &by_id), "ids are ignored without match options");
        let group = GetOptions {
            match_options: mq::MQMO_MATCH_GROUP_ID,
            ..gmo(mq::MQGMO_SYNCPOINT)
        };
        assert!(!qualifies(&group, &md));
    }

    #[test]
    fn a_handle_asks_for_the_rest_of_its_previous_batch_up_to_the_limit() {
        let mut ahead = ReadAhead::new(64);
        assert_eq!(ahead.wanted(1), 0, "nothing learnt yet");
        for _ in 0..50 {
            ahead.handed_out(1);
        }
        ahead.end_unit_of_work();
        assert_eq!(ahead.wanted(1), 49);
        ahead.handed_out(1);
        assert_eq!(ahead.wanted(1), 48);
        ahead.end_unit_of_work();
        assert_eq!(ahead.wanted(1), 0, "a unit of work of one reads nothing ahead");
        ahead.end_unit_of_work();
        assert_eq!(ahead.wanted(1), 0, "an empty unit of work keeps what was learnt");
        for _ in 0..500 {
            ahead.handed_out(2);
        }
        ahead.end_unit_of_work();
        assert_eq!(ahead.wanted(2), 64, "capped");
        assert_eq!(ReadAhead::new(8).wanted(2), 0);
        ahead.forget(2);
        assert_eq!(ahead.wanted(2), 0);
    }

    #[test]
    fn a_request_in_the_middle_of_a_batch_stops_read_ahead_until_the_unit_of_work_ends() {
        let mut ahead = ReadAhead::new(64);
        let md = libmqm_default::MQMD_DEFAULT;
        for _ in 0..50 {
            ahead.handed_out(1);
        }
        ahead.end_unit_of_work();
        assert_eq!(ahead.take_release(), None, "nothing was held");
        // A bridge: the first get fetches the batch's rest, then puts the message on.
        ahead.handed_out(1);
        for _ in 0..49 {
            ahead.hold(1, mq::MQGMO_SYNCPOINT, md, b"m");
        }
        assert_eq!(ahead.wanted(1), 48);
        assert_eq!(ahead.take_release(), Some(49), "released before the put");
        assert_eq!(ahead.wanted(1), 0, "no more read-ahead in this unit of work");
        for _ in 0..49 {
            ahead.handed_out(1);
        }
        ahead.end_unit_of_work();
        assert_eq!(ahead.take_release(), None);
        assert_eq!(ahead.wanted(1), 0, "the batch is remembered as 1 message");

        // A unit of work that ends holding messages releases them with the MQCMIT, and that
        // is no interruption.
        for _ in 0..50 {
            ahead.handed_out(1);
        }
        ahead.end_unit_of_work();
        ahead.handed_out(1);
        ahead.hold(1, mq::MQGMO_SYNCPOINT, md, b"m");
        ahead.end_unit_of_work();
        assert_eq!(ahead.take_release(), Some(1), "given back with the MQCMIT");
        assert_eq!(ahead.take_release(), None);
        assert_eq!(ahead.wanted(1), 0, "a unit of work of one");
    }

    #[test]
    fn a_message_longer_than_the_buffer_stays_first_with_2080() {
        let mut ahead = ReadAhead::new(64);
        let mut md = libmqm_default::MQMD_DEFAULT;
        md.BackoutCount = 2;
        ahead.hold(1, mq::MQGMO_SYNCPOINT | mq::MQGMO_WAIT, md, b"hello");
        ahead.hold(1, mq::MQGMO_SYNCPOINT | mq::MQGMO_WAIT, md, b"!");
        let mut out = libmqm_default::MQMD_DEFAULT;
        let mut small = [0u8; 3];
        assert_eq!(
            ahead.hand_out(2, mq::MQGMO_SYNCPOINT, &mut out, &mut small),
            None,
            "other handle"
        );
        assert_eq!(
            ahead.hand_out(
                1,
                mq::MQGMO_SYNCPOINT | mq::MQGMO_FAIL_IF_QUIESCING,
                &mut out,
                &mut small
            ),
            None,
            "other options"
        );
        let got = ahead.hand_out(1, mq::MQGMO_SYNCPOINT, &mut out, &mut small);
        assert_eq!(
            got,
            Some(Got {
                data_length: 5,
                warning: mq::MQRC_TRUNCATED_MSG_FAILED
            })
        );
        assert_eq!((&small, out.BackoutCount), (b"hel", 2));
        let mut big = [0u8; 8];
        let got = ahead
            .hand_out(1, mq::MQGMO_SYNCPOINT, &mut out, &mut big)
            .expect("held");
        assert_eq!((got.data_length, got.warning, &big[..5]), (5, 0, &b"hello"[..]));
        assert_eq!(ahead.take_release(), Some(1));
        assert_eq!(ahead.take_release(), None);
        assert_eq!(ahead.hand_out(1, mq::MQGMO_SYNCPOINT, &mut out, &mut big), None);
    }
}
