//! One client TCP connection: its frames, its MQ connection (hconn) and its read-ahead.
//!
//! A TCP connection carries at most one MQ connection and may only name its own. When the
//! socket closes, fails or sends a bad frame, or its thread panics, the connection's unit of
//! work is backed out (backout count + 1), its handles and locks are released and its channel
//! conversation ends, as when MQ loses a client. An MQGET that waits is watched: a client
//! that goes away during the wait breaks its connection at once instead of when the wait
//! ends. A bad frame closes only its own connection, after an `ERROR` frame saying why.
//! A get that qualifies for read-ahead takes up to the requested number of further messages
//! into the unit of work in the same reply; the fake remembers them until the client's next
//! request, which releases what it did not hand out (so a break meanwhile keeps them from
//! other consumers, see `read_ahead.rs`). Until then, a change that makes handing them out
//! wrong (GET(DISABLED), quiescing) sends the client a `REVOKE` frame; the reply being
//! written and that frame never interleave (both hold the connection's writer). Buffers
//! past 1 MiB are freed once their call is answered.

use std::io::{BufReader, Write as _};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libmqm_sys as mq;

use super::super::FakeQm;
use super::super::adapter::{md_from_bytes, md_to_bytes};
use super::super::get::GrowBuffer;
use super::super::read_ahead::{AheadLimit, AheadNotice};
use super::admin;
use super::ahead::{AHEAD_BYTES, qualifies};
use super::protocol::{
    Encoder, FrameError, MAX_FRAME_BYTES, MD_BYTES, Request, VERSION, encode_attrs, kind, read_frame_idle,
};
use super::server::{Shared, lock};
use super::watcher::Watcher;

/// How long the rest of a frame may take once its first bytes arrived.
const FRAME_STALL: Duration = Duration::from_secs(10);

/// A connection keeps its buffers (the frame read, the reply, the MQGET buffer) between
/// calls up to this size; past it they are freed once the call is answered. The MQGET
/// buffer grows to the message a get returns, never to the client's BufferLength (see
/// [`GrowBuffer`]).
const KEPT_BUFFER_BYTES: usize = 1024 * 1024;

/// What a message read ahead costs in an MQGET reply besides its data: its MQMD and the
/// two lengths in front of them.
const AHEAD_OVERHEAD: usize = 4 + MD_BYTES + 4;

/// The frame that tells a client to stop handing out what it fetched ahead.
const REVOKE_FRAME: [u8; 6] = [2, 0, 0, 0, VERSION, kind::REVOKE];

/// What a verb's answer is made of.
enum Outcome {
    /// Answer with this reply frame (already encoded in the connection's encoder).
    Reply,
    /// The frame takes no answer.
    Silent,
    /// Refuse the frame: send an `ERROR` frame with this text and close.
    Refuse(String),
}

/// One client TCP connection.
pub(super) struct Connection {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
    /// What writes frames to the client: this thread's replies, and a `REVOKE` frame from
    /// whichever thread made the change that revokes a read-ahead.
    writer: Arc<Mutex<TcpStream>>,
    peer: SocketAddr,
    shared: Arc<Shared>,
    hconn: Option<i32>,
    /// The client process this connection belongs to, once connected.
    process_key: Option<(IpAddr, u64)>,
    watcher: Option<Watcher>,
    enc: Encoder,
    get_buffer: Vec<u8>,
    /// The read-ahead limit this connection announced at MQCONNX.
    read_ahead: u32,
    /// A read-ahead fetched messages since the client's last request: the fake remembers
    /// them (and a break keeps them) until the next one settles them.
    fetched_ahead: bool,
}

impl Connection {
    pub(super) fn new(stream: TcpStream, shared: Arc<Shared>) -> Option<Self> {
        let peer = stream.peer_addr().ok()?;
        let _ = stream.set_nodelay(true);
        // Until MQCONNX, the socket timeout also paces the idle check (see `pace_reads`).
        let _ = stream.set_read_timeout(Some(FRAME_STALL.min(shared.unconnected_idle())));
        // A client that stops reading a large reply must not pin this thread and its unit of
        // work forever: the write fails and the connection ends (backed out).
        let _ = stream.set_write_timeout(Some(FRAME_STALL));
        let reader = BufReader::with_capacity(64 * 1024, stream.try_clone().ok()?);
        let writer = Arc::new(Mutex::new(stream.try_clone().ok()?));
        tracing::debug!(%peer, "client connected");
        Some(Self {
            stream,
            reader,
            writer,
            peer,
            shared,
            hconn: None,
            process_key: None,
            watcher: None,
            enc: Encoder::default(),
            get_buffer: Vec::new(),
            read_ahead: 0,
            fetched_ahead: false,
        })
    }

    /// Reads and answers frames until the client goes, sends a frame the server refuses, or
    /// idles too long without an MQ connection.
    pub(super) fn serve(mut self) {
        let mut body = Vec::new();
        loop {
            let idle = self.hconn.is_none().then(|| self.shared.unconnected_idle());
            let outcome = match read_frame_idle(&mut self.reader, &mut body, idle) {
                Ok(k) => match Request::decode(k, &body) {
                    Ok(request) => self.execute(request),
                    Err(e) => Outcome::Refuse(e.to_string()),
                },
                Err(FrameError::Closed) => break,
                Err(FrameError::Io(e)) => {
                    tracing::debug!(peer = %self.peer, error = %e, "client connection failed");
                    break;
                }
                Err(FrameError::Idle(after)) => {
                    tracing::debug!(peer = %self.peer, ?after, "no MQ connection and no frame: closing");
                    self.send_error(&format!(
                        "no MQCONNX and no frame for {after:?}: closing the connection"
                    ));
                    break;
                }
                Err(e) => Outcome::Refuse(e.to_string()),
            };
            // A socket that idles after a large frame does not keep its memory.
            if body.capacity() > KEPT_BUFFER_BYTES {
                body = Vec::new();
            }
            match outcome {
                Outcome::Reply => {
                    let sent = lock(&self.writer).write_all(self.enc.finish());
                    self.enc.release_above(KEPT_BUFFER_BYTES);
                    if sent.is_err() {
                        break;
                    }
                }
                Outcome::Silent => {}
                Outcome::Refuse(why) => {
                    self.shared.protocol_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(peer = %self.peer, error = %why, "bad frame: closing the connection");
                    self.send_error(&why);
                    break;
                }
            }
        }
        // Dropping `self` ends the connection (see `Drop`).
    }

    /// Sends an `ERROR` frame saying why the server closes the connection.
    fn send_error(&mut self, why: &str) {
        let mut e = Encoder::frame(kind::ERROR);
        e.str(why);
        let _ = lock(&self.writer).write_all(e.finish());
    }

    /// The client is gone: back out, release, end the conversation, forget the connection.
    fn end(&mut self) {
        if let Some(hconn) = self.hconn.take() {
            tracing::debug!(peer = %self.peer, hconn, "client gone: backing out its unit of work");
            end_connection(&self.shared.qm, hconn);
            self.left();
        }
        if let Some(w) = self.watcher.take() {
            w.stop(&self.stream);
        }
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// Sets the socket's read timeout for what the connection is now: a frame may stall for
    /// [`FRAME_STALL`] in any case, and a socket without an MQ connection is also checked for
    /// idling that often, however short the idle limit (a connected one may idle freely, and
    /// a short idle limit must not cut its slow frames).
    fn pace_reads(&self) {
        let timeout = match self.hconn {
            Some(_) => FRAME_STALL,
            None => FRAME_STALL.min(self.shared.unconnected_idle()),
        };
        let _ = self.stream.set_read_timeout(Some(timeout));
    }

    /// The connection's own hconn, or 2018.
    fn own(&self, hconn: i32) -> Result<i32, i32> {
        match self.hconn {
            Some(h) if h == hconn => Ok(h),
            _ => Err(mq::MQRC_HCONN_ERROR),
        }
    }

    fn reply_status(&mut self, result: Result<(), i32>) {
        self.enc.start(kind::REPLY);
        match result {
            Ok(()) => self.enc.u8(1).i32(0),
            Err(reason) => self.enc.u8(0).i32(reason),
        };
    }

    /// Runs one request, leaving its reply in `self.enc`.
    fn execute(&mut self, request: Request) -> Outcome {
        let qm = self.shared.qm.clone();
        if let Some(h) = self.hconn
            && self.fetched_ahead
            && !matches!(request, Request::Release { .. } | Request::Admin(_))
        {
            // Whatever the client held from a read-ahead it handed out or released in front
            // of this request.
            self.fetched_ahead = false;
            qm.ahead_settled(h);
        }
        match request {
            Request::Connect { token, req } => {
                if self.hconn.is_some() {
                    return Outcome::Refuse("MQCONNX on a connection that is already connected".into());
                }
                let process = self.join_process(token);
                let result = qm.connect(&req.into_request(self.peer.ip().to_string(), process));
                match result {
                    Ok(h) => {
                        self.hconn = Some(h);
                        self.pace_reads();
                    }
                    Err(_) => self.left(),
                }
                self.read_ahead = self.shared.read_ahead.load(Ordering::Relaxed);
                self.reply_status(result.map(|_| ()));
                self.enc
                    .i32(result.unwrap_or(mq::MQHC_UNUSABLE_HCONN))
                    .u32(self.read_ahead);
            }
            Request::Disc { hconn } => {
                let result = self.own(hconn).and_then(|h| {
                    self.hconn = None;
                    self.pace_reads();
                    self.left();
                    let result = qm.disconnect(h);
                    // This socket no longer owns the connection: its read-ahead watch goes,
                    // and anything MQDISC left behind (it ends the connection whatever it
                    // answers) is backed out and released now, never leaked.
                    end_connection(&qm, h);
                    result
                });
                self.reply_status(result);
            }
            Request::Open {
                hconn,
                object_type,
                name,
                options,
            } => {
                let object = Request::object(object_type, &name);
                let result = self.own(hconn).and_then(|h| qm.open(h, &object, options));
                self.reply_status(result.map(|_| ()));
                self.enc.i32(result.unwrap_or(mq::MQHO_UNUSABLE_HOBJ));
            }
            Request::Close { hconn, hobj } => {
                let result = self.own(hconn).and_then(|h| qm.close(h, hobj));
                self.reply_status(result);
            }
            Request::Put {
                hconn,
                hobj,
                options,
                md,
                data,
            } => {
                let Some(mut md) = md_from_bytes(&md) else {
                    return Outcome::Refuse("MQMD of the wrong size".into());
                };
                let result = self.own(hconn).and_then(|h| qm.put(h, hobj, &mut md, options, &data));
                self.reply_status(result);
                self.enc.bytes(md_to_bytes(&md));
            }
            Request::Put1 {
                hconn,
                object_type,
                name,
                options,
                md,
                data,
            } => {
                let Some(mut md) = md_from_bytes(&md) else {
                    return Outcome::Refuse("MQMD of the wrong size".into());
                };
                let object = Request::object(object_type, &name);
                let result = self
                    .own(hconn)
                    .and_then(|h| qm.put1(h, &object, &mut md, options, &data));
                self.reply_status(result);
                self.enc.bytes(md_to_bytes(&md));
            }
            Request::Get {
                hconn,
                hobj,
                options,
                wait_interval,
                match_options,
                buffer_len,
                md,
                ahead,
            } => {
                return self.get(
                    hconn,
                    hobj,
                    Request::get_options(options, wait_interval, match_options),
                    (buffer_len, ahead),
                    &md,
                );
            }
            Request::Inq { hconn, hobj, selectors } => {
                let result = self.own(hconn).and_then(|h| qm.inquire(h, hobj, &selectors));
                self.reply_status(result.as_ref().map(|_| ()).map_err(|r| *r));
                encode_attrs(&mut self.enc, result.as_deref().unwrap_or(&[]));
            }
            Request::Cmit { hconn } => {
                let result = self.own(hconn).and_then(|h| qm.commit(h));
                self.reply_status(result);
            }
            Request::Back { hconn } => {
                let result = self.own(hconn).and_then(|h| qm.backout(h));
                self.reply_status(result);
            }
            Request::Release { hconn, count } => {
                let released = self
                    .own(hconn)
                    .map_err(|_| 0)
                    .and_then(|h| qm.release_ahead(h, count as usize));
                return match released {
                    Ok(()) => Outcome::Silent,
                    Err(held) => Outcome::Refuse(format!(
                        "release of {count} messages on hconn {hconn}, which holds {held} fetched ahead"
                    )),
                };
            }
            Request::Other => {
                let reason = qm.unsupported();
                self.reply_status(Err(reason));
            }
            Request::Admin(json) => {
                let reply = admin::handle(&qm, &json);
                self.reply_status(Ok(()));
                self.enc.bytes(&reply);
            }
        }
        Outcome::Reply
    }

    /// MQGET: the reply carries the warning, DataLength, the MQMD and the bytes copied, then
    /// the messages read ahead (see [`Connection::read_ahead`]).
    fn get(
        &mut self,
        hconn: i32,
        hobj: i32,
        gmo: super::super::GetOptions,
        (buffer_len, ahead): (u32, u32),
        md: &[u8],
    ) -> Outcome {
        let Some(mut md) = md_from_bytes(md) else {
            return Outcome::Refuse("MQMD of the wrong size".into());
        };
        let h = match self.own(hconn) {
            Ok(h) => h,
            Err(reason) => {
                self.reply_status(Err(reason));
                return Outcome::Reply;
            }
        };
        let len = buffer_len as usize;
        self.get_buffer.clear();
        let waits = gmo.options & mq::MQGMO_WAIT != 0 && gmo.wait_interval != 0;
        if waits {
            self.watcher().arm(h);
        }
        let asked = md;
        let mut buffer = GrowBuffer {
            capacity: len,
            data: &mut self.get_buffer,
        };
        let result = self.shared.qm.get_into(h, hobj, &mut md, &gmo, &mut buffer);
        if waits && let Some(w) = &self.watcher {
            w.disarm();
        }
        self.enc.start(kind::REPLY);
        match result {
            Ok(got) => {
                self.enc
                    .u8(1)
                    .i32(got.warning)
                    .u64(got.data_length as u64)
                    .bytes(md_to_bytes(&md))
                    .bytes(&self.get_buffer);
                let more = if got.warning == 0 && qualifies(&gmo, &asked) {
                    ahead.min(self.read_ahead)
                } else {
                    0
                };
                self.read_ahead(h, hobj, &asked, &gmo, len, more);
            }
            Err(reason) => {
                self.enc.u8(0).i32(reason);
            }
        }
        if self.get_buffer.capacity() > KEPT_BUFFER_BYTES {
            self.get_buffer = Vec::new();
        }
        Outcome::Reply
    }

    /// Appends up to `more` messages got on the same terms without waiting, each no longer
    /// than the client's buffer (`u32 n`, then n x (MQMD, data)); the fake remembers them for
    /// a `RELEASE` or a break. They take at most [`AHEAD_BYTES`], and never more than the
    /// frame has room for after the first message, which may be up to 100 MiB itself.
    fn read_ahead(
        &mut self,
        h: i32,
        hobj: i32,
        asked: &mq::MQMD,
        gmo: &super::super::GetOptions,
        len: usize,
        more: u32,
    ) {
        let at = self.enc.position();
        self.enc.u32(0);
        if more == 0 {
            return;
        }
        // The frame's length counts what follows its 4-byte length prefix.
        let room = MAX_FRAME_BYTES.saturating_sub(self.enc.position() - 4);
        let limit = AheadLimit {
            messages: more as usize,
            bytes: AHEAD_BYTES.min(room),
            overhead: AHEAD_OVERHEAD,
        };
        let Self {
            shared,
            enc,
            get_buffer,
            ..
        } = self;
        let mut buffer = GrowBuffer {
            capacity: len,
            data: get_buffer,
        };
        let writer = &self.writer;
        let n = shared.qm.get_ahead(
            h,
            hobj,
            asked,
            gmo,
            &mut buffer,
            limit,
            |md, data| {
                enc.bytes(md_to_bytes(md)).bytes(data);
            },
            || revoke_notice(Arc::clone(writer)),
        );
        self.fetched_ahead |= n > 0;
        self.enc.set_u32(at, u32::try_from(n).unwrap_or(u32::MAX));
    }

    /// The fake's process id for this client address and token, counting this connection
    /// in it (under one lock, so a process is never forgotten while it connects).
    fn join_process(&mut self, token: u64) -> u64 {
        let key = (self.peer.ip(), token);
        let mut processes = lock(&self.shared.processes);
        let entry = processes
            .entry(key)
            .or_insert_with(|| (self.shared.next_process.fetch_add(1, Ordering::Relaxed), 0));
        entry.1 += 1;
        let id = entry.0;
        drop(processes);
        self.process_key = Some(key);
        id
    }

    /// Uncounts it; a client process with no connection left is forgotten.
    fn left(&mut self) {
        let Some(key) = self.process_key.take() else { return };
        let mut processes = lock(&self.shared.processes);
        if let Some(entry) = processes.get_mut(&key) {
            entry.1 = entry.1.saturating_sub(1);
            if entry.1 == 0 {
                processes.remove(&key);
            }
        }
    }

    /// The watcher for waiting gets, started on first use.
    fn watcher(&mut self) -> &Watcher {
        if self.watcher.is_none() {
            match self.stream.try_clone() {
                Ok(s) => self.watcher = Some(Watcher::start(s, self.shared.qm.clone())),
                Err(e) => tracing::warn!(error = %e, "cannot watch a waiting get"),
            }
        }
        self.watcher.get_or_insert_with(Watcher::inert)
    }
}

/// A connection thread that ends, normally or by a panic in a verb, ends its MQ connection:
/// nothing of it (unit of work, handles, channel instance, socket) outlives the thread, and
/// its client is answered 2009 instead of waiting.
impl Drop for Connection {
    fn drop(&mut self) {
        self.end();
    }
}

/// Writes a `REVOKE` frame to the client behind `writer`, after the reply being written if
/// any; a client that cannot be told (its socket fails, or stays full past the write
/// timeout) is disconnected, so it cannot hand out what it holds either.
fn revoke_notice(writer: Arc<Mutex<TcpStream>>) -> AheadNotice {
    Box::new(move || {
        let mut stream = lock(&writer);
        if let Err(e) = stream.write_all(&REVOKE_FRAME) {
            tracing::debug!(error = %e, "cannot revoke a client's read-ahead: closing");
            let _ = stream.shutdown(Shutdown::Both);
        }
    })
}

/// Backs out `hconn`'s whole unit of work (what a break would keep for the client's
/// read-ahead too: the client is gone), breaks it (releasing handles, locks and its channel
/// conversation) and forgets it.
fn end_connection(qm: &FakeQm, hconn: i32) {
    let mut st = qm.lock();
    st.ahead_watches.remove(&hconn);
    if st.conns.contains_key(&hconn) {
        st.backout_uow(hconn);
        st.break_conn(hconn, mq::MQRC_CONNECTION_BROKEN);
        st.conns.remove(&hconn);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;
    use crate::fake::net::protocol::WireConnect;
    use crate::fake::net::server::{Registered, Server};
    use crate::fake::{ChannelDef, FakeConfig, PutSpec, QueueDef, default_md};

    /// Runs `request` on `c` and checks it answered with success.
    fn run(c: &mut Connection, request: Request) {
        assert!(matches!(c.execute(request), Outcome::Reply));
        assert_eq!(c.enc.finish()[6], 1, "the call succeeded");
    }

    #[test]
    fn a_connection_thread_ended_by_a_panic_ends_its_mq_connection_and_socket() {
        let mut config = FakeConfig::default();
        config.channels.push(ChannelDef::new("APP.SVRCONN"));
        config.queues.push(QueueDef::new("Q"));
        let qm = FakeQm::new(config);
        qm.put_message("Q", PutSpec::text("m")).expect("put");
        let server = Server::bind("127.0.0.1:0", qm.clone()).expect("bind");
        let mut client = TcpStream::connect(server.local_addr().expect("addr")).expect("connect");
        client.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let (stream, _) = server.listener.accept().expect("accept");
        let shared = Arc::clone(&server.shared);
        lock(&shared.sockets).insert(7, stream.try_clone().expect("clone"));
        let registered = Registered {
            shared: Arc::clone(&shared),
            id: 7,
        };
        let mut c = Connection::new(stream, Arc::clone(&shared)).expect("connection");
        let req = WireConnect {
            channel: Some("APP.SVRCONN".into()),
            ..WireConnect::default()
        };
        run(&mut c, Request::Connect { token: 1, req });
        let hconn = c.hconn.expect("connected");
        let open = Request::Open {
            hconn,
            object_type: mq::MQOT_Q,
            name: "Q".into(),
            options: mq::MQOO_INPUT_AS_Q_DEF,
        };
        run(&mut c, open);
        let get = Request::Get {
            hconn,
            hobj: 1,
            options: mq::MQGMO_SYNCPOINT,
            wait_interval: 0,
            match_options: 0,
            buffer_len: 64,
            md: md_to_bytes(&default_md()).to_vec(),
            ahead: 0,
        };
        run(&mut c, get);
        assert_eq!(qm.browse("Q")[0].state, "got-uncommitted");

        let thread = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _owned = (registered, c);
            panic!("a verb panicked");
        }));
        assert!(thread.is_err());
        assert!(qm.connections().is_empty(), "{:?}", qm.connections());
        let m = &qm.browse("Q")[0];
        assert_eq!((m.state, m.backout_count), ("visible", 1), "backed out");
        assert_eq!(qm.channel("APP.SVRCONN").expect("channel").instances, 0);
        assert!(lock(&shared.sockets).is_empty(), "the socket left the registry");
        let mut rest = Vec::new();
        assert_eq!(
            client.read_to_end(&mut rest).expect("closed"),
            0,
            "the client is not left waiting"
        );
    }
}
