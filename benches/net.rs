//! The polling connector through the fake queue manager over TCP against the same fake in
//! process.
//!
//! `worker_drain_tcp`: the real worker (P=4 connections, four pollers, batch 50, syncpoint, a
//! sink that discards) drains 10,000 messages of 512 bytes from a `fake-qm` server on
//! loopback, in this process (server threads and worker share the machine, as they would
//! in a development loop). `worker_drain_in_process`: the same drain on `FakeQm::library`.
//! Target: the network path reaches at least 30% of the in-process messages per second.
//! Numbers and the command are in BENCHMARKS.md.

use std::sync::Arc;

use divan::counter::ItemsCount;
use divan::{Bencher, black_box};
use mqpilot::fake::net::Server;
use mqpilot::fake::{ChannelDef, FakeConfig, FakeQm, PutSpec, QueueDef};
use mqpilot::mq::MqLibrary;
use mqpilot::mq::message::Message;
use mqpilot::mq::options::{ConnectOptions, parse_mqserver};
use mqpilot::pool::{Pool, PoolConfig};
use mqpilot::worker::poller::{PollPlan, RunLimits, SinkTarget};
use mqpilot::worker::run::{QueueRun, start};
use mqpilot::worker::sink::{Delivery, Sink};
use tokio_util::sync::CancellationToken;

const QUEUE: &str = "BENCH.IN";
const MESSAGES: usize = 10_000;
const BATCH: usize = 50;
const CONNECTIONS: usize = 4;

fn main() {
    divan::main();
}

/// A sink that takes everything and keeps nothing.
struct Discard;

impl Sink for Discard {
    fn deliver<'a>(&'a self, batch: &'a [Message]) -> Delivery<'a> {
        black_box(batch.len());
        Box::pin(async { Ok(()) })
    }

    fn name(&self) -> &'static str {
        "discard"
    }
}

fn queue_manager() -> FakeQm {
    let mut config = FakeConfig::default();
    config.channels.push(ChannelDef::new("BENCH.SVRCONN"));
    config.queues.push(QueueDef::new(QUEUE).max_depth(100_000));
    FakeQm::new(config)
}

fn seed(qm: &FakeQm) {
    let payload = vec![b'x'; 512];
    for _ in 0..MESSAGES {
        qm.put_message(QUEUE, PutSpec::text(payload.clone())).expect("seed");
    }
}

/// Drains the queue with the real worker through `library`; returns messages delivered.
fn drain(runtime: &tokio::runtime::Runtime, library: MqLibrary) -> u64 {
    let options = ConnectOptions::builder()
        .with_channel(parse_mqserver("BENCH.SVRCONN/TCP/localhost(1414)", "bench").expect("channel"))
        .build()
        .expect("options");
    let config = PoolConfig {
        connections: CONNECTIONS,
        ..PoolConfig::default()
    };
    let pool = Pool::new(library, options, config);
    let plan = Arc::new(PollPlan {
        queue: QUEUE.into(),
        syncpoint: true,
        batch: BATCH,
        max_batch_bytes: usize::MAX,
        wait_ms: 0,
        backout_threshold: 0,
        backout_queue: None,
        sink: SinkTarget::External(Arc::new(Discard)),
    });
    let queues = [QueueRun {
        plan,
        workers: CONNECTIONS,
    }];
    runtime.block_on(async {
        let cancel = CancellationToken::new();
        let (_handle, run) = start(&pool, &queues, RunLimits::new(true, None), &cancel);
        run.finish().await.total().delivered
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn worker_drain_tcp(bencher: Bencher) {
    let rt = runtime();
    let qm = queue_manager();
    let mut server = Server::bind("127.0.0.1:0", qm.clone())
        .and_then(Server::spawn)
        .expect("serve on loopback");
    let addr = server.local_addr().to_string();
    bencher
        .counter(ItemsCount::new(MESSAGES))
        .with_inputs(|| seed(&qm))
        .bench_local_values(|()| assert_eq!(drain(&rt, MqLibrary::remote(addr.clone())), MESSAGES as u64));
    server.shutdown();
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn worker_drain_in_process(bencher: Bencher) {
    let rt = runtime();
    let qm = queue_manager();
    bencher
        .counter(ItemsCount::new(MESSAGES))
        .with_inputs(|| seed(&qm))
        .bench_local_values(|()| assert_eq!(drain(&rt, MqLibrary::fake(qm.library("10.0.0.1"))), MESSAGES as u64));
}
