//! Batch backtests of 1,000 series on a rayon pool of 1 and of 2 threads.
//!
//! Each series is 60 days of half-hourly demand: a scaled copy of a
//! different stretch of Victoria's 2014 demand (with its temperature), put
//! on the first 60 days' calendar (synthetic, for timing). Every series is
//! backtested with the ridge model: trained on 45 days (quantiles calibrated
//! on its last 14, held out), then 15 day-ahead forecasts of 48 steps with
//! P10/P90. Prints the wall time of each pool
//! size and the speed-up.
//!
//! `cargo run --release -p volta-benches --bin batch-scaling [N]`

use std::time::Instant;

use jiff::civil::time;
use volta_benches::flags::Flags;
use volta_forecasting::{BacktestSpec, FeatureSpec, ForecastSpec, History, ModelSpec, backtest_many};

const USAGE: &str = "\
usage: batch-scaling [N]
  N  the number of series backtested (default 1000)";

fn main() {
    let mut flags = Flags::new(USAGE);
    let n: usize = match flags.next_flag() {
        None => 1000,
        Some(n) => n.parse().unwrap_or_else(|e| flags.fail(&format!("N: {e}: {n}"))),
    };
    if let Some(extra) = flags.next_flag() {
        flags.unknown(&extra);
    }
    let series = volta_benches::victoria();
    let len = 48 * 60;
    let many: Vec<History> = (0..n)
        .map(|k| {
            let from = (k * 97) % (series.len() - len);
            let mut s = series.head(len);
            s.target = series.target[from..from + len].iter().map(|v| v * (0.5 + (k % 7) as f64 / 7.0)).collect();
            for (e, src) in s.exog.iter_mut().zip(&series.exog) {
                e.values = src.values[from..from + len].to_vec();
            }
            s
        })
        .collect();
    let mut features = FeatureSpec::new(48);
    features.temperature = Some("temperature_c".into());
    let spec = BacktestSpec {
        forecast: ForecastSpec {
            calibration_days: 14,
            calibration_folds: 0,
            ..ForecastSpec::new(
                ModelSpec::from_name("linear").expect("linear"),
                features,
                time(0, 0, 0, 0),
                vec![0.1, 0.9],
            )
        },
        train_until: series.time(48 * 45),
        refit_every: 0,
        test_until: None,
        recalibrate: true,
    };
    let mut seconds = Vec::new();
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("pool");
        let start = Instant::now();
        let results = pool.install(|| backtest_many(&many, &spec));
        let s = start.elapsed().as_secs_f64();
        let ok = results.iter().filter(|r| r.is_ok()).count();
        let mape: f64 =
            results.iter().filter_map(|r| r.as_ref().ok()).map(|b| b.metrics.mape).sum::<f64>() / ok.max(1) as f64;
        println!("{n} series, {threads} thread(s): {s:.2} s ({ok} ok, mean MAPE {mape:.2} %)");
        seconds.push(s);
    }
    println!("speed-up with 2 threads: {:.2}x", seconds[0] / seconds[1]);
}
