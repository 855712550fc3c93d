//! Fleets of identical units: the aggregated and ordered formulations reach
//! the optimum of the units modelled apart, and the unit schedules they
//! return hold every unit constraint and cost what they report.

use proptest::prelude::*;
use volta_dispatch::{Detail, Options, RollingOptions, Status, rolling_horizon, verify};

use crate::support::{case_from_toml, example, solve_checked};

fn exact(fleets: bool) -> Options {
    Options { mip_gap: Some(0.0), fleets, prices: false, ..Options::default() }
}

/// Kazarlis 20 (two copies of each of the 10 units): ten fleets of two.
#[test]
fn kazarlis_twenty_as_fleets_matches_its_units_apart() {
    let case = example("benchmarks/kazarlis20.toml");
    let options = |fleets| Options { mip_gap: Some(1e-6), fleets, prices: false, ..Options::default() };
    let (fleet, fleet_plan) = solve_checked(&case, &options(true));
    let (apart, apart_plan) = solve_checked(&case, &options(false));
    eprintln!(
        "kazarlis20: fleets {:.2} in {:.2} s ({} integer columns), apart {:.2} in {:.2} s ({} binaries)",
        fleet_plan.cost,
        fleet.stats.solve_seconds,
        fleet.stats.binaries,
        apart_plan.cost,
        apart.stats.solve_seconds,
        apart.stats.binaries
    );
    assert_eq!(fleet.status, Status::Optimal);
    let rel = (fleet_plan.cost - apart_plan.cost).abs() / apart_plan.cost;
    assert!(rel <= 2e-6, "fleets {} vs apart {} ({rel:.1e})", fleet_plan.cost, apart_plan.cost);
    // The fleet's objective is the cost of the unit schedules it returns.
    let objective = fleet.objective.expect("objective");
    assert!((objective - fleet_plan.cost).abs() <= 1e-6 * objective, "{objective} vs {}", fleet_plan.cost);
    // Every unit has its own schedule, and the copies of a unit share the work.
    let on = |id: &str| {
        let Some(Detail::Unit { on: Some(on), .. }) = fleet_plan.asset(id).map(|a| &a.detail) else {
            panic!("{id} is not a committed unit")
        };
        on.clone()
    };
    assert!(on("unit_1").iter().all(|&b| b) && on("unit_11").iter().all(|&b| b), "the base units run all day");
}

/// A rolling horizon regroups the fleets at each window (units whose
/// carried states differ are no longer identical) and stitches a schedule
/// that holds every unit constraint across the seams.
#[test]
fn a_rolling_horizon_regroups_fleets_at_each_window() {
    let case = example("benchmarks/kazarlis20.toml");
    let run = |fleets| {
        let options = Options { mip_gap: Some(1e-7), fleets, prices: false, ..Options::default() };
        let result = rolling_horizon(&case, &RollingOptions::new(12, Some(6), options), &mut |_, _, _| {})
            .expect("rolling horizon");
        assert_eq!(result.status, Status::Optimal);
        let stitched = result.schedule.expect("stitched");
        let errors = verify::check(&case, &stitched, 1e-5);
        assert!(errors.is_empty(), "fleets {fleets}:\n{}", errors.join("\n"));
        stitched.cost
    };
    let (fleet, apart) = (run(true), run(false));
    eprintln!("rolling kazarlis20: fleets {fleet:.2}, apart {apart:.2}");
    // Each window's optimum is the same; the windows' ties may leave
    // different (equally cheap) states to the next, hence a tolerance.
    assert!((fleet - apart).abs() <= 1e-4 * apart, "fleets {fleet} vs apart {apart}");
}

/// A fleet case: `size` copies of a unit beside an expensive grid, with the
/// given commitment data.
#[expect(clippy::too_many_arguments, reason = "one argument per drawn property")]
fn fleet_case(
    size: usize,
    demand: &[f64],
    up: u8,
    down: u8,
    cold_after: u8,
    initial_on: bool,
    initial_h: u8,
    ramp: Option<f64>,
) -> String {
    let list = |v: &[f64]| v.iter().map(|x| format!("{x:.3}")).collect::<Vec<_>>().join(", ");
    let mut text = format!(
        r#"
name = "fleet"
[[carriers]]
id = "fuel"
co2_kg_per_kwh = 0.2
[time]
start = "2026-01-05T00:00"
timezone = "UTC"
step = "1h"
steps = {n}
[[buses]]
id = "e"
carrier = "electricity"
[[assets]]
id = "demand"
type = "load"
bus = "e"
demand_kw = [{demand}]
[[assets]]
id = "grid"
type = "grid"
bus = "e"
import_price = 0.45
export_price = 0.01
export_limit_kw = 1000
"#,
        n = demand.len(),
        demand = list(demand),
    );
    let ramp = ramp.map_or_else(String::new, |r| format!("ramp_up_kw_per_h = {r}\nramp_down_kw_per_h = {r}\n"));
    for k in 0..size {
        text += &format!(
            r#"
[[assets]]
id = "gen_{k}"
type = "thermal"
bus = "e"
capacity_kw = 100
min_power_kw = 40
fuel_carrier = "fuel"
fuel_price = 0.05
fuel_curve = [[40, 160], [70, 250], [100, 360]]
{ramp}  [assets.commitment]
  min_up_h = {up}
  min_down_h = {down}
  start_cost = 4
  cold_start_cost = 9
  cold_start_after_h = {cold_after}
  shutdown_cost = 1
  initial = {{ on = {initial_on}, hours_in_state = {initial_h} }}
"#
        );
    }
    text
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, .. ProptestConfig::default() })]

    /// Random fleets (sizes, minimum up and down times, warm windows,
    /// initial states, demands, with and without ramp limits): the fleet
    /// formulation's optimum is the optimum of the units apart, and its
    /// unit schedules hold every constraint at the cost they report.
    #[test]
    fn a_fleet_reaches_the_optimum_of_its_units_apart(
        size in 2usize..4,
        demand in prop::collection::vec(0.0..320.0f64, 8..16),
        up in 1u8..5,
        down in 1u8..5,
        warm in 1u8..6,
        initial_on in any::<bool>(),
        initial_h in 1u8..8,
        ramped in any::<bool>(),
    ) {
        let ramp = ramped.then_some(45.0);
        let text = fleet_case(size, &demand, up, down, down + warm, initial_on, initial_h, ramp);
        let case = case_from_toml(&text);
        let (fleet, fleet_plan) = solve_checked(&case, &exact(true));
        let (_, apart_plan) = solve_checked(&case, &exact(false));
        prop_assert_eq!(fleet.status, Status::Optimal);
        let tolerance = 1e-6 * apart_plan.cost.abs().max(1.0);
        prop_assert!(
            (fleet_plan.cost - apart_plan.cost).abs() <= tolerance,
            "fleet {} vs apart {}\n{}", fleet_plan.cost, apart_plan.cost, text
        );
    }
}
