//! Explaining infeasible cases in plant terms.
//!
//! When HiGHS proves a case infeasible, the case is solved again in elastic
//! mode: every bus balance gets a "short" and a "surplus" slack, every
//! reserve requirement and storage end condition a shortfall, and the
//! objective becomes the total slack. The slacks that remain positive say
//! which balance fails, when and by how much; the schedule around them says
//! which assets were at their limits.

use volta_engine::{AssetKind, Case};

use crate::error::DispatchError;
use crate::model::{Mode, Model, Slack, Window};
use crate::options::Options;
use crate::plan::{Detail, Infeasibility, Schedule, Violation, ViolationKind};
use crate::solve::{read_schedule, run};
use volta_lp::Integrality;

/// Solves `case` in elastic mode and explains where it fails.
pub(crate) fn explain(
    case: &Case,
    window: &Window<'_>,
    options: &Options,
) -> Result<Option<Infeasibility>, DispatchError> {
    let model = Model::build(case, window, Integrality::Integer, Mode::Elastic);
    let objective = model.objective(options.objective);
    let elastic_options = Options { time_limit_s: Some(options.time_limit_s.unwrap_or(60.0)), ..options.clone() };
    let (model, raw) = run(model, &objective, &elastic_options, &[])?;
    let Some(x) = raw.x else { return Ok(None) };
    let schedule = read_schedule(case, &model, &x, None);
    let tol = 1e-5;
    let mut found: Vec<(ViolationKind, String, usize, f64)> = Vec::new();
    for slack in &model.slacks {
        let (kind, subject, t, col) = match *slack {
            Slack::Short { bus, t, col } => (ViolationKind::Short, case.buses()[bus].id.to_string(), t, col),
            Slack::Surplus { bus, t, col } => (ViolationKind::Surplus, case.buses()[bus].id.to_string(), t, col),
            Slack::Reserve { bus, t, col } => (ViolationKind::Reserve, case.buses()[bus].id.to_string(), t, col),
            Slack::StorageEnd { asset, col } => {
                (ViolationKind::StorageEnd, case.assets()[asset].id.to_string(), model.len - 1, col)
            }
            Slack::ShiftEnergy { asset, window, col } => {
                (ViolationKind::ShiftEnergy, case.assets()[asset].id.to_string(), window, col)
            }
        };
        let value = x[col.0];
        if value > tol {
            found.push((kind, subject, t, value));
        }
    }
    if found.is_empty() {
        return Ok(Some(Infeasibility { violations: Vec::new(), unexplained: true }));
    }
    found.sort_by(|a, b| (a.0 as u8, &a.1, a.2).cmp(&(b.0 as u8, &b.1, b.2)));
    let mut violations = Vec::new();
    let mut i = 0;
    while i < found.len() {
        let (kind, subject, first, _) = found[i].clone();
        let mut j = i;
        while j + 1 < found.len()
            && found[j + 1].0 == kind
            && found[j + 1].1 == subject
            && found[j + 1].2 == found[j].2 + 1
        {
            j += 1;
        }
        let run = &found[i..=j];
        let (worst_t, largest) =
            run.iter().map(|r| (r.2, r.3)).fold((first, 0.0), |acc, (t, v)| if v > acc.1 { (t, v) } else { acc });
        let last = found[j].2;
        violations.push(violation(case, &schedule, model.start, kind, subject, (first, last), worst_t, largest));
        i = j + 1;
    }
    Ok(Some(Infeasibility { violations, unexplained: false }))
}

#[expect(clippy::too_many_arguments, reason = "a private helper with plain inputs")]
fn violation(
    case: &Case,
    schedule: &Schedule,
    offset: usize,
    kind: ViolationKind,
    subject: String,
    steps: (usize, usize),
    worst: usize,
    largest: f64,
) -> Violation {
    let grid = &schedule.grid;
    let when = |t: usize| grid.at(t).strftime("%Y-%m-%d %H:%M").to_string();
    let span = if steps.0 == steps.1 {
        format!("at {}", when(steps.0))
    } else {
        format!("from {} to {} ({} steps)", when(steps.0), when(steps.1), steps.1 - steps.0 + 1)
    };
    let at_limits = match kind {
        ViolationKind::Short | ViolationKind::Reserve => limits(case, schedule, offset, &subject, worst, true),
        ViolationKind::Surplus => limits(case, schedule, offset, &subject, worst, false),
        ViolationKind::StorageEnd | ViolationKind::ShiftEnergy => Vec::new(),
    };
    let mut message = match kind {
        ViolationKind::Short => format!("{subject} bus {span} short by up to {largest:.1} kW"),
        ViolationKind::Surplus => format!("{subject} bus {span} has up to {largest:.1} kW it cannot use or export"),
        ViolationKind::Reserve => format!("{subject} bus {span} lacks up to {largest:.1} kW of spinning reserve"),
        ViolationKind::StorageEnd => format!("{subject} misses its final state of charge by {largest:.1} kWh"),
        ViolationKind::ShiftEnergy => {
            format!("{subject} cannot serve the energy of shifting window {} by {largest:.1} kWh", steps.0)
        }
    };
    if !at_limits.is_empty() {
        message.push_str("; ");
        message.push_str(&at_limits.join("; "));
    }
    Violation { kind, subject, steps, from: when(steps.0), largest, at_limits, message }
}

/// The assets on `bus` at a limit that matters at step `t`: for a shortage,
/// suppliers at their maximum and empty storage; for a surplus, units at
/// their minimum, must-take renewables, exports at their limit and full
/// storage.
fn limits(case: &Case, schedule: &Schedule, offset: usize, bus: &str, t: usize, short: bool) -> Vec<String> {
    let tol = 1e-4;
    let mut at_max = Vec::new();
    let mut at_min = Vec::new();
    let mut notes = Vec::new();
    for (asset, plan) in case.assets().iter().zip(&schedule.assets) {
        let Some(flow) = plan.flows.iter().find(|f| f.bus.as_str() == bus) else { continue };
        let id = asset.id.as_str();
        let injects = flow.kw.iter().any(|&v| v > tol) || !matches!(asset.kind, AssetKind::Load(_));
        match (&plan.detail, &asset.kind) {
            (Detail::Unit { output_kw, on, .. }, AssetKind::Thermal(_) | AssetKind::Converter(_)) => {
                let (cap, min) = unit_limits(&asset.kind);
                let out = output_kw[t];
                let is_on = on.as_ref().is_none_or(|on| on[t]);
                let supplies = flow.kw[t] >= 0.0 && injects_into(&asset.kind, bus);
                if !supplies {
                    continue;
                }
                if short {
                    if out >= cap - tol {
                        at_max.push(id.to_owned());
                    } else if !is_on {
                        notes.push(format!("{id} off"));
                    }
                } else if is_on && out <= min + tol {
                    at_min.push(id.to_owned());
                }
            }
            (Detail::Renewable { available_kw, output_kw }, _) => {
                if short && output_kw[t] >= available_kw[t] - tol {
                    notes.push(format!("{id} at its availability ({:.1} kW)", available_kw[t]));
                } else if !short {
                    notes.push(format!("{id} producing {:.1} kW", output_kw[t]));
                }
            }
            (Detail::Grid { import_kw, export_kw }, AssetKind::Grid(g)) => {
                if short {
                    let limit = g.import_limit_kw.as_ref().map_or(f64::INFINITY, |p| p.at(offset + t));
                    if import_kw[t] >= limit - tol {
                        notes.push(format!("{id} importing at its limit ({limit:.1} kW)"));
                    }
                } else {
                    let limit = g.export_limit_kw.at(offset + t);
                    if export_kw[t] >= limit - tol {
                        notes.push(format!("{id} exporting at its limit ({limit:.1} kW)"));
                    }
                }
            }
            (Detail::Storage { energy_kwh, charge_kw, discharge_kw, .. }, AssetKind::Storage(s)) => {
                let cap = s.energy_capacity_kwh;
                if short {
                    if energy_kwh[t] <= s.soc_min * cap + tol {
                        notes.push(format!("{id} at minimum"));
                    } else if discharge_kw[t] >= s.discharge_power_kw - tol {
                        notes.push(format!("{id} discharging at maximum"));
                    }
                } else if energy_kwh[t] >= s.soc_max * cap - tol {
                    notes.push(format!("{id} full"));
                } else if charge_kw[t] >= s.charge_power_kw - tol {
                    notes.push(format!("{id} charging at maximum"));
                }
            }
            (Detail::Load { demand_kw, .. }, _) if short && !injects => {
                notes.push(format!("{id} demand {:.1} kW", demand_kw[t]));
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    if !at_max.is_empty() {
        out.push(format!("{} at maximum", and_list(&at_max)));
    }
    if !at_min.is_empty() {
        out.push(format!("{} at minimum", and_list(&at_min)));
    }
    out.extend(notes);
    out
}

fn injects_into(kind: &AssetKind, bus: &str) -> bool {
    match kind {
        AssetKind::Thermal(th) => th.bus.as_str() == bus,
        AssetKind::Converter(cv) => cv.outputs.iter().any(|o| o.bus.as_str() == bus),
        AssetKind::Load(_) | AssetKind::Renewable(_) | AssetKind::Grid(_) | AssetKind::Storage(_) => false,
    }
}

/// Capacity and minimum of a unit's rated flow.
fn unit_limits(kind: &AssetKind) -> (f64, f64) {
    match kind {
        AssetKind::Thermal(th) => (th.capacity_kw, th.min_power_kw),
        AssetKind::Converter(cv) => (cv.capacity_kw, cv.min_power_kw),
        AssetKind::Load(_) | AssetKind::Renewable(_) | AssetKind::Grid(_) | AssetKind::Storage(_) => (0.0, 0.0),
    }
}

fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}
