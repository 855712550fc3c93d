//! Data quality: a regular grid, gaps, imputation, outliers and flat-lines.
//!
//! Nothing is changed silently: every row dropped, every step added, every
//! value imputed is counted in the [`QualityReport`], and outliers and
//! flat-lines are flagged (not removed) with their times.

use serde::Serialize;

use crate::history::History;

/// What reading and cleaning a series did and found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct QualityReport {
    /// Data rows read.
    pub rows: usize,
    /// The step found (seconds; the most frequent interval between rows).
    pub step_seconds: i64,
    /// First and last step start (RFC 3339, local offset).
    pub start: String,
    /// Last step start.
    pub end: String,
    /// Steps of the regular grid.
    pub steps: usize,
    /// Whether rows had to be sorted by time.
    pub sorted: bool,
    /// Rows whose time repeats an earlier row (the first is kept).
    pub duplicates: usize,
    /// Rows between grid points (dropped).
    pub off_grid: usize,
    /// Grid steps with no row in the file.
    pub missing_steps: usize,
    /// Target values filled by linear interpolation (gaps up to the limit).
    pub imputed: usize,
    /// Exogenous values filled, per column.
    pub exog_imputed: Vec<(String, usize)>,
    /// Target gaps longer than the limit, left missing.
    pub long_gaps: Vec<Span>,
    /// Target values far from the same time of day on nearby days.
    pub outliers: Vec<Outlier>,
    /// Runs of one repeated non-zero target value (a stuck meter, say).
    pub flat_lines: Vec<Span>,
    /// The step the series was averaged to after cleaning, seconds.
    pub resampled_to: Option<i64>,
}

/// A run of steps.
#[derive(Debug, Clone, Serialize)]
pub struct Span {
    /// Start of the first step.
    pub from: String,
    /// Start of the last step.
    pub to: String,
    /// Number of steps.
    pub steps: usize,
}

/// A flagged value.
#[derive(Debug, Clone, Serialize)]
pub struct Outlier {
    /// Step start.
    pub time: String,
    /// The value.
    pub value: f64,
    /// The median of the same time of day on the 3 days either side.
    pub expected: f64,
}

impl QualityReport {
    /// One line for logs and the CLI.
    #[must_use]
    pub fn summary(&self) -> String {
        format!(
            "{} rows, {} steps of {} s from {} to {}; {} duplicates, {} off-grid rows, {} missing steps, {} values imputed, {} long gaps, {} outliers, {} flat-lines",
            self.rows,
            self.steps,
            self.step_seconds,
            self.start,
            self.end,
            self.duplicates,
            self.off_grid,
            self.missing_steps,
            self.imputed,
            self.long_gaps.len(),
            self.outliers.len(),
            self.flat_lines.len()
        ) + &self.resampled_to.map_or(String::new(), |s| format!("; averaged to steps of {s} s"))
    }
}

/// Fills NaN runs of at most `max_gap` steps that have a value on both
/// sides by linear interpolation; returns how many values were filled.
pub(crate) fn impute(values: &mut [f64], max_gap: usize) -> usize {
    let mut filled = 0;
    let mut i = 0;
    while i < values.len() {
        if !values[i].is_nan() {
            i += 1;
            continue;
        }
        let from = i;
        while i < values.len() && values[i].is_nan() {
            i += 1;
        }
        let len = i - from;
        if from > 0 && i < values.len() && len <= max_gap {
            let (a, b) = (values[from - 1], values[i]);
            for (k, v) in values[from..i].iter_mut().enumerate() {
                *v = a + (b - a) * (k + 1) as f64 / (len + 1) as f64;
            }
            filled += len;
        }
    }
    filled
}

/// Runs of at least `min_len` steps where `hit` holds.
fn runs(series: &History, hit: impl Fn(usize) -> bool, min_len: usize) -> Vec<Span> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < series.len() {
        if !hit(i) {
            i += 1;
            continue;
        }
        let from = i;
        while i < series.len() && hit(i) {
            i += 1;
        }
        if i - from >= min_len {
            out.push(Span { from: series.stamp(from), to: series.stamp(i - 1), steps: i - from });
        }
    }
    out
}

/// Values whose distance to the median of the same step of the day on the
/// three days either side exceeds 6 robust standard deviations (1.4826 ×
/// the median absolute distance over the whole series, at least 1 % of the
/// series' median level).
fn outliers(series: &History) -> Vec<Outlier> {
    let y = &series.target;
    let day = series.steps_per_day();
    let mut expected = vec![f64::NAN; y.len()];
    for (t, e) in expected.iter_mut().enumerate() {
        let mut near: Vec<f64> = (1..=3)
            .flat_map(|k| [t.checked_sub(k * day), Some(t + k * day)])
            .flatten()
            .filter_map(|j| y.get(j).copied())
            .filter(|v| !v.is_nan())
            .collect();
        if near.len() >= 3 {
            *e = median(&mut near);
        }
    }
    // Steps where both value and expectation are zero (PV at night) say
    // nothing about the spread.
    let mut dev: Vec<f64> = y
        .iter()
        .zip(&expected)
        .filter(|(a, b)| **a != 0.0 || **b != 0.0)
        .map(|(a, b)| (a - b).abs())
        .filter(|d| !d.is_nan())
        .collect();
    if dev.is_empty() {
        return Vec::new();
    }
    // A strictly periodic series has a zero median deviation; a floor of
    // 1 % of its typical level keeps rounding noise from being flagged.
    let mut level: Vec<f64> = y.iter().filter(|v| !v.is_nan()).map(|v| v.abs()).collect();
    let floor = if level.is_empty() { 0.0 } else { 0.01 * median(&mut level) };
    let scale = (1.4826 * median(&mut dev)).max(floor);
    if scale <= 0.0 {
        return Vec::new();
    }
    (0..y.len())
        .filter(|&t| (y[t] - expected[t]).abs() > 6.0 * scale)
        .map(|t| Outlier { time: series.stamp(t), value: y[t], expected: expected[t] })
        .collect()
}

/// Runs of one repeated non-zero value lasting at least 3 hours (and at
/// least 4 steps). Zeros are left alone: PV is flat at night.
fn flat_lines(series: &History) -> Vec<Span> {
    let y = &series.target;
    let min_len = ((3 * 3600) / series.step_s()).max(4) as usize;
    let same = |i: usize| {
        let v = y[i];
        v != 0.0 && !v.is_nan() && ((i > 0 && y[i - 1] == v) || y.get(i + 1).is_some_and(|&w| w == v))
    };
    runs(series, same, min_len)
}

/// Fills the report's findings about a placed history: gaps left, outliers
/// and flat-lines, each with its times.
pub(crate) fn find(series: &History, report: &mut QualityReport) {
    report.long_gaps = runs(series, |i| series.target[i].is_nan(), 1);
    report.outliers = outliers(series);
    report.flat_lines = flat_lines(series);
}

/// Median of a non-empty slice (reorders it).
pub(crate) fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 { values[n / 2] } else { 0.5 * (values[n / 2 - 1] + values[n / 2]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_gaps_are_interpolated_long_ones_left() {
        let mut v = vec![1.0, f64::NAN, 3.0, f64::NAN, f64::NAN, f64::NAN, 7.0, f64::NAN];
        assert_eq!(impute(&mut v, 2), 1);
        assert_eq!(v[1], 2.0);
        assert!(v[3].is_nan() && v[7].is_nan());
        let mut v = vec![0.0, f64::NAN, f64::NAN, f64::NAN, 4.0];
        assert_eq!(impute(&mut v, 3), 3);
        assert_eq!(&v, &[0.0, 1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
