//! Nothing after the issue time may change a forecast, except columns
//! marked known ahead, and only within the horizon.

use proptest::prelude::*;
use volta_forecasting::features::Context;
use volta_forecasting::{ModelSpec, TrainedModel, train};

use crate::{spec, victoria};

fn trained() -> (volta_forecasting::History, TrainedModel) {
    let series = victoria().head(48 * 70);
    let model =
        train(&series, &spec(ModelSpec::from_name("linear").expect("linear"), vec![0.1, 0.9]), 48 * 50).expect("train");
    (series, model)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, .. ProptestConfig::default() })]

    #[test]
    fn changing_the_future_does_not_change_the_forecast(day in 52usize..66, scale in 0.1f64..3.0, shift in -5.0f64..5.0) {
        let (series, model) = trained();
        let i0 = 48 * day;
        let ctx = Context::new(&series, &model.spec.features);
        let before = model.forecast_at(&series, &ctx, i0);
        let mut future = series;
        for v in &mut future.target[i0..] {
            *v = *v * scale + shift;
        }
        // The temperature is known ahead: only values past the horizon may change freely.
        for e in &mut future.exog {
            for v in &mut e.values[i0 + 48..] {
                *v += shift;
            }
        }
        let ctx = Context::new(&future, &model.spec.features);
        let after = model.forecast_at(&future, &ctx, i0);
        prop_assert_eq!(before.point, after.point);
        prop_assert_eq!(before.quantiles, after.quantiles);
    }
}

#[test]
fn a_saved_model_forecasts_exactly_as_the_trained_one() {
    let (series, model) = trained();
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("m.json");
    model.save(&path).expect("save");
    let loaded = TrainedModel::load(&path).expect("load");
    let issue = series.time(48 * 60);
    let a = model.forecast(&series, issue).expect("forecast");
    let b = loaded.forecast(&series, issue).expect("forecast");
    assert_eq!(a.point, b.point);
    assert_eq!(a.quantiles, b.quantiles);
    assert_eq!(a.point.len(), 48);
    // A forecast past the end of the target works when the known-ahead
    // temperature covers the horizon (a weather forecast beside the data) ...
    let mut future = series.head(48 * 63);
    for v in &mut future.target[48 * 60..] {
        *v = f64::NAN;
    }
    let c = loaded.forecast(&future, series.time(48 * 60)).expect("forecast past the end");
    assert_eq!(c.point, a.point, "the unknown target changes nothing");
    // ... and is refused, naming the column and its last value, when it does not.
    let tail = series.head(48 * 60);
    let err = loaded.forecast(&tail, series.time(48 * 60)).expect_err("no temperature over the horizon");
    assert!(err.to_string().contains("known ahead") && err.to_string().contains("last value"), "{err}");
    // A target last seen more than a day before the issue is refused too.
    let err = loaded.forecast(&future, series.time(48 * 62)).expect_err("stale target");
    assert!(err.to_string().contains("was last observed at"), "{err}");
    // Other files are refused with a reason.
    std::fs::write(&path, r#"{"format": "something-else"}"#).expect("write");
    assert!(TrainedModel::load(&path).expect_err("other").to_string().contains("not a Volta forecast model"));
    std::fs::write(&path, r#"{"format": "volta-forecast-model", "version": 99}"#).expect("write");
    assert!(TrainedModel::load(&path).expect_err("newer").to_string().contains("version 99"));
}
