//! `volta`: plan and forecast multi-energy systems from the command line.

use std::process::ExitCode;

use clap::Parser;
use volta_service::cli;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}
