//! `volta`: plan and forecast multi-energy systems from the command line.
//!
//! Each sub-command is a module: `validate`, `schedule` (with its tables
//! and plots in `report`), `backtest`/`train`/`forecast` (in `forecast`)
//! and `serve`, which runs the gRPC server of the `volta-server` crate.

/// `println!` that returns the error (a closed pipe ends the command
/// quietly instead of panicking).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*)?;
    }};
}

mod bid;
mod contracts;
mod forecast;
mod market;
mod plan;
mod report;
mod schedule;
mod serve;
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
  volta backtest --data load.csv --target load_kw --horizon 48 --train-until 2014-10-31 --model gbdt
  volta train --data load.csv --target load_kw --horizon 48 --model-file site.model.json
  volta forecast --model-file site.model.json --data load.csv --issue-time 2014-12-01T00:00
  volta plan site.toml --issue-time 2014-12-01T00:00 --forecast load.demand_kw=site.model.json,load.csv --scenarios 20

Run `volta help <command>` for the details of a command.";

/// The `volta` command line.
#[derive(Debug, Parser)]
#[command(name = "volta", version, about = ABOUT, long_about = LONG_ABOUT, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check case files and report every problem, each with its path.
    #[command(long_about = validate::LONG_ABOUT, after_help = validate::AFTER_HELP)]
    Validate(validate::Args),
    /// Print the case format's JSON Schema (draft 2020-12), for editors and validators.
    #[command(
        long_about = "Print the case format's JSON Schema (draft 2020-12): every section and asset type with its fields, \
                      types, defaults and descriptions, generated from the types `volta validate` reads. It describes the \
                      shape of a case; the rules between fields are `volta validate`'s. The same schema is published as \
                      docs/case.schema.json and returned by `volta.case_schema()` in Python.",
        after_help = "Examples:\n  volta schema > case.schema.json\n  # in a TOML editor (taplo, Even Better TOML): #:schema ./case.schema.json\n  \
                      volta schema --config > config.schema.json   # `volta serve`'s configuration file"
    )]
    Schema {
        /// Print the schema of `volta serve`'s configuration file instead (deploy/config.schema.json).
        #[arg(long)]
        config: bool,
    },
    /// Optimise the operation of a case: schedule, costs, prices, plots.
    #[command(long_about = schedule::LONG_ABOUT, after_help = schedule::AFTER_HELP)]
    Schedule(schedule::Args),
    /// Plan a case from forecasts: deterministic, or two-stage stochastic over joint scenarios.
    #[command(long_about = plan::LONG_ABOUT, after_help = plan::AFTER_HELP)]
    Plan(plan::Args),
    /// Backtest a load or PV forecasting model on history (rolling origin).
    #[command(long_about = forecast::BACKTEST_ABOUT, after_help = forecast::BACKTEST_AFTER)]
    Backtest(forecast::BacktestArgs),
    /// Check a forecasting data file: every flagged value, with its time, rule and action.
    #[command(long_about = forecast::INSPECT_ABOUT, after_help = forecast::INSPECT_AFTER)]
    Inspect(forecast::InspectArgs),
    /// Train a forecasting model and save it to a model file.
    #[command(long_about = forecast::TRAIN_ABOUT, after_help = forecast::FORECAST_AFTER)]
    Train(forecast::TrainArgs),
    /// Forecast the next horizon with a saved model.
    #[command(long_about = forecast::FORECAST_ABOUT, after_help = forecast::FORECAST_AFTER)]
    Forecast(forecast::ForecastArgs),
    /// Contracts, meter readings, volume statistics and settlement on a database of your own.
    #[command(long_about = contracts::LONG_ABOUT, after_help = contracts::AFTER_HELP)]
    Contracts(contracts::Args),
    /// A site's bid curves for the local market, from its case at price levels.
    #[command(long_about = bid::LONG_ABOUT, after_help = bid::AFTER_HELP)]
    Bid(bid::Args),
    /// Clear a book of orders offline: call auctions or welfare clearing over a network.
    #[command(long_about = market::LONG_ABOUT, after_help = market::AFTER_HELP)]
    Market(market::Args),
    /// Serve dispatch, forecasting and contracts over gRPC (auth, TLS, metrics, health, reflection).
    #[command(long_about = serve::LONG_ABOUT, after_help = serve::AFTER_HELP)]
    Serve(serve::Args),
    /// Bring a database's schema up to this version (a deployment's migration job), or check it.
    #[command(long_about = serve::MIGRATE_ABOUT, after_help = serve::MIGRATE_AFTER_HELP)]
    Migrate(serve::MigrateArgs),
}

/// Runs the parsed command line.
fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate(args) => validate::run(&args),
        Command::Schema { config } => {
            let schema = if config {
                volta_server::config::Config::json_schema()
            } else {
                volta_engine::case::schema::json_schema()
            };
            say!("{}", serde_json::to_string_pretty(&schema)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Schedule(args) => schedule::run(&args),
        Command::Plan(args) => plan::run(&args),
        Command::Backtest(args) => forecast::backtest(&args),
        Command::Train(args) => forecast::train(&args),
        Command::Inspect(args) => forecast::inspect(&args),
        Command::Forecast(args) => forecast::forecast(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Migrate(args) => serve::migrate(&args),
        Command::Contracts(args) => contracts::run(&args),
        Command::Market(args) => market::run(&args),
        Command::Bid(args) => bid::run(&args),
    }
}

/// Exit statuses every command shares: 0 done; 1 an error in the input (a
/// case, a file, an option's value); 2 a command line that does not parse
/// (clap's own); 3 solved, but no schedule or plan (infeasible, unbounded,
/// nothing found within a limit).
mod exit {
    /// An error in the input.
    pub(crate) const INPUT: u8 = 1;
    /// No schedule or plan.
    pub(crate) const NO_SOLUTION: u8 = 3;
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        // A reader that went away (`| head`) ends the output, not the run with an error.
        Err(err)
            if err.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(exit::INPUT)
        }
    }
}
