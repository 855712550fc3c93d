//! Schedules of units with quadratic fuel curves, costed exactly.
//!
//! The MILP sees a quadratic curve as linear pieces ([`Quadratic`]): chords
//! (inner) over-state the fuel, tangents (outer) under-state it. What a
//! solution then knows about the exact problem is its schedule's exact cost
//! (every running unit's fuel on the curve itself) and a lower bound on the
//! exact optimum: the solver's bound with outer pieces, and with inner ones
//! that bound less the most the chords can over-state.

use volta_engine::asset::{Approximation, Fuel, FuelUse, Quadratic, Thermal};
use volta_engine::{AssetKind, Case};

use crate::options::Objective;
use crate::plan::{Detail, Schedule};

/// What a solution knows about the exact quadratic costs of its units.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Exact {
    /// The schedule's cost with every quadratic fuel curve evaluated exactly.
    pub cost: f64,
    /// No schedule costs less under the exact curves (for the cost
    /// objective with a proven bound; else absent).
    pub lower_bound: Option<f64>,
}

/// The exact cost of `schedule` and a lower bound on the exact optimum,
/// when some unit buys its fuel under a quadratic curve (absent when none
/// does, or one draws its fuel from a bus, whose price the schedule does
/// not fix).
pub(crate) fn exact(case: &Case, schedule: &Schedule, objective: Objective, best_bound: Option<f64>) -> Option<Exact> {
    let h = case.grid().step_hours();
    let offset = case.grid().index_of(schedule.grid.instant(0))?;
    let mut quadratic = false;
    let (mut change, mut overstated) = (0.0, 0.0);
    for (asset, planned) in case.assets().iter().zip(&schedule.assets) {
        let AssetKind::Thermal(th @ Thermal { fuel_use: FuelUse::Quadratic(q), .. }) = &asset.kind else { continue };
        let Fuel::Purchased { price, .. } = &th.fuel else { return None };
        let Detail::Unit { output_kw, fuel_kw: Some(fuel_kw), on, .. } = &planned.detail else { return None };
        quadratic = true;
        let worst = q.max_error(th.min_power_kw, th.capacity_kw);
        for (t, (&p, &modelled)) in output_kw.iter().zip(fuel_kw).enumerate() {
            let running = on.as_ref().is_none_or(|on| on[t]);
            // Off, a unit gives output on a start-up or shut-down trajectory
            // only, whose fuel is defined by the pieces (their steepest
            // rate), not by the curve: the model's is the exact one.
            let fuel = if running { exact_fuel(q, th, p, on.is_some()) } else { modelled };
            let price = price.at(offset + t) * h;
            change += price * (fuel - modelled);
            if q.approximation == Approximation::Inner {
                overstated += price * worst;
            }
        }
    }
    quadratic.then(|| Exact {
        cost: schedule.cost + change,
        lower_bound: best_bound.filter(|_| objective == Objective::Cost).map(|bound| bound - overstated),
    })
}

/// The fuel of a running unit at output `p`. Without commitment the model
/// scales the no-load fuel by the share of capacity used (the convex hull
/// of off and on), and so does this.
fn exact_fuel(q: &Quadratic, th: &Thermal, p: f64, committed: bool) -> f64 {
    if committed { q.fuel(p) } else { q.a * p / th.capacity_kw.max(f64::MIN_POSITIVE) + q.b * p + q.c * p * p }
}
