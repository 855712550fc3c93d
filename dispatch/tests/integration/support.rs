//! Shared helpers.

use volta_dispatch::{Options, Schedule, Solution, schedule, verify};
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
