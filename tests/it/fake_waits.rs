//! Waiting gets: expiry, wake-ups and cancellation.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use mqi::constants::*;
use mqi::get::GetWait;
use mqpilot::fake::{FakeQm, PutSpec};

use crate::support::*;

/// A waiting get on its own thread; sends its outcome.
fn waiter(qm: &FakeQm, wait_ms: i32, extra: mqi::types::MQGMO) -> (mpsc::Receiver<Result<Vec<u8>, i32>>, i32) {
    let (tx, rx) = mpsc::channel();
    let (ready_tx, ready_rx) = mpsc::channel();
    let qm = qm.clone();
    thread::spawn(move || {
        let conn = connect(&qm);
        let q = open(&conn, "A", MQOO_INPUT_SHARED).unwrap();
        ready_tx.send(last_hconn(&qm)).unwrap();
        let mut buf = vec![0u8; 1024];
        let r = match q.get_data(&(MQGMO_NO_SYNCPOINT | extra, GetWait::Wait(wait_ms)), &mut buf[..]) {
            Ok(c) => c.discard_warning().map(<[u8]>::to_vec).ok_or(MQRC_NO_MSG_AVAILABLE.0),
            Err(e) => Err(e.2.0),
        };
        tx.send(r).unwrap();
    });
    (rx, ready_rx.recv().unwrap())
}

/// Waits until `n` gets are blocked on queue A (observed through the fake, not by sleeping).
fn until_waiting(qm: &FakeQm, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while qm.waiting_gets("A") < n {
        assert!(Instant::now() < deadline, "waiters never blocked");
        thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn wait_expires_with_2033_after_the_interval() {
    let qm = qm();
    let conn = connect(&qm);
    let q = open(&conn, "A", MQOO_INPUT_SHARED).unwrap();
    let start = Instant::now();
    let r = rc(q.get_data(&GetWait::Wait(200), &mut [0u8; 8][..]));
    let waited = start.elapsed();
    assert_eq!(r, 0, "mqi turns 2033 into Ok(None)");
    assert_eq!(qm.reason_count(mqpilot::fake::Verb::Get, MQRC_NO_MSG_AVAILABLE.0), 1);
    assert!(waited >= Duration::from_millis(200), "returned after {waited:?}");
    assert!(waited < Duration::from_secs(5), "returned after {waited:?}");
}

#[test]
fn a_put_wakes_exactly_one_of_two_destructive_waiters() {
    let qm = qm();
    let (r1, _) = waiter(&qm, 1500, mqi::types::MQGMO(0));
    let (r2, _) = waiter(&qm, 1500, mqi::types::MQGMO(0));
    until_waiting(&qm, 2);
    qm.put_message("A", PutSpec::text("only")).unwrap();
    let outcomes = [r1.recv().unwrap(), r2.recv().unwrap()];
    let got: Vec<_> = outcomes.iter().filter(|r| r.is_ok()).collect();
    assert_eq!(got.len(), 1, "{outcomes:?}");
    assert!(outcomes.contains(&Err(MQRC_NO_MSG_AVAILABLE.0)), "{outcomes:?}");
}

#[test]
fn breaking_the_connection_cancels_the_wait_with_2009() {
    let qm = qm();
    let (rx, hconn) = waiter(&qm, -1, mqi::types::MQGMO(0));
    until_waiting(&qm, 1);
    qm.break_connection(hconn);
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)).unwrap(),
        Err(MQRC_CONNECTION_BROKEN.0)
    );
}

#[test]
fn get_inhibit_and_stop_and_quiesce_cancel_waits() {
    let qm = qm();
    let (rx, _) = waiter(&qm, -1, mqi::types::MQGMO(0));
    until_waiting(&qm, 1);
    qm.set_get_enabled("A", false);
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)).unwrap(),
        Err(MQRC_GET_INHIBITED.0)
    );
    qm.set_get_enabled("A", true);

    let (rx, _) = waiter(&qm, -1, MQGMO_FAIL_IF_QUIESCING);
    until_waiting(&qm, 1);
    qm.quiesce();
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)).unwrap(),
        Err(MQRC_Q_MGR_QUIESCING.0)
    );
    qm.start();

    let (rx, _) = waiter(&qm, -1, mqi::types::MQGMO(0));
    until_waiting(&qm, 1);
    qm.stop();
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)).unwrap(),
        Err(MQRC_Q_MGR_STOPPING.0)
    );
}

#[test]
fn a_commit_of_a_put_under_syncpoint_wakes_a_waiter() {
    let qm = qm();
    let (rx, _) = waiter(&qm, 5000, mqi::types::MQGMO(0));
    until_waiting(&qm, 1);
    let conn = connect(&qm);
    let q = open(&conn, "A", MQOO_OUTPUT).unwrap();
    assert_eq!(rc(q.put_message(&MQPMO_SYNCPOINT, "later")), 0);
    assert_eq!(qm.waiting_gets("A"), 1, "an uncommitted put wakes nobody for good");
    let _ = mqi::Syncpoint::new(&conn).commit().unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), Ok(b"later".to_vec()));
}

#[test]
fn many_threads_on_many_connections_move_every_message_exactly_once() {
    const PER_PRODUCER: usize = 250;
    let qm = qm();
    let producers: Vec<_> = (0..4)
        .map(|p| {
            let qm = qm.clone();
            thread::spawn(move || {
                let conn = connect(&qm);
                let q = open(&conn, "A", MQOO_OUTPUT).unwrap();
                for i in 0..PER_PRODUCER {
                    assert_eq!(rc(q.put_message(&MQPMO_SYNCPOINT, format!("{p}-{i}").as_str())), 0);
                    if i % 10 == 9 {
                        let _ = mqi::Syncpoint::new(&conn).commit().unwrap();
                    }
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..4)
        .map(|_| {
            let qm = qm.clone();
            thread::spawn(move || {
                let conn = connect(&qm);
                let q = open(&conn, "A", MQOO_INPUT_SHARED).unwrap();
                let mut seen = Vec::new();
                let mut buf = [0u8; 64];
                loop {
                    let got = q
                        .get_data(&(MQGMO_SYNCPOINT, GetWait::Wait(300)), &mut buf[..])
                        .unwrap();
                    match got.discard_warning() {
                        Some(data) => seen.push(String::from_utf8(data.to_vec()).unwrap()),
                        None => break,
                    }
                    let _ = mqi::Syncpoint::new(&conn).commit().unwrap();
                }
                seen
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    let mut all: Vec<String> = consumers.into_iter().flat_map(|c| c.join().unwrap()).collect();
    // Consumers stop after 300 ms without a message; whatever a slow producer put after
    // that is still on the queue and must be there exactly once too.
    let conn = connect(&qm);
    let q = open(&conn, "A", MQOO_INPUT_SHARED).unwrap();
    while let Ok(data) = get(&q, MQGMO_NO_SYNCPOINT) {
        all.push(String::from_utf8(data).unwrap());
    }
    all.sort();
    let total = all.len();
    all.dedup();
    assert_eq!(total, 4 * PER_PRODUCER, "every message arrived once");
    assert_eq!(all.len(), total, "no message twice");
    assert_eq!(qm.depth("A"), Some(0));
}
