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
//!
//! That is the default [`DstPolicy`]. Meter data in local time often breaks
//! it (a row for the skipped hour, the repeated hour listed once), so a
//! reader may choose, as pandas' `tz_localize` offers: skipped times raised,
//! dropped or shifted forward by the gap ([`Nonexistent`]); repeated times
//! inferred from their order, raised, read at the first or the last offset,
//! or taken to stand for both instants ([`Ambiguous`]).

use std::collections::HashMap;

use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, Disambiguation, TimeZone};
use jiff::{Timestamp, ZonedDateTime};

use crate::TimeGrid;

/// What to do with a wall-clock time that a DST change skipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Nonexistent {
    /// Refuse it, naming the time (the default: no meter recorded it).
    #[default]
    Raise,
    /// Leave the row out.
    Drop,
    /// Move it to the first instant after the gap (02:30 on a night that
    /// jumps from 02:00 to 03:00 becomes 03:00), as pandas' `shift_forward`.
    ShiftForward,
}

/// What to do with a wall-clock time that a DST change repeats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ambiguous {
    /// The earlier offset the first time it is read, the later one when it
    /// comes again (the default: a meter lists the hour twice, in order).
    #[default]
    Infer,
    /// Refuse it, naming the time.
    Raise,
    /// Always the earlier offset (summer time).
    First,
    /// Always the later offset (standard time).
    Last,
    /// The row stands for both instants (a file that lists the repeated
    /// hour once, or twice to be averaged): the reader gives its value to
    /// each and averages the rows that land on one instant.
    Average,
}

/// How wall-clock times around DST changes are placed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DstPolicy {
    /// Skipped times.
    #[serde(default)]
    pub nonexistent: Nonexistent,
    /// Repeated times.
    #[serde(default)]
    pub ambiguous: Ambiguous,
}

/// Where a row's timestamp was placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placed {
    /// At one instant, as written.
    At(Timestamp),
    /// A skipped time moved forward by the gap.
    Shifted(Timestamp),
    /// A skipped time left out.
    Dropped,
    /// A repeated time that stands for both of its instants.
    Both(Timestamp, Timestamp),
}

/// Places wall-clock times in a zone, in the order they are read, by the
/// module's DST policy.
#[derive(Debug)]
pub struct LocalTimes<'a> {
    tz: &'a TimeZone,
    policy: DstPolicy,
    last: Option<Timestamp>,
}

impl<'a> LocalTimes<'a> {
    /// A reader of local times in `tz` that has seen nothing yet, with the
    /// default policy.
    #[must_use]
    pub fn new(tz: &'a TimeZone) -> Self {
        Self::with_policy(tz, DstPolicy::default())
    }

    /// A reader of local times in `tz` with `policy`.
    #[must_use]
    pub fn with_policy(tz: &'a TimeZone, policy: DstPolicy) -> Self {
        Self { tz, policy, last: None }
    }

    /// The instant of the wall-clock time `dt`, the next one read, under the
    /// default policy.
    ///
    /// # Errors
    /// A time skipped by a DST change, named with its zone; under another
    /// policy, a row the policy would drop or double.
    pub fn place(&mut self, dt: DateTime) -> Result<Timestamp, String> {
        match self.place_with_policy(dt)? {
            Placed::At(ts) | Placed::Shifted(ts) => Ok(ts),
            Placed::Dropped | Placed::Both(..) => Err(format!("{dt} is not one instant under this DST policy")),
        }
    }

    /// Where the wall-clock time `dt`, the next one read, goes under the
    /// reader's policy.
    ///
    /// # Errors
    /// A skipped or repeated time that the policy refuses, named with its zone.
    pub fn place_with_policy(&mut self, dt: DateTime) -> Result<Placed, String> {
        let zone = self.tz.iana_name().unwrap_or("the zone");
        let ambiguous = self.tz.to_ambiguous_timestamp(dt);
        let pick = |d: Disambiguation| ambiguous.disambiguate(d).map_err(|e| e.to_string());
        let placed = match ambiguous.offset() {
            AmbiguousOffset::Unambiguous { .. } => Placed::At(pick(Disambiguation::Compatible)?),
            AmbiguousOffset::Fold { .. } => match self.policy.ambiguous {
                Ambiguous::Infer => {
                    let early = pick(Disambiguation::Earlier)?;
                    Placed::At(if self.last.is_some_and(|last| early <= last) {
                        pick(Disambiguation::Later)?
                    } else {
                        early
                    })
                }
                Ambiguous::Raise => {
                    return Err(format!(
                        "{dt} happens twice in {zone} (clocks go back); give an offset, or choose how repeated times are read"
                    ));
                }
                Ambiguous::First => Placed::At(pick(Disambiguation::Earlier)?),
                Ambiguous::Last => Placed::At(pick(Disambiguation::Later)?),
                Ambiguous::Average => Placed::Both(pick(Disambiguation::Earlier)?, pick(Disambiguation::Later)?),
            },
            AmbiguousOffset::Gap { .. } => match self.policy.nonexistent {
                Nonexistent::Raise => {
                    return Err(format!(
                        "{dt} does not exist in {zone} (clocks jump forward); give an offset, drop the row, or choose how skipped times are read"
                    ));
                }
                Nonexistent::Drop => Placed::Dropped,
                Nonexistent::ShiftForward => {
                    // Read in the offset after the gap, the time lies
                    // before the change; the change itself is the first
                    // instant after the gap (pandas' `shift_forward`).
                    let before = pick(Disambiguation::Earlier)?;
                    let change = self
                        .tz
                        .following(before)
                        .next()
                        .map(|t| t.timestamp())
                        .ok_or_else(|| format!("{dt}: no DST change found after it in {zone}"))?;
                    Placed::Shifted(change)
                }
            },
        };
        match placed {
            Placed::At(ts) | Placed::Shifted(ts) | Placed::Both(_, ts) => self.last = Some(ts),
            Placed::Dropped => {}
        }
        Ok(placed)
    }

    /// Reads `text` as the next timestamp under the default policy: RFC
    /// 3339 with an offset or `Z`, a zoned date-time (`...[Europe/Berlin]`),
    /// or a local `YYYY-MM-DD[T| ]HH:MM[:SS]` placed by [`LocalTimes::place`].
    ///
    /// # Errors
    /// Text that is no timestamp, or a skipped local time.
    pub fn parse(&mut self, text: &str) -> Result<Timestamp, String> {
        match self.parse_with_policy(text)? {
            Placed::At(ts) | Placed::Shifted(ts) => Ok(ts),
            Placed::Dropped | Placed::Both(..) => Err(format!("{text:?} is not one instant under this DST policy")),
        }
    }

    /// Reads `text` as the next timestamp: an instant as written, or a
    /// local time placed by the reader's policy.
    ///
    /// # Errors
    /// Text that is no timestamp, or a local time the policy refuses.
    pub fn parse_with_policy(&mut self, text: &str) -> Result<Placed, String> {
        let text = text.trim();
        if let Ok(ts) = text.parse::<Timestamp>() {
            self.last = Some(ts);
            return Ok(Placed::At(ts));
        }
        if let Ok(zoned) = text.parse::<ZonedDateTime>() {
            self.last = Some(zoned.timestamp());
            return Ok(Placed::At(zoned.timestamp()));
        }
        match text.replacen(' ', "T", 1).parse::<DateTime>() {
            Ok(dt) => self.place_with_policy(dt),
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
    fn skipped_times_are_dropped_or_moved_to_the_change_by_choice() {
        let tz = berlin();
        let policy = |nonexistent| DstPolicy { nonexistent, ..DstPolicy::default() };
        let mut drop = LocalTimes::with_policy(&tz, policy(Nonexistent::Drop));
        assert_eq!(drop.parse_with_policy("2024-03-31 02:30"), Ok(Placed::Dropped));
        let mut shift = LocalTimes::with_policy(&tz, policy(Nonexistent::ShiftForward));
        let change: Timestamp = "2024-03-31T01:00:00Z".parse().expect("ts");
        for text in ["2024-03-31 02:00", "2024-03-31 02:30", "2024-03-31 02:59:59"] {
            assert_eq!(shift.parse_with_policy(text), Ok(Placed::Shifted(change)), "{text}");
        }
        // Times that exist are untouched by either.
        let ts: Timestamp = "2024-03-31T01:30:00Z".parse().expect("ts");
        assert_eq!(shift.parse_with_policy("2024-03-31 03:30"), Ok(Placed::At(ts)));
    }

    #[test]
    fn repeated_times_follow_the_chosen_rule() {
        let tz = berlin();
        let summer: Timestamp = "2024-10-27T00:30:00Z".parse().expect("ts");
        let winter: Timestamp = "2024-10-27T01:30:00Z".parse().expect("ts");
        let read = |ambiguous| {
            let mut local = LocalTimes::with_policy(&tz, DstPolicy { ambiguous, ..DstPolicy::default() });
            [local.parse_with_policy("2024-10-27 02:30"), local.parse_with_policy("2024-10-27 02:30")]
        };
        assert_eq!(read(Ambiguous::Infer), [Ok(Placed::At(summer)), Ok(Placed::At(winter))]);
        assert_eq!(read(Ambiguous::First), [Ok(Placed::At(summer)), Ok(Placed::At(summer))]);
        assert_eq!(read(Ambiguous::Last), [Ok(Placed::At(winter)), Ok(Placed::At(winter))]);
        assert_eq!(read(Ambiguous::Average)[0], Ok(Placed::Both(summer, winter)));
        let [raised, _] = read(Ambiguous::Raise);
        assert!(raised.expect_err("raised").contains("happens twice in Europe/Berlin"));
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
