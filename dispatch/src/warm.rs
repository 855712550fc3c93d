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
//! by the day). A complete start costs HiGHS one LP to check; a partial
//! one (new steps without a day before) a small search to complete. A
//! start that fails either is dropped; the problem, and so its optimum, is
//! the same either way.
//!
//! Measured with `benches/src/bin/rolling-year.rs` (one thread, HiGHS's
//! 1e-4 gap, MIPs not presolved, see `strategy`; the same stitched cost
//! to every digit both ways): a week of the Kazarlis 10-unit day in 24-hour
//! windows keeping 12 hours, 8.68 s cold and 4.45 s warm (1.95x); eight
//! weeks of the campus in 48-hour windows (48 binaries, solved at the root
//! in about 30 ms), 1.75 s cold and 1.65 s warm; Kazarlis 20 (fleets), 48.9
//! s cold and 47.6 s warm, its windows' time going to the proof, not the
//! search. Before the day-before fill (partial starts only) and with
//! presolve, starts cost more than they saved on windows of fewer than 128
//! integer columns, which then started cold; both are gone. Keeping one
//! HiGHS model alive across windows would save only the build (0.03 s of
//! the Kazarlis week): HiGHS starts a changed MIP again either way.
//!
//! A problem with no window before it can start from its own LP relaxation
//! instead ([`MipStart::Rounding`](crate::MipStart::Rounding), see
//! [`rounded`]): one LP more, and a first schedule before branch and bound
//! begins. Volta chooses it for a MIP of 1,000 integer columns or more
//! (see `strategy` for what it measured), so a rolling horizon's small
//! first window starts cold.

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
    model
        .vars
        .iter()
        .filter_map(|vars| if let AssetVars::Unit(UnitVars { on: Some(on), .. }) = vars { Some(on) } else { None })
        .flatten()
        .filter_map(|&col| x.get(col.0).map(|&value| (col, (value - WHOLE).ceil().max(0.0))))
        .collect()
}
