//! The engine's error type.

use std::path::PathBuf;

use crate::report::ValidationReport;

/// Result alias used throughout the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while reading or checking a case.
///
/// A case that parses but breaks rules is [`Error::Invalid`], carrying every
/// problem at once; the other variants stop before validation could start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The case file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file that was being read.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The file is not valid TOML or JSON (or not text at all).
    #[error("{path}: {message}")]
    Syntax {
        /// The file, or `<input>` for in-memory text.
        path: PathBuf,
        /// What the parser said, with line and column where known.
        message: String,
    },
    /// The case was read but breaks one or more rules.
    #[error("{0}")]
    Invalid(ValidationReport),
}

impl Error {
    /// The validation report, when the error is [`Error::Invalid`].
    #[must_use]
    pub fn report(&self) -> Option<&ValidationReport> {
        match self {
            Self::Invalid(report) => Some(report),
            Self::Io { .. } | Self::Syntax { .. } => None,
        }
    }
}
