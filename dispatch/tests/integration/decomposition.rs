//! A long horizon in blocks solved in parallel, with consistent seams.

use std::sync::Mutex;

use proptest::prelude::*;
use volta_dispatch::{Decomposition, Objective, Options, Stage, Status, decompose, schedule, verify};

use crate::invariants::{random_case, random_series};
use crate::support::{case_from_toml, example, solve_checked};

/// The campus week in three blocks: every invariant holds across the seams,
/// the relaxation bounds the week from below, and the stitched week costs
/// at least the best week and not much more.
#[test]
fn a_week_in_three_blocks_is_feasible_and_near_the_best_week() {
    let case = example("campus.toml");
    let options = Options { mip_gap: Some(1e-6), prices: false, ..Options::default() };
    let stages = Mutex::new(Vec::new());
    let d = Decomposition::new(3, options.clone());
    let result = decompose(&case, &d, &|stage| stages.lock().expect("stages").push(stage)).expect("runs");
    let mut stages = stages.into_inner().expect("stages");
    assert_eq!(stages.remove(0), Stage::Relaxation);
    stages[..3].sort_by_key(|s| match s {
        Stage::Block { index } => *index,
        other @ (Stage::Relaxation | Stage::Seam { .. }) => panic!("a block's stage expected, not {other:?}"),
    });
    let blocks = (0..3).map(|index| Stage::Block { index });
    let seams = (1..3).map(|index| Stage::Seam { index });
    assert_eq!(stages, blocks.chain(seams).collect::<Vec<_>>());
    assert!(matches!(result.status, Status::Optimal | Status::WithinGap), "{:?}", result.status);
    assert_eq!(result.seam_steps, 24);
    assert_eq!(result.blocks.iter().map(|b| b.start).collect::<Vec<_>>(), vec![0, 56, 112]);
    // Each block looks a seam past its end; the last ends with the case.
    assert_eq!(result.blocks.iter().map(|b| b.len).collect::<Vec<_>>(), vec![80, 80, 56]);
    assert_eq!(result.seams.iter().map(|s| (s.at, s.window.start)).collect::<Vec<_>>(), vec![(56, 32), (112, 88)]);
    let plan = result.schedule.as_ref().expect("stitched");
    assert_eq!(plan.grid, *case.grid());
    let errors = verify::check(&case, plan, 1e-5);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    let (best, best_plan) = solve_checked(&case, &options);
    let bound = result.lower_bound.expect("a bound");
    let floor = best.best_bound.expect("best bound");
    assert!(bound <= best_plan.cost * (1.0 + 1e-9), "relaxation {bound} above the optimum {}", best_plan.cost);
    assert!(plan.cost >= floor * (1.0 - 1e-9), "stitched {} below the optimum's bound {floor}", plan.cost);
    assert!(plan.cost <= best_plan.cost * 1.015, "stitched {} vs best {}", plan.cost, best_plan.cost);
    let gap = result.gap_to_lower_bound().expect("a gap");
    assert!((gap - (plan.cost - bound) / plan.cost).abs() < 1e-12 && gap >= 0.0, "{gap}");
    eprintln!(
        "campus week: relaxation {bound:.2} <= optimum {:.2} <= three blocks {:.2} ({:.3} % above)",
        best_plan.cost,
        plan.cost,
        100.0 * (plan.cost / best_plan.cost - 1.0)
    );
}

/// One block is the case solved whole, from the relaxation on.
#[test]
fn one_block_is_the_whole_case() {
    let case = example("campus.toml");
    let options = Options { mip_gap: Some(1e-7), prices: false, ..Options::default() };
    let result = decompose(&case, &Decomposition::new(1, options.clone()), &|_| {}).expect("runs");
    assert!(result.seams.is_empty());
    let one = result.schedule.expect("a schedule").cost;
    let whole = schedule(&case, &options).expect("solves").schedule.expect("a schedule").cost;
    assert!((one - whole).abs() <= 1e-6 * whole, "one block {one} vs whole {whole}");
}

#[test]
fn a_decomposition_refuses_what_it_cannot_do_before_any_solve() {
    let case = example("campus.toml");
    let refused = |d: Decomposition, wanted: &str| {
        let err = decompose(&case, &d, &|_| panic!("no work before the refusal")).expect_err("refused");
        assert!(err.to_string().contains(wanted), "{err}");
    };
    refused(Decomposition::new(0, Options::default()), "blocks must be in 1..=1024");
    refused(Decomposition::new(4, Options::default()), "use at most 3");
    refused(Decomposition { seam_steps: Some(2), ..Decomposition::new(2, Options::default()) }, "longest minimum");
    refused(Decomposition::new(2, Options { objective: Objective::Co2, ..Options::default() }), "not CO2 alone");
    let day: Vec<f64> = (0..48).map(|t| 50.0 + f64::from(t)).collect();
    let text = random_case(&day, &day, &vec![0.2; 48], &vec![0.5; 48], 0.5, 2);
    let periodic = case_from_toml(&text.replace("final_soc = \"cyclic\"", "final_soc = \"periodic\""));
    let err = decompose(&periodic, &Decomposition::new(2, Options::default()), &|_| panic!("no work")).expect_err("");
    assert!(err.to_string().contains("final_soc: \"periodic\""), "{err}");
}

#[test]
fn a_cancelled_decomposition_is_interrupted() {
    let case = example("campus.toml");
    let options = Options::default();
    options.cancel.cancel();
    let result = decompose(&case, &Decomposition::new(3, options), &|_| {}).expect("not an error");
    assert_eq!(result.status, Status::Interrupted);
    assert!(result.schedule.is_none());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]

    /// Random cases (commitment with minimum times and cold starts, a ramp,
    /// a shiftable load, a demand charge, cyclic and minimum storage ends,
    /// the spring DST day) in two to four blocks: the stitched schedule
    /// holds every invariant and costs no less than the case's optimum, which
    /// costs no less than the relaxation.
    #[test]
    fn random_cases_in_blocks_hold_every_invariant(
        (elec, heat, price, pv) in random_series(48..96),
        soc0 in 0.1..1.0f64,
        min_up in 1u8..4,
        blocks in 2usize..=4,
    ) {
        let case = case_from_toml(&random_case(&elec, &heat, &price, &pv, soc0, min_up));
        let options = Options { prices: false, ..Options::default() };
        let d = Decomposition { seam_steps: Some(6), ..Decomposition::new(blocks, options.clone()) };
        let result = decompose(&case, &d, &|_| {}).expect("runs");
        prop_assert!(matches!(result.status, Status::Optimal | Status::WithinGap), "{:?}", result.status);
        let plan = result.schedule.as_ref().expect("stitched");
        prop_assert_eq!(plan.grid.len(), elec.len());
        let errors = verify::check(&case, plan, 1e-5);
        prop_assert!(errors.is_empty(), "{}", errors.join("\n"));
        let best = schedule(&case, &options).expect("solves");
        let (floor, optimum) = (best.best_bound.expect("a bound"), best.objective.expect("an optimum"));
        let bound = result.lower_bound.expect("a relaxation");
        prop_assert!(bound <= optimum + 1e-6 * optimum.abs().max(1.0), "relaxation {} above {}", bound, optimum);
        prop_assert!(plan.cost >= floor - 1e-6 * floor.abs().max(1.0), "stitched {} below {}", plan.cost, floor);
    }
}
