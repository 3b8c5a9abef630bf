//! The fleet runner: a model executed on the fake queue manager with each profile's call
//! pattern, everything held in flight at once, then what the fake observed set against the
//! prediction.
//!
//! Apps run in file order, instance by instance, and nothing is released until the snapshot:
//! that is the worst case the planner predicts. logicapps-builtin, jms, ace, tibco and custom
//! instances are driven through the fake's safe verbs (each instance one client process);
//! mqpilot instances run the real [`crate::pool::Pool`] and worker, whose sink waits at a gate until every
//! poller holds a batch. The outcome matches when the reason codes the fake returned are the
//! ones of the failing checks and, unless a connection-level limit fails (which stops part of
//! the fleet from connecting at all), connections, channel instances and handles per
//! connection equal the prediction.
//!
//! [`net`] runs the same fleet with one OS process per instance against a `fake-qm` server
//! (`mqplan validate --fake-qm`) and compares the server's status the same way.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::model::App;
use super::profile::Profile;
use super::report::Plan;
use crate::Error;
use crate::fake::{FakeQm, PutSpec};
use crate::plan::math::{MQRC_CHANNEL_NOT_AVAILABLE, MQRC_MAX_CONNS_LIMIT_REACHED};
use crate::plan::model::Address;
use crate::plan::profile::Kind;

mod child;
mod definition;
mod fleet;
mod instance;
pub mod net;
mod observe;
mod sockets;
mod worker;

pub use child::{InstanceArgs, Parent, run_instance};
use definition::fake_config;
pub use definition::fake_config_toml;

use instance::drive_instance;
use observe::{Snapshot, observe};
use worker::{Gate, expected_arrivals, start_mqpilot};

/// How long the in-process runner waits for an mqpilot app's operations to reach the gate
/// (it stops waiting as soon as they all did, or a limit's reason code settled).
const GATE_WAIT: Duration = Duration::from_secs(30);
/// After a limit's reason code appears, how long the fleet may still settle.
pub(super) const SETTLE: Duration = Duration::from_millis(150);
/// Process ids for instances driven through the safe verbs, far above the fake's own.
const PROCESS_BASE: u64 = 1 << 40;

/// One number, predicted and observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compared {
    /// What is compared.
    pub what: String,
    /// The planner's number.
    pub predicted: u64,
    /// The fake's number.
    pub observed: u64,
    /// The prediction is a worst case the run does not drive all of: the fake's number may
    /// be lower, never higher.
    pub at_most: bool,
}

impl Compared {
    /// Whether the fake's number agrees with the prediction.
    #[must_use]
    pub const fn holds(&self) -> bool {
        if self.at_most {
            self.observed <= self.predicted
        } else {
            self.observed == self.predicted
        }
    }
}

/// What a validation run found.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Numbers that must be equal (empty when a connection-level limit fails).
    pub numbers: Vec<Compared>,
    /// Reason codes of the failing checks.
    pub predicted_reasons: BTreeSet<i32>,
    /// Reason codes the fake returned, with counts.
    pub observed_reasons: BTreeMap<i32, u64>,
    /// Whether a connection-level limit (2537, 2025) is predicted to fail.
    pub connect_limited: bool,
    /// What the runner could not drive, and why.
    pub notes: Vec<String>,
    /// The `fake-qm` server the instances ran against as processes; `None` in process.
    pub server: Option<String>,
    /// mqpilot apps whose operations did not all reach the gate although the fake returned
    /// no limit's reason code: the fleet never held its worst case, so nothing is proven.
    pub short_of_worst_case: Vec<String>,
}

impl Outcome {
    /// Records apps that did not reach the gate in full: with a limit's reason code observed
    /// that is the limit at work (a note), without one the run proved nothing (a mismatch).
    pub(super) fn fell_short(&mut self, short: Vec<String>) {
        if self.observed_reasons.is_empty() {
            self.short_of_worst_case = short;
        } else {
            self.notes.extend(short);
        }
    }

    /// Whether the fake did what the planner said.
    #[must_use]
    pub fn matches(&self) -> bool {
        self.reasons_match() && self.numbers.iter().all(Compared::holds) && self.short_of_worst_case.is_empty()
    }

    /// Every observed reason code was predicted; anything predicted to fail produced at least
    /// one of its codes; and without a connection-level failure, every predicted code appeared.
    #[must_use]
    pub fn reasons_match(&self) -> bool {
        let observed: BTreeSet<i32> = self.observed_reasons.keys().copied().collect();
        if !observed.is_subset(&self.predicted_reasons) {
            return false;
        }
        if self.connect_limited {
            !self.predicted_reasons.is_empty() && !observed.is_empty()
        } else {
            observed == self.predicted_reasons
        }
    }
}

/// The reason codes the runner watches for.
const WATCHED: [i32; 4] = [2017, 2024, MQRC_MAX_CONNS_LIMIT_REACHED, MQRC_CHANNEL_NOT_AVAILABLE];

/// Runs `plan`'s model on a fresh fake queue manager.
///
/// # Errors
/// [`Error::Io`] if the async runtime for mqpilot apps cannot start.
pub fn run(plan: &Plan) -> Result<Outcome, Error> {
    fits_the_fake(plan)?;
    let qm = FakeQm::new(fake_config(plan));
    seed(plan, &qm);
    let runtime = if plan.model.apps.iter().any(|a| a.profile == Profile::Mqpilot) {
        Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|source| Error::Io {
                    path: "tokio runtime".into(),
                    source,
                })?,
        )
    } else {
        None
    };
    let mut notes = Vec::new();
    let mut short = Vec::new();
    let gate = Gate::new();
    let cancel = CancellationToken::new();
    let mut runs: Vec<worker::Instance> = Vec::new();
    let mut process = PROCESS_BASE;
    for (a, app) in plan.model.apps.iter().enumerate() {
        if app.profile == Profile::Mqpilot {
            let rt = runtime.as_ref().expect("a runtime exists when an mqpilot app does");
            let _guard = rt.enter();
            let expected = gate.arrived() + expected_arrivals(plan, a);
            let reasons_before: u64 = observed_reasons(&qm).values().sum();
            runs.extend(start_mqpilot(plan, a, &qm, &gate, &cancel, &mut notes));
            wait_for(&qm, reasons_before, || gate.arrived() >= expected);
            if gate.arrived() < expected {
                let depth = app
                    .workloads
                    .iter()
                    .map(|w| qm.depth(&w.queue).unwrap_or(0))
                    .sum::<i32>();
                short.push(format!(
                    "{}: {} of {expected} operations reached the gate before the snapshot (queue depth left: {depth})",
                    app.name,
                    gate.arrived()
                ));
            }
            continue;
        }
        for i in 0..app.max_instances {
            process += 1;
            drive_instance(plan, a, i, process, &qm);
        }
    }
    let mut outcome = observe(plan, &Snapshot::of(&qm), notes);
    outcome.fell_short(short);
    gate.release();
    cancel.cancel();
    if let Some(rt) = runtime {
        rt.block_on(async {
            for run in runs {
                let _ = tokio::time::timeout(Duration::from_secs(10), run.finish()).await;
            }
        });
        rt.shutdown_timeout(Duration::from_secs(2));
    }
    Ok(outcome)
}

/// The most connections a validation opens in all: each is a client process's connection,
/// and an mqpilot instance's a thread.
const MOST_CONNECTIONS: u64 = 20_000;
/// The most handles plus seeded messages a validation holds at once.
const MOST_HELD: u64 = 1_000_000;

/// Refuses a fleet too large to run on the fake in one go: validation holds every
/// connection, handle and message at once, so a model of thousands of instances would take
/// the machine's memory or time instead of answering.
///
/// # Errors
/// [`Error::Options`] saying how large the fleet is and what the runner takes.
pub(super) fn fits_the_fake(plan: &Plan) -> Result<(), Error> {
    let sum = |values: &mut dyn Iterator<Item = u64>| values.fold(0, u64::saturating_add);
    let per_app = || plan.model.apps.iter().zip(&plan.numbers);
    let connections = sum(&mut per_app().map(|(a, n)| a.max_instances.saturating_mul(n.demand.connections)));
    let handles = sum(&mut per_app().map(|(a, n)| {
        a.max_instances
            .saturating_mul(n.demand.connections)
            .saturating_mul(n.demand.handles)
    }));
    let held = handles.saturating_add(sum(&mut seed_counts(plan).into_iter().map(|(_, n)| n)));
    if connections > MOST_CONNECTIONS || held > MOST_HELD {
        return Err(Error::Options {
            source_name: "validate".into(),
            message: format!(
                "the fleet is too large to run on the fake queue manager: {connections} connections and {held} \
                 handles and messages held at once (at most {MOST_CONNECTIONS} and {MOST_HELD}); validate a \
                 smaller fleet with the same shape, `mqplan check` needs no run"
            ),
        });
    }
    Ok(())
}

pub(super) fn clamp_i32(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

pub(super) fn clamp_u32(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The queue a custom app's handles are opened on.
pub(super) fn custom_queue(app: &App) -> String {
    app.workloads
        .first()
        .map_or_else(|| format!("MQPLAN.{}", app.name.to_uppercase()), |w| w.queue.clone())
}

/// Puts the messages every held operation needs on the in-process fake.
fn seed(plan: &Plan, qm: &FakeQm) {
    for (queue, n) in seed_counts(plan) {
        for _ in 0..n {
            let _ = qm.put_message(&queue, PutSpec::text("mqplan"));
        }
    }
}

/// The messages every held operation needs, per queue in model order: a browse-lock per
/// handle, a batch per mqpilot connection, U per custom connection.
pub(super) fn seed_counts(plan: &Plan) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for (app, n) in plan.model.apps.iter().zip(&plan.numbers) {
        let k = n.demand.connections;
        let mut need: Vec<(String, u64)> = Vec::new();
        match app.profile {
            Profile::LogicappsBuiltin => {
                for w in app.workloads.iter().filter(|w| w.kind.browse_locks()) {
                    need.push((w.queue.clone(), w.concurrency.saturating_mul(w.batch)));
                }
            }
            Profile::Mqpilot => {
                for w in app
                    .workloads
                    .iter()
                    .filter(|w| matches!(w.kind, Kind::Poll | Kind::Forward))
                {
                    need.push((w.queue.clone(), k.saturating_mul(w.batch)));
                }
            }
            Profile::Custom => need.push((custom_queue(app), k.saturating_mul(n.demand.uncommitted))),
            Profile::Jms | Profile::Ace | Profile::Tibco => {}
        }
        out.extend(
            need.into_iter()
                .map(|(queue, per_instance)| (queue, per_instance.saturating_mul(app.max_instances))),
        );
    }
    out
}

pub(super) fn address(app: &App, instance: u64) -> String {
    match &app.address {
        Address::PerInstance => format!("{}#{instance}", app.name),
        Address::Group(g) => g.clone(),
    }
}

/// Waits until `done`, or until more watched reason codes than `before` were returned and the
/// fleet settled, or [`GATE_WAIT`].
fn wait_for(qm: &FakeQm, before: u64, done: impl Fn() -> bool) {
    let deadline = Instant::now() + GATE_WAIT;
    let mut failed_at: Option<Instant> = None;
    while !done() && Instant::now() < deadline {
        if failed_at.is_none() && observed_reasons(qm).values().sum::<u64>() > before {
            failed_at = Some(Instant::now());
        }
        if failed_at.is_some_and(|t| t.elapsed() >= SETTLE) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub(super) fn observed_reasons(qm: &FakeQm) -> BTreeMap<i32, u64> {
    observe::watched(qm.reason_counts().into_iter().map(|((_, r), n)| (r, n)))
}

/// The outcome as JSON, the `validation` field of `mqplan check --validate --format json`:
/// `{matches, server, connect_limited, numbers: [{what, predicted, observed, at_most}],
/// predicted_reason_codes, observed_reason_codes: {code: count}, short_of_worst_case, notes}`.
#[must_use]
pub fn to_json(o: &Outcome) -> serde_json::Value {
    let numbers: Vec<serde_json::Value> = o
        .numbers
        .iter()
        .map(|c| serde_json::json!({"what": c.what, "predicted": c.predicted, "observed": c.observed, "at_most": c.at_most}))
        .collect();
    let observed: serde_json::Map<String, serde_json::Value> = o
        .observed_reasons
        .iter()
        .map(|(r, n)| (r.to_string(), (*n).into()))
        .collect();
    serde_json::json!({
        "matches": o.matches(),
        "server": o.server,
        "connect_limited": o.connect_limited,
        "numbers": numbers,
        "predicted_reason_codes": o.predicted_reasons,
        "observed_reason_codes": observed,
        "short_of_worst_case": o.short_of_worst_case,
        "notes": o.notes,
    })
}

/// The outcome as text: predicted against observed.
#[must_use]
pub fn render(o: &Outcome) -> String {
    let mut out = match &o.server {
        None => String::from("mqplan validate: the model on the embedded fake queue manager\n"),
        Some(s) => format!("mqplan validate: the model on the fake-qm server at {s}, one process per instance\n"),
    };
    if o.connect_limited {
        out.push_str(
            "  a connection-level limit fails, so part of the fleet cannot connect: counts are not compared\n",
        );
    }
    for c in &o.numbers {
        let mark = if c.holds() { "ok      " } else { "MISMATCH" };
        let bound = if c.at_most { "at most " } else { "" };
        let _ = writeln!(
            out,
            "  {mark}  {}: predicted {bound}{}, observed {}",
            c.what, c.predicted, c.observed
        );
    }
    for short in &o.short_of_worst_case {
        let _ = writeln!(out, "  MISMATCH  {short}");
    }
    let predicted: Vec<String> = o.predicted_reasons.iter().map(ToString::to_string).collect();
    let observed: Vec<String> = o.observed_reasons.iter().map(|(r, n)| format!("{r} x{n}")).collect();
    let _ = writeln!(
        out,
        "  {}  reason codes: predicted [{}], observed [{}]",
        if o.reasons_match() { "ok      " } else { "MISMATCH" },
        predicted.join(", "),
        observed.join(", ")
    );
    for n in &o.notes {
        let _ = writeln!(out, "  note: {n}");
    }
    let _ = writeln!(
        out,
        "result: {}",
        if o.matches() {
            "observed matches predicted"
        } else {
            "mismatch"
        }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(observed: &[(i32, u64)]) -> Outcome {
        Outcome {
            numbers: Vec::new(),
            predicted_reasons: observed.iter().map(|&(r, _)| r).collect(),
            observed_reasons: observed.iter().copied().collect(),
            connect_limited: false,
            notes: Vec::new(),
            server: None,
            short_of_worst_case: Vec::new(),
        }
    }

    #[test]
    fn a_fleet_short_of_the_gate_without_a_limit_proves_nothing() {
        let short = || vec!["w: 93 of 160 operations reached the gate before the snapshot".to_owned()];
        let mut quiet = outcome(&[]);
        quiet.fell_short(short());
        assert!(!quiet.matches());
        assert!(render(&quiet).contains("MISMATCH  w: 93 of 160"), "{}", render(&quiet));
        // With a limit's reason code, the limit is what stopped the rest: a note.
        let mut limited = outcome(&[(2017, 3)]);
        limited.fell_short(short());
        assert!(limited.matches(), "{}", render(&limited));
        assert_eq!(limited.notes, short());
    }
}
