//! Time-of-use tables as data: named periods with prices, the rules that
//! say which period applies at a local time (season, weekdays, a window
//! that may wrap midnight), and consumption tiers.
//!
//! A window that wraps midnight (22:00 to 06:00) belongs to the day it
//! starts on: Friday's 22:00 to 06:00 covers Saturday 03:00. A table is
//! checked to cover every minute of every kind of day exactly once, so a
//! lookup never falls through and no two rules disagree.

use jiff::civil::{Date, DateTime, Time, Weekday};
use serde::{Deserialize, Serialize};

use crate::error::ContractError;
use crate::quantity::{Energy, Price};

/// A named period and its price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TouPeriod {
    /// `peak`, `shoulder`, `off_peak`, ...
    pub name: String,
    /// Its energy price per kWh.
    pub price: Price,
}

/// When a period applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TouRule {
    /// The months (1 to 12) of its season.
    pub months: Vec<i8>,
    /// The weekdays it applies on (`monday` ... `sunday`).
    pub weekdays: Vec<DayName>,
    /// The window's local start.
    pub from: Time,
    /// The window's local end, exclusive; at or before `from`, the window
    /// wraps midnight (`00:00` to `00:00` is the whole day).
    pub to: Time,
    /// The period's name.
    pub period: String,
}

/// A weekday, spelled out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[expect(missing_docs, reason = "the days of the week")]
pub enum DayName {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl From<Weekday> for DayName {
    fn from(day: Weekday) -> Self {
        match day {
            Weekday::Monday => Self::Monday,
            Weekday::Tuesday => Self::Tuesday,
            Weekday::Wednesday => Self::Wednesday,
            Weekday::Thursday => Self::Thursday,
            Weekday::Friday => Self::Friday,
            Weekday::Saturday => Self::Saturday,
            Weekday::Sunday => Self::Sunday,
        }
    }
}

/// A consumption tier: energy beyond `above` in a calendar month costs
/// `adder` more per kWh (on top of its period's price).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// The month's energy after which the tier starts.
    pub above: Energy,
    /// What each kWh in the tier costs more.
    pub adder: Price,
}

/// A time-of-use table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TouTable {
    /// The periods and their prices.
    pub periods: Vec<TouPeriod>,
    /// Which period applies when.
    pub rules: Vec<TouRule>,
    /// Monthly consumption tiers, by increasing threshold (none: one price).
    #[serde(default)]
    pub tiers: Vec<Tier>,
}

impl TouRule {
    /// Whether the rule's window, started on `day`, covers `minute` of
    /// `day` itself (`own`) or of the day after (`!own`).
    fn covers(&self, day: Date, minute: i32, own: bool) -> bool {
        if !self.months.contains(&day.month()) || !self.weekdays.contains(&DayName::from(day.weekday())) {
            return false;
        }
        let (from, to) = (minute_of(self.from), minute_of(self.to));
        let wraps = to <= from;
        match (own, wraps) {
            (true, false) => from <= minute && minute < to,
            (true, true) => from <= minute,
            (false, true) => minute < to,
            (false, false) => false,
        }
    }
}

fn minute_of(time: Time) -> i32 {
    i32::from(time.hour()) * 60 + i32::from(time.minute())
}

impl TouTable {
    /// The period index in force at local time `at`.
    #[must_use]
    pub fn period_at(&self, at: DateTime) -> Option<usize> {
        let day = at.date();
        let minute = minute_of(at.time());
        let yesterday = day.yesterday().ok();
        let rule = self
            .rules
            .iter()
            .find(|r| r.covers(day, minute, true) || yesterday.is_some_and(|y| r.covers(y, minute, false)))?;
        self.periods.iter().position(|p| p.name == rule.period)
    }

    /// The name of period `index`.
    #[must_use]
    pub fn period_name(&self, index: usize) -> &str {
        self.periods.get(index).map_or("", |p| p.name.as_str())
    }

    /// Checks names, months, weekdays, tiers, and that every minute of
    /// every kind of day (each month and weekday, after any kind of day
    /// before it) is covered by exactly one rule.
    ///
    /// # Errors
    /// [`ContractError::Invalid`] with the field's path under `tou`.
    pub fn check(&self) -> Result<(), ContractError> {
        crate::at_most("periods", self.periods.len(), crate::bounds::TOU_PERIODS)?;
        crate::at_most("rules", self.rules.len(), crate::bounds::TOU_RULES)?;
        crate::at_most("tiers", self.tiers.len(), crate::bounds::TIERS)?;
        if self.periods.is_empty() {
            return Err(ContractError::invalid("periods", "a table needs at least one period"));
        }
        for (i, period) in self.periods.iter().enumerate() {
            if period.name.is_empty() || self.periods[..i].iter().any(|p| p.name == period.name) {
                return Err(ContractError::invalid(format!("periods[{i}].name"), "empty or repeated"));
            }
        }
        for (i, rule) in self.rules.iter().enumerate() {
            if !self.periods.iter().any(|p| p.name == rule.period) {
                return Err(ContractError::invalid(
                    format!("rules[{i}].period"),
                    format!("no period {:?}", rule.period),
                ));
            }
            if rule.months.is_empty() || rule.months.len() > 12 || rule.months.iter().any(|m| !(1..=12).contains(m)) {
                return Err(ContractError::invalid(format!("rules[{i}].months"), "give months from 1 to 12"));
            }
            if rule.weekdays.is_empty() || rule.weekdays.len() > 7 {
                return Err(ContractError::invalid(format!("rules[{i}].weekdays"), "give one to seven weekdays"));
            }
            if rule.from.second() != 0 || rule.to.second() != 0 || rule.from.subsec_nanosecond() != 0 {
                return Err(ContractError::invalid(format!("rules[{i}]"), "windows start and end on whole minutes"));
            }
        }
        for (i, tier) in self.tiers.iter().enumerate() {
            if tier.above < Energy::ZERO || (i > 0 && tier.above <= self.tiers[i - 1].above) {
                return Err(ContractError::invalid(format!("tiers[{i}].above"), "thresholds rise from zero"));
            }
        }
        self.check_coverage()
    }

    /// Every minute of every kind of day covered exactly once. Coverage
    /// only changes at the rules' window bounds, so one minute per stretch
    /// between bounds stands for the stretch; and a day's coverage depends
    /// only on its month and weekday and on the day before's, so the days
    /// of 2024 (a leap year whose months hold every weekday) and 2023's last
    /// day stand for every year.
    fn check_coverage(&self) -> Result<(), ContractError> {
        let mut bounds: Vec<i32> = self.rules.iter().flat_map(|r| [minute_of(r.from), minute_of(r.to)]).collect();
        bounds.push(0);
        bounds.sort_unstable();
        bounds.dedup();
        let first = jiff::civil::date(2023, 12, 31);
        let days = std::iter::successors(Some(first), |d| d.tomorrow().ok()).take_while(|d| d.year() <= 2024);
        let mut seen = std::collections::HashSet::new();
        for day in days {
            let yesterday = day.yesterday().ok();
            let kind = (day.month(), day.weekday(), yesterday.map(|y| (y.month(), y.weekday())));
            if !seen.insert(kind) {
                continue;
            }
            for &minute in &bounds {
                let matching: Vec<usize> = (0..self.rules.len())
                    .filter(|&i| {
                        let rule = &self.rules[i];
                        rule.covers(day, minute, true) || yesterday.is_some_and(|y| rule.covers(y, minute, false))
                    })
                    .collect();
                let when =
                    || format!("{:?} in month {} at {:02}:{:02}", day.weekday(), day.month(), minute / 60, minute % 60);
                match matching.as_slice() {
                    [_] => {}
                    [] => return Err(ContractError::invalid("rules", format!("no rule covers {}", when()))),
                    [a, b, ..] => {
                        return Err(ContractError::invalid(
                            "rules",
                            format!("rules {a} and {b} both cover {}", when()),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// What `energy` costs beyond the period price when the month had
    /// already used `before`: each kWh pays the adder of the tier it falls in.
    #[must_use]
    pub fn tier_surcharge(&self, before: Energy, energy: Energy) -> rust_decimal::Decimal {
        let mut surcharge = rust_decimal::Decimal::ZERO;
        if energy <= Energy::ZERO {
            return surcharge;
        }
        let end = before + energy;
        for (i, tier) in self.tiers.iter().enumerate() {
            let upper = self.tiers.get(i + 1).map(|t| t.above);
            let low = tier.above.max(before);
            let high = upper.map_or(end, |u| u.min(end));
            if high > low {
                surcharge += (high - low).at(tier.adder);
            }
        }
        surcharge
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr as _;

    use jiff::civil::{date, time};
    use rust_decimal::Decimal;

    use super::*;

    const WORKDAYS: [DayName; 5] =
        [DayName::Monday, DayName::Tuesday, DayName::Wednesday, DayName::Thursday, DayName::Friday];
    const WEEKEND: [DayName; 2] = [DayName::Saturday, DayName::Sunday];

    fn price(text: &str) -> Price {
        Price::from_str(text).expect("price")
    }

    fn rule(months: &[i8], days: &[DayName], from: Time, to: Time, period: &str) -> TouRule {
        TouRule { months: months.to_vec(), weekdays: days.to_vec(), from, to, period: period.into() }
    }

    /// Workdays: peak 08:00-22:00, off-peak 22:00-08:00 (wrapping); weekends off-peak.
    fn table() -> TouTable {
        let all: Vec<i8> = (1..=12).collect();
        TouTable {
            periods: vec![
                TouPeriod { name: "peak".into(), price: price("0.30") },
                TouPeriod { name: "off_peak".into(), price: price("0.10") },
            ],
            rules: vec![
                rule(&all, &WORKDAYS, time(8, 0, 0, 0), time(22, 0, 0, 0), "peak"),
                rule(&all, &WORKDAYS[..4], time(22, 0, 0, 0), time(8, 0, 0, 0), "off_peak"),
                // Friday night runs into the weekend's all-day rule.
                rule(&all, &[DayName::Friday], time(22, 0, 0, 0), time(0, 0, 0, 0), "off_peak"),
                rule(&all, &[DayName::Sunday], time(0, 0, 0, 0), time(8, 0, 0, 0), "off_peak"),
                rule(&all, &[DayName::Saturday], time(0, 0, 0, 0), time(0, 0, 0, 0), "off_peak"),
                rule(&all, &[DayName::Sunday], time(8, 0, 0, 0), time(0, 0, 0, 0), "off_peak"),
                rule(&all, &[DayName::Monday], time(0, 0, 0, 0), time(8, 0, 0, 0), "off_peak"),
            ],
            tiers: vec![],
        }
    }

    #[test]
    fn a_window_that_wraps_midnight_belongs_to_the_day_it_starts() {
        let mut t = table();
        assert!(t.check().is_ok(), "{:?}", t.check());
        let at = |d: Date, h: i8| d.at(h, 0, 0, 0);
        let tuesday = date(2025, 3, 4);
        assert_eq!(t.period_name(t.period_at(at(tuesday, 9)).expect("covered")), "peak");
        assert_eq!(t.period_name(t.period_at(at(tuesday, 23)).expect("covered")), "off_peak");
        // Wednesday 03:00 is Tuesday night's window.
        assert_eq!(t.period_name(t.period_at(at(date(2025, 3, 5), 3)).expect("covered")), "off_peak");
        // A gap is named.
        t.rules.remove(1);
        let error = t.check().expect_err("a gap").to_string();
        assert!(error.contains("no rule covers") && error.contains("22:00"), "{error}");
    }

    #[test]
    fn overlaps_and_bad_fields_are_named() {
        let mut t = table();
        t.rules.push(rule(&[6], &WEEKEND, time(12, 0, 0, 0), time(13, 0, 0, 0), "peak"));
        let error = t.check().expect_err("overlap").to_string();
        assert!(error.contains("both cover"), "{error}");
        let mut t = table();
        t.rules[0].period = "super_peak".into();
        assert_eq!(t.check().expect_err("name"), ContractError::invalid("rules[0].period", "no period \"super_peak\""));
        let mut t = table();
        t.rules[0].months.push(13);
        assert!(t.check().expect_err("month").to_string().starts_with("rules[0].months"));
    }

    #[test]
    fn long_tables_are_refused_before_the_coverage_check() {
        let mut t = table();
        let rule = t.rules[0].clone();
        t.rules = vec![rule; 100_000];
        assert_eq!(t.check(), Err(ContractError::invalid("rules", "100000 entries; at most 256")));
        let mut t = table();
        t.rules[0].weekdays = vec![DayName::Monday; 8];
        assert!(t.check().expect_err("8 weekdays").to_string().starts_with("rules[0].weekdays"));
    }

    #[test]
    fn tiers_price_each_kwh_in_the_band_it_falls_in() {
        let mut t = table();
        t.tiers = vec![
            Tier { above: Energy::from_kwh(100), adder: price("0.05") },
            Tier { above: Energy::from_kwh(200), adder: price("0.10") },
        ];
        assert!(t.check().is_ok());
        // 90 kWh used; 150 more: 10 untiered, 100 at +0.05, 40 at +0.10.
        let surcharge = t.tier_surcharge(Energy::from_kwh(90), Energy::from_kwh(150));
        assert_eq!(surcharge, Decimal::from_str("9.00").expect("decimal"));
        assert_eq!(t.tier_surcharge(Energy::ZERO, Energy::from_kwh(100)), Decimal::ZERO);
    }
}
