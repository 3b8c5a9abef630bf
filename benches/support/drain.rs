//! The worker drain both `worker` and `net` benchmarks time: the real pool and pollers on
//! BENCH.IN, batch 50 under syncpoint, into a sink that discards.

use std::sync::Arc;

use divan::black_box;
use mqpilot::mq::MqLibrary;
use mqpilot::mq::message::Message;
use mqpilot::mq::options::{ConnectOptions, parse_mqserver};
use mqpilot::pool::{Pool, PoolConfig};
use mqpilot::worker::limits::RunLimits;
use mqpilot::worker::poller::{PollPlan, SinkTarget};
use mqpilot::worker::run::{QueueRun, start};
use mqpilot::worker::sink::{Delivery, Sink};
use tokio_util::sync::CancellationToken;

/// The queue every drain empties.
pub const QUEUE: &str = "BENCH.IN";
/// Messages per batch.
pub const BATCH: usize = 50;

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

/// Drains QUEUE with the real worker through `library` on `connections` connections (one
/// poller each) until it is empty; returns the messages delivered.
pub fn drain(runtime: &tokio::runtime::Runtime, library: MqLibrary, connections: usize) -> u64 {
    let options = ConnectOptions::builder()
        .with_channel(parse_mqserver("BENCH.SVRCONN/TCP/localhost(1414)", "bench").expect("channel"))
        .build()
        .expect("options");
    let config = PoolConfig {
        connections,
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
        workers: connections,
    }];
    runtime.block_on(async {
        let cancel = CancellationToken::new();
        let (_handle, run) = start(&pool, &queues, RunLimits::new(true, None), &cancel);
        run.finish().await.total().delivered
    })
}

/// The runtime the worker runs on: two threads, as on the 2-core machine.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}
