//! `volta bid`: a site's bid curves for the local market, from its case.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, anyhow, bail};
use volta_dispatch::Options;
use volta_engine::{AssetKind, CaseReader};
use volta_trading::Price;

pub(super) const LONG_ABOUT: &str = "\
How a site enters the local market: its case is scheduled once per price level,
the grid connection facing the market buying and selling at a forecast price
profile shifted by the level, and what it would buy or sell in each interval at
each level becomes price-quantity steps (docs/trading.md). The forecast is the
connection's import price in the case unless --prices gives one per step.";

pub(super) const AFTER_HELP: &str = "\
Examples:
  volta bid datasets/cases/campus.toml --grid utility --shifts=-0.1,-0.05,0,0.05,0.1
  volta bid site.toml --grid market --prices forecast.csv --out curves.csv";

/// Arguments of `volta bid`.
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// The site's case (TOML or JSON).
    case: PathBuf,
    /// The grid connection that faces the market.
    #[arg(long)]
    grid: String,
    /// The forecast prices per kWh, one per step: a CSV with a `price` column. Default: the connection's import price.
    #[arg(long, value_name = "CSV")]
    prices: Option<PathBuf>,
    /// The price levels, as shifts of the forecast per kWh, comma-separated.
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true, default_value = "-0.1,-0.05,0,0.05,0.1")]
    shifts: Vec<String>,
    /// Write the steps to this CSV (start,side,price,kwh).
    #[arg(long, value_name = "CSV")]
    out: Option<PathBuf>,
}

pub(super) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let case = CaseReader::new().read_path(&args.case).with_context(|| format!("{}", args.case.display()))?.case;
    let shifts: Vec<Price> = args
        .shifts
        .iter()
        .map(|s| s.parse::<Price>().map_err(|e| anyhow!("--shifts {s:?}: {e}")))
        .collect::<anyhow::Result<_>>()?;
    let steps = case.grid().len();
    let prices: Vec<f64> = match &args.prices {
        Some(path) => {
            let mut reader = csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
            let column = reader
                .headers()?
                .iter()
                .position(|h| h == "price")
                .ok_or_else(|| anyhow!("{}: no column \"price\"", path.display()))?;
            reader
                .records()
                .enumerate()
                .map(|(i, r)| {
                    let r = r?;
                    let text = r.get(column).unwrap_or_default();
                    text.trim().parse::<f64>().map_err(|e| anyhow!("{}:{}: price {text:?}: {e}", path.display(), i + 2))
                })
                .collect::<anyhow::Result<_>>()?
        }
        None => match case.asset(&args.grid).map(|a| &a.kind) {
            Some(AssetKind::Grid(g)) => (0..steps).map(|t| g.import_price.at(t)).collect(),
            Some(_) | None => bail!("--grid {}: not a grid connection of the case", args.grid),
        },
    };
    let started = std::time::Instant::now();
    let curves = volta_trading::bids::curves(&case, &args.grid, &prices, &shifts, &Options::default())?;
    eprintln!("{} levels scheduled in {:.1} s", shifts.len(), started.elapsed().as_secs_f64());
    if curves.evened > 0 {
        eprintln!("note: {} quantities were not monotone in the price and were evened", curves.evened);
    }
    let zone = case.grid().start().time_zone().clone();
    say!("{:<26} {:<5} {:>10} {:>12}", "interval", "side", "price", "kWh");
    let mut rows = Vec::new();
    for interval in &curves.intervals {
        let local = interval.start.to_zoned_datetime(zone.clone()).strftime("%Y-%m-%d %H:%M %Z").to_string();
        for s in &interval.steps {
            let side = match s.side {
                volta_trading::Side::Buy => "buy",
                volta_trading::Side::Sell => "sell",
            };
            say!("{local:<26} {side:<5} {:>10} {:>12}", s.price, s.quantity);
            rows.push([interval.start.to_string(), side.to_owned(), s.price.to_string(), s.quantity.to_string()]);
        }
    }
    if let Some(path) = &args.out {
        let mut w = csv::Writer::from_path(path).with_context(|| format!("{}", path.display()))?;
        w.write_record(["start", "side", "price", "kwh"])?;
        for row in rows {
            w.write_record(row)?;
        }
        w.flush()?;
        eprintln!("curves: {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
