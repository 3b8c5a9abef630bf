//! Streamable HTTP: the MCP endpoint at `/mcp` behind Host/Origin checks, bearer auth and a
//! per-caller limit on calls in flight, plus the RFC 9728 protected-resource metadata.
//!
//! Refuses to listen on a non-loopback address without auth. Order of checks on every
//! request: Host and Origin (403), credentials (401 with `WWW-Authenticate: Bearer
//! resource_metadata="..."`), a session id the caller did not open (404, as for an unknown
//! one), `GET` (405: mqpilot sends no messages of its own), then a POST's body is read here,
//! within the read timeout, the size limit and the server-wide budget of buffered body bytes
//! (408, 413, 503 with `Retry-After`; rmcp's own body limit is only a backstop). A body that
//! carries a JSON-RPC request (a call) is then refused while the server stops (503), then
//! past the caller's calls in flight (429), then, for an `initialize`, past the session caps
//! (503 in all, 429 per caller, with `Retry-After`); notifications and responses start no
//! call and pass. The MCP protocol is rmcp's: protocol 2026-07-28 requests are served
//! statelessly, older clients get `initialize` and a session (`Mcp-Session-Id`) bound to the
//! caller that opened it. A call counts as in flight until its handler is done, even when its
//! caller has gone away.
//!
//! A stop goes in steps over the shutdown grace ([`HttpOptions::shutdown_grace`]), each cut
//! short once every answer under way is out: the listener closes; calls in flight run on
//! and are answered; 4 s before the end of the grace every call still running counts its
//! caller as gone (a receive or lock backs out what it got and answers that the server is
//! stopping); 2 s before it rmcp's token is cancelled, and a call that has still not
//! answered gets a JSON-RPC error saying the server stopped; at the end, the connections
//! still open are closed. An answer is delivered once its connection has written it (see
//! [`super::delivery`]): one whose messages were committed and that is lost is logged with
//! their ids.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::auth::{Authenticator, Caller};
use super::delivery::{Answer, Closing, Watch};
use super::exchange::{Exchanges, StandIn, Tracked, answer, stop_in_steps};
use super::listener::Flushes;
use super::policy::Capability;
use super::server::McpServer;
use super::sessions::{SESSION_HEADER, Sessions};
use crate::Error;

/// The path of the MCP endpoint.
pub const MCP_PATH: &str = "/mcp";
/// The RFC 9728 metadata path.
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

pub use super::listener::{SHUTDOWN_GRACE, serve};

/// HTTP settings.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Host names (with or without port) accepted in `Host`. Default: `localhost`,
    /// `127.0.0.1`, `::1` and the address listened on.
    pub allowed_hosts: Vec<String>,
    /// Origins accepted in `Origin` (`scheme://host[:port]`). Requests without `Origin` pass.
    /// Default: loopback origins on any port.
    pub allowed_origins: Vec<String>,
    /// Largest request body. Default 4 MiB.
    pub max_body_bytes: usize,
    /// Request body bytes buffered at once, all connections together, from the first byte
    /// read until the request's answer is ready; a body that would pass it gets 503. At
    /// least `max_body_bytes` is used. Default 64 MiB.
    pub max_buffered_body_bytes: usize,
    /// Calls in flight per caller. Default 16.
    pub max_in_flight: usize,
    /// Connections served at once; more wait in the listen backlog. Default 512.
    pub max_connections: usize,
    /// 2025-11-25 sessions open at once (an idle one closes after 5 minutes). Default 1024.
    pub max_sessions: usize,
    /// Of those, sessions one caller may hold. Default 64.
    pub max_sessions_per_caller: usize,
    /// Time a client has for each step: to send a request's headers (on a kept-alive
    /// connection, from the end of the previous response), then its body, and to take each
    /// next part of an answer. Default 30 s.
    pub read_timeout: Duration,
    /// Public URL of the MCP endpoint (the RFC 9728 `resource`). Default
    /// `http://ADDR/mcp`.
    pub resource: Option<String>,
    /// Authorization servers named in the metadata (where agents get JWTs). Default none.
    pub authorization_servers: Vec<String>,
    /// How long a stop may take (see the module for its steps): calls in flight have all
    /// of it but the last 4 s to answer, anything still running is cancelled 2 s before its
    /// end, and the connections still open are closed at its end. Default 10 s
    /// ([`SHUTDOWN_GRACE`]).
    pub shutdown_grace: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            allowed_origins: Vec::new(),
            max_body_bytes: 4 * 1024 * 1024,
            max_buffered_body_bytes: 64 * 1024 * 1024,
            max_in_flight: 16,
            max_connections: 512,
            max_sessions: 1024,
            max_sessions_per_caller: 64,
            read_timeout: Duration::from_secs(30),
            resource: None,
            authorization_servers: Vec::new(),
            shutdown_grace: SHUTDOWN_GRACE,
        }
    }
}

/// Refuses a non-loopback address without credentials.
///
/// # Errors
/// [`Error::Options`] naming `--listen`.
pub fn check_listen(addr: SocketAddr, auth: &Authenticator) -> Result<(), Error> {
    if !addr.ip().is_loopback() && !auth.enabled() {
        return Err(Error::Options {
            source_name: "--listen".into(),
            message: format!(
                "{addr} is not a loopback address: give --tokens-file and/or a JWT key (--jwt-secret-file or --jwks-file) so callers must authenticate"
            ),
        });
    }
    Ok(())
}

struct Gate {
    auth: Arc<Authenticator>,
    hosts: Vec<String>,
    origins: Vec<String>,
    metadata_url: String,
    max_in_flight: usize,
    max_body_bytes: usize,
    /// One permit per body byte buffered, all connections together.
    buffered: Arc<Semaphore>,
    read_timeout: Duration,
    sessions: Sessions,
    in_flight: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Fires when the server starts to stop: requests that would start a call are refused.
    stopping: CancellationToken,
    /// Closes at a stop's answer deadline: every call still running counts its caller as gone.
    closing: Closing,
    /// Fires when rmcp's token is cancelled, at the end of a stop.
    abort: CancellationToken,
    exchanges: Exchanges,
}

/// The name part of a `Host` value (`name`, `name:port`, `[v6]` or `[v6]:port`). Anything
/// else after a bracketed address (`[::1]evil.example`) leaves the value whole, which then
/// matches no allowed name.
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((name, "")) => name,
            Some((name, port))
                if port
                    .strip_prefix(':')
                    .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit())) =>
            {
                name
            }
            _ => host,
        };
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

fn loopback_origin(origin: &str) -> bool {
    let Some(rest) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    matches!(host_name(rest), "localhost" | "127.0.0.1" | "::1")
}

fn refuse(status: StatusCode, text: &str) -> Response {
    (status, text.to_owned()).into_response()
}

/// [`refuse`], telling the client to try again after `secs` seconds.
pub(super) fn refuse_for_now(status: StatusCode, text: &str, secs: &'static str) -> Response {
    let mut r = refuse(status, text);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static(secs));
    r
}

impl Gate {
    fn host_ok(&self, req: &Request) -> bool {
        let Some(host) = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()) else {
            return false;
        };
        let name = host_name(host);
        self.hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(host) || h.eq_ignore_ascii_case(name))
    }

    fn origin_ok(&self, req: &Request) -> bool {
        match req.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
            None => true,
            Some(o) if self.origins.is_empty() => loopback_origin(o),
            Some(o) => self.origins.iter().any(|a| a.eq_ignore_ascii_case(o)),
        }
    }

    /// 401 with the challenge. A request that carried credentials is told they are not
    /// valid; one without any gets no error code (RFC 6750, section 3.1).
    fn unauthorized(&self, req: &Request, why: &str) -> Response {
        let error = if req.headers().contains_key(header::AUTHORIZATION) {
            ", error=\"invalid_token\""
        } else {
            ""
        };
        let challenge = format!("Bearer resource_metadata=\"{}\"{error}", self.metadata_url);
        let mut r = refuse(StatusCode::UNAUTHORIZED, why);
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        r
    }

    /// The authenticated caller of `req`, or why there is none (logged for the audit).
    fn caller(&self, req: &Request) -> Result<Caller, String> {
        if !self.auth.enabled() {
            return Ok(Caller::local("http"));
        }
        let header = req.headers().get(header::AUTHORIZATION).and_then(|h| h.to_str().ok());
        self.auth.authenticate(header).inspect_err(|why| {
            tracing::info!(target: "mqpilot::audit", outcome = "unauthorized", why, "request refused");
        })
    }

    fn permits(&self, caller: &str) -> Arc<Semaphore> {
        let mut map = self.in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Looked up before inserting: a known caller's name is not copied on every call.
        if let Some(s) = map.get(caller) {
            return Arc::clone(s);
        }
        let s = Arc::new(Semaphore::new(self.max_in_flight));
        map.insert(caller.to_owned(), Arc::clone(&s));
        s
    }
}

async fn guard(State(gate): State<Arc<Gate>>, req: Request, next: Next) -> Response {
    if !gate.host_ok(&req) {
        return refuse(StatusCode::FORBIDDEN, "Host not allowed");
    }
    if !gate.origin_ok(&req) {
        return refuse(StatusCode::FORBIDDEN, "Origin not allowed");
    }
    if req.uri().path().starts_with(METADATA_PATH) {
        return next.run(req).await;
    }
    let caller = match gate.caller(&req) {
        Ok(c) => c,
        Err(why) => return gate.unauthorized(&req, &why),
    };
    // rmcp reads a session id only as text; one it cannot read is none, here as there.
    let session = req.headers().get(SESSION_HEADER).and_then(|v| v.to_str().ok());
    if let Some(id) = session
        && !gate.sessions.opened_by(id, &caller.name)
    {
        // Another caller's session is as unknown as one never opened: the same 404 rmcp
        // gives for that, so the answer tells nothing about other callers' sessions.
        return refuse(StatusCode::NOT_FOUND, "Not Found: Session not found");
    }
    let in_session = session.is_some();
    if req.method() == axum::http::Method::GET {
        // The optional stream for messages the server starts on its own: mqpilot sends none,
        // and each stream would hold a connection for as long as its client likes. 405 is
        // the protocol's way to say so; clients carry on without it.
        let mut r = refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            "this server sends no messages of its own: no GET stream",
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST, DELETE"));
        return r;
    }
    if req.method() != axum::http::Method::POST {
        let exchange = gate.exchanges.enter();
        let mut req = req;
        req.extensions_mut().insert(caller);
        return answer(next.run(req).await, None, exchange);
    }
    post(&gate, caller, in_session, req, next).await
}

/// A POST by `caller`, `in_session` when it names a session: its body is read, then what
/// it carries decides what else it needs (see the module).
async fn post(gate: &Arc<Gate>, caller: Caller, in_session: bool, req: Request, next: Next) -> Response {
    // Read here, before a call slot is taken: a body that trickles in would otherwise hold
    // its connection and the caller's slot for as long as the client likes.
    let (parts, body) = req.into_parts();
    let read = tokio::time::timeout(gate.read_timeout, read_body(body, gate.max_body_bytes, &gate.buffered));
    // Held until the answer is ready (or the client is gone): the body's bytes, and what
    // rmcp parses from them, count against the budget that long.
    let (bytes, buffered) = match read.await {
        Ok(Ok(read)) => read,
        Ok(Err(BodyError::TooLarge)) => return refuse(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"),
        Ok(Err(BodyError::OverBudget)) => {
            return refuse_for_now(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is buffering as many request bytes as it may (--max-buffered-body-bytes): retry shortly",
                "1",
            );
        }
        Ok(Err(BodyError::Unreadable)) => return refuse(StatusCode::BAD_REQUEST, "the request body could not be read"),
        Err(_) => return refuse(StatusCode::REQUEST_TIMEOUT, "the request body did not arrive in time"),
    };
    let (carries, id) = Carries::read(&bytes, in_session);
    // Counted before the stop is looked at: a stop that comes after this check waits for
    // this exchange's answer.
    let exchange = gate.exchanges.enter();
    if carries != Carries::NoRequest && gate.stopping.is_cancelled() {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is stopping: it takes no new calls, and answers the ones it has",
        );
    }
    let mut req = Request::from_parts(parts, axum::body::Body::from(bytes));
    // Notifications (`notifications/cancelled` among them) and responses start no work and
    // take no slot: a caller with every slot taken can still cancel.
    if carries != Carries::NoRequest {
        match gate.permits(&caller.name).try_acquire_owned() {
            // The permit rides in the request's parts, which rmcp hands to the tool as part
            // of its context: it is released when the handler is done, not when the
            // response is, so a caller that disconnects cannot start more work while its
            // abandoned calls still run.
            Ok(p) => {
                req.extensions_mut().insert(InFlight { _permit: Arc::new(p) });
            }
            Err(_) => {
                return refuse_for_now(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many calls in flight for this caller",
                    "1",
                );
            }
        }
    }
    let opener = (carries == Carries::Initialize).then(|| caller.name.clone());
    req.extensions_mut().insert(caller);
    if let Some(name) = opener {
        // Checked, created and recorded one at a time, and to the end even if the client
        // leaves half-way, so the counts stay true.
        let gate = Arc::clone(gate);
        let response = tokio::spawn(async move {
            let response = gate.sessions.open(&name, next, req).await;
            drop(buffered);
            response
        })
        .await
        .unwrap_or_else(|_| refuse(StatusCode::INTERNAL_SERVER_ERROR, "opening the session failed"));
        return answer(response, None, exchange);
    }
    // rmcp cancels a call's own token when a stateless client goes away, not when a session
    // client does (its answer is an event stream the session outlives). The answer's token
    // fires when the response is dropped before the answer left, or the connection closes
    // before it has written it, whichever the protocol.
    let watched = Answer::new(CancellationToken::new());
    req.extensions_mut().insert(Watch {
        closing: gate.closing.clone(),
        answer: watched.clone(),
    });
    let flushes = req.extensions().get::<Arc<Flushes>>().cloned();
    let response = next.run(req).await;
    drop(buffered);
    let stand_in = id.filter(|_| carries != Carries::NoRequest).map(|id| StandIn {
        id,
        abort: gate.abort.clone(),
    });
    let tracked = Tracked {
        answer: watched,
        flushes,
        stand_in,
    };
    answer(tracked.unless_cut_off(response), Some(tracked), exchange)
}

/// What a POST body carries, as far as the gate is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Carries {
    /// An `initialize` outside a session, which opens one.
    Initialize,
    /// Another JSON-RPC request: a call. So is a body that is not one JSON-RPC message
    /// (rmcp refuses it).
    Request,
    /// A notification or a response: nothing for a handler to answer.
    NoRequest,
}

/// A field that counts as there whatever its value, `null` included.
#[derive(Default)]
struct Present(Option<serde_json::Value>);

impl<'de> serde::Deserialize<'de> for Present {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde_json::Value::deserialize(d).map(|v| Self(Some(v)))
    }
}

impl Carries {
    /// What `body` carries; `in_session` when the request names a session.
    #[cfg(test)]
    fn of(body: &[u8], in_session: bool) -> Self {
        Self::read(body, in_session).0
    }

    /// What `body` carries, and its JSON-RPC id when it has one.
    fn read(body: &[u8], in_session: bool) -> (Self, Option<serde_json::Value>) {
        #[derive(serde::Deserialize)]
        struct Message<'a> {
            #[serde(borrow)]
            method: Option<std::borrow::Cow<'a, str>>,
            #[serde(default)]
            id: Present,
        }
        let Ok(message) = serde_json::from_slice::<Message<'_>>(body) else {
            return (Self::Request, None);
        };
        let id = message.id.0;
        let carries = match message.method.as_deref() {
            // JSON-RPC: a request has an id, a notification none; a response has no method.
            None => Self::NoRequest,
            Some(_) if id.is_none() => Self::NoRequest,
            Some("initialize") if !in_session => Self::Initialize,
            Some(_) => Self::Request,
        };
        (carries, id)
    }
}

/// Why a request body was not read.
enum BodyError {
    /// Longer than `--max-body-bytes`.
    TooLarge,
    /// Its bytes would take the server past `--max-buffered-body-bytes`.
    OverBudget,
    /// The connection failed while it was read.
    Unreadable,
}

/// Reads `body`, at most `limit` bytes, taking one permit of `budget` per byte as each part
/// arrives: bodies that stop short hold only what they sent, and all of them together at most
/// the budget. A part the budget cannot cover refuses the body at once (waiting instead
/// would let half-read bodies hold the budget against each other until they time out). The
/// permits come back with the bytes.
async fn read_body(
    body: axum::body::Body,
    limit: usize,
    budget: &Arc<Semaphore>,
) -> Result<(axum::body::Bytes, OwnedSemaphorePermit), BodyError> {
    use http_body::Body as _;
    use http_body_util::BodyExt as _;
    // A Content-Length past the limit is refused before any of it is read.
    if usize::try_from(body.size_hint().lower()).unwrap_or(usize::MAX) > limit {
        return Err(BodyError::TooLarge);
    }
    let mut held = Arc::clone(budget)
        .try_acquire_many_owned(0)
        .map_err(|_| BodyError::OverBudget)?;
    let mut parts = Vec::new();
    let mut total = 0_usize;
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(|_| BodyError::Unreadable)?.into_data() else {
            continue;
        };
        total += data.len();
        if total > limit {
            return Err(BodyError::TooLarge);
        }
        let n = u32::try_from(data.len()).map_err(|_| BodyError::TooLarge)?;
        let permit = Arc::clone(budget)
            .try_acquire_many_owned(n)
            .map_err(|_| BodyError::OverBudget)?;
        held.merge(permit);
        parts.push(data);
    }
    let bytes = if parts.len() == 1 {
        parts.pop().unwrap_or_default()
    } else {
        let mut all = Vec::with_capacity(total);
        for part in parts {
            all.extend_from_slice(&part);
        }
        all.into()
    };
    Ok((bytes, held))
}

/// One of a caller's calls in flight; dropped with the last copy of the request's parts.
#[derive(Clone)]
struct InFlight {
    _permit: Arc<OwnedSemaphorePermit>,
}

async fn metadata(State(meta): State<Arc<serde_json::Value>>) -> Response {
    axum::Json((*meta).clone()).into_response()
}

#[derive(Clone)]
struct AppState {
    gate: Arc<Gate>,
    meta: Arc<serde_json::Value>,
}

impl axum::extract::FromRef<AppState> for Arc<Gate> {
    fn from_ref(s: &AppState) -> Self {
        Arc::clone(&s.gate)
    }
}

impl axum::extract::FromRef<AppState> for Arc<serde_json::Value> {
    fn from_ref(s: &AppState) -> Self {
        Arc::clone(&s.meta)
    }
}

/// The axum router: `/mcp` and the metadata, behind the checks. `addr` is where it listens.
///
/// When `cancel` fires, requests that would start a call get 503; calls in flight go on
/// until answered, within `options.shutdown_grace` (see the module). Must be called
/// within a Tokio runtime (it starts the task that does that). The token `server` was built
/// with (see [`super::build`]) stops its waits for pooled connections: fire it once
/// [`serve`] has returned, not with `cancel`, or calls in flight that wait for a connection
/// fail at once.
pub fn router(
    server: McpServer,
    options: &HttpOptions,
    auth: Arc<Authenticator>,
    addr: SocketAddr,
    cancel: &CancellationToken,
) -> axum::Router {
    let mut hosts = options.allowed_hosts.clone();
    hosts.push(addr.ip().to_string());
    hosts.push(addr.to_string());
    let resource = options
        .resource
        .clone()
        .unwrap_or_else(|| format!("http://{addr}{MCP_PATH}"));
    let base = resource.strip_suffix(MCP_PATH).unwrap_or(&resource).to_owned();
    // No event store: a broken stream cannot be resumed, so none is announced as resumable
    // (rmcp would send a retry interval, and clients would try a GET that gets 405).
    let mut manager = LocalSessionManager::default();
    manager.session_config.sse_retry = None;
    let sessions = Arc::new(manager);
    let gate = Arc::new(Gate {
        auth,
        hosts: hosts.clone(),
        origins: options.allowed_origins.clone(),
        metadata_url: format!("{base}{METADATA_PATH}"),
        max_in_flight: options.max_in_flight.max(1),
        max_body_bytes: options.max_body_bytes,
        buffered: Arc::new(Semaphore::new(
            options
                .max_buffered_body_bytes
                .max(options.max_body_bytes)
                .min(Semaphore::MAX_PERMITS),
        )),
        read_timeout: options.read_timeout,
        sessions: Sessions {
            rmcp: Arc::clone(&sessions),
            max: options.max_sessions.max(1),
            max_per_caller: options.max_sessions_per_caller.max(1),
            opening: tokio::sync::Mutex::default(),
            owners: Mutex::default(),
        },
        in_flight: Mutex::new(HashMap::new()),
        stopping: cancel.clone(),
        closing: Closing::default(),
        abort: CancellationToken::new(),
        exchanges: Exchanges::default(),
    });
    // rmcp's own token (sessions, their streams, calls in flight) fires only once the calls
    // under way at a stop have been answered, or late in the grace.
    let abort = gate.abort.clone();
    tokio::spawn(stop_in_steps(
        cancel.clone(),
        gate.exchanges.clone(),
        options.shutdown_grace,
        gate.closing.clone(),
        abort.clone(),
    ));
    let meta = Arc::new(serde_json::json!({
        "resource": resource,
        "authorization_servers": options.authorization_servers,
        "bearer_methods_supported": ["header"],
        "scopes_supported": Capability::ALL.iter().map(|c| format!("mq:{c}")).collect::<Vec<_>>(),
        "resource_name": "mqpilot MCP server",
    }));
    // Host and Origin are checked by the guard above; rmcp's own checks are left off so
    // one list decides.
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(true)
        .with_sse_retry(None)
        .with_json_response(true)
        .with_max_request_body_bytes(options.max_body_bytes)
        .with_cancellation_token(abort)
        .disable_allowed_hosts()
        .disable_allowed_origins();
    let service: StreamableHttpService<McpServer, LocalSessionManager> =
        StreamableHttpService::new(move || Ok(server.clone()), sessions, config);
    let state = AppState {
        gate: Arc::clone(&gate),
        meta,
    };
    axum::Router::new()
        .nest_service(MCP_PATH, service)
        .route(METADATA_PATH, axum::routing::get(metadata))
        .route(&format!("{METADATA_PATH}{MCP_PATH}"), axum::routing::get(metadata))
        .layer(axum::middleware::from_fn_with_state(Arc::clone(&gate), guard))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_drop_the_port() {
        assert_eq!(host_name("127.0.0.1:8808"), "127.0.0.1");
        assert_eq!(host_name("[::1]:8808"), "::1");
        assert_eq!(host_name("[::1]"), "::1");
        assert_eq!(host_name("[::1]evil.example"), "[::1]evil.example");
        assert_eq!(host_name("[::1]:80evil"), "[::1]:80evil");
        assert!(!loopback_origin("http://[::1]evil.example"));
        assert_eq!(host_name("localhost"), "localhost");
        assert!(loopback_origin("http://localhost:6274"));
        assert!(!loopback_origin("https://evil.example"));
    }

    #[test]
    fn only_requests_are_calls() {
        let of = |body: &str, in_session| Carries::of(body.as_bytes(), in_session);
        let cancel = r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":2}}"#;
        assert_eq!(of(cancel, true), Carries::NoRequest);
        assert_eq!(of(r#"{"jsonrpc":"2.0","id":7,"result":{}}"#, true), Carries::NoRequest);
        let call = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{}}"#;
        assert_eq!(of(call, true), Carries::Request);
        assert_eq!(
            of(r#"{"jsonrpc":"2.0","id":null,"method":"tools/call"}"#, true),
            Carries::Request
        );
        let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#;
        assert_eq!(of(init, false), Carries::Initialize);
        assert_eq!(of(init, true), Carries::Request, "no new session from within one");
        // Whatever is not one JSON-RPC message counts as a call: rmcp refuses it.
        for other in [
            "[]",
            "[{\"jsonrpc\":\"2.0\",\"method\":\"x\"}]",
            "{\"method\":5}",
            "not json",
        ] {
            assert_eq!(of(other, true), Carries::Request, "{other}");
        }
    }

    #[test]
    fn non_loopback_needs_auth() {
        let none = Authenticator::none();
        assert!(check_listen("0.0.0.0:8808".parse().unwrap(), &none).is_err());
        assert!(check_listen("127.0.0.1:8808".parse().unwrap(), &none).is_ok());
    }
}
