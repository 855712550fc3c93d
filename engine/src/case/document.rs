//! From bytes to a JSON value tree: the one shape both TOML and JSON case
//! files are checked in.

use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::report::{IssueCode, ValidationReport};

/// The syntax of a case file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// TOML, the format for people.
    Toml,
    /// JSON, the format for programs.
    Json,
}

impl Format {
    /// The format implied by a file name, if its extension says.
    #[must_use]
    pub fn from_path(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "toml" => Some(Self::Toml),
            "json" => Some(Self::Json),
            _ => None,
        }
    }

    /// Guesses from content: JSON starts with `{`.
    #[must_use]
    pub fn sniff(text: &str) -> Self {
        if text.trim_start().starts_with('{') { Self::Json } else { Self::Toml }
    }
}

/// Decodes bytes as UTF-8 text, refusing binary files with a clear message.
pub(crate) fn decode(bytes: &[u8], path: &Path) -> Result<String> {
    let syntax = |message: String| Error::Syntax { path: path.to_owned(), message };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(syntax("the file is empty".into()));
    }
    if bytes.contains(&0) {
        return Err(syntax("this is a binary file, not a TOML or JSON case".into()));
    }
    String::from_utf8(bytes.to_vec()).map_err(|e| {
        syntax(format!(
            "not UTF-8 text (invalid byte at offset {}); case files are TOML or JSON",
            e.utf8_error().valid_up_to()
        ))
    })
}

/// Parses text into a table. Non-finite TOML numbers (`nan`, `inf`) are
/// reported to `report` with their path and replaced by 0 so that every
/// other problem is still found.
#[expect(clippy::wildcard_enum_match_arm, reason = "every non-table top level is the same mistake")]
pub(crate) fn parse(
    text: &str,
    format: Format,
    path: &Path,
    report: &mut ValidationReport,
) -> Result<Map<String, Value>> {
    let syntax = |message: String| Error::Syntax { path: path.to_owned(), message };
    let value = match format {
        Format::Json => serde_json::from_str::<Value>(text).map_err(|e| syntax(format!("invalid JSON: {e}")))?,
        Format::Toml => {
            let table: toml::Table = toml::from_str(text).map_err(|e| syntax(toml_message(&e, text)))?;
            toml_to_json(toml::Value::Table(table), "", report)
        }
    };
    match value {
        Value::Object(map) => Ok(map),
        other => {
            Err(syntax(format!("a case must be a table (a JSON object) at the top level, found {}", json_type(&other))))
        }
    }
}

/// One line: `invalid TOML at line L, column C: what`.
fn toml_message(err: &toml::de::Error, text: &str) -> String {
    let what = err.message().trim_end();
    match err.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("invalid TOML at line {line}, column {column}: {what}")
        }
        None => format!("invalid TOML: {what}"),
    }
}

fn toml_to_json(value: toml::Value, path: &str, report: &mut ValidationReport) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => {
            if f.is_finite() {
                Value::from(f)
            } else {
                report.error(path, IssueCode::NotFinite, format!("{f} is not a finite number"));
                Value::from(0.0)
            }
        }
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(dt) => Value::String(dt.to_string()),
        // A series can hold millions of numbers: their paths are only made
        // for the rare item that needs one in a message.
        toml::Value::Array(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    toml::Value::Float(f) if f.is_finite() => Value::from(f),
                    toml::Value::Integer(n) => Value::from(n),
                    other @ (toml::Value::Float(_)
                    | toml::Value::String(_)
                    | toml::Value::Boolean(_)
                    | toml::Value::Datetime(_)
                    | toml::Value::Array(_)
                    | toml::Value::Table(_)) => toml_to_json(other, &format!("{path}[{i}]"), report),
                })
                .collect(),
        ),
        toml::Value::Table(table) => Value::Object(
            table
                .into_iter()
                .map(|(k, v)| {
                    let child = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                    let v = toml_to_json(v, &child, report);
                    (k, v)
                })
                .collect(),
        ),
    }
}

/// A short name for a JSON value's type, for messages.
pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a table",
    }
}
