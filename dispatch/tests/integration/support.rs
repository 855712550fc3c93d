//! Shared helpers.

use volta_dispatch::{Detail, Options, Schedule, Solution, schedule, verify};
use volta_engine::Case;
use volta_engine::case::{CaseReader, Format};

/// An example case from `datasets/cases`.
pub fn example(name: &str) -> Case {
    Case::from_path(volta_datasets::case(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A case from TOML text (series inline).
pub fn case_from_toml(text: &str) -> Case {
    match CaseReader::new().read_str(text, Format::Toml) {
        Ok(checked) => checked.case,
        Err(e) => panic!("test case does not validate: {e}"),
    }
}

/// Solves and checks every invariant of the schedule.
pub fn solve_checked(case: &Case, options: &Options) -> (Solution, Schedule) {
    let solution = schedule(case, options).expect("solves");
    let plan = solution.schedule.clone().unwrap_or_else(|| panic!("no schedule: {:?}", solution.status));
    let errors = verify::check(case, &plan, 1e-5);
    assert!(errors.is_empty(), "invariants fail:\n{}", errors.join("\n"));
    (solution, plan)
}

/// An hourly case: a 100 kW load on a grid whose price is `prices` (one per
/// step), and `units` gas units `genset0`, `genset1`, ... of 100 kW (at
/// least 50 kW when up) whose energy costs 0.2 per kWh, each with the extra
/// lines `unit` (ramp limits, say) and the commitment table's lines
/// `commitment`.
pub fn genset_case(prices: &[f64], units: usize, unit: &str, commitment: &str) -> String {
    let price_list: Vec<String> = prices.iter().map(f64::to_string).collect();
    let mut text = format!(
        r#"name = "gensets"
[time]
start = "2024-01-01T00:00"
timezone = "UTC"
step = "1h"
steps = {steps}
[[buses]]
id = "elec"
carrier = "electricity"
[[assets]]
id = "site"
type = "load"
bus = "elec"
demand_kw = 100
[[assets]]
id = "utility"
type = "grid"
bus = "elec"
import_price = [{prices}]
"#,
        steps = prices.len(),
        prices = price_list.join(", "),
    );
    for k in 0..units {
        text.push_str(&format!(
            r#"[[assets]]
id = "genset{k}"
type = "thermal"
bus = "elec"
capacity_kw = 100
min_power_kw = 50
efficiency = 0.5
fuel_carrier = "gas"
fuel_price = 0.1
{unit}
[assets.commitment]
{commitment}
"#
        ));
    }
    text
}

/// Why `plan`, a schedule of `case` stitched from windows or blocks, is
/// wrong, if it is: it fails the audit, or costs less than `whole`, the
/// case's optimum as one model (up to a millionth of it).
pub fn stitched_flaws(case: &Case, plan: &Schedule, whole: f64) -> Result<(), String> {
    let errors = verify::check(case, plan, 1e-6);
    if !errors.is_empty() {
        return Err(errors.join("\n"));
    }
    if plan.cost < whole - 1e-6 * whole.abs().max(1.0) {
        return Err(format!("{} < {whole}", plan.cost));
    }
    Ok(())
}

/// A committed unit's output and on/off series in `plan`.
pub fn unit<'a>(plan: &'a Schedule, id: &str) -> (&'a [f64], &'a [bool]) {
    let Detail::Unit { output_kw, on: Some(on), .. } =
        &plan.asset(id).unwrap_or_else(|| panic!("{id} is in the schedule")).detail
    else {
        panic!("{id} is not a committed unit")
    };
    (output_kw, on)
}
