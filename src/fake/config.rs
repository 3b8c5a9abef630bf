//! Definitions of a fake queue manager: its limits, channels and queues.
//!
//! These are the attributes an MQ administrator sets with `ALTER QMGR`, `DEFINE CHANNEL` and
//! `DEFINE QLOCAL`, with IBM's defaults. They can be built in code or read from TOML
//! (`deny_unknown_fields`); a bad file is an error that names the file, line and field.

use std::path::Path;

use serde::Deserialize;

use crate::Error;
use crate::toml_location;

/// Input sharing for a queue (`SHARE` / `NOSHARE`, `DEFSOPT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sharing {
    /// Shared input allowed (`SHARE`, `DEFSOPT(SHARED)`), IBM's default.
    #[default]
    Shared,
    /// Every input open is exclusive (`NOSHARE`), or `DEFSOPT(EXCL)`.
    Exclusive,
}

crate::toml_location::deserialize_one_of!(Sharing {
    "shared" => Shared,
    "exclusive" => Exclusive,
});

/// Message delivery sequence (`MSGDLVSQ`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Delivery {
    /// Priority, then arrival order (IBM's default).
    #[default]
    Priority,
    /// Arrival order only.
    Fifo,
}

crate::toml_location::deserialize_one_of!(Delivery {
    "priority" => Priority,
    "fifo" => Fifo,
});

/// The queue manager's own attributes and limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QmgrDef {
    /// Queue manager name. Default `QM1`.
    pub name: String,
    /// MAXHANDS: handles one connection may hold at once. Default 256.
    pub max_handles: i32,
    /// MAXUMSGS: messages in one unit of work. Default 10000.
    pub max_uncommitted: i32,
    /// MaxChannels (qm.ini): channel instances at once. Default 100.
    pub max_channels: u32,
    /// MaxActiveChannels (qm.ini). Default: `max_channels`.
    pub max_active_channels: Option<u32>,
    /// Optional limit on connections at once (2025 past it). Default: none.
    pub max_connections: Option<u32>,
    /// MAXMSGL of the queue manager. Default 4 MiB.
    pub max_msg_length: i32,
    /// Users and passwords checked at connect (CONNAUTH); empty = no checking.
    pub users: Vec<UserDef>,
    /// Whether applications may open the queue manager object to inquire on it (`+inq` on
    /// `-t qmgr`); `false` answers that MQOPEN with 2035, as MQ does for a user granted only
    /// `+connect` there. Default true.
    pub qmgr_inquire: bool,
}

impl Default for QmgrDef {
    fn default() -> Self {
        Self {
            name: "QM1".into(),
            max_handles: 256,
            max_uncommitted: 10_000,
            max_channels: 100,
            max_active_channels: None,
            max_connections: None,
            max_msg_length: 4 * 1024 * 1024,
            users: Vec::new(),
            qmgr_inquire: true,
        }
    }
}

/// A user the fake accepts at connect when `users` is not empty.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserDef {
    /// User id.
    pub name: String,
    /// Its password.
    pub password: String,
}

impl std::fmt::Debug for UserDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserDef")
            .field("name", &self.name)
            .field("password", &"***")
            .finish()
    }
}

/// A server-connection channel.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelDef {
    /// Channel name, e.g. `APP.SVRCONN`.
    pub name: String,
    /// MAXINST: instances from all clients. Default 999999999.
    #[serde(default = "unlimited")]
    pub max_inst: u32,
    /// MAXINSTC: instances from one client address. Default 999999999.
    #[serde(default = "unlimited")]
    pub max_instc: u32,
    /// SHARECNV: conversations per instance; 0 = no sharing. Default 10.
    #[serde(default = "default_sharecnv")]
    pub sharecnv: u32,
    /// MAXMSGL: the longest message a client may send or receive on this channel; the
    /// lower of it and the client's MQCD MaxMsgLength is negotiated at connect, and an
    /// MQGET, MQPUT or MQPUT1 whose buffer is longer fails with 2010. 0 means the queue
    /// manager's MAXMSGL. Default 4 MiB, IBM's.
    #[serde(default = "default_channel_max_msg_length")]
    pub max_msg_length: i32,
}

fn unlimited() -> u32 {
    999_999_999
}

fn default_sharecnv() -> u32 {
    10
}

/// MQ's largest MAXMSGL (100 MiB).
const MAX_MSG_LENGTH: i32 = 104_857_600;

const fn default_channel_max_msg_length() -> i32 {
    4 * 1024 * 1024
}

impl ChannelDef {
    /// A channel with IBM's defaults (MAXINST and MAXINSTC unlimited, SHARECNV 10).
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            max_inst: unlimited(),
            max_instc: unlimited(),
            sharecnv: default_sharecnv(),
            max_msg_length: default_channel_max_msg_length(),
        }
    }

    /// Sets MAXINST.
    #[must_use]
    pub const fn max_inst(mut self, n: u32) -> Self {
        self.max_inst = n;
        self
    }

    /// Sets MAXINSTC.
    #[must_use]
    pub const fn max_instc(mut self, n: u32) -> Self {
        self.max_instc = n;
        self
    }

    /// Sets SHARECNV.
    #[must_use]
    pub const fn sharecnv(mut self, n: u32) -> Self {
        self.sharecnv = n;
        self
    }

    /// Sets MAXMSGL (0: the queue manager's).
    #[must_use]
    pub const fn max_msg_length(mut self, n: i32) -> Self {
        self.max_msg_length = n;
        self
    }
}

/// A local queue.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueDef {
    /// Queue name.
    pub name: String,
    /// MAXDEPTH. Default 5000.
    pub max_depth: i32,
    /// MAXMSGL. Default 4 MiB.
    pub max_msg_length: i32,
    /// GET(ENABLED). Default true.
    pub get_enabled: bool,
    /// PUT(ENABLED). Default true.
    pub put_enabled: bool,
    /// SHARE (shared) or NOSHARE (exclusive). Default shared.
    pub share: Sharing,
    /// DEFSOPT: what INPUT_AS_Q_DEF means. Default shared.
    pub default_share: Sharing,
    /// BOTHRESH. Default 0 (none).
    pub backout_threshold: i32,
    /// BOQNAME. Default blank.
    pub backout_queue: String,
    /// MSGDLVSQ. Default priority.
    pub delivery: Delivery,
    /// DEFPRTY. Default 0.
    pub default_priority: i32,
    /// DEFPSIST. Default false.
    pub default_persistent: bool,
    /// DESCR.
    pub description: String,
}

impl Default for QueueDef {
    fn default() -> Self {
        Self {
            name: String::new(),
            max_depth: 5000,
            max_msg_length: 4 * 1024 * 1024,
            get_enabled: true,
            put_enabled: true,
            share: Sharing::Shared,
            default_share: Sharing::Shared,
            backout_threshold: 0,
            backout_queue: String::new(),
            delivery: Delivery::Priority,
            default_priority: 0,
            default_persistent: false,
            description: String::new(),
        }
    }
}

impl QueueDef {
    /// A local queue with IBM's defaults.
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// Sets MAXDEPTH.
    #[must_use]
    pub const fn max_depth(mut self, n: i32) -> Self {
        self.max_depth = n;
        self
    }

    /// Sets MAXMSGL.
    #[must_use]
    pub const fn max_msg_length(mut self, n: i32) -> Self {
        self.max_msg_length = n;
        self
    }

    /// Sets BOTHRESH and BOQNAME.
    #[must_use]
    pub fn backout(mut self, threshold: i32, queue: impl Into<String>) -> Self {
        self.backout_threshold = threshold;
        self.backout_queue = queue.into();
        self
    }

    /// Sets MSGDLVSQ.
    #[must_use]
    pub const fn delivery(mut self, d: Delivery) -> Self {
        self.delivery = d;
        self
    }

    /// Sets SHARE/NOSHARE.
    #[must_use]
    pub const fn share(mut self, s: Sharing) -> Self {
        self.share = s;
        self
    }

    /// Sets DEFSOPT.
    #[must_use]
    pub const fn default_share(mut self, s: Sharing) -> Self {
        self.default_share = s;
        self
    }
}

/// A whole fake queue manager: `[queue_manager]`, `[[channel]]`, `[[queue]]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FakeConfig {
    /// The queue manager's attributes.
    pub queue_manager: QmgrDef,
    /// Server-connection channels.
    #[serde(rename = "channel")]
    pub channels: Vec<ChannelDef>,
    /// Local queues.
    #[serde(rename = "queue")]
    pub queues: Vec<QueueDef>,
}

impl FakeConfig {
    /// Parses a TOML definition; `origin` names the file in errors.
    ///
    /// # Errors
    /// [`Error::Config`] naming the line, column and field that is wrong.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self, Error> {
        let config: Self = toml::from_str(text).map_err(|e| toml_location::parse_error(&e, text, origin))?;
        config
            .validate()
            .map_err(|(field, message)| toml_location::field_error(text, origin, field, message))?;
        Ok(config)
    }

    /// Reads and parses a TOML file.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read, [`Error::Config`] when it is invalid.
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let text = crate::toml_location::read_text(path)?;
        Self::from_toml(&text, path)
    }

    /// Checks what serde cannot: ranges, lengths, duplicates. The error is (field, message).
    fn validate(&self) -> Result<(), (String, String)> {
        let invalid = |field: String, message: String| (field, message);
        let q = &self.queue_manager;
        if q.name.is_empty() || q.name.len() > 48 {
            return Err(invalid(
                "queue_manager.name".into(),
                "must be 1 to 48 characters".into(),
            ));
        }
        if q.max_handles < 1 {
            return Err(invalid("queue_manager.max_handles".into(), "must be at least 1".into()));
        }
        if q.max_uncommitted < 1 {
            return Err(invalid(
                "queue_manager.max_uncommitted".into(),
                "must be at least 1".into(),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, c) in self.channels.iter().enumerate() {
            if c.name.is_empty() || c.name.len() > 20 {
                return Err(invalid(
                    format!("channel[{i}].name"),
                    "must be 1 to 20 characters".into(),
                ));
            }
            if !seen.insert(c.name.clone()) {
                return Err(invalid(
                    format!("channel[{i}].name"),
                    format!("duplicate channel {}", c.name),
                ));
            }
            if !(0..=MAX_MSG_LENGTH).contains(&c.max_msg_length) {
                return Err(invalid(
                    format!("channel[{i}].max_msg_length"),
                    format!("must be 0 (the queue manager's) to {MAX_MSG_LENGTH}"),
                ));
            }
        }
        seen.clear();
        for (i, d) in self.queues.iter().enumerate() {
            if d.name.is_empty() || d.name.len() > 48 {
                return Err(invalid(format!("queue[{i}].name"), "must be 1 to 48 characters".into()));
            }
            if !seen.insert(d.name.clone()) {
                return Err(invalid(
                    format!("queue[{i}].name"),
                    format!("duplicate queue {}", d.name),
                ));
            }
            for (key, value) in [("max_depth", d.max_depth), ("max_msg_length", d.max_msg_length)] {
                if value < 0 {
                    return Err(invalid(
                        format!("queue[{i}].{key}"),
                        format!("is {value}, must not be negative"),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_definition_with_defaults() {
        let text = r#"
[queue_manager]
name = "QMX"
max_handles = 4

[[channel]]
name = "APP.SVRCONN"
max_inst = 3

[[queue]]
name = "ORDERS.IN"
backout_threshold = 3
backout_queue = "ORDERS.BACKOUT"
"#;
        let c = FakeConfig::from_toml(text, Path::new("fake.toml")).unwrap();
        assert_eq!(c.queue_manager.name, "QMX");
        assert_eq!(c.queue_manager.max_handles, 4);
        assert_eq!(c.queue_manager.max_uncommitted, 10_000);
        assert_eq!(c.channels[0].max_inst, 3);
        assert_eq!(c.channels[0].sharecnv, 10);
        assert_eq!(c.queues[0].max_depth, 5000);
        assert_eq!(c.queues[0].backout_queue, "ORDERS.BACKOUT");
    }

    /// Regression: `share` and `delivery` said "wanted string or table" for a value of another
    /// type, not which names they take.
    #[test]
    fn regression_share_and_delivery_list_their_names() {
        for (line, expected) in [
            (
                "share = 1",
                "fake.toml:3:9: queue[0].share: invalid type: integer `1`, expected `shared` or `exclusive`",
            ),
            (
                "delivery = \"lifo\"",
                "fake.toml:3:12: queue[0].delivery: unknown variant `lifo`, expected `priority` or `fifo`",
            ),
        ] {
            let text = format!("[[queue]]\nname = \"A\"\n{line}\n");
            let err = FakeConfig::from_toml(&text, Path::new("fake.toml"))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(expected), "{err}");
        }
        let text = "[[queue]]\nname = \"A\"\nshare = \"exclusive\"\ndelivery = \"fifo\"\n";
        let c = FakeConfig::from_toml(text, Path::new("fake.toml")).unwrap();
        assert_eq!(
            (c.queues[0].share, c.queues[0].delivery),
            (Sharing::Exclusive, Delivery::Fifo)
        );
    }

    #[test]
    fn unknown_field_names_file_line_and_field() {
        let text = "[queue_manager]\nname = \"QM1\"\nmax_handlez = 5\n";
        let err = FakeConfig::from_toml(text, Path::new("fake.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("fake.toml:3:1: queue_manager.max_handlez: unknown field `max_handlez`"),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_key_in_an_array_entry_names_the_entry() {
        let text = "[[queue]]\nname = \"A\"\n[[queue]]\nname = \"B\"\nmax_dept = 5\n";
        let err = FakeConfig::from_toml(text, Path::new("fake.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("fake.toml:5:1: queue[1].max_dept: unknown field `max_dept`"),
            "{err}"
        );
    }

    #[test]
    fn a_wrong_type_names_the_table_entry_and_key() {
        let text = "[[queue]]\nname = \"A\"\n\n[[queue]]\nname = \"B\"\nmax_depth = \"lots\"\n";
        let err = FakeConfig::from_toml(text, Path::new("fake.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("fake.toml:6:"), "{err}");
        assert!(err.contains("queue[1].max_depth"), "{err}");
    }

    #[test]
    fn a_missing_file_is_an_io_error_naming_it() {
        let err = FakeConfig::from_file(Path::new("/no/such/fake.toml")).unwrap_err();
        assert!(matches!(err, Error::Io { .. }));
        assert!(err.to_string().contains("/no/such/fake.toml"));
    }

    #[test]
    fn the_example_definition_file_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fake-qm.toml");
        let config = FakeConfig::from_file(&path).unwrap();
        assert_eq!(config.channels[0].max_instc, 5);
        assert_eq!(config.queues[0].backout_queue, "ORDERS.BACKOUT");
    }

    #[test]
    fn a_negative_limit_points_at_its_key() {
        let text = "[[queue]]\nname = \"A\"\nmax_depth = -1\n";
        let err = FakeConfig::from_toml(text, Path::new("f.toml"))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "f.toml:3:1: queue[0].max_depth: is -1, must not be negative");
    }

    #[test]
    fn duplicate_queue_is_rejected() {
        let text = "[[queue]]\nname = \"A\"\n[[queue]]\nname = \"A\"\n";
        let err = FakeConfig::from_toml(text, Path::new("f.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("f.toml:4:1: queue[1].name"), "{err}");
        assert!(err.contains("duplicate"), "{err}");
    }

    #[test]
    fn password_is_not_in_debug_output() {
        let u = UserDef {
            name: "app".into(),
            password: "s3cret".into(),
        };
        assert!(!format!("{u:?}").contains("s3cret"));
    }
}
