//! The sun's position and clear-sky irradiance, for PV features.
//!
//! Position: NOAA's general solar position equations (Spencer's Fourier
//! series for the declination and the equation of time), within about a
//! tenth of a degree, which is far finer than a 15-minute step needs.
//! Clear sky: the Haurwitz model of global horizontal irradiance,
//! `GHI = 1098 cos(z) exp(-0.059 / cos(z))` W/m², which needs no
//! atmospheric inputs.

use std::f64::consts::PI;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::error::{ForecastError, Result};

/// A site on the globe.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Site {
    /// Latitude, degrees north.
    pub latitude: f64,
    /// Longitude, degrees east.
    pub longitude: f64,
}

impl Site {
    /// A checked site.
    ///
    /// # Errors
    /// Latitude outside ±90° or longitude outside ±180°.
    pub fn new(latitude: f64, longitude: f64) -> Result<Self> {
        if !(-90.0..=90.0).contains(&latitude) {
            return Err(ForecastError::option("latitude", format!("{latitude} is outside -90..90")));
        }
        if !(-180.0..=180.0).contains(&longitude) {
            return Err(ForecastError::option("longitude", format!("{longitude} is outside -180..180")));
        }
        Ok(Self { latitude, longitude })
    }

    /// Cosine of the solar zenith angle at `t` (negative at night).
    #[must_use]
    pub fn cos_zenith(&self, t: Timestamp) -> f64 {
        let secs = t.as_second();
        let days = secs.div_euclid(86_400);
        let utc_min = secs.rem_euclid(86_400) as f64 / 60.0;
        // Day of the year from days since 1970-01-01 (good to a day, which
        // the Fourier series absorbs).
        let doy = day_of_year(days);
        let gamma = 2.0 * PI / 365.0 * (doy - 1.0 + (utc_min / 60.0 - 12.0) / 24.0);
        let eot = 229.18
            * (0.000_075 + 0.001_868 * gamma.cos()
                - 0.032_077 * gamma.sin()
                - 0.014_615 * (2.0 * gamma).cos()
                - 0.040_849 * (2.0 * gamma).sin());
        let decl = 0.006_918 - 0.399_912 * gamma.cos() + 0.070_257 * gamma.sin() - 0.006_758 * (2.0 * gamma).cos()
            + 0.000_907 * (2.0 * gamma).sin()
            - 0.002_697 * (3.0 * gamma).cos()
            + 0.001_48 * (3.0 * gamma).sin();
        let true_solar_min = utc_min + eot + 4.0 * self.longitude;
        let hour_angle = (true_solar_min / 4.0 - 180.0).to_radians();
        let lat = self.latitude.to_radians();
        lat.sin() * decl.sin() + lat.cos() * decl.cos() * hour_angle.cos()
    }

    /// Solar elevation in degrees at `t`.
    #[must_use]
    pub fn elevation(&self, t: Timestamp) -> f64 {
        self.cos_zenith(t).clamp(-1.0, 1.0).asin().to_degrees()
    }

    /// Clear-sky GHI (W/m², Haurwitz) at `t`.
    #[must_use]
    pub fn clear_sky_ghi(&self, t: Timestamp) -> f64 {
        haurwitz(self.cos_zenith(t))
    }

    /// Mean clear-sky GHI over a step of `step_s` seconds starting at `t`
    /// (six sub-samples), the right match for interval-average PV data.
    #[must_use]
    pub fn clear_sky_mean(&self, t: Timestamp, step_s: i64) -> f64 {
        const N: i64 = 6;
        (0..N)
            .map(|k| {
                let offset = jiff::SignedDuration::from_secs(step_s * (2 * k + 1) / (2 * N));
                self.clear_sky_ghi(t + offset)
            })
            .sum::<f64>()
            / N as f64
    }
}

/// Haurwitz clear-sky GHI for a zenith cosine.
#[must_use]
pub fn haurwitz(cos_zenith: f64) -> f64 {
    if cos_zenith <= 0.0 { 0.0 } else { 1098.0 * cos_zenith * (-0.059 / cos_zenith).exp() }
}

fn day_of_year(days_since_epoch: i64) -> f64 {
    // Civil-from-days (Howard Hinnant's algorithm), then the ordinal day.
    let z = days_since_epoch + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy_march = doe - (365 * yoe + yoe / 4 - yoe / 100);
    // doy_march counts from 1 March; convert to 1 January.
    let year = yoe + era * 400 + i64::from(doy_march >= 306);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let jan1_offset = if doy_march >= 306 { -306 } else { 59 + i64::from(leap) };
    (doy_march + jan1_offset + 1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_of_year_is_ordinal() {
        let day = |s: &str| s.parse::<Timestamp>().expect("ts").as_second().div_euclid(86_400);
        assert_eq!(day_of_year(day("2014-01-01T00:00:00Z")), 1.0);
        assert_eq!(day_of_year(day("2014-03-01T00:00:00Z")), 60.0);
        assert_eq!(day_of_year(day("2012-12-31T00:00:00Z")), 366.0);
    }

    #[test]
    fn noon_elevation_at_golden_on_the_june_solstice() {
        // Golden, CO (PVDAQ system 50): solar noon near 19:00 UTC; the
        // elevation is 90 - 39.74 + 23.44 = 73.7 degrees.
        let site = Site::new(39.7406, -105.1775).expect("site");
        let t: Timestamp = "2012-06-20T19:02:00Z".parse().expect("ts");
        assert!((site.elevation(t) - 73.7).abs() < 0.3, "{}", site.elevation(t));
        let night: Timestamp = "2012-06-20T07:00:00Z".parse().expect("ts");
        assert!(site.elevation(night) < 0.0 && site.clear_sky_ghi(night) == 0.0);
        assert!((site.clear_sky_ghi(t) - 1098.0 * 0.959 * (-0.059_f64 / 0.959).exp()).abs() < 15.0);
    }

    #[test]
    fn bad_sites_are_refused() {
        assert!(Site::new(91.0, 0.0).is_err());
        assert!(Site::new(0.0, 200.0).is_err());
    }
}
