//! The MQI verbs in safe Rust as one trait, so the `Mqi` adapter can call them on an
//! in-process [`FakeQm`] or on a `mqpilot fake-qm` server over TCP.
//!
//! The adapter (`adapter.rs`) does all the C-structure work and then calls one of these; the
//! answer is what the fake's verb answers, whichever side of the network it ran on.

use libmqm_sys as mq;

use super::FakeQm;
use super::verbs::{Attr, ConnectRequest, GetOptions, Got, ObjectRef};

/// The MQI verbs in safe Rust: what [`MqiAdapter`](super::MqiAdapter) calls after reading the C structures.
///
/// Implemented by [`FakeQm`] (in process) and by the network client (`net::RemoteVerbs`).
/// Every method answers like the fake's verb of the same name: `Err(reason)` for MQCC_FAILED.
#[allow(clippy::missing_errors_doc)]
pub trait Verbs {
    /// MQCONNX.
    fn connect(&self, req: &ConnectRequest) -> Result<i32, i32>;
    /// MQDISC.
    fn disconnect(&self, hconn: i32) -> Result<(), i32>;
    /// MQOPEN.
    fn open(&self, hconn: i32, object: &ObjectRef, options: i32) -> Result<i32, i32>;
    /// MQCLOSE.
    fn close(&self, hconn: i32, hobj: i32) -> Result<(), i32>;
    /// MQPUT; fills MsgId, PutDate and PutTime in `md`.
    fn put(&self, hconn: i32, hobj: i32, md: &mut mq::MQMD, options: i32, data: &[u8]) -> Result<(), i32>;
    /// MQPUT1.
    fn put1(&self, hconn: i32, object: &ObjectRef, md: &mut mq::MQMD, options: i32, data: &[u8]) -> Result<(), i32>;
    /// MQGET into `buffer`.
    fn get(&self, hconn: i32, hobj: i32, md: &mut mq::MQMD, gmo: &GetOptions, buffer: &mut [u8]) -> Result<Got, i32>;
    /// MQINQ.
    fn inquire(&self, hconn: i32, hobj: i32, selectors: &[i32]) -> Result<Vec<Attr>, i32>;
    /// MQCMIT.
    fn commit(&self, hconn: i32) -> Result<(), i32>;
    /// MQBACK.
    fn backout(&self, hconn: i32) -> Result<(), i32>;
    /// Any verb the fake does not implement: the reason code to answer (2298).
    fn unsupported(&self) -> i32;
}

impl Verbs for FakeQm {
    fn connect(&self, req: &ConnectRequest) -> Result<i32, i32> {
        Self::connect(self, req)
    }
    fn disconnect(&self, hconn: i32) -> Result<(), i32> {
        Self::disconnect(self, hconn)
    }
    fn open(&self, hconn: i32, object: &ObjectRef, options: i32) -> Result<i32, i32> {
        Self::open(self, hconn, object, options)
    }
    fn close(&self, hconn: i32, hobj: i32) -> Result<(), i32> {
        Self::close(self, hconn, hobj)
    }
    fn put(&self, hconn: i32, hobj: i32, md: &mut mq::MQMD, options: i32, data: &[u8]) -> Result<(), i32> {
        Self::put(self, hconn, hobj, md, options, data)
    }
    fn put1(&self, hconn: i32, object: &ObjectRef, md: &mut mq::MQMD, options: i32, data: &[u8]) -> Result<(), i32> {
        Self::put1(self, hconn, object, md, options, data)
    }
    fn get(&self, hconn: i32, hobj: i32, md: &mut mq::MQMD, gmo: &GetOptions, buffer: &mut [u8]) -> Result<Got, i32> {
        Self::get(self, hconn, hobj, md, gmo, buffer)
    }
    fn inquire(&self, hconn: i32, hobj: i32, selectors: &[i32]) -> Result<Vec<Attr>, i32> {
        Self::inquire(self, hconn, hobj, selectors)
    }
    fn commit(&self, hconn: i32) -> Result<(), i32> {
        Self::commit(self, hconn)
    }
    fn backout(&self, hconn: i32) -> Result<(), i32> {
        Self::backout(self, hconn)
    }
    fn unsupported(&self) -> i32 {
        Self::unsupported(self)
    }
}
