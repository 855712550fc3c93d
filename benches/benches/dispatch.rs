//! Dispatch benchmarks: model building and solving, timed separately.
//!
//! - `day_ahead_96`: the campus case's first day at 15-minute steps (96 steps, CHP under commitment);
//! - `year_lp`: the campus week tiled over 52 weeks (8,736 hourly steps) without commitment: an LP;
//! - `year_uc`: the same year with the CHP under unit commitment (8,736 binaries), to a 0.1 % gap;
//! - `kazarlis10`: the 10-unit, 24-hour unit-commitment benchmark.
//!
//! Run with `cargo bench -p volta-benches --bench dispatch` (HiGHS then builds in release once).

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::Value;
use volta_dispatch::{Objective, Options, build_only, schedule};
use volta_engine::{Case, CaseReader};

/// The campus case as a JSON document with inline series.
fn campus_document() -> Value {
    let case = Case::from_path(volta_datasets::case("campus.toml")).expect("campus case");
    serde_json::from_str(&case.to_json().expect("serialises")).expect("json")
}

/// Applies `f` to every inline series of the document.
fn map_series(value: &mut Value, f: &dyn Fn(&[Value]) -> Vec<Value>) {
    match value {
        Value::Array(items) if items.len() == 168 && items.iter().all(Value::is_number) => *items = f(items),
        Value::Array(items) => items.iter_mut().for_each(|v| map_series(v, f)),
        Value::Object(map) => map.values_mut().for_each(|v| map_series(v, f)),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

fn read(doc: Value) -> Case {
    CaseReader::new().read_value(doc).expect("bench case validates").case
}

fn day_ahead() -> Case {
    let mut doc = campus_document();
    map_series(&mut doc, &|v| v[..24].iter().flat_map(|x| std::iter::repeat_n(x.clone(), 4)).collect());
    doc["time"] = serde_json::json!({ "start": "2014-11-03T00:00", "timezone": "Australia/Melbourne", "step": "15min", "steps": 96 });
    read(doc)
}

fn year(commitment: bool) -> Case {
    let mut doc = campus_document();
    map_series(&mut doc, &|v| v.iter().cycle().take(168 * 52).cloned().collect());
    doc["time"] = serde_json::json!({ "start": "2014-11-03T00:00", "timezone": "Australia/Melbourne", "step": "1h", "steps": 168 * 52 });
    if !commitment {
        for asset in doc["assets"].as_array_mut().expect("assets") {
            if let Some(map) = asset.as_object_mut() {
                map.remove("commitment");
            }
        }
    }
    read(doc)
}

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
