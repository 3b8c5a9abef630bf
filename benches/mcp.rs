//! The MCP server over streamable HTTP on loopback, against the fake queue manager.
//!
//! - `browse_32_clients` (printed first, not a divan benchmark): 32 rmcp clients (protocol
//!   2026-07-28, stateless) call `browse_messages` (10 messages, 256 payload bytes each) in a
//!   loop for 5 s after a 1 s warm-up, on one server with a pool of 4 connections. Prints
//!   p50, p99 and calls/s from every call's latency; then the same with 2025-11-25 clients
//!   (initialize, one session each); then 2026-07-28 clients against the `mqpilot` binary
//!   (`mcp --listen --fake`, DEMO.IN) in its own process, whose CPU time per call is read
//!   from /proc: the server's share of the machine, apart from the clients'. Target: p99 under 10 ms and at least
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

fn modern() -> ClientLifecycleMode {
    ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    }
}

async fn client(url: &str, lifecycle: ClientLifecycleMode) -> Client {
    let transport = StreamableHttpClientTransport::from_uri(url.to_owned());
    ().serve_with_lifecycle(transport, lifecycle).await.expect("client")
}

async fn browse(c: &Client, queue: &str) {
    let args = json!({"queue": queue, "limit": 10, "max_payload_bytes": 256});
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

/// CPU seconds (user + system) a process has used, from /proc (Linux).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// The `mqpilot` binary serving the demo queue manager on a free loopback port.
fn spawn_binary() -> (std::process::Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("addr")
        .port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_mqpilot"))
        .args([
            "mcp",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--fake",
            "--max-in-flight",
            "64",
        ])
        .env("RUST_LOG", "warn")
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn mqpilot");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "mqpilot did not start listening");
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, format!("http://127.0.0.1:{port}/mcp"))
}

/// Where the server runs.
enum Server {
    InProcess,
    Binary,
}

fn browse_32_clients(label: &str, lifecycle: &ClientLifecycleMode, server: &Server) {
    let rt = runtime();
    rt.block_on(async {
        let cancel = CancellationToken::new();
        let (child, url, queue) = match server {
            Server::InProcess => (None, start(&cancel).await, QUEUE),
            Server::Binary => {
                let (child, url) = spawn_binary();
                (Some(child), url, "DEMO.IN")
            }
        };
        let mut clients = Vec::new();
        for _ in 0..CLIENTS {
            clients.push(Arc::new(client(&url, lifecycle.clone()).await));
        }
        let start = Instant::now();
        let measure_from = start + WARM_UP;
        let end = measure_from + MEASURE;
        let mut tasks = Vec::new();
        let mut cpu_start = None;
        for c in clients {
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let t = Instant::now();
                    if t >= end {
                        break;
                    }
                    browse(&c, queue).await;
                    if t >= measure_from {
                        latencies.push(t.elapsed());
                    }
                }
                latencies
            }));
        }
        if let Some(child) = &child {
            tokio::time::sleep_until((measure_from).into()).await;
            cpu_start = cpu_seconds(child.id());
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("client task"));
        }
        let server_cpu = match (&child, cpu_start) {
            (Some(child), Some(start)) => cpu_seconds(child.id()).map(|end| end - start),
            _ => None,
        };
        all.sort();
        let calls = all.len();
        println!(
            "browse_32_clients ({label}): {calls} calls in {:?}: {:.0} calls/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            MEASURE,
            calls as f64 / MEASURE.as_secs_f64(),
            percentile(&all, 0.50).as_secs_f64() * 1e3,
            percentile(&all, 0.99).as_secs_f64() * 1e3,
            all.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        );
        if let Some(cpu) = server_cpu {
            println!(
                "  server process CPU: {:.1} µs per call ({:.2} of {} cores busy in the server)",
                cpu / calls as f64 * 1e6,
                cpu / MEASURE.as_secs_f64(),
                std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
            );
        }
        if let Some(mut child) = child {
            let _ = child.kill();
            let _ = child.wait();
        }
        cancel.cancel();
    });
}

fn main() {
    browse_32_clients("2026-07-28, stateless", &modern(), &Server::InProcess);
    browse_32_clients(
        "2025-11-25, sessions",
        &ClientLifecycleMode::Initialize,
        &Server::InProcess,
    );
    browse_32_clients("2026-07-28, server in its own process", &modern(), &Server::Binary);
    divan::main();
}

#[divan::bench(sample_count = 200, sample_size = 5)]
fn browse_one_client(bencher: divan::Bencher) {
    let rt = runtime();
    let cancel = CancellationToken::new();
    let c = rt.block_on(async {
        let url = start(&cancel).await;
        client(&url, modern()).await
    });
    bencher.bench_local(|| rt.block_on(browse(&c, QUEUE)));
    cancel.cancel();
}
