//! The fleet runner: a model executed on the fake queue manager with each profile's call
//! pattern, everything held in flight at once, then what the fake observed set against the
//! prediction.
//!
//! Apps run in file order, instance by instance, and nothing is released until the snapshot:
//! that is the worst case the planner predicts. logicapps-builtin, jms, ace, tibco and custom
//! instances are driven through the fake's safe verbs (each instance one client process);
//! mqpilot instances run the real [`Pool`] and worker, whose sink waits at a gate until every
//! poller holds a batch. The outcome matches when the reason codes the fake returned are the
//! ones of the failing checks and, unless a connection-level limit fails (which stops part of
//! the fleet from connecting at all), connections, channel instances and handles per
//! connection equal the prediction.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use libmqm_sys as mq;
use tokio_util::sync::CancellationToken;

use super::check::Status;
use super::math::{Limit, MQRC_CHANNEL_NOT_AVAILABLE, MQRC_MAX_CONNS_LIMIT_REACHED};
use super::model::{Address, App};
use super::profile::{Kind, Profile};
use super::report::Plan;
use crate::Error;
use crate::fake::{ChannelDef, ConnectRequest, FakeConfig, FakeQm, GetOptions, ObjectRef, PutSpec, QueueDef};
use crate::mq::MqLibrary;
use crate::mq::message::Message;
use crate::mq::options::{ConnectOptions, parse_mqserver};
use crate::pool::{Pool, PoolConfig};
use crate::worker::poller::{PollPlan, RunLimits, SinkTarget};
use crate::worker::run::{QueueRun, Run, start};
use crate::worker::sink::{Delivery, Sink};

/// How long the runner waits for an mqpilot app's pollers to reach the gate.
const GATE_WAIT: Duration = Duration::from_secs(5);
/// After a limit's reason code appears, how long the fleet may still settle.
const SETTLE: Duration = Duration::from_millis(150);
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
}

impl Outcome {
    /// Whether the fake did what the planner said.
    #[must_use]
    pub fn matches(&self) -> bool {
        self.reasons_match() && self.numbers.iter().all(|c| c.predicted == c.observed)
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
    let gate = Gate::new();
    let cancel = CancellationToken::new();
    let mut runs: Vec<Run> = Vec::new();
    let mut process = PROCESS_BASE;
    for (a, app) in plan.model.apps.iter().enumerate() {
        if app.profile == Profile::Mqpilot {
            let rt = runtime.as_ref().expect("a runtime exists when an mqpilot app does");
            let _guard = rt.enter();
            let expected = gate.arrived() + expected_arrivals(plan, a);
            runs.extend(start_mqpilot(plan, a, &qm, &gate, &cancel, &mut notes));
            wait_for(&qm, || gate.arrived() >= expected);
            if gate.arrived() < expected {
                let depth = app
                    .workloads
                    .iter()
                    .map(|w| qm.depth(&w.queue).unwrap_or(0))
                    .sum::<i32>();
                notes.push(format!(
                    "{}: {} of {expected} pollers reached the gate within {} s (queue depth left: {depth})",
                    app.name,
                    gate.arrived(),
                    GATE_WAIT.as_secs()
                ));
            }
            continue;
        }
        for i in 0..app.max_instances {
            process += 1;
            drive_instance(plan, a, i, process, &qm);
        }
    }
    let outcome = observe(plan, &qm, notes);
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

fn clamp_i32(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn clamp_u32(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn fake_config(plan: &Plan) -> FakeConfig {
    let m = &plan.model.queue_manager;
    let mut config = FakeConfig::default();
    config.queue_manager.name.clone_from(&m.name);
    config.queue_manager.max_handles = clamp_i32(m.max_handles);
    config.queue_manager.max_uncommitted = clamp_i32(m.max_uncommitted);
    config.queue_manager.max_channels = clamp_u32(m.max_channels);
    config.queue_manager.max_active_channels = Some(clamp_u32(m.max_active_channels));
    config.queue_manager.max_connections = m.max_connections.map(clamp_u32);
    for c in &m.channels {
        config.channels.push(
            ChannelDef::new(c.name.clone())
                .max_inst(clamp_u32(c.max_inst))
                .max_instc(clamp_u32(c.max_instc))
                .sharecnv(clamp_u32(c.sharecnv)),
        );
    }
    let mut queues = BTreeSet::new();
    for app in &plan.model.apps {
        queues.insert(custom_queue(app));
        for w in &app.workloads {
            queues.insert(w.queue.clone());
            queues.extend(w.queues.iter().cloned());
            queues.extend(w.to.iter().cloned());
            queues.extend(w.backout_queue.iter().cloned());
        }
    }
    for q in queues {
        let mut def = QueueDef::new(q);
        def.max_depth = i32::MAX;
        config.queues.push(def);
    }
    config
}

/// The queue a custom app's handles are opened on.
fn custom_queue(app: &App) -> String {
    app.workloads
        .first()
        .map_or_else(|| format!("MQPLAN.{}", app.name.to_uppercase()), |w| w.queue.clone())
}

/// Puts the messages every held operation needs: a browse-lock per handle, a batch per
/// mqpilot connection, U per custom connection.
fn seed(plan: &Plan, qm: &FakeQm) {
    for (app, n) in plan.model.apps.iter().zip(&plan.numbers) {
        let k = n.demand.connections;
        let mut need: Vec<(String, u64)> = Vec::new();
        match app.profile {
            Profile::LogicappsBuiltin => {
                for w in app.workloads.iter().filter(|w| w.kind.browse_locks()) {
                    need.push((w.queue.clone(), w.concurrency * w.batch));
                }
            }
            Profile::Mqpilot => {
                for w in app
                    .workloads
                    .iter()
                    .filter(|w| matches!(w.kind, Kind::Poll | Kind::Forward))
                {
                    need.push((w.queue.clone(), k * w.batch));
                }
            }
            Profile::Custom => need.push((custom_queue(app), k * n.demand.uncommitted)),
            Profile::Jms | Profile::Ace | Profile::Tibco => {}
        }
        for (queue, per_instance) in need {
            for _ in 0..per_instance * app.max_instances {
                let _ = qm.put_message(&queue, PutSpec::text("mqplan"));
            }
        }
    }
}

fn address(app: &App, instance: u64) -> String {
    match &app.address {
        Address::PerInstance => format!("{}#{instance}", app.name),
        Address::Group(g) => g.clone(),
    }
}

/// One instance driven through the safe verbs.
struct Instance<'a> {
    qm: &'a FakeQm,
    request: ConnectRequest,
}

impl Instance<'_> {
    fn connect(&self) -> Option<i32> {
        self.qm.connect(&self.request).ok()
    }

    fn open(&self, hconn: i32, queue: &str, options: i32) -> Option<i32> {
        let object = ObjectRef {
            object_type: mq::MQOT_Q,
            name: queue.to_owned(),
        };
        self.qm.open(hconn, &object, options).ok()
    }

    /// Browses the first visible message and locks it to `hobj`.
    fn browse_lock(&self, hconn: i32, hobj: i32) {
        let mut md = crate::fake::default_md();
        let gmo = GetOptions {
            options: mq::MQGMO_BROWSE_FIRST | mq::MQGMO_LOCK | mq::MQGMO_NO_WAIT,
            wait_interval: 0,
            match_options: mq::MQMO_NONE,
        };
        let _ = self.qm.get(hconn, hobj, &mut md, &gmo, &mut [0u8; 64]);
    }

    /// Gets `n` messages under syncpoint (stops at the first failure, e.g. 2024).
    fn get_under_syncpoint(&self, hconn: i32, hobj: i32, n: u64) {
        let gmo = GetOptions {
            options: mq::MQGMO_SYNCPOINT | mq::MQGMO_NO_WAIT,
            wait_interval: 0,
            match_options: mq::MQMO_NONE,
        };
        for _ in 0..n {
            let mut md = crate::fake::default_md();
            if self.qm.get(hconn, hobj, &mut md, &gmo, &mut [0u8; 64]).is_err() {
                break;
            }
        }
    }
}

const INPUT: i32 = mq::MQOO_INPUT_AS_Q_DEF;
const OUTPUT: i32 = mq::MQOO_OUTPUT;

/// Instance `i` of app `a`: connects and opens what the profile holds at its worst moment.
fn drive_instance(plan: &Plan, a: usize, i: u64, process: u64, qm: &FakeQm) {
    let app = &plan.model.apps[a];
    let n = &plan.numbers[a];
    let inst = Instance {
        qm,
        request: ConnectRequest {
            channel: Some(plan.model.queue_manager.channels[app.channel].name.clone()),
            client_address: address(app, i),
            process,
            client_sharecnv: Some(clamp_u32(app.sharecnv)),
            appl_name: app.name.clone(),
            ..ConnectRequest::default()
        },
    };
    match app.profile {
        Profile::LogicappsBuiltin => {
            let conns: Vec<Option<i32>> = (0..n.demand.connections).map(|_| inst.connect()).collect();
            let k = conns.len();
            for w in app.workloads.iter().filter(|w| w.kind.browse_locks()) {
                for op in 0..w.concurrency as usize {
                    let Some(hconn) = conns[op % k] else { continue };
                    for _ in 0..w.batch {
                        match inst.open(hconn, &w.queue, mq::MQOO_BROWSE | INPUT) {
                            Some(hobj) => inst.browse_lock(hconn, hobj),
                            None => break,
                        }
                    }
                }
            }
            if let Some(w) = app.workloads.iter().find(|w| !w.kind.browse_locks()) {
                let options = if w.kind == Kind::Send { OUTPUT } else { INPUT };
                for hconn in conns.iter().flatten() {
                    inst.open(*hconn, &w.queue, options);
                }
            }
        }
        Profile::Jms => {
            for w in &app.workloads {
                inst.connect();
                for _ in 0..w.concurrency {
                    let Some(hconn) = inst.connect() else { continue };
                    let options = if w.kind == Kind::Producer { OUTPUT } else { INPUT };
                    if inst.open(hconn, &w.queue, options).is_some() {
                        for q in &w.queues {
                            inst.open(hconn, q, OUTPUT);
                        }
                    }
                }
            }
        }
        Profile::Ace => {
            for w in &app.workloads {
                let mut queues: Vec<&str> = w.queues.iter().map(String::as_str).filter(|q| *q != w.queue).collect();
                queues.sort_unstable();
                queues.dedup();
                for _ in 0..w.concurrency {
                    let Some(hconn) = inst.connect() else { continue };
                    if inst.open(hconn, &w.queue, INPUT).is_some() {
                        for q in &queues {
                            inst.open(hconn, q, OUTPUT);
                        }
                    }
                }
            }
        }
        Profile::Tibco => {
            for w in &app.workloads {
                for _ in 0..w.activities * w.concurrency {
                    if let Some(hconn) = inst.connect() {
                        inst.open(hconn, &w.queue, INPUT);
                    }
                }
            }
        }
        Profile::Custom => {
            let queue = custom_queue(app);
            for _ in 0..n.demand.connections {
                let Some(hconn) = inst.connect() else { continue };
                let handles: Vec<i32> = (0..n.demand.handles)
                    .map_while(|_| inst.open(hconn, &queue, INPUT))
                    .collect();
                if let Some(&hobj) = handles.first() {
                    inst.get_under_syncpoint(hconn, hobj, n.demand.uncommitted);
                }
            }
        }
        Profile::Mqpilot => unreachable!("mqpilot instances run the real worker"),
    }
}

/// A sink that holds every batch until released: the barrier the worst case is read at.
#[derive(Clone)]
struct Gate {
    arrived: Arc<AtomicUsize>,
    open: tokio::sync::watch::Sender<bool>,
}

impl Gate {
    fn new() -> Self {
        Self {
            arrived: Arc::new(AtomicUsize::new(0)),
            open: tokio::sync::watch::Sender::new(false),
        }
    }

    fn arrived(&self) -> usize {
        self.arrived.load(Ordering::SeqCst)
    }

    fn release(&self) {
        self.open.send_replace(true);
    }
}

impl Sink for Gate {
    fn deliver<'a>(&'a self, _batch: &'a [Message]) -> Delivery<'a> {
        let mut open = self.open.subscribe();
        self.arrived.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            let _ = open.wait_for(|o| *o).await;
            Ok(())
        })
    }

    fn name(&self) -> &'static str {
        "gate"
    }
}

/// Pollers of an mqpilot app that reach the gate at once: min(K, pollers) per instance.
fn expected_arrivals(plan: &Plan, a: usize) -> usize {
    let app = &plan.model.apps[a];
    let pollers: u64 = app
        .workloads
        .iter()
        .filter(|w| matches!(w.kind, Kind::Poll | Kind::Forward))
        .map(|w| w.concurrency)
        .sum();
    usize::try_from(plan.numbers[a].demand.connections.min(pollers) * app.max_instances).unwrap_or(usize::MAX)
}

/// Starts every instance of mqpilot app `a`: its own pool (one client process) and pollers.
fn start_mqpilot(
    plan: &Plan,
    a: usize,
    qm: &FakeQm,
    gate: &Gate,
    cancel: &CancellationToken,
    notes: &mut Vec<String>,
) -> Vec<Run> {
    let app = &plan.model.apps[a];
    let channel = &plan.model.queue_manager.channels[app.channel].name;
    if app.sharecnv != 10 {
        notes.push(format!(
            "{}: the worker connects with the client default SHARECNV 10, not the model's {}",
            app.name, app.sharecnv
        ));
    }
    for w in &app.workloads {
        let skipped = match w.kind {
            Kind::Send => Some("send workloads are not driven (the worker only polls)"),
            Kind::Forward => Some("forward targets are not opened (the gate stands in for the queue sink)"),
            _ if w.backout_queue.is_some() => Some("backout queues are opened only for poison messages"),
            _ => None,
        };
        if let Some(why) = skipped {
            notes.push(format!("{} ({}): {why}", app.name, w.queue));
        }
    }
    let sink: Arc<dyn Sink> = Arc::new(gate.clone());
    let queues: Vec<QueueRun> = app
        .workloads
        .iter()
        .filter(|w| matches!(w.kind, Kind::Poll | Kind::Forward))
        .map(|w| QueueRun {
            plan: Arc::new(PollPlan {
                queue: w.queue.as_str().into(),
                syncpoint: true,
                batch: usize::try_from(w.batch).unwrap_or(usize::MAX),
                max_batch_bytes: usize::MAX,
                wait_ms: 50,
                backout_threshold: 0,
                backout_queue: None,
                sink: SinkTarget::External(Arc::clone(&sink)),
            }),
            workers: usize::try_from(w.concurrency).unwrap_or(usize::MAX),
        })
        .collect();
    let Ok(server) = parse_mqserver(&format!("{channel}/TCP/localhost(1414)"), "model") else {
        notes.push(format!(
            "{}: channel {channel} is not a valid MQSERVER channel name",
            app.name
        ));
        return Vec::new();
    };
    let Ok(options) = ConnectOptions::builder()
        .with_channel(server)
        .with_application_name(app.name.clone())
        .build()
    else {
        return Vec::new();
    };
    let config = PoolConfig {
        connections: usize::try_from(app.connections.unwrap_or(2)).unwrap_or(usize::MAX),
        handle_reserve: 0,
        ..PoolConfig::default()
    };
    (0..app.max_instances)
        .map(|i| {
            let pool = Pool::new(
                MqLibrary::fake(qm.library(address(app, i))),
                options.clone(),
                config.clone(),
            );
            start(&pool, &queues, RunLimits::default(), cancel).1
        })
        .collect()
}

/// Waits until `done`, or until a watched reason code appeared and the fleet settled, or
/// [`GATE_WAIT`].
fn wait_for(qm: &FakeQm, done: impl Fn() -> bool) {
    let deadline = Instant::now() + GATE_WAIT;
    let mut failed_at: Option<Instant> = None;
    while !done() && Instant::now() < deadline {
        if failed_at.is_none() && observed_reasons(qm).values().any(|&n| n > 0) {
            failed_at = Some(Instant::now());
        }
        if failed_at.is_some_and(|t| t.elapsed() >= SETTLE) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn observed_reasons(qm: &FakeQm) -> BTreeMap<i32, u64> {
    let mut out = BTreeMap::new();
    for ((_, reason), n) in qm.reason_counts() {
        if WATCHED.contains(&reason) && n > 0 {
            *out.entry(reason).or_insert(0) += n;
        }
    }
    out
}

/// Reads the fake and sets it against the plan.
fn observe(plan: &Plan, qm: &FakeQm, mut notes: Vec<String>) -> Outcome {
    let report = plan.report("validate", 0.0);
    let failing: Vec<_> = report.checks.iter().filter(|c| c.status == Status::Fails).collect();
    let predicted_reasons: BTreeSet<i32> = failing.iter().map(|c| c.reason_code).collect();
    let connect_limited = predicted_reasons
        .iter()
        .any(|r| [MQRC_CHANNEL_NOT_AVAILABLE, MQRC_MAX_CONNS_LIMIT_REACHED].contains(r));
    let conns: Vec<_> = qm.connections().into_iter().filter(|c| c.broken.is_none()).collect();
    let channels = qm.channels();
    // The worker stops a queue's pollers on 2024 (it will not fix itself), so an mqpilot app
    // whose batch passes MAXUMSGS never holds its worst case: its counts are not compared.
    let stopped: BTreeSet<&str> = plan
        .model
        .apps
        .iter()
        .filter(|a| a.profile == Profile::Mqpilot)
        .filter(|a| {
            failing
                .iter()
                .any(|c| c.limit == Limit::MaxUmsgs && c.apps.iter().any(|n| *n == a.name))
        })
        .map(|a| a.name.as_str())
        .collect();
    for name in &stopped {
        notes.push(format!(
            "{name}: the worker stops its pollers on 2024 (MAXUMSGS), so its connections and channel instances \
             are not compared"
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
            push(
                &mut numbers,
                "peak handles per connection",
                r.peak_handles_per_connection.min(max_handles),
                mine.iter().map(|c| c.peak_handles).max().unwrap_or(0),
            );
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
                    observed: status.and_then(|s| s.per_address.get(g)).map_or(0, |&n| n as u64),
                });
            }
        }
    }
    Outcome {
        numbers,
        predicted_reasons,
        observed_reasons: observed_reasons(qm),
        connect_limited,
        notes,
    }
}

/// The outcome as text: predicted against observed.
#[must_use]
pub fn render(o: &Outcome) -> String {
    let mut out = String::from("mqplan validate: the model on the embedded fake queue manager\n");
    if o.connect_limited {
        out.push_str(
            "  a connection-level limit fails, so part of the fleet cannot connect: counts are not compared\n",
        );
    }
    for c in &o.numbers {
        let mark = if c.predicted == c.observed {
            "ok      "
        } else {
            "MISMATCH"
        };
        let _ = writeln!(
            out,
            "  {mark}  {}: predicted {}, observed {}",
            c.what, c.predicted, c.observed
        );
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
