//! Contract time: periods of local calendar days, and the meter intervals
//! that make them up in a zone.
//!
//! A contract is written in local days and months ("March 2025, Shanghai
//! time"); a meter records fixed intervals of absolute time. A [`Period`]
//! is a half-open range of civil dates; [`Period::intervals`] lays it out as
//! an engine [`TimeGrid`] in the meter's zone, so a local day has 92, 96 or
//! 100 quarter hours across the clock changes, exactly as a meter records it.

use std::fmt;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, ToSpan as _};
use serde::{Deserialize, Serialize};
use volta_engine::TimeGrid;

use crate::error::ContractError;

/// How a period is cut into buckets for statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    /// Local calendar days.
    Day,
    /// Local calendar months.
    Month,
    /// Local calendar years.
    Year,
}

/// The local dates `first` up to, not including, `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Period {
    first: Date,
    end: Date,
}

impl Period {
    /// `[first, end)`.
    ///
    /// # Errors
    /// [`ContractError::Invalid`] unless `first < end`.
    pub fn new(first: Date, end: Date) -> Result<Self, ContractError> {
        if first >= end {
            return Err(ContractError::invalid("period", format!("{first} is not before {end}")));
        }
        Ok(Self { first, end })
    }

    /// The single day `date`.
    #[must_use]
    pub fn day(date: Date) -> Self {
        Self { first: date, end: next_day(date) }
    }

    /// The calendar month of `date`.
    #[must_use]
    pub fn month_of(date: Date) -> Self {
        let first = date.first_of_month();
        Self { first, end: first.checked_add(1.month()).unwrap_or(Date::MAX) }
    }

    /// The calendar year of `date`.
    #[must_use]
    pub fn year_of(date: Date) -> Self {
        let first = date.first_of_year();
        Self { first, end: first.checked_add(1.year()).unwrap_or(Date::MAX) }
    }

    /// The bucket of `granularity` that holds `date`.
    #[must_use]
    pub fn bucket_of(date: Date, granularity: Granularity) -> Self {
        match granularity {
            Granularity::Day => Self::day(date),
            Granularity::Month => Self::month_of(date),
            Granularity::Year => Self::year_of(date),
        }
    }

    /// The first date.
    #[must_use]
    pub fn first(&self) -> Date {
        self.first
    }

    /// The day after the last date.
    #[must_use]
    pub fn end(&self) -> Date {
        self.end
    }

    /// The last date.
    #[must_use]
    pub fn last(&self) -> Date {
        self.end.yesterday().unwrap_or(self.first)
    }

    /// Whether `date` falls in the period.
    #[must_use]
    pub fn contains(&self, date: Date) -> bool {
        self.first <= date && date < self.end
    }

    /// The overlap of two periods, if any.
    #[must_use]
    pub fn intersect(&self, other: &Self) -> Option<Self> {
        let first = self.first.max(other.first);
        let end = self.end.min(other.end);
        (first < end).then_some(Self { first, end })
    }

    /// The number of days.
    #[must_use]
    pub fn len_days(&self) -> usize {
        self.days().count()
    }

    /// Each date in order.
    pub fn days(&self) -> impl Iterator<Item = Date> + '_ {
        std::iter::successors(Some(self.first), |d| Some(next_day(*d))).take_while(|d| *d < self.end)
    }

    /// The period cut at the boundaries of `granularity` (the first and last
    /// buckets clipped to the period).
    #[must_use]
    pub fn buckets(&self, granularity: Granularity) -> Vec<Self> {
        let mut out = Vec::new();
        let mut at = self.first;
        while at < self.end {
            let bucket = Self::bucket_of(at, granularity);
            let end = bucket.end.min(self.end);
            out.push(Self { first: at, end });
            at = end;
        }
        out
    }

    /// The bucket's label: `2025-03-30`, `2025-03` or `2025`, by the
    /// granularity it was cut at.
    #[must_use]
    pub fn label(&self, granularity: Granularity) -> String {
        match granularity {
            Granularity::Day => self.first.to_string(),
            Granularity::Month => format!("{:04}-{:02}", self.first.year(), self.first.month()),
            Granularity::Year => format!("{:04}", self.first.year()),
        }
    }

    /// The period's meter intervals of `step` in `zone`: from the first
    /// day's local midnight to the end day's, 23- and 25-hour days included.
    ///
    /// # Errors
    /// A step that does not divide the period (an engine grid error).
    pub fn intervals(&self, zone: &TimeZone, step: SignedDuration) -> Result<TimeGrid, ContractError> {
        let start = local_midnight(self.first, zone)?;
        let end = local_midnight(self.end, zone)?;
        let seconds = start.duration_until(&end).as_secs();
        let step_seconds = step.as_secs().max(1);
        if seconds % step_seconds != 0 {
            return Err(ContractError::invalid("interval", format!("{step} does not divide {self}")));
        }
        let len = usize::try_from(seconds / step_seconds).unwrap_or(0);
        TimeGrid::new(start, step, len).map_err(|e| ContractError::invalid("interval", e.to_string()))
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} to {}", self.first, self.last())
    }
}

fn next_day(date: Date) -> Date {
    date.tomorrow().unwrap_or(Date::MAX)
}

/// The first instant of `date` in `zone` (a midnight that a clock change
/// skips becomes the first instant after the gap).
///
/// # Errors
/// A date beyond what the zone can represent.
pub fn local_midnight(date: Date, zone: &TimeZone) -> Result<jiff::ZonedDateTime, ContractError> {
    date.to_zoned_datetime(zone.clone()).map_err(|e| ContractError::invalid("date", e.to_string()))
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;

    #[test]
    fn a_month_is_cut_into_its_days_and_labelled() {
        let march = Period::month_of(date(2025, 3, 17));
        assert_eq!(march.first(), date(2025, 3, 1));
        assert_eq!(march.last(), date(2025, 3, 31));
        assert_eq!(march.buckets(Granularity::Day).len(), 31);
        assert_eq!(march.label(Granularity::Month), "2025-03");
        let leap = Period::month_of(date(2024, 2, 1));
        assert_eq!(leap.len_days(), 29);
        let span = Period::new(date(2024, 12, 30), date(2025, 2, 3)).expect("period");
        let months: Vec<String> = span.buckets(Granularity::Month).iter().map(|b| b.to_string()).collect();
        assert_eq!(months, ["2024-12-30 to 2024-12-31", "2025-01-01 to 2025-01-31", "2025-02-01 to 2025-02-02"]);
        assert!(Period::new(date(2025, 1, 2), date(2025, 1, 2)).is_err());
    }

    #[test]
    fn dst_days_have_the_intervals_a_meter_records() {
        let berlin = TimeZone::get("Europe/Berlin").expect("zone");
        let quarter = SignedDuration::from_mins(15);
        assert_eq!(Period::day(date(2025, 3, 30)).intervals(&berlin, quarter).expect("grid").len(), 92);
        assert_eq!(Period::day(date(2025, 10, 26)).intervals(&berlin, quarter).expect("grid").len(), 100);
        assert_eq!(Period::day(date(2025, 6, 1)).intervals(&berlin, quarter).expect("grid").len(), 96);
        let year = Period::year_of(date(2025, 1, 1));
        assert_eq!(year.intervals(&berlin, quarter).expect("grid").len(), 365 * 96);
        let shanghai = TimeZone::get("Asia/Shanghai").expect("zone");
        assert_eq!(Period::year_of(date(2024, 5, 1)).intervals(&shanghai, quarter).expect("grid").len(), 366 * 96);
    }
}
