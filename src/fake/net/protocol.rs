//! The frames `mqpilot fake-qm` and its clients exchange, and their byte encoding.
//!
//! Decoding never trusts a length: every count and size is checked against the bytes that are
//! really there before anything is allocated, and every failure is a [`FrameError`] that says
//! what was wrong. Encoding and decoding are exact inverses (tested below).

use std::io::{Read, Write};

use super::super::verbs::{Attr, ConnectRequest, GetOptions, ObjectRef};

/// The protocol version this build speaks.
pub const VERSION: u8 = 1;

/// The largest frame body accepted: a 100 MiB message (IBM MQ's largest) plus its headers.
pub const MAX_FRAME_BYTES: usize = 100 * 1024 * 1024 + 64 * 1024;

/// Bytes of a version-2 MQMD on the wire.
pub const MD_BYTES: usize = std::mem::size_of::<libmqm_sys::MQMD>();

/// Why a frame could not be read or understood.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The peer closed the connection between frames.
    #[error("connection closed")]
    Closed,
    /// The socket failed, or closed inside a frame.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The frame names a protocol version this build does not speak.
    #[error("unsupported protocol version {0} (this side speaks {VERSION})")]
    Version(u8),
    /// The length prefix is past [`MAX_FRAME_BYTES`] (or too short for a header).
    #[error("frame of {0} bytes is outside 2..={MAX_FRAME_BYTES}")]
    Size(u64),
    /// The frame kind is unknown.
    #[error("unknown frame kind {0}")]
    Kind(u8),
    /// The body does not match its kind.
    #[error("malformed {kind} frame: {what}")]
    Malformed {
        /// Frame kind name.
        kind: &'static str,
        /// What was wrong.
        what: &'static str,
    },
}

/// Frame kinds. Requests are below 128, replies at or above.
pub mod kind {
    /// MQCONNX.
    pub const CONNECT: u8 = 1;
    /// MQDISC.
    pub const DISC: u8 = 2;
    /// MQOPEN.
    pub const OPEN: u8 = 3;
    /// MQCLOSE.
    pub const CLOSE: u8 = 4;
    /// MQPUT.
    pub const PUT: u8 = 5;
    /// MQPUT1.
    pub const PUT1: u8 = 6;
    /// MQGET.
    pub const GET: u8 = 7;
    /// MQINQ.
    pub const INQ: u8 = 8;
    /// MQCMIT.
    pub const CMIT: u8 = 9;
    /// MQBACK.
    pub const BACK: u8 = 10;
    /// A verb the fake does not implement.
    pub const OTHER: u8 = 11;
    /// An admin request (JSON body).
    pub const ADMIN: u8 = 32;
    /// The answer to a request.
    pub const REPLY: u8 = 128;
    /// The server refuses the connection's last frame and closes it (UTF-8 text body).
    pub const ERROR: u8 = 129;
}

/// A request from a client.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// MQCONNX. `token` names the client process (its connections share channel instances).
    Connect {
        /// Client process token.
        token: u64,
        /// Queue manager name, channel, SHARECNV, credentials, application name.
        req: WireConnect,
    },
    /// MQDISC.
    Disc { hconn: i32 },
    /// MQOPEN.
    Open {
        hconn: i32,
        object_type: i32,
        name: String,
        options: i32,
    },
    /// MQCLOSE.
    Close { hconn: i32, hobj: i32 },
    /// MQPUT.
    Put {
        hconn: i32,
        hobj: i32,
        options: i32,
        md: Vec<u8>,
        data: Vec<u8>,
    },
    /// MQPUT1.
    Put1 {
        hconn: i32,
        object_type: i32,
        name: String,
        options: i32,
        md: Vec<u8>,
        data: Vec<u8>,
    },
    /// MQGET with a buffer of `buffer_len` bytes.
    Get {
        hconn: i32,
        hobj: i32,
        options: i32,
        wait_interval: i32,
        match_options: i32,
        buffer_len: u32,
        md: Vec<u8>,
    },
    /// MQINQ.
    Inq { hconn: i32, hobj: i32, selectors: Vec<i32> },
    /// MQCMIT.
    Cmit { hconn: i32 },
    /// MQBACK.
    Back { hconn: i32 },
    /// Any other verb (answered with 2298).
    Other,
    /// An admin request, JSON.
    Admin(Vec<u8>),
}

/// The MQCONNX fields that cross the network (the server supplies address and process).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WireConnect {
    /// Queue manager name.
    pub qmgr_name: String,
    /// Channel; `None` for a bindings-style connection.
    pub channel: Option<String>,
    /// Client SHARECNV.
    pub client_sharecnv: Option<u32>,
    /// CONNAUTH user.
    pub user: Option<String>,
    /// CONNAUTH password (the fake is for loopback and test networks; it is sent as is).
    pub password: Option<String>,
    /// Application name.
    pub appl_name: String,
}

impl WireConnect {
    /// The fields of `req` that the client decides.
    #[must_use]
    pub fn from_request(req: &ConnectRequest) -> Self {
        Self {
            qmgr_name: req.qmgr_name.clone(),
            channel: req.channel.clone(),
            client_sharecnv: req.client_sharecnv,
            user: req.user.clone(),
            password: req.password.clone(),
            appl_name: req.appl_name.clone(),
        }
    }

    /// The request the server's fake sees, with the client's address and process.
    #[must_use]
    pub fn into_request(self, client_address: String, process: u64) -> ConnectRequest {
        ConnectRequest {
            qmgr_name: self.qmgr_name,
            channel: self.channel,
            client_address,
            process,
            client_sharecnv: self.client_sharecnv,
            user: self.user,
            password: self.password,
            appl_name: self.appl_name,
        }
    }
}

impl Request {
    /// The MQGET options this request carries.
    #[must_use]
    pub const fn get_options(options: i32, wait_interval: i32, match_options: i32) -> GetOptions {
        GetOptions {
            options,
            wait_interval,
            match_options,
        }
    }

    /// The object an open or put1 names.
    #[must_use]
    pub fn object(object_type: i32, name: &str) -> ObjectRef {
        ObjectRef {
            object_type,
            name: name.to_owned(),
        }
    }
}

/// An MQMD as the protocol carries it.
#[must_use]
pub fn encode_md(md: &libmqm_sys::MQMD) -> Vec<u8> {
    super::super::adapter::md_to_bytes(md).to_vec()
}

/// An MQMD from the protocol's bytes; `None` unless exactly [`MD_BYTES`] long.
#[must_use]
pub fn decode_md(bytes: &[u8]) -> Option<libmqm_sys::MQMD> {
    super::super::adapter::md_from_bytes(bytes)
}

/// Appends protocol values to a frame body.
#[derive(Debug, Default)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    /// A frame of `kind`; the length is filled in by [`Encoder::finish`].
    #[must_use]
    pub fn frame(kind: u8) -> Self {
        let mut e = Self::default();
        e.start(kind);
        e
    }

    /// Starts a new frame in the same buffer (reusing its allocation).
    pub fn start(&mut self, kind: u8) {
        self.buf.clear();
        self.buf.extend_from_slice(&[0, 0, 0, 0, VERSION, kind]);
    }

    /// An i32, little-endian.
    pub fn i32(&mut self, v: i32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A u32, little-endian.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A u64, little-endian.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    /// Bytes with a u32 length.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.u32(u32::try_from(v.len()).unwrap_or(u32::MAX));
        self.buf.extend_from_slice(v);
        self
    }

    /// A UTF-8 string with a u32 length.
    pub fn str(&mut self, v: &str) -> &mut Self {
        self.bytes(v.as_bytes())
    }

    /// An optional string: a presence byte, then the string.
    pub fn opt_str(&mut self, v: Option<&str>) -> &mut Self {
        match v {
            Some(s) => self.u8(1).str(s),
            None => self.u8(0),
        }
    }

    /// The finished frame: length prefix, version, kind, body.
    pub fn finish(&mut self) -> &[u8] {
        let len = u32::try_from(self.buf.len() - 4).unwrap_or(u32::MAX);
        self.buf[..4].copy_from_slice(&len.to_le_bytes());
        &self.buf
    }
}

/// Reads protocol values from a frame body.
#[derive(Debug)]
pub struct Decoder<'a> {
    body: &'a [u8],
    kind: &'static str,
}

impl<'a> Decoder<'a> {
    /// Reads `body`, naming `kind` in errors.
    #[must_use]
    pub const fn new(body: &'a [u8], kind: &'static str) -> Self {
        Self { body, kind }
    }

    const fn bad(&self, what: &'static str) -> FrameError {
        FrameError::Malformed { kind: self.kind, what }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], FrameError> {
        if self.body.len() < n {
            return Err(self.bad(what));
        }
        let (head, rest) = self.body.split_at(n);
        self.body = rest;
        Ok(head)
    }

    /// An i32.
    ///
    /// # Errors
    /// [`FrameError::Malformed`] when the body is too short.
    pub fn i32(&mut self) -> Result<i32, FrameError> {
        let b = self.take(4, "truncated integer")?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A u32.
    ///
    /// # Errors
    /// As [`Decoder::i32`].
    pub fn u32(&mut self) -> Result<u32, FrameError> {
        let b = self.take(4, "truncated integer")?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A u64.
    ///
    /// # Errors
    /// As [`Decoder::i32`].
    pub fn u64(&mut self) -> Result<u64, FrameError> {
        let b = self.take(8, "truncated integer")?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// A byte.
    ///
    /// # Errors
    /// As [`Decoder::i32`].
    pub fn u8(&mut self) -> Result<u8, FrameError> {
        Ok(self.take(1, "truncated byte")?[0])
    }

    /// Length-prefixed bytes, borrowed.
    ///
    /// # Errors
    /// [`FrameError::Malformed`] when the length passes the end of the body.
    pub fn bytes(&mut self) -> Result<&'a [u8], FrameError> {
        let len = self.u32()? as usize;
        self.take(len, "length past the end of the frame")
    }

    /// A length-prefixed UTF-8 string.
    ///
    /// # Errors
    /// As [`Decoder::bytes`], or text that is not UTF-8.
    pub fn str(&mut self) -> Result<String, FrameError> {
        let b = self.bytes()?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| self.bad("text is not UTF-8"))
    }

    /// An optional string.
    ///
    /// # Errors
    /// As [`Decoder::str`], or a presence byte other than 0 or 1.
    pub fn opt_str(&mut self) -> Result<Option<String>, FrameError> {
        match self.u8()? {
            0 => Ok(None),
            1 => self.str().map(Some),
            _ => Err(self.bad("bad presence byte")),
        }
    }

    /// An MQMD's bytes.
    ///
    /// # Errors
    /// [`FrameError::Malformed`] when the MQMD is not [`MD_BYTES`] long.
    pub fn md(&mut self) -> Result<Vec<u8>, FrameError> {
        let b = self.bytes()?;
        if b.len() == MD_BYTES {
            Ok(b.to_vec())
        } else {
            Err(self.bad("MQMD of the wrong size"))
        }
    }

    /// Fails unless the whole body was read.
    ///
    /// # Errors
    /// [`FrameError::Malformed`] for trailing bytes.
    pub fn end(&self) -> Result<(), FrameError> {
        if self.body.is_empty() {
            Ok(())
        } else {
            Err(self.bad("trailing bytes"))
        }
    }
}

/// Reads one frame into `body` (reused between calls); returns its kind.
///
/// # Errors
/// [`FrameError::Closed`] at a clean end of stream, [`FrameError::Io`] for a failure or an
/// end inside a frame, [`FrameError::Size`] and [`FrameError::Version`] for a bad header (the
/// body is not read then: the caller closes the connection).
pub fn read_frame(r: &mut impl Read, body: &mut Vec<u8>) -> Result<u8, FrameError> {
    let mut head = [0u8; 6];
    let mut got = 0;
    while got < head.len() {
        match r.read(&mut head[got..]) {
            Ok(0) if got == 0 => return Err(FrameError::Closed),
            Ok(0) => return Err(FrameError::Io(std::io::ErrorKind::UnexpectedEof.into())),
            Ok(n) => got += n,
            // A read timeout between frames is an idle client: keep waiting. Inside a frame it
            // is a stalled one.
            Err(e) if got == 0 && is_timeout(&e) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(FrameError::Io(e)),
        }
    }
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    if !(2..=MAX_FRAME_BYTES).contains(&len) {
        return Err(FrameError::Size(len as u64));
    }
    if head[4] != VERSION {
        return Err(FrameError::Version(head[4]));
    }
    body.clear();
    body.resize(len - 2, 0);
    r.read_exact(body)?;
    Ok(head[5])
}

/// Whether an I/O error is a read timeout.
#[must_use]
pub fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
}

/// Writes a finished frame.
///
/// # Errors
/// The socket's error.
pub fn write_frame(w: &mut impl Write, frame: &[u8]) -> std::io::Result<()> {
    w.write_all(frame)
}

/// The name of a request kind, for errors and logs.
#[must_use]
pub const fn kind_name(kind: u8) -> &'static str {
    match kind {
        kind::CONNECT => "MQCONNX",
        kind::DISC => "MQDISC",
        kind::OPEN => "MQOPEN",
        kind::CLOSE => "MQCLOSE",
        kind::PUT => "MQPUT",
        kind::PUT1 => "MQPUT1",
        kind::GET => "MQGET",
        kind::INQ => "MQINQ",
        kind::CMIT => "MQCMIT",
        kind::BACK => "MQBACK",
        kind::OTHER => "other verb",
        kind::ADMIN => "admin",
        kind::REPLY => "reply",
        kind::ERROR => "error",
        _ => "unknown",
    }
}

impl Request {
    /// Encodes the request as a frame into `e`.
    pub fn encode(&self, e: &mut Encoder) {
        match self {
            Self::Connect { token, req } => {
                e.start(kind::CONNECT);
                e.u64(*token)
                    .str(&req.qmgr_name)
                    .opt_str(req.channel.as_deref())
                    .u8(u8::from(req.client_sharecnv.is_some()))
                    .u32(req.client_sharecnv.unwrap_or(0))
                    .opt_str(req.user.as_deref())
                    .opt_str(req.password.as_deref())
                    .str(&req.appl_name);
            }
            Self::Disc { hconn } => {
                e.start(kind::DISC);
                e.i32(*hconn);
            }
            Self::Open {
                hconn,
                object_type,
                name,
                options,
            } => {
                e.start(kind::OPEN);
                e.i32(*hconn).i32(*object_type).str(name).i32(*options);
            }
            Self::Close { hconn, hobj } => {
                e.start(kind::CLOSE);
                e.i32(*hconn).i32(*hobj);
            }
            Self::Put {
                hconn,
                hobj,
                options,
                md,
                data,
            } => {
                e.start(kind::PUT);
                e.i32(*hconn).i32(*hobj).i32(*options).bytes(md).bytes(data);
            }
            Self::Put1 {
                hconn,
                object_type,
                name,
                options,
                md,
                data,
            } => {
                e.start(kind::PUT1);
                e.i32(*hconn)
                    .i32(*object_type)
                    .str(name)
                    .i32(*options)
                    .bytes(md)
                    .bytes(data);
            }
            Self::Get {
                hconn,
                hobj,
                options,
                wait_interval,
                match_options,
                buffer_len,
                md,
            } => {
                e.start(kind::GET);
                e.i32(*hconn)
                    .i32(*hobj)
                    .i32(*options)
                    .i32(*wait_interval)
                    .i32(*match_options)
                    .u32(*buffer_len)
                    .bytes(md);
            }
            Self::Inq { hconn, hobj, selectors } => {
                e.start(kind::INQ);
                e.i32(*hconn).i32(*hobj);
                e.u32(u32::try_from(selectors.len()).unwrap_or(u32::MAX));
                for s in selectors {
                    e.i32(*s);
                }
            }
            Self::Cmit { hconn } => {
                e.start(kind::CMIT);
                e.i32(*hconn);
            }
            Self::Back { hconn } => {
                e.start(kind::BACK);
                e.i32(*hconn);
            }
            Self::Other => e.start(kind::OTHER),
            Self::Admin(json) => {
                e.start(kind::ADMIN);
                e.bytes(json);
            }
        }
    }

    /// Decodes a request frame's body.
    ///
    /// # Errors
    /// [`FrameError::Kind`] for a kind that is not a request, [`FrameError::Malformed`] for a
    /// body that does not match it.
    pub fn decode(kind_byte: u8, body: &[u8]) -> Result<Self, FrameError> {
        let mut d = Decoder::new(body, kind_name(kind_byte));
        let request = match kind_byte {
            kind::CONNECT => {
                let token = d.u64()?;
                let qmgr_name = d.str()?;
                let channel = d.opt_str()?;
                let has_sharecnv = d.u8()? != 0;
                let sharecnv = d.u32()?;
                Self::Connect {
                    token,
                    req: WireConnect {
                        qmgr_name,
                        channel,
                        client_sharecnv: has_sharecnv.then_some(sharecnv),
                        user: d.opt_str()?,
                        password: d.opt_str()?,
                        appl_name: d.str()?,
                    },
                }
            }
            kind::DISC => Self::Disc { hconn: d.i32()? },
            kind::OPEN => Self::Open {
                hconn: d.i32()?,
                object_type: d.i32()?,
                name: d.str()?,
                options: d.i32()?,
            },
            kind::CLOSE => Self::Close {
                hconn: d.i32()?,
                hobj: d.i32()?,
            },
            kind::PUT => Self::Put {
                hconn: d.i32()?,
                hobj: d.i32()?,
                options: d.i32()?,
                md: d.md()?,
                data: d.bytes()?.to_vec(),
            },
            kind::PUT1 => Self::Put1 {
                hconn: d.i32()?,
                object_type: d.i32()?,
                name: d.str()?,
                options: d.i32()?,
                md: d.md()?,
                data: d.bytes()?.to_vec(),
            },
            kind::GET => Self::Get {
                hconn: d.i32()?,
                hobj: d.i32()?,
                options: d.i32()?,
                wait_interval: d.i32()?,
                match_options: d.i32()?,
                buffer_len: d.u32()?,
                md: d.md()?,
            },
            kind::INQ => {
                let hconn = d.i32()?;
                let hobj = d.i32()?;
                let n = d.u32()? as usize;
                // Each selector is four bytes: a count the body cannot hold is malformed,
                // and is refused before anything is allocated for it.
                if n > body.len() / 4 {
                    return Err(d.bad("selector count past the end of the frame"));
                }
                let selectors = (0..n).map(|_| d.i32()).collect::<Result<_, _>>()?;
                Self::Inq { hconn, hobj, selectors }
            }
            kind::CMIT => Self::Cmit { hconn: d.i32()? },
            kind::BACK => Self::Back { hconn: d.i32()? },
            kind::OTHER => Self::Other,
            kind::ADMIN => Self::Admin(d.bytes()?.to_vec()),
            other => return Err(FrameError::Kind(other)),
        };
        d.end()?;
        Ok(request)
    }
}

/// Encodes MQINQ's answer.
pub fn encode_attrs(e: &mut Encoder, attrs: &[Attr]) {
    e.u32(u32::try_from(attrs.len()).unwrap_or(u32::MAX));
    for a in attrs {
        match a {
            Attr::Int(v) => {
                e.u8(0).i32(*v);
            }
            Attr::Text(s, width) => {
                e.u8(1).str(s).u32(u32::try_from(*width).unwrap_or(u32::MAX));
            }
            Attr::NotApplicable(width) => {
                e.u8(2).u32(u32::try_from(*width).unwrap_or(u32::MAX));
            }
        }
    }
}

/// Decodes MQINQ's answer.
///
/// # Errors
/// [`FrameError::Malformed`].
pub fn decode_attrs(d: &mut Decoder<'_>, body_len: usize) -> Result<Vec<Attr>, FrameError> {
    let n = d.u32()? as usize;
    if n > body_len {
        return Err(d.bad("attribute count past the end of the frame"));
    }
    let mut attrs = Vec::with_capacity(n);
    for _ in 0..n {
        attrs.push(match d.u8()? {
            0 => Attr::Int(d.i32()?),
            1 => Attr::Text(d.str()?, d.u32()? as usize),
            2 => Attr::NotApplicable(d.u32()? as usize),
            _ => return Err(d.bad("unknown attribute tag")),
        });
    }
    Ok(attrs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn roundtrip(r: &Request) -> Request {
        let mut e = Encoder::default();
        r.encode(&mut e);
        let frame = e.finish().to_vec();
        let mut body = Vec::new();
        let k = read_frame(&mut frame.as_slice(), &mut body).expect("read");
        Request::decode(k, &body).expect("decode")
    }

    #[test]
    fn every_request_decodes_to_itself() {
        let md = vec![7u8; MD_BYTES];
        let requests = [
            Request::Connect {
                token: 42,
                req: WireConnect {
                    qmgr_name: "QM1".into(),
                    channel: Some("APP.SVRCONN".into()),
                    client_sharecnv: Some(10),
                    user: Some("app".into()),
                    password: None,
                    appl_name: "orders".into(),
                },
            },
            Request::Disc { hconn: 3 },
            Request::Open {
                hconn: 1,
                object_type: 1,
                name: "ORDERS.IN".into(),
                options: 8,
            },
            Request::Close { hconn: 1, hobj: 2 },
            Request::Put {
                hconn: 1,
                hobj: 2,
                options: 2,
                md: md.clone(),
                data: b"hello".to_vec(),
            },
            Request::Put1 {
                hconn: 1,
                object_type: 1,
                name: "Q".into(),
                options: 4,
                md: md.clone(),
                data: vec![],
            },
            Request::Get {
                hconn: 1,
                hobj: 2,
                options: 3,
                wait_interval: -1,
                match_options: 3,
                buffer_len: 65536,
                md,
            },
            Request::Inq {
                hconn: 1,
                hobj: 2,
                selectors: vec![13, 15, 2016],
            },
            Request::Cmit { hconn: 9 },
            Request::Back { hconn: 9 },
            Request::Other,
            Request::Admin(br#"{"op":"status"}"#.to_vec()),
        ];
        for r in &requests {
            assert_eq!(&roundtrip(r), r);
        }
    }

    #[test]
    fn a_wrong_version_is_refused_before_the_body_is_read() {
        let frame = [10, 0, 0, 0, 9, kind::DISC];
        let err = read_frame(&mut frame.as_slice(), &mut Vec::new()).unwrap_err();
        assert!(matches!(err, FrameError::Version(9)), "{err}");
        assert!(err.to_string().contains("unsupported protocol version 9"));
    }

    #[test]
    fn an_oversized_length_is_refused_without_allocating() {
        let frame = [0xff, 0xff, 0xff, 0xff, VERSION, kind::PUT];
        let err = read_frame(&mut frame.as_slice(), &mut Vec::new()).unwrap_err();
        assert!(matches!(err, FrameError::Size(0xffff_ffff)), "{err}");
    }

    #[test]
    fn a_selector_count_past_the_body_is_malformed() {
        let mut e = Encoder::frame(kind::INQ);
        e.i32(1).i32(1).u32(u32::MAX);
        let frame = e.finish().to_vec();
        let err = Request::decode(kind::INQ, &frame[6..]).unwrap_err();
        assert!(err.to_string().contains("malformed MQINQ frame"), "{err}");
    }

    proptest! {
        #[test]
        fn random_bodies_never_panic(k in any::<u8>(), body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Request::decode(k, &body);
        }

        #[test]
        fn truncated_frames_are_errors(cut in 0usize..60) {
            let mut e = Encoder::default();
            Request::Open { hconn: 1, object_type: 1, name: "ORDERS.IN".into(), options: 8 }.encode(&mut e);
            let frame = e.finish().to_vec();
            let cut = cut.min(frame.len() - 1);
            let mut body = Vec::new();
            let result = read_frame(&mut &frame[..cut], &mut body)
                .and_then(|k| Request::decode(k, &body));
            prop_assert!(result.is_err());
        }
    }
}
