//! Reading and checking cases: the cost every front door (CLI, Python,
//! gRPC) pays before any solve.
//!
//! - `campus_file`: the campus case from disk, TOML plus its profile CSV
//!   (168 hourly steps, 13 assets, eight series read by timestamp).
//! - `campus_json`: the same case from in-memory JSON with inline series
//!   (what the gRPC and Python layers hand over).
//! - `inline_year/N`: a synthetic case with N assets, each with an
//!   8,760-step inline series, to see how checking scales.

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use volta_engine::{Case, CaseReader, Format};

fn campus(c: &mut Criterion) {
    let path = volta_datasets::case("campus.toml");
    let mut group = c.benchmark_group("validate");
    group.bench_function("campus_file", |b| b.iter(|| Case::from_path(black_box(&path)).expect("valid")));
    let json = Case::from_path(&path).expect("valid").to_json().expect("json");
    group.bench_function("campus_json", |b| {
        b.iter(|| CaseReader::new().read_str(black_box(&json), Format::Json).expect("valid"));
    });
    for n in [1usize, 10, 100] {
        let text = inline_year(n);
        group.bench_with_input(BenchmarkId::new("inline_year", n), &text, |b, text| {
            b.iter(|| CaseReader::new().read_str(black_box(text), Format::Json).expect("valid"));
        });
    }
    group.finish();
}

/// A JSON case with `n` loads of one year of hourly inline demand.
fn inline_year(n: usize) -> String {
    let series: Vec<String> = (0..8760).map(|t| format!("{:.1}", 50.0 + (t % 24) as f64)).collect();
    let series = series.join(",");
    let mut assets = String::from(r#"{"id":"grid","type":"grid","bus":"b","import_price":0.2}"#);
    for i in 0..n {
        write!(assets, r#",{{"id":"load{i}","type":"load","bus":"b","demand_kw":[{series}]}}"#).expect("write");
    }
    format!(
        r#"{{"name":"year","time":{{"start":"2023-01-01T00:00","step":"1h","steps":8760}},
            "buses":[{{"id":"b","carrier":"electricity"}}],"assets":[{assets}]}}"#
    )
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(4));
    targets = campus
}
criterion_main!(benches);
