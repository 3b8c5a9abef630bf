//! Frames: the length-prefixed, versioned envelope, and the values inside a body.
//!
//! Decoding never trusts a length: every count and size is checked against the bytes that
//! are really there before anything is allocated, and every failure is a [`FrameError`] that
//! says what was wrong.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// The protocol version this build speaks.
pub const VERSION: u8 = 4;

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
    /// No frame began within the idle limit ([`read_frame_idle`]).
    #[error("no frame for {0:?}")]
    Idle(Duration),
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
    /// Give back messages a read-ahead fetched and the client did not hand out (no reply).
    pub const RELEASE: u8 = 12;
    /// An admin request (JSON body).
    pub const ADMIN: u8 = 32;
    /// The answer to a request.
    pub const REPLY: u8 = 128;
    /// The server refuses the connection's last frame and closes it (UTF-8 text body).
    pub const ERROR: u8 = 129;
    /// Sent unasked: stop handing out messages fetched ahead (empty body).
    pub const REVOKE: u8 = 130;
}

/// An MQMD as the protocol carries it.
#[must_use]
pub fn encode_md(md: &libmqm_sys::MQMD) -> Vec<u8> {
    super::super::super::adapter::md_to_bytes(md).to_vec()
}

/// An MQMD from the protocol's bytes; `None` unless exactly [`MD_BYTES`] long.
#[must_use]
pub fn decode_md(bytes: &[u8]) -> Option<libmqm_sys::MQMD> {
    super::super::super::adapter::md_from_bytes(bytes)
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

    /// Bytes written so far, frame header included: where the next value will start.
    #[must_use]
    pub const fn position(&self) -> usize {
        self.buf.len()
    }

    /// Overwrites the u32 written at `at` (a [`Encoder::position`] taken before writing it),
    /// for a count known only once what it counts is written.
    pub fn set_u32(&mut self, at: usize, v: u32) {
        self.buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    /// Frees the buffer when it grew past `bytes` for a large frame, so that a long-lived
    /// connection does not keep its largest frame's memory while it idles.
    pub fn release_above(&mut self, bytes: usize) {
        if self.buf.capacity() > bytes {
            self.buf = Vec::new();
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
    /// Bytes not read yet.
    #[must_use]
    pub const fn remaining(&self) -> usize {
        self.body.len()
    }

    /// Reads `body`, naming `kind` in errors.
    #[must_use]
    pub const fn new(body: &'a [u8], kind: &'static str) -> Self {
        Self { body, kind }
    }

    pub(super) const fn bad(&self, what: &'static str) -> FrameError {
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

    /// A string of at most `max` characters; `too_long` says what is wrong with a longer
    /// one. A length past what `max` characters can take is refused before the text is read.
    ///
    /// # Errors
    /// As [`Decoder::str`], or a longer string.
    pub fn str_at_most(&mut self, max: usize, too_long: &'static str) -> Result<String, FrameError> {
        let at = self.body;
        let len = self.u32()? as usize;
        if len > max.saturating_mul(4) {
            return Err(self.bad(too_long));
        }
        self.body = at;
        let s = self.str()?;
        if s.chars().nth(max).is_some() {
            return Err(self.bad(too_long));
        }
        Ok(s)
    }

    /// An optional string of at most `max` characters.
    ///
    /// # Errors
    /// As [`Decoder::str_at_most`], or a presence byte other than 0 or 1.
    pub fn opt_str_at_most(&mut self, max: usize, too_long: &'static str) -> Result<Option<String>, FrameError> {
        match self.u8()? {
            0 => Ok(None),
            1 => self.str_at_most(max, too_long).map(Some),
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

/// Reads one frame into `body` (reused between calls); returns its kind. A read timeout
/// is an error ([`FrameError::Io`]), as a client waiting for its answer needs.
///
/// # Errors
/// [`FrameError::Closed`] at a clean end of stream, [`FrameError::Io`] for a failure, a
/// timeout or an end inside a frame, [`FrameError::Size`] and [`FrameError::Version`] for a
/// bad header (the body is not read then: the caller closes the connection).
pub fn read_frame(r: &mut impl Read, body: &mut Vec<u8>) -> Result<u8, FrameError> {
    read(r, body, false, None)
}

/// As [`read_frame`], but a read timeout before the frame's first byte is an idle peer and
/// the wait goes on, up to `idle` in all (without limit when `None`); inside a frame it is a
/// stalled one and an error. For servers, whose socket timeout bounds how long a frame may
/// take once it started (and how late past `idle` the wait ends).
///
/// # Errors
/// As [`read_frame`], and [`FrameError::Idle`] once no frame began within `idle`.
pub fn read_frame_idle(r: &mut impl Read, body: &mut Vec<u8>, idle: Option<Duration>) -> Result<u8, FrameError> {
    read(r, body, true, idle)
}

fn read(r: &mut impl Read, body: &mut Vec<u8>, idle_ok: bool, idle: Option<Duration>) -> Result<u8, FrameError> {
    let started = Instant::now();
    let mut head = [0u8; 6];
    let mut got = 0;
    while got < head.len() {
        match r.read(&mut head[got..]) {
            Ok(0) if got == 0 => return Err(FrameError::Closed),
            Ok(0) => return Err(FrameError::Io(std::io::ErrorKind::UnexpectedEof.into())),
            Ok(n) => got += n,
            Err(e) if idle_ok && got == 0 && is_timeout(&e) => {
                if let Some(limit) = idle.filter(|l| started.elapsed() >= *l) {
                    return Err(FrameError::Idle(limit));
                }
            }
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
    // Memory grows with the bytes that really arrive, not with what the header claims: a
    // header alone cannot make the reader allocate a large frame.
    body.clear();
    let want = (len - 2) as u64;
    let got = r.take(want).read_to_end(body)?;
    if got as u64 != want {
        return Err(FrameError::Io(std::io::ErrorKind::UnexpectedEof.into()));
    }
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
        kind::RELEASE => "release",
        kind::ADMIN => "admin",
        kind::REPLY => "reply",
        kind::ERROR => "error",
        kind::REVOKE => "revoke",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Times out once, then yields `data`.
    struct Stalls<'a> {
        stalled: bool,
        data: &'a [u8],
    }

    impl Read for Stalls<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if !self.stalled {
                self.stalled = true;
                return Err(std::io::ErrorKind::WouldBlock.into());
            }
            self.data.read(buf)
        }
    }

    #[test]
    fn a_timeout_before_a_frame_is_an_error_for_clients_and_idle_for_servers() {
        let frame = [2, 0, 0, 0, VERSION, kind::OTHER];
        let mut body = Vec::new();
        let client = read_frame(
            &mut Stalls {
                stalled: false,
                data: &frame,
            },
            &mut body,
        );
        assert!(matches!(client, Err(FrameError::Io(_))), "{client:?}");
        let server = read_frame_idle(
            &mut Stalls {
                stalled: false,
                data: &frame,
            },
            &mut body,
            None,
        );
        assert_eq!(server.expect("read after the timeout"), kind::OTHER);
    }

    #[test]
    fn a_timeout_inside_a_frame_is_an_error_for_servers_too() {
        struct Half(bool);
        impl Read for Half {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0 {
                    return Err(std::io::ErrorKind::WouldBlock.into());
                }
                self.0 = true;
                buf[..3].copy_from_slice(&[2, 0, 0]);
                Ok(3)
            }
        }
        let result = read_frame_idle(&mut Half(false), &mut Vec::new(), None);
        assert!(matches!(result, Err(FrameError::Io(_))), "{result:?}");
    }
}
