//! Shared set-up for the integration tests.

use std::str::FromStr;

use mqi::connection::{NO_CONNECT_OPTIONS, ThreadNoBlock};
use mqi::types::{MQGMO, MQOO, QueueName};
use mqi::{Connection, Object, constants};
use mqpilot::fake::{ChannelDef, FakeConfig, FakeMqi, FakeQm, QueueDef};

pub type Conn = Connection<FakeMqi, ThreadNoBlock>;

/// QM1 with queues A and B (A has BOTHRESH 3 / BOQNAME A.BACKOUT), channel APP.SVRCONN.
pub fn qm() -> FakeQm {
    let mut config = FakeConfig::default();
    config.channels.push(ChannelDef::new("APP.SVRCONN"));
    config.queues.push(QueueDef::new("A").backout(3, "A.BACKOUT"));
    config.queues.push(QueueDef::new("B"));
    config.queues.push(QueueDef::new("A.BACKOUT"));
    FakeQm::new(config)
}

/// A bindings connection through `mqi`.
pub fn connect(qm: &FakeQm) -> Conn {
    connect_lib(qm.library("10.0.0.1"))
}

pub fn connect_lib(lib: FakeMqi) -> Conn {
    mqi::connect_lib(lib, NO_CONNECT_OPTIONS)
        .expect("connect")
        .discard_warning()
}

pub fn queue(name: &str) -> QueueName {
    QueueName::from_str(name).expect("queue name")
}

pub fn open<'c>(conn: &'c Conn, name: &str, options: MQOO) -> Result<Object<&'c Conn>, i32> {
    Object::open(conn, &(queue(name), options))
        .map(mqi::result::Completion::discard_warning)
        .map_err(|e| e.2.0)
}

/// Gets one message's payload; `Err(reason)` on failure, including 2033.
pub fn get(obj: &Object<&Conn>, options: MQGMO) -> Result<Vec<u8>, i32> {
    let mut buf = vec![0u8; 64 * 1024];
    match obj.get_data(&options, &mut buf[..]) {
        Ok(c) => match c.discard_warning() {
            Some(data) => Ok(data.to_vec()),
            None => Err(constants::MQRC_NO_MSG_AVAILABLE.0),
        },
        Err(e) => Err(e.2.0),
    }
}

pub fn put(obj: &Object<&Conn>, data: &str) -> Result<(), i32> {
    obj.put_message(&constants::MQPMO_NO_SYNCPOINT, data)
        .map(mqi::result::Completion::discard_warning)
        .map_err(|e| e.2.0)
}

/// A client connection over `channel`, as MQSERVER would make it.
pub fn connect_client(lib: FakeMqi, channel: &str) -> Result<Conn, i32> {
    let server = format!("{channel}/TCP/localhost(1414)");
    let server = mqi::connection::MqServer::try_from(server.as_str()).expect("MQSERVER syntax");
    mqi::connect_lib(lib, &server)
        .map(mqi::result::Completion::discard_warning)
        .map_err(|e| e.2.0)
}

/// The handle of the connection made most recently.
pub fn last_hconn(qm: &FakeQm) -> i32 {
    qm.connections().iter().map(|c| c.hconn).max().expect("a connection")
}

/// The reason code of an mqi result.
pub fn rc<T>(r: mqi::result::ResultComp<T>) -> i32 {
    match r {
        Ok(c) => c.warning().map_or(0, |(rc, _)| rc.0),
        Err(e) => e.2.0,
    }
}
