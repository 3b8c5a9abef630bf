//! One HTTP exchange of the MCP endpoint, from the request handed to rmcp to the end of its
//! response body, and the steps of a stop, which waits for the exchanges under way.
//!
//! The response body of a call tells the call's [`Answer`] whether it got out: lost if the
//! body is dropped before the answer left it, delivered once the connection has written it
//! ([`Flushes`]). A call cut off by the end of a stop gets a JSON-RPC error in place of the
//! answer rmcp no longer gives.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio_util::sync::CancellationToken;

use super::delivery::{Answer, Closing, STOPPING};
use super::listener::Flushes;

/// `response` with its body watched: `tracked`, when given, learns whether the answer got
/// out, and `exchange` counts until the body is done with.
pub(super) fn answer(response: Response, tracked: Option<Tracked>, exchange: Exchange) -> Response {
    let event_stream = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    response.map(|body| {
        axum::body::Body::new(GoneOnDrop {
            inner: body,
            tracked,
            event_stream,
            answered: false,
            ended: false,
            _exchange: exchange,
        })
    })
}

/// What the server says in place of the answer of a call cut off by the end of a stop.
const CUT_OFF: &str = "the server stopped before this call finished, and cancelled it: receive_messages \
     and lock_messages back out what they got (those messages stay on the queue, backout count + 1); \
     whether a put_message or complete_messages still running took effect is unknown";

/// A call's answer as its response body carries it.
pub(super) struct Tracked {
    pub(super) answer: Answer,
    /// The connection's writes, when [`serve`] serves it.
    pub(super) flushes: Option<Arc<Flushes>>,
    /// For a call cut off by the end of a stop, the error that stands in for its answer.
    pub(super) stand_in: Option<StandIn>,
}

/// The request's JSON-RPC id, and the token that fires when rmcp is cancelled.
pub(super) struct StandIn {
    pub(super) id: serde_json::Value,
    pub(super) abort: CancellationToken,
}

impl StandIn {
    /// The JSON-RPC error for a call cut off, once rmcp has been cancelled.
    fn message(&self) -> Option<String> {
        self.abort.is_cancelled().then(|| {
            serde_json::json!({
                "jsonrpc": "2.0",
                "id": self.id,
                "error": {"code": -32603, "message": CUT_OFF},
            })
            .to_string()
        })
    }
}

impl Tracked {
    /// The answer has been handed to the connection.
    fn left(&self) {
        match &self.flushes {
            Some(f) => f.deliver(self.answer.clone()),
            None => self.answer.delivered(),
        }
    }

    /// `response`, unless rmcp gave up on a stateless call when it was cancelled (a 500 with
    /// no JSON-RPC answer): then the error saying so.
    pub(super) fn unless_cut_off(&self, response: Response) -> Response {
        if response.status() != StatusCode::INTERNAL_SERVER_ERROR {
            return response;
        }
        match self.stand_in.as_ref().and_then(StandIn::message) {
            Some(text) => (
                StatusCode::OK,
                [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
                text,
            )
                .into_response(),
            None => response,
        }
    }
}

/// A response body that tells its call's [`Answer`] whether it got out: lost if the body
/// is dropped before the answer left it, else delivered once the connection has written it.
/// The answer is the body's first frame that is not an SSE comment (a JSON body is the
/// answer; in an event stream, keep-alives are comments and the first event is the answer,
/// since mqpilot sends no notifications and announces no resumption). A client that closes
/// as soon as it has read the answer, before the stream's end is polled, has not lost it. An
/// event stream that rmcp ends without an answer because a stop cancelled it ends with the
/// JSON-RPC error saying so instead.
struct GoneOnDrop {
    inner: axum::body::Body,
    tracked: Option<Tracked>,
    event_stream: bool,
    answered: bool,
    /// The stand-in was sent: nothing more comes.
    ended: bool,
    _exchange: Exchange,
}

impl GoneOnDrop {
    fn answer_left(&mut self) {
        self.answered = true;
        if let Some(t) = &self.tracked {
            t.left();
        }
    }
}

impl Drop for GoneOnDrop {
    fn drop(&mut self) {
        if !self.answered
            && let Some(t) = &self.tracked
        {
            t.answer.lost();
        }
    }
}

/// The exchanges under way: requests handed to rmcp whose response bodies are not done
/// with yet. A stop waits for them before it cancels what is left.
#[derive(Clone)]
pub(super) struct Exchanges(Arc<tokio::sync::watch::Sender<usize>>);

/// One of the [`Exchanges`], until dropped.
pub(super) struct Exchange(Arc<tokio::sync::watch::Sender<usize>>);

impl Default for Exchanges {
    fn default() -> Self {
        Self(Arc::new(tokio::sync::watch::Sender::new(0)))
    }
}

impl Exchanges {
    pub(super) fn enter(&self) -> Exchange {
        self.0.send_modify(|n| *n += 1);
        Exchange(Arc::clone(&self.0))
    }

    /// Completes when no exchange is under way.
    async fn drained(&self) {
        let _ = self.0.subscribe().wait_for(|n| *n == 0).await;
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

impl http_body::Body for GoneOnDrop {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        if self.ended {
            return std::task::Poll::Ready(None);
        }
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if self.answered {
            return polled;
        }
        match &polled {
            std::task::Poll::Ready(Some(Ok(frame))) if frame.data_ref().is_some_and(|d| d.first() != Some(&b':')) => {
                self.answer_left();
            }
            std::task::Poll::Ready(None) if self.event_stream => {
                let stand_in = self
                    .tracked
                    .as_ref()
                    .and_then(|t| t.stand_in.as_ref())
                    .and_then(StandIn::message);
                if let Some(text) = stand_in {
                    self.ended = true;
                    self.answer_left();
                    let event = format!("data: {text}\n\n");
                    return std::task::Poll::Ready(Some(Ok(http_body::Frame::data(event.into()))));
                }
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.ended || (self.inner.is_end_stream() && (self.answered || !self.event_stream))
    }

    fn size_hint(&self) -> http_body::SizeHint {
        if self.event_stream {
            return http_body::SizeHint::default();
        }
        self.inner.size_hint()
    }
}

/// Time a stop leaves, after calls must have answered, for those still running to answer
/// that they were stopped (a receive waiting in MQGET notices within a wait slice, 1 s) and
/// for the answers to be written.
const ANSWERS_DUE_BEFORE_END: Duration = Duration::from_secs(4);

/// Time a stop leaves, after rmcp is cancelled, for the answers that stand in for calls cut
/// off, and any other answer still on its way, to be written.
const ABORT_BEFORE_END: Duration = Duration::from_secs(2);

/// Once `stop` fires, goes through a stop's steps over `grace` (see the module), each cut
/// short once the exchanges under way are done (their answers written or their clients
/// gone): `closing` closes [`ANSWERS_DUE_BEFORE_END`] before the end of `grace`, `abort`
/// fires [`ABORT_BEFORE_END`] before it.
pub(super) async fn stop_in_steps(
    stop: CancellationToken,
    exchanges: Exchanges,
    grace: Duration,
    closing: Closing,
    abort: CancellationToken,
) {
    stop.cancelled().await;
    let started = tokio::time::Instant::now();
    let answers_due = grace.saturating_sub(ANSWERS_DUE_BEFORE_END);
    if tokio::time::timeout(answers_due, exchanges.drained()).await.is_err() {
        closing.close(STOPPING);
        let abort_at = grace.saturating_sub(ABORT_BEFORE_END);
        if tokio::time::timeout_at(started + abort_at, exchanges.drained())
            .await
            .is_err()
        {
            tracing::warn!(
                "calls still running {} s after the stop, past their answer deadline: cancelling them",
                abort_at.as_secs_f32()
            );
        }
    }
    closing.close(STOPPING);
    abort.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body that yields `frames`, then waits for ever.
    struct Frames(std::collections::VecDeque<&'static str>);

    impl http_body::Body for Frames {
        type Data = axum::body::Bytes;
        type Error = axum::Error;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
            match self.0.pop_front() {
                Some(f) => std::task::Poll::Ready(Some(Ok(http_body::Frame::data(f.into())))),
                None => std::task::Poll::Pending,
            }
        }
    }

    /// Polls a `GoneOnDrop` over `frames` (an event stream) once per frame, drops it, and
    /// says whether its answer was lost.
    fn gone_after(frames: &[&'static str]) -> bool {
        let answer = Answer::new(CancellationToken::new());
        let mut body = GoneOnDrop {
            inner: axum::body::Body::new(Frames(frames.iter().copied().collect())),
            tracked: Some(Tracked {
                answer: answer.clone(),
                flushes: None,
                stand_in: None,
            }),
            event_stream: true,
            answered: false,
            ended: false,
            _exchange: Exchanges::default().enter(),
        };
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        for _ in 0..=frames.len() {
            let _ = http_body::Body::poll_frame(std::pin::Pin::new(&mut body), &mut cx);
        }
        drop(body);
        answer.lost_token().is_cancelled()
    }

    #[test]
    fn the_token_fires_only_while_the_answer_has_not_left() {
        assert!(gone_after(&[]), "dropped before anything was sent");
        assert!(gone_after(&[": keep-alive\n\n"]), "only a keep-alive was sent");
        assert!(
            !gone_after(&["data: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{}}\n\n"]),
            "the answer event left; the stream's end was not polled yet"
        );
        assert!(!gone_after(&[": keep-alive\n\n", "data: {}\n\n"]));
    }

    /// A body that ends at once, as rmcp's event stream does when a stop cancels it.
    struct Ended;

    impl http_body::Body for Ended {
        type Data = axum::body::Bytes;
        type Error = axum::Error;

        fn poll_frame(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
            std::task::Poll::Ready(None)
        }
    }

    #[test]
    fn an_event_stream_cut_off_by_a_stop_ends_with_an_error_for_its_call() {
        let read = |abort: &CancellationToken| {
            let mut body = GoneOnDrop {
                inner: axum::body::Body::new(Ended),
                tracked: Some(Tracked {
                    answer: Answer::new(CancellationToken::new()),
                    flushes: None,
                    stand_in: Some(StandIn {
                        id: 7.into(),
                        abort: abort.clone(),
                    }),
                }),
                event_stream: true,
                answered: false,
                ended: false,
                _exchange: Exchanges::default().enter(),
            };
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            let mut text = String::new();
            while let std::task::Poll::Ready(Some(Ok(frame))) =
                http_body::Body::poll_frame(std::pin::Pin::new(&mut body), &mut cx)
            {
                text.push_str(std::str::from_utf8(frame.data_ref().expect("data")).expect("utf-8"));
            }
            text
        };
        let abort = CancellationToken::new();
        assert_eq!(read(&abort), "", "not stopped: nothing is made up");
        abort.cancel();
        let text = read(&abort);
        let event: serde_json::Value =
            serde_json::from_str(text.strip_prefix("data: ").expect("an event").trim_end()).expect("JSON");
        assert_eq!(event["id"], 7, "{event}");
        assert_eq!(event["error"]["code"], -32603, "{event}");
        assert!(
            event["error"]["message"]
                .as_str()
                .expect("message")
                .starts_with("the server stopped before this call finished"),
            "{event}"
        );
    }
}
