//! Emitters: MQSC that sets the limits a plan needs, and a KEDA ScaledObject capped at an
//! app's max safe instances.
//!
//! Values never go down: each limit is set to the larger of what is configured and what
//! covers the planned maximum with the headroom, and every line says why.

use std::fmt::Write as _;

use super::check::covering;
use super::math::Limit;
use super::report::Plan;

/// MQSC for the queue manager and its channels, with a comment on each line, and a note for
/// qm.ini's MaxChannels/MaxActiveChannels (not an MQSC attribute).
#[must_use]
pub fn mqsc(plan: &Plan, headroom: f64) -> String {
    let checks = plan.checks(&plan.instances, headroom);
    let need = |limit: Limit, scope: &dyn Fn(&str) -> bool| {
        checks
            .iter()
            .filter(|c| c.limit == limit && scope(&c.scope))
            .map(|c| c.required)
            .max()
            .unwrap_or(0)
    };
    let qm = &plan.model.queue_manager;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "* mqplan: limits for {} covering the planned maximum with {headroom}% headroom",
        qm.name
    );
    let hands = need(Limit::MaxHands, &|_| true);
    let umsgs = need(Limit::MaxUmsgs, &|_| true);
    let set_hands = qm.max_handles.max(covering(hands, headroom));
    let set_umsgs = qm.max_uncommitted.max(covering(umsgs, headroom));
    let _ = writeln!(
        out,
        "ALTER QMGR MAXHANDS({set_hands}) MAXUMSGS({set_umsgs})\n\
         * MAXHANDS: at most {hands} handles on one connection (was {}); MAXUMSGS: at most {umsgs} messages in one \
         unit of work (was {})",
        qm.max_handles, qm.max_uncommitted
    );
    for (c, channel) in qm.channels.iter().enumerate() {
        if !plan.model.apps.iter().any(|a| a.channel == c) {
            continue;
        }
        let on =
            |s: &str| s == format!("channel {}", channel.name) || s.starts_with(&format!("channel {},", channel.name));
        let inst = need(Limit::MaxInst, &on);
        let instc = need(Limit::MaxInstc, &on);
        let sharecnv = plan
            .model
            .apps
            .iter()
            .zip(&plan.numbers)
            .filter(|(a, _)| a.channel == c)
            .map(|(_, n)| n.sharecnv)
            .max()
            .unwrap_or(channel.sharecnv);
        let _ = writeln!(
            out,
            "ALTER CHANNEL({}) CHLTYPE(SVRCONN) MAXINST({}) MAXINSTC({}) SHARECNV({})\n\
             * {}: {inst} instances from all clients (was MAXINST {}), at most {instc} from one client address \
             (was MAXINSTC {}); SHARECNV {} kept (the lower of client and server applies; clients use up to {sharecnv})",
            channel.name,
            channel.max_inst.max(covering(inst, headroom)),
            channel.max_instc.max(covering(instc, headroom)),
            channel.sharecnv,
            channel.name,
            channel.max_inst,
            channel.max_instc,
            channel.sharecnv
        );
    }
    let channels = need(Limit::MaxChannels, &|_| true);
    let _ = writeln!(
        out,
        "* qm.ini, CHANNELS stanza (not MQSC; restart the queue manager): MaxChannels={} MaxActiveChannels={}\n\
         * {channels} channel instances in all (was MaxChannels {}, MaxActiveChannels {})",
        qm.max_channels.max(covering(channels, headroom)),
        qm.max_active_channels.max(covering(channels, headroom)),
        qm.max_channels,
        qm.max_active_channels
    );
    out
}

/// A KEDA ScaledObject for app `app` (IBM MQ scaler on its first queue), `maxReplicaCount`
/// its max safe instances.
#[must_use]
pub fn keda(plan: &Plan, app: usize, headroom: f64) -> String {
    let report = plan.report("", headroom);
    let a = &report.apps[app];
    let model_app = &plan.model.apps[app];
    let queue = model_app.workloads.first().map_or("", |w| w.queue.as_str());
    let min = model_app.min_instances.min(a.max_safe_instances);
    let why = a.first_failure.map_or_else(
        || format!("no limit fails up to {} instances", a.max_safe_instances),
        |f| {
            format!(
                "{} instances would fail {} with reason code {}",
                f.instances,
                f.limit.name(),
                f.reason_code
            )
        },
    );
    let name = a
        .name
        .to_lowercase()
        .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "-");
    format!(
        "# mqplan: KEDA ScaledObject for {app_name} on {qm}\n\
         # maxReplicaCount {max} is the most instances at which no queue manager limit fails: {why}\n\
         apiVersion: keda.sh/v1alpha1\n\
         kind: ScaledObject\n\
         metadata:\n  name: {name}\n\
         spec:\n  scaleTargetRef:\n    name: {name}\n  minReplicaCount: {min}\n  maxReplicaCount: {max}\n  triggers:\n\
         \x20   - type: ibmmq\n      metadata:\n        queueManager: {qm}\n        queueName: {queue}\n        \
         queueDepth: \"20\"\n        host: https://mq.example.com:9443/ibmmq/rest/v2/admin/action/qmgr/{qm}/mqsc\n      \
         authenticationRef:\n        name: {name}-ibmmq\n",
        app_name = a.name,
        qm = report.queue_manager.name,
        max = a.max_safe_instances,
    )
}
