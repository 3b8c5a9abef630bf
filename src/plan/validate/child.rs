//! One instance as its own OS process on a `fake-qm` server (`mqplan validate-instance`).
//!
//! The process connects from its own client address (a local IP it binds), drives the
//! instance's call pattern to its worst moment and holds it: logicapps-builtin, jms, ace,
//! tibco and custom through [`RemoteVerbs`], mqpilot through the real pool and worker on
//! [`MqLibrary::remote_with`] with the gate as sink. Then it writes one `ready` line
//! (`ready ARRIVED EXPECTED` for mqpilot: pollers at the gate) and waits for one line, or
//! the end, on its input: the barrier across processes. Whatever ends the wait (a release
//! line, or the parent gone and its pipe closed), the instance lets go and the process ends.

use std::io::{BufRead, Write};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::SETTLE;
use super::instance::drive_instance;
use super::observe::watched;
use super::worker::{Gate, MqpilotApp, expected_per_instance};
use crate::Error;
use crate::fake::net::{RemoteAdmin, RemoteVerbs};
use crate::mq::MqLibrary;
use crate::plan::profile::Profile;
use crate::plan::report::Plan;

/// Which instance a process is, and where it connects from and to.
#[derive(Debug, Clone)]
pub struct InstanceArgs {
    /// The app's index in the model.
    pub app: usize,
    /// The instance number, from 0.
    pub instance: u64,
    /// The `fake-qm` server (`host:port`).
    pub server: String,
    /// The client address to connect from.
    pub source: IpAddr,
    /// How long its pollers have to reach the gate (the run's `--ready-timeout`).
    pub gate_wait: Duration,
}

/// Runs one instance until released (see the module header).
///
/// # Errors
/// [`Error::Io`] when the ready line cannot be written or the async runtime cannot start.
pub fn run_instance(
    plan: &Plan,
    args: &InstanceArgs,
    mut release: impl BufRead,
    mut ready: impl Write,
) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: "validate-instance".into(),
        source,
    };
    let verbs = RemoteVerbs::new(args.server.clone()).with_source_address(args.source);
    let app = &plan.model.apps[args.app];
    if app.profile != Profile::Mqpilot {
        drive_instance(plan, args.app, args.instance, 0, &verbs);
        writeln!(ready, "ready").and_then(|()| ready.flush()).map_err(io)?;
        let _ = release.read_line(&mut String::new());
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(io)?;
    let gate = Gate::new();
    let cancel = CancellationToken::new();
    let run = MqpilotApp::new(plan, args.app, &gate, &mut Vec::new()).map(|setup| {
        let _guard = runtime.enter();
        setup.start(MqLibrary::remote_with(verbs), &cancel)
    });
    let expected = expected_per_instance(plan, args.app);
    wait_at_gate(&RemoteAdmin::new(args.server.clone()), &gate, expected, args.gate_wait);
    let written = writeln!(ready, "ready {} {expected}", gate.arrived()).and_then(|()| ready.flush());
    if written.is_ok() {
        let _ = release.read_line(&mut String::new());
    }
    gate.release();
    cancel.cancel();
    if let Some(run) = run {
        runtime.block_on(async {
            let _ = tokio::time::timeout(Duration::from_secs(10), run.finish()).await;
        });
    }
    runtime.shutdown_timeout(Duration::from_secs(2));
    written.map_err(io)
}

/// Waits until `expected` pollers are at the gate, or until the server counted more watched
/// reason codes than at the start and the fleet settled, or `patience` passed.
fn wait_at_gate(admin: &RemoteAdmin, gate: &Gate, expected: usize, patience: Duration) {
    let reasons = || {
        admin
            .status()
            .map(|s| {
                watched(s.reasons.iter().map(|r| (r.reason, r.count)))
                    .values()
                    .sum::<u64>()
            })
            .unwrap_or(0)
    };
    let before = reasons();
    let deadline = Instant::now() + patience;
    let mut failed_at: Option<Instant> = None;
    while gate.arrived() < expected && Instant::now() < deadline {
        if failed_at.is_none() && reasons() > before {
            failed_at = Some(Instant::now());
        }
        if failed_at.is_some_and(|t| t.elapsed() >= SETTLE) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
