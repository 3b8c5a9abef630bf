//! Messages a handle cannot see (locked by others, put or got in another unit of work) and
//! the one locked message a handle does see, mixed with visible ones: delivery order, depth
//! and matching stay MQ's whichever state each message is in.

use mqi::constants::*;
use mqi::types::MessageId;
use mqpilot::fake::{Delivery, FakeQm};

use super::fake_browse::{seed, text};

use crate::support::*;

fn fake() -> FakeQm {
    super::fake_browse::fake(Delivery::Priority)
}

#[test]
fn a_destructive_get_takes_its_own_locked_message_in_delivery_order() {
    let qm = fake();
    seed(&qm, &[("a", 0), ("b", 0), ("c", 0)]);
    let c1 = connect(&qm);
    let c2 = connect(&qm);
    let locker = open(&c1, "Q", MQOO_BROWSE | MQOO_INPUT_SHARED).unwrap();
    let other = open(&c2, "Q", MQOO_BROWSE | MQOO_INPUT_SHARED).unwrap();
    // `other` locks "a"; `locker` locks "b" (the first it sees).
    assert_eq!(text(get(&other, MQGMO_BROWSE_FIRST | MQGMO_LOCK)).unwrap(), "a");
    assert_eq!(text(get(&locker, MQGMO_BROWSE_FIRST | MQGMO_LOCK)).unwrap(), "b");
    // A visible message of higher priority put now comes before its own locked "b".
    seed(&qm, &[("urgent", 5)]);
    assert_eq!(text(get(&locker, MQGMO_NO_SYNCPOINT)).unwrap(), "urgent");
    // Then its own locked "b" comes before the visible "c"; "a" stays with `other`.
    assert_eq!(text(get(&locker, MQGMO_NO_SYNCPOINT)).unwrap(), "b");
    assert_eq!(
        rc(locker.get_data(&MQGMO_UNLOCK, &mut [0u8; 4][..])),
        MQRC_NO_MSG_LOCKED.0,
        "the destructive get released the lock"
    );
    assert_eq!(text(get(&locker, MQGMO_NO_SYNCPOINT)).unwrap(), "c");
    assert_eq!(get(&locker, MQGMO_NO_SYNCPOINT), Err(MQRC_NO_MSG_AVAILABLE.0));
    let states: Vec<_> = qm.browse("Q").iter().map(|m| m.state).collect();
    assert_eq!(states, ["locked"]);
    assert_eq!(qm.depth("Q"), Some(1), "a locked message counts in CURDEPTH");
}

#[test]
fn matching_by_message_id_sees_its_own_lock_and_not_another_handles() {
    let qm = fake();
    let ids = seed(&qm, &[("a", 0), ("b", 0)]);
    let c1 = connect(&qm);
    let c2 = connect(&qm);
    let locker = open(&c1, "Q", MQOO_BROWSE | MQOO_INPUT_SHARED).unwrap();
    let other = open(&c2, "Q", MQOO_BROWSE | MQOO_INPUT_SHARED).unwrap();
    assert_eq!(text(get(&locker, MQGMO_BROWSE_FIRST | MQGMO_LOCK)).unwrap(), "a");
    let mut buf = [0u8; 8];
    let by_id = other
        .get_data(&(MQGMO_NO_SYNCPOINT, MessageId(ids[0])), &mut buf[..])
        .unwrap();
    assert!(
        by_id.discard_warning().is_none(),
        "another handle's lock hides it: 2033"
    );
    let by_id = locker
        .get_data(&(MQGMO_SYNCPOINT, MessageId(ids[0])), &mut buf[..])
        .unwrap();
    assert_eq!(by_id.discard_warning().unwrap(), b"a");
    // Backed out, it returns visible to all, in its place, with BackoutCount 1.
    let _ = mqi::Syncpoint::new(&c1).backout().unwrap();
    let view = qm.browse("Q");
    assert_eq!(
        view.iter()
            .map(|m| (m.data.as_slice(), m.state, m.backout_count))
            .collect::<Vec<_>>(),
        [(&b"a"[..], "visible", 1), (&b"b"[..], "visible", 0)]
    );
    assert_eq!(text(get(&other, MQGMO_BROWSE_FIRST)).unwrap(), "a");
}

#[test]
fn committed_and_unlocked_messages_return_to_their_place_in_delivery_order() {
    let qm = fake();
    let c1 = connect(&qm);
    let c2 = connect(&qm);
    let producer = open(&c1, "Q", MQOO_OUTPUT).unwrap();
    let locker = open(&c1, "Q", MQOO_BROWSE).unwrap();
    let reader = open(&c2, "Q", MQOO_BROWSE | MQOO_INPUT_SHARED).unwrap();
    // Put under syncpoint first, then a visible one and one to lock.
    assert_eq!(rc(producer.put_message(&MQPMO_SYNCPOINT, "first")), 0);
    seed(&qm, &[("second", 0), ("third", 0)]);
    assert_eq!(text(get(&locker, MQGMO_BROWSE_FIRST | MQGMO_LOCK)).unwrap(), "second");
    assert_eq!(text(get(&reader, MQGMO_BROWSE_FIRST)).unwrap(), "third");
    assert_eq!(
        qm.queue_status("Q").map(|s| (s.depth, s.uncommitted)),
        Some((3, 1)),
        "CURDEPTH counts the uncommitted put and the locked message"
    );
    let _ = mqi::Syncpoint::new(&c1).commit().unwrap();
    assert_eq!(get(&locker, MQGMO_UNLOCK).unwrap(), b"");
    let order: Vec<_> = (0..3)
        .map(|_| text(get(&reader, MQGMO_NO_SYNCPOINT)).unwrap())
        .collect();
    assert_eq!(order, ["first", "second", "third"]);
}

#[test]
fn browse_passes_many_locked_messages_and_a_released_one_returns_in_place() {
    let qm = fake();
    let items: Vec<String> = (0..150).map(|i| format!("m{i}")).collect();
    let refs: Vec<(&str, i32)> = items.iter().map(|t| (t.as_str(), 0)).collect();
    seed(&qm, &refs);
    let c1 = connect(&qm);
    let c2 = connect(&qm);
    // 100 handles each lock the first message they see: m0..m99.
    let mut lockers: Vec<_> = (0..100)
        .map(|i| {
            let h = open(&c1, "Q", MQOO_BROWSE).unwrap();
            assert_eq!(text(get(&h, MQGMO_BROWSE_FIRST | MQGMO_LOCK)).unwrap(), format!("m{i}"));
            h
        })
        .collect();
    let reader = open(&c2, "Q", MQOO_BROWSE).unwrap();
    assert_eq!(text(get(&reader, MQGMO_BROWSE_FIRST)).unwrap(), "m100");
    assert_eq!(text(get(&reader, MQGMO_BROWSE_NEXT)).unwrap(), "m101");
    // Closing m50's locker releases it: BROWSE_FIRST finds it, BROWSE_NEXT skips the
    // still-locked m51..m99.
    let _ = lockers.remove(50).close().unwrap();
    assert_eq!(text(get(&reader, MQGMO_BROWSE_FIRST)).unwrap(), "m50");
    assert_eq!(text(get(&reader, MQGMO_BROWSE_NEXT)).unwrap(), "m100");
    assert_eq!(qm.depth("Q"), Some(150));
    assert_eq!(qm.browse("Q").iter().filter(|m| m.state == "locked").count(), 99);
}
