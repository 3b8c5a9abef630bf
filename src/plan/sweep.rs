//! Scaling one app: every check's numbers at each instance count, the rest of the fleet fixed.
//!
//! A sweep row costs one pass over the requirements, so 10,000 counts of a 200-app fleet stay
//! well under a frame's time; the first failure comes from the same closed form as the report.

use serde::Serialize;

use super::check::{Status, status};
use super::math::{FirstFailure, Limit, first_failure};
use super::report::{Plan, count, instances};

/// The most rows (instance counts) one sweep has.
pub const MAX_ROWS: u64 = 100_000;

/// One instance count of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepRow {
    /// The app's instance count.
    pub instances: u64,
    /// The app's channel instances (instances x C).
    pub channel_instances: u64,
    /// Channel instances on its channel over all apps (MAXINST's view).
    pub channel_total: u64,
    /// Channel instances on the queue manager, the other channels' included (MaxChannels' view).
    pub qmgr_channel_instances: u64,
    /// Handles on one of its connections (does not grow with instances).
    pub handles_per_connection: u64,
    /// The worst of the checks the app takes part in.
    pub status: Status,
    /// The limits among them that fail at this count.
    pub failing: Vec<Limit>,
}

/// A sweep of one app.
#[derive(Debug, Clone, Serialize)]
pub struct Sweep {
    /// The app.
    pub app: String,
    /// The rows, by instance count.
    pub rows: Vec<SweepRow>,
    /// Where the app first fails (searched to the sweep's end).
    pub first_failure: Option<FirstFailure>,
    /// MAXINST of its channel.
    pub max_inst: u64,
    /// MaxChannels (or MaxActiveChannels if lower).
    pub max_channels: u64,
    /// Which of the two `max_channels` is: MaxActiveChannels when it is the lower.
    pub max_channels_limit: Limit,
    /// MAXHANDS.
    pub max_handles: u64,
    /// The requirement that fails first as the app scales (wherever that is, in this range
    /// or not), with what it requires at each row: the chart draws it against its limit.
    /// `None` when nothing the app takes part in can fail.
    pub limiting: Option<Limiting>,
}

/// What one requirement needs at each row of a sweep, and its limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Limiting {
    /// The limit.
    pub limit: Limit,
    /// Where it applies.
    pub scope: String,
    /// What is configured.
    pub configured: u64,
    /// What it requires at each row, in row order.
    pub required: Vec<u64>,
}

/// Sweeps app `app` over `from..=to` instances.
#[must_use]
pub fn sweep(plan: &Plan, app: usize, from: u64, to: u64, headroom: f64) -> Sweep {
    let mut instances = plan.instances.clone();
    let channel = plan.model.apps[app].channel;
    let n = &plan.numbers[app];
    let qm = &plan.model.queue_manager;
    // Only the checks the app takes part in, as for its first failure: another app's own
    // MAXHANDS does not change with this app's instances.
    let involved: Vec<_> = plan.requirements.iter().filter(|r| r.involves(app)).collect();
    let c = n.channel_instances;
    let others = |on_channel: bool| {
        (0..instances.len())
            .filter(|&j| j != app && (!on_channel || plan.model.apps[j].channel == channel))
            .map(|j| instances[j].saturating_mul(plan.numbers[j].channel_instances))
            .fold(0, u64::saturating_add)
    };
    let (others_on_channel, others_on_qmgr) = (others(true), others(false).saturating_add(qm.other_channels));
    // Ties go to the requirement listed first, as for the first failure.
    let limiting = involved
        .iter()
        .filter_map(|r| r.first_failure(app, &plan.instances).map(|at| (at, *r)))
        .min_by_key(|&(at, _)| at)
        .map(|(_, r)| r);
    let mut limiting_required = Vec::new();
    let rows = (from..=to)
        .map(|i| {
            instances[app] = i;
            let mut worst = Status::Ok;
            let mut failing = Vec::new();
            for r in &involved {
                let s = status(r, r.required(&instances), headroom);
                worst = worst.max(s);
                if s == Status::Fails && !failing.contains(&r.limit) {
                    failing.push(r.limit);
                }
            }
            if let Some(r) = limiting {
                limiting_required.push(r.required(&instances));
            }
            let mine = i.saturating_mul(c);
            SweepRow {
                instances: i,
                channel_instances: mine,
                channel_total: others_on_channel.saturating_add(mine),
                qmgr_channel_instances: others_on_qmgr.saturating_add(mine),
                handles_per_connection: n.demand.handles,
                status: worst,
                failing,
            }
        })
        .collect();
    let limiting = limiting.map(|r| Limiting {
        limit: r.limit,
        scope: r.scope.clone(),
        configured: r.configured,
        required: limiting_required,
    });
    Sweep {
        app: plan.model.apps[app].name.clone(),
        rows,
        first_failure: first_failure(&plan.requirements, app, &plan.instances, to),
        max_inst: qm.channels[channel].max_inst,
        max_channels: qm.max_channels.min(qm.max_active_channels),
        max_channels_limit: if qm.max_active_channels < qm.max_channels {
            Limit::MaxActiveChannels
        } else {
            Limit::MaxChannels
        },
        max_handles: qm.max_handles,
        limiting,
    }
}

/// The sweep as a text table.
#[must_use]
pub fn render_sweep(s: &Sweep) -> String {
    use std::fmt::Write as _;
    let mut out = format!(
        "mqplan sweep: {} (MAXINST {}, {} {}, MAXHANDS {})\n",
        s.app,
        s.max_inst,
        s.max_channels_limit.name(),
        s.max_channels,
        s.max_handles
    );
    let _ = writeln!(
        out,
        "{:>9}  {:>17}  {:>13}  {:>14}  {:>17}  {:<7}  failing",
        "instances", "channel instances", "channel total", "qmgr instances", "handles per conn", "status"
    );
    for r in &s.rows {
        let failing: Vec<&str> = r.failing.iter().map(|l| l.name()).collect();
        let line = format!(
            "{:>9}  {:>17}  {:>13}  {:>14}  {:>17}  {:<7}  {}",
            r.instances,
            count(r.channel_instances),
            count(r.channel_total),
            count(r.qmgr_channel_instances),
            r.handles_per_connection,
            r.status.name(),
            failing.join(", ")
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    match s.first_failure {
        Some(f) => {
            let _ = writeln!(
                out,
                "first failure: {} ({}) at {}",
                f.reason_code,
                f.limit.name(),
                instances(f.instances)
            );
        }
        None => out.push_str("first failure: none in this range\n"),
    }
    out
}
