//! Forecasting from Python: series arrive as columns (instants in seconds,
//! the target, exogenous columns), options as a JSON object in the schema of
//! `volta_forecasting::ModelOptions`; results leave as numpy arrays and JSON.

use numpy::{IntoPyArray, PyArray2, PyArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use volta_forecasting::{
    BacktestSpec, Cleaning, History, ModelOptions, QualityReport, ReadOptions, TrainedModel, cut_time, data, start_time,
};

use crate::{Raise, raise};

/// The columns of a series, as the Python layer sends them.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub(crate) struct Columns {
    time_name: String,
    times_s: Vec<i64>,
    target_name: String,
    target: Vec<f64>,
    exog: Vec<(String, Vec<f64>)>,
    known_ahead: Vec<String>,
    timezone: Option<String>,
    /// Naive times as local wall-clock text (then `times_s` is empty), to
    /// be placed by the DST policy.
    local_times: Option<Vec<String>>,
    /// The cleaning policies by name: outliers, duplicates,
    /// nonexistent_times, ambiguous_times (absent: the defaults).
    cleaning: Option<Vec<Option<String>>>,
}

impl Columns {
    fn cleaning(&self) -> volta_forecasting::Result<Cleaning> {
        let names = self.cleaning.clone().unwrap_or_default();
        let name = |i: usize| names.get(i).cloned().flatten();
        Cleaning::from_names(name(0).as_deref(), name(1).as_deref(), name(2).as_deref(), name(3).as_deref())
    }
}

/// The columns read and cleaned, with the quality report; `cleaning`
/// overrides the columns' own (a model's, when forecasting).
fn read(py: Python<'_>, c: Columns, cleaning: Option<Cleaning>) -> PyResult<(History, QualityReport)> {
    let fail = |e: volta_forecasting::ForecastError| raise(py, Raise::Forecast, e.to_string());
    let mut options = ReadOptions::new(c.target_name.clone());
    options.known_ahead.clone_from(&c.known_ahead);
    options.timezone.clone_from(&c.timezone);
    options.time_column = Some(c.time_name.clone());
    options.cleaning = match cleaning {
        Some(given) => given,
        None => c.cleaning().map_err(fail)?,
    };
    if let Some(local) = &c.local_times {
        return data::from_text_times(local, &c.target, c.exog, &options).map_err(fail);
    }
    let times = c
        .times_s
        .iter()
        .map(|&s| jiff::Timestamp::from_second(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| raise(py, Raise::Forecast, format!("time: {e}")))?;
    data::from_columns(&times, &c.target, c.exog, &options).map_err(fail)
}

fn series(py: Python<'_>, c: Columns) -> PyResult<History> {
    read(py, c, None).map(|(s, _)| s)
}

fn model_options(py: Python<'_>, json: &str) -> PyResult<ModelOptions> {
    serde_json::from_str(json).map_err(|e| raise(py, Raise::Forecast, format!("options: {e}")))
}

fn matrix<'py>(py: Python<'py>, rows: Vec<Vec<f64>>, width: usize) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let n = rows.len();
    let flat: Vec<f64> = rows.into_iter().flatten().collect();
    flat.into_pyarray(py).reshape([n, width])
}

/// Rolling-origin backtest; see `volta.backtest`.
#[pyfunction]
#[pyo3(signature = (columns, options, train_until, refit_every = 0, test_until = None))]
pub(crate) fn backtest<'py>(
    py: Python<'py>,
    columns: Columns,
    options: &str,
    train_until: &str,
    refit_every: usize,
    test_until: Option<&str>,
) -> PyResult<Bound<'py, PyDict>> {
    let (series, quality) = read(py, columns, None)?;
    let (step_s, timezone) = (series.step_s(), series.tz().iana_name().unwrap_or("UTC").to_owned());
    let err = |e: volta_forecasting::ForecastError| raise(py, Raise::Forecast, e.to_string());
    let spec = model_options(py, options)?.to_spec(&series).map_err(err)?;
    let train_until = cut_time(train_until, series.tz(), "train_until").map_err(err)?;
    let test_until = test_until.map(|t| start_time(t, series.tz(), "test_until")).transpose().map_err(err)?;
    let spec = BacktestSpec { forecast: spec, train_until, refit_every, test_until, recalibrate: true };
    let run = spec.clone();
    // Ctrl-C stops the abandoned backtest at its next forecast.
    let cancel = volta_engine::Cancel::new();
    let stop = cancel.clone();
    let bt = crate::interruptible(py, &cancel, move || {
        volta_forecasting::backtest_with_progress(&series, &run, &mut |_, _| stop.flow())
    })?
    .map_err(err)?;
    let h = spec.forecast.features.horizon;
    let q = spec.forecast.quantiles.len();
    let out = PyDict::new(py);
    out.set_item("step_seconds", step_s)?;
    out.set_item("timezone", timezone)?;
    out.set_item("model", &bt.model)?;
    out.set_item(
        "metrics",
        serde_json::to_string(&bt.metrics).map_err(|e| raise(py, Raise::Forecast, e.to_string()))?,
    )?;
    out.set_item("issues_s", bt.forecasts.iter().map(|f| f.forecast.issue.as_second()).collect::<Vec<_>>())?;
    out.set_item("point", matrix(py, bt.forecasts.iter().map(|f| f.forecast.point.clone()).collect(), h)?)?;
    out.set_item("actual", matrix(py, bt.forecasts.iter().map(|f| f.actual.clone()).collect(), h)?)?;
    let flagged: Vec<Vec<f64>> =
        bt.forecasts.iter().map(|f| f.flagged.iter().map(|&b| f64::from(u8::from(b))).collect()).collect();
    out.set_item("flagged", matrix(py, flagged, h)?)?;
    out.set_item("quality", serde_json::to_string(&quality).map_err(|e| raise(py, Raise::Forecast, e.to_string()))?)?;
    let quantiles: Vec<Vec<f64>> =
        bt.forecasts.iter().map(|f| f.forecast.quantiles.iter().flatten().copied().collect()).collect();
    out.set_item("quantiles", matrix(py, quantiles, h * q)?)?;
    out.set_item("fit_seconds", bt.fit_seconds)?;
    Ok(out)
}

/// What reading and cleaning the columns did and found, as JSON, with its
/// one-line summary; see `volta.inspect`.
#[pyfunction]
pub(crate) fn inspect(py: Python<'_>, columns: Columns) -> PyResult<(String, String)> {
    let (_, quality) = read(py, columns, None)?;
    let json = serde_json::to_string(&quality).map_err(|e| raise(py, Raise::Forecast, e.to_string()))?;
    Ok((json, quality.summary()))
}

/// A forecast as numpy arrays: the point per lead, the quantiles per (lead, level).
type PointAndQuantiles<'py> = (Bound<'py, numpy::PyArray1<f64>>, Bound<'py, PyArray2<f64>>);

/// A trained forecasting model; see `volta.ForecastModel`.
#[pyclass(name = "ForecastModel", module = "volta._native", frozen)]
pub(crate) struct PyModel {
    model: TrainedModel,
}

#[pymethods]
impl PyModel {
    /// Trains on the data before `train_until` (all of it when `None`).
    #[staticmethod]
    #[pyo3(signature = (columns, options, train_until = None))]
    fn train(py: Python<'_>, columns: Columns, options: &str, train_until: Option<&str>) -> PyResult<Self> {
        let time_name = columns.time_name.clone();
        let cleaning = columns.cleaning().map_err(|e| raise(py, Raise::Forecast, e.to_string()))?;
        let series = series(py, columns)?;
        let err = |e: volta_forecasting::ForecastError| raise(py, Raise::Forecast, e.to_string());
        let spec = model_options(py, options)?.to_spec(&series).map_err(err)?;
        let end = match train_until {
            Some(t) => series.index_at_or_after(cut_time(t, series.tz(), "train_until").map_err(err)?),
            None => series.len(),
        };
        // Ctrl-C stops the abandoned fit at its next tree.
        let cancel = volta_engine::Cancel::new();
        let stop = cancel.clone();
        let mut model = crate::interruptible(py, &cancel, move || {
            volta_forecasting::train_cancellable(&series, &spec, end, &stop)
        })?
        .map_err(err)?;
        model.time_column = Some(time_name);
        model.cleaning = cleaning;
        Ok(Self { model })
    }

    /// Reads a model file.
    #[staticmethod]
    fn load(py: Python<'_>, path: &str) -> PyResult<Self> {
        TrainedModel::load(std::path::Path::new(path))
            .map(|model| Self { model })
            .map_err(|e| raise(py, Raise::Forecast, e.to_string()))
    }

    /// Writes the model file (versioned JSON).
    fn save(&self, py: Python<'_>, path: &str) -> PyResult<()> {
        self.model.save(std::path::Path::new(path)).map_err(|e| raise(py, Raise::Forecast, e.to_string()))
    }

    /// Forecast issued at `issue` (seconds since the epoch): the point
    /// forecast per lead and the quantiles as a (horizon, levels) array.
    fn forecast<'py>(&self, py: Python<'py>, columns: Columns, issue_s: i64) -> PyResult<PointAndQuantiles<'py>> {
        // The data is read as the training data was.
        let (series, _) = read(py, columns, Some(self.model.cleaning))?;
        let issue = jiff::Timestamp::from_second(issue_s).map_err(|e| raise(py, Raise::Forecast, e.to_string()))?;
        let f = self.model.forecast(&series, issue).map_err(|e| raise(py, Raise::Forecast, e.to_string()))?;
        let q = self.model.spec.quantiles.len();
        Ok((f.point.into_pyarray(py), matrix(py, f.quantiles, q)?))
    }

    /// The target column and the exogenous columns with their known-ahead flags.
    #[getter]
    fn columns(&self) -> (String, Vec<(String, bool)>) {
        (self.model.target.clone(), self.model.exog.clone())
    }

    /// Quantile levels.
    #[getter]
    fn quantiles(&self) -> Vec<f64> {
        self.model.spec.quantiles.clone()
    }

    /// The time zone of the model's calendar.
    #[getter]
    fn timezone(&self) -> String {
        self.model.timezone.clone()
    }

    /// The time column of the training data, when known.
    #[getter]
    fn time_column(&self) -> Option<String> {
        self.model.time_column.clone()
    }

    /// Steps forecast from each issue time.
    #[getter]
    fn horizon(&self) -> usize {
        self.model.spec.features.horizon
    }

    /// Length of a step, seconds.
    #[getter]
    fn step_seconds(&self) -> i64 {
        self.model.step_seconds
    }

    /// The model's name (`gbdt`, `linear`, ...).
    #[getter]
    fn model(&self) -> String {
        self.model.spec.model.name().to_owned()
    }

    /// End of the training data (exclusive), seconds since the epoch.
    #[getter]
    fn trained_until_s(&self) -> i64 {
        self.model.trained_until.as_second()
    }
}

/// One forecast series of `volta.plan`: the series (`asset.field`), its
/// model, its data and its scale.
type PlanSource<'a> = (String, PyRef<'a, PyModel>, Columns, f64);

/// A day-ahead plan from forecasts, as JSON; see `volta.plan`.
#[pyfunction]
#[pyo3(signature = (case, sources, issue_s, scenarios = 0, imbalance_penalty = None, cvar = None, time_limit = None, gap = None, hedging = None))]
#[expect(clippy::too_many_arguments, reason = "the keyword arguments of volta.plan, one each")]
pub(crate) fn plan(
    py: Python<'_>,
    case: &crate::PyCase,
    sources: Vec<PlanSource<'_>>,
    issue_s: i64,
    scenarios: usize,
    imbalance_penalty: Option<f64>,
    cvar: Option<(f64, f64)>,
    time_limit: Option<f64>,
    gap: Option<f64>,
    hedging: Option<usize>,
) -> PyResult<String> {
    let fail = |e: String| raise(py, Raise::Forecast, e);
    let mut read_sources = Vec::with_capacity(sources.len());
    for (series, model, columns, scale) in sources {
        let series = volta_engine::SeriesRef::parse(&series).map_err(fail)?;
        // The data is read as the model's training data was.
        let (history, _) = read(py, columns, Some(model.model.cleaning))?;
        read_sources.push(volta_planning::ForecastSource { series, model: model.model.clone(), history, scale });
    }
    let issue = jiff::Timestamp::from_second(issue_s).map_err(|e| fail(e.to_string()))?;
    let options = volta_planning::PlanOptions {
        hedging: hedging.map(|max_iterations| volta_dispatch::Hedging { max_iterations, ..Default::default() }),
        scenarios,
        stochastic: volta_dispatch::StochasticOptions {
            options: volta_dispatch::Options {
                time_limit_s: time_limit,
                mip_gap: gap,
                prices: false,
                ..Default::default()
            },
            imbalance_penalty,
            risk: cvar.map(|(alpha, weight)| volta_dispatch::Cvar { alpha, weight }),
        },
    };
    let owned = case.case.clone();
    let cancel = options.stochastic.options.cancel.clone();
    let made = crate::interruptible(py, &cancel, move || {
        volta_planning::plan(&owned, &read_sources, issue, &options).map(|made| {
            let mut json = serde_json::json!({
                "forecasts": made.forecasts.iter().map(|f| serde_json::json!({
                    "series": f.series.to_string(), "point": f.point, "levels": f.levels,
                    "quantiles": f.quantiles, "paths": f.paths.len(),
                })).collect::<Vec<_>>(),
            });
            if let (Some(head), Ok(serde_json::Value::Object(rest))) =
                (json.as_object_mut(), serde_json::to_value(made.summary(&options)))
            {
                head.extend(rest);
            }
            json.to_string()
        })
    })?;
    made.map_err(|e| {
        if let volta_planning::PlanError::Dispatch(e) = e {
            raise(py, Raise::Solver, e.to_string())
        } else {
            fail(e.to_string())
        }
    })
}

/// The `q`-quantile of `(cost, probability)` outcomes; see `DayAheadPlan.cost_quantile`.
#[pyfunction]
#[expect(clippy::needless_pass_by_value, reason = "pyo3 extracts a Python list into an owned Vec")]
pub(crate) fn cost_quantile(py: Python<'_>, outcomes: Vec<(f64, f64)>, q: f64) -> PyResult<f64> {
    volta_dispatch::stochastic::cost_quantile(&outcomes, q)
        .ok_or_else(|| raise(py, Raise::Solver, "cost_quantile: no scenarios"))
}

/// CVaR at `alpha` of `(cost, probability)` outcomes; see `DayAheadPlan.cvar`.
#[pyfunction]
#[expect(clippy::needless_pass_by_value, reason = "pyo3 extracts a Python list into an owned Vec")]
pub(crate) fn cvar(py: Python<'_>, outcomes: Vec<(f64, f64)>, alpha: f64) -> PyResult<f64> {
    volta_dispatch::stochastic::cvar(&outcomes, alpha)
        .ok_or_else(|| raise(py, Raise::Solver, format!("cvar: no scenarios, or alpha {alpha} outside [0, 1)")))
}
