//! Advice: a setting per limit that is not ok, with the value that covers the plan, and
//! design changes where a setting is not the whole answer.
//!
//! A recommended value is never above what MQ takes (999,999,999): past it the text says what
//! to change instead. Settings MQSC cannot make (qm.ini's MaxChannels, the connection limit)
//! say where they are made.

use super::check::{Check, Status, covering};
use super::math::{AppNumbers, Limit};
use super::model::{App, Channel, UNLIMITED};
use super::profile::{Kind, Profile};
use super::report::{Plan, Recommendation, count, mqsc_name};

impl Plan {
    /// One setting per limit and scope that is not ok (the most any of its checks needs),
    /// then design advice.
    pub(super) fn recommendations(&self, checks: &[Check], headroom: f64) -> Vec<Recommendation> {
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
