//! Load and PV forecasting.

pub mod calendar;
pub mod data;
pub mod error;
pub mod features;
pub mod gbdt;
pub mod metrics;
pub mod models;
pub mod options;
pub mod pipeline;
pub mod quality;
pub mod solar;

pub use calendar::Holidays;
pub use data::{Exog, History, ReadOptions};
pub use error::{ForecastError, Result};
pub use features::FeatureSpec;
pub use gbdt::{GbdtParams, Loss};
pub use metrics::Metrics;
pub use models::ModelSpec;
pub use options::{Files, ModelOptions, cut_time};
pub use pipeline::{
    Backtest, BacktestSpec, Forecast, ForecastSpec, Regime, TrainedModel, backtest, backtest_many,
    backtest_with_progress, train, train_cancellable,
};
pub use quality::QualityReport;
pub use solar::Site;
