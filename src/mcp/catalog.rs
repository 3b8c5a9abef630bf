//! Which queues exist, and the status MQINQ cannot give (UNCOM, MSGAGE).
//!
//! MQ lists queue names and reports queue status only through PCF commands (DISPLAY QLOCAL,
//! DISPLAY QSTATUS), which mqpilot does not send. So the names come either from the
//! queue manager's administrative view where one is at hand (the embedded fake) or from the
//! policy file's `queues` list; attributes always come from MQINQ through the pool.

use crate::fake::FakeQm;

/// Status only the queue manager's administrative interface knows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AdminStatus {
    /// UNCOM.
    pub uncommitted: Option<u32>,
    /// MSGAGE in seconds.
    pub oldest_age_secs: Option<u64>,
}

/// A source of queue names and administrative status.
pub trait Catalog: Send + Sync {
    /// Queue names, sorted.
    fn names(&self) -> Vec<String>;
    /// Where the names come from, for the agent (`queue manager` or `policy`).
    fn source(&self) -> &'static str;
    /// Status beyond MQINQ, when known.
    fn status(&self, queue: &str) -> AdminStatus;
}

/// The names a policy file lists.
#[derive(Debug, Clone)]
pub struct Listed(pub Vec<String>);

impl Catalog for Listed {
    fn names(&self) -> Vec<String> {
        let mut n = self.0.clone();
        n.sort();
        n.dedup();
        n
    }
    fn source(&self) -> &'static str {
        "policy"
    }
    fn status(&self, _: &str) -> AdminStatus {
        AdminStatus::default()
    }
}

impl Catalog for FakeQm {
    fn names(&self) -> Vec<String> {
        let mut n: Vec<String> = self.queues().into_iter().map(|q| q.name).collect();
        n.sort();
        n
    }
    fn source(&self) -> &'static str {
        "queue manager"
    }
    fn status(&self, queue: &str) -> AdminStatus {
        self.queue_status(queue)
            .map_or_else(AdminStatus::default, |s| AdminStatus {
                uncommitted: Some(s.uncommitted),
                oldest_age_secs: Some(s.oldest_age_secs),
            })
    }
}

/// A `mqpilot fake-qm` server's own view, over its admin protocol (loopback, quick): every
/// queue it defines, with UNCOM and MSGAGE. A server that does not answer lists nothing.
impl Catalog for crate::fake::net::RemoteAdmin {
    fn names(&self) -> Vec<String> {
        let mut n: Vec<String> = self
            .status()
            .map(|s| s.queues.into_iter().map(|q| q.name).collect())
            .unwrap_or_default();
        n.sort();
        n
    }
    fn source(&self) -> &'static str {
        "queue manager"
    }
    fn status(&self, queue: &str) -> AdminStatus {
        self.status()
            .ok()
            .and_then(|s| s.queues.into_iter().find(|q| q.name == queue))
            .map_or_else(AdminStatus::default, |s| AdminStatus {
                uncommitted: Some(s.uncommitted),
                oldest_age_secs: Some(s.oldest_age_secs),
            })
    }
}
