//! The Pareto front and rolling-horizon simulation.

use volta_dispatch::{Options, RollingOptions, Status, pareto, rolling_horizon, verify};

use crate::support::{example, solve_checked};

#[test]
fn pareto_front_runs_from_cheapest_to_cleanest() {
    let case = example("campus.toml");
    let front = pareto(&case, 5, &Options::default()).expect("front");
    assert!(front.is_complete());
    assert!(front.points.len() >= 3, "{} points", front.points.len());
    assert_eq!(front.points.len() + front.dropped, 5);
    for pair in front.points.windows(2) {
        assert!(pair[1].cost > pair[0].cost, "cost must rise along the front");
        assert!(pair[1].co2_kg < pair[0].co2_kg, "CO2 must fall along the front");
    }
    // The first anchor is the cost optimum.
    let (_, cheapest) = solve_checked(&case, &Options::default());
    assert!((front.points[0].cost - cheapest.cost).abs() < 1e-6 * cheapest.cost);
    // Inner points respect their caps.
    for p in &front.points {
        if let Some(cap) = p.co2_cap_kg {
            assert!(p.co2_kg <= cap * (1.0 + 1e-6), "{} > cap {cap}", p.co2_kg);
        }
    }
}

#[test]
fn pareto_takes_two_to_max_points_and_refuses_others_before_any_work() {
    for n in [0, 1, volta_dispatch::MAX_PARETO_POINTS + 1, usize::MAX] {
        let err = pareto(&example("campus.toml"), n, &Options::default()).expect_err("refused");
        assert!(err.to_string().contains("2 to 1000 points"), "{err}");
    }
}

#[test]
fn rolling_horizon_stitches_a_valid_week() {
    let case = example("campus.toml");
    let rolling = RollingOptions::new(48, Some(24), Options::default());
    let mut seen = 0;
    let mut committed = Vec::new();
    let result = rolling_horizon(&case, &rolling, &mut |report, part, total| {
        seen += 1;
        assert_eq!(total, 7);
        let part = part.expect("every window of the week has a schedule");
        assert_eq!(part.grid, case.grid().window(report.start, 24), "a window commits its first 24 steps");
        committed.push(part.clone());
    })
    .expect("runs");
    assert_eq!(seen, 7);
    assert_eq!(result.windows.len(), 7);
    assert!(matches!(result.status, Status::Optimal | Status::WithinGap));
    let plan = result.schedule.expect("stitched schedule");
    assert_eq!(plan.grid.len(), 168);
    // The stitched week holds every invariant, minimum up/down times and
    // storage continuity across window boundaries included.
    let errors = verify::check(&case, &plan, 1e-5);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    // The parts given as the windows were solved are the stitched schedule.
    for (k, part) in committed.iter().enumerate() {
        for (whole, piece) in plan.assets.iter().zip(&part.assets) {
            for (f, p) in whole.flows.iter().zip(&piece.flows) {
                assert_eq!(&f.kw[k * 24..(k + 1) * 24], p.kw.as_slice(), "{} in window {k}", whole.id);
            }
        }
    }
    // Perfect foresight over the week is a lower bound on the rolling cost.
    let (_, full) = solve_checked(&case, &Options::default());
    assert!(plan.cost >= full.cost - 1e-6 * full.cost, "rolling {} < full {}", plan.cost, full.cost);
    assert!(plan.cost <= full.cost * 1.10, "rolling {} vs full {}", plan.cost, full.cost);
}

#[test]
fn a_cancelled_rolling_run_keeps_what_it_committed() {
    let case = example("campus.toml");
    let options = Options::default();
    let cancel = options.cancel.clone();
    let rolling = RollingOptions::new(48, Some(24), options);
    let mut windows = 0;
    let result = rolling_horizon(&case, &rolling, &mut |_, _, _| {
        windows += 1;
        if windows == 3 {
            cancel.cancel();
        }
    })
    .expect("a cancelled run is not an error");
    assert_eq!(result.status, Status::Interrupted);
    assert_eq!(result.windows.len(), 3);
    let plan = result.schedule.expect("the committed steps");
    assert_eq!(plan.grid, case.grid().window(0, 72));
    let errors = verify::check(&case, &plan, 1e-5);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    // The same three windows as a run to the end, and the cost of 72 steps
    // of them, not of the week.
    let whole = rolling_horizon(&case, &RollingOptions { options: Options::default(), ..rolling }, &mut |_, _, _| {})
        .expect("runs")
        .schedule
        .expect("stitched");
    for (a, b) in plan.assets.iter().zip(&whole.assets) {
        for (fa, fb) in a.flows.iter().zip(&b.flows) {
            assert_eq!(fa.kw.as_slice(), &fb.kw[..72], "{}", a.id);
        }
    }
    assert!(plan.cost < whole.cost, "72 steps cost {} of the week's {}", plan.cost, whole.cost);
}

#[test]
fn rolling_horizon_refuses_bad_windows() {
    let case = example("campus.toml");
    let rolling = RollingOptions::new(24, Some(48), Options::default());
    let err = rolling_horizon(&case, &rolling, &mut |_, _, _| {}).expect_err("refused");
    assert!(err.to_string().contains("commit_steps"), "{err}");
}

/// Starting each window from the previous one's commitment changes how the
/// windows are solved, not what they find: on Kazarlis 20 in 12-hour
/// windows (240 integer columns, the fleets regrouped at each window) every
/// window after the first is started, the units apart too, and the warm and
/// cold runs agree window by window and stitched. The campus in 48-hour
/// windows keeping 24 is started completely: the steps the previous window
/// did not see repeat its commitment of a day before.
#[test]
fn a_warm_started_rolling_horizon_finds_what_a_cold_one_does() {
    let options = Options { mip_gap: Some(1e-9), prices: false, ..Options::default() };
    let case = example("campus.toml");
    let warm = RollingOptions::new(48, Some(24), options.clone());
    let cold = RollingOptions { warm_start: false, ..warm.clone() };
    let run = |rolling: &RollingOptions| rolling_horizon(&case, rolling, &mut |_, _, _| {}).expect("campus");
    let (warm, cold) = (run(&warm), run(&cold));
    // The CHP's 48 on/off columns of every window after the first.
    assert!(warm.windows[1..].iter().filter(|w| w.len == 48).all(|w| w.warm_start == 48), "{:?}", warm.windows);
    let (w, c) = (warm.schedule.expect("warm campus").cost, cold.schedule.expect("cold campus").cost);
    assert!((w - c).abs() <= 1e-7 * c.abs(), "campus: warm {w} vs cold {c}");
    for fleets in [true, false] {
        let case = example("benchmarks/kazarlis20.toml");
        let name = if fleets { "fleets" } else { "units apart" };
        let warm = RollingOptions::new(12, Some(6), Options { fleets, ..options.clone() });
        let cold = RollingOptions { warm_start: false, ..warm.clone() };
        let run = |rolling: &RollingOptions| rolling_horizon(&case, rolling, &mut |_, _, _| {}).expect("runs");
        let (warm, cold) = (run(&warm), run(&cold));
        assert_eq!(warm.windows[0].warm_start, 0, "{name}: the first window has nothing to start from");
        assert!(warm.windows[1..].iter().all(|w| w.warm_start > 0), "{name}: {:?}", warm.windows);
        assert!(warm.windows.len() >= 3, "{name}: {:?}", warm.windows);
        // A cold window starts from nothing unless its own relaxation proved its rounded start.
        assert!(cold.windows.iter().all(|w| w.warm_start == 0 || w.proven_by_relaxation), "{name}");
        for (k, (w, c)) in warm.windows.iter().zip(&cold.windows).enumerate() {
            let (w, c) = (w.objective.expect("warm objective"), c.objective.expect("cold objective"));
            assert!((w - c).abs() <= 1e-7 * c.abs().max(1.0), "{name} window {k}: warm {w} vs cold {c}");
        }
        let (w, c) = (warm.schedule.expect("warm plan"), cold.schedule.expect("cold plan"));
        assert!((w.cost - c.cost).abs() <= 1e-7 * c.cost.abs(), "{name}: warm {} vs cold {}", w.cost, c.cost);
        let errors = verify::check(&case, &w, 1e-5);
        assert!(errors.is_empty(), "{name}: {}", errors.join("\n"));
    }
}

/// The whole week's LP relaxation bounds the stitched week from below, and
/// the week solved as one MILP sits between the two.
#[test]
fn a_rolling_horizon_reports_a_lower_bound_below_the_best_week() {
    let case = example("campus.toml");
    let options = Options { mip_gap: Some(1e-6), prices: false, ..Options::default() };
    let rolling = RollingOptions { lower_bound: true, ..RollingOptions::new(48, Some(24), options.clone()) };
    let result = rolling_horizon(&case, &rolling, &mut |_, _, _| {}).expect("runs");
    let stitched = result.schedule.expect("stitched").cost;
    let bound = result.lower_bound.expect("a bound");
    let (_, best) = solve_checked(&case, &options);
    assert!(bound <= best.cost * (1.0 + 1e-9), "bound {bound} above the optimum {}", best.cost);
    assert!(best.cost <= stitched * (1.0 + 1e-6), "optimum {} above the stitched {stitched}", best.cost);
    // A relaxation, not a trivial bound: within a few percent on the campus.
    assert!(bound >= 0.9 * stitched, "bound {bound} vs stitched {stitched}");
    eprintln!("campus week: relaxation {bound:.2} <= optimum {:.2} <= stitched {stitched:.2}", best.cost);

    let co2 = RollingOptions { options: Options { objective: volta_dispatch::Objective::Co2, ..options }, ..rolling };
    let err = rolling_horizon(&case, &co2, &mut |_, _, _| {}).expect_err("the cost objective only");
    assert!(err.to_string().contains("cost objective without a CO2 price only"), "{err}");
}

/// A window that looks further ahead than the window before saw is
/// started from that window's commitment where it has one and from its own
/// relaxation's rounding on the rest, and, should the relaxation not prove
/// that start, from the rounding alone: so warm windows are proven by the
/// relaxation as often as cold ones that check their rounding, and the
/// runs find the same schedule (before, a warm window of 120 hours
/// keeping 48 handed HiGHS a start covering a day of its two new ones).
#[test]
fn a_warm_window_longer_than_its_hint_is_proven_as_a_cold_one_is() {
    let case = example("campus.toml");
    let warm = RollingOptions::new(120, Some(48), Options { prices: false, ..Options::default() });
    let cold = RollingOptions { warm_start: false, ..warm.clone() };
    let run = |rolling: &RollingOptions| rolling_horizon(&case, rolling, &mut |_, _, _| {}).expect("campus");
    let (warm, cold) = (run(&warm), run(&cold));
    let proven = |r: &volta_dispatch::RollingResult| r.windows.iter().filter(|w| w.proven_by_relaxation).count();
    assert!(proven(&warm) >= proven(&cold) && proven(&warm) >= 2, "warm {} cold {}", proven(&warm), proven(&cold));
    let (w, c) = (warm.schedule.expect("warm").cost, cold.schedule.expect("cold").cost);
    assert!((w - c).abs() <= 1e-4 * c.abs(), "warm {w} vs cold {c}");
}
