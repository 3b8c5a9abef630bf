//! Instances driven through the fake's safe verbs: logicapps-builtin, jms, ace, tibco and
//! custom, each instance one client process that connects and opens what its profile holds at
//! its worst moment (with the app's `extra_handles` on each connection), and keeps it open.
//!
//! The verbs are the in-process [`FakeQm`](crate::fake::FakeQm) or a `fake-qm` server's
//! [`RemoteVerbs`](crate::fake::net::RemoteVerbs); the calls are `fake::calls`, so nothing
//! here names MQ's option constants.

use super::{address, clamp_u32, custom_queue};
use crate::fake::calls::{Access, browse_lock_first, get_under_syncpoint, open_queue};
use crate::fake::{ConnectRequest, Verbs};
use crate::plan::profile::{Kind, Profile};
use crate::plan::report::Plan;

/// One instance driven through the safe verbs.
struct Instance<'a, V: Verbs> {
    verbs: &'a V,
    request: ConnectRequest,
}

impl<V: Verbs> Instance<'_, V> {
    fn connect(&self) -> Option<i32> {
        self.verbs.connect(&self.request).ok()
    }

    fn open(&self, hconn: i32, queue: &str, access: Access) -> Option<i32> {
        open_queue(self.verbs, hconn, queue, access).ok()
    }

    /// Browses the first visible message and locks it to `hobj`.
    fn browse_lock(&self, hconn: i32, hobj: i32) {
        let _ = browse_lock_first(self.verbs, hconn, hobj);
    }

    /// Opens the app's `extra_handles` on `hconn` (for output: they take no message), on
    /// `queue`.
    fn extras(&self, hconn: i32, queue: &str, n: u64) {
        for _ in 0..n {
            if self.open(hconn, queue, Access::Output).is_none() {
                break;
            }
        }
    }

    /// Gets `n` messages under syncpoint (stops at the first failure, e.g. 2024).
    fn get_under_syncpoint(&self, hconn: i32, hobj: i32, n: u64) {
        for _ in 0..n {
            if get_under_syncpoint(self.verbs, hconn, hobj).is_err() {
                break;
            }
        }
    }
}

const INPUT: Access = Access::Input;
const OUTPUT: Access = Access::Output;

/// Instance `i` of app `a`: connects and opens what the profile holds at its worst moment.
pub(super) fn drive_instance<V: Verbs>(plan: &Plan, a: usize, i: u64, process: u64, verbs: &V) {
    let app = &plan.model.apps[a];
    let n = &plan.numbers[a];
    let inst = Instance {
        verbs,
        request: ConnectRequest {
            channel: Some(plan.model.queue_manager.channels[app.channel].name.clone()),
            client_address: address(app, i),
            process,
            client_sharecnv: Some(clamp_u32(app.sharecnv)),
            appl_name: app.name.clone(),
            ..ConnectRequest::default()
        },
    };
    let extra = app.extra_handles;
    match app.profile {
        Profile::LogicappsBuiltin => {
            let conns: Vec<Option<i32>> = (0..n.demand.connections).map(|_| inst.connect()).collect();
            let k = conns.len();
            for w in app.workloads.iter().filter(|w| w.kind.browse_locks()) {
                for op in 0..w.concurrency as usize {
                    let Some(hconn) = conns[op % k] else { continue };
                    for _ in 0..w.batch {
                        match inst.open(hconn, &w.queue, Access::BrowseInput) {
                            Some(hobj) => inst.browse_lock(hconn, hobj),
                            None => break,
                        }
                    }
                }
            }
            // Every other operation in flight holds the queue open (open, get or put, close),
            // spread over the pool the same way.
            for w in app.workloads.iter().filter(|w| !w.kind.browse_locks()) {
                let options = if w.kind == Kind::Send { OUTPUT } else { INPUT };
                for op in 0..w.concurrency as usize {
                    if let Some(hconn) = conns[op % k] {
                        inst.open(hconn, &w.queue, options);
                    }
                }
            }
            for hconn in conns.iter().flatten() {
                inst.extras(*hconn, &app.workloads[0].queue, extra);
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
                        inst.extras(hconn, &w.queue, extra);
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
                        inst.extras(hconn, &w.queue, extra);
                    }
                }
            }
        }
        Profile::Tibco => {
            for w in &app.workloads {
                for _ in 0..w.activities * w.concurrency {
                    if let Some(hconn) = inst.connect()
                        && inst.open(hconn, &w.queue, INPUT).is_some()
                    {
                        inst.extras(hconn, &w.queue, extra);
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
