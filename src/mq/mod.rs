//! The MQ layer: the only module besides `fake` that names `mqi`/`libmqm_sys` types.
//!
//! It chooses the MQI implementation (IBM's client library loaded at run time, or the
//! in-process fake), explains reason codes and turns connection settings into MQCONNX
//! options. Everything above it speaks mqpilot's own types.

pub mod library;
pub mod options;
pub mod reason;

pub use library::MqLibrary;
