//! A contract portfolio generated from the real series: customers whose
//! 15-minute load follows Victoria's measured demand, and PV generators
//! whose output follows PVDAQ system 50, each scaled and varied by a seeded
//! generator, with contracts of the kinds a retailer holds and a spot price
//! index. The same seed writes the same files, byte for byte.
//!
//! How each series is made (datasets/README.md says the same):
//! - **Load:** Victoria's demand of 2014 per unit of its mean, read at the
//!   same day of the year and half-hour of the local day (2024 has a leap
//!   day: it repeats 28 February), both quarter hours of a half-hour
//!   alike; per customer an annual energy (log-uniform, 80 MWh to 20 GWh),
//!   a weekend factor (0.35 to 1.0: offices and works against homes and
//!   shops), a shift of up to an hour either way, and 4 % noise per reading.
//! - **PV:** system 50's output per unit of its peak, 2012, six months
//!   ahead (Colorado's seasons onto Melbourne's), scaled to a peak of 0.2
//!   to 5 MW.
//! - **Readings:** kWh to the Wh; about 1 in 2 000 estimated and 1 in 5 000
//!   missing (no row).
//! - **Contracts:** one per meter: fixed-price supply (monthly volumes with
//!   a 3 % / 5 % monthly band and 5 % of the price as penalty), TOU retail
//!   (65 % of the volume in peak hours, a 5 % daily band and 3 times the
//!   spread to the spot index), take-or-pay (shortfall only), and physical
//!   PPAs for the generators; contracted volumes are the expected energy
//!   times 0.92 to 1.08, so some deliveries fall outside their bands.
//! - **Spot index:** 0.04 + 0.10 × demand per unit of its peak, squared,
//!   per kWh, every quarter hour.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use volta_engine::case::table::read_table;

use crate::raw;

/// The zone of the portfolio's meters (DST from early October to early April).
pub const ZONE: &str = "Australia/Melbourne";

/// What to generate.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Contracts, one meter each.
    pub contracts: usize,
    /// The first day of readings.
    pub first: Date,
    /// The last day of readings.
    pub last: Date,
    /// The generator's seed.
    pub seed: u64,
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Readings written.
    pub readings: usize,
    /// Reading files written.
    pub files: Vec<String>,
}

/// SplitMix64: small, seeded, the same everywhere.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1_u64 << 53) as f64
    }

    fn between(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }
}

/// The shapes the meters follow.
struct Shapes {
    /// Victoria demand per unit of its mean, by (day of year 1..=365, half-hour 0..48).
    demand: HashMap<(i16, i64), f64>,
    /// Victoria demand per unit of its peak, same keys.
    demand_peak: HashMap<(i16, i64), f64>,
    /// PV per unit of peak, by (day of year, quarter hour 0..96), 2012.
    pv: HashMap<(i16, i64), f64>,
}

impl Shapes {
    fn load() -> Result<Self> {
        let aest = TimeZone::fixed(jiff::tz::offset(10));
        let path = raw("vic_elecdemand_2014_halfhourly.csv");
        let vic = read_table(&path, &path).map_err(|e| anyhow::anyhow!(e.1))?;
        let times = vic.instants("period_start_aest_assumed", &path, &aest).map_err(|e| anyhow::anyhow!(e.1))?;
        let demand = vic.numbers("demand_gw", &path).map_err(|e| anyhow::anyhow!(e.1))?;
        let mean = demand.iter().sum::<f64>() / demand.len() as f64;
        let peak = demand.iter().copied().fold(0.0, f64::max);
        let key = |t: &Timestamp| {
            let local = t.to_zoned_datetime(aest.clone());
            (local.day_of_year(), i64::from(local.hour()) * 2 + i64::from(local.minute()) / 30)
        };
        let by_key = |scale: f64| times.iter().map(key).zip(demand.iter().map(|d| d / scale)).collect();
        let pv_path = raw("system_50_ac_power_2_full_DST.parquet");
        let pv = read_table(&pv_path, &pv_path).map_err(|e| anyhow::anyhow!(e.1))?;
        let pv_times = pv.instants("measured_on", &pv_path, &TimeZone::UTC).map_err(|e| anyhow::anyhow!(e.1))?;
        let pv_w = pv.numbers_with_gaps("ac_power_2", &pv_path).map_err(|e| anyhow::anyhow!(e.1))?;
        let pv_peak = pv_w.iter().copied().filter(|v| v.is_finite()).fold(0.0, f64::max);
        let mountain = TimeZone::fixed(jiff::tz::offset(-7));
        let pv = pv_times
            .iter()
            .zip(&pv_w)
            .filter_map(|(t, w)| {
                let local = t.to_zoned_datetime(mountain.clone());
                (local.year() == 2012 && w.is_finite()).then(|| {
                    let quarter = i64::from(local.hour()) * 4 + i64::from(local.minute()) / 15;
                    ((local.day_of_year(), quarter), (w / pv_peak).clamp(0.0, 1.0))
                })
            })
            .collect();
        Ok(Self { demand: by_key(mean), demand_peak: by_key(peak), pv })
    }

    fn demand(&self, day: i16, half_hour: i64) -> f64 {
        let day = day.min(365);
        self.demand.get(&(day, half_hour)).or_else(|| self.demand.get(&(day - 1, half_hour))).copied().unwrap_or(1.0)
    }

    fn pv(&self, day: i16, quarter: i64) -> f64 {
        // Six months ahead: northern summer onto southern summer.
        let shifted = (day + 182 - 1) % 366 + 1;
        self.pv.get(&(shifted, quarter)).copied().unwrap_or(0.0)
    }
}

/// What a meter is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Fixed,
    Tou,
    TakeOrPay,
    Ppa,
}

/// A generated meter and its contract's parameters.
struct Meter {
    id: String,
    kind: Kind,
    /// Load: annual kWh; PV: peak kW.
    size: f64,
    weekend: f64,
    shift_quarters: i64,
    /// Contracted over expected.
    factor: f64,
    noise_seed: u64,
}

/// Generates the portfolio of `spec` into `dir`: `portfolio.toml`,
/// `spot.csv` and one `readings-YYYY-MM.csv` per month.
///
/// # Errors
/// A raw file missing, or a file that cannot be written.
pub fn generate(spec: &Spec, dir: &Path) -> Result<Summary> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let shapes = Shapes::load()?;
    let zone = TimeZone::get(ZONE)?;
    let mut random = Random(spec.seed);
    let meters: Vec<Meter> = (0..spec.contracts)
        .map(|i| {
            let roll = random.unit();
            let kind = if roll < 0.45 {
                Kind::Fixed
            } else if roll < 0.75 {
                Kind::Tou
            } else if roll < 0.85 {
                Kind::TakeOrPay
            } else {
                Kind::Ppa
            };
            let size = if kind == Kind::Ppa {
                random.between(200.0, 5_000.0)
            } else {
                (random.between(80_000f64.ln(), 20_000_000f64.ln())).exp()
            };
            Meter {
                id: format!("m{:05}", i + 1),
                kind,
                size,
                weekend: random.between(0.35, 1.0),
                shift_quarters: (random.between(-4.0, 4.99)).floor() as i64,
                factor: random.between(0.92, 1.08),
                noise_seed: random.next(),
            }
        })
        .collect();

    let quarter = SignedDuration::from_mins(15);
    let span = span_of(spec.first, spec.last)?;
    let grid = local_grid(&span.0, &span.1, &zone, quarter)?;
    // Expected energy per meter, interval and month (for the contracted volumes).
    let expected = |m: &Meter, t: &jiff::ZonedDateTime| -> f64 {
        let day = t.day_of_year();
        let q = i64::from(t.hour()) * 4 + i64::from(t.minute()) / 15;
        match m.kind {
            Kind::Ppa => shapes.pv(day, q) * m.size * 0.25,
            Kind::Fixed | Kind::Tou | Kind::TakeOrPay => {
                let shifted = (q + m.shift_quarters).rem_euclid(96);
                let weekend = if t.weekday().to_monday_one_offset() >= 6 { m.weekend } else { 1.0 };
                shapes.demand(day, shifted / 2) * weekend * m.size / (365.0 * 96.0)
            }
        }
    };

    let mut summary = Summary { readings: 0, files: Vec::new() };
    let mut monthly: HashMap<(usize, i16, i8), f64> = HashMap::new();
    let mut by_month: Vec<((i16, i8), Vec<usize>)> = Vec::new();
    for (k, (_, local)) in grid.iter().enumerate() {
        let key = (local.year(), local.month());
        match by_month.last_mut() {
            Some((month, ks)) if *month == key => ks.push(k),
            _ => by_month.push((key, vec![k])),
        }
    }
    let mut spot = String::from("start,price\n");
    for (start, local) in &grid {
        let day = local.day_of_year();
        let half = i64::from(local.hour()) * 2 + i64::from(local.minute()) / 30;
        let pu = shapes.demand_peak.get(&(day.min(365), half)).copied().unwrap_or(0.5);
        let price = 0.04 + 0.10 * pu * pu;
        writeln!(spot, "{start},{price:.5}")?;
    }
    std::fs::write(dir.join("spot.csv"), spot).context("spot.csv")?;

    for ((year, month), ks) in &by_month {
        let name = format!("readings-{year:04}-{month:02}.csv");
        let mut out = String::with_capacity(ks.len() * meters.len() * 48);
        out.push_str("meter,start,energy_kwh,quality\n");
        for (i, m) in meters.iter().enumerate() {
            let mut noise =
                Random(m.noise_seed ^ (u64::try_from(*year).unwrap_or(0) << 8) ^ u64::from(month.unsigned_abs()));
            for &k in ks {
                let (start, local) = &grid[k];
                let base = expected(m, local);
                *monthly.entry((i, *year, *month)).or_default() += base;
                let value = (base * noise.between(0.96, 1.04)).max(0.0);
                let roll = noise.unit();
                if roll < 0.0002 {
                    continue;
                }
                let quality = if roll < 0.0007 { "estimated" } else { "measured" };
                let wh = (value * 1000.0).round() as i64;
                writeln!(out, "{},{},{}.{:03},{}", m.id, start, wh / 1000, wh % 1000, quality)?;
                summary.readings += 1;
            }
        }
        std::fs::write(dir.join(&name), out).with_context(|| name.clone())?;
        summary.files.push(name);
    }
    std::fs::write(dir.join("portfolio.toml"), portfolio(spec, &meters, &monthly, &by_month)?)
        .context("portfolio.toml")?;
    Ok(summary)
}

/// `[first, last]` as dates.
fn span_of(first: Date, last: Date) -> Result<(Date, Date)> {
    anyhow::ensure!(first <= last, "{first} is after {last}");
    Ok((first, last.tomorrow()?))
}

/// Every quarter hour from `first`'s local midnight to `end`'s.
fn local_grid(
    first: &Date,
    end: &Date,
    zone: &TimeZone,
    step: SignedDuration,
) -> Result<Vec<(Timestamp, jiff::ZonedDateTime)>> {
    let start = first.to_zoned_datetime(zone.clone())?.timestamp();
    let stop = end.to_zoned_datetime(zone.clone())?.timestamp();
    let mut out = Vec::new();
    let mut t = start;
    while t < stop {
        out.push((t, t.to_zoned_datetime(zone.clone())));
        t = t.checked_add(step)?;
    }
    Ok(out)
}

const WORKDAYS: &str = r#"["monday", "tuesday", "wednesday", "thursday", "friday"]"#;
const WEEKEND: &str = r#"["saturday", "sunday"]"#;

/// The portfolio file: parties, meters, contracts.
fn portfolio(
    spec: &Spec,
    meters: &[Meter],
    monthly: &HashMap<(usize, i16, i8), f64>,
    months: &[((i16, i8), Vec<usize>)],
) -> Result<String> {
    let mut out = String::new();
    writeln!(out, "# Generated by `cargo run -p volta-datasets --bin contract-portfolio` (seed {}).", spec.seed)?;
    writeln!(out, "# {} contracts on {} meters in {ZONE}; see datasets/README.md.\n", meters.len(), meters.len())?;
    writeln!(out, "[[parties]]\nid = \"retail\"\nname = \"Volta Retail\"\nrole = \"retailer\"\n")?;
    for m in meters {
        let role = if m.kind == Kind::Ppa { "generator" } else { "consumer" };
        writeln!(
            out,
            "[[parties]]\nid = \"p{}\"\nname = \"Customer {}\"\nrole = \"{role}\"\n",
            &m.id[1..],
            &m.id[1..]
        )?;
        let technology = if m.kind == Kind::Ppa { "solar" } else { "load" };
        writeln!(
            out,
            "[[meters]]\nid = \"{}\"\nparty = \"p{}\"\ninterval_minutes = 15\ntime_zone = \"{ZONE}\"\nlocation = {{ zone = \"VIC1\" }}\ntechnology = \"{technology}\"\n",
            m.id,
            &m.id[1..]
        )?;
    }
    let last_day = spec.last;
    for (i, m) in meters.iter().enumerate() {
        let (seller, buyer) = if m.kind == Kind::Ppa {
            (format!("p{}", &m.id[1..]), "retail".to_owned())
        } else {
            ("retail".to_owned(), format!("p{}", &m.id[1..]))
        };
        writeln!(
            out,
            "[[contracts]]\nid = \"c{}\"\nseller = \"{seller}\"\nbuyer = \"{buyer}\"\nmeters = [\"{}\"]\n",
            &m.id[1..],
            m.id
        )?;
        let kind = match m.kind {
            Kind::Fixed => "fixed_price",
            Kind::Tou => "time_of_use",
            Kind::TakeOrPay => "take_or_pay",
            Kind::Ppa => "ppa_physical",
        };
        writeln!(
            out,
            "[contracts.terms]\nkind = \"{kind}\"\ndelivery_first = \"{}\"\ndelivery_last = \"{last_day}\"\ncurrency = \"AUD\"\ndecimals = 2\n",
            spec.first
        )?;
        match m.kind {
            Kind::Fixed | Kind::TakeOrPay => writeln!(
                out,
                "[contracts.terms.price]\nrule = \"fixed\"\nprice = \"0.{}\"\n",
                180 + (m.noise_seed % 60)
            )?,
            Kind::Ppa => writeln!(
                out,
                "[contracts.terms.price]\nrule = \"fixed\"\nprice = \"0.0{}\"\n",
                55 + (m.noise_seed % 25)
            )?,
            Kind::Tou => {
                writeln!(out, "[contracts.terms.price]\nrule = \"tou\"\n")?;
                writeln!(out, "[[contracts.terms.price.table.periods]]\nname = \"peak\"\nprice = \"0.31\"\n")?;
                writeln!(out, "[[contracts.terms.price.table.periods]]\nname = \"off_peak\"\nprice = \"0.16\"\n")?;
                let months = "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]";
                for (days, from, to, period) in [
                    (WORKDAYS, "07:00", "23:00", "peak"),
                    (WORKDAYS, "23:00", "07:00", "off_peak"),
                    (WEEKEND, "07:00", "23:00", "off_peak"),
                    (WEEKEND, "23:00", "07:00", "off_peak"),
                ] {
                    writeln!(
                        out,
                        "[[contracts.terms.price.table.rules]]\nmonths = {months}\nweekdays = {days}\nfrom = \"{from}\"\nto = \"{to}\"\nperiod = \"{period}\"\n"
                    )?;
                }
            }
        }
        writeln!(out, "[contracts.terms.quantity]\nbasis = \"monthly\"\nmonths = [")?;
        for ((year, month), _) in months {
            let kwh = (monthly.get(&(i, *year, *month)).copied().unwrap_or(0.0) * m.factor).round() as i64;
            writeln!(out, "  {{ month = \"{year:04}-{month:02}-01\", energy = {kwh} }},")?;
        }
        writeln!(out, "]\n")?;
        match m.kind {
            Kind::Tou => writeln!(
                out,
                "[contracts.terms.shape]\nshape = \"by_tou_period\"\nshares = [{{ period = \"peak\", share = 65 }}, {{ period = \"off_peak\", share = 35 }}]\n"
            )?,
            Kind::Ppa => {
                // The generator's expected daily profile, hourly weights.
                let weights: Vec<String> =
                    (0..24).map(|h| format!("{}", (pv_weight(h) * 1000.0).round() as i64)).collect();
                writeln!(out, "[contracts.terms.shape]\nshape = \"profile\"\nweights = [{}]\n", weights.join(", "))?;
            }
            Kind::Fixed | Kind::TakeOrPay => writeln!(out, "[contracts.terms.shape]\nshape = \"flat\"\n")?,
        }
        let (granularity, lower, upper, penalty) = match m.kind {
            Kind::Fixed => ("month", 3, 5, "base = \"contract_price\"\nmultiplier = \"0.05\"\napplies_to = \"both\""),
            Kind::Tou => ("day", 5, 5, "base = \"spread\"\nindex = \"spot\"\nmultiplier = 3\napplies_to = \"both\""),
            Kind::TakeOrPay => ("month", 10, 100, "base = \"contract_price\"\nmultiplier = 1\napplies_to = \"under\""),
            Kind::Ppa => (
                "month",
                5,
                5,
                "base = \"contract_price\"\nmultiplier = \"0.05\"\napplies_to = \"both\"\nexempt = [\"solar\"]",
            ),
        };
        writeln!(out, "[contracts.terms.band]\ngranularity = \"{granularity}\"\nlower = {lower}\nupper = {upper}\n")?;
        writeln!(out, "[contracts.terms.penalty]\n{penalty}\n")?;
    }
    Ok(out)
}

/// A clear day's PV shape by local hour (per unit), for PPA profiles.
fn pv_weight(hour: i64) -> f64 {
    let x = (hour as f64 + 0.5 - 12.5) / 6.0;
    if x.abs() >= 1.0 { 0.0 } else { (std::f64::consts::FRAC_PI_2 * x).cos().powi(2) }
}
