//! The MQ layer on the fake: library selection, connection options, error messages.

use mqi::constants::*;
use mqpilot::Error;
use mqpilot::fake::{ChannelDef, FakeConfig, FakeQm, QueueDef, config::UserDef};
use mqpilot::mq::options::{ConnectOptions, Secret, parse_mqserver};
use mqpilot::mq::reason::{Reason, ReasonClass};
use mqpilot::mq::{MqLibrary, mq_error};

fn fake() -> FakeQm {
    let mut config = FakeConfig::default();
    config.queue_manager.max_handles = 4;
    config.queue_manager.users.push(UserDef {
        name: "app".into(),
        password: "s3cret".into(),
    });
    config.channels.push(ChannelDef::new("APP.SVRCONN").sharecnv(10));
    config.queues.push(QueueDef::new("ORDERS.IN"));
    FakeQm::new(config)
}

fn options(password: &str) -> ConnectOptions {
    ConnectOptions::builder()
        .with_queue_manager("QM1")
        .with_channel(parse_mqserver("APP.SVRCONN/TCP/localhost(1414)", "--server").unwrap())
        .with_application_name("orders-worker")
        .with_user("app")
        .with_password(Secret::new(password))
        .build()
        .unwrap()
}

#[test]
fn connect_options_reach_the_queue_manager_through_mq_library() {
    let qm = fake();
    let lib = MqLibrary::fake(qm.library("10.9.8.7"));
    assert!(lib.is_fake());
    let conn = options("s3cret").connect(lib.clone()).unwrap();
    let status = qm.connections();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].channel.as_deref(), Some("APP.SVRCONN"));
    assert_eq!(status[0].client_address, "10.9.8.7");
    assert_eq!(status[0].appl_name, "orders-worker");
    let _second = options("s3cret").connect(lib).unwrap();
    let channel = qm.channel("APP.SVRCONN").unwrap();
    assert_eq!(
        (channel.instances, channel.conversations),
        (1, 2),
        "SHARECNV 10 shares one instance"
    );
    drop(conn);
}

#[test]
fn a_wrong_password_is_2035_and_the_error_never_shows_it() {
    let qm = fake();
    let err = options("wrong-pw")
        .connect(MqLibrary::fake(qm.library("h")))
        .unwrap_err();
    assert_eq!(err.reason(), Some(Reason::NOT_AUTHORIZED));
    let text = format!("{err} {err:?}");
    assert!(text.contains("2035 MQRC_NOT_AUTHORIZED"), "{text}");
    assert!(!text.contains("wrong-pw"), "{text}");
}

#[test]
fn mq_errors_read_as_verb_object_reason_and_detail() {
    let qm = fake();
    let conn = options("s3cret").connect(MqLibrary::fake(qm.library("h"))).unwrap();
    let queue: mqi::types::QueueName = "ORDERS.IN".parse().unwrap();
    let opened: Vec<_> = (0..4)
        .map(|_| mqi::Object::open(&conn, &(queue, MQOO_OUTPUT)).unwrap())
        .collect();
    let failure = mqi::Object::open(&conn, &(queue, MQOO_OUTPUT)).unwrap_err();
    let err = mq_error(&failure, "ORDERS.IN").with_detail("the connection already holds MAXHANDS=4 handles");
    assert_eq!(
        err.to_string(),
        "MQOPEN of ORDERS.IN failed: 2017 MQRC_HANDLE_NOT_AVAILABLE (the connection already holds MAXHANDS=4 handles)"
    );
    assert_eq!(err.reason().map(Reason::class), Some(ReasonClass::Config));
    assert_eq!(opened.len(), 4);
}

#[test]
fn selecting_a_missing_ibm_library_is_a_clear_error() {
    let err = MqLibrary::ibm_from(&["/no/such/dir/libmqm_r.so".to_owned()]).unwrap_err();
    assert!(matches!(err, Error::Library { .. }));
    let text = err.to_string();
    assert!(text.contains("/no/such/dir/libmqm_r.so"), "{text}");
    assert!(text.contains("IBM MQ redistributable client"), "{text}");
}
