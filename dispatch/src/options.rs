//! What to optimise and how hard to try.

use serde::{Deserialize, Serialize};
use volta_engine::Cancel;

use crate::strategy::Strategy;

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
    /// The names a front door accepts, in the order it lists them.
    pub const NAMES: [&'static str; 3] = ["cost", "co2", "weighted"];

    /// The name used on the command line and in reports.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Cost => "cost",
            Self::Co2 => "co2",
            Self::Weighted { .. } => "weighted",
        }
    }

    /// The objective a caller asked for by name (empty: the default, cost)
    /// with an optional CO2 price per kg: the one rule of the CLI, gRPC and
    /// Python. `cost` with a price is cost plus priced CO2, as `weighted`
    /// is; `weighted` needs the price; `co2` takes none.
    ///
    /// # Errors
    /// An unknown name, a missing or unwanted price, or a price that is not
    /// a number in [0, 1e9]; [`ObjectiveError::field`] says which input.
    pub fn from_request(name: &str, co2_price: Option<f64>) -> Result<Self, ObjectiveError> {
        if let Some(price) = co2_price
            && !(price.is_finite() && (0.0..=volta_engine::MAX_MAGNITUDE).contains(&price))
        {
            return Err(ObjectiveError::Price(price));
        }
        match (name, co2_price) {
            ("" | "cost", None) => Ok(Self::Cost),
            ("co2", None) => Ok(Self::Co2),
            ("" | "cost" | "weighted", Some(price)) => Ok(Self::Weighted { cost_weight: 1.0, co2_weight: price }),
            ("weighted", None) => Err(ObjectiveError::MissingPrice),
            ("co2", Some(_)) => Err(ObjectiveError::PriceWithCo2),
            (other, _) => Err(ObjectiveError::Unknown(other.chars().take(32).collect())),
        }
    }
}

/// Why [`Objective::from_request`] refused a request.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ObjectiveError {
    /// Not one of [`Objective::NAMES`].
    #[error("{0:?} is not an objective: use cost, co2 or weighted")]
    Unknown(String),
    /// `weighted` without a CO2 price.
    #[error("the weighted objective needs a CO2 price (currency per kg)")]
    MissingPrice,
    /// A CO2 price with the `co2` objective, which has no use for it.
    #[error("a CO2 price goes with the cost or weighted objective, not with co2")]
    PriceWithCo2,
    /// A price that is negative, not finite or absurd.
    #[error("the CO2 price must be a number in [0, 1e9] per kg, not {0}")]
    Price(f64),
}

impl ObjectiveError {
    /// The request input at fault: `objective` or `co2_price`.
    #[must_use]
    pub fn field(&self) -> &'static str {
        match self {
            Self::Unknown(_) => "objective",
            Self::MissingPrice | Self::PriceWithCo2 | Self::Price(_) => "co2_price",
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
    /// How HiGHS goes about the problem (default: Volta's choice for the
    /// problem's class, see [`Strategy`]).
    pub strategy: Strategy,
    /// Compute marginal prices per bus and step (one extra LP for a MILP).
    pub prices: bool,
    /// Print the solver's log on stderr.
    pub verbose: bool,
    /// Model identical committed units as fleets, so that the solver does
    /// not explore their permutations (default on; the schedule is the
    /// same, see the crate overview). Off: every unit on its own.
    pub fleets: bool,
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
            strategy: Strategy::default(),
            prices: true,
            verbose: false,
            fleets: true,
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

#[cfg(test)]
mod tests {
    use super::{Objective, ObjectiveError};

    #[test]
    fn one_rule_turns_a_name_and_a_price_into_an_objective() {
        let weighted = |p: f64| Objective::Weighted { cost_weight: 1.0, co2_weight: p };
        assert_eq!(Objective::from_request("", None), Ok(Objective::Cost));
        assert_eq!(Objective::from_request("cost", None), Ok(Objective::Cost));
        assert_eq!(Objective::from_request("co2", None), Ok(Objective::Co2));
        assert_eq!(Objective::from_request("weighted", Some(0.08)), Ok(weighted(0.08)));
        // A price with the cost objective is never silently dropped.
        assert_eq!(Objective::from_request("cost", Some(0.05)), Ok(weighted(0.05)));
        assert_eq!(Objective::from_request("", Some(0.0)), Ok(weighted(0.0)));
        let refused = [
            ("weighted", None, "co2_price"),
            ("co2", Some(0.1), "co2_price"),
            ("cost", Some(-1.0), "co2_price"),
            ("weighted", Some(f64::NAN), "co2_price"),
            ("weighted", Some(1e300), "co2_price"),
            ("carbon", None, "objective"),
            ("Cost", None, "objective"),
        ];
        for (name, price, field) in refused {
            let err = Objective::from_request(name, price).expect_err(name);
            assert_eq!(err.field(), field, "{name} {price:?}: {err}");
        }
        assert!(
            matches!(Objective::from_request(&"x".repeat(1000), None), Err(ObjectiveError::Unknown(s)) if s.len() == 32)
        );
        for name in Objective::NAMES {
            let price = (name == "weighted").then_some(0.1);
            assert_eq!(Objective::from_request(name, price).map(|o| o.name()), Ok(name));
        }
    }
}
