//! When a run ends on its own: `--until-empty`, and `--max-messages N` shared by every poller.
//!
//! The invariant: at most N messages leave their queues for good (committed, or lost without
//! syncpoint), and a poller ends with [`PollEnd::Limit`] only once N have. The room left is a
//! fair (first come, first served) semaphore of N permits: a round claims one before its first
//! MQGET and more only once a message has come, gives back what it did not use, and forgets
//! the permits of the messages that left for good. A poller that finds all the room claimed by
//! batches in flight waits for some to come back, without holding a connection; a poller
//! whose MQGET waits on an idle queue gives its one permit up to such a waiting poller, and
//! once it has room again its wait goes on where it left off.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tokio_util::sync::CancellationToken;

use super::poller::PollEnd;

/// When a run ends on its own.
#[derive(Debug, Default)]
pub struct RunLimits {
    /// Stop each poller at its first empty receive.
    pub until_empty: bool,
    /// The most messages the run takes off its queues; `None` = no limit.
    max_messages: Option<u64>,
    /// Room for messages not yet taken nor claimed; closed once `max_messages` were taken.
    room: Option<Arc<Semaphore>>,
    /// Messages taken off the queues for good.
    taken: AtomicU64,
    /// Pollers waiting for room.
    waiting: AtomicUsize,
}

/// Why a round cannot claim room for a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NoRoom {
    /// `max_messages` messages were taken: the run is over.
    Reached,
    /// The rest of the room is claimed by batches in flight, which may give it back.
    Claimed,
}

/// Room for the messages one round may take, given back when dropped (a round that failed,
/// a poller that went away) unless [`RunLimits::settle`] forgets it.
#[derive(Debug)]
pub(super) struct Claim {
    /// `None` without a limit.
    permit: Option<OwnedSemaphorePermit>,
}

impl Claim {
    /// How many messages it covers; without a limit, any number.
    pub(super) fn room(&self) -> usize {
        self.permit
            .as_ref()
            .map_or(usize::MAX, OwnedSemaphorePermit::num_permits)
    }

    /// Gives back the room past `used` messages at once, so that other pollers can use it
    /// while this batch is delivered.
    pub(super) fn keep(&mut self, used: usize) {
        if let Some(permit) = &mut self.permit
            && permit.num_permits() > used
        {
            drop(permit.split(permit.num_permits() - used));
        }
    }
}

impl RunLimits {
    /// Limits for a run.
    #[must_use]
    pub fn new(until_empty: bool, max_messages: Option<u64>) -> Self {
        let permits = |n: u64| usize::try_from(n).unwrap_or(usize::MAX).min(Semaphore::MAX_PERMITS);
        Self {
            until_empty,
            max_messages,
            room: max_messages.map(|n| Arc::new(Semaphore::new(permits(n)))),
            taken: AtomicU64::new(0),
            waiting: AtomicUsize::new(0),
        }
    }

    /// Room for one message, for a round's first MQGET.
    pub(super) fn claim_one(&self) -> Result<Claim, NoRoom> {
        let Some(room) = &self.room else {
            return Ok(Claim { permit: None });
        };
        match Arc::clone(room).try_acquire_owned() {
            Ok(permit) => Ok(Claim { permit: Some(permit) }),
            Err(TryAcquireError::Closed) => Err(NoRoom::Reached),
            Err(TryAcquireError::NoPermits) => Err(NoRoom::Claimed),
        }
    }

    /// Adds room for up to `want` more messages to `claim`, as much as is free now.
    pub(super) fn claim_more(&self, claim: &mut Claim, want: usize) {
        let (Some(room), Some(held)) = (&self.room, &mut claim.permit) else {
            return;
        };
        loop {
            let n = room.available_permits().min(want);
            let Ok(n32) = u32::try_from(n) else { return };
            if n == 0 {
                return;
            }
            match Arc::clone(room).try_acquire_many_owned(n32) {
                Ok(more) => return held.merge(more),
                // Another poller took some of it in between: try again with what is left.
                Err(TryAcquireError::NoPermits) => {}
                Err(TryAcquireError::Closed) => return,
            }
        }
    }

    /// Ends a round's claim: `taken` of its messages left the queue for good, the rest of
    /// the room goes back. Once `max_messages` were taken, every poller's next claim, and
    /// every wait for room, ends the poller with [`PollEnd::Limit`].
    pub(super) fn settle(&self, mut claim: Claim, taken: usize) {
        let (Some(room), Some(max), Some(held)) = (&self.room, self.max_messages, &mut claim.permit) else {
            return;
        };
        if taken == 0 {
            return;
        }
        if let Some(used) = held.split(taken.min(held.num_permits())) {
            used.forget();
        }
        let before = self.taken.fetch_add(taken as u64, Ordering::AcqRel);
        if before + taken as u64 >= max {
            room.close();
        }
    }

    /// Waits until room for one message comes back (first come, first served), without
    /// holding a connection. [`PollEnd::Limit`] once the run has taken `max_messages`.
    pub(super) async fn wait_for_room(&self, cancel: &CancellationToken) -> Result<Claim, PollEnd> {
        let Some(room) = &self.room else {
            return Ok(Claim { permit: None });
        };
        let _waiting = Waiting::enter(&self.waiting);
        tokio::select! {
            permit = Arc::clone(room).acquire_owned() => match permit {
                Ok(permit) => Ok(Claim { permit: Some(permit) }),
                Err(_) => Err(PollEnd::Limit),
            },
            () = cancel.cancelled() => Err(PollEnd::Cancelled),
        }
    }

    /// Whether a poller waits for room: an MQGET waiting on an idle queue gives its room up.
    pub(super) fn others_waiting(&self) -> bool {
        self.waiting.load(Ordering::Acquire) > 0
    }
}

/// Counts a poller waiting for room until dropped (also when its future is dropped).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Self(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_never_pass_max_messages_and_room_comes_back() {
        let limits = RunLimits::new(false, Some(25));
        let mut first = limits.claim_one().expect("room");
        limits.claim_more(&mut first, 19);
        assert_eq!(first.room(), 20);
        let mut second = limits.claim_one().expect("room");
        limits.claim_more(&mut second, 19);
        assert_eq!(second.room(), 5, "only what is left");
        assert_eq!(limits.claim_one().unwrap_err(), NoRoom::Claimed, "claimed, not taken");
        second.keep(2);
        limits.settle(second, 2);
        limits.settle(first, 20);
        let mut last = limits.claim_one().expect("3 are left");
        limits.claim_more(&mut last, 19);
        assert_eq!(last.room(), 3);
        limits.settle(last, 3);
        assert_eq!(limits.claim_one().unwrap_err(), NoRoom::Reached);
        assert_eq!(
            RunLimits::new(false, None).claim_one().expect("no limit").room(),
            usize::MAX
        );
    }

    #[tokio::test]
    async fn a_poller_waiting_for_room_gets_it_back_or_ends_at_the_limit() {
        let limits = Arc::new(RunLimits::new(false, Some(1)));
        let cancel = CancellationToken::new();
        let held = limits.claim_one().expect("room");
        let waiter = tokio::spawn({
            let (limits, cancel) = (Arc::clone(&limits), cancel.clone());
            async move { limits.wait_for_room(&cancel).await.map(|c| c.room()) }
        });
        while !limits.others_waiting() {
            tokio::task::yield_now().await;
        }
        drop(held);
        assert_eq!(
            waiter.await.unwrap(),
            Ok(1),
            "a round that took nothing gives its room back"
        );
        let held = limits.claim_one().expect("room");
        let waiter = tokio::spawn({
            let (limits, cancel) = (Arc::clone(&limits), cancel.clone());
            async move { limits.wait_for_room(&cancel).await.map(|c| c.room()) }
        });
        limits.settle(held, 1);
        assert_eq!(waiter.await.unwrap(), Err(PollEnd::Limit));
    }
}
