//! One test per validation rule: each breaks one thing in a valid case and
//! expects the problem at its path with its code.

use volta_engine::asset::{FuelUse, Thermal};
use volta_engine::{AssetKind, Error, IssueCode as C};

use crate::support::{BASE, assert_issue, issues, parse, with_asset};

#[test]
fn base_case_is_valid() {
    parse(BASE).expect("the base fixture is valid");
}

// ----- structure ---------------------------------------------------------------

#[test]
fn unknown_top_level_section() {
    assert_issue(&format!("{BASE}\n[solver]\ngap = 0.1\n"), "solver", C::UnknownField);
}

#[test]
fn unknown_field_in_asset() {
    let text = BASE.replace("capacity_kw = 50", "capacity_kw = 50\ncapacity_mw = 1");
    assert_issue(&text, "assets.boiler.capacity_mw", C::UnknownField);
}

#[test]
fn every_unknown_field_of_an_item_is_reported_at_once_with_the_likely_name() {
    let text =
        BASE.replace("capacity_kw = 50", "capacity_kwh = 50\ncolour = \"red\"\nmin_power = 5\nmarginal_cots = 0.01");
    let found = issues(&text);
    let unknown: Vec<(&str, &str)> =
        found.iter().filter(|i| i.code == C::UnknownField).map(|i| (i.path.as_str(), i.message.as_str())).collect();
    let message = |field: &str| {
        let path = format!("assets.boiler.{field}");
        unknown.iter().find(|(p, _)| *p == path).map_or_else(|| panic!("{path}: {found:?}"), |(_, m)| *m)
    };
    assert_eq!(unknown.len(), 4, "{found:?}");
    assert!(message("capacity_kwh").starts_with("unknown field; did you mean `capacity_kw`?"));
    assert!(message("min_power").starts_with("unknown field; did you mean `min_power_kw`?"));
    assert!(message("marginal_cots").starts_with("unknown field; did you mean `marginal_cost`?"));
    assert!(!message("colour").contains("did you mean"), "nothing is near `colour`");
    // With the unknown fields out of the way, the missing one is found too.
    assert!(found.iter().any(|i| i.path == "assets.boiler.capacity_kw" && i.code == C::MissingField), "{found:?}");
}

#[test]
fn missing_required_field() {
    let text = BASE.replace("import_price = 0.3", "");
    assert_issue(&text, "assets.utility.import_price", C::MissingField);
}

#[test]
fn every_missing_field_of_an_item_is_reported_at_once() {
    // A storage with only an id, a type and a misspelt field: each required
    // field it lacks is named, not the first one per round trip.
    let found = issues(&with_asset("id = \"battery\"\ntype = \"storage\"\nenergy_capacity = 100"));
    let missing: Vec<&str> = found.iter().filter(|i| i.code == C::MissingField).map(|i| i.path.as_str()).collect();
    for field in ["bus", "energy_capacity_kwh", "charge_power_kw", "discharge_power_kw"] {
        assert!(missing.contains(&format!("assets.battery.{field}").as_str()), "{field}: {found:?}");
    }
    assert_eq!(missing.len(), missing.iter().collect::<std::collections::HashSet<_>>().len(), "{found:?}");
    assert!(
        found
            .iter()
            .any(|i| i.path == "assets.battery.energy_capacity"
                && i.message.contains("did you mean `energy_capacity_kwh`?")),
        "{found:?}"
    );
}

#[test]
fn wrong_type() {
    let text = BASE.replace("capacity_kw = 50", "capacity_kw = \"fifty\"");
    assert_issue(&text, "assets.boiler.capacity_kw", C::WrongType);
}

#[test]
fn unknown_asset_type() {
    assert_issue(&with_asset("id = \"x\"\ntype = \"windmill\"\nbus = \"elec\""), "assets.x.type", C::UnknownAssetType);
}

#[test]
fn unknown_enum_value() {
    let text = BASE.replace("kind = \"gas_boiler\"", "kind = \"gas_turbine\"");
    assert_issue(&text, "assets.boiler.kind", C::OutOfRange);
}

#[test]
fn missing_time_table() {
    let text = BASE.replace("[time]", "[unused]");
    let found = issues(&text);
    assert!(found.iter().any(|i| i.path == "time" && i.code == C::MissingField));
}

#[test]
fn missing_assets() {
    let cut = BASE.find("[[assets]]").expect("has assets");
    assert_issue(&BASE[..cut], "assets", C::MissingField);
}

// ----- ids ------------------------------------------------------------------------

#[test]
fn duplicate_asset_id() {
    assert_issue(
        &with_asset("id = \"office\"\ntype = \"load\"\nbus = \"elec\"\ndemand_kw = 1"),
        "assets[5].id",
        C::DuplicateId,
    );
}

#[test]
fn duplicate_bus_id() {
    let text = BASE.replace("id = \"heat\"\ncarrier = \"heat\"", "id = \"elec\"\ncarrier = \"heat\"");
    assert_issue(&text, "buses[1].id", C::DuplicateId);
}

#[test]
fn invalid_id() {
    assert_issue(
        &with_asset("id = \"my asset\"\ntype = \"load\"\nbus = \"elec\"\ndemand_kw = 1"),
        "assets[5].id",
        C::InvalidId,
    );
}

// ----- references -------------------------------------------------------------------

#[test]
fn unknown_bus() {
    let text = BASE.replace("bus = \"elec\"\nimport_price", "bus = \"electric\"\nimport_price");
    assert_issue(&text, "assets.utility.bus", C::UnknownBus);
}

#[test]
fn unknown_carrier() {
    let text = BASE.replace("carrier = \"gas\"", "carrier = \"biogas\"");
    assert_issue(&text, "buses.gas.carrier", C::UnknownCarrier);
}

#[test]
fn broken_bus_is_not_reported_again_as_unknown() {
    // The heat bus itself is broken; assets on it must not add "unknown bus".
    let text = BASE.replace("carrier = \"heat\"", "carrier = 7");
    let found = issues(&text);
    assert!(found.iter().any(|i| i.path == "buses.heat.carrier" && i.code == C::WrongType));
    assert!(!found.iter().any(|i| i.code == C::UnknownBus), "{found:?}");
}

#[test]
fn user_carrier_can_be_declared() {
    let text = BASE.replace("carrier = \"gas\"", "carrier = \"biogas\"")
        + "\n[[carriers]]\nid = \"biogas\"\nco2_kg_per_kwh = 0.0\n";
    let err = parse(&text).err();
    // The gas boiler now burns biogas: legal, at most a carrier warning.
    assert!(err.is_none(), "{err:?}");
}

#[test]
fn negative_carrier_intensity() {
    let text = format!("{BASE}\n[[carriers]]\nid = \"gas\"\nco2_kg_per_kwh = -0.2\n");
    assert_issue(&text, "carriers.gas.co2_kg_per_kwh", C::Negative);
}

// ----- numbers and series ---------------------------------------------------------------

#[test]
fn negative_capacity() {
    let text = BASE.replace("capacity_kw = 50", "capacity_kw = -50");
    assert_issue(&text, "assets.boiler.capacity_kw", C::Negative);
}

#[test]
fn efficiency_above_one() {
    let text = BASE.replace("efficiency = 0.9", "efficiency = 1.1");
    assert_issue(&text, "assets.boiler.outputs[0].efficiency", C::Efficiency);
}

#[test]
fn efficiency_zero() {
    let text = BASE.replace("efficiency = 0.9", "efficiency = 0.0");
    assert_issue(&text, "assets.boiler.outputs[0].efficiency", C::Efficiency);
}

#[test]
fn cop_above_one_is_fine_for_heat_pumps() {
    parse(&with_asset(
        "id = \"hp\"\ntype = \"converter\"\nkind = \"heat_pump\"\ninputs = [{ bus = \"elec\" }]\noutputs = [{ bus = \"heat\", efficiency = [3.1, 3.0, 2.9, 3.2] }]\ncapacity_kw = 10",
    ))
    .expect("a COP of 3 is physical");
}

#[test]
fn chp_outputs_exceeding_input() {
    let chp = "id = \"chp\"\ntype = \"converter\"\nkind = \"chp\"\ninputs = [{ bus = \"gas\" }]\noutputs = [{ bus = \"elec\", efficiency = 0.6 }, { bus = \"heat\", efficiency = 0.6 }]\ncapacity_kw = 10";
    assert_issue(&with_asset(chp), "assets.chp.outputs", C::Efficiency);
}

#[test]
fn first_input_ratio_must_be_one() {
    let text = BASE.replace("inputs = [{ bus = \"gas\" }]", "inputs = [{ bus = \"gas\", ratio = 2.0 }]");
    assert_issue(&text, "assets.boiler.inputs[0].ratio", C::OutOfRange);
}

#[test]
fn series_length_must_match_grid() {
    let text = BASE.replace("[10.0, 12.0, 11.0, 9.0]", "[10.0, 12.0, 11.0]");
    assert_issue(&text, "assets.office.demand_kw", C::SeriesLength);
}

#[test]
fn nan_and_infinity_are_refused() {
    let text = BASE.replace("[10.0, 12.0, 11.0, 9.0]", "[10.0, nan, 11.0, 9.0]");
    assert_issue(&text, "assets.office.demand_kw[1]", C::NotFinite);
    let text = BASE.replace("capacity_kw = 50", "capacity_kw = inf");
    assert_issue(&text, "assets.boiler.capacity_kw", C::NotFinite);
}

#[test]
fn negative_demand_step() {
    let text = BASE.replace("[10.0, 12.0, 11.0, 9.0]", "[10.0, -12.0, 11.0, 9.0]");
    let found = issues(&text);
    let issue = found.iter().find(|i| i.path == "assets.office.demand_kw").expect("reported");
    assert_eq!(issue.code, C::Negative);
    assert!(issue.message.contains("step 1"), "{}", issue.message);
}

#[test]
fn availability_must_be_per_unit() {
    let pv = "id = \"pv\"\ntype = \"renewable\"\nbus = \"elec\"\ncapacity_kw = 5\navailability = [0.0, 0.5, 1.2, 0.1]";
    assert_issue(&with_asset(pv), "assets.pv.availability", C::OutOfRange);
}

#[test]
fn missing_series_file() {
    let text = BASE.replace("demand_kw = 20.0", "demand_kw = { file = \"nowhere.csv\", column = \"heat\" }");
    assert_issue(&text, "assets.space_heat.demand_kw.file", C::File);
}

#[test]
fn inline_only_refuses_series_files_without_looking_at_them() {
    // An existing CSV, a missing one and a path out of the tree: one answer,
    // and nothing read (not even the header row).
    let existing = crate::support::datasets().join("cases/islanded_profiles.csv");
    let mut answers = Vec::new();
    for file in [existing.display().to_string(), "nowhere.csv".into(), "../../../../etc/passwd".into()] {
        let text = BASE.replace(
            "demand_kw = 20.0",
            &format!("demand_kw = {{ file = {file:?}, column = \"load_kw\", time_column = \"timestamp\" }}"),
        );
        let err = volta_engine::CaseReader::new().inline_only().read_str(&text, volta_engine::Format::Toml);
        let Err(Error::Invalid(report)) = err else { panic!("expected a refusal for {file}") };
        let issue = report.issues.iter().find(|i| i.code == C::File).expect("a file issue");
        assert_eq!(issue.path, "assets.space_heat.demand_kw.file");
        assert!(!issue.message.contains("timestamp,"), "{}", issue.message);
        answers.push(issue.message.clone());
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    // The same case reads from a local file with the ordinary reader.
    let local = BASE.replace(
        "demand_kw = 20.0",
        &format!(
            "demand_kw = {{ file = {:?}, column = \"load_kw\", time_column = \"timestamp\" }}",
            existing.display()
        ),
    );
    let local = local.replace("start = \"2024-01-15T00:00\"", "start = \"2014-07-14T00:00\"");
    let local = local.replace("Europe/Berlin", "Australia/Melbourne").replace("step = \"1h\"", "step = \"30min\"");
    parse(&local).expect("a local reader reads the file");
}

#[test]
fn numbers_beyond_the_largest_magnitude_are_out_of_range() {
    for (from, to, path) in [
        ("capacity_kw = 50", "capacity_kw = 1e308", "assets.boiler.capacity_kw"),
        ("import_price = 0.3", "import_price = 1e300", "assets.utility.import_price"),
        ("import_price = 0.3", "import_price = -1e12", "assets.utility.import_price"),
        ("demand_kw = [10.0, 12.0, 11.0, 9.0]", "demand_kw = [10.0, 1e15, 11.0, 9.0]", "assets.office.demand_kw"),
    ] {
        assert_issue(&BASE.replace(from, to), path, C::OutOfRange);
    }
    // An efficiency is a divisor: a tiny one makes a coefficient no solver
    // takes (found by the gRPC fuzz campaign: 1.43e-252 reached HiGHS).
    let tiny = BASE.replace("efficiency = 0.9", "efficiency = 1.4293857944624224e-252");
    assert_issue(&tiny, "assets.boiler.outputs[0].efficiency", C::Efficiency);
    let unit = "id = \"gen\"\ntype = \"thermal\"\nbus = \"elec\"\ncapacity_kw = 100\nmin_power_kw = 50\n\
                fuel_carrier = \"gas\"\nfuel_curve = [[50, 100], [50.000001, 200], [100, 300]]";
    assert_issue(&with_asset(unit), "assets.gen.fuel_curve[1]", C::OutOfRange);
    let at_limit = BASE.replace("capacity_kw = 50", &format!("capacity_kw = {:e}", volta_engine::MAX_MAGNITUDE));
    parse(&at_limit).expect("the largest magnitude itself is allowed");
}

// ----- time grid ------------------------------------------------------------------------

#[test]
fn unknown_time_zone() {
    let text = BASE.replace("Europe/Berlin", "Europe/Atlantis");
    assert_issue(&text, "time.timezone", C::TimeGrid);
}

#[test]
fn bad_step() {
    let text = BASE.replace("step = \"1h\"", "step = \"7min\"");
    assert_issue(&text, "time.step", C::TimeGrid);
}

#[test]
fn two_horizon_lengths() {
    let text = BASE.replace("steps = 4", "steps = 4\ndays = 1");
    assert_issue(&text, "time", C::Conflict);
}

#[test]
fn start_in_dst_gap() {
    let text = BASE.replace("2024-01-15T00:00", "2024-03-31T02:30");
    assert_issue(&text, "time.start", C::TimeGrid);
}

// ----- asset rules --------------------------------------------------------------------------

#[test]
fn min_power_above_capacity() {
    let text = BASE.replace("capacity_kw = 50", "capacity_kw = 50\nmin_power_kw = 60\ncommitment = {}");
    assert_issue(&text, "assets.boiler.min_power_kw", C::Inconsistent);
}

#[test]
fn thermal_needs_one_fuel() {
    let unit = "id = \"gen\"\ntype = \"thermal\"\nbus = \"elec\"\ncapacity_kw = 10\nefficiency = 0.3";
    assert_issue(&with_asset(unit), "assets.gen", C::MissingField);
    let both = format!("{unit}\nfuel_bus = \"gas\"\nfuel_carrier = \"gas\"\nfuel_price = 0.1");
    assert_issue(&with_asset(&both), "assets.gen.fuel_bus", C::Conflict);
}

#[test]
fn fuel_curve_must_be_convex() {
    let unit = "id = \"gen\"\ntype = \"thermal\"\nbus = \"elec\"\ncapacity_kw = 100\nmin_power_kw = 20\nfuel_bus = \"gas\"\nfuel_curve = [[20, 80], [60, 200], [100, 260]]\ncommitment = {}";
    assert_issue(&with_asset(unit), "assets.gen.fuel_curve[2]", C::NonConvex);
}

#[test]
fn fuel_curve_must_span_operating_range() {
    let unit = "id = \"gen\"\ntype = \"thermal\"\nbus = \"elec\"\ncapacity_kw = 100\nfuel_bus = \"gas\"\nfuel_curve = [[0, 0], [80, 250]]";
    assert_issue(&with_asset(unit), "assets.gen.fuel_curve", C::Inconsistent);
}

#[test]
fn fuel_quadratic_is_convex_with_a_bounded_number_of_pieces() {
    let unit = |q: &str| {
        format!(
            "id = \"gen\"\ntype = \"thermal\"\nbus = \"elec\"\ncapacity_kw = 100\nfuel_bus = \"gas\"\nfuel_quadratic = {q}"
        )
    };
    assert_issue(&with_asset(&unit("{ a = 10, b = 2, c = -0.01 }")), "assets.gen.fuel_quadratic.c", C::Negative);
    assert_issue(
        &with_asset(&unit("{ a = 10, b = 2, c = 0.01, segments = 0 }")),
        "assets.gen.fuel_quadratic.segments",
        C::OutOfRange,
    );
    assert_issue(
        &with_asset(&unit("{ a = 10, b = 2, c = 0.01, segments = 101 }")),
        "assets.gen.fuel_quadratic.segments",
        C::OutOfRange,
    );
    let both = format!("{}\nefficiency = 0.4", unit("{ a = 10, b = 2, c = 0.01 }"));
    assert_issue(&with_asset(&both), "assets.gen.fuel_quadratic", C::Conflict);
    let outer = unit("{ a = 10, b = 2, c = 0.01, segments = 4, approximation = \"outer\" }");
    let case = parse(&with_asset(&outer)).expect("an outer approximation in 4 pieces is valid");
    let Some(AssetKind::Thermal(Thermal { fuel_use: FuelUse::Quadratic(q), .. })) = case.asset("gen").map(|a| &a.kind)
    else {
        panic!("gen has no quadratic fuel curve")
    };
    // Five tangents (at 0, 25, 50, 75, 100 kW), the curve never below them.
    assert_eq!(q.pieces(0.0, 100.0).len(), 5);
    for p in [0.0, 12.5, 40.0, 99.0] {
        let (exact, approximated) = (q.fuel(p), q.approximated(p, 0.0, 100.0));
        assert!(approximated <= exact + 1e-12 && exact - approximated <= q.max_error(0.0, 100.0) + 1e-12);
    }
}

#[test]
fn commitment_rules() {
    let unit = "id = \"gen\"\ntype = \"thermal\"\nbus = \"elec\"\ncapacity_kw = 100\nmin_power_kw = 20\nfuel_bus = \"gas\"\nefficiency = 0.35\n[assets.commitment]\nmin_up_h = -1\ncold_start_cost = 50\ninitial = { on = true, power_kw = 150 }";
    let found = issues(&with_asset(unit));
    for (path, code) in [
        ("assets.gen.commitment.min_up_h", C::Negative),
        ("assets.gen.commitment.cold_start_after_h", C::MissingField),
        ("assets.gen.commitment.initial.power_kw", C::Inconsistent),
    ] {
        assert!(found.iter().any(|i| i.path == path && i.code == code), "{path}: {found:?}");
    }
}

#[test]
fn trajectories_stay_below_the_minimum_power() {
    let unit = |trajectories: &str| {
        format!(
            "id = \"gen\"\ntype = \"thermal\"\nbus = \"elec\"\ncapacity_kw = 100\nmin_power_kw = 40\nfuel_bus = \"gas\"\nefficiency = 0.35\n[assets.commitment]\n{trajectories}"
        )
    };
    let found = issues(&with_asset(&unit("startup_trajectory_kw = [10, 50]\nshutdown_trajectory_kw = [-1, 20]")));
    for (path, code) in [
        ("assets.gen.commitment.startup_trajectory_kw[1]", C::Inconsistent),
        ("assets.gen.commitment.shutdown_trajectory_kw[0]", C::Negative),
    ] {
        assert!(found.iter().any(|i| i.path == path && i.code == code), "{path}: {found:?}");
    }
    let long = format!("startup_trajectory_kw = [{}]", vec!["1"; 97].join(", "));
    assert_issue(&with_asset(&unit(&long)), "assets.gen.commitment.startup_trajectory_kw", C::OutOfRange);
    let case = parse(&with_asset(&unit("startup_trajectory_kw = [10, 40]\nshutdown_trajectory_kw = [20]")))
        .expect("trajectories at or below the minimum power are valid");
    let Some(AssetKind::Thermal(Thermal { commitment: Some(uc), .. })) = case.asset("gen").map(|a| &a.kind) else {
        panic!("gen is a committed thermal unit")
    };
    assert!(uc.has_trajectories());
    // Three steps of trajectories on an hourly grid keep the unit off three hours.
    assert_eq!(uc.min_off_h(1.0), 3.0);
    assert_eq!(uc.min_off_h(0.25), 0.75);
}

#[test]
fn storage_bounds() {
    let store = "id = \"bat\"\ntype = \"storage\"\nbus = \"elec\"\nenergy_capacity_kwh = 10\ncharge_power_kw = 5\ndischarge_power_kw = 5\nsoc_min = 0.8\nsoc_max = 0.2";
    assert_issue(&with_asset(store), "assets.bat.soc_min", C::Inconsistent);
    let store = "id = \"bat\"\ntype = \"storage\"\nbus = \"elec\"\nenergy_capacity_kwh = 10\ncharge_power_kw = 5\ndischarge_power_kw = 5\nsoc_max = 0.9\ninitial_soc = 0.95";
    assert_issue(&with_asset(store), "assets.bat.initial_soc", C::Inconsistent);
    let store = "id = \"bat\"\ntype = \"storage\"\nbus = \"elec\"\nenergy_capacity_kwh = 10\ncharge_power_kw = 5\ndischarge_power_kw = 5\nstanding_loss_per_h = 1.0";
    assert_issue(&with_asset(store), "assets.bat.standing_loss_per_h", C::OutOfRange);
    let store = "id = \"bat\"\ntype = \"storage\"\nbus = \"elec\"\nenergy_capacity_kwh = 10\ncharge_power_kw = 5\ndischarge_power_kw = 5\nfinal_soc = \"full\"";
    assert_issue(&with_asset(store), "assets.bat.final_soc", C::WrongType);
}

#[test]
fn curtailable_and_shiftable_exclude_each_other() {
    let load = "id = \"flex\"\ntype = \"load\"\nbus = \"elec\"\ndemand_kw = 1\ncurtailable = { value_of_lost_load = 2 }\nshiftable = { window_h = 2, max_power_kw = 5 }";
    assert_issue(&with_asset(load), "assets.flex", C::Conflict);
}

#[test]
fn shiftable_window_must_fit_energy() {
    let load =
        "id = \"flex\"\ntype = \"load\"\nbus = \"elec\"\ndemand_kw = 4\nshiftable = { window_h = 2, max_power_kw = 3 }";
    assert_issue(&with_asset(load), "assets.flex.shiftable.max_power_kw", C::Inconsistent);
    let load = "id = \"flex\"\ntype = \"load\"\nbus = \"elec\"\ndemand_kw = 4\nshiftable = { window_h = 1.5, max_power_kw = 8 }";
    assert_issue(&with_asset(load), "assets.flex.shiftable.window_h", C::OutOfRange);
}

#[test]
fn reserve_rules() {
    let text = format!("{BASE}\n[[reserves]]\nbus = \"steam\"\nload_share = 1.5\n");
    let found = issues(&text);
    assert!(found.iter().any(|i| i.path == "reserves[0].bus" && i.code == C::UnknownBus));
    assert!(found.iter().any(|i| i.path == "reserves[0].load_share" && i.code == C::OutOfRange));
}

// ----- whole-case rules --------------------------------------------------------------------

#[test]
fn bus_with_demand_and_no_supply() {
    let text = BASE.replace("capacity_kw = 50", "capacity_kw = 50\n")
        + "\n[[buses]]\nid = \"cool\"\ncarrier = \"cooling\"\n[[assets]]\nid = \"server_room\"\ntype = \"load\"\nbus = \"cool\"\ndemand_kw = 5\n";
    assert_issue(&text, "buses.cool", C::Unbalanceable);
}

#[test]
fn value_of_lost_load_turns_unbalanceable_into_a_warning() {
    let text = format!(
        "{BASE}\n[settings]\nvalue_of_lost_load = 10\n[[buses]]\nid = \"cool\"\ncarrier = \"cooling\"\n[[assets]]\nid = \"server_room\"\ntype = \"load\"\nbus = \"cool\"\ndemand_kw = 5\n"
    );
    let checked =
        volta_engine::CaseReader::new().read_str(&text, volta_engine::Format::Toml).expect("valid with a VOLL");
    assert!(checked.warnings.iter().any(|w| w.path == "buses.cool" && w.code == C::Unbalanceable));
}

#[test]
fn strict_mode_turns_warnings_into_errors() {
    let text = format!("{BASE}\n[[buses]]\nid = \"spare\"\ncarrier = \"electricity\"\n");
    parse(&text).expect("an unused bus is only a warning");
    let strict = volta_engine::CaseReader::new().strict(true).read_str(&text, volta_engine::Format::Toml);
    assert!(
        matches!(strict, Err(Error::Invalid(r)) if r.errors().any(|i| i.path == "buses.spare" && i.code == C::Unused))
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = BASE
        .replace("capacity_kw = 50", "capacity_kw = -50")
        .replace("import_price = 0.3", "import_price = 0.3\nimport_limit_kw = -1")
        .replace("step = \"1h\"", "step = \"1h\"\nzone = 1");
    let found = issues(&text);
    assert!(found.len() >= 3, "{found:?}");
}

#[test]
fn malformed_files_are_errors_not_panics() {
    use volta_engine::{Case, Format};
    for (text, format) in [
        ("", Format::Toml),
        ("[time", Format::Toml),
        ("{\"a\": ", Format::Json),
        ("[1, 2]", Format::Json),
        ("name = 3", Format::Toml),
        ("assets = 3\nbuses = \"x\"\n[time]\nstart = 1\nstep = []\n", Format::Toml),
    ] {
        let result = std::panic::catch_unwind(|| Case::from_str(text, format));
        assert!(matches!(result, Ok(Err(_))), "{text:?}");
    }
}

#[test]
fn start_cost_tiers_increase() {
    let unit = |lines: &str| {
        format!(
            "id = \"gen\"\ntype = \"thermal\"\nbus = \"elec\"\ncapacity_kw = 100\nfuel_bus = \"gas\"\nefficiency = 0.35\n[assets.commitment]\nstart_cost = 10\n{lines}"
        )
    };
    let path = "assets.gen.commitment.start_costs_by_hours_off";
    assert_issue(
        &with_asset(&unit("start_costs_by_hours_off = [[4, 20], [2, 30]]")),
        &format!("{path}[1][0]"),
        C::Inconsistent,
    );
    assert_issue(
        &with_asset(&unit("start_costs_by_hours_off = [[4, 20], [8, 15]]")),
        &format!("{path}[1][1]"),
        C::Inconsistent,
    );
    assert_issue(&with_asset(&unit("start_costs_by_hours_off = [[4, 5]]")), &format!("{path}[0][1]"), C::Inconsistent);
    assert_issue(&with_asset(&unit("start_costs_by_hours_off = [[0, 20]]")), &format!("{path}[0][0]"), C::OutOfRange);
    let both = "start_costs_by_hours_off = [[4, 20]]\ncold_start_cost = 30\ncold_start_after_h = 8";
    assert_issue(&with_asset(&unit(both)), path, C::Conflict);
    let case = parse(&with_asset(&unit("start_costs_by_hours_off = [[2, 20], [6, 50]]"))).expect("valid tiers");
    let Some(AssetKind::Thermal(Thermal { commitment: Some(uc), .. })) = case.asset("gen").map(|a| &a.kind) else {
        panic!("gen is a committed thermal unit")
    };
    assert_eq!(uc.start_tiers(), [(2.0, 20.0), (6.0, 50.0)]);
}
