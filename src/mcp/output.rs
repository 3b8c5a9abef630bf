//! How a tool's result goes out: structured content plus the same JSON as text.
//!
//! [`Json`] replaces rmcp's wrapper of the same name (the `#[tool]` macro derives a tool's
//! output schema from a return type spelled `Json<T>`, so the name is kept). The result is
//! the same; it is cheaper to write: the text comes from one serialization into a buffer
//! sized for it, not from formatting the structured value through `Display`, and message
//! lists move their strings into the structured value instead of copying them. A result can
//! also be built ahead of time ([`Prepared`]): a receive builds its whole answer before it
//! commits, so nothing slow stands between MQCMIT and the answer.
//!
//! Every payload is in a result twice, as a JSON string in the structured content and as
//! that string escaped again in the text. [`text_cost`] and [`base64_cost`] say exactly what
//! it adds, so `limits.max_result_bytes` bounds the size of the message an MCP client reads.

use rmcp::ErrorData;
use rmcp::handler::server::tool::IntoCallToolResult;
use rmcp::model::{CallToolResponse, CallToolResult, ContentBlock};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};

/// A tool's successful result: `T` as structured content and as JSON text, or that result
/// already built ([`Json::built`]).
pub struct Json<T>(Body<T>);

enum Body<T> {
    Value(T),
    Built(CallToolResult),
}

impl<T> Json<T> {
    /// `value`, written out when rmcp asks for the result.
    #[must_use]
    pub const fn new(value: T) -> Self {
        Self(Body::Value(value))
    }

    /// A result built ahead of time from a value of type `T` (see [`Prepared`]).
    #[must_use]
    pub fn built(result: CallToolResult) -> Self {
        Self(Body::Built(result))
    }
}

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

/// Room kept at the end of a prepared text for the fields added after a commit, so adding
/// them does not copy the text.
const LATE_BYTES: usize = 2 * 1024;

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

/// `value` as a tool result: structured content and the same JSON as text.
///
/// # Errors
/// A value serde_json cannot represent.
pub fn build<T: Structured>(value: T) -> Result<CallToolResult, serde_json::Error> {
    let value = value.into_value()?;
    let text = text_of(&value, 0)?;
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(value);
    Ok(result)
}

/// `value` as JSON text, with `spare` bytes of room left after it.
fn text_of(value: &impl Serialize, spare: usize) -> Result<String, serde_json::Error> {
    let mut text = Vec::with_capacity(TEXT_BYTES);
    serde_json::to_writer(&mut text, value)?;
    text.reserve_exact(spare);
    // serde_json writes only valid UTF-8.
    String::from_utf8(text).map_err(serde::ser::Error::custom)
}

/// A result written out before the last few of its fields are known: the rest is in its
/// final form, and [`Prepared::finish`] adds those fields at the end of the text (JSON does
/// not order an object's fields) without copying what is there.
#[derive(Debug)]
pub struct Prepared {
    value: Map<String, Value>,
    /// The text of `value`, without its closing brace.
    text: String,
}

impl Prepared {
    /// `value`, which must be a JSON object, written out.
    ///
    /// # Errors
    /// A value serde_json cannot represent, or one that is not an object.
    pub fn new<T: Structured>(value: T) -> Result<Self, serde_json::Error> {
        let Value::Object(value) = value.into_value()? else {
            return Err(serde::ser::Error::custom("a result must be a JSON object"));
        };
        let mut text = text_of(&value, LATE_BYTES)?;
        text.pop();
        Ok(Self { value, text })
    }

    /// The result, with the fields `late` (none of which it has yet) added.
    #[must_use]
    pub fn finish(self, late: Vec<(&'static str, Value)>) -> CallToolResult {
        let Self { mut value, mut text } = self;
        for (key, field) in late {
            if !text.ends_with('{') {
                text.push(',');
            }
            text.push_str(&Value::String(key.to_owned()).to_string());
            text.push(':');
            text.push_str(&field.to_string());
            value.insert(key.to_owned(), field);
        }
        text.push('}');
        let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
        result.structured_content = Some(Value::Object(value));
        result
    }
}

impl<T: Structured + JsonSchema + 'static> IntoCallToolResult for Json<T> {
    fn into_call_tool_result(self) -> Result<CallToolResponse, ErrorData> {
        match self.0 {
            Body::Built(result) => Ok(result.into()),
            Body::Value(value) => build(value)
                .map(Into::into)
                .map_err(|e| ErrorData::internal_error(format!("the result could not be written as JSON: {e}"), None)),
        }
    }
}

/// What a payload's quotes add to a result: `""` in the structured content and `\"\"`
/// in the text.
pub const QUOTES_COST: usize = 6;

/// `data` as text, if it may be sent so: valid UTF-8 with no control character other than
/// tab, line feed and carriage return. JSON writes the others as six-byte `\u00XX`
/// escapes, which the text copy escapes again: thirteen bytes in the result for each byte
/// of payload, against under three for base64. A payload `cut` at a byte count may end
/// inside a character: that character is left out.
#[must_use]
pub fn as_text(data: &[u8], cut: bool) -> Option<&str> {
    let text = match std::str::from_utf8(data) {
        Ok(text) => text,
        // Only an incomplete last character, no invalid byte.
        Err(e) if cut && e.error_len().is_none() => std::str::from_utf8(&data[..e.valid_up_to()]).ok()?,
        Err(_) => return None,
    };
    text.bytes()
        .all(|b| b >= b' ' || matches!(b, b'\t' | b'\n' | b'\r'))
        .then_some(text)
}

/// The longest start of `text`, whole characters, whose [`text_cost`] is at most `budget`.
#[must_use]
pub fn text_within(text: &str, budget: usize) -> &str {
    let mut cost = QUOTES_COST;
    for (i, c) in text.char_indices() {
        let mut bytes = [0; 4];
        cost += c.encode_utf8(&mut bytes).bytes().map(byte_cost).sum::<usize>();
        if cost > budget {
            return &text[..i];
        }
    }
    text
}

/// What the payload `text` adds to a result, exactly as serde_json writes it: its JSON
/// string in the structured content, and that string escaped again in the text.
#[must_use]
pub fn text_cost(text: &str) -> usize {
    QUOTES_COST + text.bytes().map(byte_cost).sum::<usize>()
}

/// What one byte of a text payload costs: 2; a quote or backslash 6 (`\"`, then `\\\"`);
/// a tab, line feed, carriage return, backspace or form feed 5 (`\n`, then `\\n`); any
/// other control character 13 (`\u0001`, then `\\u0001`). Bytes of other characters
/// are written as they are.
const fn byte_cost(b: u8) -> usize {
    match b {
        b'"' | b'\\' => 6,
        b'\t' | b'\n' | b'\r' | 0x08 | 0x0c => 5,
        0..0x20 => 13,
        _ => 2,
    }
}

/// What a payload of `bytes` bytes adds to a result in base64: twice its base64 string
/// (whose characters JSON never escapes) and the quotes.
#[must_use]
pub const fn base64_cost(bytes: usize) -> usize {
    QUOTES_COST + 2 * 4 * bytes.div_ceil(3)
}

/// The longest payload that fits in `budget` bytes of a result however it is encoded:
/// base64 is the most a payload sent as text or base64 can cost (a text payload that would
/// cost more goes as base64).
#[must_use]
pub const fn fits(budget: usize) -> usize {
    budget.saturating_sub(QUOTES_COST) / 8 * 3
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Serialize, JsonSchema)]
    struct Shape {
        name: String,
        quote: String,
        n: u32,
    }

    impl Structured for Shape {}

    fn shape() -> Shape {
        Shape {
            name: "Q1".into(),
            quote: "a \"quoted\" é\n".into(),
            n: 7,
        }
    }

    fn complete(r: CallToolResponse) -> CallToolResult {
        match r {
            CallToolResponse::Complete(r) => r,
            _ => panic!("a complete result"),
        }
    }

    #[test]
    fn text_and_structured_content_are_the_same_json_as_rmcp_writes() {
        let ours = complete(Json::new(shape()).into_call_tool_result().expect("result"));
        let rmcp = complete(rmcp::Json(shape()).into_call_tool_result().expect("result"));
        assert_eq!(ours, rmcp);
        let built = complete(
            Json::<Shape>::built(build(shape()).expect("built"))
                .into_call_tool_result()
                .expect("result"),
        );
        assert_eq!(built, rmcp);
    }

    #[test]
    fn a_prepared_result_gets_its_late_fields_at_the_end_of_the_same_json() {
        let whole = complete(rmcp::Json(shape()).into_call_tool_result().expect("result"));
        let early = serde_json::json!({"name": "Q1", "quote": "a \"quoted\" é\n"});
        let prepared = Prepared::new(early).expect("prepared");
        let done = prepared.finish(vec![("n", 7.into())]);
        assert_eq!(done.structured_content, whole.structured_content);
        let text = done.content[0].as_text().expect("text").text.clone();
        assert!(text.ends_with(",\"n\":7}"), "{text}");
        let parsed: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(Some(parsed), whole.structured_content);
        let empty = Prepared::new(serde_json::json!({})).expect("prepared");
        let text = empty.finish(vec![("a", "b".into())]).content[0]
            .as_text()
            .expect("text")
            .text
            .clone();
        assert_eq!(text, r#"{"a":"b"}"#);
        assert!(Prepared::new(serde_json::json!([1])).is_err(), "only an object");
    }

    /// What `payload` adds to a result as serde_json writes it: its JSON string, plus that
    /// string escaped again inside the text (whose own quotes are not the payload's).
    fn written(payload: &str) -> usize {
        let structured = serde_json::to_string(payload).expect("json");
        structured.len() + serde_json::to_string(&structured).expect("json").len() - 2
    }

    proptest! {
        #[test]
        fn text_cost_is_what_serde_json_writes(payload in any::<String>()) {
            prop_assert_eq!(text_cost(&payload), written(&payload));
        }

        #[test]
        fn base64_cost_is_what_serde_json_writes(data in proptest::collection::vec(any::<u8>(), 0..100)) {
            use base64::Engine as _;
            let encoded = base64::engine::general_purpose::STANDARD.encode(&data);
            prop_assert_eq!(base64_cost(data.len()), written(&encoded));
        }

        #[test]
        fn fits_is_the_longest_payload_base64_keeps_within_the_budget(budget in 0usize..100_000) {
            let n = fits(budget);
            prop_assert!(n == 0 || base64_cost(n) <= budget);
            prop_assert!(base64_cost(n + 1) > budget);
        }

        #[test]
        fn text_within_is_the_longest_start_that_fits(text in any::<String>(), budget in 0usize..200) {
            let start = text_within(&text, budget);
            prop_assert!(text.starts_with(start));
            prop_assert!(start.is_empty() || text_cost(start) <= budget);
            if let Some(next) = text[start.len()..].chars().next() {
                prop_assert!(text_cost(&text[..start.len() + next.len_utf8()]) > budget);
            }
        }
    }

    #[test]
    fn only_text_without_control_characters_but_tab_and_line_breaks_is_text() {
        assert_eq!(as_text(b"a\tb\r\n\"c\"", false), Some("a\tb\r\n\"c\""));
        assert_eq!(as_text(b"CUST0001\0\0\0", false), None);
        assert_eq!(as_text(b"\x1b[0m", false), None);
        assert_eq!(as_text(&[0xff, 0xfe], false), None);
        // "Grüße" cut after 3 bytes ends inside the ü.
        let gruesse = "Grüße".as_bytes();
        assert_eq!(as_text(&gruesse[..3], false), None);
        assert_eq!(as_text(&gruesse[..3], true), Some("Gr"));
        assert_eq!(as_text(&gruesse[..4], true), Some("Grü"));
        assert_eq!(as_text(&[b'a', 0xff, b'b'], true), None, "an invalid byte is not a cut");
        assert_eq!(as_text(&[b'a', 0, 0xc3], true), None);
    }
}
