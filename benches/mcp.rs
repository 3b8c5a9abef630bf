//! The MCP server over streamable HTTP on loopback, against the fake queue manager.
//!
//! Every set-up calls `browse_messages` (10 messages, 256 payload bytes each) from 32
//! clients in a closed loop for 5 s after a 1 s warm-up and prints p50, p99 and calls/s
//! from every call's latency. The target (p99 under 10 ms, at least 2,000 calls/s on a
//! 2-core machine) is the server's: the load generator should cost far less than the
//! server it measures, as wrk does, or the figures are the generator's.
//!
//! - `lean` (printed first): 32 keep-alive HTTP/1.1 connections on plain tokio sockets, each
//!   sending the same pre-serialized stateless 2026-07-28 `tools/call` and reading the whole
//!   response (checked for `"isError":false`). The generator runs on its own one-thread
//!   runtime; the server runs either in-process on its own runtime (pool of 4 connections)
//!   or as the `mqpilot` binary (`mcp --listen --fake`, DEMO.IN) in its own process, whose
//!   CPU time per call is read from /proc.
//! - `rmcp` rows: 32 rmcp clients in the server's own runtime, with protocol 2026-07-28
//!   (stateless) and 2025-11-25 (initialize, one session each), then 2026-07-28 clients
//!   against the binary. rmcp's client costs about as much CPU per call as the server, so
//!   these rows measure the pair on two shared cores.
//! - `browse_one_client` (divan): one rmcp client's sequential `browse_messages` latency,
//!   the floor under the concurrent figures.
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
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
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
        mqpilot::pool::Patience::default(),
        cancel,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let options = HttpOptions {
        max_in_flight: CLIENTS,
        ..HttpOptions::default()
    };
    let router = mcp::http::router(server, &options, Arc::new(Authenticator::none()), addr, cancel);
    tokio::spawn(mcp::http::serve(listener, router, &options, cancel.clone()));
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

/// One stateless 2026-07-28 `tools/call` of `browse_messages` as it goes on the wire: the
/// per-request `_meta` in the body and the `MCP-Protocol-Version`, `Mcp-Method` and
/// `Mcp-Name` headers rmcp checks against it.
fn browse_request(host: &str, queue: &str) -> Vec<u8> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "browse_messages",
        "arguments": {"queue": queue, "limit": 10, "max_payload_bytes": 256},
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {}}}})
    .to_string();
    format!(
        "POST /mcp HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\n\
         Mcp-Method: tools/call\r\nMcp-Name: browse_messages\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A keep-alive HTTP/1.1 connection that sends one request over and over.
struct LeanClient {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

impl LeanClient {
    async fn connect(addr: &str) -> Self {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Self {
            stream,
            buf: Vec::with_capacity(16 * 1024),
        }
    }

    /// Reads until `buf` holds at least `n` bytes.
    async fn fill(&mut self, n: usize) {
        while self.buf.len() < n {
            let mut chunk = [0u8; 16 * 1024];
            let got = self.stream.read(&mut chunk).await.expect("read");
            assert!(got > 0, "the server closed the connection");
            self.buf.extend_from_slice(&chunk[..got]);
        }
    }

    /// Reads until `needle` is in `buf` at or after `from`; returns where it starts.
    async fn fill_until(&mut self, from: usize, needle: &[u8]) -> usize {
        loop {
            if let Some(i) = find(&self.buf[from..], needle) {
                return from + i;
            }
            let have = self.buf.len();
            self.fill(have + 1).await;
        }
    }

    /// Sends `request` and reads the whole response (Content-Length or chunked); panics
    /// unless it is a 200 carrying a successful tool result.
    async fn call(&mut self, request: &[u8]) {
        self.stream.write_all(request).await.expect("write");
        self.buf.clear();
        let end = self.fill_until(0, b"\r\n\r\n").await + 4;
        let head = std::str::from_utf8(&self.buf[..end])
            .expect("ascii head")
            .to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{head}");
        let body = if let Some(len) = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map(|v| v.trim().parse::<usize>().expect("length"))
        {
            self.fill(end + len).await;
            self.buf[end..end + len].to_vec()
        } else {
            assert!(head.contains("transfer-encoding: chunked"), "{head}");
            self.chunked(end).await
        };
        assert!(
            find(&body, br#""isError":false"#).is_some(),
            "{}",
            String::from_utf8_lossy(&body)
        );
    }

    async fn chunked(&mut self, mut at: usize) -> Vec<u8> {
        let mut body = Vec::new();
        loop {
            let line_end = self.fill_until(at, b"\r\n").await;
            let size = std::str::from_utf8(&self.buf[at..line_end]).expect("chunk size");
            let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16).expect("hex size");
            at = line_end + 2;
            self.fill(at + size + 2).await;
            if size == 0 {
                return body;
            }
            body.extend_from_slice(&self.buf[at..at + size]);
            at += size + 2;
        }
    }
}

/// One client's latencies in a closed loop: calls start until `end`, and those started from
/// `measure_from` on are recorded.
struct Latencies {
    measure_from: Instant,
    end: Instant,
    all: Vec<Duration>,
}

impl Latencies {
    fn new(measure_from: Instant, end: Instant) -> Self {
        Self {
            measure_from,
            end,
            all: Vec::new(),
        }
    }

    /// When the next call starts, or `None` once the run is over.
    fn next_call(&self) -> Option<Instant> {
        let t = Instant::now();
        (t < self.end).then_some(t)
    }

    /// The call that started at `t` has ended.
    fn ended(&mut self, t: Instant) {
        if t >= self.measure_from {
            self.all.push(t.elapsed());
        }
    }
}

/// 32 lean clients on their own one-thread runtime against the server at `url`.
fn lean_32_clients(label: &str, url: &str, queue: &str, server_pid: Option<u32>) {
    let addr = url
        .strip_prefix("http://")
        .and_then(|r| r.strip_suffix("/mcp"))
        .expect("http://ADDR/mcp")
        .to_owned();
    let request: Arc<[u8]> = browse_request(&addr, queue).into();
    let generator = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (all, server_cpu) = generator.block_on(async {
        let start = Instant::now();
        let measure_from = start + WARM_UP;
        let end = measure_from + MEASURE;
        let mut tasks = Vec::new();
        for _ in 0..CLIENTS {
            let mut c = LeanClient::connect(&addr).await;
            let request = Arc::clone(&request);
            tasks.push(tokio::spawn(async move {
                let mut latencies = Latencies::new(measure_from, end);
                while let Some(t) = latencies.next_call() {
                    c.call(&request).await;
                    latencies.ended(t);
                }
                latencies.all
            }));
        }
        tokio::time::sleep_until(measure_from.into()).await;
        let cpu_start = server_pid.and_then(cpu_seconds);
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("client task"));
        }
        let cpu_end = server_pid.and_then(cpu_seconds);
        (all, cpu_start.zip(cpu_end).map(|(a, b)| b - a))
    });
    report(label, all, server_cpu);
}

fn lean_in_process() {
    let server_rt = runtime();
    let cancel = CancellationToken::new();
    let url = server_rt.block_on(start(&cancel));
    lean_32_clients("lean, server in-process on its own runtime", &url, QUEUE, None);
    cancel.cancel();
}

fn lean_binary() {
    let (mut child, url) = spawn_binary();
    lean_32_clients("lean, server in its own process", &url, "DEMO.IN", Some(child.id()));
    let _ = child.kill();
    let _ = child.wait();
}

/// Prints p50, p99, max and calls/s of `all`, and the server's CPU per call when known.
fn report(label: &str, mut all: Vec<Duration>, server_cpu: Option<f64>) {
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
                let mut latencies = Latencies::new(measure_from, end);
                while let Some(t) = latencies.next_call() {
                    browse(&c, queue).await;
                    latencies.ended(t);
                }
                latencies.all
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
        report(label, all, server_cpu);
        if let Some(mut child) = child {
            let _ = child.kill();
            let _ = child.wait();
        }
        cancel.cancel();
    });
}

fn main() {
    lean_in_process();
    lean_binary();
    browse_32_clients("rmcp 2026-07-28, stateless", &modern(), &Server::InProcess);
    browse_32_clients(
        "rmcp 2025-11-25, sessions",
        &ClientLifecycleMode::Initialize,
        &Server::InProcess,
    );
    browse_32_clients("rmcp 2026-07-28, server in its own process", &modern(), &Server::Binary);
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
