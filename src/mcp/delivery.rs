//! Whether a call's caller can still get its answer, and whether an answer carrying committed
//! messages got there.
//!
//! Each transport puts a [`Watch`] in a call's request: its [`Closing`] fires for every call
//! of the transport at once when answers can no longer be counted on to reach their callers
//! (over stdio when stdin ends or the server stops, over HTTP at a stop's answer deadline),
//! and its [`Answer`] ends delivered or lost. [`CallerGone`] is what a call makes of them
//! with rmcp's own token: a receive looks at it before MQCMIT and hands its message ids to
//! the answer after, so an answer lost after the commit is logged at WARN with the queue and
//! the ids (never payloads), since those messages are gone and nobody saw them. [`Watched`]
//! is the stdio side: a byte-stream transport whose answers count as delivered once written;
//! the HTTP side is the response body (`exchange`) and the connection (`listener`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use rmcp::RoleServer;
use rmcp::model::{GetExtensions as _, JsonRpcMessage, RequestId};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use tokio_util::sync::CancellationToken;

use crate::Error;

/// Why the calls of an HTTP server or a stdio server being stopped were cut short.
pub const STOPPING: &str = "the server is stopping";
/// Why the calls of a stdio server whose client closed stdin were cut short.
pub const STDIN_CLOSED: &str = "stdin was closed";

/// What a transport tells a call about its caller; in the call's request extensions (over
/// HTTP, in the request parts there).
#[derive(Clone, Debug)]
pub struct Watch {
    /// Fires for every call of the transport at once.
    pub closing: Closing,
    /// This call's answer.
    pub answer: Answer,
}

impl Watch {
    /// The watch in a call's `extensions`, or in the HTTP request parts there.
    #[must_use]
    pub fn of(extensions: &rmcp::model::Extensions) -> Option<&Self> {
        extensions.get::<Self>().or_else(|| {
            extensions
                .get::<axum::http::request::Parts>()
                .and_then(|parts| parts.extensions.get::<Self>())
        })
    }
}

/// Fires when a transport's answers can no longer be counted on to reach their callers, for
/// all its calls at once, and says why. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Closing {
    token: CancellationToken,
    why: Arc<OnceLock<&'static str>>,
}

impl Closing {
    /// Closes, saying [`STOPPING`], when `stop` fires (or earlier, by [`Self::close`]).
    #[must_use]
    pub fn under(stop: &CancellationToken) -> Self {
        Self {
            token: stop.child_token(),
            why: Arc::default(),
        }
    }

    /// Closes, for `why` unless it was closed for another reason already.
    pub fn close(&self, why: &'static str) {
        let _ = self.why.set(why);
        self.token.cancel();
    }

    /// Whether it has closed.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Completes when it has closed.
    pub async fn closed(&self) {
        self.token.cancelled().await;
    }

    /// Why it closed ([`STOPPING`] when its stop token did it).
    #[must_use]
    pub fn why(&self) -> &'static str {
        self.why.get().copied().unwrap_or(STOPPING)
    }
}

/// One call's answer on its way to its caller: lost once the transport knows it will not get
/// there (its token fires then, which backs out a lock the answer carried), delivered once
/// written out. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Answer(Arc<AnswerState>);

#[derive(Debug)]
struct AnswerState {
    lost: CancellationToken,
    fate: Mutex<Fate>,
}

#[derive(Debug)]
enum Fate {
    /// On its way, with the messages committed for it, once they are.
    Pending(Option<Committed>),
    Delivered,
    Lost,
}

/// Messages a receive committed for an answer.
#[derive(Debug)]
pub(crate) struct Committed {
    pub queue: String,
    pub ids: Vec<String>,
    /// MQCMIT failed with the connection: they may have been committed.
    pub outcome_unknown: bool,
}

impl Committed {
    /// Logs that these messages were committed but their answer never reached its caller.
    pub(crate) fn warn(&self) {
        let done = if self.outcome_unknown {
            "may have been committed (MQCMIT failed with the connection)"
        } else {
            "were committed"
        };
        tracing::warn!(
            queue = %self.queue,
            messages = self.ids.len(),
            msg_ids = %self.ids.join(","),
            "these messages {done}, and the answer carrying them could not be delivered: the caller \
             cancelled or went away, or its connection was closed, before it had the answer"
        );
    }
}

impl Answer {
    /// An answer on its way; `lost` fires if it is lost.
    #[must_use]
    pub fn new(lost: CancellationToken) -> Self {
        Self(Arc::new(AnswerState {
            lost,
            fate: Mutex::new(Fate::Pending(None)),
        }))
    }

    fn fate(&self) -> std::sync::MutexGuard<'_, Fate> {
        self.0.fate.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The token that fires if it is lost.
    #[must_use]
    pub fn lost_token(&self) -> CancellationToken {
        self.0.lost.clone()
    }

    /// It was written out. Nothing happens if it was lost already.
    pub fn delivered(&self) {
        let mut fate = self.fate();
        if matches!(*fate, Fate::Pending(_)) {
            *fate = Fate::Delivered;
        }
    }

    /// It will not reach its caller: fires its token, and logs messages committed for it.
    /// Nothing happens if it was delivered already.
    pub fn lost(&self) {
        let committed = {
            let mut fate = self.fate();
            match std::mem::replace(&mut *fate, Fate::Lost) {
                Fate::Pending(committed) => committed,
                Fate::Delivered => {
                    *fate = Fate::Delivered;
                    return;
                }
                Fate::Lost => None,
            }
        };
        self.0.lost.cancel();
        if let Some(c) = committed {
            c.warn();
        }
    }

    /// Whether it was lost.
    #[must_use]
    pub fn is_lost(&self) -> bool {
        matches!(*self.fate(), Fate::Lost)
    }

    /// `committed` was committed for this answer: logged at once if it was lost already,
    /// else if it is lost later.
    pub(crate) fn committed(&self, committed: Committed) {
        let mut fate = self.fate();
        match &mut *fate {
            Fate::Pending(slot) => *slot = Some(committed),
            Fate::Lost => {
                drop(fate);
                committed.warn();
            }
            Fate::Delivered => {}
        }
    }
}

/// Tells a call that its answer can no longer reach its caller: the request's own token
/// (the client sent `notifications/cancelled`, or rmcp saw a stateless client go away), the
/// answer lost on its way (an HTTP response dropped before it was sent, a stdio answer that
/// could not be written), or the transport closing for every call (a stop's answer deadline
/// over HTTP, stdin closed or a stop over stdio). It also says what became of the messages
/// committed for the answer: see the module.
#[derive(Clone, Debug)]
pub struct CallerGone {
    request: CancellationToken,
    response: CancellationToken,
    closing: Closing,
    answer: Option<Answer>,
}

impl CallerGone {
    /// Watches `request` and `response` (a token nothing cancels where there is no response
    /// to watch).
    #[must_use]
    pub fn new(request: CancellationToken, response: CancellationToken) -> Self {
        Self {
            request,
            response,
            closing: Closing::default(),
            answer: None,
        }
    }

    /// Watches `request` and what the transport's `watch` says, when it gave one.
    #[must_use]
    pub fn watching(request: CancellationToken, watch: Option<&Watch>) -> Self {
        match watch {
            Some(w) => Self {
                request,
                response: w.answer.lost_token(),
                closing: w.closing.clone(),
                answer: Some(w.answer.clone()),
            },
            None => Self::new(request, CancellationToken::new()),
        }
    }

    /// Also counts the caller as gone once `closing` has closed.
    #[must_use]
    pub fn closing(mut self, closing: Closing) -> Self {
        self.closing = closing;
        self
    }

    /// The token that fires when the answer is lost on its way.
    #[must_use]
    pub fn response(&self) -> CancellationToken {
        self.response.clone()
    }

    /// Whether the caller has gone.
    #[must_use]
    pub fn is_gone(&self) -> bool {
        self.request.is_cancelled() || self.response.is_cancelled() || self.closing.is_closed()
    }

    /// Completes when the caller has gone.
    pub async fn gone(&self) {
        tokio::select! {
            () = self.request.cancelled() => {}
            () = self.response.cancelled() => {}
            () = self.closing.closed() => {}
        }
    }

    /// The error for a call stopped because its caller has gone, after it got and backed
    /// out `backed_out` messages.
    #[must_use]
    pub fn stopped(&self, backed_out: usize) -> Error {
        let why = if self.closing.is_closed() {
            self.closing.why()
        } else {
            "cancelled by the caller (or its connection closed)"
        };
        let what = match backed_out {
            0 => "this call took no message from the queue".to_owned(),
            1 => "the message this call got was backed out: it is on the queue again, backout count + 1".to_owned(),
            n => format!(
                "the {n} messages this call got were backed out: they are on the queue again, backout count + 1"
            ),
        };
        Error::Options {
            source_name: "request".into(),
            message: format!("{why}: {what}"),
        }
    }

    /// After MQCMIT of the messages `ids` from `queue` for this call's answer: logged at WARN
    /// if the answer cannot reach the caller now, or is lost later.
    pub(crate) fn committed(&self, queue: &str, ids: Vec<String>, outcome_unknown: bool) {
        let committed = Committed {
            queue: queue.to_owned(),
            ids,
            outcome_unknown,
        };
        // The closing of the transport says nothing here: an answer made before it is still
        // sent.
        if self.request.is_cancelled() || self.response.is_cancelled() {
            committed.warn();
        } else if let Some(answer) = &self.answer {
            answer.committed(committed);
        }
    }
}

/// A byte-stream transport (stdio) whose calls are watched: each request gets a [`Watch`]
/// whose [`Closing`] fires when the input ends (the client closed stdin: it takes no more
/// answers) or `stop` fires, and whose [`Answer`] is delivered once written, lost when the
/// write fails or the transport closes without having written it (rmcp drops the answer of a
/// call cancelled after it finished).
pub(crate) struct Watched<T> {
    inner: T,
    closing: Closing,
    answers: HashMap<RequestId, Answer>,
}

impl<T> Watched<T> {
    pub(crate) fn new(inner: T, stop: &CancellationToken) -> Self {
        Self {
            inner,
            closing: Closing::under(stop),
            answers: HashMap::new(),
        }
    }
}

impl<T: Transport<RoleServer>> Transport<RoleServer> for Watched<T> {
    type Error = T::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let id = match &item {
            JsonRpcMessage::Response(r) => Some(&r.id),
            JsonRpcMessage::Error(e) => e.id.as_ref(),
            _ => None,
        };
        let answer = id.and_then(|id| self.answers.remove(id));
        let sent = self.inner.send(item);
        async move {
            let result = sent.await;
            if let Some(answer) = answer {
                if result.is_ok() {
                    answer.delivered();
                } else {
                    answer.lost();
                }
            }
            result
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        let mut message = self.inner.receive().await;
        match &mut message {
            None => self.closing.close(STDIN_CLOSED),
            Some(JsonRpcMessage::Request(r)) => {
                let answer = Answer::new(CancellationToken::new());
                self.answers.insert(r.id.clone(), answer.clone());
                r.request.extensions_mut().insert(Watch {
                    closing: self.closing.clone(),
                    answer,
                });
            }
            Some(_) => {}
        }
        message
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        for (_, answer) in self.answers.drain() {
            answer.lost();
        }
        self.inner.close()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed() -> Committed {
        Committed {
            queue: "Q".into(),
            ids: vec!["41".into()],
            outcome_unknown: false,
        }
    }

    #[test]
    fn an_answer_is_lost_or_delivered_once() {
        let answer = Answer::new(CancellationToken::new());
        answer.committed(committed());
        answer.delivered();
        answer.lost();
        assert!(!answer.lost_token().is_cancelled(), "delivered stays delivered");
        assert!(!answer.is_lost());

        let answer = Answer::new(CancellationToken::new());
        answer.lost();
        answer.delivered();
        assert!(answer.lost_token().is_cancelled());
        assert!(answer.is_lost(), "lost stays lost");
    }

    #[test]
    fn closing_says_why_first() {
        let stop = CancellationToken::new();
        let closing = Closing::under(&stop);
        assert!(!closing.is_closed());
        closing.close(STDIN_CLOSED);
        stop.cancel();
        assert!(closing.is_closed());
        assert_eq!(closing.why(), STDIN_CLOSED);
        let stop = CancellationToken::new();
        let closing = Closing::under(&stop);
        stop.cancel();
        assert!(closing.is_closed());
        assert_eq!(closing.why(), STOPPING);
    }
}
