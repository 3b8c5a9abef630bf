//! The MCP server over streamable HTTP on loopback, against the fake queue manager.
//!
//! - `browse_32_clients` (printed first, not a divan benchmark): 32 rmcp clients (protocol
//!   2026-07-28, stateless) call `browse_messages` (10 messages, 256 payload bytes each) in a
//!   loop for 5 s after a 1 s warm-up, on one server with a pool of 4 connections. Prints
//!   p50, p99 and calls/s from every call's latency. Target: p99 under 10 ms and at least
//!   2,000 calls/s on a 2-core machine.
//! - `browse_one_client` (divan): one client's sequential `browse_messages` latency, the
//!   floor under the concurrent figures.
//!
//! Numbers and the command are in BENCHMARKS.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mqpilot::fake::{ChannelDef, FakeConfig, FakeQm, PutSpec, QueueDef};
use mqpilot::mcp::{self, Authenticator, Capability, HttpOptions, Policy};
use mqpilot::mq::MqLibrary;
use mqpilot::mq::options::{ConnectOptions, parse_mqserver};
use mqpilot::pool::PoolConfig;
use rmcp::model::{CallToolRequestParams, ProtocolVersion};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{ClientLifecycleMode, ClientServiceExt as _};
use serde_json::json;
use tokio_util::sync::CancellationToken;

const QUEUE: &str = "BENCH.IN";
const CLIENTS: usize = 32;
const WARM_UP: Duration = Duration::from_secs(1);
const MEASURE: Duration = Duration::from_secs(5);

type Client = RunningService<RoleClient, ()>;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// An HTTP server on loopback over a fake with 100 messages on `BENCH.IN`; returns its URL.
async fn start(cancel: &CancellationToken) -> String {
    let mut config = FakeConfig::default();
    config.channels.push(ChannelDef::new("APP.SVRCONN"));
    config.queues.push(QueueDef::new(QUEUE));
    let qm = FakeQm::new(config);
    for i in 0..100 {
        qm.put_message(
            QUEUE,
            PutSpec::text(format!(r#"{{"order":{i},"item":"widget","quantity":3}}"#)),
        )
        .expect("seed");
    }
    let options = ConnectOptions::builder()
        .with_channel(parse_mqserver("APP.SVRCONN/TCP/localhost(1414)", "bench").expect("channel"))
        .build()
        .expect("options");
    let pool = PoolConfig {
        connections: 4,
        ..PoolConfig::default()
    };
    let server = mcp::build(
        MqLibrary::fake(qm.library("127.0.0.1")),
        options,
        pool,
        Arc::new(qm),
        Policy::with(&[Capability::Inspect, Capability::Browse], &["*"]),
        cancel,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let options = HttpOptions {
        max_in_flight: CLIENTS,
        ..HttpOptions::default()
    };
    let router = mcp::http::router(server, &options, Arc::new(Authenticator::none()), addr, cancel);
    tokio::spawn(mcp::http::serve(listener, router, cancel.clone()));
    format!("http://{addr}/mcp")
}

async fn client(url: &str) -> Client {
    let transport = StreamableHttpClientTransport::from_uri(url.to_owned());
    ().serve_with_lifecycle(
        transport,
        ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        },
    )
    .await
    .expect("client")
}

async fn browse(c: &Client) {
    let args = json!({"queue": QUEUE, "limit": 10, "max_payload_bytes": 256});
    let serde_json::Value::Object(map) = args else {
        unreachable!()
    };
    let r = c
        .call_tool(CallToolRequestParams::new("browse_messages").with_arguments(map))
        .await
        .expect("call");
    assert_ne!(r.is_error, Some(true), "{:?}", r.structured_content);
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn browse_32_clients() {
    let rt = runtime();
    rt.block_on(async {
        let cancel = CancellationToken::new();
        let url = start(&cancel).await;
        let mut clients = Vec::new();
        for _ in 0..CLIENTS {
            clients.push(Arc::new(client(&url).await));
        }
        let start = Instant::now();
        let measure_from = start + WARM_UP;
        let end = measure_from + MEASURE;
        let mut tasks = Vec::new();
        for c in clients {
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let t = Instant::now();
                    if t >= end {
                        break;
                    }
                    browse(&c).await;
                    if t >= measure_from {
                        latencies.push(t.elapsed());
                    }
                }
                latencies
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("client task"));
        }
        all.sort();
        let calls = all.len();
        println!(
            "browse_32_clients: {calls} calls in {:?}: {:.0} calls/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            MEASURE,
            calls as f64 / MEASURE.as_secs_f64(),
            percentile(&all, 0.50).as_secs_f64() * 1e3,
            percentile(&all, 0.99).as_secs_f64() * 1e3,
            all.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        );
        cancel.cancel();
    });
}

fn main() {
    browse_32_clients();
    divan::main();
}

#[divan::bench(sample_count = 200, sample_size = 5)]
fn browse_one_client(bencher: divan::Bencher) {
    let rt = runtime();
    let cancel = CancellationToken::new();
    let c = rt.block_on(async {
        let url = start(&cancel).await;
        client(&url).await
    });
    bencher.bench_local(|| rt.block_on(browse(&c)));
    cancel.cancel();
}
