//! Joint scenarios of several forecast series, and their reduction.
//!
//! **Joint.** Each series' forecast carries one path per past issue of its
//! model's calibration: the forecast with that day's out-of-sample errors
//! replayed lead by lead (see `volta_forecasting::scenarios`). Paths of
//! different series issued at the same instant are taken together, so a
//! scenario keeps the errors' correlation across hours (within a path) and
//! across series (a cloudy, cool day is cloudy for the PV and cool for the
//! load at once): an empirical copula of the error paths. Only the issues
//! every series has a path for are used, each with the same probability.
//!
//! **Reduction.** [`reduce`] keeps `k` of `n` scenarios by the fast forward
//! selection of Heitsch and Römisch (2003): it adds, one at a time, the
//! scenario that most lowers the Kantorovich distance between the kept set
//! and the full one, then gives each dropped scenario's probability to the
//! kept scenario nearest it. Distances are Euclidean over every series and
//! step, each series divided by its mean absolute value over the scenarios
//! so that kW and fractions weigh alike. Selection is deterministic (ties
//! go to the earlier scenario): the same forecasts give the same set.

use volta_dispatch::Scenario;
use volta_engine::TimeGrid;

use crate::error::PlanError;
use crate::forecast::SeriesForecast;

/// One scenario per past issue that every forecast has a path for, in
/// time order, equally likely; named by the issue's date in the case's
/// time zone.
///
/// # Errors
/// [`PlanError::NoScenarios`] when a forecast has no paths (its model was
/// trained without quantiles, or saved before paths were kept) or the
/// forecasts share no issue.
pub fn joint(forecasts: &[SeriesForecast], grid: &TimeGrid) -> Result<Vec<Scenario>, PlanError> {
    let Some(first) = forecasts.first() else { return Ok(Vec::new()) };
    if let Some(empty) = forecasts.iter().find(|f| f.paths.is_empty()) {
        return Err(PlanError::NoScenarios(format!(
            "the model of {} has no error paths: train it with quantiles (and save it with this version)",
            empty.series
        )));
    }
    let issues: Vec<_> = first
        .paths
        .iter()
        .map(|(issue, _)| *issue)
        .filter(|issue| forecasts.iter().all(|f| f.paths.iter().any(|(i, _)| i == issue)))
        .collect();
    if issues.is_empty() {
        return Err(PlanError::NoScenarios(
            "the models' error paths share no issue time: train them on the same days at the same issue time".into(),
        ));
    }
    let p = 1.0 / issues.len() as f64;
    Ok(issues
        .iter()
        .map(|issue| Scenario {
            name: issue.to_zoned_datetime(grid.time_zone().clone()).date().to_string(),
            probability: p,
            series: forecasts
                .iter()
                .filter_map(|f| f.paths.iter().find(|(i, _)| i == issue).map(|(_, v)| (f.series.clone(), v.clone())))
                .collect(),
        })
        .collect())
}

/// The `k` scenarios of `scenarios` chosen by fast forward selection, with
/// the probabilities of the others moved to their nearest kept one; all of
/// them when `k` is at least their number. Every scenario must replace the
/// same series in the same order (as [`joint`] makes them).
#[must_use]
pub fn reduce(scenarios: &[Scenario], k: usize) -> Vec<Scenario> {
    let n = scenarios.len();
    if k >= n || n == 0 {
        return scenarios.to_vec();
    }
    let k = k.max(1);
    let d = distances(scenarios);
    let p: Vec<f64> = scenarios.iter().map(|s| s.probability).collect();
    // c[i][j]: distance from i to the nearest of {j} ∪ kept so far.
    let mut c = d.clone();
    let mut kept: Vec<usize> = Vec::with_capacity(k);
    let mut is_kept = vec![false; n];
    while kept.len() < k {
        let mut best = (f64::INFINITY, usize::MAX);
        for u in (0..n).filter(|&u| !is_kept[u]) {
            let z: f64 = (0..n).filter(|&i| i != u && !is_kept[i]).map(|i| p[i] * c[i][u]).sum();
            if z < best.0 {
                best = (z, u);
            }
        }
        let u = best.1;
        kept.push(u);
        is_kept[u] = true;
        for row in &mut c {
            let via = row[u];
            for v in row.iter_mut() {
                *v = v.min(via);
            }
        }
    }
    kept.sort_unstable();
    let mut probability: Vec<f64> = kept.iter().map(|&j| p[j]).collect();
    for i in (0..n).filter(|&i| !is_kept[i]) {
        let nearest = (0..kept.len()).min_by(|&a, &b| d[i][kept[a]].total_cmp(&d[i][kept[b]])).unwrap_or(0);
        probability[nearest] += p[i];
    }
    kept.iter().zip(probability).map(|(&j, probability)| Scenario { probability, ..scenarios[j].clone() }).collect()
}

/// Pairwise Euclidean distances, each series scaled by its mean absolute value.
fn distances(scenarios: &[Scenario]) -> Vec<Vec<f64>> {
    let n = scenarios.len();
    let series = scenarios.first().map_or(0, |s| s.series.len());
    let scale: Vec<f64> = (0..series)
        .map(|j| {
            let (sum, count) = scenarios
                .iter()
                .filter_map(|s| s.series.get(j))
                .flat_map(|(_, v)| v.iter())
                .fold((0.0, 0usize), |(s, c), v| (s + v.abs(), c + 1));
            let mean = if count > 0 { sum / count as f64 } else { 0.0 };
            if mean > 0.0 { mean } else { 1.0 }
        })
        .collect();
    let mut d = vec![vec![0.0; n]; n];
    for a in 0..n {
        for b in a + 1..n {
            let mut sq = 0.0;
            for (j, &s) in scale.iter().enumerate() {
                if let (Some((_, x)), Some((_, y))) = (scenarios[a].series.get(j), scenarios[b].series.get(j)) {
                    sq += x.iter().zip(y).map(|(x, y)| ((x - y) / s).powi(2)).sum::<f64>();
                }
            }
            d[a][b] = sq.sqrt();
            d[b][a] = d[a][b];
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use volta_engine::{SeriesField, SeriesRef};

    use super::*;

    fn scenario(name: &str, values: Vec<f64>) -> Scenario {
        Scenario {
            name: name.to_owned(),
            probability: 0.0,
            series: vec![(SeriesRef::new("load", SeriesField::DemandKw), values)],
        }
    }

    fn equal(mut set: Vec<Scenario>) -> Vec<Scenario> {
        let p = 1.0 / set.len() as f64;
        for s in &mut set {
            s.probability = p;
        }
        set
    }

    #[test]
    fn two_clusters_reduce_to_one_scenario_each_with_the_cluster_probability() {
        let set = equal(vec![
            scenario("low1", vec![10.0, 10.0]),
            scenario("low2", vec![10.5, 10.0]),
            scenario("low3", vec![10.0, 10.4]),
            scenario("high1", vec![30.0, 31.0]),
            scenario("high2", vec![30.5, 31.0]),
        ]);
        let reduced = reduce(&set, 2);
        assert_eq!(reduced.len(), 2);
        let low = reduced.iter().find(|s| s.name.starts_with("low")).expect("a low one kept");
        let high = reduced.iter().find(|s| s.name.starts_with("high")).expect("a high one kept");
        assert!((low.probability - 0.6).abs() < 1e-12 && (high.probability - 0.4).abs() < 1e-12);
        // One scenario: the one nearest all the others, in the heavier cluster.
        assert!(reduce(&set, 1)[0].name.starts_with("low"));
        assert!((reduce(&set, 1)[0].probability - 1.0).abs() < 1e-12);
        assert_eq!(reduce(&set, 9).len(), 5);
    }

    proptest! {
        #[test]
        fn reduction_keeps_k_distinct_scenarios_and_all_the_probability(
            rows in prop::collection::vec(prop::collection::vec(0.0f64..100.0, 4), 1..30),
            k in 1usize..10,
        ) {
            let set = equal(rows.into_iter().enumerate().map(|(i, v)| scenario(&format!("s{i}"), v)).collect());
            let reduced = reduce(&set, k);
            prop_assert_eq!(reduced.len(), k.min(set.len()));
            let total: f64 = reduced.iter().map(|s| s.probability).sum();
            prop_assert!((total - 1.0).abs() < 1e-9);
            let mut names: Vec<&str> = reduced.iter().map(|s| s.name.as_str()).collect();
            names.dedup();
            prop_assert_eq!(names.len(), reduced.len());
            // Deterministic.
            prop_assert_eq!(reduce(&set, k), reduced);
        }
    }
}
