//! Infeasible and unbounded cases are statuses with explanations.

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
