//! Joint scenarios of a forecast: the point forecast plus each of the
//! model's own out-of-sample error paths.
//!
//! A calibrated quantile holds one lead at a time; the sum of the P90s of
//! every hour is not the P90 of the day, because errors persist from one
//! hour to the next (a cold week is cold all week). What a sum over the
//! horizon needs is whole paths of errors. Training already makes them:
//! each held-out issue of the cross-fitted calibration was forecast out of
//! sample over the whole horizon, exactly as in operation. Replaying the
//! errors of issue `d`, lead by lead, on today's forecast gives a scenario
//! with the correlation across leads that day had (an empirical copula,
//! the "analog ensemble" of the error paths). Paths of several series
//! issued on the same days are taken together by their issue day, which
//! keeps the correlation across series as well.
//!
//! Errors are applied as the calibration measured them: relative to the
//! forecast for a strictly positive target (a load), absolute otherwise;
//! a target never negative in training is clipped at 0.

use jiff::Timestamp;

pub use crate::calibration::ErrorPath;
use crate::trained::{Forecast, TrainedModel};

/// One scenario of a forecast.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// The past issue whose errors it replays.
    pub analog: Timestamp,
    /// Value per lead.
    pub values: Vec<f64>,
}

impl TrainedModel {
    /// The out-of-sample error paths of its calibration, oldest first: one
    /// per held-out issue whose every lead had an actual. Saved with the
    /// model; empty for a model without quantiles and for a model file
    /// written before they were saved.
    #[must_use]
    pub fn error_paths(&self) -> &[ErrorPath] {
        &self.error_paths
    }

    /// `forecast` under each of `paths` (from [`TrainedModel::error_paths`]
    /// of this model): its point forecast with the path's error at every
    /// lead, clipped at 0 for a target never negative in training.
    #[must_use]
    pub fn scenarios(&self, forecast: &Forecast, paths: &[ErrorPath]) -> Vec<Scenario> {
        let relative = self.calibration.as_ref().is_some_and(|c| c.relative);
        paths
            .iter()
            .map(|path| Scenario {
                analog: path.issue,
                values: forecast
                    .point
                    .iter()
                    .zip(&path.errors)
                    .map(|(&p, &e)| {
                        let v = if relative { p * (1.0 + e) } else { p + e };
                        if self.nonnegative { v.max(0.0) } else { v }
                    })
                    .collect(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil::time;
    use volta_engine::TimeGrid;

    use super::*;
    use crate::features::FeatureSpec;
    use crate::history::History;
    use crate::models::ModelSpec;
    use crate::spec::ForecastSpec;
    use crate::trained::train;

    /// Hourly data whose daily level is a slow random walk: errors persist
    /// across a day's leads, so the day's total spreads wider than leads
    /// taken one at a time suggest.
    fn walk(days: usize) -> History {
        let start = "2024-01-01T00:00:00+00:00[UTC]".parse().expect("start");
        let grid = TimeGrid::new(start, jiff::SignedDuration::from_hours(1), days * 24).expect("grid");
        let mut level = 100.0_f64;
        let mut state = 7_u64;
        let mut values = Vec::new();
        for d in 0..days {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            level = (level + ((state >> 33) as f64 / f64::from(1u32 << 31) - 0.5) * 20.0).max(20.0);
            for h in 0..24 {
                let shape = if (8..20).contains(&h) { 1.3 } else { 0.8 };
                values.push(level * shape + ((d * 24 + h) % 5) as f64);
            }
        }
        History::new(grid, "load", values, Vec::new()).expect("history")
    }

    #[test]
    fn each_held_out_issue_gives_one_complete_path_that_replays_its_errors() {
        let series = walk(120);
        let spec = ForecastSpec::new(
            ModelSpec::from_name("linear").expect("model"),
            FeatureSpec::new(48),
            time(0, 0, 0, 0),
            vec![0.1, 0.9],
        );
        let model = train(&series, &spec, series.len()).expect("train");
        let paths = model.error_paths();
        // Issues from day 9 (7 days of lags and 2 of horizon) to day 118
        // (the last whose horizon ends in the data), each held out once.
        assert_eq!(paths.len(), 110);
        // Saved with the model: a model read back from its file makes the
        // same scenarios.
        let saved = serde_json::to_string(&model).expect("save");
        let loaded: TrainedModel = serde_json::from_str(&saved).expect("load");
        assert_eq!(loaded.error_paths(), paths);
        assert!(paths.windows(2).all(|w| w[0].issue < w[1].issue));
        let forecast = model.forecast(&series, series.time(series.len() - 48)).expect("forecast");
        let scenarios = model.scenarios(&forecast, paths);
        assert_eq!(scenarios.len(), paths.len());
        for (s, p) in scenarios.iter().zip(paths) {
            assert_eq!(s.analog, p.issue);
            for ((v, e), point) in s.values.iter().zip(&p.errors).zip(&forecast.point) {
                // The load is positive: errors are relative.
                assert!((v - (point * (1.0 + e)).max(0.0)).abs() < 1e-9);
            }
        }
        // Every error of a path is an out-of-sample error of the
        // calibration: the quantiles of lead 0's errors match its offsets.
        let mut lead0: Vec<f64> = paths.iter().map(|p| p.errors[0]).collect();
        lead0.sort_by(f64::total_cmp);
        assert!(lead0[0] < 0.0 && lead0[lead0.len() - 1] > 0.0);
    }

    #[test]
    fn no_calibration_no_paths() {
        let series = walk(40);
        let spec = ForecastSpec::new(ModelSpec::NaiveDay, FeatureSpec::new(24), time(0, 0, 0, 0), Vec::new());
        let model = train(&series, &spec, series.len()).expect("train");
        assert!(model.error_paths().is_empty());
    }
}
