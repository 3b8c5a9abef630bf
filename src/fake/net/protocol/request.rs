//! The requests a client sends, and MQINQ's answer, as frame bodies.
//!
//! Encoding and decoding are exact inverses (tested below); a body that does not match its
//! kind is a [`FrameError::Malformed`] naming the verb.

use super::super::super::verbs::{Attr, ConnectRequest, GetOptions, MAX_CSP_LENGTH, ObjectRef};
use super::frame::{Decoder, Encoder, FrameError, kind, kind_name};

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
    /// MQGET with a buffer of `buffer_len` bytes, and up to `ahead` more messages on the
    /// same terms when it qualifies for read-ahead (0: just this one).
    Get {
        hconn: i32,
        hobj: i32,
        options: i32,
        wait_interval: i32,
        match_options: i32,
        buffer_len: u32,
        md: Vec<u8>,
        ahead: u32,
    },
    /// MQINQ.
    Inq { hconn: i32, hobj: i32, selectors: Vec<i32> },
    /// MQCMIT.
    Cmit { hconn: i32 },
    /// MQBACK.
    Back { hconn: i32 },
    /// Release the last `count` messages the latest read-ahead fetched (no reply).
    Release { hconn: i32, count: u32 },
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
    /// Client MaxMsgLength (from its MQCD).
    pub client_max_msg_length: Option<u32>,
    /// CONNAUTH user.
    pub user: Option<String>,
    /// CONNAUTH password (the fake is for loopback and test networks; it is sent as is).
    pub password: Option<String>,
    /// Application name.
    pub appl_name: String,
}

impl WireConnect {
    /// The fields of `req` that the client decides, the application name cut to MQ's 28
    /// characters ([`ConnectRequest::mq_appl_name`]). The other strings must be within MQ's
    /// lengths ([`ConnectRequest::check_lengths`]), or the server refuses the frame.
    #[must_use]
    pub fn from_request(req: &ConnectRequest) -> Self {
        Self {
            qmgr_name: req.qmgr_name.clone(),
            channel: req.channel.clone(),
            client_sharecnv: req.client_sharecnv,
            client_max_msg_length: req.client_max_msg_length,
            user: req.user.clone(),
            password: req.password.clone(),
            appl_name: req.mq_appl_name().to_owned(),
        }
    }

    /// Decodes an MQCONNX body after its token.
    fn decode(d: &mut Decoder<'_>) -> Result<Self, FrameError> {
        // The longest MQCONNX strings a frame may carry, in characters: the MQI's fixed fields
        // (MQCHAR48 queue manager name, MQCHAR20 channel name, MQCHAR28 application name) and
        // the MQCSP user id and password. A longer one is a malformed frame: no MQI client can
        // send it, and the server would keep the application name for `status`.
        const CREDENTIAL: &str = "user id or password longer than 1024 characters";
        let qmgr_name = d.str_at_most(
            libmqm_sys::MQ_Q_MGR_NAME_LENGTH,
            "queue manager name longer than 48 characters",
        )?;
        let channel = d.opt_str_at_most(
            libmqm_sys::MQ_CHANNEL_NAME_LENGTH,
            "channel name longer than 20 characters",
        )?;
        let has_sharecnv = d.u8()? != 0;
        let sharecnv = d.u32()?;
        let max_msg_length = d.u32()?;
        Ok(Self {
            qmgr_name,
            channel,
            client_sharecnv: has_sharecnv.then_some(sharecnv),
            client_max_msg_length: (max_msg_length > 0).then_some(max_msg_length),
            user: d.opt_str_at_most(MAX_CSP_LENGTH, CREDENTIAL)?,
            password: d.opt_str_at_most(MAX_CSP_LENGTH, CREDENTIAL)?,
            appl_name: d.str_at_most(
                libmqm_sys::MQ_APPL_NAME_LENGTH,
                "application name longer than 28 characters",
            )?,
        })
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
            client_max_msg_length: self.client_max_msg_length,
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
                    .u32(req.client_max_msg_length.unwrap_or(0))
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
                ahead,
            } => {
                e.start(kind::GET);
                e.i32(*hconn)
                    .i32(*hobj)
                    .i32(*options)
                    .i32(*wait_interval)
                    .i32(*match_options)
                    .u32(*buffer_len)
                    .bytes(md)
                    .u32(*ahead);
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
            Self::Release { hconn, count } => {
                e.start(kind::RELEASE);
                e.i32(*hconn).u32(*count);
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
            kind::CONNECT => Self::Connect {
                token: d.u64()?,
                req: WireConnect::decode(&mut d)?,
            },
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
                ahead: d.u32()?,
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
            kind::RELEASE => Self::Release {
                hconn: d.i32()?,
                count: d.u32()?,
            },
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
    use crate::fake::net::protocol::{MD_BYTES, VERSION, read_frame};
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
                    client_max_msg_length: Some(104_857_600),
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
                ahead: 49,
            },
            Request::Inq {
                hconn: 1,
                hobj: 2,
                selectors: vec![13, 15, 2016],
            },
            Request::Cmit { hconn: 9 },
            Request::Back { hconn: 9 },
            Request::Release { hconn: 9, count: 14 },
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

    /// The body of an MQCONNX frame with `req`.
    fn connect_body(req: WireConnect) -> Vec<u8> {
        let mut e = Encoder::default();
        Request::Connect { token: 1, req }.encode(&mut e);
        e.finish()[6..].to_vec()
    }

    #[test]
    fn mqconnx_strings_longer_than_mqs_are_malformed() {
        let at_limit = WireConnect {
            qmgr_name: "Q".repeat(48),
            channel: Some("C".repeat(20)),
            user: Some("u".repeat(1024)),
            password: Some("p".repeat(1024)),
            appl_name: "é".repeat(28),
            ..WireConnect::default()
        };
        let decoded = Request::decode(kind::CONNECT, &connect_body(at_limit.clone())).expect("at MQ's limits");
        assert_eq!(
            decoded,
            Request::Connect {
                token: 1,
                req: at_limit.clone()
            }
        );
        let cases = [
            (
                WireConnect {
                    qmgr_name: "Q".repeat(49),
                    ..at_limit.clone()
                },
                "queue manager name",
            ),
            (
                WireConnect {
                    channel: Some("C".repeat(21)),
                    ..at_limit.clone()
                },
                "channel name",
            ),
            (
                WireConnect {
                    user: Some("u".repeat(1025)),
                    ..at_limit.clone()
                },
                "user id or password",
            ),
            (
                WireConnect {
                    password: Some("p".repeat(1025)),
                    ..at_limit.clone()
                },
                "user id or password",
            ),
            (
                WireConnect {
                    appl_name: "é".repeat(29),
                    ..at_limit.clone()
                },
                "application name longer than 28",
            ),
        ];
        for (req, what) in cases {
            let err = Request::decode(kind::CONNECT, &connect_body(req))
                .unwrap_err()
                .to_string();
            assert!(err.contains("malformed MQCONNX frame") && err.contains(what), "{err}");
        }
        // A length no 28 characters can take is refused from its prefix alone.
        let mut e = Encoder::frame(kind::CONNECT);
        e.u64(1).str("").u8(0).u8(0).u32(0).u32(0).u8(0).u8(0).u32(60 << 20);
        let frame = e.finish().to_vec();
        let err = Request::decode(kind::CONNECT, &frame[6..]).unwrap_err().to_string();
        assert!(err.contains("application name longer than 28"), "{err}");
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
