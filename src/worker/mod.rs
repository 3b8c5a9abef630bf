//! The polling connector: per-queue pollers that receive under syncpoint, hand batches to a
//! sink, commit only after the sink succeeded, and move poison messages aside.
//!
//! - `config`: the worker's TOML file and its validation (file:line:field errors).
//! - `prepare`: from configuration to poll plans: queues checked, backout settings, sinks.
//! - `poller`: one poller's loop: checkouts, rounds, retries, reconnects, waiting for room.
//! - `round`: one round: receive, poison to the backout queue, deliver, commit or back out.
//! - `limits`: when a run ends on its own (`--until-empty`, `--max-messages` over all pollers).
//! - `run`: all pollers of a run, the summary.
//! - `sink`: where batches go (stdout, exec, http; the queue sink lives in a round).
//! - `demo`: the embedded demo queue manager.

pub mod config;
mod counters;
pub mod demo;
pub mod limits;
pub mod poller;
pub mod prepare;
mod round;
pub mod run;
pub mod sink;

pub use counters::{
    HISTOGRAM_BUCKETS, QueueCounters, QueueTotals, Unsynced, describe_metrics, undelivered_without_syncpoint,
};
