//! Files written by `volta schedule --out DIR`, `volta backtest --out DIR` and
//! `volta contracts stats --plot`.

pub(crate) mod contracts;
pub(crate) mod forecast;
pub(crate) mod market;
mod plot;
mod tables;

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use volta_dispatch::{Front, Schedule};
use volta_engine::Case;

/// Writes the schedule's tables and plots into `dir`; returns the files written.
pub(crate) fn write_schedule(case: &Case, schedule: &Schedule, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut written = Vec::new();
    let mut out = |name: &str| {
        let path = dir.join(name);
        written.push(path.clone());
        path
    };
    let flows = tables::flows(schedule);
    flows.write_csv(&out("schedule.csv"))?;
    flows.write_parquet(&out("schedule.parquet"))?;
    let storage = tables::storage(schedule);
    if !storage.is_empty() {
        storage.write_csv(&out("storage.csv"))?;
    }
    let commitment = tables::commitment(schedule);
    if !commitment.is_empty() {
        commitment.write_csv(&out("commitment.csv"))?;
    }
    tables::prices(schedule).write_csv(&out("prices.csv"))?;
    tables::write_costs(schedule, &case.settings().currency, &out("costs.csv"))?;
    for bus in case.buses() {
        let path = out(&format!("dispatch_{}.png", bus.id));
        plot::dispatch(case, schedule, bus, &path)?;
    }
    Ok(written)
}

/// Writes `pareto.csv` and `pareto.png` into `dir`.
pub(crate) fn write_front(case: &Case, front: &Front, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let csv_path = dir.join("pareto.csv");
    let mut w = csv::Writer::from_path(&csv_path)?;
    w.write_record(["point", &format!("cost_{}", case.settings().currency), "co2_kg", "co2_cap_kg", "status"])?;
    for (i, p) in front.points.iter().enumerate() {
        let cap = p.co2_cap_kg.map(|c| c.to_string()).unwrap_or_default();
        w.write_record([i.to_string(), p.cost.to_string(), p.co2_kg.to_string(), cap, p.status.name().to_owned()])?;
    }
    w.flush()?;
    let png = dir.join("pareto.png");
    plot::front(case, front, &png)?;
    Ok(vec![csv_path, png])
}

/// Writes `plan.png` for a day-ahead plan into `dir`: the scenario fan of
/// every forecast series with the plan over it, and the cost distribution.
pub(crate) fn write_plan_plot(
    case: &Case,
    made: &volta_planning::DayAheadPlan,
    alpha: f64,
    dir: &Path,
) -> anyhow::Result<PathBuf> {
    let grid = case.grid();
    let time_label = |x: f64| {
        let t = (x.max(0.0) as usize).min(grid.len().saturating_sub(1));
        grid.at(t).strftime("%d %H:%M").to_string()
    };
    let s = &made.solution;
    let series = made
        .forecasts
        .iter()
        .map(|f| {
            let band = (f.levels.len() >= 2 && !f.quantiles.is_empty()).then(|| {
                (f.quantiles.iter().map(|q| q[0]).collect(), f.quantiles.iter().map(|q| q[q.len() - 1]).collect())
            });
            let scenarios = made
                .scenarios
                .iter()
                .filter_map(|sc| {
                    sc.series.iter().find(|(r, _)| *r == f.series).map(|(_, v)| (sc.probability, v.clone()))
                })
                .collect();
            (f.series.to_string(), f.point.clone(), band, scenarios)
        })
        .collect();
    let plan = s.plan.clone().unwrap_or_default();
    let plot = plot::PlanPlot {
        title: format!(
            "{}: plan from forecasts issued {}",
            case.name(),
            made.issue.to_zoned_datetime(grid.time_zone().clone()).strftime("%Y-%m-%d %H:%M %Z")
        ),
        time_label: &time_label,
        series,
        nominations: plan.nominations.iter().map(|n| (n.asset.to_string(), n.net_import_kw.clone())).collect(),
        commitment: plan.commitment.iter().map(|u| (u.asset.to_string(), u.on.clone())).collect(),
        costs: s.scenarios.iter().map(|o| (o.cost, o.probability)).collect(),
        expected: s.expected_cost().unwrap_or(f64::NAN),
        cvar: s.cvar(alpha).map(|c| (alpha, c)),
        currency: &case.settings().currency,
    };
    let path = dir.join("plan.png");
    plot::plan(&plot, &path)?;
    Ok(path)
}
