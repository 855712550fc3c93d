//! The cost–CO2 Pareto front by the epsilon-constraint method.

use rayon::prelude::*;
use serde::Serialize;
use volta_engine::Case;

use crate::error::DispatchError;
use crate::model::{CarriedState, Window};
use crate::options::{Objective, Options};
use crate::plan::{Solution, Status};

/// One point of a Pareto front.
#[derive(Debug, Clone, Serialize)]
pub struct ParetoPoint {
    /// The CO2 cap of this point, kg (none for the anchors).
    pub co2_cap_kg: Option<f64>,
    /// Total cost of the schedule.
    pub cost: f64,
    /// Total CO2 of the schedule, kg.
    pub co2_kg: f64,
    /// How its solve ended.
    pub status: Status,
    /// The full solution, schedule included.
    #[serde(skip)]
    pub solution: Solution,
}

/// A cost–CO2 front, from the cheapest to the cleanest schedule.
#[derive(Debug, Clone, Serialize)]
pub struct Front {
    /// Non-dominated points in increasing cost (and decreasing CO2).
    pub points: Vec<ParetoPoint>,
    /// Points dropped as dominated or duplicate.
    pub dropped: usize,
}

/// The most points a front may ask for: each is a full solve, and past a
/// few dozen they no longer show anything the eye or a decision can use.
pub const MAX_PARETO_POINTS: usize = 1000;

/// Traces the cost–CO2 front of `case` with `n` points (2 to
/// [`MAX_PARETO_POINTS`]).
///
/// The two anchors are the cost-optimal schedule and the CO2-optimal one
/// (the cheapest among the least-emitting). The `n − 2` inner points
/// minimise cost with CO2 capped at evenly spaced levels between the
/// anchors. All solves run in parallel on rayon's pool; dominated and
/// duplicate points are dropped. `options.objective` is ignored.
///
/// # Errors
/// [`DispatchError::Option`] if `n` is out of range, and whatever a solve returns.
/// If an anchor is infeasible, the front holds that one solution.
pub fn pareto(case: &Case, n: usize, options: &Options) -> Result<Front, DispatchError> {
    if !(2..=MAX_PARETO_POINTS).contains(&n) {
        return Err(DispatchError::Option(format!("a Pareto front has 2 to {MAX_PARETO_POINTS} points, not {n}")));
    }
    crate::check_options(options)?;
    let state = CarriedState::default();
    let window = Window::whole(case, &state, options.fleets);
    let with = |objective| Options { objective, ..options.clone() };
    let (cheap, clean) = rayon::join(
        || crate::solve(case, &window, &with(Objective::Cost), None),
        || crate::solve(case, &window, &with(Objective::Co2), None),
    );
    let (cheap, clean) = (cheap?, clean?);
    let point = |cap: Option<f64>, solution: Solution| {
        let (cost, co2_kg) = solution.schedule.as_ref().map_or((f64::NAN, f64::NAN), |s| (s.cost, s.co2_kg));
        ParetoPoint { co2_cap_kg: cap, cost, co2_kg, status: solution.status, solution }
    };
    let (Some(a), Some(b)) = (&cheap.schedule, &clean.schedule) else {
        let failed = if cheap.schedule.is_none() { cheap } else { clean };
        return Ok(Front { points: vec![point(None, failed)], dropped: 0 });
    };
    let (high, low) = (a.co2_kg, b.co2_kg);
    let caps: Vec<f64> = (1..n - 1).map(|k| high - (high - low) * k as f64 / (n - 1) as f64).collect();
    let inner: Vec<Result<ParetoPoint, DispatchError>> = caps
        .par_iter()
        .map(|&cap| crate::solve(case, &window, &with(Objective::Cost), Some(cap)).map(|s| point(Some(cap), s)))
        .collect();
    let mut points = vec![point(None, cheap)];
    for p in inner {
        points.push(p?);
    }
    points.push(point(None, clean));
    let total = points.len();
    let mut kept: Vec<ParetoPoint> = Vec::with_capacity(total);
    points.retain(|p| p.status.is_feasible() && p.cost.is_finite());
    points.sort_by(|a, b| a.cost.total_cmp(&b.cost).then(a.co2_kg.total_cmp(&b.co2_kg)));
    for p in points {
        // Keep a point only if it emits strictly less than every cheaper one.
        let dominated = kept.last().is_some_and(|last| p.co2_kg >= last.co2_kg - 1e-6 * last.co2_kg.abs().max(1.0));
        if !dominated {
            kept.push(p);
        }
    }
    let dropped = total - kept.len();
    Ok(Front { points: kept, dropped })
}

impl Front {
    /// Whether every point was solved to optimality or within the gap.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.points.iter().all(|p| matches!(p.status, Status::Optimal | Status::WithinGap))
    }
}
