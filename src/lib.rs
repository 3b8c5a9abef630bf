//! mqpilot: run IBM MQ consumers that cannot exhaust the queue manager, plan fleets before
//! they do, and test all of it against a faithful fake queue manager.
//!
//! - [`mq`]: the MQ layer: library selection (IBM or fake), reason codes, connection options,
//!   the MQSERVER client channel, a session (connection plus handles), the message type.
//! - [`fake`]: the pure-Rust fake queue manager: a safe state machine and its `Mqi` adapter;
//!   `fake::net` serves it over TCP (`mqpilot fake-qm`) with a client library and admin.
//! - [`pool`]: the bounded pool of MQ connections and the handle budget of each.
//! - [`worker`]: the polling connector: pollers, receive modes, sinks, poison handling.
//! - [`mcp`]: the MCP server: queues as tools for AI agents, policy, locks, HTTP and auth.
//! - [`plan`]: the capacity planner: fleet model, the math of connections, channel instances and
//!   handles, checks, reports, sweeps, charts, MQSC/KEDA emitters, validation on the fake (in
//!   process, or one process per instance on a `fake-qm` server).
//! - [`error`]: the crate's error type.
//! - `toml_location`: where a key sits in a TOML config file, for file:line:field errors; the
//!   names a setting of a few names takes, when it refuses a value.

pub mod error;
pub mod fake;
pub mod mcp;
pub mod mq;
pub mod plan;
pub mod pool;
pub(crate) mod toml_location;
pub mod worker;

pub use error::{Error, Result};
