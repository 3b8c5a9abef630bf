//! The fake queue manager's state and its connection-level rules.
//!
//! One `State` sits behind one mutex. No call holds the mutex while it waits: a waiting get
//! sleeps on its queue's condition variable, which releases it. Every rule that decides a
//! reason code lives here or in `verbs.rs`, in the order IBM MQ checks it.

use rustc_hash::FxHashMap as HashMap;

use libmqm_sys as mq;

use super::config::{ChannelDef, FakeConfig, QmgrDef, Sharing};
use super::faults::Faults;
use super::queue::{Key, Queue};
use super::read_ahead::AheadWatch;

/// A reason code the fake returns with MQCC_FAILED.
pub(crate) type Reason = i32;

/// Whether the queue manager is running, quiescing (`endmqm`) or stopping (`endmqm -i`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QmgrStatus {
    /// Accepting work.
    Running,
    /// `endmqm`: calls that ask to fail if quiescing get 2161; new connections are refused.
    Quiescing,
    /// `endmqm -i`: every connection is broken with 2162; new connections get 2059.
    Stopped,
}

/// The MQI verbs the fake counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verb {
    /// MQCONNX.
    Connx,
    /// MQDISC.
    Disc,
    /// MQOPEN.
    Open,
    /// MQCLOSE.
    Close,
    /// MQGET.
    Get,
    /// MQPUT.
    Put,
    /// MQPUT1.
    Put1,
    /// MQINQ.
    Inq,
    /// MQCMIT.
    Cmit,
    /// MQBACK.
    Back,
    /// Any verb the fake does not implement (answered with 2298).
    Other,
}

impl Verb {
    /// Every verb, in declaration order (`Verb::ALL[v as usize] == v`).
    pub const ALL: [Self; 11] = [
        Self::Connx,
        Self::Disc,
        Self::Open,
        Self::Close,
        Self::Get,
        Self::Put,
        Self::Put1,
        Self::Inq,
        Self::Cmit,
        Self::Back,
        Self::Other,
    ];

    /// The MQI name, e.g. `MQGET`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Connx => "MQCONNX",
            Self::Disc => "MQDISC",
            Self::Open => "MQOPEN",
            Self::Close => "MQCLOSE",
            Self::Get => "MQGET",
            Self::Put => "MQPUT",
            Self::Put1 => "MQPUT1",
            Self::Inq => "MQINQ",
            Self::Cmit => "MQCMIT",
            Self::Back => "MQBACK",
            Self::Other => "other",
        }
    }
}

impl std::fmt::Display for Verb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A running instance of a server-connection channel (one TCP socket).
pub(crate) struct Instance {
    pub id: u64,
    pub process: u64,
    pub client_address: String,
    pub conversations: u32,
    pub sharecnv: u32,
}

pub(crate) struct Channel {
    pub def: ChannelDef,
    pub instances: Vec<Instance>,
    pub peak_instances: usize,
}

/// What an open handle refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Queue(usize),
    QueueManager,
}

pub(crate) struct Handle {
    pub target: Target,
    pub options: i32,
    /// Input mode when open for input.
    pub input: Option<Sharing>,
    /// The browse cursor: the key of the message it is on.
    pub cursor: Option<Key>,
    /// The message this handle has locked (one at most).
    pub locked: Option<Key>,
}

/// One entry of a unit of work.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Work {
    Got(usize, Key),
    Put(usize, Key),
}

pub(crate) struct Conn {
    pub process: u64,
    pub client_address: String,
    pub appl_name: String,
    /// Channel name and instance id; `None` for a bindings connection.
    pub channel: Option<(String, u64)>,
    /// The message length negotiated for the client channel: a buffer longer than this gets
    /// 2010. `None` for a bindings connection.
    pub max_msg_length: Option<usize>,
    pub handles: HashMap<i32, Handle>,
    pub next_hobj: i32,
    pub peak_handles: usize,
    pub uow: Vec<Work>,
    /// The messages a network client's latest read-ahead took into `uow` (queue, key), until
    /// its next request: the client hands them out without telling the server, so until then
    /// any of them may be with its application. A break keeps them in `uow` (see
    /// [`State::break_conn`]); `read_ahead.rs` keeps the list.
    pub ahead: Vec<(usize, Key)>,
    /// `Some(reason)` once broken: every later call fails with it.
    pub broken: Option<Reason>,
    /// The unit of work met an error that prevents its commit (MQ's 2003 on MQGET, MQPUT or
    /// MQPUT1): gets and puts under syncpoint fail with 2003 until it is backed out, and
    /// MQCMIT and MQDISC back it out instead of committing.
    pub backout_only: bool,
}

impl Conn {
    /// 2010 when a client's buffer (an MQGET's BufferLength, an MQPUT's message) is longer
    /// than the message length negotiated for its channel.
    pub fn check_buffer(&self, len: usize) -> Result<(), Reason> {
        match self.max_msg_length {
            Some(max) if len > max => Err(mq::MQRC_DATA_LENGTH_ERROR),
            _ => Ok(()),
        }
    }
}

pub(crate) struct State {
    pub def: QmgrDef,
    pub status: QmgrStatus,
    pub channels: Vec<Channel>,
    pub queues: Vec<Queue>,
    pub queue_index: HashMap<String, usize>,
    pub conns: HashMap<i32, Conn>,
    pub next_hconn: i32,
    pub next_seq: u64,
    /// Added to a put's sequence number in its MsgId (`descriptor::message_id_base`), so
    /// that this queue manager's MsgIds differ from those of an earlier start.
    pub msg_id_base: u64,
    pub next_instance: u64,
    pub peak_connections: usize,
    /// Calls that failed or warned, per verb and reason code.
    pub reasons: HashMap<(Verb, i32), u64>,
    /// Calls that completed with MQRC_NONE, per verb (indexed by `Verb as usize`).
    pub successes: [u64; Verb::ALL.len()],
    /// Failures planned by `fail_next` and `fail_after` (`faults.rs`).
    pub faults: Faults,
    /// Per hconn, the network client's latest read-ahead while it may hand it out
    /// (`read_ahead.rs`).
    pub ahead_watches: HashMap<i32, AheadWatch>,
}

/// Reason codes after which the connection is gone, as MQ treats them.
pub(crate) const fn breaks_connection(reason: Reason) -> bool {
    matches!(
        reason,
        mq::MQRC_CONNECTION_BROKEN
            | mq::MQRC_Q_MGR_STOPPING
            | mq::MQRC_CONNECTION_STOPPING
            | mq::MQRC_RECONNECT_QMID_MISMATCH
            | mq::MQRC_RECONNECT_FAILED
            | mq::MQRC_RECONNECT_TIMED_OUT
    )
}

impl State {
    pub fn new(config: FakeConfig) -> Self {
        let mut state = Self {
            def: config.queue_manager,
            status: QmgrStatus::Running,
            channels: Vec::new(),
            queues: Vec::new(),
            queue_index: HashMap::default(),
            conns: HashMap::default(),
            next_hconn: 1,
            next_seq: 1,
            msg_id_base: super::descriptor::message_id_base(),
            next_instance: 1,
            peak_connections: 0,
            reasons: HashMap::default(),
            successes: [0; Verb::ALL.len()],
            faults: Faults::default(),
            ahead_watches: HashMap::default(),
        };
        for c in config.channels {
            state.define_channel(c);
        }
        for q in config.queues {
            state.define_queue(q);
        }
        state
    }

    /// Defines or replaces a channel definition (running instances are kept).
    pub fn define_channel(&mut self, def: ChannelDef) {
        match self.channels.iter_mut().find(|c| c.def.name == def.name) {
            Some(c) => c.def = def,
            None => self.channels.push(Channel {
                def,
                instances: Vec::new(),
                peak_instances: 0,
            }),
        }
    }

    /// Defines a queue, or alters its attributes if it exists (messages are kept).
    pub fn define_queue(&mut self, def: QueueDef) {
        match self.queue_index.get(&def.name) {
            Some(&i) => {
                self.queues[i].def = def;
                self.queues[i].wake();
            }
            None => {
                self.queue_index.insert(def.name.clone(), self.queues.len());
                self.queues.push(Queue::new(def));
            }
        }
    }

    /// Records the outcome of a call and passes it through.
    pub fn record<T>(&mut self, verb: Verb, result: Result<T, Reason>, warning: Reason) -> Result<T, Reason> {
        let rc = match &result {
            Ok(_) => warning,
            Err(rc) => *rc,
        };
        // Successes are most calls: count them without hashing.
        if rc == mq::MQRC_NONE {
            self.successes[verb as usize] += 1;
        } else {
            *self.reasons.entry((verb, rc)).or_default() += 1;
        }
        result
    }

    /// The connection, if it exists and is not broken.
    pub fn live(&mut self, hconn: i32) -> Result<&mut Conn, Reason> {
        if self.status == QmgrStatus::Stopped && !self.conns.contains_key(&hconn) {
            return Err(mq::MQRC_Q_MGR_NOT_AVAILABLE);
        }
        let conn = self.conns.get_mut(&hconn).ok_or(mq::MQRC_HCONN_ERROR)?;
        match conn.broken {
            Some(reason) => Err(reason),
            None => Ok(conn),
        }
    }

    /// Fails with 2161 when the queue manager is quiescing and the caller asked to fail then.
    pub fn check_quiescing(&self, fail_if_quiescing: bool) -> Result<(), Reason> {
        if fail_if_quiescing && self.status == QmgrStatus::Quiescing {
            Err(mq::MQRC_Q_MGR_QUIESCING)
        } else {
            Ok(())
        }
    }

    /// Finds a free conversation on one of this process's instances, or starts an instance.
    ///
    /// Instances count against the channel's MAXINST, its MAXINSTC for the client address
    /// and the queue manager's MaxChannels/MaxActiveChannels; past any of them: 2537. A
    /// channel the queue manager does not define: 2540, as MQ answers a client whose
    /// SVRCONN channel is not there (AMQ9520 in its error log).
    pub fn join_channel(
        &mut self,
        name: &str,
        process: u64,
        address: &str,
        client_sharecnv: u32,
    ) -> Result<u64, Reason> {
        let total: usize = self.channels.iter().map(|c| c.instances.len()).sum();
        let max_total = self
            .def
            .max_channels
            .min(self.def.max_active_channels.unwrap_or(u32::MAX)) as usize;
        let channel = self
            .channels
            .iter_mut()
            .find(|c| c.def.name == name)
            .ok_or(mq::MQRC_UNKNOWN_CHANNEL_NAME)?;
        let sharecnv = channel.def.sharecnv.min(client_sharecnv);
        if sharecnv > 0
            && let Some(inst) = channel
                .instances
                .iter_mut()
                .find(|i| i.process == process && i.client_address == address && i.conversations < i.sharecnv)
        {
            inst.conversations += 1;
            return Ok(inst.id);
        }
        let from_address = channel.instances.iter().filter(|i| i.client_address == address).count();
        if channel.instances.len() >= channel.def.max_inst as usize
            || from_address >= channel.def.max_instc as usize
            || total >= max_total
        {
            return Err(mq::MQRC_CHANNEL_NOT_AVAILABLE);
        }
        let id = self.next_instance;
        self.next_instance += 1;
        channel.instances.push(Instance {
            id,
            process,
            client_address: address.to_owned(),
            conversations: 1,
            sharecnv: sharecnv.max(1),
        });
        channel.peak_instances = channel.peak_instances.max(channel.instances.len());
        Ok(id)
    }

    /// Ends one conversation; the instance stops when its last conversation ends.
    pub fn leave_channel(&mut self, name: &str, instance: u64) {
        if let Some(channel) = self.channels.iter_mut().find(|c| c.def.name == name)
            && let Some(pos) = channel.instances.iter().position(|i| i.id == instance)
        {
            channel.instances[pos].conversations -= 1;
            if channel.instances[pos].conversations == 0 {
                channel.instances.remove(pos);
            }
        }
    }

    /// Commits the connection's unit of work: got messages go, put messages appear.
    pub fn commit_uow(&mut self, hconn: i32) {
        let Some(conn) = self.conns.get_mut(&hconn) else { return };
        let work = std::mem::take(&mut conn.uow);
        for &w in &work {
            match w {
                Work::Got(q, key) => self.queues[q].commit_get(key),
                Work::Put(q, key) => self.queues[q].commit_put(key),
            }
        }
        self.reuse_uow(hconn, work);
    }

    /// Backs out the connection's unit of work: got messages return with BackoutCount + 1,
    /// put messages vanish. The next unit of work starts clean.
    pub fn backout_uow(&mut self, hconn: i32) {
        let Some(conn) = self.conns.get_mut(&hconn) else { return };
        conn.backout_only = false;
        let work = std::mem::take(&mut conn.uow);
        for &w in &work {
            match w {
                Work::Got(q, key) => self.queues[q].backout_get(key),
                Work::Put(q, key) => self.queues[q].backout_put(key),
            }
        }
        self.reuse_uow(hconn, work);
    }

    /// Backs out the connection's unit of work except the messages its client's latest
    /// read-ahead fetched ([`Conn::ahead`]), which stay in it.
    fn backout_uow_but_ahead(&mut self, hconn: i32) {
        let Self { conns, queues, .. } = self;
        let Some(Conn { uow, ahead, .. }) = conns.get_mut(&hconn) else {
            return;
        };
        uow.retain(|&w| match w {
            Work::Got(q, key) if ahead.contains(&(q, key)) => true,
            Work::Got(q, key) => {
                queues[q].backout_get(key);
                false
            }
            Work::Put(q, key) => {
                queues[q].backout_put(key);
                false
            }
        });
    }

    /// Takes one got message out of `hconn`'s unit of work and makes it visible again
    /// without raising its backout count; false when it is not in that unit of work (which
    /// was backed out or ended meanwhile).
    pub fn release_got(&mut self, hconn: i32, q: usize, key: Key) -> bool {
        let Some(conn) = self.conns.get_mut(&hconn) else {
            return false;
        };
        let found = conn
            .uow
            .iter()
            .rposition(|w| matches!(*w, Work::Got(wq, wk) if wq == q && wk == key));
        let Some(i) = found else { return false };
        conn.uow.remove(i);
        self.queues[q].release_get(key)
    }

    /// Gives an ended unit of work's list back to its connection, so the next unit of work
    /// does not allocate.
    fn reuse_uow(&mut self, hconn: i32, mut work: Vec<Work>) {
        work.clear();
        if let Some(conn) = self.conns.get_mut(&hconn) {
            conn.uow = work;
        }
    }

    /// Closes a handle: releases its lock and its open counts.
    pub fn close_handle(&mut self, hconn: i32, hobj: i32) -> Option<()> {
        let handle = self.conns.get_mut(&hconn)?.handles.remove(&hobj)?;
        if let Target::Queue(q) = handle.target {
            let queue = &mut self.queues[q];
            if let Some(key) = handle.locked {
                unlock(queue, key);
            }
            if let Some(mode) = handle.input {
                queue.ipprocs -= 1;
                if mode == Sharing::Exclusive {
                    queue.exclusive_inputs -= 1;
                }
            }
            if handle.options & mq::MQOO_OUTPUT != 0 {
                queue.opprocs -= 1;
            }
        }
        Some(())
    }

    /// Breaks a connection as a network failure or `endmqm -i` would: its unit of work is
    /// backed out, its handles and locks released, its channel conversation ended, its waits
    /// cancelled. Later calls on it fail with `reason`.
    ///
    /// The messages a network client fetched ahead and may still hand out to its
    /// application without a round trip ([`Conn::ahead`]) stay got by the connection until
    /// the client learns of the break, at its next request or when its socket closes
    /// (`FakeQm::ahead_settled`, the server's end of the connection): backed out now, they
    /// would reach another consumer while this client's application still gets them.
    pub fn break_conn(&mut self, hconn: i32, reason: Reason) {
        let Some(conn) = self.conns.get(&hconn) else { return };
        if conn.broken.is_some() {
            return;
        }
        self.backout_uow_but_ahead(hconn);
        let hobjs: Vec<i32> = self.conns[&hconn].handles.keys().copied().collect();
        for hobj in hobjs {
            self.close_handle(hconn, hobj);
        }
        let conn = self.conns.get_mut(&hconn).expect("connection checked above");
        conn.broken = Some(reason);
        if let Some((name, instance)) = conn.channel.take() {
            self.leave_channel(&name, instance);
        }
        self.wake_all();
    }

    /// Ends a connection for good, broken or not: what is left of its unit of work is backed
    /// out (a network client's read-ahead included), its handles and locks are released, its
    /// conversation ends, and its handle is forgotten (2018 from then on). A commit, if any,
    /// is the caller's, before.
    pub fn end_conn(&mut self, hconn: i32) {
        if !self.conns.contains_key(&hconn) {
            return;
        }
        self.backout_uow(hconn);
        let hobjs: Vec<i32> = self.conns[&hconn].handles.keys().copied().collect();
        for hobj in hobjs {
            self.close_handle(hconn, hobj);
        }
        if let Some((name, instance)) = self.conns.remove(&hconn).and_then(|c| c.channel) {
            self.leave_channel(&name, instance);
        }
    }

    /// Wakes every waiting get so it re-checks its connection and queue.
    pub fn wake_all(&self) {
        for q in &self.queues {
            q.wake();
        }
    }

    /// Connections that are not broken.
    pub fn live_count(&self) -> usize {
        self.conns.values().filter(|c| c.broken.is_none()).count()
    }
}

/// Releases a browse lock on a message.
pub(crate) fn unlock(queue: &mut Queue, key: Key) {
    queue.unlock(key);
}

use super::config::QueueDef;

#[cfg(test)]
mod tests {
    use super::Verb;

    #[test]
    fn verb_all_is_indexed_by_discriminant() {
        for (i, v) in Verb::ALL.iter().enumerate() {
            assert_eq!(*v as usize, i);
        }
    }
}
