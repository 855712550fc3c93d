//! `volta._native`: the Rust side of the `volta` Python package.
//!
//! This layer only converts: cases in and out (files or JSON text), solver
//! options in, results out as dictionaries whose series are numpy arrays
//! (moved, not copied, from the Rust vectors). Long solves release the GIL.
//! Errors are raised as the exception classes of `volta.errors`, so that
//! Python code catches `volta.CaseError` and friends.

mod forecast;

use numpy::IntoPyArray;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use volta_dispatch::{Detail, Objective, Options, RollingOptions, Schedule, Solution};
use volta_engine::{Case, CaseReader, Error as CaseFileError, Format};

/// Runs `work` on its own thread without the GIL, checking for Ctrl-C every
/// 100 ms: on an interrupt, Python gets its `KeyboardInterrupt` at once and
/// `cancel` is cancelled, so that the work left behind stops at its next
/// check (the next window, Pareto point or lexicographic stage of a solve,
/// HiGHS itself not being stopped mid-solve; the next tree of a fit; the
/// next forecast of a backtest), its result dropped.
pub(crate) fn interruptible<T: Send + 'static>(
    py: Python<'_>,
    cancel: &volta_engine::Cancel,
    work: impl FnOnce() -> T + Send + 'static,
) -> PyResult<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("volta-work".into())
        .spawn(move || {
            // The receiver is gone only after an interrupt: nothing to report.
            let _ = tx.send(work());
        })
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start a worker thread: {e}")))?;
    let mut rx = rx;
    loop {
        // The receiver is Send but not Sync: move it into the GIL-free wait and back.
        let (got, back) = py.detach(move || (rx.recv_timeout(std::time::Duration::from_millis(100)), rx));
        rx = back;
        match got {
            Ok(value) => return Ok(value),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if let Err(interrupt) = py.check_signals() {
                    cancel.cancel();
                    return Err(interrupt);
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err(PyRuntimeError::new_err("the worker thread panicked"));
            }
        }
    }
}

/// Raises the `volta.errors` exception `name` with `args`.
/// The classes of `volta.errors` that Rust raises (`CaseError`, which
/// carries its problems, is made by `case_error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Raise {
    /// `volta.SolverError`: bad solver options, or a solver failure.
    Solver,
    /// `volta.ForecastError`: bad forecasting input or options.
    Forecast,
}

impl Raise {
    /// The class's name in `volta.errors`.
    fn class(self) -> &'static str {
        match self {
            Self::Solver => "SolverError",
            Self::Forecast => "ForecastError",
        }
    }
}

pub(crate) fn raise(py: Python<'_>, kind: Raise, message: impl Into<String>) -> PyErr {
    let message: String = message.into();
    let made = py
        .import("volta.errors")
        .and_then(|m| m.getattr(kind.class()))
        .and_then(|class| class.call1((message,)).map(PyErr::from_value));
    match made {
        Ok(err) | Err(err) => err,
    }
}

fn case_error(py: Python<'_>, err: &CaseFileError) -> PyErr {
    let problems: Vec<(String, String)> = err
        .report()
        .map(|r| r.issues.iter().map(|i| (i.path.clone(), i.message.clone())).collect())
        .unwrap_or_default();
    let made = py
        .import("volta.errors")
        .and_then(|m| m.getattr("CaseError"))
        .and_then(|class| class.call1((err.to_string(), problems)).map(PyErr::from_value));
    match made {
        Ok(e) | Err(e) => e,
    }
}

/// A checked case.
#[pyclass(name = "Case", module = "volta._native", frozen)]
pub(crate) struct PyCase {
    pub(crate) case: Case,
    warnings: Vec<(String, String)>,
}

#[pymethods]
impl PyCase {
    /// Reads and checks a case file (TOML or JSON; referenced CSV/Parquet series too).
    #[staticmethod]
    fn from_file(py: Python<'_>, path: &str) -> PyResult<Self> {
        let checked = py.detach(|| CaseReader::new().read_path(path)).map_err(|e| case_error(py, &e))?;
        Ok(Self::new(checked))
    }

    /// Checks a case given as JSON text (the case-file schema).
    #[staticmethod]
    fn from_json(py: Python<'_>, text: &str) -> PyResult<Self> {
        let checked = CaseReader::new().read_str(text, Format::Json).map_err(|e| case_error(py, &e))?;
        Ok(Self::new(checked))
    }

    /// The case as self-contained JSON text (every series inline).
    fn to_json(&self) -> PyResult<String> {
        self.case.to_json().map_err(|e| PyRuntimeError::new_err(e.to_string()))
    }

    /// The case's name.
    #[getter]
    fn name(&self) -> String {
        self.case.name().to_owned()
    }

    /// A one-line summary.
    #[getter]
    fn summary(&self) -> String {
        self.case.summary()
    }

    /// Warnings found when the case was checked, as (path, message).
    #[getter]
    fn warnings(&self) -> Vec<(String, String)> {
        self.warnings.clone()
    }

    fn __repr__(&self) -> String {
        format!("Case({:?}: {})", self.case.name(), self.case.summary())
    }
}

impl PyCase {
    fn new(checked: volta_engine::Checked) -> Self {
        let warnings = checked.warnings.iter().map(|i| (i.path.clone(), i.message.clone())).collect();
        Self { case: checked.case, warnings }
    }
}

#[allow(clippy::too_many_arguments)]
fn options(
    py: Python<'_>,
    objective: &str,
    co2_price: Option<f64>,
    time_limit: Option<f64>,
    gap: Option<f64>,
    threads: Option<u32>,
) -> PyResult<Options> {
    let objective = Objective::from_request(objective, co2_price)
        .map_err(|e| raise(py, Raise::Solver, format!("{}: {e}", e.field())))?;
    Ok(Options { objective, time_limit_s: time_limit, mip_gap: gap, threads, ..Options::default() })
}

/// Series of a schedule as numpy arrays, keyed by name.
fn schedule_dict<'py>(py: Python<'py>, plan: Schedule) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    let times: Vec<String> = (0..plan.grid.len()).map(|i| plan.grid.stamp(i)).collect();
    out.set_item("times", times)?;
    out.set_item("timezone", plan.grid.time_zone_name())?;
    out.set_item("cost", plan.cost)?;
    out.set_item("co2_kg", plan.co2_kg)?;
    let by_category = PyDict::new(py);
    for (category, amount) in plan.cost_by_category() {
        by_category.set_item(category.name(), amount)?;
    }
    out.set_item("cost_by_category", by_category)?;
    // Per asset and category, as `volta schedule` writes costs.csv; system
    // items (lost load, say) have no asset.
    let costs: Vec<(Option<String>, &str, f64)> =
        plan.costs.iter().map(|c| (c.asset.as_ref().map(ToString::to_string), c.category.name(), c.amount)).collect();
    out.set_item("costs", costs)?;
    let flows = PyDict::new(py);
    let storage = PyDict::new(py);
    let commitment = PyDict::new(py);
    for asset in plan.assets {
        let id = asset.id.to_string();
        for flow in asset.flows {
            flows.set_item(format!("{id}:{}", flow.bus), flow.kw.into_pyarray(py))?;
        }
        match asset.detail {
            Detail::Storage { energy_kwh, .. } => storage.set_item(&id, energy_kwh.into_pyarray(py))?,
            Detail::Unit { on: Some(on), .. } => commitment.set_item(&id, on.into_pyarray(py))?,
            Detail::Unit { on: None, .. } | Detail::Load { .. } | Detail::Renewable { .. } | Detail::Grid { .. } => {}
        }
    }
    out.set_item("flows", flows)?;
    out.set_item("storage_kwh", storage)?;
    out.set_item("commitment", commitment)?;
    let prices = PyDict::new(py);
    let unserved = PyDict::new(py);
    for bus in plan.buses {
        let id = bus.id.to_string();
        if let Some(p) = bus.price {
            prices.set_item(&id, p.into_pyarray(py))?;
        }
        unserved.set_item(&id, bus.unserved_kw.into_pyarray(py))?;
    }
    out.set_item("prices", prices)?;
    out.set_item("unserved_kw", unserved)?;
    Ok(out)
}

fn solution_dict<'py>(py: Python<'py>, solution: Solution) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    out.set_item("status", solution.status.name())?;
    out.set_item("objective", solution.objective)?;
    out.set_item("best_bound", solution.best_bound)?;
    out.set_item("gap", solution.gap)?;
    out.set_item("solve_seconds", solution.stats.solve_seconds)?;
    out.set_item("build_seconds", solution.stats.build_seconds)?;
    if let Some(strategy) = solution.stats.strategy {
        let used = PyDict::new(py);
        used.set_item("lp_method", strategy.lp_method.name())?;
        used.set_item("presolve", strategy.presolve)?;
        used.set_item("heuristic_effort", strategy.heuristic_effort)?;
        used.set_item("mip_start", strategy.mip_start.map(volta_dispatch::MipStart::name))?;
        out.set_item("strategy", used)?;
    }
    out.set_item("proven_by_relaxation", solution.stats.proven_by_relaxation)?;
    out.set_item("infeasibility", solution.infeasibility.as_ref().map(volta_dispatch::Infeasibility::report))?;
    out.set_item("exact_cost", solution.exact.map(|e| e.cost))?;
    out.set_item("exact_lower_bound", solution.exact.and_then(|e| e.lower_bound))?;
    let plan = match solution.schedule {
        Some(plan) => Some(schedule_dict(py, plan)?),
        None => None,
    };
    out.set_item("schedule", plan)?;
    Ok(out)
}

/// Writes the model `schedule` solves, in the LP or MPS format; see `volta.write_model`.
#[pyfunction]
#[pyo3(signature = (case, path, objective = "cost", co2_price = None, separate_units = false))]
fn write_model(
    py: Python<'_>,
    case: &PyCase,
    path: &str,
    objective: &str,
    co2_price: Option<f64>,
    separate_units: bool,
) -> PyResult<()> {
    let options = Options { fleets: !separate_units, ..options(py, objective, co2_price, None, None, None)? };
    let Some(format) = volta_dispatch::ModelFormat::of_path(std::path::Path::new(path)) else {
        return Err(pyo3::exceptions::PyValueError::new_err(format!("{path}: name the file *.lp or *.mps")));
    };
    let file = std::fs::File::create(path).map_err(|e| pyo3::exceptions::PyOSError::new_err(format!("{path}: {e}")))?;
    let mut out = std::io::BufWriter::new(file);
    volta_dispatch::write_model(&case.case, &options, format, &mut out)
        .and_then(|()| std::io::Write::flush(&mut out))
        .map_err(|e| pyo3::exceptions::PyOSError::new_err(format!("{path}: {e}")))
}

/// Optimises a case; see `volta.schedule`.
#[pyfunction]
#[pyo3(signature = (
    case, objective = "cost", co2_price = None, time_limit = None, gap = None, threads = None, separate_units = false,
    lp_method = None, presolve = None, heuristic_effort = None, mip_start = None,
))]
#[expect(clippy::too_many_arguments, reason = "one argument per keyword of volta.schedule")]
fn schedule<'py>(
    py: Python<'py>,
    case: &PyCase,
    objective: &str,
    co2_price: Option<f64>,
    time_limit: Option<f64>,
    gap: Option<f64>,
    threads: Option<u32>,
    separate_units: bool,
    lp_method: Option<&str>,
    presolve: Option<bool>,
    heuristic_effort: Option<f64>,
    mip_start: Option<&str>,
) -> PyResult<Bound<'py, PyDict>> {
    let lp_method = lp_method
        .map(|name| {
            volta_dispatch::LpMethod::from_name(name).ok_or_else(|| {
                raise(py, Raise::Solver, format!("lp_method: {name:?} is neither \"simplex\" nor \"ipm\""))
            })
        })
        .transpose()?;
    let mip_start = mip_start
        .map(|name| {
            volta_dispatch::MipStart::from_name(name).ok_or_else(|| {
                raise(py, Raise::Solver, format!("mip_start: {name:?} is neither \"none\" nor \"rounding\""))
            })
        })
        .transpose()?;
    let strategy = volta_dispatch::Strategy { lp_method, presolve, heuristic_effort, mip_start };
    strategy.check().map_err(|e| raise(py, Raise::Solver, e.to_string()))?;
    let options =
        Options { fleets: !separate_units, strategy, ..options(py, objective, co2_price, time_limit, gap, threads)? };
    let owned = case.case.clone();
    let cancel = options.cancel.clone();
    let solved = interruptible(py, &cancel, move || volta_dispatch::schedule(&owned, &options))?;
    let solution = solved.map_err(|e| raise(py, Raise::Solver, e.to_string()))?;
    solution_dict(py, solution)
}

/// Traces the cost–CO2 front; see `volta.pareto`.
#[pyfunction]
#[pyo3(signature = (case, n = 10, time_limit = None, gap = None))]
fn pareto<'py>(
    py: Python<'py>,
    case: &PyCase,
    n: usize,
    time_limit: Option<f64>,
    gap: Option<f64>,
) -> PyResult<Bound<'py, PyList>> {
    let options = Options { time_limit_s: time_limit, mip_gap: gap, ..Options::default() };
    let owned = case.case.clone();
    let cancel = options.cancel.clone();
    let front = interruptible(py, &cancel, move || volta_dispatch::pareto(&owned, n, &options))?
        .map_err(|e| raise(py, Raise::Solver, e.to_string()))?;
    let points = PyList::empty(py);
    for p in front.points {
        let d = PyDict::new(py);
        d.set_item("co2_cap_kg", p.co2_cap_kg)?;
        d.set_item("cost", p.cost)?;
        d.set_item("co2_kg", p.co2_kg)?;
        d.set_item("status", p.status.name())?;
        points.append(d)?;
    }
    Ok(points)
}

/// Simulates a rolling horizon; see `volta.rolling_horizon`.
#[pyfunction]
#[pyo3(signature = (case, horizon_steps, commit_steps = None, objective = "cost", time_limit = None, gap = None, warm_start = true, lower_bound = false))]
#[expect(clippy::too_many_arguments, reason = "one argument per keyword of the Python function")]
fn rolling_horizon<'py>(
    py: Python<'py>,
    case: &PyCase,
    horizon_steps: usize,
    commit_steps: Option<usize>,
    objective: &str,
    time_limit: Option<f64>,
    gap: Option<f64>,
    warm_start: bool,
    lower_bound: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let options = options(py, objective, None, time_limit, gap, None)?;
    let cancel = options.cancel.clone();
    let rolling =
        RollingOptions { warm_start, lower_bound, ..RollingOptions::new(horizon_steps, commit_steps, options) };
    let owned = case.case.clone();
    let result =
        interruptible(py, &cancel, move || volta_dispatch::rolling_horizon(&owned, &rolling, &mut |_, _, _| {}))?
            .map_err(|e| raise(py, Raise::Solver, e.to_string()))?;
    let out = PyDict::new(py);
    out.set_item("status", result.status.name())?;
    let rolling = PyDict::new(py);
    rolling.set_item("windows", result.windows.len())?;
    rolling.set_item("warm_started_windows", result.windows.iter().filter(|w| w.warm_start > 0).count())?;
    let proven = result.windows.iter().filter(|w| w.proven_by_relaxation).count();
    rolling.set_item("proven_by_relaxation_windows", proven)?;
    out.set_item("rolling", rolling)?;
    out.set_item("infeasibility", result.infeasibility.as_ref().map(volta_dispatch::Infeasibility::report))?;
    // The relaxation's bound is the rolling run's best bound.
    out.set_item("best_bound", result.lower_bound)?;
    out.set_item("gap", result.gap_to_lower_bound())?;
    let plan = match result.schedule {
        Some(plan) => Some(schedule_dict(py, plan)?),
        None => None,
    };
    out.set_item("schedule", plan)?;
    Ok(out)
}

/// Schedules a case as blocks solved in parallel; see `volta.decompose`.
#[pyfunction]
#[pyo3(signature = (case, blocks, seam_steps = None, objective = "cost", co2_price = None, time_limit = None, gap = None))]
#[expect(clippy::too_many_arguments, reason = "one argument per keyword of the Python function")]
fn decompose<'py>(
    py: Python<'py>,
    case: &PyCase,
    blocks: usize,
    seam_steps: Option<usize>,
    objective: &str,
    co2_price: Option<f64>,
    time_limit: Option<f64>,
    gap: Option<f64>,
) -> PyResult<Bound<'py, PyDict>> {
    let options = options(py, objective, co2_price, time_limit, gap, None)?;
    let cancel = options.cancel.clone();
    let d = volta_dispatch::Decomposition { seam_steps, ..volta_dispatch::Decomposition::new(blocks, options) };
    let owned = case.case.clone();
    let result = interruptible(py, &cancel, move || volta_dispatch::decompose(&owned, &d, &|_| {}))?
        .map_err(|e| raise(py, Raise::Solver, e.to_string()))?;
    // The relaxation's bound is the decomposition's best bound.
    solution_dict(py, result.into_solution())
}

/// The grid of a case's `[time]` table (JSON text): the start of every
/// step in seconds since the epoch, and the time zone. A bad table raises
/// `CaseError` with the field at fault.
#[pyfunction]
fn time_grid(py: Python<'_>, text: &str) -> PyResult<(Vec<i64>, String)> {
    let fail = |path: &str, code: volta_engine::IssueCode, message: String| {
        let mut report = volta_engine::ValidationReport::default();
        report.error(path, code, message);
        case_error(py, &CaseFileError::Invalid(report))
    };
    let spec: volta_engine::TimeSpec =
        serde_json::from_str(text).map_err(|e| fail("time", volta_engine::IssueCode::WrongType, e.to_string()))?;
    let grid = spec.grid().map_err(|(field, code, message)| fail(field, code, message))?;
    Ok((grid.instants().map(jiff::Timestamp::as_second).collect(), grid.time_zone_name().to_owned()))
}

/// The case format's JSON Schema (draft 2020-12), as JSON text.
#[pyfunction]
fn case_schema() -> PyResult<String> {
    serde_json::to_string(&volta_engine::case::schema::json_schema())
        .map_err(|e| PyRuntimeError::new_err(e.to_string()))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyCase>()?;
    m.add_function(wrap_pyfunction!(schedule, m)?)?;
    m.add_function(wrap_pyfunction!(forecast::plan, m)?)?;
    m.add_function(wrap_pyfunction!(forecast::cost_quantile, m)?)?;
    m.add_function(wrap_pyfunction!(forecast::cvar, m)?)?;
    m.add_function(wrap_pyfunction!(case_schema, m)?)?;
    m.add_function(wrap_pyfunction!(time_grid, m)?)?;
    m.add_function(wrap_pyfunction!(pareto, m)?)?;
    m.add_function(wrap_pyfunction!(rolling_horizon, m)?)?;
    m.add_function(wrap_pyfunction!(decompose, m)?)?;
    m.add_class::<forecast::PyModel>()?;
    m.add_function(wrap_pyfunction!(write_model, m)?)?;
    m.add_function(wrap_pyfunction!(forecast::backtest, m)?)?;
    m.add_function(wrap_pyfunction!(forecast::inspect, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
