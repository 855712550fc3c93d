//! Assets: everything that injects into or withdraws from a bus.
//!
//! Every asset type takes a type parameter `P` for its time-varying
//! attributes: [`ProfileSpec`](crate::case::ProfileSpec) while a case is read
//! (a number, an inline array or a file reference), [`Profile`] once it is
//! checked. The same struct therefore describes the case-file schema and the
//! checked model, and a checked case serialises back to a valid case file.
//! Where the file's shape allows what the model does not (a thermal unit
//! names its fuel in one of two ways, and its fuel use in one of two), the
//! file's form ([`ThermalSpec`]) and the checked form ([`Thermal`], with
//! [`Fuel`] and [`FuelUse`] enums) are two types, so that no consumer of a
//! checked case meets a combination the checker refused.
//!
//! Units: power in kW, energy in kWh, money in the case's currency, time in
//! hours. Fractions (efficiencies, state of charge) are per unit.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ids::{AssetId, BusId, CarrierId};
use crate::profile::Profile;

/// One asset of a case.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Asset<P = Profile> {
    /// Unique across all assets of the case.
    pub id: AssetId,
    /// What the asset is, with its attributes.
    #[serde(flatten)]
    pub kind: AssetKind<P>,
}

/// The asset classes of the domain model.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AssetKind<P = Profile> {
    /// A demand: fixed, curtailable or shiftable.
    Load(Load<P>),
    /// A variable renewable generator (PV, wind) with an availability profile.
    Renewable(Renewable<P>),
    /// A dispatchable fuel-burning generator, optionally under unit commitment.
    Thermal(Thermal),
    /// A connection to an outside network with import and export tariffs.
    Grid(Grid<P>),
    /// A multi-port converter between carriers (CHP, boiler, heat pump, ...).
    Converter(Converter<P>),
    /// Energy storage (battery, thermal store, hydrogen tank).
    Storage(Storage),
}

impl<P> AssetKind<P> {
    /// The `type` tag used in case files.
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Load(_) => "load",
            Self::Renewable(_) => "renewable",
            Self::Thermal(_) => "thermal",
            Self::Grid(_) => "grid",
            Self::Converter(_) => "converter",
            Self::Storage(_) => "storage",
        }
    }

    /// All `type` tags, for error messages.
    pub const TYPE_NAMES: [&'static str; 6] = ["load", "renewable", "thermal", "grid", "converter", "storage"];
}

/// A demand on one bus. Fixed unless `curtailable` or `shiftable` is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[serde(bound(deserialize = "P: Deserialize<'de> + From<f64>"))]
#[schemars(bound = "P: JsonSchema + Serialize + From<f64>")]
pub struct Load<P = Profile> {
    /// The bus the demand is drawn from.
    pub bus: BusId,
    /// Demand in kW at each step (non-negative).
    pub demand_kw: P,
    /// Set to allow shedding part of the demand at a price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub curtailable: Option<Curtailable<P>>,
    /// Set to allow moving demand in time within fixed windows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shiftable: Option<Shiftable>,
}

/// Demand that may be shed, at a value of lost load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[serde(bound(deserialize = "P: Deserialize<'de> + From<f64>"))]
#[schemars(bound = "P: JsonSchema + Serialize + From<f64>")]
pub struct Curtailable<P = Profile> {
    /// Cost of each kWh not served, currency/kWh.
    pub value_of_lost_load: P,
    /// The largest share of the demand that may be shed at a step (default 1).
    #[serde(default = "one")]
    pub max_share: f64,
}

/// Demand whose energy is fixed per window but whose timing is free.
///
/// The horizon is cut into consecutive windows of `window_h` hours from its
/// start; within each window the load consumes the same energy as its demand
/// profile, at any power between 0 and `max_power_kw`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Shiftable {
    /// Window length in hours: a whole number of steps.
    pub window_h: f64,
    /// The largest power the shifted load may draw, kW.
    pub max_power_kw: f64,
}

/// A variable renewable generator (PV, wind, run-of-river).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[serde(bound(deserialize = "P: Deserialize<'de> + From<f64>"))]
#[schemars(bound = "P: JsonSchema + Serialize + From<f64>")]
pub struct Renewable<P = Profile> {
    /// The bus it injects into.
    pub bus: BusId,
    /// Installed capacity, kW.
    pub capacity_kw: f64,
    /// Available output per unit of capacity at each step, in \[0, 1\].
    pub availability: P,
    /// Operating cost per kWh produced (default 0).
    #[serde(default = "zero_profile::<P>")]
    pub marginal_cost: P,
    /// Whether output below the availability is allowed (default true).
    #[serde(default = "yes")]
    pub curtailable: bool,
}

/// A dispatchable generator that burns a fuel, as checked: exactly one
/// fuel source and one fuel-use model, so code that holds one never falls
/// back on a default.
///
/// Fuel comes either from a bus (`fuel_bus`, e.g. the site's gas bus) or is
/// bought at `fuel_price` as `fuel_carrier`. Fuel use is `power / efficiency`,
/// follows the piecewise-linear `fuel_curve`, or the quadratic
/// `fuel_quadratic` approximated by linear pieces. A case
/// file writes these as optional fields ([`ThermalSpec`]); a checked unit
/// serialises back to them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(into = "ThermalSpec<Profile>")]
pub struct Thermal {
    /// The bus it injects into.
    pub bus: BusId,
    /// Maximum output, kW.
    pub capacity_kw: f64,
    /// Minimum output while running, kW.
    pub min_power_kw: f64,
    /// Where the fuel comes from.
    pub fuel: Fuel,
    /// How output turns into fuel.
    pub fuel_use: FuelUse,
    /// Non-fuel operating cost per kWh produced.
    pub marginal_cost: Profile,
    /// Largest increase of output per hour, kW/h (unlimited if absent).
    pub ramp_up_kw_per_h: Option<f64>,
    /// Largest decrease of output per hour, kW/h (unlimited if absent).
    pub ramp_down_kw_per_h: Option<f64>,
    /// Unit-commitment data; without it the unit is always available
    /// between 0 and its capacity (its minimum power is then not enforced).
    pub commitment: Option<Commitment>,
}

/// Where a thermal unit's fuel comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Fuel {
    /// Drawn from a bus of the case.
    Bus(BusId),
    /// Bought from outside.
    Purchased {
        /// The fuel's carrier (for CO2).
        carrier: CarrierId,
        /// Price per kWh of fuel.
        price: Profile,
    },
}

/// How a thermal unit turns fuel into output.
#[derive(Debug, Clone, PartialEq)]
pub enum FuelUse {
    /// `fuel = output / efficiency`.
    Efficiency(f64),
    /// `[[output_kw, fuel_kw], ...]`, convex and increasing, from the minimum
    /// power to the capacity.
    Curve(Vec<[f64; 2]>),
    /// `fuel = a + b·p + c·p²` while running, approximated by linear pieces.
    Quadratic(Quadratic),
}

/// A quadratic fuel curve, `fuel = a + b·p + c·p²` kW of fuel at an output
/// of `p` kW while the unit runs (the classic unit-commitment cost curve
/// with a fuel price of 1), from the minimum power to the capacity. A MILP
/// takes it as `segments` linear pieces of equal width:
///
/// - `inner` (default): the chords between the pieces' ends, never below the
///   curve: a schedule's cost is an upper bound on its exact cost;
/// - `outer`: the tangents at the pieces' ends, never above the curve: the
///   optimum is a lower bound on the exact optimum.
///
/// Either way the two differ by at most `c·(w/2)²` per running unit and
/// hour, `w` the width of a piece; a solution reports its schedule's exact
/// cost and a lower bound on the exact optimum.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Quadratic {
    /// No-load fuel, kW of fuel while running.
    pub a: f64,
    /// Fuel per kW of output.
    pub b: f64,
    /// Fuel per kW² of output (≥ 0: the curve is convex).
    pub c: f64,
    /// Linear pieces, 1 to 100 (default 8).
    #[serde(default = "eight")]
    pub segments: u32,
    /// `"inner"` (chords, default) or `"outer"` (tangents).
    #[serde(default)]
    pub approximation: Approximation,
}

/// Which side of a convex curve its linear pieces lie on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Approximation {
    /// Chords: on or above the curve.
    #[default]
    Inner,
    /// Tangents: on or below the curve.
    Outer,
}

impl Quadratic {
    /// The exact fuel at output `p` while running, kW.
    #[must_use]
    pub fn fuel(&self, p: f64) -> f64 {
        self.a + self.b * p + self.c * p * p
    }

    /// The ends of the pieces over `[min, max]`.
    fn knots(&self, min: f64, max: f64) -> impl Iterator<Item = f64> {
        let n = self.segments.max(1);
        (0..=n).map(move |k| min + (max - min) * f64::from(k) / f64::from(n))
    }

    /// The pieces over `[min, max]` as `(slope, intercept)` lines whose
    /// maximum is the approximation: fuel ≥ slope·p + intercept (× on).
    #[must_use]
    pub fn pieces(&self, min: f64, max: f64) -> Vec<(f64, f64)> {
        let knots: Vec<f64> = self.knots(min, max).collect();
        match self.approximation {
            Approximation::Inner => knots
                .windows(2)
                .filter(|w| w[1] > w[0])
                .map(|w| {
                    let slope = (self.fuel(w[1]) - self.fuel(w[0])) / (w[1] - w[0]);
                    (slope, self.fuel(w[0]) - slope * w[0])
                })
                .collect(),
            // The tangent at x: fuel(x) + fuel'(x)·(p − x).
            Approximation::Outer => {
                knots.iter().map(|&x| (self.b + 2.0 * self.c * x, self.a - self.c * x * x)).collect()
            }
        }
    }

    /// The approximation at output `p` while running.
    #[must_use]
    pub fn approximated(&self, p: f64, min: f64, max: f64) -> f64 {
        let pieces = self.pieces(min, max);
        if pieces.is_empty() {
            return self.fuel(p);
        }
        pieces.iter().map(|(slope, intercept)| slope * p + intercept).fold(f64::NEG_INFINITY, f64::max)
    }

    /// The largest gap between the curve and its approximation over
    /// `[min, max]`, kW of fuel: `c·(w/2)²` for pieces of width `w`.
    #[must_use]
    pub fn max_error(&self, min: f64, max: f64) -> f64 {
        let half = (max - min) / f64::from(self.segments.max(1)) / 2.0;
        self.c * half * half
    }
}

/// A thermal unit as a case file writes it: the fuel source and the fuel
/// use as optional fields, of which [`CaseReader`](crate::CaseReader) checks
/// that exactly one of each is given before it builds a [`Thermal`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[serde(bound(deserialize = "P: Deserialize<'de> + From<f64>"))]
#[schemars(bound = "P: JsonSchema + Serialize + From<f64>")]
pub struct ThermalSpec<P> {
    /// The bus it injects into.
    pub bus: BusId,
    /// Maximum output, kW.
    pub capacity_kw: f64,
    /// Minimum output while running, kW (default 0).
    #[serde(default)]
    pub min_power_kw: f64,
    /// Draw fuel from this bus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel_bus: Option<BusId>,
    /// Or buy this carrier ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel_carrier: Option<CarrierId>,
    /// ... at this price, currency per kWh of fuel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel_price: Option<P>,
    /// Output per unit of fuel, in [0.001, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub efficiency: Option<f64>,
    /// Or fuel input as a piecewise-linear convex function of output:
    /// `[[output_kw, fuel_kw], ...]` from `min_power_kw` to `capacity_kw`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel_curve: Option<Vec<[f64; 2]>>,
    /// Or as a quadratic `a + b·p + c·p²`, approximated by linear pieces:
    /// `{ a = 1000, b = 16.19, c = 0.00048, segments = 8 }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel_quadratic: Option<Quadratic>,
    /// Non-fuel operating cost per kWh produced (default 0).
    #[serde(default = "zero_profile::<P>")]
    pub marginal_cost: P,
    /// Largest increase of output per hour, kW/h (unlimited if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramp_up_kw_per_h: Option<f64>,
    /// Largest decrease of output per hour, kW/h (unlimited if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramp_down_kw_per_h: Option<f64>,
    /// Unit-commitment data; without it the unit is always available
    /// between 0 and its capacity (its minimum power is then not enforced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commitment: Option<Commitment>,
}

impl From<Thermal> for ThermalSpec<Profile> {
    fn from(unit: Thermal) -> Self {
        let Thermal {
            bus,
            capacity_kw,
            min_power_kw,
            fuel,
            fuel_use,
            marginal_cost,
            ramp_up_kw_per_h,
            ramp_down_kw_per_h,
            commitment,
        } = unit;
        let (fuel_bus, fuel_carrier, fuel_price) = match fuel {
            Fuel::Bus(bus) => (Some(bus), None, None),
            Fuel::Purchased { carrier, price } => (None, Some(carrier), Some(price)),
        };
        let (efficiency, fuel_curve, fuel_quadratic) = match fuel_use {
            FuelUse::Efficiency(eff) => (Some(eff), None, None),
            FuelUse::Curve(curve) => (None, Some(curve), None),
            FuelUse::Quadratic(q) => (None, None, Some(q)),
        };
        Self {
            bus,
            capacity_kw,
            min_power_kw,
            fuel_bus,
            fuel_carrier,
            fuel_price,
            efficiency,
            fuel_curve,
            fuel_quadratic,
            marginal_cost,
            ramp_up_kw_per_h,
            ramp_down_kw_per_h,
            commitment,
        }
    }
}

/// Unit-commitment data: on/off decisions with their costs and timing rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Commitment {
    /// Once started, stay on at least this long, hours (default 0).
    #[serde(default)]
    pub min_up_h: f64,
    /// Once stopped, stay off at least this long, hours (default 0).
    #[serde(default)]
    pub min_down_h: f64,
    /// Cost of a hot start, currency (default 0).
    #[serde(default)]
    pub start_cost: f64,
    /// Cost of a cold start, currency (default: the hot start cost).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cold_start_cost: Option<f64>,
    /// A start after at least this many hours off is cold (default: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cold_start_after_h: Option<f64>,
    /// Or start-up costs by time off, in steps: `[[hours_off, cost], ...]`,
    /// a start after at least `hours_off` hours off costs the `cost` of the
    /// last such entry instead of `start_cost`; hours increasing, costs not
    /// decreasing (default none). Hot, warm and cold starts are
    /// `start_cost` and two entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub start_costs_by_hours_off: Vec<[f64; 2]>,
    /// Cost of a shut-down, currency (default 0).
    #[serde(default)]
    pub shutdown_cost: f64,
    /// Output while starting up, before the unit is up: kW in each step of
    /// the start-up, in order, in steps of the case's grid (default none: a
    /// unit is up in the step it starts). The unit is up, at or above its
    /// minimum power, in the step after the last; each value is at most the
    /// minimum power. Start-up and shut-down trajectories as in
    /// Morales-España, Gentile and Ramos (2013).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub startup_trajectory_kw: Vec<f64>,
    /// Output while shutting down, after the unit is down: kW in each step
    /// from the one it stops in, in order, in steps of the case's grid
    /// (default none: a stopped unit gives nothing); each value is at most
    /// the minimum power.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shutdown_trajectory_kw: Vec<f64>,
    /// State before the first step.
    #[serde(default)]
    pub initial: InitialState,
}

impl Commitment {
    /// The start-up cost's steps by time off, `(hours_off, cost)` with the
    /// hours increasing (`start_cost` below the first): the entries of
    /// `start_costs_by_hours_off`, or the cold start, or none.
    pub fn start_tiers(&self) -> Vec<(f64, f64)> {
        match (self.cold_start_cost, self.cold_start_after_h) {
            _ if !self.start_costs_by_hours_off.is_empty() => {
                self.start_costs_by_hours_off.iter().map(|&[hours, cost]| (hours, cost)).collect()
            }
            (Some(cost), Some(hours)) => vec![(hours, cost)],
            _ => Vec::new(),
        }
    }

    /// Whether the unit passes through a start-up or shut-down trajectory.
    pub fn has_trajectories(&self) -> bool {
        !self.startup_trajectory_kw.is_empty() || !self.shutdown_trajectory_kw.is_empty()
    }

    /// The shortest time off between a stop and the next start on a grid of
    /// `step_h`-hour steps: the minimum down time, or, if longer, the steps
    /// of the shut-down trajectory followed by those of the start-up one.
    pub fn min_off_h(&self, step_h: f64) -> f64 {
        let trajectories = self.startup_trajectory_kw.len() + self.shutdown_trajectory_kw.len();
        self.min_down_h.max(trajectories as f64 * step_h)
    }
}

/// A unit's state just before the horizon starts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InitialState {
    /// Whether it was running (default false).
    #[serde(default)]
    pub on: bool,
    /// For how long it had been in that state, hours (default: long enough
    /// that no minimum up or down time binds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours_in_state: Option<f64>,
    /// Its output in the last step, kW (for ramp limits; default 0 if off,
    /// the minimum power if on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_kw: Option<f64>,
}

/// A connection to an outside network (the public grid, a gas supply, a
/// district-heating main).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[serde(bound(deserialize = "P: Deserialize<'de> + From<f64>"))]
#[schemars(bound = "P: JsonSchema + Serialize + From<f64>")]
pub struct Grid<P = Profile> {
    /// The bus it connects.
    pub bus: BusId,
    /// Price paid per kWh imported.
    pub import_price: P,
    /// Price received per kWh exported (default 0).
    #[serde(default = "zero_profile::<P>")]
    pub export_price: P,
    /// Import limit, kW (unlimited if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_limit_kw: Option<P>,
    /// Export limit, kW (default 0: no export).
    #[serde(default = "zero_profile::<P>")]
    pub export_limit_kw: P,
    /// CO2 per kWh imported (default: the bus carrier's intensity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub co2_kg_per_kwh: Option<P>,
    /// Demand charge per kW of the highest import over the horizon (default 0).
    #[serde(default)]
    pub peak_demand_charge: f64,
}

/// The role of a converter, used for labels and for the efficiency rule
/// (heat pumps and chillers may have a coefficient of performance above 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConverterKind {
    /// Combined heat and power: gas → electricity + heat.
    Chp,
    /// Gas boiler: gas → heat.
    GasBoiler,
    /// Electric boiler: electricity → heat.
    ElectricBoiler,
    /// Heat pump: electricity → heat, efficiency is the COP.
    HeatPump,
    /// Compression chiller: electricity → cooling, efficiency is the EER.
    ElectricChiller,
    /// Absorption chiller: heat → cooling, efficiency is the thermal COP.
    AbsorptionChiller,
    /// Electrolyser: electricity → hydrogen.
    Electrolyser,
    /// Anything else.
    Generic,
}

impl ConverterKind {
    /// Whether an output efficiency above 1 is physical for this kind.
    #[must_use]
    pub fn allows_cop(self) -> bool {
        matches!(self, Self::HeatPump | Self::ElectricChiller | Self::AbsorptionChiller)
    }
}

/// Which flow a converter's capacity and minimum power refer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RatedAt {
    /// The first output (nameplate convention: 400 kWe CHP, 1 MWth boiler).
    #[default]
    Output,
    /// The first input (the reference flow).
    Input,
}

/// A converter with any number of input and output ports.
///
/// The reference flow `x` is the first input's flow. Every other input draws
/// `ratio × x`, every output injects `efficiency × x`. Capacity and minimum
/// power apply to the first output unless `rated_at = "input"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[serde(bound(deserialize = "P: Deserialize<'de> + From<f64>"))]
#[schemars(bound = "P: JsonSchema + Serialize + From<f64>")]
pub struct Converter<P = Profile> {
    /// What it is.
    pub kind: ConverterKind,
    /// Input ports; the first has ratio 1.
    pub inputs: Vec<InputPort>,
    /// Output ports.
    pub outputs: Vec<OutputPort<P>>,
    /// Maximum of the rated flow, kW.
    pub capacity_kw: f64,
    /// Which flow the capacity refers to (default: the first output).
    #[serde(default)]
    pub rated_at: RatedAt,
    /// Minimum of the rated flow while running, kW (default 0; enforced
    /// only under unit commitment).
    #[serde(default)]
    pub min_power_kw: f64,
    /// Operating cost per kWh of the reference flow (default 0).
    #[serde(default = "zero_profile::<P>")]
    pub marginal_cost: P,
    /// Largest increase of the rated flow per hour, kW/h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramp_up_kw_per_h: Option<f64>,
    /// Largest decrease of the rated flow per hour, kW/h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramp_down_kw_per_h: Option<f64>,
    /// Unit-commitment data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commitment: Option<Commitment>,
}

/// A converter input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InputPort {
    /// The bus drawn from.
    pub bus: BusId,
    /// Flow per unit of reference flow (1 for the first input).
    #[serde(default = "one")]
    pub ratio: f64,
}

/// A converter output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[serde(bound(deserialize = "P: Deserialize<'de> + From<f64>"))]
#[schemars(bound = "P: JsonSchema + Serialize + From<f64>")]
pub struct OutputPort<P = Profile> {
    /// The bus injected into.
    pub bus: BusId,
    /// Output per unit of reference flow; a COP series for heat pumps.
    pub efficiency: P,
}

/// How the state of charge must end.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum FinalState {
    /// No condition.
    #[default]
    Free,
    /// Equal to the initial state.
    Cyclic,
    /// Equal to the level at the start, which the optimiser chooses
    /// (`initial_soc` is then not used): PyPSA's cyclic state of charge, for
    /// a period that repeats. Needs the whole horizon in one model.
    Periodic,
    /// At least this fraction of the energy capacity.
    AtLeast(f64),
}

/// Where a storage's power limits are measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PowerSide {
    /// At the bus: what charging draws and discharging injects (default).
    #[default]
    Bus,
    /// At the store: what enters it after the charging efficiency and
    /// leaves it before the discharging efficiency.
    Store,
}

/// Energy storage on one bus.
///
/// With `e` the stored energy, `c` the charge and `d` the discharge power
/// over a step of `h` hours: `e[t+1] = e[t]·(1 − standing_loss_per_h)^h +
/// c·η_c·h − d/η_d·h`. The first step applies the standing loss to the
/// initial level too, unless `initial_loss` is false. `c` and `d` are
/// limited at the bus, or with `power_side = "store"` at the store
/// (`c·η_c` and `d/η_d`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    /// The bus it charges from and discharges into.
    pub bus: BusId,
    /// Usable energy capacity, kWh.
    pub energy_capacity_kwh: f64,
    /// Maximum charging power, kW (drawn from the bus).
    pub charge_power_kw: f64,
    /// Maximum discharging power, kW (injected into the bus).
    pub discharge_power_kw: f64,
    /// Charging efficiency in [0.001, 1] (default 1).
    #[serde(default = "one")]
    pub charge_efficiency: f64,
    /// Discharging efficiency in [0.001, 1] (default 1).
    #[serde(default = "one")]
    pub discharge_efficiency: f64,
    /// Share of the stored energy lost per hour, in \[0, 1) (default 0).
    #[serde(default)]
    pub standing_loss_per_h: f64,
    /// Lowest state of charge, fraction of capacity (default 0).
    #[serde(default)]
    pub soc_min: f64,
    /// Highest state of charge, fraction of capacity (default 1).
    #[serde(default = "one")]
    pub soc_max: f64,
    /// State of charge before the first step, fraction of capacity (default 0.5).
    #[serde(default = "half")]
    pub initial_soc: f64,
    /// End condition: `"free"` (default), `"cyclic"`, or a minimum fraction.
    #[serde(default, with = "final_state")]
    #[schemars(with = "FinalState")]
    pub final_soc: FinalState,
    /// Forbid charging and discharging in the same step (adds a binary per step).
    #[serde(default)]
    pub no_simultaneous: bool,
    /// Wear cost per kWh discharged (default 0).
    #[serde(default)]
    pub cycle_cost: f64,
    /// Whether the first step's standing loss applies to the initial level
    /// (default true, as every later step's applies to the level before it;
    /// false: the initial level is the level after that loss).
    #[serde(default = "yes")]
    pub initial_loss: bool,
    /// Where `charge_power_kw` and `discharge_power_kw` are measured:
    /// `"bus"` (default) or `"store"`.
    #[serde(default)]
    pub power_side: PowerSide,
}

impl Storage {
    /// The largest charge, kW drawn from the bus.
    #[must_use]
    pub fn charge_limit_kw(&self) -> f64 {
        match self.power_side {
            PowerSide::Bus => self.charge_power_kw,
            PowerSide::Store => self.charge_power_kw / self.charge_efficiency,
        }
    }

    /// The largest discharge, kW injected into the bus.
    #[must_use]
    pub fn discharge_limit_kw(&self) -> f64 {
        match self.power_side {
            PowerSide::Bus => self.discharge_power_kw,
            PowerSide::Store => self.discharge_power_kw * self.discharge_efficiency,
        }
    }

    /// What is left of the initial level after the first step's standing
    /// loss, per kWh: `(1 − loss)^h`, or 1 without `initial_loss`.
    #[must_use]
    pub fn initial_keep(&self, h: f64) -> f64 {
        if self.initial_loss { (1.0 - self.standing_loss_per_h).powf(h) } else { 1.0 }
    }
}

/// A spinning-reserve requirement on a bus: online units' headroom
/// (committed capacity minus output) and storage discharge headroom must
/// cover `requirement_kw + load_share × fixed demand` at every step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[serde(bound(deserialize = "P: Deserialize<'de> + From<f64>"))]
#[schemars(bound = "P: JsonSchema + Serialize + From<f64>")]
pub struct Reserve<P = Profile> {
    /// The bus whose units provide the reserve.
    pub bus: BusId,
    /// Fixed part of the requirement, kW (default 0).
    #[serde(default = "zero_profile::<P>")]
    pub requirement_kw: P,
    /// Part proportional to the bus's demand (default 0).
    #[serde(default)]
    pub load_share: f64,
}

fn one() -> f64 {
    1.0
}
fn eight() -> u32 {
    8
}

fn half() -> f64 {
    0.5
}
fn yes() -> bool {
    true
}
fn zero_profile<P: From<f64>>() -> P {
    P::from(0.0)
}

impl JsonSchema for FinalState {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "FinalState".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "End condition of a storage: \"free\", \"cyclic\" (end at initial_soc), \"periodic\" (end where it started, the start chosen by the optimiser), or a minimum state of charge as a fraction of capacity.",
            "anyOf": [
                { "enum": ["free", "cyclic", "periodic"] },
                { "type": "number", "minimum": 0, "maximum": 1 }
            ]
        })
    }
}

mod final_state {
    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    use super::FinalState;

    pub fn serialize<S: Serializer>(state: &FinalState, s: S) -> Result<S::Ok, S::Error> {
        match state {
            FinalState::Free => s.serialize_str("free"),
            FinalState::Cyclic => s.serialize_str("cyclic"),
            FinalState::Periodic => s.serialize_str("periodic"),
            FinalState::AtLeast(v) => s.serialize_f64(*v),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<FinalState, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = FinalState;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("\"free\", \"cyclic\", \"periodic\" or a fraction of capacity")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FinalState, E> {
                match v {
                    "free" => Ok(FinalState::Free),
                    "cyclic" => Ok(FinalState::Cyclic),
                    "periodic" => Ok(FinalState::Periodic),
                    other => Err(E::invalid_value(de::Unexpected::Str(other), &self)),
                }
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<FinalState, E> {
                Ok(FinalState::AtLeast(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<FinalState, E> {
                Ok(FinalState::AtLeast(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<FinalState, E> {
                Ok(FinalState::AtLeast(v as f64))
            }
        }
        d.deserialize_any(V)
    }
}
