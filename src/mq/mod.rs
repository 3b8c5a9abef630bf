//! The MQ layer: the only module besides `fake` that names `mqi`/`libmqm_sys` types.
//!
//! It chooses the MQI implementation (IBM's client library loaded at run time, or the
//! in-process fake), explains reason codes and turns connection settings into MQCONNX
//! options. Everything above it speaks mqpilot's own types.

pub mod channel;
pub mod library;
pub mod message;
pub mod options;
pub mod put_fields;
pub mod reason;
pub mod session;

pub use library::MqLibrary;

/// Whether `name` can name an MQ queue: 1 to 48 characters of A-Z a-z 0-9 . / _ %. MQ reads a
/// name up to a NUL and ignores trailing blanks, so anything else could name a different queue
/// than the string says.
#[must_use]
pub fn is_valid_name(name: &str) -> bool {
    (1..=48).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._/%".contains(&b))
}

/// Turns an `mqi` failure into [`crate::Error::Mq`] about `object`, e.g.
/// `MQOPEN of ORDERS.IN failed: 2017 MQRC_HANDLE_NOT_AVAILABLE`.
#[must_use]
pub fn mq_error(error: &mqi::result::Error, object: impl Into<String>) -> crate::Error {
    crate::Error::Mq {
        verb: error.1,
        object: object.into(),
        reason: reason::Reason::from(error),
        detail: None,
    }
}
