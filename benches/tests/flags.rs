//! Every benchmark binary teaches its command line: `--help` prints the
//! usage on stdout and exits 0; an unknown flag or a value that does not
//! read is named on stderr, with the usage, and exits 2. None panics.

use std::process::{Command, Output};

const BINARIES: [(&str, &str); 11] = [
    ("batch-scaling", env!("CARGO_BIN_EXE_batch-scaling")),
    ("contracts-load", env!("CARGO_BIN_EXE_contracts-load")),
    ("decompose-year", env!("CARGO_BIN_EXE_decompose-year")),
    ("grpc-load", env!("CARGO_BIN_EXE_grpc-load")),
    ("plan-eval", env!("CARGO_BIN_EXE_plan-eval")),
    ("platform-load", env!("CARGO_BIN_EXE_platform-load")),
    ("rolling-year", env!("CARGO_BIN_EXE_rolling-year")),
    ("settlement-load", env!("CARGO_BIN_EXE_settlement-load")),
    ("settlement-soak", env!("CARGO_BIN_EXE_settlement-soak")),
    ("solver-strategy", env!("CARGO_BIN_EXE_solver-strategy")),
    ("trading-load", env!("CARGO_BIN_EXE_trading-load")),
];

fn run(path: &str, args: &[&str]) -> Output {
    Command::new(path).args(args).output().expect("the binary runs")
}

#[test]
fn help_prints_the_usage_and_succeeds() {
    for (name, path) in BINARIES {
        let out = run(path, &["--help"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{name}: {stdout}{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.starts_with(&format!("usage: {name}")), "{name}: {stdout}");
    }
}

#[test]
fn a_mistake_is_named_with_the_usage_and_exits_2() {
    for (name, path) in BINARIES {
        // batch-scaling takes one positional count; the others take flags.
        let (args, says): (&[&str], &str) =
            if name == "batch-scaling" { (&["many"], "N: ") } else { (&["--bogus"], "unknown flag --bogus") };
        let out = run(path, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(says) && stderr.contains(&format!("usage: {name}")), "{name}: {stderr}");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    }
    let rolling = BINARIES.iter().find(|(name, _)| *name == "rolling-year").expect("listed").1;
    let out = run(rolling, &["--weeks", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("--weeks: "));
    let out = run(rolling, &["--weeks"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("--weeks needs a value"));
}
