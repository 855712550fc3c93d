//! A rolling horizon, every window solved from scratch and then every
//! window started from the previous one's commitment, in one process (and,
//! unless `--mip-start` says where windows start, first every window solved
//! as a MIP from nothing, without Volta's check of its rounded relaxation,
//! see `MipStart::Check`): by
//! default over the campus year with the CHP under unit commitment; with
//! `--case kazarlis10.toml --copies 7`, a committed case repeated (a week of
//! the Kazarlis system's day).
//!
//! Prints, per run, the wall time, the time in HiGHS and in building the
//! models, the windows warm-started and the stitched cost; then the
//! speed-up and how far apart the stitched costs are, and the lower bound
//! of the whole horizon's LP relaxation (timed apart). All runs solve
//! each window to the same gap (HiGHS's default 1e-4 unless `--gap`).
//!
//! `cargo run --release -p volta-benches --bin rolling-year -- [--weeks N | --case NAME --copies N] [--horizon-h H] [--commit-h C] [--gap G] [--heuristic-effort E] [--presolve on|off] [--mip-start none|check|rounding] [--windows] [--verbose]`

use std::time::Instant;

use volta_benches::flags::Flags;
use volta_dispatch::{MipStart, Options, RollingOptions, RollingResult, Strategy, rolling_horizon};

struct Args {
    weeks: usize,
    case: Option<String>,
    copies: usize,
    horizon: usize,
    commit: usize,
    gap: Option<f64>,
    /// Print each window's solve time, cold beside warm.
    windows: bool,
    /// HiGHS's log on stderr.
    verbose: bool,
    /// The heuristic effort of every window (default: Volta's choice).
    effort: Option<f64>,
    /// Whether every window is presolved (default: Volta's choice).
    presolve: Option<bool>,
    /// Where a window without one before it starts (default: Volta's choice).
    mip_start: Option<MipStart>,
}

const USAGE: &str = "\
usage: rolling-year [--weeks N | --case NAME --copies N] [--horizon-h H] [--commit-h C]
                    [--gap G] [--heuristic-effort E] [--presolve on|off] [--mip-start none|check|rounding]
                    [--windows] [--verbose]
  --weeks N             weeks of the campus with the CHP under commitment (default 52)
  --case NAME           a committed case of datasets/cases instead, repeated --copies times (default 7)
  --horizon-h H         each window's length, hours (default 48)
  --commit-h C          the hours each window keeps (default 24)
  --gap G               each window's relative MIP gap (default HiGHS's 1e-4)
  --heuristic-effort E  HiGHS's share of effort on primal heuristics (default Volta's choice)
  --presolve on|off     whether every window is presolved (default Volta's choice)
  --mip-start FROM      where a window starts with no window before it, in the cold run, and the
                        first window in the warm one: none, check or rounding (default Volta's choice)
  --windows             print each window's solve time, cold beside warm
  --verbose             HiGHS's log on stderr";

fn args() -> Args {
    let mut args = Args {
        weeks: 52,
        case: None,
        copies: 7,
        horizon: 48,
        commit: 24,
        gap: None,
        windows: false,
        verbose: false,
        effort: None,
        presolve: None,
        mip_start: None,
    };
    let mut flags = Flags::new(USAGE);
    while let Some(flag) = flags.next_flag() {
        match flag.as_str() {
            "--windows" => args.windows = true,
            "--verbose" => args.verbose = true,
            "--weeks" => args.weeks = flags.value(&flag),
            "--case" => args.case = Some(flags.value(&flag)),
            "--copies" => args.copies = flags.value(&flag),
            "--horizon-h" => args.horizon = flags.value(&flag),
            "--commit-h" => args.commit = flags.value(&flag),
            "--presolve" => {
                args.presolve = match flags.value::<String>(&flag).as_str() {
                    "on" => Some(true),
                    "off" => Some(false),
                    other => flags.fail(&format!("--presolve: on or off, not {other}")),
                }
            }
            "--heuristic-effort" => args.effort = Some(flags.value(&flag)),
            "--mip-start" => {
                let name: String = flags.value(&flag);
                let start = MipStart::from_name(&name);
                args.mip_start = Some(
                    start.unwrap_or_else(|| flags.fail(&format!("--mip-start: none, check or rounding, not {name}"))),
                );
            }
            "--gap" => args.gap = Some(flags.value(&flag)),
            other => flags.unknown(other),
        }
    }
    args
}

fn run(case: &volta_engine::Case, rolling: &RollingOptions) -> (f64, RollingResult) {
    let started = Instant::now();
    let result = rolling_horizon(case, rolling, &mut |_, _, _| {}).expect("rolling horizon");
    (started.elapsed().as_secs_f64(), result)
}

fn main() {
    let args = args();
    let (case, what) = match &args.case {
        None => (
            volta_benches::campus_weeks(args.weeks, true),
            format!("campus, {} weeks (CHP under commitment)", args.weeks),
        ),
        Some(name) => (volta_benches::tiled(name, args.copies), format!("{name} repeated {} times", args.copies)),
    };
    let strategy = Strategy {
        heuristic_effort: args.effort,
        presolve: args.presolve,
        mip_start: args.mip_start,
        ..Strategy::default()
    };
    let options = Options {
        mip_gap: args.gap,
        prices: false,
        threads: Some(1),
        verbose: args.verbose,
        strategy,
        ..Options::default()
    };
    let warm = RollingOptions::new(args.horizon, Some(args.commit), options.clone());
    let cold = RollingOptions { warm_start: false, ..warm.clone() };
    // Unless told where windows start, also every cold window a MIP from
    // nothing: Volta's own choice checks each window's rounded relaxation.
    let mut plans = Vec::new();
    if args.mip_start.is_none() {
        let strategy = Strategy { mip_start: Some(MipStart::None), ..strategy };
        let none = RollingOptions { options: Options { strategy, ..options.clone() }, ..cold };
        plans.push(("cold, no start", none));
    }
    plans.push(("cold", cold));
    plans.push(("warm", warm));
    println!(
        "{what} ({} steps), windows of {} h keeping {} h, gap {}, 1 thread",
        case.grid().len(),
        args.horizon,
        args.commit,
        args.gap.map_or_else(|| "1e-4 (HiGHS default)".to_owned(), |g| g.to_string()),
    );
    println!("| windows | wall s | HiGHS s | build s | warm-started | proven by the relaxation | stitched cost |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let mut walls = Vec::new();
    let mut costs = Vec::new();
    let mut runs = Vec::new();
    for (name, rolling) in &plans {
        let (wall, result) = run(&case, rolling);
        let solve: f64 = result.windows.iter().map(|w| w.solve_seconds).sum();
        let build: f64 = result.windows.iter().map(|w| w.build_seconds).sum();
        let started = result.windows.iter().filter(|w| w.warm_start > 0).count();
        let proven = result.windows.iter().filter(|w| w.proven_by_relaxation).count();
        let cost = result.schedule.as_ref().map_or(f64::NAN, |s| s.cost);
        println!(
            "| {name} | {wall:.2} | {solve:.2} | {build:.2} | {started} of {n} | {proven} of {n} | {cost:.2} |",
            n = result.windows.len()
        );
        walls.push(wall);
        costs.push(cost);
        runs.push(result);
    }
    if args.windows {
        println!("| window | first step | cold s | warm s | started columns | proven by the relaxation |");
        println!("|---:|---:|---:|---:|---:|---|");
        let (first, last) = (&runs[0], &runs[runs.len() - 1]);
        for (i, (cold, warm)) in first.windows.iter().zip(&last.windows).enumerate() {
            println!(
                "| {i} | {} | {:.3} | {:.3} | {} | {} |",
                cold.start,
                cold.solve_seconds,
                warm.solve_seconds,
                warm.warm_start,
                if warm.proven_by_relaxation { "yes" } else { "" }
            );
        }
    }
    let (warm_wall, warm_cost) = (walls[walls.len() - 1], costs[costs.len() - 1]);
    for ((name, _), (wall, cost)) in plans.iter().zip(walls.iter().zip(&costs)).take(plans.len() - 1) {
        println!(
            "warm / {name}: {:.2}x faster; stitched costs differ by {:.1e} (relative)",
            wall / warm_wall,
            (warm_cost - cost).abs() / cost.abs()
        );
    }
    let started = Instant::now();
    let bound = volta_dispatch::lower_bound(&case, &options).expect("relaxation").expect("a bound");
    println!(
        "the whole horizon's LP relaxation: {bound:.2} in {:.2} s; the stitched cost is at most {:.2} % above the optimum",
        started.elapsed().as_secs_f64(),
        100.0 * (warm_cost - bound) / warm_cost
    );
}
