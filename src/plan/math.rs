//! The planner's arithmetic: what a fleet requires of each queue manager limit. Pure: no I/O.
//!
//! Every limit is a [`Requirement`] that is linear in the apps' instance counts:
//! `required = constant + sum(coefficient(app) x instances(app))`. That one shape covers
//! MAXHANDS (a constant), MAXINST (sum of I x C over a channel's apps), MAXINSTC (C per
//! instance, or a group's sum), MaxChannels (the other channels' instances plus the fleet's),
//! the connection limit and MAXUMSGS, and lets the
//! first failing instance count of an app be solved in closed form instead of searched.

use serde::Serialize;

use super::model::{Address, Model};
use super::profile::{Demand, Profile, demand};

/// MQRC_HANDLE_NOT_AVAILABLE.
pub const MQRC_HANDLE_NOT_AVAILABLE: i32 = 2017;
/// MQRC_SYNCPOINT_LIMIT_REACHED.
pub const MQRC_SYNCPOINT_LIMIT_REACHED: i32 = 2024;
/// MQRC_MAX_CONNS_LIMIT_REACHED.
pub const MQRC_MAX_CONNS_LIMIT_REACHED: i32 = 2025;
/// MQRC_CHANNEL_NOT_AVAILABLE.
pub const MQRC_CHANNEL_NOT_AVAILABLE: i32 = 2537;

/// A queue manager limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Limit {
    /// MAXHANDS: handles per connection.
    #[serde(rename = "MAXHANDS")]
    MaxHands,
    /// MAXINST: instances of one channel.
    #[serde(rename = "MAXINST")]
    MaxInst,
    /// MAXINSTC: instances of one channel from one client address.
    #[serde(rename = "MAXINSTC")]
    MaxInstc,
    /// MaxChannels: channel instances on the queue manager.
    #[serde(rename = "MaxChannels")]
    MaxChannels,
    /// MaxActiveChannels: active channel instances.
    #[serde(rename = "MaxActiveChannels")]
    MaxActiveChannels,
    /// The connection limit.
    #[serde(rename = "max_connections")]
    MaxConnections,
    /// MAXUMSGS: messages in one unit of work.
    #[serde(rename = "MAXUMSGS")]
    MaxUmsgs,
}

impl Limit {
    /// The name MQ users know.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::MaxHands => "MAXHANDS",
            Self::MaxInst => "MAXINST",
            Self::MaxInstc => "MAXINSTC",
            Self::MaxChannels => "MaxChannels",
            Self::MaxActiveChannels => "MaxActiveChannels",
            Self::MaxConnections => "max_connections",
            Self::MaxUmsgs => "MAXUMSGS",
        }
    }

    /// The reason code MQ returns past this limit.
    #[must_use]
    pub const fn reason_code(self) -> i32 {
        match self {
            Self::MaxHands => MQRC_HANDLE_NOT_AVAILABLE,
            Self::MaxInst | Self::MaxInstc | Self::MaxChannels | Self::MaxActiveChannels => MQRC_CHANNEL_NOT_AVAILABLE,
            Self::MaxConnections => MQRC_MAX_CONNS_LIMIT_REACHED,
            Self::MaxUmsgs => MQRC_SYNCPOINT_LIMIT_REACHED,
        }
    }
}

/// One app's numbers per instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppNumbers {
    /// K, H, U and the assumptions.
    pub demand: Demand,
    /// Effective SHARECNV: min(app, channel); 0 = no sharing.
    pub sharecnv: u64,
    /// C = ceil(K / S), or K when S = 0.
    pub channel_instances: u64,
}

/// Channel instances one instance starts: ceil(K / S), or K when S = 0 (no sharing).
#[must_use]
pub const fn channel_instances(connections: u64, sharecnv: u64) -> u64 {
    if sharecnv == 0 {
        connections
    } else {
        connections.div_ceil(sharecnv)
    }
}

/// Each app's numbers per instance.
#[must_use]
pub fn app_numbers(model: &Model) -> Vec<AppNumbers> {
    model
        .apps
        .iter()
        .map(|app| {
            let demand = demand(app);
            let sharecnv = app.sharecnv.min(model.queue_manager.channels[app.channel].sharecnv);
            let channel_instances = channel_instances(demand.connections, sharecnv);
            AppNumbers {
                demand,
                sharecnv,
                channel_instances,
            }
        })
        .collect()
}

/// What the fleet requires of one limit in one scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// The limit.
    pub limit: Limit,
    /// Where it applies: `queue manager`, `channel APP.SVRCONN`, `app orders`, ...
    pub scope: String,
    /// The part that does not grow with instances.
    pub constant: u64,
    /// (app index, what one more instance of it adds).
    pub terms: Vec<(usize, u64)>,
    /// The configured value.
    pub configured: u64,
    /// Exceeding it cannot happen by construction (mqpilot's pool caps its handles): at risk,
    /// never failing.
    pub capped: bool,
}

impl Requirement {
    /// Required with these instance counts (indexed by app).
    #[must_use]
    pub fn required(&self, instances: &[u64]) -> u64 {
        self.terms.iter().fold(self.constant, |sum, &(app, coef)| {
            sum.saturating_add(coef.saturating_mul(instances[app]))
        })
    }

    /// Whether `app` takes part.
    #[must_use]
    pub fn involves(&self, app: usize) -> bool {
        self.terms.iter().any(|&(a, _)| a == app)
    }

    /// The smallest instance count of `app` (the others as in `instances`) at which this
    /// requirement exceeds its limit; `None` if it never does.
    #[must_use]
    pub fn first_failure(&self, app: usize, instances: &[u64]) -> Option<u64> {
        if self.capped {
            return None;
        }
        let (mine, others): (Vec<_>, Vec<_>) = self.terms.iter().partition(|&&(a, _)| a == app);
        let coef = mine.iter().fold(0, |sum: u64, &&(_, c)| sum.saturating_add(c));
        let others = others.iter().fold(self.constant, |sum, &&(a, c)| {
            sum.saturating_add(c.saturating_mul(instances[a]))
        });
        if others > self.configured {
            return Some(1);
        }
        if coef == 0 {
            return None;
        }
        Some((self.configured - others) / coef + 1)
    }
}

/// Every requirement of the fleet, in report order: per app MAXHANDS and MAXUMSGS, per
/// channel MAXINST and MAXINSTC, then MaxChannels, MaxActiveChannels and the connection limit.
#[must_use]
pub fn requirements(model: &Model, numbers: &[AppNumbers]) -> Vec<Requirement> {
    let qm = &model.queue_manager;
    let mut out = Vec::new();
    for (i, (app, n)) in model.apps.iter().zip(numbers).enumerate() {
        out.push(Requirement {
            limit: Limit::MaxHands,
            scope: format!("app {}, per connection", app.name),
            constant: n.demand.handles,
            terms: vec![(i, 0)],
            configured: qm.max_handles,
            capped: app.profile == Profile::Mqpilot,
        });
    }
    for (c, channel) in qm.channels.iter().enumerate() {
        let on: Vec<usize> = (0..model.apps.len()).filter(|&a| model.apps[a].channel == c).collect();
        if on.is_empty() {
            continue;
        }
        out.push(Requirement {
            limit: Limit::MaxInst,
            scope: format!("channel {}", channel.name),
            constant: 0,
            terms: on.iter().map(|&a| (a, numbers[a].channel_instances)).collect(),
            configured: channel.max_inst,
            capped: false,
        });
        let mut groups: Vec<&str> = Vec::new();
        for &a in &on {
            match &model.apps[a].address {
                Address::PerInstance => out.push(Requirement {
                    limit: Limit::MaxInstc,
                    scope: format!("channel {}, each instance of {}", channel.name, model.apps[a].name),
                    constant: numbers[a].channel_instances,
                    terms: vec![(a, 0)],
                    configured: channel.max_instc,
                    capped: false,
                }),
                Address::Group(g) if !groups.contains(&g.as_str()) => groups.push(g),
                Address::Group(_) => {}
            }
        }
        for g in groups {
            let members = on
                .iter()
                .filter(|&&a| model.apps[a].address == Address::Group(g.to_owned()))
                .map(|&a| (a, numbers[a].channel_instances));
            out.push(Requirement {
                limit: Limit::MaxInstc,
                scope: format!("channel {}, address group {g}", channel.name),
                constant: 0,
                terms: members.collect(),
                configured: channel.max_instc,
                capped: false,
            });
        }
    }
    let all_instances: Vec<(usize, u64)> = numbers.iter().map(|n| n.channel_instances).enumerate().collect();
    out.push(Requirement {
        limit: Limit::MaxChannels,
        scope: "queue manager".into(),
        constant: qm.other_channels,
        terms: all_instances.clone(),
        configured: qm.max_channels,
        capped: false,
    });
    if qm.max_active_channels < qm.max_channels {
        out.push(Requirement {
            limit: Limit::MaxActiveChannels,
            scope: "queue manager".into(),
            constant: qm.other_channels,
            terms: all_instances,
            configured: qm.max_active_channels,
            capped: false,
        });
    }
    if let Some(max) = qm.max_connections {
        out.push(Requirement {
            limit: Limit::MaxConnections,
            scope: "queue manager".into(),
            constant: 0,
            terms: numbers.iter().map(|n| n.demand.connections).enumerate().collect(),
            configured: max,
            capped: false,
        });
    }
    for (i, (app, n)) in model.apps.iter().zip(numbers).enumerate() {
        out.push(Requirement {
            limit: Limit::MaxUmsgs,
            scope: format!("app {}, per unit of work", app.name),
            constant: n.demand.uncommitted,
            terms: vec![(i, 0)],
            configured: qm.max_uncommitted,
            capped: false,
        });
    }
    out
}

/// Where scaling one app first breaks something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FirstFailure {
    /// The smallest instance count at which a check fails.
    pub instances: u64,
    /// The limit that fails first.
    pub limit: Limit,
    /// The reason code MQ returns then.
    pub reason_code: i32,
}

/// The first failure of `app` scaled alone (the others at `instances`) among the checks it
/// takes part in, searched up to `search_max`; ties go to the limit listed first by
/// [`requirements`]. Another app's own MAXHANDS or MAXUMSGS is not this app's failure.
#[must_use]
pub fn first_failure(reqs: &[Requirement], app: usize, instances: &[u64], search_max: u64) -> Option<FirstFailure> {
    reqs.iter()
        .filter(|r| r.involves(app))
        .filter_map(|r| r.first_failure(app, instances).map(|at| (at, r.limit)))
        .filter(|&(at, _)| at <= search_max)
        .min_by_key(|&(at, _)| at)
        .map(|(at, limit)| FirstFailure {
            instances: at,
            limit,
            reason_code: limit.reason_code(),
        })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn channel_instances_round_up_and_zero_means_no_sharing() {
        assert_eq!(channel_instances(10, 10), 1);
        assert_eq!(channel_instances(11, 10), 2);
        assert_eq!(channel_instances(7, 0), 7);
        assert_eq!(channel_instances(7, 1), 7);
    }

    fn linear(constant: u64, terms: Vec<(usize, u64)>, configured: u64) -> Requirement {
        Requirement {
            limit: Limit::MaxInst,
            scope: String::new(),
            constant,
            terms,
            configured,
            capped: false,
        }
    }

    #[test]
    fn first_failure_solves_the_linear_limit() {
        let r = linear(0, vec![(0, 2), (1, 3)], 20);
        // others: 3 x 4 = 12; 12 + 2 x I > 20 first at I = 5
        assert_eq!(r.first_failure(0, &[1, 4]), Some(5));
        assert_eq!(r.first_failure(1, &[30, 1]), Some(1));
        assert_eq!(linear(5, vec![(0, 0)], 4).first_failure(0, &[1]), Some(1));
        assert_eq!(linear(4, vec![(0, 0)], 4).first_failure(0, &[1]), None);
    }

    #[test]
    fn first_failure_of_huge_requirements_saturates() {
        let r = linear(0, vec![(0, u64::MAX / 2), (1, u64::MAX / 2)], 999_999_999);
        assert_eq!(r.first_failure(0, &[999_999_999, 999_999_999]), Some(1));
        assert_eq!(r.required(&[3, 3]), u64::MAX);
        let alone = linear(0, vec![(0, u64::MAX / 2)], 999_999_999);
        assert_eq!(alone.first_failure(0, &[999_999_999]), Some(1));
    }

    #[test]
    fn other_channels_count_against_max_channels_and_max_active_channels() {
        // 6 channel instances of the app's own, 5 of other channels: 11 against 10.
        let text = "[queue_manager]\nname = \"QM1\"\nmax_channels = 20\nmax_active_channels = 10\n\
                    other_channels = 5\n[[queue_manager.channel]]\nname = \"C\"\nsharecnv = 1\n[[app]]\n\
                    name = \"a\"\nprofile = \"tibco\"\nchannel = \"C\"\ninstances = 6\n[[app.workload]]\n\
                    queue = \"Q\"\nkind = \"process\"\n";
        let model = Model::from_toml(text, std::path::Path::new("m.toml")).expect("valid");
        let numbers = app_numbers(&model);
        let reqs = requirements(&model, &numbers);
        for limit in [Limit::MaxChannels, Limit::MaxActiveChannels] {
            let r = reqs.iter().find(|r| r.limit == limit).expect("the requirement");
            assert_eq!(r.required(&[6]), 11, "{limit:?}");
        }
        // MaxActiveChannels 10 already holds 5: the app's 6th instance is the first too many.
        let first = first_failure(&reqs, 0, &[6], u64::MAX).expect("a failure");
        assert_eq!((first.instances, first.limit), (6, Limit::MaxActiveChannels));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn first_failure_is_the_smallest_failing_count(
            constant in 0u64..20, c0 in 0u64..5, c1 in 0u64..5, other in 1u64..10, configured in 1u64..60,
        ) {
            let r = linear(constant, vec![(0, c0), (1, c1)], configured);
            let found = r.first_failure(0, &[1, other]);
            let searched = (1..=200).find(|&i| r.required(&[i, other]) > configured);
            prop_assert_eq!(found.filter(|&i| i <= 200), searched);
        }
    }
}
