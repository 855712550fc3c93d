//! The `volta` binary, run as a user would.

use std::path::PathBuf;
use std::process::{Command, Output};

fn volta(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_volta")).args(args).output().expect("volta runs")
}

fn case(rel: &str) -> String {
    volta_datasets::case(rel).display().to_string()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn valid_cases_print_ok_with_a_summary() {
    let out = volta(&["validate", &case("campus.toml"), &case("islanded.toml")]);
    assert!(out.status.success(), "{}", stdout(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with("ok ") && lines[0].contains("168 steps of 1h") && lines[0].contains("13 assets"),
        "{text}"
    );
    assert!(lines[1].contains("144 steps of 30min") && lines[1].contains("electricity"), "{text}");
}

#[test]
fn invalid_case_prints_one_line_per_problem_and_exits_1() {
    let path = case("invalid/structure.toml");
    let out = volta(&["validate", &path]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let expected =
        std::fs::read_to_string(volta_datasets::invalid_cases().join("structure.expected")).expect("expected");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(format!("invalid {path}: 5 problems").as_str()));
    assert_eq!(lines.collect::<Vec<_>>(), expected.lines().collect::<Vec<_>>());
}

#[test]
fn unreadable_and_malformed_files_fail_cleanly() {
    for name in ["empty.toml", "binary.toml", "malformed.toml", "truncated.json", "does_not_exist.toml"] {
        let path = case(&format!("invalid/{name}"));
        let out = volta(&["validate", &path]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked") && !err.contains("backtrace"), "{name}: {err}");
        assert!(stdout(&out).starts_with(&format!("invalid {path}: ")), "{name}: {}", stdout(&out));
    }
}

#[test]
fn json_output_is_machine_readable() {
    let out = volta(&["validate", "--format", "json", &case("campus.toml"), &case("invalid/efficiencies.toml")]);
    assert_eq!(out.status.code(), Some(1));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(value[0]["ok"], true);
    assert_eq!(value[1]["ok"], false);
    assert_eq!(value[1]["issues"][0]["path"], "assets.boiler.outputs[0].efficiency");
    assert_eq!(value[1]["issues"][0]["code"], "efficiency");
}

#[test]
fn strict_fails_on_warnings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(volta_datasets::case("campus.toml")).expect("campus")
        + "\n[[buses]]\nid = \"spare\"\ncarrier = \"electricity\"\n";
    let path: PathBuf = dir.path().join("campus.toml");
    std::fs::write(&path, text).expect("write");
    let profiles = "campus_profiles.csv";
    std::fs::copy(volta_datasets::case(profiles), dir.path().join(profiles)).expect("copy");
    let p = path.display().to_string();
    let lenient = volta(&["validate", &p]);
    assert!(lenient.status.success());
    assert!(stdout(&lenient).contains("warning: buses.spare"));
    let strict = volta(&["validate", "--strict", &p]);
    assert_eq!(strict.status.code(), Some(1));
}

#[test]
fn help_teaches() {
    let out = volta(&["--help"]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.contains("validate") && text.contains("Examples:"), "{text}");
    let out = volta(&["validate", "--help"]);
    let text = stdout(&out);
    assert!(text.contains("PATH: message") && text.contains("--strict"), "{text}");
    let out = volta(&["validate"]);
    assert_eq!(out.status.code(), Some(2), "missing arguments is a usage error");
}
