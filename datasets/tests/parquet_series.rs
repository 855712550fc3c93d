//! Cases can read series from Parquet files, aligned by timestamp.

use volta_engine::asset::AssetKind;
use volta_engine::{CaseReader, Error, Format, IssueCode};

fn pv_case(start: &str, steps: usize) -> String {
    let pv = volta_datasets::raw("system_50_ac_power_2_full_DST.parquet");
    format!(
        r#"
name = "pv from parquet"
[time]
start = "{start}"
timezone = "America/Denver"
step = "15min"
steps = {steps}
[[buses]]
id = "ac"
carrier = "electricity"
[[assets]]
id = "pv"
type = "renewable"
bus = "ac"
capacity_kw = 3.4
availability = {{ file = "{}", column = "ac_power_2", time_column = "measured_on", scale = 0.000294 }}
[[assets]]
id = "grid"
type = "grid"
bus = "ac"
import_price = 0.1
export_limit_kw = 10
"#,
        pv.display()
    )
}

#[test]
fn parquet_column_is_aligned_by_instant_across_time_zones() {
    // A summer day in Golden: the file is in UTC-07:00, the case in Denver
    // time (MDT, also UTC-06:00 in summer): rows are matched by instant.
    let case = CaseReader::new().read_str(&pv_case("2012-06-10T00:00", 96), Format::Toml).expect("valid").case;
    let AssetKind::Renewable(pv) = &case.asset("pv").expect("pv").kind else { panic!("renewable") };
    let a = &pv.availability;
    assert!(a.max() > 0.5 && a.max() <= 1.0, "a sunny day peaks high: {}", a.max());
    // Night at both ends of the local day.
    assert!(a.at(0) < 0.01 && a.at(95) < 0.01);
    // Solar noon in Golden is near 13:00 MDT: the peak sits between 11:00 and 15:00.
    let peak = (0..96).max_by(|&i, &j| a.at(i).total_cmp(&a.at(j))).expect("steps");
    assert!((44..60).contains(&peak), "peak at step {peak}");
}

#[test]
fn gaps_inside_the_grid_are_reported_with_their_step() {
    // The series has missing values (about 3 %); a grid over most of the
    // record must hit some, and the report says where.
    let err = CaseReader::new().read_str(&pv_case("2011-04-16T00:00", 96 * 300), Format::Toml).expect_err("gaps");
    let Error::Invalid(report) = err else { panic!("a validation report") };
    let issue = report.issues.first().expect("an issue");
    assert_eq!(issue.path, "assets.pv.availability");
    assert_eq!(issue.code, IssueCode::NotFinite);
    assert!(issue.message.starts_with("step ") && issue.message.contains("NaN"), "{}", issue.message);
}
