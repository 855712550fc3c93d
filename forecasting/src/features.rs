//! Features of a direct multi-horizon forecast.
//!
//! A forecast is issued at step `i0` (its issue time) for the steps
//! `i0, i0 + 1, ..., i0 + H - 1`: lead `k` targets step `j = i0 + k`. Every
//! feature of a (issue, lead) pair uses only what is known at the issue
//! time: target values before `i0`, exogenous values before `i0`, and for
//! columns marked known ahead (weather forecasts) values up to the end of
//! the horizon. Calendar and sun-position features of step `j` are always
//! known. One model serves all leads (the lead is a feature), trained on
//! every past issue time and lead.

use serde::{Deserialize, Serialize};

use crate::calendar::Holidays;
use crate::history::History;
use crate::solar::Site;

/// What the features are built from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSpec {
    /// Steps per forecast.
    pub horizon: usize,
    /// Same-time-of-day lags, in days (each moved back to the latest day
    /// known at issue time).
    pub lag_days: Vec<usize>,
    /// Holidays of the calendar.
    pub holidays: Holidays,
    /// The temperature column for degree-hour and smoothed-temperature
    /// features, if any.
    pub temperature: Option<String>,
    /// Base of heating degree-hours, °C.
    pub heating_base_c: f64,
    /// Base of cooling degree-hours, °C.
    pub cooling_base_c: f64,
    /// Time constant of the exponentially smoothed temperature, hours.
    pub smoothing_h: f64,
    /// A PV site: adds clear-sky irradiance, sun elevation and yesterday's
    /// clear-sky index.
    pub site: Option<Site>,
}

impl FeatureSpec {
    /// Whether the temperature column is set and, in `series`, a forecast
    /// known over the horizon.
    #[must_use]
    pub fn temperature_known_ahead(&self, series: &History) -> bool {
        self.temperature.as_deref().and_then(|t| series.exog(t)).is_some_and(|e| e.known_ahead)
    }

    /// Defaults for a horizon: lags of 1, 2 and 7 days, no holidays, bases
    /// 18 °C and 22 °C, a 24 h temperature smoothing.
    #[must_use]
    pub fn new(horizon: usize) -> Self {
        Self {
            horizon,
            lag_days: vec![1, 2, 7],
            holidays: Holidays::none(),
            temperature: None,
            heating_base_c: 18.0,
            cooling_base_c: 22.0,
            smoothing_h: 24.0,
            site: None,
        }
    }

    /// Days of history a sample needs before its issue time.
    #[must_use]
    pub fn history_days(&self, steps_per_day: usize) -> usize {
        let horizon_days = self.horizon.div_ceil(steps_per_day);
        self.lag_days.iter().copied().max().unwrap_or(1).max(1) + horizon_days
    }
}

/// Per-step quantities computed once per series.
#[derive(Debug, Clone)]
pub struct Context {
    /// Step of the local day (0-based; local wall time ÷ step).
    pub step_of_day: Vec<u16>,
    /// Day of the week, Monday = 0.
    pub weekday: Vec<u8>,
    /// Month, 1–12.
    pub month: Vec<u8>,
    /// Holiday flag.
    pub holiday: Vec<bool>,
    /// Working day: a weekday that is no holiday, or a weekend day the
    /// calendar makes a working day.
    pub workday: Vec<bool>,
    /// The year-end break (22 December to 6 January), when many businesses
    /// close and demand stays low between the holidays.
    pub year_end: Vec<bool>,
    /// Exponentially smoothed temperature (NaN without a temperature).
    pub smooth_temp: Vec<f64>,
    /// Mean clear-sky GHI over each step (0 without a site).
    pub clear_sky: Vec<f64>,
    /// Sun elevation at each step's middle, degrees (0 without a site).
    pub elevation: Vec<f64>,
    /// Steps per day.
    pub steps_per_day: usize,
}

impl Context {
    /// Computes the context of a series.
    #[must_use]
    pub fn new(series: &History, spec: &FeatureSpec) -> Self {
        let n = series.len();
        let spd = series.steps_per_day();
        let mut step_of_day = Vec::with_capacity(n);
        let mut weekday = Vec::with_capacity(n);
        let mut month = Vec::with_capacity(n);
        let mut holiday = Vec::with_capacity(n);
        let mut workday = Vec::with_capacity(n);
        let mut year_end = Vec::with_capacity(n);
        for i in 0..n {
            let z = series.local(i);
            let secs = i64::from(z.hour()) * 3600 + i64::from(z.minute()) * 60 + i64::from(z.second());
            step_of_day.push((secs / series.step_s()).min(spd as i64 - 1).max(0) as u16);
            weekday.push(z.weekday().to_monday_zero_offset() as u8);
            month.push(z.month() as u8);
            holiday.push(spec.holidays.contains(z.date()));
            workday.push(spec.holidays.is_working_day(z.date()));
            year_end.push((z.month() == 12 && z.day() >= 22) || (z.month() == 1 && z.day() <= 6));
        }
        let temp = spec.temperature.as_deref().and_then(|name| series.exog(name));
        let smooth_temp = match temp {
            Some(col) => {
                let alpha = 1.0 - (-(series.step_s() as f64) / (spec.smoothing_h * 3600.0)).exp();
                let mut s = f64::NAN;
                col.values
                    .iter()
                    .map(|&t| {
                        if !t.is_nan() {
                            s = if s.is_nan() { t } else { s + alpha * (t - s) };
                        }
                        s
                    })
                    .collect()
            }
            None => vec![f64::NAN; n],
        };
        let (clear_sky, elevation) = match spec.site {
            Some(site) => (0..n)
                .map(|i| {
                    let t = series.time(i);
                    let mid = t + jiff::SignedDuration::from_secs(series.step_s() / 2);
                    (site.clear_sky_mean(t, series.step_s()), site.elevation(mid))
                })
                .unzip(),
            None => (vec![0.0; n], vec![0.0; n]),
        };
        Self {
            step_of_day,
            weekday,
            month,
            holiday,
            workday,
            year_end,
            smooth_temp,
            clear_sky,
            elevation,
            steps_per_day: spd,
        }
    }
}

/// Names of the pooled features, in matrix order.
#[must_use]
pub fn names(series: &History, spec: &FeatureSpec) -> Vec<String> {
    let mut out: Vec<String> = ["lead", "step_of_day", "weekday", "month", "holiday", "workday", "year_end"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    for d in &spec.lag_days {
        out.push(format!("lag_{d}d"));
    }
    out.push("last_value".into());
    out.push("last_day_mean".into());
    for e in &series.exog {
        if e.known_ahead {
            out.push(e.name.clone());
        } else {
            out.push(format!("{}_last", e.name));
            out.push(format!("{}_lag_1d", e.name));
        }
    }
    if spec.temperature.is_some() {
        out.extend(["hdh", "cdh", "smooth_temp"].map(str::to_owned));
    }
    if spec.site.is_some() {
        out.extend(["clear_sky", "elevation", "clear_sky_persistence"].map(str::to_owned));
    }
    out
}

/// Number of steps back to the same time of day on the latest day known
/// at issue time, for a lead `k` and a lag of `days`.
fn back(k: usize, days: usize, spd: usize) -> usize {
    spd * days.max(k / spd + 1)
}

/// Writes the pooled features of (issue `i0`, lead `k`) into `row`
/// (cleared first); NaN where a value is missing.
pub fn row(series: &History, spec: &FeatureSpec, ctx: &Context, i0: usize, k: usize, row: &mut Vec<f64>) {
    row.clear();
    let j = i0 + k;
    let spd = ctx.steps_per_day;
    let y = &series.target;
    let at = |v: &[f64], idx: Option<usize>| idx.and_then(|i| v.get(i).copied()).unwrap_or(f64::NAN);
    let cal = |v: &[u8]| v.get(j).map_or(f64::NAN, |&x| f64::from(x));
    let holiday = ctx.holiday.get(j).copied().unwrap_or(false);
    row.push(k as f64);
    row.push(ctx.step_of_day.get(j).map_or(f64::NAN, |&x| f64::from(x)));
    row.push(cal(&ctx.weekday));
    row.push(cal(&ctx.month));
    row.push(f64::from(u8::from(holiday)));
    row.push(f64::from(u8::from(ctx.workday.get(j).copied().unwrap_or(false))));
    row.push(f64::from(u8::from(ctx.year_end.get(j).copied().unwrap_or(false))));
    for &d in &spec.lag_days {
        row.push(at(y, j.checked_sub(back(k, d, spd))));
    }
    row.push(at(y, i0.checked_sub(1)));
    row.push(mean(y, i0.saturating_sub(spd), i0));
    for e in &series.exog {
        if e.known_ahead {
            row.push(at(&e.values, Some(j)));
        } else {
            row.push(at(&e.values, i0.checked_sub(1)));
            row.push(at(&e.values, j.checked_sub(back(k, 1, spd))));
        }
    }
    if let Some(name) = &spec.temperature {
        let col = series.exog(name);
        let known = col.is_some_and(|c| c.known_ahead);
        let t = match col {
            Some(c) if known => at(&c.values, Some(j)),
            Some(c) => at(&c.values, i0.checked_sub(1)),
            None => f64::NAN,
        };
        row.push((spec.heating_base_c - t).max(0.0));
        row.push((t - spec.cooling_base_c).max(0.0));
        row.push(if known { at(&ctx.smooth_temp, Some(j)) } else { at(&ctx.smooth_temp, i0.checked_sub(1)) });
    }
    if spec.site.is_some() {
        row.push(at(&ctx.clear_sky, Some(j)));
        row.push(at(&ctx.elevation, Some(j)));
        // Yesterday's (last known day's) energy over its clear-sky energy.
        row.push(clear_sky_persistence(series, ctx, i0, j));
    }
}

/// Mean of the non-missing values of `v[from..to]`; NaN if none.
fn mean(v: &[f64], from: usize, to: usize) -> f64 {
    let (mut s, mut n) = (0.0, 0usize);
    for &x in &v[from.min(v.len())..to.min(v.len())] {
        if !x.is_nan() {
            s += x;
            n += 1;
        }
    }
    if n == 0 { f64::NAN } else { s / n as f64 }
}

/// The issue steps of a series: every step whose local wall time is
/// `issue_time` (a day with no such time, at a DST change, has none).
#[must_use]
pub fn issue_steps(series: &History, issue_time: jiff::civil::Time) -> Vec<usize> {
    (0..series.len())
        .filter(|&i| {
            let z = series.local(i);
            z.hour() == issue_time.hour() && z.minute() == issue_time.minute() && z.second() == issue_time.second()
        })
        .collect()
}

/// A training set: the pooled features and targets of every (issue, lead)
/// pair with a known target, issued at `issues`, whose target lies before
/// `end`.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    /// Row-major features, `width` per row.
    pub x: Vec<f64>,
    /// Targets.
    pub y: Vec<f64>,
    /// (issue step, lead) of each row.
    pub at: Vec<(usize, usize)>,
    /// Features per row.
    pub width: usize,
}

impl Samples {
    /// A key per row that names it by its (issue step, lead), whatever
    /// other rows are in the set (for [`crate::gbdt::Gbdt::fit_keyed`]).
    #[must_use]
    pub fn keys(&self) -> Vec<u64> {
        self.at.iter().map(|&(i0, k)| ((i0 as u64) << 20) ^ k as u64).collect()
    }
}

impl Samples {
    /// Builds the samples.
    #[must_use]
    pub fn build(series: &History, spec: &FeatureSpec, ctx: &Context, issues: &[usize], end: usize) -> Self {
        let mut out = Samples { width: names(series, spec).len(), ..Samples::default() };
        let mut buf = Vec::with_capacity(out.width);
        for &i0 in issues {
            for k in 0..spec.horizon {
                let j = i0 + k;
                if j >= end || j >= series.len() || series.label(j).is_nan() {
                    continue;
                }
                row(series, spec, ctx, i0, k, &mut buf);
                out.x.extend_from_slice(&buf);
                out.y.push(series.label(j));
                out.at.push((i0, k));
            }
        }
        out
    }

    /// Number of rows.
    #[must_use]
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// Row `r`.
    #[must_use]
    pub fn row(&self, r: usize) -> &[f64] {
        &self.x[r * self.width..(r + 1) * self.width]
    }
}

/// Clear-sky irradiance at `j` times the last known day's clear-sky index.
pub(crate) fn clear_sky_persistence(series: &History, ctx: &Context, i0: usize, j: usize) -> f64 {
    let from = i0.saturating_sub(ctx.steps_per_day);
    let (mut num, mut den) = (0.0, 0.0);
    for (v, cs) in series.target[from..i0].iter().zip(&ctx.clear_sky[from..i0]) {
        if !v.is_nan() {
            num += v;
            den += cs;
        }
    }
    match ctx.clear_sky.get(j) {
        Some(cs) if den > 0.0 => cs * num / den,
        _ => f64::NAN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Exog;
    use volta_engine::time::GridLength;

    fn series() -> History {
        let n = 24 * 10;
        let y: Vec<f64> = (0..n).map(|i| i as f64).collect();
        let t: Vec<f64> = (0..n).map(|i| 100.0 + i as f64).collect();
        let grid = volta_engine::TimeGrid::parse("2024-01-01T00:00", "UTC", "1h", &GridLength::Steps(n)).expect("grid");
        History::new(
            grid,
            "y",
            y,
            vec![
                Exog { name: "temp".into(), values: t.clone(), known_ahead: true },
                Exog { name: "meas".into(), values: t, known_ahead: false },
            ],
        )
        .expect("series")
    }

    #[test]
    fn features_use_only_what_is_known_at_issue_time() {
        let s = series();
        let mut spec = FeatureSpec::new(30);
        spec.temperature = Some("meas".into());
        let ctx = Context::new(&s, &spec);
        let names = names(&s, &spec);
        let mut r = Vec::new();
        let i0 = 24 * 8;
        for k in 0..30 {
            row(&s, &spec, &ctx, i0, k, &mut r);
            let get = |n: &str| r[names.iter().position(|x| x == n).expect(n)];
            // Every lag of the target is before the issue time.
            for d in [1, 2, 7] {
                let lag = get(&format!("lag_{d}d"));
                assert!(lag < i0 as f64, "lead {k}, lag {d}: {lag}");
                assert_eq!((i0 + k) as f64 - lag, (24 * d.max(k / 24 + 1)) as f64);
            }
            assert_eq!(get("last_value"), (i0 - 1) as f64);
            // A known-ahead column is read at the target step, a measured one
            // only before the issue.
            assert_eq!(get("temp"), 100.0 + (i0 + k) as f64);
            assert!(get("meas_last") < 100.0 + i0 as f64 && get("meas_lag_1d") < 100.0 + i0 as f64);
            assert!(get("smooth_temp") < 100.0 + i0 as f64);
        }
    }

    #[test]
    fn samples_skip_targets_past_the_end() {
        let s = series();
        let spec = FeatureSpec::new(24);
        let ctx = Context::new(&s, &spec);
        let issues = issue_steps(&s, jiff::civil::time(0, 0, 0, 0));
        assert_eq!(issues.len(), 10);
        let samples = Samples::build(&s, &spec, &ctx, &issues, 24 * 5 + 12);
        assert_eq!(samples.len(), 24 * 5 + 12);
        assert!(samples.at.iter().all(|&(i0, k)| i0 + k < 24 * 5 + 12));
    }
}
