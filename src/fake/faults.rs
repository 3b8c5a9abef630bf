//! Planned failures of MQI calls, and what each leaves behind, as MQ's failure would.
//!
//! A failure planned with [`FakeQm::fail_next`] answers instead of the call, which never
//! runs; one planned with [`FakeQm::fail_after`] answers after the call ran and took effect,
//! as when a client's connection fails between the queue manager acting and its reply
//! arriving. Either way the connection is then left as MQ leaves it after that reason code
//! ([`State::apply_failure`]): a connection-ending reason breaks it, 2003 on MQGET, MQPUT or
//! MQPUT1 leaves a unit of work that can only be backed out, 2003 on MQCMIT backs it out, and
//! a failed MQDISC ends the connection all the same.

use libmqm_sys as mq;

use super::FakeQm;
use super::state::{Reason, State, Verb, breaks_connection};

/// When a planned failure answers: instead of the call, or after the call took effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timing {
    Instead,
    After,
}

/// The next `remaining` calls of `verb` fail with `reason`, at `timing`.
struct Fault {
    verb: Verb,
    timing: Timing,
    remaining: u32,
    reason: Reason,
}

/// Every failure planned and not yet used, in the order planned.
#[derive(Default)]
pub(crate) struct Faults(Vec<Fault>);

impl Faults {
    fn plan(&mut self, verb: Verb, timing: Timing, n: u32, reason: Reason) {
        if n > 0 {
            self.0.push(Fault {
                verb,
                timing,
                remaining: n,
                reason,
            });
        }
    }

    /// Uses one failure planned for `verb` at `timing`, if there is one: its reason code.
    pub fn take(&mut self, verb: Verb, timing: Timing) -> Option<Reason> {
        let fault = self.0.iter_mut().find(|f| f.verb == verb && f.timing == timing)?;
        fault.remaining -= 1;
        let reason = fault.reason;
        self.0.retain(|f| f.remaining > 0);
        Some(reason)
    }

    /// Whether any failure of `verb` is planned, at either timing.
    pub fn planned(&self, verb: Verb) -> bool {
        self.0.iter().any(|f| f.verb == verb)
    }
}

impl FakeQm {
    /// Makes the next `n` calls of `verb` fail with `reason` instead of running. The
    /// connection is left as MQ leaves it after that reason code: a connection-ending one
    /// (2009, 2162, 2203, 2546, 2548, 2556) breaks it; 2003 on MQGET, MQPUT or MQPUT1 leaves
    /// a unit of work that cannot be committed (later gets and puts under syncpoint fail
    /// with 2003 too; MQBACK backs it out; MQCMIT and MQDISC back it out and answer 2003 as
    /// a warning); 2003 on MQCMIT backs the unit of work out and is a warning, as MQ's
    /// failed commit is; any failure of MQDISC still ends the connection, its unit of work
    /// backed out (2003 a warning).
    pub fn fail_next(&self, verb: Verb, n: u32, reason: i32) {
        self.lock().faults.plan(verb, Timing::Instead, n, reason);
    }

    /// Makes the next `n` calls of `verb` run, take effect, and then fail with `reason`: the
    /// reply was lost, so the application cannot tell whether the call happened, as a client
    /// can meet on a real network. A put outside syncpoint has landed, a get outside syncpoint
    /// has removed its message, a commit has committed. The connection is then left as after
    /// [`FakeQm::fail_next`] with that reason: a connection-ending reason breaks it, which
    /// backs out what a get or put under syncpoint did; an MQCONNX that fails so ends the
    /// connection it made.
    ///
    /// # Panics
    /// For MQCMIT with 2003 (MQRC_BACKED_OUT): MQ never says "backed out" of work it
    /// committed (a lost reply is 2009 or the like); plan MQCMIT's 2003 with
    /// [`FakeQm::fail_next`].
    pub fn fail_after(&self, verb: Verb, n: u32, reason: i32) {
        assert!(
            !(verb == Verb::Cmit && reason == mq::MQRC_BACKED_OUT),
            "MQ does not answer 2003 for an MQCMIT that committed: plan it with fail_next"
        );
        self.lock().faults.plan(verb, Timing::After, n, reason);
    }

    /// The next `n` MQCMITs commit and then fail with `reason`:
    /// [`FakeQm::fail_after`] for MQCMIT.
    pub fn fail_after_commit(&self, n: u32, reason: i32) {
        self.fail_after(Verb::Cmit, n, reason);
    }
}

impl State {
    /// Records the outcome of a call of `verb` on `hconn` (the connection an MQCONNX made)
    /// and passes it through, unless a failure is planned for after the call: then that
    /// failure is applied, recorded and answered instead.
    pub fn finish<T>(
        &mut self,
        verb: Verb,
        hconn: Option<i32>,
        result: Result<T, Reason>,
        warning: Reason,
    ) -> Result<T, Reason> {
        match self.faults.take(verb, Timing::After) {
            Some(reason) => {
                if let Some(hconn) = hconn {
                    self.apply_failure(verb, hconn, reason);
                }
                self.record(verb, Err(reason), 0)
            }
            None => self.record(verb, result, warning),
        }
    }

    /// Leaves connection `hconn` as MQ would after `verb` failed on it with `reason`.
    pub fn apply_failure(&mut self, verb: Verb, hconn: i32, reason: Reason) {
        if breaks_connection(reason) {
            self.break_conn(hconn, reason);
        }
        match (verb, reason) {
            // MQ's text: the unit of work met an error that prevents its commit; the
            // application must back it out (MQCMIT does the same, with 2003).
            (Verb::Get | Verb::Put | Verb::Put1, mq::MQRC_BACKED_OUT) => {
                if let Ok(conn) = self.live(hconn) {
                    conn.backout_only = true;
                }
            }
            // MQ failed to commit (its log full, say) and backed the unit of work out.
            (Verb::Cmit, mq::MQRC_BACKED_OUT) if self.live(hconn).is_ok() => self.backout_uow(hconn),
            // A connection whose MQDISC failed, or whose MQCONNX's reply never came, is gone
            // for its application all the same: nothing is left behind.
            (Verb::Disc | Verb::Connx, _) => self.end_conn(hconn),
            _ => {}
        }
    }
}
