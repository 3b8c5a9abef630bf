//! The shapes agents see: every tool's arguments and structured result, with their JSON
//! schemas (schemars). Results never carry secrets; payloads appear only in message tools.

use base64::Engine as _;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::output::{Structured, as_text, base64_cost, fits, text_cost, text_within};

use crate::mq::message::Message;
use crate::mq::session::QueueAttrs;

/// `list_queues` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListQueuesArgs {
    /// Queue name glob (`*` and `?`); default all queues the policy lets you inspect.
    pub pattern: Option<String>,
}

/// Arguments naming one queue.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueArgs {
    /// Queue name.
    pub queue: String,
}

/// `browse_messages` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BrowseArgs {
    /// Queue name.
    pub queue: String,
    /// Messages to return, 1..=100 (default 10).
    pub limit: Option<u32>,
    /// Payload bytes per message (default 4096, at most 1048576).
    pub max_payload_bytes: Option<u32>,
    /// Include payloads (default true).
    pub include_payload: Option<bool>,
}

/// `receive_messages` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiveArgs {
    /// Queue name.
    pub queue: String,
    /// Messages to take, 1..=100 (default 1).
    pub limit: Option<u32>,
    /// Wait for the first message, 0..=10000 ms (default 0).
    pub wait_ms: Option<u32>,
}

/// `lock_messages` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LockArgs {
    /// Queue name.
    pub queue: String,
    /// Messages to lock, 1..=100 (default 1).
    pub limit: Option<u32>,
    /// Seconds until the lock expires and its messages go back, 1..=300 (default 60).
    pub lock_seconds: Option<u32>,
}

/// What to do with a lock.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CompleteAction {
    /// Remove the messages for good.
    Commit,
    /// Put them back (backout count + 1).
    Abort,
}

/// `complete_messages` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteArgs {
    /// The id `lock_messages` returned.
    pub lock_id: String,
    /// `commit` or `abort`.
    pub action: CompleteAction,
}

/// Payload encoding.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// UTF-8 text.
    #[default]
    Text,
    /// Base64 bytes.
    Base64,
}

/// `put_message` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PutArgs {
    /// Queue name.
    pub queue: String,
    /// The payload, as text or base64.
    pub payload: String,
    /// `text` (default) or `base64`.
    pub encoding: Option<Encoding>,
    /// MQMD Format (default `MQSTR` for text, blank for base64).
    pub format: Option<String>,
    /// Correlation id, hex, at most 24 bytes.
    pub correl_id: Option<String>,
    /// Reply-to queue.
    pub reply_to: Option<String>,
    /// Priority 0..=9.
    pub priority: Option<i32>,
    /// Persistent (default: the queue's default).
    pub persistent: Option<bool>,
}

/// A reason code as a number or a name.
#[derive(Debug, JsonSchema)]
#[schemars(untagged)]
pub enum ReasonArg {
    /// 2085.
    Code(i32),
    /// `MQRC_UNKNOWN_OBJECT_NAME` or `UNKNOWN_OBJECT_NAME`.
    Name(String),
}

/// Reads `code` so that a wrong value is refused naming the argument and what it takes
/// (an untagged enum would only say that no variant matched).
impl<'de> Deserialize<'de> for ReasonArg {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Code;
        impl serde::de::Visitor<'_> for Code {
            type Value = ReasonArg;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "code to be a reason code number (an integer such as 2085) or name (such as \
                     MQRC_UNKNOWN_OBJECT_NAME)",
                )
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ReasonArg, E> {
                i32::try_from(v)
                    .map(ReasonArg::Code)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ReasonArg, E> {
                i32::try_from(v)
                    .map(ReasonArg::Code)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ReasonArg, E> {
                Ok(ReasonArg::Name(v.to_owned()))
            }
        }
        deserializer.deserialize_any(Code)
    }
}

/// `pool_status` arguments: none.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolStatusArgs {}

/// `explain_reason_code` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonArgs {
    /// The reason code: a number (2085) or a name (MQRC_UNKNOWN_OBJECT_NAME).
    pub code: ReasonArg,
}

/// A planner model: TOML text, or a JSON object with the TOML file's structure.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ModelArg {
    /// The model as TOML (the text of an `mqplan` model file).
    Toml(String),
    /// The model as a JSON object.
    Object(serde_json::Map<String, serde_json::Value>),
}

/// `plan_capacity` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanArgs {
    /// The fleet and queue manager model (see `models/` for examples).
    pub model: ModelArg,
    /// Headroom in percent below which a check is at-risk, 0 to below 100 (default 20).
    pub headroom_pct: Option<f64>,
}

/// The planner's report is an object whose schema is the planner's JSON contract
/// (`schema_version`, `queue_manager`, `apps`, `checks`, `recommendations`, `status`).
pub fn plan_output() -> std::sync::Arc<rmcp::model::JsonObject> {
    let schema = serde_json::json!({
        "type": "object",
        "description": "the capacity planner's JSON report, as `mqplan check --format json` writes it",
        "properties": {
            "schema_version": {"type": "integer"},
            "origin": {"type": "string"},
            "headroom_pct": {"type": "number"},
            "queue_manager": {"type": "object"},
            "apps": {"type": "array"},
            "checks": {"type": "array"},
            "recommendations": {"type": "array"},
            "total_open_handles": {"type": "integer"},
            "status": {"type": "string"}
        },
        "required": ["schema_version", "apps", "checks", "status"]
    });
    match schema {
        serde_json::Value::Object(map) => std::sync::Arc::new(map),
        _ => unreachable!("a JSON object literal"),
    }
}

/// A queue as `list_queues` shows it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct QueueInfo {
    /// Queue name.
    pub name: String,
    /// CURDEPTH.
    pub depth: i32,
    /// MAXDEPTH.
    pub max_depth: i32,
    /// IPPROCS: handles open for input.
    pub open_input: i32,
    /// OPPROCS: handles open for output.
    pub open_output: i32,
    /// GET(ENABLED).
    pub get_enabled: bool,
    /// PUT(ENABLED).
    pub put_enabled: bool,
}

impl QueueInfo {
    /// From MQINQ attributes.
    #[must_use]
    pub fn new(name: &str, a: &QueueAttrs) -> Self {
        Self {
            name: name.to_owned(),
            depth: a.depth,
            max_depth: a.max_depth,
            open_input: a.open_input,
            open_output: a.open_output,
            get_enabled: a.get_enabled,
            put_enabled: a.put_enabled,
        }
    }
}

/// `list_queues` result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct QueueList {
    /// The queues, by name.
    pub queues: Vec<QueueInfo>,
    /// Where the names came from: `queue manager` or `policy`.
    pub names_from: String,
    /// Queues that matched but could not be inquired, with the reason.
    pub errors: Vec<String>,
}

/// `queue_status` result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct QueueStatus {
    /// The attributes `list_queues` shows.
    #[serde(flatten)]
    pub queue: QueueInfo,
    /// UNCOM: messages in open units of work (null when the queue manager cannot say).
    pub uncommitted: Option<u32>,
    /// MSGAGE: seconds the oldest message has waited (null when unknown).
    pub oldest_message_age_secs: Option<u64>,
    /// BOTHRESH (0 = none).
    pub backout_threshold: i32,
    /// BOQNAME (empty = none).
    pub backout_queue: String,
    /// MAXMSGL.
    pub max_message_length: i32,
}

/// One message as the message tools return it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct MessageOut {
    /// MsgId, hex.
    pub msg_id: String,
    /// CorrelId, hex.
    pub correl_id: String,
    /// Put time, ISO 8601 UTC.
    pub put_time: String,
    /// Priority 0..=9.
    pub priority: i32,
    /// Persistent.
    pub persistent: bool,
    /// MQMD Format.
    pub format: String,
    /// BackoutCount.
    pub backout_count: i32,
    /// ReplyToQ (empty = none).
    pub reply_to: String,
    /// The payload (absent when not asked for).
    pub payload: Option<String>,
    /// `text` (valid UTF-8 without control characters other than tab, line feed and
    /// carriage return, and small enough as text) or `base64`.
    pub payload_encoding: Option<&'static str>,
    /// Payload bytes returned in `payload` (decoded, for base64).
    pub payload_bytes: usize,
    /// Whether the payload was cut: at `max_payload_bytes`, or to fit the result.
    pub truncated: bool,
}

impl MessageOut {
    /// A message's MQMD summary, without its payload.
    #[must_use]
    pub fn summary(m: &Message) -> Self {
        Self {
            msg_id: m.msg_id_hex(),
            correl_id: m.correl_id_hex(),
            put_time: m.put_time(),
            priority: m.priority(),
            persistent: m.persistent(),
            format: m.format(),
            backout_count: m.backout_count(),
            reply_to: m.reply_to_queue(),
            payload: None,
            payload_encoding: None,
            payload_bytes: 0,
            truncated: false,
        }
    }

    /// `m` with its payload `data` (all of it, or its first bytes when `cut`): as text when
    /// it is text ([`as_text`]) and costs at most `left` bytes of the result, in base64
    /// otherwise. Also returns what it costs ([`text_cost`], [`base64_cost`]), which is more
    /// than `left` only when not even base64 fits.
    #[must_use]
    pub fn with_payload(m: &Message, data: &[u8], cut: bool, left: usize) -> (Self, usize) {
        match as_text(data, cut).map(|text| (text, text_cost(text))) {
            Some((text, cost)) if cost <= left => (Self::text(m, text, cut), cost),
            _ => (Self::base64(m, data, cut), base64_cost(data.len())),
        }
    }

    /// `m` with as much of its payload `data` (all of it or its first bytes) as fits in
    /// `left` bytes of the result: the whole characters of a text payload that fit, or the
    /// bytes whose base64 fits. Always marked truncated.
    #[must_use]
    pub fn cut_to(m: &Message, data: &[u8], left: usize) -> (Self, usize) {
        match as_text(data, true) {
            Some(text) => {
                let text = text_within(text, left);
                (Self::text(m, text, true), text_cost(text))
            }
            None => {
                let n = fits(left).min(data.len());
                (Self::base64(m, &data[..n], true), base64_cost(n))
            }
        }
    }

    fn text(m: &Message, text: &str, truncated: bool) -> Self {
        Self {
            payload: Some(text.to_owned()),
            payload_encoding: Some("text"),
            payload_bytes: text.len(),
            truncated,
            ..Self::summary(m)
        }
    }

    fn base64(m: &Message, data: &[u8], truncated: bool) -> Self {
        Self {
            payload: Some(base64::engine::general_purpose::STANDARD.encode(data)),
            payload_encoding: Some("base64"),
            payload_bytes: data.len(),
            truncated,
            ..Self::summary(m)
        }
    }
}

impl MessageOut {
    /// The message as its JSON object, its strings moved in: what `serde_json::to_value`
    /// gives, without copying every string of every message.
    fn into_value(self) -> Value {
        let text = |s: Option<String>| s.map_or(Value::Null, Value::String);
        let mut m = Map::new();
        m.insert("msg_id".into(), Value::String(self.msg_id));
        m.insert("correl_id".into(), Value::String(self.correl_id));
        m.insert("put_time".into(), Value::String(self.put_time));
        m.insert("priority".into(), self.priority.into());
        m.insert("persistent".into(), self.persistent.into());
        m.insert("format".into(), Value::String(self.format));
        m.insert("backout_count".into(), self.backout_count.into());
        m.insert("reply_to".into(), Value::String(self.reply_to));
        m.insert("payload".into(), text(self.payload));
        m.insert(
            "payload_encoding".into(),
            text(self.payload_encoding.map(str::to_owned)),
        );
        m.insert("payload_bytes".into(), self.payload_bytes.into());
        m.insert("truncated".into(), self.truncated.into());
        Value::Object(m)
    }
}

fn message_values(messages: Vec<MessageOut>) -> Value {
    Value::Array(messages.into_iter().map(MessageOut::into_value).collect())
}

/// `browse_messages` and `receive_messages` result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Messages {
    /// The queue.
    pub queue: String,
    /// The messages, in delivery order.
    pub messages: Vec<MessageOut>,
}

/// Whether MQ is known to have committed a receive's gets.
#[derive(Debug, Clone, Copy, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CommitOutcome {
    /// MQCMIT succeeded (or nothing was taken): the messages are gone from the queue.
    Committed,
    /// MQCMIT failed with the connection: MQ may have committed the gets or backed them
    /// out, so the messages may be delivered again.
    Unknown,
}

/// `receive_messages` result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Received {
    /// The queue.
    pub queue: String,
    /// The messages, in delivery order.
    pub messages: Vec<MessageOut>,
    /// `committed`, or `unknown` when MQCMIT failed with the connection.
    pub commit_outcome: CommitOutcome,
    /// Why the commit's outcome is unknown, or why fewer messages than asked for came when
    /// a get failed after some were taken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `lock_messages` result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Locked {
    /// Pass to `complete_messages`; null when no message was available (nothing is held).
    pub lock_id: Option<String>,
    /// When the lock expires and the messages go back (RFC 3339 UTC).
    pub expires_at: Option<String>,
    /// The queue.
    pub queue: String,
    /// The locked messages.
    pub messages: Vec<MessageOut>,
    /// Why fewer messages than asked for came, when a get failed after some were locked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Structured for Messages {
    fn into_value(self) -> Result<Value, serde_json::Error> {
        let mut m = Map::new();
        m.insert("queue".into(), Value::String(self.queue));
        m.insert("messages".into(), message_values(self.messages));
        Ok(Value::Object(m))
    }
}

impl Structured for Received {
    fn into_value(self) -> Result<Value, serde_json::Error> {
        let mut m = Map::new();
        m.insert("queue".into(), Value::String(self.queue));
        m.insert("messages".into(), message_values(self.messages));
        m.insert("commit_outcome".into(), serde_json::to_value(self.commit_outcome)?);
        if let Some(note) = self.note {
            m.insert("note".into(), Value::String(note));
        }
        Ok(Value::Object(m))
    }
}

impl Structured for Locked {
    fn into_value(self) -> Result<Value, serde_json::Error> {
        let text = |s: Option<String>| s.map_or(Value::Null, Value::String);
        let mut m = Map::new();
        m.insert("lock_id".into(), text(self.lock_id));
        m.insert("expires_at".into(), text(self.expires_at));
        m.insert("queue".into(), Value::String(self.queue));
        m.insert("messages".into(), message_values(self.messages));
        if let Some(note) = self.note {
            m.insert("note".into(), Value::String(note));
        }
        Ok(Value::Object(m))
    }
}

impl Structured for QueueList {}
impl Structured for QueueStatus {}
impl Structured for Completed {}
impl Structured for Put {}
impl Structured for Explained {}
impl Structured for PoolStatus {}
impl Structured for Value {}

/// `complete_messages` result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Completed {
    /// The lock.
    pub lock_id: String,
    /// What was done.
    pub action: CompleteAction,
    /// The queue.
    pub queue: String,
    /// Messages committed or put back.
    pub messages: usize,
}

/// `put_message` result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Put {
    /// The queue.
    pub queue: String,
    /// Payload bytes put.
    pub bytes: usize,
}

/// `explain_reason_code` result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Explained {
    /// The number.
    pub code: i32,
    /// IBM's name.
    pub name: String,
    /// `normal`, `retry`, `reconnect` or `config`.
    pub class: String,
    /// What happened.
    pub meaning: String,
    /// What to do.
    pub advice: String,
}

/// One pooled connection in `pool_status`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ConnectionOut {
    /// Pool slot, 0 to P-1: a connection that replaces a broken one takes its slot.
    pub id: usize,
    /// Handles open now.
    pub handles: usize,
    /// Most handles open at once.
    pub peak_handles: usize,
    /// The handle budget: min(configured, MAXHANDS - reserve), lowered after a 2017.
    pub budget: usize,
    /// MAXHANDS as the queue manager reported it; `null` when it refused the MQINQ that reads
    /// it (no `+inq` on its object).
    pub max_handles: Option<usize>,
    /// IBM's default MAXHANDS (256), assumed when the MQINQ was refused; else `null`.
    pub max_handles_assumed: Option<usize>,
    /// A 2017 (another application's handles on the connection) lowered `budget`.
    pub budget_shrunk: bool,
}

/// `pool_status` result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PoolStatus {
    /// Connections open now.
    pub connections: Vec<ConnectionOut>,
    /// Connections the pool may open.
    pub max_connections: usize,
    /// Locks holding a connection now.
    pub locks_held: usize,
    /// Successful connects.
    pub connects: u64,
    /// Connections replaced after a connection-level reason code.
    pub reconnects: u64,
    /// Times a 2017 shrank a budget.
    pub budget_shrinks: u64,
    /// Checkouts that waited for a free connection.
    pub waits_for_connection: u64,
}

/// A tool failure as agents see it (`isError: true`): the fields that apply, no nulls.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Failure {
    /// What went wrong.
    pub error: String,
    /// The MQ reason code, when MQ refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<i32>,
    /// Its name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_name: Option<String>,
    /// What it means.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meaning: Option<String>,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advice: Option<String>,
    /// The policy rule that refused, when the policy did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(payload: Option<&str>) -> MessageOut {
        MessageOut {
            msg_id: "414d51".into(),
            correl_id: "00".into(),
            put_time: "2026-11-26T10:44:30.12Z".into(),
            priority: 4,
            persistent: true,
            format: "MQSTR".into(),
            backout_count: 2,
            reply_to: "REPLY.Q".into(),
            payload: payload.map(str::to_owned),
            payload_encoding: payload.map(|_| "text"),
            payload_bytes: payload.map_or(0, str::len),
            truncated: false,
        }
    }

    #[test]
    fn message_lists_move_into_the_value_serde_would_give() {
        let messages = vec![message(Some("a \"b\"")), message(None)];
        let list = Messages {
            queue: "Q1".into(),
            messages: messages.clone(),
        };
        let expected = serde_json::to_value(&list).expect("json");
        assert_eq!(list.into_value().expect("value"), expected);
        for (commit_outcome, note) in [
            (CommitOutcome::Committed, None),
            (CommitOutcome::Unknown, Some("may be delivered again".to_owned())),
        ] {
            let received = Received {
                queue: "Q1".into(),
                messages: messages.clone(),
                commit_outcome,
                note,
            };
            let expected = serde_json::to_value(&received).expect("json");
            assert_eq!(received.into_value().expect("value"), expected);
        }
        for lock_id in [Some("ab12".to_owned()), None] {
            let locked = Locked {
                lock_id: lock_id.clone(),
                expires_at: lock_id.as_ref().map(|_| "2026-11-26T10:45:30Z".to_owned()),
                queue: "Q1".into(),
                messages: messages.clone(),
                note: lock_id.as_ref().map(|_| "MQGET failed".to_owned()),
            };
            let expected = serde_json::to_value(&locked).expect("json");
            assert_eq!(locked.into_value().expect("value"), expected);
        }
    }
}
