//! Start-up costs by time off in tiers (hot, warm, cold, ...): each start
//! priced by how long the unit had been off, inside the horizon and before
//! it, checked by hand, against the two-tier cold start they generalise,
//! and by the audit's own recomputation on random cases.

use proptest::prelude::*;
use volta_dispatch::{Options, RollingOptions, Status, rolling_horizon};

use crate::support::{case_from_toml, genset_case, solve_checked, stitched_flaws, unit};

/// The gensets case (see [`genset_case`]) with one unit, `genset0`, and
/// the commitment table's lines `commitment`.
fn case(prices: &[f64], commitment: &str) -> String {
    genset_case(prices, 1, "", commitment)
}

const TIERS: &str = "start_cost = 5\nstart_costs_by_hours_off = [[2, 20], [6, 50]]";

/// One dear hour (10 per kWh) that the unit serves from off: its 100 kWh
/// cost 20, and the start 5 after 1 h off (hot), 20 after 3 h (warm), 50
/// after 8 h (cold), and after exactly 2 h, the warm tier's own threshold, 20.
#[test]
fn a_start_costs_the_tier_its_time_off_reached() {
    for (hours_off, cost) in [(1, 25.0), (2, 40.0), (3, 40.0), (8, 70.0)] {
        let text = case(&[10.0], &format!("{TIERS}\ninitial = {{ on = false, hours_in_state = {hours_off} }}"));
        let (solution, plan) = solve_checked(&case_from_toml(&text), &Options::default());
        assert_eq!(solution.status, Status::Optimal);
        assert!((plan.cost - cost).abs() < 1e-6, "{hours_off} h off: {} against {cost}", plan.cost);
    }
}

/// Dear hours (10 per kWh) at 0, 3 and 10, cheap ones (0.1) between: the
/// unit serves each dear hour and, in each gap, runs some hours at 50 kW (5
/// an hour dearer than the grid) and stays off the others, the restart
/// priced by its time off: hot 7 (under 2 h), warm 20 (under 6 h), cold 50.
/// The 2 h gap: running through costs 10, 1 h off and 1 h on 12, 2 h off
/// 20: it runs through. The 6 h gap: running through 30, 1 h off 7 + 25,
/// 5 h off 20 + 5, 6 h off 50: 5 h off and a warm start. With the first
/// start from long off (cold, 50): starts 70, fuel 450 kWh × 0.2 (90), grid
/// 750 kWh × 0.1 (75): 235.
#[test]
fn starts_inside_the_horizon_are_priced_by_their_time_off() {
    let mut prices = vec![0.1; 12];
    for t in [0, 3, 10] {
        prices[t] = 10.0;
    }
    let text = case(&prices, "start_cost = 7\nstart_costs_by_hours_off = [[2, 20], [6, 50]]");
    let (_, plan) = solve_checked(&case_from_toml(&text), &Options::default());
    assert!((plan.cost - 235.0).abs() < 1e-6, "cost {}", plan.cost);
    let (_, on) = unit(&plan, "genset0");
    // On through the first gap; in the second, one hour on (at either end).
    assert!(on[..=3].iter().all(|&b| b), "{on:?}");
    assert_eq!(on[4..10].iter().filter(|&&b| b).count(), 1, "{on:?}");
    assert!(on[10] && !on[11], "{on:?}");
}

/// One tier is the cold start: the same optimum either way.
#[test]
fn one_tier_is_the_cold_start() {
    let prices: Vec<f64> = (0..24).map(|t| if t % 5 == 0 { 2.0 } else { 0.1 }).collect();
    let cold = case(&prices, "start_cost = 5\ncold_start_cost = 30\ncold_start_after_h = 3");
    let tier = case(&prices, "start_cost = 5\nstart_costs_by_hours_off = [[3, 30]]");
    let options = Options { mip_gap: Some(1e-9), ..Options::default() };
    let (_, a) = solve_checked(&case_from_toml(&cold), &options);
    let (_, b) = solve_checked(&case_from_toml(&tier), &options);
    assert!((a.cost - b.cost).abs() < 1e-6, "{} against {}", a.cost, b.cost);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    /// Random prices, tiers and initial states: the schedule's start-up
    /// costs agree with the audit's recomputation from the on/off series
    /// (`solve_checked` compares the totals), in one model and stitched from
    /// a rolling horizon, which costs no less.
    #[test]
    fn random_tiers_price_every_start(
        prices in prop::collection::vec(0.05..1.5f64, 8..30),
        hot in 0.0..10.0f64,
        steps in prop::collection::vec((1u8..5, 0.0..20.0f64), 1..4),
        (on, hours) in (any::<bool>(), 0u8..10),
        (min_down, horizon, commit) in (0u8..3, 4usize..12, 1usize..6),
    ) {
        let (mut hours_off, mut cost) = (0u32, hot);
        let tiers: Vec<String> = steps
            .iter()
            .map(|&(dh, dc)| {
                hours_off += u32::from(dh);
                cost += dc;
                format!("[{hours_off}, {cost:.3}]")
            })
            .collect();
        let commitment = format!(
            "start_cost = {hot:.3}\nmin_down_h = {min_down}\nstart_costs_by_hours_off = [{}]\n\
             initial = {{ on = {on}, hours_in_state = {hours} }}",
            tiers.join(", ")
        );
        let case = case_from_toml(&case(&prices, &commitment));
        let options = Options { mip_gap: Some(1e-9), ..Options::default() };
        let (_, whole) = solve_checked(&case, &options);
        let rolling = RollingOptions::new(horizon, Some(commit.min(horizon)), options);
        let result = rolling_horizon(&case, &rolling, &mut |_, _, _| {}).expect("rolls");
        let plan = result.schedule.expect("a stitched schedule");
        stitched_flaws(&case, &plan, whole.cost).map_err(TestCaseError::fail)?;
    }
}
