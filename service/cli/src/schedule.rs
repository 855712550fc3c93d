//! `volta schedule`: optimise the operation of a case.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use volta_dispatch::{
    Decomposition, LpMethod, MipStart, ModelFormat, Objective, Options, RollingOptions, Schedule, Solution, Status,
    Strategy,
};
use volta_engine::{Case, CaseReader, Error};

use crate::report;

pub(super) const LONG_ABOUT: &str = "\
Optimise the operation of a case: which unit runs when, how storage charges,
what is imported and exported, at the least cost, CO2 or a weighted sum.

The case is solved as a mixed-integer linear program by HiGHS. A JSON summary
goes to stdout: status, objective, cost, co2_kg, best_bound, gap and
solve_seconds, the cost by category, with quadratic fuel curves the exact
cost of the schedule and a lower bound on the exact optimum, and with
--pareto the points of the front. Statuses: optimal; within_gap (feasible, proven within --gap);
time_limit (the best schedule found in time); iteration_limit, memory_limit
and interrupted (the solver stopped early for that reason: the best schedule
found by then, if any); infeasible (with an
explanation: which bus is short or in surplus, when, by how much, and which
assets are at their limits); unbounded.

With --out DIR, the schedule is also written as files:
  schedule.csv, schedule.parquet  signed flow of every asset into every bus, kW
  storage.csv                     stored energy at the end of each step, kWh
  commitment.csv                  on/off and output of units under commitment
  prices.csv                      marginal price and unserved energy per bus
  costs.csv                       the cost by asset and category, with totals
  dispatch_<bus>.png              stacked dispatch, storage levels and price
  pareto.csv, pareto.png          with --pareto, the cost-CO2 front

With --horizon-h, the case is simulated as a rolling horizon: windows of
--horizon-h hours, of which the first --commit-h are kept before moving on,
carrying storage levels and unit states across windows. Each window's
solver starts from the commitment the window before chose for the steps
they share (a MIP start; --cold-windows turns it off): the same windows,
solved faster. --lower-bound also solves the whole horizon's LP relaxation
and reports how far from optimal the stitched schedule can be at most.

With --blocks N, the horizon is cut into N blocks solved in parallel (one
per core at a time), for long cases one MILP would take too long to prove:
the whole horizon's LP relaxation first gives each block the storage levels
and unit states it starts from, then each seam is solved again over
--seam-h hours either side so that the stitched schedule is feasible end to
end (storage continuous, minimum up and down times and ramps held across
seams). The relaxation's optimum is reported as a lower bound, with how far
from optimal the stitched schedule can be at most. Blocks of a week suit a
year of hourly steps.

The solver strategy (--lp-method, --presolve, --heuristic-effort) is
Volta's choice for the problem's class unless set; the summary's
\"strategy\" says what was used. Every strategy solves the same problem:
the same optimum, a different path to it.

With --write-model FILE.lp (or FILE.mps), the model handed to HiGHS is also
written in the CPLEX LP (or free MPS) format, which HiGHS, Gurobi, CPLEX,
SCIP and GLPK read, with
readable names: columns and rows are asset.role(k), e.g. battery.charge(5),
chp.on(12), grid.import(0), battery.storage(5), elec.balance(3). Solved by
any of them, its optimum is the schedule's objective.";

pub(super) const AFTER_HELP: &str = "\
Examples:
  volta schedule datasets/cases/campus.toml --out results/
  volta schedule datasets/cases/campus.toml --objective co2
  volta schedule datasets/cases/campus.toml --objective weighted --co2-price 0.08
  volta schedule datasets/cases/campus.toml --pareto 8 --out front/
  volta schedule datasets/cases/islanded.toml --time-limit 10 --gap 0.005
  volta schedule datasets/cases/campus.toml --horizon-h 48 --commit-h 24
  volta schedule datasets/cases/campus.toml --blocks 3
  volta schedule datasets/cases/campus.toml --write-model campus.lp
  volta schedule datasets/cases/benchmarks/kazarlis100.toml --gap 1e-4
  volta schedule datasets/cases/islanded.toml --heuristic-effort 0.3

Exit status: 0 with a schedule, 1 on an error (bad case or option), 2 for a
command line that does not parse, 3 when the case is infeasible or unbounded
or no schedule was found in time.";

/// What to minimise.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ObjectiveArg {
    /// Total cost.
    Cost,
    /// Total CO2 (then the cheapest such schedule).
    Co2,
    /// Cost plus --co2-price per kg of CO2.
    Weighted,
}

impl ObjectiveArg {
    fn name(self) -> &'static str {
        match self {
            Self::Cost => "cost",
            Self::Co2 => "co2",
            Self::Weighted => "weighted",
        }
    }
}

/// The LP algorithm.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LpMethodArg {
    /// The dual simplex method.
    Simplex,
    /// The interior point method, then a crossover to a vertex.
    Ipm,
}

/// Where a MIP's first schedule comes from.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum MipStartArg {
    /// HiGHS's heuristics find it.
    None,
    /// The LP relaxation's commitment rounded up is checked: the answer if
    /// the relaxation proves it within the gap, else HiGHS starts from nothing.
    Check,
    /// The LP relaxation, solved first, its commitment rounded up.
    Rounding,
}

fn on_off(value: &str) -> Result<bool, String> {
    match value {
        "on" => Ok(true),
        "off" => Ok(false),
        other => Err(format!("{other:?} is neither on nor off")),
    }
}

fn share(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(share) if (0.0..=1.0).contains(&share) => Ok(share),
        _ => Err(format!("{value:?} is not a share in [0, 1]")),
    }
}

/// Arguments of `volta schedule`.
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// The case file (.toml or .json).
    #[arg(value_name = "CASE")]
    case: PathBuf,
    /// What to minimise.
    #[arg(long, value_enum, default_value = "cost")]
    objective: ObjectiveArg,
    /// Carbon price, currency per kg of CO2: needed by --objective weighted,
    /// and with --objective cost it prices CO2 the same way.
    #[arg(long, value_name = "PRICE")]
    co2_price: Option<f64>,
    /// Trace the cost-CO2 front with N points (N >= 2) instead of one schedule.
    #[arg(long, value_name = "N", conflicts_with = "horizon_h")]
    pareto: Option<usize>,
    /// Stop each solve after S seconds and keep the best schedule found.
    #[arg(long, value_name = "S")]
    time_limit: Option<f64>,
    /// Stop once the relative MIP gap is below G (default 1e-4).
    #[arg(long, value_name = "G")]
    gap: Option<f64>,
    /// Solver threads.
    #[arg(long, value_name = "N")]
    threads: Option<u32>,
    /// Rolling horizon: optimise windows of this many hours.
    #[arg(long, value_name = "HOURS")]
    horizon_h: Option<f64>,
    /// Rolling horizon: keep this many hours of each window (default: half the window).
    #[arg(long, value_name = "HOURS", requires = "horizon_h")]
    commit_h: Option<f64>,
    /// Rolling horizon: solve every window from scratch instead of starting
    /// it from the previous window's commitment (to measure what the warm
    /// start saves; the schedule is the same).
    #[arg(long, requires = "horizon_h")]
    cold_windows: bool,
    /// Rolling horizon: also solve the whole horizon's LP relaxation, a
    /// lower bound on the cost of any schedule, and report how far from
    /// optimal the stitched schedule can be at most (cost objective only).
    #[arg(long, requires = "horizon_h")]
    lower_bound: bool,
    /// Decomposition: solve the horizon as this many blocks in parallel,
    /// with consistent seams and a lower bound (with --threads 1, each block
    /// keeps to one core).
    #[arg(long, value_name = "N", conflicts_with_all = ["pareto", "horizon_h"])]
    blocks: Option<usize>,
    /// Decomposition: re-solve each seam over this many hours either side,
    /// which is also each block's look-ahead (default 24, and more than the
    /// longest minimum up or down time).
    #[arg(long, value_name = "HOURS", requires = "blocks")]
    seam_h: Option<f64>,
    /// Skip the marginal-price computation.
    #[arg(long)]
    no_prices: bool,
    /// Model every unit on its own. By default, identical committed units
    /// (same data and initial state) form a fleet: one count of units on
    /// per step where that is exact (no ramp limits), else units ordered by
    /// hours on, so that the solver does not explore their permutations.
    /// The optimum is the same; each unit still gets its own schedule.
    #[arg(long)]
    separate_units: bool,
    /// Write tables and plots into this directory.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print HiGHS's log on stderr.
    #[arg(long)]
    verbose: bool,
    /// The LP algorithm, for an LP and a MIP's root relaxation (default:
    /// Volta's choice for the problem, reported as "strategy" in the summary).
    #[arg(long, value_enum, value_name = "METHOD", help_heading = "Solver strategy")]
    lp_method: Option<LpMethodArg>,
    /// Whether HiGHS presolves (default: Volta's choice).
    #[arg(long, value_name = "on|off", value_parser = on_off, help_heading = "Solver strategy")]
    presolve: Option<bool>,
    /// The share of a MIP's effort spent on primal heuristics, in [0, 1]
    /// (default: Volta's choice; HiGHS's own is 0.05).
    #[arg(long, value_name = "SHARE", value_parser = share, help_heading = "Solver strategy")]
    heuristic_effort: Option<f64>,
    /// Where a MIP's first schedule comes from (default: Volta's choice;
    /// a rolling horizon's later windows start from the window before).
    #[arg(long, value_enum, value_name = "FROM", help_heading = "Solver strategy")]
    mip_start: Option<MipStartArg>,
    /// Also write the model handed to HiGHS here: FILE.lp in the CPLEX LP
    /// format, FILE.mps in free MPS.
    #[arg(long, value_name = "FILE.lp|FILE.mps", conflicts_with_all = ["pareto", "horizon_h", "blocks"])]
    write_model: Option<PathBuf>,
}

pub(super) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let case = match CaseReader::new().read_path(&args.case) {
        Ok(checked) => {
            for w in &checked.warnings {
                eprintln!("warning: {}: {w}", args.case.display());
            }
            checked.case
        }
        Err(Error::Invalid(report)) => {
            eprintln!("invalid {}: {}", args.case.display(), crate::validate::counted(&report));
            for issue in report.issues {
                eprintln!("  {issue}");
            }
            return Ok(ExitCode::from(crate::exit::INPUT));
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", args.case.display())),
    };
    let objective = Objective::from_request(args.objective.name(), args.co2_price).map_err(|e| {
        let flag = if e.field() == "objective" { "--objective" } else { "--co2-price" };
        anyhow::anyhow!("{flag}: {e}")
    })?;
    let options = Options {
        objective,
        time_limit_s: args.time_limit,
        mip_gap: args.gap,
        threads: args.threads,
        prices: !args.no_prices,
        verbose: args.verbose,
        fleets: !args.separate_units,
        strategy: Strategy {
            lp_method: args.lp_method.map(|m| match m {
                LpMethodArg::Simplex => LpMethod::Simplex,
                LpMethodArg::Ipm => LpMethod::Ipm,
            }),
            presolve: args.presolve,
            heuristic_effort: args.heuristic_effort,
            mip_start: args.mip_start.map(|s| match s {
                MipStartArg::None => MipStart::None,
                MipStartArg::Check => MipStart::Check,
                MipStartArg::Rounding => MipStart::Rounding,
            }),
        },
        ..Options::default()
    };
    if let Some(n) = args.pareto {
        return pareto(args, &case, n, &options);
    }
    if let Some(horizon) = args.horizon_h {
        return rolling(args, &case, horizon, &options);
    }
    if let Some(blocks) = args.blocks {
        return blocks_of(args, &case, blocks, &options);
    }
    if let Some(path) = &args.write_model {
        let Some(format) = ModelFormat::of_path(path) else {
            anyhow::bail!("--write-model: {} must end in .lp (the CPLEX LP format) or .mps (free MPS)", path.display());
        };
        let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut out = std::io::BufWriter::new(file);
        volta_dispatch::write_model(&case, &options, format, &mut out)
            .and_then(|()| out.flush())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let spinner = spinner(&format!("scheduling {} ({} steps)", case.name(), case.grid().len()));
    let solution = volta_dispatch::schedule(&case, &options)?;
    spinner.finish_and_clear();
    let mut summary = summary(&case, &options, &solution);
    finish(args, &case, solution.schedule.as_ref(), solution.status, &mut summary, solution.infeasibility.as_ref())
}

fn pareto(args: &Args, case: &Case, n: usize, options: &Options) -> anyhow::Result<ExitCode> {
    let spinner = spinner(&format!("tracing a {n}-point front of {}", case.name()));
    let front = volta_dispatch::pareto(case, n, options)?;
    spinner.finish_and_clear();
    let points: Vec<Value> = front
        .points
        .iter()
        .map(|p| {
            json!({
                "cost": p.cost, "co2_kg": p.co2_kg, "co2_cap_kg": p.co2_cap_kg, "status": p.status.name(),
                "best_bound": p.solution.best_bound, "gap": p.solution.gap,
                "solve_seconds": p.solution.stats.solve_seconds,
            })
        })
        .collect();
    let first = front.points.first().map(|p| &p.solution);
    let mut summary = match first {
        Some(solution) => summary(case, &Options { objective: Objective::Cost, ..options.clone() }, solution),
        None => json!({}),
    };
    summary["pareto"] = json!({ "points": points, "dropped": front.dropped });
    let status = first.map_or(Status::Infeasible, |s| s.status);
    if let Some(dir) = &args.out {
        report::write_front(case, &front, dir)?;
    }
    let infeasibility = first.and_then(|s| s.infeasibility.as_ref());
    finish(args, case, first.and_then(|s| s.schedule.as_ref()), status, &mut summary, infeasibility)
}

/// `hours` of `case` as a positive whole number of steps, or an error naming `flag`.
fn steps(case: &Case, hours: f64, flag: &str) -> anyhow::Result<usize> {
    let grid = case.grid();
    grid.steps_in(hours).filter(|&s| s > 0).with_context(|| {
        format!("{flag} must be a positive whole number of steps of {} (got {hours} h)", grid.step_text())
    })
}

fn rolling(args: &Args, case: &Case, horizon_h: f64, options: &Options) -> anyhow::Result<ExitCode> {
    let grid = case.grid();
    let horizon = steps(case, horizon_h, "--horizon-h")?;
    let commit = args.commit_h.map(|h| steps(case, h, "--commit-h")).transpose()?;
    let rolling = RollingOptions {
        warm_start: !args.cold_windows,
        lower_bound: args.lower_bound,
        ..RollingOptions::new(horizon, commit, options.clone())
    };
    let commit = rolling.commit_steps;
    let bar = ProgressBar::new(grid.len().div_ceil(commit) as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} windows, {elapsed} elapsed, ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(format!("rolling {}", case.name()));
    let result = volta_dispatch::rolling_horizon(case, &rolling, &mut |_, _, _| bar.inc(1))?;
    bar.finish_and_clear();
    let solve: f64 = result.windows.iter().map(|w| w.solve_seconds).sum();
    let build: f64 = result.windows.iter().map(|w| w.build_seconds).sum();
    let plan = result.schedule.as_ref();
    let mut summary = json!({
        "case": case.name(),
        "status": result.status.name(),
        "objective_kind": options.objective.name(),
        "cost": plan.map(|s| s.cost),
        "co2_kg": plan.map(|s| s.co2_kg),
        "best_bound": Value::Null,
        "gap": Value::Null,
        "solve_seconds": solve,
        "build_seconds": build,
        "currency": case.settings().currency,
        "rolling": {
            "horizon_steps": horizon, "commit_steps": commit, "windows": result.windows.len(),
            "steps_scheduled": plan.map_or(0, |s| s.grid.len()),
            "warm_started_windows": result.windows.iter().filter(|w| w.warm_start > 0).count(),
            "proven_by_relaxation_windows": result.windows.iter().filter(|w| w.proven_by_relaxation).count(),
        },
        "lower_bound": result.lower_bound,
        "gap_to_lower_bound": result.gap_to_lower_bound(),
    });
    if let Some(plan) = plan {
        summary["cost_by_category"] = by_category(plan);
    }
    finish(args, case, plan, result.status, &mut summary, result.infeasibility.as_ref())
}

fn blocks_of(args: &Args, case: &Case, blocks: usize, options: &Options) -> anyhow::Result<ExitCode> {
    let seam_steps = args.seam_h.map(|hours| steps(case, hours, "--seam-h")).transpose()?;
    let d = Decomposition { seam_steps, ..Decomposition::new(blocks, options.clone()) };
    // The relaxation, the blocks and the seams.
    let bar = ProgressBar::new((2 * blocks) as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} stages, {elapsed} elapsed")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(format!("{} in {blocks} blocks", case.name()));
    let result = volta_dispatch::decompose(case, &d, &|_| bar.inc(1))?;
    bar.finish_and_clear();
    let (solve, build) = result.seconds();
    let plan = result.schedule.as_ref();
    let mut summary = json!({
        "case": case.name(),
        "status": result.status.name(),
        "objective_kind": options.objective.name(),
        "cost": plan.map(|s| s.cost),
        "co2_kg": plan.map(|s| s.co2_kg),
        "best_bound": Value::Null,
        "gap": Value::Null,
        "solve_seconds": solve,
        "build_seconds": build,
        "currency": case.settings().currency,
        "decomposition": {
            "blocks": result.blocks.len(),
            "block_starts": result.blocks.iter().map(|b| b.start).collect::<Vec<_>>(),
            "seam_steps": result.seam_steps,
            "seams_widened": result.seams.iter().filter(|s| s.attempts > 1 && !s.replaced_block).count(),
            "blocks_solved_again": result.seams.iter().filter(|s| s.replaced_block).count(),
            "relaxation_seconds": result.relaxation_seconds,
            "steps_scheduled": plan.map_or(0, |s| s.grid.len()),
        },
        "lower_bound": result.lower_bound,
        "gap_to_lower_bound": result.gap_to_lower_bound(),
    });
    if let Some(plan) = plan {
        summary["cost_by_category"] = by_category(plan);
    }
    finish(args, case, plan, result.status, &mut summary, result.infeasibility.as_ref())
}

fn spinner(message: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_message(message.to_owned());
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

fn summary(case: &Case, options: &Options, solution: &Solution) -> Value {
    let plan = solution.schedule.as_ref();
    let mut value = json!({
        "case": case.name(),
        "status": solution.status.name(),
        "objective_kind": options.objective.name(),
        "objective": solution.objective,
        "cost": plan.map(|s| s.cost),
        "co2_kg": plan.map(|s| s.co2_kg),
        "best_bound": solution.best_bound,
        "gap": solution.gap,
        "solve_seconds": solution.stats.solve_seconds,
        "build_seconds": solution.stats.build_seconds,
        "price_seconds": solution.stats.price_seconds,
        "currency": case.settings().currency,
        "steps": case.grid().len(),
        "model": { "columns": solution.stats.columns, "rows": solution.stats.rows, "binaries": solution.stats.binaries },
        "strategy": solution.stats.strategy,
        "proven_by_relaxation": solution.stats.proven_by_relaxation,
    });
    if let Some(plan) = plan {
        value["cost_by_category"] = by_category(plan);
    }
    if let Some(exact) = &solution.exact {
        value["exact"] = json!({ "cost": exact.cost, "lower_bound": exact.lower_bound });
    }
    value
}

fn by_category(plan: &Schedule) -> Value {
    let map: serde_json::Map<String, Value> =
        plan.cost_by_category().into_iter().map(|(c, v)| (c.name().to_owned(), json!(v))).collect();
    Value::Object(map)
}

fn finish(
    args: &Args,
    case: &Case,
    plan: Option<&Schedule>,
    status: Status,
    summary: &mut Value,
    infeasibility: Option<&volta_dispatch::Infeasibility>,
) -> anyhow::Result<ExitCode> {
    if let Some(why) = infeasibility {
        summary["infeasibility"] = serde_json::to_value(why)?;
    }
    if let (Some(dir), Some(plan)) = (&args.out, plan) {
        let files = report::write_schedule(case, plan, dir)?;
        summary["files"] = json!(files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>());
    }
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut stdout, summary)?;
    writeln!(stdout)?;
    if plan.is_some() {
        return Ok(ExitCode::SUCCESS);
    }
    match (status, infeasibility) {
        (Status::Infeasible, Some(why)) => eprintln!("infeasible: {}", why.report().replace('\n', "\n  ")),
        (Status::Infeasible, None) => eprintln!("infeasible"),
        (Status::Unbounded, _) => eprintln!("unbounded: a cost can fall without limit (check prices and limits)"),
        (Status::TimeLimit, _) => eprintln!("no schedule found within the time limit"),
        (Status::IterationLimit, _) => eprintln!("no schedule found within the solver's iteration limit"),
        (Status::MemoryLimit, _) => eprintln!("the solver ran out of memory before finding a schedule"),
        (Status::Interrupted, _) => eprintln!("the solve was interrupted before finding a schedule"),
        (Status::Optimal | Status::WithinGap, _) => {}
    }
    Ok(ExitCode::from(crate::exit::NO_SOLUTION))
}
