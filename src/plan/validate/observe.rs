//! The snapshot: what the fake observed, set against the plan.
//!
//! A [`Snapshot`] is read from the in-process fake or from a `fake-qm` server's status; the
//! comparison is the same for both.

use std::collections::{BTreeMap, BTreeSet};

use super::{Compared, Outcome, WATCHED};
use crate::fake::{ChannelStatus, ConnStatus, FakeQm};
use crate::plan::check::{Check, Status};
use crate::plan::math::{Limit, MQRC_CHANNEL_NOT_AVAILABLE, MQRC_MAX_CONNS_LIMIT_REACHED};
use crate::plan::model::Address;
use crate::plan::profile::{Profile, mqpilot_queues};
use crate::plan::report::Plan;

/// What the fake showed at the barrier.
pub(super) struct Snapshot {
    /// Live connections.
    pub conns: Vec<ConnStatus>,
    /// Channels with their instances per client address.
    pub channels: Vec<ChannelStatus>,
    /// Watched reason codes returned, with counts.
    pub reasons: BTreeMap<i32, u64>,
    /// The client address the fake counts for an address group, when not the group's name.
    pub group_addresses: BTreeMap<String, String>,
}

impl Snapshot {
    /// The in-process fake, where an address group's name is its client address.
    pub(super) fn of(qm: &FakeQm) -> Self {
        Self {
            conns: qm.connections().into_iter().filter(|c| c.broken.is_none()).collect(),
            channels: qm.channels(),
            reasons: watched(qm.reason_counts().into_iter().map(|((_, r), n)| (r, n))),
            group_addresses: BTreeMap::new(),
        }
    }
}

/// The watched reason codes among `counts`, summed over verbs.
pub(super) fn watched(counts: impl IntoIterator<Item = (i32, u64)>) -> BTreeMap<i32, u64> {
    let mut out = BTreeMap::new();
    for (reason, n) in counts {
        if WATCHED.contains(&reason) && n > 0 {
            *out.entry(reason).or_insert(0) += n;
        }
    }
    out
}

/// Notes for the jms apps whose MAXUMSGS check fails: only a listener's puts to its `queues`
/// pass it, and the run puts nothing.
fn undriven_listener_puts(plan: &Plan, failing: &[&Check]) -> Vec<String> {
    plan.model
        .apps
        .iter()
        .filter(|a| a.profile == Profile::Jms)
        .filter(|a| {
            failing
                .iter()
                .any(|c| c.limit == Limit::MaxUmsgs && c.apps.contains(&a.name))
        })
        .map(|a| {
            format!(
                "{}: its puts in the listener's unit of work, which would pass MAXUMSGS, are not driven, so no 2024 \
                 is expected from the run",
                a.name
            )
        })
        .collect()
}

/// Sets the snapshot against the plan.
pub(super) fn observe(plan: &Plan, snap: &Snapshot, mut notes: Vec<String>) -> Outcome {
    let report = plan.report("validate", 0.0);
    let failing: Vec<_> = report.checks.iter().filter(|c| c.status == Status::Fails).collect();
    let max_uncommitted = plan.model.queue_manager.max_uncommitted;
    // The runner holds each batch it gets; it does not put a forward's batch to its target,
    // so a MAXUMSGS failure that only those puts would cause (B <= MAXUMSGS < 2B) cannot
    // show, and the worker's pollers run on.
    // The same for a jms listener's puts to its `queues`: its one get never passes MAXUMSGS.
    let undriven_umsgs = |app: &str| {
        plan.model.apps.iter().any(|a| {
            a.name == app
                && (a.profile == Profile::Jms
                    || a.profile == Profile::Mqpilot && a.workloads.iter().all(|w| w.batch <= max_uncommitted))
        })
    };
    let predicted_reasons: BTreeSet<i32> = failing
        .iter()
        .filter(|c| !(c.limit == Limit::MaxUmsgs && c.apps.iter().all(|a| undriven_umsgs(a))))
        .map(|c| c.reason_code)
        .collect();
    let connect_limited = predicted_reasons
        .iter()
        .any(|r| [MQRC_CHANNEL_NOT_AVAILABLE, MQRC_MAX_CONNS_LIMIT_REACHED].contains(r));
    let conns = &snap.conns;
    let channels = &snap.channels;
    // The worker stops a queue's pollers on 2024 (it will not fix itself), so an mqpilot app
    // whose batch passes MAXUMSGS never holds its worst case: its counts are not compared.
    notes.extend(undriven_listener_puts(plan, &failing));
    let stopped: BTreeSet<&str> = plan
        .model
        .apps
        .iter()
        .filter(|a| a.profile == Profile::Mqpilot)
        .filter(|a| {
            failing
                .iter()
                .any(|c| c.limit == Limit::MaxUmsgs && c.apps.contains(&a.name))
        })
        .map(|a| a.name.as_str())
        .collect();
    let (stopped, forwarding): (BTreeSet<&str>, BTreeSet<&str>) =
        stopped.into_iter().partition(|name| !undriven_umsgs(name));
    for name in &stopped {
        notes.push(format!(
            "{name}: the worker stops its pollers on 2024 (MAXUMSGS), so its connections and channel instances \
             are not compared"
        ));
    }
    for name in &forwarding {
        notes.push(format!(
            "{name}: its forward puts, which would pass MAXUMSGS, are not driven, so no 2024 is expected from \
             the run"
        ));
    }
    let mut numbers = Vec::new();
    if !connect_limited {
        let max_handles = plan.model.queue_manager.max_handles;
        for (app, r) in plan.model.apps.iter().zip(&report.apps) {
            if stopped.contains(app.name.as_str()) {
                continue;
            }
            let mine: Vec<_> = conns.iter().filter(|c| c.appl_name == app.name).collect();
            let instances: BTreeSet<(Option<String>, Option<u64>)> =
                mine.iter().map(|c| (c.channel.clone(), c.instance)).collect();
            let mut per_process: BTreeMap<u64, BTreeSet<Option<u64>>> = BTreeMap::new();
            for c in &mine {
                per_process.entry(c.process).or_default().insert(c.instance);
            }
            let push = |numbers: &mut Vec<Compared>, what: &str, predicted: u64, observed: usize| {
                numbers.push(Compared {
                    what: format!("{}: {what}", app.name),
                    predicted,
                    observed: observed as u64,
                    at_most: false,
                });
            };
            push(&mut numbers, "connections", r.connections, mine.len());
            push(&mut numbers, "channel instances", r.channel_instances, instances.len());
            push(
                &mut numbers,
                "channel instances per instance",
                r.channel_instances_per_instance,
                per_process.values().map(BTreeSet::len).max().unwrap_or(0),
            );
            let peak = mine.iter().map(|c| c.peak_handles).max().unwrap_or(0);
            let mut handles = Compared {
                what: format!("{}: peak handles per connection", app.name),
                predicted: r.peak_handles_per_connection.min(max_handles),
                observed: peak as u64,
                at_most: false,
            };
            if app.profile == Profile::Mqpilot {
                let (inputs, outputs) = mqpilot_queues(app);
                if inputs.len() + outputs.len() > 1 {
                    handles.at_most = true;
                    notes.push(format!(
                        "{}: a connection here holds the handle of the queue its batch came from; the \
                         prediction, {} handles, is a long-running worker's worst case (every queue of the app \
                         cached on each connection), so the peak is compared as at most",
                        app.name,
                        inputs.len() + outputs.len()
                    ));
                }
            }
            numbers.push(handles);
        }
        for (c, channel) in plan.model.queue_manager.channels.iter().enumerate() {
            if plan
                .model
                .apps
                .iter()
                .any(|a| a.channel == c && stopped.contains(a.name.as_str()))
            {
                continue;
            }
            let status = channels.iter().find(|s| s.name == channel.name);
            let predicted: u64 = report
                .apps
                .iter()
                .zip(&plan.model.apps)
                .filter(|(_, a)| a.channel == c)
                .map(|(r, _)| r.channel_instances)
                .sum();
            numbers.push(Compared {
                what: format!("channel {} instances", channel.name),
                predicted,
                observed: status.map_or(0, |s| s.instances as u64),
                at_most: false,
            });
            let mut groups: BTreeMap<&str, u64> = BTreeMap::new();
            for (r, a) in report.apps.iter().zip(&plan.model.apps).filter(|(_, a)| a.channel == c) {
                if let Address::Group(g) = &a.address {
                    *groups.entry(g.as_str()).or_insert(0) += r.channel_instances;
                }
            }
            for (g, predicted) in groups {
                numbers.push(Compared {
                    what: format!("channel {} address group {g} instances", channel.name),
                    predicted,
                    observed: status
                        .and_then(|s| s.per_address.get(snap.group_addresses.get(g).map_or(g, String::as_str)))
                        .map_or(0, |&n| n as u64),
                    at_most: false,
                });
            }
        }
    }
    Outcome {
        numbers,
        predicted_reasons,
        observed_reasons: snap.reasons.clone(),
        connect_limited,
        notes,
        server: None,
        short_of_worst_case: Vec::new(),
    }
}
