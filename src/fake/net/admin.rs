//! Admin requests over the network: put, browse, depth, status, break, quiesce, start.
//!
//! They travel as JSON in `ADMIN` frames (they are rare, and JSON keeps the command line's
//! `--json` output and the wire format one thing). Each runs the in-process admin API of
//! [`FakeQm`] on the server; an unknown queue is an error that names it.

use serde::{Deserialize, Serialize};

use super::super::verbs::MAX_PRIORITY;
use super::super::{ChannelStatus, ConnStatus, FakeQm, MAX_BACKOUT_COUNT, PutSpec, QueueStatus};
use crate::mq::message::hex;

/// An admin request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum AdminRequest {
    /// Put messages outside any unit of work.
    Put {
        /// Target queue.
        queue: String,
        /// Messages, in order.
        messages: Vec<AdminMessage>,
    },
    /// Every message on a queue, whatever its state.
    Browse {
        /// The queue.
        queue: String,
    },
    /// CURDEPTH of one queue.
    Depth {
        /// The queue.
        queue: String,
    },
    /// Connections, channels, queues and reason-code counts.
    Status,
    /// Break one connection (`hconn`) or all of them (2009 to their next call).
    Break {
        /// The connection; `None` for every one.
        hconn: Option<i32>,
    },
    /// `endmqm`: quiesce.
    Quiesce,
    /// `strmqm`: running again.
    Start,
}

/// A message to put through the admin API.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AdminMessage {
    /// Payload as UTF-8 text.
    pub data: String,
    /// Priority 0..=9; the queue's default when absent. A put with one outside that is
    /// refused whole.
    #[serde(default)]
    pub priority: Option<i32>,
    /// Persistence; the queue's default when absent.
    #[serde(default)]
    pub persistent: Option<bool>,
    /// Initial backout count, 0 to 999 999 999 (MQ's largest); a put with one outside that
    /// is refused whole.
    #[serde(default)]
    pub backout_count: i32,
}

/// A message as an admin browse shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BrowsedMessage {
    /// MsgId in hex.
    pub msg_id: String,
    /// CorrelId in hex.
    pub correl_id: String,
    /// Priority.
    pub priority: i32,
    /// Persistent or not.
    pub persistent: bool,
    /// BackoutCount.
    pub backout_count: i32,
    /// `visible`, `locked`, `got-uncommitted` or `put-uncommitted`.
    pub state: String,
    /// Payload, UTF-8 (lossy).
    pub data: String,
}

/// How often one verb returned one reason code.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReasonCount {
    /// MQI verb name, e.g. `MQGET`.
    pub verb: String,
    /// Reason code (0 for success).
    pub reason: i32,
    /// Its name, e.g. `MQRC_NO_MSG_AVAILABLE`.
    pub name: String,
    /// How many times.
    pub count: u64,
}

/// What `status` shows: `DISPLAY CONN`, `DISPLAY CHSTATUS`, `DISPLAY QSTATUS` and counters.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Status {
    /// Queue manager name.
    pub queue_manager: String,
    /// `running`, `quiescing` or `stopped`.
    pub state: String,
    /// Highest number of live connections at once.
    pub peak_connections: usize,
    /// Every connection with its handles.
    pub connections: Vec<ConnStatus>,
    /// Every channel with its instances.
    pub channels: Vec<ChannelStatus>,
    /// Every queue.
    pub queues: Vec<QueueStatus>,
    /// Reason codes returned, per verb.
    pub reasons: Vec<ReasonCount>,
}

/// An admin answer: the value, or an error message.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminReply {
    /// Message ids put, in hex.
    Put(Vec<String>),
    /// Messages browsed.
    Browse(Vec<BrowsedMessage>),
    /// A depth.
    Depth(i32),
    /// A status snapshot.
    Status(Box<Status>),
    /// How many connections were broken.
    Broken(usize),
    /// Done.
    Done,
    /// The request failed.
    Error(String),
}

fn reason_name(reason: i32) -> String {
    if reason == 0 {
        return "MQRC_NONE".to_owned();
    }
    crate::mq::reason::lookup(reason).map_or_else(|| format!("reason {reason}"), |i| i.name.to_owned())
}

/// Runs one admin request (JSON) on `qm`; the JSON reply.
#[must_use]
pub fn handle(qm: &FakeQm, json: &[u8]) -> Vec<u8> {
    handle_within(qm, json, MAX_REPLY_BYTES)
}

/// The largest admin reply: a frame, less room for the reply's header.
const MAX_REPLY_BYTES: usize = super::protocol::MAX_FRAME_BYTES - 1024;

/// [`handle`], with replies longer than `limit` bytes turned into an error that says so (a
/// browse of a deep queue of large messages would not fit in one frame).
fn handle_within(qm: &FakeQm, json: &[u8], limit: usize) -> Vec<u8> {
    let reply = match serde_json::from_slice::<AdminRequest>(json) {
        Ok(request) => run(qm, request),
        Err(e) => AdminReply::Error(format!("bad admin request: {e}")),
    };
    let encode =
        |reply: &AdminReply| serde_json::to_vec(reply).unwrap_or_else(|e| format!(r#"{{"error":"{e}"}}"#).into_bytes());
    let bytes = encode(&reply);
    if bytes.len() <= limit {
        return bytes;
    }
    let what = match &reply {
        AdminReply::Browse(messages) => format!("a browse of {} messages", messages.len()),
        _ => "the reply".to_owned(),
    };
    encode(&AdminReply::Error(format!(
        "{what} is {} bytes, more than one reply frame carries ({limit}): use depth, or browse after draining",
        bytes.len()
    )))
}

fn unknown(queue: &str) -> AdminReply {
    AdminReply::Error(format!("unknown queue {queue} (2085 MQRC_UNKNOWN_OBJECT_NAME)"))
}

fn run(qm: &FakeQm, request: AdminRequest) -> AdminReply {
    match request {
        AdminRequest::Put { queue, messages } => {
            if let Some(refused) = out_of_range(&messages) {
                return refused;
            }
            let mut ids = Vec::with_capacity(messages.len());
            for (i, m) in messages.into_iter().enumerate() {
                let spec = PutSpec {
                    priority: m.priority,
                    persistent: m.persistent,
                    backout_count: m.backout_count,
                    ..PutSpec::text(m.data)
                };
                match qm.put_message(&queue, spec) {
                    Ok(id) => ids.push(hex(&id)),
                    Err(reason) => {
                        return AdminReply::Error(format!(
                            "put of message {} to {queue} failed: {reason} {} ({} put before it)",
                            i + 1,
                            reason_name(reason),
                            ids.len()
                        ));
                    }
                }
            }
            AdminReply::Put(ids)
        }
        AdminRequest::Browse { queue } => {
            if qm.depth(&queue).is_none() {
                return unknown(&queue);
            }
            AdminReply::Browse(
                qm.browse(&queue)
                    .into_iter()
                    .map(|m| BrowsedMessage {
                        msg_id: hex(&m.msg_id),
                        correl_id: hex(&m.correl_id),
                        priority: m.priority,
                        persistent: m.persistent,
                        backout_count: m.backout_count,
                        state: m.state.to_owned(),
                        data: String::from_utf8_lossy(&m.data).into_owned(),
                    })
                    .collect(),
            )
        }
        AdminRequest::Depth { queue } => qm.depth(&queue).map_or_else(|| unknown(&queue), AdminReply::Depth),
        AdminRequest::Status => AdminReply::Status(Box::new(status(qm))),
        AdminRequest::Break { hconn: Some(hconn) } => match qm.connection(hconn) {
            Some(c) if c.broken.is_none() => {
                qm.break_connection(hconn);
                AdminReply::Broken(1)
            }
            _ => AdminReply::Error(format!("no live connection {hconn}")),
        },
        AdminRequest::Break { hconn: None } => {
            let live = qm.connections().iter().filter(|c| c.broken.is_none()).count();
            qm.break_all();
            AdminReply::Broken(live)
        }
        AdminRequest::Quiesce => {
            qm.quiesce();
            AdminReply::Done
        }
        AdminRequest::Start => {
            qm.start();
            AdminReply::Done
        }
    }
}

/// An error for the first message whose backout count MQ could not hold, or whose priority
/// is outside 0 to MaxPriority, if any: checked before anything is put, so a refused request
/// puts nothing.
fn out_of_range(messages: &[AdminMessage]) -> Option<AdminReply> {
    messages.iter().enumerate().find_map(|(i, m)| {
        let n = i + 1;
        if !(0..=MAX_BACKOUT_COUNT).contains(&m.backout_count) {
            return Some(AdminReply::Error(format!(
                "message {n} has backout count {}, outside 0..={MAX_BACKOUT_COUNT} (MQ's range): nothing was put",
                m.backout_count
            )));
        }
        let priority = m.priority.filter(|p| !(0..=MAX_PRIORITY).contains(p))?;
        Some(AdminReply::Error(format!(
            "message {n} has priority {priority}, outside 0..={MAX_PRIORITY} (MaxPriority): nothing was put"
        )))
    })
}

fn status(qm: &FakeQm) -> Status {
    Status {
        queue_manager: qm.name(),
        state: match qm.status() {
            super::super::QmgrStatus::Running => "running",
            super::super::QmgrStatus::Quiescing => "quiescing",
            super::super::QmgrStatus::Stopped => "stopped",
        }
        .to_owned(),
        peak_connections: qm.peak_connections(),
        connections: qm.connections(),
        channels: qm.channels(),
        queues: qm.queues(),
        reasons: qm
            .reason_counts()
            .into_iter()
            .map(|((verb, reason), count)| ReasonCount {
                verb: verb.name().to_owned(),
                reason,
                name: reason_name(reason),
                count,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{FakeConfig, QueueDef};

    fn reply(qm: &FakeQm, json: &str) -> AdminReply {
        serde_json::from_slice(&handle(qm, json.as_bytes())).expect("reply is JSON")
    }

    #[test]
    fn put_then_depth_and_browse_show_the_messages() {
        let mut config = FakeConfig::default();
        config.queues.push(QueueDef::new("Q"));
        let qm = FakeQm::new(config);
        let put = r#"{"op":"put","queue":"Q","messages":[{"data":"a"},{"data":"b","backout_count":2}]}"#;
        assert!(matches!(reply(&qm, put), AdminReply::Put(ids) if ids.len() == 2));
        assert!(matches!(
            reply(&qm, r#"{"op":"depth","queue":"Q"}"#),
            AdminReply::Depth(2)
        ));
        let AdminReply::Browse(msgs) = reply(&qm, r#"{"op":"browse","queue":"Q"}"#) else {
            panic!("browse")
        };
        assert_eq!(msgs[1].data, "b");
        assert_eq!(msgs[1].backout_count, 2);
    }

    #[test]
    fn a_put_with_a_priority_outside_0_to_9_is_refused_whole() {
        let mut config = FakeConfig::default();
        config.queues.push(QueueDef::new("Q"));
        let qm = FakeQm::new(config);
        for bad in [10, 1000, -1] {
            let put =
                format!(r#"{{"op":"put","queue":"Q","messages":[{{"data":"a"}},{{"data":"b","priority":{bad}}}]}}"#);
            let AdminReply::Error(e) = reply(&qm, &put) else {
                panic!("priority {bad} was put")
            };
            assert!(
                e.contains(&format!("message 2 has priority {bad}, outside 0..=9")),
                "{e}"
            );
        }
        assert_eq!(qm.depth("Q"), Some(0), "nothing was put");
        let put = r#"{"op":"put","queue":"Q","messages":[{"data":"a","priority":0},{"data":"b","priority":9}]}"#;
        assert!(matches!(reply(&qm, put), AdminReply::Put(ids) if ids.len() == 2));
    }

    #[test]
    fn a_browse_too_large_for_one_frame_is_an_error_that_says_so() {
        let mut config = FakeConfig::default();
        config.queues.push(QueueDef::new("Q"));
        let qm = FakeQm::new(config);
        let put = format!(
            r#"{{"op":"put","queue":"Q","messages":[{{"data":"{0}"}},{{"data":"{0}"}}]}}"#,
            "x".repeat(300)
        );
        assert!(matches!(reply(&qm, &put), AdminReply::Put(_)));
        let browse = br#"{"op":"browse","queue":"Q"}"#;
        let fits: AdminReply = serde_json::from_slice(&handle_within(&qm, browse, 2000)).expect("JSON");
        assert!(matches!(fits, AdminReply::Browse(m) if m.len() == 2));
        let AdminReply::Error(e) = serde_json::from_slice(&handle_within(&qm, browse, 500)).expect("JSON") else {
            panic!("an error")
        };
        assert!(e.contains("a browse of 2 messages"), "{e}");
        assert!(e.contains("more than one reply frame carries (500)"), "{e}");
    }

    #[test]
    fn unknown_queues_and_bad_json_are_errors_that_say_so() {
        let qm = FakeQm::new(FakeConfig::default());
        let AdminReply::Error(e) = reply(&qm, r#"{"op":"depth","queue":"NOPE"}"#) else {
            panic!("error")
        };
        assert!(e.contains("unknown queue NOPE"), "{e}");
        let AdminReply::Error(e) = reply(&qm, r#"{"op":"explode"}"#) else {
            panic!("error")
        };
        assert!(e.contains("bad admin request"), "{e}");
    }
}
