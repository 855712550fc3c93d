//! A long horizon decomposed into blocks solved in parallel, against the
//! rolling horizon on the same case, in one process: by default the campus
//! year with the CHP under unit commitment; with `--case kazarlis10.toml
//! --copies 7`, a committed case repeated.
//!
//! Prints, per run, the wall time, the stitched cost and how far above the
//! whole horizon's LP relaxation it is (at most how far from optimal), and
//! for decompositions the seams widened and the blocks solved again. Every
//! window is solved to the same gap (HiGHS's default 1e-4 unless `--gap`),
//! one HiGHS thread each; the blocks run on rayon's pool (one per core).
//!
//! `--lp` takes the campus without commitment (an LP). With `--whole-limit S`, the whole horizon is also solved as one MILP
//! (all threads HiGHS wants, stopped after S seconds), the reference the
//! stitched costs are measured against.
//!
//! `cargo run --release -p volta-benches --bin decompose-year -- [--weeks N [--lp] | --case NAME --copies N] [--blocks 52,104] [--seam-h H] [--gap G] [--whole-limit S]`

use std::time::Instant;

use volta_benches::flags::Flags;
use volta_dispatch::{Decomposition, Options, RollingOptions, decompose, rolling_horizon};

struct Args {
    weeks: usize,
    case: Option<String>,
    copies: usize,
    blocks: Vec<usize>,
    seam: Option<usize>,
    gap: Option<f64>,
    whole: Option<f64>,
    lp: bool,
}

const USAGE: &str = "\
usage: decompose-year [--weeks N [--lp] | --case NAME --copies N] [--blocks 52,104] [--seam-h H]
                      [--gap G] [--whole-limit S]
  --weeks N          weeks of the campus with the CHP under commitment (default 52)
  --lp               the campus without commitment (an LP)
  --case NAME        a committed case of datasets/cases instead, repeated --copies times (default 7)
  --blocks a,b,...   the numbers of blocks to try (default 52)
  --seam-h H         the hours blocks overlap at a seam (default Volta's choice)
  --gap G            each window's relative MIP gap (default HiGHS's 1e-4)
  --whole-limit S    also solve the whole horizon as one MILP, stopped after S seconds";

fn args() -> Args {
    let mut args =
        Args { weeks: 52, case: None, copies: 7, blocks: vec![52], seam: None, gap: None, whole: None, lp: false };
    let mut flags = Flags::new(USAGE);
    while let Some(flag) = flags.next_flag() {
        match flag.as_str() {
            "--lp" => args.lp = true,
            "--weeks" => args.weeks = flags.value(&flag),
            "--case" => args.case = Some(flags.value(&flag)),
            "--copies" => args.copies = flags.value(&flag),
            "--blocks" => {
                let value: String = flags.value(&flag);
                args.blocks = value
                    .split(',')
                    .filter(|v| !v.is_empty())
                    .map(|v| v.parse().unwrap_or_else(|e| flags.fail(&format!("--blocks: {e}: {v}"))))
                    .collect();
            }
            "--seam-h" => args.seam = Some(flags.value(&flag)),
            "--gap" => args.gap = Some(flags.value(&flag)),
            "--whole-limit" => args.whole = Some(flags.value(&flag)),
            other => flags.unknown(other),
        }
    }
    args
}

fn main() {
    let args = args();
    let (case, what) = match &args.case {
        None => (
            volta_benches::campus_weeks(args.weeks, !args.lp),
            format!("campus, {} weeks ({})", args.weeks, if args.lp { "an LP" } else { "CHP under commitment" }),
        ),
        Some(name) => (volta_benches::tiled(name, args.copies), format!("{name} repeated {} times", args.copies)),
    };
    let options = Options { mip_gap: args.gap, prices: false, threads: Some(1), ..Options::default() };
    println!(
        "{what} ({} steps), gap {}, 1 HiGHS thread a window, {} rayon threads",
        case.grid().len(),
        args.gap.map_or_else(|| "1e-4 (HiGHS default)".to_owned(), |g| g.to_string()),
        rayon::current_num_threads(),
    );
    let started = Instant::now();
    let bound = volta_dispatch::lower_bound(&case, &options).expect("relaxation").expect("a bound");
    println!("LP relaxation of the whole horizon: {bound:.2} in {:.2} s", started.elapsed().as_secs_f64());
    println!("| run | wall s | stitched cost | above the relaxation | seams widened | blocks solved again |");
    println!("|---|---:|---:|---:|---:|---:|");
    let above = |cost: f64| format!("{:.3} %", 100.0 * (cost - bound) / cost);
    let started = Instant::now();
    let rolling = RollingOptions::new(48, Some(24), options.clone());
    let result = rolling_horizon(&case, &rolling, &mut |_, _, _| {}).expect("rolling horizon");
    let cost = result.schedule.as_ref().map_or(f64::NAN, |s| s.cost);
    let wall = started.elapsed().as_secs_f64();
    println!("| rolling, 48 h windows keeping 24 h | {wall:.2} | {cost:.2} | {} | – | – |", above(cost));
    if let Some(limit) = args.whole {
        let started = Instant::now();
        let whole = Options { time_limit_s: Some(limit), threads: None, ..options.clone() };
        let solution = volta_dispatch::schedule(&case, &whole).expect("the whole horizon");
        let wall = started.elapsed().as_secs_f64();
        let cost = solution.schedule.as_ref().map_or(f64::NAN, |s| s.cost);
        println!(
            "| one MILP ({}, gap {:.1e}, bound {:.2}) | {wall:.2} | {cost:.2} | {} | – | – |",
            solution.status.name(),
            solution.gap.unwrap_or(f64::NAN),
            solution.best_bound.unwrap_or(f64::NAN),
            above(cost)
        );
    }
    for &blocks in &args.blocks {
        let started = Instant::now();
        let d = Decomposition { seam_steps: args.seam, ..Decomposition::new(blocks, options.clone()) };
        let result = decompose(&case, &d, &|_| {}).expect("decomposition");
        let wall = started.elapsed().as_secs_f64();
        let cost = result.schedule.as_ref().map_or(f64::NAN, |s| s.cost);
        let widened = result.seams.iter().filter(|s| s.attempts > 1 && !s.replaced_block).count();
        let again = result.seams.iter().filter(|s| s.replaced_block).count();
        let errors = result.schedule.as_ref().map_or(0, |s| volta_dispatch::verify::check(&case, s, 1e-5).len());
        assert_eq!(errors, 0, "the stitched schedule breaks an invariant");
        println!(
            "| {blocks} blocks, seams of {} steps ({}) | {wall:.2} | {cost:.2} | {} | {widened} | {again} |",
            result.seam_steps,
            result.status.name(),
            above(cost),
        );
    }
}
