//! A KEDA ScaledObject for one app, capped where the limits it shares keep their headroom.

use std::fmt::Write as _;

use crate::plan::check::{Status, status};
use crate::plan::math::{FirstFailure, Limit, Requirement};
use crate::plan::report::{AppReport, Plan, Report, count, instances};

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
    let (queue, name) = scalable(plan, &report, app)?;
    let a = &report.apps[app];
    let min = plan.model.apps[app].min_instances;
    let cap = keeping_headroom(plan, &report, app, headroom, a.max_safe_instances);
    let max = cap.count.max(min);
    let mut header = format!(
        "# mqplan: KEDA ScaledObject for {} on {}\n",
        a.name, plan.model.queue_manager.name
    );
    header.push_str(&bound(a, &cap, min, max, headroom));
    header.push_str(&others(plan, app, &cap));
    header.push_str(&caveats(headroom));
    for r in fixed_and_short(plan, app, headroom) {
        let _ = writeln!(
            header,
            "# at risk whatever the count: {} on {} keeps {}% headroom (mqplan check)",
            r.limit.name(),
            r.scope,
            crate::plan::check::headroom_pct(r.required(&plan.instances), r.configured)
        );
    }
    Ok(scaled_object(
        &header,
        &name,
        &plan.model.queue_manager.name,
        queue,
        min,
        max,
    ))
}

/// The queue the scaler watches and the ScaledObject's name for app `app`, or why it gets
/// no ScaledObject (see [`keda`]).
fn scalable<'p>(plan: &'p Plan, report: &Report, app: usize) -> Result<(&'p str, String), String> {
    let a = &report.apps[app];
    let min = plan.model.apps[app].min_instances;
    if a.max_safe_instances < min {
        return Err(refusal(plan, app, a, min));
    }
    let queue = consumed_queue(plan, app)?;
    let name = kubernetes_name(&a.name).ok_or_else(|| {
        format!(
            "app name {:?} has no ASCII letter or digit (a-z, A-Z, 0-9) to make a Kubernetes name of",
            a.name
        )
    })?;
    Ok((queue, name))
}

/// Why no ScaledObject is safe for app `a` (index `app`), planned with at least `min`
/// instances.
fn refusal(plan: &Plan, app: usize, a: &AppReport, min: u64) -> String {
    let why = a.first_failure.map_or_else(
        || format!("no count up to {} is safe", a.max_safe_instances),
        |f| {
            format!(
                "{} already fail{} {} (reason code {}){}",
                instances(f.instances),
                if f.instances == 1 { "s" } else { "" },
                f.limit.name(),
                f.reason_code,
                users(plan, app, f).map(|u| format!(": {u}")).unwrap_or_default()
            )
        },
    );
    format!(
        "app {}: {why}, and it is planned with at least {min}: no replica count is safe; fix that limit first \
         (mqplan check, mqplan emit mqsc)",
        a.name
    )
}

/// Who else uses the limit `app` first fails, as planned: "MAXINST 10 on channel C is used up
/// by alpha (6 channel instances) and beta (4) as planned"; `None` when no one else does.
fn users(plan: &Plan, app: usize, f: FirstFailure) -> Option<String> {
    let r = plan.requirements.iter().find(|r| {
        r.limit == f.limit && r.involves(app) && r.first_failure(app, &plan.instances) == Some(f.instances)
    })?;
    let mut users: Vec<(String, u64)> = r
        .terms
        .iter()
        .filter(|&&(a, _)| a != app)
        .map(|&(a, c)| (plan.model.apps[a].name.clone(), c.saturating_mul(plan.instances[a])))
        .filter(|&(_, n)| n > 0)
        .collect();
    if matches!(r.limit, Limit::MaxChannels | Limit::MaxActiveChannels) && r.constant > 0 {
        users.push(("other channels".into(), r.constant));
    }
    let unit = if r.limit == Limit::MaxConnections {
        "connections"
    } else {
        "channel instances"
    };
    let mut named: Vec<String> = users
        .iter()
        .enumerate()
        .map(|(i, (name, n))| {
            if i == 0 {
                format!("{name} ({} {unit})", count(*n))
            } else {
                format!("{name} ({})", count(*n))
            }
        })
        .collect();
    let last = named.pop()?;
    let list = if named.is_empty() {
        last
    } else {
        format!("{} and {last}", named.join(", "))
    };
    let how = if f.instances == 1 { "used up by" } else { "shared with" };
    Some(format!(
        "{} {} on {} is {how} {list} as planned",
        r.limit.name(),
        r.configured,
        r.scope
    ))
}

/// The queue whose depth the scaler watches: the first one `app` takes messages off.
fn consumed_queue(plan: &Plan, app: usize) -> Result<&str, String> {
    let model_app = &plan.model.apps[app];
    model_app
        .workloads
        .iter()
        .find(|w| w.kind.consumes())
        .map(|w| w.queue.as_str())
        .ok_or_else(|| {
            format!(
                "app {} takes messages off no queue (it has no workload of a consuming kind), so there is no \
                 backlog for the IBM MQ scaler to watch",
                model_app.name
            )
        })
}

/// The comment line saying where `max` comes from.
fn bound(a: &AppReport, cap: &Cap, min: u64, max: u64, headroom: f64) -> String {
    let failure = a.first_failure.map_or_else(
        || format!("no limit fails up to {}", instances(a.max_safe_instances)),
        |f| {
            format!(
                "{} would fail {} with reason code {} (the other apps as planned)",
                instances(f.instances),
                f.limit.name(),
                f.reason_code
            )
        },
    );
    if cap.count < min {
        format!(
            "# maxReplicaCount {max} is the planned minimum: already there a limit keeps less than {headroom}% \
             headroom, so the app should not scale further (mqplan check); {failure}\n"
        )
    } else {
        format!(
            "# maxReplicaCount {max}: the most instances at which every limit that grows with this app keeps \
             {headroom}% headroom; {failure}\n"
        )
    }
}

/// The comment lines saying what the cap assumes of the other apps.
fn others(plan: &Plan, app: usize, cap: &Cap) -> String {
    let mut out = String::from(
        "# assumed of the other apps: each stays within its planned maximum (a range's max, or its fixed count), \
         except that fixed-count apps that can get a ScaledObject split the room a limit they share has left above \
         the planned counts\n",
    );
    if plan.model.apps[app].range {
        let _ = writeln!(
            out,
            "# this app has a range, so it never scales past its max ({})",
            plan.model.apps[app].max_instances
        );
    }
    for s in &cap.shared {
        let (apps, own) = if s.others.len() == 1 {
            ("app", "it can get a ScaledObject of its own")
        } else {
            ("apps", "they can get ScaledObjects of their own")
        };
        let scope = if s.scope.starts_with("channel") { "" } else { "the " };
        let _ = writeln!(
            out,
            "# {} on {scope}{} also grows with the fixed-count {apps} {} ({own}): this app takes 1/{} of the room \
             it has left above the planned counts",
            s.limit.name(),
            s.scope,
            s.others.join(", "),
            s.others.len() + 1
        );
    }
    out
}

/// The comment lines on what can pass maxReplicaCount for a while, and on the queue.
fn caveats(headroom: f64) -> String {
    let surge = if headroom > 0.0 {
        // (100 - h)% of a limit at the cap, times 1 + s, stays within it while s <= h / (100 - h).
        let covered = (headroom * 1000.0 / (100.0 - headroom)).floor() / 10.0;
        format!("the {headroom}% headroom covers a surge of up to {covered}% over it")
    } else {
        "with no headroom, nothing covers it (--headroom 20 covers the default 25% surge)".to_owned()
    };
    format!(
        "# a rolling update (maxSurge, 25% by default) runs old and new pods side by side, and a pod that ends \
         without disconnecting keeps its channel instances until the queue manager notices (heartbeat, HBINT 300 s \
         by default, or TCP keepalive): either can pass maxReplicaCount for a while; {surge}\n\
         # the ibmmq scaler reads the depth with DISPLAY QLOCAL, so queueName must be a local queue (for an alias \
         queue, name its target)\n"
    )
}

/// The ScaledObject: `header` (comment lines), then the YAML.
fn scaled_object(header: &str, name: &str, qm: &str, queue: &str, min: u64, max: u64) -> String {
    let quoted = |v: &str| serde_json::to_string(v).unwrap_or_default();
    let url_qm = qm.replace('%', "%25").replace('/', "%2F");
    format!(
        "{header}\
         apiVersion: keda.sh/v1alpha1\n\
         kind: ScaledObject\n\
         metadata:\n  name: {name_yaml}\n\
         spec:\n  scaleTargetRef:\n    name: {name_yaml}\n  minReplicaCount: {min}\n  maxReplicaCount: {max}\n  triggers:\n\
         \x20   - type: ibmmq\n      metadata:\n        queueManager: {qm_yaml}\n        queueName: {queue_yaml}\n        \
         queueDepth: \"20\"\n        host: {host}\n      \
         authenticationRef:\n        name: {auth_yaml}\n",
        name_yaml = quoted(name),
        auth_yaml = quoted(&format!("{name}-ibmmq")),
        qm_yaml = quoted(qm),
        queue_yaml = quoted(queue),
        host = quoted(&format!(
            "https://mq.example.com:9443/ibmmq/rest/v2/admin/action/qmgr/{url_qm}/mqsc"
        )),
    )
}

/// The checks `app` takes part in that do not grow with its instances (MAXHANDS, MAXUMSGS,
/// one instance's MAXINSTC) and are not ok with `headroom`: no replica count changes them.
fn fixed_and_short(plan: &Plan, app: usize, headroom: f64) -> Vec<&Requirement> {
    plan.requirements
        .iter()
        .filter(|r| r.terms.iter().any(|&(a, c)| a == app && c == 0))
        .filter(|r| status(r, r.required(&plan.instances), headroom) != Status::Ok)
        .collect()
}

/// What bounds an app's maxReplicaCount.
struct Cap {
    /// The most instances that keep the headroom (0 if even one does not).
    count: u64,
    /// The limits whose room above the planned counts it shares with other fixed-count apps.
    shared: Vec<Shared>,
}

/// A limit a fixed-count app shares with other fixed-count apps.
struct Shared {
    limit: Limit,
    scope: String,
    /// The other fixed-count apps that grow with it.
    others: Vec<String>,
}

/// The most instances of `app`, up to `cap`, at which every check that grows with it keeps
/// `headroom` percent, so that the ScaledObjects of every app together keep it too.
///
/// Each app's cap is worked out with the others at their planned counts, which is sound only
/// while no app passes its own: a range app never does (`cap` is at most the range's max),
/// but a fixed-count app could take the whole room a limit has left and so could each of the
/// others that gets a ScaledObject. So a fixed-count app gets room past its planned count
/// split evenly with the other fixed-count apps the limit grows with that get one: together
/// they use at most what the limit has left. An app that gets none (it takes messages off no
/// queue, say) stays at its count.
fn keeping_headroom(plan: &Plan, report: &Report, app: usize, headroom: f64, cap: u64) -> Cap {
    let planned = plan.instances[app];
    let scales_past_its_count = |a: usize| !plan.model.apps[a].range && scalable(plan, report, a).is_ok();
    let mut out = Cap {
        count: cap,
        shared: Vec::new(),
    };
    let growing = plan
        .requirements
        .iter()
        .filter(|r| !r.capped && r.terms.iter().any(|&(a, c)| a == app && c > 0));
    for r in growing {
        let mut room = room(plan, r, app, headroom, cap);
        let sharing: Vec<usize> = r
            .terms
            .iter()
            .filter(|&&(a, c)| a != app && c > 0 && scales_past_its_count(a))
            .map(|&(a, _)| a)
            .collect();
        if !plan.model.apps[app].range && room > planned && !sharing.is_empty() {
            room = planned + (room - planned) / (sharing.len() as u64 + 1);
            out.shared.push(Shared {
                limit: r.limit,
                scope: r.scope.clone(),
                others: sharing.iter().map(|&a| plan.model.apps[a].name.clone()).collect(),
            });
        }
        out.count = out.count.min(room);
    }
    out
}

/// The most instances of `app`, up to `cap`, at which `r` keeps `headroom` percent with the
/// other apps at their planned counts.
fn room(plan: &Plan, r: &Requirement, app: usize, headroom: f64, cap: u64) -> u64 {
    let mut instances = plan.instances.clone();
    let mut keeps = |i: u64| {
        instances[app] = i;
        status(r, r.required(&instances), headroom) == Status::Ok
    };
    // The required count grows with `i`, so the counts that keep the headroom are 0..=n: find
    // n by bisection.
    let (mut lo, mut hi) = (0, cap);
    if keeps(hi) {
        return hi;
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if keeps(mid) { lo = mid } else { hi = mid }
    }
    lo
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
    use super::super::tests::{logicapps, plan};
    use super::*;

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
    fn keda_names_the_apps_that_use_up_a_shared_limit() {
        // alpha's 6 and beta's 4 planned instances take all of MAXINST 10: other cannot start one.
        let app = |name: &str, instances: &str| {
            format!(
                "[[app]]\nname = \"{name}\"\nprofile = \"tibco\"\nchannel = \"C\"\ninstances = {instances}\n\
                 [[app.workload]]\nqueue = \"Q\"\nkind = \"process\"\n"
            )
        };
        let p = plan(&format!(
            "[queue_manager]\nname = \"QM1\"\n[[queue_manager.channel]]\nname = \"C\"\nmax_inst = 10\n{}{}{}",
            app("alpha", "6"),
            app("other", "{ min = 1, max = 5 }"),
            app("beta", "4")
        ));
        let why = keda(&p, 1, 20.0).unwrap_err();
        assert!(why.starts_with("app other: 1 instance already fails MAXINST"), "{why}");
        assert!(
            why.contains("MAXINST 10 on channel C is used up by alpha (6 channel instances) and beta (4) as planned"),
            "{why}"
        );
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
        assert_eq!(kubernetes_name("ÅÄÖ"), None);
        assert_eq!(kubernetes_name(&"a".repeat(80)).map(|n| n.len()), Some(63));
    }

    #[test]
    fn regression_a_name_without_ascii_letters_or_digits_is_refused_saying_so() {
        let p = plan(
            "[queue_manager]\nname = \"QM1\"\n[[queue_manager.channel]]\nname = \"C\"\n[[app]]\n\
             name = \"ÅÄÖ\"\nprofile = \"tibco\"\nchannel = \"C\"\ninstances = 2\n[[app.workload]]\n\
             queue = \"Q\"\nkind = \"process\"\n",
        );
        let why = keda(&p, 0, 20.0).unwrap_err();
        assert!(why.contains("no ASCII letter or digit"), "{why}");
    }
}
