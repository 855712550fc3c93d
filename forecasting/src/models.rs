//! Point-forecast models: baselines, linear models and boosted trees.
//!
//! | model | what |
//! |---|---|
//! | `naive_day`, `naive_week` | seasonal naive: the same time of day on the latest day (or same weekday) known at issue time |
//! | `vanilla` | Hong's "vanilla" multiple linear regression benchmark (GEFCom2012): trend, month, weekday × time of day, and a cubic in temperature interacting with time of day and with month; ordinary least squares with linfa |
//! | `linear` | elastic net (ridge when `l1_ratio = 0`) with linfa on the leakage-free features of [`crate::features`] (lags, known-ahead exogenous columns, degree-hours, clear-sky terms) plus time-of-day, weekday and month indicators |
//! | `gbdt` | gradient-boosted trees ([`crate::gbdt`]) on the same features |
//!
//! Vanilla's trend term is used only when the training data spans two
//! years or more: over a shorter span a trend cannot be told apart from the
//! annual cycle and extrapolates the season. Vanilla's temperature is the temperature column at the target step when
//! it is marked known ahead (ex-post when it holds measurements), otherwise
//! the same time on the latest day known at issue time. Holidays take
//! Sunday's pattern. A month absent from the training data (November, for a
//! model trained on January to October) takes the effects of the nearest
//! month that is present (October).

use linfa::prelude::*;
use linfa_elasticnet::ElasticNet;
use linfa_linear::LinearRegression;
use ndarray::{Array1, Array2};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use volta_engine::Cancel;

use crate::error::{ForecastError, Result};
use crate::features::{self, Context, FeatureSpec, Samples};
use crate::gbdt::{Gbdt, GbdtParams};
use crate::history::History;

/// Which model to fit, with its hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "model")]
pub enum ModelSpec {
    /// Same time on the latest known day.
    NaiveDay,
    /// Same time and weekday on the latest known week.
    NaiveWeek,
    /// PV: clear-sky irradiance at the target step times the last known
    /// day's clear-sky index (energy over clear-sky energy). Needs a site.
    ClearSkyPersistence,
    /// The vanilla MLR benchmark.
    Vanilla,
    /// Elastic net.
    Linear {
        /// Overall penalty.
        penalty: f64,
        /// Share of L1 in the penalty (0 = ridge, 1 = lasso).
        l1_ratio: f64,
    },
    /// Gradient-boosted trees.
    Gbdt(GbdtParams),
}

impl ModelSpec {
    /// Whether the model reads the feature rows (calendar, lags, exogenous
    /// columns), not only the target's own past.
    #[must_use]
    pub fn reads_features(&self) -> bool {
        match self {
            Self::NaiveDay | Self::NaiveWeek | Self::ClearSkyPersistence => false,
            Self::Vanilla | Self::Linear { .. } | Self::Gbdt(_) => true,
        }
    }

    /// The model's name, as the CLI spells it.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::NaiveDay => "naive_day",
            Self::NaiveWeek => "naive_week",
            Self::ClearSkyPersistence => "clear_sky_persistence",
            Self::Vanilla => "vanilla",
            Self::Linear { .. } => "linear",
            Self::Gbdt(_) => "gbdt",
        }
    }

    /// A model by its CLI name, with default hyper-parameters.
    ///
    /// # Errors
    /// For an unknown name.
    pub fn from_name(name: &str) -> Result<Self> {
        Ok(match name {
            "naive" | "naive_day" | "naive-day" => Self::NaiveDay,
            "naive_week" | "naive-week" => Self::NaiveWeek,
            "clear_sky_persistence" | "clear-sky" | "clear_sky" => Self::ClearSkyPersistence,
            "vanilla" => Self::Vanilla,
            "linear" | "ridge" => Self::Linear { penalty: 0.1, l1_ratio: 0.0 },
            "elastic_net" | "elastic-net" => Self::Linear { penalty: 0.01, l1_ratio: 0.5 },
            "gbdt" => Self::Gbdt(GbdtParams::default()),
            other => {
                return Err(ForecastError::option(
                    "model",
                    format!(
                        "unknown model {other:?}; expected naive, naive_week, clear_sky_persistence, vanilla, linear, elastic_net or gbdt"
                    ),
                ));
            }
        })
    }
}

/// Standardisation of numeric features (missing values become the mean).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scaler {
    mean: Vec<f64>,
    sd: Vec<f64>,
}

impl Scaler {
    fn fit(x: &[f64], width: usize, cols: &[usize]) -> Self {
        let n = x.len() / width.max(1);
        let mut mean = Vec::with_capacity(cols.len());
        let mut sd = Vec::with_capacity(cols.len());
        for &c in cols {
            let vals: Vec<f64> = (0..n).map(|i| x[i * width + c]).filter(|v| !v.is_nan()).collect();
            let m = if vals.is_empty() { 0.0 } else { vals.iter().sum::<f64>() / vals.len() as f64 };
            let var = if vals.len() < 2 {
                1.0
            } else {
                vals.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (vals.len() - 1) as f64
            };
            mean.push(m);
            sd.push(if var > 1e-12 { var.sqrt() } else { 1.0 });
        }
        Self { mean, sd }
    }

    fn apply(&self, k: usize, v: f64) -> f64 {
        if v.is_nan() { 0.0 } else { (v - self.mean[k]) / self.sd[k] }
    }
}

/// A fitted point model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Fitted {
    /// Seasonal naive with a period in days.
    Naive {
        /// Period in days (1 or 7).
        days: usize,
    },
    /// Clear-sky persistence (PV).
    ClearSkyPersistence,
    /// Vanilla regression.
    Vanilla {
        /// Coefficients of [`vanilla_row`]'s design.
        coef: Vec<f64>,
        /// Intercept.
        intercept: f64,
        /// Temperature mean and standard deviation (for the polynomial).
        temp: (f64, f64),
        /// Steps per day the design was built for.
        steps_per_day: usize,
        /// The temperature column.
        column: String,
        /// The month (1–12) whose effects each calendar month uses: itself
        /// when it was in the training data, else the nearest one that was.
        months: [u8; 12],
        /// Whether the trend term is used (training spans two years or more).
        with_trend: bool,
    },
    /// Elastic net on standardised features.
    Linear {
        /// Coefficients of the linear design.
        coef: Vec<f64>,
        /// Intercept.
        intercept: f64,
        /// Scaler of the numeric features.
        scaler: Scaler,
        /// Steps per day the design was built for.
        steps_per_day: usize,
    },
    /// Boosted trees on the pooled features.
    Gbdt(Gbdt),
}

/// Pooled feature columns that are categorical (indicators in the linear design).
const CATEGORICAL: [&str; 4] = ["lead", "step_of_day", "weekday", "month"];

fn numeric_cols(names: &[String]) -> Vec<usize> {
    (0..names.len()).filter(|&c| !CATEGORICAL.contains(&names[c].as_str())).collect()
}

/// Fits a point model on the samples of `series` before step `end`.
///
/// # Errors
/// Too little data, a model that needs a missing column, or a failed fit.
pub fn fit(
    spec: &ModelSpec,
    series: &History,
    fspec: &FeatureSpec,
    ctx: &Context,
    issues: &[usize],
    end: usize,
    cancel: &Cancel,
) -> Result<Fitted> {
    cancel.check()?;
    let fail = |reason: String| ForecastError::Fit { model: spec.name().to_owned(), reason };
    match spec {
        ModelSpec::NaiveDay => Ok(Fitted::Naive { days: 1 }),
        ModelSpec::NaiveWeek => Ok(Fitted::Naive { days: 7 }),
        ModelSpec::ClearSkyPersistence => {
            if fspec.site.is_none() {
                return Err(fail("needs a site (latitude and longitude)".into()));
            }
            Ok(Fitted::ClearSkyPersistence)
        }
        ModelSpec::Vanilla => fit_vanilla(series, fspec, ctx, issues, end).map_err(fail),
        ModelSpec::Linear { penalty, l1_ratio } => {
            let samples = Samples::build(series, fspec, ctx, issues, end);
            if samples.len() < 50 {
                return Err(fail(format!("{} training samples; at least 50 are needed", samples.len())));
            }
            let names = features::names(series, fspec);
            let cols = numeric_cols(&names);
            let scaler = Scaler::fit(&samples.x, samples.width, &cols);
            let spd = ctx.steps_per_day;
            let width = linear_width(cols.len(), spd);
            let mut x = Array2::<f64>::zeros((samples.len(), width));
            for r in 0..samples.len() {
                linear_row(samples.row(r), &names, &cols, &scaler, spd, x.row_mut(r).as_slice_mut().unwrap_or(&mut []));
            }
            // Standardise every design column (indicators included) so that
            // coordinate descent converges in few sweeps and the penalty
            // treats all columns alike (as glmnet does); fold back afterwards.
            let mut centre = vec![0.0; width];
            let mut spread = vec![1.0; width];
            for (c, mut col) in x.columns_mut().into_iter().enumerate() {
                let m = col.mean().unwrap_or(0.0);
                let sd = col.std(0.0);
                centre[c] = m;
                spread[c] = if sd > 1e-12 { sd } else { 1.0 };
                col.mapv_inplace(|v| (v - m) / spread[c]);
            }
            let y = Array1::from(samples.y);
            let (beta, b0) = if *l1_ratio == 0.0 {
                ridge(&x, &y, *penalty).map_err(fail)?
            } else {
                let model = ElasticNet::params()
                    .penalty(*penalty)
                    .l1_ratio(*l1_ratio)
                    .with_intercept(true)
                    .max_iterations(1000)
                    .tolerance(1e-4)
                    .fit(&Dataset::new(x, y))
                    .map_err(|e| fail(e.to_string()))?;
                (model.hyperplane().to_vec(), model.intercept())
            };
            let coef: Vec<f64> = beta.iter().zip(&spread).map(|(b, sd)| b / sd).collect();
            let intercept = b0 - coef.iter().zip(&centre).map(|(b, m)| b * m).sum::<f64>();
            Ok(Fitted::Linear { coef, intercept, scaler, steps_per_day: spd })
        }
        ModelSpec::Gbdt(params) => {
            let samples = Samples::build(series, fspec, ctx, issues, end);
            if samples.len() < 2 * params.min_leaf {
                return Err(fail(format!("{} training samples is too few", samples.len())));
            }
            Gbdt::fit_keyed(&samples.x, samples.width, &samples.y, &samples.keys(), params, cancel)
                .map(Fitted::Gbdt)
                .map_err(|reason| {
                    if cancel.is_cancelled() { ForecastError::from(volta_engine::Cancelled) } else { fail(reason) }
                })
        }
    }
}

/// Ridge regression on centred columns, as ordinary least squares (linfa)
/// on the data augmented with `sqrt(n·penalty)·I`: the same objective as
/// linfa's elastic net with `l1_ratio = 0`, solved directly instead of by
/// coordinate descent. Returns the coefficients and the intercept.
/// Ridge regression on centred columns: `(X'X + nλI) b = X'(y - ȳ)`, the
/// intercept `ȳ`. The Gram matrix is accumulated over blocks of rows in
/// parallel (n·p²/2 multiply-adds, a few hundred milliseconds for a year
/// of quarter hours) and solved by Cholesky. Without a penalty the system
/// may be singular: then least squares on the augmented design instead.
fn ridge(x: &Array2<f64>, y: &Array1<f64>, penalty: f64) -> Result<(Vec<f64>, f64), String> {
    let (n, p) = x.dim();
    let y_mean = y.mean().unwrap_or(0.0);
    let (Some(xs), Some(ys)) = (x.as_slice(), y.as_slice()) else { return ridge_augmented(x, y, penalty) };
    const BLOCK: usize = 2048;
    let (mut gram, xty) = xs
        .par_chunks(p * BLOCK)
        .zip(ys.par_chunks(BLOCK))
        .map(|(rows, targets)| {
            let mut gram = vec![0.0; p * p];
            let mut xty = vec![0.0; p];
            for (row, t) in rows.chunks_exact(p).zip(targets) {
                let r = t - y_mean;
                for (i, &xi) in row.iter().enumerate() {
                    xty[i] += xi * r;
                    // The lower triangle only; the solve reads no more.
                    for (g, &xj) in gram[i * p..=i * p + i].iter_mut().zip(row) {
                        *g += xi * xj;
                    }
                }
            }
            (gram, xty)
        })
        .reduce(
            || (vec![0.0; p * p], vec![0.0; p]),
            |(mut g, mut v), (g2, v2)| {
                g.iter_mut().zip(&g2).for_each(|(a, b)| *a += b);
                v.iter_mut().zip(&v2).for_each(|(a, b)| *a += b);
                (g, v)
            },
        );
    let shrink = n as f64 * penalty;
    for i in 0..p {
        gram[i * p + i] += shrink;
    }
    match cholesky_solve(&mut gram, xty, p) {
        Some(beta) => Ok((beta, y_mean)),
        None => ridge_augmented(x, y, penalty),
    }
}

/// Solves `A b = v` for a symmetric positive definite `A` given by its
/// lower triangle (row-major, `p` x `p`, overwritten by its Cholesky
/// factor); `None` when `A` is not positive definite.
fn cholesky_solve(a: &mut [f64], mut v: Vec<f64>, p: usize) -> Option<Vec<f64>> {
    for j in 0..p {
        let mut d = a[j * p + j];
        for k in 0..j {
            d -= a[j * p + k] * a[j * p + k];
        }
        if d <= 1e-12 * (1.0 + a[j * p + j].abs()) || !d.is_finite() {
            return None;
        }
        let d = d.sqrt();
        a[j * p + j] = d;
        for i in j + 1..p {
            let mut s = a[i * p + j];
            for k in 0..j {
                s -= a[i * p + k] * a[j * p + k];
            }
            a[i * p + j] = s / d;
        }
    }
    // L z = v, then L' b = z.
    for i in 0..p {
        let s: f64 = (0..i).map(|k| a[i * p + k] * v[k]).sum();
        v[i] = (v[i] - s) / a[i * p + i];
    }
    for i in (0..p).rev() {
        let s: f64 = (i + 1..p).map(|k| a[k * p + i] * v[k]).sum();
        v[i] = (v[i] - s) / a[i * p + i];
    }
    Some(v)
}

/// Ridge as least squares on the design augmented by `sqrt(nλ) I` rows: the
/// same estimate as [`ridge`], by a second route (and the one that copes
/// with a singular unpenalised system).
fn ridge_augmented(x: &Array2<f64>, y: &Array1<f64>, penalty: f64) -> Result<(Vec<f64>, f64), String> {
    let (n, p) = x.dim();
    let y_mean = y.mean().unwrap_or(0.0);
    let mut big = Array2::<f64>::zeros((n + p, p));
    for (r, row) in x.rows().into_iter().enumerate() {
        big.row_mut(r).assign(&row);
    }
    let shrink = (n as f64 * penalty).sqrt();
    for c in 0..p {
        big[[n + c, c]] = shrink;
    }
    let target: Array1<f64> = y.iter().map(|v| v - y_mean).chain(std::iter::repeat_n(0.0, p)).collect();
    let model =
        LinearRegression::new().with_intercept(false).fit(&Dataset::new(big, target)).map_err(|e| e.to_string())?;
    Ok((model.params().to_vec(), y_mean))
}

fn linear_width(numeric: usize, spd: usize) -> usize {
    numeric + (spd - 1) + 6 + 11
}

/// The linear design: standardised numeric features, then indicators of
/// time of day (first dropped), weekday (Monday dropped) and month (January dropped).
fn linear_row(pooled: &[f64], names: &[String], cols: &[usize], scaler: &Scaler, spd: usize, out: &mut [f64]) {
    out.fill(0.0);
    for (k, &c) in cols.iter().enumerate() {
        out[k] = scaler.apply(k, pooled[c]);
    }
    let mut base = cols.len();
    let get = |name: &str| names.iter().position(|n| n == name).map_or(f64::NAN, |i| pooled[i]);
    let step = get("step_of_day");
    if step >= 1.0 && (step as usize) < spd {
        out[base + step as usize - 1] = 1.0;
    }
    base += spd - 1;
    let wd = get("weekday");
    if (1.0..7.0).contains(&wd) {
        out[base + wd as usize - 1] = 1.0;
    }
    base += 6;
    let m = get("month");
    if (2.0..=12.0).contains(&m) {
        out[base + m as usize - 2] = 1.0;
    }
}

/// Temperature of target step `j` for an issue at `i0` (see the module docs).
fn vanilla_temp(series: &History, column: &str, i0: usize, j: usize, spd: usize) -> f64 {
    let Some(col) = series.exog(column) else { return f64::NAN };
    let idx = if col.known_ahead { Some(j) } else { j.checked_sub(spd * ((j - i0) / spd + 1)) };
    idx.and_then(|i| col.values.get(i).copied()).unwrap_or(f64::NAN)
}

fn vanilla_width(spd: usize) -> usize {
    1 + 11 + (7 * spd - 1) + 3 * spd + 3 * 11
}

/// The vanilla design of target step `j` with standardised temperature `tz`.
fn vanilla_row(ctx: &Context, j: usize, trend: f64, tz: f64, months: &[u8; 12], out: &mut [f64]) {
    out.fill(0.0);
    let spd = ctx.steps_per_day;
    let step = ctx.step_of_day[j] as usize;
    // Holidays take Sunday's pattern.
    let wd = if ctx.holiday[j] { 6 } else { ctx.weekday[j] as usize };
    let month = months[ctx.month[j] as usize - 1] as usize;
    out[0] = trend;
    let mut base = 1;
    if month >= 2 {
        out[base + month - 2] = 1.0;
    }
    base += 11;
    let cell = wd * spd + step;
    if cell >= 1 {
        out[base + cell - 1] = 1.0;
    }
    base += 7 * spd - 1;
    let t = if tz.is_nan() { 0.0 } else { tz };
    // The cubic per time of day carries the main temperature effect; the
    // month interactions are relative to January (full column rank).
    for (p, v) in [t, t * t, t * t * t].into_iter().enumerate() {
        out[base + p * spd + step] = v;
        if month >= 2 {
            out[base + 3 * spd + p * 11 + month - 2] = v;
        }
    }
}

/// For each month, the nearest month (cyclically, earlier on ties) seen in training.
fn nearest_months(seen: &[bool; 12]) -> [u8; 12] {
    let mut out = [0u8; 12];
    for (m, slot) in out.iter_mut().enumerate() {
        let pick = (0..12).flat_map(|d| [(m + 12 - d) % 12, (m + d) % 12]).find(|&c| seen[c]).unwrap_or(m);
        *slot = pick as u8 + 1;
    }
    out
}

fn trend(series: &History, j: usize) -> f64 {
    // Years since 2000, so that a saved model extrapolates the same way.
    (series.time(j).as_second() - 946_684_800) as f64 / (365.25 * 86_400.0)
}

fn fit_vanilla(
    series: &History,
    fspec: &FeatureSpec,
    ctx: &Context,
    issues: &[usize],
    end: usize,
) -> Result<Fitted, String> {
    let column = fspec
        .temperature
        .clone()
        .ok_or("vanilla needs a temperature column (--temperature, one of the --exog columns)")?;
    if series.exog(&column).is_none() {
        return Err(format!("temperature column {column:?} is not among the exogenous columns"));
    }
    let spd = ctx.steps_per_day;
    // One row per target step: the first issue covering it.
    let mut rows: Vec<(usize, usize)> = Vec::new();
    let mut seen = vec![false; series.len()];
    for &i0 in issues {
        for k in 0..fspec.horizon {
            let j = i0 + k;
            if j < end && j < series.len() && !seen[j] && !series.label(j).is_nan() {
                let t = vanilla_temp(series, &column, i0, j, spd);
                if !t.is_nan() {
                    seen[j] = true;
                    rows.push((i0, j));
                }
            }
        }
    }
    let width = vanilla_width(spd);
    if rows.len() < width + 10 {
        return Err(format!("{} training steps for {width} coefficients", rows.len()));
    }
    let temps: Vec<f64> = rows.iter().map(|&(i0, j)| vanilla_temp(series, &column, i0, j, spd)).collect();
    let mean = temps.iter().sum::<f64>() / temps.len() as f64;
    let sd = (temps.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / (temps.len() - 1) as f64).sqrt().max(1e-9);
    let mut seen_month = [false; 12];
    for &(_, j) in &rows {
        seen_month[ctx.month[j] as usize - 1] = true;
    }
    let months = nearest_months(&seen_month);
    // The trend is only identifiable apart from the annual cycle over two
    // years or more; over less it extrapolates the season.
    let span_years =
        rows.last().map_or(0.0, |&(_, j)| trend(series, j)) - rows.first().map_or(0.0, |&(_, j)| trend(series, j));
    let with_trend = span_years >= 2.0;
    let trend_of = |j: usize| if with_trend { trend(series, j) } else { 0.0 };
    let mut x = Array2::<f64>::zeros((rows.len(), width));
    let mut y = Array1::<f64>::zeros(rows.len());
    for (r, &(_, j)) in rows.iter().enumerate() {
        let tz = (temps[r] - mean) / sd;
        vanilla_row(ctx, j, trend_of(j), tz, &months, x.row_mut(r).as_slice_mut().unwrap_or(&mut []));
        y[r] = series.label(j);
    }
    // Drop indicator columns never set (a month absent from the training
    // data, say): least squares needs full column rank.
    let used: Vec<usize> = (0..width).filter(|&c| x.column(c).iter().any(|&v| v != 0.0)).collect();
    let x = x.select(ndarray::Axis(1), &used);
    let model = LinearRegression::new().with_intercept(true).fit(&Dataset::new(x, y)).map_err(|e| e.to_string())?;
    let mut coef = vec![0.0; width];
    for (k, &c) in used.iter().enumerate() {
        coef[c] = model.params()[k];
    }
    Ok(Fitted::Vanilla {
        coef,
        intercept: model.intercept(),
        temp: (mean, sd),
        steps_per_day: spd,
        column,
        months,
        with_trend,
    })
}

impl Fitted {
    /// Point forecasts of the `horizon` steps from issue step `i0`.
    #[must_use]
    pub fn predict(&self, series: &History, fspec: &FeatureSpec, ctx: &Context, i0: usize) -> Vec<f64> {
        let spd = ctx.steps_per_day;
        let h = fspec.horizon;
        match self {
            Self::Naive { days } => (0..h)
                .map(|k| {
                    let back = spd * days * (k / (spd * days) + 1);
                    (i0 + k).checked_sub(back).and_then(|i| series.target.get(i).copied()).unwrap_or(f64::NAN)
                })
                .collect(),
            Self::ClearSkyPersistence => {
                (0..h).map(|k| features::clear_sky_persistence(series, ctx, i0, i0 + k)).collect()
            }
            Self::Vanilla { coef, intercept, temp, column, months, with_trend, .. } => {
                let mut row = vec![0.0; coef.len()];
                (0..h)
                    .map(|k| {
                        let j = i0 + k;
                        if j >= series.len() {
                            return f64::NAN;
                        }
                        let t = vanilla_temp(series, column, i0, j, spd);
                        let tr = if *with_trend { trend(series, j) } else { 0.0 };
                        vanilla_row(ctx, j, tr, (t - temp.0) / temp.1, months, &mut row);
                        intercept + row.iter().zip(coef).map(|(a, b)| a * b).sum::<f64>()
                    })
                    .collect()
            }
            Self::Linear { coef, intercept, scaler, .. } => {
                let names = features::names(series, fspec);
                let cols = numeric_cols(&names);
                let mut pooled = Vec::new();
                let mut row = vec![0.0; coef.len()];
                (0..h)
                    .map(|k| {
                        if i0 + k >= series.len() {
                            return f64::NAN;
                        }
                        features::row(series, fspec, ctx, i0, k, &mut pooled);
                        linear_row(&pooled, &names, &cols, scaler, spd, &mut row);
                        intercept + row.iter().zip(coef).map(|(a, b)| a * b).sum::<f64>()
                    })
                    .collect()
            }
            Self::Gbdt(model) => {
                let mut pooled = Vec::new();
                (0..h)
                    .map(|k| {
                        if i0 + k >= series.len() {
                            return f64::NAN;
                        }
                        features::row(series, fspec, ctx, i0, k, &mut pooled);
                        model.predict_row(&pooled)
                    })
                    .collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A centred design of `n` rows and `p` columns from a fixed generator,
    /// with a target that depends on it and noise.
    fn design(n: usize, p: usize) -> (Array2<f64>, Array1<f64>) {
        let mut state = 11_u64;
        let mut next = || {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let mut x = Array2::from_shape_fn((n, p), |_| next());
        for mut col in x.columns_mut() {
            let m = col.mean().unwrap_or(0.0);
            col.mapv_inplace(|v| v - m);
        }
        let y = Array1::from_iter(
            (0..n).map(|r| (0..p).map(|c| x[[r, c]] * (c as f64 - 3.0)).sum::<f64>() + 40.0 + next()),
        );
        (x, y)
    }

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.iter().zip(b).all(|(u, v)| (u - v).abs() <= 1e-8 * (1.0 + v.abs()))
    }

    #[test]
    fn normal_equations_and_the_augmented_design_give_the_same_ridge() {
        // More rows than one block, so the parallel reduction is exercised.
        let (x, y) = design(5_000, 24);
        for penalty in [0.0, 1e-3, 0.1, 10.0] {
            let (fast, b0) = ridge(&x, &y, penalty).expect("ridge");
            let (reference, r0) = ridge_augmented(&x, &y, penalty).expect("augmented");
            assert!(close(&fast, &reference), "penalty {penalty}: {fast:?} vs {reference:?}");
            assert!((b0 - r0).abs() < 1e-12);
        }
    }

    #[test]
    fn a_singular_unpenalised_design_falls_back_to_least_squares() {
        let (mut x, y) = design(500, 6);
        let first = x.column(0).to_owned();
        x.column_mut(5).assign(&first);
        let mut gram = vec![0.0; 36];
        for r in 0..500 {
            for i in 0..6 {
                for j in 0..=i {
                    gram[i * 6 + j] += x[[r, i]] * x[[r, j]];
                }
            }
        }
        assert!(cholesky_solve(&mut gram, vec![1.0; 6], 6).is_none(), "two equal columns are singular");
        let (beta, _) = ridge(&x, &y, 0.0).expect("the fallback solves it");
        let fitted: f64 = (0..6).map(|c| beta[c] * x[[0, c]]).sum();
        assert!(fitted.is_finite());
    }
}
