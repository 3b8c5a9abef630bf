//! Non-destructive reads (MQOO_BROWSE) for the MCP tools, run on a pooled connection's thread.
//!
//! The pool's connection type has no browse handle, so each pool connection thread that is
//! asked to browse keeps one companion MQ connection of its own (in a thread-local), opened
//! with the same connection options and dropped with the thread. It is only ever used while
//! a pool lease is held, so browses are bounded by the pool exactly like every other call;
//! its open browse handles are capped at the pooled connection's handle budget (least
//! recently used closed first). A connection-level reason code drops the companion and is
//! returned, so the pool replaces the whole connection. This file and `descriptor.rs` are
//! the only MCP files that name `mqi` types: the pool's connection has no browse or MQMD
//! builder yet.

use std::cell::RefCell;
use std::rc::Rc;

use mqi::connection::ThreadNoBlock;
use mqi::constants::*;
use mqi::get::GetWait;
use mqi::types::{MQGMO, QueueName};
use mqi::{Connection, Object, structs};

use crate::Error;
use crate::mq::message::Message;
use crate::mq::options::ConnectOptions;
use crate::mq::session::is_connection_lost;
use crate::mq::{MqLibrary, mq_error};

type Conn = Connection<MqLibrary, ThreadNoBlock>;

/// One browsed message.
#[derive(Debug, Clone)]
pub struct Browsed {
    /// The message; `data` holds at most the requested number of bytes.
    pub message: Message,
    /// Whether the payload was cut at the requested size.
    pub truncated: bool,
}

struct Companion {
    // Field order matters: handles close before the connection disconnects.
    handles: Vec<(String, Object<Rc<Conn>>)>,
    conn: Rc<Conn>,
}

thread_local! {
    static COMPANION: RefCell<Option<Companion>> = const { RefCell::new(None) };
}

/// What to browse.
#[derive(Debug, Clone, Copy)]
pub struct BrowseRequest {
    /// Most messages to return.
    pub limit: usize,
    /// Payload bytes to copy per message.
    pub max_payload_bytes: usize,
    /// Most browse handles the companion connection keeps open.
    pub handle_budget: usize,
}

/// Browses up to `request.limit` messages of `queue` from the front, in delivery order.
/// Must run on a pool connection thread (inside `Lease::run`).
///
/// # Errors
/// [`Error::Mq`] from MQCONNX, MQOPEN or MQGET; [`Error::Options`] for a bad queue name.
pub fn browse(
    library: &MqLibrary,
    options: &ConnectOptions,
    queue: &str,
    request: BrowseRequest,
) -> Result<Vec<Browsed>, Error> {
    COMPANION.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            let conn = options.connect(library.clone())?;
            *slot = Some(Companion {
                handles: Vec::new(),
                conn: Rc::new(conn),
            });
        }
        let companion = slot.as_mut().expect("set above");
        let result = companion.browse(queue, request);
        if let Err(e) = &result
            && is_connection_lost(e)
        {
            *slot = None;
        }
        result
    })
}

impl Companion {
    fn handle(&mut self, queue: &str, budget: usize) -> Result<&Object<Rc<Conn>>, Error> {
        if let Some(i) = self.handles.iter().position(|(q, _)| q == queue) {
            let entry = self.handles.remove(i);
            self.handles.push(entry);
        } else {
            while self.handles.len() >= budget.max(1) {
                let (_, object) = self.handles.remove(0);
                let _ = object.close();
            }
            let name: QueueName = queue.parse().map_err(|_| Error::Options {
                source_name: "queue".into(),
                message: format!("{queue:?} is not a valid MQ queue name"),
            })?;
            let object = Object::open(Rc::clone(&self.conn), &(name, MQOO_BROWSE | MQOO_FAIL_IF_QUIESCING))
                .map_err(|e| mq_error(&e, queue))?
                .discard_warning();
            self.handles.push((queue.to_owned(), object));
        }
        Ok(&self.handles.last().expect("pushed above").1)
    }

    fn browse(&mut self, queue: &str, request: BrowseRequest) -> Result<Vec<Browsed>, Error> {
        let shared: std::sync::Arc<str> = queue.into();
        let mut buffer = vec![0u8; request.max_payload_bytes.max(1)];
        let object = self.handle(queue, request.handle_budget)?;
        let mut out = Vec::with_capacity(request.limit.min(100));
        while out.len() < request.limit {
            let position = if out.is_empty() {
                MQGMO_BROWSE_FIRST
            } else {
                MQGMO_BROWSE_NEXT
            };
            let options: MQGMO = position | MQGMO_ACCEPT_TRUNCATED_MSG | MQGMO_FAIL_IF_QUIESCING;
            let got = object
                .get_data_with::<structs::MQMD, _>(&(options, GetWait::NoWait), &mut buffer[..])
                .map_err(|e| mq_error(&e, queue))?;
            let truncated = got.warning().is_some_and(|(rc, _)| rc == MQRC_TRUNCATED_MSG_ACCEPTED);
            let Some((data, md)) = got.discard_warning() else {
                break;
            };
            let keep = data.len().min(request.max_payload_bytes);
            out.push(Browsed {
                message: Message::new(std::sync::Arc::clone(&shared), *md, data[..keep].to_vec()),
                truncated: truncated || keep < data.len(),
            });
        }
        Ok(out)
    }
}
