//! `volta.forecast.v1.ForecastService`: backtests, and models trained,
//! stored by id under the caller's tenant, and used to forecast.

use tonic::{Request, Response, Status};
use volta_api::pb::forecast as pb;
use volta_api::status::{self as errors, shown};
use volta_engine::Cancel;
use volta_forecasting::{
    BacktestSpec, Files, ForecastSpec, ModelOptions, ReadOptions, TimeSeries, TrainedModel, cut_time, data,
};

use crate::Shared;
use crate::auth::{Caller, Role};
use crate::budget::Budget;
use crate::config::Limits;
use crate::store::ModelRecord;

/// The forecasting service (shares the solver slots with dispatch).
pub(crate) struct Forecast {
    shared: Shared,
}

impl Forecast {
    pub(crate) fn new(shared: Shared) -> Self {
        Self { shared }
    }
}

/// The series of a request, read as `volta backtest` reads a file, its
/// grid within `limits.max_series_steps`.
fn series(message: Option<pb::Series>, target: Option<&str>, limits: &Limits) -> Result<TimeSeries, Status> {
    let message = message.unwrap_or_default();
    let target = match (message.target.as_str(), target) {
        ("", Some(t)) => t.to_owned(),
        ("", None) => {
            return Err(errors::bad_request(
                "series.target: missing".to_owned(),
                [("series.target".to_owned(), "name the column to forecast".to_owned())],
            ));
        }
        (t, _) => t.to_owned(),
    };
    let frame = data::frame_from_csv(&message.csv).map_err(|e| errors::forecast(&e, "options_json"))?;
    let mut read = ReadOptions::new(target);
    read.time_column = Some(message.time_column).filter(|s| !s.is_empty());
    read.exog = message.exog;
    read.known_ahead = message.known_ahead;
    read.timezone = Some(message.timezone).filter(|s| !s.is_empty());
    read.max_steps = limits.max_series_steps;
    let (series, _) = data::from_frame(&frame, &read).map_err(|e| errors::forecast(&e, "options_json"))?;
    Ok(series)
}

/// INVALID_ARGUMENT naming `field` when a required text is empty (rather
/// than NOT_FOUND for an id nobody could have).
fn required(field: &str, value: &str) -> Result<(), Status> {
    if value.trim().is_empty() {
        return Err(errors::invalid(field, "required".to_owned()));
    }
    Ok(())
}

/// The model options of a request, within the server's budgets.
fn options(json: &str, limits: &Limits) -> Result<ModelOptions, Status> {
    let options: ModelOptions = if json.trim().is_empty() {
        ModelOptions::default()
    } else {
        serde_json::from_str(json).map_err(|e| errors::invalid("options_json", e.to_string()))?
    };
    let checks = [
        ("horizon", options.horizon, "max_horizon_steps", limits.max_horizon_steps),
        ("lags", options.lags.len(), "max_lags", limits.max_lags),
        ("regime_bins", options.regime_bins, "max_regime_bins", limits.max_regime_bins),
        ("trees", options.trees, "max_trees", limits.max_trees),
    ];
    for (field, value, limit, max) in checks {
        if value > max {
            return Err(errors::over_limit(&format!("options_json.{field}"), &value.to_string(), limit, max));
        }
    }
    Ok(options)
}

/// The checked spec of `options` for `series`: holidays from the built-in
/// calendars or inline dates, never a file of the server's.
fn spec(options: &ModelOptions, series: &TimeSeries) -> Result<ForecastSpec, Status> {
    options.to_spec_with(series, Files::Refused).map_err(|e| errors::forecast(&e, "options_json"))
}

fn backtest(req: pb::BacktestRequest, cancel: &Cancel, limits: &Limits) -> Result<pb::BacktestResponse, Status> {
    let bad = |e: &volta_forecasting::ForecastError| errors::forecast(e, "options_json");
    let options = options(&req.options_json, limits)?;
    let series = series(req.series, None, limits)?;
    let spec = spec(&options, &series)?;
    let train_until = cut_time(&req.train_until, &series.tz, "train_until").map_err(|e| errors::forecast(&e, ""))?;
    let spec = BacktestSpec {
        forecast: spec,
        train_until,
        refit_every: usize::try_from(req.refit_every).unwrap_or(usize::MAX),
        test_until: None,
        recalibrate: true,
    };
    // A dropped call stops the backtest at its next forecast.
    let bt =
        volta_forecasting::backtest_with_progress(&series, &spec, &mut |_, _| cancel.flow()).map_err(|e| bad(&e))?;
    let m = &bt.metrics;
    let levels = |v: &[volta_forecasting::metrics::Level]| v.iter().map(|l| (format!("{}", l.q), l.value)).collect();
    Ok(pb::BacktestResponse {
        model: bt.model.clone(),
        n_forecasts: u32::try_from(bt.forecasts.len()).unwrap_or(u32::MAX),
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

/// Trains; returns the model and its record (id and tenant to be filled).
fn train(
    req: pb::TrainRequest,
    tenant: String,
    limits: &Limits,
    cancel: &Cancel,
) -> Result<(ModelRecord, String, f64), Status> {
    let bad = |e: &volta_forecasting::ForecastError| errors::forecast(e, "options_json");
    let options = options(&req.options_json, limits)?;
    let series = series(req.series, None, limits)?;
    let spec = spec(&options, &series)?;
    let end = if req.train_until.trim().is_empty() {
        series.len()
    } else {
        series.index_at_or_after(
            cut_time(&req.train_until, &series.tz, "train_until").map_err(|e| errors::forecast(&e, ""))?,
        )
    };
    let start = std::time::Instant::now();
    // A dropped call, or one past its deadline, stops the fit at its next tree.
    let model = volta_forecasting::train_cancellable(&series, &spec, end, cancel).map_err(|e| bad(&e))?;
    let seconds = start.elapsed().as_secs_f64();
    let body = model.to_json().map_err(|e| bad(&e))?;
    let record = ModelRecord {
        id: uuid::Uuid::new_v4().to_string(),
        tenant,
        name: if req.name.is_empty() {
            format!("{} {}", spec.model.name(), model.target)
        } else {
            req.name.chars().take(200).collect()
        },
        model_kind: spec.model.name().to_owned(),
        target: model.target.clone(),
        horizon: i64::try_from(spec.features.horizon).unwrap_or(i64::MAX),
        step_seconds: model.step_seconds,
        trained_until: model.trained_until.to_string(),
        created_at: jiff::Timestamp::now().to_string(),
    };
    Ok((record, body, seconds))
}

fn forecast(
    model_id: String,
    body: &str,
    req: pb::ForecastRequest,
    limits: &Limits,
) -> Result<pb::ForecastResponse, Status> {
    let model =
        TrainedModel::from_json(body, &format!("stored model {model_id}")).map_err(|e| errors::forecast(&e, ""))?;
    let mut message = req.series.unwrap_or_default();
    // The model decides which columns it reads.
    let read = model.read_options();
    (message.exog, message.known_ahead) = (read.exog, read.known_ahead);
    if message.timezone.is_empty() {
        message.timezone = read.timezone.unwrap_or_default();
    }
    let series = series(Some(message), Some(&model.target), limits)?;
    let issue = cut_time(&req.issue_time, &series.tz, "issue_time")
        .ok()
        .filter(|_| req.issue_time.len() > 10)
        .ok_or_else(|| errors::invalid("issue_time", format!("{} is not a timestamp", shown(&req.issue_time))))?;
    let forecast = model.forecast(&series, issue).map_err(|e| errors::forecast(&e, ""))?;
    let levels = &model.spec.quantiles;
    Ok(pb::ForecastResponse {
        model_id,
        times: (0..forecast.point.len()).map(|k| series.stamp(forecast.issue_step + k)).collect(),
        point: forecast.point.clone(),
        quantiles: levels
            .iter()
            .enumerate()
            .map(|(j, &level)| pb::Quantile {
                level,
                values: forecast.quantiles.iter().map(|row| row.get(j).copied().unwrap_or(f64::NAN)).collect(),
            })
            .collect(),
    })
}

fn info(record: ModelRecord) -> pb::ModelInfo {
    pb::ModelInfo {
        id: record.id,
        name: record.name,
        model: record.model_kind,
        target: record.target,
        horizon: u32::try_from(record.horizon).unwrap_or(u32::MAX),
        step_seconds: record.step_seconds,
        trained_until: record.trained_until,
        created_at: record.created_at,
    }
}

fn not_found(id: &str) -> Status {
    Status::not_found(format!("model_id: no model {} for this tenant", shown(id)))
}

#[tonic::async_trait]
impl pb::forecast_service_server::ForecastService for Forecast {
    async fn backtest(&self, request: Request<pb::BacktestRequest>) -> Result<Response<pb::BacktestResponse>, Status> {
        Caller::of(&request)?.require(Role::Operator)?;
        let budget = Budget::of(&request);
        let req = request.into_inner();
        let cancel = Cancel::new();
        let token = cancel.clone();
        let limits = self.shared.limits.clone();
        let reply = self.shared.offload("backtest", &cancel, &budget, move || backtest(req, &token, &limits)).await?;
        Ok(Response::new(reply))
    }

    async fn train(&self, request: Request<pb::TrainRequest>) -> Result<Response<pb::TrainResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Role::Operator)?;
        let budget = Budget::of(&request);
        let req = request.into_inner();
        let limits = self.shared.limits.clone();
        let cancel = Cancel::new();
        let token = cancel.clone();
        let (record, body, fit_seconds) =
            self.shared.offload("train", &cancel, &budget, move || train(req, caller.tenant, &limits, &token)).await?;
        self.shared.store.put_model(&record, &body).await.map_err(|e| crate::store::unavailable(&e))?;
        tracing::info!(model_id = %record.id, tenant = %record.tenant, "model stored");
        Ok(Response::new(pb::TrainResponse { model: Some(info(record)), fit_seconds }))
    }

    async fn forecast(&self, request: Request<pb::ForecastRequest>) -> Result<Response<pb::ForecastResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Role::Viewer)?;
        let budget = Budget::of(&request);
        let req = request.into_inner();
        required("model_id", &req.model_id)?;
        let id = req.model_id.clone();
        let (_, body) = self
            .shared
            .store
            .model(&caller.tenant, &id)
            .await
            .map_err(|e| crate::store::unavailable(&e))?
            .ok_or_else(|| not_found(&id))?;
        let limits = self.shared.limits.clone();
        let reply =
            self.shared.offload("forecast", &Cancel::new(), &budget, move || forecast(id, &body, req, &limits)).await?;
        Ok(Response::new(reply))
    }

    async fn list_models(
        &self,
        request: Request<pb::ListModelsRequest>,
    ) -> Result<Response<pb::ListModelsResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Role::Viewer)?;
        let models = self.shared.store.models(&caller.tenant).await.map_err(|e| crate::store::unavailable(&e))?;
        Ok(Response::new(pb::ListModelsResponse { models: models.into_iter().map(info).collect() }))
    }

    async fn delete_model(
        &self,
        request: Request<pb::DeleteModelRequest>,
    ) -> Result<Response<pb::DeleteModelResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Role::Admin)?;
        let id = request.into_inner().id;
        required("id", &id)?;
        if self.shared.store.delete_model(&caller.tenant, &id).await.map_err(|e| crate::store::unavailable(&e))? {
            Ok(Response::new(pb::DeleteModelResponse {}))
        } else {
            Err(not_found(&id))
        }
    }
}
