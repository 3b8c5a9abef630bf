//! The plan of a fleet: per-app numbers, every check, recommendations and the overall status.
//!
//! [`Report`] is the JSON contract (`mqplan check --format json`, the MCP tool): field names
//! and meanings are documented in the README and only ever added to. The text and markdown
//! renderers read the same struct, so all three formats say the same thing.

use serde::Serialize;

use super::check::{Check, Status, check};
use super::math::{AppNumbers, FirstFailure, Limit, Requirement, app_numbers, first_failure, requirements};
use super::model::{Address, App, Model, PER_INSTANCE, UNLIMITED};
use super::profile::Profile;

/// Version of the JSON contract; raised only for a change that is not an addition.
pub const SCHEMA_VERSION: u32 = 1;

/// A checked plan.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Version of this structure.
    pub schema_version: u32,
    /// Where the model came from (a path, or what the caller named it).
    pub origin: String,
    /// The headroom asked for, in percent.
    pub headroom_pct: f64,
    /// The queue manager's limits as modelled.
    pub queue_manager: QmgrReport,
    /// Per app.
    pub apps: Vec<AppReport>,
    /// Every limit in every scope.
    pub checks: Vec<Check>,
    /// Settings and design changes.
    pub recommendations: Vec<Recommendation>,
    /// Information only: handles open over all connections (MQ limits handles per connection).
    pub total_open_handles: u64,
    /// The worst check.
    pub status: Status,
}

/// The queue manager as modelled.
#[derive(Debug, Clone, Serialize)]
pub struct QmgrReport {
    /// Name.
    pub name: String,
    /// MAXHANDS.
    pub max_handles: u64,
    /// MaxChannels.
    pub max_channels: u64,
    /// MaxActiveChannels.
    pub max_active_channels: u64,
    /// MAXUMSGS.
    pub max_uncommitted: u64,
    /// Connection limit, if any.
    pub max_connections: Option<u64>,
    /// Channel instances the modelled apps do not start, counted against MaxChannels.
    pub other_channels: u64,
    /// Channels.
    pub channels: Vec<ChannelReport>,
}

/// A channel as modelled.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelReport {
    /// Name.
    pub name: String,
    /// MAXINST.
    pub max_inst: u64,
    /// MAXINSTC.
    pub max_instc: u64,
    /// SHARECNV.
    pub sharecnv: u64,
}

/// A planned instance range.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Range {
    /// Fewest.
    pub min: u64,
    /// Most.
    pub max: u64,
}

/// One app's plan.
#[derive(Debug, Clone, Serialize)]
pub struct AppReport {
    /// Name.
    pub name: String,
    /// Profile.
    pub profile: Profile,
    /// Channel.
    pub channel: String,
    /// `per-instance` or the address group.
    pub client_address: String,
    /// Instances the checks use (the range's max).
    pub instances: u64,
    /// The planned range, when one was given.
    pub instances_range: Option<Range>,
    /// K.
    pub connections_per_instance: u64,
    /// instances x K.
    pub connections: u64,
    /// Effective SHARECNV.
    pub sharecnv: u64,
    /// C.
    pub channel_instances_per_instance: u64,
    /// instances x C.
    pub channel_instances: u64,
    /// H.
    pub peak_handles_per_connection: u64,
    /// U.
    pub uncommitted_per_unit_of_work: u64,
    /// Scaling this app alone: where a check first fails.
    pub first_failure: Option<FirstFailure>,
    /// The most instances at which no check fails (up to the range's max for a range).
    pub max_safe_instances: u64,
    /// How the numbers were worked out.
    pub assumptions: Vec<String>,
}

/// A recommended setting or design change.
#[derive(Debug, Clone, Serialize)]
pub struct Recommendation {
    /// The limit to change; `None` for design advice.
    pub limit: Option<Limit>,
    /// Where: `queue manager`, `channel APP.SVRCONN`, or an app.
    pub scope: String,
    /// The value now.
    pub current: Option<u64>,
    /// A value that covers the plan with the headroom.
    pub recommended: Option<u64>,
    /// In words.
    pub text: String,
}

/// Everything [`Report`] is computed from, kept for sweeps and emitters.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The model.
    pub model: Model,
    /// Per app numbers.
    pub numbers: Vec<AppNumbers>,
    /// Requirements.
    pub requirements: Vec<Requirement>,
    /// Planned instance counts (each app's max).
    pub instances: Vec<u64>,
}

impl Plan {
    /// Works out the numbers of `model`.
    #[must_use]
    pub fn new(model: Model) -> Self {
        let numbers = app_numbers(&model);
        let requirements = requirements(&model, &numbers);
        let instances = model.apps.iter().map(|a| a.max_instances).collect();
        Self {
            model,
            numbers,
            requirements,
            instances,
        }
    }

    /// The names of the apps, by index.
    #[must_use]
    pub fn names(&self) -> Vec<&str> {
        self.model.apps.iter().map(|a| a.name.as_str()).collect()
    }

    /// Every check with these instance counts.
    #[must_use]
    pub fn checks(&self, instances: &[u64], headroom: f64) -> Vec<Check> {
        let names = self.names();
        self.requirements
            .iter()
            .map(|r| check(r, instances, headroom, &names))
            .collect()
    }

    /// How far `app` is searched for a first failure: a range's max; a fixed count without
    /// bound (the first failure is solved, not searched, and MaxChannels always has one).
    #[must_use]
    pub fn search_max(&self, app: usize) -> u64 {
        let a = &self.model.apps[app];
        if a.range { a.max_instances } else { u64::MAX }
    }

    /// The report, with `headroom` percent asked for.
    #[must_use]
    pub fn report(&self, origin: &str, headroom: f64) -> Report {
        let qm = &self.model.queue_manager;
        let checks = self.checks(&self.instances, headroom);
        let apps = self.app_reports();
        let total_open_handles = apps
            .iter()
            .map(|a| a.connections.saturating_mul(a.peak_handles_per_connection))
            .fold(0, u64::saturating_add);
        let status = checks.iter().map(|c| c.status).max().unwrap_or(Status::Ok);
        Report {
            schema_version: SCHEMA_VERSION,
            origin: origin.to_owned(),
            headroom_pct: headroom,
            queue_manager: QmgrReport {
                name: qm.name.clone(),
                max_handles: qm.max_handles,
                max_channels: qm.max_channels,
                max_active_channels: qm.max_active_channels,
                max_uncommitted: qm.max_uncommitted,
                max_connections: qm.max_connections,
                other_channels: qm.other_channels,
                channels: qm
                    .channels
                    .iter()
                    .map(|c| ChannelReport {
                        name: c.name.clone(),
                        max_inst: c.max_inst,
                        max_instc: c.max_instc,
                        sharecnv: c.sharecnv,
                    })
                    .collect(),
            },
            recommendations: self.recommendations(&checks, headroom),
            apps,
            checks,
            total_open_handles,
            status,
        }
    }

    fn app_reports(&self) -> Vec<AppReport> {
        let qm = &self.model.queue_manager;
        self.model
            .apps
            .iter()
            .zip(&self.numbers)
            .enumerate()
            .map(|(i, (app, n))| {
                let instances = self.instances[i];
                let first = first_failure(&self.requirements, i, &self.instances, self.search_max(i));
                AppReport {
                    name: app.name.clone(),
                    profile: app.profile,
                    channel: qm.channels[app.channel].name.clone(),
                    client_address: match &app.address {
                        Address::PerInstance => PER_INSTANCE.to_owned(),
                        Address::Group(g) => g.clone(),
                    },
                    instances,
                    instances_range: app.range.then_some(Range {
                        min: app.min_instances,
                        max: app.max_instances,
                    }),
                    connections_per_instance: n.demand.connections,
                    connections: instances.saturating_mul(n.demand.connections),
                    sharecnv: n.sharecnv,
                    channel_instances_per_instance: n.channel_instances,
                    channel_instances: instances.saturating_mul(n.channel_instances),
                    peak_handles_per_connection: n.demand.handles,
                    uncommitted_per_unit_of_work: n.demand.uncommitted,
                    max_safe_instances: first.map_or(self.search_max(i), |f| f.instances - 1),
                    first_failure: first,
                    assumptions: n
                        .demand
                        .assumptions
                        .iter()
                        .cloned()
                        .chain(address_warning(app))
                        .collect(),
                }
            })
            .collect()
    }
}

/// A warning for an app left on the per-instance default: MAXINSTC counts a client address,
/// and instances often share one they do not know about.
fn address_warning(app: &App) -> Option<String> {
    if app.client_address_given {
        return None;
    }
    let why = if app.profile == Profile::LogicappsBuiltin {
        "Logic Apps Standard instances usually leave through shared outbound IP addresses or a NAT gateway"
    } else {
        "pods often leave through their node's address (SNAT), and a NAT gateway or a proxy makes many \
         instances one address"
    };
    Some(format!(
        "warning: no `client_address` given, so each instance is taken to connect from an address of its own \
         (per-instance); {why}, and MAXINSTC counts everything from one address together: if instances share an \
         outbound address, set client_address to a group name (client_address = \"per-instance\" keeps the \
         default without this warning)"
    ))
}

/// `n` for a report: a count saturated at `u64::MAX` (a sum or product past what a `u64`
/// holds) as "more than 999999999", since only its being past every limit MQ takes is known.
#[must_use]
pub fn count(n: u64) -> String {
    if n == u64::MAX {
        format!("more than {UNLIMITED}")
    } else {
        n.to_string()
    }
}

/// "1 instance", "2 instances".
#[must_use]
pub fn instances(n: u64) -> String {
    format!("{} instance{}", count(n), if n == 1 { "" } else { "s" })
}

/// An MQ object name as MQSC reads it: quoted, so that lower case is kept (MQSC folds an
/// unquoted name to upper case), with any quote doubled.
#[must_use]
pub fn mqsc_name(name: &str) -> String {
    format!("'{}'", name.replace('\'', "''"))
}
