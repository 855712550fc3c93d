//! Conversions between `volta.dispatch.v1` messages and the domain: the
//! case text a remote caller sends, the objective it names, and the
//! schedules, explanations and cost breakdowns sent back.

use std::collections::HashMap;

use tonic::Status;
use volta_dispatch::{Detail, Infeasibility, Objective, Schedule};
use volta_engine::{CaseReader, Checked, Format};

use crate::pb::dispatch::{self as pb, case_text};
use crate::status;

/// The length in bytes of a request's case text (0 when absent).
#[must_use]
pub fn case_bytes(case: Option<&pb::CaseText>) -> usize {
    match case.and_then(|c| c.format.as_ref()) {
        Some(case_text::Format::Json(text) | case_text::Format::Toml(text)) => text.len(),
        None => 0,
    }
}

/// Reads a case sent by a remote caller: every series inline, never a file
/// of the server's.
///
/// # Errors
/// The case's problems, each with the path of its field.
pub fn read_case(case: Option<pb::CaseText>) -> Result<Checked, volta_engine::Error> {
    let reader = CaseReader::new().inline_only();
    match case.and_then(|c| c.format) {
        Some(case_text::Format::Json(text)) => reader.read_str(&text, Format::Json),
        Some(case_text::Format::Toml(text)) => reader.read_str(&text, Format::Toml),
        None => reader.read_str("", Format::Json),
    }
}

/// The objective a request names, with its CO2 price.
///
/// # Errors
/// INVALID_ARGUMENT naming `objective` or `co2_price`.
pub fn objective(value: i32, co2_price: Option<f64>) -> Result<Objective, Status> {
    let name = match pb::Objective::try_from(value) {
        Ok(pb::Objective::Unspecified) => "",
        Ok(pb::Objective::Cost) => "cost",
        Ok(pb::Objective::Co2) => "co2",
        Ok(pb::Objective::Weighted) => "weighted",
        Err(_) => return Err(status::invalid("objective", format!("unknown value {value}"))),
    };
    Objective::from_request(name, co2_price).map_err(|e| status::invalid(e.field(), e.to_string()))
}

fn flags(v: &[bool]) -> Vec<f64> {
    v.iter().map(|&b| if b { 1.0 } else { 0.0 }).collect()
}

/// An asset's own series, named as in `schedule.csv`.
fn detail(detail: &Detail) -> Vec<pb::Series> {
    let series = |name: &str, values: &[f64]| pb::Series { name: name.to_owned(), values: values.to_vec() };
    match detail {
        Detail::Load { demand_kw, served_kw, shed_kw } => {
            vec![series("demand_kw", demand_kw), series("served_kw", served_kw), series("shed_kw", shed_kw)]
        }
        Detail::Renewable { available_kw, output_kw } => {
            vec![series("available_kw", available_kw), series("output_kw", output_kw)]
        }
        Detail::Unit { output_kw, fuel_kw, on, starts } => {
            let mut out = vec![series("output_kw", output_kw)];
            out.extend(fuel_kw.as_deref().map(|f| series("fuel_kw", f)));
            out.extend(on.as_deref().map(|f| pb::Series { name: "on".into(), values: flags(f) }));
            out.extend(starts.as_deref().map(|f| pb::Series { name: "starts".into(), values: flags(f) }));
            out
        }
        Detail::Grid { import_kw, export_kw } => vec![series("import_kw", import_kw), series("export_kw", export_kw)],
        Detail::Storage { charge_kw, discharge_kw, energy_kwh, initial_kwh: _ } => {
            vec![series("charge_kw", charge_kw), series("discharge_kw", discharge_kw), series("energy_kwh", energy_kwh)]
        }
    }
}

/// A schedule step by step.
#[must_use]
pub fn schedule(plan: &Schedule) -> pb::Schedule {
    pb::Schedule {
        times: (0..plan.grid.len()).map(|i| plan.grid.stamp(i)).collect(),
        assets: plan
            .assets
            .iter()
            .map(|a| pb::AssetSchedule {
                id: a.id.to_string(),
                kind: a.kind.to_owned(),
                flows: a.flows.iter().map(|f| pb::Flow { bus: f.bus.to_string(), kw: f.kw.clone() }).collect(),
                detail: detail(&a.detail),
            })
            .collect(),
        buses: plan
            .buses
            .iter()
            .map(|b| pb::BusSchedule {
                id: b.id.to_string(),
                price: b.price.clone().unwrap_or_default(),
                unserved_kw: b.unserved_kw.clone(),
            })
            .collect(),
    }
}

/// Why a case was infeasible, in plant terms; empty when it was not.
#[must_use]
pub fn explanation(infeasibility: Option<&Infeasibility>) -> String {
    infeasibility.map(Infeasibility::report).unwrap_or_default()
}

/// The cost of a schedule by category (empty without a schedule).
#[must_use]
pub fn cost_by_category(plan: Option<&Schedule>) -> HashMap<String, f64> {
    plan.map(|p| p.cost_by_category().into_iter().map(|(c, v)| (c.name().to_owned(), v)).collect()).unwrap_or_default()
}
