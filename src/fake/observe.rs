//! What an administrator would see: `DISPLAY CONN TYPE(HANDLE)`, `DISPLAY CHSTATUS`,
//! `DISPLAY QSTATUS`, the messages on a queue, and a count of every reason code returned.
//!
//! Snapshots are plain data copied out under the lock; holding one never blocks the fake.

use std::collections::BTreeMap;

use libmqm_sys as mq;

use super::FakeQm;
use super::queue::MsgState;
use super::state::{QmgrStatus, Target, Verb};

/// One open handle of a connection.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HandleStatus {
    /// Object handle.
    pub hobj: i32,
    /// Object name (blank for the queue manager).
    pub object: String,
    /// MQOO_* options it was opened with.
    pub options: i32,
    /// Whether it holds a browse lock.
    pub locked: bool,
}

/// One connection, like `DISPLAY CONN(*) TYPE(ALL)`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConnStatus {
    /// Connection handle.
    pub hconn: i32,
    /// Channel name, `None` for bindings.
    pub channel: Option<String>,
    /// The channel instance it is a conversation on.
    pub instance: Option<u64>,
    /// Client process id (one per [`FakeQm::library`]).
    pub process: u64,
    /// Client address.
    pub client_address: String,
    /// Application name.
    pub appl_name: String,
    /// Open handles.
    pub handles: Vec<HandleStatus>,
    /// Highest number of handles held at once (MQPUT1's transient handle included).
    pub peak_handles: usize,
    /// Messages got or put in the open unit of work.
    pub uncommitted: usize,
    /// The reason the connection broke, if it did.
    pub broken: Option<i32>,
}

/// One channel, like `DISPLAY CHSTATUS` summed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChannelStatus {
    /// Channel name.
    pub name: String,
    /// Running instances.
    pub instances: usize,
    /// Highest number of instances at once.
    pub peak_instances: usize,
    /// Conversations (connections) over all instances.
    pub conversations: u32,
    /// Instances per client address.
    pub per_address: BTreeMap<String, usize>,
}

/// One queue, like `DISPLAY QSTATUS` plus the attributes MQ users look at.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QueueStatus {
    /// Queue name.
    pub name: String,
    /// CURDEPTH.
    pub depth: i32,
    /// MAXDEPTH.
    pub max_depth: i32,
    /// Highest CURDEPTH seen.
    pub peak_depth: i32,
    /// UNCOM: messages in open units of work.
    pub uncommitted: u32,
    /// IPPROCS.
    pub ipprocs: u32,
    /// OPPROCS.
    pub opprocs: u32,
    /// GET(ENABLED).
    pub get_enabled: bool,
    /// PUT(ENABLED).
    pub put_enabled: bool,
    /// BOTHRESH.
    pub backout_threshold: i32,
    /// BOQNAME.
    pub backout_queue: String,
    /// MSGAGE: seconds the oldest message has waited.
    pub oldest_age_secs: u64,
}

/// A message as an admin browse shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageView {
    /// MsgId.
    pub msg_id: [u8; 24],
    /// CorrelId.
    pub correl_id: [u8; 24],
    /// Priority.
    pub priority: i32,
    /// Persistent or not.
    pub persistent: bool,
    /// BackoutCount.
    pub backout_count: i32,
    /// Payload.
    pub data: Vec<u8>,
    /// `visible`, `locked`, `got-uncommitted` or `put-uncommitted`.
    pub state: &'static str,
}

impl FakeQm {
    /// Every connection, ordered by handle.
    #[must_use]
    pub fn connections(&self) -> Vec<ConnStatus> {
        let st = self.lock();
        let mut out: Vec<ConnStatus> = st
            .conns
            .iter()
            .map(|(&hconn, c)| {
                let mut handles: Vec<HandleStatus> = c
                    .handles
                    .iter()
                    .map(|(&hobj, h)| HandleStatus {
                        hobj,
                        object: match h.target {
                            Target::Queue(q) => st.queues[q].def.name.clone(),
                            Target::QueueManager => String::new(),
                        },
                        options: h.options,
                        locked: h.locked.is_some(),
                    })
                    .collect();
                handles.sort_by_key(|h| h.hobj);
                ConnStatus {
                    hconn,
                    channel: c.channel.as_ref().map(|(n, _)| n.clone()),
                    instance: c.channel.as_ref().map(|(_, i)| *i),
                    process: c.process,
                    client_address: c.client_address.clone(),
                    appl_name: c.appl_name.clone(),
                    handles,
                    peak_handles: c.peak_handles,
                    uncommitted: c.uow.len(),
                    broken: c.broken,
                }
            })
            .collect();
        out.sort_by_key(|c| c.hconn);
        out
    }

    /// One connection.
    #[must_use]
    pub fn connection(&self, hconn: i32) -> Option<ConnStatus> {
        self.connections().into_iter().find(|c| c.hconn == hconn)
    }

    /// Every channel.
    #[must_use]
    pub fn channels(&self) -> Vec<ChannelStatus> {
        let st = self.lock();
        st.channels
            .iter()
            .map(|c| {
                let mut per_address = BTreeMap::new();
                for i in &c.instances {
                    *per_address.entry(i.client_address.clone()).or_default() += 1;
                }
                ChannelStatus {
                    name: c.def.name.clone(),
                    instances: c.instances.len(),
                    peak_instances: c.peak_instances,
                    conversations: c.instances.iter().map(|i| i.conversations).sum(),
                    per_address,
                }
            })
            .collect()
    }

    /// One channel.
    #[must_use]
    pub fn channel(&self, name: &str) -> Option<ChannelStatus> {
        self.channels().into_iter().find(|c| c.name == name)
    }

    /// Status of one queue, `None` if it is not defined.
    #[must_use]
    pub fn queue_status(&self, name: &str) -> Option<QueueStatus> {
        let st = self.lock();
        let q = &st.queues[*st.queue_index.get(name)?];
        Some(QueueStatus {
            name: q.def.name.clone(),
            depth: q.depth(),
            max_depth: q.def.max_depth,
            peak_depth: q.peak_depth,
            uncommitted: q.uncommitted,
            ipprocs: q.ipprocs,
            opprocs: q.opprocs,
            get_enabled: q.def.get_enabled,
            put_enabled: q.def.put_enabled,
            backout_threshold: q.def.backout_threshold,
            backout_queue: q.def.backout_queue.clone(),
            oldest_age_secs: q.oldest_age_secs(),
        })
    }

    /// Every queue's status, by name.
    #[must_use]
    pub fn queues(&self) -> Vec<QueueStatus> {
        let names: Vec<String> = self.lock().queues.iter().map(|q| q.def.name.clone()).collect();
        names.iter().filter_map(|n| self.queue_status(n)).collect()
    }

    /// CURDEPTH of a queue, `None` if it is not defined.
    #[must_use]
    pub fn depth(&self, name: &str) -> Option<i32> {
        self.queue_status(name).map(|s| s.depth)
    }

    /// Every message on a queue in delivery order, whatever its state.
    #[must_use]
    pub fn browse(&self, name: &str) -> Vec<MessageView> {
        let st = self.lock();
        let Some(&q) = st.queue_index.get(name) else {
            return Vec::new();
        };
        st.queues[q]
            .all()
            .into_iter()
            .map(|m| MessageView {
                msg_id: m.md.MsgId,
                correl_id: m.md.CorrelId,
                priority: m.md.Priority,
                persistent: m.md.Persistence == mq::MQPER_PERSISTENT,
                backout_count: m.md.BackoutCount,
                data: m.data.clone(),
                state: match m.state {
                    MsgState::Visible => "visible",
                    MsgState::Locked { .. } => "locked",
                    MsgState::GetPending(_) => "got-uncommitted",
                    MsgState::PutPending(_) => "put-uncommitted",
                },
            })
            .collect()
    }

    /// How many times each (verb, reason code) was returned; reason 0 counts successes.
    #[must_use]
    pub fn reason_counts(&self) -> BTreeMap<(Verb, i32), u64> {
        let st = self.lock();
        let ok = Verb::ALL
            .iter()
            .zip(st.successes)
            .filter(|(_, n)| *n > 0)
            .map(|(v, n)| ((*v, 0), n));
        st.reasons.iter().map(|(k, v)| (*k, *v)).chain(ok).collect()
    }

    /// How many times `verb` returned `reason`.
    #[must_use]
    pub fn reason_count(&self, verb: Verb, reason: i32) -> u64 {
        let st = self.lock();
        if reason == 0 {
            st.successes[verb as usize]
        } else {
            st.reasons.get(&(verb, reason)).copied().unwrap_or(0)
        }
    }

    /// Gets currently waiting on a queue (0 if it is not defined).
    #[must_use]
    pub fn waiting_gets(&self, queue: &str) -> usize {
        let st = self.lock();
        st.queue_index.get(queue).map_or(0, |&q| st.queues[q].waiters as usize)
    }

    /// Running, quiescing or stopped.
    #[must_use]
    pub fn status(&self) -> QmgrStatus {
        self.lock().status
    }

    /// Highest number of live connections at once.
    #[must_use]
    pub fn peak_connections(&self) -> usize {
        self.lock().peak_connections
    }
}
