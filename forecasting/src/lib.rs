//! Load and PV forecasting.

pub mod calendar;
pub mod data;
pub mod error;
pub mod features;
pub mod quality;
pub mod solar;

pub use data::{Exog, ReadOptions, TimeSeries};
pub use error::{ForecastError, Result};
pub use quality::QualityReport;
