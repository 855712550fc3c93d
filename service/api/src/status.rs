//! Every library error mapped to a gRPC status, in one place.
//!
//! | error | code |
//! |---|---|
//! | invalid case file | INVALID_ARGUMENT + BadRequest field violations (`case.assets.x.y`) |
//! | dispatch option out of range | INVALID_ARGUMENT + a violation on the option |
//! | request beyond a `[limits]` budget | INVALID_ARGUMENT + a violation on the field, naming the limit |
//! | solver failure, panic | INTERNAL (details in the server log only) |
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

use crate::pb::dispatch as pb;

/// The longest text of a caller's echoed back in a message (an id, a
/// name): beyond it, the text is cut and marked.
const SHOWN_CHARS: usize = 64;

/// The longest message or field path sent back.
const MESSAGE_CHARS: usize = 1024;

/// The most problems one reply lists (the count of the rest is given).
const MAX_PROBLEMS: usize = 100;

/// A caller's text as messages quote it: debug-quoted, and cut after
/// [`SHOWN_CHARS`] characters.
pub fn shown(text: &str) -> String {
    if text.chars().count() <= SHOWN_CHARS {
        format!("{text:?}")
    } else {
        let head: String = text.chars().take(SHOWN_CHARS).collect();
        format!("{head:?}... ({} characters)", text.chars().count())
    }
}

/// A message cut to [`MESSAGE_CHARS`] characters.
pub fn capped(mut text: String) -> String {
    if let Some((at, _)) = text.char_indices().nth(MESSAGE_CHARS) {
        text.truncate(at);
        text.push_str("...");
    }
    text
}

/// An issue with its path from the request's root (`case.assets.chp...`).
pub fn problem(issue: &volta_engine::Issue) -> pb::Problem {
    pb::Problem { path: capped(format!("case.{}", issue.path)), message: capped(issue.message.clone()) }
}

/// The problems of a case that did not read or validate: at most
/// [`MAX_PROBLEMS`], the last saying how many more there are.
pub fn problems(err: &CaseFileError) -> Vec<pb::Problem> {
    match err.report() {
        Some(report) => listed(&report.issues),
        None => vec![pb::Problem { path: "case".into(), message: capped(err.to_string()) }],
    }
}

/// At most [`MAX_PROBLEMS`] issues as problems.
pub fn listed(issues: &[volta_engine::Issue]) -> Vec<pb::Problem> {
    let mut out: Vec<pb::Problem> = issues.iter().take(MAX_PROBLEMS).map(problem).collect();
    if issues.len() > MAX_PROBLEMS {
        out.push(pb::Problem {
            path: "case".into(),
            message: format!("and {} more problems", issues.len() - MAX_PROBLEMS),
        });
    }
    out
}

/// INVALID_ARGUMENT with a google.rpc.BadRequest naming `(field, message)`s.
pub fn bad_request(message: String, violations: impl IntoIterator<Item = (String, String)>) -> Status {
    let mut details = ErrorDetails::new();
    for (field, description) in violations.into_iter().take(MAX_PROBLEMS) {
        details.add_bad_request_violation(capped(field), capped(description));
    }
    Status::with_error_details(Code::InvalidArgument, capped(message), details)
}

/// INVALID_ARGUMENT for one request field: `field: message`, with the
/// field as a BadRequest violation.
pub fn invalid(field: &str, message: String) -> Status {
    bad_request(format!("{field}: {message}"), [(field.to_owned(), message)])
}

/// RESOURCE_EXHAUSTED for a call shed under load, with a `google.rpc.RetryInfo`
/// saying how long to wait before trying again.
pub fn shed(message: &str, retry_after: std::time::Duration) -> Status {
    let mut details = ErrorDetails::new();
    details.set_retry_info(Some(retry_after));
    Status::with_error_details(Code::ResourceExhausted, message, details)
}

/// INVALID_ARGUMENT for a request beyond one of the server's `[limits]`.
pub fn over_limit(field: &str, what: &str, limit: &str, max: usize) -> Status {
    invalid(field, format!("{what}, more than limits.{limit} = {max}"))
}

/// An invalid case: INVALID_ARGUMENT naming every field.
pub fn case(err: &CaseFileError) -> Status {
    bad_request(format!("invalid case: {err}"), problems(err).into_iter().map(|p| (p.path, p.message)))
}

/// A dispatch error.
pub fn dispatch(err: &DispatchError) -> Status {
    match err {
        DispatchError::Option(message) => {
            bad_request(format!("invalid option: {message}"), [("options".to_owned(), message.clone())])
        }
        DispatchError::Cancelled => Status::cancelled("cancelled by the client"),
        DispatchError::Solver(message) => {
            tracing::error!(error = %message, "solver");
            Status::internal("the solver failed on this case (logged on the server)")
        }
    }
}

/// A forecasting error; `options` is the request field that held the options.
pub fn forecast(err: &ForecastError, options: &str) -> Status {
    let message = capped(err.to_string());
    match err {
        ForecastError::MissingColumn { column, .. }
        | ForecastError::Column { column, .. }
        | ForecastError::Timestamp { column, .. } => {
            bad_request(message.clone(), [(format!("series.csv[{column}]"), message)])
        }
        ForecastError::Option { option, .. } if options.is_empty() => {
            bad_request(message.clone(), [(option.clone(), message)])
        }
        ForecastError::Option { option, .. } => {
            bad_request(message.clone(), [(format!("{options}.{option}"), message)])
        }
        ForecastError::Read { .. } => bad_request(message.clone(), [("series.csv".to_owned(), message)]),
        ForecastError::Fit { .. } => Status::failed_precondition(message),
        ForecastError::ModelFile(_) => Status::data_loss(message),
        ForecastError::Cancelled { .. } => Status::cancelled(message),
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;
    use tonic_types::StatusExt as _;
    use volta_dispatch::DispatchError;
    use volta_forecasting::ForecastError;

    use super::{dispatch, forecast};

    /// The first field a status names, if any.
    fn field(status: &tonic::Status) -> Option<String> {
        status.get_details_bad_request().and_then(|b| b.field_violations.first().map(|v| v.field.clone()))
    }

    #[test]
    fn every_dispatch_error_has_its_code() {
        let cases = [
            (DispatchError::Option("mip_gap must be in [0, 1)".into()), Code::InvalidArgument),
            (DispatchError::Cancelled, Code::Cancelled),
            (DispatchError::Solver("HiGHS: model error at /work/x".into()), Code::Internal),
        ];
        for (err, code) in cases {
            let status = dispatch(&err);
            assert_eq!(status.code(), code, "{err}");
            assert!(!status.message().contains("/work"), "solver detail stays in the log: {}", status.message());
        }
    }

    #[test]
    fn every_forecast_error_has_its_code_and_field() {
        let text = String::from;
        let cases = [
            (
                ForecastError::Read { path: "/srv/x.csv".into(), reason: text("bad") },
                Code::InvalidArgument,
                Some("series.csv"),
            ),
            (
                ForecastError::MissingColumn { column: text("load"), available: text("t, y") },
                Code::InvalidArgument,
                Some("series.csv[load]"),
            ),
            (
                ForecastError::Column { column: text("y"), reason: text("text") },
                Code::InvalidArgument,
                Some("series.csv[y]"),
            ),
            (
                ForecastError::Timestamp { column: text("t"), row: 3, reason: text("no such time") },
                Code::InvalidArgument,
                Some("series.csv[t]"),
            ),
            (
                ForecastError::Option { option: text("lags[0]"), reason: text("too far") },
                Code::InvalidArgument,
                Some("options_json.lags[0]"),
            ),
            (ForecastError::ModelFile(text("version 9")), Code::DataLoss, None),
            (ForecastError::Fit { model: text("gbdt"), reason: text("12 samples") }, Code::FailedPrecondition, None),
            (ForecastError::Cancelled { progress: text("while training") }, Code::Cancelled, None),
        ];
        for (err, code, named) in cases {
            let status = forecast(&err, "options_json");
            assert_eq!(status.code(), code, "{err}");
            assert_eq!(field(&status).as_deref(), named, "{err}");
        }
        // Without an options field, an option error names the option itself.
        let late = ForecastError::Option { option: text("issue_time"), reason: text("late") };
        assert_eq!(field(&forecast(&late, "")).as_deref(), Some("issue_time"));
    }
}
