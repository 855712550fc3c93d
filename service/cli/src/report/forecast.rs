//! Files written by `volta backtest --out DIR`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use volta_forecasting::{Backtest, ForecastSpec, History};

use super::plot::{self, ForecastPlot};

/// Forecasts plotted: the first two weeks of the backtest.
const PLOT_DAYS: usize = 14;

/// Writes `forecasts.csv`, `metrics_by_lead.csv` and `forecast.png`; returns the files.
pub(crate) fn write_backtest(
    series: &History,
    spec: &ForecastSpec,
    bt: &Backtest,
    dir: &Path,
) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let stamp = |i: usize| series.stamp(i);

    let mut csv = String::from("issue,time,lead,actual,point,naive");
    for q in &spec.quantiles {
        write!(csv, ",q{q}")?;
    }
    csv.push('\n');
    for f in &bt.forecasts {
        let i0 = f.forecast.issue_step;
        for (k, p) in f.forecast.point.iter().enumerate() {
            write!(csv, "{},{},{k},{},{p},{}", stamp(i0), stamp(i0 + k), f.actual[k], f.naive[k])?;
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

    let shown: Vec<_> = bt.forecasts.iter().take(PLOT_DAYS).collect();
    if let Some(first) = shown.first() {
        let t0 = series.time(first.forecast.issue_step);
        let mut p = ForecastPlot {
            title: if spec.features.site.is_some() {
                // MAPE means nothing for PV (zeros at night): show the skill.
                format!(
                    "{} — {} forecasts of {} steps (skill {:.2} against {} over {} forecasts)",
                    series.target_name,
                    bt.model,
                    spec.features.horizon,
                    bt.metrics.skill,
                    bt.benchmark,
                    bt.forecasts.len()
                )
            } else {
                format!(
                    "{} — {} forecasts of {} steps (MAPE {:.2} % over {} forecasts)",
                    series.target_name,
                    bt.model,
                    spec.features.horizon,
                    bt.metrics.mape,
                    bt.forecasts.len()
                )
            },
            unit: &series.target_name,
            hours: Vec::new(),
            actual: Vec::new(),
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
