//! Errors of the forecasting engine. Each names the column, option or file
//! at fault, so that a CLI or service can pass the message on unchanged.

use std::path::PathBuf;

/// Why a forecasting call failed.
#[derive(Debug, thiserror::Error)]
pub enum ForecastError {
    /// A file could not be read.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A column the call needs is not in the data.
    #[error("column {column:?} not found; the data has: {available}")]
    MissingColumn {
        /// The missing column.
        column: String,
        /// The columns that are there, comma-separated.
        available: String,
    },
    /// A column is there but cannot be used.
    #[error("column {column:?}: {reason}")]
    Column {
        /// The column.
        column: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A timestamp cannot be read or placed on the time grid.
    #[error("column {column:?}, row {row} (line {line} of a file with a header): {reason}", line = row + 1)]
    Timestamp {
        /// The time column.
        column: String,
        /// 1-based data row.
        row: usize,
        /// What is wrong.
        reason: String,
    },
    /// A value cannot be read as a number.
    #[error("column {column:?}, row {row} (line {line} of a file with a header): {reason}", line = row + 1)]
    Value {
        /// The column.
        column: String,
        /// 1-based data row.
        row: usize,
        /// What is wrong.
        reason: String,
    },
    /// An option (horizon, quantiles, issue time, ...) is invalid for this data.
    #[error("{option}: {reason}")]
    Option {
        /// The option's name as the user wrote it (`horizon`, `quantiles`).
        option: String,
        /// What is wrong.
        reason: String,
    },
    /// A model file cannot be used.
    #[error("model file: {0}")]
    ModelFile(String),
    /// Fitting a model failed.
    #[error("fitting {model}: {reason}")]
    Fit {
        /// The model.
        model: String,
        /// What went wrong.
        reason: String,
    },
    /// The caller asked the work to stop (its [`Cancel`](volta_engine::Cancel)
    /// was cancelled, or a progress callback broke off).
    #[error("cancelled {progress}")]
    Cancelled {
        /// How far the work got: `after 12 of 61 forecasts`, `while training`.
        progress: String,
    },
}

impl ForecastError {
    pub(crate) fn option(option: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Option { option: option.into(), reason: reason.into() }
    }

    pub(crate) fn column(column: &str, reason: impl Into<String>) -> Self {
        Self::Column { column: column.to_owned(), reason: reason.into() }
    }
}

/// Result alias of the crate.
pub type Result<T, E = ForecastError> = std::result::Result<T, E>;

impl From<volta_engine::Cancelled> for ForecastError {
    fn from(_: volta_engine::Cancelled) -> Self {
        Self::Cancelled { progress: "while training".to_owned() }
    }
}
