//! The crate's error type, grouped by what the caller can do about it.
//!
//! MQ failures keep their reason code ([`Reason`]) so callers can branch on its class
//! (retry, reconnect, config); file problems keep file, line and field; a missing IBM
//! library names every path that was tried.

use std::path::{Path, PathBuf};

use crate::mq::reason::Reason;

/// Everything that can go wrong in mqpilot's library code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// IBM's MQ client library could not be loaded from any of the paths tried.
    #[error(
        "cannot load the IBM MQ client library (tried: {}); install the IBM MQ redistributable client \
         (for example under /opt/mqm) or point MQ_LIB at libmqm_r.so",
        tried.join(", ")
    )]
    Library {
        /// Every path or name that was tried, in order.
        tried: Vec<String>,
        /// The loader's error for the last attempt.
        #[source]
        source: Option<dlopen2::Error>,
    },

    /// An MQ call failed; what to do depends on the reason code's class.
    #[error("{verb} of {object} failed: {reason}{}", detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Mq {
        /// The MQI verb, e.g. `MQOPEN`.
        verb: &'static str,
        /// What the call was about: a queue, the queue manager, a connection.
        object: String,
        /// The reason code.
        reason: Reason,
        /// Context that helps, e.g. `the connection already holds MAXHANDS=256 handles`.
        detail: Option<String>,
    },

    /// A configuration or model file is invalid. The message starts `w.toml:5:1: field: `,
    /// or `w.toml: field: ` when the line is not known.
    #[error("{}: {field}: {message}", position(path, *line, *column))]
    Config {
        /// The file.
        path: PathBuf,
        /// 1-based line (0 when unknown).
        line: usize,
        /// 1-based column (0 when unknown).
        column: usize,
        /// The field or key that is wrong.
        field: String,
        /// What is wrong with it.
        message: String,
    },

    /// A connection option (argument or environment variable) is invalid.
    #[error("{source_name}: {message}")]
    Options {
        /// Where the value came from: a flag (`--server`) or a variable (`MQSERVER`).
        source_name: String,
        /// What is wrong, naming the bad part.
        message: String,
    },

    /// Reading a file failed.
    #[error("cannot read {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A file that a setting names (a password file, a header's `value_file`) cannot be read.
    #[error("{setting}: cannot read {}", path.display())]
    SettingFile {
        /// The setting that names the file: a flag (`--password-file`), a variable
        /// (`MQ_PASSWORD_FILE`) or a file's key (`w.toml:4:1: connection.password_file`).
        setting: String,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// Writing a file failed.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A `mqpilot fake-qm` server could not be reached, or refused an admin request.
    #[error("fake queue manager at {server}: {message}")]
    FakeServer {
        /// The server's address.
        server: String,
        /// What went wrong.
        message: String,
    },
}

/// Where in `path` something is, as errors print it: `w.toml:5:1`, or `w.toml` alone when
/// `line` is 0 (not known).
pub(crate) fn position(path: &Path, line: usize, column: usize) -> String {
    if line == 0 {
        path.display().to_string()
    } else {
        format!("{}:{line}:{column}", path.display())
    }
}

impl Error {
    /// Adds context to an MQ error, e.g. `the connection already holds MAXHANDS=256 handles`.
    /// Other errors are returned unchanged.
    #[must_use]
    pub fn with_detail(self, text: impl Into<String>) -> Self {
        match self {
            Self::Mq {
                verb, object, reason, ..
            } => Self::Mq {
                verb,
                object,
                reason,
                detail: Some(text.into()),
            },
            other => other,
        }
    }

    /// The MQ reason code, when this error came from an MQ call.
    #[must_use]
    pub const fn reason(&self) -> Option<Reason> {
        match self {
            Self::Mq { reason, .. } => Some(*reason),
            _ => None,
        }
    }
}

/// Shorthand for results with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
