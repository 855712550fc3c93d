//! The deliberately broken cases in datasets/cases/invalid produce exactly
//! the messages written beside them in `NAME.expected`.
//!
//! Run with `VOLTA_BLESS=1` to rewrite the expected files after a deliberate
//! change of wording, then review the diff.

use std::path::Path;

use volta_engine::{CaseReader, Error};

use crate::support::datasets;

/// The lines a broken case must produce.
fn describe(path: &Path) -> Vec<String> {
    match CaseReader::new().read_path(path) {
        Ok(_) => vec!["unexpectedly valid".to_owned()],
        Err(Error::Invalid(report)) => report.issues.iter().map(ToString::to_string).collect(),
        Err(Error::Syntax { message, .. }) => vec![format!("syntax: {message}")],
        Err(Error::Io { source, .. }) => vec![format!("io: {source}")],
    }
}

#[test]
fn every_invalid_case_gives_its_expected_messages() {
    let dir = datasets().join("cases/invalid");
    let bless = std::env::var_os("VOLTA_BLESS").is_some();
    let mut checked = 0;
    let mut entries: Vec<_> =
        std::fs::read_dir(&dir).expect("invalid cases").filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default();
        if ext != "toml" && ext != "json" {
            continue;
        }
        let got = describe(&path);
        let expected_path = path.with_extension("expected");
        if bless {
            std::fs::write(&expected_path, got.join("\n") + "\n").expect("write expected");
        }
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| panic!("{} has no {}", path.display(), expected_path.display()));
        let expected: Vec<&str> = expected.lines().collect();
        assert_eq!(got, expected, "{}", path.display());
        assert!(!got.iter().any(|l| l == "unexpectedly valid"), "{}", path.display());
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} invalid cases found");
}
