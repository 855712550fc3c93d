//! The annotated example of docs/case-format.md is a valid case.

use std::fmt::Write as _;

use volta_engine::CaseReader;
use volta_engine::time::{GridLength, TimeGrid};

#[test]
fn case_format_example_is_valid() {
    let doc = std::fs::read_to_string(crate::support::datasets().join("../docs/case-format.md")).expect("doc");
    let start = doc.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let example = &doc[start..start + doc[start..].find("```").expect("closed")];

    // The example reads loads.csv; write one covering its grid.
    let grid = TimeGrid::parse("2024-03-30T00:00", "Europe/Berlin", "15min", &GridLength::Days(2)).expect("grid");
    assert_eq!(grid.len(), 188, "the doc says 188 steps");
    let mut csv = String::from("timestamp,offices_kw,heat_kw\n");
    for (i, t) in grid.instants().enumerate() {
        writeln!(csv, "{t},{},{}", 50.0 + (i % 96) as f64, 30.0).expect("write");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("loads.csv"), csv).expect("csv");
    std::fs::write(dir.path().join("office-park.toml"), example).expect("case");

    let checked = CaseReader::new().read_path(dir.path().join("office-park.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(checked.case.grid().len(), 188);
    assert!(checked.warnings.is_empty(), "{:?}", checked.warnings);
}

#[test]
fn the_published_case_schema_is_the_generated_one() {
    let path = crate::support::datasets().join("../docs/case.schema.json");
    let published: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("docs/case.schema.json")).expect("JSON");
    assert!(
        published == volta_engine::case::schema::json_schema(),
        "docs/case.schema.json is out of date: run `volta schema > docs/case.schema.json`"
    );
}
