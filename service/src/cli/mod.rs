//! Command-line parsing and dispatch to the sub-commands.

mod schedule;
mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

const ABOUT: &str = "Plan and forecast multi-energy systems: microgrids, campuses, industrial parks.";

const LONG_ABOUT: &str = "\
Volta plans and forecasts multi-energy systems where electricity, heat, cooling
and gas meet. A system is described in a case file (TOML or JSON): a time grid,
carriers, buses, and the assets connected to them: loads, PV, thermal units,
grid connections, converters (CHP, boilers, heat pumps, chillers) and storage.

The case format is documented in docs/case-format.md; datasets/cases/ holds
worked examples built from real data.";

const AFTER_HELP: &str = "\
Examples:
  volta schedule datasets/cases/campus.toml --out results/
  volta schedule datasets/cases/campus.toml --pareto 8 --out front/
  volta validate datasets/cases/campus.toml
  volta validate --strict datasets/cases/*.toml
  volta validate --format json my_site.toml

Run `volta help <command>` for the details of a command.";

/// The `volta` command line.
#[derive(Debug, Parser)]
#[command(name = "volta", version, about = ABOUT, long_about = LONG_ABOUT, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check case files and report every problem, each with its path.
    #[command(long_about = validate::LONG_ABOUT, after_help = validate::AFTER_HELP)]
    Validate(validate::Args),
    /// Optimise the operation of a case: schedule, costs, prices, plots.
    #[command(long_about = schedule::LONG_ABOUT, after_help = schedule::AFTER_HELP)]
    Schedule(schedule::Args),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate(args) => validate::run(&args),
        Command::Schedule(args) => schedule::run(&args),
    }
}
