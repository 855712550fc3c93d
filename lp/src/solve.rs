//! Running HiGHS on a built problem and reading back what it found.

use std::time::Instant;

use highs::{HighsModelStatus, HighsSolutionStatus};

use crate::model::{Col, Integrality, Lin, Lp};

/// Solver settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    /// Print HiGHS's log.
    pub verbose: bool,
    /// Stop after this many seconds (with the incumbent, if any).
    pub time_limit_s: Option<f64>,
    /// Stop within this relative MIP gap.
    pub mip_gap: Option<f64>,
    /// Threads HiGHS may use.
    pub threads: Option<u32>,
    /// How HiGHS goes about the problem (each part unset: HiGHS's choice).
    pub strategy: Strategy,
}

/// The algorithm for an LP, and for a MIP's first LP (its root relaxation,
/// solved without a basis; the LPs of the branch and bound are always
/// solved by the dual simplex from their parent's basis).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LpMethod {
    /// The simplex method (HiGHS's dual simplex, its usual choice): an
    /// exact vertex and its basis.
    Simplex,
    /// The interior point method (HiGHS's IPX), then a crossover to a
    /// vertex and its basis, so the duals are those of the simplex.
    Ipm,
}

impl LpMethod {
    /// HiGHS's name for it.
    fn highs(self) -> &'static str {
        match self {
            Self::Simplex => "simplex",
            Self::Ipm => "ipm",
        }
    }
}

/// How HiGHS goes about a problem: each part left unset is HiGHS's own
/// choice (simplex for an LP, presolve on, a heuristic effort of 0.05).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Strategy {
    /// The LP algorithm.
    pub lp_method: Option<LpMethod>,
    /// Whether to presolve.
    pub presolve: Option<bool>,
    /// The share of a MIP's effort spent on primal heuristics, in [0, 1].
    pub heuristic_effort: Option<f64>,
}

/// How a solve ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Proven optimal.
    Optimal,
    /// A MIP solved within its relative gap (above 1e-6).
    WithinGap,
    /// The time limit was reached.
    TimeLimit,
    /// The iteration limit was reached.
    IterationLimit,
    /// The memory limit was reached.
    MemoryLimit,
    /// Interrupted, or a solution limit reached.
    Interrupted,
    /// No solution exists.
    Infeasible,
    /// The objective is unbounded.
    Unbounded,
}

impl Outcome {
    /// Whether a solution may exist (optimal, within the gap, or stopped by
    /// a limit, in which case [`Solution::x`] says whether one was found).
    #[must_use]
    pub fn may_have_solution(self) -> bool {
        !matches!(self, Self::Infeasible | Self::Unbounded)
    }
}

/// What a solve found.
#[derive(Debug, Clone)]
pub struct Solution {
    /// How it ended.
    pub outcome: Outcome,
    /// The objective, when a primal solution exists.
    pub objective: Option<f64>,
    /// The best bound (the MIP's dual bound; the objective of an LP).
    pub best_bound: Option<f64>,
    /// The relative gap (0 for an LP).
    pub gap: Option<f64>,
    /// Column values, when a primal solution exists.
    pub x: Option<Vec<f64>>,
    /// Row duals, for an LP with a solution (none for a MIP).
    pub duals: Option<Vec<f64>>,
    /// Seconds in HiGHS.
    pub seconds: f64,
    /// HiGHS could not tell infeasible from unbounded (reported as infeasible).
    pub ambiguous: bool,
}

/// Solves `lp` minimising `objective`.
///
/// # Errors
/// HiGHS refused an option, failed, or ended with an error status.
pub fn solve(lp: Lp, objective: &Lin, settings: &Settings) -> Result<Solution, String> {
    solve_from(lp, objective, settings, &[])
}

/// Solves `lp` minimising `objective`, starting a MIP from the values in
/// `start`: a partial assignment, typically of integer columns. HiGHS fixes
/// the integer columns given (at integral values within their bounds),
/// solves for the rest in a small search of its own, and when that finds a
/// feasible point, the branch and bound begins with it as the incumbent. A
/// start that leads nowhere costs that small search and changes nothing
/// else: the problem is the same, and so is its optimum.
/// Ignored for an LP, and when empty.
///
/// # Errors
/// HiGHS refused an option or the start, failed, or ended with an error
/// status; a start naming a column the problem does not have.
pub fn solve_from(lp: Lp, objective: &Lin, settings: &Settings, start: &[(Col, f64)]) -> Result<Solution, String> {
    let is_mip = lp.is_mip();
    let columns = lp.num_cols();
    let mut highs = lp.into_highs(objective)?;
    configure(&mut highs, settings, is_mip)?;
    if is_mip && !start.is_empty() {
        // HiGHS reads an infinite value as "undefined": what its sparse
        // start (`Highs_setSparseSolution`) builds, through the safe API.
        let mut values = vec![f64::INFINITY; columns];
        for &(col, value) in start {
            let slot = values.get_mut(col.0).ok_or_else(|| format!("MIP start: no column {}", col.0))?;
            *slot = value;
        }
        highs
            .try_set_solution(Some(&values), None, None, None)
            .map_err(|e| format!("HiGHS refused the MIP start: {e:?}"))?;
    }
    let started = Instant::now();
    let solved = highs.try_solve().map_err(|e| format!("HiGHS failed to solve: {e:?}"))?;
    read(&solved, is_mip, started.elapsed().as_secs_f64())
}

/// A MIP's LP relaxation, and the LPs with its integer columns fixed at
/// the values chosen from the relaxation's solution.
#[derive(Debug, Clone)]
pub struct RelaxedThenFixed {
    /// The LP relaxation: its optimum bounds the MIP's from below.
    pub relaxed: Solution,
    /// The LP with the integer columns fixed at each choice tried, in the
    /// order given, up to the first that was enough (none when no values
    /// were chosen or the relaxation had no solution): a schedule of the MIP
    /// where it has one.
    pub fixed: Vec<Solution>,
}

/// Solves the relaxation `lp` (built with [`Integrality::Relaxed`]), then
/// asks `fix` for choices of a whole value of every integer column, in the
/// order of [`Lp::integers`], given the relaxation's solution; fixes the
/// columns at each choice in turn (each value rounded into its bounds) and
/// solves again, until `enough` says of the relaxation and a choice's
/// solution that it will do. Each solve after the first is the same HiGHS
/// model with changed bounds, so it starts from the basis the one before
/// left, the relaxation's optimal one first (HiGHS does not presolve a model
/// with a basis): a handful of dual simplex iterations where a new model
/// would start from nothing.
///
/// # Errors
/// `lp` is a MIP or a choice has the wrong number of values; HiGHS refused
/// an option, failed, or ended with an error status.
pub fn solve_relaxed_then_fixed(
    lp: Lp,
    objective: &Lin,
    settings: &Settings,
    fix: impl FnOnce(&[f64]) -> Vec<Vec<f64>>,
    enough: impl Fn(&Solution, &Solution) -> bool,
) -> Result<RelaxedThenFixed, String> {
    if lp.is_mip() {
        return Err("solve_relaxed_then_fixed takes a relaxation, not a MIP".to_owned());
    }
    let crate::model::Highs { model: mut highs, cols, integers } = lp.into_highs_with_cols(objective)?;
    configure(&mut highs, settings, false)?;
    let started = Instant::now();
    let mut solved = highs.try_solve().map_err(|e| format!("HiGHS failed to solve: {e:?}"))?;
    let relaxed = read(&solved, false, started.elapsed().as_secs_f64())?;
    let choices = relaxed.x.as_deref().map(fix).unwrap_or_default();
    if let Some(wrong) = choices.iter().find(|values| values.len() != integers.len()) {
        return Err(format!("{} values for {} integer columns", wrong.len(), integers.len()));
    }
    let mut spent = relaxed.seconds;
    let mut fixed = Vec::with_capacity(choices.len());
    for values in choices {
        let mut highs = highs::Model::from(solved);
        for (&(col, hi), value) in integers.iter().zip(values) {
            let v = crate::model::fixed_value(value, hi);
            highs.change_column_bounds(cols[col.0], v..=v);
        }
        if let Some(limit) = settings.time_limit_s {
            let rest = (limit - spent).max(0.0);
            highs.try_set_option("time_limit", rest).map_err(|e| format!("HiGHS refused option time_limit: {e:?}"))?;
        }
        let started = Instant::now();
        solved = highs.try_solve().map_err(|e| format!("HiGHS failed to solve: {e:?}"))?;
        let solution = read(&solved, false, started.elapsed().as_secs_f64())?;
        spent += solution.seconds;
        let done = enough(&relaxed, &solution);
        fixed.push(solution);
        if done {
            break;
        }
    }
    Ok(RelaxedThenFixed { relaxed, fixed })
}

/// Applies `settings` to a HiGHS model.
fn configure(highs: &mut highs::Model, settings: &Settings, is_mip: bool) -> Result<(), String> {
    if !settings.verbose {
        highs.make_quiet();
    }
    let set = |name: &str, result: Result<(), highs::TrySetOptionError>| {
        result.map_err(|e| format!("HiGHS refused option {name}: {e:?}"))
    };
    set("output_flag", highs.try_set_option("output_flag", settings.verbose))?;
    set("log_to_console", highs.try_set_option("log_to_console", settings.verbose))?;
    if let Some(limit) = settings.time_limit_s {
        set("time_limit", highs.try_set_option("time_limit", limit.max(0.0)))?;
    }
    if let Some(gap) = settings.mip_gap {
        set("mip_rel_gap", highs.try_set_option("mip_rel_gap", gap))?;
    }
    if let Some(threads) = settings.threads {
        let threads = i32::try_from(threads).unwrap_or(i32::MAX);
        set("threads", highs.try_set_option("threads", threads))?;
    }
    let Strategy { lp_method, presolve, heuristic_effort } = settings.strategy;
    if let Some(method) = lp_method {
        let option = if is_mip { "mip_lp_solver" } else { "solver" };
        set(option, highs.try_set_option(option, method.highs()))?;
    }
    if let Some(presolve) = presolve {
        set("presolve", highs.try_set_option("presolve", if presolve { "on" } else { "off" }))?;
    }
    if let Some(effort) = heuristic_effort
        && is_mip
    {
        set("mip_heuristic_effort", highs.try_set_option("mip_heuristic_effort", effort))?;
    }
    Ok(())
}

/// What a solve that took `seconds` found.
fn read(solved: &highs::SolvedModel, is_mip: bool, seconds: f64) -> Result<Solution, String> {
    let has_primal = solved.primal_solution_status() == HighsSolutionStatus::Feasible;
    let mut ambiguous = false;
    #[expect(clippy::wildcard_enum_match_arm, reason = "HighsModelStatus is foreign and non-exhaustive")]
    let outcome = match solved.status() {
        HighsModelStatus::Optimal | HighsModelStatus::ObjectiveBound | HighsModelStatus::ObjectiveTarget => {
            let gap = if is_mip { solved.mip_gap() } else { 0.0 };
            if gap.is_finite() && gap > 1e-6 { Outcome::WithinGap } else { Outcome::Optimal }
        }
        HighsModelStatus::ReachedTimeLimit => Outcome::TimeLimit,
        HighsModelStatus::ReachedIterationLimit => Outcome::IterationLimit,
        HighsModelStatus::ReachedMemoryLimit => Outcome::MemoryLimit,
        HighsModelStatus::ReachedSolutionLimit | HighsModelStatus::ReachedInterrupt => Outcome::Interrupted,
        HighsModelStatus::Infeasible => Outcome::Infeasible,
        HighsModelStatus::Unbounded => Outcome::Unbounded,
        HighsModelStatus::UnboundedOrInfeasible => {
            ambiguous = true;
            Outcome::Infeasible
        }
        // Errors, and anything a newer HiGHS adds to its non-exhaustive enum.
        other => return Err(format!("HiGHS ended with status {other:?}")),
    };
    let feasible = outcome.may_have_solution() && has_primal;
    let (x, duals) = if feasible {
        let solution = solved.get_solution();
        let duals = (!is_mip).then(|| solution.dual_rows().to_vec());
        (Some(solution.columns().to_vec()), duals)
    } else {
        (None, None)
    };
    let objective = feasible.then(|| solved.objective_value());
    let (best_bound, gap) = if !feasible {
        (None, None)
    } else if is_mip {
        let bound = solved.double_info_value(c"mip_dual_bound").ok().filter(|b| b.is_finite());
        let gap = Some(solved.mip_gap()).filter(|g| g.is_finite());
        (bound, gap)
    } else {
        (objective, Some(0.0))
    };
    Ok(Solution { outcome, objective, best_bound, gap, x, duals, seconds, ambiguous })
}

/// An empty problem to take the place of one handed to [`solve`].
#[must_use]
pub fn placeholder() -> Lp {
    Lp::new(Integrality::Integer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_lp_gives_its_optimum_and_the_duals_of_its_rows() {
        // min 2a + 3b subject to a + b >= 4, a <= 3: a = 3, b = 1, cost 9;
        // the demand row's dual is 3 (the marginal unit comes from b).
        let mut lp = Lp::new(Integrality::Integer);
        let a = lp.col(0.0, 3.0);
        let b = lp.col(0.0, f64::INFINITY);
        let demand = lp.ge(Lin::term(a, 1.0).with(b, 1.0), 4.0);
        let objective = Lin::term(a, 2.0).with(b, 3.0);
        let s = solve(lp, &objective, &Settings::default()).expect("solves");
        assert_eq!(s.outcome, Outcome::Optimal);
        assert!((s.objective.expect("objective") - 9.0).abs() < 1e-9);
        let duals = s.duals.expect("duals");
        assert!((duals[demand.0].abs() - 3.0).abs() < 1e-9, "{duals:?}");
    }

    #[test]
    fn a_mip_reports_its_bound_and_no_duals_and_infeasibility_is_an_outcome() {
        let mut lp = Lp::new(Integrality::Integer);
        let on = lp.binary();
        let x = lp.col(0.0, 10.0);
        lp.le(Lin::term(x, 1.0).with(on, -10.0), 0.0);
        lp.ge(Lin::term(x, 1.0), 2.0);
        let s = solve(lp, &Lin::term(on, 5.0).with(x, 1.0), &Settings::default()).expect("solves");
        assert_eq!(s.outcome, Outcome::Optimal);
        assert!((s.objective.expect("objective") - 7.0).abs() < 1e-9);
        assert!(s.duals.is_none() && s.best_bound.is_some());

        let mut lp = Lp::new(Integrality::Integer);
        let x = lp.col(0.0, 1.0);
        lp.ge(Lin::term(x, 1.0), 2.0);
        let s = solve(lp, &Lin::term(x, 1.0), &Settings::default()).expect("solves");
        assert_eq!(s.outcome, Outcome::Infeasible);
        assert!(s.x.is_none());
    }

    /// A small knapsack-like MIP: 12 binaries, one capacity row.
    fn knapsack() -> (Lp, Lin) {
        knapsack_as(Integrality::Integer)
    }

    /// The knapsack with its binaries declared by `integrality`.
    fn knapsack_as(integrality: Integrality) -> (Lp, Lin) {
        let mut lp = Lp::new(integrality);
        let items: Vec<Col> = (0..12).map(|_| lp.binary()).collect();
        let weight = |k: usize| 3.0 + (k * 7 % 11) as f64;
        let value = |k: usize| 4.0 + (k * 5 % 13) as f64;
        let mut row = Lin::new();
        let mut objective = Lin::new();
        for (k, &c) in items.iter().enumerate() {
            row.add(c, weight(k));
            objective.add(c, -value(k));
        }
        lp.le(row, 40.0);
        (lp, objective)
    }

    #[test]
    fn a_mip_start_good_bad_or_partial_leaves_the_optimum_as_it_was() {
        let (lp, objective) = knapsack();
        let cold = solve(lp, &objective, &Settings::default()).expect("solves");
        let best = cold.objective.expect("optimum");
        let optimal_x = cold.x.expect("x");
        let starts: [Vec<(Col, f64)>; 3] = [
            // the optimum itself;
            optimal_x.iter().enumerate().map(|(k, &v)| (Col(k), v.round())).collect(),
            // everything taken: infeasible, so HiGHS drops it;
            (0..12).map(|k| (Col(k), 1.0)).collect(),
            // three items fixed out, the rest left to HiGHS.
            (0..3).map(|k| (Col(k), 0.0)).collect(),
        ];
        for start in starts {
            let (lp, objective) = knapsack();
            let warm = solve_from(lp, &objective, &Settings::default(), &start).expect("solves");
            assert_eq!(warm.outcome, Outcome::Optimal);
            assert!((warm.objective.expect("optimum") - best).abs() < 1e-9, "{start:?}");
        }
        let (lp, objective) = knapsack();
        let error = solve_from(lp, &objective, &Settings::default(), &[(Col(12), 1.0)]).expect_err("no column 12");
        assert!(error.contains("no column 12"), "{error}");
    }

    #[test]
    fn a_row_s_terms_of_one_column_are_added_up_and_a_zero_sum_drops_out() {
        // 2a + a - 3a + b >= 1 is b >= 1; a + a <= 3 is a <= 1.5.
        let mut lp = Lp::new(Integrality::Integer);
        let a = lp.col(0.0, 10.0);
        let b = lp.col(0.0, 10.0);
        lp.ge(Lin::term(a, 2.0).with(a, 1.0).with(a, -3.0).with(b, 1.0), 1.0);
        lp.le(Lin::term(a, 1.0).with(a, 1.0), 3.0);
        let s = solve(lp, &Lin::term(a, -1.0).with(b, 1.0), &Settings::default()).expect("solves");
        let x = s.x.expect("x");
        assert!((x[0] - 1.5).abs() < 1e-9 && (x[1] - 1.0).abs() < 1e-9, "{x:?}");
    }

    /// The knapsack's relaxation, built relaxed.
    fn relaxed_knapsack() -> (Lp, Lin) {
        knapsack_as(Integrality::Relaxed)
    }

    /// The knapsack's optimum and its solution, each value whole.
    fn knapsack_optimum() -> (f64, Vec<f64>) {
        let (lp, objective) = knapsack();
        let mip = solve(lp, &objective, &Settings::default()).expect("solves");
        (mip.objective.expect("optimum"), mip.x.expect("x").iter().map(|v| v.round()).collect())
    }

    #[test]
    fn a_relaxation_then_its_integers_fixed_bound_and_reach_the_mip() {
        let (best, optimal) = knapsack_optimum();

        let (lp, objective) = relaxed_knapsack();
        let mut seen = None;
        let both = solve_relaxed_then_fixed(
            lp,
            &objective,
            &Settings::default(),
            |x| {
                seen = Some(x.to_vec());
                // Off by a rounding: fixed values are rounded into the bounds.
                vec![optimal.iter().map(|v| v + 0.3).collect()]
            },
            |_, _| true,
        )
        .expect("solves");
        let relaxed = both.relaxed.objective.expect("relaxation");
        assert!(relaxed <= best + 1e-9, "the relaxation {relaxed} bounds the MIP {best}");
        assert!(relaxed < best - 1e-6, "this relaxation is fractional");
        assert_eq!(seen.map(|x| x.len()), Some(12), "fix sees the relaxation's solution");
        let fixed = both.fixed.into_iter().next().expect("fixed");
        assert_eq!(fixed.outcome, Outcome::Optimal);
        assert!((fixed.objective.expect("fixed") - best).abs() < 1e-9);
        assert!(fixed.duals.is_some(), "an LP: the duals of its rows");

        let once = |_: &Solution, _: &Solution| true;
        // Nothing chosen: no second solve.
        let (lp, objective) = relaxed_knapsack();
        let both =
            solve_relaxed_then_fixed(lp, &objective, &Settings::default(), |_| Vec::new(), once).expect("solves");
        assert!(both.fixed.is_empty() && both.relaxed.x.is_some());
        // Infeasible values: an outcome, not an error.
        let (lp, objective) = relaxed_knapsack();
        let all = solve_relaxed_then_fixed(lp, &objective, &Settings::default(), |_| vec![vec![1.0; 12]], once);
        assert_eq!(all.expect("solves").fixed[0].outcome, Outcome::Infeasible);
        // Refusals: a MIP, and the wrong number of values.
        let (lp, objective) = knapsack();
        let error =
            solve_relaxed_then_fixed(lp, &objective, &Settings::default(), |_| Vec::new(), once).expect_err("a MIP");
        assert!(error.contains("relaxation"), "{error}");
        let (lp, objective) = relaxed_knapsack();
        let error = solve_relaxed_then_fixed(lp, &objective, &Settings::default(), |_| vec![vec![0.0; 3]], once)
            .expect_err("three values");
        assert!(error.contains("3 values for 12"), "{error}");
    }

    #[test]
    fn fixings_are_tried_in_turn_until_one_is_enough() {
        let (best, optimal) = knapsack_optimum();
        let nothing = vec![0.0; 12];
        let is_best = |_: &Solution, fixed: &Solution| fixed.objective.is_some_and(|o| (o - best).abs() < 1e-9);
        // The first choice is not enough, the second is, the third is not tried.
        let choices = |_: &[f64]| vec![nothing.clone(), optimal.clone(), nothing.clone()];
        let (lp, objective) = relaxed_knapsack();
        let tried = solve_relaxed_then_fixed(lp, &objective, &Settings::default(), choices, is_best).expect("solves");
        assert_eq!(tried.fixed.len(), 2);
        assert!(is_best(&tried.relaxed, &tried.fixed[1]) && !is_best(&tried.relaxed, &tried.fixed[0]));
        // None enough: every choice tried; none given: none solved.
        let (lp, objective) = relaxed_knapsack();
        let all = solve_relaxed_then_fixed(lp, &objective, &Settings::default(), choices, |_, _| false);
        assert_eq!(all.expect("solves").fixed.len(), 3);
        let (lp, objective) = relaxed_knapsack();
        let none = solve_relaxed_then_fixed(lp, &objective, &Settings::default(), |_| Vec::new(), is_best);
        assert!(none.expect("solves").fixed.is_empty());
        // A choice of the wrong size is refused before any is solved.
        let (lp, objective) = relaxed_knapsack();
        let wrong = |_: &[f64]| vec![optimal.clone(), vec![1.0]];
        let error =
            solve_relaxed_then_fixed(lp, &objective, &Settings::default(), wrong, is_best).expect_err("refused");
        assert!(error.contains("1 values for 12"), "{error}");
    }

    #[test]
    fn every_strategy_reaches_the_same_optimum_and_a_bad_one_is_refused() {
        let (lp, objective) = knapsack();
        let best = solve(lp, &objective, &Settings::default()).expect("solves").objective.expect("optimum");
        let lp_optimum = |strategy: Strategy| {
            let mut lp = Lp::new(Integrality::Integer);
            let a = lp.col(0.0, 3.0);
            let b = lp.col(0.0, f64::INFINITY);
            let demand = lp.ge(Lin::term(a, 1.0).with(b, 1.0), 4.0);
            let s = solve(lp, &Lin::term(a, 2.0).with(b, 3.0), &Settings { strategy, ..Settings::default() })
                .expect("solves");
            (s.objective.expect("objective"), s.duals.expect("duals")[demand.0].abs())
        };
        for lp_method in [None, Some(LpMethod::Simplex), Some(LpMethod::Ipm)] {
            for presolve in [None, Some(true), Some(false)] {
                for heuristic_effort in [None, Some(0.0), Some(1.0)] {
                    let strategy = Strategy { lp_method, presolve, heuristic_effort };
                    let (lp, objective) = knapsack();
                    let settings = Settings { strategy, ..Settings::default() };
                    let s = solve(lp, &objective, &settings).expect("solves");
                    assert!((s.objective.expect("optimum") - best).abs() < 1e-9, "{strategy:?}");
                    let (cost, dual) = lp_optimum(strategy);
                    assert!((cost - 9.0).abs() < 1e-7 && (dual - 3.0).abs() < 1e-7, "{strategy:?}: {cost} {dual}");
                }
            }
        }
        let (lp, objective) = knapsack();
        let strategy = Strategy { heuristic_effort: Some(2.0), ..Strategy::default() };
        let error = solve(lp, &objective, &Settings { strategy, ..Settings::default() }).expect_err("out of range");
        assert!(error.contains("mip_heuristic_effort"), "{error}");
    }
}
