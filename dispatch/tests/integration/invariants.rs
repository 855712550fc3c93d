//! Invariants of schedules of the example cases and of random small cases.

use proptest::prelude::*;
use volta_dispatch::{Detail, Objective, Options, Status};

use crate::support::{case_from_toml, example, solve_checked};

#[test]
fn campus_schedule_holds_every_invariant() {
    let (solution, plan) = solve_checked(&example("campus.toml"), &Options::default());
    assert_eq!(solution.status, Status::Optimal);
    assert!((solution.objective.expect("objective") - plan.cost).abs() < 1e-6 * plan.cost);
    // The CHP's commitment respects its 3 h minimum up time (checked by
    // verify) and it runs at some point in a week of 0.28 AUD/kWh days.
    let Some(Detail::Unit { on: Some(on), .. }) = plan.asset("chp").map(|a| &a.detail) else { panic!("chp") };
    assert!(on.iter().any(|&b| b));
    // Every bus has a price at every step.
    for bus in &plan.buses {
        assert_eq!(bus.price.as_ref().map(Vec::len), Some(168), "{}", bus.id);
    }
}

#[test]
fn islanded_schedule_holds_every_invariant() {
    let options = Options { mip_gap: Some(0.005), ..Options::default() };
    let (solution, plan) = solve_checked(&example("islanded.toml"), &options);
    assert!(matches!(solution.status, Status::Optimal | Status::WithinGap));
    let (objective, bound) = (solution.objective.expect("objective"), solution.best_bound.expect("bound"));
    assert!(bound <= objective + 1e-6 && (objective - bound) <= 0.005 * objective.abs() + 1e-6);
    assert!(plan.co2_kg > 0.0);
}

#[test]
fn co2_objective_emits_less_and_costs_more_than_cost() {
    let case = example("campus.toml");
    let (_, cheap) = solve_checked(&case, &Options::default());
    let (least, clean) = solve_checked(&case, &Options::with_objective(Objective::Co2));
    assert!(clean.co2_kg < cheap.co2_kg - 1.0, "co2 {} vs {}", clean.co2_kg, cheap.co2_kg);
    // The reported optimum is the schedule's own emissions (the campus sheds nothing).
    let reported = least.objective.expect("objective");
    assert!((reported - clean.co2_kg).abs() <= 1e-9 * clean.co2_kg, "{reported} vs {}", clean.co2_kg);
    assert!(clean.cost > cheap.cost, "cost {} vs {}", clean.cost, cheap.cost);
    let weighted = Objective::Weighted { cost_weight: 1.0, co2_weight: 0.05 };
    let (_, mid) = solve_checked(&case, &Options::with_objective(weighted));
    assert!(mid.co2_kg <= cheap.co2_kg + 1e-6 && mid.co2_kg >= clean.co2_kg - 1e-6);
}

/// A small random multi-energy case: electricity and heat, a grid, a CHP
/// under commitment, a heat pump, a boiler, a battery and a heat store.
pub fn random_case(elec: &[f64], heat: &[f64], price: &[f64], pv: &[f64], soc0: f64, min_up: u8) -> String {
    let list = |v: &[f64]| v.iter().map(|x| format!("{x:.3}")).collect::<Vec<_>>().join(", ");
    format!(
        r#"
name = "random"
[time]
start = "2024-03-31T00:00"
timezone = "Europe/Berlin"
step = "1h"
steps = {n}
[settings]
value_of_lost_load = 10
[[buses]]
id = "elec"
carrier = "electricity"
[[buses]]
id = "heat"
carrier = "heat"
[[assets]]
id = "elec_load"
type = "load"
bus = "elec"
demand_kw = [{elec}]
curtailable = {{ value_of_lost_load = 2.0, max_share = 0.3 }}
[[assets]]
id = "ev_charging"
type = "load"
bus = "elec"
demand_kw = [{ev}]
shiftable = {{ window_h = 6, max_power_kw = 50 }}
[[assets]]
id = "heat_load"
type = "load"
bus = "heat"
demand_kw = [{heat}]
[[assets]]
id = "grid"
type = "grid"
bus = "elec"
import_price = [{price}]
export_price = 0.03
export_limit_kw = 50
import_limit_kw = 150
peak_demand_charge = 0.5
[[assets]]
id = "pv"
type = "renewable"
bus = "elec"
capacity_kw = 80
availability = [{pv}]
[[assets]]
id = "chp"
type = "converter"
kind = "chp"
inputs = [{{ bus = "gas" }}]
outputs = [{{ bus = "elec", efficiency = 0.35 }}, {{ bus = "heat", efficiency = 0.5 }}]
capacity_kw = 60
min_power_kw = 20
ramp_up_kw_per_h = 30
  [assets.commitment]
  min_up_h = {min_up}
  min_down_h = 2
  start_cost = 3
  cold_start_cost = 6
  cold_start_after_h = 4
[[buses]]
id = "gas"
carrier = "gas"
[[assets]]
id = "gas_supply"
type = "grid"
bus = "gas"
import_price = 0.06
[[assets]]
id = "heat_pump"
type = "converter"
kind = "heat_pump"
inputs = [{{ bus = "elec" }}]
outputs = [{{ bus = "heat", efficiency = 3.2 }}]
capacity_kw = 40
[[assets]]
id = "boiler"
type = "converter"
kind = "gas_boiler"
inputs = [{{ bus = "gas" }}]
outputs = [{{ bus = "heat", efficiency = 0.9 }}]
capacity_kw = 80
[[assets]]
id = "battery"
type = "storage"
bus = "elec"
energy_capacity_kwh = 100
charge_power_kw = 40
discharge_power_kw = 40
charge_efficiency = 0.95
discharge_efficiency = 0.95
standing_loss_per_h = 0.001
soc_min = 0.1
initial_soc = {soc0}
final_soc = "cyclic"
no_simultaneous = true
[[assets]]
id = "heat_store"
type = "storage"
bus = "heat"
energy_capacity_kwh = 200
charge_power_kw = 60
discharge_power_kw = 60
standing_loss_per_h = 0.01
initial_soc = 0.5
final_soc = 0.3
"#,
        n = elec.len(),
        elec = list(elec),
        heat = list(heat),
        price = list(price),
        pv = list(pv),
        ev = list(&elec.iter().map(|e| e / 8.0).collect::<Vec<_>>()),
    )
}

/// Electricity and heat demand, import price and PV availability of
/// [`random_case`], over a number of steps drawn from `steps`.
pub fn random_series(steps: std::ops::Range<usize>) -> impl Strategy<Value = (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>)> {
    steps.prop_flat_map(|n| {
        (
            prop::collection::vec(20.0..160.0f64, n),
            prop::collection::vec(0.0..120.0f64, n),
            prop::collection::vec(0.05..0.40f64, n),
            prop::collection::vec(0.0..1.0f64, n),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    /// Energy balances, storage recursions and bounds, commitment rules and
    /// the cost hold for random cases (a DST day in Berlin included: the
    /// grid has 23 hourly steps on 2024-03-31).
    #[test]
    fn random_cases_hold_every_invariant(
        (elec, heat, price, pv) in random_series(6..30),
        soc0 in 0.1..1.0f64,
        min_up in 1u8..4,
    ) {
        let case = case_from_toml(&random_case(&elec, &heat, &price, &pv, soc0, min_up));
        let (solution, plan) = solve_checked(&case, &Options::default());
        prop_assert!(matches!(solution.status, Status::Optimal | Status::WithinGap));
        prop_assert!((solution.objective.unwrap_or(f64::NAN) - plan.cost).abs() <= 1e-6 * plan.cost.abs().max(1.0));
    }
}

#[test]
fn verify_catches_a_committed_unit_ramping_too_fast() {
    let case = case_from_toml(
        r#"
name = "ramps"
[time]
start = "2024-01-01T00:00"
timezone = "UTC"
step = "1h"
steps = 4
[[carriers]]
id = "diesel"
co2_kg_per_kwh = 0.267
[[buses]]
id = "elec"
carrier = "electricity"
[[assets]]
id = "load"
type = "load"
bus = "elec"
demand_kw = [20, 30, 40, 40]
[[assets]]
id = "unit"
type = "thermal"
bus = "elec"
capacity_kw = 60
min_power_kw = 10
ramp_up_kw_per_h = 10
ramp_down_kw_per_h = 10
efficiency = 0.35
fuel_carrier = "diesel"
fuel_price = 0.13
  [assets.commitment]
  start_cost = 1
  initial = { on = true, power_kw = 20 }
"#,
    );
    let (_, mut plan) = solve_checked(&case, &Options::default());
    let Some(unit) = plan.assets.iter_mut().find(|a| a.id.as_str() == "unit") else { panic!("unit") };
    let Detail::Unit { output_kw, .. } = &mut unit.detail else { panic!("a unit's detail") };
    assert_eq!(output_kw, &[20.0, 30.0, 40.0, 40.0]);
    // Up by 25 kW in an hour where 10 kW/h is allowed (then down by 5: allowed).
    output_kw[1] = 45.0;
    let errors = volta_dispatch::verify::check(&case, &plan, 1e-5);
    assert!(errors.iter().any(|e| e.starts_with("unit step 1: ramps up by 25.000")), "{errors:?}");
    assert!(!errors.iter().any(|e| e.starts_with("unit step 2: ramps down")), "{errors:?}");
}
