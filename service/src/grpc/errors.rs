//! Every library error mapped to a gRPC status, in one place.
//!
//! | error | code |
//! |---|---|
//! | invalid case file | INVALID_ARGUMENT + BadRequest field violations (`case.assets.x.y`) |
//! | dispatch option out of range | INVALID_ARGUMENT + a violation on the option |
//! | solver failure | INTERNAL |
//! | work cancelled by the client | CANCELLED |
//! | forecasting input (column, timestamp, option) | INVALID_ARGUMENT + a violation on the column or option |
//! | the data cannot support the model (fit) | FAILED_PRECONDITION |
//! | a stored model that no longer reads | DATA_LOSS |
//! | database unreachable or failing | UNAVAILABLE |
//!
//! Infeasible and unbounded cases are not errors: they are an OK response
//! whose status says so, with an explanation.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};
use volta_dispatch::DispatchError;
use volta_engine::Error as CaseFileError;
use volta_forecasting::ForecastError;

use super::pb::dispatch as pb;

/// An issue with its path from the request's root (`case.assets.chp...`).
pub(crate) fn problem(issue: &volta_engine::Issue) -> pb::Problem {
    pb::Problem { path: format!("case.{}", issue.path), message: issue.message.clone() }
}

/// Every problem of a case that did not read or validate.
pub(crate) fn problems(err: &CaseFileError) -> Vec<pb::Problem> {
    match err.report() {
        Some(report) => report.issues.iter().map(problem).collect(),
        None => vec![pb::Problem { path: "case".into(), message: err.to_string() }],
    }
}

/// INVALID_ARGUMENT with a google.rpc.BadRequest naming `(field, message)`s.
pub(crate) fn bad_request(message: String, violations: impl IntoIterator<Item = (String, String)>) -> Status {
    let mut details = ErrorDetails::new();
    for (field, description) in violations {
        details.add_bad_request_violation(field, description);
    }
    Status::with_error_details(Code::InvalidArgument, message, details)
}

/// An invalid case: INVALID_ARGUMENT naming every field.
pub(crate) fn case(err: &CaseFileError) -> Status {
    bad_request(format!("invalid case: {err}"), problems(err).into_iter().map(|p| (p.path, p.message)))
}

/// A dispatch error.
pub(crate) fn dispatch(err: &DispatchError) -> Status {
    match err {
        DispatchError::Option(message) => {
            bad_request(format!("invalid option: {message}"), [("options".to_owned(), message.clone())])
        }
        DispatchError::Cancelled => Status::cancelled("cancelled by the client"),
        DispatchError::Solver(message) => Status::internal(format!("solver error: {message}")),
        other => Status::internal(other.to_string()),
    }
}

/// A forecasting error; `options` is the request field that held the options.
pub(crate) fn forecast(err: &ForecastError, options: &str) -> Status {
    let message = err.to_string();
    match err {
        ForecastError::MissingColumn { column, .. }
        | ForecastError::Column { column, .. }
        | ForecastError::Timestamp { column, .. } => {
            bad_request(message.clone(), [(format!("series.csv[{column}]"), message)])
        }
        ForecastError::Option { option, .. } => {
            bad_request(message.clone(), [(format!("{options}.{option}"), message)])
        }
        ForecastError::Read { .. } => bad_request(message.clone(), [("series.csv".to_owned(), message)]),
        ForecastError::Fit { .. } => Status::failed_precondition(message),
        ForecastError::ModelFile(_) => Status::data_loss(message),
        ForecastError::Cancelled { .. } => Status::cancelled(message),
        other => Status::internal(other.to_string()),
    }
}

/// A database failure (the detail goes to the log, not to the caller).
pub(crate) fn store(err: &anyhow::Error) -> Status {
    tracing::error!(error = format!("{err:#}"), "database");
    Status::unavailable("the model store is unavailable; retry later")
}
