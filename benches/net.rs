//! The polling connector through the fake queue manager over TCP against the same fake in
//! process.
//!
//! `worker_drain_tcp`: the real worker (P=4 connections, four pollers, batch 50, syncpoint, a
//! sink that discards) drains 10,000 messages of 512 bytes from a `fake-qm` server on
//! loopback, in this process (server threads and worker share the machine, as they would
//! in a development loop), with the server's default read-ahead (64).
//! `worker_drain_tcp_without_read_ahead`: the same with read-ahead off, one round trip per
//! MQGET. `worker_drain_in_process`: the same drain on `FakeQm::library`.
//! Target: the network path reaches at least 30% of the in-process messages per second.
//! Numbers and the command are in BENCHMARKS.md.

use divan::Bencher;
use divan::counter::ItemsCount;
use mqpilot::fake::net::{DEFAULT_READ_AHEAD, Server};
use mqpilot::fake::{ChannelDef, FakeConfig, FakeQm, PutSpec, QueueDef};
use mqpilot::mq::MqLibrary;

#[path = "support/drain.rs"]
mod support;
use support::{QUEUE, drain, runtime};

const MESSAGES: usize = 10_000;
const CONNECTIONS: usize = 4;

fn main() {
    divan::main();
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

/// Drains through a server whose MQGET reads ahead up to `read_ahead` messages (0: off).
fn drain_tcp(bencher: Bencher, read_ahead: u32) {
    let rt = runtime();
    let qm = queue_manager();
    let mut server = Server::bind("127.0.0.1:0", qm.clone())
        .map(|s| s.with_read_ahead(read_ahead))
        .and_then(Server::spawn)
        .expect("serve on loopback");
    let addr = server.local_addr().to_string();
    bencher
        .counter(ItemsCount::new(MESSAGES))
        .with_inputs(|| seed(&qm))
        .bench_local_values(|()| {
            assert_eq!(
                drain(&rt, MqLibrary::remote(addr.clone()), CONNECTIONS),
                MESSAGES as u64
            )
        });
    server.shutdown();
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn worker_drain_tcp(bencher: Bencher) {
    drain_tcp(bencher, DEFAULT_READ_AHEAD);
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn worker_drain_tcp_without_read_ahead(bencher: Bencher) {
    drain_tcp(bencher, 0);
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn worker_drain_in_process(bencher: Bencher) {
    let rt = runtime();
    let qm = queue_manager();
    bencher
        .counter(ItemsCount::new(MESSAGES))
        .with_inputs(|| seed(&qm))
        .bench_local_values(|()| {
            assert_eq!(
                drain(&rt, MqLibrary::fake(qm.library("10.0.0.1")), CONNECTIONS),
                MESSAGES as u64
            )
        });
}
