//! The fake queue manager: a pure-Rust IBM MQ that behaves like the real one where limits,
//! reason codes, units of work, browse cursors, locks and waits are concerned.
//!
//! Two layers: the safe state machine ([`FakeQm`], verbs in `verbs.rs`, rules in `state.rs`
//! and `queue.rs`) and one adapter ([`FakeMqi`], `adapter.rs`) that implements
//! `libmqm_sys::Mqi`, so `mqi` and everything above it run unchanged. All `unsafe` is in the
//! adapter. Tests and tools use [`FakeQm`] directly to define objects, inject faults
//! (`faults.rs`: calls that fail instead of running or after running) and read what MQ's
//! `DISPLAY CONN`/`DISPLAY QSTATUS` would show.

mod adapter;
pub mod calls;
pub mod config;
mod descriptor;
mod faults;
mod get;
mod inquire;
mod mqi_verbs;
pub mod net;
mod observe;
mod queue;
mod read_ahead;
mod state;
mod verbs;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use libmqm_sys as mq;

pub use adapter::{FakeMqi, MqiAdapter};
pub use config::{ChannelDef, Delivery, FakeConfig, QmgrDef, QueueDef, Sharing};
pub use mqi_verbs::Verbs;
pub use observe::{ChannelStatus, ConnStatus, HandleStatus, MessageView, QueueStatus};
pub use queue::MAX_BACKOUT_COUNT;
pub use state::{QmgrStatus, Verb};
pub use verbs::{Attr, ConnectRequest, GetOptions, Got, MAX_CSP_LENGTH, ObjectRef};

/// A fake queue manager. Cheap to clone: clones share one queue manager.
#[derive(Clone)]
pub struct FakeQm {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<state::State>,
    latency_us: AtomicU64,
    next_process: AtomicU64,
}

impl std::fmt::Debug for FakeQm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeQm")
            .field("name", &self.lock().def.name)
            .finish_non_exhaustive()
    }
}

/// A message to put through the admin API.
#[derive(Debug, Clone, Default)]
pub struct PutSpec {
    /// Payload.
    pub data: Vec<u8>,
    /// Priority 0..=9; `None` = the queue's DEFPRTY.
    pub priority: Option<i32>,
    /// Persistence; `None` = the queue's DEFPSIST.
    pub persistent: Option<bool>,
    /// Correlation id (zeros when `None`).
    pub correl_id: Option<[u8; 24]>,
    /// Message id; generated when `None`.
    pub msg_id: Option<[u8; 24]>,
    /// MQMD Format, e.g. `MQSTR` (the default).
    pub format: Option<String>,
    /// Initial backout count (to seed poison messages), at most [`MAX_BACKOUT_COUNT`]
    /// (999 999 999, where MQ stops counting): a larger one is stored as that, a negative
    /// one as 0.
    pub backout_count: i32,
}

impl PutSpec {
    /// A text message with the queue's default priority and persistence.
    #[must_use]
    pub fn text(data: impl Into<Vec<u8>>) -> Self {
        Self {
            data: data.into(),
            ..Self::default()
        }
    }
}

impl FakeQm {
    /// A queue manager defined by `config`.
    #[must_use]
    pub fn new(config: FakeConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(state::State::new(config)),
                latency_us: AtomicU64::new(0),
                next_process: AtomicU64::new(1),
            }),
        }
    }

    /// `QM1` with IBM's defaults, channel `DEV.APP.SVRCONN` and queues `DEV.QUEUE.1`..`3`
    /// (the developer image's objects), plus `DEV.DEAD.LETTER.QUEUE`.
    #[must_use]
    pub fn developer() -> Self {
        let mut config = FakeConfig::default();
        config.channels.push(ChannelDef::new("DEV.APP.SVRCONN"));
        for name in ["DEV.QUEUE.1", "DEV.QUEUE.2", "DEV.QUEUE.3", "DEV.DEAD.LETTER.QUEUE"] {
            config.queues.push(QueueDef::new(name));
        }
        Self::new(config)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, state::State> {
        // A panic while holding the lock leaves consistent state (every rule finishes
        // before it mutates), so a poisoned lock is still usable.
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn latency(&self) -> Duration {
        Duration::from_micros(self.inner.latency_us.load(Ordering::Relaxed))
    }

    /// A library for one client process at `client_address`: its connections share channel
    /// instances (SHARECNV) with each other, never with another library's.
    #[must_use]
    pub fn library(&self, client_address: impl Into<String>) -> FakeMqi {
        let process = self.inner.next_process.fetch_add(1, Ordering::Relaxed);
        FakeMqi::new(self.clone(), process, client_address.into())
    }

    /// The queue manager's name.
    #[must_use]
    pub fn name(&self) -> String {
        self.lock().def.name.clone()
    }

    /// Changes queue manager attributes (e.g. MAXHANDS), like `ALTER QMGR`.
    pub fn alter_qmgr(&self, change: impl FnOnce(&mut QmgrDef)) {
        change(&mut self.lock().def);
    }

    /// Defines a channel, or replaces its definition.
    pub fn define_channel(&self, def: ChannelDef) {
        self.lock().define_channel(def);
    }

    /// Defines a local queue, or alters it (its messages are kept).
    pub fn define_queue(&self, def: QueueDef) {
        let mut st = self.lock();
        st.define_queue(def);
        read_ahead::unlock_revoking_ahead(st);
    }

    /// Puts a message outside any unit of work, as `amqsput` would; returns its message id.
    ///
    /// # Errors
    /// The reason code MQPUT would return (2085 for an unknown queue, 2053, 2051, ...).
    pub fn put_message(&self, queue: &str, spec: PutSpec) -> Result<[u8; 24], i32> {
        let mut md = default_md();
        md.Priority = spec.priority.unwrap_or(mq::MQPRI_PRIORITY_AS_Q_DEF);
        md.Persistence = spec.persistent.map_or(mq::MQPER_PERSISTENCE_AS_Q_DEF, i32::from);
        md.CorrelId = spec.correl_id.unwrap_or([0; 24]);
        md.MsgId = spec.msg_id.unwrap_or([0; 24]);
        descriptor::copy_padded(&mut md.Format, spec.format.as_deref().unwrap_or("MQSTR"));
        let new = verbs::NewMsg::new(&md, &spec.data);
        let mut st = self.lock();
        let q = *st.queue_index.get(queue).ok_or(mq::MQRC_UNKNOWN_OBJECT_NAME)?;
        let key = verbs::put_on(&mut st, 0, q, &mut md, mq::MQPMO_NO_SYNCPOINT, new)?;
        if spec.backout_count > 0
            && let Some(m) = st.queues[q].msgs.get_mut(&key)
        {
            m.md.BackoutCount = spec.backout_count.min(MAX_BACKOUT_COUNT);
        }
        Ok(md.MsgId)
    }

    /// Sets GET(ENABLED/DISABLED); disabling cancels waiting gets with 2016, and network
    /// clients holding messages fetched ahead from the queue are told before it returns.
    pub fn set_get_enabled(&self, queue: &str, enabled: bool) {
        let mut st = self.lock();
        if let Some(&q) = st.queue_index.get(queue) {
            st.queues[q].def.get_enabled = enabled;
            st.queues[q].wake();
        }
        read_ahead::unlock_revoking_ahead(st);
    }

    /// Sets PUT(ENABLED/DISABLED).
    pub fn set_put_enabled(&self, queue: &str, enabled: bool) {
        let mut st = self.lock();
        if let Some(&q) = st.queue_index.get(queue) {
            st.queues[q].def.put_enabled = enabled;
        }
    }

    /// Breaks one connection, one conversation, as a failure confined to it would: later
    /// calls get 2009, a waiting get is cancelled, the unit of work is backed out, handles
    /// and locks are released. The messages a network client fetched ahead and may still
    /// hand out stay hidden until its next request or until its socket closes, then come
    /// back with backout count + 1 (those it releases unhanded: unchanged), so they never
    /// reach two consumers at once. Conversations sharing its channel instance carry on; a
    /// network failure, which drops the instance's socket and every conversation on it, is
    /// [`FakeQm::break_channel_instance`].
    pub fn break_connection(&self, hconn: i32) {
        self.lock().break_conn(hconn, mq::MQRC_CONNECTION_BROKEN);
    }

    /// Breaks the channel instance that `hconn` is a conversation on, as a network failure
    /// would: its TCP socket drops, so every connection sharing it (SHARECNV) breaks with
    /// 2009, each as [`FakeQm::break_connection`] describes (its unit of work backed out,
    /// got messages back with backout count + 1). A bindings connection, on no instance,
    /// breaks alone. Returns how many connections broke: 0 when `hconn` is unknown or
    /// already broken.
    pub fn break_channel_instance(&self, hconn: i32) -> usize {
        let mut st = self.lock();
        let Some(conn) = st.conns.get(&hconn).filter(|c| c.broken.is_none()) else {
            return 0;
        };
        let on_instance: Vec<i32> = match &conn.channel {
            Some(instance) => st
                .conns
                .iter()
                .filter(|(_, c)| c.channel.as_ref() == Some(instance))
                .map(|(&h, _)| h)
                .collect(),
            None => vec![hconn],
        };
        for &h in &on_instance {
            st.break_conn(h, mq::MQRC_CONNECTION_BROKEN);
        }
        on_instance.len()
    }

    /// Breaks every connection (2009).
    pub fn break_all(&self) {
        let mut st = self.lock();
        let all: Vec<i32> = st.conns.keys().copied().collect();
        for hconn in all {
            st.break_conn(hconn, mq::MQRC_CONNECTION_BROKEN);
        }
    }

    /// `endmqm`: calls that ask to fail if quiescing get 2161 (waits too); new connects 2161.
    /// Network clients holding messages fetched ahead for such gets are told before it returns.
    pub fn quiesce(&self) {
        let mut st = self.lock();
        st.status = QmgrStatus::Quiescing;
        st.wake_all();
        read_ahead::unlock_revoking_ahead(st);
    }

    /// `endmqm -i`: every connection breaks with 2162; new connects get 2059.
    pub fn stop(&self) {
        let mut st = self.lock();
        st.status = QmgrStatus::Stopped;
        let all: Vec<i32> = st.conns.keys().copied().collect();
        for hconn in all {
            st.break_conn(hconn, mq::MQRC_Q_MGR_STOPPING);
        }
    }

    /// `strmqm`: running again after [`FakeQm::quiesce`] or [`FakeQm::stop`].
    pub fn start(&self) {
        self.lock().status = QmgrStatus::Running;
    }

    /// Adds a delay to every call, to model network round trips. Default zero.
    pub fn set_latency(&self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.inner.latency_us.store(us, Ordering::Relaxed);
    }
}

/// An MQMD with IBM's defaults (MQMD_DEFAULT, version 2).
#[must_use]
pub fn default_md() -> mq::MQMD {
    libmqm_default::MQMD_DEFAULT
}
