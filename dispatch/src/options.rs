//! What to optimise and how hard to try.

use serde::{Deserialize, Serialize};
use volta_engine::Cancel;

/// What the schedule minimises.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Objective {
    /// Total cost: energy, fuel, start-ups, demand charges, lost load.
    #[default]
    Cost,
    /// Total CO2. Lost load counts as [`LOST_LOAD_CO2_KG_PER_KWH`], so that
    /// shedding demand is the last resort rather than the cleanest option;
    /// among the plans with the least CO2 the cheapest is returned.
    Co2,
    /// `cost_weight × cost + co2_weight × CO2 (kg)`; a `co2_weight` in
    /// currency per kg acts as a carbon price.
    Weighted {
        /// Weight of the cost (default 1).
        cost_weight: f64,
        /// Weight of the emissions, per kg CO2.
        co2_weight: f64,
    },
}

/// The CO2-equivalent penalty of one kWh of lost load under
/// [`Objective::Co2`]: far above any real emission factor, so that demand is
/// only shed when nothing else can serve it.
pub const LOST_LOAD_CO2_KG_PER_KWH: f64 = 1000.0;

impl Objective {
    /// The name used on the command line and in reports.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Cost => "cost",
            Self::Co2 => "co2",
            Self::Weighted { .. } => "weighted",
        }
    }
}

/// Solver settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// The objective (default: cost).
    pub objective: Objective,
    /// Stop after this many seconds and return the best plan found.
    pub time_limit_s: Option<f64>,
    /// Stop once the relative MIP gap is below this (HiGHS's default 1e-4).
    pub mip_gap: Option<f64>,
    /// Solver threads (default: HiGHS's choice).
    pub threads: Option<u32>,
    /// Compute marginal prices per bus and step (one extra LP for a MILP).
    pub prices: bool,
    /// Print the solver's log on stderr.
    pub verbose: bool,
    /// Stops the work between phases (before building a model, between the
    /// solves of a lexicographic objective, a Pareto front or a rolling
    /// horizon) once cancelled: the call returns [`DispatchError::Cancelled`].
    /// A solve already inside HiGHS runs to its own limits.
    ///
    /// [`DispatchError::Cancelled`]: crate::DispatchError::Cancelled
    #[serde(skip)]
    pub cancel: Cancel,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            objective: Objective::Cost,
            time_limit_s: None,
            mip_gap: None,
            threads: None,
            prices: true,
            verbose: false,
            cancel: Cancel::default(),
        }
    }
}

impl Options {
    /// Options with this objective and the other defaults.
    #[must_use]
    pub fn with_objective(objective: Objective) -> Self {
        Self { objective, ..Self::default() }
    }
}
