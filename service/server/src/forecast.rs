//! `volta.forecast.v1.ForecastService`: backtests, and models trained,
//! stored under the caller's tenant as `tenants/{tenant}/models/{id}`, and
//! used to forecast.

use jiff::{SignedDuration, Timestamp};
use tonic::{Request, Response, Status};
use volta_api::forecast::{self as convert, Call};
use volta_api::pb::forecast as pb;
use volta_api::status::{self as errors, Reason, shown};
use volta_api::time;
use volta_engine::Cancel;
use volta_forecasting::{
    BacktestSpec, Cleaning, Files, ForecastSpec, History, ModelOptions, QualityReport, TrainedModel,
};

use crate::auth::{Caller, Role};
use crate::budget::Budget;
use crate::config::Limits;
use crate::store::{self, Cursor, ModelFilter, ModelRecord};
use crate::{MAX_REQUEST_ID_CHARS, Shared};

/// The forecasting service (shares the solver slots with dispatch).
pub(crate) struct Forecast {
    shared: Shared,
}

impl Forecast {
    pub(crate) fn new(shared: Shared) -> Self {
        Self { shared }
    }
}

/// The stored model that the request field `field` names, with its body:
/// NOT_FOUND when the caller's tenant has no such model.
pub(crate) async fn stored(
    shared: &Shared,
    field: &str,
    name: &str,
    caller: &Caller,
) -> Result<(ModelRecord, String), Status> {
    let id = model_id(field, name, &caller.tenant)?;
    shared
        .models
        .model(&caller.tenant, id)
        .await
        .map_err(|e| store::unavailable(&e))?
        .ok_or_else(|| not_found(field, name))
}

/// Models a page lists when the caller does not say.
const DEFAULT_PAGE: usize = 50;

/// The series of a request within `limits.max_series_steps`, cleaned by
/// the request's policies or, where it sets none, by `cleaning`; with the
/// quality report and the policies applied.
fn series(
    message: Option<pb::SeriesData>,
    target: Option<&str>,
    cleaning: Option<Cleaning>,
    limits: &Limits,
    call: Call,
) -> Result<(History, QualityReport, Cleaning), Status> {
    let mut series = convert::series(message, target)?;
    series.read.max_steps = limits.max_series_steps;
    if let Some(default) = cleaning
        && !series.cleaning_given
    {
        series.read.cleaning = default;
    }
    let applied = series.read.cleaning;
    let (history, quality) = series.read(call)?;
    Ok((history, quality, applied))
}

/// The model options of a request, within the server's budgets.
fn options(message: Option<pb::ModelOptions>, limits: &Limits) -> Result<ModelOptions, Status> {
    let options = convert::model_options(message)?;
    let checks = [
        ("horizon_steps", options.horizon, "max_horizon_steps", limits.max_horizon_steps),
        ("lag_days", options.lags.len(), "max_lags", limits.max_lags),
        ("regime_bins", options.regime_bins, "max_regime_bins", limits.max_regime_bins),
        ("trees", options.trees, "max_trees", limits.max_trees),
    ];
    for (field, value, limit, max) in checks {
        if value > max {
            return Err(errors::over_limit(&format!("options.{field}"), &value.to_string(), limit, max));
        }
    }
    Ok(options)
}

/// The checked spec of `options` for `series`: holidays from the built-in
/// calendars or inline dates, never a file of the server's.
fn spec(options: &ModelOptions, series: &History, call: Call) -> Result<ForecastSpec, Status> {
    options.to_spec_with(series, Files::Refused).map_err(|e| convert::error(&e, call))
}

/// The instant a request's cut falls on, inside the data.
fn cut(field: &str, at: Option<prost_types::Timestamp>, series: &History) -> Result<Option<Timestamp>, Status> {
    let Some(at) = time::instant(field, at)? else { return Ok(None) };
    let (first, last) = (series.time(0), series.time(series.len().saturating_sub(1)));
    if at <= first || at > last {
        return Err(errors::invalid(field, format!("{at} is outside the data ({first} to {last})")));
    }
    Ok(Some(at))
}

fn backtest(req: pb::BacktestRequest, cancel: &Cancel, limits: &Limits) -> Result<pb::BacktestResponse, Status> {
    let pb::BacktestRequest { series: data, options: model, train_until, refit_every } = req;
    let options = options(model, limits)?;
    let (series, quality, _) = series(data, None, None, limits, Call::Backtest)?;
    let spec = spec(&options, &series, Call::Backtest)?;
    let train_until = cut("train_until", train_until, &series)?
        .ok_or_else(|| errors::invalid("train_until", "required: the end of the training data".to_owned()))?;
    let spec = BacktestSpec {
        forecast: spec,
        train_until,
        refit_every: time::unsigned("refit_every", refit_every)?,
        test_until: None,
        recalibrate: true,
    };
    // A dropped call stops the backtest at its next forecast.
    let bt = volta_forecasting::backtest_with_progress(&series, &spec, &mut |_, _| cancel.flow())
        .map_err(|e| convert::error(&e, Call::Backtest))?;
    Ok(convert::backtest(&bt, &quality))
}

/// What Train stores: the record and the model file's text.
struct Trained {
    record: ModelRecord,
    body: String,
    fit: SignedDuration,
    quality: pb::DataQuality,
}

fn train(req: pb::TrainRequest, tenant: String, limits: &Limits, cancel: &Cancel) -> Result<Trained, Status> {
    let pb::TrainRequest { series: data, options: model, train_until, display_name, request_id } = req;
    let options = options(model, limits)?;
    let (series, quality, cleaning) = series(data, None, None, limits, Call::Train)?;
    let spec = spec(&options, &series, Call::Train)?;
    let end = match cut("train_until", train_until, &series)? {
        Some(at) => series.index_at_or_after(at),
        None => series.len(),
    };
    let start = std::time::Instant::now();
    // A dropped call, or one past its deadline, stops the fit at its next tree.
    let mut model = volta_forecasting::train_cancellable(&series, &spec, end, cancel)
        .map_err(|e| convert::error(&e, Call::Train))?;
    model.cleaning = cleaning;
    let fit = SignedDuration::try_from(start.elapsed()).unwrap_or(SignedDuration::MAX);
    let body = model.to_json().map_err(|e| convert::error(&e, Call::Train))?;
    let record = ModelRecord {
        id: uuid::Uuid::new_v4().simple().to_string(),
        tenant,
        name: if display_name.is_empty() {
            format!("{} {}", spec.model.name(), model.target)
        } else {
            display_name.chars().take(200).collect()
        },
        model_kind: spec.model.name().to_owned(),
        target: model.target.clone(),
        horizon: i64::try_from(spec.features.horizon).unwrap_or(i64::MAX),
        step_seconds: model.step_seconds,
        trained_until: model.trained_until.to_string(),
        created_at: store::stored_time(Timestamp::now()),
        request_id: Some(request_id).filter(|r| !r.is_empty()),
    };
    Ok(Trained { record, body, fit, quality: convert::data_quality(&quality) })
}

/// A stored model's body, read.
pub(crate) fn read_model(name: &str, body: &str) -> Result<TrainedModel, Status> {
    TrainedModel::from_json(body, &format!("stored model {name}")).map_err(|e| convert::error(&e, Call::Forecast))
}

/// The data `model` reads, from the request's `series` message: the
/// model's columns and (unless the request sets its own) cleaning, within
/// `limits.max_series_steps`. Errors name fields under `series`.
pub(crate) fn model_history(
    model: &TrainedModel,
    data: Option<pb::SeriesData>,
    limits: &Limits,
) -> Result<History, Status> {
    let mut message = data.unwrap_or_default();
    // The model decides which columns it reads.
    let read = model.read_options();
    (message.exog_columns, message.known_ahead_columns) = (read.exog, read.known_ahead);
    if message.time_zone.is_empty() {
        message.time_zone = read.timezone.unwrap_or_default();
    }
    let (series, _, _) = series(Some(message), Some(&model.target), Some(model.cleaning), limits, Call::Forecast)?;
    Ok(series)
}

fn forecast(
    name: String,
    body: &str,
    req: pb::ForecastRequest,
    limits: &Limits,
) -> Result<pb::ForecastResponse, Status> {
    let pb::ForecastRequest { model: _, series: data, issue_time } = req;
    let model = read_model(&name, body)?;
    let series = model_history(&model, data, limits)?;
    let issue = time::instant("issue_time", issue_time)?
        .ok_or_else(|| errors::invalid("issue_time", "required: the first forecast step".to_owned()))?;
    let forecast = model.forecast(&series, issue).map_err(|e| convert::error(&e, Call::Forecast))?;
    let levels = &model.spec.quantiles;
    Ok(pb::ForecastResponse {
        model: name,
        grid: Some(convert::forecast_grid(&series, forecast.issue_step, forecast.point.len())),
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

/// A stored model's resource name.
fn resource(record: &ModelRecord) -> String {
    format!("tenants/{}/models/{}", record.tenant, record.id)
}

/// The model id of a resource name of the caller's tenant. A name of
/// another tenant is NOT_FOUND, as if it did not exist.
fn model_id<'a>(field: &str, name: &'a str, tenant: &str) -> Result<&'a str, Status> {
    if name.trim().is_empty() {
        return Err(errors::invalid(field, "required: tenants/{tenant}/models/{model}".to_owned()));
    }
    match name.split('/').collect::<Vec<_>>().as_slice() {
        ["tenants", owner, "models", id] if !owner.is_empty() && !id.is_empty() => {
            if *owner == tenant {
                Ok(id)
            } else {
                Err(not_found(field, name))
            }
        }
        _ => Err(errors::invalid(field, format!("{} is not tenants/{{tenant}}/models/{{model}}", shown(name)))),
    }
}

fn info(record: &ModelRecord) -> pb::Model {
    let stored = |text: &str| text.parse::<Timestamp>().ok().map(time::timestamp);
    pb::Model {
        name: resource(record),
        display_name: record.name.clone(),
        kind: convert::model_kind(&record.model_kind).into(),
        target: record.target.clone(),
        horizon_steps: i32::try_from(record.horizon).unwrap_or(i32::MAX),
        step: Some(time::duration(SignedDuration::from_secs(record.step_seconds))),
        trained_until: stored(&record.trained_until),
        create_time: stored(&record.created_at),
    }
}

fn not_found(field: &str, name: &str) -> Status {
    errors::error(Reason::ModelNotFound, format!("{field}: no model {} for this tenant", shown(name)))
}

/// A list filter: `field = "value"` conditions joined by AND.
fn filter(text: &str) -> Result<ModelFilter, Status> {
    let mut out = ModelFilter::default();
    if text.trim().is_empty() {
        return Ok(out);
    }
    let bad = |why: String| errors::invalid("filter", why);
    for condition in text.split(" AND ") {
        let (field, value) =
            condition.split_once('=').ok_or_else(|| bad(format!("{} is not field = \"value\"", shown(condition))))?;
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .filter(|v| !v.contains('"'))
            .ok_or_else(|| bad(format!("the value of {} must be in double quotes", shown(field.trim()))))?
            .to_owned();
        let slot = match field.trim() {
            "display_name" => &mut out.name,
            "target" => &mut out.target,
            "kind" => {
                let kind = pb::ModelKind::from_str_name(&value)
                    .filter(|k| *k != pb::ModelKind::Unspecified)
                    .ok_or_else(|| bad(format!("{} is not a model kind (MODEL_KIND_GBDT, ...)", shown(&value))))?;
                out.model_kind = Some(convert::model_name("filter", kind.into())?.replace("elastic_net", "linear"));
                continue;
            }
            other => return Err(bad(format!("{} cannot be filtered on (display_name, target, kind)", shown(other)))),
        };
        *slot = Some(value);
    }
    Ok(out)
}

/// A page token: where the next page starts, opaque to callers (the hex
/// of `created_at/id`).
fn page_token(record: &ModelRecord) -> String {
    format!("{}/{}", record.created_at, record.id).bytes().map(|b| format!("{b:02x}")).collect()
}

fn cursor(token: &str) -> Result<Option<Cursor>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || errors::invalid("page_token", "not a token this server gave".to_owned());
    if !token.len().is_multiple_of(2) || token.len() > 512 {
        return Err(bad());
    }
    let bytes = (0..token.len())
        .step_by(2)
        .map(|i| token.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(bad)?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (created_at, id) = text.split_once('/').ok_or_else(bad)?;
    Ok(Some(Cursor { created_at: created_at.to_owned(), id: id.to_owned() }))
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
        if req.request_id.chars().count() > MAX_REQUEST_ID_CHARS {
            return Err(errors::invalid("request_id", format!("more than {MAX_REQUEST_ID_CHARS} characters")));
        }
        // A retried call returns what the first one stored, without training.
        if !req.request_id.is_empty()
            && let Some(stored) = self
                .shared
                .models
                .model_by_request(&caller.tenant, &req.request_id)
                .await
                .map_err(|e| store::unavailable(&e))?
        {
            return Ok(Response::new(pb::TrainResponse {
                model: Some(info(&stored)),
                fit_time: Some(time::duration(SignedDuration::ZERO)),
                data_quality: None,
            }));
        }
        let limits = self.shared.limits.clone();
        let cancel = Cancel::new();
        let token = cancel.clone();
        let tenant = caller.tenant.clone();
        let trained =
            self.shared.offload("train", &cancel, &budget, move || train(req, tenant, &limits, &token)).await?;
        let stored =
            self.shared.models.put_model(&trained.record, &trained.body).await.map_err(|e| store::unavailable(&e))?;
        let (record, fit, quality) = match stored {
            // A concurrent call with the same request id stored first.
            Some(first) => (first, SignedDuration::ZERO, None),
            None => {
                tracing::info!(model = %resource(&trained.record), "model stored");
                (trained.record, trained.fit, Some(trained.quality))
            }
        };
        Ok(Response::new(pb::TrainResponse {
            model: Some(info(&record)),
            fit_time: Some(time::duration(fit)),
            data_quality: quality,
        }))
    }

    async fn forecast(&self, request: Request<pb::ForecastRequest>) -> Result<Response<pb::ForecastResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Role::Viewer)?;
        let budget = Budget::of(&request);
        let req = request.into_inner();
        let name = req.model.clone();
        let (_, body) = stored(&self.shared, "model", &name, &caller).await?;
        let limits = self.shared.limits.clone();
        let reply = self
            .shared
            .offload("forecast", &Cancel::new(), &budget, move || forecast(name, &body, req, &limits))
            .await?;
        Ok(Response::new(reply))
    }

    async fn get_model(&self, request: Request<pb::GetModelRequest>) -> Result<Response<pb::GetModelResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Role::Viewer)?;
        let pb::GetModelRequest { name } = request.into_inner();
        let (record, _) = stored(&self.shared, "name", &name, &caller).await?;
        Ok(Response::new(pb::GetModelResponse { model: Some(info(&record)) }))
    }

    async fn list_models(
        &self,
        request: Request<pb::ListModelsRequest>,
    ) -> Result<Response<pb::ListModelsResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Role::Viewer)?;
        let pb::ListModelsRequest { page_size, page_token: token, filter: condition } = request.into_inner();
        let size = time::page_size(page_size, DEFAULT_PAGE, store::MAX_PAGE)?;
        let filter = filter(&condition)?;
        let cursor = cursor(&token)?;
        // One more than the page: whether there is a next one.
        let mut models = self
            .shared
            .models
            .models(&caller.tenant, &filter, cursor.as_ref(), size + 1)
            .await
            .map_err(|e| store::unavailable(&e))?;
        let next_page_token = if models.len() > size {
            models.truncate(size);
            models.last().map(page_token).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListModelsResponse { models: models.iter().map(info).collect(), next_page_token }))
    }

    async fn delete_model(
        &self,
        request: Request<pb::DeleteModelRequest>,
    ) -> Result<Response<pb::DeleteModelResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Role::Admin)?;
        let pb::DeleteModelRequest { name } = request.into_inner();
        let id = model_id("name", &name, &caller.tenant)?;
        if self.shared.models.delete_model(&caller.tenant, id).await.map_err(|e| store::unavailable(&e))? {
            // The audit line of every deletion: who deleted what.
            tracing::info!(audit = true, subject = %caller.subject, model = %name, "model deleted");
            Ok(Response::new(pb::DeleteModelResponse {}))
        } else {
            Err(not_found("name", &name))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{cursor, filter, model_id, page_token};
    use crate::store::ModelRecord;

    #[test]
    fn resource_names_resolve_only_in_the_callers_tenant() {
        assert_eq!(model_id("name", "tenants/acme/models/m1", "acme").ok(), Some("m1"));
        let other = model_id("name", "tenants/globex/models/m1", "acme").expect_err("other tenant");
        assert_eq!(other.code(), tonic::Code::NotFound);
        for bad in ["", "m1", "tenants/acme/models/", "tenants/acme/models/m1/x", "models/m1"] {
            let err = model_id("name", bad, "acme").expect_err(bad);
            assert_eq!(err.code(), tonic::Code::InvalidArgument, "{bad:?}");
        }
    }

    #[test]
    fn page_tokens_round_trip_and_forgeries_are_refused() {
        let record = ModelRecord {
            id: "abc".into(),
            tenant: "acme".into(),
            name: String::new(),
            model_kind: "gbdt".into(),
            target: "y".into(),
            horizon: 48,
            step_seconds: 1800,
            trained_until: String::new(),
            created_at: "2026-12-02T17:00:00.000001Z".into(),
            request_id: None,
        };
        let back = cursor(&page_token(&record)).expect("reads").expect("a cursor");
        assert_eq!((back.created_at.as_str(), back.id.as_str()), ("2026-12-02T17:00:00.000001Z", "abc"));
        for forged in ["x", "zz", "0", &"ab".repeat(300)] {
            assert_eq!(cursor(forged).expect_err(forged).code(), tonic::Code::InvalidArgument);
        }
    }

    #[test]
    fn filters_name_their_fields_and_quote_their_values() {
        let f = filter(r#"target = "load_kw" AND kind = "MODEL_KIND_GBDT""#).expect("reads");
        assert_eq!((f.target.as_deref(), f.model_kind.as_deref()), (Some("load_kw"), Some("gbdt")));
        for bad in ["target = load_kw", "owner = \"x\"", "kind = \"GBDT\"", "target"] {
            assert_eq!(filter(bad).expect_err(bad).code(), tonic::Code::InvalidArgument, "{bad}");
        }
    }
}
