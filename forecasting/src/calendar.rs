//! Holidays: a built-in country table, dates given inline, or (local front
//! doors only) a file the user provides.
//!
//! Built-in tables (computed for any year from their rules):
//!
//! | code | holidays |
//! |---|---|
//! | `AU-VIC` | New Year's Day, Australia Day, Labour Day (2nd Monday of March), Good Friday, Easter Saturday, Easter Monday, Anzac Day, the Sovereign's Birthday (2nd Monday of June), Melbourne Cup (1st Tuesday of November), Christmas and Boxing Day; a New Year's, Australia or Christmas Day on a weekend moves to the next weekday (Easter Sunday from 2016 and the AFL Grand Final Friday from 2015 are not included) |
//! | `DE` | national holidays: New Year's Day, Good Friday, Easter Monday, Labour Day, Ascension, Whit Monday, German Unity Day, Christmas Day and St Stephen's Day |
//! | `US` | federal holidays: New Year's Day, Martin Luther King Jr. Day, Washington's Birthday, Memorial Day, Juneteenth (from 2021), Independence Day, Labor Day, Columbus Day, Veterans Day, Thanksgiving, Christmas; on a Saturday observed the Friday before, on a Sunday the Monday after |

use std::collections::BTreeSet;
use std::path::Path;

use jiff::ToSpan;
use jiff::civil::{Date, Weekday, date};
use serde::{Deserialize, Serialize};

use crate::error::{ForecastError, Result};

/// A set of holiday dates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holidays {
    /// Where the dates come from (`AU-VIC`, a file name, `none`).
    pub source: String,
    dates: BTreeSet<Date>,
}

/// The codes of the built-in tables.
pub const BUILTIN: [&str; 3] = ["AU-VIC", "DE", "US"];

impl Holidays {
    /// No holidays.
    #[must_use]
    pub fn none() -> Self {
        Self { source: "none".into(), dates: BTreeSet::new() }
    }

    /// A built-in country table for the years `from..=to`.
    ///
    /// # Errors
    /// For an unknown code.
    pub fn builtin(code: &str, from: i16, to: i16) -> Result<Self> {
        let rule: fn(i16) -> Vec<Date> = match code.to_ascii_uppercase().as_str() {
            "AU-VIC" => victoria,
            "DE" => germany,
            "US" => united_states,
            _ => {
                return Err(ForecastError::option(
                    "holidays",
                    format!(
                        "unknown calendar {:?}; built in: {}, or give the dates",
                        code.chars().take(32).collect::<String>(),
                        BUILTIN.join(", ")
                    ),
                ));
            }
        };
        let dates = (from..=to).flat_map(rule).collect();
        Ok(Self { source: code.to_ascii_uppercase(), dates })
    }

    /// Dates given inline, `YYYY-MM-DD` each (the service's way: a remote
    /// caller never names a file on the server).
    ///
    /// # Errors
    /// A malformed date, naming `holiday_dates[i]`.
    pub fn from_dates(dates: &[String]) -> Result<Self> {
        let mut set = BTreeSet::new();
        for (i, text) in dates.iter().enumerate() {
            let d: Date = text.trim().parse().map_err(|_| {
                let shown: String = text.chars().take(32).collect();
                ForecastError::option(format!("holiday_dates[{i}]"), format!("{shown:?} is not a YYYY-MM-DD date"))
            })?;
            set.insert(d);
        }
        Ok(Self { source: format!("{} inline dates", set.len()), dates: set })
    }

    /// These dates and `other`'s.
    #[must_use]
    pub fn union(mut self, other: Self) -> Self {
        if self.dates.is_empty() {
            return other;
        }
        if !other.dates.is_empty() {
            self.source = format!("{} + {}", self.source, other.source);
            self.dates.extend(other.dates);
        }
        self
    }

    /// Dates from a text file: one `YYYY-MM-DD` per line, optionally
    /// followed by a comma and a name; `#` starts a comment; a first line
    /// `date,...` is a header.
    ///
    /// # Errors
    /// Unreadable files and malformed dates (with the line number).
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ForecastError::Read { path: path.to_owned(), reason: e.to_string() })?;
        let mut dates = BTreeSet::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            let first = line.split(',').next().unwrap_or("").trim();
            if first.is_empty() || (n == 0 && first.eq_ignore_ascii_case("date")) {
                continue;
            }
            let d: Date = first.parse().map_err(|_| ForecastError::Read {
                path: path.to_owned(),
                reason: format!("line {}: {first:?} is not a YYYY-MM-DD date", n + 1),
            })?;
            dates.insert(d);
        }
        Ok(Self { source: path.display().to_string(), dates })
    }

    /// Whether `d` is a holiday.
    #[must_use]
    pub fn contains(&self, d: Date) -> bool {
        self.dates.contains(&d)
    }

    /// Number of dates.
    #[must_use]
    pub fn len(&self) -> usize {
        self.dates.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.dates.is_empty()
    }
}

/// Easter Sunday (anonymous Gregorian algorithm).
#[must_use]
pub fn easter(year: i16) -> Date {
    let y = i32::from(year);
    let a = y % 19;
    let b = y / 100;
    let c = y % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    date(year, month as i8, day as i8)
}

fn shift(d: Date, days: i64) -> Date {
    d.checked_add(days.days()).unwrap_or(d)
}

/// The `n`-th (1-based) `weekday` of a month; `n = -1` for the last.
fn nth_weekday(year: i16, month: i8, weekday: Weekday, n: i8) -> Date {
    if n > 0 {
        let first = date(year, month, 1);
        let offset = i64::from((weekday.to_monday_zero_offset() - first.weekday().to_monday_zero_offset() + 7) % 7);
        shift(first, offset + 7 * i64::from(n - 1))
    } else {
        let last = date(year, month, 1).last_of_month();
        let back = i64::from((last.weekday().to_monday_zero_offset() - weekday.to_monday_zero_offset() + 7) % 7);
        shift(last, -back)
    }
}

/// Saturday or Sunday to the next Monday.
fn next_weekday(d: Date) -> Date {
    match d.weekday() {
        Weekday::Saturday => shift(d, 2),
        Weekday::Sunday => shift(d, 1),
        Weekday::Monday | Weekday::Tuesday | Weekday::Wednesday | Weekday::Thursday | Weekday::Friday => d,
    }
}

fn victoria(year: i16) -> Vec<Date> {
    let e = easter(year);
    let christmas = date(year, 12, 25);
    let boxing = date(year, 12, 26);
    // Christmas on Saturday: Monday 27th and Tuesday 28th; on Sunday: Boxing
    // Day Monday 26th and Christmas Tuesday 27th.
    let (xmas, box_day) = match christmas.weekday() {
        Weekday::Saturday => (shift(christmas, 2), shift(christmas, 3)),
        Weekday::Sunday => (boxing, shift(christmas, 2)),
        Weekday::Friday => (christmas, shift(christmas, 3)),
        Weekday::Monday | Weekday::Tuesday | Weekday::Wednesday | Weekday::Thursday => (christmas, boxing),
    };
    vec![
        next_weekday(date(year, 1, 1)),
        next_weekday(date(year, 1, 26)),
        nth_weekday(year, 3, Weekday::Monday, 2),
        shift(e, -2),
        shift(e, -1),
        shift(e, 1),
        date(year, 4, 25),
        nth_weekday(year, 6, Weekday::Monday, 2),
        nth_weekday(year, 11, Weekday::Tuesday, 1),
        xmas,
        box_day,
    ]
}

fn germany(year: i16) -> Vec<Date> {
    let e = easter(year);
    vec![
        date(year, 1, 1),
        shift(e, -2),
        shift(e, 1),
        date(year, 5, 1),
        shift(e, 39),
        shift(e, 50),
        date(year, 10, 3),
        date(year, 12, 25),
        date(year, 12, 26),
    ]
}

fn united_states(year: i16) -> Vec<Date> {
    let observed = |d: Date| match d.weekday() {
        Weekday::Saturday => shift(d, -1),
        Weekday::Sunday => shift(d, 1),
        Weekday::Monday | Weekday::Tuesday | Weekday::Wednesday | Weekday::Thursday | Weekday::Friday => d,
    };
    let mut out = vec![
        observed(date(year, 1, 1)),
        nth_weekday(year, 1, Weekday::Monday, 3),
        nth_weekday(year, 2, Weekday::Monday, 3),
        nth_weekday(year, 5, Weekday::Monday, -1),
        observed(date(year, 7, 4)),
        nth_weekday(year, 9, Weekday::Monday, 1),
        nth_weekday(year, 10, Weekday::Monday, 2),
        observed(date(year, 11, 11)),
        nth_weekday(year, 11, Weekday::Thursday, 4),
        observed(date(year, 12, 25)),
    ];
    if year >= 2021 {
        out.push(observed(date(year, 6, 19)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn easter_dates() {
        assert_eq!(easter(2014), date(2014, 4, 20));
        assert_eq!(easter(2019), date(2019, 4, 21));
        assert_eq!(easter(2024), date(2024, 3, 31));
    }

    #[test]
    fn victoria_2014_matches_the_gazette() {
        let h = Holidays::builtin("au-vic", 2014, 2014).expect("table");
        let expected = [
            date(2014, 1, 1),
            date(2014, 1, 27),
            date(2014, 3, 10),
            date(2014, 4, 18),
            date(2014, 4, 19),
            date(2014, 4, 21),
            date(2014, 4, 25),
            date(2014, 6, 9),
            date(2014, 11, 4),
            date(2014, 12, 25),
            date(2014, 12, 26),
        ];
        assert_eq!(h.len(), expected.len());
        for d in expected {
            assert!(h.contains(d), "{d}");
        }
    }

    #[test]
    fn us_thanksgiving_and_memorial_day() {
        let h = Holidays::builtin("US", 2024, 2024).expect("table");
        assert!(h.contains(date(2024, 11, 28)) && h.contains(date(2024, 5, 27)));
    }

    #[test]
    fn unknown_country_is_named() {
        let err = Holidays::builtin("XX", 2014, 2014).expect_err("unknown");
        assert!(err.to_string().contains("\"XX\""), "{err}");
    }

    #[test]
    fn file_of_dates() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("h.csv");
        std::fs::write(&path, "date,name\n2014-11-04,Cup day\n# comment\n\n2014-12-25\n").expect("write");
        let h = Holidays::from_file(&path).expect("read");
        assert_eq!(h.len(), 2);
        std::fs::write(&path, "2014-13-01\n").expect("write");
        let err = Holidays::from_file(&path).expect_err("bad");
        assert!(err.to_string().contains("line 1"), "{err}");
    }
}
