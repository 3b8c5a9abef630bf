//! The worker's configuration: the validated settings a run starts from, and their checks.
//!
//! Settings flow one way: the file is read into raw serde types (`raw.rs`,
//! `deny_unknown_fields`), turned into a [`WorkerConfig`] with every default filled, then
//! checked here; an error names the file, line, column and dotted field (`queue[1].batch`). A
//! config built from flags goes through the same checks ([`WorkerConfig::validate`]), so a
//! `WorkerConfig` that passed them is one a run can start from. A file may hold no `[[queue]]`
//! (the queues may come from flags): only [`WorkerConfig::validate`] asks for at least one.
//! Each section has its own file: a queue and its checks in `queue.rs`, the pool's in
//! `pool.rs`, connection settings and their layering over flags and the environment in
//! `connection.rs` ([`ConnectionSettings::connect_options`]); the checks across queues stay
//! here. The file never holds a password, only its path.

mod connection;
mod pool;
mod queue;
mod raw;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use self::connection::{ConnectionOverrides, ConnectionSettings};
pub use self::pool::PoolSettings;
pub use self::queue::{QueueConfig, Receive};
use self::raw::RawConfig;
use super::sink::SinkConfig;
use crate::Error;
use crate::mq::options::check_name;
use crate::toml_location;

/// Messages per batch when `batch` is not set (1 with [`Receive::Single`]).
pub const DEFAULT_BATCH: usize = 20;
/// Bytes after which a batch stops growing, when `max_batch_bytes` is not set.
pub const DEFAULT_MAX_BATCH_BYTES: usize = 1024 * 1024;
/// Wait for the first message of a batch, when `wait_ms` is not set.
pub const DEFAULT_WAIT_MS: u32 = 5_000;
/// Starting MQGET buffer, when `buffer_bytes` is not set.
pub const DEFAULT_BUFFER_BYTES: usize = 64 * 1024;
/// The application name MQ shows in DISPLAY CONN unless a flag or the file sets one.
pub const DEFAULT_APPLICATION_NAME: &str = "mqpilot";

const DEFAULT_RECONNECT_INITIAL_MS: u64 = 100;
const DEFAULT_RECONNECT_MAX_MS: u64 = 30_000;
/// Longest reconnect delay (`pool.reconnect_initial_ms`, `pool.reconnect_max_ms`): one hour.
pub const MAX_RECONNECT_MS: u64 = 60 * 60 * 1000;
/// Most messages per batch (`batch`, `--batch`).
pub const MAX_BATCH: usize = 10_000;
/// Longest wait for the first message of a batch (`wait_ms`, `--wait-ms`).
pub const MAX_WAIT_MS: u32 = 60_000;
/// Most pollers per queue (`workers`, `--workers`).
pub const MAX_WORKERS: usize = 64;
/// 100 MiB, MQ's largest MAXMSGL.
const MAX_BUFFER_BYTES: usize = 100 * 1024 * 1024;
/// Most connections in the pool (`pool.connections`, `--connections`).
pub const MAX_CONNECTIONS: usize = 1_000;
/// MQ_Q_NAME_LENGTH.
const Q_NAME_LENGTH: usize = 48;

/// The whole worker configuration, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Where to connect; flags and the environment are layered on when connecting.
    pub connection: ConnectionSettings,
    /// The connection pool.
    pub pool: PoolSettings,
    /// The queues to poll, at least one, names unique.
    pub queues: Vec<QueueConfig>,
    /// The file the settings were read from, to place a setting in it; `None` when built in
    /// code.
    file: Option<ConfigFile>,
}

/// A configuration file's path and text, to give a setting's line and column. `Debug` shows
/// the path only: the text may hold a credential (a `ccdt_url` with userinfo).
#[derive(Clone, PartialEq, Eq)]
struct ConfigFile {
    path: PathBuf,
    text: String,
}

impl std::fmt::Debug for ConfigFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl WorkerConfig {
    /// A config for `queues` with default connection and pool settings (for flags, no file).
    /// Check it with [`validate`](Self::validate).
    #[must_use]
    pub fn from_queues(queues: Vec<QueueConfig>) -> Self {
        Self {
            connection: ConnectionSettings::default(),
            pool: PoolSettings::default(),
            queues,
            file: None,
        }
    }

    /// Reads and checks a TOML file.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file when it cannot be read, [`Error::Config`] when it is
    /// invalid.
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let text = crate::toml_location::read_text(path)?;
        Self::from_toml(&text, path)
    }

    /// Parses and checks TOML text; `origin` names the file in errors. The file may have no
    /// `[[queue]]`: [`validate`](Self::validate) the config once every queue is added.
    ///
    /// # Errors
    /// [`Error::Config`] with the line and column of the key that is wrong, in an inline
    /// table too (of its table when the key is not written), and its dotted
    /// name, e.g. `queue[1].batch`.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self, Error> {
        let at_key = |Invalid { field, message }| toml_location::field_error(text, origin, field, message);
        let mut config = RawConfig::parse(text, origin)?.into_config().map_err(at_key)?;
        config.file = Some(ConfigFile {
            path: origin.to_owned(),
            text: text.to_owned(),
        });
        config.check_settings().map_err(at_key)?;
        if let Some(cycle) = config.sink_cycle() {
            let at = |i: usize| {
                let field = format!("queue[{i}].sink.queue");
                format!("at {}", config.file_location(&field).unwrap_or(field))
            };
            let first = format!("queue[{}].sink.queue", cycle[0]);
            return Err(toml_location::field_error(
                text,
                origin,
                first,
                config.cycle_message(&cycle, at),
            ));
        }
        // Checked only when connecting, as a flag or the environment may complete them.
        for key in [
            "connection.user",
            "connection.password_file",
            "connection.sharecnv",
            "connection.tls.cipher_spec",
        ] {
            let at = format!("{}: {key}", toml_location::place(text, origin, key));
            config.connection.keys_at.insert(key.to_owned(), at);
        }
        Ok(config)
    }

    /// Checks a config built in code, e.g. from flags; `origin` (such as `command line`)
    /// stands where a file name would, with no line and column.
    ///
    /// # Errors
    /// [`Error::Config`] naming the dotted field that is wrong.
    pub fn validate(&self, origin: &str) -> Result<(), Error> {
        self.check().map_err(|Invalid { field, message }| Error::Config {
            path: PathBuf::from(origin),
            line: 0,
            column: 0,
            field,
            message,
        })
    }

    /// Where dotted `field` is set in the file the config was read from (`w.toml:5:1`, its
    /// table when the key is not written, the file name alone when neither is); `None` when
    /// not read from a file.
    #[must_use]
    pub fn file_location(&self, field: &str) -> Option<String> {
        let file = self.file.as_ref()?;
        Some(toml_location::place(&file.text, &file.path, field))
    }

    /// The polled queues whose queue sinks lead from one to the next and back to the first,
    /// by index, starting at the lowest; `None` when there is no such loop, or when two queues
    /// share a name (an error of its own). Messages put to such a loop would go round it
    /// forever. A queue that is its own sink is left to that queue's own check.
    #[must_use]
    pub fn sink_cycle(&self) -> Option<Vec<usize>> {
        let index: HashMap<&str, usize> = self
            .queues
            .iter()
            .enumerate()
            .map(|(i, q)| (q.name.as_str(), i))
            .collect();
        if index.len() != self.queues.len() {
            return None;
        }
        let next = |i: usize| match &self.queues[i].sink {
            SinkConfig::Queue { queue } => index.get(queue.as_str()).copied(),
            _ => None,
        };
        (0..self.queues.len()).find_map(|start| {
            let mut cycle = vec![start];
            let mut at = next(start).filter(|&to| to != start)?;
            while at != start {
                // A path into a loop that `start` is not on, or one through a lower index
                // (found from there).
                if at < start || cycle.contains(&at) {
                    return None;
                }
                cycle.push(at);
                at = next(at)?;
            }
            Some(cycle)
        })
    }

    /// The error for a loop of queue sinks ([`sink_cycle`](Self::sink_cycle)); `set_at(i)` says
    /// where queue `i`'s sink is set (`at w.toml:5:1`, `by --to BRIDGE.IN`).
    #[must_use]
    pub fn cycle_message(&self, cycle: &[usize], set_at: impl Fn(usize) -> String) -> String {
        let names: Vec<&str> = cycle
            .iter()
            .chain(cycle.first())
            .map(|&i| self.queues[i].name.as_str())
            .collect();
        let entries: Vec<String> = cycle
            .iter()
            .map(|&i| {
                format!(
                    "{} -> {} {}",
                    self.queues[i].name,
                    sink_queue(&self.queues[i]),
                    set_at(i)
                )
            })
            .collect();
        format!(
            "the queue sinks go round in a loop ({}): every message would go round it forever; sinks: \
             {}; send one of these queues elsewhere",
            names.join(" -> "),
            entries.join(", ")
        )
    }

    fn check(&self) -> Result<(), Invalid> {
        if self.queues.is_empty() {
            return Err(invalid("queue", "at least one [[queue]] is required"));
        }
        self.check_settings()?;
        if let Some(cycle) = self.sink_cycle() {
            let message = self.cycle_message(&cycle, |i| format!("(queue[{i}].sink.queue)"));
            return Err(invalid(format!("queue[{}].sink.queue", cycle[0]), message));
        }
        Ok(())
    }

    /// Every check but the ones on the queues as a whole (at least one, no loop of sinks).
    fn check_settings(&self) -> Result<(), Invalid> {
        self.connection.check()?;
        self.pool.check()?;
        let mut seen = HashMap::new();
        for (i, queue) in self.queues.iter().enumerate() {
            queue.check(i)?;
            if let Some(first) = seen.insert(queue.name.as_str(), i) {
                return Err(invalid(
                    format!("queue[{i}].name"),
                    format!("duplicate queue {} (also queue[{first}])", queue.name),
                ));
            }
        }
        Ok(())
    }
}

/// The target of a queue sink (empty for any other sink).
fn sink_queue(q: &QueueConfig) -> &str {
    match &q.sink {
        SinkConfig::Queue { queue } => queue,
        _ => "",
    }
}

/// A field that is wrong and what is wrong with it; placed in a file or on the command line
/// by the caller.
struct Invalid {
    field: String,
    message: String,
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> Invalid {
    Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// `min <= value`, and `value <= max` when there is a `max`.
fn check_range<T: PartialOrd + std::fmt::Display>(
    field: &str,
    value: T,
    min: T,
    max: Option<T>,
) -> Result<(), Invalid> {
    if value >= min && max.as_ref().is_none_or(|max| value <= *max) {
        return Ok(());
    }
    let message = match max {
        Some(max) => format!("is {value}, must be {min} to {max}"),
        None => format!("is {value}, must be at least {min}"),
    };
    Err(invalid(field, message))
}

/// MQ's rule for a queue name ([`check_name`]), as an error about `field`.
fn check_queue_name(field: &str, name: &str) -> Result<(), Invalid> {
    check_name(name, Q_NAME_LENGTH, "queue name").map_err(|message| invalid(field, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn error_of(text: &str) -> String {
        WorkerConfig::from_toml(text, Path::new("w.toml"))
            .unwrap_err()
            .to_string()
    }

    pub(super) fn assert_error_starts(text: &str, prefix: &str) {
        let error = error_of(text);
        assert!(error.starts_with(prefix), "expected {prefix:?}, got {error:?}");
    }

    #[test]
    fn an_unknown_key_names_its_line_and_dotted_field() {
        assert_error_starts(
            "[[queue]]\nname = \"A\"\nbacth = 5\n",
            "w.toml:3:1: queue[0].bacth: unknown field `bacth`",
        );
    }

    #[test]
    fn an_unknown_key_in_a_sink_names_the_queue_entry() {
        let text = "[[queue]]\nname = \"A\"\n[[queue]]\nname = \"B\"\n[queue.sink]\ntype = \"http\"\nurl = \"http://x/in\"\ncolour = 1\n";
        assert_error_starts(text, "w.toml:8:1: queue[1].sink.colour: unknown field `colour`");
    }

    #[test]
    fn a_wrong_type_names_its_line_and_dotted_field() {
        let text = "[[queue]]\nname = \"A\"\n\n[[queue]]\nname = \"B\"\nwait_ms = \"soon\"\n";
        assert_error_starts(text, "w.toml:6:11: queue[1].wait_ms: invalid type");
        assert_error_starts(
            "[[queue]]\nname = \"A\"\nreceive = \"fast\"\n",
            "w.toml:3:11: queue[0].receive: unknown variant",
        );
    }

    #[test]
    fn a_missing_required_key_points_at_its_table() {
        assert_error_starts(
            "[[queue]]\nname = \"A\"\n[[queue]]\nbatch = 1\n",
            "w.toml:3:1: queue[1].name: missing field `name`",
        );
    }

    #[test]
    fn connection_sharecnv_is_checked_and_reaches_the_options() {
        let text = "[connection]\nsharecnv = 1000000000\n[[queue]]\nname = \"A\"\n";
        assert_error_starts(text, "w.toml:2:1: connection.sharecnv: 1000000000 is above 999999999");
        let text = "[connection]\nserver = \"C/TCP/h(1)\"\nsharecnv = 0\n[[queue]]\nname = \"A\"\n";
        let config = WorkerConfig::from_toml(text, Path::new("w.toml")).unwrap();
        assert_eq!(config.connection.sharecnv, Some(0));
        let no_env = |_: &str| None;
        config
            .connection
            .connect_options(no_env, &ConnectionOverrides::default())
            .expect("a channel is set");
        let ccdt = ConnectionOverrides {
            ccdt_url: Some("file:///ccdt.json".into()),
            server: None,
            ..ConnectionOverrides::default()
        };
        let without_server = ConnectionSettings {
            server: None,
            ..config.connection
        };
        let err = without_server.connect_options(no_env, &ccdt).unwrap_err().to_string();
        assert!(
            err.starts_with("w.toml:3:1: connection.sharecnv: a client SHARECNV needs an explicit channel"),
            "{err}"
        );
    }

    /// Regression: a setting that takes one of a few names said "expected string or map" (or
    /// "wanted string or table") for a value of another type, and never which names it takes.
    #[test]
    fn regression_a_setting_of_a_few_names_lists_them() {
        let sink = "[[queue]]\nname = \"A\"\n[queue.sink]\n";
        for (text, prefix) in [
            (
                format!("{sink}type = \"exec\"\ncommand = [\"cat\"]\nper = 3\n"),
                "w.toml:6:1: queue[0].sink.per: invalid type: integer `3`, expected `batch` or `message`",
            ),
            (
                format!("{sink}type = \"http\"\nurl = \"http://x/in\"\nbody = \"text\"\n"),
                "w.toml:6:1: queue[0].sink.body: unknown variant `text`, expected `json` or `raw`",
            ),
            (
                "[[queue]]\nname = \"A\"\nreceive = 3\n".to_owned(),
                "w.toml:3:11: queue[0].receive: invalid type: integer `3`, expected `batch`, `single` or `no-syncpoint`",
            ),
            (
                "[connection]\nreconnect = \"qm\"\n".to_owned(),
                "w.toml:2:13: connection.reconnect: unknown variant `qm`, expected `default`, `disabled`, \
                 `queue-manager` or `any`",
            ),
        ] {
            assert_error_starts(&text, prefix);
        }
    }

    #[test]
    fn an_unknown_variant_in_a_sink_points_at_its_key() {
        let text = "[[queue]]\nname = \"A\"\n[queue.sink]\ntype = \"exec\"\ncommand = [\"cat\"]\nper = \"msg\"\n";
        assert_error_starts(text, "w.toml:6:1: queue[0].sink.per: unknown variant `msg`");
    }

    #[test]
    fn a_duplicate_queue_is_rejected() {
        let text = "[[queue]]\nname = \"A\"\n[[queue]]\nname = \"A\"\n";
        assert_error_starts(text, "w.toml:4:1: queue[1].name: duplicate queue A (also queue[0])");
    }

    #[test]
    fn a_file_may_leave_the_queues_to_flags_but_a_run_needs_one() {
        let config = WorkerConfig::from_toml("[pool]\nconnections = 1\n", Path::new("w.toml")).unwrap();
        assert!(config.queues.is_empty());
        let error = config.validate("w.toml").unwrap_err().to_string();
        assert!(error.contains("queue: at least one [[queue]] is required"), "{error}");
    }

    fn bridge(name: &str, to: &str) -> String {
        format!("[[queue]]\nname = \"{name}\"\n[queue.sink]\ntype = \"queue\"\nqueue = \"{to}\"\n")
    }

    #[test]
    fn a_loop_of_queue_sinks_names_every_queue_and_line() {
        let text = [bridge("C", "A"), bridge("A", "B"), bridge("B", "C")].concat();
        assert_error_starts(
            &text,
            "w.toml:5:1: queue[0].sink.queue: the queue sinks go round in a loop (C -> A -> B -> C)",
        );
        let error = error_of(&text);
        for part in ["C -> A at w.toml:5:1", "A -> B at w.toml:10:1", "B -> C at w.toml:15:1"] {
            assert!(error.contains(part), "{error}");
        }
        // A chain into a loop is named by the loop alone.
        let text = [bridge("X", "A"), bridge("A", "B"), bridge("B", "A")].concat();
        assert_error_starts(
            &text,
            "w.toml:10:1: queue[1].sink.queue: the queue sinks go round in a loop (A -> B -> A)",
        );
    }

    #[test]
    fn a_chain_of_queue_sinks_that_ends_is_accepted() {
        let text = [bridge("A", "B"), bridge("B", "C"), bridge("C", "D")].concat();
        let config = WorkerConfig::from_toml(&text, Path::new("w.toml")).unwrap();
        assert_eq!(config.sink_cycle(), None);
        assert!(config.validate("w.toml").is_ok());
    }

    /// Regression: a key inside an inline table was placed at `w.toml:0:0`, at the header of
    /// the table around it, or named by the key holding the inline table.
    #[test]
    fn regression_errors_inside_inline_tables_point_at_the_key() {
        assert_error_starts(
            "queue = [{name = \"A\", batch = 0}]\n",
            "w.toml:1:23: queue[0].batch: is 0, must be 1 to 10000",
        );
        assert_error_starts(
            "queue = [{name = \"A\", wait_ms = \"soon\"}]\n",
            "w.toml:1:33: queue[0].wait_ms: invalid type: string \"soon\"",
        );
        assert_error_starts(
            "queue = [{batch = 1}]\n",
            "w.toml:1:10: queue[0].name: missing field `name`",
        );
        let queue = "[[queue]]\nname = \"A\"\n";
        let sinks = [
            (
                "sink = { type = \"exec\", command = [] }",
                "w.toml:3:25: queue[0].sink.command: is empty",
            ),
            (
                "sink = { type = \"exec\", command = [\"cat\"], timeout_ms = \"5\" }",
                "w.toml:3:44: queue[0].sink.timeout_ms: invalid type: string \"5\"",
            ),
            (
                "sink = { type = \"http\", url = \"http://x/in\", colour = 1 }",
                "w.toml:3:46: queue[0].sink.colour: unknown field `colour`",
            ),
            (
                "sink = { type = \"exec\", command = [\"cat\"], per = \"msg\" }",
                "w.toml:3:44: queue[0].sink.per: unknown variant `msg`",
            ),
        ];
        for (sink, prefix) in sinks {
            assert_error_starts(&format!("{queue}{sink}\n"), prefix);
        }
        assert_error_starts(
            "queue = [{name = \"A\", sink = {type = \"exec\", command = [\"cat\"], timeout_ms = \"5\"}}]\n",
            "w.toml:1:65: queue[0].sink.timeout_ms: invalid type: string \"5\"",
        );
        let http = "[[queue]]\nname = \"A\"\n[queue.sink]\ntype = \"http\"\nurl = \"http://x/in\"\n";
        assert_error_starts(
            &format!("{http}headers = [{{ name = \"Bad Header\", value = \"x\" }}]\n"),
            "w.toml:6:14: queue[0].sink.headers[0].name: \"Bad Header\" is not a valid HTTP header name",
        );
        assert_error_starts(
            "[connection]\ntls = { cipher_spec = \"TLS_AES_128_GCM_SHA256\", colour = 1 }\n",
            "w.toml:2:49: connection.tls.colour: unknown field `colour`",
        );
    }

    #[test]
    fn keys_in_inline_tables_are_placed_for_later_errors() {
        let text = "queue = [{name = \"A\", sink = {type = \"queue\", queue = \"B\"}}, \
                    {name = \"B\", sink = {type = \"queue\", queue = \"A\"}}]\n";
        let error = error_of(text);
        assert!(
            error.starts_with("w.toml:1:47: queue[0].sink.queue: the queue sinks go round in a loop"),
            "{error}"
        );
        assert!(error.contains("B -> A at w.toml:1:99"), "{error}");
        let text = "[connection]\ntls = { cipher_spec = \"TLS_AES_128_GCM_SHA256\" }\n";
        let config = WorkerConfig::from_toml(text, Path::new("w.toml")).unwrap();
        let keys_at = &config.connection.keys_at;
        assert_eq!(
            keys_at["connection.tls.cipher_spec"],
            "w.toml:2:9: connection.tls.cipher_spec"
        );
        assert_eq!(config.file_location("connection.tls"), Some("w.toml:2:1".to_owned()));
    }

    #[test]
    fn a_key_that_cannot_be_placed_is_named_with_the_file_alone() {
        let config = WorkerConfig::from_toml("[[queue]]\nname = \"A\"\n", Path::new("w.toml")).unwrap();
        assert_eq!(
            config.connection.keys_at["connection.sharecnv"],
            "w.toml: connection.sharecnv"
        );
        assert_eq!(config.file_location("pool.connections"), Some("w.toml".to_owned()));
    }

    #[test]
    fn a_password_in_the_file_is_an_unknown_key() {
        let text = "[connection]\npassword = \"hunter2\"\n[[queue]]\nname = \"A\"\n";
        let error = error_of(text);
        assert!(
            error.starts_with("w.toml:2:1: connection.password: unknown field `password`"),
            "{error}"
        );
        assert!(error.contains("password_file") && !error.contains("hunter2"), "{error}");
    }

    #[test]
    fn a_missing_file_is_an_io_error_naming_it() {
        let error = WorkerConfig::from_file(Path::new("/no/such/worker.toml")).unwrap_err();
        assert!(matches!(error, Error::Io { .. }));
        assert!(error.to_string().contains("/no/such/worker.toml"));
    }

    #[test]
    fn a_config_from_flags_is_checked_with_its_origin() {
        let good = WorkerConfig::from_queues(vec![QueueConfig::new("ORDERS.IN")]);
        assert!(good.validate("command line").is_ok());
        let bad = WorkerConfig::from_queues(vec![
            QueueConfig::new("A"),
            QueueConfig {
                workers: 65,
                ..QueueConfig::new("B")
            },
        ]);
        let error = bad.validate("command line").unwrap_err().to_string();
        assert_eq!(error, "command line: queue[1].workers: is 65, must be 1 to 64");
        let none = WorkerConfig::from_queues(Vec::new())
            .validate("command line")
            .unwrap_err();
        assert!(none.to_string().starts_with("command line: queue: "), "{none}");
    }
}

#[cfg(test)]
mod example_file {
    use super::*;

    #[test]
    fn the_readme_worker_file_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/worker.toml");
        let config = WorkerConfig::from_file(&path).unwrap();
        assert_eq!(config.queues.len(), 3);
        assert_eq!(config.pool.connections, 4);
        assert_eq!(config.queues[1].receive, Receive::Single);
        assert!(matches!(config.queues[2].sink, SinkConfig::Queue { ref queue } if queue == "BRIDGE.OUT"));
    }
}
