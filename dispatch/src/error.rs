//! Errors of the dispatch layer.
//!
//! Infeasible and unbounded cases are *not* errors: they are a
//! [`Status`](crate::Status) of the solution, with an explanation. An error
//! means the request itself could not be carried out.

/// Why a solve could not be carried out.
///
/// Not `#[non_exhaustive]`: every front door maps each variant on purpose,
/// and a new one must fail their builds until it is mapped.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// HiGHS reported an internal error or refused the model or an option.
    #[error("solver error: {0}")]
    Solver(String),
    /// An option is out of range (the message names it).
    #[error("invalid option: {0}")]
    Option(String),
    /// The caller cancelled the work (see [`Cancel`](volta_engine::Cancel)).
    #[error("cancelled")]
    Cancelled,
}

impl From<volta_engine::Cancelled> for DispatchError {
    fn from(_: volta_engine::Cancelled) -> Self {
        Self::Cancelled
    }
}
