//! # volta-planning: day-ahead plans from forecasts, under uncertainty
//!
//! Where Volta's forecaster and its scheduler meet. An operator does not
//! know tomorrow's load, PV or prices; Volta forecasts them and plans:
//!
//! 1. [`forecast`] turns a trained model, its data and an issue time into
//!    a case series on the case's grid: the point forecast, calibrated
//!    quantiles, and one path per past day of the model's own
//!    out-of-sample errors.
//! 2. [`joint`] pairs the paths of several series by their issue day into
//!    joint scenarios (an empirical copula: a cloudy, cool day is both);
//!    [`reduce`] keeps a requested number by fast forward selection.
//! 3. [`plan`] makes the plan: deterministic on the point forecast, or
//!    two-stage stochastic over the scenarios
//!    ([`volta_dispatch::two_stage`]: unit commitment and grid nominations
//!    first, everything else per scenario, optionally risk-averse).
//! 4. [`DayAheadPlan::summary`] is what every front door reports of it:
//!    the cost distribution, the plan and each scenario's outcome.
//! 5. [`volta_dispatch::redispatch`] settles a plan against the day as it
//!    turned out: its realised cost.
//!
//! Dispatch and forecasting never see each other; this crate sees both.

mod error;
pub mod forecast;
mod plan;
pub mod scenarios;
mod summary;

pub use error::PlanError;
pub use forecast::{ForecastSource, SeriesForecast, forecast};
pub use plan::{DayAheadPlan, PlanOptions, plan};
pub use scenarios::{joint, reduce};
pub use summary::{DEFAULT_CVAR_ALPHA, HedgingSummary, OutcomeSummary, PlanSummary};
