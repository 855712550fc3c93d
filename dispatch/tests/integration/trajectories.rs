//! Start-up and shut-down trajectories (Morales-España, Gentile and Ramos,
//! 2013): a unit gives fixed outputs below its minimum power in the steps
//! before it is up and after it is down. Solved by hand on a small case,
//! carried across the cuts of a rolling horizon, and refused where a
//! decomposition's seams cannot carry them.

use proptest::prelude::*;
use volta_dispatch::{
    Decomposition, Detail, DispatchError, Options, RollingOptions, Status, decompose, rolling_horizon, verify,
};

use crate::support::{case_from_toml, genset_case, solve_checked, unit};

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

#[test]
fn a_decomposition_refuses_trajectories_it_cannot_carry() {
    let prices = vec![0.1; 48];
    let case = case_from_toml(&case(&prices, 1, "startup_trajectory_kw = [10]"));
    let Err(DispatchError::Option(message)) = decompose(&case, &Decomposition::new(2, Options::default()), &|_| {})
    else {
        panic!("a decomposition in blocks is refused")
    };
    assert!(message.contains("assets.genset0.commitment") && message.contains("trajectories"), "{message}");
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
        up in prop::collection::vec(0.0..50.0f64, 0..4),
        down in prop::collection::vec(0.0..50.0f64, 0..3),
        (min_up, min_down) in (0u8..4, 0u8..4),
        ramp in prop::option::of(10.0..80.0f64),
        (on, hours) in (any::<bool>(), 0u8..5),
        (horizon, commit) in (4usize..12, 1usize..6),
    ) {
        let list = |v: &[f64]| v.iter().map(|x| format!("{x:.3}")).collect::<Vec<_>>().join(", ");
        let commitment = format!(
            "start_cost = 3\nmin_up_h = {min_up}\nmin_down_h = {min_down}\nstartup_trajectory_kw = [{}]\n\
             shutdown_trajectory_kw = [{}]\ninitial = {{ on = {on}, hours_in_state = {hours} }}",
            list(&up),
            list(&down),
        );
        let unit_lines = ramp.map(|r| format!("ramp_up_kw_per_h = {r:.3}\nramp_down_kw_per_h = {r:.3}")).unwrap_or_default();
        let case = case_from_toml(&genset_case(&prices, 1, &unit_lines, &commitment));
        let options = Options { mip_gap: Some(1e-9), ..Options::default() };
        let (_, whole) = solve_checked(&case, &options);
        let rolling = RollingOptions::new(horizon, Some(commit.min(horizon)), options);
        let result = rolling_horizon(&case, &rolling, &mut |_, _, _| {}).expect("rolls");
        let plan = result.schedule.expect("a stitched schedule");
        let errors = verify::check(&case, &plan, 1e-6);
        prop_assert!(errors.is_empty(), "{}", errors.join("\n"));
        prop_assert!(plan.cost >= whole.cost - 1e-6 * whole.cost.abs().max(1.0), "{} < {}", plan.cost, whole.cost);
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
