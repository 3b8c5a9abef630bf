//! Where a setting sits in a TOML config file: its dotted name, line and column, for errors.
//!
//! A setting is named the way validation names fields: dotted, with each entry of an array of
//! tables indexed per parent, so `url` of the second queue's sink is `queue[1].sink.url`
//! whether the file writes `[[queue]]` and `[queue.sink]` headers, dotted keys, or inline
//! tables (`queue = [{...}, {name = "B", sink = {url = ...}}]`). Positions come from the
//! spans of the TOML parser, so a key is placed at its own line and column wherever it is
//! written. A name that is not written in the file is placed at the deepest table holding it
//! (its header, its key, or the `{` of an entry of an inline array), else nowhere: line and
//! column 0, which [`Error::Config`] leaves out. Parsing and checking a file stay with its config type; this
//! only places the errors, and words one kind of them: [`OneOf`], for a setting that takes
//! one of a few names, names them when a value is refused.

use std::cmp::Reverse;
use std::ops::Range;
use std::path::Path;

use toml::de::{DeTable, DeValue};

use crate::Error;

/// Reads a configuration file as text; [`Error::Io`] names it when it cannot be read.
pub(crate) fn read_text(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })
}

/// A TOML parse error as [`Error::Config`], named by the dotted key it is about: the key or
/// value the error points at (`queue[1].batch`), or, where serde reports the error at a
/// table (as it does inside an internally tagged table such as `[queue.sink]`), that table
/// and the key the message names (`queue[1].sink.url`), placed at the key when it is
/// written. Without either, the key or value the message quotes, else `document`. A file
/// that is not TOML at all is named by [`syntax_context`], never by a key the parser made up
/// while reading past the error.
pub(crate) fn parse_error(e: &toml::de::Error, text: &str, origin: &Path) -> Error {
    let message = e.message().trim().to_owned();
    let offset = e.span().map(|span| span.start);
    let at = offset.map_or((0, 0), |offset| line_col(text, offset));
    if DeTable::parse(text).is_err() {
        let field = offset.map_or_else(|| "document".to_owned(), |offset| syntax_context(text, offset));
        return config_error(origin, at, field, message);
    }
    let (field, (line, column)) = match offset.and_then(|offset| name_at(text, offset)) {
        Some(Named::Key(key)) => (key, at),
        Some(Named::Table(table)) => match key_named_in(&message) {
            Some(key) => {
                let field = if is_the_unknown_table(text, &table, key, &message) {
                    table
                } else {
                    dotted(&table, key)
                };
                let line_column = locate(text, &field).unwrap_or(at);
                (field, line_column)
            }
            None => value_named_in(&message)
                .and_then(|value| key_holding(text, &table, value))
                .unwrap_or((table, at)),
        },
        None => {
            let quoted = message.split('`').nth(1).unwrap_or("document");
            (quoted.to_owned(), at)
        }
    };
    config_error(origin, (line, column), field, message)
}

/// A checked file's error about dotted `field` as [`Error::Config`], placed by [`locate`].
pub(crate) fn field_error(text: &str, origin: &Path, field: String, message: String) -> Error {
    config_error(origin, locate(text, &field).unwrap_or((0, 0)), field, message)
}

/// Where dotted `field` is set, as errors print it: `w.toml:5:1`, or `w.toml` alone when
/// [`locate`] cannot place it.
pub(crate) fn place(text: &str, origin: &Path, field: &str) -> String {
    let (line, column) = locate(text, field).unwrap_or((0, 0));
    crate::error::position(origin, line, column)
}

fn config_error(origin: &Path, (line, column): (usize, usize), field: String, message: String) -> Error {
    Error::Config {
        path: origin.to_owned(),
        line,
        column,
        field,
        message,
    }
}

/// Where dotted `field` (`queue[1].sink.url`) is set: the 1-based line and column of its key
/// (of its header, for a table written as one), or, when the key is not written (a default),
/// of the deepest table holding it (`[queue.sink]` under the second `[[queue]]`, `sink = {`,
/// the `{` of an entry of `queue = [...]`); `None` when no table holding it is written.
pub(crate) fn locate(text: &str, field: &str) -> Option<(usize, usize)> {
    let nodes = nodes(text);
    let node = nodes.iter().find(|node| node.name == field).or_else(|| {
        nodes
            .iter()
            .filter(|node| node.table && holds(&node.name, field))
            .max_by_key(|node| node.name.len())
    })?;
    Some(line_col(text, node.start()))
}

/// What a position in the file belongs to, dotted: a key (with its value) or a table.
enum Named {
    Key(String),
    Table(String),
}

/// The dotted name of what byte `offset` of `text` is part of: the innermost key, value or
/// table written there; outside all of them (a duplicate key, say), the table whose header
/// it comes under. An entry of an array of scalars is named by the array's key. `None` at
/// the top level outside any key.
fn name_at(text: &str, offset: usize) -> Option<Named> {
    let nodes = nodes(text);
    let covers = |span: &Range<usize>| span.contains(&offset) || span.start == offset;
    let innermost = nodes
        .iter()
        .enumerate()
        .filter_map(|(i, node)| {
            let span = [Some(&node.value), node.key.as_ref()]
                .into_iter()
                .flatten()
                .filter(|span| covers(span))
                .map(ExactSizeIterator::len)
                .min()?;
            // A child comes after its parent and may have the same span (`[[queue]]`).
            Some(((span, Reverse(i)), node))
        })
        .min_by_key(|(order, _)| *order)
        .map(|(_, node)| node);
    let node = innermost.or_else(|| {
        nodes
            .iter()
            .filter(|node| node.table && node.value.start <= offset && text[node.value.clone()].starts_with('['))
            .max_by_key(|node| node.value.start)
    })?;
    Some(if node.table {
        Named::Table(node.name.clone())
    } else {
        Named::Key(node.name.clone())
    })
}

/// What a syntax error at byte `offset` is in: on a table header line, the table the header
/// opens (`[[queue]` opens `queue`), or `document` when it has no readable name; elsewhere,
/// the table whose header the line comes under, as read from the lines before it (what the
/// parser recovers past the error is no guide: an unclosed `[[queue]` can make the next
/// line's key look like a table), or `document` at the top level.
fn syntax_context(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("");
    if line.trim_start().starts_with('[') {
        let name = line
            .split('#')
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches(['[', ']'])
            .trim();
        let readable = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        return if readable {
            name.to_owned()
        } else {
            "document".to_owned()
        };
    }
    match name_at(&text[..line_start], offset) {
        Some(Named::Table(name) | Named::Key(name)) => name,
        None => "document".to_owned(),
    }
}

/// The dotted table a parse error was reported at, when it was reported at a table rather
/// than at a key or value: serde does so for any error inside an internally tagged table
/// (`[queue.sink]`), having lost the key's own position. `None` for a syntax error.
pub(crate) fn table_of_error(e: &toml::de::Error, text: &str) -> Option<String> {
    if DeTable::parse(text).is_err() {
        return None;
    }
    match name_at(text, e.span()?.start)? {
        Named::Table(table) => Some(table),
        Named::Key(_) => None,
    }
}

/// The key serde names in a `missing field` or `unknown field` message.
fn key_named_in(message: &str) -> Option<&str> {
    ["missing field `", "unknown field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next())
}

/// Whether an `unknown field` error reported at `table` is about that table itself: serde
/// reports an unknown key whose value is a table at the table (`[extra]`, `extra = {...}`),
/// so the key it names is the table's own, not one written inside it.
fn is_the_unknown_table(text: &str, table: &str, key: &str, message: &str) -> bool {
    let own_name = table.rsplit('.').next() == Some(key);
    let inside = dotted(table, key);
    message.starts_with("unknown field `") && own_name && !nodes(text).iter().any(|node| node.name == inside)
}

/// The value serde quotes in an `unknown variant` message (`per = "msg"` in `[queue.sink]`).
fn value_named_in(message: &str) -> Option<&str> {
    message.strip_prefix("unknown variant `")?.split('`').next()
}

/// The dotted name, line and column of the key in `table` whose value is the string `value`.
fn key_holding(text: &str, table: &str, value: &str) -> Option<(String, (usize, usize))> {
    nodes(text)
        .into_iter()
        .find(|node| {
            let parent = node.name.rsplit_once('.').map_or("", |(parent, _)| parent);
            let written = &text[node.value.clone()];
            parent == table
                && !node.table
                && written.len() == value.len() + 2
                && written.trim_matches(['"', '\'']) == value
        })
        .map(|node| (node.name.clone(), line_col(text, node.start())))
}

/// `key` inside `table` (the top level when `table` is empty).
fn dotted(table: &str, key: &str) -> String {
    if table.is_empty() {
        key.to_owned()
    } else {
        format!("{table}.{key}")
    }
}

/// Whether dotted `field` is `table` itself or inside it.
fn holds(table: &str, field: &str) -> bool {
    field
        .strip_prefix(table)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// One key of a parsed file, or one entry of an array of tables, where it is written.
struct Node {
    /// Dotted, with the index of each entry of an array of tables: `queue[1].sink.url`.
    name: String,
    /// The key as written (quotes included); `None` for an entry of an array.
    key: Option<Range<usize>>,
    /// The value: a scalar or array as written, an inline table with its braces, the header
    /// of a table written as one (`[queue.sink]`, `[[queue]]`), or the key that a dotted key
    /// (`sink.type = ...`) makes a table of.
    value: Range<usize>,
    /// Whether the value is a table.
    table: bool,
}

impl Node {
    /// Where the setting starts: its key, or its header when that comes first.
    fn start(&self) -> usize {
        self.key
            .as_ref()
            .map_or(self.value.start, |key| key.start.min(self.value.start))
    }
}

/// Every key and entry of an array of tables in `text`, each after its parent; as much as
/// can be read when the file has a syntax error.
fn nodes(text: &str) -> Vec<Node> {
    let (document, _errors) = DeTable::parse_recoverable(text);
    let mut nodes = Vec::new();
    collect(document.get_ref(), "", &mut nodes);
    nodes
}

fn collect(table: &DeTable<'_>, parent: &str, nodes: &mut Vec<Node>) {
    for (key, value) in table {
        let name = dotted(parent, key.get_ref());
        nodes.push(Node {
            name: name.clone(),
            key: Some(key.span()),
            value: value.span(),
            table: matches!(value.get_ref(), DeValue::Table(_)),
        });
        match value.get_ref() {
            DeValue::Table(inner) => collect(inner, &name, nodes),
            DeValue::Array(entries) => {
                for (i, entry) in entries.iter().enumerate() {
                    if let DeValue::Table(inner) = entry.get_ref() {
                        let name = format!("{name}[{i}]");
                        nodes.push(Node {
                            name: name.clone(),
                            key: None,
                            value: entry.span(),
                            table: true,
                        });
                        collect(inner, &name, nodes);
                    }
                }
            }
            _ => {}
        }
    }
}

/// A setting that is one of a few names, for a hand-written `Deserialize`. A value of another
/// type is refused naming them, where a derived enum says "expected string or map" (or TOML
/// "wanted string or table"), since a table could also hold an enum.
pub(crate) struct OneOf<T: 'static>(pub(crate) &'static [(&'static str, T)]);

/// `Deserialize` for an enum of unit variants, each written as one name
/// (`deserialize_one_of!(Per { "batch" => Batch, "message" => Message })`): a refused value
/// names them all ([`OneOf`]).
macro_rules! deserialize_one_of {
    ($enum:ident { $($name:literal => $variant:ident),+ $(,)? }) => {
        impl<'de> serde::Deserialize<'de> for $enum {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_str($crate::toml_location::OneOf(&[$(($name, Self::$variant)),+]))
            }
        }
    };
}
pub(crate) use deserialize_one_of;
impl<T: Copy> serde::de::Visitor<'_> for OneOf<T> {
    type Value = T;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
        match self.0.iter().find(|(name, _)| *name == v) {
            Some((_, value)) => Ok(*value),
            None => Err(E::custom(format_args!("unknown variant `{v}`, expected {self}"))),
        }
    }
}

/// The names taken: "`a`, `b` or `c`".
impl<T> std::fmt::Display for OneOf<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (name, _)) in self.0.iter().enumerate() {
            let separator = match i {
                0 => "",
                _ if i + 1 == self.0.len() => " or ",
                _ => ", ",
            };
            write!(f, "{separator}`{name}`")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    const NESTED: &str = "\
[[queue]]
name = \"A\"
[queue.sink]
type = \"http\"

[[queue]]   # the second
name = \"B\"
[queue.sink]
url = \"http://x/in\"
[[queue.sink.headers]]
name = \"H1\"
[[queue.sink.headers]]
name = \"H2\"
";

    #[test]
    fn a_subtable_of_an_array_is_named_by_its_entry() {
        assert_eq!(locate(NESTED, "queue[1].sink.url"), Some((9, 1)));
        assert_eq!(locate(NESTED, "queue[0].sink.type"), Some((4, 1)));
        assert_eq!(locate(NESTED, "queue[1].name"), Some((7, 1)));
    }

    #[test]
    fn arrays_of_tables_are_counted_per_parent() {
        let text = format!("{NESTED}[[queue]]\n[[queue.sink.headers]]\nname = \"H3\"\n");
        assert_eq!(locate(&text, "queue[1].sink.headers[1].name"), Some((13, 1)));
        assert_eq!(locate(&text, "queue[2].sink.headers[0].name"), Some((16, 1)));
    }

    #[test]
    fn a_key_not_written_points_at_its_deepest_table_header() {
        assert_eq!(locate(NESTED, "queue[1].sink.timeout_ms"), Some((8, 1)));
        assert_eq!(locate(NESTED, "queue[1].batch"), Some((6, 1)));
        assert_eq!(locate(NESTED, "queue[1]"), Some((6, 1)));
        assert_eq!(locate(NESTED, "pool.connections"), None);
    }

    #[test]
    fn top_level_keys_and_indented_keys_are_found() {
        let text = "version = 1\n[pool]\n  connections = 2\n";
        assert_eq!(locate(text, "version"), Some((1, 1)));
        assert_eq!(locate(text, "pool.connections"), Some((3, 3)));
    }

    #[test]
    fn keys_in_inline_tables_are_placed_at_their_own_column() {
        let text = "queue = [\n  {name = \"A\"},\n  {name = \"B\", sink = {type = \"exec\", command = [\"x\"]}},\n]\n";
        assert_eq!(locate(text, "queue[0].name"), Some((2, 4)));
        assert_eq!(locate(text, "queue[1].name"), Some((3, 4)));
        assert_eq!(locate(text, "queue[1].sink.command"), Some((3, 39)));
        // Not written: the key of the inline table that would hold it, or the entry's brace.
        assert_eq!(locate(text, "queue[1].sink.timeout_ms"), Some((3, 16)));
        assert_eq!(locate(text, "queue[0].batch"), Some((2, 3)));
        let text = "[queue.sink]\nheaders = [{ name = \"H\" }]\n";
        assert_eq!(locate(text, "queue.sink.headers[0].name"), Some((2, 14)));
        assert_eq!(locate(text, "queue.sink.headers[0]"), Some((2, 12)));
    }

    #[test]
    fn dotted_keys_are_placed_at_their_key() {
        let text = "[[queue]]\nname = \"A\"\nsink.type = \"exec\"\n";
        assert_eq!(locate(text, "queue[0].sink.type"), Some((3, 6)));
        assert_eq!(locate(text, "queue[0].sink.command"), Some((3, 1)));
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        #[serde(default)]
        item: Vec<Item>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        n: u32,
    }

    fn parse(text: &str) -> String {
        let e = toml::from_str::<Doc>(text).unwrap_err();
        parse_error(&e, text, Path::new("t.toml")).to_string()
    }

    #[test]
    fn a_parse_error_is_named_by_the_dotted_key_on_its_line() {
        let error = parse("[[item]]\nn = 1\n[[item]]\nn = \"x\"\n");
        assert!(error.starts_with("t.toml:4:5: item[1].n: invalid type"), "{error}");
        let error = parse("[[item]]\nn = 1\nm = 2\n");
        assert!(error.starts_with("t.toml:3:1: item[0].m: unknown field `m`"), "{error}");
    }

    #[test]
    fn regression_an_unknown_top_level_table_is_named_once() {
        let error = parse("[[item]]\nn = 1\n\n[extra]\nfoo = 1\n");
        assert!(error.starts_with("t.toml:4:1: extra: unknown field `extra`"), "{error}");
        let error = parse("extra = { foo = 1 }\n");
        assert!(error.starts_with("t.toml:1:1: extra: unknown field `extra`"), "{error}");
        // A table inside an entry, named like its parent, keeps its own name.
        let error = parse("[[item]]\nn = 1\n[item.item]\nfoo = 1\n");
        assert!(
            error.starts_with("t.toml:3:1: item[0].item: unknown field `item`"),
            "{error}"
        );
    }

    #[test]
    fn a_parse_error_inside_an_inline_table_is_named_by_its_key() {
        let error = parse("item = [{n = 1}, {n = \"x\"}]\n");
        assert!(error.starts_with("t.toml:1:23: item[1].n: invalid type"), "{error}");
        let error = parse("item = [{n = 1, m = 2}]\n");
        assert!(
            error.starts_with("t.toml:1:17: item[0].m: unknown field `m`"),
            "{error}"
        );
        let error = parse("item = [{n = 1}, {}]\n");
        assert!(
            error.starts_with("t.toml:1:18: item[1].n: missing field `n`"),
            "{error}"
        );
    }

    #[test]
    fn a_syntax_error_is_named_by_the_table_it_is_in() {
        let error = parse("[[item]]\nn = 1\nn = 2\n");
        assert!(error.starts_with("t.toml:3:1: item[0]: duplicate key"), "{error}");
    }

    #[test]
    fn an_unclosed_header_is_named_by_the_table_it_opens_not_by_the_next_key() {
        let error = parse("[[item]]\nn = 1\n[[item]\nn = 2\n");
        assert_eq!(
            error, "t.toml:3:8: item: unclosed array table, expected `]`",
            "the recovered parse reads `n` as a table here"
        );
        let error = parse("[[item]]\nn = 1\n[[ ]\n");
        assert!(error.starts_with("t.toml:3:"), "{error}");
        assert!(error.contains(": document: "), "{error}");
    }

    #[test]
    fn a_syntax_error_on_a_key_line_is_named_by_the_table_above_it() {
        let error = parse("[[item]]\nn = 1\nm = = 2\n");
        assert!(error.starts_with("t.toml:3:"), "{error}");
        assert!(error.contains(": item[0]: "), "{error}");
        let error = parse("n = = 1\n");
        assert!(error.contains(": document: "), "{error}");
    }

    #[test]
    fn a_missing_key_is_named_in_its_table_at_the_header() {
        let error = parse("[[item]]\nn = 1\n[[item]]\n");
        assert!(error.starts_with("t.toml:3:1: item[1].n: missing field `n`"), "{error}");
    }

    #[test]
    fn field_error_places_a_checked_field() {
        let error = field_error(NESTED, Path::new("t.toml"), "queue[1].sink.url".into(), "bad".into());
        assert_eq!(error.to_string(), "t.toml:9:1: queue[1].sink.url: bad");
    }
}
