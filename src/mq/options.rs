//! Connection settings: where they come from, how they are checked, and MQCONNX.
//!
//! Settings flow one way: the environment ([`ConnectOptions::from_env`]), then explicit
//! setters (which win), then [`ConnectOptionsBuilder::build`], which checks every value
//! against MQ's limits and returns [`ConnectOptions`]. A built `ConnectOptions` always
//! converts into `mqi` connect options. Passwords come from the environment or a file, never
//! from argv, and are wrapped in [`Secret`] so no `Debug`, `Display` or log line shows them.
//! The client channel (`MQSERVER`) is parsed in [`super::channel`] and re-exported here;
//! the MQ name and length checks (used by the channel and the worker configuration too) stay
//! here.

use std::fmt;
use std::path::{Path, PathBuf};

use mqi::connection::{Binding, Ccdt, ConnectOption, Credentials, MqServer, ThreadNoBlock};
use mqi::types::{ApplName, CertificateLabel, CipherSpec, KeyRepo, MQCNO, QueueManagerName};

pub use super::channel::{ClientChannel, DEFAULT_PORT, Transport, parse_mqserver};
use crate::error::Error;
use crate::mq::reason::Reason;
use crate::mq::session::MAX_MESSAGE_BYTES;

/// The characters MQ allows in object names, quoted in error messages.
const NAME_CHARS: &str = "A-Z a-z 0-9 . / _ %";

/// A password or other secret. `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`. Take it from the environment or a file, never from argv.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for handing to MQ and nothing else.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// TLS settings for a client channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// The channel's cipher spec (SSLCIPH), e.g. `ANY_TLS13_OR_HIGHER`; at most 32 characters.
    pub cipher_spec: String,
    /// The key repository stem, without extension (e.g. `/var/mqm/ssl/key` for `key.kdb`);
    /// one given with `.kdb` has it stripped when built. `None` leaves it to `MQSSLKEYR` or
    /// mqclient.ini.
    pub key_repository: Option<PathBuf>,
    /// The label of this client's certificate in the key repository (at most 64
    /// characters). `None` leaves it to mqclient.ini's `CertificateLabel` or the client's
    /// default (`ibmwebspheremq` and the user id).
    pub cert_label: Option<String>,
}

impl Tls {
    /// A cipher spec alone, with no key repository or certificate label.
    #[must_use]
    pub fn cipher(cipher_spec: impl Into<String>) -> Self {
        Self {
            cipher_spec: cipher_spec.into(),
            key_repository: None,
            cert_label: None,
        }
    }
}

/// The stem of a key repository given as `key.kdb` (any case), as MQ expects it; `None` when
/// `path` has no `.kdb` extension. (MQ clients before 9.3 answer 2381 to the full name.)
#[must_use]
pub fn key_repository_stem(path: &Path) -> Option<PathBuf> {
    path.extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("kdb"))
        .then(|| path.with_extension(""))
}

/// Whether the MQ client reconnects by itself after a broken connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reconnect {
    /// As the client configuration says (`MQCNO_RECONNECT_AS_DEF`, mqclient.ini `DefRecon`).
    #[default]
    Default,
    /// Never (`MQCNO_RECONNECT_DISABLED`).
    Disabled,
    /// Only to the same queue manager (`MQCNO_RECONNECT_Q_MGR`).
    QueueManager,
    /// To any queue manager the channel definitions lead to (`MQCNO_RECONNECT`).
    Any,
}

impl Reconnect {
    fn mqcno(self) -> MQCNO {
        match self {
            Self::Default => mqi::constants::MQCNO_RECONNECT_AS_DEF,
            Self::Disabled => mqi::constants::MQCNO_RECONNECT_DISABLED,
            Self::QueueManager => mqi::constants::MQCNO_RECONNECT_Q_MGR,
            Self::Any => mqi::constants::MQCNO_RECONNECT,
        }
    }
}

/// Where a password comes from; files are read by [`ConnectOptionsBuilder::build`].
#[derive(Debug, Clone)]
enum PasswordSource {
    Value { secret: Secret, source_name: String },
    File { path: PathBuf, source_name: String },
}

impl PasswordSource {
    fn source_name(&self) -> &str {
        match self {
            Self::Value { source_name, .. } | Self::File { source_name, .. } => source_name,
        }
    }

    fn resolve(&self) -> Result<Secret, Error> {
        match self {
            Self::Value { secret, .. } => Ok(secret.clone()),
            Self::File { path, source_name } => read_password_file(path, source_name),
        }
    }
}

/// A CCDT URL. IBM allows credentials in it (`ftp://user:password@host/ccdt.json`), so its
/// `Debug` and [`redact_url`] never show them.
/// Every type that holds one (flags, the configuration file) uses it, so no `{:?}` shows them.
#[derive(Clone, PartialEq, Eq)]
pub struct CcdtUrl(String);

impl fmt::Debug for CcdtUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", redact_url(&self.0))
    }
}

impl std::ops::Deref for CcdtUrl {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for CcdtUrl {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

/// A URL with any `user:password@` replaced by `***@`, for logs and messages.
#[must_use]
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

/// Connection settings, checked against MQ's limits. Build one with
/// [`ConnectOptions::from_env`] or [`ConnectOptions::builder`].
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    queue_manager: Option<String>,
    channel: Option<ClientChannel>,
    ccdt_url: Option<CcdtUrl>,
    application_name: Option<String>,
    credentials: Option<(String, Secret)>,
    tls: Option<Tls>,
    reconnect: Reconnect,
    sharecnv: Option<u32>,
    /// What the library dials instead of the channel's host(port), for connect errors.
    dialled: Option<String>,
}

/// Collects connection settings; the last setting of a field wins.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptionsBuilder {
    queue_manager: Option<String>,
    channel: Option<ClientChannel>,
    ccdt_url: Option<CcdtUrl>,
    application_name: Option<String>,
    user: Option<String>,
    password: Option<PasswordSource>,
    tls: Option<Tls>,
    reconnect: Reconnect,
    sharecnv: Option<u32>,
}

/// Most conversations a channel instance may share (MQ's SHARECNV range is 0..=999999999).
pub const MAX_SHARECNV: u32 = 999_999_999;

/// The SharingConversations mqpilot sends for a channel it defines (`--conn`, MQSERVER)
/// when none is set: IBM's own default (MQCD_CLIENT_CONN_DEFAULT).
pub const DEFAULT_SHARECNV: u32 = 10;

/// The URL schemes the MQ client reads a CCDT from.
const CCDT_SCHEMES: [&str; 4] = ["file://", "http://", "https://", "ftp://"];

/// Checks that a CCDT URL has one of the schemes the MQ client reads (a bare path is not a
/// URL, and only fails in MQCONNX otherwise).
fn check_ccdt_url(url: &str) -> Result<(), String> {
    let url = url.trim();
    if url.is_empty() {
        return Err("is empty".to_owned());
    }
    let lower = url.to_ascii_lowercase();
    if CCDT_SCHEMES.iter().any(|scheme| lower.starts_with(scheme)) {
        return Ok(());
    }
    let hint = if url.starts_with('/') {
        format!(" (for a file: file://{url})")
    } else {
        String::new()
    };
    Err(format!(
        "{:?} is not a URL the MQ client reads: give file://, http://, https:// or ftp://{hint}",
        redact_url(url)
    ))
}

impl ConnectOptions {
    /// A builder with nothing set.
    #[must_use]
    pub fn builder() -> ConnectOptionsBuilder {
        ConnectOptionsBuilder::default()
    }

    /// A builder filled from the environment, read through `env` (pass
    /// `|name| std::env::var(name).ok()` in production). Empty variables count as unset.
    ///
    /// - `MQSERVER`: the client channel, `CHANNEL/TCP/HOST(PORT)`.
    /// - `MQCCDTURL`: a client channel definition table, used only when `MQSERVER` is unset
    ///   (the MQ client gives `MQSERVER` the same precedence).
    /// - `MQ_PASSWORD` or `MQ_PASSWORD_FILE` (not both): the password; the file is read by
    ///   [`ConnectOptionsBuilder::build`], trailing newline removed.
    ///
    /// # Errors
    /// [`Error::Options`] naming the variable when `MQSERVER` is malformed or both password
    /// variables are set.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<ConnectOptionsBuilder, Error> {
        let var = |name: &str| env(name).filter(|value| !value.trim().is_empty());
        let mut builder = ConnectOptionsBuilder::default();
        if let Some(server) = var("MQSERVER") {
            builder.channel = Some(parse_mqserver(&server, "MQSERVER")?);
        } else if let Some(url) = var("MQCCDTURL") {
            check_ccdt_url(&url).map_err(|message| options_error("MQCCDTURL", message))?;
            builder.ccdt_url = Some(CcdtUrl(url.trim().to_owned()));
        }
        builder.password = match (var("MQ_PASSWORD"), var("MQ_PASSWORD_FILE")) {
            (Some(_), Some(_)) => {
                return Err(options_error(
                    "MQ_PASSWORD_FILE",
                    "MQ_PASSWORD is set as well: set only one of them",
                ));
            }
            (Some(password), None) => Some(PasswordSource::Value {
                secret: Secret(password),
                source_name: "MQ_PASSWORD".to_owned(),
            }),
            (None, Some(path)) => Some(PasswordSource::File {
                path: PathBuf::from(path.trim()),
                source_name: "MQ_PASSWORD_FILE".to_owned(),
            }),
            (None, None) => None,
        };
        Ok(builder)
    }

    /// The queue manager name; `None` means the client's default queue manager.
    #[must_use]
    pub fn queue_manager(&self) -> Option<&str> {
        self.queue_manager.as_deref()
    }

    /// The explicit client channel, if any.
    #[must_use]
    pub fn channel(&self) -> Option<&ClientChannel> {
        self.channel.as_ref()
    }

    /// The client channel definition table URL, if any.
    #[must_use]
    pub fn ccdt_url(&self) -> Option<&str> {
        self.ccdt_url.as_ref().map(|u| u.0.as_str())
    }

    /// The application name MQ shows in DISPLAY CONN, if set.
    #[must_use]
    pub fn application_name(&self) -> Option<&str> {
        self.application_name.as_deref()
    }

    /// The user whose credentials are sent, if any.
    #[must_use]
    pub fn user(&self) -> Option<&str> {
        self.credentials.as_ref().map(|(user, _)| user.as_str())
    }

    /// The password sent with [`user`](Self::user), if any.
    #[must_use]
    pub fn password(&self) -> Option<&Secret> {
        self.credentials.as_ref().map(|(_, password)| password)
    }

    /// The TLS settings, if any.
    #[must_use]
    pub fn tls(&self) -> Option<&Tls> {
        self.tls.as_ref()
    }

    /// The reconnect behaviour.
    #[must_use]
    pub fn reconnect(&self) -> Reconnect {
        self.reconnect
    }

    /// These options for a library that dials `address` rather than the channel's host(port)
    /// (a `mqpilot fake-qm` server): connect errors name `address`, e.g. `the mqpilot fake-qm
    /// server at 127.0.0.1:1414 (--fake-qm)`. Default: none, errors name the channel's
    /// host(port) or the CCDT.
    #[must_use]
    pub fn dialling(mut self, address: impl Into<String>) -> Self {
        self.dialled = Some(address.into());
        self
    }

    /// What MQCONNX connects to, for messages: the queue manager or "default queue manager".
    #[must_use]
    pub fn target(&self) -> &str {
        self.queue_manager().unwrap_or("default queue manager")
    }

    /// Connects through `lib` (IBM's library or the fake) with MQCONNX. A warning is logged
    /// and otherwise ignored.
    ///
    /// # Errors
    /// [`Error::Mq`] with verb `MQCONNX` when the queue manager refuses; for 2035, 2059, 2537,
    /// 2538 and 2540 the detail says which route was tried and what to do.
    pub fn connect<L>(&self, lib: L) -> Result<mqi::Connection<L, ThreadNoBlock>, Error>
    where
        L: mqi::Library<MQ: libmqm_sys::Mqi>,
    {
        let parts = MqiParts::new(self)?;
        let options = parts.connect_options(self)?;
        tracing::debug!(options = ?self, "connecting");
        match mqi::connect_lib::<ThreadNoBlock, L>(lib, &options) {
            Ok(mqi::result::Completion(connection, warning)) => {
                if let Some((rc, verb)) = warning {
                    let reason = Reason::from(rc);
                    tracing::warn!(verb, %reason, queue_manager = self.target(), "connected with a warning");
                }
                Ok(connection)
            }
            Err(error) => {
                let reason = Reason::from(&error);
                Err(Error::Mq {
                    verb: "MQCONNX",
                    object: self.target().to_owned(),
                    reason,
                    detail: self.failure_detail(reason),
                })
            }
        }
    }

    /// The route that was tried and the advice, for the connect failures people hit most.
    fn failure_detail(&self, reason: Reason) -> Option<String> {
        let advice = match reason {
            Reason::NOT_AUTHORIZED
            | Reason::Q_MGR_NAME_ERROR
            | Reason::Q_MGR_NOT_AVAILABLE
            | Reason::KEY_REPOSITORY_ERROR
            | Reason::SSL_INITIALIZATION_ERROR
            | Reason::JSSE_ERROR
            | Reason::CHANNEL_NOT_AVAILABLE
            | Reason::HOST_NOT_AVAILABLE
            | Reason::UNKNOWN_CHANNEL_NAME => reason.info()?.advice,
            _ => return None,
        };
        if let Some(address) = &self.dialled {
            let route = match &self.channel {
                Some(channel) => format!("channel {} to {address}", channel.name),
                None => address.clone(),
            };
            let advice = match reason {
                Reason::HOST_NOT_AVAILABLE => "nothing answers there: check the address and that the server runs",
                Reason::UNKNOWN_CHANNEL_NAME => {
                    "check the channel name (case matters) in --conn against the fake's channels: the \
                     [[channel]] names of its --config or --fake-config file, or the demo's DEV.APP.SVRCONN"
                }
                _ => advice,
            };
            return Some(format!("{route}: {advice}"));
        }
        let route = match (&self.channel, &self.ccdt_url) {
            (Some(channel), _) => format!("channel {} to {}", channel.name, channel.conn_name),
            (None, Some(url)) => format!("channel from CCDT {}", redact_url(&url.0)),
            (None, None) => "no channel given (--conn, MQSERVER, --ccdt-url or MQCCDTURL), so the MQ \
                             client's channel table from MQCHLLIB/MQCHLTAB or mqclient.ini"
                .to_owned(),
        };
        let user = match (reason, self.user()) {
            (Reason::NOT_AUTHORIZED, Some(user)) => format!(" as user {user}"),
            _ => String::new(),
        };
        let tls = match (reason, &self.tls) {
            (Reason::KEY_REPOSITORY_ERROR | Reason::SSL_INITIALIZATION_ERROR | Reason::JSSE_ERROR, Some(tls)) => {
                let repository = tls.key_repository.as_ref().map_or_else(
                    || "from MQSSLKEYR or mqclient.ini".to_owned(),
                    |path| path.display().to_string(),
                );
                let label = tls.cert_label.as_deref().unwrap_or("the client's default");
                format!(
                    " with cipher spec {}, key repository {repository}, certificate label {label}",
                    tls.cipher_spec
                )
            }
            _ => String::new(),
        };
        Some(format!("{route}{user}{tls}: {advice}"))
    }
}

impl ConnectOptionsBuilder {
    /// The queue manager to connect to (at most 48 characters; a leading `*` lets a CCDT pick
    /// any queue manager in a group). Default: none, the client's default queue manager.
    #[must_use]
    pub fn with_queue_manager(mut self, name: impl Into<String>) -> Self {
        self.queue_manager = Some(name.into());
        self
    }

    /// The client channel (see [`parse_mqserver`]); replaces any CCDT URL.
    /// Default: `MQSERVER` when read by [`ConnectOptions::from_env`], else none.
    #[must_use]
    pub fn with_channel(mut self, channel: ClientChannel) -> Self {
        self.channel = Some(channel);
        self.ccdt_url = None;
        self
    }

    /// A client channel definition table URL (`file:///...`, `https://...`); replaces any
    /// channel. Default: `MQCCDTURL` when `MQSERVER` is unset, else none.
    #[must_use]
    pub fn with_ccdt_url(mut self, url: impl Into<String>) -> Self {
        self.ccdt_url = Some(CcdtUrl(url.into()));
        self.channel = None;
        self
    }

    /// The application name shown in DISPLAY CONN (at most 28 characters).
    /// Default: none, MQ uses the program's name.
    #[must_use]
    pub fn with_application_name(mut self, name: impl Into<String>) -> Self {
        self.application_name = Some(name.into());
        self
    }

    /// The user to authenticate as; needs a password too. Default: none, no credentials
    /// are sent and the channel's rules decide the identity.
    #[must_use]
    pub fn with_user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// The password for [`with_user`](Self::with_user). Never wire this to a command-line
    /// argument. Default: `MQ_PASSWORD` or `MQ_PASSWORD_FILE` when read by
    /// [`ConnectOptions::from_env`], else none.
    #[must_use]
    pub fn with_password(mut self, password: Secret) -> Self {
        self.password = Some(PasswordSource::Value {
            secret: password,
            source_name: "password".to_owned(),
        });
        self
    }

    /// Reads the password from `path` when [`build`](Self::build) runs, dropping a trailing
    /// newline. Default: as [`with_password`](Self::with_password).
    #[must_use]
    pub fn with_password_file(self, path: impl Into<PathBuf>) -> Self {
        self.with_password_file_from(path, "password file")
    }

    /// As [`with_password_file`](Self::with_password_file), with `setting` (a flag, a
    /// variable, a file's key) naming the file in errors.
    #[must_use]
    pub fn with_password_file_from(mut self, path: impl Into<PathBuf>, setting: impl Into<String>) -> Self {
        self.password = Some(PasswordSource::File {
            path: path.into(),
            source_name: setting.into(),
        });
        self
    }

    /// The client channel's SharingConversations (SHARECNV in the MQCD): how many connections
    /// of this process may share one channel instance; 0 = none, one instance per
    /// connection. The lower of this and the server channel's SHARECNV applies. Needs an
    /// explicit channel. Default: [`DEFAULT_SHARECNV`] (10, IBM's), sent in the MQCD of every
    /// explicit channel.
    #[must_use]
    pub fn with_sharecnv(mut self, sharecnv: u32) -> Self {
        self.sharecnv = Some(sharecnv);
        self
    }

    /// TLS for the client channel; needs an explicit channel. A key repository given with
    /// `.kdb` is used by its stem (see [`key_repository_stem`]). Default: none, plain TCP.
    #[must_use]
    pub fn with_tls(mut self, tls: Tls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Whether the MQ client reconnects by itself. Default: [`Reconnect::Default`], as the
    /// client configuration says.
    #[must_use]
    pub fn with_reconnect(mut self, reconnect: Reconnect) -> Self {
        self.reconnect = reconnect;
        self
    }

    /// Checks every setting and reads the password file.
    ///
    /// # Errors
    /// [`Error::Options`] naming the setting that breaks an MQ limit, a password without a
    /// user (or a user without a password), or TLS without a channel; [`Error::Io`] when
    /// the password file cannot be read.
    pub fn build(self) -> Result<ConnectOptions, Error> {
        self.check_fields()?;
        let credentials = self.credentials()?;
        let tls = self.tls.map(|mut tls| {
            if let Some(stem) = tls.key_repository.as_deref().and_then(key_repository_stem) {
                tracing::info!(
                    given = %tls.key_repository.as_deref().unwrap_or(&stem).display(),
                    using = %stem.display(),
                    "the key repository is named by its stem, without .kdb (clients before 9.3 answer 2381 to the full name)"
                );
                tls.key_repository = Some(stem);
            }
            tls
        });
        let options = ConnectOptions {
            queue_manager: self.queue_manager,
            channel: self.channel,
            ccdt_url: self.ccdt_url,
            application_name: self.application_name,
            credentials,
            tls,
            reconnect: self.reconnect,
            sharecnv: self.sharecnv,
            dialled: None,
        };
        // Converting once here means `connect` cannot fail to convert later.
        MqiParts::new(&options)?;
        Ok(options)
    }

    /// Each setting on its own against MQ's limits.
    fn check_fields(&self) -> Result<(), Error> {
        if let Some(name) = &self.queue_manager {
            let object_name = name.strip_prefix('*').unwrap_or(name);
            check_name(object_name, libmqm_sys::MQ_Q_MGR_NAME_LENGTH, "queue manager name")
                .map_err(|message| options_error("queue manager", message))?;
        }
        if let Some(channel) = &self.channel {
            parse_mqserver(&channel.to_string(), "channel")?;
        }
        if let Some(url) = &self.ccdt_url {
            check_ccdt_url(&url.0).map_err(|message| options_error("CCDT URL", message))?;
        }
        if let Some(name) = &self.application_name {
            check_appl_name(name).map_err(|message| options_error("application name", message))?;
        }
        if let Some(n) = self.sharecnv {
            if self.channel.is_none() {
                return Err(options_error(
                    "SHARECNV",
                    "a client SHARECNV needs an explicit channel (--conn, connection.server or MQSERVER); \
                     with a CCDT the channel definition sets it",
                ));
            }
            if n > MAX_SHARECNV {
                return Err(options_error("SHARECNV", format!("{n} is above {MAX_SHARECNV}")));
            }
        }
        match &self.tls {
            Some(tls) => check_tls(tls, self.channel.is_some()),
            None => Ok(()),
        }
    }

    /// User and password, both or neither.
    fn credentials(&self) -> Result<Option<(String, Secret)>, Error> {
        match (&self.user, &self.password) {
            (None, None) => Ok(None),
            (Some(user), _) if user.trim().is_empty() => Err(options_error("user", "is empty")),
            (Some(user), Some(password)) => Ok(Some((user.clone(), password.resolve()?))),
            (None, Some(password)) => Err(options_error(
                password.source_name(),
                "a password is set but no user: set the user as well, or drop the password",
            )),
            (Some(user), None) => Err(options_error(
                "user",
                format!(
                    "user {user:?} is set but no password: give a password file (--password-file, or \
                     connection.password_file in the worker config) or set MQ_PASSWORD or MQ_PASSWORD_FILE"
                ),
            )),
        }
    }
}

/// An MQ object name: not empty, at most `max` characters from [`NAME_CHARS`].
pub(crate) fn check_name(name: &str, max: usize, what: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("{what} is empty"));
    }
    check_length(name, max, what)?;
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '/' | '_' | '%');
    match name.chars().find(|&c| !allowed(c)) {
        Some(bad) => Err(format!(
            "{what} {name:?} contains {bad:?} (MQ names use only {NAME_CHARS})"
        )),
        None => Ok(()),
    }
}

/// At most `max` bytes, the unit of MQ's fixed-width fields.
/// An application name as MQCONNX carries it (DISPLAY CONN's APPLTAG): at most
/// MQ_APPL_NAME_LENGTH (28) bytes.
///
/// # Errors
/// The message saying how long it is.
pub fn check_appl_name(name: &str) -> Result<(), String> {
    check_length(name, libmqm_sys::MQ_APPL_NAME_LENGTH, "application name")
}

pub(super) fn check_length(value: &str, max: usize, what: &str) -> Result<(), String> {
    if value.len() > max {
        return Err(format!(
            "{what} {value:?} is {} characters long (at most {max})",
            value.len()
        ));
    }
    Ok(())
}

fn check_tls(tls: &Tls, has_channel: bool) -> Result<(), Error> {
    let fail = |message: String| options_error("TLS", message);
    if !has_channel {
        return Err(fail(
            "a cipher spec needs an explicit channel (--conn, connection.server or MQSERVER); with \
             a CCDT the channel definition's SSLCIPH applies and MQSSLKEYR names the key repository"
                .to_owned(),
        ));
    }
    if tls.cipher_spec.trim().is_empty() {
        return Err(fail("cipher spec is empty".to_owned()));
    }
    let cipher_spec_max = libmqm_sys::MQ_SSL_CIPHER_SPEC_LENGTH;
    check_length(&tls.cipher_spec, cipher_spec_max, "cipher spec").map_err(fail)?;
    if let Some(path) = &tls.key_repository {
        let text = path
            .to_str()
            .ok_or_else(|| fail(format!("key repository {} is not UTF-8", path.display())))?;
        let repository_max = libmqm_sys::MQ_SSL_KEY_REPOSITORY_LENGTH;
        check_length(text, repository_max, "key repository").map_err(fail)?;
    }
    if let Some(label) = &tls.cert_label {
        if label.trim().is_empty() {
            return Err(fail("certificate label is empty".to_owned()));
        }
        check_length(label, libmqm_sys::MQ_CERT_LABEL_LENGTH, "certificate label").map_err(fail)?;
    }
    Ok(())
}

fn read_password_file(path: &Path, source_name: &str) -> Result<Secret, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::SettingFile {
        setting: source_name.to_owned(),
        path: path.to_owned(),
        source,
    })?;
    let password = text.strip_suffix('\n').unwrap_or(&text);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        return Err(options_error(source_name, format!("{} is empty", path.display())));
    }
    Ok(Secret::new(password))
}

pub(super) fn options_error(source_name: &str, message: impl Into<String>) -> Error {
    Error::Options {
        source_name: source_name.to_owned(),
        message: message.into(),
    }
}

/// The settings in `mqi`'s fixed-width types, converted (and so checked) in one place.
struct MqiParts {
    queue_manager: Option<QueueManagerName>,
    application_name: Option<ApplName>,
    /// The channel in `MQSERVER` form, which `mqi::connection::MqServer` borrows.
    server: Option<String>,
    cipher_spec: Option<CipherSpec>,
    key_repository: Option<KeyRepo>,
    cert_label: Option<CertificateLabel>,
}

impl MqiParts {
    fn new(options: &ConnectOptions) -> Result<Self, Error> {
        let tls = options.tls.as_ref();
        let key_repository = tls
            .and_then(|tls| tls.key_repository.as_deref())
            .map(|path| mq_str(&path.to_string_lossy(), "TLS"))
            .transpose()?;
        let cert_label = tls
            .and_then(|tls| tls.cert_label.as_deref())
            .map(|label| mq_str(label, "TLS"))
            .transpose()?;
        Ok(Self {
            queue_manager: options
                .queue_manager
                .as_deref()
                .map(|name| mq_str(name, "queue manager"))
                .transpose()?,
            application_name: options
                .application_name
                .as_deref()
                .map(|name| mq_str(name, "application name"))
                .transpose()?,
            server: options.channel.as_ref().map(ClientChannel::to_string),
            cipher_spec: tls.map(|tls| mq_str(&tls.cipher_spec, "TLS")).transpose()?,
            key_repository,
            cert_label,
        })
    }

    /// The tuple `mqi::connect_lib` takes. The leftmost option wins where two set one field;
    /// `build` makes sure none do.
    fn connect_options<'a>(&'a self, options: &'a ConnectOptions) -> Result<impl ConnectOption<'a> + 'a, Error> {
        let server = self
            .server
            .as_deref()
            .map(|server| {
                MqServer::try_from(server).map_err(|error| options_error("channel", format!("{error} in {server:?}")))
            })
            .transpose()?;
        let credentials = options
            .credentials
            .as_ref()
            .map(|(user, password)| Credentials::User(user.as_str(), password.expose().into()));
        // A key repository or a certificate label needs the MQSCO; a blank repository in it
        // leaves the repository to MQSSLKEYR or mqclient.ini.
        let tls = self.cipher_spec.as_ref().and_then(|cipher| {
            (self.key_repository.is_some() || self.cert_label.is_some()).then(|| {
                let repository = self.key_repository.unwrap_or_default();
                mqi::connection::Tls::new(&repository, self.cert_label.as_ref(), cipher)
            })
        });
        // Without the MQSCO only the cipher spec goes into the MQCD.
        let cipher_spec = if tls.is_none() { self.cipher_spec } else { None };
        Ok((
            self.queue_manager,
            self.application_name,
            server,
            options.ccdt_url.as_ref().map(|u| Ccdt(u.0.as_str())),
            credentials,
            tls,
            cipher_spec,
            (
                options.reconnect.mqcno(),
                // mqpilot is an MQ client: never local bindings, also when the channel comes
                // from the client's own configuration (MQCHLLIB/MQCHLTAB, mqclient.ini) on a
                // host with a queue manager installed.
                Binding::Client,
                // Sent with every channel mqpilot defines, so the documented default holds
                // whatever the MQCD's version would otherwise leave out.
                server
                    .as_ref()
                    .map(|_| SharingConversations(options.sharecnv.unwrap_or(DEFAULT_SHARECNV))),
                // A channel mqpilot defines itself allows what MQSERVER's does (100 MB); the
                // MQCD's default of 4 MB would cap every message on it, whatever the server
                // channel allows (the lower of the two applies).
                server.as_ref().map(|_| MaxMessageLength(MAX_MESSAGE_BYTES)),
            ),
        ))
    }
}

/// The client channel's MaxMsgLength, set in the MQCD mqpilot builds from a channel.
#[derive(Debug, Clone, Copy)]
struct MaxMessageLength(usize);

// SAFETY: only a number field of the MQCD changes; no pointer or offset is touched.
unsafe impl mqi::connection::ConnectOption<'_> for MaxMessageLength {
    fn apply_param(&self, structs: &mut mqi::connection::ConnectStructs<'_>) -> mqi::connection::ConnectStructFlags {
        structs.cd.MaxMsgLength = libmqm_sys::MQLONG::try_from(self.0).unwrap_or(libmqm_sys::MQLONG::MAX);
        mqi::connection::CONNECT_HAS_CD
    }
}

/// The client channel's SharingConversations, set in the MQCD that goes with MQCONNX.
#[derive(Debug, Clone, Copy)]
struct SharingConversations(u32);

// SAFETY: only a number field of the MQCD changes (and its version, so the field is read);
// no pointer or offset is touched.
unsafe impl mqi::connection::ConnectOption<'_> for SharingConversations {
    fn apply_param(&self, structs: &mut mqi::connection::ConnectStructs<'_>) -> mqi::connection::ConnectStructFlags {
        structs.cd.set_min_version(libmqm_sys::MQCD_VERSION_10);
        structs.cd.SharingConversations = libmqm_sys::MQLONG::try_from(self.0).unwrap_or(libmqm_sys::MQLONG::MAX);
        mqi::connection::CONNECT_HAS_CD
    }
}

/// Converts `value` into one of `mqi`'s fixed-width string types.
fn mq_str<T>(value: &str, source_name: &str) -> Result<T, Error>
where
    T: std::str::FromStr<Err = mqi::string::MqStrError>,
{
    value
        .parse()
        .map_err(|error| options_error(source_name, format!("{value:?}: {error}")))
}

#[cfg(test)]
mod redact_tests {
    use super::*;

    #[test]
    fn ccdt_credentials_never_show() {
        assert_eq!(redact_url("ftp://app:pw@host/ccdt.json"), "ftp://***@host/ccdt.json");
        assert_eq!(redact_url("file:///etc/ccdt.json"), "file:///etc/ccdt.json");
        let options = ConnectOptions::builder()
            .with_ccdt_url("ftp://app:s3cret@host/c.json")
            .build()
            .unwrap();
        assert!(!format!("{options:?}").contains("s3cret"));
        assert_eq!(options.ccdt_url(), Some("ftp://app:s3cret@host/c.json"));
    }
}

#[cfg(test)]
mod tests {
    use mqi::MqStr;
    use mqi::connection::ConnectStructs;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    /// The `Error::Options` message, or a panic naming what came back instead.
    fn options_message(result: Result<impl fmt::Debug, Error>) -> (String, String) {
        match result {
            Err(Error::Options { source_name, message }) => (source_name, message),
            other => panic!("expected Error::Options, got {other:?}"),
        }
    }

    /// A file under the temp dir that is removed when dropped.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(name: &str, contents: &str) -> Self {
            let path = std::env::temp_dir().join(format!("mqpilot-options-{}-{name}", std::process::id()));
            std::fs::write(&path, contents).expect("write temp file");
            Self(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn mq_text<const N: usize>(chars: &[libmqm_sys::MQCHAR]) -> String {
        MqStr::<N>::from_mqchar_slice(chars).expect("field width").to_string()
    }

    #[test]
    fn env_supplies_channel_and_password() {
        let vars = env(&[("MQSERVER", "APP.SVRCONN/TCP/host(1414)"), ("MQ_PASSWORD", "s3cret")]);
        let options = ConnectOptions::from_env(vars)
            .expect("env")
            .with_user("app")
            .build()
            .expect("valid");
        assert_eq!(options.channel().map(|c| c.name.as_str()), Some("APP.SVRCONN"));
        assert_eq!(options.user(), Some("app"));
        assert_eq!(options.password().map(Secret::expose), Some("s3cret"));
        assert_eq!(options.reconnect(), Reconnect::Default);
    }

    #[test]
    fn explicit_settings_win_over_env() {
        let vars = env(&[("MQSERVER", "ENV.SVRCONN/TCP/envhost"), ("MQ_PASSWORD", "from-env")]);
        let explicit = parse_mqserver("CLI.SVRCONN/TCP/clihost", "--server").expect("valid");
        let options = ConnectOptions::from_env(vars)
            .expect("env")
            .with_channel(explicit)
            .with_user("app")
            .with_password(Secret::new("explicit"))
            .build()
            .expect("valid");
        assert_eq!(options.channel().map(|c| c.name.as_str()), Some("CLI.SVRCONN"));
        assert_eq!(options.password().map(Secret::expose), Some("explicit"));
    }

    #[test]
    fn mqserver_wins_over_mqccdturl_and_explicit_ccdt_wins_over_both() {
        let vars = env(&[("MQSERVER", "APP.SVRCONN/TCP/host"), ("MQCCDTURL", "file:///ccdt.json")]);
        let from_env = ConnectOptions::from_env(&vars).expect("env").build().expect("valid");
        assert!(from_env.channel().is_some());
        assert_eq!(from_env.ccdt_url(), None);

        let explicit = ConnectOptions::from_env(&vars)
            .expect("env")
            .with_ccdt_url("file:///other.json");
        let explicit = explicit.build().expect("valid");
        assert_eq!(explicit.ccdt_url(), Some("file:///other.json"));
        assert!(explicit.channel().is_none());
    }

    #[test]
    fn empty_env_values_count_as_unset() {
        let vars = env(&[
            ("MQSERVER", " "),
            ("MQCCDTURL", "file:///ccdt.json"),
            ("MQ_PASSWORD", ""),
        ]);
        let options = ConnectOptions::from_env(vars).expect("env").build().expect("valid");
        assert_eq!(options.ccdt_url(), Some("file:///ccdt.json"));
        assert!(options.password().is_none());
    }

    #[test]
    fn bad_mqserver_in_env_names_the_variable() {
        let (source_name, message) = options_message(ConnectOptions::from_env(env(&[("MQSERVER", "A/TCP/h(x)")])));
        assert_eq!(source_name, "MQSERVER");
        assert!(message.contains("port \"x\" is not a number"), "{message}");
    }

    #[test]
    fn password_file_drops_the_trailing_newline_only() {
        for (name, contents, expected) in [
            ("lf", "pa ss\n", "pa ss"),
            ("crlf", "pa ss\r\n", "pa ss"),
            ("none", " pw", " pw"),
        ] {
            let file = TempFile::new(name, contents);
            let vars = env(&[("MQ_PASSWORD_FILE", file.0.to_str().expect("utf-8 temp dir"))]);
            let options = ConnectOptions::from_env(vars)
                .expect("env")
                .with_user("app")
                .build()
                .expect("valid");
            assert_eq!(options.password().map(Secret::expose), Some(expected), "{name}");
        }
    }

    #[test]
    fn unreadable_password_file_is_an_error_naming_it_and_its_setting() {
        let path = std::env::temp_dir().join("mqpilot-options-no-such-file");
        let result = ConnectOptions::builder()
            .with_user("app")
            .with_password_file_from(&path, "--password-file")
            .build();
        match result {
            Err(Error::SettingFile {
                setting, path: failed, ..
            }) => {
                assert_eq!((setting.as_str(), failed), ("--password-file", path));
            }
            other => panic!("expected Error::SettingFile, got {other:?}"),
        }
    }

    #[test]
    fn both_password_variables_are_an_error() {
        let vars = env(&[("MQ_PASSWORD", "a"), ("MQ_PASSWORD_FILE", "/tmp/pw")]);
        let (source_name, message) = options_message(ConnectOptions::from_env(vars));
        assert_eq!(source_name, "MQ_PASSWORD_FILE");
        assert!(message.contains("MQ_PASSWORD is set as well"), "{message}");
    }

    #[test]
    fn password_without_user_names_both() {
        let vars = env(&[("MQ_PASSWORD", "s3cret")]);
        let (source_name, message) = options_message(ConnectOptions::from_env(vars).expect("env").build());
        assert_eq!(source_name, "MQ_PASSWORD");
        assert!(message.contains("password") && message.contains("no user"), "{message}");
        assert!(!message.contains("s3cret"));
    }

    #[test]
    fn user_without_password_is_an_error() {
        let (source_name, message) = options_message(ConnectOptions::builder().with_user("app").build());
        assert_eq!(source_name, "user");
        assert!(message.contains("no password"), "{message}");
        assert!(
            message.contains("--password-file") && message.contains("connection.password_file"),
            "{message}"
        );
    }

    #[test]
    fn debug_never_shows_the_password() {
        let builder = ConnectOptions::builder()
            .with_user("app")
            .with_password(Secret::new("hunter2-secret"));
        assert!(!format!("{builder:?}").contains("hunter2"));
        let options = builder.build().expect("valid");
        let debug = format!("{options:?} {:#?}", options.password());
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("***"), "{debug}");
        assert_eq!(Secret::new("hunter2").to_string(), "***");
    }

    #[test]
    fn names_longer_than_mq_allows_are_rejected() {
        let qm = "Q".repeat(49);
        let (source_name, message) = options_message(ConnectOptions::builder().with_queue_manager(&qm).build());
        assert_eq!(source_name, "queue manager");
        assert!(message.contains("is 49 characters long (at most 48)"), "{message}");
        let app = "a".repeat(29);
        let (source_name, message) = options_message(ConnectOptions::builder().with_application_name(app).build());
        assert_eq!(source_name, "application name");
        assert!(message.contains("(at most 28)"), "{message}");
        assert!(ConnectOptions::builder().with_queue_manager("*QMGROUP").build().is_ok());
    }

    #[test]
    fn tls_needs_an_explicit_channel() {
        let tls = Tls::cipher("ANY_TLS13_OR_HIGHER");
        let (source_name, message) = options_message(ConnectOptions::builder().with_tls(tls).build());
        assert_eq!(source_name, "TLS");
        assert!(message.contains("explicit channel"), "{message}");
    }

    #[test]
    fn mqi_options_carry_every_setting() {
        let channel = parse_mqserver("APP.SVRCONN/TCP/host(1415)", "MQSERVER").expect("valid");
        let options = ConnectOptions::builder()
            .with_queue_manager("QM1")
            .with_channel(channel)
            .with_application_name("mqpilot")
            .with_user("app")
            .with_password(Secret::new("pw"))
            .with_tls(Tls {
                cipher_spec: "ANY_TLS13_OR_HIGHER".to_owned(),
                key_repository: Some(PathBuf::from("/var/mqm/ssl/key")),
                cert_label: Some("ibmwebspheremqapp".to_owned()),
            })
            .with_reconnect(Reconnect::QueueManager)
            .build()
            .expect("valid");
        let parts = MqiParts::new(&options).expect("converts");
        let mqi_options = parts.connect_options(&options).expect("converts");
        let mut structs = ConnectStructs::default();
        mqi_options.apply_param(&mut structs);

        let qm = mqi_options.queue_manager_name().map(|name| name.0.to_string());
        assert_eq!(qm.as_deref(), Some("QM1"));
        let cno = MQCNO(structs.cno.Options);
        assert!(cno.contains(mqi::constants::MQCNO_RECONNECT_Q_MGR));
        assert!(cno.contains(mqi::constants::MQCNO_CLIENT_BINDING));
        assert_eq!(mq_text::<28>(&structs.cno.ApplName), "mqpilot");
        assert_eq!(mq_text::<20>(&structs.cd.ChannelName), "APP.SVRCONN");
        assert_eq!(mq_text::<264>(&structs.cd.ConnectionName), "host(1415)");
        assert_eq!(mq_text::<32>(&structs.cd.SSLCipherSpec), "ANY_TLS13_OR_HIGHER");
        assert_eq!(mq_text::<256>(&structs.sco.KeyRepository), "/var/mqm/ssl/key");
        assert!(structs.sco.Version >= libmqm_sys::MQSCO_VERSION_5);
        assert_eq!(mq_text::<64>(&structs.sco.CertificateLabel), "ibmwebspheremqapp");
        assert_eq!(structs.csp.CSPUserIdLength, 3);
        assert_eq!(structs.csp.CSPPasswordLength, 2);
    }

    #[test]
    fn sharecnv_goes_into_the_mqcd_and_needs_a_channel() {
        let channel = parse_mqserver("APP.SVRCONN/TCP/host(1414)", "MQSERVER").expect("valid");
        let options = ConnectOptions::builder()
            .with_channel(channel)
            .with_sharecnv(3)
            .build()
            .expect("valid");
        let parts = MqiParts::new(&options).expect("converts");
        let mqi_options = parts.connect_options(&options).expect("converts");
        let mut structs = ConnectStructs::default();
        mqi_options.apply_param(&mut structs);
        assert!(structs.cd.Version >= libmqm_sys::MQCD_VERSION_10);
        assert_eq!(structs.cd.SharingConversations, 3);
        // MQSERVER's own channels allow 100 MB messages; the MQCD default would allow 4 MB.
        assert_eq!(structs.cd.MaxMsgLength, 104_857_600);

        let err = ConnectOptions::builder()
            .with_ccdt_url("file:///ccdt.json")
            .with_sharecnv(1)
            .build()
            .expect_err("no channel");
        assert!(err.to_string().contains("SHARECNV"), "{err}");
        let channel = parse_mqserver("APP.SVRCONN/TCP/host(1414)", "MQSERVER").expect("valid");
        let err = ConnectOptions::builder()
            .with_channel(channel)
            .with_sharecnv(MAX_SHARECNV + 1)
            .build()
            .expect_err("too big");
        assert!(err.to_string().contains("above"), "{err}");
    }

    #[test]
    fn mqi_options_for_a_ccdt() {
        let options = ConnectOptions::builder()
            .with_ccdt_url("file:///ccdt.json")
            .build()
            .expect("valid");
        let parts = MqiParts::new(&options).expect("converts");
        let mqi_options = parts.connect_options(&options).expect("converts");
        let mut structs = ConnectStructs::default();
        mqi_options.apply_param(&mut structs);
        assert_eq!(structs.cno.CCDTUrlLength, 17);
        assert!(mqi_options.queue_manager_name().is_none());
        assert!(!MQCNO(structs.cno.Options).contains(mqi::constants::MQCNO_RECONNECT));
    }

    /// `check` run on the MQCONNX structures `options` become, as `mqi` fills them in.
    fn with_structs<R>(options: &ConnectOptions, check: impl FnOnce(&ConnectStructs<'_>) -> R) -> R {
        let parts = MqiParts::new(options).expect("converts");
        let mqi_options = parts.connect_options(options).expect("converts");
        let mut structs = ConnectStructs::default();
        mqi_options.apply_param(&mut structs);
        check(&structs)
    }

    #[test]
    fn regression_an_explicit_channel_always_sends_sharecnv_10_in_an_mqcd_version_10() {
        let channel = parse_mqserver("APP.SVRCONN/TCP/host(1414)", "MQSERVER").expect("valid");
        let options = ConnectOptions::builder().with_channel(channel).build().expect("valid");
        let (version, sharecnv) = with_structs(&options, |s| (s.cd.Version, s.cd.SharingConversations));
        assert!(version >= libmqm_sys::MQCD_VERSION_10, "{version}");
        assert_eq!(sharecnv, 10);
        assert_eq!(
            i64::from(libmqm_default::MQCD_CLIENT_CONN_DEFAULT.SharingConversations),
            i64::from(DEFAULT_SHARECNV),
            "IBM's own default"
        );
        let channel = parse_mqserver("APP.SVRCONN/TCP/host(1414)", "MQSERVER").expect("valid");
        let none = ConnectOptions::builder()
            .with_channel(channel)
            .with_sharecnv(0)
            .build()
            .expect("valid");
        assert_eq!(with_structs(&none, |s| s.cd.SharingConversations), 0, "0 is sent as 0");
    }

    #[test]
    fn regression_client_binding_is_set_also_without_a_channel_or_ccdt() {
        let options = ConnectOptions::builder()
            .with_queue_manager("QM1")
            .build()
            .expect("valid");
        let options_field = with_structs(&options, |s| s.cno.Options);
        let cno = MQCNO(options_field);
        assert!(cno.contains(mqi::constants::MQCNO_CLIENT_BINDING), "{options_field:#x}");
        assert!(!cno.contains(mqi::constants::MQCNO_LOCAL_BINDING));
        let detail = options.failure_detail(Reason::Q_MGR_NAME_ERROR).expect("detail");
        assert!(
            detail.starts_with("no channel given (--conn, MQSERVER, --ccdt-url or MQCCDTURL)"),
            "{detail}"
        );
        assert!(detail.contains("MQCHLLIB/MQCHLTAB or mqclient.ini"), "{detail}");
    }

    #[test]
    fn regression_a_ccdt_url_without_a_scheme_is_refused_before_mqconnx() {
        let (source_name, message) = options_message(ConnectOptions::builder().with_ccdt_url("/etc/ccdt.json").build());
        assert_eq!(source_name, "CCDT URL");
        assert!(message.contains("file:///etc/ccdt.json"), "{message}");
        let (source_name, message) = options_message(ConnectOptions::from_env(env(&[("MQCCDTURL", "ccdt.json")])));
        assert_eq!(source_name, "MQCCDTURL");
        assert!(message.contains("file://, http://, https:// or ftp://"), "{message}");
        for url in [
            "file:///c.json",
            "HTTPS://h/c.json",
            "http://h/c.json",
            "ftp://u:p@h/c.json",
        ] {
            assert!(ConnectOptions::builder().with_ccdt_url(url).build().is_ok(), "{url}");
        }
    }

    #[test]
    fn a_kdb_key_repository_is_used_by_its_stem() {
        assert_eq!(
            key_repository_stem(Path::new("/var/mqm/ssl/key.kdb")),
            Some(PathBuf::from("/var/mqm/ssl/key"))
        );
        assert_eq!(
            key_repository_stem(Path::new("/ssl/key.KDB")),
            Some(PathBuf::from("/ssl/key"))
        );
        assert_eq!(key_repository_stem(Path::new("/ssl/key")), None);
        assert_eq!(key_repository_stem(Path::new("/ssl/key.p12")), None);
        let channel = parse_mqserver("APP.SVRCONN/TCP/host(1414)", "MQSERVER").expect("valid");
        let options = ConnectOptions::builder()
            .with_channel(channel)
            .with_tls(Tls {
                key_repository: Some(PathBuf::from("/var/mqm/ssl/key.kdb")),
                ..Tls::cipher("ANY_TLS13")
            })
            .build()
            .expect("valid");
        let tls = options.tls().expect("tls");
        assert_eq!(tls.key_repository.as_deref(), Some(Path::new("/var/mqm/ssl/key")));
        let repository = with_structs(&options, |s| mq_text::<256>(&s.sco.KeyRepository));
        assert_eq!(repository, "/var/mqm/ssl/key");
    }

    #[test]
    fn a_certificate_label_alone_goes_into_the_mqsco_and_is_checked() {
        let channel = || parse_mqserver("APP.SVRCONN/TCP/host(1414)", "MQSERVER").expect("valid");
        let options = ConnectOptions::builder()
            .with_channel(channel())
            .with_tls(Tls {
                cert_label: Some("app-cert".to_owned()),
                ..Tls::cipher("ANY_TLS13")
            })
            .build()
            .expect("valid");
        let (label, repository, cipher) = with_structs(&options, |s| {
            (
                mq_text::<64>(&s.sco.CertificateLabel),
                mq_text::<256>(&s.sco.KeyRepository),
                mq_text::<32>(&s.cd.SSLCipherSpec),
            )
        });
        assert_eq!(label, "app-cert");
        assert_eq!(repository, "", "left to MQSSLKEYR");
        assert_eq!(cipher, "ANY_TLS13");
        let too_long = Tls {
            cert_label: Some("l".repeat(65)),
            ..Tls::cipher("ANY_TLS13")
        };
        let (source_name, message) = options_message(
            ConnectOptions::builder()
                .with_channel(channel())
                .with_tls(too_long)
                .build(),
        );
        assert_eq!(source_name, "TLS");
        assert!(
            message.contains("certificate label") && message.contains("(at most 64)"),
            "{message}"
        );
    }

    #[test]
    fn tls_failures_name_cipher_repository_and_label_with_advice() {
        let channel = parse_mqserver("APP.SVRCONN/TCP/host(1414)", "MQSERVER").expect("valid");
        let options = ConnectOptions::builder()
            .with_channel(channel)
            .with_tls(Tls {
                cipher_spec: "ANY_TLS13".to_owned(),
                key_repository: Some(PathBuf::from("/ssl/key")),
                cert_label: Some("app-cert".to_owned()),
            })
            .build()
            .expect("valid");
        let detail = options.failure_detail(Reason::KEY_REPOSITORY_ERROR).expect("2381");
        assert!(
            detail.starts_with(
                "channel APP.SVRCONN to host(1414) with cipher spec ANY_TLS13, key repository /ssl/key, \
                 certificate label app-cert: "
            ),
            "{detail}"
        );
        assert!(
            detail.contains("without .kdb") && detail.contains("stash file"),
            "{detail}"
        );
        for reason in [Reason::SSL_INITIALIZATION_ERROR, Reason::JSSE_ERROR] {
            let detail = options.failure_detail(reason).expect("detail");
            assert!(
                detail.contains("SSLCIPH") && detail.contains("certificate label"),
                "{detail}"
            );
        }
    }

    #[test]
    fn connect_failure_detail_names_route_and_advice() {
        let channel = parse_mqserver("APP.SVRCONN/TCP/host(1414)", "MQSERVER").expect("valid");
        let options = ConnectOptions::builder().with_channel(channel).build().expect("valid");
        let detail = options.failure_detail(Reason::CHANNEL_NOT_AVAILABLE).expect("detail");
        assert!(detail.starts_with("channel APP.SVRCONN to host(1414): "), "{detail}");
        assert!(detail.contains("MAXINST"), "{detail}");
        assert!(options.failure_detail(Reason::Q_FULL).is_none());
        assert_eq!(options.target(), "default queue manager");
    }
}
