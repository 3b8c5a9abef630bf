//! `mqpilot mcp`: flags -> policy, credentials, connection -> MCP server over stdio or HTTP.
//!
//! Exit codes: 0 the server stopped as asked (signal, stdin closed); 2 bad flags, policy or
//! credential files, or a non-loopback `--listen` without auth; 3 the listener or the IBM
//! library could not be set up. Logs go to stderr only: on `--stdio`, stdout is the protocol.
//! A signal stops a stdio server even while its client keeps stdin open: stdin is read on a
//! thread that nothing waits for.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use anyhow::Context as _;
use clap::Args;
use clap::builder::RangedU64ValueParser;
use mqpilot::fake::net::RemoteAdmin;
use mqpilot::mcp::{self, Authenticator, Catalog, HttpOptions, JwtConfig, Listed, Policy};
use mqpilot::pool::{Patience, PoolConfig};
use mqpilot::worker::config::{MAX_CONNECTIONS, WorkerConfig};
use tokio_util::sync::CancellationToken;

use crate::connection::Backend;
use crate::{Failure, LogFormat, usage};

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("transport").required(true).args(["stdio", "listen"])))]
pub(crate) struct McpArgs {
    /// Serve MCP on stdin/stdout (for Claude Desktop, VS Code and other local agents).
    #[arg(long)]
    stdio: bool,
    /// Serve streamable HTTP at http://ADDR/mcp (loopback unless auth is configured).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Policy file (TOML). Default: inspect, browse and plan on every non-SYSTEM queue.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,

    #[command(flatten)]
    backend: crate::connection::BackendArgs,

    /// Connections in the pool (locks hold one each; one always stays free for other tools).
    #[arg(long, default_value_t = 4,
          value_parser = RangedU64ValueParser::<usize>::new().range(1..=MAX_CONNECTIONS as u64))]
    connections: usize,
    /// Most handles per connection; the budget is min(this, MAXHANDS - reserve).
    #[arg(long, default_value_t = 256, value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    max_handles: usize,
    #[command(flatten)]
    connection: crate::connection::ConnectionArgs,

    /// Static bearer tokens (TOML: [[token]] name, token, capabilities).
    #[arg(long, value_name = "FILE")]
    tokens_file: Option<PathBuf>,
    /// Accept HS256 JWTs signed with the secret in this file.
    #[arg(long, value_name = "FILE", conflicts_with = "jwks_file", requires_all = ["jwt_issuer", "jwt_audience"])]
    jwt_secret_file: Option<PathBuf>,
    /// Accept RS256/ES256 JWTs signed by a key in this JWKS file.
    #[arg(long, value_name = "FILE", requires_all = ["jwt_issuer", "jwt_audience"])]
    jwks_file: Option<PathBuf>,
    /// Required JWT issuer (`iss`).
    #[arg(long, value_name = "URL")]
    jwt_issuer: Option<String>,
    /// Required JWT audience (`aud`), normally this server's URL.
    #[arg(long, value_name = "AUD")]
    jwt_audience: Option<String>,
    /// Authorization server named in /.well-known/oauth-protected-resource (repeatable).
    #[arg(long = "authorization-server", value_name = "URL")]
    authorization_servers: Vec<String>,
    /// Public URL of the endpoint, when behind a proxy. Default http://ADDR/mcp.
    #[arg(long, value_name = "URL")]
    resource_url: Option<String>,
    /// Extra Host header value to accept (repeatable); loopback names are always accepted.
    #[arg(long = "allowed-host", value_name = "HOST")]
    allowed_hosts: Vec<String>,
    /// Origin to accept (repeatable). Default: loopback origins only.
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    allowed_origins: Vec<String>,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 4 * 1024 * 1024, value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    max_body_bytes: usize,
    /// Request body bytes buffered at once, all connections together (at least
    /// --max-body-bytes); a body that would pass it gets 503 with Retry-After.
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    max_buffered_body_bytes: usize,
    /// Tool calls in flight per caller.
    #[arg(long, default_value_t = 16, value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    max_in_flight: usize,
    /// Seconds a tool call waits for an MQ connection that other calls or locks hold before
    /// it answers that all are busy.
    #[arg(long, value_name = "SECS", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=3600))]
    connection_wait_secs: u64,
    /// 2025-11-25 sessions open at once; an idle one closes after 5 minutes.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    max_sessions: u32,
    /// Of those, sessions one caller may hold.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    max_sessions_per_caller: u32,
    /// HTTP connections served at once; more wait in the listen backlog.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,
    /// Seconds a client has for each step: to send a request's headers (an idle kept-alive
    /// connection is closed after as long), then its body, and to take each next part of an
    /// answer.
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    read_timeout_secs: u64,

    /// Log format on stderr (level from RUST_LOG, default info).
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) log_format: LogFormat,
}

fn authenticator(args: &McpArgs) -> Result<Authenticator, Failure> {
    let mut auth = Authenticator::none();
    if let Some(path) = &args.tokens_file {
        auth = auth.with_tokens_file(path).map_err(usage)?;
    }
    let issuer = args.jwt_issuer.clone().unwrap_or_default();
    let audience = args.jwt_audience.clone().unwrap_or_default();
    if let Some(path) = &args.jwt_secret_file {
        auth = auth.with_jwt(JwtConfig::hs256(path, issuer.clone(), audience.clone()).map_err(usage)?);
    }
    if let Some(path) = &args.jwks_file {
        auth = auth.with_jwt(JwtConfig::jwks(path, issuer, audience).map_err(usage)?);
    }
    Ok(auth)
}

pub(crate) async fn run(args: McpArgs) -> Result<u8, Failure> {
    let policy = match &args.policy {
        Some(path) => Policy::from_file(path).map_err(usage)?,
        None => Policy::default(),
    };
    if args.max_buffered_body_bytes < args.max_body_bytes {
        return Err(usage(anyhow::anyhow!(
            "--max-buffered-body-bytes ({}) must be at least --max-body-bytes ({})",
            args.max_buffered_body_bytes,
            args.max_body_bytes
        )));
    }
    let auth = authenticator(&args)?;
    if let Some(addr) = args.listen {
        mcp::http::check_listen(addr, &auth).map_err(usage)?;
    }
    let demo_channel = args.backend.default_server();
    let overrides = args.connection.overrides(demo_channel, Some("mqpilot-mcp"));
    let env = |k: &str| std::env::var(k).ok();
    let settings = WorkerConfig::from_queues(Vec::new()).connection;
    let options = args
        .backend
        .route(settings.connect_options(env, &overrides).map_err(usage)?);
    let (library, backend) = args.backend.open()?;
    let catalog: Arc<dyn Catalog> = match backend {
        Backend::Fake(qm) => Arc::new(qm),
        Backend::Server(addr) => Arc::new(RemoteAdmin::new(addr)),
        Backend::Ibm => Arc::new(Listed(policy.queues.clone())),
    };
    let pool_config = PoolConfig {
        connections: args.connections,
        max_handles: args.max_handles,
        ..PoolConfig::default()
    };
    let cancel = CancellationToken::new();
    // Awaited: a signal from here on is a clean stop, not the default action's kill.
    crate::signals::watch_signals(cancel.clone()).await;
    let patience = Patience {
        busy: std::time::Duration::from_secs(args.connection_wait_secs),
        ..Patience::default()
    };
    // The MQ side stops (waits for pooled connections, lock expiry timers) when the protocol
    // side is done: over HTTP that is after the calls in flight at a signal were answered.
    let mq_stop = if args.stdio {
        cancel.clone()
    } else {
        CancellationToken::new()
    };
    let server = mcp::build(library, options, pool_config, catalog, policy, patience, &mq_stop);
    if args.stdio {
        tracing::info!("serving MCP on stdio");
        let stdin = DetachedStdin::start()
            .context("cannot read stdin")
            .map_err(|e| Failure(3, e))?;
        mcp::serve_stream(server, stdin, tokio::io::stdout(), cancel)
            .await
            .map_err(|e| Failure(3, e.into()))?;
        return Ok(0);
    }
    let addr = args.listen.expect("clap requires --stdio or --listen");
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))
        .map_err(|e| Failure(3, e))?;
    let bound = listener.local_addr().map_err(|e| Failure(3, e.into()))?;
    let mut http = HttpOptions {
        allowed_origins: args.allowed_origins.clone(),
        max_body_bytes: args.max_body_bytes,
        max_buffered_body_bytes: args.max_buffered_body_bytes,
        max_in_flight: args.max_in_flight,
        max_connections: args.max_connections as usize,
        max_sessions: args.max_sessions as usize,
        max_sessions_per_caller: args.max_sessions_per_caller as usize,
        read_timeout: std::time::Duration::from_secs(args.read_timeout_secs),
        resource: args.resource_url.clone(),
        authorization_servers: args.authorization_servers.clone(),
        ..HttpOptions::default()
    };
    http.allowed_hosts.extend(args.allowed_hosts.iter().cloned());
    let queues = server.queues().clone();
    let router = mcp::http::router(server, &http, Arc::new(auth), bound, &cancel);
    tracing::info!(url = %format!("http://{bound}{}", mcp::http::MCP_PATH), "serving MCP over streamable HTTP");
    mcp::http::serve(listener, router, &http, cancel).await;
    mq_stop.cancel();
    let released = queues.shutdown().await;
    if released > 0 {
        tracing::info!(locks = released, "backed out locks held at shutdown");
    }
    Ok(0)
}

/// Stdin, read on a thread of its own. Tokio's stdin reads on a blocking thread that the
/// runtime waits for when it shuts down, and a read from a client that keeps stdin open
/// never ends: a stopped server would not exit. Nothing waits for this thread; it ends with
/// the process.
struct DetachedStdin {
    chunks: tokio::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    /// The chunk being handed out, and how much of it has been.
    chunk: Vec<u8>,
    given: usize,
}

/// Bytes read from stdin at once.
const STDIN_CHUNK_BYTES: usize = 64 * 1024;

impl DetachedStdin {
    fn start() -> std::io::Result<Self> {
        // A few chunks ahead at most: a client that sends faster than it is served waits.
        let (sender, chunks) = tokio::sync::mpsc::channel(4);
        std::thread::Builder::new()
            .name("mqpilot-stdin".into())
            .spawn(move || {
                use std::io::Read as _;
                let mut stdin = std::io::stdin().lock();
                loop {
                    let mut chunk = vec![0; STDIN_CHUNK_BYTES];
                    let read = match stdin.read(&mut chunk) {
                        Ok(0) => return,
                        Ok(n) => {
                            chunk.truncate(n);
                            Ok(chunk)
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(e) => Err(e),
                    };
                    let failed = read.is_err();
                    if sender.blocking_send(read).is_err() || failed {
                        return;
                    }
                }
            })?;
        Ok(Self {
            chunks,
            chunk: Vec::new(),
            given: 0,
        })
    }
}

impl tokio::io::AsyncRead for DetachedStdin {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.given == self.chunk.len() {
            match ready!(self.chunks.poll_recv(cx)) {
                // The end of stdin: nothing more is read.
                None => return Poll::Ready(Ok(())),
                Some(Err(e)) => return Poll::Ready(Err(e)),
                Some(Ok(chunk)) => {
                    self.chunk = chunk;
                    self.given = 0;
                }
            }
        }
        let n = buf.remaining().min(self.chunk.len() - self.given);
        let from = self.given;
        buf.put_slice(&self.chunk[from..from + n]);
        self.given += n;
        Poll::Ready(Ok(()))
    }
}
