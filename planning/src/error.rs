//! Errors of planning.

use volta_dispatch::DispatchError;
use volta_engine::{ReplaceError, SeriesRef};
use volta_forecasting::ForecastError;

/// Why a plan could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A series' model could not forecast from its data.
    #[error("{series}: {error}")]
    Forecast {
        /// The series being forecast.
        series: SeriesRef,
        /// The forecaster's reason.
        error: ForecastError,
    },
    /// A forecast does not fit the case's grid (the message says how).
    #[error("{series}: {message}")]
    Align {
        /// The series being forecast.
        series: SeriesRef,
        /// What does not fit.
        message: String,
    },
    /// A series of the case cannot be read or replaced.
    #[error(transparent)]
    Case(#[from] ReplaceError),
    /// No scenarios can be built from the forecasts (the message says why).
    #[error("no scenarios: {0}")]
    NoScenarios(String),
    /// An option is out of range (the message names it).
    #[error("invalid option: {0}")]
    Option(String),
    /// The schedule could not be solved.
    #[error(transparent)]
    Dispatch(#[from] DispatchError),
}

impl PlanError {
    pub(crate) fn align(series: &SeriesRef, message: impl Into<String>) -> Self {
        Self::Align { series: series.clone(), message: message.into() }
    }
}
