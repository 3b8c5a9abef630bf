//! The worker's configuration: the TOML file or command-line settings, checked once.
//!
//! Settings flow one way: the file is read into raw serde types (`deny_unknown_fields`), turned
//! into a [`WorkerConfig`] with every default filled, then checked; an error names the file,
//! line, column and dotted field (`queue[1].batch`). A config built from flags goes through the
//! same checks ([`WorkerConfig::validate`]). Connection settings are layered only when
//! connecting: flags over the file over the environment
//! ([`ConnectionSettings::connect_options`]). The file never holds a password, only its path.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::sink::{HttpBody, Per, SinkConfig};
use crate::Error;
use crate::fake::config::{key_at, locate, toml_error};
use crate::mq::options::{
    ClientChannel, ConnectOptions, ConnectOptionsBuilder, Reconnect, Tls, Transport, parse_mqserver,
};

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
const MAX_BATCH: usize = 10_000;
/// Waits stay short so that shutdown is prompt.
const MAX_WAIT_MS: u32 = 60_000;
const MAX_WORKERS: usize = 64;
/// 100 MiB, MQ's largest MAXMSGL.
const MAX_BUFFER_BYTES: usize = 100 * 1024 * 1024;
const MAX_CONNECTIONS: usize = 1_000;
/// MQ_Q_NAME_LENGTH.
const Q_NAME_LENGTH: usize = 48;

/// How a queue's messages are received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Receive {
    /// Up to `batch` messages per unit of work (default).
    #[default]
    Batch,
    /// One message per unit of work; `batch` is 1.
    Single,
    /// Outside syncpoint: a message leaves the queue when received, so a failed delivery loses
    /// it. Opt-in; the worker warns at start (see [`WorkerConfig::without_syncpoint`]).
    NoSyncpoint,
}

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

/// The whole worker configuration, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Where to connect; flags and the environment are layered on when connecting.
    pub connection: ConnectionSettings,
    /// The connection pool.
    pub pool: PoolSettings,
    /// The queues to poll, at least one, names unique.
    pub queues: Vec<QueueConfig>,
}

/// Connection settings from the file (`[connection]`), checked against MQ's limits.
/// Each is optional: flags override it, and the environment fills what neither sets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectionSettings {
    /// Queue manager name. Default: the client's default queue manager.
    pub queue_manager: Option<String>,
    /// Client channel (`server`, MQSERVER syntax). Not together with `ccdt_url`.
    pub server: Option<ClientChannel>,
    /// Client channel definition table URL.
    pub ccdt_url: Option<String>,
    /// Application name. Default [`DEFAULT_APPLICATION_NAME`].
    pub application_name: Option<String>,
    /// User to authenticate as.
    pub user: Option<String>,
    /// File holding the password (read when connecting).
    pub password_file: Option<PathBuf>,
    /// Client reconnect behaviour. Default [`Reconnect::Default`].
    pub reconnect: Reconnect,
    /// TLS for the client channel.
    pub tls: Option<Tls>,
}

/// Connection settings given as command-line flags; each one set wins over the file.
#[derive(Debug, Clone, Default)]
pub struct ConnectionOverrides {
    /// `--queue-manager`.
    pub queue_manager: Option<String>,
    /// `--server`, MQSERVER syntax.
    pub server: Option<String>,
    /// `--ccdt-url`.
    pub ccdt_url: Option<String>,
    /// `--user`.
    pub user: Option<String>,
    /// `--password-file`.
    pub password_file: Option<PathBuf>,
    /// `--application-name`.
    pub application_name: Option<String>,
    /// `--cipher-spec`.
    pub cipher_spec: Option<String>,
    /// `--key-repository`.
    pub key_repository: Option<PathBuf>,
}

/// Pool settings (`[pool]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSettings {
    /// Connections per process, 1 to 1000. Default 2.
    pub connections: usize,
    /// Configured maximum handles per connection; the budget is the smaller of this and
    /// MAXHANDS minus `handle_reserve`. At least 1. Default 256.
    pub max_handles: usize,
    /// Handles left free below MAXHANDS. Default 8.
    pub handle_reserve: usize,
    /// First reconnect delay, at least 1 ms. Default 100 ms.
    pub reconnect_initial: Duration,
    /// Largest reconnect delay, at least `reconnect_initial`. Default 30 s.
    pub reconnect_max: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            connections: 2,
            max_handles: 256,
            handle_reserve: 8,
            reconnect_initial: Duration::from_millis(DEFAULT_RECONNECT_INITIAL_MS),
            reconnect_max: Duration::from_millis(DEFAULT_RECONNECT_MAX_MS),
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

impl WorkerConfig {
    /// A config for `queues` with default connection and pool settings (for flags, no file).
    /// Check it with [`validate`](Self::validate).
    #[must_use]
    pub fn from_queues(queues: Vec<QueueConfig>) -> Self {
        Self {
            connection: ConnectionSettings::default(),
            pool: PoolSettings::default(),
            queues,
        }
    }

    /// Reads and checks a TOML file.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file when it cannot be read, [`Error::Config`] when it is
    /// invalid.
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text, path)
    }

    /// Parses and checks TOML text; `origin` names the file in errors.
    ///
    /// # Errors
    /// [`Error::Config`] with the line and column of the key that is wrong (of its table's
    /// header when the key is not written) and its dotted name, e.g. `queue[1].batch`.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self, Error> {
        let indexed = index_subtables(text);
        let raw: RawConfig = toml::from_str(text).map_err(|e| parse_error(&e, text, &indexed, origin))?;
        let at_key = |Invalid { field, message }| {
            let (line, column) = locate(&indexed, &field);
            Error::Config {
                path: origin.to_owned(),
                line,
                column,
                field,
                message,
            }
        };
        let config = raw.into_config().map_err(at_key)?;
        config.check().map_err(at_key)?;
        Ok(config)
    }

    /// Checks a config built in code, e.g. from flags; `origin` (such as `command line`)
    /// stands where a file name would, with line and column 0.
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

    /// The queues received without syncpoint, which lose a batch whose delivery fails; the
    /// worker warns about each at start.
    pub fn without_syncpoint(&self) -> impl Iterator<Item = &QueueConfig> {
        self.queues.iter().filter(|q| !q.receive.syncpoint())
    }

    fn check(&self) -> Result<(), Invalid> {
        self.connection.check()?;
        self.pool.check()?;
        if self.queues.is_empty() {
            return Err(invalid("queue", "at least one [[queue]] is required"));
        }
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

impl ConnectionSettings {
    /// The options to connect with: each flag in `overrides` that is set wins over the file,
    /// which wins over the environment read through `env` (`MQSERVER`, `MQCCDTURL`,
    /// `MQ_PASSWORD`, `MQ_PASSWORD_FILE`; see [`ConnectOptions::from_env`]). The application
    /// name defaults to [`DEFAULT_APPLICATION_NAME`]. Reads the password file.
    ///
    /// # Errors
    /// [`Error::Options`] naming the flag or variable that is wrong, or the setting that
    /// breaks an MQ limit; [`Error::Io`] when the password file cannot be read.
    pub fn connect_options(
        &self,
        env: impl Fn(&str) -> Option<String>,
        overrides: &ConnectionOverrides,
    ) -> Result<ConnectOptions, Error> {
        let builder = ConnectOptions::from_env(env)?.with_reconnect(self.reconnect);
        let mut builder = layer(
            builder,
            self.queue_manager.as_deref(),
            self.server.clone(),
            self.ccdt_url.as_deref(),
            self.user.as_deref(),
            self.password_file.as_deref(),
        );
        let application_name = (overrides.application_name.as_deref())
            .or(self.application_name.as_deref())
            .unwrap_or(DEFAULT_APPLICATION_NAME);
        builder = overrides.apply(builder)?.with_application_name(application_name);
        if let Some(tls) = self.tls_with(overrides)? {
            builder = builder.with_tls(tls);
        }
        builder.build()
    }

    /// The file's TLS settings with the flags' on top, field by field.
    fn tls_with(&self, overrides: &ConnectionOverrides) -> Result<Option<Tls>, Error> {
        let file = self.tls.as_ref();
        let cipher_spec = (overrides.cipher_spec.clone()).or_else(|| file.map(|tls| tls.cipher_spec.clone()));
        let key_repository =
            (overrides.key_repository.clone()).or_else(|| file.and_then(|tls| tls.key_repository.clone()));
        match (cipher_spec, key_repository) {
            (Some(cipher_spec), key_repository) => Ok(Some(Tls {
                cipher_spec,
                key_repository,
            })),
            (None, Some(_)) => Err(Error::Options {
                source_name: "--key-repository".to_owned(),
                message: "needs a cipher spec: set --cipher-spec or connection.tls.cipher_spec".to_owned(),
            }),
            (None, None) => Ok(None),
        }
    }

    /// Each setting against the rules the connection builder applies, so a bad value in the
    /// file is reported with its line rather than when connecting.
    fn check(&self) -> Result<(), Invalid> {
        let builder = ConnectOptions::builder;
        if self.server.is_some() && self.ccdt_url.is_some() {
            return Err(invalid(
                "connection.ccdt_url",
                "server is set as well: set only one of them",
            ));
        }
        if let Some(name) = &self.queue_manager {
            check_setting("connection.queue_manager", builder().with_queue_manager(name))?;
        }
        if let Some(channel) = &self.server {
            check_setting("connection.server", builder().with_channel(channel.clone()))?;
        }
        if let Some(url) = &self.ccdt_url {
            check_setting("connection.ccdt_url", builder().with_ccdt_url(url))?;
        }
        if let Some(name) = &self.application_name {
            check_setting("connection.application_name", builder().with_application_name(name))?;
        }
        if self.user.as_deref().is_some_and(|user| user.trim().is_empty()) {
            return Err(invalid("connection.user", "is empty"));
        }
        if self
            .password_file
            .as_ref()
            .is_some_and(|path| path.as_os_str().is_empty())
        {
            return Err(invalid("connection.password_file", "is empty"));
        }
        if let Some(tls) = &self.tls {
            // TLS needs a channel, which a flag or MQSERVER may still supply: check the
            // values themselves against a stand-in.
            let channel = self.server.clone().unwrap_or_else(|| ClientChannel {
                name: "CHECK".to_owned(),
                transport: Transport::Tcp,
                conn_name: "localhost(1414)".to_owned(),
            });
            let cipher_only = Tls {
                key_repository: None,
                ..tls.clone()
            };
            let with_channel = || builder().with_channel(channel.clone());
            check_setting("connection.tls.cipher_spec", with_channel().with_tls(cipher_only))?;
            check_setting("connection.tls.key_repository", with_channel().with_tls(tls.clone()))?;
        }
        Ok(())
    }
}

impl ConnectionOverrides {
    /// Applies every flag that is set to `builder`.
    fn apply(&self, builder: ConnectOptionsBuilder) -> Result<ConnectOptionsBuilder, Error> {
        if self.server.is_some() && self.ccdt_url.is_some() {
            return Err(Error::Options {
                source_name: "--ccdt-url".to_owned(),
                message: "--server is set as well: set only one of them".to_owned(),
            });
        }
        let server = self
            .server
            .as_deref()
            .map(|server| parse_mqserver(server, "--server"))
            .transpose()?;
        Ok(layer(
            builder,
            self.queue_manager.as_deref(),
            server,
            self.ccdt_url.as_deref(),
            self.user.as_deref(),
            self.password_file.as_deref(),
        ))
    }
}

/// Sets on `builder` each of one layer's settings that is there, so it wins over the layers
/// applied before.
fn layer(
    mut builder: ConnectOptionsBuilder,
    queue_manager: Option<&str>,
    channel: Option<ClientChannel>,
    ccdt_url: Option<&str>,
    user: Option<&str>,
    password_file: Option<&Path>,
) -> ConnectOptionsBuilder {
    if let Some(name) = queue_manager {
        builder = builder.with_queue_manager(name);
    }
    if let Some(channel) = channel {
        builder = builder.with_channel(channel);
    }
    if let Some(url) = ccdt_url {
        builder = builder.with_ccdt_url(url);
    }
    if let Some(user) = user {
        builder = builder.with_user(user);
    }
    if let Some(path) = password_file {
        builder = builder.with_password_file(path);
    }
    builder
}

impl PoolSettings {
    fn check(&self) -> Result<(), Invalid> {
        check_range("pool.connections", self.connections, 1, Some(MAX_CONNECTIONS))?;
        check_range("pool.max_handles", self.max_handles, 1, None)?;
        if self.reconnect_initial < Duration::from_millis(1) {
            return Err(invalid("pool.reconnect_initial_ms", "must be at least 1"));
        }
        if self.reconnect_max < self.reconnect_initial {
            return Err(invalid(
                "pool.reconnect_max_ms",
                format!(
                    "is {} ms, less than reconnect_initial_ms ({} ms)",
                    self.reconnect_max.as_millis(),
                    self.reconnect_initial.as_millis()
                ),
            ));
        }
        Ok(())
    }
}

impl QueueConfig {
    /// Checks the queue as `queue[index]`.
    fn check(&self, index: usize) -> Result<(), Invalid> {
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
                body,
                per,
                headers,
                timeout_ms,
            } => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(invalid(
                        field("url"),
                        format!("{url:?} must start with http:// or https://"),
                    ));
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

/// MQ's rule for a queue name: 1 to 48 characters of `A-Z a-z 0-9 . / _ %`.
fn check_queue_name(field: &str, name: &str) -> Result<(), Invalid> {
    if name.is_empty() || name.len() > Q_NAME_LENGTH {
        return Err(invalid(
            field,
            format!(
                "queue name {name:?} is {} characters long (1 to {Q_NAME_LENGTH})",
                name.len()
            ),
        ));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '/' | '_' | '%');
    match name.chars().find(|&c| !allowed(c)) {
        Some(bad) => Err(invalid(
            field,
            format!("queue name {name:?} contains {bad:?} (MQ names use only A-Z a-z 0-9 . / _ %)"),
        )),
        None => Ok(()),
    }
}

/// Runs the connection builder's checks on one setting, keeping only its message.
fn check_setting(field: &str, builder: ConnectOptionsBuilder) -> Result<(), Invalid> {
    match builder.build() {
        Ok(_) => Ok(()),
        Err(Error::Options { message, .. }) => Err(invalid(field, message)),
        Err(other) => Err(invalid(field, other.to_string())),
    }
}

/// A TOML error as [`toml_error`] places it, named by dotted key: the key on the error's
/// line (`queue[1].batch`), or, where serde reports the error at a table's header (as it does
/// inside `[queue.sink]`), that table and the key the message names (`queue[1].sink.url`),
/// placed on the key's own line when it is written.
fn parse_error(e: &toml::de::Error, text: &str, indexed: &str, origin: &Path) -> Error {
    let mut error = toml_error(e, text, origin);
    let Error::Config {
        line,
        column,
        field,
        message,
        ..
    } = &mut error
    else {
        return error;
    };
    let Some(start) = line_start(indexed, *line) else {
        return error;
    };
    if indexed[start..].trim_start().starts_with('[') {
        let named = ["missing field `", "unknown field `"]
            .iter()
            .find_map(|prefix| message.strip_prefix(prefix))
            .and_then(|rest| rest.split('`').next());
        if let Some(table) = table_opened_at(indexed, start) {
            *field = named.map_or_else(|| table.clone(), |key| format!("{table}.{key}"));
        }
        if let (Some(_), (found_line @ 1.., found_column)) = (named, locate(indexed, field)) {
            (*line, *column) = (found_line, found_column);
        }
    } else if let Some(key) = key_at(indexed, start) {
        *field = key;
    }
    if field == "connection.password" {
        message.push_str("; the file never holds a password: set password_file, or MQ_PASSWORD_FILE");
    }
    error
}

/// The dotted name of the table whose header line starts at byte `start`, as [`key_at`]
/// names tables: asks it for a key placed on the line after the header.
fn table_opened_at(indexed: &str, start: usize) -> Option<String> {
    let end = indexed[start..].find('\n').map_or(indexed.len(), |i| start + i);
    let probe = format!("{}\n_ = 0", &indexed[..end]);
    key_at(&probe, probe.len() - 1)?.strip_suffix("._").map(str::to_owned)
}

/// Byte offset where 1-based `line` starts.
fn line_start(text: &str, line: usize) -> Option<usize> {
    match line {
        0 => None,
        1 => Some(0),
        n => text.match_indices('\n').nth(n - 2).map(|(i, _)| i + 1),
    }
}

/// `text` with each sub-table of an array of tables indexed the way `locate` and `key_at`
/// index the array's entries: `[queue.sink]` under the second `[[queue]]` becomes
/// `[queue[1].sink]`. Only header lines change, so lines and key columns stay the same.
fn index_subtables(text: &str) -> String {
    let mut arrays: HashMap<String, usize> = HashMap::new();
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        let array = trimmed.strip_prefix("[[").and_then(|r| r.strip_suffix("]]"));
        let table = trimmed.strip_prefix('[').and_then(|r| r.strip_suffix(']'));
        let Some(name) = array.or(table).map(str::trim) else {
            out.push_str(line);
            continue;
        };
        let parent = arrays
            .iter()
            .filter(|(parent, _)| {
                name.strip_prefix(parent.as_str())
                    .is_some_and(|rest| rest.starts_with('.'))
            })
            .max_by_key(|(parent, _)| parent.len());
        match parent {
            Some((parent, count)) => {
                let indexed = format!("{parent}[{}]{}", count - 1, &name[parent.len()..]);
                out.push_str(&line.replacen(name, &indexed, 1));
            }
            None => out.push_str(line),
        }
        if array.is_some() {
            *arrays.entry(name.to_owned()).or_insert(0) += 1;
        }
    }
    out
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    connection: RawConnection,
    #[serde(default)]
    pool: RawPool,
    #[serde(default, rename = "queue")]
    queues: Vec<RawQueue>,
}

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
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum RawReconnect {
    #[default]
    Default,
    Disabled,
    QueueManager,
    Any,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cipher_spec: String,
    key_repository: Option<PathBuf>,
}

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
    /// Fills the defaults; only the `server` text can be wrong at this stage.
    fn into_config(self) -> Result<WorkerConfig, Invalid> {
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
            ccdt_url: c.ccdt_url,
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
            }),
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
        })
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

    fn error_of(text: &str) -> String {
        WorkerConfig::from_toml(text, Path::new("w.toml"))
            .unwrap_err()
            .to_string()
    }

    fn assert_error_starts(text: &str, prefix: &str) {
        let error = error_of(text);
        assert!(error.starts_with(prefix), "expected {prefix:?}, got {error:?}");
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    /// A password file under the temp dir, removed when dropped.
    struct PasswordFile(PathBuf);

    impl PasswordFile {
        fn new(name: &str, password: &str) -> Self {
            let path = std::env::temp_dir().join(format!("mqpilot-worker-config-{}-{name}", std::process::id()));
            std::fs::write(&path, format!("{password}\n")).expect("write temp file");
            Self(path)
        }
    }

    impl Drop for PasswordFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

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
        assert_eq!(config.without_syncpoint().count(), 0);
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
    fn batch_zero_is_out_of_range() {
        let text = "[[queue]]\nname = \"A\"\n\n[[queue]]\nname = \"B\"\nbatch = 0\n";
        assert_error_starts(text, "w.toml:6:1: queue[1].batch: is 0, must be 1 to 10000");
    }

    #[test]
    fn a_default_that_breaks_a_rule_points_at_the_table_header() {
        let text = "[[queue]]\nname = \"A\"\n\n[pool]\nreconnect_initial_ms = 60000\n";
        assert_error_starts(text, "w.toml:4:1: pool.reconnect_max_ms: is 30000 ms, less than");
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
    fn a_duplicate_queue_is_rejected() {
        let text = "[[queue]]\nname = \"A\"\n[[queue]]\nname = \"A\"\n";
        assert_error_starts(text, "w.toml:4:1: queue[1].name: duplicate queue A (also queue[0])");
    }

    #[test]
    fn a_bad_queue_name_is_rejected() {
        assert_error_starts(
            "[[queue]]\nname = \"ORDERS-IN\"\n",
            "w.toml:2:1: queue[0].name: queue name \"ORDERS-IN\" contains '-'",
        );
        let text = "[[queue]]\nname = \"A\"\nbackout_queue = \"A\"\n";
        assert_error_starts(text, "w.toml:3:1: queue[0].backout_queue: is the queue itself");
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
        let flagged: Vec<&str> = config.without_syncpoint().map(|q| q.name.as_str()).collect();
        assert_eq!(flagged, ["A"]);
        let text =
            "[[queue]]\nname = \"A\"\nreceive = \"no-syncpoint\"\n[queue.sink]\ntype = \"queue\"\nqueue = \"B\"\n";
        assert_error_starts(
            text,
            "w.toml:3:1: queue[0].receive: a queue sink puts inside the unit of work",
        );
    }

    #[test]
    fn at_least_one_queue_is_required() {
        assert_error_starts(
            "[pool]\nconnections = 1\n",
            "w.toml:0:0: queue: at least one [[queue]] is required",
        );
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
            "w.toml:5:1: queue[0].sink.url: \"ftp://x\" must start with http:// or https://",
        );
    }

    #[test]
    fn an_empty_exec_command_is_rejected() {
        let text = "[[queue]]\nname = \"A\"\n[queue.sink]\ntype = \"exec\"\ncommand = []\n";
        assert_error_starts(text, "w.toml:5:1: queue[0].sink.command: is empty");
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
    fn a_bad_server_names_the_connection_field() {
        let text = "[connection]\nserver = \"APP/UDP/host\"\n[[queue]]\nname = \"A\"\n";
        assert_error_starts(
            text,
            "w.toml:2:1: connection.server: transport \"UDP\" is not supported",
        );
        let text = "[connection]\nserver = \"APP/TCP/host\"\nccdt_url = \"file:///c.json\"\n[[queue]]\nname = \"A\"\n";
        assert_error_starts(text, "w.toml:3:1: connection.ccdt_url: server is set as well");
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
        assert_eq!(error, "command line:0:0: queue[1].workers: is 65, must be 1 to 64");
        let none = WorkerConfig::from_queues(Vec::new())
            .validate("command line")
            .unwrap_err();
        assert!(none.to_string().starts_with("command line:0:0: queue: "), "{none}");
    }

    #[test]
    fn flags_win_over_the_file_which_wins_over_the_environment() {
        let file_password = PasswordFile::new("file", "file-pw");
        let flag_password = PasswordFile::new("flag", "flag-pw");
        let text = format!(
            "[connection]\nqueue_manager = \"FILEQM\"\nserver = \"FILE.SVRCONN/TCP/filehost\"\nuser = \"fileuser\"\n\
             password_file = {:?}\n[[queue]]\nname = \"A\"\n",
            file_password.0
        );
        let config = WorkerConfig::from_toml(&text, Path::new("w.toml")).unwrap();
        let vars = env(&[("MQSERVER", "ENV.SVRCONN/TCP/envhost"), ("MQ_PASSWORD", "env-pw")]);
        let password = |options: &ConnectOptions| options.password().map(|p| p.expose().to_owned());

        let from_file = config
            .connection
            .connect_options(&vars, &ConnectionOverrides::default())
            .unwrap();
        assert_eq!(from_file.channel().map(|c| c.name.as_str()), Some("FILE.SVRCONN"));
        assert_eq!(
            (from_file.queue_manager(), from_file.user()),
            (Some("FILEQM"), Some("fileuser"))
        );
        assert_eq!(password(&from_file).as_deref(), Some("file-pw"));
        assert_eq!(from_file.application_name(), Some(DEFAULT_APPLICATION_NAME));

        let flags = ConnectionOverrides {
            queue_manager: Some("FLAGQM".to_owned()),
            server: Some("FLAG.SVRCONN/TCP/flaghost".to_owned()),
            user: Some("flaguser".to_owned()),
            password_file: Some(flag_password.0.clone()),
            application_name: Some("flag-app".to_owned()),
            ..ConnectionOverrides::default()
        };
        let from_flags = config.connection.connect_options(&vars, &flags).unwrap();
        assert_eq!(from_flags.channel().map(|c| c.name.as_str()), Some("FLAG.SVRCONN"));
        assert_eq!(
            (from_flags.queue_manager(), from_flags.user()),
            (Some("FLAGQM"), Some("flaguser"))
        );
        assert_eq!(password(&from_flags).as_deref(), Some("flag-pw"));
        assert_eq!(from_flags.application_name(), Some("flag-app"));

        let ccdt = ConnectionOverrides {
            ccdt_url: Some("file:///ccdt.json".to_owned()),
            ..ConnectionOverrides::default()
        };
        let from_ccdt = config.connection.connect_options(&vars, &ccdt).unwrap();
        assert!(from_ccdt.channel().is_none());
        assert_eq!(from_ccdt.ccdt_url(), Some("file:///ccdt.json"));

        let user_only = ConnectionOverrides {
            user: Some("flaguser".to_owned()),
            ..ConnectionOverrides::default()
        };
        let from_env = ConnectionSettings::default()
            .connect_options(&vars, &user_only)
            .unwrap();
        assert_eq!(from_env.channel().map(|c| c.name.as_str()), Some("ENV.SVRCONN"));
        assert_eq!(password(&from_env).as_deref(), Some("env-pw"));
    }

    #[test]
    fn tls_flags_override_the_file_field_by_field() {
        let text = "[connection]\nserver = \"APP.SVRCONN/TCP/host\"\n[connection.tls]\ncipher_spec = \"ANY_TLS13\"\n\
                    [[queue]]\nname = \"A\"\n";
        let config = WorkerConfig::from_toml(text, Path::new("w.toml")).unwrap();
        let flags = ConnectionOverrides {
            key_repository: Some(PathBuf::from("/flag/key")),
            ..ConnectionOverrides::default()
        };
        let options = config.connection.connect_options(env(&[]), &flags).unwrap();
        let tls = options.tls().unwrap();
        assert_eq!(tls.cipher_spec, "ANY_TLS13");
        assert_eq!(tls.key_repository.as_deref(), Some(Path::new("/flag/key")));
        let error = ConnectionSettings::default()
            .connect_options(env(&[]), &flags)
            .unwrap_err();
        assert!(
            error.to_string().starts_with("--key-repository: needs a cipher spec"),
            "{error}"
        );
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
