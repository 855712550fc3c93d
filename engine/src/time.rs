//! Time grids: the steps a case is planned over.
//!
//! A [`TimeGrid`] is a start instant in a named time zone, a fixed step and a
//! number of steps. Steps are fixed lengths of *absolute* time, so a grid that
//! spans a daylight-saving change has 23 or 25 hourly steps on that local day,
//! exactly as a meter would record it. Lengths given in local days
//! ([`GridLength::Days`]) and local end times are converted to steps with the
//! time zone's rules, so "7 days from Monday midnight" ends at the next
//! Monday's midnight whatever happened to the clocks in between.

use std::fmt;

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Span, Timestamp, ZonedDateTime};

/// The largest grid accepted: ten years of one-minute steps.
pub const MAX_STEPS: usize = 10 * 366 * 24 * 60;

/// How the length of a grid is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GridLength {
    /// A number of steps.
    Steps(usize),
    /// A number of local calendar days (23- and 25-hour days included).
    Days(u32),
    /// A local end time (exclusive).
    End(String),
}

/// Why a time grid could not be built. Each variant names the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeGridError {
    /// The time zone name is not in the IANA database.
    #[error("unknown time zone {0:?} (use an IANA name such as \"Europe/Berlin\" or \"UTC\")")]
    UnknownTimeZone(String),
    /// The start could not be parsed.
    #[error("cannot parse start {value:?}: {reason}")]
    BadStart {
        /// The text given.
        value: String,
        /// The parser's reason.
        reason: String,
    },
    /// The local start time does not exist or is ambiguous on a DST change.
    #[error("start {value:?} is {reason} in {tz}; pick another time or give a UTC offset")]
    AmbiguousStart {
        /// The text given.
        value: String,
        /// `"skipped"` or `"ambiguous"`.
        reason: &'static str,
        /// The zone.
        tz: String,
    },
    /// The step could not be parsed or does not divide a day.
    #[error("invalid step {0:?}: use whole minutes that divide a day, e.g. \"15min\", \"30min\", \"1h\"")]
    BadStep(String),
    /// The end could not be parsed or is not after the start.
    #[error("invalid end {value:?}: {reason}")]
    BadEnd {
        /// The text given.
        value: String,
        /// The reason.
        reason: String,
    },
    /// The horizon is not a whole number of steps.
    #[error("the horizon ({horizon}) is not a whole number of {step} steps")]
    Misaligned {
        /// The horizon, as text.
        horizon: String,
        /// The step, as text.
        step: String,
    },
    /// Zero steps, or more than [`MAX_STEPS`].
    #[error("the grid must have between 1 and {MAX_STEPS} steps, got {0}")]
    BadLength(u64),
}

/// A sequence of equally long time steps starting at a zoned instant.
#[derive(Debug, Clone)]
pub struct TimeGrid {
    start: ZonedDateTime,
    step: SignedDuration,
    len: usize,
}

impl PartialEq for TimeGrid {
    fn eq(&self, other: &Self) -> bool {
        self.start.timestamp() == other.start.timestamp()
            && self.start.time_zone().iana_name() == other.start.time_zone().iana_name()
            && self.step == other.step
            && self.len == other.len
    }
}

impl TimeGrid {
    /// Builds a grid from its parts.
    ///
    /// `start` is a local date-time (`"2014-11-03T00:00"`) read in `timezone`,
    /// or an RFC 3339 instant with an offset (`"2014-11-03T00:00+11:00"`).
    /// `step` is a duration such as `"15min"`, `"30min"`, `"1h"`.
    ///
    /// # Errors
    /// A [`TimeGridError`] naming what is wrong.
    pub fn parse(start: &str, timezone: &str, step: &str, length: &GridLength) -> Result<Self, TimeGridError> {
        let tz = TimeZone::get(timezone).map_err(|_| TimeGridError::UnknownTimeZone(timezone.to_owned()))?;
        let start_zoned = parse_local(start, &tz).map_err(|e| match e {
            LocalError::Parse(reason) => TimeGridError::BadStart { value: start.to_owned(), reason },
            LocalError::Ambiguous(reason) => {
                TimeGridError::AmbiguousStart { value: start.to_owned(), reason, tz: timezone.to_owned() }
            }
        })?;
        let step_dur = parse_step(step).ok_or_else(|| TimeGridError::BadStep(step.to_owned()))?;
        let horizon = match length {
            GridLength::Steps(n) => return Self::new(start_zoned, step_dur, *n),
            GridLength::Days(days) => {
                let end = start_zoned
                    .checked_add(Span::new().days(i64::from(*days)))
                    .map_err(|e| TimeGridError::BadEnd { value: format!("{days} days"), reason: e.to_string() })?;
                (start_zoned.duration_until(&end), format!("{days} days"))
            }
            GridLength::End(end) => {
                let end_zoned = parse_local(end, &tz).map_err(|e| TimeGridError::BadEnd {
                    value: end.clone(),
                    reason: match e {
                        LocalError::Parse(reason) => reason,
                        LocalError::Ambiguous(reason) => format!("{reason} in {timezone}"),
                    },
                })?;
                let horizon = start_zoned.duration_until(&end_zoned);
                if horizon <= SignedDuration::ZERO {
                    return Err(TimeGridError::BadEnd {
                        value: end.clone(),
                        reason: "it is not after the start".into(),
                    });
                }
                (horizon, format!("until {end}"))
            }
        };
        let (horizon, horizon_text) = horizon;
        let step_secs = step_dur.as_secs();
        let horizon_secs = horizon.as_secs();
        if horizon_secs % step_secs != 0 {
            return Err(TimeGridError::Misaligned { horizon: horizon_text, step: format_step(step_dur) });
        }
        let n = u64::try_from(horizon_secs / step_secs).unwrap_or(0);
        Self::new(start_zoned, step_dur, usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// Builds a grid of `len` steps of `step` from `start`.
    ///
    /// # Errors
    /// [`TimeGridError::BadStep`] unless the step is a positive whole number
    /// of minutes dividing a day; [`TimeGridError::BadLength`] unless
    /// `1 <= len <= MAX_STEPS`.
    pub fn new(start: ZonedDateTime, step: SignedDuration, len: usize) -> Result<Self, TimeGridError> {
        if !valid_step(step) {
            return Err(TimeGridError::BadStep(format_step(step)));
        }
        if len == 0 || len > MAX_STEPS {
            return Err(TimeGridError::BadLength(len as u64));
        }
        Ok(Self { start, step, len })
    }

    /// The `len` steps of this grid from step `first` (clamped to the grid;
    /// at least one step), e.g. one window of a rolling horizon.
    #[must_use]
    pub fn window(&self, first: usize, len: usize) -> Self {
        let first = first.min(self.len - 1);
        let len = len.clamp(1, self.len - first);
        Self { start: self.at(first), step: self.step, len }
    }

    /// The first step's start.
    #[must_use]
    pub fn start(&self) -> &ZonedDateTime {
        &self.start
    }

    /// The grid's time zone.
    #[must_use]
    pub fn time_zone(&self) -> &TimeZone {
        self.start.time_zone()
    }

    /// The IANA name of the time zone (`"UTC"` for a fixed offset without one).
    #[must_use]
    pub fn time_zone_name(&self) -> &str {
        self.start.time_zone().iana_name().unwrap_or("UTC")
    }

    /// The step length.
    #[must_use]
    pub fn step(&self) -> SignedDuration {
        self.step
    }

    /// The step length in hours, the factor that turns kW into kWh.
    #[must_use]
    pub fn step_hours(&self) -> f64 {
        self.step.as_secs_f64() / 3600.0
    }

    /// The number of steps.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a grid has at least one step.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The whole horizon in hours.
    #[must_use]
    pub fn horizon_hours(&self) -> f64 {
        self.step_hours() * self.len as f64
    }

    /// The end of the grid (exclusive): start + len × step.
    #[must_use]
    pub fn end(&self) -> ZonedDateTime {
        self.at(self.len)
    }

    /// The start of step `i` as a zoned time. `i == len()` gives the end.
    #[must_use]
    pub fn at(&self, i: usize) -> ZonedDateTime {
        self.instant(i).to_zoned_datetime(self.time_zone().clone())
    }

    /// The start of step `i` in RFC 3339 with the zone's offset
    /// (`2014-11-03T00:00:00+11:00`), as tables and services print it.
    #[must_use]
    pub fn stamp(&self, i: usize) -> String {
        self.at(i).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }

    /// The start of step `i` as an instant.
    #[must_use]
    pub fn instant(&self, i: usize) -> Timestamp {
        let offset = self.step * i32::try_from(i).unwrap_or(i32::MAX);
        self.start.timestamp().checked_add(offset).unwrap_or(Timestamp::MAX)
    }

    /// The start instants of all steps.
    pub fn instants(&self) -> impl ExactSizeIterator<Item = Timestamp> + '_ {
        (0..self.len).map(|i| self.instant(i))
    }

    /// The step that contains `t`, if any.
    #[must_use]
    pub fn index_of(&self, t: Timestamp) -> Option<usize> {
        let since = self.start.timestamp().duration_until(t);
        if since < SignedDuration::ZERO {
            return None;
        }
        let i = usize::try_from(since.as_secs() / self.step.as_secs()).ok()?;
        (i < self.len).then_some(i)
    }

    /// How many whole steps make `hours`, if it is a whole number of steps.
    #[must_use]
    pub fn steps_in(&self, hours: f64) -> Option<usize> {
        let steps = hours / self.step_hours();
        let rounded = steps.round();
        ((steps - rounded).abs() < 1e-9 && rounded >= 0.0).then_some(rounded as usize)
    }

    /// The step as text, e.g. `"15min"` or `"1h"`.
    #[must_use]
    pub fn step_text(&self) -> String {
        format_step(self.step)
    }
}

impl fmt::Display for TimeGrid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} steps of {} from {} ({}, {:.1} h)",
            self.len,
            self.step_text(),
            self.start.strftime("%Y-%m-%d %H:%M %Z"),
            self.time_zone_name(),
            self.horizon_hours()
        )
    }
}

enum LocalError {
    Parse(String),
    Ambiguous(&'static str),
}

/// Reads `text` as an instant with an offset, or as a local time in `tz`.
/// Local times skipped or repeated by a DST change are refused rather than
/// guessed.
fn parse_local(text: &str, tz: &TimeZone) -> Result<ZonedDateTime, LocalError> {
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Ok(ts.to_zoned_datetime(tz.clone()));
    }
    let dt: DateTime = text.parse().map_err(|e: jiff::Error| LocalError::Parse(e.to_string()))?;
    let ambiguous = tz.to_ambiguous_zoned_datetime(dt);
    if ambiguous.is_ambiguous() {
        let reason = match ambiguous.offset() {
            jiff::tz::AmbiguousOffset::Gap { .. } => "skipped (clocks go forward)",
            jiff::tz::AmbiguousOffset::Fold { .. } => "ambiguous (clocks go back)",
            jiff::tz::AmbiguousOffset::Unambiguous { .. } => "ambiguous",
        };
        return Err(LocalError::Ambiguous(reason));
    }
    ambiguous.unambiguous().map_err(|e| LocalError::Parse(e.to_string()))
}

/// Parses `"15min"`, `"30 min"`, `"1h"`, `"2h"`, `"PT15M"`, `"90m"`.
fn parse_step(text: &str) -> Option<SignedDuration> {
    let t = text.trim().to_ascii_lowercase();
    let parsed = if let Some(iso) = t.strip_prefix("pt") {
        let (num, unit) = iso.split_at(iso.len().checked_sub(1)?);
        let n: i64 = num.parse().ok()?;
        match unit {
            "h" => SignedDuration::from_hours(n),
            "m" => SignedDuration::from_mins(n),
            _ => return None,
        }
    } else {
        let split = t.find(|c: char| !c.is_ascii_digit())?;
        let (num, unit) = t.split_at(split);
        let n: i64 = num.parse().ok()?;
        match unit.trim() {
            "h" | "hour" | "hours" => SignedDuration::from_hours(n),
            "m" | "min" | "mins" | "minute" | "minutes" => SignedDuration::from_mins(n),
            _ => return None,
        }
    };
    valid_step(parsed).then_some(parsed)
}

fn valid_step(step: SignedDuration) -> bool {
    let secs = step.as_secs();
    step.subsec_nanos() == 0 && secs > 0 && secs % 60 == 0 && 86_400 % secs == 0
}

fn format_step(step: SignedDuration) -> String {
    let mins = step.as_mins();
    if mins % 60 == 0 && mins != 0 { format!("{}h", mins / 60) } else { format!("{mins}min") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(start: &str, tz: &str, step: &str, len: &GridLength) -> TimeGrid {
        TimeGrid::parse(start, tz, step, len).expect("valid grid")
    }

    #[test]
    fn hourly_week() {
        let g = grid("2014-11-03T00:00", "Australia/Melbourne", "1h", &GridLength::Days(7));
        assert_eq!(g.len(), 168);
        assert!((g.step_hours() - 1.0).abs() < 1e-12);
        assert_eq!(g.at(24).strftime("%Y-%m-%d %H:%M").to_string(), "2014-11-04 00:00");
    }

    #[test]
    fn spring_forward_day_has_23_hours() {
        // Melbourne clocks went forward on 2014-10-05 at 02:00.
        let g = grid("2014-10-05T00:00", "Australia/Melbourne", "1h", &GridLength::Days(1));
        assert_eq!(g.len(), 23);
        assert_eq!(g.at(2).strftime("%H:%M").to_string(), "03:00");
    }

    #[test]
    fn fall_back_day_has_25_hours_of_quarter_hours() {
        let g = grid("2024-10-27T00:00", "Europe/Berlin", "15min", &GridLength::Days(1));
        assert_eq!(g.len(), 100);
    }

    #[test]
    fn end_in_local_time() {
        let g = grid("2024-03-30T00:00", "Europe/Berlin", "1h", &GridLength::End("2024-04-01T00:00".into()));
        assert_eq!(g.len(), 47);
    }

    #[test]
    fn rejects_bad_parts() {
        let len = GridLength::Steps(4);
        assert!(matches!(
            TimeGrid::parse("2024-01-01T00:00", "Mars/Olympus", "1h", &len),
            Err(TimeGridError::UnknownTimeZone(_))
        ));
        assert!(matches!(TimeGrid::parse("2024-13-01T00:00", "UTC", "1h", &len), Err(TimeGridError::BadStart { .. })));
        assert!(matches!(
            TimeGrid::parse("2024-03-31T02:30", "Europe/Berlin", "1h", &len),
            Err(TimeGridError::AmbiguousStart { .. })
        ));
        for step in ["7min", "0h", "1.5h", "", "h", "25h", "1d"] {
            assert!(
                matches!(TimeGrid::parse("2024-01-01T00:00", "UTC", step, &len), Err(TimeGridError::BadStep(_))),
                "{step}"
            );
        }
        assert!(matches!(
            TimeGrid::parse("2024-01-01T00:00", "UTC", "1h", &GridLength::Steps(0)),
            Err(TimeGridError::BadLength(0))
        ));
        assert!(matches!(
            TimeGrid::parse("2024-01-01T00:00", "UTC", "1h", &GridLength::End("2023-12-31T00:00".into())),
            Err(TimeGridError::BadEnd { .. })
        ));
        assert!(matches!(
            TimeGrid::parse("2024-01-01T00:00", "UTC", "1h", &GridLength::End("2024-01-01T00:30".into())),
            Err(TimeGridError::Misaligned { .. })
        ));
    }

    #[test]
    fn steps_parse() {
        for (text, mins) in [("15min", 15), ("30 min", 30), ("1h", 60), ("PT15M", 15), ("2h", 120), ("5m", 5)] {
            assert_eq!(parse_step(text), Some(SignedDuration::from_mins(mins)), "{text}");
        }
    }

    #[test]
    fn index_of_round_trips() {
        let g = grid("2024-01-01T00:00", "UTC", "15min", &GridLength::Days(2));
        for i in 0..g.len() {
            assert_eq!(g.index_of(g.instant(i)), Some(i));
        }
        assert_eq!(g.index_of(g.end().timestamp()), None);
    }
}
