//! Generates a contract portfolio from the real load and PV series.
//!
//! ```text
//! cargo run --release -p volta-datasets --bin contract-portfolio -- OUT_DIR [CONTRACTS] [FIRST] [LAST] [SEED]
//! ```
//!
//! Defaults: 1 000 contracts, 2024-01-01 to 2024-12-31, seed 2024: about
//! 35 million quarter-hour readings in twelve monthly CSV files, with
//! `portfolio.toml` and `spot.csv` (see `volta_datasets::portfolio`).

use anyhow::{Context as _, Result};
use jiff::civil::Date;

const USAGE: &str = "usage: contract-portfolio OUT_DIR [CONTRACTS] [FIRST] [LAST] [SEED]

Writes a portfolio generated from the real load and PV series to OUT_DIR:
portfolio.toml, spot.csv and one CSV of readings per month. Defaults: 1000
contracts, 2024-01-01 to 2024-12-31, seed 2024 (about 35 million readings,
1.5 GB). The same arguments always write the same files.";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return Ok(());
    }
    if args.is_empty() || args.iter().any(|a| a.starts_with('-')) {
        // An option is not a directory: a typo must not start a 1.5 GB run.
        anyhow::bail!("{USAGE}");
    }
    let out = &args[0];
    let contracts = args.get(1).map_or(Ok(1000), |a| a.parse()).context("CONTRACTS")?;
    let first: Date = args.get(2).map_or(Ok(jiff::civil::date(2024, 1, 1)), |a| a.parse()).context("FIRST")?;
    let last: Date = args.get(3).map_or(Ok(jiff::civil::date(2024, 12, 31)), |a| a.parse()).context("LAST")?;
    let seed = args.get(4).map_or(Ok(2024), |a| a.parse()).context("SEED")?;
    let spec = volta_datasets::portfolio::Spec { contracts, first, last, seed };
    let started = std::time::Instant::now();
    let summary = volta_datasets::portfolio::generate(&spec, std::path::Path::new(out))?;
    println!(
        "{} readings in {} files, portfolio.toml and spot.csv in {out} ({:.1} s)",
        summary.readings,
        summary.files.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
