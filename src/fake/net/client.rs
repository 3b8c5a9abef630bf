//! The client side: the fake's safe verbs sent to a `mqpilot fake-qm` server, and its admin.
//!
//! Every MQCONNX opens one TCP connection that carries that hconn's calls, one at a time, as
//! the MQI does. Nothing hangs: a failed connect answers 2538, and a socket that fails,
//! closes or stays silent past the call's deadline (the MQGET wait plus
//! [`RemoteVerbs::with_call_timeout`]) answers 2009 to the call in flight and to every later
//! call on that hconn. [`RemoteVerbs::with_source_address`] binds the client's side of every
//! connection to one local IP (e.g. one of 127.0.0.0/8), which is the address the server's
//! MAXINSTC counts.
//!
//! Plain MQGETs under syncpoint read ahead when the server allows it (`ahead.rs`): one
//! round trip fetches the rest of the batch the handle got in its previous unit of work, and
//! the following gets are answered from the link. Before any other request the link
//! releases what it still holds, in the same write as that request. Before each hand-out
//! the link looks, without blocking, whether the server sent anything unasked (a `REVOKE`
//! frame: the queue was GET(DISABLED) or the queue manager quiesces; or the end of the
//! stream): then that get goes to the server, releasing what is held in front of it.

use std::io::{BufReader, Write as _};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use libmqm_sys as mq;
use rustc_hash::FxHashMap;

use super::super::adapter::{MqiAdapter, md_from_bytes, md_to_bytes};
use super::super::mqi_verbs::Verbs;
use super::super::verbs::{Attr, ConnectRequest, GetOptions, Got, ObjectRef};
use super::admin::{AdminMessage, AdminReply, AdminRequest, BrowsedMessage, Status};
use super::ahead::{ReadAhead, qualifies};
use super::protocol::{Decoder, Encoder, FrameError, Request, WireConnect, decode_attrs, kind, read_frame};
use crate::Error;

/// Default time a call may take beyond its MQGET wait before it answers 2009.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Default time a TCP connect may take before MQCONNX answers 2538.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The MQI over a `mqpilot fake-qm` server: one client process's library.
pub type RemoteMqi = MqiAdapter<RemoteVerbs>;

impl RemoteMqi {
    /// A library whose connections go to the server at `server` (`host:port`). Nothing
    /// connects until MQCONNX.
    #[must_use]
    pub fn connect_to(server: impl Into<String>) -> Self {
        Self::over(RemoteVerbs::new(server))
    }

    /// A library over `verbs` (to set their timeouts first).
    #[must_use]
    pub fn over(verbs: RemoteVerbs) -> Self {
        Self::new(verbs, 0, String::new())
    }
}

/// The fake's verbs, sent over TCP. Cheap to clone: clones are the same client process.
#[derive(Clone)]
pub struct RemoteVerbs {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    server: String,
    token: u64,
    call_timeout: Duration,
    connect_timeout: Duration,
    source: Option<IpAddr>,
    links: Mutex<FxHashMap<i32, Arc<Mutex<Link>>>>,
}

impl std::fmt::Debug for RemoteVerbs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteVerbs")
            .field("server", &self.inner.server)
            .finish_non_exhaustive()
    }
}

/// A token unique to this library instance: the OS process id, the time and a counter.
fn new_token() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    (u64::from(std::process::id()) << 32) ^ u64::from(nanos) ^ (NEXT.fetch_add(1, Ordering::Relaxed) << 48)
}

/// A TCP connection to `addr`, from `source` (any free port) when given.
fn connect(addr: SocketAddr, timeout: Duration, source: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let Some(ip) = source else {
        return TcpStream::connect_timeout(&addr, timeout);
    };
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.bind(&SocketAddr::new(ip, 0).into())?;
    socket.connect_timeout(&addr.into(), timeout)?;
    Ok(socket.into())
}

/// One TCP connection carrying one hconn.
struct Link {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
    enc: Encoder,
    /// A `RELEASE` frame and the request it goes out with.
    out: Vec<u8>,
    body: Vec<u8>,
    timeout: Option<Duration>,
    broken: bool,
    /// The hconn it carries, once connected (for `RELEASE` frames).
    hconn: i32,
    ahead: ReadAhead,
}

impl Link {
    fn open(server: &str, connect_timeout: Duration, source: Option<IpAddr>) -> Option<Self> {
        let addrs = server.to_socket_addrs().ok()?;
        let stream = addrs
            .into_iter()
            .find_map(|a| connect(a, connect_timeout, source).ok())?;
        let _ = stream.set_nodelay(true);
        // A server that stops reading must not hang a large MQPUT forever.
        let _ = stream.set_write_timeout(Some(DEFAULT_CALL_TIMEOUT));
        let reader = BufReader::with_capacity(64 * 1024, stream.try_clone().ok()?);
        Some(Self {
            stream,
            reader,
            enc: Encoder::default(),
            out: Vec::new(),
            body: Vec::new(),
            timeout: None,
            broken: false,
            hconn: mq::MQHC_UNUSABLE_HCONN,
            ahead: ReadAhead::default(),
        })
    }

    /// Sends `request` and reads the reply body; `Err` (and broken from then on) when the
    /// socket fails, closes, times out, or the server refuses the frame. Messages still held
    /// from a read-ahead are released first, in the same write.
    fn call(&mut self, request: &Request, timeout: Option<Duration>) -> Result<(), ()> {
        if self.broken {
            return Err(());
        }
        self.out.clear();
        if let Some(count) = self.ahead.take_release() {
            Request::Release {
                hconn: self.hconn,
                count,
            }
            .encode(&mut self.enc);
            self.out.extend_from_slice(self.enc.finish());
        }
        request.encode(&mut self.enc);
        let result = self.exchange(timeout);
        if let Err(e) = &result {
            tracing::debug!(error = %e, "fake queue manager connection lost");
            self.broken = true;
            let _ = self.stream.shutdown(std::net::Shutdown::Both);
        }
        result.map_err(|_| ())
    }

    fn exchange(&mut self, timeout: Option<Duration>) -> Result<(), FrameError> {
        if self.timeout != timeout {
            self.stream.set_read_timeout(timeout)?;
            self.timeout = timeout;
        }
        if self.out.is_empty() {
            self.stream.write_all(self.enc.finish())?;
        } else {
            self.out.extend_from_slice(self.enc.finish());
            self.stream.write_all(&self.out)?;
        }
        // A `REVOKE` in front of the reply concerns messages this request released.
        let mut frame = read_frame(&mut self.reader, &mut self.body)?;
        while frame == kind::REVOKE {
            frame = read_frame(&mut self.reader, &mut self.body)?;
        }
        match frame {
            kind::REPLY => Ok(()),
            kind::ERROR => {
                let why = String::from_utf8_lossy(self.body.get(4..).unwrap_or_default()).into_owned();
                tracing::warn!(error = %why, "the fake queue manager refused a frame");
                Err(FrameError::Malformed {
                    kind: "error",
                    what: "refused by the server",
                })
            }
            other => Err(FrameError::Kind(other)),
        }
    }

    /// Whether the server sent something unasked since the last reply (a `REVOKE` frame, an
    /// `ERROR` frame, the end of the stream, a failure): then nothing held may be handed out
    /// and the next get goes to the server. One non-blocking look at the socket.
    fn server_spoke(&self) -> bool {
        if !self.reader.buffer().is_empty() {
            return true;
        }
        let mut byte = [std::mem::MaybeUninit::<u8>::uninit(); 1];
        let sock = socket2::SockRef::from(&self.stream);
        #[cfg(unix)]
        let looked = sock.recv_with_flags(&mut byte, libc::MSG_PEEK | libc::MSG_DONTWAIT);
        #[cfg(not(unix))]
        let looked = sock
            .set_nonblocking(true)
            .and_then(|()| sock.peek(&mut byte))
            .and_then(|n| sock.set_nonblocking(false).map(|()| n));
        !matches!(looked, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }

    /// The reply's status and a decoder for the rest.
    fn reply(&self) -> Result<(Result<i32, i32>, Decoder<'_>), ()> {
        let mut d = Decoder::new(&self.body, "reply");
        let ok = d.u8().map_err(|_| ())?;
        let reason = d.i32().map_err(|_| ())?;
        Ok((if ok == 1 { Ok(reason) } else { Err(reason) }, d))
    }
}

const BROKEN: i32 = mq::MQRC_CONNECTION_BROKEN;

impl RemoteVerbs {
    /// Verbs for the server at `server` (`host:port`).
    #[must_use]
    pub fn new(server: impl Into<String>) -> Self {
        Self {
            inner: Arc::new(ClientInner {
                server: server.into(),
                token: new_token(),
                call_timeout: DEFAULT_CALL_TIMEOUT,
                connect_timeout: DEFAULT_CONNECT_TIMEOUT,
                source: None,
                links: Mutex::new(FxHashMap::default()),
            }),
        }
    }

    /// Most time a call may take beyond its MQGET wait before it answers 2009. Default
    /// [`DEFAULT_CALL_TIMEOUT`] (30 s).
    #[must_use]
    pub fn with_call_timeout(self, timeout: Duration) -> Self {
        self.changed(|inner| inner.call_timeout = timeout)
    }

    /// Connects from `source` (a local IP address, any port): the client address the
    /// server counts for MAXINSTC. Default: whatever the operating system picks. A source
    /// that cannot be bound makes MQCONNX answer 2538.
    #[must_use]
    pub fn with_source_address(self, source: IpAddr) -> Self {
        self.changed(|inner| inner.source = Some(source))
    }

    /// The same client process with one setting changed (and no connection yet).
    fn changed(&self, change: impl FnOnce(&mut ClientInner)) -> Self {
        let mut inner = ClientInner {
            server: self.inner.server.clone(),
            token: self.inner.token,
            call_timeout: self.inner.call_timeout,
            connect_timeout: self.inner.connect_timeout,
            source: self.inner.source,
            links: Mutex::new(FxHashMap::default()),
        };
        change(&mut inner);
        Self { inner: Arc::new(inner) }
    }

    /// The server's address as given.
    #[must_use]
    pub fn server(&self) -> &str {
        &self.inner.server
    }

    fn link(&self, hconn: i32) -> Result<Arc<Mutex<Link>>, i32> {
        self.inner
            .links
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&hconn)
            .cloned()
            .ok_or(mq::MQRC_HCONN_ERROR)
    }

    /// Sends `request` on `hconn`'s link and passes the reply to `read`.
    fn call<T>(
        &self,
        hconn: i32,
        request: &Request,
        wait: Option<Duration>,
        read: impl FnOnce(Result<i32, i32>, Decoder<'_>) -> Result<T, i32>,
    ) -> Result<T, i32> {
        let link = self.link(hconn)?;
        let mut link = link.lock().unwrap_or_else(PoisonError::into_inner);
        link.call(request, self.timeout(wait)).map_err(|()| BROKEN)?;
        let (status, d) = link.reply().map_err(|()| BROKEN)?;
        read(status, d)
    }

    /// The socket timeout for a call that may wait `wait` (`None`: without limit).
    fn timeout(&self, wait: Option<Duration>) -> Option<Duration> {
        // A zero socket timeout is invalid (and would mean "none"): at least a millisecond.
        wait.map(|w| (w + self.inner.call_timeout).max(Duration::from_millis(1)))
    }

    /// MQCMIT or MQBACK: the link releases what it holds first, and each handle remembers
    /// how many messages this unit of work got, whatever the answer.
    fn end_unit_of_work(&self, hconn: i32, request: &Request) -> Result<(), i32> {
        let link = self.link(hconn)?;
        let mut link = link.lock().unwrap_or_else(PoisonError::into_inner);
        link.ahead.end_unit_of_work();
        link.call(request, self.timeout(Some(Duration::ZERO)))
            .map_err(|()| BROKEN)?;
        link.reply().map_err(|()| BROKEN)?.0.map(|_| ())
    }
}

fn md_from_reply(d: &mut Decoder<'_>) -> Result<mq::MQMD, i32> {
    d.bytes().ok().and_then(md_from_bytes).ok_or(BROKEN)
}

/// Reads an MQGET reply into the caller's MQMD and buffer, and keeps the messages read
/// ahead on `link`; `Err` for a malformed reply.
fn read_got(
    link: &mut Link,
    hobj: i32,
    options: i32,
    md: &mut mq::MQMD,
    buffer: &mut [u8],
) -> Result<Result<Got, i32>, FrameError> {
    let Link { body, ahead, .. } = link;
    let mut d = Decoder::new(body, "reply");
    let ok = d.u8()?;
    let reason = d.i32()?;
    if ok != 1 {
        return Ok(Err(reason));
    }
    let data_length = usize::try_from(d.u64()?).unwrap_or(usize::MAX);
    let malformed = || FrameError::Malformed {
        kind: "reply",
        what: "MQMD of the wrong size",
    };
    *md = md_from_bytes(d.bytes()?).ok_or_else(malformed)?;
    let data = d.bytes()?;
    let n = data.len().min(buffer.len());
    buffer[..n].copy_from_slice(&data[..n]);
    let more = d.u32()?;
    for _ in 0..more {
        let md = md_from_bytes(d.bytes()?).ok_or_else(malformed)?;
        ahead.hold(hobj, options, md, d.bytes()?);
    }
    Ok(Ok(Got {
        data_length,
        warning: reason,
    }))
}

impl Verbs for RemoteVerbs {
    fn connect(&self, req: &ConnectRequest) -> Result<i32, i32> {
        // The server refuses longer strings as malformed frames: answer what the fake does.
        req.check_lengths()?;
        let Some(mut link) = Link::open(&self.inner.server, self.inner.connect_timeout, self.inner.source) else {
            return Err(mq::MQRC_HOST_NOT_AVAILABLE);
        };
        let request = Request::Connect {
            token: self.inner.token,
            req: WireConnect::from_request(req),
        };
        link.call(&request, Some(self.inner.call_timeout))
            .map_err(|()| mq::MQRC_HOST_NOT_AVAILABLE)?;
        let (status, mut d) = link.reply().map_err(|()| BROKEN)?;
        status?;
        let hconn = d.i32().map_err(|_| BROKEN)?;
        let read_ahead = d.u32().map_err(|_| BROKEN)?;
        link.hconn = hconn;
        link.ahead = ReadAhead::new(read_ahead);
        self.inner
            .links
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(hconn, Arc::new(Mutex::new(link)));
        Ok(hconn)
    }

    fn disconnect(&self, hconn: i32) -> Result<(), i32> {
        let link = self
            .inner
            .links
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&hconn)
            .ok_or(mq::MQRC_HCONN_ERROR)?;
        let mut link = link.lock().unwrap_or_else(PoisonError::into_inner);
        let timeout = Some(self.inner.call_timeout);
        link.call(&Request::Disc { hconn }, timeout).map_err(|()| BROKEN)?;
        let result = link.reply().map_err(|()| BROKEN)?.0.map(|_| ());
        let _ = link.stream.shutdown(std::net::Shutdown::Both);
        result
    }

    fn open(&self, hconn: i32, object: &ObjectRef, options: i32) -> Result<i32, i32> {
        let request = Request::Open {
            hconn,
            object_type: object.object_type,
            name: object.name.clone(),
            options,
        };
        self.call(hconn, &request, Some(Duration::ZERO), |status, mut d| {
            status?;
            d.i32().map_err(|_| BROKEN)
        })
    }

    fn close(&self, hconn: i32, hobj: i32) -> Result<(), i32> {
        let link = self.link(hconn)?;
        let mut link = link.lock().unwrap_or_else(PoisonError::into_inner);
        link.ahead.forget(hobj);
        link.call(&Request::Close { hconn, hobj }, self.timeout(Some(Duration::ZERO)))
            .map_err(|()| BROKEN)?;
        link.reply().map_err(|()| BROKEN)?.0.map(|_| ())
    }

    fn put(&self, hconn: i32, hobj: i32, md: &mut mq::MQMD, options: i32, data: &[u8]) -> Result<(), i32> {
        let request = Request::Put {
            hconn,
            hobj,
            options,
            md: md_to_bytes(md).to_vec(),
            data: data.to_vec(),
        };
        self.call(hconn, &request, Some(Duration::ZERO), |status, mut d| {
            status?;
            *md = md_from_reply(&mut d)?;
            Ok(())
        })
    }

    fn put1(&self, hconn: i32, object: &ObjectRef, md: &mut mq::MQMD, options: i32, data: &[u8]) -> Result<(), i32> {
        let request = Request::Put1 {
            hconn,
            object_type: object.object_type,
            name: object.name.clone(),
            options,
            md: md_to_bytes(md).to_vec(),
            data: data.to_vec(),
        };
        self.call(hconn, &request, Some(Duration::ZERO), |status, mut d| {
            status?;
            *md = md_from_reply(&mut d)?;
            Ok(())
        })
    }

    fn get(&self, hconn: i32, hobj: i32, md: &mut mq::MQMD, gmo: &GetOptions, buffer: &mut [u8]) -> Result<Got, i32> {
        let link = self.link(hconn)?;
        let mut link = link.lock().unwrap_or_else(PoisonError::into_inner);
        if link.broken {
            return Err(BROKEN);
        }
        let ahead = qualifies(gmo, md);
        if ahead
            && link.ahead.holds(hobj, gmo.options)
            && !link.server_spoke()
            && let Some(got) = link.ahead.hand_out(hobj, gmo.options, md, buffer)
        {
            return Ok(got);
        }
        let request = Request::Get {
            hconn,
            hobj,
            options: gmo.options,
            wait_interval: gmo.wait_interval,
            match_options: gmo.match_options,
            buffer_len: u32::try_from(buffer.len()).unwrap_or(u32::MAX),
            md: md_to_bytes(md).to_vec(),
            ahead: if ahead { link.ahead.wanted(hobj) } else { 0 },
        };
        let wait = if gmo.options & mq::MQGMO_WAIT == 0 {
            Some(Duration::ZERO)
        } else if gmo.wait_interval < 0 {
            None
        } else {
            Some(Duration::from_millis(gmo.wait_interval.unsigned_abs().into()))
        };
        link.call(&request, self.timeout(wait)).map_err(|()| BROKEN)?;
        let got = read_got(&mut link, hobj, gmo.options, md, buffer).map_err(|e| {
            // The server's state is unknown now: drop the connection, so it backs out.
            tracing::debug!(error = %e, "malformed MQGET reply");
            link.broken = true;
            let _ = link.stream.shutdown(std::net::Shutdown::Both);
            BROKEN
        })?;
        if ahead && got.is_ok_and(|g| g.warning == 0) {
            link.ahead.handed_out(hobj);
        }
        got
    }

    fn inquire(&self, hconn: i32, hobj: i32, selectors: &[i32]) -> Result<Vec<Attr>, i32> {
        let request = Request::Inq {
            hconn,
            hobj,
            selectors: selectors.to_vec(),
        };
        self.call(hconn, &request, Some(Duration::ZERO), |status, mut d| {
            status?;
            let left = d.remaining();
            decode_attrs(&mut d, left).map_err(|_| BROKEN)
        })
    }

    fn commit(&self, hconn: i32) -> Result<(), i32> {
        self.end_unit_of_work(hconn, &Request::Cmit { hconn })
    }

    fn backout(&self, hconn: i32) -> Result<(), i32> {
        self.end_unit_of_work(hconn, &Request::Back { hconn })
    }

    fn unsupported(&self) -> i32 {
        mq::MQRC_FUNCTION_NOT_SUPPORTED
    }
}

/// Admin of a `mqpilot fake-qm` server: one short TCP connection per request.
#[derive(Debug, Clone)]
pub struct RemoteAdmin {
    server: String,
    timeout: Duration,
}

impl RemoteAdmin {
    /// Admin of the server at `server` (`host:port`); each request may take up to 30 s.
    #[must_use]
    pub fn new(server: impl Into<String>) -> Self {
        Self {
            server: server.into(),
            timeout: DEFAULT_CALL_TIMEOUT,
        }
    }

    fn fail(&self, message: impl Into<String>) -> Error {
        Error::FakeServer {
            server: self.server.clone(),
            message: message.into(),
        }
    }

    /// Sends one admin request and returns the server's answer.
    ///
    /// # Errors
    /// [`Error::FakeServer`] when the server cannot be reached, closes the connection, or
    /// answers with an error (an unknown queue, ...).
    pub fn request(&self, request: &AdminRequest) -> Result<AdminReply, Error> {
        let mut link = Link::open(&self.server, DEFAULT_CONNECT_TIMEOUT, None)
            .ok_or_else(|| self.fail("cannot connect (is `mqpilot fake-qm` running there?)"))?;
        let json = serde_json::to_vec(request).map_err(|e| self.fail(e.to_string()))?;
        link.call(&Request::Admin(json), Some(self.timeout))
            .map_err(|()| self.fail("the connection failed before the answer"))?;
        let (status, mut d) = link.reply().map_err(|()| self.fail("malformed answer"))?;
        status.map_err(|r| self.fail(format!("refused with reason {r}")))?;
        let body = d.bytes().map_err(|_| self.fail("malformed answer"))?;
        match serde_json::from_slice(body).map_err(|e| self.fail(format!("malformed answer: {e}")))? {
            AdminReply::Error(message) => Err(self.fail(message)),
            reply => Ok(reply),
        }
    }

    fn unexpected(&self) -> Error {
        self.fail("unexpected answer")
    }

    /// Puts messages on `queue`; their message ids in hex.
    ///
    /// # Errors
    /// As [`RemoteAdmin::request`]; a failed put names the message and its reason code.
    pub fn put(&self, queue: &str, messages: Vec<AdminMessage>) -> Result<Vec<String>, Error> {
        match self.request(&AdminRequest::Put {
            queue: queue.to_owned(),
            messages,
        })? {
            AdminReply::Put(ids) => Ok(ids),
            _ => Err(self.unexpected()),
        }
    }

    /// Every message on `queue`, whatever its state.
    ///
    /// # Errors
    /// As [`RemoteAdmin::request`].
    pub fn browse(&self, queue: &str) -> Result<Vec<BrowsedMessage>, Error> {
        match self.request(&AdminRequest::Browse {
            queue: queue.to_owned(),
        })? {
            AdminReply::Browse(m) => Ok(m),
            _ => Err(self.unexpected()),
        }
    }

    /// CURDEPTH of `queue`.
    ///
    /// # Errors
    /// As [`RemoteAdmin::request`].
    pub fn depth(&self, queue: &str) -> Result<i32, Error> {
        match self.request(&AdminRequest::Depth {
            queue: queue.to_owned(),
        })? {
            AdminReply::Depth(d) => Ok(d),
            _ => Err(self.unexpected()),
        }
    }

    /// Connections, channels, queues and reason-code counts.
    ///
    /// # Errors
    /// As [`RemoteAdmin::request`].
    pub fn status(&self) -> Result<Status, Error> {
        match self.request(&AdminRequest::Status)? {
            AdminReply::Status(s) => Ok(*s),
            _ => Err(self.unexpected()),
        }
    }

    /// Breaks one connection, or all when `hconn` is `None`; how many were broken.
    ///
    /// # Errors
    /// As [`RemoteAdmin::request`].
    pub fn break_connections(&self, hconn: Option<i32>) -> Result<usize, Error> {
        match self.request(&AdminRequest::Break { hconn })? {
            AdminReply::Broken(n) => Ok(n),
            _ => Err(self.unexpected()),
        }
    }

    /// Quiesces the queue manager (`endmqm`).
    ///
    /// # Errors
    /// As [`RemoteAdmin::request`].
    pub fn quiesce(&self) -> Result<(), Error> {
        self.request(&AdminRequest::Quiesce).map(|_| ())
    }

    /// Starts it again (`strmqm`).
    ///
    /// # Errors
    /// As [`RemoteAdmin::request`].
    pub fn start(&self) -> Result<(), Error> {
        self.request(&AdminRequest::Start).map(|_| ())
    }
}
