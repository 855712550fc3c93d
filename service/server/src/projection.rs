//! Projected deviation: where a contract's period will end, from the
//! readings so far and Volta's own load forecast of the rest.
//!
//! For each meter of the contract a model is trained on its readings of
//! the `history_days` before the cut, issued at the cut's time of day with
//! the rest of the period as its horizon, and cross-fitted so that every
//! training day also has an out-of-sample forecast of that whole horizon.
//! The point forecast is the expected future; each past day's error path,
//! replayed on it, is one scenario (the meters' paths paired by day, so a
//! cold spell is cold at every meter). Each future is then settled by the
//! contract's own rules ([`volta_contracts::projection`]).
//!
//! Readings after the cut are not used: the projection asks where the
//! period ends given what was known at the cut. The default cut is where
//! the readings stop (the end of the earliest meter's last reading in the
//! period). A reading missing before the cut counts as nothing delivered,
//! as in a settlement, and the projection counts them.

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};

use volta_contracts::ledger::{IndexPrices, Portfolio};
use volta_contracts::projection::{Future, Projection, project};
use volta_contracts::{
    ContractError, ContractId, Energy, MeterId, MeteringPoint, Period, Quality, Reading, ReadingLog,
};
use volta_engine::{Cancel, TimeGrid};
use volta_forecasting::{FeatureSpec, ForecastError, ForecastSpec, History, ModelSpec, train_cancellable};

use crate::store::contracts::{ContractStore, ContractStoreError};

/// Days of readings a model trains on when the caller does not say.
pub const DEFAULT_HISTORY_DAYS: usize = 182;

/// The most days of readings a model trains on (three years).
pub const MAX_HISTORY_DAYS: usize = 1096;

/// Levels reported when the caller asks for none: P10, P50, P90.
pub const DEFAULT_LEVELS: [f64; 3] = [0.1, 0.5, 0.9];

/// The most training rows (issue days times horizon steps, summed over the
/// meters): the features of one row take about 250 bytes, so this bounds
/// a projection's memory near 0.5 GB.
pub const MAX_TRAINING_ROWS: usize = 2_000_000;

/// What to project with.
#[derive(Debug, Clone)]
pub struct Options {
    /// Readings before this are used; the rest of the period is projected.
    /// `None`: where the readings stop.
    pub cut: Option<Timestamp>,
    /// Levels to report, in (0, 1), increasing.
    pub levels: Vec<f64>,
    /// The forecasting model.
    pub model: ModelSpec,
    /// Days of readings before the cut a model trains on.
    pub history_days: usize,
}

/// Budgets a projection is checked against before any work.
#[derive(Debug, Clone, Copy)]
pub struct Budgets {
    /// Steps of one meter's horizon.
    pub max_horizon_steps: usize,
    /// Steps of history, summed over the meters.
    pub max_history_steps: usize,
}

/// A projection and how it was made.
#[derive(Debug, Clone)]
pub struct Projected {
    /// The projection.
    pub projection: Projection,
    /// The forecasting model's name.
    pub model: &'static str,
    /// The first day of the readings the models trained on.
    pub history_from: Date,
    /// The past days whose error paths are the scenarios, oldest first.
    pub analogs: Vec<Date>,
    /// The contract's currency.
    pub currency: String,
}

/// Why a projection failed.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// The contract data or a request field.
    #[error(transparent)]
    Contract(#[from] ContractError),
    /// The store.
    #[error(transparent)]
    Store(#[from] ContractStoreError),
    /// Forecasting a meter.
    #[error("meter {meter}: {error}")]
    Forecast {
        /// The meter.
        meter: MeterId,
        /// What failed.
        error: ForecastError,
    },
    /// A budget the request exceeds.
    #[error("{field}: {value} is over the limit {limit} = {max}")]
    OverLimit {
        /// The request field.
        field: &'static str,
        /// Its value.
        value: usize,
        /// The limit's name.
        limit: &'static str,
        /// The limit.
        max: usize,
    },
}

/// What a projection reads.
#[derive(Debug)]
pub struct Inputs {
    portfolio: Portfolio,
    log: ReadingLog,
    prices: IndexPrices,
    history: ReadingLog,
    cut: Timestamp,
    meters: Vec<(MeteringPoint, usize)>,
    history_from: Date,
}

/// Reads what projecting `id` over `period` needs, after checking the
/// options against `budgets`.
///
/// # Errors
/// An unknown contract, a cut outside the period or off a meter's grid, a
/// budget exceeded, or the store.
pub async fn inputs(
    store: &dyn ContractStore,
    tenant: &str,
    id: &ContractId,
    period: &Period,
    options: &Options,
    budgets: Budgets,
) -> Result<Inputs, ProjectionError> {
    if options.history_days == 0 || options.history_days > MAX_HISTORY_DAYS {
        return Err(ContractError::invalid(
            "history_days",
            format!("{}; between 1 and {MAX_HISTORY_DAYS}", options.history_days),
        )
        .into());
    }
    let (portfolio, log, prices) = store.settlement_inputs(tenant, id, period).await?;
    let contract =
        portfolio.contract(id).ok_or_else(|| ContractStoreError::NotFound { what: "contract", id: id.to_string() })?;
    let (zone, _) = portfolio.clock(id)?;
    let begin = volta_contracts::calendar::local_midnight(period.first(), &zone)?.timestamp();
    let end = volta_contracts::calendar::local_midnight(period.end(), &zone)?.timestamp();
    let points: Vec<MeteringPoint> = contract.meters().iter().filter_map(|m| portfolio.meter(m).cloned()).collect();

    let cut = match options.cut {
        Some(cut) => cut,
        // Where the readings stop: the end of the last reading in the
        // period, the earliest of the meters' (gaps before it stay gaps).
        None => points
            .iter()
            .map(|m| {
                let step = m.interval();
                let mut t = end;
                while t > begin && log.at(&m.id, t - step, None).is_none() {
                    t -= step;
                }
                t
            })
            .min()
            .unwrap_or(begin),
    };
    if cut < begin || cut > end {
        return Err(ContractError::invalid("as_of", format!("{cut} is outside {period} ({begin} to {end})")).into());
    }
    let history_from = cut
        .to_zoned_datetime(zone.clone())
        .date()
        .checked_sub(jiff::Span::new().days(i64::try_from(options.history_days).unwrap_or(i64::MAX)))
        .map_err(|e| ContractError::invalid("history_days", e.to_string()))?;
    let mut meters = Vec::with_capacity(points.len());
    let (mut history_steps, mut rows) = (0_usize, 0_usize);
    for point in points {
        let meter_zone = point.zone()?;
        let step = point.interval();
        let midnight =
            volta_contracts::calendar::local_midnight(cut.to_zoned_datetime(meter_zone.clone()).date(), &meter_zone)?;
        if midnight.duration_until(&cut.to_zoned_datetime(meter_zone.clone())).as_secs() % step.as_secs() != 0 {
            return Err(ContractError::invalid(
                "as_of",
                format!("{cut} is not on meter {}'s {}-minute grid", point.id, point.interval_minutes),
            )
            .into());
        }
        let horizon = steps(cut, end, step);
        if horizon > budgets.max_horizon_steps {
            return Err(ProjectionError::OverLimit {
                field: "as_of",
                value: horizon,
                limit: "max_horizon_steps",
                max: budgets.max_horizon_steps,
            });
        }
        let start = volta_contracts::calendar::local_midnight(history_from, &meter_zone)?.timestamp();
        let history = steps(start, cut, step);
        history_steps += history;
        rows += history / steps_per_day(step) * horizon;
        meters.push((point, horizon));
    }
    if history_steps > budgets.max_history_steps {
        return Err(ProjectionError::OverLimit {
            field: "history_days",
            value: history_steps,
            limit: "max_series_steps",
            max: budgets.max_history_steps,
        });
    }
    if rows > MAX_TRAINING_ROWS {
        return Err(ContractError::invalid(
            "history_days",
            format!(
                "{} days of history for the {} steps left make {rows} training rows; at most {MAX_TRAINING_ROWS} (fewer days, or a later as_of)",
                options.history_days,
                meters.iter().map(|(_, h)| h).max().unwrap_or(&0)
            ),
        )
        .into());
    }
    // Cross-fitting holds out a third of the past days at a time, and a
    // held-out day needs the whole horizon behind it: the rest of the
    // period, four times over, after a week of lags.
    let days_left = cut.duration_until(end).as_secs().max(0).unsigned_abs().div_ceil(86_400);
    let needed = usize::try_from(7 + 4 * days_left).unwrap_or(usize::MAX);
    if days_left > 0 && options.history_days < needed {
        return Err(ContractError::invalid(
            "history_days",
            format!(
                "{} days; projecting the {days_left} days left needs at least {needed} days of readings before as_of \
                 (a week of lags, then four times the days left, so that past days are forecast out of sample)",
                options.history_days
            ),
        )
        .into());
    }
    let ids: Vec<MeterId> = meters.iter().map(|(m, _)| m.id.clone()).collect();
    let from =
        volta_contracts::calendar::local_midnight(history_from, &zone)?.timestamp() - SignedDuration::from_hours(24);
    let history = store.readings(tenant, &ids, from, cut).await?;
    Ok(Inputs { portfolio, log, prices, history, cut, meters, history_from })
}

/// Whole `step`s from `from` to `to`.
fn steps(from: Timestamp, to: Timestamp, step: SignedDuration) -> usize {
    usize::try_from(from.duration_until(to).as_secs().max(0) / step.as_secs().max(1)).unwrap_or(usize::MAX)
}

fn steps_per_day(step: SignedDuration) -> usize {
    usize::try_from(86_400 / step.as_secs().max(1)).unwrap_or(1).max(1)
}

/// Projects `id`'s `period` from `inputs`: trains a model per meter,
/// builds the futures and settles each. CPU work: run it off the runtime.
///
/// # Errors
/// Too little history for an out-of-sample path, a failed fit,
/// cancellation, or a contract rule.
pub fn run(
    inputs: &Inputs,
    id: &ContractId,
    period: &Period,
    options: &Options,
    cancel: &Cancel,
) -> Result<Projected, ProjectionError> {
    let Inputs { portfolio, log, prices, history, cut, meters, history_from } = inputs;
    let currency =
        portfolio.contract(id).and_then(|c| c.versions().last().map(|v| v.terms.currency.clone())).unwrap_or_default();
    let mut expected: Future = Vec::new();
    // Per meter: the scenario values keyed by the analog day.
    let mut per_meter: Vec<(MeteringPoint, Vec<Analog>)> = Vec::new();
    for (meter, horizon) in meters {
        if *horizon == 0 {
            continue;
        }
        let forecast = |error: ForecastError| ProjectionError::Forecast { meter: meter.id.clone(), error };
        let series = series_of(meter, history, *history_from, *cut)?;
        let zone = meter.zone()?;
        let issue_time = cut.to_zoned_datetime(zone.clone()).time();
        let mut spec =
            ForecastSpec::new(options.model.clone(), FeatureSpec::new(*horizon), issue_time, options.levels.clone());
        if spec.quantiles.is_empty() {
            spec.quantiles = DEFAULT_LEVELS.to_vec();
        }
        let model = train_cancellable(&series, &spec, series.len(), cancel).map_err(forecast)?;
        let point = model.forecast(&series, *cut).map_err(forecast)?;
        let paths = model.error_paths();
        if paths.is_empty() {
            return Err(ContractError::invalid(
                "history_days",
                format!(
                    "meter {}: {} days of readings before {cut} leave no day with an out-of-sample forecast of the {horizon} steps left; more history is needed",
                    meter.id, options.history_days
                ),
            )
            .into());
        }
        expected.extend(readings(meter, *cut, &point.point)?);
        let scenarios = model.scenarios(&point, paths);
        per_meter.push((
            meter.clone(),
            scenarios.into_iter().map(|s| (s.analog.to_zoned_datetime(zone.clone()).date(), s.values)).collect(),
        ));
    }
    // Scenarios are the days every meter has a path for, the latest
    // MAX_SCENARIOS of them.
    let mut analogs: Vec<Date> =
        per_meter.first().map(|(_, s)| s.iter().map(|(d, _)| *d).collect()).unwrap_or_default();
    for (_, s) in &per_meter[1.min(per_meter.len())..] {
        analogs.retain(|d| s.iter().any(|(day, _)| day == d));
    }
    let skip = analogs.len().saturating_sub(volta_contracts::projection::MAX_SCENARIOS);
    analogs.drain(..skip);
    let futures: Vec<Future> = if per_meter.is_empty() {
        // Nothing left to forecast: the one future is the empty one.
        vec![Vec::new()]
    } else {
        analogs
            .iter()
            .map(|day| {
                let mut future = Vec::new();
                for (meter, scenarios) in &per_meter {
                    if let Some((_, values)) = scenarios.iter().find(|(d, _)| d == day) {
                        future.extend(readings(meter, *cut, values)?);
                    }
                }
                Ok(future)
            })
            .collect::<Result<_, ContractError>>()?
    };
    if futures.is_empty() {
        return Err(ContractError::invalid(
            "history_days",
            "the meters' forecasts share no day of out-of-sample errors",
        )
        .into());
    }
    let levels = if options.levels.is_empty() { DEFAULT_LEVELS.to_vec() } else { options.levels.clone() };
    let projection = project(portfolio, id, period, log, prices, *cut, &expected, &futures, &levels)?;
    Ok(Projected { projection, model: options.model.name(), history_from: *history_from, analogs, currency })
}

/// A scenario of one meter: the past day whose errors it replays, and its
/// value per step of the horizon.
type Analog = (Date, Vec<f64>);

/// A meter's readings from the history log as a forecasting series, from
/// local midnight of `from` to `cut`, in kWh (missing readings NaN).
fn series_of(meter: &MeteringPoint, log: &ReadingLog, from: Date, cut: Timestamp) -> Result<History, ProjectionError> {
    let zone = meter.zone()?;
    let start = volta_contracts::calendar::local_midnight(from, &zone)?;
    let step = meter.interval();
    let len = steps(start.timestamp(), cut, step);
    let grid = TimeGrid::new(start, step, len).map_err(|e| ContractError::invalid("history_days", e.to_string()))?;
    let values: Vec<f64> = grid
        .instants()
        .map(|t| {
            log.at(&meter.id, t, None)
                .filter(|r| r.quality != Quality::Missing)
                .map_or(f64::NAN, |r| r.energy.wh() as f64 / 1000.0)
        })
        .collect();
    History::new(grid, "energy_kwh", values, Vec::new())
        .map_err(|error| ProjectionError::Forecast { meter: meter.id.clone(), error })
}

/// A forecast's values (kWh per interval from `cut`) as estimated readings,
/// rounded to the watt-hour and never negative.
fn readings(meter: &MeteringPoint, cut: Timestamp, values: &[f64]) -> Result<Vec<Reading>, ContractError> {
    let step = meter.interval();
    values
        .iter()
        .enumerate()
        .map(|(k, v)| {
            let start = cut + step * i32::try_from(k).unwrap_or(i32::MAX);
            if !v.is_finite() {
                return Err(ContractError::invalid(
                    "as_of",
                    format!(
                        "meter {}: the forecast has no value for {start} (too few readings before the cut)",
                        meter.id
                    ),
                ));
            }
            Ok(Reading {
                meter: meter.id.clone(),
                start,
                energy: Energy::from_wh((v.max(0.0) * 1000.0).round() as i64),
                quality: Quality::Estimated,
            })
        })
        .collect()
}
