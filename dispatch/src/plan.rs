//! What a solve returns: its status, the schedule when there is one, and
//! why not when there is none.

use serde::Serialize;
use volta_engine::{AssetId, BusId, TimeGrid};

/// How a solve ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Proven optimal (for a MILP: within HiGHS's default gap of 1e-6 or less).
    Optimal,
    /// Feasible, and proven within the requested relative MIP gap.
    WithinGap,
    /// The time limit was reached. The schedule is the best one found, if any.
    TimeLimit,
    /// The solver's iteration limit was reached; the best schedule found, if any.
    IterationLimit,
    /// The solver ran out of memory; the best schedule found, if any.
    MemoryLimit,
    /// The solve was interrupted (a solution limit, an interrupt); the best
    /// schedule found, if any.
    Interrupted,
    /// No schedule satisfies the constraints; see the explanation.
    Infeasible,
    /// The cost can decrease without bound (a missing limit or price).
    Unbounded,
}

impl Status {
    /// The snake-case name used in JSON and on the command line.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Optimal => "optimal",
            Self::WithinGap => "within_gap",
            Self::TimeLimit => "time_limit",
            Self::IterationLimit => "iteration_limit",
            Self::MemoryLimit => "memory_limit",
            Self::Interrupted => "interrupted",
            Self::Infeasible => "infeasible",
            Self::Unbounded => "unbounded",
        }
    }

    /// Whether a schedule comes with this status (always for optimal and
    /// within-gap, when an incumbent exists for a solve stopped early).
    #[must_use]
    pub fn is_feasible(self) -> bool {
        matches!(self, Self::Optimal | Self::WithinGap) || self.stopped_early()
    }

    /// Whether the solver stopped before proving its answer (a limit or an
    /// interrupt): the schedule, if any, is the best found by then.
    #[must_use]
    pub fn stopped_early(self) -> bool {
        matches!(self, Self::TimeLimit | Self::IterationLimit | Self::MemoryLimit | Self::Interrupted)
    }
}

/// The outcome of one solve.
#[derive(Debug, Clone, Serialize)]
pub struct Solution {
    /// How the solve ended.
    pub status: Status,
    /// The objective value of the schedule (in the objective's units).
    pub objective: Option<f64>,
    /// The best proven lower bound on the objective.
    pub best_bound: Option<f64>,
    /// The relative gap between objective and bound (0 for an LP).
    pub gap: Option<f64>,
    /// Model size and timings.
    pub stats: SolveStats,
    /// The schedule, for a feasible status.
    pub schedule: Option<Schedule>,
    /// For an infeasible case: what fails, where and when.
    pub infeasibility: Option<Infeasibility>,
    /// With quadratic fuel curves: the schedule's exact cost and a lower
    /// bound on the exact optimum (see [`crate::Exact`]).
    pub exact: Option<crate::Exact>,
}

/// Model size and timings of a solve.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SolveStats {
    /// Columns of the model.
    pub columns: usize,
    /// Rows of the model.
    pub rows: usize,
    /// Binary columns.
    pub binaries: usize,
    /// Time spent building the model, s.
    pub build_seconds: f64,
    /// Time spent in HiGHS, s (with [`crate::MipStart::Rounding`], the
    /// LPs behind its start included).
    pub solve_seconds: f64,
    /// Time spent on the marginal-price LP, s.
    pub price_seconds: f64,
    /// Integer columns the solver was started from: a rolling window's
    /// commitment inherited from the window before, or the rounded
    /// relaxation's commitment (0 for a cold start, and for a check,
    /// [`crate::MipStart::Check`], the relaxation did not prove).
    pub warm_start: usize,
    /// The start (complete, with the integer columns fixed) was proven
    /// within the MIP gap by the LP relaxation's optimum, so the MIP's
    /// branch and bound was not run: `solve_seconds` is the two LPs'.
    pub proven_by_relaxation: bool,
    /// How HiGHS was asked to solve (see [`crate::Strategy`]).
    pub strategy: Option<crate::Resolved>,
}

/// An optimal (or best-found) operating schedule.
#[derive(Debug, Clone, Serialize)]
pub struct Schedule {
    /// The steps the schedule covers.
    #[serde(skip)]
    pub grid: TimeGrid,
    /// Total cost in the case's currency.
    pub cost: f64,
    /// Total emissions, kg CO2.
    pub co2_kg: f64,
    /// Per asset: flows and operating details.
    pub assets: Vec<AssetSchedule>,
    /// Per bus: marginal prices and unserved energy.
    pub buses: Vec<BusSchedule>,
    /// The cost, itemised by asset and category.
    pub costs: Vec<CostItem>,
    /// The emissions, by asset.
    pub emissions: Vec<EmissionItem>,
}

/// One asset's part of a schedule.
#[derive(Debug, Clone, Serialize)]
pub struct AssetSchedule {
    /// The asset.
    pub id: AssetId,
    /// Its `type` tag.
    pub kind: &'static str,
    /// Signed flows into buses, kW (positive: injection).
    pub flows: Vec<Flow>,
    /// What it did, in its own terms.
    pub detail: Detail,
}

/// A signed flow into one bus, kW per step.
#[derive(Debug, Clone, Serialize)]
pub struct Flow {
    /// The bus.
    pub bus: BusId,
    /// Power into the bus per step (negative: drawn from it), kW.
    pub kw: Vec<f64>,
}

/// What an asset did, in its own terms.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Detail {
    /// A load.
    Load {
        /// The demand profile, kW.
        demand_kw: Vec<f64>,
        /// The power served, kW (differs when shed or shifted).
        served_kw: Vec<f64>,
        /// The power shed, kW.
        shed_kw: Vec<f64>,
    },
    /// A renewable generator.
    Renewable {
        /// What the resource allowed, kW.
        available_kw: Vec<f64>,
        /// What was produced, kW.
        output_kw: Vec<f64>,
    },
    /// A thermal unit or a converter.
    Unit {
        /// The rated flow (output for thermal units and output-rated
        /// converters, input otherwise), kW.
        output_kw: Vec<f64>,
        /// Fuel burnt, kW (thermal units).
        fuel_kw: Option<Vec<f64>>,
        /// On/off per step, under unit commitment.
        on: Option<Vec<bool>>,
        /// Start-ups per step, under unit commitment.
        starts: Option<Vec<bool>>,
    },
    /// A grid connection.
    Grid {
        /// Import, kW.
        import_kw: Vec<f64>,
        /// Export, kW.
        export_kw: Vec<f64>,
    },
    /// A storage.
    Storage {
        /// Charging power drawn from the bus, kW.
        charge_kw: Vec<f64>,
        /// Discharging power injected into the bus, kW.
        discharge_kw: Vec<f64>,
        /// Stored energy at the end of each step, kWh.
        energy_kwh: Vec<f64>,
        /// Stored energy before the first step, kWh.
        initial_kwh: f64,
    },
}

/// One bus's part of a schedule.
#[derive(Debug, Clone, Serialize)]
pub struct BusSchedule {
    /// The bus.
    pub id: BusId,
    /// Marginal price per step, currency per kWh: what one more kWh of demand
    /// on this bus at this step would cost. Absent if not computed.
    pub price: Option<Vec<f64>>,
    /// Demand left unserved (priced at the value of lost load), kW.
    pub unserved_kw: Vec<f64>,
}

/// The kinds of cost in a breakdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CostCategory {
    /// Variable operation and maintenance.
    Operation,
    /// Fuel bought from outside the case.
    Fuel,
    /// Energy imported from a grid.
    Import,
    /// Revenue from export (negative).
    Export,
    /// Peak-demand charges.
    DemandCharge,
    /// Start-up and shut-down costs.
    Startup,
    /// Curtailable demand shed, at its value of lost load.
    LostLoad,
    /// Demand left unserved, at the case's value of lost load.
    Unserved,
    /// Storage wear.
    Wear,
}

impl CostCategory {
    /// The snake-case name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Operation => "operation",
            Self::Fuel => "fuel",
            Self::Import => "import",
            Self::Export => "export",
            Self::DemandCharge => "demand_charge",
            Self::Startup => "startup",
            Self::LostLoad => "lost_load",
            Self::Unserved => "unserved",
            Self::Wear => "wear",
        }
    }
}

/// One line of a cost breakdown.
#[derive(Debug, Clone, Serialize)]
pub struct CostItem {
    /// The asset (none for unserved energy).
    pub asset: Option<AssetId>,
    /// The kind of cost.
    pub category: CostCategory,
    /// The amount, in the case's currency.
    pub amount: f64,
}

/// One line of an emissions breakdown.
#[derive(Debug, Clone, Serialize)]
pub struct EmissionItem {
    /// The emitting asset (a grid import or a fuel purchase).
    pub asset: AssetId,
    /// Emissions, kg CO2.
    pub co2_kg: f64,
}

impl Schedule {
    /// The schedule of one asset.
    #[must_use]
    pub fn asset(&self, id: &str) -> Option<&AssetSchedule> {
        self.assets.iter().find(|a| a.id.as_str() == id)
    }

    /// The schedule of one bus.
    #[must_use]
    pub fn bus(&self, id: &str) -> Option<&BusSchedule> {
        self.buses.iter().find(|b| b.id.as_str() == id)
    }

    /// Total cost per category, in a fixed order.
    #[must_use]
    pub fn cost_by_category(&self) -> Vec<(CostCategory, f64)> {
        let mut totals = std::collections::BTreeMap::new();
        for item in &self.costs {
            *totals.entry(item.category).or_insert(0.0) += item.amount;
        }
        totals.into_iter().collect()
    }
}

/// Why a case has no feasible schedule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Infeasibility {
    /// Each failing constraint, grouped over consecutive steps.
    pub violations: Vec<Violation>,
    /// Set when the elastic model found no slack: the conflict lies outside
    /// balances, reserves and end conditions (say, in minimum up/down times
    /// against the initial state).
    pub unexplained: bool,
}

/// What kind of constraint fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ViolationKind {
    /// A bus lacks supply.
    Short,
    /// A bus has supply it cannot get rid of.
    Surplus,
    /// A spinning-reserve requirement is not met.
    Reserve,
    /// A storage cannot reach its end condition.
    StorageEnd,
    /// A shiftable load cannot serve its window's energy.
    ShiftEnergy,
}

/// One failing constraint over a run of consecutive steps.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Violation {
    /// What fails.
    pub kind: ViolationKind,
    /// The bus or asset it concerns.
    pub subject: String,
    /// The first and last step of the run (inclusive).
    pub steps: (usize, usize),
    /// The start of the first step, local time.
    pub from: String,
    /// The largest shortfall or excess, kW (kWh for end conditions).
    pub largest: f64,
    /// At the worst step, the assets at a limit that matters.
    pub at_limits: Vec<String>,
    /// The whole finding in one sentence.
    pub message: String,
}

impl Infeasibility {
    /// One line per violation, for people.
    #[must_use]
    pub fn report(&self) -> String {
        if self.unexplained || self.violations.is_empty() {
            return "infeasible, but not because of an energy balance, reserve or storage end condition: \
                    check minimum up/down times against the initial states, and ramp limits"
                .to_owned();
        }
        self.violations.iter().map(|v| v.message.as_str()).collect::<Vec<_>>().join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::Status;

    #[test]
    fn every_status_has_its_own_name_and_early_stops_keep_their_reason() {
        let all = [
            Status::Optimal,
            Status::WithinGap,
            Status::TimeLimit,
            Status::IterationLimit,
            Status::MemoryLimit,
            Status::Interrupted,
            Status::Infeasible,
            Status::Unbounded,
        ];
        let mut names: Vec<&str> = all.iter().map(|s| s.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len(), "{names:?}");
        let early: Vec<&str> = all.iter().filter(|s| s.stopped_early()).map(|s| s.name()).collect();
        assert_eq!(early, ["time_limit", "iteration_limit", "memory_limit", "interrupted"]);
        assert!(all.iter().filter(|s| s.is_feasible()).all(|s| !matches!(s, Status::Infeasible | Status::Unbounded)));
    }
}
