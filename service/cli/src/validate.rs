//! `volta validate`: check case files.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;
use volta_engine::{CaseReader, Error};

pub(super) const LONG_ABOUT: &str = "\
Check case files and report every problem at once.

For each valid case, prints `ok`, the file and a one-line summary (horizon,
assets, carriers). For an invalid case, prints one line per problem as
`PATH: message`, where PATH locates the offending field inside the case
(`assets.chp.commitment.min_up_h`, `buses[2].carrier`, `time.step`).
Warnings (legal but suspicious settings) are printed as `warning: PATH:
message` and do not fail the check unless --strict is given.

Referenced CSV and Parquet series are read and checked too: missing files and
columns, series that do not match the time grid, NaN and infinite values.

With --export FILE, a valid case is also written to FILE as one
self-contained JSON case file: every series inline, every default spelled
out. Other tools (and `volta schedule`) read it without the original CSVs.";

pub(super) const AFTER_HELP: &str = "\
Examples:
  volta validate datasets/cases/campus.toml datasets/cases/islanded.toml
  volta validate --strict site.toml
  volta validate --format json site.toml | jq '.[0].issues'
  volta validate --export campus.json datasets/cases/campus.toml

Exit status: 0 when every case is valid, 1 otherwise.";

/// Arguments of `volta validate`.
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Case files (.toml or .json) to check.
    #[arg(required = true, value_name = "CASE")]
    cases: Vec<PathBuf>,
    /// Treat warnings as errors.
    #[arg(long)]
    strict: bool,
    /// Output format: human-readable text, or JSON for programs.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Write the (single, valid) case to FILE as self-contained JSON.
    #[arg(long, value_name = "FILE")]
    export: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Text,
    Json,
}

pub(super) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    if args.export.is_some() && args.cases.len() != 1 {
        anyhow::bail!("--export takes exactly one case, not {}", args.cases.len());
    }
    let reader = CaseReader::new().strict(args.strict);
    let mut all_ok = true;
    let mut json_out = Vec::new();
    let mut out = std::io::stdout().lock();
    for path in &args.cases {
        let shown = path.display();
        match reader.read_path(path) {
            Ok(checked) => {
                if let Some(target) = &args.export {
                    let json = checked.case.to_json()?;
                    std::fs::write(target, json + "\n")
                        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", target.display()))?;
                }
                match args.format {
                    Format::Text => {
                        writeln!(out, "ok {shown}: {}", checked.case.summary())?;
                        for warning in &checked.warnings {
                            writeln!(out, "{warning}")?;
                        }
                    }
                    Format::Json => json_out.push(json!({
                        "file": path, "ok": true, "summary": checked.case.summary(), "issues": checked.warnings,
                    })),
                }
            }
            Err(err) => {
                all_ok = false;
                match (args.format, &err) {
                    (Format::Text, Error::Invalid(report)) => {
                        writeln!(out, "invalid {shown}: {}", counted(report))?;
                        for issue in &report.issues {
                            writeln!(out, "{issue}")?;
                        }
                    }
                    (Format::Text, Error::Io { .. } | Error::Syntax { .. }) => {
                        writeln!(out, "invalid {shown}: {err}")?;
                    }
                    (Format::Json, _) => {
                        let issues = err.report().map(|r| r.issues.clone()).unwrap_or_default();
                        let message = match &err {
                            Error::Invalid(_) => None,
                            Error::Io { .. } | Error::Syntax { .. } => Some(err.to_string()),
                        };
                        json_out.push(json!({ "file": path, "ok": false, "error": message, "issues": issues }));
                    }
                }
            }
        }
    }
    if matches!(args.format, Format::Json) {
        writeln!(out, "{}", serde_json::to_string_pretty(&json_out)?)?;
    }
    Ok(if all_ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// How many problems a report has, and warnings apart: `1 problem`,
/// `3 problems and 1 warning`.
pub(super) fn counted(report: &volta_engine::ValidationReport) -> String {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let (problems, warnings) = (report.errors().count(), report.warnings().count());
    if warnings == 0 {
        plural(problems, "problem")
    } else {
        format!("{} and {}", plural(problems, "problem"), plural(warnings, "warning"))
    }
}
