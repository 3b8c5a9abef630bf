//! What the polling connector costs against hand-written MQI loops on the same fake.
//!
//! - `worker_drain` vs `tight_loop`: draining 10,000 messages with the worker (P=4, four
//!   pollers, batch 50, a sink that discards) against one connection doing MQGET under
//!   syncpoint 50 times and MQCMIT, through `mqi` on the same fake (and against four such
//!   loops on four connections, `tight_loop_4_connections`). Target: the worker reaches at
//!   least 50% of the tight loop's messages per second.
//! - Two more baselines that split the gap: `tight_loop_keeping_batch`, the tight loop that
//!   also keeps each message (its MQMD and a copy of its payload) in a batch until MQCMIT, the
//!   least a connector that hands batches to a sink must do; and `worker_drain_one_connection`,
//!   the worker on one connection.
//! - `tight_loop_cold_caches` and `worker_drain_cold_caches`: the same two drains after 64 MiB
//!   were written between seeding and timing. The queue is seeded on the bench's own thread,
//!   which is also the one-connection loop's, so without this the loop finds the messages
//!   its core has just written still in that core's cache, and the worker's connection
//!   threads do not.
//! - `worker_one_connection_100us` vs `open_get_close_100us`: with 100 µs added to every MQI
//!   call (a network round trip), the worker on one connection (batch 50) against the Logic
//!   Apps built-in connector's pattern of MQOPEN, MQGET, MQCLOSE per message. Target: at least
//!   2.5x the messages per second per connection, holding one handle instead of one per
//!   message in flight.
//!
//! Numbers and the commands are in BENCHMARKS.md.

use std::str::FromStr;
use std::time::Duration;

use divan::counter::ItemsCount;
use divan::{Bencher, black_box};
use mqi::connection::{NO_CONNECT_OPTIONS, ThreadNone};
use mqi::constants::{MQGMO_NO_WAIT, MQGMO_SYNCPOINT, MQOO_INPUT_AS_Q_DEF};
use mqi::types::QueueName;
use mqi::{Object, Syncpoint};
use mqpilot::fake::{ChannelDef, FakeConfig, FakeQm, PutSpec, QueueDef};
use mqpilot::mq::MqLibrary;

#[path = "support/drain.rs"]
mod support;
use support::{BATCH, QUEUE, drain, runtime};

const MESSAGES: usize = 10000;
const LATENCY_MESSAGES: usize = 200;

fn main() {
    divan::main();
}

fn seeded(messages: usize, latency: Duration) -> FakeQm {
    let mut config = FakeConfig::default();
    config.channels.push(ChannelDef::new("BENCH.SVRCONN"));
    config.queues.push(QueueDef::new(QUEUE).max_depth(100_000));
    let qm = FakeQm::new(config);
    let payload = vec![b'x'; 512];
    for _ in 0..messages {
        qm.put_message(QUEUE, PutSpec::text(payload.clone())).expect("seed");
    }
    qm.set_latency(latency);
    qm
}

#[divan::bench(sample_count = 20, sample_size = 1)]
fn worker_drain(bencher: Bencher) {
    let rt = runtime();
    bencher
        .counter(ItemsCount::new(MESSAGES))
        .with_inputs(|| seeded(MESSAGES, Duration::ZERO))
        .bench_local_values(|qm| assert_eq!(drain(&rt, MqLibrary::fake(qm.library("10.0.0.1")), 4), MESSAGES as u64));
}

/// A bindings connection to the fake, through `mqi` alone.
fn connect(qm: &FakeQm) -> mqi::Connection<mqpilot::fake::FakeMqi, ThreadNone> {
    mqi::connect_lib::<ThreadNone, _>(qm.library("10.0.0.1"), NO_CONNECT_OPTIONS)
        .expect("connect")
        .discard_warning()
}

/// The bench queue, opened for input.
fn open_input<C: mqi::connection::AsConnection>(conn: C) -> Object<C> {
    Object::open(conn, &(QueueName::from_str(QUEUE).expect("name"), MQOO_INPUT_AS_Q_DEF))
        .expect("open")
        .discard_warning()
}

/// One connection: 50 gets under syncpoint, MQCMIT, until the queue is empty.
fn tight_loop_drain(qm: &FakeQm) -> usize {
    let conn = connect(qm);
    let q = open_input(&conn);
    let mut buf = vec![0u8; 64 * 1024];
    let mut n = 0;
    loop {
        let mut in_batch = 0;
        while in_batch < BATCH {
            match q
                .get_data(&(MQGMO_SYNCPOINT | MQGMO_NO_WAIT), &mut buf[..])
                .expect("get")
                .discard_warning()
            {
                Some(data) => {
                    black_box(data);
                    in_batch += 1;
                }
                None => break,
            }
        }
        let _ = Syncpoint::new(&conn).commit().expect("commit");
        n += in_batch;
        if in_batch < BATCH {
            return n;
        }
    }
}

#[divan::bench(sample_count = 20, sample_size = 1)]
fn tight_loop(bencher: Bencher) {
    bencher
        .counter(ItemsCount::new(MESSAGES))
        .with_inputs(|| seeded(MESSAGES, Duration::ZERO))
        .bench_local_values(|qm| assert_eq!(tight_loop_drain(&qm), MESSAGES));
}

/// The tight loop on four threads, one connection each, sharing the queue: the same
/// parallelism the worker gets with P=4.
#[divan::bench(sample_count = 20, sample_size = 1)]
fn tight_loop_4_connections(bencher: Bencher) {
    bencher
        .counter(ItemsCount::new(MESSAGES))
        .with_inputs(|| seeded(MESSAGES, Duration::ZERO))
        .bench_local_values(|qm| {
            let total: usize = std::thread::scope(|s| {
                let threads: Vec<_> = (0..4).map(|_| s.spawn(|| tight_loop_drain(&qm))).collect();
                threads.into_iter().map(|t| t.join().expect("tight loop")).sum()
            });
            assert_eq!(total, MESSAGES);
        });
}

/// The tight loop, keeping each message of a batch until MQCMIT: its MQMD and its payload,
/// copied into one shared block as the worker does.
fn tight_loop_keeping_batch_drain(qm: &FakeQm) -> usize {
    let conn = connect(qm);
    let q = open_input(&conn);
    let mut buf = vec![0u8; 64 * 1024];
    let mut block = bytes::BytesMut::with_capacity(64 * 1024);
    let mut n = 0;
    loop {
        let mut batch: Vec<(bytes::Bytes, mqi::structs::MQMD)> = Vec::with_capacity(BATCH);
        while batch.len() < BATCH {
            match q
                .get_data_with::<mqi::structs::MQMD, _>(&(MQGMO_SYNCPOINT | MQGMO_NO_WAIT), &mut buf[..])
                .expect("get")
                .discard_warning()
            {
                Some((data, md)) => {
                    block.extend_from_slice(data);
                    batch.push((block.split().freeze(), md));
                }
                None => break,
            }
        }
        black_box(&batch);
        let _ = Syncpoint::new(&conn).commit().expect("commit");
        n += batch.len();
        if batch.len() < BATCH {
            return n;
        }
    }
}

#[divan::bench(sample_count = 20, sample_size = 1)]
fn tight_loop_keeping_batch(bencher: Bencher) {
    bencher
        .counter(ItemsCount::new(MESSAGES))
        .with_inputs(|| seeded(MESSAGES, Duration::ZERO))
        .bench_local_values(|qm| assert_eq!(tight_loop_keeping_batch_drain(&qm), MESSAGES));
}

#[divan::bench(sample_count = 20, sample_size = 1)]
fn worker_drain_one_connection(bencher: Bencher) {
    let rt = runtime();
    bencher
        .counter(ItemsCount::new(MESSAGES))
        .with_inputs(|| seeded(MESSAGES, Duration::ZERO))
        .bench_local_values(|qm| assert_eq!(drain(&rt, MqLibrary::fake(qm.library("10.0.0.1")), 1), MESSAGES as u64));
}

/// Writes 64 MiB, so that the messages just seeded are no longer in the seeding core's own
/// caches: the thread that seeded is the one-connection loop's, not the worker's.
fn evict_caches() {
    static JUNK: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());
    let mut junk = JUNK.lock().expect("junk");
    if junk.is_empty() {
        junk.resize(64 << 20, 1);
    }
    for b in junk.iter_mut().step_by(64) {
        *b = b.wrapping_add(1);
    }
    black_box(&junk);
}

#[divan::bench(sample_count = 20, sample_size = 1)]
fn tight_loop_cold_caches(bencher: Bencher) {
    bencher
        .counter(ItemsCount::new(MESSAGES))
        .with_inputs(|| {
            let qm = seeded(MESSAGES, Duration::ZERO);
            evict_caches();
            qm
        })
        .bench_local_values(|qm| assert_eq!(tight_loop_drain(&qm), MESSAGES));
}

#[divan::bench(sample_count = 20, sample_size = 1)]
fn worker_drain_cold_caches(bencher: Bencher) {
    let rt = runtime();
    bencher
        .counter(ItemsCount::new(MESSAGES))
        .with_inputs(|| {
            let qm = seeded(MESSAGES, Duration::ZERO);
            evict_caches();
            qm
        })
        .bench_local_values(|qm| assert_eq!(drain(&rt, MqLibrary::fake(qm.library("10.0.0.1")), 4), MESSAGES as u64));
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn worker_one_connection_100us(bencher: Bencher) {
    let rt = runtime();
    bencher
        .counter(ItemsCount::new(LATENCY_MESSAGES))
        .with_inputs(|| seeded(LATENCY_MESSAGES, Duration::from_micros(100)))
        .bench_local_values(|qm| {
            assert_eq!(
                drain(&rt, MqLibrary::fake(qm.library("10.0.0.1")), 1),
                LATENCY_MESSAGES as u64
            )
        });
}

/// The Logic Apps built-in connector's way: open the queue, get one message, close, per message.
fn open_get_close_drain(qm: &FakeQm) -> usize {
    let conn = connect(qm);
    let mut buf = vec![0u8; 64 * 1024];
    let mut n = 0;
    loop {
        let q = open_input(&conn);
        let got = q
            .get_data(&MQGMO_NO_WAIT, &mut buf[..])
            .expect("get")
            .discard_warning()
            .is_some();
        let _ = q.close().expect("close");
        if !got {
            return n;
        }
        n += 1;
    }
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn open_get_close_100us(bencher: Bencher) {
    bencher
        .counter(ItemsCount::new(LATENCY_MESSAGES))
        .with_inputs(|| seeded(LATENCY_MESSAGES, Duration::from_micros(100)))
        .bench_local_values(|qm| assert_eq!(open_get_close_drain(&qm), LATENCY_MESSAGES));
}
