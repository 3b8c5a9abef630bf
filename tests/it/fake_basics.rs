//! Put, get, syncpoint and backout through `mqi` on the fake.

use mqi::Syncpoint;
use mqi::constants::*;

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
