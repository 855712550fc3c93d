//! `volta contracts`: the contract service's operations on a database of
//! your own (the same one `volta serve` uses), from the command line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr as _;

use anyhow::{Context as _, anyhow, bail};
use jiff::Timestamp;
use jiff::civil::Date;
use rust_decimal::Decimal;
use serde::Deserialize;
use volta_contracts::allocation::Allocation;
use volta_contracts::settlement::settle;
use volta_contracts::statistics::Volume;
use volta_contracts::{
    Contract, ContractId, Energy, Granularity, MeterId, MeteringPoint, Party, PartyId, Period, Price, Quality, Reading,
    Terms,
};
use volta_server::projection;
use volta_server::store::Store;
use volta_server::store::contracts::{Applied, ContractStore as _, Scope};

pub(super) const LONG_ABOUT: &str = "\
Contracts, meter readings, volume statistics and settlement, on a database of
your own: the same SQLite file (default sqlite://volta.db) or PostgreSQL
database that `volta serve` serves as volta.contracts.v1.ContractService.

Energy is exact to the watt-hour and money exact decimal; days are local days
of the meters' time zone (92 or 100 quarter hours on DST days). The terms of
a contract (kind, price rule, TOU table, quantity, shape, band, penalty) are
data: docs/contracts.md describes the format.

  apply      add the parties, meters, contracts and allocations of a file
  import     load meter readings (one revision, all or nothing) or index prices
  stats      contracted against delivered per day, month or year (--plot)
  tou        a contract's volumes and amounts per TOU period
  top        the largest deviations of a period
  settle     settle a period (stored, or --dry-run for a band check)
  project    where a period will end: deviation and penalty, P10 to P90 (--plot)
  show       a contract with every version of its terms";

pub(super) const AFTER_HELP: &str = "\
Examples:
  volta contracts apply datasets/contracts/small/portfolio.toml
  volta contracts import readings datasets/contracts/small/readings.csv
  volta contracts stats --portfolio --from 2024-01-01 --to 2024-12-31 --by month --plot volumes.png
  volta contracts stats --contract shop-2024 --from 2024-03-01 --to 2024-03-31 --by day
  volta contracts settle shop-2024 --from 2024-01-01 --to 2024-01-31 --dry-run
  volta contracts project shop-2024 --from 2024-04-01 --to 2024-04-30 --as-of 2024-04-15 --plot odds.png

Environment: VOLTA_DATABASE_URL (as --database).";

/// Arguments of `volta contracts`.
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// The database: sqlite://FILE (created if missing) or postgres://...
    #[arg(long, global = true, value_name = "URL", env = "VOLTA_DATABASE_URL", default_value = "sqlite://volta.db")]
    database: String,
    /// The tenant whose contracts these are (a server without auth serves `default`; with auth, the token names it).
    #[arg(long, global = true, default_value = volta_server::auth::DEFAULT_TENANT)]
    tenant: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Add the parties, meters, contracts and allocations of a portfolio file (TOML).
    Apply {
        /// The portfolio file: [[parties]], [[meters]], [[contracts]] (with `terms` or `terms_file`), [[allocations]].
        file: PathBuf,
    },
    /// Load meter readings or index prices.
    #[command(subcommand)]
    Import(Import),
    /// Contracted against delivered per bucket.
    Stats {
        /// One contract.
        #[arg(long, group = "scope")]
        contract: Option<String>,
        /// Every contract a party buys or sells under.
        #[arg(long, group = "scope")]
        party: Option<String>,
        /// Every contract.
        #[arg(long, group = "scope")]
        portfolio: bool,
        /// The first day (YYYY-MM-DD).
        #[arg(long)]
        from: Date,
        /// The last day, inclusive.
        #[arg(long)]
        to: Date,
        /// The buckets.
        #[arg(long, value_enum, default_value_t = By::Month)]
        by: By,
        /// Draw contracted against delivered to this PNG.
        #[arg(long, value_name = "PNG")]
        plot: Option<PathBuf>,
    },
    /// A contract's volumes and amounts per TOU period.
    Tou {
        /// The contract.
        contract: String,
        /// The first day.
        #[arg(long)]
        from: Date,
        /// The last day, inclusive.
        #[arg(long)]
        to: Date,
    },
    /// The contracts whose delivery deviates most from their contracted volume.
    Top {
        /// The first day.
        #[arg(long)]
        from: Date,
        /// The last day, inclusive.
        #[arg(long)]
        to: Date,
        /// How many.
        #[arg(short = 'n', long, default_value_t = 10)]
        count: usize,
    },
    /// Settle a contract's period: band check, penalty, statement.
    Settle {
        /// The contract.
        contract: String,
        /// The first day.
        #[arg(long)]
        from: Date,
        /// The last day, inclusive.
        #[arg(long)]
        to: Date,
        /// Compute and print without storing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Where a period will end: deviation and penalty projected from the
    /// readings so far and a load forecast of the rest, over scenarios
    /// replayed from the forecast's own out-of-sample errors.
    Project {
        /// The contract.
        contract: String,
        /// The first day.
        #[arg(long)]
        from: Date,
        /// The last day, inclusive.
        #[arg(long)]
        to: Date,
        /// Readings before this instant (RFC 3339 with offset, or a local
        /// date for its midnight in the contract's zone) are used; the rest
        /// is projected. Default: where the readings stop.
        #[arg(long, value_name = "TIME")]
        as_of: Option<String>,
        /// The forecasting model: linear, elastic_net, gbdt, vanilla, naive, naive_week.
        #[arg(long, default_value = "linear")]
        model: String,
        /// Days of readings before --as-of to train on (each also a scenario once the horizon fits behind it).
        #[arg(long, default_value_t = volta_server::projection::DEFAULT_HISTORY_DAYS)]
        history_days: usize,
        /// Levels to report, comma-separated, in (0, 1).
        #[arg(long, value_delimiter = ',', default_value = "0.1,0.5,0.9")]
        levels: Vec<f64>,
        /// Draw the scenarios' deviations, sorted, to this PNG.
        #[arg(long, value_name = "PNG")]
        plot: Option<PathBuf>,
    },
    /// A contract with every version of its terms (JSON).
    Show {
        /// The contract.
        contract: String,
    },
}

#[derive(Debug, clap::Subcommand)]
enum Import {
    /// Meter readings from CSV (meter,start,energy_kwh[,quality]; `start` in
    /// RFC 3339 with its offset, energy in kWh with at most three decimals)
    /// or Parquet (meter, start as a UTC timestamp or RFC 3339 text, and
    /// energy_wh as integers or energy_kwh; quality optional).
    Readings {
        /// The file.
        file: PathBuf,
    },
    /// Index prices from CSV: start,price (per kWh, decimal).
    Prices {
        /// The index's name.
        index: String,
        /// The file.
        file: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum By {
    Day,
    Month,
    Year,
}

/// A portfolio file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PortfolioFile {
    #[serde(default)]
    parties: Vec<Party>,
    #[serde(default)]
    meters: Vec<MeteringPoint>,
    #[serde(default)]
    contracts: Vec<ContractEntry>,
    #[serde(default)]
    allocations: Vec<Allocation>,
}

/// A contract of a portfolio file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContractEntry {
    id: ContractId,
    seller: PartyId,
    buyer: PartyId,
    meters: Vec<MeterId>,
    #[serde(default)]
    terms: Option<Terms>,
    #[serde(default)]
    terms_file: Option<PathBuf>,
}

pub(super) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("tokio runtime")?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: &Args) -> anyhow::Result<ExitCode> {
    let store = Store::open(&args.database).await?;
    let tenant = args.tenant.as_str();
    match &args.command {
        Command::Apply { file } => apply(&store, tenant, file).await?,
        Command::Import(Import::Readings { file }) => {
            let parquet = file.extension().is_some_and(|e| e.eq_ignore_ascii_case("parquet"));
            let readings = if parquet { read_readings_parquet(file)? } else { read_readings(file)? };
            let started = std::time::Instant::now();
            let report = store
                .load_readings(tenant, &readings, &file.display().to_string())
                .await
                .map_err(|e| anyhow!("{}: {e}", file.display()))?;
            let seconds = started.elapsed().as_secs_f64();
            say!(
                "revision {}: {} readings, {} contracts' rollups rebuilt ({} rows), {:.1} s ({:.0} readings/s)",
                report.revision,
                report.readings,
                report.contracts,
                report.rollups,
                seconds,
                report.readings as f64 / seconds.max(1e-9)
            );
        }
        Command::Import(Import::Prices { index, file }) => {
            let prices = read_prices(file)?;
            store.put_prices(tenant, index, &prices).await.map_err(|e| anyhow!("{}: {e}", file.display()))?;
            say!("{} prices of {index}", prices.len());
        }
        Command::Stats { contract, party, portfolio, from, to, by, plot } => {
            let scope = match (contract, party, portfolio) {
                (Some(id), _, _) => Scope::Contract(ContractId::new(id.clone())?),
                (None, Some(id), _) => Scope::Party(PartyId::new(id.clone())?),
                (None, None, true) => Scope::Portfolio,
                (None, None, false) => bail!("give --contract ID, --party ID or --portfolio"),
            };
            let granularity = match by {
                By::Day => Granularity::Day,
                By::Month => Granularity::Month,
                By::Year => Granularity::Year,
            };
            let period = period(*from, *to)?;
            let volumes = store.volumes(tenant, &scope, &period, granularity).await?;
            if let Some(path) = plot {
                let title = match &scope {
                    Scope::Contract(id) => format!("contract {id}"),
                    Scope::Party(id) => format!("party {id}"),
                    Scope::Portfolio => "portfolio".to_owned(),
                };
                crate::report::contracts::volumes(&title, &volumes, path)?;
                eprintln!("plot: {}", path.display());
            }
            print_volumes(&volumes)?;
        }
        Command::Tou { contract, from, to } => {
            let id = ContractId::new(contract.clone())?;
            let stored = store.contract(tenant, &id).await?.ok_or_else(|| anyhow!("no contract {id}"))?;
            let lines = store.tou_breakdown(tenant, &id, &period(*from, *to)?).await?;
            let table = stored.latest().terms.tou().cloned();
            say!(
                "{:<12} {:>16} {:>16} {:>18} {:>12}",
                "period",
                "contracted kWh",
                "delivered kWh",
                "amount",
                "avg price"
            );
            for line in lines {
                let name = table.as_ref().map_or("all", |t| t.period_name(line.period));
                say!(
                    "{:<12} {:>16} {:>16} {:>18} {:>12}",
                    name,
                    line.contracted,
                    line.delivered,
                    line.amount.map_or_else(|| "unpriced".to_owned(), |a| a.normalize().to_string()),
                    line.average_price(6).map_or_else(|| "-".to_owned(), |p| p.to_string()),
                );
            }
        }
        Command::Top { from, to, count } => {
            let top = store.top_deviators(tenant, &period(*from, *to)?, *count).await?;
            say!("{:<24} {:>16} {:>16} {:>16}", "contract", "contracted kWh", "delivered kWh", "deviation kWh");
            for (id, contracted, delivered) in top {
                say!("{:<24} {:>16} {:>16} {:>16}", id.as_str(), contracted, delivered, delivered - contracted);
            }
        }
        Command::Settle { contract, from, to, dry_run } => {
            let id = ContractId::new(contract.clone())?;
            let period = period(*from, *to)?;
            let (portfolio, readings, prices) = store.settlement_inputs(tenant, &id, &period).await?;
            let ledger = portfolio.ledger(&id, &period, &readings, &prices, None)?;
            let settlement = settle(&portfolio, &ledger, &prices)?;
            let (sequence, note) = if *dry_run {
                (0, "dry run, not stored")
            } else {
                match store.put_settlement(tenant, &settlement).await? {
                    Applied::Now(s) => (s.sequence, "stored"),
                    Applied::Before(s) => (s.sequence, "the same inputs as the stored run"),
                }
            };
            say!("settlement of {id}, {period} (run {sequence}: {note})");
            say!("  rule:        {}", settlement.rule);
            say!("  versions:    {:?}, readings revision {}", settlement.versions, settlement.readings_revision);
            say!("  contracted:  {} kWh", settlement.contracted);
            say!("  delivered:   {} kWh ({} intervals missing)", settlement.delivered, settlement.missing_intervals);
            say!("  deviation:   +{} / -{} kWh", settlement.deviation_up, settlement.deviation_down);
            say!("  penalty on:  {} kWh", settlement.penalty_volume.normalize());
            let s = &settlement.statement;
            say!("  energy:      {} {}", s.energy, s.currency);
            say!("  penalty:     {} {}", s.penalty, s.currency);
            say!("  total:       {} {}", s.total, s.currency);
            say!("  input hash:  {}", settlement.input_hash);
        }
        Command::Project { contract, from, to, as_of, model, history_days, levels, plot } => {
            let id = ContractId::new(contract.clone())?;
            let period = period(*from, *to)?;
            let cut = match as_of {
                None => None,
                Some(text) => Some(instant(&store, tenant, &id, text).await?),
            };
            let options = projection::Options {
                cut,
                levels: levels.clone(),
                model: volta_forecasting::ModelSpec::from_name(model)?,
                history_days: *history_days,
            };
            let budgets = projection::Budgets { max_horizon_steps: 20_000, max_history_steps: 10_000_000 };
            let inputs = projection::inputs(&store, tenant, &id, &period, &options, budgets).await?;
            let started = std::time::Instant::now();
            let projected = projection::run(&inputs, &id, &period, &options, &volta_engine::Cancel::new())?;
            print_projection(&projected, started.elapsed().as_secs_f64())?;
            if let Some(path) = plot {
                crate::report::contracts::projection(&format!("contract {id}"), &projected.projection, path)?;
                eprintln!("plot: {}", path.display());
            }
        }
        Command::Show { contract } => {
            let id = ContractId::new(contract.clone())?;
            let stored = store.contract(tenant, &id).await?.ok_or_else(|| anyhow!("no contract {id}"))?;
            say!("{}", serde_json::to_string_pretty(&stored)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// An instant from RFC 3339 text, or a local date's midnight in contract
/// `id`'s zone.
async fn instant(store: &Store, tenant: &str, id: &ContractId, text: &str) -> anyhow::Result<Timestamp> {
    if let Ok(t) = text.parse::<Timestamp>() {
        return Ok(t);
    }
    let date: Date =
        text.parse().map_err(|_| anyhow!("--as-of {text:?}: neither RFC 3339 with an offset nor a date"))?;
    let (portfolio, _, _) = store.settlement_inputs(tenant, id, &Period::day(date)).await?;
    let (zone, _) = portfolio.clock(id)?;
    Ok(volta_contracts::calendar::local_midnight(date, &zone)?.timestamp())
}

fn print_projection(p: &projection::Projected, seconds: f64) -> anyhow::Result<()> {
    let pr = &p.projection;
    let c = &p.currency;
    say!("projection of {}, {} as of {} ({} model, {:.1} s)", pr.contract, pr.period, pr.cut, p.model, seconds);
    say!("  rule:             {}", pr.rule);
    say!("  contracted:       {} kWh ({} kWh to date)", pr.contracted, pr.contracted_to_date);
    say!("  delivered:        {} kWh to date ({} intervals missing)", pr.delivered_to_date, pr.missing_to_date);
    say!(
        "  scenarios:        {} (forecast errors of the days from {} to {}; trained on readings from {})",
        pr.outcomes.len(),
        p.analogs.first().map_or_else(|| "-".to_owned(), ToString::to_string),
        p.analogs.last().map_or_else(|| "-".to_owned(), ToString::to_string),
        p.history_from
    );
    for a in &pr.assumed {
        say!(
            "  assumed:          index {} at {} for the {} intervals not yet priced (the mean of its {} prices before)",
            a.index,
            a.price,
            a.intervals,
            a.over
        );
    }
    say!(
        "{:<14} {:>16} {:>16} {:>14} {:>16}",
        "",
        "delivered kWh",
        "deviation kWh",
        "penalty kWh",
        format!("penalty {c}")
    );
    let row = |name: String, o: &volta_contracts::projection::Outcome| -> anyhow::Result<()> {
        say!(
            "{:<14} {:>16} {:>16} {:>14} {:>16}",
            name,
            o.delivered,
            o.deviation,
            o.penalty_volume.normalize(),
            o.penalty_amount.round_dp(2)
        );
        Ok(())
    };
    row("point forecast".to_owned(), &pr.expected)?;
    for level in &pr.levels {
        row(format!("P{}", (level.level * 100.0).round()), &level.outcome)?;
    }
    say!(
        "expected penalty {} {c}; {}% of scenarios pay one",
        pr.expected_penalty.round_dp(2),
        (pr.penalty_probability * Decimal::ONE_HUNDRED).round_dp(1)
    );
    Ok(())
}

/// `from` to `to`, inclusive.
fn period(from: Date, to: Date) -> anyhow::Result<Period> {
    if to < from {
        bail!("--to {to} is before --from {from}");
    }
    Ok(Period::new(from, to.tomorrow()?)?)
}

fn print_volumes(volumes: &[Volume]) -> anyhow::Result<()> {
    say!(
        "{:<12} {:>16} {:>16} {:>16} {:>11} {:>9}",
        "bucket",
        "contracted kWh",
        "delivered kWh",
        "deviation kWh",
        "completion",
        "missing"
    );
    for v in volumes {
        say!(
            "{:<12} {:>16} {:>16} {:>16} {:>11} {:>9}",
            v.label,
            v.contracted,
            v.delivered,
            v.deviation(),
            v.completion().map_or_else(|| "-".to_owned(), |c| format!("{c} %")),
            v.missing
        );
    }
    Ok(())
}

/// A TOML file read as `T`; an error names the file and the field's path.
fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| anyhow!("{}: {}", path.display(), e.message()))?;
    serde_path_to_error::deserialize(toml::Value::Table(table))
        .map_err(|e| anyhow!("{}: {}: {}", path.display(), e.path(), e.inner().message()))
}

async fn apply(store: &Store, tenant: &str, file: &Path) -> anyhow::Result<()> {
    let portfolio: PortfolioFile = read_toml(file)?;
    for party in &portfolio.parties {
        store.put_party(tenant, party).await?;
    }
    for meter in &portfolio.meters {
        store.put_meter(tenant, meter).await.map_err(|e| anyhow!("meter {}: {e}", meter.id))?;
    }
    let (mut created, mut kept) = (0, 0);
    for (i, entry) in portfolio.contracts.into_iter().enumerate() {
        let terms = match (entry.terms, &entry.terms_file) {
            (Some(terms), None) => terms,
            (None, Some(path)) => read_toml(&file.parent().unwrap_or(Path::new(".")).join(path))?,
            _ => bail!("{}: contracts[{i}]: give `terms` or `terms_file`", file.display()),
        };
        let id = entry.id.clone();
        let contract = Contract::draft(entry.id, entry.seller, entry.buyer, entry.meters, terms)
            .map_err(|e| anyhow!("{}: contracts[{i}] ({id}): {e}", file.display()))?;
        let key = format!("apply:{id}");
        match store.create_contract(tenant, Some(&key), &contract).await.map_err(|e| anyhow!("contract {id}: {e}"))? {
            Applied::Now(_) => created += 1,
            Applied::Before(_) => kept += 1,
        }
    }
    for allocation in &portfolio.allocations {
        store.allocate(tenant, allocation).await.map_err(|e| anyhow!("allocation of {}: {e}", allocation.meter))?;
    }
    say!(
        "{} parties, {} meters, {created} contracts created ({kept} already there), {} allocations",
        portfolio.parties.len(),
        portfolio.meters.len(),
        portfolio.allocations.len()
    );
    Ok(())
}

/// A CSV's header positions of `names` (the optional ones may be absent).
fn columns(
    headers: &csv::StringRecord,
    file: &Path,
    required: &[&str],
    optional: &[&str],
) -> anyhow::Result<Vec<Option<usize>>> {
    let find = |name: &str| headers.iter().position(|h| h.trim() == name);
    let mut out = Vec::new();
    for name in required {
        let at =
            find(name).ok_or_else(|| anyhow!("{}: no column {name:?} (columns: {:?})", file.display(), headers))?;
        out.push(Some(at));
    }
    for name in optional {
        out.push(find(name));
    }
    Ok(out)
}

/// Meter readings from a CSV file, each row checked: an error names the
/// file, its line and column.
fn read_readings(file: &Path) -> anyhow::Result<Vec<Reading>> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_path(file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let headers = reader.headers().with_context(|| format!("{}: no header row", file.display()))?.clone();
    let at = columns(&headers, file, &["meter", "start", "energy_kwh"], &["quality"])?;
    let (meter, start, energy, quality) = (at[0].unwrap_or(0), at[1].unwrap_or(0), at[2].unwrap_or(0), at[3]);
    let mut meters: HashMap<String, MeterId> = HashMap::new();
    let mut readings = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| anyhow!("{}: {e}", file.display()))?;
        let line = record.position().map_or(0, csv::Position::line);
        let cell = |column: usize| record.get(column).unwrap_or("").trim();
        let bad = |column: usize, what: String| {
            anyhow!("{}:{line}: column {} ({}): {what}", file.display(), column + 1, &headers[column])
        };
        let id = cell(meter);
        let meter_id = match meters.get(id) {
            Some(m) => m.clone(),
            None => {
                let m = MeterId::new(id).map_err(|e| bad(meter, e.to_string()))?;
                meters.insert(id.to_owned(), m.clone());
                m
            }
        };
        let instant = Timestamp::from_str(cell(start)).map_err(|_| {
            bad(start, format!("{:?} is not an RFC 3339 time with its offset (2024-01-01T00:15:00+01:00)", cell(start)))
        })?;
        let kwh = Energy::from_str(cell(energy)).map_err(|e| bad(energy, e.to_string()))?;
        let flag = match quality.map(cell) {
            None | Some("") => Quality::Measured,
            Some(name) => Quality::from_name(name).ok_or_else(|| {
                bad(quality.unwrap_or(0), format!("{name:?}: measured, estimated, substituted or missing"))
            })?,
        };
        readings.push(Reading { meter: meter_id, start: instant, energy: kwh, quality: flag });
    }
    if readings.is_empty() {
        bail!("{}: no readings", file.display());
    }
    Ok(readings)
}

/// Index prices from a CSV file: start,price.
fn read_prices(file: &Path) -> anyhow::Result<Vec<(Timestamp, Price)>> {
    let mut reader = csv::Reader::from_path(file).with_context(|| format!("cannot read {}", file.display()))?;
    let headers = reader.headers().with_context(|| format!("{}: no header row", file.display()))?.clone();
    let at = columns(&headers, file, &["start", "price"], &[])?;
    let (start, price) = (at[0].unwrap_or(0), at[1].unwrap_or(0));
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| anyhow!("{}: {e}", file.display()))?;
        let line = record.position().map_or(0, csv::Position::line);
        let cell = |column: usize| record.get(column).unwrap_or("").trim();
        let bad = |column: usize, what: String| {
            anyhow!("{}:{line}: column {} ({}): {what}", file.display(), column + 1, &headers[column])
        };
        let instant = Timestamp::from_str(cell(start))
            .map_err(|_| bad(start, format!("{:?} is not an RFC 3339 time with its offset", cell(start))))?;
        let value = Price::from_str(cell(price)).map_err(|e| bad(price, e.to_string()))?;
        out.push((instant, value));
    }
    Ok(out)
}

/// Meter readings from a Parquet file, each row checked: an error names
/// the file, the row and the column.
#[expect(clippy::wildcard_enum_match_arm, reason = "parquet's Field is foreign: every other kind is refused, by name")]
fn read_readings_parquet(file: &Path) -> anyhow::Result<Vec<Reading>> {
    use parquet::file::reader::{FileReader as _, SerializedFileReader};
    use parquet::record::Field;
    let opened = std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
    let reader =
        SerializedFileReader::new(opened).map_err(|e| anyhow!("{}: not a Parquet file: {e}", file.display()))?;
    let columns: Vec<String> =
        reader.metadata().file_metadata().schema_descr().columns().iter().map(|c| c.name().to_owned()).collect();
    let find = |name: &str| columns.iter().position(|c| c == name);
    let need =
        |name: &str| find(name).ok_or_else(|| anyhow!("{}: no column {name:?} (columns: {columns:?})", file.display()));
    let (meter, start) = (need("meter")?, need("start")?);
    let energy = match (find("energy_wh"), find("energy_kwh")) {
        (Some(at), _) => (at, true),
        (None, Some(at)) => (at, false),
        (None, None) => bail!("{}: no column \"energy_wh\" or \"energy_kwh\" (columns: {columns:?})", file.display()),
    };
    let quality = find("quality");
    let mut meters: HashMap<String, MeterId> = HashMap::new();
    let mut readings = Vec::new();
    let rows = reader.get_row_iter(None).map_err(|e| anyhow!("{}: {e}", file.display()))?;
    for (n, row) in rows.enumerate() {
        let row = row.map_err(|e| anyhow!("{}: row {}: {e}", file.display(), n + 1))?;
        let fields: Vec<&Field> = row.get_column_iter().map(|(_, f)| f).collect();
        let bad = |column: usize, what: String| {
            anyhow!("{}: row {}, column {}: {what}", file.display(), n + 1, columns[column])
        };
        let field = |column: usize| fields.get(column).copied().unwrap_or(&Field::Null);
        let id = match field(meter) {
            Field::Str(text) => text.as_str(),
            other => return Err(bad(meter, format!("{other} is not a meter id"))),
        };
        let meter_id = match meters.get(id) {
            Some(m) => m.clone(),
            None => {
                let m = MeterId::new(id).map_err(|e| bad(meter, e.to_string()))?;
                meters.insert(id.to_owned(), m.clone());
                m
            }
        };
        let instant = match field(start) {
            Field::TimestampMillis(ms) => Timestamp::from_millisecond(*ms).map_err(|e| bad(start, e.to_string()))?,
            Field::TimestampMicros(us) => Timestamp::from_microsecond(*us).map_err(|e| bad(start, e.to_string()))?,
            Field::Str(text) => Timestamp::from_str(text)
                .map_err(|_| bad(start, format!("{text:?} is not an RFC 3339 time with its offset")))?,
            other => return Err(bad(start, format!("{other} is not a time"))),
        };
        let kwh = match (field(energy.0), energy.1) {
            (Field::Long(wh), true) => Energy::from_wh(*wh),
            (Field::Int(wh), true) => Energy::from_wh(i64::from(*wh)),
            (Field::Str(text), false) => Energy::from_str(text).map_err(|e| bad(energy.0, e.to_string()))?,
            (Field::Double(v), false) => Energy::from_str(&v.to_string()).map_err(|e| bad(energy.0, e.to_string()))?,
            (other, _) => return Err(bad(energy.0, format!("{other} is not an energy"))),
        };
        let flag = match quality.map(field) {
            None | Some(Field::Null) => Quality::Measured,
            Some(Field::Str(name)) => Quality::from_name(name).ok_or_else(|| {
                bad(quality.unwrap_or(0), format!("{name:?}: measured, estimated, substituted or missing"))
            })?,
            Some(other) => return Err(bad(quality.unwrap_or(0), format!("{other} is not a quality"))),
        };
        readings.push(Reading { meter: meter_id, start: instant, energy: kwh, quality: flag });
    }
    if readings.is_empty() {
        bail!("{}: no readings", file.display());
    }
    Ok(readings)
}
