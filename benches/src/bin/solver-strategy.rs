//! Solver strategies side by side on the benchmark set: each case solved
//! with HiGHS's defaults and with one part of the strategy changed at a
//! time (the LP algorithm, presolve, the heuristic effort, the MIP start), and with
//! Volta's own choice for the case's class. One thread, the default 1e-4
//! gap; prices off (an LP computes its duals anyway). With `--repeat N`,
//! the strategies take turns N times and each reports its median.
//!
//! This is the measurement behind `Strategy`'s choices (see
//! `dispatch/src/strategy.rs` and the README): a choice differs from
//! HiGHS's default only where it was faster here on that class of problem.
//!
//! `cargo run --release -p volta-benches --bin solver-strategy -- [--cases a,b,...] [--strategies a,b,...] [--time-limit S] [--repeat N]`
//!
//! Cases: kazarlis10, kazarlis20, kazarlis40, kazarlis100, kazarlis10-week
//! (the 10-unit day repeated for a week), kazarlis10-trajectories and its
//! week (the slow units with start-up and shut-down trajectories), campus-week, campus-quarter-uc
//! (13 weeks, the CHP under commitment), campus-year-lp, campus-year-uc,
//! islanded. Strategies: highs, ipm,
//! no-presolve, heuristics-0, heuristics-0.3, volta, volta-none (Volta's choice without the
//! relaxation's check), volta-rounding
//! (Volta's choice, started from the LP relaxation rounded up), volta-presolve (Volta's
//! choice with HiGHS's presolve on).

use std::time::Instant;

use volta_benches::flags::Flags;
use volta_dispatch::{LpMethod, MipStart, Options, Solution, Strategy};
use volta_engine::Case;

const CASES: [&str; 12] = [
    "kazarlis10",
    "kazarlis20",
    "kazarlis40",
    "kazarlis100",
    "kazarlis10-week",
    "kazarlis10-trajectories",
    "kazarlis10-trajectories-week",
    "campus-week",
    "campus-quarter-uc",
    "campus-year-lp",
    "campus-year-uc",
    "islanded",
];
const STRATEGIES: [&str; 9] = [
    "highs",
    "ipm",
    "no-presolve",
    "heuristics-0",
    "heuristics-0.3",
    "volta",
    "volta-none",
    "volta-rounding",
    "volta-presolve",
];

fn case(name: &str) -> Case {
    match name {
        "campus-week" => Case::from_path(volta_datasets::case("campus.toml")).expect("campus"),
        "kazarlis10-week" => volta_benches::tiled("benchmarks/kazarlis10.toml", 7),
        "kazarlis10-trajectories-week" => volta_benches::tiled("benchmarks/kazarlis10-trajectories.toml", 7),
        "campus-quarter-uc" => volta_benches::campus_weeks(13, true),
        "campus-year-lp" => volta_benches::campus_year(false),
        "campus-year-uc" => volta_benches::campus_year(true),
        "islanded" => Case::from_path(volta_datasets::case("islanded.toml")).expect("islanded"),
        kazarlis => Case::from_path(volta_datasets::case(&format!("benchmarks/{kazarlis}.toml")))
            .unwrap_or_else(|e| panic!("{kazarlis}: {e}")),
    }
}

fn strategy(name: &str) -> Strategy {
    let highs = Strategy::HIGHS;
    match name {
        "highs" => highs,
        "ipm" => Strategy { lp_method: Some(LpMethod::Ipm), ..highs },
        "no-presolve" => Strategy { presolve: Some(false), ..highs },
        "heuristics-0" => Strategy { heuristic_effort: Some(0.0), ..highs },
        "heuristics-0.3" => Strategy { heuristic_effort: Some(0.3), ..highs },
        "volta" => Strategy::default(),
        "volta-rounding" => Strategy { mip_start: Some(MipStart::Rounding), ..Strategy::default() },
        "volta-none" => Strategy { mip_start: Some(MipStart::None), ..Strategy::default() },
        "volta-presolve" => Strategy { presolve: Some(true), ..Strategy::default() },
        other => panic!("unknown strategy {other} ({})", STRATEGIES.join(", ")),
    }
}

const USAGE: &str = "\
usage: solver-strategy [--cases a,b,...] [--strategies a,b,...] [--time-limit S] [--repeat N]
  --cases a,b,...       kazarlis10, kazarlis20, kazarlis40, kazarlis100, kazarlis10-week,
                        kazarlis10-trajectories, kazarlis10-trajectories-week, campus-week, campus-quarter-uc, campus-year-lp, campus-year-uc,
                        islanded (default: all)
  --strategies a,b,...  highs, ipm, no-presolve, heuristics-0, heuristics-0.3, volta,
                        volta-none, volta-rounding, volta-presolve (default: all)
  --time-limit S        seconds a solve may take (default 120)
  --repeat N            rounds of every strategy; each reports its median (default 1)";

fn list(flags: &mut Flags, flag: &str, known: &[&str]) -> Vec<String> {
    let value: String = flags.value(flag);
    let names: Vec<String> = value.split(',').map(str::to_owned).collect();
    if let Some(unknown) = names.iter().find(|name| !known.contains(&name.as_str())) {
        flags.fail(&format!("{flag}: unknown name {unknown} (one of {})", known.join(", ")));
    }
    names
}

fn main() {
    let mut cases: Vec<String> = CASES.iter().map(|&c| c.to_owned()).collect();
    let mut strategies: Vec<String> = STRATEGIES.iter().map(|&s| s.to_owned()).collect();
    let mut time_limit: f64 = 120.0;
    let mut repeat: usize = 1;
    let mut flags = Flags::new(USAGE);
    while let Some(flag) = flags.next_flag() {
        match flag.as_str() {
            "--cases" => cases = list(&mut flags, &flag, &CASES),
            "--strategies" => strategies = list(&mut flags, &flag, &STRATEGIES),
            "--repeat" => repeat = flags.value::<usize>(&flag).max(1),
            "--time-limit" => time_limit = flags.value(&flag),
            other => flags.unknown(other),
        }
    }
    println!("one thread, gap 1e-4, time limit {time_limit} s a solve, median of {repeat}");
    println!("| case | strategy | used | status | wall s (runs) | objective | gap | / highs | / volta |");
    println!("|---|---|---|---|---:|---:|---:|---:|---:|");
    for name in &cases {
        let case = case(name);
        let mut runs: Vec<Vec<(f64, Solution)>> = strategies.iter().map(|_| Vec::new()).collect();
        for _ in 0..repeat {
            for (s, runs) in strategies.iter().zip(&mut runs) {
                let options = Options {
                    time_limit_s: Some(time_limit),
                    threads: Some(1),
                    prices: false,
                    strategy: strategy(s),
                    ..Options::default()
                };
                let started = Instant::now();
                let solution = volta_dispatch::schedule(&case, &options).expect("solves");
                runs.push((started.elapsed().as_secs_f64(), solution));
            }
        }
        let medians: Vec<f64> = runs.iter().map(|r| median(r.iter().map(|(w, _)| *w).collect())).collect();
        let reference = |name: &str| strategies.iter().position(|s| s == name).map(|i| medians[i]);
        let ratio =
            |wall: f64, name: &str| reference(name).map_or_else(|| "-".to_owned(), |r| format!("{:.2}", wall / r));
        for ((s, runs), wall) in strategies.iter().zip(&runs).zip(&medians) {
            let solution = &runs[0].1;
            let used = solution.stats.strategy.map_or_else(
                || "-".to_owned(),
                |u| {
                    let effort = u.heuristic_effort.map_or_else(String::new, |e| format!(", heuristics {e}"));
                    let presolve = if u.presolve { "" } else { ", no presolve" };
                    let start = match u.mip_start {
                        Some(start @ (MipStart::Rounding | MipStart::Check)) => format!(", start {}", start.name()),
                        Some(MipStart::None) | None => String::new(),
                    };
                    format!("{}{presolve}{effort}{start}", u.lp_method.name())
                },
            );
            let all: Vec<String> = runs.iter().map(|(w, _)| format!("{w:.2}")).collect();
            println!(
                "| {name} | {s} | {used} | {} | {wall:.2} ({}) | {} | {} | {} | {} |",
                solution.status.name(),
                all.join(", "),
                solution.objective.map_or_else(|| "-".to_owned(), |o| format!("{o:.2}")),
                solution.gap.map_or_else(|| "-".to_owned(), |g| format!("{g:.1e}")),
                ratio(*wall, "highs"),
                ratio(*wall, "volta"),
            );
        }
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
