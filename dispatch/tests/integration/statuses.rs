//! Every way a solve ends: optimal, infeasible (explained), stopped by a
//! limit with its incumbent, and why a checked case is never unbounded.

use volta_dispatch::{Options, Status, ViolationKind, schedule};

#[test]
fn a_heat_shortage_is_explained_in_plant_terms() {
    // The evening heat peak (260 kW) exceeds the heat pump, the electric
    // boiler and a small store.
    let case = crate::support::example("infeasible/short_heat.toml");
    let solution = schedule(&case, &Options::default()).expect("runs");
    assert_eq!(solution.status, Status::Infeasible);
    assert!(solution.schedule.is_none());
    let why = solution.infeasibility.expect("explained");
    let short = why.violations.iter().find(|v| v.kind == ViolationKind::Short).expect("a shortage");
    assert_eq!(short.subject, "heat");
    // 200 kW of heat plant plus what the store can give; the evening peak of
    // 260 kW cannot be met.
    assert!(short.from.starts_with("2024-01-15 1"), "{}", short.message);
    assert!(short.largest > 20.0, "{}", short.message);
    let text = why.report();
    assert!(text.contains("heat_pump") && text.contains("boiler") && text.contains("at maximum"), "{text}");
    assert!(text.contains("thermal_store at minimum"), "{text}");
}

#[test]
fn a_time_limit_returns_the_incumbent_not_an_error() {
    let case = crate::support::example("islanded.toml");
    let options = Options { time_limit_s: Some(1.0), mip_gap: Some(0.0), ..Options::default() };
    let solution = schedule(&case, &options).expect("runs");
    assert_eq!(solution.status, Status::TimeLimit);
    // HiGHS finds a first schedule well within a second on this case.
    let plan = solution.schedule.expect("an incumbent");
    assert!(volta_dispatch::verify::check(&case, &plan, 1e-5).is_empty());
    let (objective, bound) = (solution.objective.expect("objective"), solution.best_bound.expect("bound"));
    assert!(bound < objective && solution.gap.is_some_and(|g| g > 0.0));
}

#[test]
fn bad_options_name_the_option() {
    let case = crate::support::example("campus.toml");
    for (options, name) in [
        (Options { time_limit_s: Some(-1.0), ..Options::default() }, "time_limit_s"),
        (Options { mip_gap: Some(1.5), ..Options::default() }, "mip_gap"),
        (Options { threads: Some(0), ..Options::default() }, "threads"),
    ] {
        let err = schedule(&case, &options).expect_err("refused");
        assert!(err.to_string().contains(name), "{err}");
    }
}

/// PV that may not be curtailed, with nowhere to send its surplus: the
/// explanation names the bus, the direction and the hour.
#[test]
fn an_uncurtailable_surplus_is_infeasible_and_says_where() {
    let case = crate::support::case_from_toml(
        r#"
[time]
start = "2024-06-01T12:00"
timezone = "UTC"
step = "1h"
steps = 2
[[buses]]
id = "elec"
carrier = "electricity"
[[assets]]
id = "site"
type = "load"
bus = "elec"
demand_kw = 40
[[assets]]
id = "pv"
type = "renewable"
bus = "elec"
capacity_kw = 100
availability = [0.3, 0.9]
curtailable = false
[[assets]]
id = "utility"
type = "grid"
bus = "elec"
import_price = 0.3
export_limit_kw = 20
"#,
    );
    let solution = schedule(&case, &Options::default()).expect("runs");
    assert_eq!(solution.status, Status::Infeasible);
    let why = solution.infeasibility.expect("explained");
    let surplus = why.violations.iter().find(|v| v.kind == ViolationKind::Surplus).expect("a surplus");
    assert_eq!((surplus.subject.as_str(), surplus.steps), ("elec", (1, 1)), "{}", surplus.message);
    // 90 kW of PV, 40 kW of load and 20 kW of export leave 30 kW.
    assert!((surplus.largest - 30.0).abs() < 1e-6, "{}", surplus.message);
}

/// A checked case cannot be unbounded: every way energy leaves a bus has a
/// finite limit (export limits are numbers, loads and stores are bounded,
/// converters feed other bounded buses), so even an unlimited import paid
/// to take (a negative price) stops where the sinks are full. Here 50 kW of
/// load and 30 kW of export take 80 kW at −0.10: cost 2 × −8 = −16.
/// `Status::Unbounded` remains for what HiGHS itself reports.
#[test]
fn a_negative_price_is_bounded_by_what_the_bus_can_absorb() {
    let case = crate::support::case_from_toml(
        r#"
[time]
start = "2024-06-01T12:00"
timezone = "UTC"
step = "1h"
steps = 2
[[buses]]
id = "elec"
carrier = "electricity"
[[assets]]
id = "site"
type = "load"
bus = "elec"
demand_kw = 50
[[assets]]
id = "utility"
type = "grid"
bus = "elec"
import_price = -0.1
export_limit_kw = 30
"#,
    );
    let (solution, plan) = crate::support::solve_checked(&case, &Options::default());
    assert_eq!(solution.status, Status::Optimal);
    assert!((plan.cost + 16.0).abs() < 1e-6, "cost {}", plan.cost);
    let Some(volta_dispatch::Detail::Grid { import_kw, export_kw }) = plan.asset("utility").map(|a| &a.detail) else {
        panic!("a grid")
    };
    let near = |a: &[f64], b: f64| a.iter().all(|v| (v - b).abs() < 1e-6);
    assert!(near(import_kw, 80.0) && near(export_kw, 30.0), "{import_kw:?} {export_kw:?}");
}
