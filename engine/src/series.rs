//! Time series on a regular grid, and the one rule for reading timestamps.
//!
//! Every crate that reads measured or planned values over time (a case's
//! profiles, a forecaster's history, a market's delivery intervals) reads
//! its timestamps here, so a file that one of them accepts the others accept
//! too, with the same instants.
//!
//! # The DST policy
//! A timestamp with an offset (`2024-10-27T02:30+01:00`, `...Z`) or a zone
//! (`2024-10-27T02:30+01:00[Europe/Berlin]`) is an instant and is taken as
//! it is. A wall-clock time without one (`2024-10-27 02:30`) is placed in the
//! series' time zone:
//! - a time that exists once is that instant;
//! - a time repeated when clocks go back is read at the earlier offset the
//!   first time and at the later offset when it comes again (a meter's file
//!   lists the fall-back hour twice, in order);
//! - a time skipped when clocks go forward is an error that names it: no
//!   meter can have recorded it, so a file that holds it is wrong or is in
//!   another zone.

use std::collections::HashMap;

use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, Disambiguation, TimeZone};
use jiff::{Timestamp, ZonedDateTime};

use crate::TimeGrid;

/// Places wall-clock times in a zone, in the order they are read, by the
/// module's DST policy.
#[derive(Debug)]
pub struct LocalTimes<'a> {
    tz: &'a TimeZone,
    last: Option<Timestamp>,
}

impl<'a> LocalTimes<'a> {
    /// A reader of local times in `tz` that has seen nothing yet.
    #[must_use]
    pub fn new(tz: &'a TimeZone) -> Self {
        Self { tz, last: None }
    }

    /// The instant of the wall-clock time `dt`, the next one read.
    ///
    /// # Errors
    /// A time skipped by a DST change, named with its zone.
    pub fn place(&mut self, dt: DateTime) -> Result<Timestamp, String> {
        let ambiguous = self.tz.to_ambiguous_timestamp(dt);
        let pick = |d: Disambiguation| ambiguous.disambiguate(d).map_err(|e| e.to_string());
        let ts = match ambiguous.offset() {
            AmbiguousOffset::Unambiguous { .. } => pick(Disambiguation::Compatible)?,
            AmbiguousOffset::Fold { .. } => {
                let early = pick(Disambiguation::Earlier)?;
                if self.last.is_some_and(|last| early <= last) { pick(Disambiguation::Later)? } else { early }
            }
            AmbiguousOffset::Gap { .. } => {
                return Err(format!(
                    "{dt} does not exist in {} (clocks jump forward); give an offset, or drop the row",
                    self.tz.iana_name().unwrap_or("the zone")
                ));
            }
        };
        self.last = Some(ts);
        Ok(ts)
    }

    /// Reads `text` as the next timestamp: RFC 3339 with an offset or `Z`,
    /// a zoned date-time (`...[Europe/Berlin]`), or a local
    /// `YYYY-MM-DD[T| ]HH:MM[:SS]` placed by [`LocalTimes::place`].
    ///
    /// # Errors
    /// Text that is no timestamp, or a skipped local time.
    pub fn parse(&mut self, text: &str) -> Result<Timestamp, String> {
        let text = text.trim();
        if let Ok(ts) = text.parse::<Timestamp>() {
            self.last = Some(ts);
            return Ok(ts);
        }
        if let Ok(zoned) = text.parse::<ZonedDateTime>() {
            self.last = Some(zoned.timestamp());
            return Ok(zoned.timestamp());
        }
        match text.replacen(' ', "T", 1).parse::<DateTime>() {
            Ok(dt) => self.place(dt),
            Err(_) => Err(format!(
                "cannot read {text:?} as a timestamp (expected RFC 3339, e.g. 2014-01-01T00:30:00+10:00, or YYYY-MM-DD HH:MM)"
            )),
        }
    }
}

/// Why rows could not be placed on a grid.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AlignError {
    /// The rows and the values differ in number.
    #[error("{times} timestamps for {values} values")]
    Lengths {
        /// Number of timestamps.
        times: usize,
        /// Number of values.
        values: usize,
    },
    /// Two rows give the same instant different values.
    #[error("rows {first} and {second} both give {at} but different values ({a} and {b})")]
    Conflict {
        /// The instant, in RFC 3339 with the grid's offset.
        at: String,
        /// The first row (0-based position in the input).
        first: usize,
        /// The second row.
        second: usize,
        /// The first value.
        a: f64,
        /// The second value.
        b: f64,
    },
    /// Steps of the grid that no row covers.
    #[error("the file has no row for {first_at} (step {first}); {count} of {steps} steps are missing")]
    Missing {
        /// The first missing step.
        first: usize,
        /// Its start, in RFC 3339 with the grid's offset.
        first_at: String,
        /// How many steps are missing.
        count: usize,
        /// The grid's length.
        steps: usize,
    },
}

/// One column of values on a regular [`TimeGrid`]: a load, a PV profile, a
/// price. NaN marks a missing value; what a missing value means is the
/// reader's business (a case refuses it, a forecaster fills short gaps).
#[derive(Debug, Clone, PartialEq)]
pub struct TimeSeries {
    grid: TimeGrid,
    values: Vec<f64>,
}

impl TimeSeries {
    /// A series of `values`, one per step of `grid`.
    ///
    /// # Errors
    /// [`AlignError::Lengths`] when the counts differ.
    pub fn new(grid: TimeGrid, values: Vec<f64>) -> Result<Self, AlignError> {
        if values.len() == grid.len() {
            Ok(Self { grid, values })
        } else {
            Err(AlignError::Lengths { times: grid.len(), values: values.len() })
        }
    }

    /// Places rows given by instant on `grid`: each step takes the value of
    /// the row that starts at its start; rows off the grid are ignored, so a
    /// file may cover more than the grid and list its rows in any order. A
    /// repeated row with the same value is harmless; with another value it
    /// is a conflict.
    ///
    /// # Errors
    /// Mismatched lengths, conflicting duplicates, or steps no row covers.
    pub fn align(grid: &TimeGrid, times: &[Timestamp], values: &[f64]) -> Result<Self, AlignError> {
        if times.len() != values.len() {
            return Err(AlignError::Lengths { times: times.len(), values: values.len() });
        }
        let mut by_time: HashMap<Timestamp, usize> = HashMap::with_capacity(times.len());
        for (row, t) in times.iter().enumerate() {
            if let Some(&first) = by_time.get(t) {
                let (a, b) = (values[first], values[row]);
                if a.to_bits() != b.to_bits() && !(a.is_nan() && b.is_nan()) {
                    let at = t.to_zoned_datetime(grid.time_zone().clone()).strftime("%Y-%m-%dT%H:%M%:z").to_string();
                    return Err(AlignError::Conflict { at, first, second: row, a, b });
                }
            } else {
                by_time.insert(*t, row);
            }
        }
        let mut out = Vec::with_capacity(grid.len());
        let mut missing = Vec::new();
        for (step, t) in grid.instants().enumerate() {
            match by_time.get(&t) {
                Some(&row) => out.push(values[row]),
                None => missing.push(step),
            }
        }
        match missing.first() {
            None => Ok(Self { grid: grid.clone(), values: out }),
            Some(&first) => Err(AlignError::Missing {
                first,
                first_at: grid.at(first).strftime("%Y-%m-%dT%H:%M%:z").to_string(),
                count: missing.len(),
                steps: grid.len(),
            }),
        }
    }

    /// The grid.
    #[must_use]
    pub fn grid(&self) -> &TimeGrid {
        &self.grid
    }

    /// The values, one per step.
    #[must_use]
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// The values, given up.
    #[must_use]
    pub fn into_values(self) -> Vec<f64> {
        self.values
    }

    /// The number of steps.
    #[must_use]
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Always false: a grid has at least one step.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The first `len` steps (at least one).
    #[must_use]
    pub fn head(&self, len: usize) -> Self {
        let grid = self.grid.window(0, len);
        let values = self.values[..grid.len()].to_vec();
        Self { grid, values }
    }
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;

    use super::*;
    use crate::time::GridLength;

    fn berlin() -> TimeZone {
        TimeZone::get("Europe/Berlin").expect("ok")
    }

    #[test]
    fn the_fall_back_hour_reads_twice_in_order() {
        let tz = berlin();
        let mut local = LocalTimes::new(&tz);
        let read: Vec<Timestamp> = ["2024-10-27 01:30", "2024-10-27 02:30", "2024-10-27T02:30", "2024-10-27 03:30"]
            .iter()
            .map(|t| local.parse(t).expect("ok"))
            .collect();
        let gaps: Vec<i64> = read.windows(2).map(|w| w[0].duration_until(w[1]).as_secs()).collect();
        assert_eq!(gaps, vec![3600, 3600, 3600]);
        assert_eq!(read[1].to_string(), "2024-10-27T00:30:00Z");
        assert_eq!(read[2].to_string(), "2024-10-27T01:30:00Z");
    }

    #[test]
    fn the_spring_forward_hour_is_refused_by_name() {
        let tz = berlin();
        let err = LocalTimes::new(&tz).parse("2024-03-31 02:30").expect_err("refused");
        assert!(err.contains("does not exist in Europe/Berlin"), "{err}");
    }

    #[test]
    fn instants_with_offsets_or_zones_are_taken_as_they_are() {
        let tz = berlin();
        let mut local = LocalTimes::new(&tz);
        let a = local.parse("2024-10-27T02:30+01:00").expect("ok");
        let b = local.parse("2024-10-27T02:30+01:00[Europe/Berlin]").expect("ok");
        let c = local.parse("2024-10-27T01:30:00Z").expect("ok");
        assert_eq!((a, b), (c, c));
        assert!(local.parse("yesterday").expect_err("refused").contains("cannot read \"yesterday\""));
    }

    #[test]
    fn align_places_rows_by_instant_and_names_what_is_wrong() {
        let grid = TimeGrid::parse("2024-10-27T00:00", "Europe/Berlin", "1h", &GridLength::Days(1)).expect("ok");
        assert_eq!(grid.len(), 25);
        let mut times: Vec<Timestamp> = grid.instants().collect();
        times.reverse();
        let values: Vec<f64> = (0..25).rev().map(f64::from).collect();
        let series = TimeSeries::align(&grid, &times, &values).expect("ok");
        assert_eq!(series.values()[3], 3.0);

        let mut dup_times = times.clone();
        dup_times.push(times[0]);
        let mut dup_values = values.clone();
        dup_values.push(values[0]);
        assert!(TimeSeries::align(&grid, &dup_times, &dup_values).is_ok());
        dup_values[25] += 1.0;
        let conflict = TimeSeries::align(&grid, &dup_times, &dup_values).expect_err("refused");
        assert!(matches!(conflict, AlignError::Conflict { first: 0, second: 25, .. }), "{conflict}");

        let missing = TimeSeries::align(&grid, &times[1..], &values[1..]).expect_err("refused");
        assert_eq!(
            missing.to_string(),
            "the file has no row for 2024-10-27T23:00+01:00 (step 24); 1 of 25 steps are missing"
        );
        let short = TimeSeries::new(grid.clone(), vec![1.0]).expect_err("refused");
        assert_eq!(short, AlignError::Lengths { times: 25, values: 1 });
        assert_eq!(series.head(3).grid().end().timestamp(), grid.instant(0) + SignedDuration::from_hours(3));
    }
}
