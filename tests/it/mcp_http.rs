//! The MCP server over streamable HTTP on loopback: rmcp's client in both lifecycles
//! (2026-07-28 stateless discovery and 2025-11-25 initialize with a session), bearer tokens,
//! JWTs (HS256 and ES256 from a JWKS), the 401 challenge and its metadata, Host/Origin
//! checks, per-caller in-flight limits, and locks bound to their caller.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mqpilot::mcp::{self, Authenticator, HttpOptions, JwtConfig, Policy};
use rmcp::model::ProtocolVersion;
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientLifecycleMode, ClientServiceExt as _};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::mcp::{Client, Warnings, call, hex, ok, open_policy, qm, server, tool_error, until, until_mqget_waits};

const OPS_TOKEN: &str = "ops-0123456789abcdef";
const READER_TOKEN: &str = "reader-0123456789abcdef";
const HS_SECRET: &str = "0123456789abcdef0123456789abcdef-test-secret";
const ISSUER: &str = "https://issuer.example";
const AUDIENCE: &str = "https://mq.example/mcp";
/// A P-256 key made for these tests only (PKCS#8 DER, base64); its public half is in
/// `examples/mcp-jwks.json`.
const ES256_TEST_KEY: &str = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgSEp7rXfPcAa6yWPOoelPLSvocf8v9faEhpC3GIyuIWihRANCAATPjTg54oX20wBgxCGvuEFSbzd3qy2ZKJ8IzruLXo9Tli4fsw6MOFATTL39nqwq0MM9C2F4dgxUAStzxxThmU5G";

/// A file of its own for each call: tests run in parallel and several write the same name.
fn temp_file(name: &str, text: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("mqpilot-mcp-http-{}-{n}-{name}", std::process::id()));
    std::fs::write(&path, text).expect("write temp file");
    path
}

fn tokens_auth() -> Authenticator {
    let file = temp_file(
        "tokens.toml",
        &format!(
            "[[token]]\nname = \"ops\"\ntoken = \"{OPS_TOKEN}\"\ncapabilities = [\"inspect\", \"browse\", \"consume\"]\n\n\
             [[token]]\nname = \"reader\"\ntoken = \"{READER_TOKEN}\"\ncapabilities = [\"inspect\", \"consume\"]\n"
        ),
    );
    Authenticator::none().with_tokens_file(&file).expect("tokens file")
}

struct Http {
    url: String,
    addr: SocketAddr,
    cancel: CancellationToken,
    qm: mqpilot::fake::FakeQm,
    /// The listener's task: ends when `serve` returns.
    served: tokio::task::JoinHandle<()>,
}

impl Drop for Http {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn start(policy: Policy, auth: Authenticator, options: HttpOptions) -> Http {
    let qm = qm();
    let cancel = CancellationToken::new();
    let server = server(&qm, policy, 3, 32, &cancel);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = mcp::http::router(server, &options, Arc::new(auth), addr, &cancel);
    let served = tokio::spawn(mcp::http::serve(listener, router, &options, cancel.clone()));
    Http {
        url: format!("http://{addr}/mcp"),
        addr,
        cancel,
        qm,
        served,
    }
}

async fn client(
    url: &str,
    token: Option<&str>,
    lifecycle: ClientLifecycleMode,
) -> Result<Client, rmcp::service::ClientInitializeError> {
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.to_owned());
    if let Some(t) = token {
        config = config.auth_header(t.to_owned());
    }
    let transport = StreamableHttpClientTransport::from_config(config);
    tokio::time::timeout(Duration::from_secs(10), ().serve_with_lifecycle(transport, lifecycle))
        .await
        .expect("client start finished in time")
}

fn modern() -> ClientLifecycleMode {
    ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    }
}

fn version(c: &RunningService<RoleClient, ()>) -> String {
    c.peer_info().expect("peer info").protocol_version.to_string()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

fn initialize_body() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}})
}

async fn post(url: &str, token: Option<&str>, body: &Value) -> reqwest::Response {
    let mut req = http()
        .post(url)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.expect("response")
}

fn jwt(claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(HS_SECRET.as_bytes()),
    )
    .expect("jwt")
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs()
}

fn claims(iss: &str, aud: &str, exp: u64) -> Value {
    json!({"sub": "agent-7", "iss": iss, "aud": aud, "exp": exp, "scope": "mq:inspect mq:browse"})
}

#[tokio::test]
async fn both_protocol_generations_work_over_http() {
    let h = start(open_policy(), Authenticator::none(), HttpOptions::default()).await;
    let new = client(&h.url, None, modern()).await.expect("2026-07-28 client");
    assert_eq!(version(&new), "2026-07-28");
    let got = ok(&new, "browse_messages", json!({"queue": "ORDERS", "limit": 2})).await;
    assert_eq!(got["messages"].as_array().expect("messages").len(), 2);
    assert_eq!(new.list_all_tools().await.expect("tools").len(), 10);

    let old = client(&h.url, None, ClientLifecycleMode::Initialize)
        .await
        .expect("2025-11-25 client");
    assert_eq!(version(&old), "2025-11-25");
    let status = ok(&old, "queue_status", json!({"queue": "ORDERS"})).await;
    assert_eq!(status["depth"], 5);

    // On the wire: initialize opens a session; discovery is stateless.
    let init = post(&h.url, None, &initialize_body()).await;
    assert_eq!(init.status(), 200);
    assert!(
        init.headers().get("mcp-session-id").is_some(),
        "legacy initialize gets a session"
    );
    let discover = json!({"jsonrpc": "2.0", "id": 2, "method": "server/discover", "params": {"_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}}}});
    let d = http()
        .post(&h.url)
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2026-07-28")
        .header("Mcp-Method", "server/discover")
        .json(&discover)
        .send()
        .await
        .expect("discover");
    assert_eq!(d.status(), 200);
    assert!(d.headers().get("mcp-session-id").is_none(), "2026-07-28 is stateless");
    let body: Value = d.json().await.expect("json");
    assert!(
        body["result"]["supportedVersions"]
            .as_array()
            .expect("versions")
            .iter()
            .any(|v| v == "2026-07-28")
    );
}

#[tokio::test]
async fn missing_or_wrong_tokens_get_401_with_the_metadata_challenge() {
    let h = start(open_policy(), tokens_auth(), HttpOptions::default()).await;
    for token in [None, Some("wrong-token-0123456789")] {
        let r = post(&h.url, token, &initialize_body()).await;
        assert_eq!(r.status(), 401, "token {token:?}");
        let challenge = r.headers()["www-authenticate"].to_str().expect("ascii").to_owned();
        let expected = format!(
            "Bearer resource_metadata=\"http://{}/.well-known/oauth-protected-resource\"",
            h.addr
        );
        assert!(challenge.starts_with(&expected), "{challenge}");
        // RFC 6750, 3.1: no error code when the request carried no credentials.
        assert_eq!(
            challenge.contains("error=\"invalid_token\""),
            token.is_some(),
            "{challenge}"
        );
    }
    let meta: Value = http()
        .get(format!("http://{}/.well-known/oauth-protected-resource", h.addr))
        .send()
        .await
        .expect("metadata")
        .json()
        .await
        .expect("json");
    assert_eq!(meta["resource"], h.url);
    assert!(meta["authorization_servers"].is_array());
    assert!(
        client(&h.url, None, modern()).await.is_err(),
        "the rmcp client is refused too"
    );
    assert_eq!(h.qm.peak_connections(), 0);
}

#[tokio::test]
async fn a_token_without_the_capability_gets_a_tool_error() {
    let h = start(open_policy(), tokens_auth(), HttpOptions::default()).await;
    let reader = client(&h.url, Some(READER_TOKEN), modern()).await.expect("reader");
    let e = tool_error(&reader, "browse_messages", json!({"queue": "ORDERS"})).await;
    assert!(
        e["error"]
            .as_str()
            .expect("error")
            .contains("does not grant the browse capability"),
        "{e}"
    );
    assert_eq!(h.qm.peak_connections(), 0, "MQ was not called");
    let e = tool_error(&reader, "put_message", json!({"queue": "Q00", "payload": "x"})).await;
    assert!(e["error"].as_str().expect("error").contains("produce"), "{e}");
    let ops = client(&h.url, Some(OPS_TOKEN), modern()).await.expect("ops");
    ok(&ops, "browse_messages", json!({"queue": "ORDERS"})).await;
}

#[tokio::test]
async fn locks_are_bound_to_their_caller() {
    let h = start(open_policy(), tokens_auth(), HttpOptions::default()).await;
    let ops = client(&h.url, Some(OPS_TOKEN), modern()).await.expect("ops");
    let reader = client(&h.url, Some(READER_TOKEN), ClientLifecycleMode::Initialize)
        .await
        .expect("reader");
    let lock = ok(&ops, "lock_messages", json!({"queue": "ORDERS", "limit": 2})).await;
    let id = lock["lock_id"].as_str().expect("id").to_owned();
    let e = tool_error(&reader, "complete_messages", json!({"lock_id": id, "action": "commit"})).await;
    assert!(e["error"].as_str().expect("error").contains("no such lock"), "{e}");
    assert_eq!(
        h.qm.depth("ORDERS"),
        Some(3),
        "still locked, not committed by the other caller"
    );
    ok(&ops, "complete_messages", json!({"lock_id": id, "action": "commit"})).await;
    assert_eq!(h.qm.depth("ORDERS"), Some(3));
    assert_eq!(h.qm.queue_status("ORDERS").expect("status").uncommitted, 0);
}

#[tokio::test]
async fn jwts_are_checked_for_issuer_audience_and_expiry() {
    let secret = temp_file("hs256.secret", HS_SECRET);
    let auth =
        Authenticator::none().with_jwt(JwtConfig::hs256(&secret, ISSUER.into(), AUDIENCE.into()).expect("jwt config"));
    let h = start(open_policy(), auth, HttpOptions::default()).await;
    let later = now() + 600;
    for (why, token) in [
        (
            "wrong audience",
            jwt(&claims(ISSUER, "https://other.example/mcp", later)),
        ),
        ("wrong issuer", jwt(&claims("https://evil.example", AUDIENCE, later))),
        ("expired", jwt(&claims(ISSUER, AUDIENCE, now() - 600))),
    ] {
        let r = post(&h.url, Some(&token), &initialize_body()).await;
        assert_eq!(r.status(), 401, "{why}");
        assert!(r.headers().contains_key("www-authenticate"), "{why}");
    }
    let good = jwt(&claims(ISSUER, AUDIENCE, later));
    let agent = client(&h.url, Some(&good), modern()).await.expect("valid JWT");
    ok(&agent, "browse_messages", json!({"queue": "ORDERS", "limit": 1})).await;
    let e = tool_error(&agent, "receive_messages", json!({"queue": "ORDERS"})).await;
    assert!(
        e["error"].as_str().expect("error").contains("consume"),
        "scope without mq:consume: {e}"
    );
}

#[tokio::test]
async fn es256_jwts_are_checked_against_the_jwks() {
    let jwks = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/mcp-jwks.json");
    let auth = Authenticator::none().with_jwt(JwtConfig::jwks(&jwks, ISSUER.into(), AUDIENCE.into()).expect("jwks"));
    let h = start(open_policy(), auth, HttpOptions::default()).await;
    let der = base64::engine::general_purpose::STANDARD
        .decode(ES256_TEST_KEY)
        .expect("key");
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("test-es256".into());
    let token = jsonwebtoken::encode(
        &header,
        &claims(ISSUER, AUDIENCE, now() + 600),
        &EncodingKey::from_ec_der(&der),
    )
    .expect("sign");
    let agent = client(&h.url, Some(&token), modern())
        .await
        .expect("ES256 JWT accepted");
    ok(&agent, "list_queues", json!({})).await;
    let hs = jwt(&claims(ISSUER, AUDIENCE, now() + 600));
    assert_eq!(
        post(&h.url, Some(&hs), &initialize_body()).await.status(),
        401,
        "HS256 is not accepted with a JWKS"
    );
}

#[tokio::test]
async fn foreign_host_and_origin_are_refused() {
    let h = start(open_policy(), Authenticator::none(), HttpOptions::default()).await;
    let r = http()
        .post(&h.url)
        .header("Host", "attacker.example")
        .header("Accept", "application/json, text/event-stream")
        .json(&initialize_body())
        .send()
        .await
        .expect("response");
    assert_eq!(r.status(), 403);
    let r = http()
        .post(&h.url)
        .header("Origin", "https://attacker.example")
        .header("Accept", "application/json, text/event-stream")
        .json(&initialize_body())
        .send()
        .await
        .expect("response");
    assert_eq!(r.status(), 403);
    let r = http()
        .post(&h.url)
        .header("Origin", "http://localhost:6274")
        .header("Accept", "application/json, text/event-stream")
        .json(&initialize_body())
        .send()
        .await
        .expect("response");
    assert_eq!(r.status(), 200, "a loopback origin (the MCP Inspector) is fine");
}

#[tokio::test]
async fn body_limit_and_calls_in_flight_per_caller() {
    let options = HttpOptions {
        max_body_bytes: 4096,
        max_in_flight: 1,
        ..HttpOptions::default()
    };
    let h = start(open_policy(), tokens_auth(), options).await;
    let mut big = initialize_body();
    big["params"]["clientInfo"]["name"] = json!("x".repeat(8192));
    assert_eq!(post(&h.url, Some(OPS_TOKEN), &big).await.status(), 413);

    let ops = Arc::new(client(&h.url, Some(OPS_TOKEN), modern()).await.expect("ops"));
    let waiting = tokio::spawn({
        let ops = Arc::clone(&ops);
        async move { call(&ops, "receive_messages", json!({"queue": "Q09", "wait_ms": 1500})).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = call(&ops, "queue_status", json!({"queue": "ORDERS"})).await;
    let refused = format!(
        "{:?}",
        second.expect_err("a second call in flight for the same caller is refused")
    );
    assert!(refused.contains("429"), "{refused}");
    let reader = client(&h.url, Some(READER_TOKEN), modern()).await.expect("reader");
    ok(&reader, "queue_status", json!({"queue": "ORDERS"})).await;
    let first = waiting.await.expect("task").expect("first call");
    assert_ne!(first.is_error, Some(true));
    ok(&ops, "queue_status", json!({"queue": "ORDERS"})).await;
}

/// The body of a stateless 2026-07-28 `tools/call`.
fn stateless_body(tool: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": tool, "arguments": arguments, "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {}}}})
}

/// Sends `call` and holds its response (a session's answer is an event stream whose
/// headers come first), so the connection stays open until the task is aborted.
fn send_and_hold(call: reqwest::RequestBuilder) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let response = call.send().await;
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(response);
    })
}

/// A stateless 2026-07-28 `tools/call` as it goes on the wire.
fn stateless_call(url: &str, token: &str, tool: &str, arguments: Value) -> reqwest::RequestBuilder {
    let body = stateless_body(tool, arguments);
    http()
        .post(url)
        .bearer_auth(token)
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2026-07-28")
        .header("Mcp-Method", "tools/call")
        .header("Mcp-Name", tool)
        .json(&body)
}

#[tokio::test]
async fn a_call_stays_in_flight_until_its_handler_is_done_even_after_a_disconnect() {
    let options = HttpOptions {
        max_in_flight: 1,
        ..HttpOptions::default()
    };
    let h = start(open_policy(), tokens_auth(), options).await;
    let status = || stateless_call(&h.url, OPS_TOKEN, "queue_status", json!({"queue": "ORDERS"}));
    assert_eq!(status().send().await.expect("status").status(), 200);
    // A receive that waits 4 s for a message on an empty queue; the caller gives up once
    // the receive has opened the queue and closes its connection, but MQGET keeps waiting.
    let abandoned = tokio::spawn(
        stateless_call(
            &h.url,
            OPS_TOKEN,
            "receive_messages",
            json!({"queue": "Q09", "wait_ms": 4000}),
        )
        .send(),
    );
    let opened = std::time::Instant::now() + Duration::from_secs(10);
    while h.qm.queue_status("Q09").expect("Q09").ipprocs == 0 {
        assert!(std::time::Instant::now() < opened, "the receive never reached MQ");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    abandoned.abort();
    let _ = abandoned.await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        status().send().await.expect("refused").status(),
        429,
        "the abandoned receive still holds the caller's only slot"
    );
    // Once its wait is over the slot is free again.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let r = loop {
        let r = status().send().await.expect("status");
        if r.status() != 429 {
            break r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the slot never came back after the receive's wait"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["result"]["isError"], false, "{body}");

    // Sessions (initialize, then one call after another) give their slot back too.
    let legacy = client(&h.url, Some(OPS_TOKEN), ClientLifecycleMode::Initialize)
        .await
        .expect("2025-11-25 client");
    for _ in 0..3 {
        ok(&legacy, "queue_status", json!({"queue": "ORDERS"})).await;
    }
}

#[tokio::test]
async fn the_binary_refuses_a_public_address_without_auth() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_mqpilot"))
        .args(["mcp", "--listen", "0.0.0.0:0", "--fake"])
        .output()
        .await
        .expect("run mqpilot");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--listen") && err.contains("not a loopback address"),
        "{err}"
    );
    for (flag, value) in [("--max-connections", "0"), ("--read-timeout-secs", "0")] {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_mqpilot"))
            .args(["mcp", "--listen", "127.0.0.1:0", "--fake", flag, value])
            .output()
            .await
            .expect("run mqpilot");
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(flag) && err.contains("'0'"), "{err}");
    }
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_mqpilot"))
        .args([
            "mcp",
            "--listen",
            "127.0.0.1:0",
            "--fake",
            "--max-buffered-body-bytes",
            "1024",
        ])
        .output()
        .await
        .expect("run mqpilot");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--max-buffered-body-bytes (1024) must be at least --max-body-bytes"),
        "{err}"
    );
}

/// A 2025-11-25 session on the server: `initialize`, then `notifications/initialized`.
struct Session {
    url: String,
    token: &'static str,
    id: String,
}

impl Session {
    async fn open(h: &Http, token: &'static str) -> Self {
        let init = post(&h.url, Some(token), &initialize_body()).await;
        let id = init
            .headers()
            .get("mcp-session-id")
            .expect("session id")
            .to_str()
            .expect("ascii")
            .to_owned();
        let _ = init.text().await;
        let session = Self {
            url: h.url.clone(),
            token,
            id,
        };
        let initialized = session
            .post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .send()
            .await
            .expect("initialized");
        assert_eq!(initialized.status(), 202);
        session
    }

    /// A request on the session, carrying `body`.
    fn post(&self, body: &Value) -> reqwest::RequestBuilder {
        http()
            .post(&self.url)
            .bearer_auth(self.token)
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", "2025-11-25")
            .header("Mcp-Session-Id", &self.id)
            .json(body)
    }
}

/// What became of the only message put on `queue`, once the receive that waited on it is
/// over (its input handle closed): `true` when it is still there and visible (backed out,
/// or never got because the receive stopped waiting for a caller that had gone), `false`
/// when it is gone for good (committed).
async fn backed_out(qm: &mqpilot::fake::FakeQm, queue: &str) -> bool {
    let over = || qm.queue_status(queue).expect("status").ipprocs == 0;
    until("the receive neither committed nor gave the message back", 15, || {
        let messages = qm.browse(queue);
        messages.is_empty() || (matches!(messages.as_slice(), [m] if m.state == "visible") && over())
    })
    .await;
    !qm.browse(queue).is_empty()
}

/// Starts a `receive_messages` that waits on the empty Q09, drops its HTTP connection once
/// MQGET waits, then puts a message: a caller that went away never sees it, so it must stay
/// on the queue (backed out if the MQGET got it before the receive stopped waiting).
async fn receive_then_disconnect(h: &Http, call: reqwest::RequestBuilder) -> bool {
    let abandoned = send_and_hold(call);
    until_mqget_waits(&h.qm, "Q09").await;
    abandoned.abort();
    let _ = abandoned.await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    h.qm.put_message("Q09", mqpilot::fake::PutSpec::text("for nobody"))
        .expect("put");
    backed_out(&h.qm, "Q09").await
}

#[tokio::test]
async fn a_receive_whose_client_disconnects_backs_out_in_both_protocol_generations() {
    let h = start(open_policy(), tokens_auth(), HttpOptions::default()).await;
    let args = json!({"queue": "Q09", "wait_ms": 8000});
    assert!(
        receive_then_disconnect(&h, stateless_call(&h.url, OPS_TOKEN, "receive_messages", args.clone())).await,
        "stateless: the message was committed for a caller that had gone"
    );

    // A 2025-11-25 session: initialize, initialized, then the call on the session.
    let h = start(open_policy(), tokens_auth(), HttpOptions::default()).await;
    let session = Session::open(&h, OPS_TOKEN).await;
    let on_session = |body: &Value| session.post(body);
    let receive = on_session(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "receive_messages", "arguments": args}}));
    assert!(
        receive_then_disconnect(&h, receive).await,
        "session: the message was committed for a caller that had gone"
    );
    // A session caller that stays gets the message, and only then is it committed.
    let answer = on_session(&json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "receive_messages", "arguments": {"queue": "Q09"}}}))
    .send()
    .await
    .expect("receive")
    .text()
    .await
    .expect("event stream");
    assert!(answer.contains("for nobody"), "{answer}");
    assert!(h.qm.browse("Q09").is_empty(), "committed once delivered");
}

/// Reads from `stream` until the server closes it; the bytes read.
async fn read_to_close(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt as _;
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut got))
        .await
        .expect("the server closed the connection in time")
        .expect("read");
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn clients_that_send_nothing_or_too_slowly_are_cut_off_and_cannot_take_every_connection() {
    use tokio::io::AsyncWriteExt as _;
    let options = HttpOptions {
        max_connections: 1,
        read_timeout: Duration::from_secs(2),
        ..HttpOptions::default()
    };
    let h = start(open_policy(), Authenticator::none(), options).await;

    // An idle connection holds the only slot: a real request waits until the server drops
    // the idle one at the read timeout, then is served.
    let mut idle = tokio::net::TcpStream::connect(h.addr).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let status = tokio::spawn(stateless_call(&h.url, OPS_TOKEN, "queue_status", json!({"queue": "ORDERS"})).send());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !status.is_finished(),
        "a second connection was served past max_connections 1"
    );
    assert_eq!(
        read_to_close(&mut idle).await,
        "",
        "the idle connection is closed unanswered"
    );
    let r = status.await.expect("task").expect("served once the slot was free");
    assert_eq!(r.status(), 200);

    // Headers that never finish: closed at the read timeout.
    let mut partial = tokio::net::TcpStream::connect(h.addr).await.expect("connect");
    partial
        .write_all(format!("POST /mcp HTTP/1.1\r\nHost: {}\r\n", h.addr).as_bytes())
        .await
        .expect("write");
    let _ = read_to_close(&mut partial).await;

    // A body that stops short of its length: 408, and nothing runs.
    let mut short = tokio::net::TcpStream::connect(h.addr).await.expect("connect");
    short
        .write_all(
            format!(
                "POST /mcp HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
                 Accept: application/json, text/event-stream\r\nContent-Length: 100\r\n\r\n{{\"jsonrpc\"",
                h.addr
            )
            .as_bytes(),
        )
        .await
        .expect("write");
    let answer = read_to_close(&mut short).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

#[tokio::test]
async fn sessions_are_capped_per_caller_and_in_all_and_a_closed_one_makes_room() {
    let options = HttpOptions {
        max_sessions: 3,
        max_sessions_per_caller: 2,
        ..HttpOptions::default()
    };
    let h = start(open_policy(), tokens_auth(), options).await;
    let open = |token: &'static str| {
        let url = h.url.clone();
        async move {
            let r = post(&url, Some(token), &initialize_body()).await;
            let status = r.status();
            let id = r
                .headers()
                .get("mcp-session-id")
                .map(|v| v.to_str().expect("ascii").to_owned());
            let text = r.text().await.expect("body");
            (status, id, text)
        }
    };
    // Six at once: two open, the others are refused.
    let tries: Vec<_> = (0..6).map(|_| tokio::spawn(open(OPS_TOKEN))).collect();
    let mut opened = Vec::new();
    for t in tries {
        let (status, id, text) = t.await.expect("task");
        match id {
            Some(id) => opened.push(id),
            None => {
                assert_eq!(status, 429, "{text}");
                assert!(
                    text.contains("this caller holds 2 MCP sessions (--max-sessions-per-caller)"),
                    "{text}"
                );
            }
        }
    }
    assert_eq!(opened.len(), 2, "{opened:?}");
    let (first, second) = (Some(opened[0].clone()), Some(opened[1].clone()));
    // A session id that is not text counts as none, for the limits as for rmcp.
    let r = http()
        .post(&h.url)
        .bearer_auth(OPS_TOKEN)
        .header("Accept", "application/json, text/event-stream")
        .header(
            "Mcp-Session-Id",
            reqwest::header::HeaderValue::from_bytes(b"\xff").expect("obs-text"),
        )
        .json(&initialize_body())
        .send()
        .await
        .expect("initialize");
    assert_eq!(r.status(), 429, "{}", r.text().await.unwrap_or_default());
    let (status, _, text) = open(READER_TOKEN).await;
    assert_eq!(status, 200, "another caller still gets one: {text}");
    let (status, _, text) = open(READER_TOKEN).await;
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("3 MCP sessions are open (--max-sessions)"), "{text}");

    // Stateless requests need no session: still served.
    let r = stateless_call(&h.url, OPS_TOKEN, "queue_status", json!({"queue": "ORDERS"}))
        .send()
        .await
        .expect("stateless");
    assert_eq!(r.status(), 200);

    let closed = http()
        .delete(&h.url)
        .bearer_auth(OPS_TOKEN)
        .header("Mcp-Session-Id", first.expect("first"))
        .header("MCP-Protocol-Version", "2025-11-25")
        .send()
        .await
        .expect("delete");
    assert!(closed.status().is_success(), "{}", closed.status());
    let (status, again, text) = open(OPS_TOKEN).await;
    assert_eq!(status, 200, "{text}");
    assert!(again.is_some());

    // No GET stream: 405, as the protocol allows, and rmcp's session client carries on.
    let get = http()
        .get(&h.url)
        .bearer_auth(OPS_TOKEN)
        .header("Accept", "text/event-stream")
        .header("Mcp-Session-Id", second.expect("second"))
        .send()
        .await
        .expect("get");
    assert_eq!(get.status(), 405);
    assert_eq!(get.headers()["allow"], "POST, DELETE");
}

/// A server on loopback for `qm` and the task serving it.
/// Sends a stateless `browse_messages` of Q08 (12 messages of 1 MiB) on a socket that takes
/// 4 KiB at a time, and reads nothing.
async fn big_answer_nobody_reads(addr: SocketAddr) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt as _;
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("small receive buffer");
    let mut stream = socket.connect(addr).await.expect("connect");
    let body = stateless_body(
        "browse_messages",
        json!({"queue": "Q08", "limit": 12, "max_payload_bytes": 1_048_576}),
    )
    .to_string();
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\n\
         Mcp-Method: tools/call\r\nMcp-Name: browse_messages\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("request");
    stream
}

/// A server whose Q08 holds 12 messages of 1 MiB (a 24 MB browse answer) and whose read
/// timeout is `read_timeout`; its queue manager, address and serving task.
async fn big_answers(read_timeout: Duration) -> Http {
    let mut policy = open_policy();
    policy.limits.max_result_bytes = 16 << 20;
    let options = HttpOptions {
        read_timeout,
        ..HttpOptions::default()
    };
    let h = start(policy, Authenticator::none(), options).await;
    for _ in 0..12 {
        h.qm.put_message("Q08", mqpilot::fake::PutSpec::text(vec![b'x'; 1 << 20]))
            .expect("put");
    }
    h
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off() {
    use tokio::io::AsyncReadExt as _;
    let h = big_answers(Duration::from_secs(1)).await;
    let mut stream = big_answer_nobody_reads(h.addr).await;
    // Once the answer has started (building 24 MB of JSON takes a while on a busy machine),
    // well past the read timeout with nothing taken: the server has given up on it.
    tokio::time::timeout(Duration::from_secs(60), stream.peek(&mut [0u8; 1]))
        .await
        .expect("the answer starts")
        .expect("peek");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut got))
        .await
        .expect("the connection ends");
    let text = String::from_utf8_lossy(&got[..got.len().min(4096)]).into_owned();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let length: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .expect("content-length")
        .trim()
        .parse()
        .expect("number");
    assert!(
        read.is_err() || got.len() < length,
        "the whole answer arrived ({} bytes): the stalled write was waited for",
        got.len()
    );
}

#[tokio::test]
async fn a_stop_does_not_wait_for_ever_on_a_client_that_does_not_read() {
    let mut h = big_answers(Duration::from_secs(300)).await;
    let _stream = big_answer_nobody_reads(h.addr).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    h.cancel.cancel();
    let done = tokio::time::timeout(Duration::from_secs(20), &mut h.served).await;
    assert!(
        matches!(done, Ok(Ok(()))),
        "serve still waiting 20 s after the stop: {done:?}"
    );
}

#[tokio::test]
async fn a_read_only_call_whose_client_goes_gives_its_slot_back_at_once() {
    let options = HttpOptions {
        max_in_flight: 1,
        ..HttpOptions::default()
    };
    let h = start(open_policy(), tokens_auth(), options).await;
    // All three pooled connections held by another caller: two locks and a receive that
    // waits on an empty queue.
    for _ in 0..2 {
        let r = stateless_call(
            &h.url,
            READER_TOKEN,
            "lock_messages",
            json!({"queue": "ORDERS", "limit": 1}),
        )
        .send()
        .await
        .expect("lock");
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["result"]["isError"], false, "{body}");
    }
    let receive = tokio::spawn(
        stateless_call(
            &h.url,
            READER_TOKEN,
            "receive_messages",
            json!({"queue": "Q09", "wait_ms": 3000}),
        )
        .send(),
    );
    until_mqget_waits(&h.qm, "Q09").await;
    // A status call waits for a connection; its client gives up.
    let status = || stateless_call(&h.url, OPS_TOKEN, "queue_status", json!({"queue": "ORDERS"}));
    let abandoned = tokio::spawn(status().send());
    tokio::time::sleep(Duration::from_millis(300)).await;
    abandoned.abort();
    let _ = abandoned.await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Its slot is free again: the next call waits its turn instead of getting 429.
    let r = status().send().await.expect("status");
    assert_eq!(r.status(), 200, "the abandoned call still held the caller's only slot");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["result"]["isError"], false, "{body}");
    let _ = receive.await;
}

#[tokio::test]
async fn a_lock_whose_answer_never_arrives_is_backed_out_at_once() {
    let h = start(open_policy(), tokens_auth(), HttpOptions::default()).await;
    let session = Session::open(&h, OPS_TOKEN).await;
    // Slow MQ calls, so the client can leave while the lock's gets run.
    h.qm.set_latency(Duration::from_millis(200));
    let lock = session.post(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "lock_messages", "arguments": {"queue": "ORDERS", "limit": 3, "lock_seconds": 120}}}));
    let abandoned = send_and_hold(lock);
    until("the lock never got a message", 10, || {
        h.qm.browse("ORDERS").iter().any(|m| m.state == "got-uncommitted")
    })
    .await;
    abandoned.abort();
    let _ = abandoned.await;
    h.qm.set_latency(Duration::ZERO);
    // The caller never saw the lock id: its messages come back now, not in 120 s.
    until("the lock still holds its messages", 10, || {
        let messages = h.qm.browse("ORDERS");
        messages.iter().all(|m| m.state == "visible") && messages.iter().any(|m| m.backout_count > 0)
    })
    .await;
    assert_eq!(h.qm.browse("ORDERS").len(), 5, "nothing lost");
}

/// Reads from `stream` until the end of a response's headers; the text read.
async fn read_headers(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt as _;
    let mut got = Vec::new();
    let mut buf = [0_u8; 1024];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("the server answered in time")
            .expect("read");
        assert!(n > 0, "closed before an answer: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn bodies_buffered_at_once_are_capped_server_wide() {
    use tokio::io::AsyncWriteExt as _;
    let options = HttpOptions {
        max_body_bytes: 64 * 1024,
        max_buffered_body_bytes: 96 * 1024,
        read_timeout: Duration::from_secs(5),
        ..HttpOptions::default()
    };
    let h = start(open_policy(), Authenticator::none(), options).await;
    // A valid call padded with blanks to 64 KiB, sent in two parts.
    let mut body = serde_json::to_string(&stateless_body("queue_status", json!({"queue": "ORDERS"}))).expect("json");
    body.push_str(&" ".repeat(64 * 1024 - body.len()));
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\n\
         Mcp-Method: tools/call\r\nMcp-Name: queue_status\r\nContent-Length: {}\r\n\r\n",
        h.addr,
        body.len()
    );
    let (first_part, rest) = body.as_bytes().split_at(60 * 1024);

    // One body stops short of its length: its 60 KiB stay buffered.
    let mut slow = tokio::net::TcpStream::connect(h.addr).await.expect("connect");
    slow.write_all(head.as_bytes()).await.expect("write");
    slow.write_all(first_part).await.expect("write");
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Another would take the server past 96 KiB: refused at once, not held.
    let mut second = tokio::net::TcpStream::connect(h.addr).await.expect("connect");
    second.write_all(head.as_bytes()).await.expect("write");
    second.write_all(first_part).await.expect("write");
    let answer = read_headers(&mut second).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("retry-after: 1"), "{answer}");
    drop(second);

    // The first finishes and is served; its bytes are given back, so the next is too.
    slow.write_all(rest).await.expect("write");
    let answer = read_headers(&mut slow).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    for _ in 0..2 {
        let mut again = tokio::net::TcpStream::connect(h.addr).await.expect("connect");
        again.write_all(head.as_bytes()).await.expect("write");
        again.write_all(body.as_bytes()).await.expect("write");
        let answer = read_headers(&mut again).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
}

#[tokio::test]
async fn a_receive_whose_client_left_gets_no_more_of_its_batch() {
    let h = start(open_policy(), tokens_auth(), HttpOptions::default()).await;
    let args = json!({"queue": "Q09", "limit": 5, "wait_ms": 8000});
    let abandoned = send_and_hold(stateless_call(&h.url, OPS_TOKEN, "receive_messages", args));
    until_mqget_waits(&h.qm, "Q09").await;
    abandoned.abort();
    let _ = abandoned.await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Every later MQI call takes 100 ms, so all five are on the queue before a second get.
    h.qm.set_latency(Duration::from_millis(100));
    for i in 0..5 {
        h.qm.put_message("Q09", mqpilot::fake::PutSpec::text(format!("for nobody {i}")))
            .expect("put");
    }
    until("the receive is not over", 15, || {
        let m = h.qm.browse("Q09");
        m.len() == 5 && m.iter().all(|m| m.state == "visible") && h.qm.queue_status("Q09").expect("status").ipprocs == 0
    })
    .await;
    let counts: Vec<i32> = h.qm.browse("Q09").iter().map(|m| m.backout_count).collect();
    // The waiting MQGET may have taken the first before the receive stopped waiting.
    assert!(
        counts == [1, 0, 0, 0, 0] || counts == [0; 5],
        "at most the message the waiting MQGET took was got and backed out: {counts:?}"
    );
}

/// The body of a `tools/call` on a session.
fn session_call(id: u64, tool: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": arguments}})
}

#[tokio::test]
async fn a_caller_with_every_slot_taken_can_still_cancel() {
    let options = HttpOptions {
        max_in_flight: 1,
        ..HttpOptions::default()
    };
    let h = start(open_policy(), tokens_auth(), options).await;
    let session = Session::open(&h, OPS_TOKEN).await;
    let receive = session.post(&session_call(
        2,
        "receive_messages",
        json!({"queue": "Q09", "wait_ms": 8000}),
    ));
    let waiting = tokio::spawn(async move { receive.send().await.expect("receive").text().await });
    until_mqget_waits(&h.qm, "Q09").await;
    // The receive holds the caller's only slot: another call is refused...
    let refused = session
        .post(&session_call(3, "queue_status", json!({"queue": "ORDERS"})))
        .send()
        .await
        .expect("status");
    assert_eq!(refused.status(), 429);
    // ...but a notification starts no call and takes no slot.
    let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
        "params": {"requestId": 2, "reason": "no longer needed"}});
    let cancelled = session.post(&cancel).send().await.expect("cancel");
    assert_eq!(
        cancelled.status(),
        202,
        "{}",
        cancelled.text().await.unwrap_or_default()
    );
    // The cancel reached the receive: the message its MQGET gets goes back to the queue.
    h.qm.put_message("Q09", mqpilot::fake::PutSpec::text("for nobody"))
        .expect("put");
    assert!(
        backed_out(&h.qm, "Q09").await,
        "the cancelled receive committed the message"
    );
    let _ = waiting.await;
}

#[tokio::test]
async fn a_session_serves_only_the_caller_that_opened_it() {
    let h = start(open_policy(), tokens_auth(), HttpOptions::default()).await;
    let theirs = Session::open(&h, OPS_TOKEN).await;
    // Another caller naming that session is told it does not exist, whatever it asks.
    let intruder = Session {
        url: h.url.clone(),
        token: READER_TOKEN,
        id: theirs.id.clone(),
    };
    let call = intruder
        .post(&session_call(2, "queue_status", json!({"queue": "ORDERS"})))
        .send()
        .await
        .expect("call");
    assert_eq!(call.status(), 404);
    assert_eq!(call.text().await.expect("body"), "Not Found: Session not found");
    let on_their_session = |method: reqwest::Method| {
        http()
            .request(method, &h.url)
            .bearer_auth(READER_TOKEN)
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", "2025-11-25")
            .header("Mcp-Session-Id", &theirs.id)
            .send()
    };
    for method in [reqwest::Method::DELETE, reqwest::Method::GET] {
        let r = on_their_session(method.clone()).await.expect("response");
        assert_eq!(r.status(), 404, "{method}");
    }
    // The session is untouched and still serves its caller.
    let answer = theirs
        .post(&session_call(3, "queue_status", json!({"queue": "ORDERS"})))
        .send()
        .await
        .expect("call");
    assert_eq!(answer.status(), 200);
    assert!(answer.text().await.expect("body").contains("\"depth\":5"));
    let closed = http()
        .delete(&h.url)
        .bearer_auth(OPS_TOKEN)
        .header("MCP-Protocol-Version", "2025-11-25")
        .header("Mcp-Session-Id", &theirs.id)
        .send()
        .await
        .expect("delete");
    assert!(closed.status().is_success(), "{}", closed.status());
}

#[tokio::test]
async fn a_jwt_without_a_subject_is_refused() {
    let secret = temp_file("hs256.secret", HS_SECRET);
    let auth =
        Authenticator::none().with_jwt(JwtConfig::hs256(&secret, ISSUER.into(), AUDIENCE.into()).expect("jwt config"));
    let h = start(open_policy(), auth, HttpOptions::default()).await;
    let later = now() + 600;
    for sub in ["", "  "] {
        let mut nameless = claims(ISSUER, AUDIENCE, later);
        nameless["sub"] = json!(sub);
        let r = post(&h.url, Some(&jwt(&nameless)), &initialize_body()).await;
        assert_eq!(r.status(), 401, "sub {sub:?}");
        assert!(r.headers().contains_key("www-authenticate"));
        let why = r.text().await.expect("body");
        assert!(why.contains("no sub, or an empty one"), "{why}");
    }
    let named = post(&h.url, Some(&jwt(&claims(ISSUER, AUDIENCE, later))), &initialize_body()).await;
    assert_eq!(named.status(), 200);
}

/// Returns once `addr` refuses new connections: the server has stopped listening.
async fn until_refused(addr: SocketAddr) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(std::time::Instant::now() < deadline, "still listening after the stop");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn calls_in_flight_at_a_stop_get_their_answers_and_new_ones_get_503() {
    use tokio::io::AsyncWriteExt as _;
    let mut h = start(open_policy(), tokens_auth(), HttpOptions::default()).await;
    // A receive waiting in MQGET in each protocol generation.
    let stateless = tokio::spawn(
        stateless_call(
            &h.url,
            OPS_TOKEN,
            "receive_messages",
            json!({"queue": "Q09", "wait_ms": 8000}),
        )
        .send(),
    );
    let session = Session::open(&h, OPS_TOKEN).await;
    let receive = session.post(&session_call(
        2,
        "receive_messages",
        json!({"queue": "Q10", "wait_ms": 8000}),
    ));
    let on_session = tokio::spawn(receive.send());
    until_mqget_waits(&h.qm, "Q09").await;
    until_mqget_waits(&h.qm, "Q10").await;
    // A call whose body is still on its way: the server is reading it (it asked for it).
    let body = stateless_body("queue_status", json!({"queue": "ORDERS"})).to_string();
    let mut late = tokio::net::TcpStream::connect(h.addr).await.expect("connect");
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {OPS_TOKEN}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\n\
         Mcp-Method: tools/call\r\nMcp-Name: queue_status\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        h.addr,
        body.len()
    );
    late.write_all(head.as_bytes()).await.expect("write");
    let asked = read_headers(&mut late).await;
    assert!(asked.starts_with("HTTP/1.1 100"), "{asked}");

    h.cancel.cancel();
    until_refused(h.addr).await;
    // The messages arrive after the stop, within the grace: each receive gets its own.
    h.qm.put_message("Q09", mqpilot::fake::PutSpec::text("stateless, after the stop"))
        .expect("put");
    h.qm.put_message("Q10", mqpilot::fake::PutSpec::text("session, after the stop"))
        .expect("put");
    let r = stateless.await.expect("task").expect("stateless answer");
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.expect("json");
    assert_eq!(
        answer["result"]["structuredContent"]["messages"][0]["payload"], "stateless, after the stop",
        "{answer}"
    );
    let r = on_session.await.expect("task").expect("session answer");
    assert_eq!(r.status(), 200);
    let answer = r.text().await.expect("event stream");
    assert!(answer.contains("session, after the stop"), "{answer}");
    assert!(
        h.qm.browse("Q09").is_empty() && h.qm.browse("Q10").is_empty(),
        "committed once answered"
    );

    // The call that came in during the stop is refused, not started.
    late.write_all(body.as_bytes()).await.expect("write");
    let refused = read_to_close(&mut late).await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.contains("the server is stopping"), "{refused}");
    tokio::time::timeout(Duration::from_secs(20), &mut h.served)
        .await
        .expect("serve returned once the answers were out")
        .expect("serve");
}

/// A server whose stops take `grace`.
async fn stopping_within(grace: Duration, policy: Policy) -> Http {
    let options = HttpOptions {
        shutdown_grace: grace,
        read_timeout: Duration::from_secs(60),
        ..HttpOptions::default()
    };
    start(policy, tokens_auth(), options).await
}

/// Two receives waiting in MQGET (wait_ms 10 s): a stateless one on Q09 (request id 1) and
/// one in a session on Q10 (id 2); the session is returned to keep it open.
async fn two_waiting_receives(
    h: &Http,
) -> (
    tokio::task::JoinHandle<reqwest::Result<reqwest::Response>>,
    Session,
    tokio::task::JoinHandle<reqwest::Result<reqwest::Response>>,
) {
    let args = |queue| json!({"queue": queue, "wait_ms": 10_000});
    let stateless = tokio::spawn(stateless_call(&h.url, OPS_TOKEN, "receive_messages", args("Q09")).send());
    let session = Session::open(h, OPS_TOKEN).await;
    let on_session = tokio::spawn(session.post(&session_call(2, "receive_messages", args("Q10"))).send());
    until_mqget_waits(&h.qm, "Q09").await;
    until_mqget_waits(&h.qm, "Q10").await;
    (stateless, session, on_session)
}

#[tokio::test]
async fn regression_a_receive_still_waiting_at_a_stops_answer_deadline_takes_nothing_and_says_so() {
    // Its answer deadline 1 s after the stop, rmcp cancelled 2 s later.
    let mut h = stopping_within(Duration::from_secs(5), open_policy()).await;
    let (stateless, _session, on_session) = two_waiting_receives(&h).await;
    h.cancel.cancel();

    // Both answer before the stop is over, with a tool error saying why.
    let answer: Value = stateless
        .await
        .expect("task")
        .expect("stateless answer")
        .json()
        .await
        .expect("json");
    assert_eq!(answer["result"]["isError"], true, "{answer}");
    let text = answer["result"]["content"][0]["text"].as_str().expect("text");
    assert!(
        text.contains("the server is stopping: this call took no message from the queue"),
        "{text}"
    );
    let answer = on_session
        .await
        .expect("task")
        .expect("session answer")
        .text()
        .await
        .expect("event stream");
    assert!(answer.contains("the server is stopping"), "{answer}");

    // Past that point nothing is committed: messages that come now stay where they are.
    for queue in ["Q09", "Q10"] {
        h.qm.put_message(queue, mqpilot::fake::PutSpec::text("after the deadline"))
            .expect("put");
    }
    tokio::time::timeout(Duration::from_secs(20), &mut h.served)
        .await
        .expect("serve returned")
        .expect("serve");
    for queue in ["Q09", "Q10"] {
        let messages = h.qm.browse(queue);
        assert!(
            matches!(messages.as_slice(), [m] if m.state == "visible" && m.backout_count == 0),
            "{queue}: {:?}",
            messages.iter().map(|m| (m.state, m.backout_count)).collect::<Vec<_>>()
        );
    }
}

/// Sends a stateless `receive_messages` of `limit` messages of `queue` on a socket that
/// takes 4 KiB at a time, and reads nothing of the answer.
async fn receive_nobody_reads(addr: SocketAddr, queue: &str, limit: u32) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt as _;
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("small receive buffer");
    let mut stream = socket.connect(addr).await.expect("connect");
    let body = stateless_body("receive_messages", json!({"queue": queue, "limit": limit})).to_string();
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {OPS_TOKEN}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\n\
         Mcp-Method: tools/call\r\nMcp-Name: receive_messages\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("request");
    stream
}

#[tokio::test]
async fn regression_an_answer_committed_before_a_stop_is_written_to_the_end_or_its_ids_logged() {
    use tokio::io::AsyncReadExt as _;
    let warnings = Warnings::capture();
    let mut policy = open_policy();
    policy.limits.max_result_bytes = 16 << 20;
    // Its answer deadline 2 s after the stop, rmcp cancelled 2 s later, the connections
    // closed 2 s after that.
    let mut h = stopping_within(Duration::from_secs(6), policy).await;
    // Answers of about 8 MB, more than a socket's buffers hold: each stays in the server
    // until its client reads it.
    for queue in ["Q07", "Q08"] {
        for _ in 0..4 {
            h.qm.put_message(queue, mqpilot::fake::PutSpec::text(vec![b'x'; 1 << 20]))
                .expect("put");
        }
    }
    let ids = |queue| -> Vec<String> { h.qm.browse(queue).iter().map(|m| hex(&m.msg_id)).collect() };
    let (late_ids, lost_ids) = (ids("Q07"), ids("Q08"));
    let mut late = receive_nobody_reads(h.addr, "Q07", 4).await;
    let mut never = receive_nobody_reads(h.addr, "Q08", 4).await;
    until("the receives did not commit", 60, || {
        h.qm.browse("Q07").is_empty() && h.qm.browse("Q08").is_empty()
    })
    .await;
    // A receive waiting on an empty queue: its answer marks the stop's answer deadline,
    // after which nothing else is under way and rmcp is cancelled.
    let waiting = tokio::spawn(
        stateless_call(
            &h.url,
            OPS_TOKEN,
            "receive_messages",
            json!({"queue": "Q09", "wait_ms": 10_000}),
        )
        .send(),
    );
    until_mqget_waits(&h.qm, "Q09").await;
    h.cancel.cancel();
    let answer = waiting
        .await
        .expect("task")
        .expect("answer")
        .text()
        .await
        .expect("text");
    assert!(answer.contains("the server is stopping"), "{answer}");

    // The connections stay open past that: an answer committed before it is still
    // written to the end.
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), late.read_to_end(&mut got))
        .await
        .expect("the connection ends")
        .expect("read");
    let text = String::from_utf8_lossy(&got);
    let (head, body) = text.split_once("\r\n\r\n").expect("a response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let answer: Value = serde_json::from_str(body).expect("the whole answer");
    assert_eq!(
        answer["result"]["structuredContent"]["messages"]
            .as_array()
            .map(Vec::len),
        Some(4)
    );

    // The one whose client never reads is cut off when the stop ends: its messages were
    // committed, and the log names them.
    tokio::time::timeout(Duration::from_secs(20), &mut h.served)
        .await
        .expect("serve returned")
        .expect("serve");
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), never.read_to_end(&mut rest)).await;
    let logged = warnings.text();
    assert!(logged.contains("could not be delivered"), "{logged}");
    for id in &lost_ids {
        assert!(logged.contains(id.as_str()), "{id} not logged: {logged}");
    }
    for id in &late_ids {
        assert!(!logged.contains(id.as_str()), "{id} was delivered: {logged}");
    }
    assert!(!logged.contains("xxxx"), "a payload reached the log");
}

#[tokio::test]
async fn regression_a_call_still_running_when_a_stop_cancels_it_gets_an_error_saying_so() {
    // Its answer deadline 2 s after the stop, past the MQGET wait slices under way then.
    let mut h = stopping_within(Duration::from_secs(6), open_policy()).await;
    let (stateless, _session, on_session) = two_waiting_receives(&h).await;
    // Their next MQGETs outlast the whole stop: they cannot answer in time.
    h.qm.set_latency(Duration::from_secs(8));
    h.cancel.cancel();

    let cut_off = "the server stopped before this call finished";
    let r = stateless.await.expect("task").expect("stateless answer");
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.expect("a JSON-RPC answer");
    assert_eq!(answer["id"], 1, "{answer}");
    assert_eq!(answer["error"]["code"], -32603, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .expect("message")
            .starts_with(cut_off),
        "{answer}"
    );
    let r = on_session.await.expect("task").expect("session answer");
    assert_eq!(r.status(), 200);
    let text = r.text().await.expect("event stream");
    let event = text.lines().find_map(|l| l.strip_prefix("data: ")).expect("an event");
    let answer: Value = serde_json::from_str(event).expect("JSON");
    assert_eq!(answer["id"], 2, "{answer}");
    assert_eq!(answer["error"]["code"], -32603, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .expect("message")
            .starts_with(cut_off),
        "{answer}"
    );
    tokio::time::timeout(Duration::from_secs(20), &mut h.served)
        .await
        .expect("serve returned")
        .expect("serve");
}
