//! The planner's model of a fleet and its queue manager: TOML (or JSON) in, a checked
//! [`Model`] out.
//!
//! Two stages, as everywhere in mqpilot: serde reads the raw file (`deny_unknown_fields`, so a
//! misspelt key is an error), then `Model::from_raw` checks counts, names and references and
//! fills defaults. Every error is an [`Error::Config`] naming the file, line, column and the
//! dotted field (`app[1].workload[0].batch`). A [`Model`] that exists is consistent: every app's
//! channel is defined, every count is at least 1, `min <= max`.

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;

mod app;

use app::{RawApp, check_app};

use super::profile::{Kind, Profile};
use crate::Error;
use crate::toml_location::{field_error, parse_error};

/// IBM's "unlimited" for MAXINST and MAXINSTC, and the largest value MQ takes for any of the
/// limits modelled here (MAXHANDS, MAXUMSGS, MAXINST, MAXINSTC, SHARECNV, MaxChannels). Every
/// count in a model is at most this, so the planner's products stay far from `u64::MAX`.
pub const UNLIMITED: u64 = 999_999_999;

/// MQ_Q_MGR_NAME_LENGTH and MQ_Q_NAME_LENGTH.
const NAME_LENGTH: usize = 48;
/// MQ_CHANNEL_NAME_LENGTH.
const CHANNEL_NAME_LENGTH: usize = 20;

/// A count in `min..=UNLIMITED`, or an error message.
fn bounded(v: i64, min: u64) -> Result<u64, String> {
    match u64::try_from(v) {
        Ok(n) if n < min => Err(format!("must be at least {min}, not {v}")),
        Ok(n) if n > UNLIMITED => Err(format!("must be at most {UNLIMITED} (MQ's largest value), not {v}")),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("must be at least {min}, not {v}")),
    }
}

/// An MQ object name (`what`: "queue name", ...) of at most `max` characters.
fn mq_name(name: &str, max: usize, what: &str) -> Result<(), String> {
    crate::mq::options::check_name(name, max, what)
}

/// A free-text name that ends up in reports, MQSC comments and YAML: not blank, no control
/// characters (a newline would start a command of its own in MQSC or a key in YAML).
fn label(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("must not be empty".into());
    }
    match name.chars().find(|c| c.is_control()) {
        Some(c) => Err(format!("must not contain control characters (found {c:?})")),
        None => Ok(()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    queue_manager: RawQmgr,
    #[serde(default)]
    app: Vec<RawApp>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQmgr {
    name: String,
    #[serde(default = "default_max_handles")]
    max_handles: i64,
    #[serde(default = "default_max_channels")]
    max_channels: i64,
    max_active_channels: Option<i64>,
    #[serde(default = "default_max_uncommitted")]
    max_uncommitted: i64,
    max_connections: Option<i64>,
    #[serde(default)]
    other_channels: i64,
    #[serde(default)]
    channel: Vec<RawChannel>,
}

const fn default_max_handles() -> i64 {
    256
}
const fn default_max_channels() -> i64 {
    100
}
const fn default_max_uncommitted() -> i64 {
    10_000
}
const fn unlimited() -> i64 {
    UNLIMITED as i64
}
const fn default_sharecnv() -> i64 {
    10
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChannel {
    name: String,
    #[serde(default = "unlimited")]
    max_inst: i64,
    #[serde(default = "unlimited")]
    max_instc: i64,
    #[serde(default = "default_sharecnv")]
    sharecnv: i64,
}

/// The `client_address` value that gives every instance its own address.
pub const PER_INSTANCE: &str = "per-instance";

/// A checked model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    /// The queue manager and its channels.
    pub queue_manager: QueueManager,
    /// The apps, in file order.
    pub apps: Vec<App>,
}

/// The queue manager's limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueManager {
    /// Queue manager name.
    pub name: String,
    /// MAXHANDS: handles per connection. Default 256.
    pub max_handles: u64,
    /// MaxChannels (qm.ini). Default 100.
    pub max_channels: u64,
    /// MaxActiveChannels (qm.ini). Default `max_channels`.
    pub max_active_channels: u64,
    /// MAXUMSGS. Default 10000.
    pub max_uncommitted: u64,
    /// The optional connection limit.
    pub max_connections: Option<u64>,
    /// Channel instances the modelled apps do not start (senders, receivers, cluster channels,
    /// administrators' and other clients' SVRCONNs): counted against MaxChannels and
    /// MaxActiveChannels with the fleet's. Default 0.
    pub other_channels: u64,
    /// Server-connection channels.
    pub channels: Vec<Channel>,
}

/// A server-connection channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    /// Channel name.
    pub name: String,
    /// MAXINST; 0 blocks the channel. Default 999999999.
    pub max_inst: u64,
    /// MAXINSTC; 0 blocks the channel. Default 999999999.
    pub max_instc: u64,
    /// SHARECNV; 0 = no sharing. Default 10.
    pub sharecnv: u64,
}

/// Where an app's instances connect from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// Each instance its own address (MAXINSTC counts each instance alone).
    PerInstance,
    /// A shared address (a NAT, one host) counted together by MAXINSTC.
    Group(String),
}

/// One app of the fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    /// App name.
    pub name: String,
    /// How it spends connections and handles.
    pub profile: Profile,
    /// Index of its channel in [`QueueManager::channels`].
    pub channel: usize,
    /// Fewest instances planned (equal to `max` for a fixed count).
    pub min_instances: u64,
    /// Most instances planned: the count every check uses.
    pub max_instances: u64,
    /// Whether `instances` was a `{ min, max }` range.
    pub range: bool,
    /// Client address.
    pub address: Address,
    /// Whether the model gave `client_address`, rather than leaving the per-instance default.
    pub client_address_given: bool,
    /// `connections`, when given.
    pub connections: Option<u64>,
    /// Client-side SHARECNV. Default 10.
    pub sharecnv: u64,
    /// `handles_per_connection` (custom profile).
    pub handles_per_connection: Option<u64>,
    /// `uncommitted` (custom profile).
    pub uncommitted: Option<u64>,
    /// Handles each connection holds that the profile does not count (JMS temporary reply
    /// queues, the queue manager object opened to inquire, ...). Default 0; not for the mqpilot
    /// and custom profiles.
    pub extra_handles: u64,
    /// What it does.
    pub workloads: Vec<Workload>,
}

/// One workload of an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// The queue.
    pub queue: String,
    /// The profile's kind of operation.
    pub kind: Kind,
    /// Messages per operation. Default 1.
    pub batch: u64,
    /// Operations in flight at once per instance. Default 1.
    pub concurrency: u64,
    /// Forward target (mqpilot `forward`).
    pub to: Option<String>,
    /// Backout queue (mqpilot `poll`).
    pub backout_queue: Option<String>,
    /// Further queues (jms: extra destinations; ace: the flow's other queues).
    pub queues: Vec<String>,
    /// MQ activities (tibco `process`). Default 1.
    pub activities: u64,
}

impl Model {
    /// Reads a model from TOML text; `origin` names it in errors.
    ///
    /// # Errors
    /// [`Error::Config`] with file:line:column and the field path.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self, Error> {
        let raw: RawModel = toml::from_str(text).map_err(|e| reworded(parse_error(&e, text, origin), text))?;
        Self::from_raw(raw, &|field: String, message: String| {
            field_error(text, origin, field, message)
        })
    }

    /// Reads a model from a JSON object with the TOML file's structure (the MCP tool's
    /// input). Errors name the field; line and column are 0.
    ///
    /// # Errors
    /// [`Error::Config`] naming `origin` and the field.
    pub fn from_json(value: &serde_json::Value, origin: &Path) -> Result<Self, Error> {
        let config_error = |field: String, message: String| Error::Config {
            path: origin.to_owned(),
            line: 0,
            column: 0,
            field,
            message,
        };
        let text =
            toml::to_string(&without_nulls(value)).map_err(|e| config_error("document".into(), e.to_string()))?;
        Self::from_toml(&text, origin).map_err(|e| match e {
            Error::Config { field, message, .. } => config_error(field, message),
            other => other,
        })
    }

    fn from_raw(raw: RawModel, err: &dyn Fn(String, String) -> Error) -> Result<Self, Error> {
        let q = raw.queue_manager;
        let count = |field: &str, v: i64| bounded(v, 1).map_err(|m| err(field.into(), m));
        mq_name(&q.name, NAME_LENGTH, "queue manager name").map_err(|m| err("queue_manager.name".into(), m))?;
        let max_channels = count("queue_manager.max_channels", q.max_channels)?;
        let mut channels = Vec::new();
        let mut names = HashSet::new();
        for (i, c) in q.channel.into_iter().enumerate() {
            let at = |k: &str| format!("queue_manager.channel[{i}].{k}");
            mq_name(&c.name, CHANNEL_NAME_LENGTH, "channel name").map_err(|m| err(at("name"), m))?;
            if !names.insert(c.name.clone()) {
                return Err(err(at("name"), format!("channel {:?} is defined twice", c.name)));
            }
            let sharecnv = bounded(c.sharecnv, 0).map_err(|m| err(at("sharecnv"), m))?;
            channels.push(Channel {
                name: c.name,
                // MQ takes 0 for both: the channel then starts no instance at all.
                max_inst: bounded(c.max_inst, 0).map_err(|m| err(at("max_inst"), m))?,
                max_instc: bounded(c.max_instc, 0).map_err(|m| err(at("max_instc"), m))?,
                sharecnv,
            });
        }
        let queue_manager = QueueManager {
            name: q.name,
            max_handles: count("queue_manager.max_handles", q.max_handles)?,
            max_channels,
            max_active_channels: match q.max_active_channels {
                Some(v) => count("queue_manager.max_active_channels", v)?,
                None => max_channels,
            },
            max_uncommitted: count("queue_manager.max_uncommitted", q.max_uncommitted)?,
            max_connections: q
                .max_connections
                .map(|v| count("queue_manager.max_connections", v))
                .transpose()?,
            other_channels: bounded(q.other_channels, 0).map_err(|m| err("queue_manager.other_channels".into(), m))?,
            channels,
        };
        let mut apps = Vec::new();
        let mut app_names = HashSet::new();
        for (i, a) in raw.app.into_iter().enumerate() {
            if !app_names.insert(a.name.clone()) {
                return Err(err(
                    format!("app[{i}].name"),
                    format!("app {:?} is defined twice", a.name),
                ));
            }
            apps.push(check_app(i, a, &queue_manager, err)?);
        }
        Ok(Self { queue_manager, apps })
    }

    /// The app called `name`.
    #[must_use]
    pub fn app(&self, name: &str) -> Option<usize> {
        self.apps.iter().position(|a| a.name == name)
    }
}

/// A parse error in the planner's words: counts out of range, instances neither a count nor a
/// range, and an unclosed table header named by its table (the parser's message names no key,
/// so the field would be the `]` it expected).
fn reworded(mut error: Error, text: &str) -> Error {
    if let Error::Config {
        message, field, line, ..
    } = &mut error
    {
        if let Some(n) = out_of_range(message) {
            *message = format!("{n} is out of range: a count here is 0 to {UNLIMITED} (MQ's largest value)");
        } else if message.contains("untagged enum RawInstances") {
            *message = "expected a count (instances = 12) or a range (instances = { min = 1, max = 40 })".into();
        } else if message.starts_with("unclosed table") || message.starts_with("unclosed array table") {
            *field = unclosed_header(text, *line);
            *message = "unclosed table header, expected `]`".into();
        }
    }
    error
}

/// The table an unclosed header on 1-based `line` opens (`[[app.workload]` -> `app.workload`),
/// or `document` when there is no readable name.
fn unclosed_header(text: &str, line: usize) -> String {
    let header = text.lines().nth(line.saturating_sub(1)).unwrap_or("");
    let name = header
        .split('#')
        .next()
        .unwrap_or("")
        .trim()
        .trim_matches(|c| c == '[' || c == ']')
        .trim();
    let readable = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if readable {
        name.to_owned()
    } else {
        "document".to_owned()
    }
}

/// The integer in a parser message about one that does not fit the field's type (TOML
/// integers past 64 bits are read as i128: "invalid type: integer `N` as i128, ...").
fn out_of_range(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("invalid type: integer `")?;
    let (n, tail) = rest.split_once('`')?;
    tail.starts_with(" as i128").then_some(n)
}

/// `value` with every `null` member dropped: TOML has no null, and an absent key means the
/// same (the default).
fn without_nulls(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(super) const GOOD: &str = "\
[queue_manager]
name = \"QM1\"
max_handles = 256

[[queue_manager.channel]]
name = \"APP.SVRCONN\"

[[app]]
name = \"orders\"
profile = \"logicapps-builtin\"
channel = \"APP.SVRCONN\"
instances = { min = 1, max = 40 }

[[app.workload]]
queue = \"ORDERS.IN\"
kind = \"browse-lock-trigger\"
batch = 20
";

    pub(super) fn error(text: &str) -> String {
        Model::from_toml(text, Path::new("m.toml")).unwrap_err().to_string()
    }

    #[test]
    fn a_good_model_fills_defaults() {
        let m = Model::from_toml(GOOD, Path::new("m.toml")).unwrap();
        assert_eq!(m.queue_manager.max_channels, 100);
        assert_eq!(m.queue_manager.max_active_channels, 100);
        assert_eq!(m.queue_manager.channels[0].sharecnv, 10);
        let app = &m.apps[0];
        assert_eq!((app.min_instances, app.max_instances, app.range), (1, 40, true));
        assert_eq!(app.address, Address::PerInstance);
        assert_eq!(app.workloads[0].concurrency, 1);
    }

    #[test]
    fn an_unknown_field_names_line_and_path() {
        let e = error(&GOOD.replace("batch = 20", "batch = 20\nbatchsize = 3"));
        assert!(
            e.starts_with("m.toml:18:1: app[0].workload[0].batchsize: unknown field"),
            "{e}"
        );
    }

    #[test]
    fn an_unknown_profile_and_kind_are_errors() {
        let e = error(&GOOD.replace("\"logicapps-builtin\"", "\"mulesoft\""));
        assert!(
            e.starts_with("m.toml:10:11: app[0].profile: unknown variant `mulesoft`"),
            "{e}"
        );
        let e = error(&GOOD.replace("\"logicapps-builtin\"", "3"));
        assert!(
            e.starts_with(
                "m.toml:10:11: app[0].profile: invalid type: integer `3`, expected `logicapps-builtin`, `mqpilot`, \
                 `jms`, `ace`, `tibco` or `custom`"
            ),
            "{e}"
        );
        let e = error(&GOOD.replace("\"browse-lock-trigger\"", "\"poll\""));
        assert!(
            e.starts_with("m.toml:16:1: app[0].workload[0].kind: unknown kind \"poll\""),
            "{e}"
        );
    }

    #[test]
    fn zero_negative_and_reversed_counts_are_errors() {
        let e = error(&GOOD.replace("batch = 20", "batch = 0"));
        assert!(
            e.starts_with("m.toml:17:1: app[0].workload[0].batch: must be at least 1, not 0"),
            "{e}"
        );
        let e = error(&GOOD.replace("max_handles = 256", "max_handles = -3"));
        assert!(
            e.starts_with("m.toml:3:1: queue_manager.max_handles: must be at least 1"),
            "{e}"
        );
        let e = error(&GOOD.replace("min = 1, max = 40", "min = 50, max = 40"));
        assert!(
            e.starts_with("m.toml:12:1: app[0].instances: min (50) is greater than max (40)"),
            "{e}"
        );
        let e = error(&GOOD.replace("min = 1, max = 40", "lo = 1"));
        assert!(e.contains("app[0].instances: expected a count"), "{e}");
    }

    #[test]
    fn an_undefined_channel_is_an_error() {
        let e = error(&GOOD.replace("channel = \"APP.SVRCONN\"", "channel = \"OTHER\""));
        assert!(
            e.starts_with("m.toml:11:1: app[0].channel: channel \"OTHER\" is not defined"),
            "{e}"
        );
    }

    #[test]
    fn names_mq_would_not_take_are_errors() {
        // A newline would start an MQSC command of its own; `)` would end the name early.
        let e = error(&GOOD.replace("name = \"QM1\"", "name = \"QM1\\nDELETE QLOCAL(ORDERS.IN)\""));
        assert!(
            e.starts_with("m.toml:2:1: queue_manager.name: queue manager name \"QM1\\nDELETE"),
            "{e}"
        );
        let e = error(&GOOD.replace("name = \"APP.SVRCONN\"", "name = \"APP) MAXINST(1\""));
        assert!(
            e.starts_with("m.toml:6:1: queue_manager.channel[0].name: channel name"),
            "{e}"
        );
        assert!(e.contains("contains ')'"), "{e}");
        let long = "C".repeat(21);
        let e = error(&GOOD.replace("\"APP.SVRCONN\"", &format!("\"{long}\"")));
        assert!(
            e.contains("channel[0].name: channel name") && e.contains("(at most 20)"),
            "{e}"
        );
        let e = error(&GOOD.replace("\"ORDERS.IN\"", "\"#BILLING: IN\""));
        assert!(
            e.starts_with("m.toml:15:1: app[0].workload[0].queue: queue name"),
            "{e}"
        );
        let e = error(&GOOD.replace("name = \"orders\"", &format!("name = \"{}\"", "o".repeat(29))));
        assert!(
            e.starts_with("m.toml:9:1: app[0].name: application name") && e.contains("(at most 28)"),
            "{e}"
        );
        let e = error(&GOOD.replace("name = \"orders\"", "name = \"orders\\nspec: {}\""));
        assert!(
            e.starts_with("m.toml:9:1: app[0].name: must not contain control characters"),
            "{e}"
        );
    }

    #[test]
    fn counts_past_mqs_largest_value_are_errors() {
        let e = error(&GOOD.replace("max_handles = 256", "max_handles = 5000000000"));
        assert!(
            e.starts_with("m.toml:3:1: queue_manager.max_handles: must be at most 999999999"),
            "{e}"
        );
        let e = error(&GOOD.replace("{ min = 1, max = 40 }", "9223372036854775807"));
        assert!(
            e.starts_with("m.toml:12:1: app[0].instances: must be at most 999999999"),
            "{e}"
        );
        let e = error(&GOOD.replace(
            "name = \"APP.SVRCONN\"",
            "name = \"APP.SVRCONN\"\nsharecnv = 2000000000",
        ));
        assert!(
            e.contains("queue_manager.channel[0].sharecnv: must be at most 999999999"),
            "{e}"
        );
        // Past 64 bits, the TOML reader's own message said "invalid type: integer ... as i128".
        let e = error(&GOOD.replace("{ min = 1, max = 40 }", "99999999999999999999"));
        assert!(
            e.starts_with(
                "m.toml:12:13: app[0].instances: 99999999999999999999 is out of range: a count here is 0 to \
                 999999999"
            ),
            "{e}"
        );
        let e = error(&GOOD.replace("batch = 20", "batch = -99999999999999999999"));
        assert!(
            e.contains("app[0].workload[0].batch: -99999999999999999999 is out of range"),
            "{e}"
        );
        let ok = GOOD.replace("max_handles = 256", "max_handles = 999999999");
        assert!(Model::from_toml(&ok, Path::new("m.toml")).is_ok());
    }

    #[test]
    fn an_unclosed_table_header_names_its_table_not_a_bracket() {
        let e = error(&GOOD.replace("[queue_manager]", "[queue_manager"));
        assert_eq!(e, "m.toml:1:15: queue_manager: unclosed table header, expected `]`");
        let e = error(&GOOD.replace("[[app.workload]]", "[[app.workload]"));
        assert!(
            e.starts_with("m.toml:14:") && e.contains(": app.workload: unclosed table header"),
            "{e}"
        );
    }

    #[test]
    fn json_models_read_like_toml() {
        let m = Model::from_toml(GOOD, Path::new("m.toml")).unwrap();
        let value: serde_json::Value = serde_json::to_value(toml::from_str::<toml::Value>(GOOD).unwrap()).unwrap();
        assert_eq!(Model::from_json(&value, Path::new("json")).unwrap(), m);
        let mut with_null = value.clone();
        with_null["queue_manager"]["max_connections"] = serde_json::Value::Null;
        assert_eq!(Model::from_json(&with_null, Path::new("json")).unwrap(), m);
        let mut bad = value;
        bad["app"][0]["instances"] = serde_json::json!(0);
        let e = Model::from_json(&bad, Path::new("json")).unwrap_err().to_string();
        assert_eq!(e, "json: app[0].instances: must be at least 1, not 0");
    }
}
