//! Instances driven through the fake's safe verbs: logicapps-builtin, jms, ace, tibco and
//! custom, each instance one client process that connects and opens what its profile holds at
//! its worst moment, and keeps it open.
//!
//! The MQOO/MQGMO constants come from `libmqm_sys`, the names the fake's verbs take.

use libmqm_sys as mq;

use super::{address, clamp_u32, custom_queue};
use crate::fake::{ConnectRequest, FakeQm, GetOptions, ObjectRef};
use crate::plan::profile::{Kind, Profile};
use crate::plan::report::Plan;

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
pub(super) fn drive_instance(plan: &Plan, a: usize, i: u64, process: u64, qm: &FakeQm) {
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
