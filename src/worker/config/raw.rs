//! The worker file as written: serde types that mirror the TOML, and the defaults they fill.
//!
//! Every table is `deny_unknown_fields`, so a misspelt key is an error naming its line, and
//! `[connection]` has no `password` key at all: the file names a password file, never a
//! password. Nothing is checked here beyond what serde and the `server` syntax check; the
//! result is a [`WorkerConfig`] with every default filled, which the parent module validates.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::{
    ConnectionSettings, DEFAULT_RECONNECT_INITIAL_MS, DEFAULT_RECONNECT_MAX_MS, Invalid, PoolSettings, QueueConfig,
    Receive, WorkerConfig, invalid,
};
use crate::Error;
use crate::mq::options::{CcdtUrl, Reconnect, Tls, parse_mqserver};
use crate::toml_location;
use crate::worker::sink::SinkConfig;

/// The whole file: `[connection]`, `[pool]`, `[[queue]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    connection: RawConnection,
    #[serde(default)]
    pool: RawPool,
    #[serde(default, rename = "queue")]
    queues: Vec<RawQueue>,
}

/// `[connection]`: every setting optional; flags and the environment fill the rest.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConnection {
    queue_manager: Option<String>,
    server: Option<String>,
    ccdt_url: Option<String>,
    application_name: Option<String>,
    user: Option<String>,
    password_file: Option<PathBuf>,
    #[serde(default)]
    reconnect: RawReconnect,
    tls: Option<RawTls>,
    sharecnv: Option<u32>,
}

/// `reconnect`, as the file spells it.
#[derive(Debug, Clone, Copy, Default)]
enum RawReconnect {
    #[default]
    Default,
    Disabled,
    QueueManager,
    Any,
}

crate::toml_location::deserialize_one_of!(RawReconnect {
    "default" => Default,
    "disabled" => Disabled,
    "queue-manager" => QueueManager,
    "any" => Any,
});

/// `[connection.tls]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cipher_spec: String,
    key_repository: Option<PathBuf>,
    cert_label: Option<String>,
}

/// `[pool]`, each key defaulting to [`PoolSettings::default`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawPool {
    connections: usize,
    max_handles: usize,
    handle_reserve: usize,
    reconnect_initial_ms: u64,
    reconnect_max_ms: u64,
}

impl Default for RawPool {
    fn default() -> Self {
        let pool = PoolSettings::default();
        Self {
            connections: pool.connections,
            max_handles: pool.max_handles,
            handle_reserve: pool.handle_reserve,
            reconnect_initial_ms: DEFAULT_RECONNECT_INITIAL_MS,
            reconnect_max_ms: DEFAULT_RECONNECT_MAX_MS,
        }
    }
}

/// One `[[queue]]`; a key left out takes [`QueueConfig::new`]'s default.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQueue {
    name: String,
    #[serde(default)]
    receive: Receive,
    batch: Option<usize>,
    max_batch_bytes: Option<usize>,
    wait_ms: Option<u32>,
    workers: Option<usize>,
    backout_threshold: Option<u32>,
    backout_queue: Option<String>,
    buffer_bytes: Option<usize>,
    sink: Option<SinkConfig>,
}

impl RawConfig {
    /// Parses TOML text; `origin` names the file in errors.
    ///
    /// # Errors
    /// [`Error::Config`] naming the dotted key that is wrong, with its line and column; a
    /// `password` under `[connection]` also says where the password goes instead.
    pub(super) fn parse(text: &str, origin: &Path) -> Result<Self, Error> {
        toml::from_str(text).map_err(|e| {
            let mut error = toml_location::parse_error(&e, text, origin);
            if let Error::Config {
                line,
                column,
                field,
                message,
                ..
            } = &mut error
            {
                if let Some(table) = toml_location::table_of_error(&e, text)
                    && let Some(culprit) = culprit(text, &table, message)
                {
                    *field = culprit;
                    if let Some(at) = toml_location::locate(text, field) {
                        (*line, *column) = at;
                    }
                }
                if field == "connection.password" {
                    message.push_str("; the file never holds a password: set password_file, or MQ_PASSWORD_FILE");
                }
            }
            error
        })
    }

    /// Fills the defaults; only the `server` text can be wrong at this stage.
    pub(super) fn into_config(self) -> Result<WorkerConfig, Invalid> {
        let c = self.connection;
        let server = c
            .server
            .map(|server| parse_mqserver(&server, "connection.server"))
            .transpose()
            .map_err(|error| match error {
                Error::Options { message, .. } => invalid("connection.server", message),
                other => invalid("connection.server", other.to_string()),
            })?;
        let connection = ConnectionSettings {
            queue_manager: c.queue_manager,
            server,
            ccdt_url: c.ccdt_url.as_deref().map(CcdtUrl::from),
            application_name: c.application_name,
            user: c.user,
            password_file: c.password_file,
            reconnect: match c.reconnect {
                RawReconnect::Default => Reconnect::Default,
                RawReconnect::Disabled => Reconnect::Disabled,
                RawReconnect::QueueManager => Reconnect::QueueManager,
                RawReconnect::Any => Reconnect::Any,
            },
            tls: c.tls.map(|tls| Tls {
                cipher_spec: tls.cipher_spec,
                key_repository: tls.key_repository,
                cert_label: tls.cert_label,
            }),
            sharecnv: c.sharecnv,
            keys_at: std::collections::BTreeMap::new(),
        };
        let pool = PoolSettings {
            connections: self.pool.connections,
            max_handles: self.pool.max_handles,
            handle_reserve: self.pool.handle_reserve,
            reconnect_initial: Duration::from_millis(self.pool.reconnect_initial_ms),
            reconnect_max: Duration::from_millis(self.pool.reconnect_max_ms),
        };
        let queues = self.queues.into_iter().map(RawQueue::into_config).collect();
        Ok(WorkerConfig {
            connection,
            pool,
            queues,
            file: None,
        })
    }
}

/// What inside `table` (dotted, `queue[1].sink`) the error `message` is about, when serde
/// reported it at the table rather than at the key: it does so for every error inside an
/// internally tagged table such as `[queue.sink]`. Found as the innermost key or entry of an
/// array of tables without which the file no longer fails with `message`: `timeout_ms` for
/// `timeout_ms = -1`, `headers[0].valu` for a misspelt key of a header (serde reports the
/// first error it meets, and a required key is only missed once every key written is
/// read, so removing a key changes the error only when the error is in that key). A missing
/// key is named inside the innermost such table (`headers[0].name`). `None` when no key of
/// `table` is to blame: the table itself lacks a key.
fn culprit(text: &str, table: &str, message: &str) -> Option<String> {
    let document: toml::Table = toml::from_str(text).ok()?;
    let fails_alike = |without: toml::Table| match toml::Value::Table(without).try_into::<RawConfig>() {
        Ok(_) => false,
        Err(e) => e.message().trim() == message,
    };
    let mut found: Option<String> = None;
    let mut at = table.to_owned();
    loop {
        let children: Vec<String> = match value_at(&document, &at)? {
            // The tag: without it, serde cannot tell which sink the table is.
            toml::Value::Table(t) => t
                .keys()
                .filter(|key| at != table || key.as_str() != "type")
                .map(|key| format!("{at}.{key}"))
                .collect(),
            toml::Value::Array(entries) if entries.iter().all(toml::Value::is_table) => {
                (0..entries.len()).map(|i| format!("{at}[{i}]")).collect()
            }
            _ => break,
        };
        let to_blame = children.into_iter().find(|child| {
            let mut without = document.clone();
            remove_at(&mut without, child);
            !fails_alike(without)
        });
        match to_blame {
            Some(child) => {
                found = Some(child.clone());
                at = child;
            }
            None => break,
        }
    }
    let found = found?;
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    Some(match missing {
        Some(key) if value_at(&document, &found).is_some_and(toml::Value::is_table) => format!("{found}.{key}"),
        _ => found,
    })
}

/// The value at dotted `path` (`queue[1].sink.headers[0].name`) of a parsed document.
fn value_at<'a>(document: &'a toml::Table, path: &str) -> Option<&'a toml::Value> {
    let mut parts = path.split('.');
    let first = step(document, parts.next()?)?;
    parts.try_fold(first, |value, part| step(value.as_table()?, part))
}

/// `part` (`headers` or `headers[0]`) of `table`.
fn step<'a>(table: &'a toml::Table, part: &str) -> Option<&'a toml::Value> {
    let (key, index) = split_index(part)?;
    let value = table.get(key)?;
    match index {
        Some(i) => value.as_array()?.get(i),
        None => Some(value),
    }
}

/// Removes the key or array entry at dotted `path` from a parsed document, if it is there.
fn remove_at(document: &mut toml::Table, path: &str) {
    let (parent, last) = match path.rsplit_once('.') {
        Some((parent, last)) => (Some(parent), last),
        None => (None, path),
    };
    let table = match parent {
        Some(parent) => {
            let mut parts = parent.split('.');
            let Some(first) = parts.next() else { return };
            let Some(mut value) = step_mut(document, first) else {
                return;
            };
            for part in parts {
                let Some(next) = value.as_table_mut().and_then(|t| step_mut(t, part)) else {
                    return;
                };
                value = next;
            }
            let Some(table) = value.as_table_mut() else { return };
            table
        }
        None => document,
    };
    match split_index(last) {
        Some((key, None)) => {
            table.remove(key);
        }
        Some((key, Some(i))) => {
            if let Some(entries) = table.get_mut(key).and_then(toml::Value::as_array_mut)
                && i < entries.len()
            {
                entries.remove(i);
            }
        }
        None => {}
    }
}

fn step_mut<'a>(table: &'a mut toml::Table, part: &str) -> Option<&'a mut toml::Value> {
    let (key, index) = split_index(part)?;
    let value = table.get_mut(key)?;
    match index {
        Some(i) => value.as_array_mut()?.get_mut(i),
        None => Some(value),
    }
}

/// `queue[1]` as `("queue", Some(1))`, `sink` as `("sink", None)`.
fn split_index(part: &str) -> Option<(&str, Option<usize>)> {
    match part.strip_suffix(']').and_then(|p| p.split_once('[')) {
        Some((key, index)) => Some((key, Some(index.parse().ok()?))),
        None => Some((part, None)),
    }
}

impl RawQueue {
    fn into_config(self) -> QueueConfig {
        let defaults = QueueConfig::new(self.name);
        QueueConfig {
            receive: self.receive,
            batch: self.batch.unwrap_or(self.receive.default_batch()),
            max_batch_bytes: self.max_batch_bytes.unwrap_or(defaults.max_batch_bytes),
            wait_ms: self.wait_ms.unwrap_or(defaults.wait_ms),
            workers: self.workers.unwrap_or(defaults.workers),
            backout_threshold: self.backout_threshold,
            backout_queue: self.backout_queue,
            buffer_bytes: self.buffer_bytes.unwrap_or(defaults.buffer_bytes),
            sink: self.sink.unwrap_or(defaults.sink.clone()),
            ..defaults
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::config::DEFAULT_WAIT_MS;
    use crate::worker::sink::Per;

    const FULL: &str = r#"
[connection]
queue_manager = "QM1"
server = "APP.SVRCONN/TCP/mq.example.com(1414)"
application_name = "orders-worker"
user = "app"
password_file = "/run/secrets/mq-password"
reconnect = "queue-manager"
[connection.tls]
cipher_spec = "TLS_AES_128_GCM_SHA256"
key_repository = "/etc/mq/keys"
cert_label = "orders-worker"

[pool]
connections = 4
reconnect_max_ms = 60000

[[queue]]
name = "ORDERS.IN"
batch = 50
backout_threshold = 3
backout_queue = "ORDERS.BACKOUT"
[queue.sink]
type = "http"
url = "https://orders.example.com/in"

[[queue]]
name = "AUDIT.IN"
receive = "single"
"#;

    #[test]
    fn a_wrong_type_in_a_sink_points_at_its_key() {
        let text = "[[queue]]\nname = \"A\"\n[queue.sink]\ntype = \"exec\"\ncommand = [\"cat\"]\ntimeout_ms = \"5\"\nper = \"message\"\n";
        let error = WorkerConfig::from_toml(text, Path::new("w.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("w.toml:6:1: queue[0].sink.timeout_ms: invalid type: string \"5\""),
            "{error}"
        );
    }

    fn error_of(text: &str) -> String {
        WorkerConfig::from_toml(text, Path::new("w.toml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn regression_a_value_out_of_range_in_a_sink_points_at_its_key() {
        let error =
            error_of("[[queue]]\nname = \"A\"\n[queue.sink]\ntype = \"http\"\nurl = \"http://x\"\ntimeout_ms = -1\n");
        assert!(
            error.starts_with("w.toml:6:1: queue[0].sink.timeout_ms: invalid value: integer `-1`, expected u64"),
            "{error}"
        );
    }

    #[test]
    fn regression_a_misspelt_key_of_a_header_is_named_at_its_own_line_and_path() {
        let text = "[[queue]]\nname = \"A\"\n[queue.sink]\ntype = \"http\"\nurl = \"http://x\"\n\n\n\n\
                    headers = [{ name = \"A\", valu = \"b\" }]\n";
        let error = error_of(text);
        assert!(
            error.starts_with("w.toml:9:26: queue[0].sink.headers[0].valu: unknown field `valu`"),
            "{error}"
        );
        // Written as tables of their own, the second header.
        let text = "[[queue]]\nname = \"A\"\n[queue.sink]\ntype = \"http\"\nurl = \"http://x\"\n\
                    [[queue.sink.headers]]\nname = \"A\"\nvalue = \"a\"\n[[queue.sink.headers]]\nname = \"B\"\nvlaue = \"b\"\n";
        let error = error_of(text);
        assert!(
            error.starts_with("w.toml:11:1: queue[0].sink.headers[1].vlaue: unknown field `vlaue`"),
            "{error}"
        );
    }

    #[test]
    fn a_key_missing_from_a_header_is_named_in_that_header() {
        let text = "[[queue]]\nname = \"A\"\n[queue.sink]\ntype = \"http\"\nurl = \"http://x\"\n\
                    headers = [{ name = \"A\" }, { value = \"b\" }]\n";
        let error = error_of(text);
        assert!(
            error.starts_with("w.toml:6:28: queue[0].sink.headers[1].name: missing field `name`"),
            "{error}"
        );
        // A key the sink itself lacks stays named in the sink.
        let error = error_of("[[queue]]\nname = \"A\"\n[queue.sink]\ntype = \"exec\"\nper = \"message\"\n");
        assert!(
            error.starts_with("w.toml:3:1: queue[0].sink.command: missing field `command`"),
            "{error}"
        );
    }

    #[test]
    fn regression_an_unclosed_queue_header_names_no_key_the_parser_made_up() {
        let error = error_of("[[queue]]\nname = \"A\"\nbatch = 5\n[[queue]\nname = \"B\"\n");
        assert_eq!(error, "w.toml:4:9: queue: unclosed array table, expected `]`");
    }

    #[test]
    fn a_full_file_loads_with_defaults_filled() {
        let config = WorkerConfig::from_toml(FULL, Path::new("w.toml")).unwrap();
        let c = &config.connection;
        assert_eq!(c.queue_manager.as_deref(), Some("QM1"));
        assert_eq!(
            c.server.as_ref().map(|s| s.conn_name.as_str()),
            Some("mq.example.com(1414)")
        );
        assert_eq!(c.password_file.as_deref(), Some(Path::new("/run/secrets/mq-password")));
        assert_eq!(c.reconnect, Reconnect::QueueManager);
        assert_eq!(
            c.tls.as_ref().map(|t| t.cipher_spec.as_str()),
            Some("TLS_AES_128_GCM_SHA256")
        );
        let pool = PoolSettings {
            connections: 4,
            reconnect_max: Duration::from_secs(60),
            ..PoolSettings::default()
        };
        assert_eq!(config.pool, pool);
        assert_eq!(config.pool.reconnect_initial, Duration::from_millis(100));
        let orders = &config.queues[0];
        assert_eq!((orders.batch, orders.backout_threshold), (50, Some(3)));
        assert_eq!(orders.backout_queue.as_deref(), Some("ORDERS.BACKOUT"));
        assert!(matches!(
            &orders.sink,
            SinkConfig::Http {
                per: Per::Batch,
                timeout_ms: 30_000,
                ..
            }
        ));
        let audit = QueueConfig {
            receive: Receive::Single,
            batch: 1,
            ..QueueConfig::new("AUDIT.IN")
        };
        assert_eq!(config.queues[1], audit);
        assert_eq!(config.queues[1].wait_ms, DEFAULT_WAIT_MS);
        assert!(config.queues.iter().all(|q| q.receive.syncpoint()));
    }
}
