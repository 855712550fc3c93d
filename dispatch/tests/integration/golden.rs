//! Published test systems with known optima.

use volta_dispatch::{Detail, Options, Status};
use volta_engine::Case;

use crate::support::{case_from_toml, example, solve_checked};

/// Kazarlis, Bakirtzis and Petridis (1996), 10 units over 24 h with a 10 %
/// spinning reserve. The best known optimum with quadratic costs is
/// 563,937.7 $ (reported by several MILP studies since); Volta's case uses an
/// 8-segment fuel curve whose chords lie above the parabola, so its optimum
/// may exceed it by a few dollars and never fall below it.
#[test]
fn kazarlis_ten_unit_reaches_the_published_optimum() {
    let case = example("benchmarks/kazarlis10.toml");
    let (solution, plan) = solve_checked(&case, &Options { mip_gap: Some(1e-6), ..Options::default() });
    assert_eq!(solution.status, Status::Optimal);
    let published = 563_937.7;
    let rel = (plan.cost - published) / published;
    assert!((-1e-6..=2e-5).contains(&rel), "cost {} vs published {published} ({rel:+.2e})", plan.cost);
    // The reserve holds at every step: online capacity ≥ 1.1 × demand.
    let capacity = [455.0, 455.0, 130.0, 130.0, 162.0, 80.0, 85.0, 55.0, 55.0, 55.0];
    let Some(Detail::Load { demand_kw, .. }) = plan.asset("demand").map(|a| &a.detail) else { panic!("demand") };
    for (t, &d) in demand_kw.iter().enumerate() {
        let online: f64 = (1..=10)
            .map(|u| match &plan.asset(&format!("unit_{u}")).map(|a| &a.detail) {
                Some(Detail::Unit { on: Some(on), .. }) if on[t] => capacity[u - 1],
                _ => 0.0,
            })
            .sum();
        assert!(online >= 1.1 * d - 1e-6, "step {t}: {online} MW online for {d} MW");
    }
    // The two base units never stop.
    for u in ["unit_1", "unit_2"] {
        let Some(Detail::Unit { on: Some(on), .. }) = plan.asset(u).map(|a| &a.detail) else { panic!("{u}") };
        assert!(on.iter().all(|&b| b), "{u} should run all day");
    }
}

/// The Kazarlis units' fuel curves are quadratic. With chords (8 pieces,
/// the case as written) the schedule's exact cost lies between the
/// published optimum and the chords' cost; with tangents the optimum is a
/// lower bound, and the exact optimum lies between it and the exact cost of
/// the tangents' schedule: both bracket the published 563,937.7 $.
#[test]
fn kazarlis_quadratic_costs_are_bracketed_from_both_sides() {
    let published = 563_937.7;
    let inner = example("benchmarks/kazarlis10.toml");
    let outer = with_approximation("benchmarks/kazarlis10.toml", "outer", 8);
    let options = Options { mip_gap: Some(1e-7), prices: false, ..Options::default() };
    let (chords, chords_plan) = solve_checked(&inner, &options);
    let (tangents, tangents_plan) = solve_checked(&outer, &options);
    let (Some(c), Some(t)) = (chords.exact, tangents.exact) else { panic!("no exact costs") };
    let (c_low, t_low) = (c.lower_bound.expect("bound"), t.lower_bound.expect("bound"));
    eprintln!(
        "chords: {:.2} (exact {:.2}, bound {c_low:.2}); tangents: {:.2} (exact {:.2}, bound {t_low:.2})",
        chords_plan.cost, c.cost, tangents_plan.cost, t.cost
    );
    // Chords over-state: the exact cost is at most what the MILP saw.
    assert!(c.cost <= chords_plan.cost + 1e-6, "{} > {}", c.cost, chords_plan.cost);
    // Tangents under-state: the exact cost is at least what the MILP saw.
    assert!(t.cost >= tangents_plan.cost - 1e-6, "{} < {}", t.cost, tangents_plan.cost);
    // The published optimum is rounded to 0.1 $.
    for (name, low, high) in [("chords", c_low, c.cost), ("tangents", t_low, t.cost)] {
        assert!(low <= published + 0.05 && published <= high + 0.05, "{name}: [{low}, {high}] misses {published}");
    }
    // Eight pieces of the widest unit (455 − 150 kW) err by at most
    // c·(w/2)² = 0.00048·19.06² = 0.17 $ per hour: the two sides meet closely.
    assert!((c.cost - t.cost).abs() <= 1e-4 * published, "{} vs {}", c.cost, t.cost);
}

/// A Kazarlis case with every quadratic fuel curve approximated as asked.
fn with_approximation(name: &str, approximation: &str, segments: u32) -> Case {
    let text = std::fs::read_to_string(volta_datasets::case(name)).expect("case file");
    let pieces = format!("segments = {segments}, approximation = \"{approximation}\" }}");
    assert!(text.contains("segments = 8 }"), "{name} has no quadratic fuel curves");
    case_from_toml(&text.replace("segments = 8 }", &pieces))
}

/// A CHP economic dispatch worked by hand. Heat demand 300 kW, power demand
/// 400 kW; gas 0.05/kWh; grid 0.20/kWh; CHP 35 % electric and 45 % thermal
/// up to 280 kWe; boiler 90 %. Producing 1 kWh of electricity with the CHP
/// costs 0.05/0.35 = 0.1429 and yields 1.2857 kWh of heat worth
/// 1.2857 × 0.05/0.9 = 0.0714, a net 0.0714 < 0.20: the CHP runs flat out
/// while its heat is useful. At 280 kWe it gives 360 kWth > 300, so heat
/// limits it: x = 300/0.45 kWh of gas, 233.33 kWe, no boiler, and the grid
/// supplies 166.67 kWe. Cost per hour: 666.67 × 0.05 + 166.67 × 0.20 = 66.667.
#[test]
fn chp_economic_dispatch_matches_the_hand_solution() {
    let case = case_from_toml(CHP_CASE);
    let (solution, plan) = solve_checked(&case, &Options::default());
    assert_eq!(solution.status, Status::Optimal);
    assert!((plan.cost - 4.0 * 66.666_666_7).abs() < 1e-4, "cost {}", plan.cost);
    let Some(Detail::Unit { output_kw, .. }) = plan.asset("chp").map(|a| &a.detail) else { panic!("chp") };
    assert!((output_kw[0] - 233.333_333).abs() < 1e-4, "chp {}", output_kw[0]);
    // Marginal prices: electricity is the grid's 0.20. One more kWh of heat
    // comes from the CHP (not at capacity): 1/0.45 kWh of gas, less the
    // 0.35/0.45 kWh of electricity it also makes, which the grid no longer
    // supplies: 0.05/0.45 − 0.35/0.45 × 0.20 = −0.0444 per kWh.
    let elec = plan.bus("elec").and_then(|b| b.price.clone()).expect("prices");
    assert!((elec[0] - 0.20).abs() < 1e-9, "electricity price {}", elec[0]);
    let heat = plan.bus("heat").and_then(|b| b.price.clone()).expect("prices");
    assert!((heat[0] - (0.05 / 0.45 - 0.35 / 0.45 * 0.20)).abs() < 1e-9, "heat price {}", heat[0]);
}

/// The CHP case: a converter with two outputs (the usual CHP model).
const CHP_CASE: &str = r#"
name = "chp_ed"
[time]
start = "2024-01-01T00:00"
timezone = "UTC"
step = "1h"
steps = 4
[[buses]]
id = "elec"
carrier = "electricity"
[[buses]]
id = "heat"
carrier = "heat"
[[buses]]
id = "gas"
carrier = "gas"
[[assets]]
id = "power"
type = "load"
bus = "elec"
demand_kw = 400
[[assets]]
id = "space_heat"
type = "load"
bus = "heat"
demand_kw = 300
[[assets]]
id = "grid"
type = "grid"
bus = "elec"
import_price = 0.20
[[assets]]
id = "gas_supply"
type = "grid"
bus = "gas"
import_price = 0.05
[[assets]]
id = "chp"
type = "converter"
kind = "chp"
inputs = [{ bus = "gas" }]
outputs = [{ bus = "elec", efficiency = 0.35 }, { bus = "heat", efficiency = 0.45 }]
capacity_kw = 280
[[assets]]
id = "boiler"
type = "converter"
kind = "gas_boiler"
inputs = [{ bus = "gas" }]
outputs = [{ bus = "heat", efficiency = 0.9 }]
capacity_kw = 1000
"#;
