//! The MCP tools: arguments in, policy checked, queue operation run, structured result out.
//!
//! Each tool names the capability it needs ([`TOOLS`]); tools whose capability the policy
//! does not enable are removed from the router, so they are neither listed nor callable.
//! Every call is checked against the caller's credential and the policy before any MQ call
//! (a refusal names the rule), returns its result both as structured content (with an
//! output schema) and as the same JSON in text (a failure as JSON text only), and writes one
//! audit line.

use std::sync::Arc;
use std::time::Duration;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{Implementation, ServerCapabilities, ServerConfig};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, ServerHandler, tool, tool_handler, tool_router};

use super::audit::{self, Outcome};
use super::auth::Caller;
use super::delivery::Watch;
use super::failure::{Args, Fail, failure, in_range, input, invalid};
use super::locks::{Action, Lifetime, LockError};
use super::output::{self, Json, Prepared};
use super::policy::{Capability, Policy, glob_matches};
use super::queues::{CallerGone, Locking, Queues, cancelled_request};
use super::schema::*;
use crate::Error;
use crate::mq::put_fields::{self, PutFields};
use crate::mq::reason::{Reason, parse_reason};

/// Every tool and the capability it needs. A new tool is one `#[tool]` method plus one row.
pub const TOOLS: &[(&str, Capability)] = &[
    ("list_queues", Capability::Inspect),
    ("queue_status", Capability::Inspect),
    ("pool_status", Capability::Inspect),
    ("explain_reason_code", Capability::Inspect),
    ("browse_messages", Capability::Browse),
    ("receive_messages", Capability::Consume),
    ("lock_messages", Capability::Consume),
    ("complete_messages", Capability::Consume),
    ("put_message", Capability::Produce),
    ("plan_capacity", Capability::Plan),
];

const DEFAULT_BROWSE_LIMIT: u32 = 10;
const DEFAULT_PAYLOAD_BYTES: u32 = 4096;
const MAX_PAYLOAD_BYTES: u32 = 1024 * 1024;
const MAX_WAIT_MS: u32 = 10_000;
const DEFAULT_LOCK_SECONDS: u32 = 60;

/// Shared state of every server instance (HTTP builds one per session or request).
pub struct State {
    pub(crate) queues: Queues,
    pub(crate) policy: Policy,
}

/// The MCP server handler. Cheap to clone.
#[derive(Clone)]
pub struct McpServer {
    state: Arc<State>,
    // Shared: HTTP builds a handler per session or stateless request.
    tool_router: Arc<ToolRouter<Self>>,
}

impl std::fmt::Debug for McpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServer")
            .field("queues", &self.state.queues)
            .finish_non_exhaustive()
    }
}

/// What tells a call that its caller will not see the answer: rmcp's token for the request
/// and what the transport watches (see [`Watch`]).
fn caller_gone(ctx: &RequestContext<RoleServer>) -> CallerGone {
    CallerGone::watching(ctx.ct.clone(), response_gone(ctx))
}

/// What the transport watches of this call: its answer on its way, and the transport
/// closing for every call (over HTTP in the request parts, over stdio in the request).
fn response_gone(ctx: &RequestContext<RoleServer>) -> Option<&Watch> {
    Watch::of(&ctx.extensions)
}

/// Runs a read-only tool's work, dropped if the caller goes first (it waits for a pooled
/// connection, say): it changes no queue, so stopping anywhere is safe, and the caller's call
/// slot comes back at once instead of when the work would have ended.
async fn unless_gone<T>(
    ctx: &RequestContext<RoleServer>,
    work: impl Future<Output = Result<T, Fail>>,
) -> Result<T, Fail> {
    let gone = caller_gone(ctx);
    tokio::select! {
        biased;
        result = work => result,
        () = gone.gone() => Err(Fail::from(cancelled_request())),
    }
}

#[tool_router]
impl McpServer {
    /// A server over `queues` under `policy`; tools the policy disables are removed.
    #[must_use]
    pub fn new(queues: Queues, policy: Policy) -> Self {
        let mut tool_router = Self::tool_router();
        for (name, cap) in TOOLS {
            if !policy.enabled(*cap) {
                tool_router.remove_route(name);
            }
        }
        Self {
            state: Arc::new(State { queues, policy }),
            tool_router: Arc::new(tool_router),
        }
    }

    /// The MQ side, for shutdown.
    #[must_use]
    pub fn queues(&self) -> &Queues {
        &self.state.queues
    }

    /// Checks the credential and the policy for `queue`, given as the argument named
    /// `arg`; MQ is not called when this fails.
    fn gate(&self, who: &Caller, cap: Capability, queue: Option<(&str, &str)>) -> Result<(), Fail> {
        // Before the policy: MQ reads a name up to a NUL and ignores trailing blanks, so a
        // name outside MQ's character set could match one glob and open another queue.
        if let Some((arg, q)) = queue
            && !crate::mq::is_valid_name(q)
        {
            return Err(Fail::Invalid(format!(
                "{arg} must be 1 to 48 characters of A-Z a-z 0-9 . / _ % ({} bytes given)",
                q.len()
            )));
        }
        let queue = queue.map(|(_, q)| q);
        if !who.may(cap) {
            let mut f = failure(format!(
                "the credential of {} does not grant the {cap} capability",
                who.name
            ));
            f.rule = Some(format!("credential capabilities of {}", who.name));
            return Err(Fail::Tool(Box::new(f), Outcome::Denied));
        }
        if let Some(q) = queue
            && let Err(d) = self.state.policy.check(cap, q)
        {
            let mut f = failure(format!("{cap} on queue {q} is denied by the policy: {d}"));
            f.rule = Some(d.rule);
            return Err(Fail::Tool(Box::new(f), Outcome::Denied));
        }
        Ok(())
    }

    /// Audits the call and shapes the result.
    fn finish<T>(
        &self,
        who: &Caller,
        tool: &str,
        queue: Option<&str>,
        result: Result<T, Fail>,
    ) -> Result<Json<T>, Fail> {
        self.audited(who, tool, queue, result).map(Json::new)
    }

    /// Audits the call.
    #[allow(clippy::unused_self)]
    fn audited<R>(&self, who: &Caller, tool: &str, queue: Option<&str>, result: Result<R, Fail>) -> Result<R, Fail> {
        match &result {
            Ok(_) => audit::record(who, tool, queue, Outcome::Ok, None),
            Err(Fail::Invalid(_)) => audit::record(who, tool, queue, Outcome::Invalid, None),
            Err(Fail::Tool(f, outcome)) => audit::record(who, tool, queue, *outcome, f.reason_code),
        }
        result
    }

    #[tool(
        description = "List queues with depth, max depth, open input/output counts and whether get/put are enabled.",
        input_schema = input::<ListQueuesArgs>(),
        annotations(
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn list_queues(
        &self,
        Args(args): Args<ListQueuesArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<QueueList>, Fail> {
        let who = Caller::of(&ctx);
        let result = unless_gone(&ctx, async {
            self.gate(&who, Capability::Inspect, None)?;
            let pattern = args.pattern.as_deref().unwrap_or("*");
            let q = &self.state.queues;
            let names: Vec<String> = q
                .catalog
                .names()
                .into_iter()
                .filter(|n| glob_matches(pattern, n) && self.state.policy.check(Capability::Inspect, n).is_ok())
                .collect();
            let mut list = QueueList {
                queues: Vec::new(),
                names_from: q.catalog.source().to_owned(),
                errors: Vec::new(),
            };
            if names.is_empty() {
                return Ok(list);
            }
            for (name, attrs) in q.attrs_many(names).await? {
                match attrs {
                    Ok(a) => list.queues.push(QueueInfo::new(&name, &a)),
                    Err(e) => list.errors.push(format!("{name}: {e}")),
                }
            }
            Ok(list)
        })
        .await;
        self.finish(&who, "list_queues", None, result)
    }

    #[tool(
        description = "One queue's attributes plus uncommitted count, oldest message age, backout threshold and backout queue.",
        input_schema = input::<QueueArgs>(),
        annotations(
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn queue_status(
        &self,
        Args(args): Args<QueueArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<QueueStatus>, Fail> {
        let who = Caller::of(&ctx);
        let queue = args.queue;
        let result = unless_gone(&ctx, async {
            self.gate(&who, Capability::Inspect, Some(("queue", &queue)))?;
            let a = self.state.queues.attrs(&queue).await?;
            let admin = self.state.queues.admin_status(&queue);
            Ok(QueueStatus {
                queue: QueueInfo::new(&queue, &a),
                uncommitted: admin.uncommitted,
                oldest_message_age_secs: admin.oldest_age_secs,
                backout_threshold: a.backout_threshold,
                backout_queue: a.backout_queue,
                max_message_length: a.max_msg_length,
            })
        })
        .await;
        self.finish(&who, "queue_status", Some(&queue), result)
    }

    #[tool(
        description = "Browse messages without removing them: MQMD summary (ids in hex, put time, priority, persistence, format, backout count) and the payload as text (UTF-8 without control characters other than tab, LF and CR) or base64, cut at max_payload_bytes (text between characters). Fewer than limit come back when the next payload would take the result past the server's limits.max_result_bytes (payload bytes as the result carries them).",
        input_schema = input::<BrowseArgs>(),
        annotations(
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn browse_messages(
        &self,
        Args(args): Args<BrowseArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<Messages>, Fail> {
        let who = Caller::of(&ctx);
        let queue = args.queue;
        let result = unless_gone(&ctx, async {
            let max = u32::try_from(self.state.policy.limits.max_messages).unwrap_or(100);
            let limit = in_range("limit", args.limit, DEFAULT_BROWSE_LIMIT.min(max), max, 1)?;
            let bytes = in_range(
                "max_payload_bytes",
                args.max_payload_bytes,
                DEFAULT_PAYLOAD_BYTES,
                MAX_PAYLOAD_BYTES,
                0,
            )?;
            let include = args.include_payload.unwrap_or(true);
            self.gate(&who, Capability::Browse, Some(("queue", &queue)))?;
            let payload_bytes = include.then_some(bytes as usize);
            let budget = self.state.policy.limits.max_result_bytes;
            let messages = self
                .state
                .queues
                .browse(&queue, limit as usize, payload_bytes, budget)
                .await?;
            Ok(Messages {
                queue: queue.clone(),
                messages,
            })
        })
        .await;
        self.finish(&who, "browse_messages", Some(&queue), result)
    }

    #[tool(
        description = "Take messages off a queue: gets under syncpoint, committed only after the whole result is built (the messages are gone afterwards). commit_outcome is unknown when MQCMIT failed with the connection, or was cut short by a client reconnection (2549): the messages are returned, and may be delivered again. Fewer than limit come back when the next message would take the payloads past the server's limits.max_result_bytes (it stays on the queue), or when a get fails after some were taken (note says why).",
        input_schema = input::<ReceiveArgs>(),
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn receive_messages(
        &self,
        Args(args): Args<ReceiveArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<Received>, Fail> {
        let who = Caller::of(&ctx);
        let queue = args.queue;
        let result = async {
            let max = u32::try_from(self.state.policy.limits.max_messages).unwrap_or(100);
            let limit = in_range("limit", args.limit, 1, max, 1)?;
            let wait = in_range("wait_ms", args.wait_ms, 0, MAX_WAIT_MS, 0)?;
            self.gate(&who, Capability::Consume, Some(("queue", &queue)))?;
            let budget = self.state.policy.limits.max_result_bytes;
            // The whole answer but its last two fields is built before the commit: they are
            // known only after it, and adding them copies nothing.
            let name = queue.clone();
            let build = move |messages| {
                Prepared::new(Messages { queue: name, messages }).map_err(|e| unwritable("receive_messages", &e))
            };
            let taken = self
                .state
                .queues
                .receive(&queue, limit as usize, wait, budget, &caller_gone(&ctx), build)
                .await
                .map_err(|e| result_cap(e, budget))?;
            let mut notes = Vec::new();
            if let Some(e) = &taken.stopped_by {
                notes.push(stopped_note(e, taken.messages));
            }
            let commit_outcome = match &taken.commit_unknown {
                None => CommitOutcome::Committed,
                Some(e) => {
                    notes.push(format!(
                        "MQCMIT failed with the connection or was cut short by it ({}): MQ may have \
                         committed these messages or backed them out, so they may be delivered again",
                        reason_text(e)
                    ));
                    CommitOutcome::Unknown
                }
            };
            let mut late = vec![("commit_outcome", serde_json::json!(commit_outcome))];
            if !notes.is_empty() {
                late.push(("note", notes.join("; ").into()));
            }
            Ok(Json::built(taken.answer.finish(late)))
        }
        .await;
        self.audited(&who, "receive_messages", Some(&queue), result)
    }

    #[tool(
        description = "Lock messages for up to lock_seconds: they are hidden from other consumers until complete_messages commits (removes) or aborts (returns) them; an expired lock returns them (backout count + 1). Fewer than limit come back when the next message would take the payloads past the server's limits.max_result_bytes (it stays on the queue), or when a get fails after some were locked (note says why).",
        input_schema = input::<LockArgs>(),
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn lock_messages(
        &self,
        Args(args): Args<LockArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<Locked>, Fail> {
        let who = Caller::of(&ctx);
        let queue = args.queue;
        let result = async {
            let limits = &self.state.policy.limits;
            let max = u32::try_from(limits.max_messages).unwrap_or(100);
            let limit = in_range("limit", args.limit, 1, max, 1)?;
            let secs = in_range(
                "lock_seconds",
                args.lock_seconds,
                DEFAULT_LOCK_SECONDS.min(limits.max_lock_seconds),
                limits.max_lock_seconds,
                1,
            )?;
            self.gate(&who, Capability::Consume, Some(("queue", &queue)))?;
            let budget = limits.max_result_bytes;
            let name = queue.clone();
            let build = move |taken: Locking| {
                let note = taken.stopped_by.as_ref().map(|e| stopped_note(e, taken.messages.len()));
                let locked = Locked {
                    lock_id: taken.held.as_ref().map(|h| h.0.clone()),
                    expires_at: taken.held.map(|h| super::locks::rfc3339(h.1)),
                    queue: name,
                    messages: taken.messages,
                    note,
                };
                output::build(locked).map_err(|e| unwritable("lock_messages", &e))
            };
            let life = Lifetime {
                ttl: Duration::from_secs(secs.into()),
                caller: caller_gone(&ctx),
            };
            let built = self
                .state
                .queues
                .lock(&who.name, &queue, limit as usize, budget, life, build)
                .await
                .map_err(|e| match e {
                    LockError::Mq(e) => result_cap(e, budget),
                    other => lock_failure(other),
                })?;
            Ok(Json::built(built))
        }
        .await;
        self.audited(&who, "lock_messages", Some(&queue), result)
    }

    #[tool(
        description = "Finish a lock from lock_messages: commit removes its messages for good, abort puts them back (backout count + 1).",
        input_schema = input::<CompleteArgs>(),
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn complete_messages(
        &self,
        Args(args): Args<CompleteArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<Completed>, Fail> {
        let who = Caller::of(&ctx);
        let mut queue = None;
        let result = async {
            self.gate(&who, Capability::Consume, None)?;
            let action = match args.action {
                CompleteAction::Commit => Action::Commit,
                CompleteAction::Abort => Action::Abort,
            };
            let (q, messages) = self
                .state
                .queues
                .locks
                .complete(&who.name, &args.lock_id, action)
                .await
                .map_err(lock_failure)?;
            queue = Some(q.clone());
            Ok(Completed {
                lock_id: args.lock_id.clone(),
                action: args.action,
                queue: q,
                messages,
            })
        }
        .await;
        self.finish(&who, "complete_messages", queue.as_deref(), result)
    }

    #[tool(
        description = "Put one message on a queue (payload as text or base64; optional format, correlation id, reply-to queue, priority, persistence).",
        input_schema = input::<PutArgs>(),
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn put_message(&self, Args(args): Args<PutArgs>, ctx: RequestContext<RoleServer>) -> Result<Json<Put>, Fail> {
        let who = Caller::of(&ctx);
        let queue = args.queue.clone();
        let result = async {
            let encoding = args.encoding.unwrap_or_default();
            let data = match encoding {
                Encoding::Text => args.payload.into_bytes(),
                Encoding::Base64 => {
                    use base64::Engine as _;
                    match base64::engine::general_purpose::STANDARD.decode(args.payload.as_bytes()) {
                        Ok(d) => d,
                        Err(e) => return invalid(format!("payload is not valid base64: {e}")),
                    }
                }
            };
            let fields = PutFields {
                format: args
                    .format
                    .or_else(|| (encoding == Encoding::Text).then(|| "MQSTR".to_owned())),
                correl_id_hex: args.correl_id,
                reply_to: args.reply_to,
                priority: args.priority,
                persistent: args.persistent,
            };
            let message = match put_fields::message(&queue, &fields) {
                Ok(m) => m,
                Err(e) => return invalid(e),
            };
            self.gate(&who, Capability::Produce, Some(("queue", &queue)))?;
            // A reply-to queue is where responders will put: the caller must be allowed to
            // produce there too.
            if let Some(reply_to) = fields.reply_to.as_deref() {
                self.gate(&who, Capability::Produce, Some(("reply_to", reply_to)))?;
            }
            let max = self.state.policy.limits.max_put_bytes;
            if data.len() > max {
                let mut f = failure(format!(
                    "the payload is {} bytes; this server accepts at most {max} (limits.max_put_bytes)",
                    data.len()
                ));
                f.rule = Some("limits.max_put_bytes".into());
                return Err(Fail::Tool(Box::new(f), Outcome::Denied));
            }
            let bytes = data.len();
            self.state.queues.put(message, data).await?;
            Ok(Put {
                queue: queue.clone(),
                bytes,
            })
        }
        .await;
        self.finish(&who, "put_message", Some(&queue), result)
    }

    #[tool(
        description = "Explain an MQ reason code (number like 2085 or name like MQRC_UNKNOWN_OBJECT_NAME): name, meaning, class and advice.",
        input_schema = input::<ReasonArgs>(),
        annotations(
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn explain_reason_code(
        &self,
        Args(args): Args<ReasonArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<Explained>, Fail> {
        let who = Caller::of(&ctx);
        let result = (|| {
            self.gate(&who, Capability::Inspect, None)?;
            let reason = match args.code {
                ReasonArg::Code(c) => Reason(c),
                ReasonArg::Name(n) => match parse_reason(&n) {
                    Ok(r) => r,
                    Err(e) => return invalid(e.to_string()),
                },
            };
            let Some(info) = reason.info() else {
                return Err(Fail::Tool(Box::new(failure(reason.explain())), Outcome::Failed));
            };
            Ok(Explained {
                code: info.code,
                name: info.name.to_owned(),
                class: info.class.to_string(),
                meaning: info.meaning.to_owned(),
                advice: info.advice.to_owned(),
            })
        })();
        self.finish(&who, "explain_reason_code", None, result)
    }

    #[tool(
        description = "Capacity plan for a fleet model (TOML text or a JSON object, as mqplan reads it): which queue manager limit (MAXHANDS 2017, channel instances 2537, connections 2025, MAXUMSGS 2024) breaks first, at what scale, and what to change. Makes no MQ call.",
        input_schema = input::<PlanArgs>(),
        output_schema = plan_output(),
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn plan_capacity(
        &self,
        Args(args): Args<PlanArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<serde_json::Value>, Fail> {
        let who = Caller::of(&ctx);
        let result = (|| {
            self.gate(&who, Capability::Plan, None)?;
            let headroom = args.headroom_pct.unwrap_or(crate::plan::DEFAULT_HEADROOM_PCT);
            if !(0.0..100.0).contains(&headroom) {
                return invalid(format!("headroom_pct must be at least 0 and below 100, not {headroom}"));
            }
            let report = match &args.model {
                ModelArg::Toml(text) => crate::plan::check_text(text, "model", headroom)?,
                ModelArg::Object(map) => {
                    crate::plan::check_value(&serde_json::Value::Object(map.clone()), "model", headroom)?
                }
            };
            serde_json::to_value(&report).map_err(|e| {
                Fail::from(Error::Options {
                    source_name: "plan_capacity".into(),
                    message: format!("the report could not be written as JSON: {e}"),
                })
            })
        })();
        self.finish(&who, "plan_capacity", None, result)
    }

    #[tool(
        description = "The connection pool: connections, handles per connection against the budget and MAXHANDS, reconnects, locks held.",
        input_schema = input::<PoolStatusArgs>(),
        annotations(
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn pool_status(
        &self,
        Args(PoolStatusArgs {}): Args<PoolStatusArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<PoolStatus>, Fail> {
        let who = Caller::of(&ctx);
        let result = self
            .gate(&who, Capability::Inspect, None)
            .map(|()| self.state.queues.pool_status());
        self.finish(&who, "pool_status", None, result)
    }
}

/// An MQ failure; 2080 here means the first message was longer than a result under
/// `limits.max_result_bytes` (`budget`) can hold, a refusal by that limit: the message
/// stays on the queue, and MQ's own advice (a bigger buffer) is not the caller's to follow.
fn result_cap(e: Error, budget: usize) -> Fail {
    if e.reason() != Some(Reason::TRUNCATED_MSG_FAILED) {
        return Fail::from(e);
    }
    match Fail::from(e) {
        Fail::Tool(mut f, _) => {
            f.rule = Some("limits.max_result_bytes".into());
            f.meaning = Some(format!(
                "the next message's payload is longer than {} bytes, the most a result can carry under \
                 limits.max_result_bytes ({budget}); it was not taken and stays on the queue, its backout \
                 count unchanged",
                output::fits(budget)
            ));
            f.advice = Some(
                "this server cannot return that message; consume it with another MQ application, or have \
                 the server's operator raise limits.max_result_bytes in its policy file"
                    .into(),
            );
            Fail::Tool(f, Outcome::Denied)
        }
        other => other,
    }
}

/// The error for an answer serde_json could not write: nothing is committed.
fn unwritable(tool: &str, e: &serde_json::Error) -> Error {
    Error::Options {
        source_name: tool.into(),
        message: format!("the result could not be written as JSON: {e}"),
    }
}

/// An error's reason code and name, or its text when it has none.
fn reason_text(e: &Error) -> String {
    e.reason().map_or_else(|| e.to_string(), |r| r.to_string())
}

/// Why a batch of `taken` messages stopped short: the get after them failed.
fn stopped_note(e: &Error, taken: usize) -> String {
    format!(
        "the batch stopped after {taken} messages: the next MQGET failed ({}) and took nothing",
        reason_text(e)
    )
}

fn lock_failure(e: LockError) -> Fail {
    let text = e.to_string();
    match e {
        LockError::Mq(e) => Fail::from(e),
        // The reason code and its advice, under a text that says the outcome is unknown.
        LockError::CommitUnknown(e) => match Fail::from(e) {
            Fail::Tool(mut f, outcome) => {
                f.error = text;
                Fail::Tool(f, outcome)
            }
            other => other,
        },
        LockError::Full(limit) => {
            let mut f = failure(text);
            f.rule = Some(limit.rule().to_owned());
            Fail::Tool(Box::new(f), Outcome::Denied)
        }
        LockError::Unknown | LockError::Expired => Fail::Tool(Box::new(failure(text)), Outcome::Failed),
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("mqpilot", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "IBM MQ queues as tools. Tools the server's policy does not allow are not listed; \
                 a refused queue names the policy rule. Locks expire and return their messages.",
            )
    }
}
