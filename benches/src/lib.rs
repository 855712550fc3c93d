//! Shared inputs of Volta's benchmarks. The criterion benchmarks live in
//! `benches/benches/` (run them with `cargo bench -p volta-benches`), the
//! longer timed runs in `src/bin/`.

pub mod cases;
pub mod check;
pub mod flags;
pub mod load;
pub mod plot;

pub use cases::{campus_weeks, campus_year, day_ahead, tiled};
use volta_forecasting::{History, ReadOptions, data};

/// Victoria's 2014 half-hourly demand with Melbourne temperature (AEST, as
/// Australia/Brisbane; the temperature marked known ahead: ex post).
///
/// # Panics
/// If the committed dataset cannot be read.
#[must_use]
pub fn victoria() -> History {
    let mut options = ReadOptions::new("demand_gw");
    options.time_column = Some("period_start_aest_assumed".into());
    options.timezone = Some("Australia/Brisbane".into());
    options.exog = vec!["temperature_c".into()];
    options.known_ahead = vec!["temperature_c".into()];
    data::read(&volta_datasets::raw("vic_elecdemand_2014_halfhourly.csv"), &options).expect("victoria").0
}
