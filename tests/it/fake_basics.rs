//! Put, get, syncpoint and backout through `mqi` on the fake.

use mqi::Syncpoint;
use mqi::constants::*;
use mqpilot::fake::{Delivery, PutSpec, QueueDef, Verb};

use crate::support::*;

#[test]
fn backout_returns_message_with_count_plus_one() {
    let qm = qm();
    let conn = connect(&qm);
    let q = open(&conn, "A", MQOO_INPUT_AS_Q_DEF | MQOO_OUTPUT).unwrap();
    put(&q, "hello").unwrap();
    assert_eq!(qm.depth("A"), Some(1));
    let got = get(&q, MQGMO_SYNCPOINT).unwrap();
    assert_eq!(got, b"hello");
    assert_eq!(qm.depth("A"), Some(0));
    let _ = Syncpoint::new(&conn).backout().unwrap();
    let view = qm.browse("A");
    assert_eq!(view.len(), 1);
    assert_eq!(view[0].backout_count, 1);
    assert_eq!(get(&q, MQGMO_NO_SYNCPOINT).unwrap(), b"hello");
    assert_eq!(get(&q, MQGMO_NO_SYNCPOINT), Err(MQRC_NO_MSG_AVAILABLE.0));
}

#[test]
fn get_options_that_contradict_each_other_are_2046() {
    let qm = qm();
    for i in 0..3 {
        qm.put_message("A", PutSpec::text(format!("m{i}"))).unwrap();
    }
    let conn = connect(&qm);
    let q = open(&conn, "A", MQOO_INPUT_SHARED | MQOO_BROWSE).unwrap();
    for options in [
        MQGMO_SYNCPOINT | MQGMO_SYNCPOINT_IF_PERSISTENT,
        MQGMO_NO_SYNCPOINT | MQGMO_SYNCPOINT_IF_PERSISTENT,
        MQGMO_NO_SYNCPOINT | MQGMO_MARK_SKIP_BACKOUT,
        MQGMO_UNLOCK | MQGMO_SYNCPOINT,
    ] {
        assert_eq!(get(&q, options), Err(MQRC_OPTIONS_ERROR.0), "{options:?}");
    }
    assert_eq!(qm.depth("A"), Some(3), "no refused get took a message");
}

#[test]
fn a_fifo_queue_keeps_earlier_messages_ahead_after_msgdlvsq_changes() {
    let qm = qm();
    qm.put_message("B", PutSpec::text("old1")).unwrap();
    qm.put_message("B", PutSpec::text("old2")).unwrap();
    qm.define_queue(QueueDef::new("B").delivery(Delivery::Fifo));
    let mut high = PutSpec::text("new, priority 9");
    high.priority = Some(9);
    qm.put_message("B", high).unwrap();
    let conn = connect(&qm);
    let q = open(&conn, "B", MQOO_INPUT_SHARED).unwrap();
    let order: Vec<Vec<u8>> = (0..3).map(|_| get(&q, MQGMO_NO_SYNCPOINT).unwrap()).collect();
    assert_eq!(order, [&b"old1"[..], b"old2", b"new, priority 9"]);
}

#[test]
fn a_commit_whose_reply_is_lost_has_taken_effect() {
    let qm = qm();
    qm.put_message("A", PutSpec::text("m")).unwrap();
    let conn = connect(&qm);
    let q = open(&conn, "A", MQOO_INPUT_SHARED).unwrap();
    get(&q, MQGMO_SYNCPOINT).unwrap();
    qm.fail_after_commit(1, 2009);
    assert_eq!(rc(Syncpoint::new(&conn).commit()), 2009);
    assert_eq!(
        qm.depth("A"),
        Some(0),
        "the commit took effect before the reply was lost"
    );
    assert_eq!(rc(Syncpoint::new(&conn).commit()), 2009, "the connection is broken");
}

#[test]
fn a_backout_that_raises_the_depth_raises_the_peak_depth() {
    let qm = qm();
    let conn = connect(&qm);
    let q = open(&conn, "A", MQOO_INPUT_SHARED | MQOO_OUTPUT).unwrap();
    put(&q, "one").unwrap();
    put(&q, "two").unwrap();
    get(&q, MQGMO_SYNCPOINT).unwrap();
    put(&q, "three").unwrap();
    assert_eq!(qm.queue_status("A").unwrap().peak_depth, 2);
    let _ = Syncpoint::new(&conn).backout().unwrap();
    let status = qm.queue_status("A").unwrap();
    assert_eq!((status.depth, status.peak_depth), (3, 3));
}

#[test]
fn a_priority_above_9_is_queued_at_9_with_warning_2049_and_kept_in_the_descriptor() {
    let qm = qm();
    let conn = connect(&qm);
    let q = open(&conn, "A", MQOO_INPUT_SHARED | MQOO_OUTPUT).unwrap();
    let with_priority = |priority| {
        mqi::structs::MQMD::new(libmqm_sys::MQMD {
            Priority: priority,
            ..libmqm_default::MQMD_DEFAULT
        })
    };
    let eight = q.put_message(&(MQPMO_NO_SYNCPOINT, with_priority(8)), "eight");
    assert!(eight.unwrap().warning().is_none());
    let twelve = q
        .put_message_with::<mqi::structs::MQMD>(&(MQPMO_NO_SYNCPOINT, with_priority(12)), "twelve")
        .expect("MQ queues the message");
    assert_eq!(
        twelve.warning().map(|(rc, _)| rc.0),
        Some(MQRC_PRIORITY_EXCEEDS_MAXIMUM.0)
    );
    assert_eq!(
        twelve.discard_warning().Priority,
        12,
        "the caller's descriptor keeps it"
    );
    let nine = q.put_message(&(MQPMO_NO_SYNCPOINT, with_priority(9)), "nine");
    assert!(nine.unwrap().warning().is_none());
    let order: Vec<(String, i32)> = qm
        .browse("A")
        .into_iter()
        .map(|m| (String::from_utf8_lossy(&m.data).into_owned(), m.priority))
        .collect();
    assert_eq!(
        order,
        [("twelve".into(), 12), ("nine".into(), 9), ("eight".into(), 8)],
        "queued at 9 in arrival order, stored with the priority asked for"
    );
    assert_eq!(qm.reason_count(Verb::Put, MQRC_PRIORITY_EXCEEDS_MAXIMUM.0), 1);
}

/// Regression: MsgIds counted from 1 in every queue manager, so a restarted fake handed out
/// the ids of its previous run again. MQ's count from the time the queue manager started.
#[test]
fn regression_message_ids_differ_between_starts_and_within_one() {
    let first_of = |qm: &mqpilot::fake::FakeQm| qm.put_message("A", PutSpec::text("x")).unwrap();
    let before = qm();
    let restarted = qm();
    assert_ne!(first_of(&before), first_of(&restarted));

    let mut ids = std::collections::BTreeSet::new();
    let conn = connect(&restarted);
    let q = open(&conn, "A", MQOO_OUTPUT).unwrap();
    for _ in 0..100 {
        put(&q, "y").unwrap();
    }
    drop(q);
    for m in restarted.browse("A") {
        assert_eq!(m.msg_id.len(), 24);
        assert_eq!(&m.msg_id[..7], b"AMQ QM1");
        ids.insert(m.msg_id);
    }
    assert_eq!(ids.len(), 101, "every message its own id");
}

#[test]
fn a_seeded_backout_count_lands_on_the_message_just_put() {
    // Two messages with the same MsgId, the older one queued behind the newer (priority 0
    // after 5): the count goes to the one put, not to the first found with its id.
    let qm = qm();
    let id = [7u8; 24];
    let old = PutSpec {
        msg_id: Some(id),
        priority: Some(0),
        ..PutSpec::text("old")
    };
    qm.put_message("A", old).unwrap();
    let new = PutSpec {
        msg_id: Some(id),
        priority: Some(5),
        backout_count: 4,
        ..PutSpec::text("new")
    };
    qm.put_message("A", new).unwrap();
    let seen: Vec<_> = qm.browse("A").into_iter().map(|m| (m.data, m.backout_count)).collect();
    assert_eq!(seen, vec![(b"new".to_vec(), 4), (b"old".to_vec(), 0)]);
}
