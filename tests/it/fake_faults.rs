//! Injected failures and what they leave behind, through `mqi` on the fake: a unit of work
//! that can only back out, a failed MQDISC, a broken channel instance, a call that took effect
//! before its reply was lost.

use mqi::constants::*;
use mqi::result::ResultComp;
use mqi::{Object, Syncpoint};
use mqpilot::fake::{FakeQm, PutSpec, Verb};

use crate::support::*;

/// MQCC and MQRC of an mqi result.
fn outcome<T>(r: ResultComp<T>) -> (i32, i32) {
    match r {
        Ok(c) => c.warning().map_or((MQCC_OK.0, 0), |(rc, _)| (MQCC_WARNING.0, rc.0)),
        Err(e) => (e.0.0, e.2.0),
    }
}

const FAILED_2003: (i32, i32) = (MQCC_FAILED.0, MQRC_BACKED_OUT.0);
const WARNING_2003: (i32, i32) = (MQCC_WARNING.0, MQRC_BACKED_OUT.0);

/// Each message on `queue`: payload, backout count and state.
fn messages(qm: &FakeQm, queue: &str) -> Vec<(String, i32, &'static str)> {
    qm.browse(queue)
        .into_iter()
        .map(|m| (String::from_utf8_lossy(&m.data).into_owned(), m.backout_count, m.state))
        .collect()
}

/// The qmgr of `support::qm` with `texts` on queue A.
fn qm_with(texts: &[&str]) -> FakeQm {
    let qm = qm();
    for text in texts {
        qm.put_message("A", PutSpec::text(*text)).expect("put");
    }
    qm
}

/// MQPUT under syncpoint on B, MQPUT1 under syncpoint to B, or MQGET under syncpoint on A.
fn call_under_syncpoint(verb: Verb, conn: &Conn, a: &Object<&Conn>, b: &Object<&Conn>) -> (i32, i32) {
    match verb {
        Verb::Put => outcome(b.put_message(&MQPMO_SYNCPOINT, "put")),
        Verb::Put1 => outcome(conn.put_message(&queue("B"), &MQPMO_SYNCPOINT, "put1")),
        _ => match get(a, MQGMO_SYNCPOINT) {
            Ok(_) => (MQCC_OK.0, 0),
            Err(rc) => (MQCC_FAILED.0, rc),
        },
    }
}

#[test]
fn a_get_or_put_failing_with_2003_leaves_a_unit_of_work_that_mqcmit_backs_out() {
    for verb in [Verb::Get, Verb::Put, Verb::Put1] {
        let qm = qm_with(&["one", "two"]);
        let conn = connect(&qm);
        let a = open(&conn, "A", MQOO_INPUT_SHARED).expect("open A");
        let b = open(&conn, "B", MQOO_OUTPUT).expect("open B");
        assert_eq!(get(&a, MQGMO_SYNCPOINT), Ok(b"one".to_vec()));
        qm.fail_next(verb, 1, MQRC_BACKED_OUT.0);
        assert_eq!(call_under_syncpoint(verb, &conn, &a, &b), FAILED_2003, "{verb}");
        assert_eq!(
            outcome(Syncpoint::new(&conn).commit()),
            WARNING_2003,
            "{verb}: the unit of work cannot be committed"
        );
        assert_eq!(
            messages(&qm, "A"),
            [("one".into(), 1, "visible"), ("two".into(), 0, "visible")],
            "{verb}: the get was backed out, not committed"
        );
        assert_eq!(qm.depth("B"), Some(0), "{verb}");
        // The next unit of work is a new one, and commits.
        assert_eq!(get(&a, MQGMO_SYNCPOINT), Ok(b"one".to_vec()));
        assert_eq!(outcome(Syncpoint::new(&conn).commit()), (MQCC_OK.0, 0), "{verb}");
        assert_eq!(messages(&qm, "A"), [("two".into(), 0, "visible")], "{verb}");
    }
}

#[test]
fn a_unit_of_work_that_met_2003_refuses_more_work_until_mqback() {
    let qm = qm_with(&["one", "two", "three"]);
    let conn = connect(&qm);
    let a = open(&conn, "A", MQOO_INPUT_SHARED).expect("open A");
    let b = open(&conn, "B", MQOO_OUTPUT).expect("open B");
    assert_eq!(get(&a, MQGMO_SYNCPOINT), Ok(b"one".to_vec()));
    qm.fail_next(Verb::Get, 1, MQRC_BACKED_OUT.0);
    assert_eq!(get(&a, MQGMO_SYNCPOINT), Err(MQRC_BACKED_OUT.0));
    // Gets and puts in the unit of work keep failing; work outside it goes on.
    assert_eq!(get(&a, MQGMO_SYNCPOINT), Err(MQRC_BACKED_OUT.0));
    assert_eq!(outcome(b.put_message(&MQPMO_SYNCPOINT, "x")), FAILED_2003);
    assert_eq!(put(&b, "outside"), Ok(()));
    assert_eq!(messages(&qm, "A")[0], ("one".into(), 0, "got-uncommitted"));
    assert_eq!(outcome(Syncpoint::new(&conn).backout()), (MQCC_OK.0, 0));
    assert_eq!(messages(&qm, "A")[0], ("one".into(), 1, "visible"));
    assert_eq!(get(&a, MQGMO_SYNCPOINT), Ok(b"one".to_vec()));
    assert_eq!(outcome(Syncpoint::new(&conn).commit()), (MQCC_OK.0, 0));
    assert_eq!(qm.depth("A"), Some(2));
    assert_eq!(qm.depth("B"), Some(1));
}

#[test]
fn mqdisc_of_a_unit_of_work_that_met_2003_backs_it_out_with_a_warning() {
    let qm = qm_with(&["one"]);
    let conn = connect(&qm);
    let a = open(&conn, "A", MQOO_INPUT_SHARED).expect("open A");
    assert_eq!(get(&a, MQGMO_SYNCPOINT), Ok(b"one".to_vec()));
    qm.fail_next(Verb::Put1, 1, MQRC_BACKED_OUT.0);
    assert_eq!(
        outcome(conn.put_message(&queue("B"), &MQPMO_SYNCPOINT, "x")),
        FAILED_2003
    );
    // The handle is left for MQDISC to close.
    std::mem::forget(a);
    assert_eq!(outcome(conn.disconnect()), WARNING_2003);
    assert!(qm.connections().is_empty());
    assert_eq!(messages(&qm, "A"), [("one".into(), 1, "visible")]);
    assert_eq!(qm.queue_status("A").expect("A").ipprocs, 0);
}

#[test]
fn a_failed_mqdisc_backs_out_and_ends_the_connection_all_the_same() {
    for (reason, expected) in [
        (MQRC_BACKED_OUT.0, WARNING_2003),
        (MQRC_UNEXPECTED_ERROR.0, (MQCC_FAILED.0, MQRC_UNEXPECTED_ERROR.0)),
        (MQRC_CONNECTION_BROKEN.0, (MQCC_FAILED.0, MQRC_CONNECTION_BROKEN.0)),
    ] {
        let qm = qm_with(&["one"]);
        let conn = connect_client(qm.library("10.0.0.1"), "APP.SVRCONN").expect("connect");
        let a = open(&conn, "A", MQOO_INPUT_SHARED).expect("open A");
        assert_eq!(get(&a, MQGMO_SYNCPOINT), Ok(b"one".to_vec()));
        std::mem::forget(a);
        qm.fail_next(Verb::Disc, 1, reason);
        assert_eq!(outcome(conn.disconnect()), expected, "{reason}");
        assert!(qm.connections().is_empty(), "{reason}: {:?}", qm.connections());
        assert_eq!(messages(&qm, "A"), [("one".into(), 1, "visible")], "{reason}");
        assert_eq!(qm.queue_status("A").expect("A").ipprocs, 0, "{reason}");
        assert_eq!(qm.channel("APP.SVRCONN").expect("channel").instances, 0, "{reason}");
        assert_eq!(qm.reason_count(Verb::Disc, reason), 1, "{reason}");
    }
}

#[test]
fn breaking_a_channel_instance_breaks_every_conversation_it_carries() {
    let qm = qm_with(&["one", "two", "three"]);
    let lib = qm.library("10.0.0.1");
    let first = connect_client(lib.clone(), "APP.SVRCONN").expect("first");
    let hconn = last_hconn(&qm);
    let second = connect_client(lib, "APP.SVRCONN").expect("second");
    let elsewhere = connect_client(qm.library("10.0.0.2"), "APP.SVRCONN").expect("another process");
    let channel = qm.channel("APP.SVRCONN").expect("channel");
    assert_eq!((channel.instances, channel.conversations), (2, 3));
    let a1 = open(&first, "A", MQOO_INPUT_SHARED).expect("open");
    let a2 = open(&second, "A", MQOO_INPUT_SHARED).expect("open");
    let a3 = open(&elsewhere, "A", MQOO_INPUT_SHARED).expect("open");
    assert_eq!(get(&a1, MQGMO_SYNCPOINT), Ok(b"one".to_vec()));
    assert_eq!(get(&a2, MQGMO_SYNCPOINT), Ok(b"two".to_vec()));

    assert_eq!(qm.break_channel_instance(hconn), 2);
    assert_eq!(get(&a1, MQGMO_NO_SYNCPOINT), Err(MQRC_CONNECTION_BROKEN.0));
    assert_eq!(get(&a2, MQGMO_NO_SYNCPOINT), Err(MQRC_CONNECTION_BROKEN.0));
    assert_eq!(
        messages(&qm, "A"),
        [
            ("one".into(), 1, "visible"),
            ("two".into(), 1, "visible"),
            ("three".into(), 0, "visible")
        ]
    );
    let channel = qm.channel("APP.SVRCONN").expect("channel");
    assert_eq!((channel.instances, channel.conversations), (1, 1));
    // The other process's instance carries on.
    assert_eq!(get(&a3, MQGMO_NO_SYNCPOINT), Ok(b"one".to_vec()));
}

#[test]
fn a_put_whose_reply_is_lost_may_have_landed() {
    let qm = qm();
    let conn = connect(&qm);
    let b = open(&conn, "B", MQOO_OUTPUT).expect("open B");
    qm.fail_after(Verb::Put, 1, MQRC_UNEXPECTED_ERROR.0);
    assert_eq!(put(&b, "first"), Err(MQRC_UNEXPECTED_ERROR.0));
    assert_eq!(messages(&qm, "B"), [("first".into(), 0, "visible")]);
    qm.fail_after(Verb::Put1, 1, MQRC_CONNECTION_BROKEN.0);
    assert_eq!(
        outcome(conn.put_message(&queue("B"), &MQPMO_NO_SYNCPOINT, "second")),
        (MQCC_FAILED.0, MQRC_CONNECTION_BROKEN.0)
    );
    assert_eq!(
        qm.depth("B"),
        Some(2),
        "the MQPUT1 took effect before its reply was lost"
    );
    assert_eq!(
        put(&b, "third"),
        Err(MQRC_CONNECTION_BROKEN.0),
        "the connection is broken"
    );
    assert_eq!(qm.depth("B"), Some(2));
}

#[test]
fn a_get_outside_syncpoint_whose_reply_is_lost_has_removed_the_message() {
    let qm = qm_with(&["one", "two"]);
    let conn = connect(&qm);
    let a = open(&conn, "A", MQOO_INPUT_SHARED).expect("open A");
    qm.fail_after(Verb::Get, 1, MQRC_CONNECTION_BROKEN.0);
    assert_eq!(get(&a, MQGMO_NO_SYNCPOINT), Err(MQRC_CONNECTION_BROKEN.0));
    assert_eq!(messages(&qm, "A"), [("two".into(), 0, "visible")]);
    assert_eq!(qm.reason_count(Verb::Get, MQRC_CONNECTION_BROKEN.0), 1);
}

#[test]
fn a_get_under_syncpoint_whose_reply_is_lost_is_backed_out_with_its_connection() {
    let qm = qm_with(&["one", "two"]);
    let conn = connect(&qm);
    let a = open(&conn, "A", MQOO_INPUT_SHARED).expect("open A");
    qm.fail_after(Verb::Get, 1, MQRC_CONNECTION_BROKEN.0);
    assert_eq!(get(&a, MQGMO_SYNCPOINT), Err(MQRC_CONNECTION_BROKEN.0));
    assert_eq!(
        messages(&qm, "A"),
        [("one".into(), 1, "visible"), ("two".into(), 0, "visible")]
    );
}

#[test]
#[should_panic(expected = "MQ does not answer 2003 for an MQCMIT that committed")]
fn a_commit_is_never_answered_backed_out_after_it_committed() {
    let qm = FakeQm::new(mqpilot::fake::FakeConfig::default());
    qm.fail_after_commit(1, MQRC_BACKED_OUT.0);
}
