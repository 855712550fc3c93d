//! A long horizon decomposed into blocks solved in parallel.
//!
//! One MILP over a year of unit commitment is slow to prove and heavy to
//! hold; a rolling horizon is fast but sequential. A decomposition cuts the
//! horizon into `blocks` consecutive blocks and solves them side by side on
//! rayon, then makes their seams consistent:
//!
//! 1. **Relaxation.** The LP relaxation of the whole horizon is solved
//!    once. Its optimum bounds the cost of every schedule from below (the
//!    reported [`Decomposed::lower_bound`]), and its storage levels, unit
//!    states and peak import at each block's first step are the state that
//!    block starts from: how a block knows what the months before it left
//!    in a seasonal store.
//! 2. **Blocks.** Block `k` covers steps `s[k]..s[k+1]` and is solved, with
//!    `seam` steps of look-ahead past its end, from that estimated state
//!    (units held to no minimum up or down time at its start), its stores
//!    ending at the relaxation's levels, so that a block neither empties a
//!    store the weeks after it need nor fills one they do not (if it cannot
//!    reach them, it ends free). The blocks are independent, so they run in
//!    parallel.
//! 3. **Seams.** In order, each seam `s[k]` is re-solved over
//!    `s[k] − seam .. s[k] + seam`, starting from the stitched schedule's
//!    true state and ending where block `k` stands: the same storage levels,
//!    the same on/off states over the units' longest minimum up or down time
//!    (the window's last steps), and, for units with ramp limits, the same
//!    output. A start-up trajectory under way across either end of a seam's
//!    window is carried: a start just after the window gives its start-up
//!    in the window's last steps, and one begun before it is made. Block
//!    `k`'s schedule then continues from the seam without breaking any
//!    constraint. If no such repair exists, the seam window
//!    doubles towards the next seam, and as a last resort the rest of block
//!    `k` is solved again from the true state, as a rolling horizon would.
//!
//! The stitched schedule is therefore feasible for the whole case (its
//! invariants are what [`crate::verify::check`] checks), and its cost and
//! emissions are recomputed from its flows. The relaxation's optimum says
//! how far from optimal it is at most ([`Decomposed::gap_to_lower_bound`]).
//!
//! Seams fall on multiples of every shiftable load's window, so that no
//! shifting window is cut; a case with a periodic store (whose level at the
//! start is chosen by the optimiser over the whole horizon) is refused.

use std::collections::BTreeMap;
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;
use volta_engine::{AssetKind, Case};

use crate::Infeasible;
use crate::error::DispatchError;
use crate::model::{AssetState, CarriedState, Terminal, Window, steps_covering};
use crate::options::{Objective, Options};
use crate::plan::{Detail, Infeasibility, Schedule, Solution, SolveStats, Status};
use crate::rolling::{WindowReport, append, carry, gap_below, priced, slice, starts_under_way, worse};

/// Blocks a horizon may be cut into.
pub const MAX_BLOCKS: usize = 1024;

/// How to cut the horizon into blocks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decomposition {
    /// Blocks, solved in parallel (at least 1).
    pub blocks: usize,
    /// Half the width of a seam's window, steps; also each block's
    /// look-ahead past its end. `None`: a day's steps, at least one more
    /// than the longest minimum up or down time.
    pub seam_steps: Option<usize>,
    /// Solver options for the relaxation and every block and seam. The
    /// blocks run side by side on rayon's pool, each HiGHS with
    /// [`Options::threads`] (HiGHS takes one thread count per process, so the
    /// relaxation's is the blocks'): one thread avoids oversubscribing cores.
    pub options: Options,
}

impl Decomposition {
    /// `blocks` blocks with the default seams.
    #[must_use]
    pub fn new(blocks: usize, options: Options) -> Self {
        Self { blocks, seam_steps: None, options }
    }
}

/// How one seam was made consistent.
#[derive(Debug, Clone, Serialize)]
pub struct SeamReport {
    /// The step where its block starts.
    pub at: usize,
    /// The window solved last (the one kept).
    pub window: WindowReport,
    /// Windows tried: 1 when the first repair held.
    pub attempts: usize,
    /// Whether the rest of the block was solved again from the true state.
    pub replaced_block: bool,
}

/// A stage of a decomposition, for progress reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The relaxation of the whole horizon is solved.
    Relaxation,
    /// A block is solved (blocks finish in any order).
    Block {
        /// Which block, from 0.
        index: usize,
    },
    /// The seam at the start of a block is consistent.
    Seam {
        /// The block it starts, from 1.
        index: usize,
    },
}

/// The stitched result of a decomposition.
#[derive(Debug, Clone, Serialize)]
pub struct Decomposed {
    /// The worst status of the blocks' and seams' solves;
    /// [`Status::Interrupted`] when cancelled.
    pub status: Status,
    /// The whole horizon, stitched; its cost and emissions are recomputed
    /// from its flows. A prefix when a seam could not be made.
    pub schedule: Option<Schedule>,
    /// The stitched schedule's value of the objective minimised.
    pub objective: Option<f64>,
    /// The optimum of the whole horizon's LP relaxation, at most the cost of
    /// the best schedule (for the cost objective).
    pub lower_bound: Option<f64>,
    /// Seconds solving the relaxation.
    pub relaxation_seconds: f64,
    /// Half the width of each seam's window, steps.
    pub seam_steps: usize,
    /// One report per block, in order.
    pub blocks: Vec<WindowReport>,
    /// One report per seam, in order.
    pub seams: Vec<SeamReport>,
    /// Why the case, or the window that failed, is infeasible.
    pub infeasibility: Option<Infeasibility>,
}

impl Decomposed {
    /// `(cost − lower_bound) / cost`: at most how far from optimal the
    /// stitched schedule is. `None` without a bound or a schedule.
    #[must_use]
    pub fn gap_to_lower_bound(&self) -> Option<f64> {
        gap_below(self.schedule.as_ref(), self.lower_bound)
    }

    /// Seconds in HiGHS (the relaxation, the blocks and the seams) and
    /// seconds building their models.
    #[must_use]
    pub fn seconds(&self) -> (f64, f64) {
        let windows = self.blocks.iter().chain(self.seams.iter().map(|s| &s.window));
        windows.fold((self.relaxation_seconds, 0.0), |(s, b), w| (s + w.solve_seconds, b + w.build_seconds))
    }

    /// As the result of one solve: the relaxation is the best bound, the gap
    /// to it the gap, and the time is the relaxation's, the blocks' and the
    /// seams' together.
    #[must_use]
    pub fn into_solution(self) -> Solution {
        let gap = self.gap_to_lower_bound();
        let (solve_seconds, build_seconds) = self.seconds();
        let stats = SolveStats { solve_seconds, build_seconds, ..SolveStats::default() };
        Solution {
            status: self.status,
            objective: self.objective,
            best_bound: self.lower_bound,
            gap,
            stats,
            schedule: self.schedule,
            infeasibility: self.infeasibility,
            exact: None,
        }
    }
}

/// Schedules `case` in `d.blocks` blocks solved in parallel (see the
/// module). `progress` is called after each stage, from any thread.
///
/// # Errors
/// [`DispatchError::Option`] for a block count or seam width the horizon
/// cannot hold, the CO2 objective, or a periodic store; solver errors.
/// Cancellation is a status, not an error.
pub fn decompose(
    case: &Case,
    d: &Decomposition,
    progress: &(dyn Fn(Stage) + Sync),
) -> Result<Decomposed, DispatchError> {
    crate::check_options(&d.options)?;
    if d.options.objective == Objective::Co2 {
        return Err(DispatchError::Option(
            "a decomposition minimises cost or a weighted sum, not CO2 alone (its two solves need the whole horizon)"
                .to_owned(),
        ));
    }
    if d.blocks > 1 {
        crate::whole_horizon(case, "a decomposition")?;
    }
    let total = case.grid().len();
    let holds = holds(case);
    let seam = seam_steps(case, d.seam_steps, &holds)?;
    let starts = block_starts(total, d.blocks, seam, alignment(case))?;
    let mut run = Run {
        case,
        d,
        seam,
        holds,
        starts,
        blocks: Vec::new(),
        seams: Vec::new(),
        under_way: Vec::new(),
        status: Status::Optimal,
    };
    match run.solve(progress) {
        Err(DispatchError::Cancelled) => Ok(run.result(Status::Interrupted, None, None, 0.0, None)),
        other => other,
    }
}

/// The longest minimum up or down time of each committed unit, in steps (at
/// least one: a seam holds the state its block's first start is read from).
/// A unit's time off covers its start-up and shut-down trajectories, so
/// a seam that holds it holds every trajectory that crosses the seam's end.
fn holds(case: &Case) -> BTreeMap<usize, usize> {
    let h = case.grid().step_hours();
    case.assets()
        .iter()
        .enumerate()
        .filter_map(|(i, asset)| {
            let uc = match &asset.kind {
                AssetKind::Thermal(th) => th.commitment.as_ref(),
                AssetKind::Converter(cv) => cv.commitment.as_ref(),
                AssetKind::Load(_) | AssetKind::Renewable(_) | AssetKind::Grid(_) | AssetKind::Storage(_) => None,
            }?;
            Some((i, steps_covering(uc.min_up_h, h).max(steps_covering(uc.min_off_h(h), h)).max(1)))
        })
        .collect()
}

/// Steps every seam falls on a multiple of: the shiftable loads' windows.
fn alignment(case: &Case) -> usize {
    let gcd = |mut a: usize, mut b: usize| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    case.assets()
        .iter()
        .filter_map(|a| match &a.kind {
            AssetKind::Load(load) => load.shiftable.as_ref().and_then(|s| case.grid().steps_in(s.window_h)),
            AssetKind::Renewable(_)
            | AssetKind::Thermal(_)
            | AssetKind::Converter(_)
            | AssetKind::Grid(_)
            | AssetKind::Storage(_) => None,
        })
        .filter(|&w| w > 0)
        .fold(1, |acc, w| acc / gcd(acc, w) * w)
}

/// The seams' half width: as asked, or a day; at least one step more than
/// the longest hold, so that what a seam holds lies inside its block.
fn seam_steps(case: &Case, asked: Option<usize>, holds: &BTreeMap<usize, usize>) -> Result<usize, DispatchError> {
    let least = holds.values().max().map_or(1, |m| m + 1);
    match asked {
        Some(0) => Err(DispatchError::Option("seam_steps must be at least 1".to_owned())),
        Some(s) if s < least => Err(DispatchError::Option(format!(
            "seam_steps ({s}) must exceed the longest minimum up or down time ({} steps)",
            least - 1
        ))),
        Some(s) => Ok(s),
        None => Ok(case.grid().steps_in(24.0).unwrap_or(24).max(least)),
    }
}

/// The first step of each block: `blocks` near-equal blocks whose starts
/// fall on multiples of `align`, each at least two seams long (unless there
/// is one).
fn block_starts(total: usize, blocks: usize, seam: usize, align: usize) -> Result<Vec<usize>, DispatchError> {
    if blocks == 0 || blocks > MAX_BLOCKS {
        return Err(DispatchError::Option(format!("blocks must be in 1..={MAX_BLOCKS}, not {blocks}")));
    }
    if blocks == 1 {
        // One block has no seam: the case solved whole.
        return Ok(vec![0]);
    }
    let seam = seam.div_ceil(align) * align;
    let starts: Vec<usize> = (0..blocks).map(|k| k * total / blocks / align * align).collect();
    let ends = starts.iter().skip(1).copied().chain([total]);
    if starts.iter().zip(ends).any(|(&s, e)| e < s + 2 * seam) {
        let most = (total / (2 * seam)).max(1);
        return Err(DispatchError::Option(format!(
            "blocks: {blocks} blocks of {total} steps leave some shorter than two seams ({} steps{}); use at most {most}",
            2 * seam,
            if align > 1 { format!(", seams on multiples of {align} steps") } else { String::new() },
        )));
    }
    Ok(starts)
}

/// How a seam ended.
enum Seam {
    Done,
    /// No window around it has a schedule; why, if known.
    Failed(Option<Infeasibility>),
}

struct Run<'a> {
    case: &'a Case,
    d: &'a Decomposition,
    seam: usize,
    holds: BTreeMap<usize, usize>,
    starts: Vec<usize>,
    blocks: Vec<WindowReport>,
    seams: Vec<SeamReport>,
    /// The start-ups under way where the stitched schedule ends: units off
    /// whose next start, in the plan the schedule's last steps came from, is
    /// this many steps on and began its start-up before the end.
    under_way: Vec<(usize, usize)>,
    status: Status,
}

impl Run<'_> {
    fn solve(&mut self, progress: &(dyn Fn(Stage) + Sync)) -> Result<Decomposed, DispatchError> {
        let (case, total) = (self.case, self.case.grid().len());
        let started = Instant::now();
        let (bound, relaxed) = crate::relaxation(case, &self.d.options)?;
        let relaxation_seconds = started.elapsed().as_secs_f64();
        progress(Stage::Relaxation);
        let lower_bound = bound.filter(|_| self.d.options.objective == Objective::Cost);
        let Some(relaxed) = relaxed else {
            // Not even the relaxation is feasible: neither is the case.
            let state = CarriedState::default();
            let why = crate::explain::explain(case, &Window::whole(case, &state, false), &self.d.options)?;
            return Ok(self.result(Status::Infeasible, None, None, relaxation_seconds, why));
        };
        // Blocks, in parallel, from the relaxation's state at their start.
        let guesses: Vec<CarriedState> = self.starts.iter().map(|&s| guess(case, &relaxed, s)).collect();
        let (starts, seam, options) = (&self.starts, self.seam, &self.d.options);
        let ends: Vec<usize> =
            (0..starts.len()).map(|k| starts.get(k + 1).map_or(total, |&next| (next + seam).min(total))).collect();
        let targets: Vec<Option<Terminal>> =
            ends.iter().map(|&end| (end < total).then(|| storage_at(&relaxed, end))).collect();
        let solved: Vec<Result<Solution, DispatchError>> = (0..starts.len())
            .into_par_iter()
            .map(|k| {
                let start = starts[k];
                let end = ends[k];
                let window = Window {
                    start,
                    len: end - start,
                    state: &guesses[k],
                    fleets: options.fleets,
                    hint: None,
                    terminal: targets[k].as_ref(),
                };
                // A store's level that the block cannot reach is a guess
                // too far: the block ends free instead.
                let first = if window.terminal.is_some() { Infeasible::Retry } else { Infeasible::Explain };
                let solution = match crate::solve_then(case, &window, options, None, first) {
                    Ok(s) if s.status == Status::Infeasible && first == Infeasible::Retry => {
                        crate::solve(case, &Window { terminal: None, ..window }, options, None)
                    }
                    other => other,
                };
                progress(Stage::Block { index: k });
                solution
            })
            .collect();
        let mut plans = Vec::with_capacity(solved.len());
        for (k, solution) in solved.into_iter().enumerate() {
            let solution = solution?;
            self.blocks.push(report(self.starts[k], ends[k] - self.starts[k], &solution));
            self.status = worse(self.status, solution.status);
            if k == 0 && solution.schedule.is_none() {
                // The first block starts from the case's own state.
                return Ok(self.result(self.status, None, lower_bound, relaxation_seconds, solution.infeasibility));
            }
            plans.push(solution.schedule);
        }
        // Seams, in order, from the stitched schedule's true state.
        let first_end = self.starts.get(1).map_or(total, |&s| s - self.seam);
        let mut plans = plans.into_iter();
        let mut stitched = plans.next().flatten().map(|p| {
            self.under_way = starts_under_way(case, &p, first_end);
            slice(p, 0, first_end)
        });
        for (k, block) in plans.enumerate().map(|(k, block)| (k + 1, block)) {
            let Some(acc) = stitched.as_mut() else { break };
            let next_end = self.starts.get(k + 1).map_or(total, |&s| s - self.seam);
            if let Seam::Failed(why) = self.seam(acc, k, block, next_end)? {
                let prefix = stitched.map(|s| priced(case, s));
                return Ok(self.result(self.status, prefix, lower_bound, relaxation_seconds, why));
            }
            progress(Stage::Seam { index: k });
        }
        let schedule = stitched.map(|s| priced(case, s));
        Ok(self.result(self.status, schedule, lower_bound, relaxation_seconds, None))
    }

    /// Makes the seam at the start of block `k` consistent and appends the
    /// repaired steps and the rest of the block, up to `next_end`, to `acc`.
    fn seam(
        &mut self,
        acc: &mut Schedule,
        k: usize,
        block: Option<Schedule>,
        next_end: usize,
    ) -> Result<Seam, DispatchError> {
        let (case, total) = (self.case, self.case.grid().len());
        let at = self.starts[k];
        let from = at - self.seam;
        let mut state = carry(case, acc);
        for &(i, steps) in &self.under_way {
            if let Some(AssetState::Unit { starts_in, .. }) = state.assets.get_mut(&i) {
                *starts_in = Some(steps);
            }
        }
        let mut attempts = 0;
        let mut reach = self.seam;
        loop {
            let end = at + reach;
            // The last resort: the rest of the block from the true state,
            // with the look-ahead the block had.
            let replace = block.is_none() || end > next_end;
            let terminal = (!replace).then(|| block.as_ref().map(|b| self.terminal(b, end - at))).flatten();
            let len = if replace { (next_end + self.seam).min(total) - from } else { end - from };
            let window =
                Window { start: from, len, state: &state, fleets: false, hint: None, terminal: terminal.as_ref() };
            attempts += 1;
            // Only the last resort's infeasibility is reported, and explained.
            let infeasible = if replace { Infeasible::Explain } else { Infeasible::Retry };
            let solution = crate::solve_then(case, &window, &self.d.options, None, infeasible)?;
            let report = SeamReport { at, window: report(from, len, &solution), attempts, replaced_block: replace };
            if solution.status == Status::Infeasible && !replace {
                reach *= 2;
                continue;
            }
            self.status = worse(self.status, solution.status);
            self.seams.push(report);
            let Some(plan) = solution.schedule else { return Ok(Seam::Failed(solution.infeasibility)) };
            let kept = if replace { next_end } else { end };
            if replace {
                self.under_way = starts_under_way(case, &plan, next_end - from);
            }
            append(acc, slice(plan, 0, kept - from));
            if let (Some(block), false) = (block, replace) {
                self.under_way = starts_under_way(case, &block, next_end - at);
                append(acc, slice(block, end - at, next_end - at));
            }
            acc.grid = case.grid().window(0, next_end);
            return Ok(Seam::Done);
        }
    }

    /// Where `block` stands after its step `upto − 1`, as a seam window
    /// ending there must match.
    fn terminal(&self, block: &Schedule, upto: usize) -> Terminal {
        let mut terminal = storage_at(block, upto);
        for (i, (asset, plan)) in self.case.assets().iter().zip(&block.assets).enumerate() {
            let Detail::Unit { output_kw, on, .. } = &plan.detail else { continue };
            if let (Some(on), Some(&hold)) = (on, self.holds.get(&i)) {
                terminal.on.insert(i, on[upto.saturating_sub(hold)..upto].to_vec());
            }
            if has_ramps(&asset.kind) {
                terminal.power.insert(i, output_kw[upto - 1]);
            }
        }
        terminal.starts_after = starts_under_way(self.case, block, upto).into_iter().collect();
        terminal
    }

    fn result(
        &mut self,
        status: Status,
        schedule: Option<Schedule>,
        lower_bound: Option<f64>,
        relaxation_seconds: f64,
        infeasibility: Option<Infeasibility>,
    ) -> Decomposed {
        let objective = schedule.as_ref().map(|plan| match self.d.options.objective {
            Objective::Cost => plan.cost,
            Objective::Co2 => plan.co2_kg,
            Objective::Weighted { cost_weight, co2_weight } => cost_weight * plan.cost + co2_weight * plan.co2_kg,
        });
        Decomposed {
            status,
            schedule,
            objective,
            lower_bound,
            relaxation_seconds,
            seam_steps: self.seam,
            blocks: std::mem::take(&mut self.blocks),
            seams: std::mem::take(&mut self.seams),
            infeasibility,
        }
    }
}

fn report(start: usize, len: usize, solution: &Solution) -> WindowReport {
    WindowReport {
        start,
        len,
        status: solution.status,
        objective: solution.objective,
        solve_seconds: solution.stats.solve_seconds,
        build_seconds: solution.stats.build_seconds,
        warm_start: 0,
        proven_by_relaxation: solution.stats.proven_by_relaxation,
    }
}

/// The storage levels of `plan` after its step `upto − 1`.
fn storage_at(plan: &Schedule, upto: usize) -> Terminal {
    let mut terminal = Terminal::default();
    for (i, plan) in plan.assets.iter().enumerate() {
        if let Detail::Storage { energy_kwh, .. } = &plan.detail {
            terminal.storage.insert(i, energy_kwh[upto - 1]);
        }
    }
    terminal
}

fn has_ramps(kind: &AssetKind) -> bool {
    match kind {
        AssetKind::Thermal(th) => th.ramp_up_kw_per_h.is_some() || th.ramp_down_kw_per_h.is_some(),
        AssetKind::Converter(cv) => cv.ramp_up_kw_per_h.is_some() || cv.ramp_down_kw_per_h.is_some(),
        AssetKind::Load(_) | AssetKind::Renewable(_) | AssetKind::Grid(_) | AssetKind::Storage(_) => false,
    }
}

/// The state a block starting at step `at` starts from: the relaxation's,
/// with every unit free of minimum up and down times and, if on, at an
/// output it may run at.
fn guess(case: &Case, relaxed: &Schedule, at: usize) -> CarriedState {
    if at == 0 {
        return CarriedState::default();
    }
    let mut state = carry(case, &slice(relaxed.clone(), 0, at));
    for (&i, carried) in &mut state.assets {
        if let AssetState::Unit { power_kw, on, hours_in_state, .. } = carried {
            let (min, max) = match &case.assets()[i].kind {
                AssetKind::Thermal(th) => (th.min_power_kw, th.capacity_kw),
                AssetKind::Converter(cv) => (cv.min_power_kw, cv.capacity_kw),
                AssetKind::Load(_) | AssetKind::Renewable(_) | AssetKind::Grid(_) | AssetKind::Storage(_) => continue,
            };
            *hours_in_state = f64::INFINITY;
            *power_kw = if *on { power_kw.clamp(min.max(0.0), max.max(min)) } else { 0.0 };
        }
    }
    state
}

#[cfg(test)]
mod tests {
    use volta_engine::case::{CaseReader, Format};

    use super::*;

    /// A load of 5 kW on a grid whose price falls every hour, and a battery
    /// that only loses by charging (90 % efficient, up to 9 kWh an hour):
    /// left alone it stays empty; holding energy, it serves the load as
    /// early as it can (5 kWh an hour).
    const BATTERY: &str = r#"
name = "seams"
[time]
start = "2024-01-01T00:00"
timezone = "UTC"
step = "1h"
steps = 16
[[buses]]
id = "elec"
carrier = "electricity"
[[assets]]
id = "load"
type = "load"
bus = "elec"
demand_kw = 5
[[assets]]
id = "grid"
type = "grid"
bus = "elec"
import_price = [0.30, 0.29, 0.28, 0.27, 0.26, 0.25, 0.24, 0.23, 0.22, 0.21, 0.20, 0.19, 0.18, 0.17, 0.16, 0.15]
[[assets]]
id = "battery"
type = "storage"
bus = "elec"
energy_capacity_kwh = 100
charge_power_kw = 10
discharge_power_kw = 10
charge_efficiency = 0.9
initial_soc = 0
"#;

    fn case(text: &str) -> Case {
        CaseReader::new().read_str(text, Format::Toml).expect("valid case").case
    }

    fn solved(case: &Case, start: usize, len: usize, state: &CarriedState) -> Schedule {
        let window = Window { start, len, state, fleets: false, hint: None, terminal: None };
        crate::solve(case, &window, &Options::default(), None).expect("solves").schedule.expect("a schedule")
    }

    fn level(plan: &Schedule, t: usize) -> f64 {
        match &plan.assets[2].detail {
            Detail::Storage { energy_kwh, .. } => energy_kwh[t],
            other @ (Detail::Load { .. } | Detail::Renewable { .. } | Detail::Unit { .. } | Detail::Grid { .. }) => {
                panic!("not a store: {other:?}")
            }
        }
    }

    /// A run of `case` in two blocks starting at 0 and 8, seams of 2 steps.
    fn run<'a>(case: &'a Case, d: &'a Decomposition) -> Run<'a> {
        Run {
            case,
            d,
            seam: 2,
            holds: holds(case),
            starts: vec![0, 8],
            blocks: Vec::new(),
            seams: Vec::new(),
            under_way: Vec::new(),
            status: Status::Optimal,
        }
    }

    /// Block 1 as solved from a state that put `kwh` in the battery.
    fn block_holding(case: &Case, kwh: f64) -> Schedule {
        let mut state = CarriedState::default();
        state.assets.insert(2, AssetState::Storage { energy_kwh: kwh });
        solved(case, 8, 8, &state)
    }

    #[test]
    fn a_seam_window_widens_until_its_block_can_be_reached() {
        let case = case(BATTERY);
        let d = Decomposition::new(2, Options::default());
        let mut run = run(&case, &d);
        let mut acc = solved(&case, 0, 6, &CarriedState::default());
        assert!(level(&acc, 5).abs() < 1e-9, "left alone, the battery stays empty");
        // Block 1 starts with 60 kWh: 50 after its second step, which 4 steps
        // of charging (36 kWh) cannot reach; 40 after its fourth, which 6
        // (54 kWh) can.
        let block = block_holding(&case, 60.0);
        assert!(matches!(run.seam(&mut acc, 1, Some(block.clone()), 16), Ok(Seam::Done)));
        let report = &run.seams[0];
        assert_eq!((report.at, report.attempts, report.replaced_block), (8, 2, false));
        assert_eq!((report.window.start, report.window.len), (6, 6));
        assert_eq!(acc.grid, case.grid().window(0, 16));
        // The window ends where block 1 stands at step 11, and block 1 goes on.
        assert!((level(&acc, 11) - level(&block, 3)).abs() < 1e-6);
        assert_eq!(level(&acc, 15), level(&block, 7));
        let errors = crate::verify::check(&case, &priced(&case, acc), 1e-6);
        assert!(errors.is_empty(), "{}", errors.join("\n"));
    }

    /// A block two seams long keeps none of its own steps: its seam's window
    /// ends where the next one starts.
    #[test]
    fn a_seam_window_may_end_where_the_next_begins() {
        let case = case(BATTERY);
        let d = Decomposition::new(2, Options::default());
        let mut run = run(&case, &d);
        let mut acc = solved(&case, 0, 6, &CarriedState::default());
        let block = block_holding(&case, 0.0);
        assert!(matches!(run.seam(&mut acc, 1, Some(block), 10), Ok(Seam::Done)));
        let report = &run.seams[0];
        assert_eq!((report.attempts, report.replaced_block), (1, false));
        assert_eq!((report.window.start, report.window.len), (6, 4));
        assert_eq!(acc.grid, case.grid().window(0, 10));
    }

    #[test]
    fn a_seam_that_no_window_can_make_solves_the_rest_of_the_block_again() {
        let case = case(BATTERY);
        let d = Decomposition::new(2, Options::default());
        let mut run = run(&case, &d);
        let mut acc = solved(&case, 0, 6, &CarriedState::default());
        // With the next seam's window from step 14: 90 and 80 kWh are out
        // of reach of both windows that end before it.
        let block = block_holding(&case, 100.0);
        assert!(matches!(run.seam(&mut acc, 1, Some(block), 14), Ok(Seam::Done)));
        let report = &run.seams[0];
        assert_eq!((report.attempts, report.replaced_block), (3, true));
        // Solved again with the block's look-ahead, kept up to step 14.
        assert_eq!((report.window.start, report.window.len), (6, 10));
        assert_eq!(acc.grid, case.grid().window(0, 14));
        let acc = priced(&case, acc);
        let errors = crate::verify::check(&case, &acc, 1e-6);
        assert!(errors.is_empty(), "{}", errors.join("\n"));
        assert!(level(&acc, 13).abs() < 1e-9, "solved again, the battery stays empty");
    }

    #[test]
    fn blocks_start_on_aligned_steps_and_are_at_least_two_seams_long() {
        assert_eq!(block_starts(100, 1, 24, 1).expect("one block"), vec![0]);
        assert_eq!(block_starts(10, 1, 24, 1).expect("one block of any length"), vec![0]);
        assert_eq!(block_starts(168, 3, 24, 1).expect("fits"), vec![0, 56, 112]);
        // Shifting windows of 6 steps: starts on multiples of 6.
        assert_eq!(block_starts(100, 4, 6, 6).expect("fits"), vec![0, 24, 48, 72]);
        assert_eq!(block_starts(100, 3, 5, 6).expect("fits"), vec![0, 30, 66]);
        for (blocks, wanted) in [(0, "1..=1024"), (MAX_BLOCKS + 1, "1..=1024"), (4, "use at most 3")] {
            let err = block_starts(168, blocks, 24, 1).expect_err("refused");
            assert!(err.to_string().contains(wanted), "{err}");
        }
    }

    #[test]
    fn seams_hold_more_than_the_longest_minimum_time() {
        let text = BATTERY.replace("[[buses]]", "[[carriers]]\nid = \"fuel\"\nname = \"fuel\"\n[[buses]]").replace(
            "[[assets]]\nid = \"battery\"",
            "[[assets]]\nid = \"gen\"\ntype = \"thermal\"\nbus = \"elec\"\ncapacity_kw = 10\nfuel_carrier = \"fuel\"\nfuel_price = 0.05\nefficiency = 0.4\n  \
             [assets.commitment]\n  min_up_h = 3\n  min_down_h = 5\n[[assets]]\nid = \"battery\"",
        );
        let case = case(&text);
        assert_eq!(holds(&case).into_iter().collect::<Vec<_>>(), vec![(2, 5)]);
        let held = holds(&case);
        assert_eq!(seam_steps(&case, None, &held).expect("default"), 24);
        assert_eq!(seam_steps(&case, Some(6), &held).expect("asked"), 6);
        let err = seam_steps(&case, Some(5), &held).expect_err("too short");
        assert!(err.to_string().contains("longest minimum up or down time (5 steps)"), "{err}");
    }
}
