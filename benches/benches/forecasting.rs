//! Forecasting benchmarks on the Victoria 2014 protocol (train to 31
//! October, 61 day-ahead forecasts of 48 half-hours):
//!
//! - `fit/<model>`: one training (GBDT: 400 trees; quantile calibration
//!   included, i.e. three cross-fitted models and the final one);
//! - `backtest/<model>`: the whole protocol, training included;
//!
//! Run with `cargo bench -p volta-benches --bench forecasting`. The batch
//! scaling over 1,000 series is `cargo run --release -p volta-benches --bin
//! batch-scaling` (one timed run per pool size; too long for criterion).

use criterion::{Criterion, criterion_group, criterion_main};
use jiff::civil::time;
use volta_forecasting::{BacktestSpec, FeatureSpec, ForecastSpec, Holidays, ModelSpec, backtest, train};

fn spec(model: &str) -> ForecastSpec {
    let mut features = FeatureSpec::new(48);
    features.temperature = Some("temperature_c".into());
    features.holidays = Holidays::builtin("AU-VIC", 2014, 2015).expect("holidays");
    ForecastSpec::new(ModelSpec::from_name(model).expect("model"), features, time(0, 0, 0, 0), vec![0.1, 0.5, 0.9])
}

fn protocol(model: &str) -> BacktestSpec {
    BacktestSpec {
        forecast: spec(model),
        train_until: "2014-11-01T00:00:00+10:00".parse().expect("ts"),
        refit_every: 0,
        test_until: None,
        recalibrate: true,
    }
}

fn benches(c: &mut Criterion) {
    let series = volta_benches::victoria();
    let cut = series.index_at_or_after("2014-11-01T00:00:00+10:00".parse().expect("ts"));
    let mut group = c.benchmark_group("forecasting");
    group.sample_size(10);
    for model in ["vanilla", "linear", "gbdt"] {
        let s = spec(model);
        group.bench_function(format!("fit/{model}"), |b| b.iter(|| train(&series, &s, cut).expect("fit")));
        let p = protocol(model);
        group.bench_function(format!("backtest/{model}"), |b| b.iter(|| backtest(&series, &p).expect("backtest")));
    }
    group.finish();
}

criterion_group!(forecasting, benches);
criterion_main!(forecasting);
