//! Limits and the reason codes they produce, through `mqi` on the fake.

use mqi::constants::*;
use mqi::types::{MQOO, QueueManagerName};
use mqi::{Object, Syncpoint};
use mqpilot::fake::{ChannelDef, ConnectRequest, FakeConfig, FakeQm, PutSpec, QueueDef, Sharing, Verb};

use crate::support::*;

fn with(change: impl FnOnce(&mut FakeConfig)) -> FakeQm {
    let mut config = FakeConfig::default();
    config.channels.push(ChannelDef::new("APP.SVRCONN"));
    config.queues.push(QueueDef::new("A"));
    config.queues.push(QueueDef::new("B"));
    change(&mut config);
    FakeQm::new(config)
}

#[test]
fn open_past_maxhands_fails_with_2017_and_close_frees_a_handle() {
    let qm = with(|c| c.queue_manager.max_handles = 2);
    let conn = connect(&qm);
    let a = open(&conn, "A", MQOO_OUTPUT).unwrap();
    let _b = open(&conn, "B", MQOO_OUTPUT).unwrap();
    assert_eq!(open(&conn, "A", MQOO_INQUIRE).err(), Some(MQRC_HANDLE_NOT_AVAILABLE.0));
    // Handles are per connection: a second connection has its own budget.
    let other = connect(&qm);
    assert!(open(&other, "A", MQOO_OUTPUT).is_ok());
    let _ = a.close().unwrap();
    assert!(open(&conn, "A", MQOO_INQUIRE).is_ok());
    let status = qm.connections();
    assert!(status.iter().all(|c| c.peak_handles <= 2), "{status:?}");
}

#[test]
fn put1_needs_a_free_handle_while_it_runs() {
    let qm = with(|c| c.queue_manager.max_handles = 1);
    let conn = connect(&qm);
    assert_eq!(rc(conn.put_message(&queue("A"), &MQPMO_NO_SYNCPOINT, "x")), 0);
    assert_eq!(qm.connection(last_hconn(&qm)).unwrap().peak_handles, 1);
    let _held = open(&conn, "B", MQOO_OUTPUT).unwrap();
    assert_eq!(
        rc(conn.put_message(&queue("A"), &MQPMO_NO_SYNCPOINT, "y")),
        MQRC_HANDLE_NOT_AVAILABLE.0
    );
    assert_eq!(qm.depth("A"), Some(1));
}

#[test]
fn sharecnv_packs_conversations_into_instances_and_maxinst_gives_2537() {
    let qm = with(|c| c.channels[0] = ChannelDef::new("APP.SVRCONN").sharecnv(2).max_inst(2));
    let lib = qm.library("10.0.0.1");
    let conns: Vec<_> = (0..4)
        .map(|_| connect_client(lib.clone(), "APP.SVRCONN").unwrap())
        .collect();
    let ch = qm.channel("APP.SVRCONN").unwrap();
    assert_eq!((ch.instances, ch.conversations), (2, 4));
    // A fifth connection needs a third instance: MAXINST says no.
    assert_eq!(
        connect_client(lib.clone(), "APP.SVRCONN").err(),
        Some(MQRC_CHANNEL_NOT_AVAILABLE.0)
    );
    // Another process cannot join this process's instances either.
    assert_eq!(
        connect_client(qm.library("10.0.0.2"), "APP.SVRCONN").err(),
        Some(MQRC_CHANNEL_NOT_AVAILABLE.0)
    );
    drop(conns);
    assert_eq!(qm.channel("APP.SVRCONN").unwrap().instances, 0);
    assert_eq!(qm.channel("APP.SVRCONN").unwrap().peak_instances, 2);
}

#[test]
fn maxinstc_counts_instances_per_client_address() {
    let qm = with(|c| c.channels[0] = ChannelDef::new("APP.SVRCONN").sharecnv(0).max_instc(2));
    let _a1 = connect_client(qm.library("10.0.0.1"), "APP.SVRCONN").unwrap();
    let _a2 = connect_client(qm.library("10.0.0.1"), "APP.SVRCONN").unwrap();
    assert_eq!(
        connect_client(qm.library("10.0.0.1"), "APP.SVRCONN").err(),
        Some(MQRC_CHANNEL_NOT_AVAILABLE.0)
    );
    assert!(connect_client(qm.library("10.0.0.9"), "APP.SVRCONN").is_ok());
    let ch = qm.channel("APP.SVRCONN").unwrap();
    assert_eq!(ch.per_address.get("10.0.0.1"), Some(&2));
}

#[test]
fn max_channels_caps_instances_over_all_channels() {
    let qm = with(|c| {
        c.queue_manager.max_channels = 2;
        c.channels.push(ChannelDef::new("OTHER.SVRCONN"));
    });
    let lib = qm.library("10.0.0.1");
    let _a = connect_client(qm.library("h1"), "APP.SVRCONN").unwrap();
    let _b = connect_client(qm.library("h2"), "OTHER.SVRCONN").unwrap();
    assert_eq!(
        connect_client(lib, "APP.SVRCONN").err(),
        Some(MQRC_CHANNEL_NOT_AVAILABLE.0)
    );
}

#[test]
fn connection_limit_gives_2025() {
    let qm = with(|c| c.queue_manager.max_connections = Some(1));
    let _a = connect(&qm);
    let err = mqi::connect_lib::<mqi::connection::ThreadNone, _>(qm.library("x"), mqi::connection::NO_CONNECT_OPTIONS);
    assert_eq!(rc(err), MQRC_MAX_CONNS_LIMIT_REACHED.0);
}

/// MQ answers a client whose SVRCONN channel is not defined with 2540 (the queue manager
/// logs AMQ9520), not 2059: retrying cannot help.
#[test]
fn unknown_channel_gives_2540_stopped_qmgr_2059_and_wrong_name_2058() {
    let qm = with(|_| {});
    assert_eq!(
        connect_client(qm.library("h"), "NO.SUCH").err(),
        Some(MQRC_UNKNOWN_CHANNEL_NAME.0)
    );
    assert_eq!(qm.reason_count(Verb::Connx, MQRC_UNKNOWN_CHANNEL_NAME.0), 1);
    let wrong =
        mqi::connect_lib::<mqi::connection::ThreadNone, _>(qm.library("h"), &QueueManagerName(mqi::mqstr!("QMX")));
    assert_eq!(rc(wrong), MQRC_Q_MGR_NAME_ERROR.0);
    qm.stop();
    assert_eq!(
        connect_client(qm.library("h"), "APP.SVRCONN").err(),
        Some(MQRC_Q_MGR_NOT_AVAILABLE.0)
    );
}

#[test]
fn maxdepth_gives_2053_and_maxmsgl_2030_and_2031() {
    let qm = with(|c| {
        c.queues[0] = QueueDef::new("A").max_depth(1).max_msg_length(10);
        c.queues[1] = QueueDef::new("B").max_msg_length(1_000);
        c.queue_manager.max_msg_length = 100;
    });
    let conn = connect(&qm);
    let a = open(&conn, "A", MQOO_OUTPUT).unwrap();
    let b = open(&conn, "B", MQOO_OUTPUT).unwrap();
    assert_eq!(put(&a, "12345678901"), Err(MQRC_MSG_TOO_BIG_FOR_Q.0));
    assert_eq!(put(&b, &"x".repeat(101)), Err(MQRC_MSG_TOO_BIG_FOR_Q_MGR.0));
    put(&a, "ok").unwrap();
    assert_eq!(put(&a, "full"), Err(MQRC_Q_FULL.0));
}

#[test]
fn inhibited_queues_give_2016_and_2051() {
    let qm = with(|_| {});
    let conn = connect(&qm);
    let a = open(&conn, "A", MQOO_INPUT_SHARED | MQOO_OUTPUT | MQOO_BROWSE).unwrap();
    put(&a, "m").unwrap();
    qm.set_get_enabled("A", false);
    qm.set_put_enabled("A", false);
    assert_eq!(get(&a, MQGMO_NO_SYNCPOINT), Err(MQRC_GET_INHIBITED.0));
    assert_eq!(get(&a, MQGMO_BROWSE_FIRST), Err(MQRC_GET_INHIBITED.0));
    assert_eq!(put(&a, "m"), Err(MQRC_PUT_INHIBITED.0));
    qm.set_get_enabled("A", true);
    assert_eq!(get(&a, MQGMO_NO_SYNCPOINT).unwrap(), b"m");
}

#[test]
fn unknown_queue_gives_2085() {
    let qm = with(|_| {});
    let conn = connect(&qm);
    assert_eq!(open(&conn, "NOPE", MQOO_OUTPUT).err(), Some(MQRC_UNKNOWN_OBJECT_NAME.0));
}

#[test]
fn exclusive_input_conflicts_give_2042() {
    let qm = with(|c| c.queues[1] = QueueDef::new("B").share(Sharing::Exclusive));
    let c1 = connect(&qm);
    let c2 = connect(&qm);
    let _shared = open(&c1, "A", MQOO_INPUT_SHARED).unwrap();
    assert_eq!(open(&c2, "A", MQOO_INPUT_EXCLUSIVE).err(), Some(MQRC_OBJECT_IN_USE.0));
    // Browse and inquire never conflict.
    assert!(open(&c2, "A", MQOO_BROWSE | MQOO_INQUIRE).is_ok());
    // NOSHARE makes every input open exclusive.
    let _first = open(&c1, "B", MQOO_INPUT_SHARED).unwrap();
    assert_eq!(open(&c2, "B", MQOO_INPUT_SHARED).err(), Some(MQRC_OBJECT_IN_USE.0));
    assert_eq!(qm.queue_status("B").unwrap().ipprocs, 1);
}

#[test]
fn input_as_q_def_follows_defsopt() {
    let qm = with(|c| c.queues[0] = QueueDef::new("A").default_share(Sharing::Exclusive));
    let c1 = connect(&qm);
    let c2 = connect(&qm);
    let _x = open(&c1, "A", MQOO_INPUT_AS_Q_DEF).unwrap();
    assert_eq!(open(&c2, "A", MQOO_INPUT_SHARED).err(), Some(MQRC_OBJECT_IN_USE.0));
}

#[test]
fn unit_of_work_past_maxumsgs_gives_2024() {
    let qm = with(|c| c.queue_manager.max_uncommitted = 2);
    let conn = connect(&qm);
    let a = open(&conn, "A", MQOO_INPUT_SHARED | MQOO_OUTPUT).unwrap();
    for _ in 0..3 {
        put(&a, "m").unwrap();
    }
    assert!(get(&a, MQGMO_SYNCPOINT).is_ok());
    assert_eq!(rc(a.put_message(&MQPMO_SYNCPOINT, "p")), 0);
    assert_eq!(get(&a, MQGMO_SYNCPOINT), Err(MQRC_SYNCPOINT_LIMIT_REACHED.0));
    assert_eq!(rc(a.put_message(&MQPMO_SYNCPOINT, "p")), MQRC_SYNCPOINT_LIMIT_REACHED.0);
    let _ = Syncpoint::new(&conn).commit().unwrap();
    assert_eq!(qm.depth("A"), Some(3));
}

#[test]
fn wrong_password_gives_2035() {
    let qm = with(|c| {
        c.queue_manager.users.push(mqpilot::fake::config::UserDef {
            name: "app".into(),
            password: "right".into(),
        });
    });
    assert_eq!(
        connect_client(qm.library("h"), "APP.SVRCONN").err(),
        Some(MQRC_NOT_AUTHORIZED.0)
    );
}

#[test]
fn handle_and_option_misuse_give_2036_2037_2038_2039_2046_2045_2090() {
    let qm = with(|_| {});
    let conn = connect(&qm);
    let out = open(&conn, "A", MQOO_OUTPUT).unwrap();
    let inp = open(&conn, "A", MQOO_INPUT_SHARED).unwrap();
    assert_eq!(get(&out, MQGMO_NO_SYNCPOINT), Err(MQRC_NOT_OPEN_FOR_INPUT.0));
    assert_eq!(get(&inp, MQGMO_BROWSE_FIRST), Err(MQRC_NOT_OPEN_FOR_BROWSE.0));
    assert_eq!(put(&inp, "x"), Err(MQRC_NOT_OPEN_FOR_OUTPUT.0));
    assert_eq!(
        rc(inp.inquire_integer(mqi::attribute::MQIA_CURRENT_Q_DEPTH)),
        MQRC_NOT_OPEN_FOR_INQUIRE.0
    );
    assert_eq!(
        get(&inp, MQGMO_SYNCPOINT | MQGMO_NO_SYNCPOINT),
        Err(MQRC_OPTIONS_ERROR.0)
    );
    assert_eq!(open(&conn, "A", MQOO(0)).err(), Some(MQRC_OPTIONS_ERROR.0));
    let qmgr = Object::open(&conn, &(QueueManagerName::default(), MQOO_INPUT_SHARED)).map_err(|e| e.2.0);
    assert_eq!(qmgr.err(), Some(MQRC_OPTION_NOT_VALID_FOR_TYPE.0));
    let mut buf = [0u8; 8];
    let bad_wait = rc(inp.get_data(&(mqi::get::GetWait::Wait(-5)), &mut buf[..]));
    assert_eq!(bad_wait, MQRC_WAIT_INTERVAL_ERROR.0);
}

#[test]
fn inquire_reads_qmgr_and_queue_attributes() {
    let qm = with(|c| {
        c.queue_manager.max_handles = 77;
        c.queues[0] = QueueDef::new("A").backout(5, "A.BO");
    });
    let conn = connect(&qm);
    let qmgr = Object::open(&conn, &(QueueManagerName::default(), MQOO_INQUIRE))
        .unwrap()
        .discard_warning();
    let int = |o: &Object<&Conn>, s| o.inquire_integer(s).unwrap().discard_warning();
    assert_eq!(int(&qmgr, mqi::attribute::MQIA_MAX_HANDLES), Some(77));
    assert_eq!(int(&qmgr, mqi::attribute::MQIA_MAX_UNCOMMITTED_MSGS), Some(10_000));
    let a = open(&conn, "A", MQOO_INQUIRE | MQOO_OUTPUT | MQOO_INPUT_SHARED).unwrap();
    put(&a, "1").unwrap();
    assert_eq!(int(&a, mqi::attribute::MQIA_CURRENT_Q_DEPTH), Some(1));
    assert_eq!(int(&a, mqi::attribute::MQIA_MAX_Q_DEPTH), Some(5000));
    assert_eq!(int(&a, mqi::attribute::MQIA_BACKOUT_THRESHOLD), Some(5));
    assert_eq!(int(&a, mqi::attribute::MQIA_OPEN_INPUT_COUNT), Some(1));
    assert_eq!(int(&a, mqi::attribute::MQIA_OPEN_OUTPUT_COUNT), Some(1));
    assert_eq!(int(&a, mqi::attribute::MQIA_INHIBIT_GET), Some(MQQA_GET_ALLOWED.0));
    let boq = a
        .inquire_text(mqi::attribute::MQCA_BACKOUT_REQ_Q_NAME)
        .unwrap()
        .discard_warning()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&boq.iter().map(|&c| c as u8).collect::<Vec<_>>()).trim(),
        "A.BO"
    );
    let name = qmgr
        .inquire_text(mqi::attribute::MQCA_Q_MGR_NAME)
        .unwrap()
        .discard_warning()
        .unwrap();
    assert!(String::from_utf8_lossy(&name.iter().map(|&c| c as u8).collect::<Vec<_>>()).starts_with("QM1"));
    // An attribute of the other object type fails the call with 2067, as MQ's MQINQ does
    // (2068 is for a queue attribute that another type of queue has).
    assert_eq!(
        rc(a.inquire_integer(mqi::attribute::MQIA_MAX_HANDLES)),
        MQRC_SELECTOR_ERROR.0
    );
    assert_eq!(
        rc(a.inquire_text(mqi::attribute::MQCA_Q_MGR_NAME)),
        MQRC_SELECTOR_ERROR.0
    );
    assert_eq!(
        rc(qmgr.inquire_integer(mqi::attribute::MQIA_BACKOUT_THRESHOLD)),
        MQRC_SELECTOR_ERROR.0
    );
    assert_eq!(
        rc(qmgr.inquire_text(mqi::attribute::MQCA_BACKOUT_REQ_Q_NAME)),
        MQRC_SELECTOR_ERROR.0
    );
}

#[test]
fn broken_connection_backs_out_and_later_calls_get_2009() {
    let qm = with(|_| {});
    let conn = connect(&qm);
    let hconn = last_hconn(&qm);
    let a = open(&conn, "A", MQOO_INPUT_SHARED | MQOO_OUTPUT).unwrap();
    put(&a, "m").unwrap();
    assert!(get(&a, MQGMO_SYNCPOINT).is_ok());
    qm.break_connection(hconn);
    assert_eq!(get(&a, MQGMO_NO_SYNCPOINT), Err(MQRC_CONNECTION_BROKEN.0));
    assert_eq!(qm.browse("A")[0].backout_count, 1);
    assert_eq!(qm.queue_status("A").unwrap().ipprocs, 0);
}

#[test]
fn stopping_and_quiescing_give_2162_and_2161() {
    let qm = with(|_| {});
    let conn = connect(&qm);
    let a = open(&conn, "A", MQOO_INPUT_SHARED | MQOO_OUTPUT).unwrap();
    qm.quiesce();
    assert_eq!(
        get(&a, MQGMO_NO_SYNCPOINT | MQGMO_FAIL_IF_QUIESCING),
        Err(MQRC_Q_MGR_QUIESCING.0)
    );
    // Without FAIL_IF_QUIESCING the call still works.
    assert_eq!(get(&a, MQGMO_NO_SYNCPOINT), Err(MQRC_NO_MSG_AVAILABLE.0));
    assert_eq!(
        connect_client(qm.library("h"), "APP.SVRCONN").err(),
        Some(MQRC_Q_MGR_QUIESCING.0)
    );
    qm.stop();
    assert_eq!(put(&a, "m"), Err(MQRC_Q_MGR_STOPPING.0));
    qm.start();
    assert!(connect_client(qm.library("h"), "APP.SVRCONN").is_ok());
}

#[test]
fn unknown_handles_give_2018_and_2019() {
    let qm = with(|_| {});
    let conn = connect(&qm);
    let hconn = last_hconn(&qm);
    assert_eq!(qm.close(hconn, 999), Err(MQRC_HOBJ_ERROR.0));
    assert_eq!(qm.commit(12_345), Err(MQRC_HCONN_ERROR.0));
    drop(conn);
    assert_eq!(qm.commit(hconn), Err(MQRC_HCONN_ERROR.0));
}

#[test]
fn unsupported_verbs_give_2298() {
    let qm = with(|_| {});
    let conn = connect(&qm);
    let props = mqi::Properties::new(&conn, mqi::types::MQCMHO::default());
    assert_eq!(props.err().map(|e| e.2.0), Some(MQRC_FUNCTION_NOT_SUPPORTED.0));
    assert_eq!(qm.reason_count(Verb::Other, MQRC_FUNCTION_NOT_SUPPORTED.0), 1);
}

/// Codes that a real queue manager produces from conditions the fake does not simulate
/// (network, channel negotiation, reconnection): injected, and seen by the caller as MQ
/// would report them. Connection-ending ones also break the connection.
#[test]
fn injected_faults_reach_the_caller_with_their_reason_code() {
    let qm = with(|_| {});
    for reason in [
        MQRC_HOST_NOT_AVAILABLE,
        MQRC_CHANNEL_CONFIG_ERROR,
        MQRC_Q_MGR_NOT_AVAILABLE,
    ] {
        qm.fail_next(Verb::Connx, 1, reason.0);
        assert_eq!(connect_client(qm.library("h"), "APP.SVRCONN").err(), Some(reason.0));
    }
    let conn = connect(&qm);
    let a = open(&conn, "A", MQOO_INPUT_SHARED | MQOO_OUTPUT).unwrap();
    qm.fail_next(Verb::Cmit, 1, MQRC_BACKED_OUT.0);
    assert_eq!(rc(Syncpoint::new(&conn).commit()), MQRC_BACKED_OUT.0);
    for reason in [
        MQRC_CONNECTION_QUIESCING,
        MQRC_CONNECTION_STOPPING,
        MQRC_RECONNECT_FAILED,
    ] {
        qm.fail_next(Verb::Get, 1, reason.0);
        assert_eq!(get(&a, MQGMO_NO_SYNCPOINT), Err(reason.0));
    }
    // 2203 and 2548 end the connection, so its later calls keep failing.
    assert_eq!(put(&a, "x"), Err(MQRC_CONNECTION_STOPPING.0));
    assert_eq!(qm.reason_count(Verb::Get, MQRC_CONNECTION_QUIESCING.0), 1);
}

#[test]
fn disconnect_commits_and_releases_everything() {
    let qm = with(|_| {});
    let conn = connect(&qm);
    let a = open(&conn, "A", MQOO_INPUT_SHARED | MQOO_OUTPUT).unwrap();
    qm.put_message("A", PutSpec::text("one")).unwrap();
    assert!(get(&a, MQGMO_SYNCPOINT).is_ok());
    assert_eq!(rc(a.put_message(&MQPMO_SYNCPOINT, "two")), 0);
    drop(a);
    let _ = conn.disconnect().unwrap();
    let left: Vec<_> = qm.browse("A").into_iter().map(|m| m.data).collect();
    assert_eq!(left, vec![b"two".to_vec()]);
    assert!(qm.connections().is_empty());
}

#[test]
fn the_channel_is_checked_before_the_credentials() {
    let mut config = FakeConfig::default();
    config.queue_manager.users.push(mqpilot::fake::config::UserDef {
        name: "app".into(),
        password: "right".into(),
    });
    config.channels.push(ChannelDef::new("FULL.SVRCONN").max_inst(0));
    config.channels.push(ChannelDef::new("APP.SVRCONN").max_inst(1));
    let qm = FakeQm::new(config);
    let request = |channel: &str, password: &str| ConnectRequest {
        channel: Some(channel.into()),
        client_address: "10.0.0.5".into(),
        user: Some("app".into()),
        password: Some(password.into()),
        ..ConnectRequest::default()
    };
    // MQ starts the channel instance first: unknown and full channels answer as such.
    assert_eq!(qm.connect(&request("NO.SUCH.SVRCONN", "wrong")), Err(2540));
    assert_eq!(qm.connect(&request("FULL.SVRCONN", "wrong")), Err(2537));
    // A refused connection ends its channel instance: MAXINST 1 still has room after it.
    assert_eq!(qm.connect(&request("APP.SVRCONN", "wrong")), Err(2035));
    assert!(qm.connect(&request("APP.SVRCONN", "right")).is_ok());
}
