//! Dispatch cases built from the campus week for the benchmarks: its first
//! day at quarter-hours and the week tiled over a year.

use serde_json::Value;
use volta_engine::{Case, CaseReader};

/// The campus case as a JSON document with inline series.
fn campus_document() -> Value {
    let case = Case::from_path(volta_datasets::case("campus.toml")).expect("campus case");
    serde_json::from_str(&case.to_json().expect("serialises")).expect("json")
}

/// Applies `f` to every inline series of the document (every array of
/// `len` numbers).
fn map_series_of(value: &mut Value, len: usize, f: &dyn Fn(&[Value]) -> Vec<Value>) {
    match value {
        Value::Array(items) if items.len() == len && items.iter().all(Value::is_number) => *items = f(items),
        Value::Array(items) => items.iter_mut().for_each(|v| map_series_of(v, len, f)),
        Value::Object(map) => map.values_mut().for_each(|v| map_series_of(v, len, f)),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

/// Applies `f` to every inline series of the campus week.
fn map_series(value: &mut Value, f: &dyn Fn(&[Value]) -> Vec<Value>) {
    map_series_of(value, 168, f);
}

/// The committed case `name` (under `datasets/cases/`) repeated `copies`
/// times end to end: every inline series of its length tiled, the same
/// start, steps and units.
///
/// # Panics
/// If the case cannot be read or its series are not inline.
#[must_use]
pub fn tiled(name: &str, copies: usize) -> Case {
    let case = Case::from_path(volta_datasets::case(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let steps = case.grid().len();
    let mut doc: Value = serde_json::from_str(&case.to_json().expect("serialises")).expect("json");
    map_series_of(&mut doc, steps, &|v| v.iter().cycle().take(steps * copies).cloned().collect());
    doc["time"]["steps"] = Value::from(steps * copies);
    read(doc)
}

fn read(doc: Value) -> Case {
    CaseReader::new().read_value(doc).expect("bench case validates").case
}

/// The campus case's first day at 15-minute steps (96 steps, the CHP under
/// commitment).
///
/// # Panics
/// If the committed campus case cannot be read.
#[must_use]
pub fn day_ahead() -> Case {
    let mut doc = campus_document();
    map_series(&mut doc, &|v| v[..24].iter().flat_map(|x| std::iter::repeat_n(x.clone(), 4)).collect());
    doc["time"] = serde_json::json!({ "start": "2014-11-03T00:00", "timezone": "Australia/Melbourne", "step": "15min", "steps": 96 });
    read(doc)
}

/// The campus week tiled over `weeks` weeks of hourly steps, with the CHP
/// under unit commitment or (without `commitment`) as an LP.
///
/// # Panics
/// If the committed campus case cannot be read.
#[must_use]
pub fn campus_weeks(weeks: usize, commitment: bool) -> Case {
    let mut doc = campus_document();
    map_series(&mut doc, &|v| v.iter().cycle().take(168 * weeks).cloned().collect());
    doc["time"] = serde_json::json!({ "start": "2014-11-03T00:00", "timezone": "Australia/Melbourne", "step": "1h", "steps": 168 * weeks });
    if !commitment {
        for asset in doc["assets"].as_array_mut().expect("assets") {
            if let Some(map) = asset.as_object_mut() {
                map.remove("commitment");
            }
        }
    }
    read(doc)
}

/// The campus year: 52 weeks, 8,736 hourly steps.
///
/// # Panics
/// If the committed campus case cannot be read.
#[must_use]
pub fn campus_year(commitment: bool) -> Case {
    campus_weeks(52, commitment)
}
