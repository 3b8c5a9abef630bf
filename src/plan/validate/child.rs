//! One instance as its own OS process on a `fake-qm` server (`mqplan validate-instance`).
//!
//! The process connects from its own client address (a local IP it binds), drives the
//! instance's call pattern to its worst moment and holds it: logicapps-builtin, jms, ace,
//! tibco and custom through [`RemoteVerbs`], mqpilot through the real pool and worker on
//! [`MqLibrary::remote_with`] with the gate as sink. Then it writes one `ready` line
//! (`ready ARRIVED EXPECTED` for mqpilot: pollers at the gate) and waits for one line on its
//! input: the barrier across processes. A release line lets the instance go and the process
//! ends.
//!
//! The input is the parent's pipe, watched on a thread of its own from the start ([`Parent`]):
//! when it ends before a release line, the parent is gone, whatever stage the instance is
//! at, and the process ends at once. Its sockets close with it, so the server backs out what
//! it held, as a queue manager does for a client process that ends without MQDISC.

use std::cell::Cell;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::IpAddr;
use std::sync::mpsc::{Receiver, TryRecvError, channel};
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

/// What the parent said on the instance's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Said {
    /// A line: let go and end.
    Release,
    /// The input ended (or failed) before a line: the parent is gone.
    Gone,
}

/// The parent process, as its pipe on the instance's input tells of it: watched on a thread
/// of its own, so that its end is seen at any stage of the instance.
pub struct Parent {
    said: Receiver<Said>,
    /// What it said, once heard.
    heard: Cell<Option<Said>>,
}

impl Parent {
    /// Watches `input` for a release line. When it ends first, `on_gone` runs on the
    /// watching thread: `mqplan validate-instance` ends the process there.
    ///
    /// # Errors
    /// [`Error::Io`] when the watching thread cannot start.
    pub fn watch(input: impl Read + Send + 'static, on_gone: impl FnOnce() + Send + 'static) -> Result<Self, Error> {
        let (tell, said) = channel();
        std::thread::Builder::new()
            .name("parent-watch".into())
            .spawn(move || {
                let heard = match BufReader::new(input).read_line(&mut String::new()) {
                    Ok(1..) => Said::Release,
                    Ok(0) | Err(_) => Said::Gone,
                };
                let _ = tell.send(heard);
                if heard == Said::Gone {
                    on_gone();
                }
            })
            .map_err(|source| Error::Io {
                path: "validate-instance".into(),
                source,
            })?;
        Ok(Self {
            said,
            heard: Cell::new(None),
        })
    }

    /// Whether the parent is gone (its pipe ended before a release line).
    fn gone(&self) -> bool {
        if self.heard.get().is_none() {
            self.heard.set(match self.said.try_recv() {
                Ok(said) => Some(said),
                Err(TryRecvError::Empty) => None,
                // The watching thread ended without a word: it cannot tell of a release.
                Err(TryRecvError::Disconnected) => Some(Said::Gone),
            });
        }
        self.heard.get() == Some(Said::Gone)
    }

    /// Waits for the release line; `false` when the parent went first.
    fn released(&self) -> bool {
        if self.heard.get().is_none() {
            self.heard.set(Some(self.said.recv().unwrap_or(Said::Gone)));
        }
        self.heard.get() == Some(Said::Release)
    }
}

/// Runs one instance until released (see the module header).
///
/// # Errors
/// [`Error::Io`] when the ready line cannot be written, the async runtime cannot start, or
/// the parent is gone (when its `on_gone` let the process live).
pub fn run_instance(plan: &Plan, args: &InstanceArgs, parent: &Parent, mut ready: impl Write) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: "validate-instance".into(),
        source,
    };
    let gone = || {
        io(std::io::Error::new(
            std::io::ErrorKind::BrokenPipe,
            "the run that started this instance is gone",
        ))
    };
    let verbs = RemoteVerbs::new(args.server.clone()).with_source_address(args.source);
    let app = &plan.model.apps[args.app];
    if app.profile != Profile::Mqpilot {
        drive_instance(plan, args.app, args.instance, 0, &verbs);
        writeln!(ready, "ready").and_then(|()| ready.flush()).map_err(io)?;
        return if parent.released() { Ok(()) } else { Err(gone()) };
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
    let admin = RemoteAdmin::new(args.server.clone());
    wait_at_gate(&admin, &gate, expected, args.gate_wait, parent);
    let written = if parent.gone() {
        Err(gone())
    } else {
        writeln!(ready, "ready {} {expected}", gate.arrived())
            .and_then(|()| ready.flush())
            .map_err(io)
    };
    let released = written.is_ok() && parent.released();
    if released {
        // The batches at the gate are delivered and committed, the pollers end.
        gate.release();
        cancel.cancel();
        if let Some(run) = run {
            runtime.block_on(async {
                let _ = tokio::time::timeout(Duration::from_secs(10), run.finish()).await;
            });
        }
    } else {
        // Nothing at the gate is committed: the process ends, and the server backs out what
        // it holds when its sockets close.
        cancel.cancel();
    }
    runtime.shutdown_timeout(Duration::from_secs(2));
    match written {
        Ok(()) if !released => Err(gone()),
        written => written,
    }
}

/// Waits until `expected` pollers are at the gate, or until the server counted more watched
/// reason codes than at the start and the fleet settled, or `patience` passed, or the parent
/// is gone.
fn wait_at_gate(admin: &RemoteAdmin, gate: &Gate, expected: usize, patience: Duration, parent: &Parent) {
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
    while gate.arrived() < expected && Instant::now() < deadline && !parent.gone() {
        if failed_at.is_none() && reasons() > before {
            failed_at = Some(Instant::now());
        }
        if failed_at.is_some_and(|t| t.elapsed() >= SETTLE) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
