//! Start-up and shut-down trajectories (Morales-España, Gentile and Ramos,
//! 2013): a unit gives fixed outputs below its minimum power in the steps
//! before it is up and after it is down. Solved by hand on a small case,
//! carried across the cuts of a rolling horizon and across the seams of a
//! decomposition into blocks.

use proptest::prelude::*;
use volta_dispatch::{Decomposition, Detail, Options, RollingOptions, Status, decompose, rolling_horizon, verify};

use crate::support::{case_from_toml, genset_case, solve_checked, stitched_flaws, unit};

/// The gensets case (see [`genset_case`]) with `units` units and the
/// commitment table's lines `commitment`.
fn case(prices: &[f64], units: usize, commitment: &str) -> String {
    genset_case(prices, units, "", commitment)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * (1.0 + b.abs())
}

/// The grid costs 1.0 per kWh in steps 2 and 3 and 0.1 otherwise; the unit
/// (0.2 per kWh) is worth running in the dear steps only. Its start-up
/// gives 10 then 30 kW in the two steps before it is up, its shut-down 20 kW
/// in the step it stops in, all bought at 0.2 instead of 0.1. So it starts
/// at step 2 (the earliest its start-up allows from off) and stops at 4:
/// output 10, 30, 100, 100, 20, 0; grid 90, 70, 0, 0, 80, 100 at 0.1 (34);
/// fuel 260 kWh × 0.2 (52): 86. Without the trajectories: 80.
#[test]
fn trajectories_by_hand() {
    let prices = [0.1, 0.1, 1.0, 1.0, 0.1, 0.1];
    let with = case_from_toml(&case(&prices, 1, "startup_trajectory_kw = [10, 30]\nshutdown_trajectory_kw = [20]"));
    let (solution, plan) = solve_checked(&with, &Options::default());
    assert_eq!(solution.status, Status::Optimal);
    assert!(close(plan.cost, 86.0), "cost {}", plan.cost);
    let (output, on) = unit(&plan, "genset0");
    assert_eq!(on, [false, false, true, true, false, false]);
    for (got, want) in output.iter().zip([10.0, 30.0, 100.0, 100.0, 20.0, 0.0]) {
        assert!(close(*got, want), "{output:?}");
    }
    let without = case_from_toml(&case(&prices, 1, ""));
    let (_, plan) = solve_checked(&without, &Options::default());
    assert!(close(plan.cost, 80.0), "cost {}", plan.cost);
}

/// A dear step too early for the start-up: from off, a unit whose start-up
/// takes two steps cannot be up at step 1, so it serves the dear steps from
/// 2 on only, and the audit refuses a schedule that has it up at step 1.
#[test]
fn a_start_up_takes_its_steps_before_the_unit_is_up() {
    let prices = [0.1, 1.0, 1.0, 0.1];
    let text = case(&prices, 1, "startup_trajectory_kw = [10, 30]");
    let case = case_from_toml(&text);
    let (_, plan) = solve_checked(&case, &Options::default());
    let (_, on) = unit(&plan, "genset0");
    assert_eq!(on, [false, false, true, false]);
    // The same schedule with the unit up from step 1 is refused.
    let mut early = plan.clone();
    if let Some(asset) = early.assets.iter_mut().find(|a| a.id.as_str() == "genset0")
        && let Detail::Unit { on: Some(on), output_kw, .. } = &mut asset.detail
    {
        on[1] = true;
        output_kw[1] = 100.0;
    }
    let errors = verify::check(&case, &early, 1e-6);
    assert!(errors.iter().any(|e| e.contains("step 1: starts before its start-up")), "{errors:?}");
}

/// Daily peaks, 72 hourly steps, a rolling horizon whose cuts (every 7
/// steps) fall inside start-ups and shut-downs: the stitched schedule keeps
/// every trajectory across the cuts (the audit checks each step from the
/// case's initial state) and, with a day of look-ahead, costs what the
/// whole horizon in one model costs.
#[test]
fn a_rolling_horizon_carries_trajectories_across_its_cuts() {
    let prices: Vec<f64> = (0..72).map(|t| if matches!(t % 24, 8..=11 | 17..=20) { 1.0 } else { 0.1 }).collect();
    let commitment =
        "start_cost = 5\nmin_up_h = 2\nstartup_trajectory_kw = [10, 30]\nshutdown_trajectory_kw = [20, 10]";
    let case = case_from_toml(&case(&prices, 1, commitment));
    let options = Options { mip_gap: Some(1e-9), ..Options::default() };
    let (_, whole) = solve_checked(&case, &options);
    for warm_start in [true, false] {
        let rolling = RollingOptions { warm_start, ..RollingOptions::new(24, Some(7), options.clone()) };
        let result = rolling_horizon(&case, &rolling, &mut |_, _, _| {}).expect("rolls");
        let plan = result.schedule.expect("a stitched schedule");
        let errors = verify::check(&case, &plan, 1e-6);
        assert!(errors.is_empty(), "warm {warm_start}:\n{}", errors.join("\n"));
        assert!(close(plan.cost, whole.cost), "warm {warm_start}: {} against {}", plan.cost, whole.cost);
        // The case does exercise the carry: a start-up and a shut-down
        // straddle a cut (a cut at c sits between steps c - 1 and c).
        let (_, on) = unit(&plan, "genset0");
        let cut_inside = |from: usize, to: usize| (from + 1..=to).any(|c| c % 7 == 0);
        let starts: Vec<usize> = (1..on.len()).filter(|&t| on[t] && !on[t - 1]).collect();
        let stops: Vec<usize> = (1..on.len()).filter(|&t| !on[t] && on[t - 1]).collect();
        assert!(starts.iter().any(|&s| cut_inside(s - 2, s)), "starts {starts:?}");
        assert!(stops.iter().any(|&s| cut_inside(s, s + 1)), "stops {stops:?}");
    }
}

/// Two identical units with trajectories are kept apart (ordered, not
/// counted): the same optimum with fleets as without.
#[test]
fn identical_units_with_trajectories_form_an_ordered_fleet() {
    let prices: Vec<f64> = (0..24).map(|t| if (8..=13).contains(&t) { 1.0 } else { 0.1 }).collect();
    let mut text = case(&prices, 2, "startup_trajectory_kw = [10, 30]\nshutdown_trajectory_kw = [20]");
    text = text.replace("demand_kw = 100", "demand_kw = 180");
    let case = case_from_toml(&text);
    let options = Options { mip_gap: Some(1e-9), ..Options::default() };
    let (_, fleets) = solve_checked(&case, &options);
    let (_, apart) = solve_checked(&case, &Options { fleets: false, ..options });
    assert!(close(fleets.cost, apart.cost), "{} against {}", fleets.cost, apart.cost);
}

/// Three dear hours in every eight, at each of the eight phases, so that
/// start-ups and shut-downs fall on, before and after the seams of two to
/// four blocks, with and without ramp limits: every stitched schedule
/// passes the audit (which recomputes each trajectory from the on/off
/// series, so a start-up cut by a seam, on either side, is caught) and
/// costs no less than the one model; each seam holds at its first window
/// (with ramps, the output the window must end at is the block's, a
/// trajectory's included); and trajectories do run across seams.
#[test]
fn a_decomposition_carries_trajectories_across_its_seams() {
    let commitment = "start_cost = 2\nstartup_trajectory_kw = [10, 30]\nshutdown_trajectory_kw = [20, 5]";
    let options = Options { mip_gap: Some(1e-9), prices: false, ..Options::default() };
    let (mut across_start, mut across_end) = (0, 0);
    for (phase, ramps) in (0..8).flat_map(|p| [(p, false), (p, true)]) {
        let prices: Vec<f64> = (0..48).map(|t| if (t + 8 - phase) % 8 < 3 { 1.0 } else { 0.1 }).collect();
        let ramp = if ramps { "ramp_up_kw_per_h = 100\nramp_down_kw_per_h = 100" } else { "" };
        let case = case_from_toml(&genset_case(&prices, 1, ramp, commitment));
        let (_, whole) = solve_checked(&case, &options);
        for (blocks, seam) in (2..=4).flat_map(|b| [(b, 5), (b, 6)]) {
            let d = Decomposition { seam_steps: Some(seam), ..Decomposition::new(blocks, options.clone()) };
            let result = decompose(&case, &d, &|_| {}).expect("runs");
            let what = format!("phase {phase}, ramps {ramps}, {blocks} blocks, seams of {seam}");
            assert!(matches!(result.status, Status::Optimal), "{what}: {:?}", result.status);
            let plan = result.schedule.expect("stitched");
            let errors = verify::check(&case, &plan, 1e-6);
            assert!(errors.is_empty(), "{what}: {}", errors.join("\n"));
            assert!(plan.cost >= whole.cost - 1e-6, "{what}: {} below {}", plan.cost, whole.cost);
            let (output, on) = unit(&plan, "genset0");
            let on_trajectory = |t: usize| !on[t] && output[t] > 1e-6;
            for s in &result.seams {
                assert!(
                    s.attempts == 1 && !s.replaced_block,
                    "{what}: the seam at {} took {} windows",
                    s.at,
                    s.attempts
                );
                let (first, end) = (s.window.start, s.window.start + s.window.len);
                across_start += usize::from(on_trajectory(first - 1) && on_trajectory(first));
                across_end += usize::from(on_trajectory(end - 1) && on_trajectory(end));
            }
        }
    }
    assert!(across_start > 0 && across_end > 0, "trajectories across seams' starts {across_start}, ends {across_end}");
}

/// A unit of random trajectories, minimum times, ramp and initial state.
#[derive(Debug, Clone)]
struct RandomUnit {
    up: Vec<f64>,
    down: Vec<f64>,
    min_up: u8,
    min_down: u8,
    ramp: Option<f64>,
    on: bool,
    hours: u8,
}

impl RandomUnit {
    /// The gensets case with this one unit over `prices`.
    fn case(&self, prices: &[f64]) -> volta_engine::Case {
        let list = |v: &[f64]| v.iter().map(|x| format!("{x:.3}")).collect::<Vec<_>>().join(", ");
        let commitment = format!(
            "start_cost = 3\nmin_up_h = {}\nmin_down_h = {}\nstartup_trajectory_kw = [{}]\n\
             shutdown_trajectory_kw = [{}]\ninitial = {{ on = {}, hours_in_state = {} }}",
            self.min_up,
            self.min_down,
            list(&self.up),
            list(&self.down),
            self.on,
            self.hours,
        );
        let ramp = self.ramp.map(|r| format!("ramp_up_kw_per_h = {r:.3}\nramp_down_kw_per_h = {r:.3}"));
        case_from_toml(&genset_case(prices, 1, &ramp.unwrap_or_default(), &commitment))
    }
}

/// Random units whose start-up takes `up_steps` steps.
fn random_unit(up_steps: std::ops::Range<usize>) -> impl Strategy<Value = RandomUnit> {
    (
        prop::collection::vec(0.0..50.0f64, up_steps),
        prop::collection::vec(0.0..50.0f64, 0..3),
        (0u8..4, 0u8..4),
        prop::option::of(10.0..80.0f64),
        (any::<bool>(), 0u8..5),
    )
        .prop_map(|(up, down, (min_up, min_down), ramp, (on, hours))| RandomUnit {
            up,
            down,
            min_up,
            min_down,
            ramp,
            on,
            hours,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    /// Random prices, trajectories, minimum times, ramps and initial states:
    /// the whole horizon's schedule and a rolling horizon's stitched one
    /// both pass the audit (which recomputes every trajectory from the
    /// on/off series), and the rolling one costs no less.
    #[test]
    fn random_trajectories_hold_in_one_model_and_across_cuts(
        prices in prop::collection::vec(0.05..0.6f64, 10..30),
        random in random_unit(0..4),
        (horizon, commit) in (4usize..12, 1usize..6),
    ) {
        let case = random.case(&prices);
        let options = Options { mip_gap: Some(1e-9), ..Options::default() };
        let (_, whole) = solve_checked(&case, &options);
        let rolling = RollingOptions::new(horizon, Some(commit.min(horizon)), options);
        let result = rolling_horizon(&case, &rolling, &mut |_, _, _| {}).expect("rolls");
        let plan = result.schedule.expect("a stitched schedule");
        stitched_flaws(&case, &plan, whole.cost).map_err(TestCaseError::fail)?;
    }

    /// The same random units over two days in two or three blocks: the
    /// stitched schedule passes the audit and costs no less than the one model.
    #[test]
    fn random_trajectories_hold_across_a_decomposition(
        prices in prop::collection::vec(0.05..0.6f64, 36..60),
        random in random_unit(1..4),
        (blocks, wider) in (2usize..=3, 0usize..3),
    ) {
        let case = random.case(&prices);
        let options = Options { mip_gap: Some(1e-9), prices: false, ..Options::default() };
        let (_, whole) = solve_checked(&case, &options);
        // The narrowest seam the unit allows (one more step than its longest
        // minimum time, its time off covering both trajectories), or wider.
        let hold = usize::from(random.min_up.max(random.min_down)).max(random.up.len() + random.down.len()).max(1);
        let seam = hold + 1 + wider;
        let blocks = blocks.min(prices.len() / (2 * seam));
        prop_assume!(blocks >= 2);
        let d = Decomposition { seam_steps: Some(seam), ..Decomposition::new(blocks, options) };
        let result = decompose(&case, &d, &|_| {}).expect("runs");
        let plan = result.schedule.expect("a stitched schedule");
        stitched_flaws(&case, &plan, whole.cost).map_err(TestCaseError::fail)?;
    }
}

/// The Kazarlis 10-unit day with trajectories on its slow units (quadratic
/// fuel in chords): the schedule passes the audit, and its exact cost (off
/// units on a trajectory burn at their steepest piece's rate, the model's
/// own figure) is no less than the bound on the exact optimum.
#[test]
fn kazarlis_with_trajectories_holds_every_invariant() {
    let case = crate::support::example("benchmarks/kazarlis10-trajectories.toml");
    let (solution, plan) = solve_checked(&case, &Options::default());
    assert!(matches!(solution.status, Status::Optimal | Status::WithinGap));
    let exact = solution.exact.expect("quadratic fuel is costed exactly");
    let bound = exact.lower_bound.expect("a bound");
    assert!(bound <= exact.cost, "bound {bound} above the exact cost {}", exact.cost);
    // The big units do pass through their start-ups: some step has a unit
    // off with output.
    let on_trajectory = plan.assets.iter().any(|a| {
        matches!(&a.detail, Detail::Unit { output_kw, on: Some(on), .. }
            if output_kw.iter().zip(on).any(|(&p, &is_on)| !is_on && p > 1.0))
    });
    assert!(on_trajectory, "no unit used a trajectory");
}
