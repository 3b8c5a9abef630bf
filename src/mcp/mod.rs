//! The MCP server: IBM MQ queues as Model Context Protocol tools, deny-by-default.
//!
//! - [`server`]: the tools and the handler rmcp drives (which tools exist, what each needs).
//! - [`policy`]: capabilities and queue globs; every call is checked before MQ is called.
//! - [`queues`]: the queue operations, all through the connection pool and its budget.
//! - [`locks`]: messages held under syncpoint on a reserved connection until completed or
//!   expired.
//! - [`failure`]: tool errors and argument checks.
//! - [`output`]: a tool's result as structured content and the same JSON as text.
//! - [`catalog`]: queue names and the status MQINQ cannot give.
//! - [`delivery`]: whether a caller can still get its answer, and whether it did.
//! - [`auth`]: bearer tokens and JWTs for HTTP callers.
//! - [`http`]: streamable HTTP with Host/Origin checks, auth, limits and RFC 9728 metadata.
//! - `exchange`: an HTTP call's response until its answer is out, and the steps of a stop.
//! - `sessions`: HTTP sessions, their caps, and the caller each belongs to.
//! - [`audit`]: one line per tool call.
//!
//! Invariant: a call the policy or the caller's credential refuses never reaches MQ, and
//! every destructive get is either committed after its result is built or backed out.

pub mod audit;
pub mod auth;
pub mod catalog;
pub mod delivery;
mod exchange;
pub mod failure;
pub mod http;
mod listener;
pub mod locks;
pub mod output;
pub mod policy;
pub mod queues;
pub mod schema;
pub mod server;
mod sessions;

use std::sync::Arc;

use rmcp::ServiceExt as _;
use rmcp::service::ServerInitializeError;
use tokio_util::sync::CancellationToken;

pub use auth::{Authenticator, Caller, JwtConfig};
pub use catalog::{Catalog, Listed};
pub use http::HttpOptions;
pub use policy::{Capability, Policy};
pub use queues::Queues;
pub use server::McpServer;

use crate::Error;
use crate::mq::MqLibrary;
use crate::mq::options::ConnectOptions;
use crate::pool::{Patience, Pool, PoolConfig};

/// Builds the server: a pool of `pool_config.connections` connections made with `options`
/// through `library`, under `policy`. Nothing connects until the first tool call, and a call
/// waits for a connection only as long as `patience` allows. `cancel`
/// stops waits for connections and expiry timers; call [`Queues::shutdown`] afterwards to
/// back out held locks.
#[must_use]
pub fn build(
    library: MqLibrary,
    options: ConnectOptions,
    pool_config: PoolConfig,
    catalog: Arc<dyn Catalog>,
    policy: Policy,
    patience: Patience,
    cancel: &CancellationToken,
) -> McpServer {
    let connections = pool_config.connections.max(1);
    let pool = Pool::new(library, options, pool_config);
    // A lock holds a connection: keep one free for every other tool.
    let locks = locks::LockLimit::new(policy.limits.max_locks, connections);
    let queues = Queues::new(pool, catalog, connections, locks, patience, cancel.clone());
    McpServer::new(queues, policy)
}

/// Serves MCP over a byte stream pair (stdin/stdout, or an in-memory pipe) until the peer
/// closes it or `cancel` fires, then backs out held locks. A destructive call still running
/// when the input ends or `cancel` fires backs out what it got (see [`delivery`]).
/// Stopped, or the input closed, before the client's `initialize` is a clean stop too.
///
/// # Errors
/// [`Error::Io`] when the MCP session cannot start.
pub async fn serve_stream<R, W>(server: McpServer, read: R, write: W, cancel: CancellationToken) -> Result<(), Error>
where
    R: tokio::io::AsyncRead + Send + Unpin + 'static,
    W: tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let queues = server.queues().clone();
    let transport = delivery::Watched::new(rmcp::transport::async_rw::AsyncRwTransport::new(read, write), &cancel);
    let running = server.serve_with_ct(transport, cancel.child_token()).await;
    let result = match running {
        Ok(running) => {
            let _ = running.waiting().await;
            Ok(())
        }
        Err(ServerInitializeError::Cancelled | ServerInitializeError::ConnectionClosed(_)) => Ok(()),
        Err(e) => Err(Error::Io {
            path: "MCP stream".into(),
            source: std::io::Error::other(e.to_string()),
        }),
    };
    let released = queues.shutdown().await;
    if released > 0 {
        tracing::info!(locks = released, "backed out locks held at shutdown");
    }
    result
}
