//! The plan of a fleet: per-app numbers, every check, recommendations and the overall status.
//!
//! [`Report`] is the JSON contract (`mqplan check --format json`, the MCP tool): field names
//! and meanings are documented in the README and only ever added to. The text and markdown
//! renderers read the same struct, so all three formats say the same thing.

use serde::Serialize;

use super::check::{Check, Status, check, covering};
use super::math::{AppNumbers, FirstFailure, Limit, Requirement, app_numbers, first_failure, requirements};
use super::model::{Address, App, Channel, Model, PER_INSTANCE, UNLIMITED};
use super::profile::{Kind, Profile};

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

    /// One setting per limit and scope that is not ok (the most any of its checks needs),
    /// then design advice.
    fn recommendations(&self, checks: &[Check], headroom: f64) -> Vec<Recommendation> {
        // The most any check needs, per limit and the scope it is set on.
        let mut needs: Vec<(Limit, String, u64, u64)> = Vec::new();
        for c in checks.iter().filter(|c| c.status != Status::Ok) {
            let scope = setting_scope(c);
            match needs.iter_mut().find(|(limit, s, ..)| *limit == c.limit && *s == scope) {
                Some((.., required)) => *required = (*required).max(c.required),
                None => needs.push((c.limit, scope, c.configured, c.required)),
            }
        }
        let mut out: Vec<Recommendation> = needs
            .into_iter()
            .map(|(limit, scope, current, required)| {
                let needed = covering(required, headroom);
                Recommendation {
                    limit: Some(limit),
                    text: setting_text(limit, &scope, current, needed, headroom),
                    scope,
                    current: Some(current),
                    // A value MQ would refuse is no recommendation: the text says what to change.
                    recommended: (needed <= UNLIMITED).then_some(needed),
                }
            })
            .collect();
        out.extend(self.design_advice());
        out
    }

    fn design_advice(&self) -> Vec<Recommendation> {
        let mut out = Vec::new();
        let qm = &self.model.queue_manager;
        if qm.max_active_channels > qm.max_channels {
            out.push(Recommendation {
                limit: None,
                scope: "queue manager".into(),
                current: None,
                recommended: None,
                text: format!(
                    "max_active_channels ({}) is above max_channels ({}): no more than MaxChannels channel \
                     instances can start, so {} applies to both (the checks use MaxChannels)",
                    qm.max_active_channels, qm.max_channels, qm.max_channels
                ),
            });
        }
        out.extend(self.blocked_channels());
        for (app, n) in self.model.apps.iter().zip(&self.numbers) {
            let locks = app.workloads.iter().any(|w| w.kind.browse_locks());
            if app.profile == Profile::LogicappsBuiltin && locks && n.demand.handles > 1 {
                out.push(design(
                    &app.name,
                    format!(
                        "receiving these batches under syncpoint (mqpilot `poll`) needs 1 handle per connection \
                         instead of {}",
                        n.demand.handles
                    ),
                ));
            }
            if let Some(advice) = sharecnv_advice(app, n, &self.model.queue_manager.channels[app.channel]) {
                out.push(design(&app.name, advice));
            }
            if app.profile == Profile::Mqpilot
                && n.demand.uncommitted > self.model.queue_manager.max_uncommitted
                && app.workloads.iter().any(|w| w.kind == Kind::Forward)
            {
                out.push(design(
                    &app.name,
                    "a forward batch counts its gets and its puts against MAXUMSGS: halve the batch".into(),
                ));
            }
        }
        out
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

impl Plan {
    /// A note for each channel in use that MAXINST(0) or MAXINSTC(0) blocks.
    fn blocked_channels(&self) -> Vec<Recommendation> {
        let qm = &self.model.queue_manager;
        qm.channels
            .iter()
            .enumerate()
            .filter(|&(c, _)| self.model.apps.iter().any(|a| a.channel == c))
            .filter_map(|(_, channel)| {
                let zero = match (channel.max_inst, channel.max_instc) {
                    (0, _) => "MAXINST(0)",
                    (_, 0) => "MAXINSTC(0)",
                    _ => return None,
                };
                Some(Recommendation {
                    limit: None,
                    scope: format!("channel {}", channel.name),
                    current: None,
                    recommended: None,
                    text: format!(
                        "{zero} blocks it: no client can start an instance of channel {}, so every app on it gets \
                         2537 (the setting above gives the value the plan needs)",
                        channel.name
                    ),
                })
            })
            .collect()
    }
}

/// SHARECNV that fits this many conversations on a channel instance: MQ's default.
const SHARED_CONVERSATIONS: u64 = 10;

/// Advice when the effective SHARECNV (the lower of the client's and the channel's) starts more
/// channel instances than SHARECNV 10 would, saying which side to raise.
fn sharecnv_advice(app: &App, n: &AppNumbers, channel: &Channel) -> Option<String> {
    let target = SHARED_CONVERSATIONS;
    let shared = n.demand.connections.div_ceil(target);
    if n.sharecnv >= target || n.channel_instances <= shared {
        return None;
    }
    let sides = format!(
        "the lower of the client's {} and channel {}'s {}",
        app.sharecnv, channel.name, channel.sharecnv
    );
    let what = if n.sharecnv == 0 {
        format!("SHARECNV 0 ({sides}) starts a channel instance per connection")
    } else {
        let plural = if n.sharecnv == 1 { "" } else { "s" };
        format!(
            "SHARECNV {} ({sides}) allows {} conversation{plural} per channel instance",
            n.sharecnv, n.sharecnv
        )
    };
    let client = "the client's SHARECNV (the app's `sharecnv`)";
    let server = format!("channel {}'s SHARECNV", channel.name);
    let alter = format!(
        " (ALTER CHANNEL({}) CHLTYPE(SVRCONN) SHARECNV({target}))",
        mqsc_name(&channel.name)
    );
    let raise = match (app.sharecnv < target, channel.sharecnv < target) {
        (true, true) => format!("{client} and {server} to {target}{alter}"),
        (true, false) => format!("{client} to {target}"),
        _ => format!("{server} to {target}{alter}"),
    };
    let behaviour = if n.sharecnv == 0 {
        "; SHARECNV 0 is the IBM MQ V6-compatible mode: no shared conversations, no read-ahead, no asynchronous \
         consume and no bidirectional heartbeats, so raising it from 0 changes how the channel behaves, not only \
         how many instances it starts: test the app with it"
    } else {
        ""
    };
    Some(format!(
        "{what} ({} per instance); raising {raise} would start {shared}{behaviour}",
        n.channel_instances
    ))
}

fn design(app: &str, text: String) -> Recommendation {
    Recommendation {
        limit: None,
        scope: format!("app {app}"),
        current: None,
        recommended: None,
        text,
    }
}

/// Where a limit is set: MAXINST and MAXINSTC on the channel, the rest on the queue manager.
fn setting_scope(c: &Check) -> String {
    match c.limit {
        Limit::MaxInst | Limit::MaxInstc => c.scope.split(',').next().unwrap_or(&c.scope).to_owned(),
        _ => "queue manager".into(),
    }
}

fn setting_text(limit: Limit, scope: &str, current: u64, needed: u64, headroom: f64) -> String {
    if needed > UNLIMITED {
        let instead = match limit {
            Limit::MaxHands => "hold fewer handles on one connection",
            Limit::MaxUmsgs => "use smaller units of work",
            _ => "spread the fleet over more channels or queue managers, or share conversations (SHARECNV)",
        };
        return format!(
            "{} on {scope}: no value covers the plan ({} with {headroom}% headroom; MQ takes at most \
             {UNLIMITED}): {instead}",
            limit.name(),
            count(needed)
        );
    }
    let what = match limit {
        Limit::MaxHands => format!("ALTER QMGR MAXHANDS({needed})"),
        Limit::MaxInst | Limit::MaxInstc => format!(
            "ALTER CHANNEL({}) CHLTYPE(SVRCONN) {}({needed})",
            mqsc_name(scope.trim_start_matches("channel ")),
            limit.name()
        ),
        Limit::MaxChannels => format!("MaxChannels={needed} in qm.ini's CHANNELS stanza"),
        Limit::MaxActiveChannels => format!("MaxActiveChannels={needed} in qm.ini's CHANNELS stanza"),
        Limit::MaxConnections => format!(
            "a connection limit of at least {needed}; it is not an MQSC attribute: raise it where your \
             installation sets it, or open fewer connections"
        ),
        Limit::MaxUmsgs => format!("ALTER QMGR MAXUMSGS({needed})"),
    };
    let caveat = match limit {
        Limit::MaxChannels | Limit::MaxActiveChannels if needed > MAX_CHANNELS_DOCUMENTED => {
            format!("; {}", above_documented(needed))
        }
        _ => String::new(),
    };
    format!(
        "{} on {scope}: {current} -> {needed} ({what}) covers the plan with {headroom}% headroom{caveat}",
        limit.name()
    )
}

/// The largest MaxChannels and MaxActiveChannels older IBM MQ references document on
/// distributed platforms (1 to 65535). Newer queue managers may take more, so a larger value
/// is recommended with a caveat rather than refused.
pub const MAX_CHANNELS_DOCUMENTED: u64 = 65_535;

/// The caveat for a MaxChannels or MaxActiveChannels of `n`, above [`MAX_CHANNELS_DOCUMENTED`].
#[must_use]
pub fn above_documented(n: u64) -> String {
    format!(
        "{n} is above {MAX_CHANNELS_DOCUMENTED}, the largest MaxChannels older IBM MQ references document on \
         distributed platforms: check that your version takes it, or spread the fleet over more queue managers"
    )
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
