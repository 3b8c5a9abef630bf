//! Browse cursors, locks, matching, delivery order and truncation, through `mqi`.

use mqi::constants::*;
use mqi::get::MatchOptions;
use mqi::types::{CorrelationId, MQGMO, MessageId};
use mqpilot::fake::{Delivery, FakeConfig, FakeQm, PutSpec, QueueDef};

use crate::support::*;

/// A queue manager with one queue, Q, in `delivery` order (shared with `fake_hidden`).
pub fn fake(delivery: Delivery) -> FakeQm {
    let mut config = FakeConfig::default();
    config.queues.push(QueueDef::new("Q").delivery(delivery));
    FakeQm::new(config)
}

/// Puts (text, priority) messages on Q; their message ids.
pub fn seed(qm: &FakeQm, items: &[(&str, i32)]) -> Vec<[u8; 24]> {
    items
        .iter()
        .map(|(text, priority)| {
            qm.put_message(
                "Q",
                PutSpec {
                    priority: Some(*priority),
                    ..PutSpec::text(*text)
                },
            )
            .unwrap()
        })
        .collect()
}

/// A get's payload as text.
pub fn text(r: Result<Vec<u8>, i32>) -> Result<String, i32> {
    r.map(|d| String::from_utf8(d).unwrap())
}

#[test]
fn priority_delivery_orders_by_priority_then_arrival_and_fifo_by_arrival() {
    let qm = fake(Delivery::Priority);
    seed(&qm, &[("low1", 1), ("high", 7), ("low2", 1)]);
    let conn = connect(&qm);
    let q = open(&conn, "Q", MQOO_INPUT_SHARED).unwrap();
    let order: Vec<_> = (0..3).map(|_| text(get(&q, MQGMO_NO_SYNCPOINT)).unwrap()).collect();
    assert_eq!(order, ["high", "low1", "low2"]);

    let qm = fake(Delivery::Fifo);
    seed(&qm, &[("low1", 1), ("high", 7), ("low2", 1)]);
    let conn = connect(&qm);
    let q = open(&conn, "Q", MQOO_INPUT_SHARED).unwrap();
    let order: Vec<_> = (0..3).map(|_| text(get(&q, MQGMO_NO_SYNCPOINT)).unwrap()).collect();
    assert_eq!(order, ["low1", "high", "low2"]);
}

#[test]
fn browse_first_next_and_under_cursor_leave_messages_on_the_queue() {
    let qm = fake(Delivery::Priority);
    seed(&qm, &[("a", 0), ("b", 0)]);
    let conn = connect(&qm);
    let q = open(&conn, "Q", MQOO_BROWSE | MQOO_INPUT_SHARED).unwrap();
    assert_eq!(
        text(get(&q, MQGMO_BROWSE_NEXT)).unwrap(),
        "a",
        "a fresh cursor sits before the first message"
    );
    assert_eq!(text(get(&q, MQGMO_BROWSE_NEXT)).unwrap(), "b");
    assert_eq!(get(&q, MQGMO_BROWSE_NEXT), Err(MQRC_NO_MSG_AVAILABLE.0));
    assert_eq!(text(get(&q, MQGMO_BROWSE_MSG_UNDER_CURSOR)).unwrap(), "b");
    assert_eq!(text(get(&q, MQGMO_BROWSE_FIRST)).unwrap(), "a");
    assert_eq!(qm.depth("Q"), Some(2));
    // Getting the message under the cursor removes exactly that one.
    assert_eq!(text(get(&q, MQGMO_MSG_UNDER_CURSOR)).unwrap(), "a");
    assert_eq!(get(&q, MQGMO_MSG_UNDER_CURSOR), Err(MQRC_NO_MSG_UNDER_CURSOR.0));
    assert_eq!(get(&q, MQGMO_BROWSE_MSG_UNDER_CURSOR), Err(MQRC_NO_MSG_UNDER_CURSOR.0));
    assert_eq!(qm.depth("Q"), Some(1));
}

#[test]
fn each_handle_has_its_own_cursor() {
    let qm = fake(Delivery::Priority);
    seed(&qm, &[("a", 0), ("b", 0)]);
    let conn = connect(&qm);
    let h1 = open(&conn, "Q", MQOO_BROWSE).unwrap();
    let h2 = open(&conn, "Q", MQOO_BROWSE).unwrap();
    assert_eq!(text(get(&h1, MQGMO_BROWSE_NEXT)).unwrap(), "a");
    assert_eq!(text(get(&h1, MQGMO_BROWSE_NEXT)).unwrap(), "b");
    assert_eq!(text(get(&h2, MQGMO_BROWSE_NEXT)).unwrap(), "a");
}

#[test]
fn a_lock_hides_the_message_from_other_handles_until_released() {
    let qm = fake(Delivery::Priority);
    seed(&qm, &[("a", 0), ("b", 0)]);
    let c1 = connect(&qm);
    let c2 = connect(&qm);
    let locker = open(&c1, "Q", MQOO_BROWSE | MQOO_INPUT_SHARED).unwrap();
    let other = open(&c2, "Q", MQOO_BROWSE | MQOO_INPUT_SHARED).unwrap();
    assert_eq!(text(get(&locker, MQGMO_BROWSE_FIRST | MQGMO_LOCK)).unwrap(), "a");
    assert_eq!(
        text(get(&other, MQGMO_BROWSE_FIRST)).unwrap(),
        "b",
        "the locked message is hidden"
    );
    // The locking handle still sees it.
    assert_eq!(text(get(&locker, MQGMO_BROWSE_MSG_UNDER_CURSOR)).unwrap(), "a");
    // UNLOCK releases it; a second UNLOCK warns 2209.
    assert_eq!(get(&locker, MQGMO_UNLOCK).unwrap(), b"");
    assert_eq!(
        rc(locker.get_data(&MQGMO_UNLOCK, &mut [0u8; 4][..])),
        MQRC_NO_MSG_LOCKED.0
    );
    assert_eq!(text(get(&other, MQGMO_BROWSE_FIRST)).unwrap(), "a");
}

#[test]
fn one_lock_per_handle_and_moving_the_cursor_releases_it() {
    let qm = fake(Delivery::Priority);
    seed(&qm, &[("a", 0), ("b", 0)]);
    let c1 = connect(&qm);
    let c2 = connect(&qm);
    let locker = open(&c1, "Q", MQOO_BROWSE).unwrap();
    let other = open(&c2, "Q", MQOO_INPUT_SHARED).unwrap();
    assert_eq!(text(get(&locker, MQGMO_BROWSE_FIRST | MQGMO_LOCK)).unwrap(), "a");
    assert_eq!(text(get(&locker, MQGMO_BROWSE_NEXT | MQGMO_LOCK)).unwrap(), "b");
    let states: Vec<_> = qm.browse("Q").iter().map(|m| m.state).collect();
    assert_eq!(states, ["visible", "locked"]);
    assert_eq!(text(get(&other, MQGMO_NO_SYNCPOINT)).unwrap(), "a");
    assert_eq!(get(&other, MQGMO_NO_SYNCPOINT), Err(MQRC_NO_MSG_AVAILABLE.0));
}

#[test]
fn close_and_a_destructive_get_release_the_lock() {
    let qm = fake(Delivery::Priority);
    seed(&qm, &[("a", 0), ("b", 0)]);
    let c1 = connect(&qm);
    let c2 = connect(&qm);
    let other = open(&c2, "Q", MQOO_BROWSE).unwrap();
    {
        let locker = open(&c1, "Q", MQOO_BROWSE).unwrap();
        assert!(get(&locker, MQGMO_BROWSE_FIRST | MQGMO_LOCK).is_ok());
        assert_eq!(text(get(&other, MQGMO_BROWSE_FIRST)).unwrap(), "b");
        let _ = locker.close().unwrap();
    }
    assert_eq!(text(get(&other, MQGMO_BROWSE_FIRST)).unwrap(), "a");
    let locker = open(&c1, "Q", MQOO_BROWSE | MQOO_INPUT_SHARED).unwrap();
    assert!(get(&locker, MQGMO_BROWSE_FIRST | MQGMO_LOCK).is_ok());
    assert_eq!(text(get(&locker, MQGMO_MSG_UNDER_CURSOR)).unwrap(), "a");
    assert_eq!(
        rc(locker.get_data(&MQGMO_UNLOCK, &mut [0u8; 4][..])),
        MQRC_NO_MSG_LOCKED.0
    );
}

#[test]
fn lock_needs_a_browse_option() {
    let qm = fake(Delivery::Priority);
    let conn = connect(&qm);
    let q = open(&conn, "Q", MQOO_BROWSE | MQOO_INPUT_SHARED).unwrap();
    assert_eq!(get(&q, MQGMO_LOCK), Err(MQRC_OPTIONS_ERROR.0));
    assert_eq!(
        get(&q, MQGMO_BROWSE_FIRST | MQGMO_BROWSE_NEXT),
        Err(MQRC_OPTIONS_ERROR.0)
    );
}

#[test]
fn match_on_message_id_and_correlation_id() {
    let qm = fake(Delivery::Priority);
    let ids = seed(&qm, &[("a", 0), ("b", 0), ("c", 0)]);
    let correl = [7u8; 24];
    qm.put_message(
        "Q",
        PutSpec {
            correl_id: Some(correl),
            ..PutSpec::text("d")
        },
    )
    .unwrap();
    let conn = connect(&qm);
    let q = open(&conn, "Q", MQOO_INPUT_SHARED).unwrap();
    let mut buf = [0u8; 16];
    let by_id = q
        .get_data(&(MQGMO_NO_SYNCPOINT, MessageId(ids[1])), &mut buf[..])
        .unwrap();
    assert_eq!(by_id.discard_warning().unwrap(), b"b");
    let by_correl = q
        .get_data(&(MQGMO_NO_SYNCPOINT, CorrelationId(correl)), &mut buf[..])
        .unwrap();
    assert_eq!(by_correl.discard_warning().unwrap(), b"d");
    let none = q
        .get_data(
            &(
                MQGMO_NO_SYNCPOINT,
                MatchOptions {
                    msg_id: Some(&MessageId([9; 24])),
                    ..MatchOptions::default()
                },
            ),
            &mut buf[..],
        )
        .unwrap();
    assert!(
        none.discard_warning().is_none(),
        "no match is 2033, which mqi reports as None"
    );
    assert_eq!(qm.depth("Q"), Some(2));
}

#[test]
fn too_small_buffer_gives_2080_and_keeps_the_message_unless_truncation_is_accepted() {
    let qm = fake(Delivery::Priority);
    seed(&qm, &[("0123456789", 0)]);
    let conn = connect(&qm);
    let q = open(&conn, "Q", MQOO_INPUT_SHARED).unwrap();
    let mut small = [0u8; 4];
    let r = q.get_data(&MQGMO_NO_SYNCPOINT, &mut small[..]);
    assert_eq!(rc(r), MQRC_TRUNCATED_MSG_FAILED.0);
    assert_eq!(qm.depth("Q"), Some(1), "2080 leaves the message");
    let opts: MQGMO = MQGMO_NO_SYNCPOINT | MQGMO_ACCEPT_TRUNCATED_MSG;
    let r = q.get_data(&opts, &mut small[..]);
    assert_eq!(rc(r), MQRC_TRUNCATED_MSG_ACCEPTED.0);
    assert_eq!(qm.depth("Q"), Some(0), "2079 consumes the message: its tail is lost");
}

#[test]
fn syncpoint_hides_gets_and_puts_until_commit() {
    let qm = fake(Delivery::Priority);
    seed(&qm, &[("a", 0)]);
    let c1 = connect(&qm);
    let c2 = connect(&qm);
    let q1 = open(&c1, "Q", MQOO_INPUT_SHARED | MQOO_OUTPUT).unwrap();
    let q2 = open(&c2, "Q", MQOO_INPUT_SHARED | MQOO_BROWSE).unwrap();
    assert!(get(&q1, MQGMO_SYNCPOINT).is_ok());
    assert_eq!(rc(q1.put_message(&MQPMO_SYNCPOINT, "new")), 0);
    assert_eq!(get(&q2, MQGMO_BROWSE_FIRST), Err(MQRC_NO_MSG_AVAILABLE.0));
    let status = qm.queue_status("Q").unwrap();
    assert_eq!(
        (status.depth, status.uncommitted),
        (1, 2),
        "CURDEPTH counts the uncommitted put only"
    );
    let _ = mqi::Syncpoint::new(&c1).commit().unwrap();
    assert_eq!(text(get(&q2, MQGMO_NO_SYNCPOINT)).unwrap(), "new");
    assert_eq!(qm.depth("Q"), Some(0));
}
