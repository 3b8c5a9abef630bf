//! Property tests of the polling connector: random runs against the fake queue manager, and
//! what the worker promises after each of them, and during shutdown.
//!
//! The random runs vary connections, pollers, batch sizes, queues (each with its own BOTHRESH
//! and backout queue), MAXHANDS, sink failures, connection breaks and poison messages. They
//! prove: no connection ever asked for a handle past its budget (MAXHANDS minus the reserve),
//! so MQ never answered 2017; every message leaves its input queue exactly once, committed to
//! the sink or moved to its backout queue; each time the sink sees a message again its backout
//! count is higher (without faults, by exactly one per failed delivery, and BOTHRESH failures
//! park it); a queue sink neither loses nor duplicates a message, checked at consistent moments
//! during the run as well as at the end. The shutdown tests prove that cancelling (or dropping) a run mid-batch leaves every
//! message committed or visible on its input queue, with no unit of work left open.
//!
//! The bookkeeping behind the exact assertions: a message's backout count is raised by one per
//! backout of a unit of work holding it. Without injected faults the only backouts follow sink
//! failures, so the sink sees a message with counts 0, 1, 2, ... and a message that failed
//! BOTHRESH times goes to the backout queue. Each injected fault or `break_all` backs out a
//! message at most once more, so with E such events the count at the sink's k-th call
//! (0-based) lies in k..=k+E. MQPUT ignores BackoutCount (IBM: "an output field for MQGET"),
//! so a message on a backout queue or an output queue shows 0 there, whatever it went through.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mqpilot::fake::{ChannelDef, FakeConfig, FakeQm, PutSpec, QueueDef, Verb};
use mqpilot::mq::message::Message;
use mqpilot::pool::{BackoffConfig, Pool, PoolConfig, budget};
use mqpilot::worker::QueueTotals;
use mqpilot::worker::limits::RunLimits;
use mqpilot::worker::poller::{PollEnd, PollPlan, SinkTarget};
use mqpilot::worker::run::{QueueRun, RunSummary, start};
use mqpilot::worker::sink::{Delivery, Sink, SinkError};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::worker::{fake, plan, pool, seed};

/// MQRC_CONNECTION_BROKEN.
const BROKEN: i32 = 2009;
/// MQRC_HANDLE_NOT_AVAILABLE.
const HANDLE_NOT_AVAILABLE: i32 = 2017;
/// Wait for the first message of a batch: short, so `until_empty` runs end quickly.
const WAIT_MS: u32 = 20;
/// A run that has not ended by then hangs. Most runs take well under a second; the slowest
/// possible one (one poller meeting every fault, dead connection and sink failure in a row,
/// each pause twice the last) about 12 s.
const RUN_LIMIT: Duration = Duration::from_secs(30);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn input(q: usize) -> String {
    format!("Q{q}")
}

fn backout_queue(q: usize) -> String {
    format!("Q{q}.BO")
}

fn output(q: usize) -> String {
    format!("Q{q}.OUT")
}

fn payload(q: usize, m: usize) -> Vec<u8> {
    format!("Q{q}-m{m}").into_bytes()
}

fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

/// The pool side of a random run.
#[derive(Debug, Clone)]
struct Pools {
    connections: usize,
    max_handles: i32,
    reserve: usize,
}

impl Pools {
    /// The budget every connection gets: MAXHANDS minus the reserve (the configured maximum,
    /// 256, never binds here), at least one.
    fn budget(&self) -> usize {
        budget(
            PoolConfig::default().max_handles,
            usize::try_from(self.max_handles).expect("positive MAXHANDS"),
            self.reserve,
        )
    }
}

/// One input queue of a random run.
#[derive(Debug, Clone)]
struct QueueSetup {
    workers: usize,
    batch: usize,
    /// BOTHRESH.
    threshold: i32,
    /// One entry per message put: whether it is seeded as poison (backout count at or above
    /// the threshold).
    poison: Vec<bool>,
}

impl QueueSetup {
    fn poison_count(&self) -> usize {
        self.poison.iter().filter(|&&p| p).count()
    }
}

/// Faults injected into a run.
#[derive(Debug, Clone, Default)]
struct Faults {
    /// The next `get` MQGETs fail with 2009 (and break their connection).
    get: u32,
    /// The next `put` MQPUTs fail with 2009.
    put: u32,
    /// The next `cmit` MQCMITs fail with 2009.
    cmit: u32,
    /// `break_all` after each of these delays (ms), while the run lasts.
    breaks: Vec<u64>,
}

impl Faults {
    /// The most events that can each back a message out once, apart from sink failures.
    fn events(&self) -> i64 {
        i64::from(self.get + self.put + self.cmit) + self.breaks.len() as i64
    }

    /// The most events that can strike after a sink took a batch (an MQPUT of poison, the
    /// MQCMIT, or a break at any moment): only these make the sink see a message twice
    /// without a sink failure in between.
    fn after_sink(&self) -> i64 {
        i64::from(self.put + self.cmit) + self.breaks.len() as i64
    }

    /// Plans the injected failures on `qm`.
    fn inject(&self, qm: &FakeQm) {
        for (verb, n) in [(Verb::Get, self.get), (Verb::Put, self.put), (Verb::Cmit, self.cmit)] {
            if n > 0 {
                qm.fail_next(verb, n, BROKEN);
            }
        }
    }
}

/// A random run with an external sink.
#[derive(Debug, Clone)]
struct Setup {
    pools: Pools,
    queues: Vec<QueueSetup>,
    /// Which batches the sink fails: a hash of this seed and the batch's first message.
    sink_seed: u64,
    /// Percentage of batches the sink fails, up to [`MAX_SINK_FAILURES`].
    fail_percent: u64,
    faults: Faults,
}

/// At most this many failed sink calls per run, for the same reason as [`MAX_FAULTS`]: the
/// poller's pause doubles with every failure (rounds that succeed earlier in the same
/// checkout do not reset it), so more would only make cases slow.
const MAX_SINK_FAILURES: u64 = 2;

fn pools(connections: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = Pools> {
    (connections, 2..=20i32, 0..=2usize).prop_map(|(connections, max_handles, reserve)| Pools {
        connections,
        max_handles,
        reserve,
    })
}

fn queue_setup(
    workers: std::ops::RangeInclusive<usize>,
    batch: std::ops::RangeInclusive<usize>,
    messages: std::ops::RangeInclusive<usize>,
) -> impl Strategy<Value = QueueSetup> {
    (workers, batch, 2..=4i32, vec(proptest::bool::weighted(0.1), messages)).prop_map(
        |(workers, batch, threshold, poison)| QueueSetup {
            workers,
            batch,
            threshold,
            poison,
        },
    )
}

/// At most this many faults per run. A poller pauses 50 to 100 ms after a failure and twice
/// as long after each further one until a checkout succeeds throughout, so a few faults on
/// one poller already cost a second; more would make cases slow, not stronger.
const MAX_FAULTS: usize = 3;

/// At most this many connections in a run with a `break_all`. Every idle connection of the
/// pool is dead after it, and a poller finds them one checkout at a time, pausing twice as
/// long each time (up to 0.1 + 0.2 + ... + 5 s, about 16 s, for eight of them), so more
/// connections would only make the case slow.
const MAX_CONNECTIONS_WITH_BREAK: usize = 3;

/// Up to [`MAX_FAULTS`] faults, `break_all` at most once; a quarter of the runs have none,
/// so the exact fault-free bookkeeping is checked often.
fn faults() -> impl Strategy<Value = Faults> {
    #[derive(Debug, Clone, Copy)]
    enum Fault {
        Get,
        Put,
        Cmit,
        BreakAll(u64),
    }
    let fault = prop_oneof![
        Just(Fault::Get),
        Just(Fault::Put),
        Just(Fault::Cmit),
        (0..=40u64).prop_map(Fault::BreakAll),
    ];
    vec(fault, 0..=MAX_FAULTS).prop_map(|list| {
        let mut faults = Faults::default();
        for fault in list {
            match fault {
                Fault::Get => faults.get += 1,
                Fault::Put => faults.put += 1,
                Fault::Cmit => faults.cmit += 1,
                Fault::BreakAll(after_ms) => faults.breaks.push(after_ms),
            }
        }
        faults.breaks.truncate(1);
        faults
    })
}

fn setups() -> impl Strategy<Value = Setup> {
    (
        pools(1..=8),
        vec(queue_setup(1..=16, 1..=100, 0..=40), 1..=5),
        any::<u64>(),
        prop_oneof![1 => Just(0u64), 3 => 5..=30u64],
        faults(),
    )
        .prop_map(|(mut pools, queues, sink_seed, fail_percent, faults)| {
            bound_break_cascade(&mut pools, &faults);
            Setup {
                pools,
                queues,
                sink_seed,
                fail_percent,
                faults,
            }
        })
}

/// Keeps a run with a `break_all` to [`MAX_CONNECTIONS_WITH_BREAK`] connections.
fn bound_break_cascade(pools: &mut Pools, faults: &Faults) {
    if !faults.breaks.is_empty() {
        pools.connections = pools.connections.min(MAX_CONNECTIONS_WITH_BREAK);
    }
}

/// `cases` cases unless `PROPTEST_CASES` asks for more; no regression files (this file is the
/// only one the tests own), and shrinking bounded because every case is a whole run.
fn config(cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(cases);
    Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 64,
        ..Config::default()
    }
}

/// Runs one case on a runtime of its own, so nothing a case spawned outlives it.
fn block_on<F: Future>(case: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(case)
}

/// A queue manager with MAXHANDS `max_handles` and, per input queue `Qn` with BOTHRESH
/// `thresholds[n]`, its backout queue `Qn.BO` (its BOQNAME) and an output queue `Qn.OUT`.
fn queue_manager(max_handles: i32, thresholds: impl IntoIterator<Item = i32>) -> FakeQm {
    let mut config = FakeConfig::default();
    config.queue_manager.max_handles = max_handles;
    config.channels.push(ChannelDef::new("APP.SVRCONN"));
    for (q, threshold) in thresholds.into_iter().enumerate() {
        config
            .queues
            .push(QueueDef::new(input(q)).backout(threshold, backout_queue(q)));
        config.queues.push(QueueDef::new(backout_queue(q)));
        config.queues.push(QueueDef::new(output(q)));
    }
    FakeQm::new(config)
}

/// A pool with the run's connections and reserve, and reconnect delays short enough for a
/// test (the default starts at 100 ms).
fn budget_pool(qm: &FakeQm, pools: &Pools) -> Pool {
    let config = PoolConfig {
        connections: pools.connections,
        handle_reserve: pools.reserve,
        backoff: BackoffConfig {
            initial: ms(5),
            max: ms(50),
        },
        ..PoolConfig::default()
    };
    crate::worker::pool_with(qm, config)
}

/// Puts queue `q`'s messages; poison ones with a backout count at or above the threshold.
/// Returns each payload's message id.
fn seed_queue(qm: &FakeQm, q: usize, setup: &QueueSetup) -> HashMap<Vec<u8>, [u8; 24]> {
    let mut ids = HashMap::new();
    for (m, &poison) in setup.poison.iter().enumerate() {
        let spec = PutSpec {
            backout_count: if poison { setup.threshold + (m % 2) as i32 } else { 0 },
            ..PutSpec::text(payload(q, m))
        };
        ids.insert(payload(q, m), qm.put_message(&input(q), spec).unwrap());
    }
    ids
}

fn queue_plan(q: usize, setup: &QueueSetup, sink: SinkTarget) -> Arc<PollPlan> {
    Arc::new(PollPlan {
        queue: input(q).into(),
        syncpoint: true,
        batch: setup.batch,
        max_batch_bytes: 1 << 20,
        wait_ms: WAIT_MS,
        backout_threshold: u32::try_from(setup.threshold).unwrap(),
        backout_queue: Some(backout_queue(q)),
        sink,
    })
}

/// One call of the sink as one message saw it.
#[derive(Debug, Clone, Copy)]
struct Call {
    backout_count: i32,
    succeeded: bool,
}

/// A sink that fails a fraction of batches (at most [`MAX_SINK_FAILURES`] in all), chosen by
/// a hash of a seed and the batch's first message (payload and backout count), and records
/// every call per message.
#[derive(Default)]
struct Flaky {
    seed: u64,
    fail_percent: u64,
    /// Per payload, every call that held it, in order (a message is in one batch at a time).
    calls: Mutex<HashMap<Vec<u8>, Vec<Call>>>,
    /// Failed calls per input queue.
    failed: Mutex<HashMap<String, u64>>,
}

/// FNV-1a over the bytes, then a splitmix64 finaliser.
fn mix(seed: u64, data: &[u8], count: i32) -> u64 {
    let mut h = seed ^ 0xcbf2_9ce4_8422_2325;
    for &b in data.iter().chain(&count.to_le_bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

impl Sink for Flaky {
    fn deliver<'a>(&'a self, batch: &'a [Message]) -> Delivery<'a> {
        Box::pin(async move {
            // Let breaks and other pollers interleave with the sink.
            tokio::task::yield_now().await;
            let first = &batch[0];
            let mut failed = self.failed.lock().unwrap();
            let succeeded = mix(self.seed, &first.data, first.backout_count()) % 100 >= self.fail_percent
                || failed.values().sum::<u64>() >= MAX_SINK_FAILURES;
            if !succeeded {
                *failed.entry(first.queue.to_string()).or_default() += 1;
            }
            drop(failed);
            let mut calls = self.calls.lock().unwrap();
            for m in batch {
                calls.entry(m.data.to_vec()).or_default().push(Call {
                    backout_count: m.backout_count(),
                    succeeded,
                });
            }
            if succeeded {
                return Ok(());
            }
            Err(SinkError::retry("flaky", "planned failure".into()))
        })
    }

    fn name(&self) -> &'static str {
        "flaky"
    }
}

/// Calls `break_all` after each delay, until `done`.
async fn break_on_schedule(qm: FakeQm, delays: Vec<u64>, done: CancellationToken) {
    for delay in delays {
        tokio::select! {
            () = tokio::time::sleep(ms(delay)) => qm.break_all(),
            () = done.cancelled() => return,
        }
    }
}

/// The highest `peak_handles` of any connection the fake lists, sampled every millisecond
/// until `done` (a connection vanishes from `DISPLAY CONN` when it disconnects).
async fn watch_peak_handles(qm: FakeQm, done: CancellationToken) -> usize {
    let mut peak = 0;
    loop {
        peak = qm.connections().iter().map(|c| c.peak_handles).fold(peak, usize::max);
        tokio::select! {
            () = tokio::time::sleep(ms(1)) => {}
            () = done.cancelled() => return peak,
        }
    }
}

/// Runs `queues` until every poller found its queue empty, failing the case if that takes
/// longer than [`RUN_LIMIT`].
async fn run_until_empty(pool: &Pool, queues: &[QueueRun]) -> Result<RunSummary, TestCaseError> {
    let cancel = CancellationToken::new();
    let (_handle, run) = start(pool, queues, RunLimits::new(true, None), &cancel);
    let finish = run.finish();
    tokio::pin!(finish);
    match tokio::time::timeout(RUN_LIMIT, &mut finish).await {
        Ok(summary) => Ok(summary),
        Err(_) => {
            cancel.cancel();
            let summary = finish.await;
            Err(TestCaseError::fail(format!(
                "the run did not end within {RUN_LIMIT:?}: {:?}",
                summary.total()
            )))
        }
    }
}

/// Every connection stayed within its budget, by the fake's count and the pool's, and MQ
/// never refused a handle. The fake refuses any MQOPEN past MAXHANDS, so its peak can never
/// pass MAXHANDS; what could fail is the budget (MAXHANDS minus the reserve) and 2017.
fn check_handles(qm: &FakeQm, summary: &RunSummary, pools: &Pools, sampled_peak: usize) -> Result<(), TestCaseError> {
    let budget = pools.budget();
    prop_assert_eq!(
        qm.reason_count(Verb::Open, HANDLE_NOT_AVAILABLE),
        0,
        "an MQOPEN got 2017: the budget did not keep the connection below MAXHANDS"
    );
    prop_assert_eq!(summary.pool.budget_shrinks, 0, "a 2017 shrank a budget");
    let still_listed = qm.connections().iter().map(|c| c.peak_handles).max().unwrap_or(0);
    prop_assert!(
        sampled_peak.max(still_listed) <= budget,
        "the fake saw a connection hold {} handles, budget {budget}",
        sampled_peak.max(still_listed)
    );
    prop_assert!(summary.pool.connects >= 1, "nothing connected: {:?}", summary.pool);
    for (slot, c) in &summary.pool.connections {
        prop_assert_eq!(c.max_handles, usize::try_from(pools.max_handles).unwrap());
        prop_assert_eq!(c.budget, budget, "slot {}", slot);
        prop_assert!(
            c.peak_handles <= budget,
            "slot {slot} held {} handles, budget {budget}",
            c.peak_handles
        );
    }
    Ok(())
}

/// Every poller of every queue ended because its queue was empty: none stopped, none
/// panicked (a panicked poller leaves no end behind).
fn check_ends(summary: &RunSummary, workers: impl IntoIterator<Item = usize>) -> Result<(), TestCaseError> {
    prop_assert_eq!(summary.stopped(), Vec::<(String, String)>::new());
    for ((queue, _, ends), workers) in summary.queues.iter().zip(workers) {
        prop_assert_eq!(
            ends.len(),
            workers,
            "pollers of {} that ended (the rest panicked)",
            queue
        );
        prop_assert!(ends.iter().all(|e| *e == PollEnd::Empty), "{queue}: {ends:?}");
    }
    Ok(())
}

/// Every received message was committed (to the sink or the backout queue), backed out, or
/// lost with its connection under MQCMIT (whatever MQ did, counted once).
fn check_totals_balance(queue: &str, t: &QueueTotals) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        t.received,
        t.delivered + t.poisoned + t.backed_out + t.commit_unknown,
        "{}: received = delivered + poisoned + backed out + commit unknown: {:?}",
        queue,
        t
    );
    Ok(())
}

/// The payloads on a queue, after checking that every message there is committed and
/// unlocked and none is there twice.
fn settled_payloads(qm: &FakeQm, queue: &str) -> Result<HashSet<Vec<u8>>, TestCaseError> {
    let views = qm.browse(queue);
    let mut payloads = HashSet::new();
    for v in &views {
        prop_assert_eq!(
            v.state,
            "visible",
            "{} holds {} in state {}",
            queue,
            text(&v.data),
            v.state
        );
        prop_assert!(payloads.insert(v.data.clone()), "{queue} holds {} twice", text(&v.data));
    }
    Ok(payloads)
}

/// One external-sink queue after its run: where each message ended and what the sink saw.
/// Long because it is one checklist per message; each rule says why it is exact.
fn check_external_queue(
    qm: &FakeQm,
    q: usize,
    setup: &QueueSetup,
    totals: &QueueTotals,
    sink: &Flaky,
    faults: &Faults,
) -> Result<(), TestCaseError> {
    let left = qm.browse(&input(q));
    prop_assert!(left.is_empty(), "{} still holds {} messages", input(q), left.len());
    let parked = settled_payloads(qm, &backout_queue(q))?;
    let calls = sink.calls.lock().unwrap();
    let (events, after_sink) = (faults.events(), faults.after_sink());
    let mut delivered = 0;
    for (m, &poison) in setup.poison.iter().enumerate() {
        let p = payload(q, m);
        let name = text(&p);
        let seen = calls.get(&p).map_or(&[][..], Vec::as_slice);
        let is_parked = parked.contains(&p);
        if poison {
            // Its count only grows, so it is poison at every receive: never handed to the sink.
            prop_assert!(seen.is_empty(), "poison {name} reached the sink: {seen:?}");
            prop_assert!(is_parked, "poison {name} is not on {}", backout_queue(q));
            continue;
        }
        for (k, call) in seen.iter().enumerate() {
            prop_assert!(
                call.backout_count < setup.threshold,
                "{name} reached the sink with backout count {} >= BOTHRESH {}",
                call.backout_count,
                setup.threshold
            );
            // Every earlier call ended in a backout (the message came back); faults add at
            // most one backout each.
            let extra = i64::from(call.backout_count) - k as i64;
            prop_assert!(
                (0..=events).contains(&extra),
                "{name}: call {k} saw backout count {}, expected {k}..={}: {seen:?}",
                call.backout_count,
                k as i64 + events
            );
        }
        prop_assert!(
            seen.windows(2).all(|w| w[1].backout_count > w[0].backout_count),
            "{name} came back to the sink without a raised backout count: {seen:?}"
        );
        if !is_parked {
            // Committed to the sink: the last call that held it succeeded.
            delivered += 1;
            prop_assert!(
                seen.last().is_some_and(|c| c.succeeded),
                "{name} is neither on {} nor delivered: {seen:?}",
                backout_queue(q)
            );
        }
        if events == 0 {
            // Only sink failures back out: every call but the last failed, the last one
            // succeeded unless the message failed BOTHRESH times and was parked.
            let failures = seen.iter().filter(|c| !c.succeeded).count();
            let expected = if is_parked {
                setup.threshold as usize
            } else {
                seen.len() - 1
            };
            prop_assert_eq!(failures, expected, "{}: {:?}", name, seen);
            prop_assert_eq!(seen.len(), failures + usize::from(!is_parked), "{}: {:?}", name, seen);
        } else if after_sink == 0 {
            // A batch the sink took is always committed: at most one success, the final one.
            let successes = seen.iter().filter(|c| c.succeeded).count();
            prop_assert_eq!(successes, usize::from(!is_parked), "{}: {:?}", name, seen);
        }
    }
    prop_assert_eq!(
        parked.len() + delivered,
        setup.poison.len(),
        "{} holds a message that was never put",
        backout_queue(q)
    );
    prop_assert_eq!(totals.delivered, delivered as u64, "{}: {:?}", input(q), totals);
    prop_assert_eq!(totals.poisoned, parked.len() as u64, "{}: {:?}", input(q), totals);
    let failed = sink.failed.lock().unwrap().get(&input(q)).copied().unwrap_or(0);
    prop_assert_eq!(totals.sink_failures, failed, "{}: {:?}", input(q), totals);
    check_totals_balance(&input(q), totals)
}

async fn external_sink_case(setup: Setup) -> Result<(), TestCaseError> {
    let qm = queue_manager(setup.pools.max_handles, setup.queues.iter().map(|q| q.threshold));
    for (q, queue) in setup.queues.iter().enumerate() {
        seed_queue(&qm, q, queue);
    }
    setup.faults.inject(&qm);
    let pool = budget_pool(&qm, &setup.pools);
    let sink = Arc::new(Flaky {
        seed: setup.sink_seed,
        fail_percent: setup.fail_percent,
        ..Flaky::default()
    });
    let runs: Vec<QueueRun> = (setup.queues.iter().enumerate())
        .map(|(q, queue)| QueueRun {
            plan: queue_plan(q, queue, SinkTarget::External(sink.clone())),
            workers: queue.workers,
        })
        .collect();
    let done = CancellationToken::new();
    let breaker = tokio::spawn(break_on_schedule(qm.clone(), setup.faults.breaks.clone(), done.clone()));
    let watcher = tokio::spawn(watch_peak_handles(qm.clone(), done.clone()));
    let summary = run_until_empty(&pool, &runs).await;
    done.cancel();
    breaker.await.unwrap();
    let peak = watcher.await.unwrap();
    let summary = summary?;
    check_ends(&summary, setup.queues.iter().map(|q| q.workers))?;
    check_handles(&qm, &summary, &setup.pools, peak)?;
    for (q, queue) in setup.queues.iter().enumerate() {
        check_external_queue(&qm, q, queue, &summary.queues[q].1, &sink, &setup.faults)?;
    }
    Ok(())
}

/// 24 random runs (a few seconds in a debug build).
#[test]
fn random_runs_deliver_or_park_every_message_once_within_maxhands() {
    let mut runner = TestRunner::new(config(24));
    let result = runner.run(&setups(), |setup| block_on(external_sink_case(setup)));
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// A random queue-sink run: `Qn` forwards to `Qn.OUT` inside the unit of work.
#[derive(Debug, Clone)]
struct BridgeSetup {
    pools: Pools,
    queues: Vec<QueueSetup>,
    faults: Faults,
}

fn bridge_setups() -> impl Strategy<Value = BridgeSetup> {
    (pools(1..=4), vec(queue_setup(1..=8, 1..=50, 1..=60), 1..=3), faults()).prop_map(|(mut pools, queues, faults)| {
        bound_break_cascade(&mut pools, &faults);
        BridgeSetup { pools, queues, faults }
    })
}

/// The messages of queue `q`'s bridge at one moment at which no unit of work committed, or
/// `None` when one did while looking.
///
/// Depths cannot be summed mid-run: CURDEPTH of the input excludes messages got in an open
/// unit of work, CURDEPTH of the output includes its uncommitted puts, and a batch in flight
/// has got more than it has put yet. Browsing counts every state instead: a message is on the
/// input in some state (visible, or got and uncommitted) until the commit that removes it,
/// and the same commit makes its copy visible on the output or backout queue. So messages on
/// the input in any state + visible on the output + visible on the backout queue = messages
/// put, at every instant. The three browses are separate calls, though; a commit between them
/// could count a message twice or never. Every commit here removes at least one message from
/// the input and nothing else adds any, so an input that holds as many messages after the
/// other two browses as before means no commit came between: the sample is consistent.
fn consistent_bridge_sample(qm: &FakeQm, q: usize) -> Option<Vec<Vec<u8>>> {
    let before = qm.browse(&input(q));
    let committed = |queue: String| {
        qm.browse(&queue)
            .into_iter()
            .filter(|v| v.state == "visible")
            .map(|v| v.data)
            .collect::<Vec<_>>()
    };
    let forwarded = committed(output(q));
    let parked = committed(backout_queue(q));
    let after = qm.browse(&input(q));
    (before.len() == after.len()).then(|| {
        let mut all: Vec<Vec<u8>> = before.into_iter().map(|v| v.data).collect();
        all.extend(forwarded);
        all.extend(parked);
        all.sort();
        all
    })
}

/// Consistent samples of every bridge taken while the run lasts, in all cases together.
static BRIDGE_SAMPLES: AtomicUsize = AtomicUsize::new(0);

/// Samples every bridge until `done`; `Err` names the first sample that lost or duplicated a
/// message.
async fn sample_bridges(qm: FakeQm, put: Vec<Vec<Vec<u8>>>, done: CancellationToken) -> Result<(), String> {
    loop {
        for (q, expected) in put.iter().enumerate() {
            if let Some(sample) = consistent_bridge_sample(&qm, q) {
                BRIDGE_SAMPLES.fetch_add(1, Ordering::Relaxed);
                if sample != *expected {
                    return Err(format!(
                        "mid-run, {} + {} + {} held {:?}, expected each of the {} messages put once",
                        input(q),
                        output(q),
                        backout_queue(q),
                        sample.iter().map(|p| text(p)).collect::<Vec<_>>(),
                        expected.len()
                    ));
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(ms(1)) => {}
            () = done.cancelled() => return Ok(()),
        }
    }
}

/// One bridge after its run: every message is on the output or the backout queue, once,
/// with its own message id; poison never reached the output.
fn check_bridge_queue(
    qm: &FakeQm,
    q: usize,
    setup: &QueueSetup,
    ids: &HashMap<Vec<u8>, [u8; 24]>,
    totals: &QueueTotals,
    faults: &Faults,
) -> Result<(), TestCaseError> {
    let depth = |queue: String| qm.depth(&queue).unwrap();
    prop_assert_eq!(depth(input(q)), 0);
    prop_assert_eq!(
        depth(output(q)) + depth(backout_queue(q)),
        i32::try_from(setup.poison.len()).unwrap(),
        "{}: input + output + backout depth = messages put",
        input(q)
    );
    let forwarded = settled_payloads(qm, &output(q))?;
    let parked = settled_payloads(qm, &backout_queue(q))?;
    let mut out_ids = HashSet::new();
    for v in qm.browse(&output(q)) {
        prop_assert_eq!(
            Some(&v.msg_id),
            ids.get(&v.data),
            "{} changed message id",
            text(&v.data)
        );
        prop_assert!(out_ids.insert(v.msg_id), "message id of {} twice", text(&v.data));
    }
    for (m, &poison) in setup.poison.iter().enumerate() {
        let p = payload(q, m);
        prop_assert!(
            forwarded.contains(&p) != parked.contains(&p),
            "{} is on {} of the output and backout queues",
            text(&p),
            u8::from(forwarded.contains(&p)) + u8::from(parked.contains(&p))
        );
        if poison {
            prop_assert!(parked.contains(&p), "poison {} was forwarded", text(&p));
        }
    }
    if faults.events() < i64::from(setup.threshold) {
        // A good message can be backed out only by a fault, at most once per fault: fewer
        // faults than BOTHRESH cannot make it poison.
        prop_assert_eq!(parked.len(), setup.poison_count(), "{} parked a good message", input(q));
    }
    prop_assert_eq!(totals.delivered, forwarded.len() as u64, "{:?}", totals);
    prop_assert_eq!(totals.poisoned, parked.len() as u64, "{:?}", totals);
    check_totals_balance(&input(q), totals)
}

async fn bridge_case(setup: BridgeSetup) -> Result<(), TestCaseError> {
    let qm = queue_manager(setup.pools.max_handles, setup.queues.iter().map(|q| q.threshold));
    let ids: Vec<_> = (setup.queues.iter().enumerate())
        .map(|(q, queue)| seed_queue(&qm, q, queue))
        .collect();
    let put: Vec<Vec<Vec<u8>>> = (setup.queues.iter().enumerate())
        .map(|(q, queue)| {
            let mut all: Vec<_> = (0..queue.poison.len()).map(|m| payload(q, m)).collect();
            all.sort();
            all
        })
        .collect();
    setup.faults.inject(&qm);
    let pool = budget_pool(&qm, &setup.pools);
    let runs: Vec<QueueRun> = (setup.queues.iter().enumerate())
        .map(|(q, queue)| QueueRun {
            plan: queue_plan(q, queue, SinkTarget::Queue(output(q))),
            workers: queue.workers,
        })
        .collect();
    let done = CancellationToken::new();
    let breaker = tokio::spawn(break_on_schedule(qm.clone(), setup.faults.breaks.clone(), done.clone()));
    let watcher = tokio::spawn(watch_peak_handles(qm.clone(), done.clone()));
    let sampler = tokio::spawn(sample_bridges(qm.clone(), put, done.clone()));
    let summary = run_until_empty(&pool, &runs).await;
    done.cancel();
    breaker.await.unwrap();
    let peak = watcher.await.unwrap();
    let sampled = sampler.await.unwrap();
    let summary = summary?;
    sampled.map_err(TestCaseError::fail)?;
    check_ends(&summary, setup.queues.iter().map(|q| q.workers))?;
    check_handles(&qm, &summary, &setup.pools, peak)?;
    for (q, queue) in setup.queues.iter().enumerate() {
        check_bridge_queue(&qm, q, queue, &ids[q], &summary.queues[q].1, &setup.faults)?;
    }
    Ok(())
}

/// 16 random runs (a few seconds in a debug build).
#[test]
fn queue_sink_under_breaks_keeps_every_message_exactly_once_during_and_after_the_run() {
    let mut runner = TestRunner::new(config(16));
    let result = runner.run(&bridge_setups(), |setup| block_on(bridge_case(setup)));
    if let Err(e) = result {
        panic!("{e}");
    }
    assert!(
        BRIDGE_SAMPLES.load(Ordering::Relaxed) > 0,
        "no consistent sample was taken during any run: the mid-run check proved nothing"
    );
}

/// A sink that announces each call, sleeps, then succeeds on even calls (keeping the batch)
/// and fails on odd ones.
struct Slow {
    sleep: Duration,
    calls: AtomicUsize,
    entered: mpsc::UnboundedSender<usize>,
    /// Every message handed to it, whatever became of the call.
    seen: Mutex<Vec<Message>>,
    got: Mutex<Vec<Message>>,
    failed: Mutex<Vec<Message>>,
}

impl Slow {
    fn new(sleep: Duration) -> (Arc<Self>, mpsc::UnboundedReceiver<usize>) {
        let (entered, rx) = mpsc::unbounded_channel();
        let sink = Self {
            sleep,
            calls: AtomicUsize::new(0),
            entered,
            seen: Mutex::default(),
            got: Mutex::default(),
            failed: Mutex::default(),
        };
        (Arc::new(sink), rx)
    }
}

impl Sink for Slow {
    fn deliver<'a>(&'a self, batch: &'a [Message]) -> Delivery<'a> {
        Box::pin(async move {
            let call = self.calls.fetch_add(1, Ordering::SeqCst);
            self.seen.lock().unwrap().extend_from_slice(batch);
            let _ = self.entered.send(call);
            tokio::time::sleep(self.sleep).await;
            if call.is_multiple_of(2) {
                self.got.lock().unwrap().extend_from_slice(batch);
                Ok(())
            } else {
                self.failed.lock().unwrap().extend_from_slice(batch);
                Err(SinkError::retry("slow", "planned failure".into()))
            }
        })
    }

    fn name(&self) -> &'static str {
        "slow"
    }
}

/// Waits until the sink has been entered `n` times.
async fn wait_for_calls(entered: &mut mpsc::UnboundedReceiver<usize>, n: usize) {
    for _ in 0..n {
        tokio::time::timeout(Duration::from_secs(5), entered.recv())
            .await
            .expect("the sink was not called")
            .expect("the sink is alive");
    }
}

fn payloads(messages: &[Message]) -> HashSet<Vec<u8>> {
    messages.iter().map(|m| m.data.to_vec()).collect()
}

/// Waits (up to 5 s) until `done` holds.
async fn eventually(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..500 {
        if done() {
            return true;
        }
        tokio::time::sleep(ms(10)).await;
    }
    done()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_mid_batch_commits_or_backs_out_every_batch_in_flight_and_disconnects() {
    let qm = fake(256);
    seed(&qm, "IN", 40);
    let pool = pool(&qm, 2);
    let (sink, mut entered) = Slow::new(ms(300));
    let queues = vec![QueueRun {
        plan: plan("IN", 5, SinkTarget::External(sink.clone())),
        workers: 3,
    }];
    let cancel = CancellationToken::new();
    let (_handle, run) = start(&pool, &queues, RunLimits::new(false, None), &cancel);
    // Both connections have a batch in the sink; the third poller waits for a connection.
    wait_for_calls(&mut entered, 2).await;
    cancel.cancel();
    let summary = run.finish().await;

    assert_eq!(summary.queues[0].2, vec![PollEnd::Cancelled; 3]);
    assert_eq!(sink.calls.load(Ordering::SeqCst), 2, "no batch starts after the cancel");
    let got = payloads(&sink.got.lock().unwrap());
    let failed = payloads(&sink.failed.lock().unwrap());
    assert_eq!((got.len(), failed.len()), (5, 5));
    // The batch the sink took is committed; the one it failed is back, counted once.
    let left = qm.browse("IN");
    assert_eq!(left.len(), 35);
    for v in &left {
        assert_eq!(v.state, "visible", "{} is left in state {}", text(&v.data), v.state);
        assert!(
            !got.contains(&v.data),
            "{} was delivered and is still on IN",
            text(&v.data)
        );
        let expected = i32::from(failed.contains(&v.data));
        assert_eq!(v.backout_count, expected, "{}", text(&v.data));
    }
    let on_queue: HashSet<Vec<u8>> = left.iter().map(|v| v.data.clone()).collect();
    assert!(failed.is_subset(&on_queue));
    assert_eq!(got.len() + on_queue.len(), 40, "none lost");
    let totals = summary.total();
    assert_eq!(
        (totals.delivered, totals.backed_out, totals.sink_failures),
        (5, 5, 1),
        "{totals:?}"
    );
    assert_eq!(qm.queue_status("IN").unwrap().uncommitted, 0);
    assert!(
        qm.connections().iter().all(|c| c.uncommitted == 0),
        "{:?}",
        qm.connections()
    );
    // `finish` closed the idle connections: each disconnects cleanly, with nothing to commit.
    assert!(
        eventually(|| qm.connections().is_empty()).await,
        "{:?}",
        qm.connections()
    );
    assert_eq!(qm.reason_count(Verb::Disc, 0), summary.pool.connects);
    assert_eq!(qm.depth("IN"), Some(35));
}

/// Dropping a run is the abrupt shutdown (its pollers are aborted). The batches in flight
/// either finish on their connections' threads or are backed out when their leases drop; no
/// new batch starts, and each message ends delivered and committed, or visible on its queue
/// with its backout count raised once per failed delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_run_mid_batch_starts_no_batch_and_leaves_every_message_committed_or_visible() {
    let qm = fake(256);
    seed(&qm, "IN", 40);
    let pool = pool(&qm, 2);
    let (sink, mut entered) = Slow::new(ms(300));
    let queues = vec![QueueRun {
        plan: plan("IN", 5, SinkTarget::External(sink.clone())),
        workers: 2,
    }];
    let cancel = CancellationToken::new();
    let (_handle, run) = start(&pool, &queues, RunLimits::new(false, None), &cancel);
    wait_for_calls(&mut entered, 2).await;
    assert_eq!(qm.queue_status("IN").unwrap().uncommitted, 10);
    drop(run);
    // A job queued behind whatever each connection's thread is still doing returns once it
    // is done: then nothing is in flight.
    let idle = CancellationToken::new();
    let mut leases = vec![pool.checkout(&idle).await.unwrap(), pool.checkout(&idle).await.unwrap()];
    for lease in &mut leases {
        lease.run(|_| Ok(())).await.unwrap();
    }
    drop(leases);
    let left = qm.browse("IN");
    assert_eq!(sink.calls.load(Ordering::SeqCst), 2, "no batch starts after the drop");
    let got = payloads(&sink.got.lock().unwrap());
    let failed = payloads(&sink.failed.lock().unwrap());
    let on_queue: HashSet<Vec<u8>> = left.iter().map(|v| v.data.clone()).collect();
    assert_eq!(got.len() + on_queue.len(), 40, "none lost");
    for v in &left {
        assert_eq!(v.state, "visible", "{} is left in state {}", text(&v.data), v.state);
        assert!(
            !got.contains(&v.data),
            "{} was delivered and is still on IN",
            text(&v.data)
        );
        // Taken by neither call: an abandoned batch is backed out as a failed one is.
        let abandoned = !failed.contains(&v.data) && payloads(&sink.seen.lock().unwrap()).contains(&v.data);
        let expected = i32::from(failed.contains(&v.data) || abandoned);
        assert_eq!(v.backout_count, expected, "{}", text(&v.data));
    }
    assert_eq!(qm.queue_status("IN").unwrap().uncommitted, 0);
    assert!(
        qm.connections().iter().all(|c| c.uncommitted == 0),
        "{:?}",
        qm.connections()
    );
}

/// Found by the random runs: a lease dropped for a broken connection gave its permit back at
/// once but its slot id only once the connection's thread had disconnected, so a poller
/// waiting for a permit connected, found no free slot id and panicked ("a permit guarantees a
/// free slot id"). A latency of 2 ms per MQI call makes the disconnect slow enough to lose
/// that race every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_replacing_a_broken_connection_never_runs_out_of_slot_ids() {
    let qm = fake(256);
    seed(&qm, "IN", 20);
    let pool = pool(&qm, 1);
    // Every MQI call takes 2 ms: the broken connection's thread needs a few to disconnect.
    qm.set_latency(ms(2));
    qm.fail_next(Verb::Get, 1, BROKEN);
    let queues = vec![QueueRun {
        plan: plan("IN", 10, SinkTarget::Queue("OUT".into())),
        workers: 2,
    }];
    let cancel = CancellationToken::new();
    let (_handle, run) = start(&pool, &queues, RunLimits::new(true, None), &cancel);
    let summary = run.finish().await;
    assert_eq!(summary.queues[0].2, vec![PollEnd::Empty; 2], "a poller panicked");
    assert_eq!(qm.depth("OUT"), Some(20));
}
