//! `volta.forecast.v1.ForecastService`.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tonic::{Request, Response, Status};
use volta_forecasting::{BacktestSpec, ModelOptions, ReadOptions, cut_time, data};

use super::pb::forecast as pb;

/// The forecasting service (shares the solver slots with dispatch).
pub(crate) struct Forecast {
    slots: Arc<Semaphore>,
}

impl Forecast {
    pub(crate) fn new(slots: Arc<Semaphore>) -> Self {
        Self { slots }
    }
}

fn bad(e: &volta_forecasting::ForecastError) -> Status {
    Status::invalid_argument(e.to_string())
}

fn run(req: pb::BacktestRequest) -> Result<pb::BacktestResponse, Status> {
    let frame = data::frame_from_csv(&req.data_csv).map_err(|e| bad(&e))?;
    let mut read = ReadOptions::new(req.target);
    read.time_column = Some(req.time_column).filter(|s| !s.is_empty());
    read.exog = req.exog;
    read.known_ahead = req.known_ahead;
    read.timezone = Some(req.timezone).filter(|s| !s.is_empty());
    let (series, _) = data::from_frame(&frame, &read).map_err(|e| bad(&e))?;
    let options: ModelOptions = if req.options_json.trim().is_empty() {
        ModelOptions::default()
    } else {
        serde_json::from_str(&req.options_json).map_err(|e| Status::invalid_argument(format!("options_json: {e}")))?
    };
    let spec = options.to_spec(&series).map_err(|e| bad(&e))?;
    let train_until = cut_time(&req.train_until, &series.tz, "train_until").map_err(|e| bad(&e))?;
    let spec = BacktestSpec {
        forecast: spec,
        train_until,
        refit_every: req.refit_every as usize,
        test_until: None,
        recalibrate: true,
    };
    let bt = volta_forecasting::backtest(&series, &spec).map_err(|e| bad(&e))?;
    let m = &bt.metrics;
    let levels = |v: &[volta_forecasting::metrics::Level]| v.iter().map(|l| (format!("{}", l.q), l.value)).collect();
    Ok(pb::BacktestResponse {
        model: bt.model.clone(),
        n_forecasts: bt.forecasts.len() as u32,
        mae: m.mae,
        rmse: m.rmse,
        mape: m.mape,
        smape: m.smape,
        mase: m.mase,
        rmae: m.rmae,
        skill: m.skill,
        pinball: levels(&m.pinball),
        coverage: levels(&m.coverage),
        interval_coverage: m.intervals.first().map(|i| i.observed),
        fit_seconds: bt.fit_seconds,
    })
}

#[tonic::async_trait]
impl pb::forecast_service_server::ForecastService for Forecast {
    async fn backtest(&self, request: Request<pb::BacktestRequest>) -> Result<Response<pb::BacktestResponse>, Status> {
        let permit = self
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| Status::resource_exhausted("every solver slot is busy; retry later"))?;
        let req = request.into_inner();
        let reply = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            run(req)
        })
        .await
        .map_err(|e| Status::internal(format!("backtest task failed: {e}")))??;
        Ok(Response::new(reply))
    }
}
