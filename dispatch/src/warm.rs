//! Warm starts: the commitment a window inherits from the one before it.
//!
//! Successive windows of a rolling horizon overlap: a window of `horizon`
//! steps that keeps `commit` of them leaves `horizon − commit` steps that
//! the next window optimises again, from the state the kept steps end in.
//! The earlier window's commitment over those steps is usually close to
//! the later one's, so it is handed to HiGHS as a partial MIP start: the
//! units' on/off decisions (for an aggregated fleet, how many are on and
//! how many start) on the steps the two windows share, nothing on the new
//! steps. HiGHS fixes what it is given, completes the rest in a small
//! search of its own and, if that succeeds, starts its branch and bound
//! with an incumbent instead of looking for one. A start that cannot be
//! completed is dropped; the problem, and so its optimum, is the same
//! either way.
//!
//! Completing a partial start costs HiGHS about one root solve of the
//! problem left (presolve, the LP, cuts), so it pays only where a window's
//! solve is more than its root. Small commitment problems are solved at
//! the root in milliseconds, and a start would only add to them; a window
//! with fewer than [`MIN_INTEGERS`] integer columns starts cold. Measured
//! with `benches/src/bin/rolling-year.rs` (one thread, a week of the
//! Kazarlis systems' day in 24-hour windows keeping 12 hours, the same
//! stitched cost both ways): Kazarlis 10 (240 integer columns a window)
//! 31.98 s cold, 18.85 s warm; Kazarlis 20 (480, as fleets) 125.5 s cold,
//! 101.8 s warm. The campus in 48-hour windows (48 binaries, 27 ms each)
//! took 1.78 s cold and 2.55 s warm over 8 weeks before the threshold.
//! Holding the last state over the new steps as well (a complete start,
//! which HiGHS checks with one LP) was no faster on the Kazarlis weeks,
//! where it is rarely feasible, and is not used. Keeping one HiGHS model
//! alive across windows would save only the build, 1.6 % of the campus
//! year's rolling time (0.16 s of 9.8 s): HiGHS presolves a changed MIP
//! again either way.

use volta_lp::Col;

use crate::model::{AssetVars, FleetVars, Hint, Model, UnitVars, Window};
use crate::plan::{Detail, Schedule};

/// Integer columns a window needs for a warm start to pay (see the module).
pub(crate) const MIN_INTEGERS: usize = 128;

impl Hint {
    /// The commitment in `plan`, a schedule whose first step is the case's
    /// step `first`.
    pub(crate) fn from_schedule(plan: &Schedule, first: usize) -> Self {
        let on = plan
            .assets
            .iter()
            .enumerate()
            .filter_map(|(i, asset)| match &asset.detail {
                Detail::Unit { on: Some(on), .. } => Some((i, on.clone())),
                Detail::Unit { on: None, .. }
                | Detail::Load { .. }
                | Detail::Renewable { .. }
                | Detail::Grid { .. }
                | Detail::Storage { .. } => None,
            })
            .collect();
        Self { first, on }
    }

    /// The MIP start for `model`, built for `window`: the value of each
    /// integer commitment column whose step the hint covers.
    pub(crate) fn start(&self, model: &Model, window: &Window<'_>) -> Vec<(Col, f64)> {
        let mut start = Vec::new();
        if model.lp.integers().len() < MIN_INTEGERS {
            return start;
        }
        for (i, vars) in model.vars.iter().enumerate() {
            let AssetVars::Unit(UnitVars { on: Some(on_cols), start: Some(start_cols), fleet, .. }) = vars else {
                continue;
            };
            let members = match fleet {
                Some(FleetVars { members, .. }) => members.as_slice(),
                None => std::slice::from_ref(&i),
            };
            let Some(known) = members.iter().map(|m| self.on.get(m)).collect::<Option<Vec<_>>>() else {
                continue;
            };
            for (t, (&on_col, &start_col)) in on_cols.iter().zip(start_cols).enumerate() {
                let Some(k) = (window.start + t).checked_sub(self.first) else { continue };
                if known.iter().any(|on| k >= on.len()) {
                    break;
                }
                let on = known.iter().filter(|on| on[k]).count();
                start.push((on_col, on as f64));
                // A fleet's starts are integers too (a single unit's follow
                // from its on/off); a start needs the step before.
                if fleet.is_some() && k > 0 {
                    let starts = known.iter().filter(|on| on[k] && !on[k - 1]).count();
                    start.push((start_col, starts as f64));
                }
            }
        }
        start
    }
}
