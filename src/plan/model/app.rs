//! One app of a model: its raw form as read, and the checks that turn it into an [`App`].
//!
//! Every count is bounded, every name one MQ would take, every reference defined, and a field
//! the app's profile does not read is an error (it would change nothing in the plan, so a
//! number the user believes is counted would silently not be).

use serde::Deserialize;

use super::{Address, App, NAME_LENGTH, PER_INSTANCE, QueueManager, Workload, bounded, label, mq_name};
use crate::Error;
use crate::plan::profile::{Kind, Profile};

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawInstances {
    Count(i64),
    Range(RawRange),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRange {
    min: i64,
    max: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApp {
    pub(super) name: String,
    profile: Profile,
    channel: String,
    instances: RawInstances,
    client_address: Option<String>,
    connections: Option<i64>,
    sharecnv: Option<i64>,
    handles_per_connection: Option<i64>,
    uncommitted: Option<i64>,
    extra_handles: Option<i64>,
    #[serde(default)]
    workload: Vec<RawWorkload>,
}

/// A `client_address`: `per-instance` in any case, or an address group's name. A name that
/// only differs from `per-instance` in its punctuation is refused: it would silently be a
/// group of every instance.
fn address(given: &str) -> Result<Address, String> {
    label(given)?;
    let name = given.trim();
    if name.eq_ignore_ascii_case(PER_INSTANCE) {
        return Ok(Address::PerInstance);
    }
    let letters: String = name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if letters == "perinstance" {
        return Err(format!(
            "{name:?} would name one address group shared by every instance: write \"{PER_INSTANCE}\" for an \
             address per instance, or a group name that does not look like it"
        ));
    }
    Ok(Address::Group(name.to_owned()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkload {
    queue: String,
    kind: String,
    batch: Option<i64>,
    concurrency: Option<i64>,
    to: Option<String>,
    backout_queue: Option<String>,
    #[serde(default)]
    queues: Vec<String>,
    activities: Option<i64>,
}

pub(super) fn check_app(
    i: usize,
    a: RawApp,
    qm: &QueueManager,
    err: &dyn Fn(String, String) -> Error,
) -> Result<App, Error> {
    let at = |k: &str| format!("app[{i}].{k}");
    let count = |field: String, v: i64| bounded(v, 1).map_err(|m| err(field, m));
    label(&a.name).map_err(|m| err(at("name"), m))?;
    // The name is the application name its connections show (and validate counts them by).
    crate::mq::options::check_appl_name(&a.name).map_err(|m| err(at("name"), m))?;
    unused_app_fields(a.profile, &a).map_err(|(field, m)| err(at(field), m))?;
    let channel = qm.channels.iter().position(|c| c.name == a.channel).ok_or_else(|| {
        let known: Vec<&str> = qm.channels.iter().map(|c| c.name.as_str()).collect();
        err(
            at("channel"),
            format!(
                "channel {:?} is not defined under [[queue_manager.channel]] (defined: {})",
                a.channel,
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            ),
        )
    })?;
    let (min, max, range) = match a.instances {
        RawInstances::Count(n) => {
            let n = count(at("instances"), n)?;
            (n, n, false)
        }
        RawInstances::Range(r) => {
            let min = count(at("instances.min"), r.min)?;
            let max = count(at("instances.max"), r.max)?;
            if min > max {
                return Err(err(at("instances"), format!("min ({min}) is greater than max ({max})")));
            }
            (min, max, true)
        }
    };
    let address = match &a.client_address {
        Some(given) => address(given).map_err(|m| err(at("client_address"), m))?,
        None => Address::PerInstance,
    };
    let sharecnv = match a.sharecnv {
        Some(v) => bounded(v, 0).map_err(|m| err(at("sharecnv"), m))?,
        None => 10,
    };
    let mut workloads = Vec::new();
    for (w, raw) in a.workload.into_iter().enumerate() {
        workloads.push(check_workload(&format!("app[{i}].workload[{w}]"), a.profile, raw, err)?);
    }
    if workloads.is_empty() && a.profile != Profile::Custom {
        return Err(err(at("workload"), "an app needs at least one [[app.workload]]".into()));
    }
    let app = App {
        name: a.name,
        profile: a.profile,
        channel,
        min_instances: min,
        max_instances: max,
        range,
        address,
        client_address_given: a.client_address.is_some(),
        connections: a.connections.map(|v| count(at("connections"), v)).transpose()?,
        sharecnv,
        handles_per_connection: a
            .handles_per_connection
            .map(|v| count(at("handles_per_connection"), v))
            .transpose()?,
        uncommitted: a
            .uncommitted
            .map(|v| bounded(v, 0).map_err(|m| err(at("uncommitted"), m)))
            .transpose()?,
        extra_handles: a
            .extra_handles
            .map_or(Ok(0), |v| bounded(v, 0).map_err(|m| err(at("extra_handles"), m)))?,
        workloads,
    };
    if app.profile == Profile::Custom {
        for (field, given) in [
            ("connections", app.connections.is_some()),
            ("handles_per_connection", app.handles_per_connection.is_some()),
            ("uncommitted", app.uncommitted.is_some()),
        ] {
            if !given {
                return Err(err(at(field), format!("the custom profile needs `{field}`")));
            }
        }
    }
    Ok(app)
}

fn check_workload(
    at: &str,
    profile: Profile,
    w: RawWorkload,
    err: &dyn Fn(String, String) -> Error,
) -> Result<Workload, Error> {
    let field = |k: &str| format!("{at}.{k}");
    let count = |k: &str, v: Option<i64>| v.map_or(Ok(1), |v| bounded(v, 1).map_err(|m| err(field(k), m)));
    let kind = Kind::parse(profile, &w.kind).ok_or_else(|| {
        err(
            field("kind"),
            format!(
                "unknown kind {:?} for profile {}; expected one of: {}",
                w.kind,
                profile.name(),
                profile.kinds().join(", ")
            ),
        )
    })?;
    unused_workload_fields(profile, kind, &w).map_err(|(k, m)| err(field(k), m))?;
    let queue_name = |k: String, name: &str| mq_name(name, NAME_LENGTH, "queue name").map_err(|m| err(k, m));
    queue_name(field("queue"), &w.queue)?;
    for (k, name) in [("to", &w.to), ("backout_queue", &w.backout_queue)] {
        if let Some(name) = name {
            queue_name(field(k), name)?;
        }
    }
    for (n, name) in w.queues.iter().enumerate() {
        queue_name(format!("{at}.queues[{n}]"), name)?;
    }
    if kind == Kind::Forward && w.to.is_none() {
        return Err(err(
            field("to"),
            "a forward workload needs `to`, the target queue".into(),
        ));
    }
    Ok(Workload {
        queue: w.queue,
        kind,
        batch: count("batch", w.batch)?,
        concurrency: count("concurrency", w.concurrency)?,
        to: w.to,
        backout_queue: w.backout_queue,
        queues: w.queues,
        activities: count("activities", w.activities)?,
    })
}

/// Refuses an app field its profile does not read: it would change nothing in the plan, so
/// a number the user believes is counted would silently not be.
fn unused_app_fields(profile: Profile, a: &RawApp) -> Result<(), (&'static str, String)> {
    let custom = profile == Profile::Custom;
    let pool = matches!(profile, Profile::LogicappsBuiltin | Profile::Mqpilot) || custom;
    if custom && a.extra_handles.is_some() {
        return Err((
            "extra_handles",
            "the custom profile takes its handles as given: add them to `handles_per_connection`".into(),
        ));
    }
    for (field, given, read) in [
        ("connections", a.connections.is_some(), pool),
        ("handles_per_connection", a.handles_per_connection.is_some(), custom),
        ("uncommitted", a.uncommitted.is_some(), custom),
        ("extra_handles", a.extra_handles.is_some(), profile != Profile::Mqpilot),
    ] {
        if given && !read {
            return Err((field, unused(profile, field)));
        }
    }
    Ok(())
}

/// The same for a workload's fields.
fn unused_workload_fields(profile: Profile, kind: Kind, w: &RawWorkload) -> Result<(), (&'static str, String)> {
    use Profile::{Ace, Custom, Jms, LogicappsBuiltin, Mqpilot, Tibco};
    if w.to.is_some() && kind != Kind::Forward {
        return Err(("to", "only a forward workload (mqpilot) uses `to`; remove it".into()));
    }
    if w.batch.is_some() && profile == LogicappsBuiltin && !kind.browse_locks() {
        return Err((
            "batch",
            format!(
                "a {} workload gets or puts one message per operation, so `batch` would change nothing in the \
                 plan (only browse-lock-trigger and browse-lock use it); remove it",
                w.kind
            ),
        ));
    }
    for (field, given, read) in [
        (
            "batch",
            w.batch.is_some(),
            matches!(profile, LogicappsBuiltin | Mqpilot),
        ),
        ("concurrency", w.concurrency.is_some(), profile != Custom),
        ("backout_queue", w.backout_queue.is_some(), profile == Mqpilot),
        ("queues", !w.queues.is_empty(), matches!(profile, Jms | Ace)),
        ("activities", w.activities.is_some(), profile == Tibco),
    ] {
        if given && !read {
            return Err((field, unused(profile, field)));
        }
    }
    Ok(())
}

fn unused(profile: Profile, field: &str) -> String {
    format!(
        "the {} profile does not use `{field}`, so it would change nothing in the plan (see \"The math\" in the \
         README); remove it",
        profile.name()
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::tests::{GOOD, error};
    use super::super::{Address, Model};

    #[test]
    fn per_instance_is_read_in_any_case_and_a_near_miss_is_an_error() {
        let with = |address: &str| {
            GOOD.replace(
                "instances = {",
                &format!("client_address = {address:?}\ninstances = {{"),
            )
        };
        for spelling in ["Per-Instance", " PER-INSTANCE "] {
            let m = Model::from_toml(&with(spelling), Path::new("m.toml")).expect("valid");
            assert_eq!(m.apps[0].address, Address::PerInstance, "{spelling:?}");
            assert!(m.apps[0].client_address_given);
        }
        for spelling in ["per_instance", "per instance", "PerInstance"] {
            let e = error(&with(spelling));
            assert!(
                e.starts_with("m.toml:12:1: app[0].client_address:") && e.contains("\"per-instance\""),
                "{spelling:?}: {e}"
            );
        }
        let m = Model::from_toml(&with("nat-egress"), Path::new("m.toml")).expect("valid");
        assert_eq!(m.apps[0].address, Address::Group("nat-egress".into()));
        let m = Model::from_toml(GOOD, Path::new("m.toml")).expect("valid");
        assert!(!m.apps[0].client_address_given);
    }

    #[test]
    fn fields_the_profile_does_not_use_are_errors() {
        let jms = GOOD
            .replace("\"logicapps-builtin\"", "\"jms\"")
            .replace("\"browse-lock-trigger\"", "\"listener\"")
            .replace("batch = 20", "concurrency = 2");
        assert!(Model::from_toml(&jms, Path::new("m.toml")).is_ok());
        let e = error(&jms.replace("instances = {", "connections = 200\ninstances = {"));
        assert!(
            e.starts_with("m.toml:12:1: app[0].connections: the jms profile does not use `connections`"),
            "{e}"
        );
        let e = error(&jms.replace("concurrency = 2", "concurrency = 2\nbatch = 20000"));
        assert!(
            e.contains("app[0].workload[0].batch: the jms profile does not use `batch`"),
            "{e}"
        );
        let e = error(&GOOD.replace("\"browse-lock-trigger\"", "\"receive\""));
        assert!(
            e.starts_with("m.toml:17:1: app[0].workload[0].batch: a receive workload gets or puts one message"),
            "{e}"
        );
        let browse_lock = GOOD.replace("\"browse-lock-trigger\"", "\"browse-lock\"");
        assert!(Model::from_toml(&browse_lock, Path::new("m.toml")).is_ok());
        let e = error(&GOOD.replace("batch = 20", "batch = 20\nto = \"OUT\""));
        assert!(e.contains("app[0].workload[0].to: only a forward workload"), "{e}");
        let mqpilot = GOOD
            .replace("\"logicapps-builtin\"", "\"mqpilot\"")
            .replace("\"browse-lock-trigger\"", "\"poll\"");
        let e = error(&mqpilot.replace("instances = {", "extra_handles = 2\ninstances = {"));
        assert!(
            e.starts_with("m.toml:12:1: app[0].extra_handles: the mqpilot profile does not use `extra_handles`"),
            "{e}"
        );
        let e = error(&GOOD.replace("instances = {", "uncommitted = 5\ninstances = {"));
        assert!(
            e.contains("app[0].uncommitted: the logicapps-builtin profile does not use"),
            "{e}"
        );
    }
}
