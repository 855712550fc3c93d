//! The rules a case must satisfy, one small function per rule family.
//!
//! Checking never stops at the first problem: each item is read on its own,
//! so a mistake in one asset does not hide a mistake in the next, and a
//! reference to an item that exists but is itself broken is not reported a
//! second time as unknown.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::document::json_type;
use super::profile_spec::{FileRef, ProfileSpec};
use super::table::SeriesLoader;
use super::{Case, MAX_MAGNITUDE, MIN_EFFICIENCY, Resolved, Settings, TimeSpec};
use crate::asset::{
    Asset, AssetKind, Commitment, Converter, ConverterKind, Curtailable, FinalState, Fuel, FuelUse, Grid, InputPort,
    Load, OutputPort, Quadratic, Renewable, Reserve, Storage, Thermal, ThermalSpec,
};
use crate::ids::{AssetId, BusId, CarrierId, is_valid_id};
use crate::network::{Bus, Carrier};
use crate::profile::Profile;
use crate::report::{IssueCode, Path, ValidationReport};
use crate::series::{AlignError, TimeSeries};
use crate::time::TimeGrid;

const TOP_LEVEL: [&str; 8] = ["name", "description", "time", "settings", "carriers", "buses", "assets", "reserves"];

/// Checks a parsed case document. Returns the case when every item could be
/// built; `report` decides whether it may be used.
pub(super) fn check(
    mut map: Map<String, Value>,
    base_dir: Option<PathBuf>,
    report: &mut ValidationReport,
) -> Option<Case> {
    for key in map.keys() {
        if !TOP_LEVEL.contains(&key.as_str()) {
            report.error(
                key.clone(),
                IssueCode::UnknownField,
                format!("unknown section; expected one of: {}", TOP_LEVEL.join(", ")),
            );
        }
    }
    let name = take_string(&mut map, "name", report).unwrap_or_default();
    let description = take_string(&mut map, "description", report).unwrap_or_default();
    let time: Option<TimeSpec> = match map.remove("time") {
        Some(v) => deserialize(v, &Path::root("time"), report),
        None => {
            report.error(
                "time",
                IssueCode::MissingField,
                "the [time] table is required (start, step, and steps, days or end)",
            );
            None
        }
    };
    let settings: Option<Settings> = match map.remove("settings") {
        Some(v) => deserialize(v, &Path::root("settings"), report),
        None => Some(Settings::default()),
    };

    let mut cx = Checker {
        report,
        grid: None,
        loader: SeriesLoader::new(base_dir),
        carriers: Vec::new(),
        buses: HashMap::new(),
        broken: HashSet::new(),
        touched_by_broken: HashSet::new(),
    };
    cx.grid = time.as_ref().and_then(|t| cx.time_grid(t));
    if let Some(s) = &settings {
        cx.settings(s);
    }
    let carriers = cx.carriers(map.remove("carriers"));
    let buses = cx.buses(map.remove("buses"));
    let (assets, all_assets) = cx.assets(map.remove("assets"));
    let reserves = cx.reserves(map.remove("reserves"));
    cx.balance(buses.as_deref(), &assets, settings.as_ref());
    if all_assets {
        cx.unused_carriers(carriers.as_deref(), buses.as_deref(), &assets);
    }
    let assets = all_assets.then_some(assets);
    let (carriers, buses) = (carriers?, buses?);
    // Only a case without problems is built: every reference resolves.
    let resolved = Resolved::of(&carriers, &buses)?;

    Some(Case {
        name,
        description,
        grid: cx.grid?,
        settings: settings?,
        carriers,
        buses,
        assets: assets?,
        reserves: reserves?,
        resolved,
    })
}

#[expect(clippy::wildcard_enum_match_arm, reason = "every other JSON type is the same mistake")]
fn take_string(map: &mut Map<String, Value>, key: &str, report: &mut ValidationReport) -> Option<String> {
    match map.remove(key)? {
        Value::String(s) => Some(s),
        other => {
            report.error(key, IssueCode::WrongType, format!("expected a string, found {}", json_type(&other)));
            None
        }
    }
}

/// At most this many unknown fields are reported for one item; each is
/// taken out so that the next one (or another mistake) can be found.
const MAX_UNKNOWN_FIELDS: usize = 32;
/// The most linear pieces a quadratic fuel curve may take.
const MAX_SEGMENTS: u32 = 100;
/// The most tiers of start-up costs by time off.
const MAX_START_TIERS: usize = 24;
/// The most steps a start-up or shut-down trajectory may have (each step of
/// a trajectory adds its columns' terms to as many rows).
const MAX_TRAJECTORY_STEPS: usize = 96;

/// Deserialises one item, reporting a structural problem at its exact path:
/// every unknown field at once (with the nearest known name), then the first
/// other problem.
fn deserialize<T: DeserializeOwned + JsonSchema>(
    mut value: Value,
    path: &Path,
    report: &mut ValidationReport,
) -> Option<T> {
    let mut unknown = 0;
    loop {
        let err = match serde_path_to_error::deserialize::<_, T>(&value) {
            Ok(v) => return (unknown == 0).then_some(v),
            Err(err) => err,
        };
        let inner = err.path().to_string();
        let at = if inner == "." { path.clone() } else { path.child(&inner) };
        let (code, field, message) = classify_serde_error(&err.inner().to_string());
        // serde_path_to_error already ends the path with an unknown
        // field's name, but not with a missing one's.
        let target = match &field {
            Some(f) if inner.split('.').next_back().is_none_or(|last| last != f) => at.field(f),
            Some(_) | None => at.as_str().to_owned(),
        };
        report.error(target, code, message);
        if code == IssueCode::MissingField && inner == "." {
            // serde stops at the first missing field; name the others too.
            for other in missing_required::<T>(&value).into_iter().filter(|f| Some(f) != field.as_ref()) {
                report.error(path.field(&other), IssueCode::MissingField, "is required");
            }
            return None;
        }
        let removed = code == IssueCode::UnknownField
            && unknown < MAX_UNKNOWN_FIELDS
            && field.is_some_and(|f| remove_field(&mut value, err.path(), &f));
        if !removed {
            return None;
        }
        unknown += 1;
    }
}

/// The fields `T` requires (by its schema) that the object `value` lacks, in
/// the schema's order.
fn missing_required<T: JsonSchema>(value: &Value) -> Vec<String> {
    let schema = schemars::schema_for!(T);
    let Some(required) = schema.get("required").and_then(Value::as_array) else {
        return Vec::new();
    };
    required.iter().filter_map(Value::as_str).filter(|f| value.get(f).is_none()).map(str::to_owned).collect()
}

/// Takes the unknown field `name` out of the object at `at` (serde's path to
/// it, which ends with the field itself).
fn remove_field(value: &mut Value, at: &serde_path_to_error::Path, name: &str) -> bool {
    use serde_path_to_error::Segment;
    let segments: Vec<&Segment> = at.iter().collect();
    let parents = match segments.split_last() {
        Some((Segment::Map { key }, parents)) if key == name => parents,
        Some(_) | None => &segments[..],
    };
    let mut node = value;
    for segment in parents {
        let next = match segment {
            Segment::Map { key } => node.as_object_mut().and_then(|map| map.get_mut(key)),
            Segment::Seq { index } => node.as_array_mut().and_then(|items| items.get_mut(*index)),
            Segment::Enum { .. } | Segment::Unknown => Some(node),
        };
        match next {
            Some(n) => node = n,
            None => return false,
        }
    }
    node.as_object_mut().is_some_and(|map| map.remove(name).is_some())
}

/// The known name nearest to an unknown `field`, when it is near enough
/// to be a likely misspelling.
fn nearest<'a>(field: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| (strsim::damerau_levenshtein(field, k), k))
        .filter(|&(d, k)| d <= 2.max(k.len().min(field.len()) / 3) && d < k.len().max(field.len()))
        .min_by_key(|&(d, _)| d)
        .map(|(_, k)| k)
}

/// Turns serde's messages into an issue code, the field they are about,
/// and a friendlier sentence.
fn classify_serde_error(message: &str) -> (IssueCode, Option<String>, String) {
    let backticked = |s: &str| s.split('`').nth(1).map(str::to_owned);
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let field = backticked(rest);
        let expected = rest.split_once(", ").map(|(_, e)| e.replace('`', "")).unwrap_or_default();
        // serde names the field and then the expected ones, each in backticks.
        let known = rest.split('`').skip(3).step_by(2);
        let message = match field.as_deref().and_then(|f| nearest(f, known)) {
            Some(guess) => format!("unknown field; did you mean `{guess}`? {expected}"),
            None => format!("unknown field; {expected}"),
        };
        (IssueCode::UnknownField, field, message)
    } else if let Some(rest) = message.strip_prefix("missing field ") {
        (IssueCode::MissingField, backticked(rest), "is required".to_owned())
    } else if message.starts_with("unknown variant") {
        let expected = message.split_once(", ").map(|(_, e)| e.replace('`', "")).unwrap_or_default();
        let given = backticked(message).unwrap_or_default();
        (IssueCode::OutOfRange, None, format!("unknown value {given:?}; {expected}"))
    } else {
        let friendly = message
            .replace("invalid type: ", "wrong type: ")
            .replace("expected f64", "expected a number")
            .replace("expected usize", "expected a whole number")
            .replace("expected u32", "expected a whole number")
            .replace("expected a boolean", "expected true or false");
        (IssueCode::WrongType, None, friendly)
    }
}

/// The allowed range of a numeric attribute.
#[derive(Debug, Clone, Copy)]
enum Range {
    Any,
    NonNegative,
    Positive,
    Fraction,
    Efficiency,
    /// A coefficient of performance (heat pumps, chillers): at least
    /// [`MIN_EFFICIENCY`], no upper bound but the largest magnitude.
    Cop,
}

impl Range {
    fn holds(self, v: f64) -> bool {
        match self {
            Self::Any => true,
            Self::NonNegative => v >= 0.0,
            Self::Positive => v > 0.0,
            Self::Fraction => (0.0..=1.0).contains(&v),
            Self::Efficiency => (MIN_EFFICIENCY..=1.0).contains(&v),
            Self::Cop => v >= MIN_EFFICIENCY,
        }
    }

    fn code(self) -> IssueCode {
        match self {
            Self::NonNegative => IssueCode::Negative,
            Self::Efficiency | Self::Cop => IssueCode::Efficiency,
            Self::Any | Self::Positive | Self::Fraction => IssueCode::OutOfRange,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Any => "finite",
            Self::NonNegative => "at least 0",
            Self::Positive => "greater than 0",
            Self::Fraction => "between 0 and 1",
            Self::Efficiency => "in [0.001, 1]",
            Self::Cop => "at least 0.001",
        }
    }
}

struct Checker<'r> {
    report: &'r mut ValidationReport,
    grid: Option<TimeGrid>,
    loader: SeriesLoader,
    /// Every carrier id known so far (built-in and declared).
    carriers: Vec<Carrier>,
    /// Bus id → carrier id, for buses that were read.
    buses: HashMap<String, CarrierId>,
    /// Ids of items that exist but could not be read: references to them
    /// are not reported again.
    broken: HashSet<String>,
    /// Buses that an unreadable asset refers to: their balance is not judged.
    touched_by_broken: HashSet<String>,
}

impl Checker<'_> {
    // ----- scalars and profiles -------------------------------------------------

    fn number(&mut self, path: &str, v: f64, range: Range) -> bool {
        if !v.is_finite() {
            self.report.error(path, IssueCode::NotFinite, format!("{v} is not a finite number"));
            false
        } else if v.abs() > MAX_MAGNITUDE {
            self.report.error(path, IssueCode::OutOfRange, format!("{v:e} is beyond ±{MAX_MAGNITUDE:e}"));
            false
        } else if !range.holds(v) {
            self.report.error(path, range.code(), format!("must be {}, got {v}", range.describe()));
            false
        } else {
            true
        }
    }

    fn optional(&mut self, path: &str, v: Option<f64>, range: Range) {
        if let Some(v) = v {
            self.number(path, v, range);
        }
    }

    /// Resolves a profile, checking length, finiteness and range.
    fn profile(&mut self, path: &str, spec: ProfileSpec, range: Range) -> Option<Profile> {
        let values = match spec {
            ProfileSpec::Constant(v) => {
                return self.number(path, v, range).then_some(Profile::Constant(v));
            }
            ProfileSpec::Inline(values) => {
                let grid_len = self.grid.as_ref()?.len();
                if values.len() != grid_len {
                    self.report.error(
                        path,
                        IssueCode::SeriesLength,
                        format!("the series has {} values but the time grid has {grid_len} steps", values.len()),
                    );
                    return None;
                }
                values
            }
            ProfileSpec::File(file) => self.file_series(path, &file)?,
        };
        let mut ok = true;
        if let Some((t, v)) = values.iter().copied().enumerate().find(|(_, v)| !v.is_finite()) {
            let n = values.iter().filter(|v| !v.is_finite()).count();
            self.report.error(
                path,
                IssueCode::NotFinite,
                format!("step {t} is {v} ({n} of {} steps are not finite)", values.len()),
            );
            ok = false;
        } else if let Some((t, v)) = values.iter().copied().enumerate().find(|(_, v)| v.abs() > MAX_MAGNITUDE) {
            let n = values.iter().filter(|v| v.abs() > MAX_MAGNITUDE).count();
            self.report.error(
                path,
                IssueCode::OutOfRange,
                format!("step {t} is {v:e}, beyond ±{MAX_MAGNITUDE:e} ({n} of {} steps are)", values.len()),
            );
            ok = false;
        } else if let Some((t, v)) = values.iter().copied().enumerate().find(|(_, v)| !range.holds(*v)) {
            let n = values.iter().filter(|v| !range.holds(**v)).count();
            self.report.error(
                path,
                range.code(),
                format!(
                    "every value must be {}; step {t} is {v} ({n} of {} steps are not)",
                    range.describe(),
                    values.len()
                ),
            );
            ok = false;
        }
        ok.then(|| Profile::Series(values.into()))
    }

    fn optional_profile(&mut self, path: &str, spec: Option<ProfileSpec>, range: Range) -> Option<Option<Profile>> {
        match spec {
            None => Some(None),
            Some(s) => self.profile(path, s, range).map(Some),
        }
    }

    fn file_series(&mut self, path: &str, file: &FileRef) -> Option<Vec<f64>> {
        let grid = self.grid.clone()?;
        let file_path = format!("{path}.file");
        let table = match self.loader.table(&file.file) {
            Ok(t) => t,
            Err((code, message)) => {
                self.report.error(file_path, code, message);
                return None;
            }
        };
        // With a time column only the rows the grid selects matter, so empty
        // cells elsewhere in the file are fine; the selected values are then
        // checked like any series (an empty one is reported as NaN).
        let numbers = match &file.time_column {
            Some(_) => table.numbers_with_gaps(&file.column, &file.file),
            None => table.numbers(&file.column, &file.file),
        };
        let values = match (&file.time_column, numbers) {
            (_, Err((code, message))) => Err((format!("{path}.column"), code, message)),
            (None, Ok(values)) => {
                if values.len() == grid.len() {
                    Ok(values)
                } else {
                    Err((
                        path.to_owned(),
                        IssueCode::SeriesLength,
                        format!(
                            "column {:?} of {} has {} rows but the time grid has {} steps (add time_column to select rows by time)",
                            file.column,
                            file.file.display(),
                            values.len(),
                            grid.len()
                        ),
                    ))
                }
            }
            (Some(time_col), Ok(values)) => match table.instants(time_col, &file.file, grid.time_zone()) {
                Err((code, message)) => Err((format!("{path}.time_column"), code, message)),
                Ok(instants) => {
                    TimeSeries::align(&grid, &instants, &values).map(TimeSeries::into_values).map_err(|e| {
                        let code = match e {
                            AlignError::Conflict { .. } => IssueCode::BadCell,
                            AlignError::Lengths { .. } | AlignError::Missing { .. } => IssueCode::SeriesLength,
                        };
                        (path.to_owned(), code, e.to_string())
                    })
                }
            },
        };
        match values {
            Ok(values) => Some(values.into_iter().map(|v| v * file.scale).collect()),
            Err((at, code, message)) => {
                self.report.error(at, code, message);
                None
            }
        }
    }

    // ----- sections -------------------------------------------------------------

    fn time_grid(&mut self, spec: &TimeSpec) -> Option<TimeGrid> {
        spec.grid().map_err(|(field, code, message)| self.report.error(field, code, message)).ok()
    }

    fn settings(&mut self, settings: &Settings) {
        self.optional("settings.value_of_lost_load", settings.value_of_lost_load, Range::Positive);
        if settings.currency.trim().is_empty() {
            self.report.error("settings.currency", IssueCode::OutOfRange, "must not be empty");
        }
    }

    /// Reads a list section item by item. Returns the items with their paths,
    /// and whether every item was read.
    fn list<T: DeserializeOwned + JsonSchema>(
        &mut self,
        section: &str,
        value: Option<Value>,
    ) -> (Vec<(Path, T)>, bool) {
        let items = match value {
            None => return (Vec::new(), true),
            Some(Value::Array(items)) => items,
            Some(other) => {
                self.report.error(
                    section,
                    IssueCode::WrongType,
                    format!("expected an array of tables, found {}", json_type(&other)),
                );
                return (Vec::new(), false);
            }
        };
        let mut out = Vec::with_capacity(items.len());
        let mut all = true;
        let mut ids = HashSet::new();
        for (i, item) in items.into_iter().enumerate() {
            let id = item.get("id").and_then(Value::as_str).map(str::to_owned);
            let path = item_path(section, i, id.as_deref(), &mut ids);
            self.rename_paths(section, i, &path);
            match deserialize::<T>(item, &path, self.report) {
                Some(t) => out.push((path, t)),
                None => {
                    all = false;
                    if let Some(id) = id {
                        self.broken.insert(id);
                    }
                }
            }
        }
        (out, all)
    }

    /// Issues raised before an item's id was known (non-finite TOML numbers)
    /// carry index paths; give them the item's id path.
    fn rename_paths(&mut self, section: &str, i: usize, path: &Path) {
        let prefix = format!("{section}[{i}]");
        if path.as_str() == prefix {
            return;
        }
        for issue in &mut self.report.issues {
            if let Some(rest) = issue.path.strip_prefix(&prefix)
                && (rest.is_empty() || rest.starts_with(['.', '[']))
            {
                issue.path = format!("{}{rest}", path.as_str());
            }
        }
    }

    fn check_id(&mut self, path: &Path, id: &str, seen: &mut HashSet<String>) -> bool {
        let at = path.field("id");
        if !is_valid_id(id) {
            self.report.error(
                at,
                IssueCode::InvalidId,
                format!("{id:?} is not a valid id (letters, digits, '_', '-', '.'; at most 64 characters)"),
            );
            false
        } else if !seen.insert(id.to_owned()) {
            self.report.error(at, IssueCode::DuplicateId, format!("{id:?} is used twice"));
            false
        } else {
            true
        }
    }

    fn carriers(&mut self, value: Option<Value>) -> Option<Vec<Carrier>> {
        let (items, all) = self.list::<Carrier>("carriers", value);
        let mut carriers = Carrier::builtins();
        let mut seen = HashSet::new();
        for (path, carrier) in items {
            if !self.check_id(&path, carrier.id.as_str(), &mut seen) {
                continue;
            }
            self.number(&path.field("co2_kg_per_kwh"), carrier.co2_kg_per_kwh, Range::NonNegative);
            match carriers.iter_mut().find(|c| c.id == carrier.id) {
                Some(builtin) => *builtin = carrier,
                None => carriers.push(carrier),
            }
        }
        self.carriers.clone_from(&carriers);
        all.then_some(carriers)
    }

    fn known_carrier(&mut self, path: &str, id: &CarrierId) -> bool {
        if self.carriers.iter().any(|c| &c.id == id) || self.broken.contains(id.as_str()) {
            return true;
        }
        let known: Vec<&str> = self.carriers.iter().map(|c| c.id.as_str()).collect();
        self.report.error(
            path,
            IssueCode::UnknownCarrier,
            format!(
                "unknown carrier {:?}; known: {} (declare others under [[carriers]])",
                id.as_str(),
                known.join(", ")
            ),
        );
        false
    }

    fn buses(&mut self, value: Option<Value>) -> Option<Vec<Bus>> {
        let (items, all) = self.list::<Bus>("buses", value);
        if all && items.is_empty() {
            self.report.error("buses", IssueCode::MissingField, "a case needs at least one bus");
        }
        let mut buses = Vec::with_capacity(items.len());
        let mut seen = HashSet::new();
        for (path, bus) in items {
            let id_ok = self.check_id(&path, bus.id.as_str(), &mut seen);
            let carrier_ok = self.known_carrier(&path.field("carrier"), &bus.carrier);
            if id_ok {
                self.buses.insert(bus.id.as_str().to_owned(), bus.carrier.clone());
            }
            if id_ok && carrier_ok {
                buses.push(bus);
            }
        }
        (all && buses.len() == seen.len()).then_some(buses)
    }

    /// Checks a bus reference; returns its carrier when known.
    fn bus_ref(&mut self, path: &str, bus: &BusId) -> Option<CarrierId> {
        if let Some(carrier) = self.buses.get(bus.as_str()) {
            return Some(carrier.clone());
        }
        if !self.broken.contains(bus.as_str()) {
            let mut known: Vec<&str> = self.buses.keys().map(String::as_str).collect();
            known.sort_unstable();
            self.report.error(
                path,
                IssueCode::UnknownBus,
                format!("unknown bus {:?}; buses are: {}", bus.as_str(), known.join(", ")),
            );
        }
        None
    }

    fn expect_carrier(&mut self, path: &str, found: Option<&CarrierId>, expected: &[&str], role: &str) {
        if let Some(found) = found
            && !expected.contains(&found.as_str())
            && self.carriers.iter().any(|c| expected.contains(&c.id.as_str()))
        {
            self.report.warn(
                path,
                IssueCode::CarrierMismatch,
                format!("{role} is on a {} bus; expected {}", found.as_str(), expected.join(" or ")),
            );
        }
    }

    /// Reads every asset; returns those that are valid and whether all were.
    fn assets(&mut self, value: Option<Value>) -> (Vec<Asset>, bool) {
        let items = match value {
            None => {
                self.report.error("assets", IssueCode::MissingField, "a case needs at least one asset");
                return (Vec::new(), false);
            }
            Some(Value::Array(items)) => items,
            Some(other) => {
                self.report.error(
                    "assets",
                    IssueCode::WrongType,
                    format!("expected an array of tables, found {}", json_type(&other)),
                );
                return (Vec::new(), false);
            }
        };
        let mut seen = HashSet::new();
        let mut ids = HashSet::new();
        let mut assets = Vec::with_capacity(items.len());
        let mut all = true;
        for (i, item) in items.into_iter().enumerate() {
            let id = item.get("id").and_then(Value::as_str).map(str::to_owned);
            let path = item_path("assets", i, id.as_deref(), &mut ids);
            self.rename_paths("assets", i, &path);
            let buses = referenced_buses(&item);
            match self.asset(item, &path, &mut seen) {
                Some(asset) => assets.push(asset),
                None => {
                    all = false;
                    self.touched_by_broken.extend(buses);
                }
            }
        }
        (assets, all)
    }

    fn asset(&mut self, item: Value, path: &Path, seen: &mut HashSet<String>) -> Option<Asset> {
        let Value::Object(mut map) = item else {
            self.report.error(
                path.as_str(),
                IssueCode::WrongType,
                format!("an asset must be a table, found {}", json_type(&item)),
            );
            return None;
        };
        let id = match map.remove("id") {
            Some(Value::String(id)) => Some(id),
            Some(other) => {
                self.report.error(
                    path.field("id"),
                    IssueCode::WrongType,
                    format!("expected a string, found {}", json_type(&other)),
                );
                None
            }
            None => {
                self.report.error(path.field("id"), IssueCode::MissingField, "every asset needs an id");
                None
            }
        };
        let id_ok = id.as_deref().is_some_and(|id| self.check_id(path, id, seen));
        let type_name = match map.remove("type") {
            Some(Value::String(t)) => t,
            Some(other) => {
                self.report.error(
                    path.field("type"),
                    IssueCode::WrongType,
                    format!("expected a string, found {}", json_type(&other)),
                );
                return None;
            }
            None => {
                self.report.error(
                    path.field("type"),
                    IssueCode::MissingField,
                    format!("every asset needs a type: {}", AssetKind::<Profile>::TYPE_NAMES.join(", ")),
                );
                return None;
            }
        };
        let body = Value::Object(map);
        let kind = match type_name.as_str() {
            "load" => {
                let spec = deserialize(body, path, self.report)?;
                AssetKind::Load(self.load(spec, path)?)
            }
            "renewable" => {
                let spec = deserialize(body, path, self.report)?;
                AssetKind::Renewable(self.renewable(spec, path)?)
            }
            "thermal" => {
                let spec = deserialize(body, path, self.report)?;
                AssetKind::Thermal(self.thermal(spec, path)?)
            }
            "grid" => {
                let spec = deserialize(body, path, self.report)?;
                AssetKind::Grid(self.grid_connection(spec, path)?)
            }
            "converter" => {
                let spec = deserialize(body, path, self.report)?;
                AssetKind::Converter(self.converter(spec, path)?)
            }
            "storage" => {
                let spec = deserialize(body, path, self.report)?;
                AssetKind::Storage(self.storage(spec, path)?)
            }
            other => {
                self.report.error(
                    path.field("type"),
                    IssueCode::UnknownAssetType,
                    format!(
                        "unknown asset type {other:?}; expected one of: {}",
                        AssetKind::<Profile>::TYPE_NAMES.join(", ")
                    ),
                );
                return None;
            }
        };
        let id = id.filter(|_| id_ok)?;
        Some(Asset { id: AssetId::new(id), kind })
    }

    // ----- asset classes -----------------------------------------------------------

    fn load(&mut self, spec: Load<ProfileSpec>, path: &Path) -> Option<Load> {
        let bus = self.bus_ref(&path.field("bus"), &spec.bus);
        let demand = self.profile(&path.field("demand_kw"), spec.demand_kw, Range::NonNegative);
        let both = spec.curtailable.is_some() && spec.shiftable.is_some();
        let curtailable = match spec.curtailable {
            None => Some(None),
            Some(c) => {
                let cp = path.child("curtailable");
                let voll = self.profile(&cp.field("value_of_lost_load"), c.value_of_lost_load, Range::Positive);
                let share_ok = self.number(&cp.field("max_share"), c.max_share, Range::Fraction);
                voll.filter(|_| share_ok).map(|v| Some(Curtailable { value_of_lost_load: v, max_share: c.max_share }))
            }
        };
        let mut ok = true;
        if let Some(s) = &spec.shiftable {
            let sp = path.child("shiftable");
            ok &= self.number(&sp.field("max_power_kw"), s.max_power_kw, Range::NonNegative);
            ok &= self.number(&sp.field("window_h"), s.window_h, Range::Positive);
            if both {
                self.report.error(
                    path.as_str(),
                    IssueCode::Conflict,
                    "a load is either curtailable or shiftable, not both",
                );
                ok = false;
            }
            if let (Some(grid), Some(demand)) = (&self.grid, &demand)
                && ok
            {
                match grid.steps_in(s.window_h) {
                    Some(w) if w > 0 => {
                        let h = grid.step_hours();
                        let starts = (0..grid.len()).step_by(w);
                        for start in starts {
                            let end = (start + w).min(grid.len());
                            let energy: f64 = (start..end).map(|t| demand.at(t) * h).sum();
                            let room = s.max_power_kw * h * (end - start) as f64;
                            if energy > room * (1.0 + 1e-9) {
                                self.report.error(
                                    sp.field("max_power_kw"),
                                    IssueCode::Inconsistent,
                                    format!(
                                        "the window starting at step {start} needs {energy:.1} kWh but {} kW over it gives only {room:.1} kWh",
                                        s.max_power_kw
                                    ),
                                );
                                ok = false;
                                break;
                            }
                        }
                    }
                    _ => {
                        self.report.error(
                            sp.field("window_h"),
                            IssueCode::OutOfRange,
                            format!("{} h is not a whole number of {} steps", s.window_h, grid.step_text()),
                        );
                        ok = false;
                    }
                }
            }
        }
        bus?;
        ok.then_some(())?;
        Some(Load { bus: spec.bus, demand_kw: demand?, curtailable: curtailable?, shiftable: spec.shiftable })
    }

    fn renewable(&mut self, spec: Renewable<ProfileSpec>, path: &Path) -> Option<Renewable> {
        let bus = self.bus_ref(&path.field("bus"), &spec.bus);
        let cap = self.number(&path.field("capacity_kw"), spec.capacity_kw, Range::NonNegative);
        let availability = self.profile(&path.field("availability"), spec.availability, Range::Fraction);
        let cost = self.profile(&path.field("marginal_cost"), spec.marginal_cost, Range::Any);
        bus?;
        cap.then_some(())?;
        Some(Renewable {
            bus: spec.bus,
            capacity_kw: spec.capacity_kw,
            availability: availability?,
            marginal_cost: cost?,
            curtailable: spec.curtailable,
        })
    }

    fn thermal(&mut self, spec: ThermalSpec<ProfileSpec>, path: &Path) -> Option<Thermal> {
        let bus = self.bus_ref(&path.field("bus"), &spec.bus);
        let mut ok = self.number(&path.field("capacity_kw"), spec.capacity_kw, Range::NonNegative);
        ok &= self.min_power(path, spec.min_power_kw, spec.capacity_kw, spec.commitment.is_some());
        // Fuel source: a bus, or a bought carrier with a price.
        let fuel = match (spec.fuel_bus, spec.fuel_carrier, spec.fuel_price) {
            (Some(fuel_bus), None, None) => {
                ok &= self.bus_ref(&path.field("fuel_bus"), &fuel_bus).is_some();
                Some(Fuel::Bus(fuel_bus))
            }
            (None, Some(carrier), Some(price)) => {
                ok &= self.known_carrier(&path.field("fuel_carrier"), &carrier);
                self.profile(&path.field("fuel_price"), price, Range::Any)
                    .map(|price| Fuel::Purchased { carrier, price })
            }
            (None, Some(_), None) => {
                self.report.error(
                    path.field("fuel_price"),
                    IssueCode::MissingField,
                    "a bought fuel (fuel_carrier) needs a fuel_price",
                );
                ok = false;
                None
            }
            (None, None, Some(_)) => {
                self.report.error(
                    path.field("fuel_carrier"),
                    IssueCode::MissingField,
                    "fuel_price needs a fuel_carrier (for its CO2)",
                );
                ok = false;
                None
            }
            (None, None, None) => {
                self.report.error(
                    path.as_str(),
                    IssueCode::MissingField,
                    "a thermal unit needs a fuel: fuel_bus, or fuel_carrier with fuel_price",
                );
                ok = false;
                None
            }
            (Some(_), _, _) => {
                self.report.error(
                    path.field("fuel_bus"),
                    IssueCode::Conflict,
                    "give fuel_bus, or fuel_carrier with fuel_price, not both",
                );
                ok = false;
                None
            }
        };
        let fuel_use = match (spec.efficiency, spec.fuel_curve, spec.fuel_quadratic) {
            (Some(eff), None, None) => {
                self.number(&path.field("efficiency"), eff, Range::Efficiency).then_some(FuelUse::Efficiency(eff))
            }
            (None, Some(curve), None) => {
                self.fuel_curve(path, &curve, spec.min_power_kw, spec.capacity_kw).then_some(FuelUse::Curve(curve))
            }
            (None, None, Some(q)) => self.fuel_quadratic(path, &q).then_some(FuelUse::Quadratic(q)),
            (None, None, None) => {
                self.report.error(
                    path.as_str(),
                    IssueCode::MissingField,
                    "give an efficiency, a fuel_curve or a fuel_quadratic",
                );
                None
            }
            (efficiency, curve, _) => {
                let second = if efficiency.is_some() && curve.is_some() { "fuel_curve" } else { "fuel_quadratic" };
                self.report.error(
                    path.field(second),
                    IssueCode::Conflict,
                    "give one of efficiency, fuel_curve and fuel_quadratic",
                );
                None
            }
        };
        let cost = self.profile(&path.field("marginal_cost"), spec.marginal_cost, Range::Any);
        ok &= self.ramps(path, spec.ramp_up_kw_per_h, spec.ramp_down_kw_per_h);
        if let Some(c) = &spec.commitment {
            ok &= self.commitment(path, c, spec.min_power_kw, spec.capacity_kw);
        }
        bus?;
        ok.then_some(())?;
        Some(Thermal {
            bus: spec.bus,
            capacity_kw: spec.capacity_kw,
            min_power_kw: spec.min_power_kw,
            fuel: fuel?,
            fuel_use: fuel_use?,
            marginal_cost: cost?,
            ramp_up_kw_per_h: spec.ramp_up_kw_per_h,
            ramp_down_kw_per_h: spec.ramp_down_kw_per_h,
            commitment: spec.commitment,
        })
    }

    fn min_power(&mut self, path: &Path, min: f64, cap: f64, committed: bool) -> bool {
        let at = path.field("min_power_kw");
        if !self.number(&at, min, Range::NonNegative) {
            return false;
        }
        if cap.is_finite() && min > cap {
            self.report.error(at, IssueCode::Inconsistent, format!("{min} kW is above capacity_kw ({cap} kW)"));
            return false;
        }
        if min > 0.0 && !committed {
            self.report.warn(
                at,
                IssueCode::Suspicious,
                "a minimum power is only enforced under unit commitment; add a [commitment] table",
            );
        }
        true
    }

    fn fuel_quadratic(&mut self, path: &Path, q: &Quadratic) -> bool {
        let at = path.field("fuel_quadratic");
        let mut ok = true;
        for (name, value) in [("a", q.a), ("b", q.b), ("c", q.c)] {
            ok &= self.number(&format!("{at}.{name}"), value, Range::NonNegative);
        }
        if !(1..=MAX_SEGMENTS).contains(&q.segments) {
            self.report.error(
                format!("{at}.segments"),
                IssueCode::OutOfRange,
                format!("{} is not a number of linear pieces in [1, {MAX_SEGMENTS}]", q.segments),
            );
            ok = false;
        }
        ok
    }

    fn fuel_curve(&mut self, path: &Path, curve: &[[f64; 2]], min: f64, cap: f64) -> bool {
        let at = path.field("fuel_curve");
        if curve.len() < 2 {
            self.report.error(at, IssueCode::OutOfRange, "a fuel curve needs at least two [output_kw, fuel_kw] points");
            return false;
        }
        for (i, [p, f]) in curve.iter().copied().enumerate() {
            let pt = format!("{at}[{i}]");
            if !(self.number(&pt, p, Range::NonNegative) && self.number(&pt, f, Range::NonNegative)) {
                return false;
            }
        }
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0);
        let (first, last) = (curve[0][0], curve[curve.len() - 1][0]);
        if !close(first, min) || !close(last, cap) {
            self.report.error(
                at,
                IssueCode::Inconsistent,
                format!("the curve must run from min_power_kw ({min}) to capacity_kw ({cap}); it runs from {first} to {last}"),
            );
            return false;
        }
        let mut last_slope = f64::NEG_INFINITY;
        for (i, pair) in curve.windows(2).enumerate() {
            let ([p0, f0], [p1, f1]) = (pair[0], pair[1]);
            if p1 <= p0 {
                self.report.error(
                    format!("{at}[{}]", i + 1),
                    IssueCode::NonConvex,
                    "output values must increase from point to point",
                );
                return false;
            }
            let slope = (f1 - f0) / (p1 - p0);
            if slope > 1.0 / MIN_EFFICIENCY {
                self.report.error(
                    format!("{at}[{}]", i + 1),
                    IssueCode::OutOfRange,
                    format!(
                        "the curve rises by {slope:e} kW of fuel per kW of output here, more than {} (an efficiency below {MIN_EFFICIENCY})",
                        1.0 / MIN_EFFICIENCY
                    ),
                );
                return false;
            }
            if slope < last_slope - 1e-12 || slope < 0.0 {
                self.report.error(
                    format!("{at}[{}]", i + 1),
                    IssueCode::NonConvex,
                    format!(
                        "the curve must be convex and increasing: the incremental fuel rate falls from {last_slope:.4} to {slope:.4}"
                    ),
                );
                return false;
            }
            last_slope = slope;
        }
        true
    }

    fn ramps(&mut self, path: &Path, up: Option<f64>, down: Option<f64>) -> bool {
        let mut ok = true;
        for (name, v) in [("ramp_up_kw_per_h", up), ("ramp_down_kw_per_h", down)] {
            if let Some(v) = v {
                ok &= self.number(&path.field(name), v, Range::Positive);
            }
        }
        ok
    }

    /// Start-up costs by time off: at most [`MAX_START_TIERS`] entries of
    /// positive, increasing hours and costs not below the one before (nor
    /// `start_cost`); not beside a cold start.
    fn start_tiers(&mut self, cp: &Path, c: &Commitment) -> bool {
        let at = cp.field("start_costs_by_hours_off");
        let tiers = &c.start_costs_by_hours_off;
        if tiers.is_empty() {
            return true;
        }
        if c.cold_start_cost.is_some() || c.cold_start_after_h.is_some() {
            self.report.error(
                at,
                IssueCode::Conflict,
                "give start_costs_by_hours_off or cold_start_cost with cold_start_after_h, not both",
            );
            return false;
        }
        if tiers.len() > MAX_START_TIERS {
            self.report.error(
                at,
                IssueCode::OutOfRange,
                format!("{} entries, more than the {MAX_START_TIERS} allowed", tiers.len()),
            );
            return false;
        }
        let mut ok = true;
        let (mut hours_before, mut cost_before) = (0.0, c.start_cost);
        for (i, &[hours, cost]) in tiers.iter().enumerate() {
            let path = format!("{at}[{i}]");
            if !(self.number(&format!("{path}[0]"), hours, Range::Positive)
                && self.number(&format!("{path}[1]"), cost, Range::NonNegative))
            {
                ok = false;
                continue;
            }
            if hours <= hours_before {
                self.report.error(
                    format!("{path}[0]"),
                    IssueCode::Inconsistent,
                    format!("hours off must increase: {hours} after {hours_before}"),
                );
                ok = false;
            }
            if cost < cost_before {
                self.report.error(
                    format!("{path}[1]"),
                    IssueCode::Inconsistent,
                    format!("a start after longer off cannot cost less: {cost} after {cost_before}"),
                );
                ok = false;
            }
            (hours_before, cost_before) = (hours, cost);
        }
        ok
    }

    /// A start-up or shut-down trajectory: at most [`MAX_TRAJECTORY_STEPS`]
    /// outputs, each between 0 and the unit's minimum power.
    fn trajectory(&mut self, at: &str, kw: &[f64], min: f64) -> bool {
        if kw.len() > MAX_TRAJECTORY_STEPS {
            self.report.error(
                at,
                IssueCode::OutOfRange,
                format!("{} steps, more than the {MAX_TRAJECTORY_STEPS} a trajectory may have", kw.len()),
            );
            return false;
        }
        let mut ok = true;
        for (i, &p) in kw.iter().enumerate() {
            let path = format!("{at}[{i}]");
            if !self.number(&path, p, Range::NonNegative) {
                ok = false;
            } else if p > min + 1e-9 {
                self.report.error(
                    path,
                    IssueCode::Inconsistent,
                    format!("{p} kW while starting or stopping is above min_power_kw ({min}), where the unit is up"),
                );
                ok = false;
            }
        }
        ok
    }

    fn commitment(&mut self, path: &Path, c: &Commitment, min: f64, cap: f64) -> bool {
        let cp = path.child("commitment");
        let mut ok = true;
        for (name, v) in [
            ("min_up_h", c.min_up_h),
            ("min_down_h", c.min_down_h),
            ("start_cost", c.start_cost),
            ("shutdown_cost", c.shutdown_cost),
        ] {
            ok &= self.number(&cp.field(name), v, Range::NonNegative);
        }
        if let Some(cold) = c.cold_start_cost {
            ok &= self.number(&cp.field("cold_start_cost"), cold, Range::NonNegative);
            if cold < c.start_cost {
                self.report.warn(
                    cp.field("cold_start_cost"),
                    IssueCode::Suspicious,
                    "a cold start is usually dearer than a hot one",
                );
            }
            if c.cold_start_after_h.is_none() {
                self.report.error(
                    cp.field("cold_start_after_h"),
                    IssueCode::MissingField,
                    "cold_start_cost needs cold_start_after_h (hours off after which a start is cold)",
                );
                ok = false;
            }
        }
        if let Some(h) = c.cold_start_after_h {
            ok &= self.number(&cp.field("cold_start_after_h"), h, Range::Positive);
        }
        ok &= self.start_tiers(&cp, c);
        for (name, trajectory) in
            [("startup_trajectory_kw", &c.startup_trajectory_kw), ("shutdown_trajectory_kw", &c.shutdown_trajectory_kw)]
        {
            ok &= self.trajectory(&cp.field(name), trajectory, min);
        }
        let ip = cp.child("initial");
        if let Some(h) = c.initial.hours_in_state {
            ok &= self.number(&ip.field("hours_in_state"), h, Range::NonNegative);
        }
        if let Some(p) = c.initial.power_kw {
            let at = ip.field("power_kw");
            if self.number(&at, p, Range::NonNegative) {
                if !c.initial.on && p > 0.0 {
                    self.report.error(at, IssueCode::Inconsistent, "a unit that was off had no output");
                    ok = false;
                } else if c.initial.on && (p < min - 1e-9 || p > cap + 1e-9) {
                    self.report.error(
                        at,
                        IssueCode::Inconsistent,
                        format!("a running unit's output must be between min_power_kw ({min}) and capacity_kw ({cap})"),
                    );
                    ok = false;
                }
            } else {
                ok = false;
            }
        }
        ok
    }

    fn grid_connection(&mut self, spec: Grid<ProfileSpec>, path: &Path) -> Option<Grid> {
        let bus = self.bus_ref(&path.field("bus"), &spec.bus);
        let import = self.profile(&path.field("import_price"), spec.import_price, Range::Any);
        let export = self.profile(&path.field("export_price"), spec.export_price, Range::Any);
        let import_limit =
            self.optional_profile(&path.field("import_limit_kw"), spec.import_limit_kw, Range::NonNegative);
        let export_limit = self.profile(&path.field("export_limit_kw"), spec.export_limit_kw, Range::NonNegative);
        let co2 = self.optional_profile(&path.field("co2_kg_per_kwh"), spec.co2_kg_per_kwh, Range::NonNegative);
        let peak_ok = self.number(&path.field("peak_demand_charge"), spec.peak_demand_charge, Range::NonNegative);
        if let (Some(grid), Some(i), Some(e), Some(el)) = (&self.grid, &import, &export, &export_limit) {
            let len = grid.len();
            if let Some(t) = (0..len).find(|&t| e.at(t) > i.at(t) && el.at(t) > 0.0) {
                self.report.warn(
                    path.field("export_price"),
                    IssueCode::Suspicious,
                    format!(
                        "at step {t} export pays {} but import costs {}: the optimum will import to export",
                        e.at(t),
                        i.at(t)
                    ),
                );
            }
        }
        bus?;
        peak_ok.then_some(())?;
        Some(Grid {
            bus: spec.bus,
            import_price: import?,
            export_price: export?,
            import_limit_kw: import_limit?,
            export_limit_kw: export_limit?,
            co2_kg_per_kwh: co2?,
            peak_demand_charge: spec.peak_demand_charge,
        })
    }

    fn converter(&mut self, spec: Converter<ProfileSpec>, path: &Path) -> Option<Converter> {
        let mut ok = true;
        if spec.inputs.is_empty() {
            self.report.error(path.field("inputs"), IssueCode::MissingField, "a converter needs at least one input");
            ok = false;
        }
        if spec.outputs.is_empty() {
            self.report.error(path.field("outputs"), IssueCode::MissingField, "a converter needs at least one output");
            ok = false;
        }
        let input_path = path.child("inputs");
        let mut in_carriers = Vec::new();
        for (i, port) in spec.inputs.iter().enumerate() {
            let pp = input_path.index(i);
            in_carriers.push(self.bus_ref(&pp.field("bus"), &port.bus));
            if i == 0 && port.ratio != 1.0 {
                self.report.error(
                    pp.field("ratio"),
                    IssueCode::OutOfRange,
                    "the first input is the reference flow; its ratio must be 1",
                );
                ok = false;
            } else {
                ok &= self.number(&pp.field("ratio"), port.ratio, Range::Positive);
            }
        }
        let output_path = path.child("outputs");
        let eff_range = if spec.kind.allows_cop() { Range::Cop } else { Range::Efficiency };
        let mut outputs = Vec::with_capacity(spec.outputs.len());
        let mut out_carriers = Vec::new();
        for (i, port) in spec.outputs.into_iter().enumerate() {
            let pp = output_path.index(i);
            out_carriers.push(self.bus_ref(&pp.field("bus"), &port.bus));
            match self.profile(&pp.field("efficiency"), port.efficiency, eff_range) {
                Some(eff) => outputs.push(OutputPort { bus: port.bus, efficiency: eff }),
                None => ok = false,
            }
        }
        if !spec.kind.allows_cop()
            && ok
            && let Some(grid) = &self.grid
        {
            let input_total: f64 = spec.inputs.iter().map(|p| p.ratio).sum();
            if let Some(t) =
                (0..grid.len()).find(|&t| outputs.iter().map(|o| o.efficiency.at(t)).sum::<f64>() > input_total + 1e-9)
            {
                let total: f64 = outputs.iter().map(|o| o.efficiency.at(t)).sum();
                self.report.error(
                    output_path.as_str(),
                    IssueCode::Efficiency,
                    format!("at step {t} the outputs add up to {total} per unit of input ({input_total}): more energy out than in"),
                );
                ok = false;
            }
        }
        self.converter_carriers(path, spec.kind, &in_carriers, &out_carriers);
        ok &= self.number(&path.field("capacity_kw"), spec.capacity_kw, Range::NonNegative);
        ok &= self.min_power(path, spec.min_power_kw, spec.capacity_kw, spec.commitment.is_some());
        let cost = self.profile(&path.field("marginal_cost"), spec.marginal_cost, Range::Any);
        ok &= self.ramps(path, spec.ramp_up_kw_per_h, spec.ramp_down_kw_per_h);
        if let Some(c) = &spec.commitment {
            ok &= self.commitment(path, c, spec.min_power_kw, spec.capacity_kw);
        }
        let all_buses = in_carriers.iter().chain(&out_carriers).all(Option::is_some);
        (ok && all_buses).then_some(())?;
        Some(Converter {
            kind: spec.kind,
            inputs: spec.inputs.into_iter().map(|p| InputPort { bus: p.bus, ratio: p.ratio }).collect(),
            outputs,
            capacity_kw: spec.capacity_kw,
            rated_at: spec.rated_at,
            min_power_kw: spec.min_power_kw,
            marginal_cost: cost?,
            ramp_up_kw_per_h: spec.ramp_up_kw_per_h,
            ramp_down_kw_per_h: spec.ramp_down_kw_per_h,
            commitment: spec.commitment,
        })
    }

    /// Warns when a converter's first ports sit on buses of unexpected carriers.
    fn converter_carriers(
        &mut self,
        path: &Path,
        kind: ConverterKind,
        inputs: &[Option<CarrierId>],
        outputs: &[Option<CarrierId>],
    ) {
        let (input, output): (&[&str], &[&str]) = match kind {
            ConverterKind::Chp => (&["gas", "hydrogen"], &["electricity"]),
            ConverterKind::GasBoiler => (&["gas", "hydrogen"], &["heat"]),
            ConverterKind::ElectricBoiler | ConverterKind::HeatPump => (&["electricity"], &["heat"]),
            ConverterKind::ElectricChiller => (&["electricity"], &["cooling"]),
            ConverterKind::AbsorptionChiller => (&["heat"], &["cooling"]),
            ConverterKind::Electrolyser => (&["electricity"], &["hydrogen"]),
            ConverterKind::Generic => return,
        };
        let kind_name = serde_json::to_value(kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        let first_in = inputs.first().and_then(Option::as_ref);
        let first_out = outputs.first().and_then(Option::as_ref);
        self.expect_carrier(
            &path.child("inputs").index(0).field("bus"),
            first_in,
            input,
            &format!("the {kind_name}'s first input"),
        );
        self.expect_carrier(
            &path.child("outputs").index(0).field("bus"),
            first_out,
            output,
            &format!("the {kind_name}'s first output"),
        );
    }

    fn storage(&mut self, spec: Storage, path: &Path) -> Option<Storage> {
        let bus = self.bus_ref(&path.field("bus"), &spec.bus);
        let mut ok = true;
        for (name, v, range) in [
            ("energy_capacity_kwh", spec.energy_capacity_kwh, Range::NonNegative),
            ("charge_power_kw", spec.charge_power_kw, Range::NonNegative),
            ("discharge_power_kw", spec.discharge_power_kw, Range::NonNegative),
            ("charge_efficiency", spec.charge_efficiency, Range::Efficiency),
            ("discharge_efficiency", spec.discharge_efficiency, Range::Efficiency),
            ("soc_min", spec.soc_min, Range::Fraction),
            ("soc_max", spec.soc_max, Range::Fraction),
            ("initial_soc", spec.initial_soc, Range::Fraction),
            ("cycle_cost", spec.cycle_cost, Range::NonNegative),
        ] {
            ok &= self.number(&path.field(name), v, range);
        }
        let loss = path.field("standing_loss_per_h");
        if self.number(&loss, spec.standing_loss_per_h, Range::Fraction) && spec.standing_loss_per_h >= 1.0 {
            self.report.error(loss, IssueCode::OutOfRange, "must be below 1 (a store that loses everything each hour)");
            ok = false;
        }
        if ok && spec.soc_min > spec.soc_max {
            self.report.error(
                path.field("soc_min"),
                IssueCode::Inconsistent,
                format!("soc_min ({}) is above soc_max ({})", spec.soc_min, spec.soc_max),
            );
            ok = false;
        }
        if ok && !(spec.soc_min..=spec.soc_max).contains(&spec.initial_soc) {
            self.report.error(
                path.field("initial_soc"),
                IssueCode::Inconsistent,
                format!("{} is outside [soc_min, soc_max] = [{}, {}]", spec.initial_soc, spec.soc_min, spec.soc_max),
            );
            ok = false;
        }
        if let FinalState::AtLeast(v) = spec.final_soc {
            let at = path.field("final_soc");
            if self.number(&at, v, Range::Fraction) && ok && v > spec.soc_max {
                self.report.error(at, IssueCode::Inconsistent, format!("{v} is above soc_max ({})", spec.soc_max));
                ok = false;
            }
        }
        bus?;
        ok.then_some(spec)
    }

    fn reserves(&mut self, value: Option<Value>) -> Option<Vec<Reserve>> {
        let (items, all) = self.list::<Reserve<ProfileSpec>>("reserves", value);
        let n = items.len();
        let mut out = Vec::with_capacity(n);
        for (path, spec) in items {
            let bus = self.bus_ref(&path.field("bus"), &spec.bus);
            let req = self.profile(&path.field("requirement_kw"), spec.requirement_kw, Range::NonNegative);
            let share = self.number(&path.field("load_share"), spec.load_share, Range::Fraction);
            if let (Some(_), Some(req), true) = (bus, req, share) {
                out.push(Reserve { bus: spec.bus, requirement_kw: req, load_share: spec.load_share });
            }
        }
        (all && out.len() == n).then_some(out)
    }

    // ----- whole-case rules ------------------------------------------------------

    /// Every bus with demand needs something that can supply it; every bus
    /// with forced injection needs something that can absorb it.
    fn balance(&mut self, buses: Option<&[Bus]>, assets: &[Asset], settings: Option<&Settings>) {
        let Some(buses) = buses else { return };
        let has_voll = settings.is_some_and(|s| s.value_of_lost_load.is_some());
        for (i, bus) in buses.iter().enumerate() {
            if self.touched_by_broken.contains(bus.id.as_str()) {
                continue;
            }
            let path = Path::item("buses", i, Some(bus.id.as_str()));
            let mut demand = false;
            let mut forced = false;
            let mut supply = false;
            let mut sink = false;
            let mut connected = false;
            for asset in assets {
                let on = |b: &BusId| b == &bus.id;
                match &asset.kind {
                    AssetKind::Load(l) if on(&l.bus) => {
                        connected = true;
                        demand |= !l.demand_kw.is_zero() && l.curtailable.is_none();
                        sink = true;
                    }
                    AssetKind::Renewable(r) if on(&r.bus) => {
                        connected = true;
                        supply |= r.capacity_kw > 0.0 && !r.availability.is_zero();
                        forced |= !r.curtailable && r.capacity_kw > 0.0 && !r.availability.is_zero();
                    }
                    AssetKind::Thermal(t) => {
                        if on(&t.bus) {
                            connected = true;
                            supply |= t.capacity_kw > 0.0;
                        }
                        if matches!(&t.fuel, Fuel::Bus(bus) if on(bus)) {
                            connected = true;
                            sink = true;
                        }
                    }
                    AssetKind::Grid(g) if on(&g.bus) => {
                        connected = true;
                        supply |= g.import_limit_kw.as_ref().is_none_or(|l| !l.is_zero());
                        sink |= !g.export_limit_kw.is_zero();
                    }
                    AssetKind::Converter(c) => {
                        if c.inputs.iter().any(|p| on(&p.bus)) {
                            connected = true;
                            sink |= c.capacity_kw > 0.0;
                        }
                        if c.outputs.iter().any(|p| on(&p.bus)) {
                            connected = true;
                            supply |= c.capacity_kw > 0.0;
                        }
                    }
                    AssetKind::Storage(s) if on(&s.bus) => {
                        connected = true;
                        supply |= s.discharge_power_kw > 0.0 && s.energy_capacity_kwh > 0.0;
                        sink |= s.charge_power_kw > 0.0 && s.energy_capacity_kwh > 0.0;
                    }
                    AssetKind::Load(_) | AssetKind::Renewable(_) | AssetKind::Grid(_) | AssetKind::Storage(_) => {}
                }
            }
            if !connected {
                self.report.warn(
                    path.as_str(),
                    IssueCode::Unused,
                    format!("no asset is connected to bus {:?}", bus.id.as_str()),
                );
            } else if demand && !supply {
                let msg = format!("bus {:?} has demand but no asset can supply it", bus.id.as_str());
                if has_voll {
                    self.report.warn(
                        path.as_str(),
                        IssueCode::Unbalanceable,
                        format!("{msg}: all of it will be unserved"),
                    );
                } else {
                    self.report.error(
                        path.as_str(),
                        IssueCode::Unbalanceable,
                        format!("{msg} (add a supply, or settings.value_of_lost_load)"),
                    );
                }
            } else if forced && !sink {
                self.report.error(
                    path.as_str(),
                    IssueCode::Unbalanceable,
                    format!("bus {:?} receives non-curtailable output but nothing can absorb it", bus.id.as_str()),
                );
            }
        }
    }

    fn unused_carriers(&mut self, carriers: Option<&[Carrier]>, buses: Option<&[Bus]>, assets: &[Asset]) {
        let (Some(carriers), Some(buses)) = (carriers, buses) else { return };
        let builtin = super::builtin_carrier_ids();
        for carrier in carriers {
            let fuel = |a: &Asset| matches!(&a.kind, AssetKind::Thermal(t) if matches!(&t.fuel, Fuel::Purchased { carrier: c, .. } if *c == carrier.id));
            let used = buses.iter().any(|b| b.carrier == carrier.id) || assets.iter().any(fuel);
            if !used && !builtin.contains(&carrier.id) {
                self.report.warn(
                    format!("carriers.{}", carrier.id),
                    IssueCode::Unused,
                    format!("carrier {:?} is declared but no bus or fuel uses it", carrier.id.as_str()),
                );
            }
        }
    }
}

/// The bus ids an unchecked asset mentions (`bus`, `fuel_bus`, ports).
fn referenced_buses(item: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut take = |v: Option<&Value>| {
        if let Some(Value::String(s)) = v {
            out.push(s.clone());
        }
    };
    take(item.get("bus"));
    take(item.get("fuel_bus"));
    for ports in ["inputs", "outputs"] {
        if let Some(Value::Array(list)) = item.get(ports) {
            for port in list {
                take(port.get("bus"));
            }
        }
    }
    out
}

/// An item's path: by id (`assets.chp`), or by index (`assets[3]`) when it
/// has no usable id or repeats an earlier one.
fn item_path(section: &str, i: usize, id: Option<&str>, seen: &mut HashSet<String>) -> Path {
    let fresh = id.is_some_and(|id| seen.insert(id.to_owned()));
    Path::item(section, i, id.filter(|_| fresh))
}
