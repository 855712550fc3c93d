//! Shared fixtures.

use std::path::PathBuf;

use volta_engine::{Case, Error, Format, Issue, IssueCode};

/// The repository's `datasets/` directory.
pub fn datasets() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../datasets")
}

/// A small valid case: electricity, heat and gas buses, a grid, a gas
/// supply, a boiler and two loads. Tests add to it or change it.
pub const BASE: &str = r#"
name = "base"
[time]
start = "2024-01-15T00:00"
timezone = "Europe/Berlin"
step = "1h"
steps = 4

[[buses]]
id = "elec"
carrier = "electricity"
[[buses]]
id = "heat"
carrier = "heat"
[[buses]]
id = "gas"
carrier = "gas"

[[assets]]
id = "office"
type = "load"
bus = "elec"
demand_kw = [10.0, 12.0, 11.0, 9.0]

[[assets]]
id = "space_heat"
type = "load"
bus = "heat"
demand_kw = 20.0

[[assets]]
id = "utility"
type = "grid"
bus = "elec"
import_price = 0.3

[[assets]]
id = "gas_supply"
type = "grid"
bus = "gas"
import_price = 0.05

[[assets]]
id = "boiler"
type = "converter"
kind = "gas_boiler"
inputs = [{ bus = "gas" }]
outputs = [{ bus = "heat", efficiency = 0.9 }]
capacity_kw = 50
"#;

pub fn parse(text: &str) -> Result<Case, Error> {
    Case::from_str(text, Format::Toml)
}

/// The issues of a case that must be invalid.
pub fn issues(text: &str) -> Vec<Issue> {
    match parse(text) {
        Ok(_) => panic!("expected the case to be invalid:\n{text}"),
        Err(Error::Invalid(report)) => report.issues,
        Err(other) => panic!("expected a validation report, got: {other}"),
    }
}

/// Asserts that `text` is invalid with an error at `path` with `code`.
#[track_caller]
pub fn assert_issue(text: &str, path: &str, code: IssueCode) {
    let found = issues(text);
    assert!(
        found.iter().any(|i| i.path == path && i.code == code),
        "expected {code} at {path}, got:\n{}",
        found.iter().map(|i| format!("  {} [{}]", i, i.code)).collect::<Vec<_>>().join("\n")
    );
}

/// BASE with one more asset appended.
pub fn with_asset(asset: &str) -> String {
    format!("{BASE}\n[[assets]]\n{asset}\n")
}
