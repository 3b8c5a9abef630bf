//! Where a setting sits in a TOML config file: its dotted name, line and column, for errors.
//!
//! A setting is named the way validation names fields: dotted, with each array of tables
//! indexed per parent, sub-tables included, so `url` under the second `[[queue]]`'s
//! `[queue.sink]` is `queue[1].sink.url`. A name that is not written in the file is placed at
//! the header of the deepest table holding it, else at 0:0. This is a line scan, not a TOML
//! parser: it reads table headers and `key = value` lines, all the config files here use.
//! Parsing and checking a file stay with its config type; this only places the errors.

use std::collections::HashMap;
use std::path::Path;

use crate::Error;

/// Reads a configuration file as text; [`Error::Io`] names it when it cannot be read.
pub(crate) fn read_text(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })
}

/// A TOML parse error as [`Error::Config`], named by the dotted key it is about: the key on
/// the error's line (`queue[1].batch`), or, where serde reports the error at a table's header
/// (as it does inside an internally tagged table such as `[queue.sink]`), that table and the
/// key the message names (`queue[1].sink.url`), placed on the key's own line when it is
/// written. Without either, the key or value the message quotes, else `document`.
pub(crate) fn parse_error(e: &toml::de::Error, text: &str, origin: &Path) -> Error {
    let message = e.message().trim().to_owned();
    let at = e.span().map_or((0, 0), |span| line_col(text, span.start));
    let (field, (line, column)) = match line_name(text, at.0) {
        Some(LineName::Key(key)) => (key, at),
        Some(LineName::Table(table)) => match key_named_in(&message) {
            Some(key) => {
                let field = dotted(&table, key);
                let found = locate(text, &field);
                let line_column = if found.0 > 0 { found } else { at };
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
    config_error(origin, locate(text, &field), field, message)
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

/// Where dotted `field` (`queue[1].sink.url`) is set: the 1-based line and column of its key,
/// or, when the key is not written (a default), of the header of the deepest table holding it
/// (`[queue.sink]` under the second `[[queue]]`), or (0, 0).
pub(crate) fn locate(text: &str, field: &str) -> (usize, usize) {
    let mut tables = Tables::default();
    let mut header = (0, 0);
    for (n, raw) in text.lines().enumerate() {
        let column = raw.len() - raw.trim_start().len() + 1;
        match tables.read(raw) {
            Line::Header if holds(&tables.current, field) => header = (n + 1, column),
            Line::Key(key) if dotted(&tables.current, key) == field => return (n + 1, column),
            Line::Header | Line::Key(_) | Line::Other => {}
        }
    }
    header
}

/// What a line names, dotted: the key it sets or the table its header opens.
enum LineName {
    Key(String),
    Table(String),
}

/// The dotted name of what 1-based `line` of `text` holds; `None` for line 0, a blank or
/// comment line, or one that is neither a header nor a `key = value`.
fn line_name(text: &str, line: usize) -> Option<LineName> {
    let mut tables = Tables::default();
    for raw in text.lines().take(line.checked_sub(1)?) {
        tables.read(raw);
    }
    match tables.read(text.lines().nth(line - 1)?) {
        Line::Key(key) => Some(LineName::Key(dotted(&tables.current, key))),
        Line::Header => Some(LineName::Table(tables.current)),
        Line::Other => None,
    }
}

/// The key serde names in a `missing field` or `unknown field` message.
fn key_named_in(message: &str) -> Option<&str> {
    ["missing field `", "unknown field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next())
}

/// The value serde quotes in an `unknown variant` message (`per = "msg"` in `[queue.sink]`).
fn value_named_in(message: &str) -> Option<&str> {
    message.strip_prefix("unknown variant `")?.split('`').next()
}

/// The dotted name, line and column of the key in `table` whose value is the string `value`.
fn key_holding(text: &str, table: &str, value: &str) -> Option<(String, (usize, usize))> {
    let mut tables = Tables::default();
    for (n, raw) in text.lines().enumerate() {
        if let Line::Key(key) = tables.read(raw)
            && tables.current == table
        {
            let written = raw.split_once('=').map_or("", |(_, v)| v.trim());
            let written = written.split_once('#').map_or(written, |(v, _)| v.trim_end());
            if written.trim_matches(['"', '\'']) == value && written.len() == value.len() + 2 {
                let column = raw.len() - raw.trim_start().len() + 1;
                return Some((dotted(table, key), (n + 1, column)));
            }
        }
    }
    None
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

/// One line as far as naming goes.
enum Line<'a> {
    /// A table header; [`Tables::current`] now names its table.
    Header,
    /// A `key = value` line: the key, unquoted (dotted keys stay as written).
    Key(&'a str),
    /// Blank, a comment, part of a multi-line value, or a header that cannot be read.
    Other,
}

/// The tables a file's lines are in, read top to bottom.
#[derive(Default)]
struct Tables {
    /// Entries so far of each array of tables, by its dotted name with its parents' indices
    /// (`queue`, `queue[1].sink.headers`), so entries are counted per parent.
    arrays: HashMap<String, usize>,
    /// The dotted name of the table the lines read so far are in; empty at the top level.
    current: String,
}

impl Tables {
    /// Reads the next line, moving into the table its header opens.
    fn read<'a>(&mut self, raw: &'a str) -> Line<'a> {
        let line = raw.trim();
        if line.starts_with('#') {
            return Line::Other;
        }
        if line.starts_with('[') {
            return match header(line) {
                Some((name, array)) => {
                    self.current = self.open(name, array);
                    Line::Header
                }
                None => Line::Other,
            };
        }
        match line.split_once('=') {
            Some((key, _)) => Line::Key(key.trim().trim_matches('"')),
            None => Line::Other,
        }
    }

    /// The dotted, indexed name of the table a header opens: each part that names an array of
    /// tables gets the index of its latest entry, and a `[[...]]` header adds an entry.
    fn open(&mut self, name: &str, array: bool) -> String {
        let parts: Vec<&str> = name.split('.').map(|part| part.trim().trim_matches('"')).collect();
        let mut table = String::new();
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                table.push('.');
            }
            table.push_str(part);
            let entries = if array && i + 1 == parts.len() {
                let entries = self.arrays.entry(table.clone()).or_insert(0);
                *entries += 1;
                Some(*entries)
            } else {
                self.arrays.get(&table).copied()
            };
            if let Some(entries) = entries {
                table = format!("{table}[{}]", entries - 1);
            }
        }
        table
    }
}

/// The name inside a `[table]` or `[[array]]` header line (a trailing comment allowed), and
/// whether it is an array of tables.
fn header(line: &str) -> Option<(&str, bool)> {
    let line = line.split_once('#').map_or(line, |(header, _)| header).trim();
    let (name, array) = match line.strip_prefix("[[").and_then(|rest| rest.strip_suffix("]]")) {
        Some(name) => (name, true),
        None => (line.strip_prefix('[')?.strip_suffix(']')?, false),
    };
    let name = name.trim();
    (!name.is_empty() && !name.contains(['[', ']'])).then_some((name, array))
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
        assert_eq!(locate(NESTED, "queue[1].sink.url"), (9, 1));
        assert_eq!(locate(NESTED, "queue[0].sink.type"), (4, 1));
        assert_eq!(locate(NESTED, "queue[1].name"), (7, 1));
    }

    #[test]
    fn arrays_of_tables_are_counted_per_parent() {
        let text = format!("{NESTED}[[queue]]\n[[queue.sink.headers]]\nname = \"H3\"\n");
        assert_eq!(locate(&text, "queue[1].sink.headers[1].name"), (13, 1));
        assert_eq!(locate(&text, "queue[2].sink.headers[0].name"), (16, 1));
    }

    #[test]
    fn a_key_not_written_points_at_its_deepest_table_header() {
        assert_eq!(locate(NESTED, "queue[1].sink.timeout_ms"), (8, 1));
        assert_eq!(locate(NESTED, "queue[1].batch"), (6, 1));
        assert_eq!(locate(NESTED, "queue[1]"), (6, 1));
        assert_eq!(locate(NESTED, "pool.connections"), (0, 0));
    }

    #[test]
    fn top_level_keys_and_indented_keys_are_found() {
        let text = "version = 1\n[pool]\n  connections = 2\n";
        assert_eq!(locate(text, "version"), (1, 1));
        assert_eq!(locate(text, "pool.connections"), (3, 3));
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
