//! The fake queue manager against a plain model, with proptest-state-machine.
//!
//! Random runs of 40 to 80 MQI steps over three connections and two queues (connect, open
//! with five option sets, put and MQPUT1 with and without syncpoint, get with and without
//! syncpoint, browse first/next with and without lock, unlock, close, commit, backout,
//! disconnect, and breaking a connection) go through the real `mqi` crate into the fake.
//! The model is nothing but a `VecDeque` of committed messages per queue and, per connection,
//! its open handles and the messages it got and put in its unit of work. After every step the
//! test checks that:
//!
//! - the call's reason code is the one the model predicts; in particular MQOPEN and MQPUT1
//!   fail with 2017 exactly when the connection already holds MAXHANDS handles (also checked
//!   against the fake's own `DISPLAY CONN`);
//! - every queue holds exactly the model's messages, in the model's order (a backed-out
//!   message keeps its original place), with the model's backout counts and states, and
//!   CURDEPTH matches;
//! - no message is lost or duplicated: what is on the queues plus what was consumed is what
//!   was put, each once;
//! - no connection holds more than MAXHANDS handles, each handle is on the model's queue
//!   with the model's options, and each lock is where the model says.

use std::collections::{BTreeSet, VecDeque};

use mqi::connection::ThreadNoBlock;
use mqi::constants::{
    MQGMO_BROWSE_FIRST, MQGMO_BROWSE_NEXT, MQGMO_LOCK, MQGMO_NO_SYNCPOINT, MQGMO_SYNCPOINT, MQGMO_UNLOCK, MQOO_BROWSE,
    MQOO_INPUT_AS_Q_DEF, MQOO_INPUT_EXCLUSIVE, MQOO_INPUT_SHARED, MQOO_OUTPUT, MQPMO_NO_SYNCPOINT, MQPMO_SYNCPOINT,
    MQRC_CONNECTION_BROKEN, MQRC_HANDLE_NOT_AVAILABLE, MQRC_HCONN_ERROR, MQRC_NO_MSG_AVAILABLE, MQRC_NO_MSG_LOCKED,
    MQRC_NOT_OPEN_FOR_BROWSE, MQRC_NOT_OPEN_FOR_INPUT, MQRC_NOT_OPEN_FOR_OUTPUT, MQRC_OBJECT_IN_USE,
};
use mqi::handle::ConnectionHandle;
use mqi::result::{Completion, ResultComp};
use mqi::types::{MQGMO, MQOO};
use mqi::{ConnectionRef, MqFunctions, Object, Syncpoint, structs};
use mqpilot::fake::{FakeConfig, FakeMqi, FakeQm, QmgrDef, QueueDef};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::Union;
use proptest::test_runner::Config;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};

use crate::support::{Conn, connect_lib, queue};

/// MAXHANDS of the queue manager under test: small, so that 2017 happens often.
const MAX_HANDS: usize = 3;
/// Connection slots a run may use.
const SLOTS: usize = 3;
/// The queues, by index.
const QUEUES: [&str; 2] = ["MODEL.A", "MODEL.B"];

/// The open options a step may use. Queues are SHARE with DEFSOPT(SHARED).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenKind {
    /// MQOO_OUTPUT.
    Output,
    /// MQOO_INPUT_SHARED.
    InputShared,
    /// MQOO_INPUT_EXCLUSIVE.
    InputExclusive,
    /// MQOO_BROWSE.
    Browse,
    /// MQOO_INPUT_AS_Q_DEF | MQOO_BROWSE | MQOO_OUTPUT (shared input, by DEFSOPT).
    All,
}

const KINDS: [OpenKind; 5] = [
    OpenKind::Output,
    OpenKind::InputShared,
    OpenKind::InputExclusive,
    OpenKind::Browse,
    OpenKind::All,
];

impl OpenKind {
    fn options(self) -> MQOO {
        match self {
            Self::Output => MQOO_OUTPUT,
            Self::InputShared => MQOO_INPUT_SHARED,
            Self::InputExclusive => MQOO_INPUT_EXCLUSIVE,
            Self::Browse => MQOO_BROWSE,
            Self::All => MQOO_INPUT_AS_Q_DEF | MQOO_BROWSE | MQOO_OUTPUT,
        }
    }

    const fn input(self) -> bool {
        matches!(self, Self::InputShared | Self::InputExclusive | Self::All)
    }

    const fn output(self) -> bool {
        matches!(self, Self::Output | Self::All)
    }

    const fn browse(self) -> bool {
        matches!(self, Self::Browse | Self::All)
    }
}

/// One step of a run. `slot` names a connection slot, `handle` the index of an open handle
/// in that slot's list (in the order they were opened), `queue` an index into [`QUEUES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Connect(usize),
    Disconnect(usize),
    /// `FakeQm::break_connection`: the network drops the connection.
    Break(usize),
    Open {
        slot: usize,
        queue: usize,
        kind: OpenKind,
    },
    Close {
        slot: usize,
        handle: usize,
    },
    /// MQPUT1 of the next message id: takes a handle for the length of the call.
    Put1 {
        slot: usize,
        queue: usize,
        sync: bool,
    },
    /// Puts the next message id as the payload.
    Put {
        slot: usize,
        handle: usize,
        sync: bool,
    },
    Get {
        slot: usize,
        handle: usize,
        sync: bool,
    },
    /// BROWSE_FIRST (`first`) or BROWSE_NEXT, with LOCK when `lock`.
    Browse {
        slot: usize,
        handle: usize,
        first: bool,
        lock: bool,
    },
    /// MQGET with MQGMO_UNLOCK.
    Unlock {
        slot: usize,
        handle: usize,
    },
    Commit(usize),
    Backout(usize),
}

/// Short constructors, so that scripts and strategies read as one line per step.
impl Step {
    const fn open(slot: usize, queue: usize, kind: OpenKind) -> Self {
        Self::Open { slot, queue, kind }
    }

    const fn put1(slot: usize, queue: usize, sync: bool) -> Self {
        Self::Put1 { slot, queue, sync }
    }

    const fn put(slot: usize, handle: usize, sync: bool) -> Self {
        Self::Put { slot, handle, sync }
    }

    const fn get(slot: usize, handle: usize, sync: bool) -> Self {
        Self::Get { slot, handle, sync }
    }

    const fn browse(slot: usize, handle: usize, first: bool, lock: bool) -> Self {
        Self::Browse {
            slot,
            handle,
            first,
            lock,
        }
    }

    const fn unlock(slot: usize, handle: usize) -> Self {
        Self::Unlock { slot, handle }
    }

    const fn close(slot: usize, handle: usize) -> Self {
        Self::Close { slot, handle }
    }
}

/// What one MQ call answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Outcome {
    /// MQCC_OK with no message.
    #[default]
    Done,
    /// MQCC_OK with a message: its id (the payload) and BackoutCount.
    Message { id: u64, backouts: i32 },
    /// MQCC_WARNING with this reason code.
    Warned(i32),
    /// MQCC_FAILED with this reason code (2033 included).
    Failed(i32),
}

// ---------------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Msg {
    /// Unique, and increasing in put order: it is also the arrival sequence.
    id: u64,
    backouts: i32,
}

/// Messages of a unit of work, each with the index of its queue.
type Pending = Vec<(usize, Msg)>;

#[derive(Debug, Clone, Copy)]
struct HandleModel {
    queue: usize,
    kind: OpenKind,
    /// Id of the message the browse cursor is on.
    cursor: Option<u64>,
    /// Id of the message this handle has locked.
    locked: Option<u64>,
}

#[derive(Debug, Clone, Default)]
struct ConnModel {
    broken: bool,
    /// Open handles. A broken connection keeps its list so that steps can still name the
    /// application's (now useless) objects; the queue manager holds none of them.
    handles: Vec<HandleModel>,
    /// Messages got under syncpoint, with their queue: hidden until commit or backout.
    got: Pending,
    /// Messages put under syncpoint, with their queue: invisible until commit.
    put: Pending,
}

impl ConnModel {
    fn take_work(&mut self) -> (Pending, Pending) {
        (std::mem::take(&mut self.got), std::mem::take(&mut self.put))
    }
}

/// The reference model: plain collections, no cleverness.
#[derive(Debug, Clone, Default)]
struct Model {
    /// Committed messages per queue in arrival order, locked ones included.
    queues: [VecDeque<Msg>; QUEUES.len()],
    conns: [Option<ConnModel>; SLOTS],
    /// The id the next put uses.
    next_id: u64,
    /// Ids put and not backed out: on a queue (maybe uncommitted) or consumed.
    existing: BTreeSet<u64>,
    /// Ids removed for good (got without syncpoint, or got under syncpoint and committed).
    consumed: BTreeSet<u64>,
    /// What the last step should have answered.
    last: Outcome,
}

/// Inserts by arrival sequence, so a backed-out or newly committed message takes its place.
fn insert_in_order(queue: &mut VecDeque<Msg>, msg: Msg) {
    let at = queue.partition_point(|m| m.id < msg.id);
    queue.insert(at, msg);
}

impl Model {
    fn live_conns(&self) -> impl Iterator<Item = (usize, &ConnModel)> {
        self.conns
            .iter()
            .enumerate()
            .filter_map(|(slot, c)| c.as_ref().filter(|c| !c.broken).map(|c| (slot, c)))
    }

    fn live_handles(&self) -> impl Iterator<Item = &HandleModel> {
        self.live_conns().flat_map(|(_, c)| c.handles.iter())
    }

    /// The connection in `slot`, or 2009 when it is broken.
    fn live(&mut self, slot: usize) -> Result<&mut ConnModel, i32> {
        let conn = self.conns[slot].as_mut().expect("precondition: slot is connected");
        if conn.broken {
            Err(MQRC_CONNECTION_BROKEN.0)
        } else {
            Ok(conn)
        }
    }

    /// Whether a handle other than (`slot`, `handle`) has locked message `id`.
    fn locked_by_other(&self, slot: usize, handle: usize, id: u64) -> bool {
        self.live_conns().any(|(s, c)| {
            c.handles
                .iter()
                .enumerate()
                .any(|(h, hm)| (s, h) != (slot, handle) && hm.locked == Some(id))
        })
    }

    /// Position of the first message after `after` that the handle may see.
    fn first_visible(&self, slot: usize, handle: usize, after: Option<u64>) -> Option<usize> {
        let queue = self.conns[slot].as_ref()?.handles[handle].queue;
        self.queues[queue]
            .iter()
            .position(|m| after.is_none_or(|a| m.id > a) && !self.locked_by_other(slot, handle, m.id))
    }

    fn commit_work(&mut self, got: Pending, put: Pending) {
        for (_, m) in got {
            self.consumed.insert(m.id);
        }
        for (q, m) in put {
            insert_in_order(&mut self.queues[q], m);
        }
    }

    fn backout_work(&mut self, got: Pending, put: Pending) {
        for (q, m) in got {
            let msg = Msg {
                backouts: m.backouts + 1,
                ..m
            };
            insert_in_order(&mut self.queues[q], msg);
        }
        for (_, m) in put {
            self.existing.remove(&m.id);
        }
    }

    /// Whether the step names a connected slot and, where it needs one, an open handle.
    fn allows(&self, step: &Step) -> bool {
        match *step {
            Step::Connect(slot) => self.conns[slot].is_none(),
            Step::Disconnect(slot)
            | Step::Break(slot)
            | Step::Commit(slot)
            | Step::Backout(slot)
            | Step::Open { slot, .. }
            | Step::Put1 { slot, .. } => self.conns[slot].is_some(),
            Step::Close { slot, handle }
            | Step::Put { slot, handle, .. }
            | Step::Get { slot, handle, .. }
            | Step::Browse { slot, handle, .. }
            | Step::Unlock { slot, handle } => self.conns[slot].as_ref().is_some_and(|c| handle < c.handles.len()),
        }
    }

    fn apply(&mut self, step: &Step) {
        self.last = self.run(step).unwrap_or_else(Outcome::Failed);
    }

    /// What MQ answers to `step`, applying its effect. One arm per kind of step; the longer
    /// ones are the methods below.
    fn run(&mut self, step: &Step) -> Result<Outcome, i32> {
        match *step {
            Step::Connect(slot) => {
                self.conns[slot] = Some(ConnModel::default());
                Ok(Outcome::Done)
            }
            Step::Disconnect(slot) => {
                let mut conn = self.conns[slot].take().expect("precondition: slot is connected");
                if conn.broken {
                    return Err(MQRC_CONNECTION_BROKEN.0);
                }
                // MQDISC commits the unit of work and closes every handle.
                let (got, put) = conn.take_work();
                self.commit_work(got, put);
                Ok(Outcome::Done)
            }
            Step::Break(slot) => {
                self.break_conn(slot);
                Ok(Outcome::Done)
            }
            Step::Open { slot, queue, kind } => self.open(slot, queue, kind),
            Step::Close { slot, handle } => {
                let conn = self.conns[slot].as_mut().expect("precondition: slot is connected");
                conn.handles.remove(handle);
                if conn.broken {
                    Err(MQRC_CONNECTION_BROKEN.0)
                } else {
                    Ok(Outcome::Done)
                }
            }
            Step::Put1 { slot, queue, sync } => self.put1(slot, queue, sync),
            Step::Put { slot, handle, sync } => self.put(slot, handle, sync),
            Step::Get { slot, handle, sync } => self.get(slot, handle, sync),
            Step::Browse {
                slot,
                handle,
                first,
                lock,
            } => self.browse(slot, handle, first, lock),
            Step::Unlock { slot, handle } => match self.live(slot)?.handles[handle].locked.take() {
                Some(_) => Ok(Outcome::Done),
                None => Ok(Outcome::Warned(MQRC_NO_MSG_LOCKED.0)),
            },
            Step::Commit(slot) => {
                let (got, put) = self.live(slot)?.take_work();
                self.commit_work(got, put);
                Ok(Outcome::Done)
            }
            Step::Backout(slot) => {
                let (got, put) = self.live(slot)?.take_work();
                self.backout_work(got, put);
                Ok(Outcome::Done)
            }
        }
    }

    /// A broken connection backs out its unit of work and loses its handles and locks.
    fn break_conn(&mut self, slot: usize) {
        let Ok(conn) = self.live(slot) else { return };
        conn.broken = true;
        for h in &mut conn.handles {
            h.cursor = None;
            h.locked = None;
        }
        let (got, put) = conn.take_work();
        self.backout_work(got, put);
    }

    fn open(&mut self, slot: usize, queue: usize, kind: OpenKind) -> Result<Outcome, i32> {
        if self.live(slot)?.handles.len() >= MAX_HANDS {
            return Err(MQRC_HANDLE_NOT_AVAILABLE.0);
        }
        let inputs: Vec<OpenKind> = self
            .live_handles()
            .filter(|h| h.queue == queue && h.kind.input())
            .map(|h| h.kind)
            .collect();
        let conflict = match kind {
            OpenKind::InputExclusive => !inputs.is_empty(),
            k if k.input() => inputs.contains(&OpenKind::InputExclusive),
            _ => false,
        };
        if conflict {
            return Err(MQRC_OBJECT_IN_USE.0);
        }
        self.live(slot)?.handles.push(HandleModel {
            queue,
            kind,
            cursor: None,
            locked: None,
        });
        Ok(Outcome::Done)
    }

    /// Takes the next message id; every put attempt uses one, as the test's puts do.
    fn take_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id - 1
    }

    /// A put that succeeded: visible at once, or in the connection's unit of work.
    fn accept_put(&mut self, slot: usize, queue: usize, sync: bool, id: u64) -> Outcome {
        let msg = Msg { id, backouts: 0 };
        if sync {
            let conn = self.conns[slot].as_mut().expect("precondition: slot is connected");
            conn.put.push((queue, msg));
        } else {
            insert_in_order(&mut self.queues[queue], msg);
        }
        self.existing.insert(id);
        Outcome::Done
    }

    fn put1(&mut self, slot: usize, queue: usize, sync: bool) -> Result<Outcome, i32> {
        let id = self.take_id();
        if self.live(slot)?.handles.len() >= MAX_HANDS {
            return Err(MQRC_HANDLE_NOT_AVAILABLE.0);
        }
        Ok(self.accept_put(slot, queue, sync, id))
    }

    fn put(&mut self, slot: usize, handle: usize, sync: bool) -> Result<Outcome, i32> {
        let id = self.take_id();
        let h = self.live(slot)?.handles[handle];
        if !h.kind.output() {
            return Err(MQRC_NOT_OPEN_FOR_OUTPUT.0);
        }
        Ok(self.accept_put(slot, h.queue, sync, id))
    }

    fn get(&mut self, slot: usize, handle: usize, sync: bool) -> Result<Outcome, i32> {
        let h = self.live(slot)?.handles[handle];
        if !h.kind.input() {
            return Err(MQRC_NOT_OPEN_FOR_INPUT.0);
        }
        let at = self.first_visible(slot, handle, None).ok_or(MQRC_NO_MSG_AVAILABLE.0)?;
        let msg = self.queues[h.queue].remove(at).expect("position found above");
        let conn = self.live(slot)?;
        if conn.handles[handle].locked == Some(msg.id) {
            conn.handles[handle].locked = None;
        }
        if sync {
            conn.got.push((h.queue, msg));
        } else {
            self.consumed.insert(msg.id);
        }
        Ok(Outcome::Message {
            id: msg.id,
            backouts: msg.backouts,
        })
    }

    fn browse(&mut self, slot: usize, handle: usize, first: bool, lock: bool) -> Result<Outcome, i32> {
        let h = self.live(slot)?.handles[handle];
        if !h.kind.browse() {
            return Err(MQRC_NOT_OPEN_FOR_BROWSE.0);
        }
        // BROWSE_FIRST and BROWSE_NEXT move the cursor off the locked message, which
        // releases the lock, whether or not they find another message.
        self.live(slot)?.handles[handle].locked = None;
        let after = if first { None } else { h.cursor };
        let at = self.first_visible(slot, handle, after).ok_or(MQRC_NO_MSG_AVAILABLE.0)?;
        let msg = self.queues[h.queue][at];
        let hm = &mut self.live(slot)?.handles[handle];
        hm.cursor = Some(msg.id);
        if lock {
            hm.locked = Some(msg.id);
        }
        Ok(Outcome::Message {
            id: msg.id,
            backouts: msg.backouts,
        })
    }

    /// Every message on queue `q` as an admin browse shows it: (id, backouts, state), in
    /// delivery order.
    fn view(&self, q: usize) -> Vec<(u64, i32, &'static str)> {
        let locked: BTreeSet<u64> = self.live_handles().filter_map(|h| h.locked).collect();
        let mut view: Vec<_> = self.queues[q]
            .iter()
            .map(|m| {
                let state = if locked.contains(&m.id) { "locked" } else { "visible" };
                (m.id, m.backouts, state)
            })
            .collect();
        for (_, c) in self.live_conns() {
            let got = c.got.iter().filter(|(cq, _)| *cq == q);
            view.extend(got.map(|(_, m)| (m.id, m.backouts, "got-uncommitted")));
            let put = c.put.iter().filter(|(cq, _)| *cq == q);
            view.extend(put.map(|(_, m)| (m.id, m.backouts, "put-uncommitted")));
        }
        view.sort_by_key(|v| v.0);
        view
    }

    /// CURDEPTH: committed messages plus uncommitted puts; uncommitted gets excluded.
    fn depth(&self, q: usize) -> i32 {
        let pending: usize = self
            .live_conns()
            .map(|(_, c)| c.put.iter().filter(|(cq, _)| *cq == q).count())
            .sum();
        i32::try_from(self.queues[q].len() + pending).expect("small depth")
    }
}

/// A step on one of `handles`, made by `make(slot, handle, flag, flag)`.
fn on_handle(handles: &[(usize, usize)], make: fn(usize, usize, bool, bool) -> Step) -> BoxedStrategy<Step> {
    (select(handles.to_vec()), any::<bool>(), any::<bool>())
        .prop_map(move |((slot, handle), a, b)| make(slot, handle, a, b))
        .boxed()
}

/// Steps that make sense in `model`, with their weights (one line each, hence the length).
/// Most calls go where they can succeed (puts on output handles, gets on input handles, work
/// on live connections) and opens are frequent, so that messages flow and connections reach
/// MAXHANDS; a few go anywhere, so that 2009, 2036, 2037 and 2039 are checked too.
fn steps(model: &Model) -> BoxedStrategy<Step> {
    let slots_where = |pred: fn(&Option<ConnModel>) -> bool| -> Vec<usize> {
        (0..SLOTS).filter(|&s| pred(&model.conns[s])).collect()
    };
    let free = slots_where(Option::is_none);
    let live = slots_where(|c| c.as_ref().is_some_and(|c| !c.broken));
    let broken = slots_where(|c| c.as_ref().is_some_and(|c| c.broken));
    let handles_where = |pred: fn(&ConnModel, OpenKind) -> bool| -> Vec<(usize, usize)> {
        let conns = model.conns.iter().enumerate();
        let conns = conns.filter_map(|(s, c)| c.as_ref().map(|c| (s, c)));
        conns
            .flat_map(|(s, c)| c.handles.iter().enumerate().map(move |(h, hm)| (s, h, c, hm.kind)))
            .filter(|&(_, _, c, kind)| pred(c, kind))
            .map(|(s, h, _, _)| (s, h))
            .collect()
    };
    let any_handle = handles_where(|_, _| true);
    let output = handles_where(|c, k| !c.broken && k.output());
    let input = handles_where(|c, k| !c.broken && k.input());
    let browsing = handles_where(|c, k| !c.broken && k.browse());

    let mut choices: Vec<(u32, BoxedStrategy<Step>)> = Vec::new();
    let mut slot_step = |weight: u32, slots: &[usize], make: fn(usize) -> Step| {
        if !slots.is_empty() {
            choices.push((weight, select(slots.to_vec()).prop_map(make).boxed()));
        }
    };
    slot_step(3, &free, Step::Connect);
    slot_step(3, &live, Step::Commit);
    slot_step(2, &live, Step::Backout);
    slot_step(1, &live, Step::Disconnect);
    slot_step(1, &live, Step::Break);
    slot_step(3, &broken, Step::Disconnect);
    slot_step(1, &broken, Step::Commit);
    let connected: Vec<usize> = (0..SLOTS).filter(|&s| model.conns[s].is_some()).collect();
    if !connected.is_empty() {
        let open = (select(connected.clone()), 0..QUEUES.len(), select(KINDS.to_vec()));
        choices.push((6, open.prop_map(|(s, q, kind)| Step::open(s, q, kind)).boxed()));
        let put1 = (select(connected), 0..QUEUES.len(), any::<bool>());
        choices.push((2, put1.prop_map(|(s, q, sync)| Step::put1(s, q, sync)).boxed()));
    }
    let mut handle_step = |weight: u32, handles: &[(usize, usize)], make: fn(usize, usize, bool, bool) -> Step| {
        if !handles.is_empty() {
            choices.push((weight, on_handle(handles, make)));
        }
    };
    handle_step(7, &output, |s, h, sync, _| Step::put(s, h, sync));
    handle_step(6, &input, |s, h, sync, _| Step::get(s, h, sync));
    handle_step(4, &browsing, Step::browse);
    handle_step(1, &browsing, |s, h, _, _| Step::unlock(s, h));
    handle_step(2, &any_handle, |s, h, _, _| Step::close(s, h));
    handle_step(1, &any_handle, |s, h, sync, _| Step::put(s, h, sync));
    handle_step(1, &any_handle, |s, h, sync, _| Step::get(s, h, sync));
    handle_step(1, &any_handle, Step::browse);
    handle_step(1, &any_handle, |s, h, _, _| Step::unlock(s, h));
    Union::new_weighted(choices).boxed()
}

struct PlainModel;

impl ReferenceStateMachine for PlainModel {
    type State = Model;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<Model> {
        Just(Model::default()).boxed()
    }

    fn transitions(state: &Model) -> BoxedStrategy<Step> {
        steps(state)
    }

    fn apply(mut state: Model, step: &Step) -> Model {
        state.apply(step);
        state
    }

    fn preconditions(state: &Model, step: &Step) -> bool {
        state.allows(step)
    }
}

// ---------------------------------------------------------------------------------------------
// The system under test: the fake, driven through `mqi`
// ---------------------------------------------------------------------------------------------

/// An open queue. It refers to its connection by handle, not by borrow, so that a
/// disconnect can happen while it is still open, as MQDISC allows.
type Queue = Object<ConnectionRef<'static, FakeMqi, ThreadNoBlock>>;

/// One connected slot: the `mqi` connection, its hconn as the fake knows it, its open queues
/// in the order the model lists them.
struct Slot {
    conn: Conn,
    hconn: i32,
    queues: Vec<Queue>,
}

struct Sut {
    qm: FakeQm,
    lib: FakeMqi,
    slots: [Option<Slot>; SLOTS],
    /// The id the next put uses; counts puts as the model does.
    next_id: u64,
}

fn parse_id(data: &[u8]) -> u64 {
    std::str::from_utf8(data)
        .ok()
        .and_then(|s| s.parse().ok())
        .expect("every payload is a message id")
}

fn observe<T>(result: ResultComp<T>) -> Outcome {
    match result {
        Ok(Completion(_, None)) => Outcome::Done,
        Ok(Completion(_, Some((rc, _)))) => Outcome::Warned(rc.0),
        Err(e) => Outcome::Failed(e.2.0),
    }
}

fn get_one(queue: &Queue, options: MQGMO) -> Outcome {
    let mut buffer = [0u8; 32];
    let result: ResultComp<Option<(&[u8], structs::MQMD)>> = queue.get_data_with(&options, &mut buffer[..]);
    match result {
        // mqi turns 2033 into `None`.
        Ok(Completion(None, _)) => Outcome::Failed(MQRC_NO_MSG_AVAILABLE.0),
        Ok(Completion(Some(_), Some((rc, _)))) => Outcome::Warned(rc.0),
        Ok(Completion(Some(([], _)), None)) => Outcome::Done,
        Ok(Completion(Some((data, md)), None)) => Outcome::Message {
            id: parse_id(data),
            backouts: md.BackoutCount,
        },
        Err(e) => Outcome::Failed(e.2.0),
    }
}

impl Sut {
    fn new() -> Self {
        let config = FakeConfig {
            queue_manager: QmgrDef {
                max_handles: i32::try_from(MAX_HANDS).expect("small"),
                ..QmgrDef::default()
            },
            channels: Vec::new(),
            queues: QUEUES.iter().map(|&name| QueueDef::new(name)).collect(),
        };
        let qm = FakeQm::new(config);
        let lib = qm.library("10.0.0.1");
        Self {
            qm,
            lib,
            slots: std::array::from_fn(|_| None),
            next_id: 0,
        }
    }

    fn slot(&mut self, slot: usize) -> &mut Slot {
        self.slots[slot].as_mut().expect("precondition: slot is connected")
    }

    /// The next message id as a payload; every put attempt takes one, as in the model.
    fn next_payload(&mut self) -> String {
        self.next_id += 1;
        (self.next_id - 1).to_string()
    }

    /// How many handles the fake says the step's connection holds, for a step that needs a
    /// new handle (MQOPEN, MQPUT1) on a live connection.
    fn handles_before(&self, step: &Step) -> Option<usize> {
        let (Step::Open { slot, .. } | Step::Put1 { slot, .. }) = *step else {
            return None;
        };
        let hconn = self.slots[slot].as_ref()?.hconn;
        let status = self.qm.connection(hconn)?;
        status.broken.is_none().then_some(status.handles.len())
    }

    /// Makes the step's MQI call (or, for a break, the admin call) and reports what MQ
    /// answered. One arm per kind of step, each a call or two.
    fn step(&mut self, step: &Step) -> Outcome {
        match *step {
            Step::Connect(slot) => {
                self.connect(slot);
                Outcome::Done
            }
            Step::Disconnect(slot) => {
                let Slot { conn, queues, .. } = self.slots[slot].take().expect("precondition: slot is connected");
                let outcome = observe(conn.disconnect());
                for q in queues {
                    let close = observe(q.close());
                    assert_eq!(close, Outcome::Failed(MQRC_HCONN_ERROR.0), "MQCLOSE after MQDISC");
                }
                outcome
            }
            Step::Break(slot) => {
                let hconn = self.slot(slot).hconn;
                self.qm.break_connection(hconn);
                Outcome::Done
            }
            Step::Open { slot, queue: q, kind } => {
                let lib = MqFunctions(self.lib.clone());
                let s = self.slot(slot);
                let conn = ConnectionRef::from_parts(ConnectionHandle::from(s.hconn), lib);
                match Object::open(conn, &(queue(QUEUES[q]), kind.options())) {
                    Ok(Completion(object, warning)) => {
                        s.queues.push(object);
                        warning.map_or(Outcome::Done, |(rc, _)| Outcome::Warned(rc.0))
                    }
                    Err(e) => Outcome::Failed(e.2.0),
                }
            }
            Step::Close { slot, handle } => observe(self.slot(slot).queues.remove(handle).close()),
            Step::Put1 { slot, queue: q, sync } => {
                let payload = self.next_payload();
                let options = if sync { MQPMO_SYNCPOINT } else { MQPMO_NO_SYNCPOINT };
                let conn = &self.slot(slot).conn;
                observe(conn.put_message(&queue(QUEUES[q]), &options, payload.as_str()))
            }
            Step::Put { slot, handle, sync } => {
                let payload = self.next_payload();
                let options = if sync { MQPMO_SYNCPOINT } else { MQPMO_NO_SYNCPOINT };
                observe(self.slot(slot).queues[handle].put_message(&options, payload.as_str()))
            }
            Step::Get { slot, handle, sync } => {
                let options = if sync { MQGMO_SYNCPOINT } else { MQGMO_NO_SYNCPOINT };
                get_one(&self.slot(slot).queues[handle], options)
            }
            Step::Browse {
                slot,
                handle,
                first,
                lock,
            } => {
                let mut options = if first { MQGMO_BROWSE_FIRST } else { MQGMO_BROWSE_NEXT };
                if lock {
                    options |= MQGMO_LOCK;
                }
                get_one(&self.slot(slot).queues[handle], options)
            }
            Step::Unlock { slot, handle } => get_one(&self.slot(slot).queues[handle], MQGMO_UNLOCK),
            Step::Commit(slot) => observe(Syncpoint::new(&self.slot(slot).conn).commit()),
            Step::Backout(slot) => observe(Syncpoint::new(&self.slot(slot).conn).backout()),
        }
    }

    /// Connects through `mqi` and finds the new connection's hconn with `DISPLAY CONN`.
    fn connect(&mut self, slot: usize) {
        let before: BTreeSet<i32> = self.qm.connections().iter().map(|c| c.hconn).collect();
        let conn = connect_lib(self.lib.clone());
        let hconn = self
            .qm
            .connections()
            .iter()
            .map(|c| c.hconn)
            .find(|h| !before.contains(h))
            .expect("the new connection is listed");
        self.slots[slot] = Some(Slot {
            conn,
            hconn,
            queues: Vec::new(),
        });
    }

    /// Connections and handles as `DISPLAY CONN` shows them agree with the model.
    fn check_connections(&self, model: &Model) {
        let conns = self.qm.connections();
        for c in &conns {
            assert!(c.handles.len() <= MAX_HANDS, "more than MAXHANDS handles: {c:?}");
        }
        assert_eq!(conns.len(), self.slots.iter().flatten().count(), "connections");
        for (slot, sut) in self.slots.iter().enumerate() {
            let Some(sut) = sut else { continue };
            let m = model.conns[slot].as_ref().expect("the model has the slot connected");
            assert_eq!(sut.queues.len(), m.handles.len(), "objects of slot {slot}");
            let status = conns.iter().find(|c| c.hconn == sut.hconn).expect("connection listed");
            assert_eq!(status.broken.is_some(), m.broken, "slot {slot} broken");
            if m.broken {
                assert!(status.handles.is_empty(), "a broken connection holds handles");
                assert_eq!(status.uncommitted, 0, "a broken connection has a unit of work");
                continue;
            }
            assert_eq!(status.handles.len(), m.handles.len(), "handles of slot {slot}");
            assert_eq!(status.uncommitted, m.got.len() + m.put.len(), "UOW of slot {slot}");
            for (object, h) in sut.queues.iter().zip(&m.handles) {
                let hobj = object.handle().raw_handle();
                let fake = status.handles.iter().find(|fh| fh.hobj == hobj).expect("handle listed");
                assert_eq!(fake.object, QUEUES[h.queue], "queue of hobj {hobj}");
                assert_eq!(fake.options, h.kind.options().0, "options of hobj {hobj}");
                assert_eq!(fake.locked, h.locked.is_some(), "lock of hobj {hobj} in slot {slot}");
            }
        }
    }

    /// Queue contents, depths and message conservation agree with the model.
    fn check_queues(&self, model: &Model) {
        let mut on_queues = Vec::new();
        for (q, name) in QUEUES.iter().enumerate() {
            let view: Vec<(u64, i32, &str)> = self
                .qm
                .browse(name)
                .iter()
                .map(|m| (parse_id(&m.data), m.backout_count, m.state))
                .collect();
            assert_eq!(view, model.view(q), "messages on {name}: (id, backout count, state)");
            assert_eq!(self.qm.depth(name), Some(model.depth(q)), "CURDEPTH of {name}");
            on_queues.extend(view.iter().map(|v| v.0));
        }
        let unique: BTreeSet<u64> = on_queues.iter().copied().collect();
        assert_eq!(unique.len(), on_queues.len(), "a message is on the queues twice");
        assert!(
            unique.is_disjoint(&model.consumed),
            "a consumed message is back on a queue"
        );
        let all: BTreeSet<u64> = unique.union(&model.consumed).copied().collect();
        assert_eq!(all, model.existing, "messages lost or invented");
    }
}

struct FakeUnderTest;

impl StateMachineTest for FakeUnderTest {
    type SystemUnderTest = Sut;
    type Reference = PlainModel;

    fn init_test(_: &Model) -> Sut {
        Sut::new()
    }

    fn apply(mut sut: Sut, model: &Model, step: Step) -> Sut {
        let held = sut.handles_before(&step);
        let outcome = sut.step(&step);
        assert_eq!(
            outcome, model.last,
            "{step:?}: the fake answered {outcome:?}, the model says {:?}",
            model.last
        );
        if let Some(held) = held {
            // Checked against the fake's own DISPLAY CONN as well as against the model.
            let refused = outcome == Outcome::Failed(MQRC_HANDLE_NOT_AVAILABLE.0);
            assert_eq!(
                refused,
                held == MAX_HANDS,
                "{step:?} with {held} handles held answered {outcome:?}"
            );
        }
        sut
    }

    fn check_invariants(sut: &Sut, model: &Model) {
        sut.check_connections(model);
        sut.check_queues(model);
    }
}

/// 128 cases (about a second in a debug build); `PROPTEST_CASES` asks for more.
fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok());
    Config::with_cases(cases.unwrap_or(128))
}

prop_state_machine! {
    #![proptest_config(config())]

    #[test]
    fn random_mqi_runs_keep_every_message_and_refuse_handles_only_at_maxhands(
        sequential 40..80 => FakeUnderTest
    );
}

/// A fixed run through the same harness, with the model's predictions spelled out: it shows
/// the harness exercises 2017, 2042, locks, backout order and breaks, whatever the random
/// runs happen to draw. Long only because the script is a list of steps.
#[test]
fn scripted_run_keeps_backed_out_message_in_place_and_refuses_handle_past_maxhands() {
    use Outcome::{Done, Failed, Message};
    const SYNC: bool = true;
    const NO_SYNC: bool = false;
    const FIRST: bool = true;
    const LOCK: bool = true;
    let (a, b) = (0, 1);
    let script = [
        (Step::Connect(0), Done),
        (Step::open(0, a, OpenKind::All), Done),
        (Step::put(0, 0, NO_SYNC), Done),
        (Step::put(0, 0, NO_SYNC), Done),
        (Step::get(0, 0, SYNC), Message { id: 0, backouts: 0 }),
        (Step::put(0, 0, NO_SYNC), Done),
        (Step::Backout(0), Done),
        // The backed-out message is first again, not behind message 2.
        (Step::get(0, 0, NO_SYNC), Message { id: 0, backouts: 1 }),
        (Step::open(0, b, OpenKind::Output), Done),
        (Step::open(0, a, OpenKind::Browse), Done),
        (
            Step::open(0, b, OpenKind::InputShared),
            Failed(MQRC_HANDLE_NOT_AVAILABLE.0),
        ),
        (Step::Connect(1), Done),
        (Step::open(1, a, OpenKind::InputExclusive), Failed(MQRC_OBJECT_IN_USE.0)),
        (Step::open(1, a, OpenKind::Browse), Done),
        (Step::browse(1, 0, FIRST, LOCK), Message { id: 1, backouts: 0 }),
        // Message 1 is locked by the other connection's handle: the get skips it.
        (Step::get(0, 0, NO_SYNC), Message { id: 2, backouts: 0 }),
        (Step::put(0, 1, SYNC), Done),
        (Step::Break(1), Done),
        (Step::browse(1, 0, FIRST, !LOCK), Failed(MQRC_CONNECTION_BROKEN.0)),
        // The break released the lock.
        (Step::get(0, 0, SYNC), Message { id: 1, backouts: 0 }),
        (Step::close(0, 2), Done),
        (Step::open(0, b, OpenKind::InputShared), Done),
        (Step::get(0, 2, NO_SYNC), Failed(MQRC_NO_MSG_AVAILABLE.0)),
        (Step::unlock(0, 2), Outcome::Warned(MQRC_NO_MSG_LOCKED.0)),
        // MQPUT1 needs a handle for the length of the call (its message id 4 is never used).
        (Step::put1(0, b, NO_SYNC), Failed(MQRC_HANDLE_NOT_AVAILABLE.0)),
        (Step::close(0, 1), Done),
        (Step::put1(0, b, SYNC), Done),
        // MQDISC commits: message 1 is consumed, messages 3 and 5 appear on B.
        (Step::Disconnect(0), Done),
        (Step::Disconnect(1), Failed(MQRC_CONNECTION_BROKEN.0)),
    ];
    let mut model = Model::default();
    for (step, expected) in &script {
        assert!(model.allows(step), "{step:?} is not allowed");
        model.apply(step);
        assert_eq!(model.last, *expected, "model's answer to {step:?}");
    }
    assert!(model.queues[a].is_empty());
    assert_eq!(
        model.queues[b],
        [Msg { id: 3, backouts: 0 }, Msg { id: 5, backouts: 0 }]
    );
    assert_eq!(model.consumed, BTreeSet::from([0, 1, 2]));

    let steps = script.iter().map(|(step, _)| *step).collect();
    FakeUnderTest::test_sequential(Config::default(), Model::default(), steps, None);
}
