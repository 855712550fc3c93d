//! Dispatch benchmarks: model building and solving, timed separately.
//!
//! - `day_ahead_96`: the campus case's first day at 15-minute steps (96 steps, CHP under commitment);
//! - `year_lp`: the campus week tiled over 52 weeks (8,736 hourly steps) without commitment: an LP;
//! - `year_uc`: the same year with the CHP under unit commitment (8,736 binaries), to a 0.1 % gap;
//! - `kazarlis10`: the 10-unit, 24-hour unit-commitment benchmark.
//!
//! Run with `cargo bench -p volta-benches --bench dispatch` (HiGHS then builds in release once).

use criterion::{Criterion, criterion_group, criterion_main};
use volta_benches::{campus_year as year, day_ahead};
use volta_dispatch::{Objective, Options, build_only, schedule};
use volta_engine::Case;

fn bench(c: &mut Criterion) {
    let kazarlis = Case::from_path(volta_datasets::case("benchmarks/kazarlis10.toml")).expect("kazarlis10");
    let cases = [
        ("day_ahead_96", day_ahead(), Options::default()),
        ("kazarlis10", kazarlis, Options { mip_gap: Some(1e-6), ..Options::default() }),
        ("year_lp", year(false), Options::default()),
        ("year_uc", year(true), Options { mip_gap: Some(1e-3), ..Options::default() }),
    ];
    let mut group = c.benchmark_group("dispatch");
    group.sample_size(10);
    for (name, case, options) in &cases {
        group.bench_function(format!("{name}/build"), |b| b.iter(|| build_only(case, Objective::Cost)));
        group.bench_function(format!("{name}/solve"), |b| {
            b.iter(|| {
                let solution = schedule(case, options).expect("solves");
                assert!(solution.status.is_feasible(), "{name}: {:?}", solution.status);
                solution.objective
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
