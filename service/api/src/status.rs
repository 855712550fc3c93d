//! Every error of Volta's services as a gRPC status, in one place: its
//! code, a stable `google.rpc.ErrorInfo` reason a client can switch on
//! (domain [`DOMAIN`]), and the details that say what to do about it.
//!
//! | error | code | reason |
//! |---|---|---|
//! | a request field out of range, missing or malformed | INVALID_ARGUMENT + BadRequest on the field | `INVALID_FIELD` |
//! | invalid case file | INVALID_ARGUMENT + BadRequest field violations (`case.assets.x.y`) | `INVALID_CASE` |
//! | request beyond a `[limits]` budget | INVALID_ARGUMENT + BadRequest on the field, naming the limit | `OVER_LIMIT` |
//! | a request that is not valid protobuf | INVALID_ARGUMENT | `MALFORMED_REQUEST` |
//! | every slot busy, too many calls waiting | RESOURCE_EXHAUSTED + RetryInfo | `OVERLOADED` |
//! | the deadline came first | DEADLINE_EXCEEDED | `DEADLINE_EXCEEDED` |
//! | work cancelled by the client | CANCELLED | `CANCELLED` |
//! | solver failure, panic | INTERNAL (details in the server log only) | `SOLVER_FAILED`, `INTERNAL` |
//! | forecasting input (column, timestamp, option) | INVALID_ARGUMENT + BadRequest on the field | `INVALID_FIELD` |
//! | the data cannot support the model (fit) | FAILED_PRECONDITION | `DATA_TOO_THIN` |
//! | a stored model that no longer reads | DATA_LOSS | `MODEL_UNREADABLE` |
//! | no such model for the caller's tenant | NOT_FOUND | `MODEL_NOT_FOUND` |
//! | database unreachable or failing | UNAVAILABLE | `STORE_UNAVAILABLE` |
//! | the server is stopping | UNAVAILABLE | `SHUTTING_DOWN` |
//! | no or bad bearer token | UNAUTHENTICATED | `UNAUTHENTICATED` |
//! | a role or a site the token lacks | PERMISSION_DENIED | `ROLE_REQUIRED`, `SITE_NOT_GRANTED` |
//! | a method the server does not have | UNIMPLEMENTED | `UNKNOWN_METHOD` |
//! | no such contract (or meter) for the caller's tenant | NOT_FOUND | `CONTRACT_NOT_FOUND` |
//! | a contract id that exists, a request id used for something else | ALREADY_EXISTS | `ALREADY_EXISTS` |
//! | a lifecycle step the contract's state refuses, no terms in force | FAILED_PRECONDITION | `CONTRACT_RULE` |
//! | a market index price a settlement needs is missing | FAILED_PRECONDITION | `PRICE_MISSING` |
//! | the contract changed while the call changed it | ABORTED | `CONCURRENT_CHANGE` |
//! | no such market, or no such order of the caller's | NOT_FOUND | `MARKET_NOT_FOUND`, `ORDER_NOT_FOUND` |
//! | an order for a product whose gate is not open | FAILED_PRECONDITION | `GATE_CLOSED` |
//! | a market run by another replica | UNAVAILABLE | `NOT_LEADER` |
//! | no such dead letter of the caller's tenant | NOT_FOUND | `MESSAGE_NOT_FOUND` |
//!
//! Infeasible and unbounded cases are not errors: they are an OK response
//! whose status says so, with an explanation.

use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};
use volta_contracts::ContractError;
use volta_dispatch::DispatchError;
use volta_engine::Error as CaseFileError;
use volta_forecasting::ForecastError;
use volta_trading::TradingError;

use crate::pb::common;

/// The `google.rpc.ErrorInfo` domain of every Volta error.
pub const DOMAIN: &str = "volta.energy";

/// Why a call failed: the stable `google.rpc.ErrorInfo` reason of every
/// error a Volta service returns (see the table of the module).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A request field is out of range, missing or malformed.
    InvalidField,
    /// The case file does not read or validate.
    InvalidCase,
    /// The request asks for more than a `[limits]` budget allows.
    OverLimit,
    /// The request is not valid protobuf.
    MalformedRequest,
    /// Every solver slot is busy, or too many calls wait: retry later.
    Overloaded,
    /// The deadline came before the work finished.
    DeadlineExceeded,
    /// The caller cancelled the call.
    Cancelled,
    /// The solver failed on the case.
    SolverFailed,
    /// A fault of the server (logged there).
    Internal,
    /// The data cannot support the model asked for.
    DataTooThin,
    /// A stored model no longer reads.
    ModelUnreadable,
    /// No such model for the caller's tenant.
    ModelNotFound,
    /// The database is unreachable or failing.
    StoreUnavailable,
    /// The server is stopping.
    ShuttingDown,
    /// No bearer token, or one that does not verify.
    Unauthenticated,
    /// The token lacks the role the method needs.
    RoleRequired,
    /// The token does not grant the case's site.
    SiteNotGranted,
    /// The server has no such method.
    UnknownMethod,
    /// No such contract, meter or party for the caller's tenant.
    ContractNotFound,
    /// The id exists already, or the request id was used for another change.
    AlreadyExists,
    /// The contract's state or terms refuse the step.
    ContractRule,
    /// A market index price the computation needs is missing.
    PriceMissing,
    /// Another change landed first; read again and retry.
    ConcurrentChange,
    /// No such market for the caller's tenant.
    MarketNotFound,
    /// No such order of the caller's (or, for the market operator, at all).
    OrderNotFound,
    /// The product's gate is not open at the time of the order.
    GateClosed,
    /// Another replica runs the market: call that one.
    NotLeader,
    /// No such dead letter (of the caller's tenant).
    MessageNotFound,
}

impl Reason {
    /// Every reason, for tests and documentation.
    pub const ALL: [Self; 28] = [
        Self::InvalidField,
        Self::InvalidCase,
        Self::OverLimit,
        Self::MalformedRequest,
        Self::Overloaded,
        Self::DeadlineExceeded,
        Self::Cancelled,
        Self::SolverFailed,
        Self::Internal,
        Self::DataTooThin,
        Self::ModelUnreadable,
        Self::ModelNotFound,
        Self::StoreUnavailable,
        Self::ShuttingDown,
        Self::Unauthenticated,
        Self::RoleRequired,
        Self::SiteNotGranted,
        Self::UnknownMethod,
        Self::ContractNotFound,
        Self::AlreadyExists,
        Self::ContractRule,
        Self::PriceMissing,
        Self::ConcurrentChange,
        Self::MarketNotFound,
        Self::OrderNotFound,
        Self::GateClosed,
        Self::NotLeader,
        Self::MessageNotFound,
    ];

    /// The reason as sent: UPPER_SNAKE_CASE, stable across releases.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidField => "INVALID_FIELD",
            Self::InvalidCase => "INVALID_CASE",
            Self::OverLimit => "OVER_LIMIT",
            Self::MalformedRequest => "MALFORMED_REQUEST",
            Self::Overloaded => "OVERLOADED",
            Self::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Self::Cancelled => "CANCELLED",
            Self::SolverFailed => "SOLVER_FAILED",
            Self::Internal => "INTERNAL",
            Self::DataTooThin => "DATA_TOO_THIN",
            Self::ModelUnreadable => "MODEL_UNREADABLE",
            Self::ModelNotFound => "MODEL_NOT_FOUND",
            Self::StoreUnavailable => "STORE_UNAVAILABLE",
            Self::ShuttingDown => "SHUTTING_DOWN",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::RoleRequired => "ROLE_REQUIRED",
            Self::SiteNotGranted => "SITE_NOT_GRANTED",
            Self::UnknownMethod => "UNKNOWN_METHOD",
            Self::ContractNotFound => "CONTRACT_NOT_FOUND",
            Self::AlreadyExists => "ALREADY_EXISTS",
            Self::ContractRule => "CONTRACT_RULE",
            Self::PriceMissing => "PRICE_MISSING",
            Self::ConcurrentChange => "CONCURRENT_CHANGE",
            Self::MarketNotFound => "MARKET_NOT_FOUND",
            Self::OrderNotFound => "ORDER_NOT_FOUND",
            Self::GateClosed => "GATE_CLOSED",
            Self::NotLeader => "NOT_LEADER",
            Self::MessageNotFound => "MESSAGE_NOT_FOUND",
        }
    }

    /// The gRPC code that goes with the reason.
    #[must_use]
    pub fn code(self) -> Code {
        match self {
            Self::InvalidField | Self::InvalidCase | Self::OverLimit | Self::MalformedRequest => Code::InvalidArgument,
            Self::Overloaded => Code::ResourceExhausted,
            Self::DeadlineExceeded => Code::DeadlineExceeded,
            Self::Cancelled => Code::Cancelled,
            Self::SolverFailed | Self::Internal => Code::Internal,
            Self::DataTooThin => Code::FailedPrecondition,
            Self::ModelUnreadable => Code::DataLoss,
            Self::ModelNotFound => Code::NotFound,
            Self::StoreUnavailable | Self::ShuttingDown | Self::NotLeader => Code::Unavailable,
            Self::Unauthenticated => Code::Unauthenticated,
            Self::RoleRequired | Self::SiteNotGranted => Code::PermissionDenied,
            Self::UnknownMethod => Code::Unimplemented,
            Self::ContractNotFound => Code::NotFound,
            Self::AlreadyExists => Code::AlreadyExists,
            Self::ContractRule | Self::PriceMissing => Code::FailedPrecondition,
            Self::ConcurrentChange => Code::Aborted,
            Self::MarketNotFound | Self::OrderNotFound | Self::MessageNotFound => Code::NotFound,
            Self::GateClosed => Code::FailedPrecondition,
        }
    }
}

/// The longest text of a caller's echoed back in a message (an id, a
/// name): beyond it, the text is cut and marked.
const SHOWN_CHARS: usize = 64;

/// The longest message or field path sent back.
const MESSAGE_CHARS: usize = 1024;

/// The most problems one reply lists (the count of the rest is given).
const MAX_PROBLEMS: usize = 100;

/// A caller's text as messages quote it: debug-quoted, and cut after
/// [`SHOWN_CHARS`] characters.
#[must_use]
pub fn shown(text: &str) -> String {
    if text.chars().count() <= SHOWN_CHARS {
        format!("{text:?}")
    } else {
        let head: String = text.chars().take(SHOWN_CHARS).collect();
        format!("{head:?}... ({} characters)", text.chars().count())
    }
}

/// A message cut to [`MESSAGE_CHARS`] characters.
#[must_use]
pub fn capped(mut text: String) -> String {
    if let Some((at, _)) = text.char_indices().nth(MESSAGE_CHARS) {
        text.truncate(at);
        text.push_str("...");
    }
    text
}

/// A name as a key in a field path: as it is when it is plain
/// (`load_kw`), quoted and escaped otherwise (`"a].b"`), so that a path
/// always reads one way.
#[must_use]
pub fn key(name: &str) -> String {
    let plain = !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | ' ' | '%'));
    if plain { capped(name.to_owned()) } else { capped(format!("{name:?}")) }
}

/// Details that carry `reason`.
fn details(reason: Reason) -> ErrorDetails {
    let mut details = ErrorDetails::new();
    details.set_error_info(reason.as_str(), DOMAIN, std::collections::HashMap::new());
    details
}

/// A status of `reason`'s code with its ErrorInfo.
#[must_use]
pub fn error(reason: Reason, message: impl Into<String>) -> Status {
    Status::with_error_details(reason.code(), capped(message.into()), details(reason))
}

/// An issue with its path from the request's root (`case.assets.chp...`).
#[must_use]
pub fn problem(issue: &volta_engine::Issue) -> common::Problem {
    common::Problem { path: capped(format!("case.{}", issue.path)), message: capped(issue.message.clone()) }
}

/// The problems of a case that did not read or validate: at most
/// [`MAX_PROBLEMS`], the last saying how many more there are.
#[must_use]
pub fn problems(err: &CaseFileError) -> Vec<common::Problem> {
    match err.report() {
        Some(report) => listed(&report.issues),
        None => vec![common::Problem { path: "case".into(), message: capped(err.to_string()) }],
    }
}

/// At most [`MAX_PROBLEMS`] issues as problems.
#[must_use]
pub fn listed(issues: &[volta_engine::Issue]) -> Vec<common::Problem> {
    let mut out: Vec<common::Problem> = issues.iter().take(MAX_PROBLEMS).map(problem).collect();
    if issues.len() > MAX_PROBLEMS {
        out.push(common::Problem {
            path: "case".into(),
            message: format!("and {} more problems", issues.len() - MAX_PROBLEMS),
        });
    }
    out
}

/// INVALID_ARGUMENT of `reason` with a google.rpc.BadRequest naming
/// `(field, message)`s.
pub fn bad_request(reason: Reason, message: String, violations: impl IntoIterator<Item = (String, String)>) -> Status {
    let mut details = details(reason);
    for (field, description) in violations.into_iter().take(MAX_PROBLEMS) {
        details.add_bad_request_violation(capped(field), capped(description));
    }
    Status::with_error_details(Code::InvalidArgument, capped(message), details)
}

/// INVALID_ARGUMENT for one request field: `field: message`, with the
/// field as a BadRequest violation.
#[must_use]
pub fn invalid(field: &str, message: String) -> Status {
    bad_request(Reason::InvalidField, format!("{field}: {message}"), [(field.to_owned(), message)])
}

/// RESOURCE_EXHAUSTED for a call shed under load, with a `google.rpc.RetryInfo`
/// saying how long to wait before trying again.
#[must_use]
pub fn shed(message: &str, retry_after: Duration) -> Status {
    let mut details = details(Reason::Overloaded);
    details.set_retry_info(Some(retry_after));
    Status::with_error_details(Code::ResourceExhausted, message, details)
}

/// INVALID_ARGUMENT for a request beyond one of the server's `[limits]`.
#[must_use]
pub fn over_limit(field: &str, what: &str, limit: &str, max: usize) -> Status {
    let message = format!("{what}, more than limits.{limit} = {max}");
    bad_request(Reason::OverLimit, format!("{field}: {message}"), [(field.to_owned(), message)])
}

/// An invalid case: INVALID_ARGUMENT naming every field.
#[must_use]
pub fn case(err: &CaseFileError) -> Status {
    bad_request(
        Reason::InvalidCase,
        format!("invalid case: {err}"),
        problems(err).into_iter().map(|p| (p.path, p.message)),
    )
}

/// A dispatch error.
#[must_use]
pub fn dispatch(err: &DispatchError) -> Status {
    match err {
        DispatchError::Option(message) => bad_request(
            Reason::InvalidField,
            format!("invalid option: {message}"),
            [("options".to_owned(), message.clone())],
        ),
        DispatchError::Cancelled => error(Reason::Cancelled, "cancelled by the client"),
        DispatchError::Solver(message) => {
            tracing::error!(error = %message, "solver");
            error(Reason::SolverFailed, "the solver failed on this case (logged on the server)")
        }
    }
}

/// A forecasting error; `field` gives the request field of a library
/// option (`lags[0]` is `options.lag_days[0]` in a request).
#[must_use]
pub fn forecast(err: &ForecastError, field: &dyn Fn(&str) -> String) -> Status {
    let message = capped(err.to_string());
    let on = |path: String| bad_request(Reason::InvalidField, message.clone(), [(path, message.clone())]);
    match err {
        ForecastError::MissingColumn { column, .. }
        | ForecastError::Column { column, .. }
        | ForecastError::Timestamp { column, .. }
        | ForecastError::Value { column, .. } => on(format!("series.csv[{}]", key(column))),
        ForecastError::Option { option, .. } => on(field(option)),
        ForecastError::Read { .. } => on("series.csv".to_owned()),
        ForecastError::Fit { .. } => error(Reason::DataTooThin, message),
        ForecastError::ModelFile(_) => error(Reason::ModelUnreadable, message),
        ForecastError::Cancelled { .. } => error(Reason::Cancelled, message),
    }
}

/// `status` with the fields it names under `from` (`series`,
/// `series.csv[load]`) moved under `to` (`forecasts[2].history`): the
/// error of a message read where another request nests it. The message's
/// leading field moves with them.
#[must_use]
pub fn within(status: Status, from: &str, to: &str) -> Status {
    let moved = |field: &str| match field.strip_prefix(from) {
        Some(rest) if rest.is_empty() || rest.starts_with(['.', '[']) => format!("{to}{rest}"),
        _ => field.to_owned(),
    };
    let mut details = status.get_error_details();
    let Some(request) = details.bad_request() else { return status };
    let violations: Vec<_> = request
        .field_violations
        .iter()
        .map(|v| {
            let mut v = v.clone();
            v.field = capped(moved(&v.field));
            v
        })
        .collect();
    details.set_bad_request(violations);
    let message = match status.message().split_once(':') {
        Some((head, tail)) if !head.contains(' ') => format!("{}:{tail}", moved(head)),
        _ => status.message().to_owned(),
    };
    Status::with_error_details(status.code(), capped(message), details)
}

/// A contract rule's refusal as a status; `field` is the request field the
/// data came from (`terms`), prefixed to the error's own path.
#[must_use]
pub fn contract(err: &ContractError, field: &str) -> Status {
    let message = capped(err.to_string());
    match err {
        ContractError::Invalid { field: path, reason } => {
            let path = if field.is_empty() { path.clone() } else { format!("{field}.{path}") };
            bad_request(Reason::InvalidField, format!("{path}: {reason}"), [(path, reason.clone())])
        }
        ContractError::Precision { .. } | ContractError::Number { .. } => {
            bad_request(Reason::InvalidField, message.clone(), [(field.to_owned(), message)])
        }
        ContractError::Transition { .. } | ContractError::NoTerms { .. } => error(Reason::ContractRule, message),
        ContractError::MissingPrice { .. } => error(Reason::PriceMissing, message),
    }
}

/// A market rule's refusal as a status.
#[must_use]
pub fn trading(err: &TradingError) -> Status {
    trading_at(err, &str::to_owned)
}

/// A market rule's refusal as a status, its field named by `field` (the
/// request's name for the domain's field: `price` is `limit_price`).
#[must_use]
pub fn trading_at(err: &TradingError, field: &dyn Fn(&str) -> String) -> Status {
    match err {
        TradingError::Invalid { field: path, reason } => {
            let path = field(path);
            bad_request(Reason::InvalidField, capped(format!("{path}: {reason}")), [(path, reason.clone())])
        }
        TradingError::GateClosed { .. } => error(Reason::GateClosed, capped(err.to_string())),
        TradingError::UnknownOrder { .. } => error(Reason::OrderNotFound, capped(err.to_string())),
        TradingError::Solver(_) => error(Reason::SolverFailed, capped(err.to_string())),
        // Ids are handed out by the market: a duplicate is its own fault.
        TradingError::DuplicateOrder { .. } => error(Reason::Internal, capped(err.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;
    use tonic_types::StatusExt as _;
    use volta_dispatch::DispatchError;
    use volta_forecasting::ForecastError;

    use super::{DOMAIN, Reason, dispatch, forecast};

    /// The first field a status names, if any.
    fn field(status: &tonic::Status) -> Option<String> {
        status.get_details_bad_request().and_then(|b| b.field_violations.first().map(|v| v.field.clone()))
    }

    /// The ErrorInfo reason of a status, checked against its code.
    fn reason(status: &tonic::Status) -> String {
        let info = status.get_details_error_info().expect("every error carries an ErrorInfo");
        assert_eq!(info.domain, DOMAIN);
        let reason = Reason::ALL.iter().find(|r| r.as_str() == info.reason).expect("a known reason");
        assert_eq!(reason.code(), status.code(), "{}", info.reason);
        info.reason
    }

    #[test]
    fn reasons_are_distinct_upper_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for r in Reason::ALL {
            let text = r.as_str();
            assert!(text.chars().all(|c| c.is_ascii_uppercase() || c == '_'), "{text}");
            assert!(seen.insert(text), "{text} twice");
        }
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
            reason(&status);
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
                Some("options.lag_days[0]"),
            ),
            (ForecastError::ModelFile(text("version 9")), Code::DataLoss, None),
            (ForecastError::Fit { model: text("gbdt"), reason: text("12 samples") }, Code::FailedPrecondition, None),
            (ForecastError::Cancelled { progress: text("while training") }, Code::Cancelled, None),
        ];
        let fields = |option: &str| crate::forecast::field_of(option, crate::forecast::Call::Train);
        for (err, code, named) in cases {
            let status = forecast(&err, &fields);
            assert_eq!(status.code(), code, "{err}");
            assert_eq!(field(&status).as_deref(), named, "{err}");
            reason(&status);
        }
    }
}
