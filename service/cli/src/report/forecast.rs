//! Files written by `volta backtest --out DIR` and `volta inspect --out DIR`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use volta_forecasting::{Backtest, ForecastSpec, History, QualityReport};

use super::plot::{self, ForecastPlot, QualityPlot};
use crate::forecast::PlotWindow;

/// Writes `forecasts.csv`, `metrics_by_lead.csv` and `forecast.png`; returns the files.
pub(crate) fn write_backtest(
    series: &History,
    spec: &ForecastSpec,
    bt: &Backtest,
    window: &PlotWindow,
    dir: &Path,
) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let stamp = |i: usize| series.stamp(i);

    // `actual` is empty where the value was flagged and not scored.
    let mut csv = String::from("issue,time,lead,actual,flagged,point,naive");
    for q in &spec.quantiles {
        write!(csv, ",q{q}")?;
    }
    csv.push('\n');
    for f in &bt.forecasts {
        let i0 = f.forecast.issue_step;
        for (k, p) in f.forecast.point.iter().enumerate() {
            let actual = if f.actual[k].is_nan() { String::new() } else { f.actual[k].to_string() };
            let flagged = f.flagged.get(k).copied().unwrap_or(false);
            write!(csv, "{},{},{k},{actual},{flagged},{p},{}", stamp(i0), stamp(i0 + k), f.naive[k])?;
            for q in f.forecast.quantiles.get(k).into_iter().flatten() {
                write!(csv, ",{q}")?;
            }
            csv.push('\n');
        }
    }
    let path = dir.join("forecasts.csv");
    std::fs::write(&path, csv).with_context(|| format!("cannot write {}", path.display()))?;
    written.push(path);

    let mut csv = String::from("lead,n,mae,rmse,mape,pinball,interval_coverage\n");
    for l in &bt.metrics.per_lead {
        writeln!(csv, "{},{},{},{},{},{},{}", l.lead, l.n, l.mae, l.rmse, l.mape, l.pinball, l.coverage)?;
    }
    let path = dir.join("metrics_by_lead.csv");
    std::fs::write(&path, csv).with_context(|| format!("cannot write {}", path.display()))?;
    written.push(path);

    let from = match &window.from {
        Some(text) => Some(volta_forecasting::start_time(text, series.tz(), "--plot-from")?),
        None => None,
    };
    let shown: Vec<_> = bt
        .forecasts
        .iter()
        .filter(|f| from.is_none_or(|t| series.time(f.forecast.issue_step) >= t))
        .take(window.days.unwrap_or(usize::MAX))
        .collect();
    if let Some(first) = shown.first() {
        let i_first = first.forecast.issue_step;
        let t0 = series.time(i_first);
        // Whether flagged actuals are in the score, said where the score is.
        let flagged = match bt.metrics.flagged {
            0 => String::new(),
            1 => "; 1 flagged actual not scored".to_owned(),
            n => format!("; {n} flagged actuals not scored"),
        };
        let score = if spec.features.site.is_some() {
            // MAPE means nothing for PV (zeros at night): show the skill.
            format!("skill {:.2} against {}", bt.metrics.skill, bt.benchmark)
        } else if bt.metrics.mape.is_nan() {
            "MAPE undefined: no non-zero actual".to_owned()
        } else {
            format!("MAPE {:.2} %", bt.metrics.mape)
        };
        let shown_days = if shown.len() == bt.forecasts.len() {
            String::new()
        } else {
            format!("; {} of the forecasts shown", shown.len())
        };
        let step_h = series.step_s() as f64 / 3600.0;
        let label = move |x: f64| {
            let i = i_first + (x / step_h).round().max(0.0) as usize;
            series.local(i.min(series.len() - 1)).strftime("%a %d %b").to_string()
        };
        let mut p = ForecastPlot {
            title: format!(
                "{} — {} forecasts of {} steps ({score} over {} forecasts{flagged}{shown_days})",
                series.target_name,
                bt.model,
                spec.features.horizon,
                bt.forecasts.len()
            ),
            unit: &series.target_name,
            time_label: &label,
            hours: Vec::new(),
            actual: Vec::new(),
            flagged: Vec::new(),
            point: Vec::new(),
            band: None,
            issues: Vec::new(),
        };
        // The widest central interval, e.g. P10–P90.
        let q = &spec.quantiles;
        let pair = (0..q.len())
            .find_map(|i| q.iter().position(|&b| (q[i] + b - 1.0).abs() < 1e-9 && q[i] < 0.5).map(|j| (i, j)));
        let (mut lo, mut hi) = (Vec::new(), Vec::new());
        for f in &shown {
            let i0 = f.forecast.issue_step;
            p.issues.push(series.time(i0).duration_since(t0).as_secs_f64() / 3600.0);
            for k in 0..f.forecast.point.len() {
                p.hours.push(series.time(i0 + k).duration_since(t0).as_secs_f64() / 3600.0);
                p.actual.push(f.actual[k]);
                if f.flagged.get(k).copied().unwrap_or(false) {
                    p.flagged.push((*p.hours.last().unwrap_or(&0.0), series.target[i0 + k]));
                }
                p.point.push(f.forecast.point[k]);
                if let (Some((i, j)), Some(qs)) = (pair, f.forecast.quantiles.get(k)) {
                    lo.push(qs[i]);
                    hi.push(qs[j]);
                }
            }
        }
        if let Some((i, j)) = pair {
            p.band = Some((format!("P{:.0}–P{:.0}", 100.0 * q[i], 100.0 * q[j]), lo, hi));
        }
        let path = dir.join("forecast.png");
        plot::forecast(&p, &path)?;
        written.push(path);
    }
    Ok(written)
}

/// Writes `quality.csv` (every flag), `quality.json` (the report) and
/// `quality.png` (the series with its flags marked); returns the files.
pub(crate) fn write_quality(series: &History, quality: &QualityReport, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let path = dir.join("quality.csv");
    std::fs::write(&path, quality.flags_csv()).with_context(|| format!("cannot write {}", path.display()))?;
    written.push(path);
    let path = dir.join("quality.json");
    std::fs::write(&path, serde_json::to_string_pretty(quality)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    written.push(path);
    let step_h = series.step_s() as f64 / 3600.0;
    let label = |x: f64| {
        let i = (x / step_h).round().max(0.0) as usize;
        series.local(i.min(series.len() - 1)).strftime("%d %b %Y").to_string()
    };
    let hours: Vec<f64> = (0..series.len()).map(|i| i as f64 * step_h).collect();
    let kinds = quality.by_kind();
    let marks = kinds
        .iter()
        .map(|(kind, n)| {
            let points = quality
                .flags
                .iter()
                .filter(|f| f.kind == *kind && f.column == series.target_name)
                .map(|f| (f.step as f64 * step_h, if f.value.is_finite() { f.value } else { f64::NAN }, f.used))
                .collect();
            (format!("{} ({n})", kind.name()), points)
        })
        .collect();
    let plot = QualityPlot {
        title: format!("{} — {}", series.target_name, quality_title(quality)),
        unit: &series.target_name,
        time_label: &label,
        hours,
        values: series.target.clone(),
        marks,
    };
    let path = dir.join("quality.png");
    plot::quality(&plot, &path)?;
    written.push(path);
    Ok(written)
}

fn quality_title(quality: &QualityReport) -> String {
    if quality.flags.is_empty() {
        return format!("{} steps, nothing flagged", quality.steps);
    }
    format!(
        "{} steps, {} flagged, {} excluded from fitting and scoring",
        quality.steps,
        quality.flags.len(),
        quality.excluded
    )
}
