//! One queue to poll: its settings as the worker runs them, their defaults, and their checks.
//!
//! A [`QueueConfig`] is checked as `queue[i]` of the whole configuration, so every error
//! names the dotted field (`queue[1].sink.url`) the caller places in the file or on the
//! command line. The checks here are the queue's own, its sink's included; the ones across
//! queues (unique names, no loop of queue sinks) are the parent module's.

use ureq::http::{HeaderName, HeaderValue};

use super::{
    DEFAULT_BATCH, DEFAULT_BUFFER_BYTES, DEFAULT_MAX_BATCH_BYTES, DEFAULT_WAIT_MS, Invalid, MAX_BATCH,
    MAX_BUFFER_BYTES, MAX_WAIT_MS, MAX_WORKERS, check_queue_name, check_range, invalid,
};
use crate::Error;
use crate::worker::sink::{HttpBody, Per, SinkConfig};

/// How a queue's messages are received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Receive {
    /// Up to `batch` messages per unit of work (default).
    #[default]
    Batch,
    /// One message per unit of work; `batch` is 1.
    Single,
    /// Outside syncpoint: a message leaves the queue when received, so a failed delivery loses
    /// it. Opt-in; the worker warns at start.
    NoSyncpoint,
}

crate::toml_location::deserialize_one_of!(Receive {
    "batch" => Batch,
    "single" => Single,
    "no-syncpoint" => NoSyncpoint,
});

impl Receive {
    /// Whether messages are received under syncpoint, so a failure backs them out.
    #[must_use]
    pub const fn syncpoint(self) -> bool {
        !matches!(self, Self::NoSyncpoint)
    }

    /// The batch size used when none is configured: 1 for `Single`, else [`DEFAULT_BATCH`].
    #[must_use]
    pub const fn default_batch(self) -> usize {
        match self {
            Self::Single => 1,
            Self::Batch | Self::NoSyncpoint => DEFAULT_BATCH,
        }
    }
}

/// One queue to poll (`[[queue]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// Queue name: 1 to 48 characters of `A-Z a-z 0-9 . / _ %`.
    pub name: String,
    /// How messages are received. Default [`Receive::Batch`].
    pub receive: Receive,
    /// Most messages per batch, 1 to 10000; exactly 1 with [`Receive::Single`].
    /// Default [`DEFAULT_BATCH`].
    pub batch: usize,
    /// A batch stops growing once it holds this many bytes; at least 1.
    /// Default [`DEFAULT_MAX_BATCH_BYTES`].
    pub max_batch_bytes: usize,
    /// Wait for the first message of a batch, 0 to 60000 ms. Default [`DEFAULT_WAIT_MS`].
    pub wait_ms: u32,
    /// Pollers for this queue, 1 to 64. Default 1.
    pub workers: usize,
    /// Overrides the queue's BOTHRESH; at least 1. Default: BOTHRESH.
    pub backout_threshold: Option<u32>,
    /// Overrides the queue's BOQNAME; not the queue itself. Default: BOQNAME.
    pub backout_queue: Option<String>,
    /// Starting MQGET buffer, 1 byte to 100 MiB. Default [`DEFAULT_BUFFER_BYTES`].
    pub buffer_bytes: usize,
    /// Where messages go. Default [`SinkConfig::Stdout`].
    pub sink: SinkConfig,
}

impl QueueConfig {
    /// A queue with every default and a stdout sink.
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            receive: Receive::Batch,
            batch: DEFAULT_BATCH,
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
            wait_ms: DEFAULT_WAIT_MS,
            workers: 1,
            backout_threshold: None,
            backout_queue: None,
            buffer_bytes: DEFAULT_BUFFER_BYTES,
            sink: SinkConfig::Stdout {},
        }
    }
}

impl QueueConfig {
    /// Checks the queue as `queue[index]`.
    pub(super) fn check(&self, index: usize) -> Result<(), Invalid> {
        let field = |key: &str| format!("queue[{index}].{key}");
        check_queue_name(&field("name"), &self.name)?;
        check_range(&field("batch"), self.batch, 1, Some(MAX_BATCH))?;
        if self.receive == Receive::Single && self.batch != 1 {
            return Err(invalid(
                field("batch"),
                format!(
                    "is {}, but receive = \"single\" takes one message at a time: set 1 or leave it out",
                    self.batch
                ),
            ));
        }
        check_range(&field("max_batch_bytes"), self.max_batch_bytes, 1, None)?;
        check_range(&field("wait_ms"), self.wait_ms, 0, Some(MAX_WAIT_MS))?;
        check_range(&field("workers"), self.workers, 1, Some(MAX_WORKERS))?;
        if self.backout_threshold == Some(0) {
            return Err(invalid(
                field("backout_threshold"),
                "must be at least 1 (leave it out to use the queue's BOTHRESH)",
            ));
        }
        if let Some(backout) = &self.backout_queue {
            check_queue_name(&field("backout_queue"), backout)?;
            if *backout == self.name {
                return Err(invalid(field("backout_queue"), "is the queue itself"));
            }
        }
        check_range(&field("buffer_bytes"), self.buffer_bytes, 1, Some(MAX_BUFFER_BYTES))?;
        self.check_sink(index)
    }

    /// The sink's own rules, as `queue[index].sink`.
    fn check_sink(&self, index: usize) -> Result<(), Invalid> {
        let field = |key: &str| format!("queue[{index}].sink.{key}");
        match &self.sink {
            SinkConfig::Stdout {} => Ok(()),
            SinkConfig::Exec {
                command, timeout_ms, ..
            } => {
                if command.first().is_none_or(|program| program.trim().is_empty()) {
                    return Err(invalid(field("command"), "is empty: name the program to run"));
                }
                check_range(&field("timeout_ms"), *timeout_ms, 1, None)
            }
            SinkConfig::Http {
                url,
                url_env,
                url_file,
                body,
                per,
                headers,
                ca_file,
                timeout_ms,
            } => {
                if [url.is_some(), url_env.is_some(), url_file.is_some()]
                    .iter()
                    .filter(|&&set| set)
                    .count()
                    != 1
                {
                    return Err(invalid(field("url"), "set exactly one of url, url_env and url_file"));
                }
                // The URL itself is never echoed: it may hold a secret (a webhook token). One
                // from url_env or url_file is checked when the sink is built.
                let shown_url = match url.as_deref().map(crate::worker::sink::check_url) {
                    Some(Err(Error::Options { message, .. })) => return Err(invalid(field("url"), message)),
                    Some(shown) => shown.ok(),
                    None => None,
                };
                // Read now, so that a CA file that cannot be used is refused with its line.
                if let Some(path) = ca_file {
                    match crate::worker::sink::trusted_roots(path, shown_url.as_deref()) {
                        Ok(_) => {}
                        Err(Error::SettingFile { path, source, .. }) => {
                            return Err(invalid(
                                field("ca_file"),
                                format!("cannot read {}: {source}", path.display()),
                            ));
                        }
                        Err(Error::Options { message, .. }) => return Err(invalid(field("ca_file"), message)),
                        Err(other) => return Err(invalid(field("ca_file"), other.to_string())),
                    }
                }
                if *body == HttpBody::Raw && *per != Per::Message {
                    return Err(invalid(
                        field("body"),
                        "body = \"raw\" sends one message per request: set per = \"message\"",
                    ));
                }
                for (j, header) in headers.iter().enumerate() {
                    if header.name.trim().is_empty() {
                        return Err(invalid(field(&format!("headers[{j}].name")), "is empty"));
                    }
                    if HeaderName::from_bytes(header.name.as_bytes()).is_err() {
                        return Err(invalid(
                            field(&format!("headers[{j}].name")),
                            format!("{:?} is not a valid HTTP header name", header.name),
                        ));
                    }
                    // The value is never echoed: it may be a secret.
                    if header
                        .value
                        .as_deref()
                        .is_some_and(|v| HeaderValue::from_str(v).is_err())
                    {
                        return Err(invalid(
                            field(&format!("headers[{j}].value")),
                            format!("of header {} is not valid in an HTTP header", header.name),
                        ));
                    }
                    let sources = [
                        header.value.is_some(),
                        header.value_env.is_some(),
                        header.value_file.is_some(),
                    ];
                    if sources.iter().filter(|&&set| set).count() != 1 {
                        return Err(invalid(
                            field(&format!("headers[{j}]")),
                            "set exactly one of value, value_env and value_file",
                        ));
                    }
                }
                check_range(&field("timeout_ms"), *timeout_ms, 1, None)
            }
            SinkConfig::Queue { queue } => {
                check_queue_name(&field("queue"), queue)?;
                if *queue == self.name {
                    return Err(invalid(
                        field("queue"),
                        "is the queue itself: messages would go round forever",
                    ));
                }
                if !self.receive.syncpoint() {
                    return Err(invalid(
                        format!("queue[{index}].receive"),
                        "a queue sink puts inside the unit of work: use receive = \"batch\" or \"single\"",
                    ));
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::worker::config::WorkerConfig;
    use crate::worker::config::tests::{assert_error_starts, error_of};

    #[test]
    fn batch_zero_is_out_of_range() {
        let text = "[[queue]]\nname = \"A\"\n\n[[queue]]\nname = \"B\"\nbatch = 0\n";
        assert_error_starts(text, "w.toml:6:1: queue[1].batch: is 0, must be 1 to 10000");
    }

    #[test]
    fn single_rejects_an_explicit_batch_and_defaults_to_one() {
        let text = "[[queue]]\nname = \"A\"\nreceive = \"single\"\nbatch = 5\n";
        assert_error_starts(text, "w.toml:4:1: queue[0].batch: is 5, but receive = \"single\"");
        let text = "[[queue]]\nname = \"A\"\nreceive = \"single\"\nbatch = 1\n";
        assert_eq!(
            WorkerConfig::from_toml(text, Path::new("w.toml")).unwrap().queues[0].batch,
            1
        );
    }

    #[test]
    fn a_bad_queue_name_is_rejected() {
        assert_error_starts(
            "[[queue]]\nname = \"ORDERS-IN\"\n",
            "w.toml:2:1: queue[0].name: queue name \"ORDERS-IN\" contains '-'",
        );
        let text = "[[queue]]\nname = \"A\"\nbackout_queue = \"A\"\n";
        assert_error_starts(text, "w.toml:3:1: queue[0].backout_queue: is the queue itself");
        let long = format!("[[queue]]\nname = \"{}\"\n", "Q".repeat(49));
        assert_error_starts(&long, "w.toml:2:1: queue[0].name: queue name \"QQQ");
        assert!(
            error_of(&long).ends_with("is 49 characters long (at most 48)"),
            "{}",
            error_of(&long)
        );
    }

    #[test]
    fn a_queue_sink_must_not_target_its_own_queue() {
        let text = "[[queue]]\nname = \"A\"\n[queue.sink]\ntype = \"queue\"\nqueue = \"A\"\n";
        assert_error_starts(text, "w.toml:5:1: queue[0].sink.queue: is the queue itself");
    }

    #[test]
    fn no_syncpoint_is_flagged_and_refuses_a_queue_sink() {
        let text = "[[queue]]\nname = \"A\"\nreceive = \"no-syncpoint\"\n[[queue]]\nname = \"B\"\n";
        let config = WorkerConfig::from_toml(text, Path::new("w.toml")).unwrap();
        assert_eq!(config.queues[0].receive, Receive::NoSyncpoint);
        assert!(!config.queues[0].receive.syncpoint());
        assert!(config.queues[1].receive.syncpoint());
        let text =
            "[[queue]]\nname = \"A\"\nreceive = \"no-syncpoint\"\n[queue.sink]\ntype = \"queue\"\nqueue = \"B\"\n";
        assert_error_starts(
            text,
            "w.toml:3:1: queue[0].receive: a queue sink puts inside the unit of work",
        );
    }

    #[test]
    fn a_header_that_http_refuses_is_a_config_error() {
        let sink = "[[queue]]\nname = \"A\"\n[queue.sink]\ntype = \"http\"\nurl = \"http://x/in\"\n";
        let text = format!("{sink}[[queue.sink.headers]]\nname = \"Bad Header\"\nvalue = \"x\"\n");
        assert_error_starts(
            &text,
            "w.toml:7:1: queue[0].sink.headers[0].name: \"Bad Header\" is not a valid HTTP header name",
        );
        let text = format!("{sink}[[queue.sink.headers]]\nname = \"X-Token\"\nvalue = \"SECRET\\n\"\n");
        let error = error_of(&text);
        assert!(
            error.starts_with("w.toml:8:1: queue[0].sink.headers[0].value: of header X-Token is not valid"),
            "{error}"
        );
        assert!(!error.contains("SECRET"), "{error}");
    }

    #[test]
    fn a_raw_http_body_needs_per_message() {
        let text = "[[queue]]\nname = \"A\"\n[queue.sink]\ntype = \"http\"\nurl = \"http://x/in\"\nbody = \"raw\"\n";
        assert_error_starts(
            text,
            "w.toml:6:1: queue[0].sink.body: body = \"raw\" sends one message per request",
        );
        let fixed = format!("{text}per = \"message\"\n");
        assert!(WorkerConfig::from_toml(&fixed, Path::new("w.toml")).is_ok());
        let text = "[[queue]]\nname = \"A\"\n[queue.sink]\ntype = \"http\"\nurl = \"ftp://x\"\n";
        assert_error_starts(
            text,
            "w.toml:5:1: queue[0].sink.url: must be an http:// or https:// URL with a host",
        );
    }

    #[test]
    fn a_url_error_never_shows_the_url_and_the_scheme_may_be_upper_case() {
        let text = "[[queue]]\nname = \"A\"\n[queue.sink]\ntype = \"http\"\nurl = \"gopher://x/h?token=SECRET1\"\n";
        let error = error_of(text);
        assert!(error.starts_with("w.toml:5:1: queue[0].sink.url: must be"), "{error}");
        assert!(!error.contains("SECRET1"), "{error}");
        let upper = "[[queue]]\nname = \"A\"\n[queue.sink]\ntype = \"http\"\nurl = \"HTTPS://x/h?token=S\"\n";
        assert!(WorkerConfig::from_toml(upper, Path::new("w.toml")).is_ok());
    }

    #[test]
    fn an_http_sinks_ca_file_is_read_with_the_config_and_needs_an_https_url() {
        let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/ca.pem");
        let sink = |url: &str, ca_file: &str| {
            format!("[[queue]]\nname = \"A\"\n[queue.sink]\ntype = \"http\"\nurl = \"{url}\"\nca_file = {ca_file:?}\n")
        };
        assert!(WorkerConfig::from_toml(&sink("https://x/in", ca), Path::new("w.toml")).is_ok());
        assert_error_starts(
            &sink("https://x/in", "/no/such/ca.pem"),
            "w.toml:6:1: queue[0].sink.ca_file: cannot read /no/such/ca.pem: ",
        );
        assert_error_starts(
            &sink("http://x/in", ca),
            "w.toml:6:1: queue[0].sink.ca_file: is for https:// URLs, but the url is http://",
        );
    }

    #[test]
    fn an_empty_exec_command_is_rejected() {
        let text = "[[queue]]\nname = \"A\"\n[queue.sink]\ntype = \"exec\"\ncommand = []\n";
        assert_error_starts(text, "w.toml:5:1: queue[0].sink.command: is empty");
    }
}
