//! Meter readings with quality flags and revisions.
//!
//! Readings arrive in loads; each load has a revision number, higher than
//! every earlier load's. A correction is a reading of a later revision for
//! the same meter and interval: it takes effect, and the earlier value
//! stays, so anything computed "as of revision n" can be recomputed
//! exactly later.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::error::ContractError;
use crate::parties::{MeterId, MeteringPoint};
use crate::quantity::Energy;

/// How a reading was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quality {
    /// Read from the meter.
    Measured,
    /// Estimated by the meter operator (validation, edit and estimation).
    Estimated,
    /// Replaced by a substitute value (a check meter, a profile).
    Substituted,
    /// No value: counted as zero and flagged.
    Missing,
}

impl Quality {
    /// The flag's name as written in files.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Measured => "measured",
            Self::Estimated => "estimated",
            Self::Substituted => "substituted",
            Self::Missing => "missing",
        }
    }

    /// The flag from its name.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Measured, Self::Estimated, Self::Substituted, Self::Missing].into_iter().find(|q| q.name() == name)
    }
}

/// One interval's energy at a meter, as one load reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reading {
    /// The meter.
    pub meter: MeterId,
    /// The interval's start.
    pub start: Timestamp,
    /// The energy in the interval (in the meter's one direction, never negative).
    pub energy: Energy,
    /// How it was obtained.
    pub quality: Quality,
}

/// A reading in force: its value, flag and the revision it came with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revised {
    /// The energy.
    pub energy: Energy,
    /// Its flag.
    pub quality: Quality,
    /// The load it came with.
    pub revision: u64,
}

/// Checks that `reading` fits `meter`: the same meter, a start on the
/// meter's interval grid (counted from local midnight), no negative energy.
///
/// # Errors
/// [`ContractError::Invalid`] naming `start` or `energy`.
pub fn check(reading: &Reading, meter: &MeteringPoint) -> Result<(), ContractError> {
    check_in(reading, meter, &meter.zone()?)
}

/// [`check`] with the meter's zone already looked up (loads check many
/// readings of few meters).
///
/// # Errors
/// [`ContractError::Invalid`] naming `start` or `energy`.
pub fn check_in(reading: &Reading, meter: &MeteringPoint, zone: &jiff::tz::TimeZone) -> Result<(), ContractError> {
    if reading.energy < Energy::ZERO {
        return Err(ContractError::invalid("energy", format!("{} kWh is negative", reading.energy)));
    }
    let local = reading.start.to_zoned_datetime(zone.clone());
    let midnight = crate::calendar::local_midnight(local.date(), zone)?;
    let offset = midnight.duration_until(&local).as_secs();
    let step = meter.interval().as_secs();
    if offset % step != 0 {
        return Err(ContractError::invalid(
            "start",
            format!("{} is not on meter {}'s {}-minute grid", reading.start, meter.id, meter.interval_minutes),
        ));
    }
    Ok(())
}

/// Every revision of every reading, by meter and interval.
#[derive(Debug, Clone, Default)]
pub struct ReadingLog {
    by_meter: BTreeMap<MeterId, BTreeMap<Timestamp, Vec<Revised>>>,
    latest_revision: u64,
}

impl ReadingLog {
    /// An empty log.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The highest revision loaded.
    #[must_use]
    pub fn latest_revision(&self) -> u64 {
        self.latest_revision
    }

    /// Adds a load of `readings` as revision `revision`: all of it or, on
    /// the first bad reading, none of it.
    ///
    /// # Errors
    /// A revision not above every earlier one, or a reading repeated within
    /// the load (its position named).
    pub fn load(&mut self, revision: u64, readings: &[Reading]) -> Result<(), ContractError> {
        if revision <= self.latest_revision {
            return Err(ContractError::invalid(
                "revision",
                format!("{revision} is not after the latest load, {}", self.latest_revision),
            ));
        }
        let mut seen = std::collections::HashSet::with_capacity(readings.len());
        for (i, reading) in readings.iter().enumerate() {
            if !seen.insert((&reading.meter, reading.start)) {
                return Err(ContractError::invalid(
                    format!("readings[{i}]"),
                    format!("meter {} at {} is already in this load", reading.meter, reading.start),
                ));
            }
        }
        for reading in readings {
            let revised = Revised { energy: reading.energy, quality: reading.quality, revision };
            self.by_meter.entry(reading.meter.clone()).or_default().entry(reading.start).or_default().push(revised);
        }
        self.latest_revision = revision;
        Ok(())
    }

    /// The reading in force at `meter` for the interval starting at `start`,
    /// as of revision `as_of` (the latest revision when `None`).
    #[must_use]
    pub fn at(&self, meter: &MeterId, start: Timestamp, as_of: Option<u64>) -> Option<Revised> {
        let revisions = self.by_meter.get(meter)?.get(&start)?;
        let limit = as_of.unwrap_or(u64::MAX);
        revisions.iter().rev().find(|r| r.revision <= limit).copied()
    }

    /// Every revision of one interval, oldest first.
    #[must_use]
    pub fn history(&self, meter: &MeterId, start: Timestamp) -> &[Revised] {
        self.by_meter.get(meter).and_then(|m| m.get(&start)).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parties::{Location, PartyId, Technology};
    use crate::testing::id;

    fn meter() -> MeteringPoint {
        MeteringPoint {
            id: id("m1"),
            party: PartyId::new("p").expect("id"),
            interval_minutes: 60,
            time_zone: "Asia/Kathmandu".into(),
            location: Location::Zone("z".into()),
            technology: Technology::Load,
        }
    }

    fn reading(start: &str, kwh: i64) -> Reading {
        Reading {
            meter: id("m1"),
            start: start.parse().expect("instant"),
            energy: Energy::from_kwh(kwh),
            quality: Quality::Measured,
        }
    }

    #[test]
    fn the_grid_is_counted_from_local_midnight() {
        // Kathmandu is UTC+05:45: its hours start at :00 local, :15 UTC.
        assert!(check(&reading("2025-01-01T18:15:00Z", 1), &meter()).is_ok());
        let error = check(&reading("2025-01-01T18:00:00Z", 1), &meter()).expect_err("off the grid");
        assert!(error.to_string().starts_with("start"), "{error}");
        assert!(
            check(&reading("2025-01-01T18:15:00Z", -1), &meter()).expect_err("neg").to_string().starts_with("energy")
        );
    }

    #[test]
    fn corrections_supersede_and_history_stays() {
        let mut log = ReadingLog::new();
        log.load(1, &[reading("2025-01-01T00:00:00Z", 5), reading("2025-01-01T00:15:00Z", 6)]).expect("load 1");
        log.load(2, &[reading("2025-01-01T00:00:00Z", 7)]).expect("load 2");
        let at = "2025-01-01T00:00:00Z".parse().expect("instant");
        assert_eq!(log.at(&id("m1"), at, None).map(|r| r.energy), Some(Energy::from_kwh(7)));
        assert_eq!(log.at(&id("m1"), at, Some(1)).map(|r| r.energy), Some(Energy::from_kwh(5)));
        assert_eq!(log.history(&id("m1"), at).len(), 2);
        // A load that repeats a reading is refused whole.
        let error = log.load(3, &[reading("2025-01-02T00:00:00Z", 1), reading("2025-01-02T00:00:00Z", 2)]);
        assert!(error.expect_err("repeated").to_string().starts_with("readings[1]"));
        assert_eq!(log.latest_revision(), 2);
        assert!(log.at(&id("m1"), "2025-01-02T00:00:00Z".parse().expect("instant"), None).is_none());
        assert!(log.load(2, &[]).is_err(), "revisions only rise");
    }
}
