//! Warm starts: the commitment a window inherits from the one before it.
//!
//! Successive windows of a rolling horizon overlap: a window of `horizon`
//! steps that keeps `commit` of them leaves `horizon − commit` steps that
//! the next window optimises again, from the state the kept steps end in.
//! The earlier window's commitment over those steps is usually close to
//! the later one's, so it is handed to HiGHS as a MIP start: the units'
//! on/off decisions (for an aggregated fleet, how many are on and how many
//! start) on the steps the two windows share, and on the new steps the
//! commitment of the same hour a day before where the earlier window has
//! it (a window of 24 hours keeping 12, or of 48 keeping 24: loads repeat
//! by the day). A start that sets every integer column (units on their
//! own; a fleet's start-up counts are integers of their own) is completed
//! by the LP with those columns fixed, solved again in the window's LP
//! relaxation from the relaxation's optimal basis (a few dual simplex
//! iterations). If its cost is within the MIP gap of the relaxation's
//! optimum, it is the window's answer and the MIP is not solved at all
//! (the relaxation is the bound HiGHS would stop on); otherwise it is
//! HiGHS's first incumbent. A partial start is left to HiGHS to complete
//! in a small search. A start that fails either way is dropped; the
//! problem, and so its optimum within the gap, is the same either way.
//!
//! Measured with `benches/src/bin/rolling-year.rs` (one thread, HiGHS's
//! 1e-4 gap, MIPs not presolved, see `strategy`; numbers in the README):
//! on the campus year in 48-hour windows keeping 24 (48 binaries each),
//! 362 of the 363 started windows are proven by their relaxation, and the
//! year rolls about three times faster warm than with every window solved
//! as a MIP from nothing, to the same stitched cost. On a week of the Kazarlis 10-unit day in 24-hour windows keeping
//! 12, whose relaxation is 1 % below the optimum, no window is proven; the
//! start shortens the search instead (about 1.7 to 1.9 times faster). On
//! Kazarlis 20 (fleets) the windows' time is the proof of optimality,
//! which a start does not shorten.
//!
//! A problem with no window before it can start from its own LP relaxation
//! instead ([`MipStart::Rounding`](crate::MipStart::Rounding), see
//! [`rounded`]): one LP more, and a first schedule before branch and bound
//! begins. Volta chooses it for a MIP of 1,000 integer columns or more
//! (see `strategy` for what it measured); a smaller one, such as a rolling
//! horizon's first window or any window of a cold run, only checks it
//! ([`MipStart::Check`](crate::MipStart::Check)): the answer when the
//! relaxation proves it, else nothing for HiGHS. On the campus windows the
//! rounded relaxation is proven as often as the window before's
//! commitment (362 of 364 either way): it is the relaxation's proof that
//! saves their time, not what a window inherits.

use volta_lp::Col;

use crate::model::{AssetVars, FleetVars, Hint, Model, UnitVars, Window};
use crate::plan::{Detail, Schedule};

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
        Self { first, on, day: plan.grid.steps_in(24.0) }
    }

    /// The MIP start for `model`, built for `window`: the value of each
    /// integer commitment column whose step the hint covers, or whose step
    /// a day before it covers.
    pub(crate) fn start(&self, model: &Model, window: &Window<'_>) -> Vec<(Col, f64)> {
        let mut start = Vec::new();
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
            let len = known.iter().map(|on| on.len()).min().unwrap_or(0);
            // The members' on/off as assigned at the window's step before.
            let mut assigned: Option<Vec<bool>> = None;
            for (t, (&on_col, &start_col)) in on_cols.iter().zip(start_cols).enumerate() {
                let Some(k) = (window.start + t).checked_sub(self.first) else { continue };
                let k = if k < len {
                    k
                } else {
                    // Past the hint: the same hour a day before, if the hint has it.
                    match self.day.and_then(|day| k.checked_sub(day)) {
                        Some(before) if before < len => before,
                        _ => break,
                    }
                };
                let now: Vec<bool> = known.iter().map(|on| on[k]).collect();
                start.push((on_col, now.iter().filter(|&&on| on).count() as f64));
                // A fleet's starts are integers too (a single unit's follow
                // from its on/off): those from the step before to this one.
                let previous = assigned.replace(now.clone()).or_else(|| {
                    let k = k.checked_sub(1)?;
                    Some(known.iter().map(|on| on[k]).collect())
                });
                if fleet.is_some()
                    && let Some(before) = previous
                {
                    let starts = now.iter().zip(&before).filter(|&(&on, &was)| on && !was).count();
                    start.push((start_col, starts as f64));
                }
            }
        }
        start
    }
}

/// The MIP start of [`MipStart::Rounding`](crate::MipStart::Rounding):
/// every commitment column of `model` at the LP relaxation's value `x`
/// (of the same model relaxed, so the same columns) rounded up, a unit on
/// at any fraction and a fleet's count to the next whole number. Rounding
/// up keeps the capacity the relaxation used; the starts, and any other
/// integer column, are left to HiGHS to complete.
pub(crate) fn rounded(model: &Model, x: &[f64]) -> Vec<(Col, f64)> {
    // A relaxation's value within this of a whole number is that number.
    const WHOLE: f64 = 1e-6;
    commitment_columns(model)
        .filter_map(|col| x.get(col.0).map(|&value| (col, (value - WHOLE).ceil().max(0.0))))
        .collect()
}

/// The on/off (or units on) columns of every committed unit and fleet of
/// `model`: what [`rounded`] sets.
pub(crate) fn commitment_columns(model: &Model) -> impl Iterator<Item = Col> + '_ {
    model
        .vars
        .iter()
        .filter_map(|vars| if let AssetVars::Unit(UnitVars { on: Some(on), .. }) = vars { Some(on) } else { None })
        .flatten()
        .copied()
}
