//! What a refused or failed tool call returns, and how tool arguments are read.
//!
//! Arguments that do not match their schema or are out of range are JSON-RPC invalid-params
//! errors and the tool does not run; refusals (policy, credential, limits) and MQ failures
//! are tool results with `isError: true` whose text is a [`Failure`] as JSON, naming the rule
//! or the reason code with its meaning and advice. An error carries no structured content:
//! clients check structured content against the tool's output schema, which describes its
//! successful result. A call refused while its arguments are read is audited here, since
//! its tool never runs.

use std::sync::Arc;

use rmcp::ErrorData;
use rmcp::handler::server::common::{FromContextPart, schema_for_input};
use rmcp::handler::server::tool::{IntoCallToolResult, ToolCallContext};
use rmcp::model::{CallToolResponse, CallToolResult, ContentBlock, JsonObject};

use super::audit::{self, Outcome};
use super::auth::Caller;
use super::schema::Failure;
use crate::Error;

/// A refused or failed call.
#[derive(Debug)]
pub enum Fail {
    /// Arguments out of range: a JSON-RPC invalid-params error.
    Invalid(String),
    /// A tool error (`isError: true`) with what the agent needs to act on it.
    Tool(Box<Failure>, Outcome),
}

impl IntoCallToolResult for Fail {
    fn into_call_tool_result(self) -> Result<CallToolResponse, ErrorData> {
        match self {
            Self::Invalid(message) => Err(ErrorData::invalid_params(message, None)),
            Self::Tool(failure, _) => {
                let text = serde_json::to_string(&failure).map_err(|e| {
                    ErrorData::internal_error(format!("the failure could not be written as JSON: {e}"), None)
                })?;
                Ok(CallToolResult::error(vec![ContentBlock::text(text)]).into())
            }
        }
    }
}

/// Tool arguments that must match their schema: a mismatch (missing field, wrong type,
/// unknown field) is a JSON-RPC invalid-params error, like an out-of-range value, and the
/// tool does not run. The call is audited as `invalid`, with its queue when the arguments
/// name one as text.
pub struct Args<T>(pub T);

impl<S, T: serde::de::DeserializeOwned> FromContextPart<ToolCallContext<'_, S>> for Args<T> {
    fn from_context_part(context: &mut ToolCallContext<'_, S>) -> Result<Self, ErrorData> {
        let arguments = context.arguments.take().unwrap_or_default();
        // Copied before the arguments are consumed, for the audit line of a refusal.
        let queue = arguments
            .get("queue")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned);
        serde_path_to_error::deserialize(serde_json::Value::Object(arguments))
            .map(Args)
            .map_err(|e| {
                let who = Caller::of(&context.request_context);
                audit::record(&who, &context.name, queue.as_deref(), Outcome::Invalid, None);
                ErrorData::invalid_params(argument_error(&e), None)
            })
    }
}

/// What is wrong with the arguments, naming the argument: serde names a missing or unknown
/// field itself, but not the field whose value has the wrong type.
fn argument_error(e: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = e.path().to_string();
    if path == "." {
        format!("invalid arguments: {}", e.inner())
    } else {
        format!("invalid arguments: `{path}`: {}", e.inner())
    }
}

/// The input schema of `T`, for the `#[tool]` attributes.
pub(crate) fn input<T: schemars::JsonSchema + 'static>() -> Arc<JsonObject> {
    schema_for_input::<T>().unwrap_or_else(|e| panic!("input schema of {}: {e}", std::any::type_name::<T>()))
}

pub(crate) fn failure(error: String) -> Failure {
    Failure {
        error,
        reason_code: None,
        reason_name: None,
        meaning: None,
        advice: None,
        rule: None,
    }
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        let mut f = failure(e.to_string());
        if let Some(reason) = e.reason() {
            f.reason_code = Some(reason.0);
            f.reason_name = Some(reason.name().to_owned());
            if let Some(info) = reason.info() {
                f.meaning = Some(info.meaning.to_owned());
                f.advice = Some(info.advice.to_owned());
            }
        }
        Self::Tool(Box::new(f), Outcome::Failed)
    }
}

pub(crate) fn invalid<T>(message: impl Into<String>) -> Result<T, Fail> {
    Err(Fail::Invalid(message.into()))
}

pub(crate) fn in_range(name: &str, value: Option<u32>, default: u32, max: u32, min: u32) -> Result<u32, Fail> {
    let v = value.unwrap_or(default);
    if v < min || v > max {
        return invalid(format!("{name} must be {min}..={max}, got {v}"));
    }
    Ok(v)
}
