//! One audit line per tool call: caller, tool, queue, outcome, reason code.
//!
//! Lines go to the `mqpilot::audit` tracing target at info level (so `RUST_LOG` and
//! `--log-format json` apply). They never carry payloads, arguments other than the queue, or
//! credentials: the caller is the token's name or the JWT subject.

use super::auth::Caller;

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It did what was asked.
    Ok,
    /// The policy or the caller's credential refused it; MQ was not called.
    Denied,
    /// MQ or the arguments refused it.
    Failed,
    /// Its arguments did not match the tool's schema (a missing, unknown or mistyped field):
    /// nothing ran.
    Invalid,
}

impl Outcome {
    const fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Denied => "denied",
            Self::Failed => "failed",
            Self::Invalid => "invalid",
        }
    }
}

/// Writes the audit line of one call.
pub fn record(caller: &Caller, tool: &str, queue: Option<&str>, outcome: Outcome, reason_code: Option<i32>) {
    tracing::info!(
        target: "mqpilot::audit",
        caller = %caller.name,
        tool,
        // A name MQ could not take is logged as such, never echoed at whatever length it came.
        queue = queue.map_or("", |q| if crate::mq::is_valid_name(q) { q } else { "<invalid name>" }),
        outcome = outcome.name(),
        reason_code = reason_code.unwrap_or(0),
        "tool call"
    );
}
