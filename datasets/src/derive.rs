//! Derivation of the example cases' profile files from the raw datasets.
//!
//! Every transformation is documented in `datasets/README.md`. The output is
//! deterministic; a test checks that the committed files match a fresh
//! derivation.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use volta_engine::case::table::{Table, read_table};

use crate::raw;

/// The two derived profile files: `(file name, CSV text)`.
///
/// # Errors
/// When a raw file is missing or malformed.
pub fn profiles() -> Result<Vec<(&'static str, String)>> {
    let sources = Sources::load()?;
    Ok(vec![("campus_profiles.csv", campus(&sources)?), ("islanded_profiles.csv", islanded(&sources)?)])
}

/// Source series, indexed by instant (seconds since the epoch).
struct Sources {
    /// Victoria demand (GW) and Melbourne temperature (°C), half-hourly, AEST.
    vic: Series2,
    /// PVDAQ system 50 AC power (W), 15 min, UTC−07:00.
    pv: std::collections::HashMap<i64, f64>,
    /// The PV system's highest recorded output, W (the per-unit base).
    pv_peak_w: f64,
}

struct Series2 {
    demand_gw: std::collections::HashMap<i64, f64>,
    temp_c: std::collections::HashMap<i64, f64>,
    peak_gw: f64,
}

impl Sources {
    fn load() -> Result<Self> {
        let aest = TimeZone::fixed(jiff::tz::offset(10));
        let vic_path = raw("vic_elecdemand_2014_halfhourly.csv");
        let vic = table(&vic_path)?;
        let times = vic.instants("period_start_aest_assumed", &vic_path, &aest).map_err(|e| anyhow::anyhow!(e.1))?;
        let demand = vic.numbers("demand_gw", &vic_path).map_err(|e| anyhow::anyhow!(e.1))?;
        let temp = vic.numbers("temperature_c", &vic_path).map_err(|e| anyhow::anyhow!(e.1))?;
        let peak_gw = demand.iter().copied().fold(f64::MIN, f64::max);
        let key = |t: &Timestamp| t.as_second();
        let vic = Series2 {
            demand_gw: times.iter().map(key).zip(demand.iter().copied()).collect(),
            temp_c: times.iter().map(key).zip(temp.iter().copied()).collect(),
            peak_gw,
        };

        let pv_path = raw("system_50_ac_power_2_full_DST.parquet");
        let pv = table(&pv_path)?;
        let pv_times = pv.instants("measured_on", &pv_path, &TimeZone::UTC).map_err(|e| anyhow::anyhow!(e.1))?;
        let pv_w = pv.numbers_with_gaps("ac_power_2", &pv_path).map_err(|e| anyhow::anyhow!(e.1))?;
        let pv_peak_w = pv_w.iter().copied().filter(|v| v.is_finite()).fold(0.0, f64::max);
        Ok(Self { vic, pv: pv_times.iter().map(key).zip(pv_w).collect(), pv_peak_w })
    }

    /// Mean of the Victoria half-hours starting in [t, t + step).
    fn vic_mean(&self, which: &std::collections::HashMap<i64, f64>, t: Timestamp, step: SignedDuration) -> Result<f64> {
        mean_over(which, t, step, 1800).with_context(|| format!("no Victoria data at {t}"))
    }

    /// PV per unit of the system's peak: the mean of the quarter-hours in
    /// [t, t + step), with missing (NaN) quarter-hours filled from their
    /// neighbours in the same step, and 0 for a step with no valid value
    /// (the system's night-time gaps).
    fn pv_pu(&self, t: Timestamp, step: SignedDuration) -> f64 {
        let mean = mean_over(&self.pv, t, step, 900).unwrap_or(0.0);
        (mean / self.pv_peak_w).clamp(0.0, 1.0)
    }
}

fn table(path: &Path) -> Result<Table> {
    read_table(path, path).map_err(|e| anyhow::anyhow!(e.1))
}

/// Mean of the finite values at `t, t + every, ...` before `t + step`.
fn mean_over(map: &std::collections::HashMap<i64, f64>, t: Timestamp, step: SignedDuration, every: i64) -> Option<f64> {
    let start = t.as_second();
    let values: Vec<f64> = (start..start + step.as_secs())
        .step_by(usize::try_from(every).ok()?)
        .filter_map(|s| map.get(&s).copied())
        .filter(|v| v.is_finite())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// Heat-pump COP from the outdoor temperature: 45 % of the Carnot COP for
/// 55 °C supply, kept within [2, 5].
fn heat_pump_cop(temp_c: f64) -> f64 {
    let sink = 55.0 + 273.15;
    let source = temp_c + 273.15;
    (0.45 * sink / (sink - source)).clamp(2.0, 5.0)
}

/// Chiller EER from the outdoor temperature: 50 % of the Carnot EER for
/// 7 °C chilled water and a condenser 8 K above ambient, within [2.5, 7].
fn chiller_eer(temp_c: f64) -> f64 {
    let evap = 7.0 + 273.15;
    let cond = temp_c + 8.0 + 273.15;
    (0.5 * evap / (cond - evap).max(1.0)).clamp(2.5, 7.0)
}

/// One row per step of a grid: (instant, local label).
fn steps(start: &str, tz: &str, step_min: i64, n: usize) -> Result<Vec<(Timestamp, String)>> {
    let tz = TimeZone::get(tz)?;
    let start: jiff::civil::DateTime = start.parse()?;
    let t0 = tz.to_ambiguous_zoned_datetime(start).unambiguous()?.timestamp();
    let step = SignedDuration::from_mins(step_min);
    (0..n)
        .map(|i| {
            let t = t0.checked_add(step * i32::try_from(i)?)?;
            let label = t.to_zoned_datetime(tz.clone()).strftime("%Y-%m-%dT%H:%M%:z").to_string();
            Ok((t, label))
        })
        .collect()
}

/// The campus: one week from Monday 2014-11-03 in Melbourne (AEDT), hourly.
fn campus(src: &Sources) -> Result<String> {
    const ELEC_PEAK_KW: f64 = 1_800.0;
    let step = SignedDuration::from_hours(1);
    // PV: the same local clock hours of 7–14 May 2012 in Golden, CO
    // (UTC−07:00): late spring in both hemispheres, similar day length.
    let pv_shift = pv_shift("2014-11-03T00:00", "Australia/Melbourne", "2012-05-07T00:00")?;
    let mut out = String::from(
        "timestamp,electric_kw,heat_kw,cooling_kw,temperature_c,pv_availability,heat_pump_cop,chiller_eer,grid_price\n",
    );
    for (t, label) in steps("2014-11-03T00:00", "Australia/Melbourne", 60, 168)? {
        let demand = src.vic_mean(&src.vic.demand_gw, t, step)?;
        let temp = src.vic_mean(&src.vic.temp_c, t, step)?;
        let electric = demand / src.vic.peak_gw * ELEC_PEAK_KW;
        // Degree-hour models (see datasets/README.md).
        let heat = 150.0 + 45.0 * (15.5 - temp).max(0.0);
        let cooling = 90.0 + 40.0 * (temp - 20.0).max(0.0);
        let pv = src.pv_pu(t.checked_add(pv_shift)?, step);
        let local = t.to_zoned_datetime(TimeZone::get("Australia/Melbourne")?);
        let weekday = local.weekday().to_monday_one_offset() <= 5;
        let peak_hours = (7..23).contains(&local.hour());
        let price = if weekday && peak_hours { 0.28 } else { 0.13 };
        writeln!(
            out,
            "{label},{electric:.2},{heat:.2},{cooling:.2},{temp:.2},{pv:.4},{:.4},{:.4},{price:.2}",
            heat_pump_cop(temp),
            chiller_eer(temp)
        )?;
    }
    Ok(out)
}

/// The islanded microgrid: three winter days from 2014-07-14 in Melbourne
/// (AEST), half-hourly.
fn islanded(src: &Sources) -> Result<String> {
    const PEAK_KW: f64 = 420.0;
    let step = SignedDuration::from_mins(30);
    // PV: the same local clock times of 14–16 January 2012 in Golden
    // (winter there too).
    let pv_shift = pv_shift("2014-07-14T00:00", "Australia/Melbourne", "2012-01-14T00:00")?;
    let mut out = String::from("timestamp,load_kw,pv_availability,temperature_c\n");
    for (t, label) in steps("2014-07-14T00:00", "Australia/Melbourne", 30, 144)? {
        let demand = src.vic_mean(&src.vic.demand_gw, t, step)?;
        let temp = src.vic_mean(&src.vic.temp_c, t, step)?;
        let load = demand / src.vic.peak_gw * PEAK_KW;
        let pv = src.pv_pu(t.checked_add(pv_shift)?, step);
        writeln!(out, "{label},{load:.2},{pv:.4},{temp:.2}")?;
    }
    Ok(out)
}

/// The shift from a grid instant to the PV instant with the same local
/// clock time on the chosen PV day (the PV site keeps UTC−07:00).
fn pv_shift(grid_start: &str, grid_tz: &str, pv_start: &str) -> Result<SignedDuration> {
    let g: jiff::civil::DateTime = grid_start.parse()?;
    let g = TimeZone::get(grid_tz)?.to_ambiguous_zoned_datetime(g).unambiguous()?;
    let p: jiff::civil::DateTime = pv_start.parse()?;
    let p = TimeZone::fixed(jiff::tz::offset(-7)).to_ambiguous_zoned_datetime(p).unambiguous()?;
    let shift = g.timestamp().duration_until(p.timestamp());
    if shift.as_secs() % 900 != 0 {
        bail!("PV shift is not a whole number of quarter-hours");
    }
    Ok(shift)
}
