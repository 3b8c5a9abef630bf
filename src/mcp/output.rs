//! How a tool's result goes out: structured content plus the same JSON as text.
//!
//! [`Json`] replaces rmcp's wrapper of the same name (the `#[tool]` macro derives a tool's
//! output schema from a return type spelled `Json<T>`, so the name is kept). The result is
//! the same; it is cheaper to write: the text comes from one serialization into a buffer
//! sized for it, not from formatting the structured value through `Display`, and message
//! lists move their strings into the structured value instead of copying them.

use rmcp::ErrorData;
use rmcp::handler::server::tool::IntoCallToolResult;
use rmcp::model::{CallToolResponse, CallToolResult, ContentBlock};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

/// A tool's successful result: `T` as structured content and as JSON text.
pub struct Json<T>(pub T);

impl<T: JsonSchema> JsonSchema for Json<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

/// Starting size of the text buffer: a browse of ten short messages fits.
const TEXT_BYTES: usize = 8 * 1024;

/// A result that becomes its structured value. By default it is serialized by reference
/// (every string copied); message lists move their strings in instead.
pub trait Structured: Serialize + Sized {
    /// The result as a JSON value.
    ///
    /// # Errors
    /// A value serde_json cannot represent.
    fn into_value(self) -> Result<Value, serde_json::Error> {
        serde_json::to_value(&self)
    }
}

impl<T: Structured + JsonSchema + 'static> IntoCallToolResult for Json<T> {
    fn into_call_tool_result(self) -> Result<CallToolResponse, ErrorData> {
        let failed = |e: serde_json::Error| {
            ErrorData::internal_error(format!("the result could not be written as JSON: {e}"), None)
        };
        let value = self.0.into_value().map_err(failed)?;
        let mut text = Vec::with_capacity(TEXT_BYTES);
        serde_json::to_writer(&mut text, &value).map_err(failed)?;
        // serde_json writes only valid UTF-8.
        let text = String::from_utf8(text).map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
        result.structured_content = Some(value);
        Ok(result.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, JsonSchema)]
    struct Shape {
        name: String,
        quote: String,
        n: u32,
    }

    impl Structured for Shape {}

    #[test]
    fn text_and_structured_content_are_the_same_json_as_rmcp_writes() {
        let shape = || Shape {
            name: "Q1".into(),
            quote: "a \"quoted\" é\n".into(),
            n: 7,
        };
        let complete = |r: CallToolResponse| match r {
            CallToolResponse::Complete(r) => r,
            _ => panic!("a complete result"),
        };
        let ours = complete(Json(shape()).into_call_tool_result().expect("result"));
        let rmcp = complete(rmcp::Json(shape()).into_call_tool_result().expect("result"));
        assert_eq!(ours, rmcp);
    }
}
