//! Data quality: a regular grid, gaps, imputation, and the values that
//! must not teach a model.
//!
//! Nothing is changed silently. Every row dropped, every step added, every
//! value imputed is counted in the [`QualityReport`], and every value the
//! checks flag is listed as a [`Flag`] with its time, value, rule and what
//! was done with it:
//!
//! - **non-finite** (`inf`): never given to a model; the step is imputed and,
//!   for the target, excluded from fitting, calibration and scoring;
//! - **outlier**: a run of values farther from the median of the same time
//!   of day on the three days either side than 6 robust standard deviations
//!   (1.4826 × the median absolute deviation from that median over the
//!   whole series, at least 1 % of the series' median level), that is
//!   entered *and* left by a kink (at each edge the series bends away from
//!   the straight line through its neighbours, `y[t] − (y[t−1] + y[t+1]) /
//!   2`, by more than 6 robust standard deviations of that bend, at least
//!   6 % of the median level; an edge on an interpolated gap counts), and
//!   that goes beyond what those days did at that time by half the bound. A
//!   spike, a dropout or a doubled hour does all three; a heat wave, a
//!   weekend or a holiday bends smoothly, however steep its ramps, and a
//!   passing cloud on PV is no deeper than a cloudy day;
//! - **unusual**: such a run that builds up and fades smoothly (hot days,
//!   holidays, storms). Listed, so a person can look, and kept: it is the
//!   load, and the model must learn it;
//! - **flat-line**: one non-zero value repeated for at least 3 hours (a
//!   stuck meter; zeros are left alone, PV is flat at night);
//! - **dst**: an outlier or flat value within an hour of a DST change (the
//!   spring-forward hour near zero, the fall-back hour doubled), told apart
//!   because its cause is the clock, not the load;
//! - **duplicate**: rows that give one instant, merged by the
//!   [`DuplicatePolicy`].
//!
//! By default ([`OutlierPolicy::Drop`]) flagged target values are excluded:
//! the model neither fits nor is scored on them, and lags see the median of
//! the same time on nearby days instead. `Clip` moves outliers to the
//! rule's bound and keeps them; `Keep` uses them as they are. Non-finite
//! values are excluded under every policy.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use volta_engine::series::DstPolicy;

use crate::history::History;

/// What to do with target values the checks flag as outliers, flat-lines
/// or DST artifacts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutlierPolicy {
    /// Use them as they are.
    Keep,
    /// Exclude them from fitting, calibration and scoring; features see a
    /// stand-in (the default).
    #[default]
    Drop,
    /// Move outliers to the rule's bound and use them; flat-lines and DST
    /// artifacts, which have no bound, are excluded as by `Drop`.
    Clip,
}

/// What to do with rows that give one instant different values (identical
/// repeats are always merged, with a note).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DuplicatePolicy {
    /// Refuse them, naming both rows (the default).
    #[default]
    Error,
    /// Keep the first row in the file.
    First,
    /// Keep the last row in the file.
    Last,
    /// Average them.
    Mean,
}

/// How a reader cleans what it reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cleaning {
    /// Flagged target values.
    #[serde(default)]
    pub outliers: OutlierPolicy,
    /// Rows at one instant with different values.
    #[serde(default)]
    pub duplicates: DuplicatePolicy,
    /// Local times skipped or repeated by DST changes.
    #[serde(default)]
    pub dst: DstPolicy,
}

impl Cleaning {
    /// The policies by name, as front ends take them (`drop`, `mean`,
    /// `shift_forward` or `shift-forward`, `average`); `None` keeps the
    /// default. The error names the option and lists the choices.
    ///
    /// # Errors
    /// An unknown name.
    pub fn from_names(
        outliers: Option<&str>,
        duplicates: Option<&str>,
        nonexistent: Option<&str>,
        ambiguous: Option<&str>,
    ) -> crate::Result<Self> {
        fn pick<T: serde::de::DeserializeOwned + Default>(
            option: &str,
            name: Option<&str>,
            choices: &str,
        ) -> crate::Result<T> {
            match name {
                None => Ok(T::default()),
                Some(name) => serde_json::from_value(serde_json::Value::String(name.trim().replace('-', "_")))
                    .map_err(|_| crate::ForecastError::option(option, format!("{name:?} is not one of {choices}"))),
            }
        }
        Ok(Self {
            outliers: pick("outliers", outliers, "drop, clip, keep")?,
            duplicates: pick("duplicates", duplicates, "error, first, last, mean")?,
            dst: DstPolicy {
                nonexistent: pick("nonexistent_times", nonexistent, "raise, drop, shift_forward")?,
                ambiguous: pick("ambiguous_times", ambiguous, "infer, raise, first, last, average")?,
            },
        })
    }
}

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
    /// Rows merged into another row at the same instant (identical repeats,
    /// and conflicting ones under a [`DuplicatePolicy`] other than `Error`).
    pub duplicates: usize,
    /// Rows between grid points (dropped).
    pub off_grid: usize,
    /// Local times a DST change skipped or repeated, placed by the policy
    /// (dropped, moved, or given to both instants).
    pub dst_rows: usize,
    /// Grid steps with no row in the file.
    pub missing_steps: usize,
    /// Target values filled by linear interpolation (gaps up to the limit).
    pub imputed: usize,
    /// Exogenous values filled, per column.
    pub exog_imputed: Vec<(String, usize)>,
    /// Target gaps longer than the limit, left missing.
    pub long_gaps: Vec<Span>,
    /// Runs of one repeated non-zero target value (a stuck meter, say).
    pub flat_lines: Vec<Span>,
    /// Every flagged value, in time order.
    pub flags: Vec<Flag>,
    /// Target steps excluded from fitting, calibration and scoring.
    pub excluded: usize,
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

/// Why a value was flagged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlagKind {
    /// `inf` or `-inf`.
    NonFinite,
    /// Far from the same time of day on nearby days and beyond their range,
    /// entered and left by a kink.
    Outlier,
    /// Far from the same time of day on nearby days, but smoothly so: a hot
    /// day, a holiday. Kept.
    Unusual,
    /// Part of a run of one repeated non-zero value.
    FlatLine,
    /// An outlier or flat value within an hour of a DST change.
    Dst,
    /// Rows at one instant.
    Duplicate,
}

impl FlagKind {
    /// The kind's name, as in the report files.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::NonFinite => "non_finite",
            Self::Outlier => "outlier",
            Self::Unusual => "unusual",
            Self::FlatLine => "flat_line",
            Self::Dst => "dst",
            Self::Duplicate => "duplicate",
        }
    }
}

/// What was done with a flagged value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Not fitted, calibrated or scored; features see the stand-in value.
    Excluded,
    /// Moved to the rule's bound and used.
    Clipped,
    /// Used as it is.
    Kept,
    /// An exogenous value replaced by interpolation (or left missing).
    Imputed,
    /// Repeated rows merged: identical, or by the duplicate policy.
    Merged,
}

impl Action {
    /// The action's name, as in the report files.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Excluded => "excluded",
            Self::Clipped => "clipped",
            Self::Kept => "kept",
            Self::Imputed => "imputed",
            Self::Merged => "merged",
        }
    }
}

/// A flagged value: where, what, by which rule, and what was done.
#[derive(Debug, Clone, Serialize)]
pub struct Flag {
    /// Step start (RFC 3339, local offset).
    pub time: String,
    /// The grid step.
    pub step: usize,
    /// The column.
    pub column: String,
    /// Why.
    pub kind: FlagKind,
    /// The value as read (for a duplicate: the value kept).
    pub value: f64,
    /// What the rule expected (the median of the same time of day on the
    /// days either side), where it has one.
    pub expected: Option<f64>,
    /// The value the features and, where kept, the model see.
    pub used: Option<f64>,
    /// What was done.
    pub action: Action,
    /// The rule, in words.
    pub rule: String,
}

impl QualityReport {
    /// One line for logs and the CLI.
    #[must_use]
    pub fn summary(&self) -> String {
        let mut line = format!(
            "{} rows, {} steps of {} s from {} to {}; {} duplicates merged, {} off-grid rows, {} missing steps, {} values imputed, {} long gaps",
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
        );
        if self.dst_rows > 0 {
            let _ = write!(line, ", {} rows at DST changes placed by policy", self.dst_rows);
        }
        let kinds = self.by_kind();
        if kinds.is_empty() {
            line.push_str("; nothing flagged");
        } else {
            let listed: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {}", k.name())).collect();
            let _ = write!(line, "; flagged: {}; {} target steps excluded", listed.join(", "), self.excluded);
        }
        line + &self.resampled_to.map_or(String::new(), |s| format!("; averaged to steps of {s} s"))
    }

    /// How many values were flagged, per kind.
    #[must_use]
    pub fn by_kind(&self) -> Vec<(FlagKind, usize)> {
        let mut out: Vec<(FlagKind, usize)> = Vec::new();
        for flag in &self.flags {
            match out.iter_mut().find(|(k, _)| *k == flag.kind) {
                Some((_, n)) => *n += 1,
                None => out.push((flag.kind, 1)),
            }
        }
        out.sort();
        out
    }

    /// The flags as CSV: time, column, kind, value, expected, used, action, rule.
    #[must_use]
    pub fn flags_csv(&self) -> String {
        let mut out = String::from("time,column,kind,value,expected,used,action,rule\n");
        let num = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
        for f in &self.flags {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},\"{}\"",
                f.time,
                f.column,
                f.kind.name(),
                f.value,
                num(f.expected),
                num(f.used),
                f.action.name(),
                f.rule.replace('"', "'")
            );
        }
        out
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

/// Runs of at least `min_len` steps where `hit` holds, as index ranges.
fn runs(len: usize, hit: impl Fn(usize) -> bool, min_len: usize) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < len {
        if !hit(i) {
            i += 1;
            continue;
        }
        let from = i;
        while i < len && hit(i) {
            i += 1;
        }
        if i - from >= min_len {
            out.push(from..i);
        }
    }
    out
}

fn span(series: &History, run: &std::ops::Range<usize>) -> Span {
    Span { from: series.stamp(run.start), to: series.stamp(run.end - 1), steps: run.len() }
}

/// The outlier rule's view of a series: per step, the median of the same
/// step of the day on the three days either side (NaN with fewer than three
/// of them), and the allowed distance from it.
struct Expectation {
    expected: Vec<f64>,
    /// The lowest and highest of those days' values (NaN as `expected`).
    range: Vec<(f64, f64)>,
    /// 6 robust standard deviations; 0 when the series has no spread.
    bound: f64,
    /// 1 % of the series' median level: the least robust standard deviation
    /// of its deviations and of its bends, so rounding noise in a strictly
    /// periodic series is never flagged.
    floor: f64,
}

const OUTLIER_RULE: &str = "more than 6 robust standard deviations from the median of the same time on the 3 days either side, entered and left by a kink, beyond those days' range";
const UNUSUAL_RULE: &str = "more than 6 robust standard deviations from the median of the same time on the 3 days either side, reached smoothly (weather or a holiday, kept)";
const FLAT_RULE: &str = "one non-zero value repeated for 3 hours or more";
const DST_RULE: &str = "an outlier or flat value within an hour of a DST change";
const NON_FINITE_RULE: &str = "not a finite number";

fn expectation(series: &History) -> Expectation {
    let y = &series.target;
    let day = series.steps_per_day();
    let mut expected = vec![f64::NAN; y.len()];
    let mut range = vec![(f64::NAN, f64::NAN); y.len()];
    for (t, (e, r)) in expected.iter_mut().zip(&mut range).enumerate() {
        let mut near: Vec<f64> = (1..=3)
            .flat_map(|k| [t.checked_sub(k * day), Some(t + k * day)])
            .flatten()
            .filter_map(|j| y.get(j).copied())
            .filter(|v| v.is_finite())
            .collect();
        if near.len() >= 3 {
            *e = median(&mut near);
            *r = (near[0], near[near.len() - 1]);
        }
    }
    let mut level: Vec<f64> = y.iter().filter(|v| v.is_finite()).map(|v| v.abs()).collect();
    let floor = if level.is_empty() { 0.0 } else { 0.01 * median(&mut level) };
    // Steps where both value and expectation are zero (PV at night) say
    // nothing about the spread.
    let mut dev: Vec<f64> = y
        .iter()
        .zip(&expected)
        .filter(|(a, b)| **a != 0.0 || **b != 0.0)
        .map(|(a, b)| (a - b).abs())
        .filter(|d| d.is_finite())
        .collect();
    if dev.is_empty() {
        return Expectation { expected, range, bound: 0.0, floor };
    }
    // A strictly periodic series has a zero median deviation.
    let scale = (1.4826 * median(&mut dev)).max(floor);
    Expectation { expected, range, bound: 6.0 * scale, floor }
}

/// Per step, how far the series bends away from the straight line through
/// its two neighbours (NaN at the ends and next to a gap).
fn bends(y: &[f64]) -> Vec<f64> {
    (0..y.len())
        .map(|t| match (t.checked_sub(1).and_then(|i| y.get(i)), y.get(t + 1)) {
            (Some(a), Some(b)) => y[t] - 0.5 * (a + b),
            _ => f64::NAN,
        })
        .collect()
}

/// How far a bend may go before it is a kink: 6 robust standard deviations
/// of the series' bends, the standard deviation at least `floor` (1 % of
/// the median level). Steps that are zero with zero neighbours (PV at
/// night) say nothing about the bends.
fn kink_bound(bends: &[f64], y: &[f64], floor: f64) -> f64 {
    let quiet = |t: usize| y[t.saturating_sub(1)..(t + 2).min(y.len())].iter().all(|v| *v == 0.0);
    let mut sizes: Vec<f64> =
        bends.iter().enumerate().filter(|(t, b)| b.is_finite() && !quiet(*t)).map(|(_, b)| b.abs()).collect();
    if sizes.is_empty() {
        return 6.0 * floor;
    }
    6.0 * (1.4826 * median(&mut sizes)).max(floor)
}

/// Steps within an hour of a change of the zone's UTC offset.
fn near_dst_change(series: &History) -> Vec<bool> {
    let mut near = vec![false; series.len()];
    if series.is_empty() {
        return near;
    }
    let (first, last) = (series.start(), series.time(series.len() - 1));
    let hour = jiff::SignedDuration::from_hours(1);
    for change in series.tz().following(first) {
        let at = change.timestamp();
        if at > last {
            break;
        }
        let from = at.checked_sub(hour).unwrap_or(at);
        let to = at.checked_add(hour).unwrap_or(at);
        for (i, n) in near.iter_mut().enumerate() {
            let t = series.time(i);
            if t >= from && t < to {
                *n = true;
            }
        }
    }
    near
}

/// A non-finite value found while reading: the column, the grid step and
/// the value.
pub(crate) struct NonFinite {
    pub(crate) column: String,
    pub(crate) step: usize,
    pub(crate) value: f64,
}

/// Finds what is wrong with a placed history and applies the policy (`gaps`
/// marks the steps that had no value before interpolation): long gaps and
/// flat-lines as spans, and a [`Flag`] for every non-finite value
/// (found while reading, already replaced by a gap), outlier, flat and DST
/// value, with the target's flagged steps excluded, clipped or kept.
pub(crate) fn inspect(
    series: &mut History,
    report: &mut QualityReport,
    policy: OutlierPolicy,
    non_finite: &[NonFinite],
    gaps: &[bool],
) {
    let len = series.len();
    let target = series.target_name.clone();
    report.long_gaps = runs(len, |i| series.target[i].is_nan(), 1).iter().map(|r| span(series, r)).collect();
    let view = expectation(series);
    let y = series.target.clone();
    let min_flat = usize::try_from((3 * 3600) / series.step_s()).unwrap_or(0).max(4);
    let same = |i: usize| {
        let v = y[i];
        v != 0.0 && v.is_finite() && ((i > 0 && y[i - 1] == v) || y.get(i + 1).is_some_and(|&w| w == v))
    };
    let flat = runs(len, same, min_flat);
    report.flat_lines = flat.iter().map(|r| span(series, r)).collect();
    let near_dst = near_dst_change(series);
    let mut kind: Vec<Option<FlagKind>> = vec![None; len];
    for run in &flat {
        for k in &mut kind[run.clone()] {
            *k = Some(FlagKind::FlatLine);
        }
    }
    if view.bound > 0.0 {
        let dev: Vec<f64> = y.iter().zip(&view.expected).map(|(a, b)| a - b).collect();
        let bend = bends(&y);
        let kink_bound = kink_bound(&bend, &y, view.floor);
        let far = |t: usize| dev[t].abs() > view.bound;
        for run in runs(len, far, 1) {
            // Kinked on the way in and on the way out: the steps on either
            // side of each edge. An edge at the series' end, or on a gap
            // filled by interpolation (whose bends say nothing), counts as
            // kinked.
            let kink = |t: Option<usize>| {
                t.is_some_and(|t| {
                    gaps.get(t).copied().unwrap_or(false) || bend.get(t).is_some_and(|b| b.abs() > kink_bound)
                })
            };
            let enters = run.start == 0 || kink(run.start.checked_sub(1)) || kink(Some(run.start));
            let leaves = run.end >= len || kink(Some(run.end - 1)) || kink(Some(run.end));
            // And outside what the nearby days did at that time: a passing
            // cloud is as deep as a cloudy day, a spike is deeper than any.
            let beyond = run.clone().any(|t| {
                let (lo, hi) = view.range[t];
                y[t] < lo - 0.5 * view.bound || y[t] > hi + 0.5 * view.bound
            });
            let abrupt = enters && leaves && beyond;
            for t in run {
                if kind[t].is_none() {
                    kind[t] = Some(if abrupt { FlagKind::Outlier } else { FlagKind::Unusual });
                }
            }
        }
    }
    for (t, k) in kind.iter_mut().enumerate() {
        if matches!(k, Some(FlagKind::Outlier | FlagKind::FlatLine)) && near_dst[t] {
            *k = Some(FlagKind::Dst);
        }
    }
    let mut excluded = vec![false; len];
    let mut flags: Vec<Flag> = Vec::new();
    for nf in non_finite {
        let is_target = nf.column == target;
        excluded[nf.step] |= is_target;
        let used = if is_target {
            series.target[nf.step]
        } else {
            series.exog(&nf.column).map_or(f64::NAN, |e| e.values[nf.step])
        };
        flags.push(Flag {
            time: series.stamp(nf.step),
            step: nf.step,
            column: nf.column.clone(),
            kind: FlagKind::NonFinite,
            value: nf.value,
            expected: None,
            used: used.is_finite().then_some(used),
            action: if is_target { Action::Excluded } else { Action::Imputed },
            rule: NON_FINITE_RULE.to_owned(),
        });
    }
    for (t, k) in kind.iter().enumerate() {
        let Some(k) = *k else { continue };
        let expected = view.expected[t];
        let action = match (policy, k) {
            (OutlierPolicy::Keep, _) | (_, FlagKind::Unusual) => Action::Kept,
            (OutlierPolicy::Clip, FlagKind::Outlier) => Action::Clipped,
            _ => Action::Excluded,
        };
        let used = match action {
            Action::Kept => y[t],
            // An outlier always has an expectation (its distance to it
            // made it one); the guard keeps a NaN from reaching `clamp`.
            Action::Clipped if expected.is_finite() => y[t].clamp(expected - view.bound, expected + view.bound),
            Action::Clipped => y[t],
            Action::Excluded | Action::Imputed | Action::Merged => expected,
        };
        series.target[t] = used;
        excluded[t] |= action == Action::Excluded;
        flags.push(Flag {
            time: series.stamp(t),
            step: t,
            column: target.clone(),
            kind: k,
            value: y[t],
            expected: expected.is_finite().then_some(expected),
            used: used.is_finite().then_some(used),
            action,
            rule: match k {
                FlagKind::FlatLine => FLAT_RULE,
                FlagKind::Dst => DST_RULE,
                FlagKind::Unusual => UNUSUAL_RULE,
                FlagKind::Outlier | FlagKind::NonFinite | FlagKind::Duplicate => OUTLIER_RULE,
            }
            .to_owned(),
        });
    }
    flags.sort_by_key(|f| f.step);
    report.flags.extend(flags);
    report.flags.sort_by_key(|f| f.step);
    report.excluded = excluded.iter().filter(|e| **e).count();
    series.set_excluded(excluded);
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
