//! Where received messages go: the sink contract and the JSON shape every sink shares.
//!
//! A sink takes a whole batch or fails it as a whole: `Ok` means every message in the batch is
//! safely delivered and the worker may commit; `Err` means the worker backs the batch out, so
//! each message returns to its queue with its backout count raised. A sink must never report
//! success for a message it did not deliver; an error it marks permanent (stdout closed) stops
//! the run instead of being retried. The `queue` sink is not here: it forwards inside
//! the worker's own unit of work, on the same connection (see `round.rs`).

mod exec;
mod http;
mod output;
mod stdout;

use std::future::Future;
use std::pin::Pin;

use base64::Engine as _;
use serde::Deserialize;

pub use exec::{ExecSink, kill_running_commands};
pub use http::{HttpSink, resolve_headers, resolve_url};
pub(crate) use http::{check_url, trusted_roots};
pub use stdout::StdoutSink;

use crate::mq::message::Message;

/// A failed delivery: the batch will be backed out.
#[derive(Debug, thiserror::Error)]
#[error("sink {sink} failed: {message}")]
pub struct SinkError {
    /// The sink's name (`stdout`, `exec`, `http`).
    pub sink: &'static str,
    /// What went wrong, e.g. `POST https://x/y returned 503`.
    pub message: String,
    /// The sink can take nothing more in this run (standard output was closed): the batch is
    /// backed out and the run stops, where a failure that may pass (an endpoint down, a
    /// command failing) is retried and, after BOTHRESH attempts, moves the message aside.
    pub permanent: bool,
}

impl SinkError {
    /// A failure that may pass: the batch is retried after a pause.
    #[must_use]
    pub fn retry(sink: &'static str, message: String) -> Self {
        Self {
            sink,
            message,
            permanent: false,
        }
    }
}

/// The future a sink returns.
pub type Delivery<'a> = Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send + 'a>>;

/// Something that takes batches of messages.
pub trait Sink: Send + Sync {
    /// Delivers `batch` (never empty). Succeed only when every message is delivered.
    fn deliver<'a>(&'a self, batch: &'a [Message]) -> Delivery<'a>;

    /// Short name for logs and metrics.
    fn name(&self) -> &'static str;
}

/// Whether a command or request is made once per batch or once per message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Per {
    /// One call for the whole batch (default).
    #[default]
    Batch,
    /// One call per message, in order; the first failure fails the batch.
    Message,
}

/// How an HTTP sink sends messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpBody {
    /// `application/json`: one message object, or an array of them per batch (default).
    #[default]
    Json,
    /// The payload bytes as they are (`application/octet-stream`), MQMD fields as `X-MQ-*`
    /// headers; only with `per = "message"`.
    Raw,
}

crate::toml_location::deserialize_one_of!(Per {
    "batch" => Batch,
    "message" => Message,
});

crate::toml_location::deserialize_one_of!(HttpBody {
    "json" => Json,
    "raw" => Raw,
});

/// An HTTP header whose value is given, or read from an environment variable or a file (for
/// secrets such as `Authorization`; never put a secret in the config text itself). `Debug`
/// shows where the value comes from, never the value.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderConfig {
    /// Header name.
    pub name: String,
    /// Literal value.
    pub value: Option<String>,
    /// Environment variable holding the value.
    pub value_env: Option<String>,
    /// File holding the value (trailing newline trimmed).
    pub value_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for HeaderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeaderConfig")
            .field("name", &self.name)
            .field("value", &self.value.as_ref().map(|_| "***"))
            .field("value_env", &self.value_env)
            .field("value_file", &self.value_file)
            .finish()
    }
}

/// A sink as configured (`[queue.sink]` in the worker config).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SinkConfig {
    /// JSON lines on standard output.
    Stdout {},
    /// Run a command (no shell): payload on stdin, MQMD fields as environment variables.
    Exec {
        /// Program and arguments, e.g. `["./handle.sh", "--fast"]`.
        command: Vec<String>,
        /// Once per batch (stdin: JSON lines) or per message (stdin: the payload). Default batch.
        #[serde(default)]
        per: Per,
        /// Kill the command and fail the batch after this long. Default 30000.
        #[serde(default = "default_timeout_ms")]
        timeout_ms: u64,
    },
    /// POST to a URL; any 2xx is success.
    Http {
        /// The URL (http or https). Exactly one of `url`, `url_env` and `url_file`: a webhook
        /// URL that carries a token belongs in the environment or a file, not the config text.
        url: Option<String>,
        /// Environment variable holding the URL.
        url_env: Option<String>,
        /// File holding the URL (trailing newline trimmed).
        url_file: Option<std::path::PathBuf>,
        /// JSON (default) or raw payload.
        #[serde(default)]
        body: HttpBody,
        /// Once per batch (JSON array) or per message. Default batch.
        #[serde(default)]
        per: Per,
        /// Extra headers.
        #[serde(default)]
        headers: Vec<HeaderConfig>,
        /// PEM file whose certificates are the CAs an https URL's server is checked against,
        /// instead of Mozilla's (a private or corporate CA); https only. Default: Mozilla's.
        ca_file: Option<std::path::PathBuf>,
        /// Request timeout. Default 30000.
        #[serde(default = "default_timeout_ms")]
        timeout_ms: u64,
    },
    /// Put to another queue on the same connection inside the same unit of work.
    Queue {
        /// Target queue.
        queue: String,
    },
}

const fn default_timeout_ms() -> u64 {
    30_000
}

/// The JSON object for one message, shared by every sink:
/// `{queue, msg_id, correl_id, put_time, priority, persistent, format, backout_count,
/// encoding, payload}` with ids in hex and the payload as UTF-8 text when it is valid UTF-8,
/// else base64 (`encoding` says which).
#[must_use]
pub fn message_json(m: &Message) -> serde_json::Value {
    let (encoding, payload) = match std::str::from_utf8(&m.data) {
        Ok(text) => ("utf8", text.to_owned()),
        Err(_) => ("base64", base64::engine::general_purpose::STANDARD.encode(&m.data)),
    };
    serde_json::json!({
        "queue": &*m.queue,
        "msg_id": m.msg_id_hex(),
        "correl_id": m.correl_id_hex(),
        "put_time": m.put_time(),
        "priority": m.priority(),
        "persistent": m.persistent(),
        "format": m.format(),
        "backout_count": m.backout_count(),
        "encoding": encoding,
        "payload": payload,
    })
}

/// MQMD fields as environment variables for an `exec` sink (per message), and as `X-MQ-*`
/// headers for a raw `http` sink: `(suffix, value)` pairs such as `("MSG_ID", "414d51...")`.
#[must_use]
pub fn message_fields(m: &Message) -> Vec<(&'static str, String)> {
    vec![
        ("QUEUE", m.queue.to_string()),
        ("MSG_ID", m.msg_id_hex()),
        ("CORREL_ID", m.correl_id_hex()),
        ("PUT_TIME", m.put_time()),
        ("PRIORITY", m.priority().to_string()),
        ("PERSISTENT", m.persistent().to_string()),
        ("FORMAT", m.format()),
        ("BACKOUT_COUNT", m.backout_count().to_string()),
        ("REPLY_TO_Q", m.reply_to_queue()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(data: &[u8]) -> Message {
        Message::new("Q", libmqm_default::MQMD_DEFAULT, data.to_vec())
    }

    #[test]
    fn text_payloads_stay_text_and_binary_becomes_base64() {
        let j = message_json(&message(b"hello"));
        assert_eq!(j["encoding"], "utf8");
        assert_eq!(j["payload"], "hello");
        let j = message_json(&message(&[0xff, 0x00, 0x10]));
        assert_eq!(j["encoding"], "base64");
        assert_eq!(j["payload"], "/wAQ");
        assert_eq!(j["msg_id"].as_str().unwrap().len(), 48);
    }

    #[test]
    fn sink_config_parses_every_kind() {
        let c: SinkConfig = toml::from_str("type = \"exec\"\ncommand = [\"cat\"]\nper = \"message\"").unwrap();
        assert!(matches!(
            c,
            SinkConfig::Exec {
                per: Per::Message,
                timeout_ms: 30_000,
                ..
            }
        ));
        let c: SinkConfig = toml::from_str("type = \"queue\"\nqueue = \"OUT\"").unwrap();
        assert_eq!(c, SinkConfig::Queue { queue: "OUT".into() });
        assert!(toml::from_str::<SinkConfig>("type = \"stdout\"\nextra = 1").is_err());
        let h: HeaderConfig = toml::from_str("name = \"Authorization\"\nvalue = \"Bearer s3cret\"").unwrap();
        assert!(!format!("{h:?}").contains("s3cret"));
    }
}
