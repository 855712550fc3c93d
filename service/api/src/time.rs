//! Times and lengths between protobuf's well-known types and the domain's:
//! `google.protobuf.Timestamp` is a [`jiff::Timestamp`], a
//! `google.protobuf.Duration` a [`jiff::SignedDuration`], and a
//! `volta.common.v1.TimeGrid` the grid of a case or a series.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use tonic::Status;

use crate::pb::common;
use crate::status;

/// A civil date from the protocol's `Date`, named by `field` when invalid.
///
/// # Errors
/// INVALID_ARGUMENT on `field` for a date the calendar lacks.
pub fn date(field: &str, d: &common::Date) -> Result<jiff::civil::Date, Status> {
    let part = |what: &str, n: i32| status::invalid(field, format!("{what} {n} is out of range"));
    let year = i16::try_from(d.year).map_err(|_| part("year", d.year))?;
    let month = i8::try_from(d.month).map_err(|_| part("month", d.month))?;
    let day = i8::try_from(d.day).map_err(|_| part("day", d.day))?;
    jiff::civil::Date::new(year, month, day).map_err(|e| status::invalid(field, format!("not a date: {e}")))
}

/// A civil date as the protocol's `Date`.
#[must_use]
pub fn date_message(d: jiff::civil::Date) -> common::Date {
    common::Date { year: i32::from(d.year()), month: i32::from(d.month()), day: i32::from(d.day()) }
}

/// A timestamp message.
#[must_use]
pub fn timestamp(t: Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: t.as_second(), nanos: t.subsec_nanosecond() }
}

/// A duration message.
#[must_use]
pub fn duration(d: SignedDuration) -> prost_types::Duration {
    prost_types::Duration { seconds: d.as_secs(), nanos: d.subsec_nanos() }
}

/// A duration message of `seconds` (a measured time).
#[must_use]
pub fn seconds(seconds: f64) -> prost_types::Duration {
    duration(SignedDuration::try_from_secs_f64(seconds).unwrap_or(SignedDuration::ZERO))
}

/// The instant of a request's timestamp, `None` when absent.
///
/// # Errors
/// INVALID_ARGUMENT naming `field` for a timestamp outside 0001-9999 or
/// with nanoseconds out of range.
pub fn instant(field: &str, t: Option<prost_types::Timestamp>) -> Result<Option<Timestamp>, Status> {
    t.map(|t| {
        Timestamp::new(t.seconds, t.nanos).map_err(|e| status::invalid(field, format!("not a valid timestamp: {e}")))
    })
    .transpose()
}

/// The length of a request's duration, `None` when absent.
///
/// # Errors
/// INVALID_ARGUMENT naming `field` for a negative duration or one whose
/// seconds and nanoseconds disagree in sign.
pub fn length(field: &str, d: Option<prost_types::Duration>) -> Result<Option<SignedDuration>, Status> {
    let Some(d) = d else { return Ok(None) };
    let mixed = (d.seconds < 0 && d.nanos > 0) || (d.seconds > 0 && d.nanos < 0);
    if mixed || !(-999_999_999..=999_999_999).contains(&d.nanos) {
        return Err(status::invalid(field, "not a valid duration (seconds and nanos disagree)".to_owned()));
    }
    let length = SignedDuration::new(d.seconds, d.nanos);
    if length.is_negative() {
        return Err(status::invalid(field, format!("{length:#} is negative")));
    }
    Ok(Some(length))
}

/// A grid message of `steps` steps of `step` from `start`, in `zone`.
#[must_use]
pub fn grid(start: Timestamp, step: SignedDuration, steps: usize, zone: &TimeZone) -> common::TimeGrid {
    common::TimeGrid {
        start: Some(timestamp(start)),
        step: Some(duration(step)),
        steps: count(steps),
        time_zone: zone.iana_name().unwrap_or("UTC").to_owned(),
    }
}

/// A count as an `int32` field (saturated: no Volta count comes near).
#[must_use]
pub fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// A request's count as a `usize`.
///
/// # Errors
/// INVALID_ARGUMENT naming `field` for a negative count.
pub fn unsigned(field: &str, n: i32) -> Result<usize, Status> {
    usize::try_from(n).map_err(|_| status::invalid(field, format!("{n} is negative")))
}

/// A request's `page_size`: `default` when unset (0), at most `max`.
///
/// # Errors
/// INVALID_ARGUMENT on `page_size` when negative or above `max`.
pub fn page_size(n: i32, default: usize, max: usize) -> Result<usize, Status> {
    match unsigned("page_size", n)? {
        0 => Ok(default),
        n if n > max => Err(status::invalid("page_size", format!("{n}; a page has at most {max}"))),
        n => Ok(n),
    }
}
