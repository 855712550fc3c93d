//! A call's time budget: when it arrived and when its caller stops waiting.
//!
//! The deadline is the `grpc-timeout` header measured from the call's
//! arrival (recorded by the [`Observe`](crate::telemetry::Observe) layer),
//! so that time spent waiting for admission or reading the request counts.
//! The server answers before it: the solver's time limit leaves a margin for
//! building, pricing and encoding, and work still running when the reply is
//! due is cancelled and answered DEADLINE_EXCEEDED.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::OwnedSemaphorePermit;

/// A call's deadline, measured from its arrival at the server.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Arrival {
    /// Arrival plus `grpc-timeout` (at most `limits.max_call_seconds`).
    pub deadline: Option<Instant>,
}

/// A `grpc-timeout` header value: at most 8 digits and a unit (the gRPC
/// spec's form); anything else is no deadline rather than an error, and
/// nothing in it can overflow.
pub(crate) fn timeout_header(text: &str) -> Option<Duration> {
    let (digits, unit) = text.split_at_checked(text.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// A call's place among those served at once (`limits.max_concurrent_calls`).
/// The call holds it until its reply, and work that outlives the reply (cut
/// short by the deadline) holds a clone until it really stops, so that the
/// bound on work in progress holds.
#[derive(Debug, Clone)]
pub(crate) struct Admission {
    _permit: Arc<OwnedSemaphorePermit>,
}

impl Admission {
    pub(crate) fn new(permit: OwnedSemaphorePermit) -> Self {
        Self { _permit: Arc::new(permit) }
    }
}

/// The time budget of one call, and its place.
#[derive(Debug, Clone, Default)]
pub(crate) struct Budget {
    deadline: Option<Instant>,
    admission: Option<Admission>,
}

impl Budget {
    /// The budget of `request`, as the [`Observe`](crate::telemetry::Observe)
    /// layer recorded it (every call passes the layer).
    pub(crate) fn of<T>(request: &tonic::Request<T>) -> Self {
        let extensions = request.extensions();
        Self {
            deadline: extensions.get::<Arrival>().and_then(|a| a.deadline),
            admission: extensions.get::<Admission>().cloned(),
        }
    }

    /// The call's place, to be held by work that may outlive the reply.
    pub(crate) fn admission(&self) -> Option<Admission> {
        self.admission.clone()
    }

    /// Time left before the deadline.
    pub(crate) fn remaining(&self) -> Option<Duration> {
        self.deadline.map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// When the reply is due: shortly before the deadline, so that it
    /// reaches the caller in time (5 %, at least 50 ms, at most 1 s early).
    pub(crate) fn reply_due(&self) -> Option<Instant> {
        self.deadline.map(reply_due)
    }

    /// The solver time limit of a call: the request's own limit, bounded by
    /// the time left less a margin for reading the case, building the model,
    /// pricing and replying (15 %, at least 200 ms).
    pub(crate) fn time_limit(&self, requested: Option<f64>) -> Option<f64> {
        time_limit(requested, self.remaining())
    }
}

/// When the reply to a call due at `deadline` must leave: 5 % of the time
/// left early, at least 50 ms and at most 1 s, for encoding and transport.
pub(crate) fn reply_due(deadline: Instant) -> Instant {
    let left = deadline.saturating_duration_since(Instant::now());
    let early = left.mul_f64(0.05).clamp(Duration::from_millis(50), Duration::from_secs(1));
    deadline.checked_sub(early).unwrap_or(deadline)
}

/// [`Budget::time_limit`] for a given time left.
pub(crate) fn time_limit(requested: Option<f64>, left: Option<Duration>) -> Option<f64> {
    let budget = left.map(|d| {
        let margin = d.mul_f64(0.15).max(Duration::from_millis(200));
        d.saturating_sub(margin).as_secs_f64().max(0.05)
    });
    match (requested, budget) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{time_limit, timeout_header};

    #[test]
    fn grpc_timeout_headers_become_durations() {
        assert_eq!(timeout_header("3S"), Some(Duration::from_secs(3)));
        assert_eq!(timeout_header("1500m"), Some(Duration::from_millis(1500)));
        assert_eq!(timeout_header("2M"), Some(Duration::from_secs(120)));
        assert_eq!(timeout_header("250u"), Some(Duration::from_micros(250)));
        assert_eq!(timeout_header("99999999H"), Some(Duration::from_secs(99_999_999 * 3600)));
        assert_eq!(timeout_header("7x"), None);
        assert_eq!(timeout_header("S"), None);
        assert_eq!(timeout_header(""), None);
        assert_eq!(timeout_header("-5S"), None);
        assert_eq!(timeout_header("+5S"), None);
        assert_eq!(timeout_header("5é"), None, "a multi-byte unit is not split");
        // More than the spec's 8 digits: no deadline, and no overflow panic.
        assert_eq!(timeout_header("9999999999999999H"), None);
        assert_eq!(timeout_header("18446744073709551615n"), None);
    }

    #[test]
    fn the_deadline_bounds_the_time_limit_with_a_margin() {
        assert_eq!(time_limit(None, None), None);
        assert_eq!(time_limit(Some(30.0), None), Some(30.0));
        assert_eq!(time_limit(None, Some(Duration::from_secs(1))), Some(0.8));
        assert_eq!(time_limit(None, Some(Duration::from_secs(10))), Some(8.5));
        assert_eq!(time_limit(Some(1.0), Some(Duration::from_secs(10))), Some(1.0));
        assert_eq!(time_limit(None, Some(Duration::from_millis(100))), Some(0.05));
    }
}
