//! Case files: reading, checking and writing a planning case.
//!
//! A case is a TOML or JSON document (one schema, see `docs/case-format.md`)
//! declaring a time grid, carriers, buses, assets, reserves and settings.
//! [`CaseReader`] turns it into a checked [`Case`] or a
//! [`ValidationReport`] listing every problem at once, each with its path.
//! A [`Case`] cannot be built any other way, so code that holds one may rely
//! on its invariants: ids are unique and resolved, every series has one
//! finite value per step, every bound is consistent.

mod check;
mod document;
mod profile_spec;
mod replace;
pub mod schema;

pub mod table;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use self::document::Format;
pub use self::profile_spec::{FileRef, ProfileSpec};
pub use self::replace::{ReplaceError, SeriesField, SeriesRef};
use crate::asset::{Asset, Reserve};
use crate::error::{Error, Result};
use crate::ids::{AssetId, BusId, CarrierId};
use crate::network::{Bus, Carrier};
pub use crate::report::{Issue, IssueCode, Severity, ValidationReport};
use crate::time::TimeGrid;

/// Case-wide settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The currency all prices are in (a label; default `"EUR"`).
    #[serde(default = "default_currency")]
    pub currency: String,
    /// Cost of unserved energy on any bus, currency/kWh. When set, every
    /// bus may fall short at this price instead of the case being
    /// infeasible; when absent, balances are hard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_of_lost_load: Option<f64>,
}

impl Default for Settings {
    fn default() -> Self {
        Self { currency: default_currency(), value_of_lost_load: None }
    }
}

fn default_currency() -> String {
    "EUR".into()
}

/// The `[time]` table of a case file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeSpec {
    /// Local start (`2014-11-03T00:00`) or an instant with offset.
    pub start: String,
    /// IANA time zone (default `"UTC"`).
    #[serde(default = "utc")]
    pub timezone: String,
    /// Step length: `"15min"`, `"30min"`, `"1h"`.
    pub step: String,
    /// Length in steps ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<usize>,
    /// ... or in local days ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<u32>,
    /// ... or until a local end time (exclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
}

fn utc() -> String {
    "UTC".into()
}

impl TimeSpec {
    /// The grid this table describes, or the field at fault, its code and
    /// what is wrong (as a case reports it).
    ///
    /// # Errors
    /// No horizon or more than one, an unknown zone, a start that is not a
    /// time of that zone, a bad step or end.
    pub fn grid(&self) -> std::result::Result<TimeGrid, (&'static str, IssueCode, String)> {
        use crate::time::{GridLength, TimeGridError as E};
        let length = match (self.steps, self.days, &self.end) {
            (Some(n), None, None) => GridLength::Steps(n),
            (None, Some(d), None) => GridLength::Days(d),
            (None, None, Some(e)) => GridLength::End(e.clone()),
            (None, None, None) => {
                return Err(("time", IssueCode::MissingField, "give the horizon as one of steps, days or end".into()));
            }
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
                return Err(("time", IssueCode::Conflict, "give only one of steps, days or end".into()));
            }
        };
        TimeGrid::parse(&self.start, &self.timezone, &self.step, &length).map_err(|err| {
            let field = match &err {
                E::UnknownTimeZone(_) => "time.timezone",
                E::BadStart { .. } | E::AmbiguousStart { .. } => "time.start",
                E::BadStep(_) => "time.step",
                E::BadEnd { .. } => "time.end",
                E::Misaligned { .. } | E::BadLength(_) => "time",
            };
            (field, IssueCode::TimeGrid, err.to_string())
        })
    }
}

/// A checked planning case. Build one with [`CaseReader`] or
/// [`Case::from_path`].
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    name: String,
    description: String,
    grid: TimeGrid,
    settings: Settings,
    carriers: Vec<Carrier>,
    buses: Vec<Bus>,
    assets: Vec<Asset>,
    reserves: Vec<Reserve>,
    resolved: Resolved,
}

/// The references of a checked case, resolved once when it is checked:
/// every bus id and carrier id the case holds has its position here.
#[derive(Debug, Clone, PartialEq, Default)]
struct Resolved {
    buses: HashMap<BusId, usize>,
    carriers: HashMap<CarrierId, usize>,
    /// Per bus, the position of its carrier.
    bus_carriers: Vec<usize>,
}

impl Resolved {
    /// The positions of `carriers` and `buses`; `None` if a bus names a
    /// carrier that is not there (the checker has refused such a case).
    fn of(carriers: &[Carrier], buses: &[Bus]) -> Option<Self> {
        let carrier_positions: HashMap<CarrierId, usize> =
            carriers.iter().enumerate().map(|(i, c)| (c.id.clone(), i)).collect();
        let bus_carriers = buses.iter().map(|b| carrier_positions.get(&b.carrier).copied()).collect::<Option<_>>()?;
        Some(Self {
            buses: buses.iter().enumerate().map(|(i, b)| (b.id.clone(), i)).collect(),
            carriers: carrier_positions,
            bus_carriers,
        })
    }
}

impl Case {
    /// Reads and checks a case file (TOML or JSON, by extension or content).
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read, [`Error::Syntax`] if it is
    /// not a TOML or JSON table, [`Error::Invalid`] with every problem if it
    /// breaks rules.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self> {
        CaseReader::new().read_path(path).map(|checked| checked.case)
    }

    /// Parses and checks case text. Relative series files are resolved from
    /// the current directory.
    ///
    /// # Errors
    /// As [`Case::from_path`].
    pub fn from_str(text: &str, format: Format) -> Result<Self> {
        CaseReader::new().read_str(text, format).map(|checked| checked.case)
    }

    /// The case's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A free-text description.
    #[must_use]
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The time grid.
    #[must_use]
    pub fn grid(&self) -> &TimeGrid {
        &self.grid
    }

    /// Case-wide settings.
    #[must_use]
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Every carrier: the built-in ones and those the case declares.
    #[must_use]
    pub fn carriers(&self) -> &[Carrier] {
        &self.carriers
    }

    /// The buses.
    #[must_use]
    pub fn buses(&self) -> &[Bus] {
        &self.buses
    }

    /// The assets, in file order.
    #[must_use]
    pub fn assets(&self) -> &[Asset] {
        &self.assets
    }

    /// The spinning-reserve requirements.
    #[must_use]
    pub fn reserves(&self) -> &[Reserve] {
        &self.reserves
    }

    /// A carrier by id.
    #[must_use]
    pub fn carrier(&self, id: &str) -> Option<&Carrier> {
        self.carriers.iter().find(|c| c.id.as_str() == id)
    }

    /// A bus by id.
    #[must_use]
    pub fn bus(&self, id: &str) -> Option<&Bus> {
        self.buses.iter().find(|b| b.id.as_str() == id)
    }

    /// The position of a bus in [`Case::buses`].
    #[must_use]
    pub fn bus_index(&self, id: &BusId) -> Option<usize> {
        self.buses.iter().position(|b| &b.id == id)
    }

    /// The carrier of a bus.
    #[must_use]
    pub fn bus_carrier(&self, id: &BusId) -> Option<&Carrier> {
        self.bus(id.as_str()).and_then(|b| self.carrier(b.carrier.as_str()))
    }

    /// The position in [`Case::buses`] of a bus the case refers to (an
    /// asset's bus, a reserve's): resolved when the case was checked.
    ///
    /// # Panics
    /// For an id that the case does not hold, which only code that made
    /// the id up itself can pass (use [`Case::bus_index`] for those).
    #[must_use]
    pub fn position_of_bus(&self, id: &BusId) -> usize {
        self.resolved.buses[id]
    }

    /// A carrier the case refers to (a bus's, a purchased fuel's): resolved
    /// when the case was checked.
    ///
    /// # Panics
    /// As [`Case::position_of_bus`] (use [`Case::carrier`] for ids from elsewhere).
    #[must_use]
    pub fn carrier_of(&self, id: &CarrierId) -> &Carrier {
        &self.carriers[self.resolved.carriers[id]]
    }

    /// The carrier of a bus the case refers to.
    ///
    /// # Panics
    /// As [`Case::position_of_bus`].
    #[must_use]
    pub fn carrier_of_bus(&self, id: &BusId) -> &Carrier {
        &self.carriers[self.resolved.bus_carriers[self.position_of_bus(id)]]
    }

    /// An asset by id.
    #[must_use]
    pub fn asset(&self, id: &str) -> Option<&Asset> {
        self.assets.iter().find(|a| a.id.as_str() == id)
    }

    /// The carriers that some bus carries, in bus order, without repeats.
    #[must_use]
    pub fn used_carriers(&self) -> Vec<&Carrier> {
        let mut used: Vec<&Carrier> = Vec::new();
        for bus in &self.buses {
            if let Some(c) = self.carrier(bus.carrier.as_str())
                && !used.iter().any(|u| u.id == c.id)
            {
                used.push(c);
            }
        }
        used
    }

    /// A one-line summary: horizon, assets, carriers.
    #[must_use]
    pub fn summary(&self) -> String {
        let carriers: Vec<&str> = self.used_carriers().iter().map(|c| c.id.as_str()).collect();
        let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        format!(
            "{}; {} on {}; carriers: {}",
            self.grid,
            plural(self.assets.len(), "asset"),
            if self.buses.len() == 1 { "1 bus".to_owned() } else { format!("{} buses", self.buses.len()) },
            carriers.join(", ")
        )
    }

    /// The case as a case-file document, with every series inline. Reading
    /// it back gives an equal case.
    #[must_use]
    pub fn to_document(&self) -> CaseDocument<'_> {
        CaseDocument { case: self }
    }

    /// The case as JSON text (a valid case file).
    ///
    /// # Errors
    /// Only if serialisation fails, which a checked case does not.
    pub fn to_json(&self) -> serde_json::Result<String> {
        serde_json::to_string_pretty(&self.to_document())
    }

    /// Ids of all assets of a given class, for summaries.
    pub fn asset_ids_of<'a>(&'a self, type_name: &'a str) -> impl Iterator<Item = &'a AssetId> + 'a {
        self.assets.iter().filter(move |a| a.kind.type_name() == type_name).map(|a| &a.id)
    }
}

/// A borrowed view of a [`Case`] that serialises as a case file.
#[derive(Debug, Clone, Copy)]
pub struct CaseDocument<'a> {
    case: &'a Case,
}

impl Serialize for CaseDocument<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Doc<'a> {
            name: &'a str,
            #[serde(skip_serializing_if = "str::is_empty")]
            description: &'a str,
            time: TimeSpec,
            settings: &'a Settings,
            carriers: &'a [Carrier],
            buses: &'a [Bus],
            assets: &'a [Asset],
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            reserves: &'a [Reserve],
        }
        let case = self.case;
        let grid = &case.grid;
        Doc {
            name: &case.name,
            description: &case.description,
            time: TimeSpec {
                start: grid.stamp(0),
                timezone: grid.time_zone_name().to_owned(),
                step: grid.step_text(),
                steps: Some(grid.len()),
                days: None,
                end: None,
            },
            settings: &case.settings,
            carriers: &case.carriers,
            buses: &case.buses,
            assets: &case.assets,
            reserves: &case.reserves,
        }
        .serialize(s)
    }
}

/// A checked case with the warnings found while checking it.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The case.
    pub case: Case,
    /// Warnings: legal but suspicious things.
    pub warnings: Vec<Issue>,
}

/// The largest magnitude any number of a case may have. A gigawatt plant
/// is 1e6 kW and a terawatt-hour store 1e9 kWh; beyond this a value is a
/// mistake, and it would leave the solver's tolerances (about 1e-9
/// relative) with nothing to measure.
pub const MAX_MAGNITUDE: f64 = 1e9;

/// The smallest efficiency (or coefficient of performance) of a case: 0.1 %.
/// Output is divided by it to find the input, so a smaller one makes a
/// coefficient beyond what the solver can take, and is a mistake anyway.
pub const MIN_EFFICIENCY: f64 = 1e-3;

/// Reads case files, with options.
#[derive(Debug, Clone, Default)]
pub struct CaseReader {
    strict: bool,
    base_dir: Option<PathBuf>,
    inline_only: bool,
}

impl CaseReader {
    /// A reader with default options: warnings allowed, series files relative
    /// to the case file.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Treat warnings as errors.
    #[must_use]
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// Refuse series files: every series must be inline. For callers on
    /// another machine (a service), whose case must never name a file on
    /// this one; a file reference is an error at its field, and the
    /// filesystem is not looked at.
    #[must_use]
    pub fn inline_only(mut self) -> Self {
        self.inline_only = true;
        self
    }

    /// Resolve series files relative to this directory.
    #[must_use]
    pub fn base_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.base_dir = Some(dir.into());
        self
    }

    /// Reads and checks a case file.
    ///
    /// # Errors
    /// As [`Case::from_path`].
    pub fn read_path(&self, path: impl AsRef<Path>) -> Result<Checked> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.to_owned(), source })?;
        let text = document::decode(&bytes, path)?;
        let format = Format::from_path(path).unwrap_or_else(|| Format::sniff(&text));
        let base = self.base_dir.clone().unwrap_or_else(|| path.parent().map(Path::to_path_buf).unwrap_or_default());
        self.check_text(&text, format, path, base)
    }

    /// Parses and checks case text.
    ///
    /// # Errors
    /// As [`Case::from_path`].
    pub fn read_str(&self, text: &str, format: Format) -> Result<Checked> {
        let base = self.base_dir.clone().unwrap_or_default();
        self.check_text(text, format, Path::new("<input>"), base)
    }

    /// Checks a case given as a JSON value (the Python and gRPC front doors).
    ///
    /// # Errors
    /// As [`Case::from_path`].
    pub fn read_value(&self, value: serde_json::Value) -> Result<Checked> {
        let serde_json::Value::Object(map) = value else {
            return Err(Error::Syntax {
                path: PathBuf::from("<input>"),
                message: "a case must be a table (a JSON object)".into(),
            });
        };
        self.check_map(map, ValidationReport::default())
    }

    fn check_text(&self, text: &str, format: Format, path: &Path, base: PathBuf) -> Result<Checked> {
        let mut report = ValidationReport::default();
        let map = document::parse(text, format, path, &mut report)?;
        let reader = Self { base_dir: Some(base), ..self.clone() };
        reader.check_map(map, report)
    }

    fn check_map(
        &self,
        map: serde_json::Map<String, serde_json::Value>,
        mut report: ValidationReport,
    ) -> Result<Checked> {
        let base = if self.inline_only { None } else { Some(self.base_dir.clone().unwrap_or_default()) };
        let case = check::check(map, base, &mut report);
        if self.strict {
            report.make_strict();
        }
        match case {
            Some(case) if !report.has_errors() => Ok(Checked { case, warnings: report.issues }),
            Some(_) | None => Err(Error::Invalid(report)),
        }
    }
}

/// The carrier ids every case knows.
#[must_use]
pub fn builtin_carrier_ids() -> Vec<CarrierId> {
    Carrier::builtins().into_iter().map(|c| c.id).collect()
}
