//! Property tests of the time grid: DST transitions and leap years.

use jiff::civil::date;
use jiff::tz::TimeZone;
use proptest::prelude::*;
use volta_engine::time::{GridLength, TimeGrid};

const ZONES: [&str; 6] =
    ["UTC", "Europe/Berlin", "America/New_York", "Australia/Melbourne", "Asia/Kolkata", "America/Sao_Paulo"];
const STEPS: [(&str, i64); 4] = [("15min", 15), ("30min", 30), ("1h", 60), ("2h", 120)];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// A grid of N local days ends at local midnight N days later, its
    /// steps are equally spaced in absolute time, and its length equals
    /// the elapsed time over the step, whatever the clocks did.
    #[test]
    fn days_end_at_local_midnight(
        zone in 0..ZONES.len(),
        step in 0..STEPS.len(),
        year in 1990i16..2040,
        day_of_year in 0i32..365,
        days in 1u32..40,
    ) {
        let tz = TimeZone::get(ZONES[zone]).expect("zone");
        let (step_text, step_min) = STEPS[step];
        let start_date = date(year, 1, 1).checked_add(jiff::Span::new().days(i64::from(day_of_year))).expect("date");
        let start = start_date.at(0, 0, 0, 0);
        // Zones with a DST change at midnight (Sao Paulo until 2019) may have
        // no local midnight on that day: such starts are refused, not guessed.
        let Ok(grid) = TimeGrid::parse(&start.to_string(), ZONES[zone], step_text, &GridLength::Days(days)) else {
            prop_assume!(false);
            unreachable!()
        };
        let end = grid.end();
        // N local days later, at midnight, or just after where a DST change
        // skips midnight (the "compatible" rule: Sao Paulo until 2019).
        let expected_date = start_date.checked_add(jiff::Span::new().days(i64::from(days))).expect("date");
        let expected_end = tz.to_zoned_datetime(expected_date.at(0, 0, 0, 0)).expect("zoned");
        prop_assert_eq!(end.timestamp(), expected_end.timestamp());
        let elapsed = grid.start().duration_until(&end);
        prop_assert_eq!(elapsed.as_mins(), grid.len() as i64 * step_min);
        for i in 1..grid.len() {
            prop_assert_eq!(grid.instant(i - 1).duration_until(grid.instant(i)).as_mins(), step_min);
        }
        let first = grid.at(0);
        prop_assert_eq!(first.time_zone().iana_name(), tz.iana_name());
    }

    /// Hourly grids over one local day have 23, 24 or 25 steps: the wall
    /// clock's hours less the offset change.
    #[test]
    fn local_day_lengths(zone in 0..ZONES.len(), year in 1990i16..2040, day_of_year in 0i32..365) {
        let day = date(year, 1, 1).checked_add(jiff::Span::new().days(i64::from(day_of_year))).expect("date");
        let Ok(grid) = TimeGrid::parse(&day.at(0, 0, 0, 0).to_string(), ZONES[zone], "1h", &GridLength::Days(1)) else {
            prop_assume!(false);
            unreachable!()
        };
        let (start, end) = (grid.start(), grid.end());
        let wall_clock = start.datetime().duration_until(end.datetime()).as_secs();
        let offset_change = i64::from(end.offset().seconds() - start.offset().seconds());
        prop_assert_eq!(grid.len() as i64 * 3600, wall_clock - offset_change);
        prop_assert!((23..=25).contains(&grid.len()));
    }
}

#[test]
fn leap_years_have_366_days() {
    for (year, expected) in [(2023, 365 * 24), (2024, 366 * 24), (2100, 365 * 24), (2000, 366 * 24)] {
        let grid = TimeGrid::parse(
            &format!("{year}-01-01T00:00"),
            "UTC",
            "1h",
            &GridLength::End(format!("{}-01-01T00:00", year + 1)),
        )
        .expect("grid");
        assert_eq!(grid.len(), expected, "{year}");
    }
    let feb = TimeGrid::parse("2024-02-28T00:00", "UTC", "1h", &GridLength::Days(2)).expect("grid");
    assert_eq!(feb.at(24).date(), date(2024, 2, 29));
}

#[test]
fn a_year_in_berlin_has_one_short_and_one_long_day() {
    let grid =
        TimeGrid::parse("2024-01-01T00:00", "Europe/Berlin", "15min", &GridLength::End("2025-01-01T00:00".into()))
            .expect("grid");
    assert_eq!(grid.len(), 366 * 96);
}
