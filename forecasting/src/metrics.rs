//! Forecast accuracy: point errors, pinball losses and coverage, per lead
//! time and overall.

use serde::Serialize;

/// Scores of a set of forecasts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Metrics {
    /// Scored (forecast, actual) pairs. Every score below is NaN (null in
    /// JSON: undefined) when it has no pair to average over.
    pub n: usize,
    /// Forecast steps whose actual the quality check flagged and the
    /// cleaning excluded, so not scored.
    pub flagged: usize,
    /// Mean absolute error.
    pub mae: f64,
    /// Root mean squared error.
    pub rmse: f64,
    /// Mean absolute percentage error, %, over actuals that are not zero
    /// (undefined, NaN, when every actual is zero).
    pub mape: f64,
    /// Symmetric MAPE, % (0 where forecast and actual are both 0).
    pub smape: f64,
    /// MAE over the in-sample MAE of the one-day seasonal naive (MASE).
    pub mase: f64,
    /// MAE over the benchmark's MAE on the same forecasts (rMAE).
    pub rmae: f64,
    /// Skill score against the benchmark: 1 − RMSE / benchmark RMSE.
    pub skill: f64,
    /// Mean pinball loss per quantile level.
    pub pinball: Vec<Level>,
    /// Share of actuals at or below each quantile (calibration: close to the level).
    pub coverage: Vec<Level>,
    /// Share of actuals inside each central interval (lower level, upper level).
    pub intervals: Vec<Interval>,
    /// Point errors per lead (step ahead, 0-based).
    pub per_lead: Vec<LeadMetrics>,
}

/// A value at a quantile level.
#[derive(Debug, Clone, Serialize)]
pub struct Level {
    /// The level.
    pub q: f64,
    /// The value.
    pub value: f64,
}

/// Coverage of a central interval.
#[derive(Debug, Clone, Serialize)]
pub struct Interval {
    /// Lower level.
    pub lower: f64,
    /// Upper level.
    pub upper: f64,
    /// Nominal coverage (`upper - lower`).
    pub nominal: f64,
    /// Observed share of actuals inside `[lower, upper]`.
    pub observed: f64,
}

/// Point errors of one lead.
#[derive(Debug, Clone, Serialize)]
pub struct LeadMetrics {
    /// Steps ahead of the issue time (0-based).
    pub lead: usize,
    /// Scored pairs.
    pub n: usize,
    /// MAE.
    pub mae: f64,
    /// RMSE.
    pub rmse: f64,
    /// MAPE, %.
    pub mape: f64,
    /// Mean pinball loss over the quantile levels (NaN without quantiles).
    pub pinball: f64,
    /// Share of actuals inside the widest central interval (NaN without one).
    pub coverage: f64,
}

/// One forecast step to score.
#[derive(Debug, Clone, Copy)]
pub struct Scored<'a> {
    /// Lead (0-based).
    pub lead: usize,
    /// Actual value.
    pub actual: f64,
    /// Point forecast.
    pub point: f64,
    /// The naive benchmark's forecast (for rMAE).
    pub naive: f64,
    /// Quantile forecasts, one per level of [`score`]'s `levels`.
    pub quantiles: &'a [f64],
}

#[derive(Default, Clone)]
struct Acc {
    n: usize,
    abs: f64,
    sq: f64,
    ape: f64,
    ape_n: usize,
    pinball: f64,
    quantile_n: usize,
    inside: usize,
}

impl Acc {
    fn add(&mut self, actual: f64, point: f64) {
        let e = actual - point;
        self.n += 1;
        self.abs += e.abs();
        self.sq += e * e;
        if actual.abs() > 1e-9 {
            self.ape += (e / actual).abs();
            self.ape_n += 1;
        }
    }
    // A score over no pair is undefined (NaN, written as null), never 0.
    fn mae(&self) -> f64 {
        if self.n == 0 { f64::NAN } else { self.abs / self.n as f64 }
    }
    fn rmse(&self) -> f64 {
        if self.n == 0 { f64::NAN } else { (self.sq / self.n as f64).sqrt() }
    }
    fn mape(&self) -> f64 {
        if self.ape_n == 0 { f64::NAN } else { 100.0 * self.ape / self.ape_n as f64 }
    }
}

/// Scores forecast steps; pairs with a missing actual or forecast are skipped.
/// `naive_scale` is the in-sample MAE of the one-day seasonal naive (MASE).
#[must_use]
pub fn score<'a>(steps: impl IntoIterator<Item = Scored<'a>>, levels: &[f64], naive_scale: f64) -> Metrics {
    let mut all = Acc::default();
    let mut naive = Acc::default();
    let mut per_lead: Vec<Acc> = Vec::new();
    let mut smape = 0.0;
    let mut pinball = vec![0.0; levels.len()];
    let mut below = vec![0usize; levels.len()];
    let pairs = central_pairs(levels);
    let mut inside = vec![0usize; pairs.len()];
    let mut qn = 0usize;
    for s in steps {
        if s.actual.is_nan() || s.point.is_nan() {
            continue;
        }
        all.add(s.actual, s.point);
        if !s.naive.is_nan() {
            naive.add(s.actual, s.naive);
        }
        if per_lead.len() <= s.lead {
            per_lead.resize(s.lead + 1, Acc::default());
        }
        per_lead[s.lead].add(s.actual, s.point);
        if s.quantiles.len() == levels.len() && !levels.is_empty() {
            let lead = &mut per_lead[s.lead];
            lead.quantile_n += 1;
            lead.pinball += levels
                .iter()
                .zip(s.quantiles)
                .map(|(&q, &f)| {
                    let d = s.actual - f;
                    if d >= 0.0 { q * d } else { (q - 1.0) * d }
                })
                .sum::<f64>()
                / levels.len() as f64;
            if let Some(&(lo, hi)) = pairs.first() {
                lead.inside += usize::from(s.actual >= s.quantiles[lo] && s.actual <= s.quantiles[hi]);
            }
        }
        let denom = s.actual.abs() + s.point.abs();
        if denom > 0.0 {
            smape += 2.0 * (s.actual - s.point).abs() / denom;
        }
        if s.quantiles.len() == levels.len() && !levels.is_empty() {
            qn += 1;
            for (k, (&q, &f)) in levels.iter().zip(s.quantiles).enumerate() {
                let d = s.actual - f;
                pinball[k] += if d >= 0.0 { q * d } else { (q - 1.0) * d };
                below[k] += usize::from(s.actual <= f);
            }
            for (p, &(lo, hi)) in pairs.iter().enumerate() {
                inside[p] += usize::from(s.actual >= s.quantiles[lo] && s.actual <= s.quantiles[hi]);
            }
        }
    }
    // Without a quantile forecast, pinball and coverage are undefined.
    let qd = if qn == 0 { f64::NAN } else { qn as f64 };
    Metrics {
        n: all.n,
        mae: all.mae(),
        rmse: all.rmse(),
        mape: all.mape(),
        smape: if all.n == 0 { f64::NAN } else { 100.0 * smape / all.n as f64 },
        flagged: 0,
        mase: if naive_scale > 0.0 { all.mae() / naive_scale } else { f64::NAN },
        rmae: if naive.n > 0 && naive.mae() > 0.0 { all.mae() / naive.mae() } else { f64::NAN },
        skill: if naive.n > 0 && naive.rmse() > 0.0 { 1.0 - all.rmse() / naive.rmse() } else { f64::NAN },
        pinball: levels.iter().zip(&pinball).map(|(&q, &v)| Level { q, value: v / qd }).collect(),
        coverage: levels.iter().zip(&below).map(|(&q, &v)| Level { q, value: v as f64 / qd }).collect(),
        intervals: pairs
            .iter()
            .zip(&inside)
            .map(|(&(lo, hi), &v)| Interval {
                lower: levels[lo],
                upper: levels[hi],
                nominal: levels[hi] - levels[lo],
                observed: v as f64 / qd,
            })
            .collect(),
        per_lead: per_lead
            .iter()
            .enumerate()
            .map(|(lead, a)| {
                let qn = a.quantile_n as f64;
                LeadMetrics {
                    lead,
                    n: a.n,
                    mae: a.mae(),
                    rmse: a.rmse(),
                    mape: a.mape(),
                    pinball: if a.quantile_n > 0 { a.pinball / qn } else { f64::NAN },
                    coverage: if a.quantile_n > 0 && !pairs.is_empty() { a.inside as f64 / qn } else { f64::NAN },
                }
            })
            .collect(),
    }
}

/// Index pairs of levels symmetric about 0.5 (0.1 with 0.9, ...).
fn central_pairs(levels: &[f64]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for (i, &a) in levels.iter().enumerate() {
        if a >= 0.5 {
            continue;
        }
        if let Some(j) = levels.iter().position(|&b| (a + b - 1.0).abs() < 1e-9) {
            out.push((i, j));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_scores() {
        let q = [0.1, 0.5, 0.9];
        let steps = [
            Scored { lead: 0, actual: 10.0, point: 8.0, naive: 6.0, quantiles: &[7.0, 8.0, 11.0] },
            Scored { lead: 1, actual: 20.0, point: 22.0, naive: 20.0, quantiles: &[18.0, 22.0, 23.0] },
            Scored { lead: 1, actual: f64::NAN, point: 1.0, naive: 1.0, quantiles: &[0.0, 1.0, 2.0] },
        ];
        let m = score(steps, &q, 4.0);
        assert_eq!(m.n, 2);
        assert!((m.mae - 2.0).abs() < 1e-12);
        assert!((m.rmse - 2.0).abs() < 1e-12);
        assert!((m.mape - 15.0).abs() < 1e-12); // (20 % + 10 %) / 2
        assert!((m.mase - 0.5).abs() < 1e-12);
        assert!((m.rmae - 1.0).abs() < 1e-12); // naive MAE (4 + 0) / 2
        // Pinball at 0.1: (0.1 * 3 + 0.1 * 2) / 2.
        assert!((m.pinball[0].value - 0.25).abs() < 1e-12);
        assert_eq!(m.coverage[2].value, 1.0);
        assert_eq!(m.intervals.len(), 1);
        assert_eq!(m.intervals[0].observed, 1.0);
        assert_eq!(m.per_lead.len(), 2);
        assert!((m.per_lead[0].pinball - (0.3 + 1.0 + 0.1) / 3.0).abs() < 1e-12);
        assert_eq!(m.per_lead[1].coverage, 1.0);
    }

    #[test]
    fn scores_without_a_pair_to_average_are_undefined_not_zero() {
        let zeros = [Scored { lead: 0, actual: 0.0, point: 1.0, naive: 0.0, quantiles: &[] }];
        let m = score(zeros, &[], 1.0);
        assert_eq!(m.n, 1);
        assert!(m.mape.is_nan(), "MAPE over all-zero actuals: {}", m.mape);
        assert_eq!(m.mae, 1.0);
        let none = score(std::iter::empty(), &[0.5], 1.0);
        assert!(none.mae.is_nan() && none.rmse.is_nan() && none.smape.is_nan() && none.mape.is_nan());
        assert!(none.pinball[0].value.is_nan() && none.coverage[0].value.is_nan());
        assert_eq!(serde_json::to_value(&none).expect("json")["mape"], serde_json::Value::Null);
    }
}
