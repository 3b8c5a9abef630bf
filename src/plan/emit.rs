//! Emitters: MQSC that sets the limits a plan needs, and a KEDA ScaledObject capped where
//! an app's limits keep their headroom.
//!
//! Values never go down: each limit is set to the larger of what is configured and what
//! covers the planned maximum with the headroom, and every line says why. Names are quoted
//! (MQSC keeps their case; YAML reads them as strings), and the model only admits MQ names,
//! so nothing in a model can add a command or a key of its own.

use std::fmt::Write as _;

use super::check::{Status, covering, status};
use super::math::Limit;
use super::model::UNLIMITED;
use super::report::{Plan, count, instances, mqsc_name};

/// What `limit` is set to: what covers `need` with the headroom, never less than `was` and
/// never more than MQ takes; and a comment line when even that does not cover it (else "").
fn setting(limit: &str, was: u64, need: u64, headroom: f64) -> (u64, String) {
    let covers = covering(need, headroom);
    let note = if covers > UNLIMITED {
        format!(
            "\n* {limit}: no value covers {} with {headroom}% headroom (MQ takes at most {UNLIMITED}): \
             change the design (mqplan check)",
            count(need)
        )
    } else {
        String::new()
    };
    (was.max(covers).min(UNLIMITED), note)
}

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
    let (set_hands, hands_note) = setting("MAXHANDS", qm.max_handles, hands, headroom);
    let (set_umsgs, umsgs_note) = setting("MAXUMSGS", qm.max_uncommitted, umsgs, headroom);
    let (hands, umsgs) = (count(hands), count(umsgs));
    let _ = writeln!(
        out,
        "ALTER QMGR MAXHANDS({set_hands}) MAXUMSGS({set_umsgs})\n\
         * MAXHANDS: at most {hands} handles on one connection (was {}); MAXUMSGS: at most {umsgs} messages in one \
         unit of work (was {}){hands_note}{umsgs_note}",
        qm.max_handles, qm.max_uncommitted,
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
        let (set_inst, inst_note) = setting("MAXINST", channel.max_inst, inst, headroom);
        let (set_instc, instc_note) = setting("MAXINSTC", channel.max_instc, instc, headroom);
        let (inst, instc) = (count(inst), count(instc));
        let _ = writeln!(
            out,
            "ALTER CHANNEL({}) CHLTYPE(SVRCONN) MAXINST({set_inst}) MAXINSTC({set_instc}) SHARECNV({})\n\
             * {}: {inst} instances from all clients (was MAXINST {}), at most {instc} from one client address \
             (was MAXINSTC {}); SHARECNV {} kept (the lower of client and server applies; clients use up to \
             {sharecnv}){}{}",
            mqsc_name(&channel.name),
            channel.sharecnv,
            channel.name,
            channel.max_inst,
            channel.max_instc,
            channel.sharecnv,
            inst_note,
            instc_note,
        );
    }
    let channels = need(Limit::MaxChannels, &|_| true);
    let (set_channels, channels_note) = setting("MaxChannels", qm.max_channels, channels, headroom);
    let (set_active, _) = setting("MaxActiveChannels", qm.max_active_channels, channels, headroom);
    let channels = count(channels);
    let _ = writeln!(
        out,
        "* qm.ini, CHANNELS stanza (not MQSC; restart the queue manager): MaxChannels={set_channels} \
         MaxActiveChannels={set_active}\n\
         * {channels} channel instances in all (was MaxChannels {}, MaxActiveChannels {}){}",
        qm.max_channels, qm.max_active_channels, channels_note,
    );
    out
}

/// A KEDA ScaledObject for app `app` (IBM MQ scaler on the queue of its first workload that
/// takes messages off a queue: not a send, a producer or a browse).
///
/// `minReplicaCount` is the app's planned minimum. `maxReplicaCount` is the most instances at
/// which every limit that grows with the app keeps `headroom` percent, and never below that
/// minimum (a comment says when the minimum itself is short of the headroom).
///
/// # Errors
/// Why no ScaledObject is safe, for the caller to print: a limit already fails at the planned
/// minimum (scaling cannot fix MAXHANDS, MAXUMSGS or one instance's MAXINSTC), the app takes
/// messages off no queue, or its name has nothing Kubernetes can use.
pub fn keda(plan: &Plan, app: usize, headroom: f64) -> Result<String, String> {
    let report = plan.report("", headroom);
    let a = &report.apps[app];
    let model_app = &plan.model.apps[app];
    let min = model_app.min_instances;
    if a.max_safe_instances < min {
        let why = a.first_failure.map_or_else(
            || format!("no count up to {} is safe", a.max_safe_instances),
            |f| {
                format!(
                    "{} instance{} already fail{} {} (reason code {})",
                    f.instances,
                    if f.instances == 1 { "" } else { "s" },
                    if f.instances == 1 { "s" } else { "" },
                    f.limit.name(),
                    f.reason_code
                )
            },
        );
        return Err(format!(
            "app {}: {why}, and it is planned with at least {min}: no replica count is safe; fix that limit first \
             (mqplan check, mqplan emit mqsc)",
            a.name
        ));
    }
    let queue = model_app
        .workloads
        .iter()
        .find(|w| w.kind.consumes())
        .map(|w| w.queue.as_str())
        .ok_or_else(|| {
            format!(
                "app {} takes messages off no queue (it has no workload of a consuming kind), so there is no \
                 backlog for the IBM MQ scaler to watch",
                a.name
            )
        })?;
    let name = kubernetes_name(&a.name).ok_or_else(|| {
        format!(
            "app name {:?} has no letter or digit to make a Kubernetes name of",
            a.name
        )
    })?;
    let roomy = keeping_headroom(plan, app, headroom, a.max_safe_instances);
    let max = roomy.max(min);
    let failure = a.first_failure.map_or_else(
        || format!("no limit fails up to {}", instances(a.max_safe_instances)),
        |f| {
            format!(
                "{} would fail {} with reason code {}",
                instances(f.instances),
                f.limit.name(),
                f.reason_code
            )
        },
    );
    let mut bound = if roomy < min {
        format!(
            "# maxReplicaCount {max} is the planned minimum: already there a limit keeps less than {headroom}% \
             headroom, so the app should not scale further (mqplan check); {failure}"
        )
    } else {
        format!(
            "# maxReplicaCount {max}: the most instances at which every limit that grows with this app keeps \
             {headroom}% headroom; {failure}"
        )
    };
    for r in fixed_and_short(plan, app, headroom) {
        let _ = write!(
            bound,
            "\n# at risk whatever the count: {} on {} keeps {}% headroom (mqplan check)",
            r.limit.name(),
            r.scope,
            super::check::headroom_pct(r.required(&plan.instances), r.configured)
        );
    }
    let qm = &report.queue_manager.name;
    let quoted = |v: &str| serde_json::to_string(v).unwrap_or_default();
    let url_qm = qm.replace('%', "%25").replace('/', "%2F");
    Ok(format!(
        "# mqplan: KEDA ScaledObject for {app_name} on {qm}\n\
         {bound}\n\
         apiVersion: keda.sh/v1alpha1\n\
         kind: ScaledObject\n\
         metadata:\n  name: {name_yaml}\n\
         spec:\n  scaleTargetRef:\n    name: {name_yaml}\n  minReplicaCount: {min}\n  maxReplicaCount: {max}\n  triggers:\n\
         \x20   - type: ibmmq\n      metadata:\n        queueManager: {qm_yaml}\n        queueName: {queue_yaml}\n        \
         queueDepth: \"20\"\n        host: {host}\n      \
         authenticationRef:\n        name: {auth_yaml}\n",
        app_name = a.name,
        name_yaml = quoted(&name),
        auth_yaml = quoted(&format!("{name}-ibmmq")),
        qm_yaml = quoted(qm),
        queue_yaml = quoted(queue),
        host = quoted(&format!(
            "https://mq.example.com:9443/ibmmq/rest/v2/admin/action/qmgr/{url_qm}/mqsc"
        )),
    ))
}

/// The checks `app` takes part in that do not grow with its instances (MAXHANDS, MAXUMSGS,
/// one instance's MAXINSTC) and are not ok with `headroom`: no replica count changes them.
fn fixed_and_short(plan: &Plan, app: usize, headroom: f64) -> Vec<&super::math::Requirement> {
    plan.requirements
        .iter()
        .filter(|r| r.terms.iter().any(|&(a, c)| a == app && c == 0))
        .filter(|r| status(r, r.required(&plan.instances), headroom) != Status::Ok)
        .collect()
}

/// The most instances of `app`, up to `cap`, at which every check that grows with it keeps
/// `headroom` percent (the other apps as planned); 0 if even one instance does not.
fn keeping_headroom(plan: &Plan, app: usize, headroom: f64, cap: u64) -> u64 {
    let mut instances = plan.instances.clone();
    let mut best = cap;
    let growing = plan
        .requirements
        .iter()
        .filter(|r| !r.capped && r.terms.iter().any(|&(a, c)| a == app && c > 0));
    for r in growing {
        let mut keeps = |i: u64| {
            instances[app] = i;
            status(r, r.required(&instances), headroom) == Status::Ok
        };
        // The required count grows with `i`, so the counts that keep the headroom are 0..=n:
        // find n by bisection.
        let (mut lo, mut hi) = (0, best);
        if keeps(hi) {
            continue;
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if keeps(mid) { lo = mid } else { hi = mid }
        }
        best = lo;
    }
    best
}

/// `name` as a Kubernetes object name (RFC 1123 label): lower case, `-` for anything else,
/// no `-` at either end, at most 63 characters; `None` when nothing is left.
fn kubernetes_name(name: &str) -> Option<String> {
    let mapped: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let trimmed = mapped.trim_matches('-');
    let cut = &trimmed[..trimmed.len().min(63)];
    let cut = cut.trim_end_matches('-');
    (!cut.is_empty()).then(|| cut.to_owned())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::plan::Model;

    fn plan(text: &str) -> Plan {
        Plan::new(Model::from_toml(text, Path::new("m.toml")).expect("valid"))
    }

    /// A Logic Apps app on a channel with MAXINST `max_inst`, `instances` of them, a browse-lock
    /// batch of `batch`, and MAXHANDS 256.
    fn logicapps(max_inst: u64, instances: &str, batch: u64) -> Plan {
        plan(&format!(
            "[queue_manager]\nname = \"QM1\"\n[[queue_manager.channel]]\nname = \"app.svrconn\"\n\
             max_inst = {max_inst}\n[[app]]\nname = \"_Orders_\"\nprofile = \"logicapps-builtin\"\n\
             channel = \"app.svrconn\"\ninstances = {instances}\n[[app.workload]]\nqueue = \"ORDERS.IN\"\n\
             kind = \"browse-lock-trigger\"\nbatch = {batch}\n"
        ))
    }

    #[test]
    fn mqsc_quotes_names_so_their_case_is_kept() {
        let mqsc = mqsc(&logicapps(100, "5", 1), 20.0);
        assert!(
            mqsc.contains("ALTER CHANNEL('app.svrconn') CHLTYPE(SVRCONN) MAXINST(100)"),
            "{mqsc}"
        );
    }

    #[test]
    fn mqsc_never_sets_more_than_mq_takes() {
        // 999,999,999 handles on a connection: covering it with 20% headroom needs more than MQ's
        // largest MAXHANDS.
        let mqsc = mqsc(&logicapps(100, "1", 999_999_999), 20.0);
        assert!(mqsc.contains("ALTER QMGR MAXHANDS(999999999) "), "{mqsc}");
        assert!(
            mqsc.contains("* MAXHANDS: no value covers 999999999 with 20% headroom"),
            "{mqsc}"
        );
        let report = logicapps(100, "1", 999_999_999).report("", 20.0);
        let r = report
            .recommendations
            .iter()
            .find(|r| r.limit == Some(Limit::MaxHands))
            .expect("advice");
        assert_eq!(r.recommended, None);
        assert!(r.text.contains("no value covers the plan"), "{}", r.text);
    }

    #[test]
    fn keda_keeps_the_headroom_and_never_goes_below_the_minimum() {
        // One channel instance per instance against MAXINST 50.
        let p = logicapps(50, "{ min = 2, max = 100 }", 1);
        let max_at = |headroom: f64| {
            let yaml = keda(&p, 0, headroom).expect("safe");
            assert!(yaml.contains("minReplicaCount: 2\n"), "{yaml}");
            yaml.lines()
                .find_map(|l| l.trim().strip_prefix("maxReplicaCount: "))
                .expect("max")
                .parse::<u64>()
                .expect("count")
        };
        assert_eq!(max_at(0.0), 50);
        assert_eq!(max_at(20.0), 40);
        assert_eq!(max_at(50.0), 25);
        // The minimum is kept even where it is short of the headroom, and the file says so.
        let yaml = keda(&p, 0, 97.0).expect("safe");
        assert!(yaml.contains("maxReplicaCount: 2\n"), "{yaml}");
        assert!(yaml.contains("is the planned minimum"), "{yaml}");
    }

    #[test]
    fn keda_names_a_limit_no_count_changes_when_it_is_short_of_the_headroom() {
        // 230 browse-locked messages on one connection: MAXHANDS 256 keeps 10.2%.
        let yaml = keda(&logicapps(50, "{ min = 2, max = 12 }", 230), 0, 20.0).expect("safe");
        assert!(
            yaml.contains("# at risk whatever the count: MAXHANDS on app _Orders_, per connection keeps 10.2%"),
            "{yaml}"
        );
        let yaml = keda(&logicapps(50, "{ min = 2, max = 12 }", 10), 0, 20.0).expect("safe");
        assert!(!yaml.contains("whatever the count"), "{yaml}");
    }

    #[test]
    fn the_largest_need_of_a_limit_is_the_one_recommended() {
        let custom = |handles: &[u64]| {
            let apps: String = handles
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    format!(
                        "[[app]]\nname = \"a{i}\"\nprofile = \"custom\"\nchannel = \"C\"\ninstances = 1\n\
                         connections = 1\nhandles_per_connection = {h}\nuncommitted = 0\n"
                    )
                })
                .collect();
            let p = plan(&format!(
                "[queue_manager]\nname = \"QM1\"\n[[queue_manager.channel]]\nname = \"C\"\n{apps}"
            ));
            let report = p.report("", 20.0);
            let r = report
                .recommendations
                .iter()
                .find(|r| r.limit == Some(Limit::MaxHands))
                .cloned();
            (r.expect("a MAXHANDS recommendation"), mqsc(&p, 20.0))
        };
        let (r, _) = custom(&[300, 200]);
        assert_eq!(r.recommended, Some(375));
        // Neither can be set; the text and the MQSC both give the larger need.
        let (r, mqsc) = custom(&[900_000_000, 950_000_000]);
        assert_eq!(r.recommended, None);
        assert!(r.text.contains("1187500000"), "{}", r.text);
        assert!(mqsc.contains("no value covers 950000000"), "{mqsc}");
    }

    #[test]
    fn keda_refuses_when_the_minimum_already_fails() {
        // 300 browse-locked messages on one connection: MAXHANDS fails at one instance, and no
        // replica count fixes that.
        let why = keda(&logicapps(50, "{ min = 2, max = 12 }", 300), 0, 20.0).unwrap_err();
        assert!(
            why.contains("1 instance already fails MAXHANDS (reason code 2017)"),
            "{why}"
        );
        // MAXINST 50 fails at 51, above a minimum of 60.
        let why = keda(&logicapps(50, "{ min = 60, max = 80 }", 1), 0, 20.0).unwrap_err();
        assert!(why.contains("51 instances already fail MAXINST"), "{why}");
    }

    #[test]
    fn keda_scales_on_the_first_queue_the_app_consumes_from() {
        let mqpilot = |workloads: &str| {
            plan(&format!(
                "[queue_manager]\nname = \"QM1\"\n[[queue_manager.channel]]\nname = \"C\"\n[[app]]\n\
                 name = \"relay\"\nprofile = \"mqpilot\"\nchannel = \"C\"\ninstances = 2\n{workloads}"
            ))
        };
        let send = "[[app.workload]]\nqueue = \"AUDIT.OUT\"\nkind = \"send\"\n";
        let poll = "[[app.workload]]\nqueue = \"ORDERS.IN\"\nkind = \"poll\"\n";
        let yaml = keda(&mqpilot(&format!("{send}{poll}")), 0, 20.0).expect("safe");
        assert!(yaml.contains("queueName: \"ORDERS.IN\""), "{yaml}");
        let why = keda(&mqpilot(send), 0, 20.0).unwrap_err();
        assert!(why.starts_with("app relay takes messages off no queue"), "{why}");
    }

    #[test]
    fn keda_names_and_values_are_valid_yaml_and_kubernetes_names() {
        let yaml = keda(&logicapps(50, "5", 1), 0, 20.0).expect("safe");
        assert!(yaml.contains("  name: \"orders\"\n"), "{yaml}");
        assert!(yaml.contains("queueName: \"ORDERS.IN\""), "{yaml}");
        // Names YAML would read as a number, null or a boolean are quoted strings.
        for app in ["2024", "null", "true"] {
            let p = plan(&format!(
                "[queue_manager]\nname = \"QM1\"\n[[queue_manager.channel]]\nname = \"C\"\n[[app]]\n\
                 name = \"{app}\"\nprofile = \"tibco\"\nchannel = \"C\"\ninstances = 2\n[[app.workload]]\n\
                 queue = \"Q\"\nkind = \"process\"\n"
            ));
            let yaml = keda(&p, 0, 20.0).expect("safe");
            let names: Vec<&str> = yaml.lines().filter_map(|l| l.trim().strip_prefix("name: ")).collect();
            let want = [format!("\"{app}\""), format!("\"{app}\""), format!("\"{app}-ibmmq\"")];
            assert_eq!(names, want, "{yaml}");
        }
        assert_eq!(kubernetes_name("_Orders_"), Some("orders".into()));
        assert_eq!(kubernetes_name("Payments API (EU)"), Some("payments-api--eu".into()));
        assert_eq!(kubernetes_name("___"), None);
        assert_eq!(kubernetes_name(&"a".repeat(80)).map(|n| n.len()), Some(63));
    }
}
