//! Training with calibrated quantiles, saved models, forecasts and
//! rolling-origin backtests.
//!
//! Probabilistic forecasts are the point forecast plus quantiles of the
//! model's own out-of-sample errors (conformal prediction). By default the
//! errors come from cross-fitting: the training issues are split into
//! consecutive folds, and each fold is forecast, exactly as in operation
//! (same issue time, same horizon), by a model fitted on the other folds
//! without the issues whose targets overlap it. The errors of the whole
//! training period thus calibrate the final model, which is fitted on all
//! of it. Alternatively the last `calibration_days` are held out (split
//! conformal). Offsets are kept per block of lead times and, optionally,
//! per regime of a known-ahead variable such as the temperature (Mondrian
//! conformal), so that hot days take their intervals from hot days' errors.
//! Quantiles are monotone in the level, so they never cross; a target that
//! was never negative in training is clipped at 0.

use std::collections::BTreeMap;

use jiff::Timestamp;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use volta_engine::Cancel;

use crate::error::{ForecastError, Result};
use crate::features::{self, Context, FeatureSpec};
use crate::gbdt::{Gbdt, GbdtParams, Loss, quantile};
use crate::history::History;
use crate::models::{self, ModelSpec};
use crate::spec::{ForecastSpec, Regime};

/// Error quantiles per block of lead times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Leads per block.
    pub block: usize,
    /// `offsets[block][q]`: the level-q quantile of (actual − forecast),
    /// divided by the forecast when `relative`.
    pub offsets: Vec<Vec<f64>>,
    /// Inner edges of the regime bins, increasing (none: one regime).
    #[serde(default)]
    pub edges: Vec<f64>,
    /// `regimes[bin][block][q]`: the offsets of each regime bin.
    #[serde(default)]
    pub regimes: Vec<Vec<Vec<f64>>>,
    /// Whether offsets are relative to the forecast (a positive target).
    #[serde(default)]
    pub relative: bool,
    /// Held-out errors used.
    pub residuals: usize,
    /// Those errors (not saved: a backtest recalibrates from them).
    #[serde(skip)]
    pub(crate) held_out: Vec<Residual>,
}

/// One pinball-loss GBDT per quantile level, fitted in parallel.
pub(crate) fn fit_quantile_trees(
    series: &History,
    spec: &ForecastSpec,
    ctx: &Context,
    issues: &[usize],
    end: usize,
    cancel: &Cancel,
) -> Result<Vec<Gbdt>> {
    let ModelSpec::Gbdt(params) = &spec.model else {
        return Err(ForecastError::option("intervals", "quantile trees need the gbdt model"));
    };
    let samples = features::Samples::build(series, &spec.features, ctx, issues, end);
    let keys = samples.keys();
    spec.quantiles
        .par_iter()
        .map(|&alpha| {
            let p = GbdtParams { loss: Loss::Quantile { alpha }, ..params.clone() };
            Gbdt::fit_keyed(&samples.x, samples.width, &samples.y, &keys, &p, cancel).map_err(|reason| {
                if cancel.is_cancelled() {
                    ForecastError::from(volta_engine::Cancelled)
                } else {
                    ForecastError::Fit { model: format!("gbdt q{alpha}"), reason }
                }
            })
        })
        .collect()
}

/// Raw quantile-tree forecasts `[lead][level]` from issue step `i0`.
pub(crate) fn raw_quantiles(
    models: &[Gbdt],
    series: &History,
    spec: &FeatureSpec,
    ctx: &Context,
    i0: usize,
) -> Vec<Vec<f64>> {
    let mut row = Vec::new();
    (0..spec.horizon)
        .map(|k| {
            if i0 + k >= series.len() {
                return vec![f64::NAN; models.len()];
            }
            features::row(series, spec, ctx, i0, k, &mut row);
            models.iter().map(|m| m.predict_row(&row)).collect()
        })
        .collect()
}

pub(crate) fn calibrate(
    series: &History,
    spec: &ForecastSpec,
    ctx: &Context,
    issues: &[usize],
    end: usize,
    cancel: &Cancel,
) -> Result<Calibration> {
    let spd = ctx.steps_per_day;
    let h = spec.features.horizon;
    if spec.regime == Regime::Temperature && !spec.features.temperature_known_ahead(series) {
        return Err(ForecastError::option(
            "calibrate_by",
            "temperature needs a temperature column that is known ahead (a forecast)",
        ));
    }
    // Each part: the issues a model is fitted on, the data end it may use,
    // and the issues it forecasts out of sample.
    let parts: Vec<(Vec<usize>, usize, Vec<usize>)> = if spec.calibration_folds >= 2 {
        cross_fit_folds(issues, spec.calibration_folds, h, end)
            .into_iter()
            .map(|(fit, held)| (fit, end, held))
            .collect()
    } else {
        let cut = end.saturating_sub(spec.calibration_days * spd);
        let fit: Vec<usize> = issues.iter().copied().filter(|&i| i < cut).collect();
        let held: Vec<usize> = issues.iter().copied().filter(|&i| i >= cut && i + h <= end).collect();
        if spec.calibration_days == 0 { Vec::new() } else { vec![(fit, cut, held)] }
    };
    if parts.iter().any(|(fit, _, held)| fit.is_empty() || held.is_empty()) || parts.is_empty() {
        let (option, what) = if spec.calibration_folds >= 2 {
            ("calibration_folds", format!("{} folds", spec.calibration_folds))
        } else {
            ("calibration_days", format!("{} days", spec.calibration_days))
        };
        return Err(ForecastError::option(
            option,
            format!(
                "{what} leave no forecasts to calibrate the quantiles on (training has {} issue times)",
                issues.len()
            ),
        ));
    }
    let held_out: Vec<Vec<Residual>> = parts
        .par_iter()
        .map(|(fit_issues, cut, held)| {
            let fitted = models::fit(&spec.model, series, &spec.features, ctx, fit_issues, *cut, cancel)?;
            let trees = if spec.quantile_trees {
                fit_quantile_trees(series, spec, ctx, fit_issues, *cut, cancel)?
            } else {
                Vec::new()
            };
            let mut out = Vec::new();
            for &i0 in held {
                let point = fitted.predict(series, &spec.features, ctx, i0);
                let raw =
                    if trees.is_empty() { Vec::new() } else { raw_quantiles(&trees, series, &spec.features, ctx, i0) };
                for (k, p) in point.iter().enumerate() {
                    let levels = raw.get(k).map_or(&[][..], Vec::as_slice);
                    out.extend(Residual::new(series, spec, i0, k, *p, levels));
                }
            }
            Ok(out)
        })
        .collect::<Result<_>>()?;
    let held_out: Vec<Residual> = held_out.into_iter().flatten().collect();
    // A strictly positive target (a load) has errors that grow with its
    // level: calibrate relative errors. Otherwise (PV, with its zeros at
    // night) absolute ones. Quantile trees are corrected additively.
    let relative = !spec.quantile_trees && series.target[..end].iter().all(|v| v.is_nan() || *v > 0.0);
    let edges = if spec.regime == Regime::None || spec.regime_bins < 2 {
        Vec::new()
    } else {
        let mut values: Vec<f64> = held_out.iter().map(|r| r.regime).filter(|v| v.is_finite()).collect();
        let mut edges: Vec<f64> =
            (1..spec.regime_bins).map(|j| quantile(&mut values, j as f64 / spec.regime_bins as f64)).collect();
        edges.dedup();
        edges
    };
    let mut calibration = Calibration {
        block: h.div_ceil(8).max(1),
        edges,
        offsets: Vec::new(),
        regimes: Vec::new(),
        relative,
        residuals: 0,
        held_out: Vec::new(),
    };
    calibration.refit(&held_out, h, &spec.quantiles);
    calibration.held_out = held_out;
    Ok(calibration)
}

/// Blocked cross-fitting: the issues split into `folds` consecutive
/// folds; each fold's issues (those whose horizon ends by `end`) are to be
/// forecast by a model fitted on the other folds' issues, less those whose
/// target windows of `horizon` steps overlap the fold's. Returns
/// `(fit, held)` per fold.
fn cross_fit_folds(issues: &[usize], folds: usize, horizon: usize, end: usize) -> Vec<(Vec<usize>, Vec<usize>)> {
    let chunk = issues.len().div_ceil(folds.max(1)).max(1);
    issues
        .chunks(chunk)
        .map(|held| {
            let (first, last) = (held[0], held[held.len() - 1]);
            let fit = issues.iter().copied().filter(|&i| i + horizon <= first || i >= last + horizon).collect();
            (fit, held.iter().copied().filter(|&i| i + horizon <= end).collect())
        })
        .collect()
}

/// An out-of-sample forecast error.
#[derive(Debug, Clone, PartialEq)]
pub struct Residual {
    /// The target step.
    pub step: usize,
    /// Its lead.
    pub lead: usize,
    /// Actual minus forecast.
    pub error: f64,
    /// The forecast.
    pub point: f64,
    /// With quantile trees: actual minus each level's raw tree forecast.
    pub levels: Vec<f64>,
    /// The value of the calibration's regime variable (NaN without one).
    pub regime: f64,
}

impl Residual {
    /// The error of forecast `point` issued at `i0` for lead `k` (with the
    /// raw quantile-tree forecasts `raw`), once its actual is known.
    pub(crate) fn new(
        series: &History,
        spec: &ForecastSpec,
        i0: usize,
        k: usize,
        point: f64,
        raw: &[f64],
    ) -> Option<Self> {
        let step = i0 + k;
        let y = series.label(step);
        let error = y - point;
        (!error.is_nan()).then(|| Self {
            step,
            lead: k,
            error,
            point,
            levels: raw.iter().map(|v| y - v).collect(),
            regime: spec.regime.value(series, &spec.features, step, point),
        })
    }
}

/// The split-conformal offset at `level` from `n` held-out errors: the
/// order statistic with the finite-sample correction, `⌈(n+1)·level⌉`-th
/// smallest for an upper level and `⌊(n+1)·level⌋`-th for a lower one, so
/// that a new error falls beyond it with probability at most the nominal
/// share (the plain empirical quantile covers slightly less than asked).
fn conformal_quantile(values: &mut [f64], level: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    if (level - 0.5).abs() < 1e-12 {
        return quantile(values, level);
    }
    let n = values.len();
    let rank = (n + 1) as f64 * level;
    let k = if level > 0.5 { rank.ceil() as usize } else { rank.floor() as usize };
    *values.select_nth_unstable_by(k.clamp(1, n) - 1, f64::total_cmp).1
}

/// Fewest errors a calibration cell needs; sparser cells borrow a wider pool.
const MIN_CELL: usize = 20;

impl Calibration {
    /// The width of its widest interval in offset units (relative or
    /// absolute), averaged over the lead blocks.
    pub(crate) fn spread(&self) -> f64 {
        let widths = self.offsets.iter().map(|o| o.last().copied().unwrap_or(0.0) - o.first().copied().unwrap_or(0.0));
        widths.sum::<f64>() / self.offsets.len().max(1) as f64
    }

    /// Its block, regimes and error scale, without offsets or errors.
    pub(crate) fn clone_settings(&self) -> Self {
        Self {
            block: self.block,
            offsets: Vec::new(),
            edges: self.edges.clone(),
            regimes: Vec::new(),
            relative: self.relative,
            residuals: 0,
            held_out: Vec::new(),
        }
    }

    /// Adds a shift to each level's offsets, keeping them ordered.
    pub(crate) fn shift(&mut self, shifts: &[f64]) {
        for block in self.offsets.iter_mut().chain(self.regimes.iter_mut().flatten()) {
            for (offset, shift) in block.iter_mut().zip(shifts) {
                *offset += shift;
            }
            block.sort_by(f64::total_cmp);
        }
    }

    /// The offsets of a forecast at `lead` whose regime variable is `regime`.
    pub(crate) fn offsets_for(&self, lead: usize, regime: f64) -> &[f64] {
        let b = (lead / self.block).min(self.offsets.len().saturating_sub(1));
        let table = if self.regimes.is_empty() || regime.is_nan() {
            &self.offsets
        } else {
            &self.regimes[self.edges.partition_point(|e| *e <= regime)]
        };
        table.get(b).map_or(&[][..], Vec::as_slice)
    }

    /// Recomputes the offsets from `residuals`, keeping the blocks, regimes
    /// and error scale: per block of leads, and per regime and block when
    /// there are regimes. A block with too few errors borrows all leads' of
    /// its table; a regime with too few errors takes the pooled offsets.
    pub(crate) fn refit(&mut self, residuals: &[Residual], horizon: usize, levels: &[f64]) {
        let blocks = horizon.div_ceil(self.block).max(1);
        let bins = if self.edges.is_empty() { 0 } else { self.edges.len() + 1 };
        // cells[level][table][block]: table 0 pools every error, table
        // 1 + i holds regime i's. Grouped in one pass over the errors.
        let mut cells = vec![vec![vec![Vec::new(); blocks]; 1 + bins]; levels.len()];
        let mut in_bin = vec![0usize; 1 + bins];
        for r in residuals {
            let b = (r.lead / self.block).min(blocks - 1);
            let table =
                if bins > 0 && !r.regime.is_nan() { 1 + self.edges.partition_point(|e| *e <= r.regime) } else { 0 };
            in_bin[table] += 1;
            for (qi, level_cells) in cells.iter_mut().enumerate() {
                let e = r.levels.get(qi).copied().unwrap_or(r.error);
                let v = if self.relative { e / r.point } else { e };
                if v.is_finite() {
                    level_cells[0][b].push(v);
                    if table > 0 {
                        level_cells[table][b].push(v);
                    }
                }
            }
        }
        let offsets = |table: usize, cells: &mut [Vec<Vec<Vec<f64>>>]| -> Vec<Vec<f64>> {
            (0..blocks)
                .map(|b| {
                    levels
                        .iter()
                        .zip(cells.iter_mut())
                        .map(|(&q, level_cells)| {
                            let own = &mut level_cells[table];
                            if own[b].len() >= MIN_CELL {
                                conformal_quantile(&mut own[b], q)
                            } else {
                                let mut all: Vec<f64> = own.iter().flatten().copied().collect();
                                conformal_quantile(&mut all, q)
                            }
                        })
                        .collect()
                })
                .collect()
        };
        self.offsets = offsets(0, &mut cells);
        self.regimes = (1..=bins)
            .map(|t| if in_bin[t] < MIN_CELL { self.offsets.clone() } else { offsets(t, &mut cells) })
            .collect();
        self.residuals = residuals.len();
    }
}

/// The errors of one out-of-sample forecast, over the whole horizon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorPath {
    /// When the forecast was issued.
    pub issue: Timestamp,
    /// Actual minus forecast per lead, divided by the forecast when the
    /// model's calibration is relative.
    pub errors: Vec<f64>,
}

/// The out-of-sample error paths of `calibration` over a horizon of `h`
/// leads, oldest first: one per held-out issue whose every lead had an
/// actual. `series` is the data it was calibrated on (the paths name their
/// issue time by it).
pub(crate) fn paths_of(calibration: &Calibration, series: &History, h: usize) -> Vec<ErrorPath> {
    let mut by_issue: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    for r in &calibration.held_out {
        let errors = by_issue.entry(r.step - r.lead).or_insert_with(|| vec![f64::NAN; h]);
        if let Some(slot) = errors.get_mut(r.lead) {
            *slot = if calibration.relative { r.error / r.point } else { r.error };
        }
    }
    by_issue
        .into_iter()
        .filter(|(i0, errors)| *i0 < series.len() && errors.iter().all(|e| e.is_finite()))
        .map(|(i0, errors)| ErrorPath { issue: series.time(i0), errors })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_fitted_folds_hold_out_every_issue_once_and_never_train_on_its_targets() {
        // Daily issues of a 48-step horizon, one of them spanning two days.
        for horizon in [48, 96] {
            let issues: Vec<usize> = (0..100).map(|d| d * 48).collect();
            let end = 100 * 48;
            let folds = cross_fit_folds(&issues, 4, horizon, end);
            assert_eq!(folds.len(), 4);
            let held: Vec<usize> = folds.iter().flat_map(|(_, held)| held.iter().copied()).collect();
            let expected: Vec<usize> = issues.iter().copied().filter(|&i| i + horizon <= end).collect();
            assert_eq!(held, expected);
            for (fit, held) in &folds {
                assert!(!fit.is_empty());
                for &f in fit {
                    for &h in held {
                        let disjoint = f + horizon <= h || h + horizon <= f;
                        assert!(disjoint, "horizon {horizon}: fit issue {f} overlaps held-out issue {h}");
                    }
                }
            }
        }
    }

    fn residual(lead: usize, error: f64, regime: f64) -> Residual {
        Residual { step: lead, lead, error, point: 1.0, levels: Vec::new(), regime }
    }

    /// Absolute offsets per lead, in regimes below and above 20.
    fn two_regimes() -> Calibration {
        Calibration {
            block: 1,
            offsets: Vec::new(),
            edges: vec![20.0],
            regimes: Vec::new(),
            relative: false,
            residuals: 0,
            held_out: Vec::new(),
        }
    }

    #[test]
    fn regimes_get_their_own_offsets_and_unknown_regimes_the_pooled_ones() {
        // Errors spread over ±1 in the cold regime and ±3 in the hot one, at every lead.
        let mut residuals = Vec::new();
        for i in 0..440 {
            let base = ((i * 7) % 11) as f64 / 5.0 - 1.0;
            residuals.push(residual(i % 8, base, 10.0));
            residuals.push(residual(i % 8, 3.0 * base, 30.0));
        }
        let mut cal = two_regimes();
        cal.refit(&residuals, 8, &[0.1, 0.9]);
        let width = |o: &[f64]| o[1] - o[0];
        let cold = width(cal.offsets_for(3, 12.0));
        let hot = width(cal.offsets_for(3, 31.0));
        let pooled = width(cal.offsets_for(3, f64::NAN));
        assert!((hot - 3.0 * cold).abs() < 1e-9, "cold {cold} hot {hot}");
        assert!(cold < pooled && pooled < hot, "cold {cold} pooled {pooled} hot {hot}");
        // A shift moves every table alike.
        cal.shift(&[-0.5, 0.5]);
        assert!((width(cal.offsets_for(3, 12.0)) - cold - 1.0).abs() < 1e-9);
        assert!((width(cal.offsets_for(3, 31.0)) - hot - 1.0).abs() < 1e-9);
    }

    #[test]
    fn a_sparse_regime_borrows_the_pooled_offsets() {
        let mut residuals: Vec<Residual> = (0..200).map(|i| residual(i % 4, (i % 7) as f64 - 3.0, 10.0)).collect();
        residuals.extend((0..5).map(|i| residual(i, 50.0, 40.0)));
        let mut cal = two_regimes();
        cal.refit(&residuals, 4, &[0.1, 0.9]);
        assert_eq!(cal.offsets_for(2, 41.0), cal.offsets_for(2, f64::NAN));
        assert_eq!(cal.residuals, 205);
    }
}
