//! The example cases in datasets/cases are valid and round-trip.

use volta_engine::asset::AssetKind;
use volta_engine::{Case, CaseReader, Format};

use crate::support::{BASE, datasets, parse};

fn example(name: &str) -> Case {
    let path = datasets().join("cases").join(name);
    let checked = CaseReader::new().strict(true).read_path(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(checked.warnings.is_empty());
    checked.case
}

#[test]
fn campus_is_a_week_of_multi_energy() {
    let case = example("campus.toml");
    assert_eq!(case.grid().len(), 168);
    let carriers: Vec<&str> = case.used_carriers().iter().map(|c| c.id.as_str()).collect();
    assert_eq!(carriers, ["electricity", "heat", "cooling", "gas"]);
    let chp = case.asset("chp").expect("chp");
    let AssetKind::Converter(chp) = &chp.kind else { panic!("chp is a converter") };
    assert!(chp.commitment.is_some());
    // The heat pump's COP is a series read from the profile file.
    let AssetKind::Converter(hp) = &case.asset("heat_pump").expect("heat pump").kind else { panic!() };
    assert!(hp.outputs[0].efficiency.min() >= 2.0 && hp.outputs[0].efficiency.max() <= 5.0);
    let AssetKind::Load(load) = &case.asset("campus_electric").expect("load").kind else { panic!() };
    // First hour of the file: 814.08 kW.
    assert!((load.demand_kw.at(0) - 814.08).abs() < 1e-9);
}

#[test]
fn islanded_has_no_grid_and_sheds_load() {
    let case = example("islanded.toml");
    assert_eq!(case.grid().len(), 144);
    assert_eq!(case.asset_ids_of("grid").count(), 0);
    assert_eq!(case.asset_ids_of("thermal").count(), 3);
    let AssetKind::Load(load) = &case.asset("community").expect("load").kind else { panic!() };
    assert!(load.curtailable.is_some());
    assert_eq!(case.reserves().len(), 1);
}

#[test]
fn toml_to_json_round_trip_gives_an_equal_case() {
    for name in ["campus.toml", "islanded.toml"] {
        let case = example(name);
        let json = case.to_json().expect("serialises");
        let again = CaseReader::new().read_str(&json, Format::Json).expect("re-reads").case;
        assert_eq!(case, again, "{name}");
        // And once more through TOML text.
        let value: serde_json::Value = serde_json::from_str(&json).expect("json");
        let toml_text = toml::to_string(&value).expect("toml");
        let third = parse(&toml_text).expect("re-reads as TOML");
        assert_eq!(case, third, "{name} via TOML");
    }
}

#[test]
fn inline_case_round_trips_through_a_json_value() {
    let case = parse(BASE).expect("valid");
    let value = serde_json::to_value(case.to_document()).expect("value");
    let again = CaseReader::new().read_value(value).expect("valid").case;
    assert_eq!(case, again);
}

#[test]
fn json_and_toml_are_one_schema() {
    let json = r#"{
        "name": "j",
        "time": {"start": "2024-01-01T00:00", "step": "30min", "steps": 2},
        "buses": [{"id": "b", "carrier": "electricity"}],
        "assets": [
            {"id": "l", "type": "load", "bus": "b", "demand_kw": [1, 2]},
            {"id": "g", "type": "grid", "bus": "b", "import_price": 0.2}
        ]
    }"#;
    let case = Case::from_str(json, Format::Json).expect("valid");
    assert_eq!(case.grid().time_zone_name(), "UTC");
    assert!((case.grid().step_hours() - 0.5).abs() < 1e-12);
}

#[test]
fn every_reference_of_a_checked_case_is_resolved_once() {
    for name in ["campus.toml", "islanded.toml", "benchmarks/kazarlis10.toml"] {
        let case = example(name);
        for (i, bus) in case.buses().iter().enumerate() {
            // The resolved positions agree with a plain scan.
            assert_eq!(case.position_of_bus(&bus.id), i, "{name}: {}", bus.id);
            assert_eq!(case.bus_index(&bus.id), Some(i));
            let scanned = case.carriers().iter().find(|c| c.id == bus.carrier).expect("declared");
            assert_eq!(case.carrier_of_bus(&bus.id), scanned, "{name}: {}", bus.id);
            assert_eq!(case.carrier_of(&bus.carrier), scanned);
        }
    }
}
