//! The polling connector: per-queue pollers that receive under syncpoint, hand batches to a
//! sink, commit only after the sink succeeded, and move poison messages aside.

pub mod sink;

mod counters;
pub mod poller;

pub use counters::{QueueCounters, QueueTotals};
pub mod run;
