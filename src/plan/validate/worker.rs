//! mqpilot instances: the real pool and worker on the fake, each instance its own pool (one
//! client process), every batch held at a gate until the snapshot is taken.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio_util::sync::CancellationToken;

use super::{address, clamp_u32};
use crate::fake::FakeQm;
use crate::mq::MqLibrary;
use crate::mq::message::Message;
use crate::mq::options::{ConnectOptions, parse_mqserver};
use crate::plan::profile::Kind;
use crate::plan::report::Plan;
use crate::pool::{Pool, PoolConfig};
use crate::worker::limits::RunLimits;
use crate::worker::poller::{PollPlan, SinkTarget};
use crate::worker::run::{QueueRun, Run, start};
use crate::worker::sink::{Delivery, Sink};
use tokio::task::JoinSet;

/// A sink that holds every batch until released: the barrier the worst case is read at.
#[derive(Clone)]
pub(super) struct Gate {
    arrived: Arc<AtomicUsize>,
    open: tokio::sync::watch::Sender<bool>,
}

impl Gate {
    pub(super) fn new() -> Self {
        Self {
            arrived: Arc::new(AtomicUsize::new(0)),
            open: tokio::sync::watch::Sender::new(false),
        }
    }

    pub(super) fn arrived(&self) -> usize {
        self.arrived.load(Ordering::SeqCst)
    }

    pub(super) fn release(&self) {
        self.open.send_replace(true);
    }
}

impl Gate {
    /// Arrives at the gate and waits until it opens.
    fn hold(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut open = self.open.subscribe();
        self.arrived.fetch_add(1, Ordering::SeqCst);
        async move {
            let _ = open.wait_for(|o| *o).await;
        }
    }
}

impl Sink for Gate {
    fn deliver<'a>(&'a self, _batch: &'a [Message]) -> Delivery<'a> {
        let held = self.hold();
        Box::pin(async move {
            held.await;
            Ok(())
        })
    }

    fn name(&self) -> &'static str {
        "gate"
    }
}

/// Pollers and senders of one instance of an mqpilot app that reach the gate at once: one
/// per connection, K.
pub(super) fn expected_per_instance(plan: &Plan, a: usize) -> usize {
    usize::try_from(plan.numbers[a].demand.connections).unwrap_or(usize::MAX)
}

/// Pollers of every instance of an mqpilot app that reach the gate at once.
pub(super) fn expected_arrivals(plan: &Plan, a: usize) -> usize {
    let instances = usize::try_from(plan.model.apps[a].max_instances).unwrap_or(usize::MAX);
    expected_per_instance(plan, a).saturating_mul(instances)
}

/// What every instance of an mqpilot app runs: its queues (the gate as sink), its senders,
/// connection options and pool settings.
pub(super) struct MqpilotApp {
    queues: Vec<QueueRun>,
    /// One entry per send operation in flight: the queue it puts to.
    sends: Vec<String>,
    gate: Gate,
    options: ConnectOptions,
    config: PoolConfig,
}

impl MqpilotApp {
    /// The app's set-up, with notes on what is not driven; `None` (and a note) when its
    /// channel cannot be used.
    pub(super) fn new(plan: &Plan, a: usize, gate: &Gate, notes: &mut Vec<String>) -> Option<Self> {
        let app = &plan.model.apps[a];
        let channel = &plan.model.queue_manager.channels[app.channel].name;
        // Pollers whose batch passes MAXUMSGS stop at their first batch (2024), and such an
        // app's counts are not compared: its sends are not held, since they could take every
        // connection of a pool before any poller and the 2024 would never come.
        let max_uncommitted = plan.model.queue_manager.max_uncommitted;
        let stops = app
            .workloads
            .iter()
            .any(|w| matches!(w.kind, Kind::Poll | Kind::Forward) && w.batch > max_uncommitted);
        for w in &app.workloads {
            let skipped = match w.kind {
                Kind::Send if stops => Some("not held, so that the pollers meet MAXUMSGS (2024) first"),
                Kind::Send => {
                    Some("a send operation holds a pooled connection and its output handle, and puts nothing")
                }
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
            return None;
        };
        let options = ConnectOptions::builder()
            .with_channel(server)
            .with_application_name(app.name.clone())
            .with_sharecnv(clamp_u32(app.sharecnv))
            .build()
            .ok()?;
        let config = PoolConfig {
            connections: usize::try_from(app.connections.unwrap_or(2)).unwrap_or(usize::MAX),
            handle_reserve: 0,
            ..PoolConfig::default()
        };
        let sends = app
            .workloads
            .iter()
            .filter(|w| w.kind == Kind::Send && !stops)
            .flat_map(|w| std::iter::repeat_n(w.queue.clone(), usize::try_from(w.concurrency).unwrap_or(usize::MAX)))
            .collect();
        Some(Self {
            queues,
            sends,
            gate: gate.clone(),
            options,
            config,
        })
    }

    /// Starts one instance on `library` (one client process): its own pool, pollers and
    /// senders. Must run inside a tokio runtime.
    pub(super) fn start(&self, library: MqLibrary, cancel: &CancellationToken) -> Instance {
        let pool = Pool::new(library, self.options.clone(), self.config.clone());
        let mut senders = JoinSet::new();
        for queue in &self.sends {
            let (pool, queue, gate, cancel) = (pool.clone(), queue.clone(), self.gate.clone(), cancel.clone());
            senders.spawn(async move {
                // A send in flight: a pooled connection with the queue open for output.
                let Ok(mut lease) = pool.checkout(&cancel).await else {
                    return;
                };
                if lease.run(move |conn| conn.open_output(&queue)).await.is_ok() {
                    gate.hold().await;
                }
            });
        }
        Instance {
            pollers: start(&pool, &self.queues, RunLimits::default(), cancel).1,
            senders,
        }
    }
}

/// One running instance of an mqpilot app.
pub(super) struct Instance {
    pollers: Run,
    senders: JoinSet<()>,
}

impl Instance {
    /// Waits for the pollers and the senders to end (after the gate opened or on cancel).
    pub(super) async fn finish(mut self) {
        self.pollers.finish().await;
        while self.senders.join_next().await.is_some() {}
    }
}

/// Starts every instance of mqpilot app `a` on the in-process fake.
pub(super) fn start_mqpilot(
    plan: &Plan,
    a: usize,
    qm: &FakeQm,
    gate: &Gate,
    cancel: &CancellationToken,
    notes: &mut Vec<String>,
) -> Vec<Instance> {
    let app = &plan.model.apps[a];
    let Some(setup) = MqpilotApp::new(plan, a, gate, notes) else {
        return Vec::new();
    };
    (0..app.max_instances)
        .map(|i| setup.start(MqLibrary::fake(qm.library(address(app, i))), cancel))
        .collect()
}
