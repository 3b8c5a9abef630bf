//! A tour of the fake queue manager for someone who knows IBM MQ.
//!
//! Defines QM1 with MAXHANDS(4) and a local queue, then through `mqi` (the code path
//! production uses, here on the in-process `FakeMqi`): puts a message, browses it, gets it
//! under syncpoint, backs out (`BackoutCount` becomes 1), and opens handles until MQOPEN
//! returns 2017. Each step prints the MQI call, its completion and reason code with what the
//! code means, and what `DISPLAY QSTATUS` / `DISPLAY CONN` would show. Every number printed
//! comes from the run.
//!
//! Run it with `cargo run --example fake_tour`.

use std::str::FromStr;

use mqi::attribute::MQIA_MAX_HANDLES;
use mqi::connection::ThreadNone;
use mqi::constants::{
    MQGMO_BROWSE_FIRST, MQGMO_SYNCPOINT, MQOO_BROWSE, MQOO_INPUT_AS_Q_DEF, MQOO_INQUIRE, MQOO_OUTPUT,
    MQPMO_NO_SYNCPOINT,
};
use mqi::result::ResultComp;
use mqi::structs::MQMD;
use mqi::types::{ApplName, MQOO, MessageId, QueueManagerName, QueueName};
use mqi::{Connection, Object, Syncpoint};
use mqpilot::fake::{ConnStatus, FakeConfig, FakeMqi, FakeQm, QueueDef};
use mqpilot::mq::reason::Reason;

type Conn = Connection<FakeMqi, ThreadNone>;
type Queue<'c> = Object<&'c Conn>;

const QMGR: &str = "QM1";
const QUEUE: &str = "ORDERS.IN";
const MAXHANDS: i32 = 4;
const APPL_NAME: &str = "fake_tour";
const MESSAGE: &str = "order 1001";
/// Opens stop here even if 2017 never comes, so a broken fake cannot loop forever.
const MAX_OPENS: usize = 64;

fn main() {
    let qm = define_queue_manager();
    let conn = connect(&qm);
    let maxhands = inquire_maxhands(&conn);
    let queue = open_queue(&qm, &conn, maxhands);
    put(&qm, &queue);
    browse(&qm, &queue, "a browse leaves the message where it is");
    get_under_syncpoint(&qm, &queue);
    back_out(&qm, &conn);
    browse(&qm, &queue, "MQBACK put the message back with BackoutCount + 1");
    let held = open_until_2017(&qm, &conn, maxhands);
    summary(&qm);
    drop(held);
}

/// `ALTER QMGR MAXHANDS(4)` and `DEFINE QLOCAL`, on a fresh fake.
fn define_queue_manager() -> FakeQm {
    let mut config = FakeConfig::default();
    config.queue_manager.name = QMGR.to_owned();
    config.queue_manager.max_handles = MAXHANDS;
    config.queues.push(QueueDef::new(QUEUE));
    let qm = FakeQm::new(config);
    println!("Queue manager {} (the in-process fake), defined with:", qm.name());
    println!("  ALTER QMGR MAXHANDS({MAXHANDS})");
    println!("  DEFINE QLOCAL({QUEUE})");
    println!("Every call below goes through the mqi crate to the fake's MQI, as production code does.");
    qm
}

fn connect(qm: &FakeQm) -> Conn {
    step(&format!("MQCONNX {QMGR}, application name {APPL_NAME}"));
    let appl = ApplName::from_str(APPL_NAME).expect("application name fits in 28 characters");
    let result = mqi::connect_lib(qm.library("127.0.0.1"), &appl);
    outcome(&result);
    let conn = result.expect("a fresh fake accepts the connection").discard_warning();
    let status = this_connection(qm);
    detail(&format!(
        "DISPLAY CONN: CONN({}) APPLTAG({}) {}",
        status.hconn,
        status.appl_name.trim_end(),
        status
            .channel
            .map_or_else(|| "bindings, no channel".to_owned(), |c| format!("CHANNEL({c})"))
    ));
    conn
}

/// Reads MAXHANDS as a connector would: MQOPEN the queue manager object, MQINQ, MQCLOSE.
fn inquire_maxhands(conn: &Conn) -> i32 {
    step(&format!("MQOPEN the queue manager object {QMGR} with INQUIRE"));
    let qmgr = QueueManagerName::from_str(QMGR).expect("queue manager name fits in 48 characters");
    let result = Object::open(conn, &(qmgr, MQOO_INQUIRE));
    outcome(&result);
    let object = result.expect("the queue manager object opens").discard_warning();
    step("MQINQ MQIA_MAX_HANDLES");
    let result = object.inquire_integer(MQIA_MAX_HANDLES);
    outcome(&result);
    let maxhands = result
        .expect("the queue manager answers MQIA_MAX_HANDLES")
        .discard_warning()
        .expect("MQIA_MAX_HANDLES is an integer attribute");
    detail(&format!(
        "MAXHANDS({maxhands}): open handles one connection may hold at once"
    ));
    step(&format!("MQCLOSE {QMGR}"));
    outcome(&object.close());
    maxhands
}

fn open_queue<'c>(qm: &FakeQm, conn: &'c Conn, maxhands: i32) -> Queue<'c> {
    step(&format!("MQOPEN {QUEUE} with INPUT_AS_Q_DEF + BROWSE + OUTPUT"));
    let result = open(conn, MQOO_INPUT_AS_Q_DEF | MQOO_BROWSE | MQOO_OUTPUT);
    outcome(&result);
    let queue = result.expect("the queue is defined").discard_warning();
    let status = qm.queue_status(QUEUE).expect("queue defined");
    detail(&format!("hobj {}", queue.handle().raw_handle()));
    detail(&handles_in_use(qm, maxhands));
    detail(&format!(
        "DISPLAY QSTATUS: IPPROCS({}) OPPROCS({})",
        status.ipprocs, status.opprocs
    ));
    queue
}

fn put(qm: &FakeQm, queue: &Queue<'_>) {
    step(&format!("MQPUT \"{MESSAGE}\" with NO_SYNCPOINT"));
    let result = queue.put_message_with::<MessageId>(&MQPMO_NO_SYNCPOINT, MESSAGE);
    outcome(&result);
    let MessageId(msg_id) = result.expect("the put succeeds").discard_warning();
    detail(&format!("MsgId {}; {}", hex(&msg_id), qstatus(qm)));
}

fn browse(qm: &FakeQm, queue: &Queue<'_>, note: &str) {
    step("MQGET with BROWSE_FIRST");
    let mut buffer = [0u8; 256];
    let result = queue.get_data_with::<MQMD, u8>(&MQGMO_BROWSE_FIRST, &mut buffer);
    outcome(&result);
    if let Some((data, md)) = result.expect("the browse succeeds").discard_warning() {
        detail(&format!(
            "\"{}\" BackoutCount({}); {}",
            String::from_utf8_lossy(data),
            md.BackoutCount,
            qstatus(qm)
        ));
    }
    detail(note);
}

fn get_under_syncpoint(qm: &FakeQm, queue: &Queue<'_>) {
    step("MQGET with SYNCPOINT");
    let mut buffer = [0u8; 256];
    let result = queue.get_data(&MQGMO_SYNCPOINT, &mut buffer);
    outcome(&result);
    if let Some(data) = result.expect("the get succeeds").discard_warning() {
        detail(&format!("\"{}\"; {}", String::from_utf8_lossy(data), qstatus(qm)));
    }
    detail("no other consumer can see the message until MQCMIT (gone) or MQBACK (back)");
}

fn back_out(qm: &FakeQm, conn: &Conn) {
    step("MQBACK");
    let result = Syncpoint::new(conn).backout();
    outcome(&result);
    detail(&qstatus(qm));
}

/// Opens `QUEUE` for inquire on the same connection until MQOPEN fails; returns the handles
/// so they stay open (and count) until the caller drops them.
fn open_until_2017<'c>(qm: &FakeQm, conn: &'c Conn, maxhands: i32) -> Vec<Queue<'c>> {
    let mut held = Vec::new();
    let already = this_connection(qm).handles.len();
    for n in already + 1..=MAX_OPENS {
        step(&format!(
            "MQOPEN {QUEUE} with INQUIRE, for handle number {n} on this connection"
        ));
        let result = open(conn, MQOO_INQUIRE);
        outcome(&result);
        match result {
            Ok(queue) => {
                held.push(queue.discard_warning());
                detail(&handles_in_use(qm, maxhands));
            }
            Err(_) => {
                detail(&handles_in_use(qm, maxhands));
                detail(&format!("handle number {n} would pass MAXHANDS, so MQOPEN refuses it"));
                return held;
            }
        }
    }
    detail(&format!(
        "no 2017 after {MAX_OPENS} opens: MAXHANDS is not being enforced"
    ));
    held
}

/// What the fake counted, like the reason codes an MQ trace would show.
fn summary(qm: &FakeQm) {
    println!("\nCalls the queue manager answered, by verb and reason code:");
    for ((verb, rc), count) in qm.reason_counts() {
        println!("  {:<8} {:<36} x{count}", verb.name(), Reason(rc).to_string());
    }
}

fn open(conn: &Conn, options: MQOO) -> ResultComp<Queue<'_>> {
    let name = QueueName::from_str(QUEUE).expect("queue name fits in 48 characters");
    Object::open(conn, &(name, options))
}

/// Prints the completion code and reason code of a call with what the code means; for
/// anything but `MQRC_NONE` also its class (what a caller should do) and the advice.
fn outcome<T>(result: &ResultComp<T>) {
    let (cc, reason) = match result {
        Ok(done) => match done.warning() {
            Some((rc, _verb)) => ("MQCC_WARNING".to_owned(), Reason::from(rc)),
            None => ("MQCC_OK".to_owned(), Reason::NONE),
        },
        Err(error) => (error.0.to_string(), Reason::from(error)),
    };
    match reason.info() {
        Some(info) => {
            println!("    {cc}, {reason}: {}", info.meaning);
            if reason != Reason::NONE {
                println!("    class {}: {}", info.class, info.advice);
            }
        }
        None => {
            println!("    {cc}, reason:");
            for line in reason.explain().lines() {
                println!("      {line}");
            }
        }
    }
}

fn step(call: &str) {
    println!("\n> {call}");
}

fn detail(text: &str) {
    println!("    {text}");
}

/// What `DISPLAY QSTATUS` shows for the queue: CURDEPTH and UNCOM.
fn qstatus(qm: &FakeQm) -> String {
    let status = qm.queue_status(QUEUE).expect("queue defined");
    format!(
        "DISPLAY QSTATUS: CURDEPTH({}) UNCOM({})",
        status.depth, status.uncommitted
    )
}

fn handles_in_use(qm: &FakeQm, maxhands: i32) -> String {
    format!(
        "DISPLAY CONN: this connection holds {} of MAXHANDS({maxhands}) handles",
        this_connection(qm).handles.len()
    )
}

/// `DISPLAY CONN(*) WHERE(APPLTAG EQ fake_tour)`.
fn this_connection(qm: &FakeQm) -> ConnStatus {
    qm.connections()
        .into_iter()
        .find(|c| c.appl_name.trim_end() == APPL_NAME)
        .expect("the tour's connection is live")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}
