//! One asset class at a time, each on a case small enough to solve by hand:
//! the optimum, the schedule that reaches it, and the audit of every
//! invariant (`solve_checked`).

use volta_dispatch::{
    Detail, DispatchError, Options, RollingOptions, Scenario, Schedule, Status, StochasticOptions, rolling_horizon,
    two_stage,
};

use crate::support::{case_from_toml, solve_checked};

/// A two-step hourly case with electricity, heat and gas buses and `assets`.
fn two_steps(assets: &str) -> String {
    format!(
        r#"name = "by hand"
[time]
start = "2024-01-01T00:00"
timezone = "UTC"
step = "1h"
steps = 2
[[buses]]
id = "elec"
carrier = "electricity"
[[buses]]
id = "heat"
carrier = "heat"
[[buses]]
id = "gas"
carrier = "gas"
{assets}"#
    )
}

fn solved(assets: &str) -> Schedule {
    let case = case_from_toml(&two_steps(assets));
    let (solution, plan) = solve_checked(&case, &Options::default());
    assert_eq!(solution.status, Status::Optimal);
    plan
}

fn detail<'a>(plan: &'a Schedule, id: &str) -> &'a Detail {
    &plan.asset(id).unwrap_or_else(|| panic!("{id} is in the schedule")).detail
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * (1.0 + b.abs())
}

fn all_close(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| close(*x, *y))
}

/// Heat is idle in these cases unless a test uses it.
const IDLE_HEAT_AND_GAS: &str = r#"
[[assets]]
id = "heat_main"
type = "grid"
bus = "heat"
import_price = 0.2
[[assets]]
id = "gas_supply"
type = "grid"
bus = "gas"
import_price = 0.04
"#;

/// A curtailable load: 100 kW wanted, 60 kW importable at 0.30; the rest
/// (40 kW, within the 50 % that may be shed) is shed at 1.00 per kWh.
/// Cost: 2 × (60 × 0.30 + 40 × 1.00) = 116.
#[test]
fn a_curtailable_load_sheds_what_the_grid_cannot_bring() {
    let plan = solved(&format!(
        r#"{IDLE_HEAT_AND_GAS}
[[assets]]
id = "plant"
type = "load"
bus = "elec"
demand_kw = 100
curtailable = {{ value_of_lost_load = 1.0, max_share = 0.5 }}
[[assets]]
id = "utility"
type = "grid"
bus = "elec"
import_price = 0.3
import_limit_kw = 60
"#
    ));
    assert!(close(plan.cost, 116.0), "cost {}", plan.cost);
    let Detail::Load { shed_kw, served_kw, .. } = detail(&plan, "plant") else { panic!("a load") };
    assert!(all_close(shed_kw, &[40.0, 40.0]) && all_close(served_kw, &[60.0, 60.0]), "{shed_kw:?}");
}

/// A shiftable load: 100 kWh due in a two-hour window, drawn at up to
/// 100 kW; the second hour is cheaper (0.10 against 0.40), so all of it
/// moves there. Cost: 100 × 0.10 = 10.
#[test]
fn a_shiftable_load_moves_to_the_cheap_hour() {
    let plan = solved(&format!(
        r#"{IDLE_HEAT_AND_GAS}
[[assets]]
id = "washer"
type = "load"
bus = "elec"
demand_kw = [100, 0]
shiftable = {{ window_h = 2, max_power_kw = 100 }}
[[assets]]
id = "utility"
type = "grid"
bus = "elec"
import_price = [0.4, 0.1]
"#
    ));
    assert!(close(plan.cost, 10.0), "cost {}", plan.cost);
    let Detail::Load { served_kw, .. } = detail(&plan, "washer") else { panic!("a load") };
    assert!(all_close(served_kw, &[0.0, 100.0]), "{served_kw:?}");
}

/// PV of 100 kW with availability 1.0 then 0.5 for an 80 kW load, no
/// export: it is curtailed to 80 kW in the first hour, and the grid
/// supplies the 30 kW it lacks in the second. Cost: 30 × 0.30 = 9.
#[test]
fn a_renewable_is_curtailed_when_nobody_takes_its_energy() {
    let plan = solved(&format!(
        r#"{IDLE_HEAT_AND_GAS}
[[assets]]
id = "site"
type = "load"
bus = "elec"
demand_kw = 80
[[assets]]
id = "pv"
type = "renewable"
bus = "elec"
capacity_kw = 100
availability = [1.0, 0.5]
[[assets]]
id = "utility"
type = "grid"
bus = "elec"
import_price = 0.3
"#
    ));
    assert!(close(plan.cost, 9.0), "cost {}", plan.cost);
    let Detail::Renewable { output_kw, available_kw } = detail(&plan, "pv") else { panic!("a renewable") };
    assert!(all_close(available_kw, &[100.0, 50.0]) && all_close(output_kw, &[80.0, 50.0]), "{output_kw:?}");
}

/// A 100 kW thermal unit at 40 % efficiency on bought gas at 0.04: its
/// electricity costs 0.10 against the grid's 0.30, so it runs flat out for a
/// 150 kW load and burns 250 kW of gas. Cost: 2 × (250 × 0.04 + 50 × 0.30) = 50.
#[test]
fn a_thermal_unit_runs_while_it_is_cheaper_than_the_grid() {
    let plan = solved(&format!(
        r#"{IDLE_HEAT_AND_GAS}
[[assets]]
id = "site"
type = "load"
bus = "elec"
demand_kw = 150
[[assets]]
id = "genset"
type = "thermal"
bus = "elec"
capacity_kw = 100
efficiency = 0.4
fuel_carrier = "gas"
fuel_price = 0.04
[[assets]]
id = "utility"
type = "grid"
bus = "elec"
import_price = 0.3
"#
    ));
    assert!(close(plan.cost, 50.0), "cost {}", plan.cost);
    let Detail::Unit { output_kw, fuel_kw, .. } = detail(&plan, "genset") else { panic!("a unit") };
    assert!(all_close(output_kw, &[100.0, 100.0]), "{output_kw:?}");
    assert!(all_close(fuel_kw.as_deref().unwrap_or_default(), &[250.0, 250.0]), "{fuel_kw:?}");
}

/// A demand charge of 0.60 per kW of peak import on a cheap grid (0.10)
/// beside a dear one (0.50), for 100 kW then 50 kW. With the cheap grid's
/// peak at x, each kW of x below 50 kW saves 0.40 in both hours (0.80) for
/// 0.60 of charge, and each kW above 50 kW saves 0.40 in the first hour
/// only: the peak stays at 50 kW. Cost: 0.1 × 100 + 0.5 × 50 + 0.6 × 50 = 65
/// (a peak of 0 or of 100 kW would cost 75).
#[test]
fn a_demand_charge_flattens_the_peak() {
    let plan = solved(&format!(
        r#"{IDLE_HEAT_AND_GAS}
[[assets]]
id = "site"
type = "load"
bus = "elec"
demand_kw = [100, 50]
[[assets]]
id = "cheap"
type = "grid"
bus = "elec"
import_price = 0.1
peak_demand_charge = 0.6
[[assets]]
id = "dear"
type = "grid"
bus = "elec"
import_price = 0.5
"#
    ));
    assert!(close(plan.cost, 65.0), "cost {}", plan.cost);
    let Detail::Grid { import_kw, .. } = detail(&plan, "cheap") else { panic!("a grid") };
    assert!(all_close(import_kw, &[50.0, 50.0]), "{import_kw:?}");
}

/// A heat pump (COP 3) against a gas boiler (90 %): heat costs
/// 0.30 / 3 = 0.10 by the pump and 0.12 / 0.9 = 0.133 by the boiler, so
/// the pump serves all 300 kW of heat with 100 kW of electricity.
/// Cost: 2 × 100 × 0.30 = 60.
#[test]
fn a_converter_takes_the_cheaper_path_between_carriers() {
    let plan = solved(
        r#"
[[assets]]
id = "space_heat"
type = "load"
bus = "heat"
demand_kw = 300
[[assets]]
id = "utility"
type = "grid"
bus = "elec"
import_price = 0.3
[[assets]]
id = "gas_supply"
type = "grid"
bus = "gas"
import_price = 0.12
[[assets]]
id = "heat_pump"
type = "converter"
kind = "heat_pump"
inputs = [{ bus = "elec" }]
outputs = [{ bus = "heat", efficiency = 3.0 }]
capacity_kw = 1000
[[assets]]
id = "boiler"
type = "converter"
kind = "gas_boiler"
inputs = [{ bus = "gas" }]
outputs = [{ bus = "heat", efficiency = 0.9 }]
capacity_kw = 1000
"#,
    );
    assert!(close(plan.cost, 60.0), "cost {}", plan.cost);
    let Detail::Unit { output_kw, .. } = detail(&plan, "boiler") else { panic!("a unit") };
    assert!(all_close(output_kw, &[0.0, 0.0]), "boiler {output_kw:?}");
}

/// A battery (90 % each way, 50 kW, empty at the start) buys at 0.10 and
/// saves at 0.50: 50 kWh charged give 45 kWh stored and 40.5 kWh delivered,
/// a gain of 0.81 × 0.50 − 0.10 > 0 per kWh, so it charges flat out.
/// Cost: 0.10 × 100 + 0.50 × (50 − 40.5) = 14.75.
#[test]
fn a_battery_shifts_energy_to_the_dear_hour_net_of_its_losses() {
    let plan = solved(&format!(
        r#"{IDLE_HEAT_AND_GAS}
[[assets]]
id = "site"
type = "load"
bus = "elec"
demand_kw = 50
[[assets]]
id = "utility"
type = "grid"
bus = "elec"
import_price = [0.1, 0.5]
[[assets]]
id = "battery"
type = "storage"
bus = "elec"
energy_capacity_kwh = 100
charge_power_kw = 50
discharge_power_kw = 50
charge_efficiency = 0.9
discharge_efficiency = 0.9
initial_soc = 0.0
"#
    ));
    assert!(close(plan.cost, 14.75), "cost {}", plan.cost);
    let Detail::Storage { charge_kw, discharge_kw, energy_kwh, .. } = detail(&plan, "battery") else {
        panic!("a storage")
    };
    assert!(all_close(charge_kw, &[50.0, 0.0]) && all_close(discharge_kw, &[0.0, 40.5]), "{charge_kw:?}");
    assert!(all_close(energy_kwh, &[45.0, 0.0]), "{energy_kwh:?}");
}

/// The battery of the test above, with `extra` fields, on prices
/// `[0.1, 0.5]` (or as given) for a 50 kW load.
fn battery_case(prices: &str, battery: &str) -> String {
    format!(
        r#"{IDLE_HEAT_AND_GAS}
[[assets]]
id = "site"
type = "load"
bus = "elec"
demand_kw = 50
[[assets]]
id = "utility"
type = "grid"
bus = "elec"
import_price = {prices}
[[assets]]
id = "battery"
type = "storage"
bus = "elec"
charge_power_kw = 50
discharge_power_kw = 50
{battery}
"#
    )
}

/// Storage conventions other tools use, each changing a hand solution.
///
/// - A full store that must end where it started ("cyclic" at a full
///   initial level) cannot buy low and sell high: 30. A periodic one
///   chooses to start low enough, and arbitrages as from empty: 14.75.
/// - 50 kWh losing half per hour: with the first step's loss on the
///   initial level, 25 kWh are left to serve the first hour (cost
///   0.5 × 25 + 0.5 × 50 = 37.5); without it, all 50 (cost 25).
/// - 200 kWh, 80 % out, a 50 kW limit: at the bus it serves both hours
///   (cost 0); at the store it delivers 40 kW (cost 0.5 × 20 = 10).
#[test]
fn storage_conventions_change_the_hand_solution() {
    let arbitrage = "energy_capacity_kwh = 100\ncharge_efficiency = 0.9\ndischarge_efficiency = 0.9\ninitial_soc = 1.0";
    let cyclic = solved(&battery_case("[0.1, 0.5]", &format!("{arbitrage}\nfinal_soc = \"cyclic\"")));
    assert!(close(cyclic.cost, 30.0), "cyclic from full: {}", cyclic.cost);
    let periodic = solved(&battery_case("[0.1, 0.5]", &format!("{arbitrage}\nfinal_soc = \"periodic\"")));
    assert!(close(periodic.cost, 14.75), "periodic: {}", periodic.cost);
    let Detail::Storage { energy_kwh, initial_kwh, .. } = detail(&periodic, "battery") else { panic!("a storage") };
    assert!(close(energy_kwh[1], *initial_kwh) && *initial_kwh <= 55.0 + 1e-6, "{initial_kwh} → {energy_kwh:?}");

    let leaky = "energy_capacity_kwh = 100\nstanding_loss_per_h = 0.5\ninitial_soc = 0.5";
    let lost = solved(&battery_case("0.5", leaky));
    assert!(close(lost.cost, 37.5), "loss on the initial level: {}", lost.cost);
    let kept = solved(&battery_case("0.5", &format!("{leaky}\ninitial_loss = false")));
    assert!(close(kept.cost, 25.0), "no loss on the initial level: {}", kept.cost);

    let big = "energy_capacity_kwh = 200\ndischarge_efficiency = 0.8\ninitial_soc = 1.0";
    let at_bus = solved(&battery_case("0.5", big));
    assert!(close(at_bus.cost, 0.0), "limit at the bus: {}", at_bus.cost);
    let at_store = solved(&battery_case("0.5", &format!("{big}\npower_side = \"store\"")));
    assert!(close(at_store.cost, 10.0), "limit at the store: {}", at_store.cost);
    let Detail::Storage { discharge_kw, .. } = detail(&at_store, "battery") else { panic!("a storage") };
    assert!(all_close(discharge_kw, &[40.0, 40.0]), "{discharge_kw:?}");
}

/// A periodic store needs the whole horizon in one model: a rolling
/// horizon and a plan over scenarios refuse it, naming the store.
#[test]
fn a_periodic_store_is_refused_where_the_horizon_is_split() {
    let text = battery_case("[0.1, 0.5]", "energy_capacity_kwh = 100\nfinal_soc = \"periodic\"");
    let case = case_from_toml(&two_steps(&text));
    let rolling = RollingOptions::new(1, Some(1), Options::default());
    let Err(DispatchError::Option(message)) = rolling_horizon(&case, &rolling, &mut |_, _, _| {}) else {
        panic!("a rolling horizon over a periodic store should be refused")
    };
    assert!(message.starts_with("assets.battery.final_soc"), "{message}");
    let scenarios = [Scenario { name: "only".to_owned(), probability: 1.0, series: Vec::new() }];
    let Err(DispatchError::Option(message)) = two_stage(&case, &scenarios, &StochasticOptions::default()) else {
        panic!("a plan over scenarios with a periodic store should be refused")
    };
    assert!(message.starts_with("assets.battery.final_soc"), "{message}");
}
