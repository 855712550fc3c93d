//! Running HiGHS on a built model and reading the schedule back.

use std::collections::HashMap;
use std::time::Instant;

use volta_engine::{AssetKind, Case};

use crate::error::DispatchError;
use crate::fleet;
use crate::model::{AssetVars, Mode, Model, UnitVars, Window, steps_covering};
use crate::options::Options;
use crate::plan::{
    AssetSchedule, BusSchedule, CostCategory, CostItem, Detail, EmissionItem, Flow, Schedule, SolveStats, Status,
};
use crate::strategy::{Class, MipStart, Resolved};
use crate::warm;
use volta_lp::{Col, Integrality, Lin, Outcome, Settings};

/// What HiGHS returned, before interpretation.
#[derive(Debug)]
pub(crate) struct Raw {
    pub(crate) status: Status,
    pub(crate) objective: Option<f64>,
    pub(crate) best_bound: Option<f64>,
    pub(crate) gap: Option<f64>,
    /// Column values, when a primal solution exists.
    pub(crate) x: Option<Vec<f64>>,
    /// Row duals, for an LP with a solution.
    pub(crate) duals: Option<Vec<f64>>,
    pub(crate) seconds: f64,
    /// HiGHS could not tell infeasible from unbounded.
    pub(crate) ambiguous: bool,
    /// How HiGHS was asked to solve.
    pub(crate) strategy: Resolved,
}

/// Solves `model` minimising `objective`, a MIP from the partial
/// assignment `start` (see [`volta_lp::solve_from`]).
pub(crate) fn run(
    mut model: Model,
    objective: &Lin,
    options: &Options,
    start: &[(Col, f64)],
) -> Result<(Model, Raw), DispatchError> {
    // The LP is consumed by HiGHS; keep the rest of the model for reading.
    let lp = std::mem::replace(&mut model.lp, volta_lp::solve::placeholder());
    let (settings, strategy) = settings(options, &lp);
    let s = volta_lp::solve_from(lp, objective, &settings, start).map_err(DispatchError::Solver)?;
    let raw = raw_of(s, strategy);
    Ok((model, raw))
}

/// What a solve found, as dispatch reads it.
fn raw_of(s: volta_lp::Solution, strategy: Resolved) -> Raw {
    Raw {
        status: status_of(s.outcome),
        objective: s.objective,
        best_bound: s.best_bound,
        gap: s.gap,
        x: s.x,
        duals: s.duals,
        seconds: s.seconds,
        ambiguous: s.ambiguous,
        strategy,
    }
}

/// HiGHS's settings for `options` and the problem `lp`, with the strategy
/// they resolve to for it.
pub(crate) fn settings(options: &Options, lp: &volta_lp::Lp) -> (Settings, Resolved) {
    let strategy = options.strategy.resolve(Class::of(lp));
    let settings = Settings {
        verbose: options.verbose,
        time_limit_s: options.time_limit_s,
        mip_gap: options.mip_gap,
        threads: options.threads,
        strategy: strategy.lp(),
    };
    (settings, strategy)
}

/// The status a solver outcome reports.
pub(crate) fn status_of(outcome: Outcome) -> Status {
    match outcome {
        Outcome::Optimal => Status::Optimal,
        Outcome::WithinGap => Status::WithinGap,
        Outcome::TimeLimit => Status::TimeLimit,
        Outcome::IterationLimit => Status::IterationLimit,
        Outcome::MemoryLimit => Status::MemoryLimit,
        Outcome::Interrupted => Status::Interrupted,
        Outcome::Infeasible => Status::Infeasible,
        Outcome::Unbounded => Status::Unbounded,
    }
}

/// Builds and solves one window of `case`; returns the model and the raw result.
pub(crate) fn solve_window(
    case: &Case,
    window: &Window<'_>,
    options: &Options,
    extra: &dyn Fn(&mut Model),
) -> Result<(Model, Raw, SolveStats), DispatchError> {
    let started = Instant::now();
    let mut model = Model::build(case, window, Integrality::Integer, Mode::Normal);
    extra(&mut model);
    let objective = model.objective(options.objective);
    let mut stats = SolveStats {
        columns: model.lp.num_cols(),
        rows: model.lp.num_rows(),
        binaries: model.lp.integers().len(),
        build_seconds: started.elapsed().as_secs_f64(),
        ..SolveStats::default()
    };
    let is_mip = model.lp.is_mip();
    let binaries = model.lp.integers().to_vec();
    let resolved = options.strategy.resolve(Class::of(&model.lp));
    let from_relaxation = resolved.mip_start;
    let start = match window.hint {
        Some(hint) => {
            // The window before's commitment first, the relaxation's
            // rounding where it says nothing (steps more than a day past
            // it); should the relaxation not prove that, its own rounding.
            // (On the campus's 96-hour windows keeping 48, where the hint
            // covers a day of the two new ones, the hint alone was given
            // to HiGHS and 2 windows of 46 were proven; the rounding alone
            // was proven in 45.)
            // Where no rounding can set every integer column (a fleet's
            // starts and stops), HiGHS completes the hint itself, as it
            // would the rounding: no LP is solved for it.
            let values = hint.start(&model, window);
            let set: std::collections::HashSet<usize> = values.iter().map(|(col, _)| col.0).collect();
            let missing: Vec<Col> = warm::commitment_columns(&model).filter(|col| !set.contains(&col.0)).collect();
            let completed = values.iter().copied().chain(missing.iter().map(|&col| (col, 0.0)));
            if every_integer(&model, &completed.collect::<Vec<_>>()).is_some() {
                relaxed_then_fixed(case, window, options, extra, &model, |x| {
                    let rounded = warm::rounded(&model, x);
                    let rest = rounded.iter().filter(|(col, _)| !set.contains(&col.0)).copied();
                    vec![values.iter().copied().chain(rest).collect(), rounded]
                })?
            } else {
                Start::partial(values)
            }
        }
        None if matches!(from_relaxation, Some(MipStart::Rounding | MipStart::Check)) => {
            relaxed_then_fixed(case, window, options, extra, &model, |x| vec![warm::rounded(&model, x)])?
        }
        None => Start::partial(Vec::new()),
    };
    if is_mip && let Some(mut raw) = start.proven(options) {
        stats.warm_start = if start.inherited { start.integers } else { 0 };
        // Reported as the MIP's strategy: its start is the answer.
        raw.strategy = resolved;
        stats.solve_seconds = raw.seconds;
        stats.strategy = Some(raw.strategy);
        stats.proven_by_relaxation = true;
        return Ok((model, raw, stats));
    }
    // A check the relaxation did not prove leaves HiGHS its own path.
    let start = if window.hint.is_none() && from_relaxation == Some(MipStart::Check) {
        Start { values: Vec::new(), integers: 0, ..start }
    } else {
        start
    };
    stats.warm_start = if start.inherited || window.hint.is_none() { start.integers } else { 0 };
    // The LPs behind the start spent part of the time limit: the MIP has the rest.
    let rest = Options { time_limit_s: remaining(options.time_limit_s, start.seconds), ..options.clone() };
    let (model, mut raw) = run(model, &objective, &rest, &start.values)?;
    stats.solve_seconds = raw.seconds + start.seconds;
    stats.strategy = Some(raw.strategy);
    // Marginal prices: the LP duals, or for a MILP those of the LP with its
    // binaries fixed at the solution.
    if options.prices
        && is_mip
        && let Some(x) = &raw.x
    {
        let started = Instant::now();
        let fixed: Vec<f64> = binaries.iter().map(|c| x[c.0]).collect();
        let mut lp_model = Model::build(case, window, Integrality::Fixed(fixed), Mode::Normal);
        extra(&mut lp_model);
        let objective = lp_model.objective(options.objective);
        let lp_options = Options { time_limit_s: None, mip_gap: None, ..options.clone() };
        if let Ok((_, fixed_raw)) = run(lp_model, &objective, &lp_options, &[]) {
            raw.duals = fixed_raw.duals;
        }
        stats.price_seconds = started.elapsed().as_secs_f64();
    }
    Ok((model, raw, stats))
}

/// A MIP start: the values handed to HiGHS, how many integer columns they
/// set, and the seconds the LPs behind them took. A complete start (every
/// column, from the LP with the integer columns fixed) carries that LP's
/// result, and, when the relaxation was solved for it, the relaxation's
/// optimum: a lower bound on every schedule of the window.
struct Start {
    values: Vec<(Col, f64)>,
    integers: usize,
    /// Whether the values are the first choice (a rolling window's: the
    /// window before's commitment), not a later one.
    inherited: bool,
    seconds: f64,
    /// The LP with the integer columns fixed, when it found the start.
    fixed: Option<Raw>,
    /// The LP relaxation's optimum.
    bound: Option<f64>,
}

impl Start {
    /// A start of integer columns only, which HiGHS completes itself.
    fn partial(values: Vec<(Col, f64)>) -> Self {
        Self { integers: values.len(), values, inherited: true, seconds: 0.0, fixed: None, bound: None }
    }

    /// The start as the window's answer, when the relaxation proves it
    /// within the MIP gap (HiGHS's 1e-4 unless the options say otherwise):
    /// its cost `u` and the relaxation's optimum `l` have `u − l ≤ gap·|u|`,
    /// the test HiGHS stops its own search on. Every integer column of the
    /// start is integral, so it is a schedule of the MIP, and no schedule
    /// costs less than `l`: the branch and bound could only confirm it.
    fn proven(&self, options: &Options) -> Option<Raw> {
        let fixed = self.fixed.as_ref().filter(|fixed| fixed.status == Status::Optimal)?;
        let (upper, lower) = (fixed.objective?, self.bound?);
        let gap = relative_gap(upper, lower);
        (gap <= allowed_gap(options)).then(|| Raw {
            status: if gap > 1e-6 { Status::WithinGap } else { Status::Optimal },
            objective: Some(upper),
            best_bound: Some(lower.min(upper)),
            gap: Some(gap),
            x: fixed.x.clone(),
            // The duals of the LP with the integer columns fixed: the
            // marginal prices of a MIP's schedule, when asked for.
            duals: options.prices.then(|| fixed.duals.clone()).flatten(),
            seconds: self.seconds,
            ambiguous: false,
            strategy: fixed.strategy,
        })
    }
}

/// HiGHS's default relative MIP gap.
const HIGHS_MIP_GAP: f64 = 1e-4;

/// The relative gap a MIP is solved to.
fn allowed_gap(options: &Options) -> f64 {
    options.mip_gap.unwrap_or(HIGHS_MIP_GAP)
}

/// `(upper − lower) / |upper|`, HiGHS's (and every MIP solver's) relative
/// gap; 0 when both are 0, never negative.
fn relative_gap(upper: f64, lower: f64) -> f64 {
    let difference = (upper - lower).max(0.0);
    if difference == 0.0 { 0.0 } else { difference / upper.abs().max(f64::MIN_POSITIVE) }
}

/// What is left of a time limit after `spent` seconds.
fn remaining(limit: Option<f64>, spent: f64) -> Option<f64> {
    limit.map(|limit| (limit - spent).max(0.0))
}

/// The values of `start` for every integer column of `model`, in their
/// order, when it sets them all.
fn every_integer(model: &Model, start: &[(Col, f64)]) -> Option<Vec<f64>> {
    let by_column: HashMap<usize, f64> = start.iter().map(|&(col, value)| (col.0, value)).collect();
    let integers = model.lp.integers();
    if integers.is_empty() {
        return None;
    }
    integers.iter().map(|col| by_column.get(&col.0).copied()).collect()
}

/// A start for `model` (built for `window`) from its LP relaxation: the
/// relaxation is solved, `choose` picks from its solution values of
/// integer columns, one choice or more in order of preference (the window
/// before's commitment, whatever the solution; the solution's commitment
/// rounded up, [`warm::rounded`]), and, for each choice that sets every
/// integer column (units without fleets or storage modes), the LP with them
/// fixed is solved again from the relaxation's basis
/// ([`volta_lp::solve_relaxed_then_fixed`]) until one is proven within
/// the gap. That choice, or else the first choice's schedule (the window
/// before's commitment: on the Kazarlis week the cheaper of the two did no
/// better), is then the start: complete, so HiGHS only checks it
/// (completing a partial start costs it an LP without presolve: on the
/// campus year 7.4 s, against 2.4 s), and the relaxation's optimum bounds
/// it, which may prove it within the gap ([`Start::proven`]): a rolling
/// window's start usually is, and its MIP is then not solved at all. When
/// the first choice does not set every integer column, HiGHS completes it
/// itself; no start when the relaxation has no solution (the MIP then says
/// why).
fn relaxed_then_fixed(
    case: &Case,
    window: &Window<'_>,
    options: &Options,
    extra: &dyn Fn(&mut Model),
    model: &Model,
    choose: impl FnOnce(&[f64]) -> Vec<Vec<(Col, f64)>>,
) -> Result<Start, DispatchError> {
    let mut relaxed = Model::build(case, window, Integrality::Relaxed, Mode::Normal);
    extra(&mut relaxed);
    let objective = relaxed.objective(options.objective);
    let lp_options = Options { mip_gap: None, ..options.clone() };
    let (settings, strategy) = settings(&lp_options, &relaxed.lp);
    let mut first = Vec::new();
    let proven = |relaxed: &volta_lp::Solution, fixed: &volta_lp::Solution| {
        let optimal = |s: &volta_lp::Solution| s.outcome == Outcome::Optimal;
        match (relaxed.objective, fixed.objective) {
            (Some(lower), Some(upper)) if optimal(relaxed) && optimal(fixed) => {
                relative_gap(upper, lower) <= allowed_gap(options)
            }
            _ => false,
        }
    };
    let solved = volta_lp::solve_relaxed_then_fixed(
        relaxed.lp,
        &objective,
        &settings,
        |x| {
            let mut choices = choose(x).into_iter();
            first = choices.next().unwrap_or_default();
            let whole = |choice: &[(Col, f64)]| every_integer(model, choice);
            whole(&first).into_iter().chain(choices.filter_map(|c| whole(&c))).collect()
        },
        proven,
    )
    .map_err(DispatchError::Solver)?;
    let mut start = Start { seconds: solved.relaxed.seconds, ..Start::partial(first) };
    start.seconds += solved.fixed.iter().map(|f| f.seconds).sum::<f64>();
    // The choice proven (the last tried), or else the first.
    let tried = solved.fixed.len();
    let pick = match solved.fixed.last() {
        Some(last) if proven(&solved.relaxed, last) => Some(tried - 1),
        _ => (tried > 0).then_some(0),
    };
    let Some(fixed) = pick.and_then(|k| solved.fixed.into_iter().nth(k)) else { return Ok(start) };
    let fixed = raw_of(fixed, strategy);
    if let Some(x) = &fixed.x {
        start.values = x.iter().enumerate().map(|(j, &value)| (Col(j), value)).collect();
        start.inherited = pick == Some(0);
        // A relaxation stopped by a limit bounds nothing.
        let relaxed = raw_of(solved.relaxed, strategy);
        start.bound = relaxed.objective.filter(|_| relaxed.status == Status::Optimal);
        start.fixed = Some(fixed);
    }
    Ok(start)
}

/// A member of an aggregated fleet, as the fleet's solution splits it.
struct Member {
    leader: usize,
    /// Its share of the fleet's flows per step: 1/on when it runs, else 0.
    share: Vec<f64>,
    on: Vec<bool>,
    starts: Vec<bool>,
    startup_cost: f64,
}

/// A fleet's members with their shares, and the step of each of the
/// fleet's columns: what splitting its cost and emission terms needs.
struct FleetRead<'a> {
    members: Vec<(usize, &'a Member)>,
    step_of: HashMap<Col, usize>,
}

/// The members of every aggregated fleet of `model`, by asset index.
fn members(case: &Case, model: &Model, x: &[f64]) -> HashMap<usize, Member> {
    let mut members = HashMap::new();
    for (i, vars) in model.vars.iter().enumerate() {
        let AssetVars::Unit(UnitVars { fleet: Some(fleet), on: Some(on), start: Some(start), .. }) = vars else {
            continue;
        };
        let Some((uc, _)) = fleet::commitment_of(&case.assets()[i].kind) else { continue };
        let count = |cols: &[Col]| -> Vec<u32> { cols.iter().map(|c| x[c.0].round().max(0.0) as u32).collect() };
        let counts = count(on);
        let whole = |hours: f64| steps_covering(hours, model.h) as f64 * model.h;
        let durations = fleet::Durations {
            up_h: whole(uc.min_up_h),
            down_h: whole(uc.min_down_h),
            warm_h: uc.cold_start_after_h.map(|after| whole(after).max(model.h)),
        };
        let split = fleet::split(&counts, &count(start), fleet.members.len(), uc, durations, fleet.initial, model.h);
        for (k, &m) in fleet.members.iter().enumerate() {
            let share = (0..model.len)
                .map(|t| if split.on[k][t] && counts[t] > 0 { 1.0 / f64::from(counts[t]) } else { 0.0 })
                .collect();
            members.insert(
                m,
                Member {
                    leader: i,
                    share,
                    on: split.on[k].clone(),
                    starts: split.starts[k].clone(),
                    startup_cost: split.startup_cost[k],
                },
            );
        }
    }
    members
}

/// Splits `lin` (of a fleet's columns) among the fleet's members: a term of
/// a column of step `t` goes by the members' shares at `t`, anything else
/// (a constant) equally. Returns `(asset, amount)` in member order.
fn split_among(lin: &Lin, x: &[f64], step_of: &HashMap<Col, usize>, fleet: &[(usize, &Member)]) -> Vec<(usize, f64)> {
    let size = fleet.len() as f64;
    let mut amounts: Vec<(usize, f64)> = fleet.iter().map(|(m, _)| (*m, lin.constant / size)).collect();
    for &(col, coef) in &lin.terms {
        let value = coef * x[col.0];
        for ((_, amount), (_, member)) in amounts.iter_mut().zip(fleet) {
            *amount += step_of.get(&col).map_or(value / size, |&t| value * member.share[t]);
        }
    }
    amounts
}

/// The step of each column of a unit.
fn steps_of(unit: &UnitVars) -> HashMap<Col, usize> {
    let mut steps = HashMap::new();
    let groups = [Some(&unit.x), unit.on.as_ref(), unit.start.as_ref(), unit.stop.as_ref()];
    for cols in groups.into_iter().flatten() {
        steps.extend(cols.iter().enumerate().map(|(t, &c)| (c, t)));
    }
    for (t, lin) in unit.fuel.iter().enumerate() {
        steps.extend(lin.terms.iter().map(|&(c, _)| (c, t)));
    }
    steps
}

/// Reads the schedule of `case` out of a solved `model`. An aggregated
/// fleet becomes its members' schedules: each running member carries an
/// equal share of the fleet's flows and fuel, each its own starts and
/// their costs (see [`crate::fleet`]).
pub(crate) fn read_schedule(case: &Case, model: &Model, x: &[f64], duals: Option<&[f64]>) -> Schedule {
    let n = model.len;
    let eval = |lins: &[Lin]| -> Vec<f64> { lins.iter().map(|l| clean(l.eval(x))).collect() };
    let val = |cols: &[Col]| -> Vec<f64> { cols.iter().map(|c| clean(x[c.0])).collect() };
    let members = members(case, model, x);
    let unit_detail = |unit: &UnitVars, is_thermal: bool, member: Option<&Member>| {
        let share = |t: usize| member.map_or(1.0, |m| m.share[t]);
        let output_kw = unit.x.iter().enumerate().map(|(t, c)| clean(unit.rated_coef[t] * x[c.0] * share(t))).collect();
        let fuel_kw =
            is_thermal.then(|| unit.fuel.iter().enumerate().map(|(t, f)| clean(f.eval(x) * share(t))).collect());
        match member {
            Some(m) => Detail::Unit { output_kw, fuel_kw, on: Some(m.on.clone()), starts: Some(m.starts.clone()) },
            None => Detail::Unit {
                output_kw,
                fuel_kw,
                on: unit.on.as_ref().map(|u| u.iter().map(|c| x[c.0] > 0.5).collect()),
                starts: unit.start.as_ref().map(|v| v.iter().map(|c| x[c.0] > 0.5).collect()),
            },
        }
    };
    let mut assets = Vec::with_capacity(case.assets().len());
    for (i, asset) in case.assets().iter().enumerate() {
        let member = members.get(&i);
        let from = member.map_or(i, |m| m.leader);
        let flows = model.flows[from]
            .iter()
            .map(|(bus, kw)| {
                let kw = kw.iter().enumerate().map(|(t, l)| clean(l.eval(x) * member.map_or(1.0, |m| m.share[t])));
                Flow { bus: case.buses()[*bus].id.clone(), kw: kw.collect() }
            })
            .collect();
        let is_thermal = matches!(asset.kind, AssetKind::Thermal(_));
        let detail = match &model.vars[from] {
            AssetVars::Load { demand, served, shed } => Detail::Load {
                demand_kw: demand.clone(),
                served_kw: eval(served),
                shed_kw: shed.as_ref().map_or_else(|| vec![0.0; n], |s| val(s)),
            },
            AssetVars::Renewable { output, available } => {
                Detail::Renewable { available_kw: available.clone(), output_kw: val(output) }
            }
            AssetVars::Unit(unit) => unit_detail(unit, is_thermal, member),
            // Every member is in `members`, whose leader is a unit.
            AssetVars::Member => Detail::Unit { output_kw: vec![0.0; n], fuel_kw: None, on: None, starts: None },
            AssetVars::Grid { import, export, .. } => Detail::Grid { import_kw: val(import), export_kw: val(export) },
            AssetVars::Storage { charge, discharge, energy, initial } => Detail::Storage {
                charge_kw: val(charge),
                discharge_kw: val(discharge),
                energy_kwh: val(energy),
                initial_kwh: clean(initial.eval(x)),
            },
        };
        assets.push(AssetSchedule { id: asset.id.clone(), kind: asset.kind.type_name(), flows, detail });
    }
    let buses = case
        .buses()
        .iter()
        .enumerate()
        .map(|(b, bus)| BusSchedule {
            id: bus.id.clone(),
            // The balance row reads "Σ flows into the bus = demand": its dual
            // is the cost of one more kW over the step; per kWh, divide by h.
            price: duals.map(|d| model.balance_rows[b].iter().map(|r| clean(d[r.0] / model.h)).collect()),
            unserved_kw: model.unserved[b].as_ref().map_or_else(|| vec![0.0; n], |c| val(c)),
        })
        .collect();
    // A fleet's terms are split among its members; its start-ups are each
    // member's own.
    let id = |i: usize| case.assets()[i].id.clone();
    let fleet_of = |leader: usize| -> Option<FleetRead<'_>> {
        let AssetVars::Unit(unit @ UnitVars { fleet: Some(fleet), .. }) = &model.vars[leader] else { return None };
        let list = fleet.members.iter().filter_map(|m| members.get(m).map(|member| (*m, member))).collect();
        Some(FleetRead { members: list, step_of: steps_of(unit) })
    };
    let mut costs: Vec<CostItem> = Vec::with_capacity(model.costs.len());
    let mut startups_written = Vec::new();
    for term in &model.costs {
        match term.asset.and_then(|a| fleet_of(a).map(|f| (a, f))) {
            None => {
                costs.push(CostItem { asset: term.asset.map(id), category: term.category, amount: term.lin.eval(x) });
            }
            Some((leader, FleetRead { members: list, .. })) if term.category == CostCategory::Startup => {
                if !startups_written.contains(&leader) {
                    startups_written.push(leader);
                    costs.extend(list.iter().map(|(m, member)| CostItem {
                        asset: Some(id(*m)),
                        category: CostCategory::Startup,
                        amount: member.startup_cost,
                    }));
                }
            }
            Some((_, FleetRead { members: list, step_of })) => {
                costs.extend(split_among(&term.lin, x, &step_of, &list).into_iter().map(|(m, amount)| CostItem {
                    asset: Some(id(m)),
                    category: term.category,
                    amount,
                }));
            }
        }
    }
    let mut emissions: Vec<EmissionItem> = Vec::with_capacity(model.co2.len());
    for (i, lin) in &model.co2 {
        match fleet_of(*i) {
            None => emissions.push(EmissionItem { asset: id(*i), co2_kg: lin.eval(x) }),
            Some(FleetRead { members: list, step_of }) => emissions.extend(
                split_among(lin, x, &step_of, &list)
                    .into_iter()
                    .map(|(m, co2_kg)| EmissionItem { asset: id(m), co2_kg }),
            ),
        }
    }
    let grid = case.grid().window(model.start, n);
    Schedule {
        grid,
        cost: costs.iter().map(|c| c.amount).sum(),
        co2_kg: emissions.iter().map(|e| e.co2_kg).sum(),
        assets,
        buses,
        costs,
        emissions,
    }
}

/// Rounds solver noise (|v| < 1e-9) to zero.
pub(crate) fn clean(v: f64) -> f64 {
    if v.abs() < 1e-9 { 0.0 } else { v }
}

#[cfg(test)]
mod tests {
    use super::relative_gap;

    #[test]
    fn the_relative_gap_is_the_one_mip_solvers_stop_on() {
        assert_eq!(relative_gap(100.0, 99.0), 0.01);
        assert_eq!(relative_gap(0.0, 0.0), 0.0);
        // A bound above the cost (LP tolerances) is no gap, not a negative one.
        assert_eq!(relative_gap(100.0, 100.000_000_1), 0.0);
        // A negative cost (a site that earns) is measured against its size.
        assert_eq!(relative_gap(-100.0, -101.0), 0.01);
        assert!(relative_gap(0.0, -1.0).is_infinite() || relative_gap(0.0, -1.0) > 1e300);
    }
}
