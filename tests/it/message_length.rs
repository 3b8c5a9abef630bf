//! The message length a client channel negotiates (the lower of the server-connection
//! channel's MAXMSGL and the client's MaxMsgLength): a longer buffer gets 2010, as IBM MQ
//! answers MQGET, MQPUT and MQPUT1; and what the polling connector does with a message
//! longer than its channel allows.

use std::sync::Arc;

use mqi::constants::*;
use mqpilot::fake::{ChannelDef, FakeConfig, FakeQm, ObjectRef, PutSpec, QueueDef};
use mqpilot::mq::MqLibrary;
use mqpilot::mq::options::{ConnectOptions, parse_mqserver};
use mqpilot::pool::{Pool, PoolConfig};
use mqpilot::worker::poller::SinkTarget;
use mqpilot::worker::run::{QueueRun, RunSummary};

use crate::support::*;
use crate::worker::{Collect, plan, run_until_empty};

const MIB: usize = 1024 * 1024;

/// QM1 with MAXMSGL 100 MiB, queue BIG likewise, and channels at IBM's default MAXMSGL
/// (4 MiB), at 100 MiB, and at 0 (the queue manager's).
fn big_qm() -> FakeQm {
    let mut config = FakeConfig::default();
    config.queue_manager.max_msg_length = 100 * MIB as i32;
    config.channels.push(ChannelDef::new("APP.SVRCONN"));
    config
        .channels
        .push(ChannelDef::new("BIG.SVRCONN").max_msg_length(100 * MIB as i32));
    config.channels.push(ChannelDef::new("QMGR.SVRCONN").max_msg_length(0));
    // MAXMSGL values that are no power of two, and one below the connector's 64 KiB buffer.
    config
        .channels
        .push(ChannelDef::new("ODD.SVRCONN").max_msg_length(100_000));
    config
        .channels
        .push(ChannelDef::new("SMALL.SVRCONN").max_msg_length(40_000));
    config
        .queues
        .push(QueueDef::new("BIG").max_msg_length(100 * MIB as i32));
    config.queues.push(QueueDef::new("OTHER"));
    FakeQm::new(config)
}

/// MQGET with a buffer of `len` bytes on an empty queue: 2033 when the length is allowed.
fn get_rc(obj: &mqi::Object<&Conn>, len: usize) -> i32 {
    let mut buf = vec![0u8; len];
    match obj.get_data(&MQGMO_NO_WAIT, &mut buf[..]) {
        Ok(got) if got.is_none() => MQRC_NO_MSG_AVAILABLE.0,
        other => rc(other),
    }
}

#[test]
fn a_client_buffer_past_the_negotiated_length_gets_2010() {
    let qm = big_qm();
    // mqi's MQSERVER channel asks for IBM's default 4 MiB; APP.SVRCONN has 4 MiB too.
    let conn = connect_client(qm.library("10.0.0.1"), "APP.SVRCONN").expect("client");
    let q = open(&conn, "BIG", MQOO_INPUT_SHARED | MQOO_OUTPUT).expect("open");
    assert_eq!(get_rc(&q, 4 * MIB), MQRC_NO_MSG_AVAILABLE.0);
    assert_eq!(get_rc(&q, 4 * MIB + 1), MQRC_DATA_LENGTH_ERROR.0);
    let long = "x".repeat(4 * MIB + 1);
    assert_eq!(
        rc(q.put_message(&MQPMO_NO_SYNCPOINT, long.as_str())),
        MQRC_DATA_LENGTH_ERROR.0
    );
    let put1 = conn.put_message(&queue("BIG"), &MQPMO_NO_SYNCPOINT, long.as_str());
    assert_eq!(rc(put1), MQRC_DATA_LENGTH_ERROR.0);
    assert_eq!(qm.depth("BIG"), Some(0), "nothing was put");
    // A bindings connection has no channel: only the queue's and queue manager's MAXMSGL.
    let local = connect(&qm);
    let q = open(&local, "BIG", MQOO_INPUT_SHARED).expect("open");
    assert_eq!(get_rc(&q, 8 * MIB), MQRC_NO_MSG_AVAILABLE.0);
}

#[test]
fn the_lower_of_channel_and_client_lengths_applies() {
    let qm = big_qm();
    let lib = || qm.library("10.0.0.1");
    // Server 100 MiB, client (mqi's MQSERVER default) 4 MiB: 4 MiB.
    let conn = connect_client(lib(), "BIG.SVRCONN").expect("client");
    let q = open(&conn, "BIG", MQOO_INPUT_SHARED).expect("open");
    assert_eq!(get_rc(&q, 4 * MIB + 1), MQRC_DATA_LENGTH_ERROR.0);
    // MAXMSGL 0 on the channel is the queue manager's; the wire request asks for 100 MiB.
    let request = |channel: &str| mqpilot::fake::ConnectRequest {
        channel: Some(channel.into()),
        client_max_msg_length: Some(100 * MIB as u32),
        ..mqpilot::fake::ConnectRequest::default()
    };
    let hconn = qm.connect(&request("QMGR.SVRCONN")).expect("connect");
    let object = ObjectRef {
        object_type: libmqm_sys::MQOT_Q,
        name: "BIG".into(),
    };
    let hobj = qm.open(hconn, &object, libmqm_sys::MQOO_OUTPUT).expect("open");
    let mut md = mqpilot::fake::default_md();
    let payload = vec![b'x'; 8 * MIB];
    assert_eq!(
        qm.put(hconn, hobj, &mut md, libmqm_sys::MQPMO_NO_SYNCPOINT, &payload),
        Ok(())
    );
    // Server 4 MiB, client 100 MiB: 4 MiB.
    let hconn = qm.connect(&request("APP.SVRCONN")).expect("connect");
    let hobj = qm.open(hconn, &object, libmqm_sys::MQOO_OUTPUT).expect("open");
    assert_eq!(
        qm.put(hconn, hobj, &mut md, libmqm_sys::MQPMO_NO_SYNCPOINT, &payload),
        Err(MQRC_DATA_LENGTH_ERROR.0)
    );
    assert_eq!(qm.depth("BIG"), Some(1));
}

#[test]
fn a_channel_max_msg_length_out_of_range_is_refused_with_its_field() {
    let text = "[[channel]]\nname = \"APP.SVRCONN\"\nmax_msg_length = 104857601\n";
    let err = FakeConfig::from_toml(text, std::path::Path::new("qm.toml")).expect_err("refused");
    let err = err.to_string();
    assert!(err.contains("channel[0].max_msg_length"), "{err}");
    assert!(err.contains("104857600"), "{err}");
}

/// The connector through `channel` with mqpilot's own channel definition (MaxMsgLength
/// 100 MiB in its MQCD, as MQ's MQSERVER channels have).
fn pool_on(qm: &FakeQm, channel: &str) -> Pool {
    let options = ConnectOptions::builder()
        .with_channel(parse_mqserver(&format!("{channel}/TCP/localhost(1414)"), "test").expect("channel"))
        .build()
        .expect("options");
    let config = PoolConfig {
        connections: 1,
        handle_reserve: 0,
        ..PoolConfig::default()
    };
    Pool::new(MqLibrary::fake(qm.library("10.0.0.1")), options, config)
}

/// Drains BIG, which holds a small message, one of 5 MiB and another small one, through
/// `channel` with one poller, batch 10.
async fn drain_a_long_message(qm: &FakeQm, channel: &str) -> (Arc<Collect>, RunSummary) {
    qm.put_message("BIG", PutSpec::text("before")).expect("put");
    qm.put_message("BIG", PutSpec::text(vec![b'x'; 5 * MIB])).expect("put");
    qm.put_message("BIG", PutSpec::text("after")).expect("put");
    let sink = Arc::new(Collect::default());
    let queues = vec![QueueRun {
        plan: plan("BIG", 10, SinkTarget::External(sink.clone())),
        workers: 1,
    }];
    let summary = run_until_empty(&pool_on(qm, channel), queues).await;
    (sink, summary)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connector_grows_its_buffer_up_to_a_long_message_the_channel_allows() {
    let qm = big_qm();
    let (sink, summary) = drain_a_long_message(&qm, "BIG.SVRCONN").await;
    assert_eq!(summary.stopped(), Vec::new());
    let lengths: Vec<usize> = sink.got.lock().unwrap().iter().map(|m| m.data.len()).collect();
    assert_eq!(lengths, [6, 5 * MIB, 5]);
    assert_eq!(qm.depth("BIG"), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_longer_than_the_channel_allows_stops_its_queue_and_nothing_is_lost() {
    let qm = big_qm();
    let (sink, summary) = drain_a_long_message(&qm, "APP.SVRCONN").await;
    let stopped = summary.stopped();
    assert_eq!(stopped.len(), 1, "{stopped:?}");
    let why = &stopped[0].1;
    assert!(
        why.contains("2010") && why.contains("MAXMSGL"),
        "says which limit: {why}"
    );
    assert!(
        why.contains("a message of 5242880 bytes"),
        "says how long the message is: {why}"
    );
    let view = qm.browse("BIG");
    let left: Vec<(usize, i32)> = view.iter().map(|m| (m.data.len(), m.backout_count)).collect();
    // The batch that met it is backed out: nothing is lost, nothing is half-delivered.
    assert_eq!(left, [(6, 1), (5 * MIB, 0), (5, 0)]);
    assert!(sink.got.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_within_a_maxmsgl_that_is_no_power_of_two_is_delivered() {
    let qm = big_qm();
    qm.put_message("BIG", PutSpec::text(vec![b'x'; 90_000])).expect("put");
    qm.put_message("BIG", PutSpec::text("after")).expect("put");
    let sink = Arc::new(Collect::default());
    let queues = vec![QueueRun {
        plan: plan("BIG", 10, SinkTarget::External(sink.clone())),
        workers: 1,
    }];
    let summary = run_until_empty(&pool_on(&qm, "ODD.SVRCONN"), queues).await;
    assert_eq!(summary.stopped(), Vec::new());
    let lengths: Vec<usize> = sink.got.lock().unwrap().iter().map(|m| m.data.len()).collect();
    assert_eq!(
        lengths,
        [90_000, 5],
        "the buffer grew past 64 KiB but not past 100,000 bytes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_the_channel_cannot_carry_leaves_the_connection_usable_for_other_queues() {
    let qm = big_qm();
    qm.put_message("BIG", PutSpec::text(vec![b'x'; 5 * MIB])).expect("put");
    for i in 0..3 {
        qm.put_message("OTHER", PutSpec::text(format!("m{i}"))).expect("put");
    }
    let sink = Arc::new(Collect::default());
    let queues = vec![
        QueueRun {
            plan: plan("BIG", 10, SinkTarget::External(sink.clone())),
            workers: 1,
        },
        QueueRun {
            plan: plan("OTHER", 10, SinkTarget::External(sink.clone())),
            workers: 1,
        },
    ];
    // One connection for both queues: the buffer that met 2010 must not stay behind on it.
    let summary = run_until_empty(&pool_on(&qm, "APP.SVRCONN"), queues).await;
    let stopped: Vec<String> = summary.stopped().into_iter().map(|(queue, _)| queue).collect();
    assert_eq!(stopped, ["BIG"]);
    let got: Vec<Vec<u8>> = sink.got.lock().unwrap().iter().map(|m| m.data.to_vec()).collect();
    assert_eq!(got, [b"m0".to_vec(), b"m1".to_vec(), b"m2".to_vec()]);
    assert_eq!(qm.depth("BIG"), Some(1), "the long message stays on its queue");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_starting_buffer_longer_than_the_channel_allows_is_shrunk_to_fit() {
    let qm = big_qm();
    qm.put_message("BIG", PutSpec::text(vec![b'x'; 30_000])).expect("put");
    qm.put_message("BIG", PutSpec::text(vec![b'y'; 39_000])).expect("put");
    let sink = Arc::new(Collect::default());
    let queues = vec![QueueRun {
        plan: plan("BIG", 10, SinkTarget::External(sink.clone())),
        workers: 1,
    }];
    // The connector starts with 64 KiB; the channel takes at most 40,000 bytes.
    let summary = run_until_empty(&pool_on(&qm, "SMALL.SVRCONN"), queues).await;
    assert_eq!(summary.stopped(), Vec::new());
    let lengths: Vec<usize> = sink.got.lock().unwrap().iter().map(|m| m.data.len()).collect();
    assert_eq!(lengths, [30_000, 39_000]);
}

#[test]
fn a_browse_buffer_longer_than_the_channel_allows_is_halved_until_the_channel_takes_it() {
    use mqpilot::mq::session::Session;
    let qm = big_qm();
    qm.put_message("BIG", PutSpec::text(vec![b'x'; 30_000])).expect("put");
    let options = ConnectOptions::builder()
        .with_channel(parse_mqserver("SMALL.SVRCONN/TCP/localhost(1414)", "test").expect("channel"))
        .build()
        .expect("options");
    let mut session = Session::connect(MqLibrary::fake(qm.library("10.0.0.1")), &options, 1024).expect("connect");
    let browsed = session.browse("BIG", 10, MIB, MIB).expect("browse");
    assert_eq!(browsed.len(), 1);
    assert_eq!(browsed[0].message.data.len(), 30_000, "read whole: 30,000 bytes fit");
    assert!(!browsed[0].truncated);
}
