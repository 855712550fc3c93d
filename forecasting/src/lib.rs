//! Load and PV forecasting.

pub mod backtest;
pub mod calendar;
pub mod calibration;
pub mod data;
pub mod error;
pub mod features;
pub mod gbdt;
pub mod history;
pub mod metrics;
pub mod models;
pub mod options;
pub mod quality;
pub mod scenarios;
pub mod solar;
pub mod spec;
pub mod trained;

pub use backtest::{Backtest, BacktestSpec, backtest, backtest_many, backtest_with_progress};
pub use calendar::Holidays;
pub use data::ReadOptions;
pub use error::{ForecastError, Result};
pub use features::FeatureSpec;
pub use gbdt::{GbdtParams, Loss};
pub use history::{Exog, History};
pub use metrics::Metrics;
pub use models::ModelSpec;
pub use options::{Files, ModelOptions, cut_time, start_time};
pub use quality::{Cleaning, QualityReport};
pub use scenarios::{ErrorPath, Scenario};
pub use solar::Site;
pub use spec::{ForecastSpec, Regime};
pub use trained::{Forecast, TrainedModel, train, train_cancellable};
