//! One MQ connection and the queue handles open on it, in mqpilot's own types.
//!
//! A `Session` lives on one thread (the pool's connection thread) and is never shared. It
//! opens a handle only when asked and keeps it until told to close it: how many handles stay
//! open is the pool's decision (its handle budget), not this file's. Every failure is an
//! [`Error::Mq`] that keeps the reason code, so the caller can tell a connection-level failure
//! (reconnect) from one that concerns a single queue.

use std::rc::Rc;

use mqi::connection::ThreadNoBlock;
use mqi::constants::*;
use mqi::get::GetWait;
use mqi::types::{MQGMO, MQOO, MQPMO, MessageFormat, QueueManagerName, QueueName};
use mqi::{Connection, Object, Syncpoint, attribute, structs};

use super::library::MqLibrary;
use super::message::{Descriptor, Message};
use super::options::ConnectOptions;
use super::reason::Reason;
use super::{mq_error, reason};
use crate::Error;

type Conn = Connection<MqLibrary, ThreadNoBlock>;

/// The MQMD an MQGET filled in, copied to the heap once: a message's descriptor (364 bytes)
/// then travels through the result types and the batch as a pointer instead of being copied
/// at every step. With it, the message's whole length, which MQ reports also when the
/// message did not fit (2080).
struct BoxedMd(Descriptor, usize);

impl<'b, R> mqi::get::GetAttr<'b, R> for BoxedMd {
    fn get_extract<F, B>(
        param: &mut mqi::get::GetParam,
        get: F,
    ) -> mqi::result::ResultComp<(Self, mqi::get::GetState<B>)>
    where
        F: FnOnce(&mut mqi::get::GetParam) -> mqi::result::ResultComp<mqi::get::GetState<B>>,
        B: mqi::traits::Buffer<'b, R>,
    {
        use mqi::result::ResultCompErrExt as _;
        get(param).map_completion(|state| (Self(Descriptor::new(&param.md), state.message_length), state))
    }
}

/// Size of each block of the payload arena: 128 messages of 512 bytes share one allocation.
/// A block stays allocated while any message in it is alive.
const ARENA_BYTES: usize = 64 * 1024;

/// Largest message MQ allows (MAXMSGL's upper bound): the buffer never grows past it.
pub const MAX_MESSAGE_BYTES: usize = 104_857_600;

/// The next buffer size after a 2080 for a message of `needed` bytes: a power of two at
/// least twice `capacity` and at least `needed`, up to `max`. Powers of two land exactly on
/// the usual channel MAXMSGL values (4 MiB, MQ's default); a buffer past the channel's
/// negotiated limit fails with 2010, and the get then tries the message's exact length.
fn grown(capacity: usize, needed: usize, max: usize) -> usize {
    capacity
        .saturating_mul(2)
        .max(needed)
        .checked_next_power_of_two()
        .unwrap_or(max)
        .min(max)
}

/// Queue manager limits a connection reads when it is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QmgrLimits {
    /// MAXHANDS: open handles per connection.
    pub max_handles: i32,
    /// MAXUMSGS: messages got and put in one unit of work.
    pub max_uncommitted: i32,
}

/// What a handle is opened for. Each (queue, access) pair is one cached handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Access {
    /// MQOO_INPUT_AS_Q_DEF: destructive gets.
    Input,
    /// MQOO_OUTPUT: puts.
    Output,
    /// MQOO_INQUIRE: attributes.
    Inquire,
    /// MQOO_BROWSE: non-destructive reads.
    Browse,
}

impl Access {
    fn options(self) -> MQOO {
        let base = match self {
            Self::Input => MQOO_INPUT_AS_Q_DEF,
            Self::Output => MQOO_OUTPUT,
            Self::Inquire => MQOO_INQUIRE,
            Self::Browse => MQOO_BROWSE,
        };
        base | MQOO_FAIL_IF_QUIESCING
    }
}

/// One browsed message.
#[derive(Debug, Clone)]
pub struct Browsed {
    /// The message; `data` holds at most the requested number of bytes.
    pub message: Message,
    /// Whether the payload was cut at the requested size.
    pub truncated: bool,
}

/// What a get bounded in size found.
#[derive(Debug)]
pub enum Got {
    /// A message, taken.
    Message(Message),
    /// No message (2033).
    Empty,
    /// The next message is longer than allowed; it is still on the queue, untouched.
    TooLong,
}

/// How to get one message.
#[derive(Debug, Clone, Copy)]
pub struct GetRequest {
    /// Under syncpoint (the unit of work decides) or not (at-most-once).
    pub syncpoint: bool,
    /// Milliseconds to wait for a message; 0 = do not wait.
    pub wait_ms: u32,
}

/// The queue attributes the worker and tools act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueAttrs {
    /// CURDEPTH.
    pub depth: i32,
    /// MAXDEPTH.
    pub max_depth: i32,
    /// IPPROCS.
    pub open_input: i32,
    /// OPPROCS.
    pub open_output: i32,
    /// BOTHRESH (0 = none).
    pub backout_threshold: i32,
    /// BOQNAME (empty = none).
    pub backout_queue: String,
    /// GET(ENABLED).
    pub get_enabled: bool,
    /// PUT(ENABLED).
    pub put_enabled: bool,
    /// MAXMSGL.
    pub max_msg_length: i32,
}

/// A connection to a queue manager with its open queue handles.
pub struct Session {
    // Field order matters: handles close before the connection disconnects. A handful of
    // handles at most (the pool's budget), so a list searched without allocating a key.
    handles: Vec<(String, Access, Object<Rc<Conn>>)>,
    conn: Rc<Conn>,
    target: String,
    buffer: Vec<u8>,
    /// Payloads of received messages, copied out of `buffer` back to back: a batch shares a
    /// few allocations instead of making one per message.
    arena: bytes::BytesMut,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("target", &self.target)
            .field("handles", &self.handles.len())
            .finish_non_exhaustive()
    }
}

fn queue_name(queue: &str) -> Result<QueueName, Error> {
    let valid = super::is_valid_name(queue).then_some(queue);
    valid.and_then(|q| q.parse().ok()).ok_or_else(|| Error::Options {
        source_name: "queue".into(),
        message: format!("{queue:?} is not a valid MQ queue name (1 to 48 characters of A-Z a-z 0-9 . / _ %)"),
    })
}

impl Session {
    /// Connects with `options` through `lib`. `buffer_bytes` is the starting get buffer;
    /// it grows when a message does not fit (MQ's 2080), up to [`MAX_MESSAGE_BYTES`].
    ///
    /// # Errors
    /// [`Error::Mq`] from MQCONNX.
    pub fn connect(lib: MqLibrary, options: &ConnectOptions, buffer_bytes: usize) -> Result<Self, Error> {
        let conn = options.connect(lib)?;
        Ok(Self {
            handles: Vec::new(),
            conn: Rc::new(conn),
            target: options.target().to_owned(),
            buffer: vec![0; buffer_bytes.clamp(1, MAX_MESSAGE_BYTES)],
            arena: bytes::BytesMut::with_capacity(ARENA_BYTES),
        })
    }

    /// MAXHANDS and MAXUMSGS of the queue manager (MQINQ on the queue manager object, opened
    /// and closed again, so it briefly needs one free handle).
    ///
    /// # Errors
    /// [`Error::Mq`] from MQOPEN or MQINQ: 2035 when the user has no inquire authority on the
    /// queue manager object (`+inq` on `-t qmgr`).
    pub fn limits(&self) -> Result<QmgrLimits, Error> {
        let qmgr = Object::open(Rc::clone(&self.conn), &(QueueManagerName::default(), MQOO_INQUIRE))
            .map_err(|e| mq_error(&e, &self.target))?
            .discard_warning();
        let inquire = |selector, name: &str| {
            qmgr.inquire_integer(selector)
                .map_err(|e| mq_error(&e, &self.target))?
                .discard_warning()
                .ok_or_else(|| Error::Mq {
                    verb: "MQINQ",
                    object: self.target.clone(),
                    reason: Reason::SELECTOR_ERROR,
                    detail: Some(format!("the queue manager did not return {name}")),
                })
        };
        Ok(QmgrLimits {
            max_handles: inquire(attribute::MQIA_MAX_HANDLES, "MAXHANDS")?,
            max_uncommitted: inquire(attribute::MQIA_MAX_UNCOMMITTED_MSGS, "MAXUMSGS")?,
        })
    }

    fn position(&self, queue: &str, access: Access) -> Option<usize> {
        self.handles.iter().position(|(q, a, _)| q == queue && *a == access)
    }

    /// Opens a handle for (queue, access) unless one is open already.
    ///
    /// # Errors
    /// [`Error::Mq`] from MQOPEN (2017 when the connection holds MAXHANDS handles, 2085 for an
    /// unknown queue, ...), or [`Error::Options`] for a name MQ cannot take.
    pub fn open(&mut self, queue: &str, access: Access) -> Result<(), Error> {
        if self.position(queue, access).is_some() {
            return Ok(());
        }
        let name = queue_name(queue)?;
        let object = Object::open(Rc::clone(&self.conn), &(name, access.options()))
            .map_err(|e| {
                let err = mq_error(&e, queue);
                if err.reason() == Some(Reason::HANDLE_NOT_AVAILABLE) {
                    let held = self.handles.len();
                    err.with_detail(format!("the connection already holds {held} handles"))
                } else {
                    err
                }
            })?
            .discard_warning();
        self.handles.push((queue.to_owned(), access, object));
        Ok(())
    }

    /// Closes the handle for (queue, access) if it is open.
    pub fn close(&mut self, queue: &str, access: Access) {
        if let Some(i) = self.position(queue, access)
            && let Err(e) = self.handles.swap_remove(i).2.close()
        {
            tracing::debug!(queue, error = %e, "MQCLOSE failed");
        }
    }

    fn handle(&mut self, queue: &str, access: Access) -> Result<&Object<Rc<Conn>>, Error> {
        self.open(queue, access)?;
        let i = self.position(queue, access).expect("opened above");
        Ok(&self.handles[i].2)
    }

    /// Gets one message, waiting up to `wait_ms`; `None` when there is none (2033). A message
    /// longer than the buffer (2080) stays on the queue, the buffer grows to fit its length
    /// and the get is tried again; truncation is never accepted.
    ///
    /// The buffer never stays longer than the channel's negotiated MAXMSGL, which MQ answers
    /// with 2010 for every get: grown for a message, it tries that message's exact length,
    /// and if that too is refused it goes back to the last size that worked (and the message
    /// is an error that says how long it is); a starting buffer the channel refuses is halved
    /// until the channel takes it.
    ///
    /// # Errors
    /// [`Error::Mq`] from MQOPEN or MQGET.
    pub fn get(&mut self, shared: &std::sync::Arc<str>, request: GetRequest) -> Result<Option<Message>, Error> {
        match self.get_within(shared, request, MAX_MESSAGE_BYTES)? {
            Got::Message(m) => Ok(Some(m)),
            Got::Empty => Ok(None),
            Got::TooLong => Err(Error::Mq {
                verb: "MQGET",
                object: shared.to_string(),
                reason: Reason::TRUNCATED_MSG_FAILED,
                detail: Some(format!("the message is longer than {MAX_MESSAGE_BYTES} bytes")),
            }),
        }
    }

    /// Gets one message of at most `max_bytes` as [`Session::get`] does; a longer one stays
    /// on the queue, untouched (MQ's 2080 without MQGMO_ACCEPT_TRUNCATED_MSG), and the
    /// answer is [`Got::TooLong`].
    ///
    /// # Errors
    /// [`Error::Mq`] from MQOPEN or MQGET.
    pub fn get_within(
        &mut self,
        shared: &std::sync::Arc<str>,
        request: GetRequest,
        max_bytes: usize,
    ) -> Result<Got, Error> {
        let max_bytes = max_bytes.clamp(1, MAX_MESSAGE_BYTES);
        let queue: &str = shared;
        let i = match self.position(queue, Access::Input) {
            Some(i) => i,
            None => {
                self.open(queue, Access::Input)?;
                self.handles.len() - 1
            }
        };
        let sync = if request.syncpoint {
            MQGMO_SYNCPOINT
        } else {
            MQGMO_NO_SYNCPOINT
        };
        let options: MQGMO = sync | MQGMO_FAIL_IF_QUIESCING;
        let wait = || {
            if request.wait_ms == 0 {
                GetWait::NoWait
            } else {
                GetWait::Wait(i32::try_from(request.wait_ms).unwrap_or(i32::MAX))
            }
        };
        // After a 2080: the buffer length that got it and the message's length.
        let mut outgrown: Option<(usize, usize)> = None;
        loop {
            let object = &self.handles[i].2;
            let capacity = self.buffer.len().min(max_bytes);
            let got = match object.get_data_with::<BoxedMd, _>(&(options, wait()), &mut self.buffer[..capacity]) {
                Ok(got) => got,
                Err(e) => {
                    let error = mq_error(&e, queue);
                    if error.reason() != Some(Reason::DATA_LENGTH_ERROR) {
                        return Err(error);
                    }
                    // 2010: the buffer is longer than the channel's negotiated MAXMSGL.
                    match outgrown {
                        Some((_, needed)) if needed < capacity => self.buffer.truncate(needed),
                        Some((fitted, needed)) => {
                            self.buffer.truncate(fitted);
                            return Err(error.with_detail(format!(
                                "a message of {needed} bytes is longer than the channel's negotiated \
                                 MAXMSGL allows: a buffer of {capacity} bytes got 2010; the message \
                                 stays on the queue"
                            )));
                        }
                        None if capacity > 1 => {
                            tracing::debug!(
                                queue,
                                bytes = capacity / 2,
                                "get buffer longer than the channel's MAXMSGL (2010): halving it"
                            );
                            self.buffer.truncate(capacity / 2);
                        }
                        None => return Err(error),
                    }
                    continue;
                }
            };
            if got.warning().is_some_and(|(rc, _)| rc == MQRC_TRUNCATED_MSG_FAILED) {
                let needed = got.discard_warning().map_or(0, |(_, BoxedMd(_, length))| length);
                if capacity >= max_bytes || needed > max_bytes {
                    return Ok(Got::TooLong);
                }
                outgrown = Some((capacity, needed));
                let bigger = grown(capacity, needed, max_bytes);
                tracing::debug!(
                    queue,
                    bytes = bigger,
                    message_bytes = needed,
                    "message longer than the buffer (2080): growing it"
                );
                self.buffer.resize(bigger, 0);
                continue;
            }
            return Ok(match got.discard_warning() {
                Some((data, BoxedMd(md, _))) => {
                    self.arena.extend_from_slice(data);
                    Got::Message(Message::with_descriptor(
                        std::sync::Arc::clone(shared),
                        md,
                        self.arena.split().freeze(),
                    ))
                }
                None => Got::Empty,
            });
        }
    }

    /// Browses up to `limit` messages of `queue` from the front, in delivery order, keeping at
    /// most `max_payload_bytes` of each payload (MQGMO_ACCEPT_TRUNCATED_MSG: a longer message
    /// is returned cut, and says so) and `max_total_bytes` in all: the browse stops before a
    /// message that would pass it, and a first message is cut to it. Nothing is removed or
    /// locked.
    ///
    /// # Errors
    /// [`Error::Mq`] from MQOPEN or MQGET.
    pub fn browse(
        &mut self,
        queue: &str,
        limit: usize,
        max_payload_bytes: usize,
        max_total_bytes: usize,
    ) -> Result<Vec<Browsed>, Error> {
        let mut left = max_total_bytes;
        let shared: std::sync::Arc<str> = queue.into();
        // No payload is kept past max_total_bytes: no need to read more of one.
        let mut buffer = vec![0u8; max_payload_bytes.min(max_total_bytes).max(1)];
        let object = self.handle(queue, Access::Browse)?;
        let mut out = Vec::with_capacity(limit.min(100));
        while out.len() < limit {
            let position = if out.is_empty() {
                MQGMO_BROWSE_FIRST
            } else {
                MQGMO_BROWSE_NEXT
            };
            let options: MQGMO = position | MQGMO_ACCEPT_TRUNCATED_MSG | MQGMO_FAIL_IF_QUIESCING;
            let got = match object.get_data_with::<BoxedMd, _>(&(options, GetWait::NoWait), &mut buffer[..]) {
                Ok(got) => got,
                Err(e) => {
                    let error = mq_error(&e, queue);
                    // 2010: a buffer longer than the channel's negotiated MAXMSGL; the cursor
                    // has not moved, so the same browse is tried with half the buffer (a
                    // payload longer than that comes back cut, and says so).
                    if error.reason() == Some(Reason::DATA_LENGTH_ERROR) && buffer.len() > 1 {
                        buffer.truncate(buffer.len() / 2);
                        continue;
                    }
                    return Err(error);
                }
            };
            let truncated = got.warning().is_some_and(|(rc, _)| rc == MQRC_TRUNCATED_MSG_ACCEPTED);
            let Some((data, BoxedMd(md, _))) = got.discard_warning() else {
                break;
            };
            let wanted = data.len().min(max_payload_bytes);
            if wanted > left && !out.is_empty() {
                break;
            }
            let keep = wanted.min(left);
            left -= keep;
            out.push(Browsed {
                message: Message::with_descriptor(std::sync::Arc::clone(&shared), md, data[..keep].to_vec()),
                truncated: truncated || keep < data.len(),
            });
        }
        Ok(out)
    }

    /// Puts `message` (its MQMD: ids, format, priority, persistence) with `data` on `queue`.
    ///
    /// # Errors
    /// [`Error::Mq`] from MQOPEN or MQPUT.
    pub fn put(&mut self, queue: &str, message: &Message, data: &[u8], syncpoint: bool) -> Result<(), Error> {
        let md = structs::MQMD::new(*message.md());
        let format = MessageFormat::from_mqmd(&md);
        let sync: MQPMO = if syncpoint { MQPMO_SYNCPOINT } else { MQPMO_NO_SYNCPOINT };
        let object = self.handle(queue, Access::Output)?;
        object
            .put_message(&(sync | MQPMO_FAIL_IF_QUIESCING, md), &(data, format))
            .map_err(|e| mq_error(&e, queue))?
            .discard_warning();
        Ok(())
    }

    /// MQCMIT.
    ///
    /// # Errors
    /// [`Error::Mq`]; 2003 means MQ backed the unit of work out instead.
    pub fn commit(&self) -> Result<(), Error> {
        let done = Syncpoint::new(&self.conn)
            .commit()
            .map_err(|e| mq_error(&e, &self.target))?;
        // MQ reports a commit it could not do (log space exhausted, say) as a warning,
        // MQCC_WARNING with 2003: the gets and puts were backed out, not made permanent.
        if done.warning().is_some_and(|(rc, _)| rc == MQRC_BACKED_OUT) {
            return Err(Error::Mq {
                verb: "MQCMIT",
                object: self.target.clone(),
                reason: Reason::BACKED_OUT,
                detail: Some("the queue manager backed the unit of work out instead of committing it".into()),
            });
        }
        Ok(())
    }

    /// MQBACK.
    ///
    /// # Errors
    /// [`Error::Mq`].
    pub fn backout(&self) -> Result<(), Error> {
        Syncpoint::new(&self.conn)
            .backout()
            .map_err(|e| mq_error(&e, &self.target))?
            .discard_warning();
        Ok(())
    }

    /// Makes sure this connection is never disconnected by us: MQDISC commits, so when an
    /// MQBACK failed on a connection that is still alive, the safe way out is to leave the
    /// connection to MQ, which backs its unit of work out when the process ends. (Its handles
    /// still close; closing a handle does not end the unit of work.)
    pub fn abandon(&self) {
        std::mem::forget(Rc::clone(&self.conn));
    }

    /// The queue's attributes (MQINQ on an inquire handle, cached like any other).
    ///
    /// # Errors
    /// [`Error::Mq`] from MQOPEN or MQINQ.
    pub fn queue_attrs(&mut self, queue: &str) -> Result<QueueAttrs, Error> {
        let object = self.handle(queue, Access::Inquire)?;
        let items = object
            .inquire(&[
                attribute::MQIA_CURRENT_Q_DEPTH,
                attribute::MQIA_MAX_Q_DEPTH,
                attribute::MQIA_OPEN_INPUT_COUNT,
                attribute::MQIA_OPEN_OUTPUT_COUNT,
                attribute::MQIA_BACKOUT_THRESHOLD,
                attribute::MQIA_INHIBIT_GET,
                attribute::MQIA_INHIBIT_PUT,
                attribute::MQIA_MAX_MSG_LENGTH,
                attribute::MQCA_BACKOUT_REQ_Q_NAME,
            ])
            .map_err(|e| mq_error(&e, queue))?
            .discard_warning();
        let mut ints = Vec::new();
        let mut boq = String::new();
        for item in items.iter() {
            match item.into_tuple().1 {
                attribute::AttributeValue::Long(v) => ints.push(v),
                attribute::AttributeValue::Text(t) => {
                    // MQCHAR is a C char: reinterpret each byte.
                    let bytes: Vec<u8> = t.iter().map(|&c| c as u8).collect();
                    String::from_utf8_lossy(&bytes).trim().clone_into(&mut boq);
                }
            }
        }
        let int = |i: usize| ints.get(i).copied().unwrap_or(0);
        Ok(QueueAttrs {
            depth: int(0),
            max_depth: int(1),
            open_input: int(2),
            open_output: int(3),
            backout_threshold: int(4),
            get_enabled: int(5) == MQQA_GET_ALLOWED.0,
            put_enabled: int(6) == MQQA_PUT_ALLOWED.0,
            max_msg_length: int(7),
            backout_queue: boq,
        })
    }
}

/// Whether an error means the connection is gone and must be rebuilt.
#[must_use]
pub fn is_connection_lost(error: &Error) -> bool {
    error
        .reason()
        .is_some_and(|r| r.class() == reason::ReasonClass::Reconnect)
}

/// Whether a failed MQCMIT leaves nobody knowing if it took effect: the connection went
/// (MQ may have committed before it did, or backed out), or client reconnection cut the call
/// (2549 MQRC_CALL_INTERRUPTED: the unit of work may or may not have been committed). Either
/// way the unit of work is no longer open, so there is nothing to back out.
#[must_use]
pub fn is_commit_outcome_unknown(error: &Error) -> bool {
    is_connection_lost(error) || error.reason() == Some(Reason::CALL_INTERRUPTED)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_grown_buffer_is_a_power_of_two_that_holds_the_message_and_lands_on_4_mib() {
        use super::{MAX_MESSAGE_BYTES as MAX, grown};
        assert_eq!(grown(65_536, 65_537, MAX), 131_072);
        assert_eq!(grown(100_000, 100_001, MAX), 262_144);
        assert_eq!(grown(65_536, 5 << 20, MAX), 8 << 20, "at once to the message's length");
        let mut size = 100_000;
        while size < 4 << 20 {
            size = grown(size, size + 1, MAX);
        }
        assert_eq!(size, 4 << 20, "never past a 4 MiB channel limit on the way");
        assert_eq!(grown(80 << 20, 80 << 20, MAX), MAX);
        assert_eq!(grown(1000, 1500, 1200), 1200, "never past the caller's most");
        assert_eq!(grown(usize::MAX / 2 + 2, usize::MAX / 2 + 3, MAX), MAX);
    }
}
