//! The HTTP listener under the MCP endpoint: hyper's HTTP/1 server with the limits a server
//! facing untrusted clients needs, which `axum::serve` does not set.
//!
//! - At most `max_connections` connections at once; more wait in the listen backlog.
//! - A client has `read_timeout` to send a request's headers; the same bound closes a
//!   kept-alive connection that idles between requests.
//! - A client has `read_timeout` to take each next part of a response: one that stops
//!   reading is disconnected instead of holding its connection (and a stop) for ever.
//! - On shutdown the listening socket is closed at once (new connections are refused), idle
//!   connections are closed, and the others finish what they are doing for at most the
//!   shutdown grace ([`HttpOptions::shutdown_grace`]), past the point where the router has
//!   cancelled what is left, so the answers made until then can still be written.
//! - Each connection knows when what it was handed is written ([`Flushes`]): an answer is
//!   delivered once the connection has flushed it, lost if the connection ends first.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::extract::Request;
use hyper_util::service::{TowerToHyperService, TowerToHyperServiceFuture};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::delivery::Answer;
use super::http::HttpOptions;

/// How long a stop may take by default (see [`HttpOptions::shutdown_grace`]).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until `cancel` fires, then lets the connections finish (at
/// most `options.shutdown_grace`). Limits: see the module. Accept errors (out of file
/// descriptors, for example) are logged and retried after a pause.
pub fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    options: &HttpOptions,
    cancel: CancellationToken,
) -> impl Future<Output = ()> + Send + 'static {
    let limit = options.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let stall = options.read_timeout;
    let grace = options.shutdown_grace;
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(options.read_timeout);
    async move {
        let slots = Arc::new(Semaphore::new(limit));
        loop {
            let slot = tokio::select! {
                slot = Arc::clone(&slots).acquire_owned() => slot.expect("the semaphore is never closed"),
                () = cancel.cancelled() => break,
            };
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        if !matches!(
                            e.kind(),
                            std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::ConnectionReset
                        ) {
                            tracing::error!(error = %e, "cannot accept connections; retrying in 1 s");
                            tokio::select! {
                                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                                () = cancel.cancelled() => break,
                            }
                        }
                        continue;
                    }
                },
                () = cancel.cancelled() => break,
            };
            let _ = stream.set_nodelay(true);
            let flushes = Arc::new(Flushes::default());
            let io = hyper_util::rt::TokioIo::new(WriteStall::new(stream, stall, Arc::clone(&flushes)));
            let service = Connection {
                router: TowerToHyperService::new(router.clone()),
                flushes,
            };
            let conn = http.serve_connection(io, service);
            let cancel = cancel.clone();
            tokio::spawn(async move {
                let mut conn = std::pin::pin!(conn);
                tokio::select! {
                    _ = conn.as_mut() => {}
                    () = cancel.cancelled() => {
                        conn.as_mut().graceful_shutdown();
                        // Past the grace the connection is dropped, which closes it.
                        let _ = tokio::time::timeout(grace, conn).await;
                    }
                }
                drop(slot);
            });
        }
        drop(listener);
        // Every connection gives its slot back when it ends, at the latest at the grace's
        // end: having them all means none is left.
        let all = u32::try_from(limit).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(grace + Duration::from_secs(1), slots.acquire_many(all)).await;
    }
}

/// The router as one connection serves it: each request carries the connection's
/// [`Flushes`].
struct Connection {
    router: TowerToHyperService<axum::Router>,
    flushes: Arc<Flushes>,
}

impl hyper::service::Service<hyper::Request<hyper::body::Incoming>> for Connection {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = TowerToHyperServiceFuture<axum::Router, Request<hyper::body::Incoming>>;

    fn call(&self, mut req: hyper::Request<hyper::body::Incoming>) -> Self::Future {
        req.extensions_mut().insert(Arc::clone(&self.flushes));
        self.router.call(req)
    }
}

/// What one connection has written: answers handed to it wait here until its next flush
/// (hyper flushes the socket only once everything it buffered has been written to it), and
/// are lost if the connection ends first.
pub(super) struct Flushes(Mutex<Option<Vec<Answer>>>);

impl Default for Flushes {
    fn default() -> Self {
        Self(Mutex::new(Some(Vec::new())))
    }
}

impl Flushes {
    fn waiting(&self) -> std::sync::MutexGuard<'_, Option<Vec<Answer>>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `answer` has been handed to the connection: delivered once it is flushed.
    pub(super) fn deliver(&self, answer: Answer) {
        let mut waiting = self.waiting();
        match waiting.as_mut() {
            Some(answers) => answers.push(answer),
            None => {
                drop(waiting);
                answer.lost();
            }
        }
    }

    fn flushed(&self) {
        let done = self.waiting().as_mut().map(std::mem::take).unwrap_or_default();
        for answer in done {
            answer.delivered();
        }
    }

    fn ended(&self) {
        let left = self.waiting().take().unwrap_or_default();
        for answer in left {
            answer.lost();
        }
    }
}

/// A socket whose writes fail with `TimedOut` once one has made no progress for `limit`: a
/// peer that stops reading fills its window, and its connection is then closed instead of
/// waiting for it for ever.
struct WriteStall<S> {
    inner: S,
    limit: Duration,
    /// Running while a write waits for the peer; reset by any progress.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Told of each flush done, and of the end.
    flushes: Arc<Flushes>,
}

impl<S> WriteStall<S> {
    const fn new(inner: S, limit: Duration, flushes: Arc<Flushes>) -> Self {
        Self {
            inner,
            limit,
            stalled: None,
            flushes,
        }
    }

    /// After the inner write returned `polled`: clears the timer on progress; on `Pending`,
    /// starts it (or polls it, so this task wakes when it fires) and fails once it has.
    fn watch<T>(&mut self, cx: &mut Context<'_>, polled: Poll<std::io::Result<T>>) -> Poll<std::io::Result<T>> {
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        let limit = self.limit;
        let timer = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        ready!(timer.as_mut().poll(cx));
        Poll::Ready(Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the client took no response data for the read timeout",
        )))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteStall<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteStall<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        let polled = self.watch(cx, polled);
        if matches!(polled, Poll::Ready(Ok(()))) {
            self.flushes.flushed();
        }
        polled
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.watch(cx, polled)
    }
}

impl<S> Drop for WriteStall<S> {
    fn drop(&mut self) {
        self.flushes.ended();
    }
}
