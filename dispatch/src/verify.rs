//! Invariant checks computed from a schedule alone, without the solver.
//!
//! [`check`] re-derives, from the case and the reported flows, that every
//! bus balances at every step, that storage follows its recursion and stays
//! in bounds, that units respect capacity, minimum power, ramps and minimum
//! up/down times, and that the reported cost is what the flows cost. Tests
//! run it on every schedule they produce; users can run it on schedules
//! that went through a file or a network.

use std::collections::BTreeMap;

use volta_engine::asset::{FinalState, Fuel, FuelUse};
use volta_engine::{AssetKind, Case};

use crate::plan::{CostCategory, CostItem, Detail, EmissionItem, Schedule};

/// Checks `schedule` against `case`; returns one message per violation
/// (empty when everything holds). `tol` is an absolute tolerance in kW, kWh
/// or currency, scaled up for large magnitudes.
#[must_use]
pub fn check(case: &Case, schedule: &Schedule, tol: f64) -> Vec<String> {
    audit(case, schedule, tol).errors
}

/// What [`audit`] finds: violations, and the cost and emissions of the flows.
pub(crate) struct Audit {
    pub(crate) errors: Vec<String>,
    pub(crate) costs: Vec<CostItem>,
    pub(crate) emissions: Vec<EmissionItem>,
}

/// The cost of `schedule`'s flows under `case`'s prices, itemised, and its
/// emissions: what a schedule stitched from windows really costs.
pub(crate) fn audit(case: &Case, schedule: &Schedule, tol: f64) -> Audit {
    let mut errors = Vec::new();
    let mut items: BTreeMap<(Option<usize>, CostCategory), f64> = BTreeMap::new();
    let mut co2: BTreeMap<usize, f64> = BTreeMap::new();
    let n = schedule.grid.len();
    let h = case.grid().step_hours();
    let offset = match case.grid().index_of(schedule.grid.instant(0)) {
        Some(offset) => offset,
        None => {
            errors.push(format!("the schedule starts at {}, not on the case's grid", schedule.grid.stamp(0)));
            0
        }
    };
    let near = |a: f64, b: f64| (a - b).abs() <= tol * a.abs().max(b.abs()).max(1.0);
    let le = |a: f64, b: f64| a <= b + tol * a.abs().max(b.abs()).max(1.0);
    // Balances.
    for (b, bus) in case.buses().iter().enumerate() {
        for t in 0..n {
            let mut sum = schedule.buses[b].unserved_kw[t];
            for asset in &schedule.assets {
                sum += asset.flows.iter().filter(|f| f.bus == bus.id).map(|f| f.kw[t]).sum::<f64>();
            }
            if !near(sum, 0.0) {
                errors.push(format!("bus {} step {t}: flows sum to {sum:.6} kW", bus.id));
            }
        }
    }
    let unserved = schedule.buses.iter().map(|b| b.unserved_kw.iter().sum::<f64>() * h).sum::<f64>()
        * case.settings().value_of_lost_load.unwrap_or(0.0);
    if unserved != 0.0 {
        items.insert((None, CostCategory::Unserved), unserved);
    }
    for (i, (asset, plan)) in case.assets().iter().zip(&schedule.assets).enumerate() {
        let id = asset.id.as_str();
        let mut add = |category: CostCategory, amount: f64| {
            *items.entry((Some(i), category)).or_insert(0.0) += amount;
        };
        let at = |t: usize| offset + t;
        match (&asset.kind, &plan.detail) {
            (AssetKind::Load(load), Detail::Load { demand_kw, served_kw, shed_kw }) => {
                for t in 0..n {
                    if !near(demand_kw[t], load.demand_kw.at(at(t))) {
                        errors.push(format!("{id} step {t}: demand differs from the case"));
                    }
                    let max_shed = load.curtailable.as_ref().map_or(0.0, |c| c.max_share * demand_kw[t]);
                    if shed_kw[t] < -tol || !le(shed_kw[t], max_shed) {
                        errors.push(format!("{id} step {t}: shed {:.3} kW outside [0, {max_shed:.3}]", shed_kw[t]));
                    }
                    if let Some(c) = &load.curtailable {
                        add(CostCategory::LostLoad, c.value_of_lost_load.at(at(t)) * shed_kw[t] * h);
                    }
                    if load.shiftable.is_none() && !near(served_kw[t] + shed_kw[t], demand_kw[t]) {
                        errors.push(format!("{id} step {t}: served plus shed differs from demand"));
                    }
                }
                // A shiftable load serves each whole window's energy.
                if let Some(w) =
                    load.shiftable.as_ref().and_then(|s| case.grid().steps_in(s.window_h)).filter(|&w| w > 0)
                    && offset == 0
                    && n == case.grid().len()
                {
                    for (k, start) in (0..n).step_by(w).enumerate() {
                        let steps = start..(start + w).min(n);
                        let served: f64 = steps.clone().map(|t| (served_kw[t] + shed_kw[t]) * h).sum();
                        let wanted: f64 = steps.map(|t| demand_kw[t] * h).sum();
                        if !near(served, wanted) {
                            errors.push(format!("{id} window {k}: serves {served:.3} kWh of {wanted:.3}"));
                        }
                    }
                }
            }
            (AssetKind::Renewable(r), Detail::Renewable { output_kw, .. }) => {
                for (t, &p) in output_kw.iter().enumerate() {
                    let avail = r.capacity_kw * r.availability.at(at(t));
                    if p < -tol || !le(p, avail) || (!r.curtailable && !near(p, avail)) {
                        errors.push(format!("{id} step {t}: output {p:.3} kW against availability {avail:.3}"));
                    }
                    add(CostCategory::Operation, r.marginal_cost.at(at(t)) * p * h);
                }
            }
            (AssetKind::Grid(g), Detail::Grid { import_kw, export_kw }) => {
                for t in 0..n {
                    let limit = g.import_limit_kw.as_ref().map_or(f64::INFINITY, |p| p.at(at(t)));
                    if import_kw[t] < -tol || !le(import_kw[t], limit) {
                        errors.push(format!("{id} step {t}: import {:.3} kW beyond its limit", import_kw[t]));
                    }
                    if export_kw[t] < -tol || !le(export_kw[t], g.export_limit_kw.at(at(t))) {
                        errors.push(format!("{id} step {t}: export {:.3} kW beyond its limit", export_kw[t]));
                    }
                    add(CostCategory::Import, g.import_price.at(at(t)) * import_kw[t] * h);
                    add(CostCategory::Export, -g.export_price.at(at(t)) * export_kw[t] * h);
                    let intensity = g
                        .co2_kg_per_kwh
                        .as_ref()
                        .map_or_else(|| case.carrier_of_bus(&g.bus).co2_kg_per_kwh, |p| p.at(at(t)));
                    if intensity != 0.0 {
                        *co2.entry(i).or_insert(0.0) += intensity * import_kw[t] * h;
                    }
                }
                if g.peak_demand_charge > 0.0 {
                    add(
                        CostCategory::DemandCharge,
                        g.peak_demand_charge * import_kw.iter().copied().fold(0.0, f64::max),
                    );
                }
            }
            (AssetKind::Storage(s), Detail::Storage { charge_kw, discharge_kw, energy_kwh, initial_kwh }) => {
                let cap = s.energy_capacity_kwh;
                let keep = (1.0 - s.standing_loss_per_h).powf(h);
                let mut prev = *initial_kwh;
                for t in 0..n {
                    let kept = if t == 0 { s.initial_keep(h) } else { keep };
                    let expected = prev * kept + charge_kw[t] * s.charge_efficiency * h
                        - discharge_kw[t] * h / s.discharge_efficiency;
                    if !near(energy_kwh[t], expected) {
                        errors.push(format!(
                            "{id} step {t}: energy {:.3} kWh, recursion gives {expected:.3}",
                            energy_kwh[t]
                        ));
                    }
                    if !le(s.soc_min * cap, energy_kwh[t]) || !le(energy_kwh[t], s.soc_max * cap) {
                        errors.push(format!("{id} step {t}: energy {:.3} kWh out of bounds", energy_kwh[t]));
                    }
                    if charge_kw[t] < -tol || !le(charge_kw[t], s.charge_limit_kw()) {
                        errors.push(format!("{id} step {t}: charge {:.3} kW out of bounds", charge_kw[t]));
                    }
                    if discharge_kw[t] < -tol || !le(discharge_kw[t], s.discharge_limit_kw()) {
                        errors.push(format!("{id} step {t}: discharge {:.3} kW out of bounds", discharge_kw[t]));
                    }
                    if s.no_simultaneous && charge_kw[t].min(discharge_kw[t]) > tol {
                        errors.push(format!("{id} step {t}: charges and discharges at once"));
                    }
                    add(CostCategory::Wear, s.cycle_cost * discharge_kw[t] * h);
                    prev = energy_kwh[t];
                }
                let reaches_end = offset + n == case.grid().len();
                let end = energy_kwh.last().copied().unwrap_or(*initial_kwh);
                match s.final_soc {
                    FinalState::Cyclic if reaches_end && !near(end, s.initial_soc * cap) => {
                        errors.push(format!("{id}: ends at {end:.3} kWh, not its initial level"));
                    }
                    FinalState::Periodic if reaches_end && offset == 0 && !near(end, *initial_kwh) => {
                        errors.push(format!("{id}: ends at {end:.3} kWh, not where it started ({initial_kwh:.3})"));
                    }
                    FinalState::Periodic
                        if !le(s.soc_min * cap, *initial_kwh) || !le(*initial_kwh, s.soc_max * cap) =>
                    {
                        errors.push(format!("{id}: starts at {initial_kwh:.3} kWh, out of bounds"));
                    }
                    FinalState::AtLeast(f) if reaches_end && !le(f * cap, end) => {
                        errors.push(format!("{id}: ends at {end:.3} kWh, below {:.3}", f * cap));
                    }
                    FinalState::Free | FinalState::Cyclic | FinalState::Periodic | FinalState::AtLeast(_) => {}
                }
            }
            (AssetKind::Thermal(th), Detail::Unit { output_kw, fuel_kw, on, starts }) => {
                let limits = UnitLimits {
                    capacity: th.capacity_kw,
                    min: th.min_power_kw,
                    ramp_up: th.ramp_up_kw_per_h,
                    ramp_down: th.ramp_down_kw_per_h,
                    commitment: th.commitment.as_ref(),
                };
                add(
                    CostCategory::Startup,
                    check_unit(id, &limits, output_kw, on.as_deref(), starts.as_deref(), h, tol, &mut errors),
                );
                let fuel = fuel_kw.as_deref().unwrap_or(&[]);
                for (t, (&p, &f)) in output_kw.iter().zip(fuel).enumerate() {
                    let is_on = on.as_ref().is_none_or(|o| o[t]);
                    let needed = match &th.fuel_use {
                        FuelUse::Efficiency(e) => p / e,
                        FuelUse::Curve(points) if is_on && on.is_some() => curve_at(points, p),
                        FuelUse::Quadratic(q) if is_on && on.is_some() => {
                            q.approximated(p, th.min_power_kw, th.capacity_kw)
                        }
                        // Off, on a start-up or shut-down trajectory: no
                        // no-load fuel, the steepest incremental rate.
                        FuelUse::Curve(points) if on.is_some() => steepest(&crate::model::segments(points)) * p,
                        FuelUse::Quadratic(q) if on.is_some() => {
                            steepest(&q.pieces(th.min_power_kw, th.capacity_kw)) * p
                        }
                        // Without commitment the no-load fuel is scaled by an
                        // "on" share the schedule does not report.
                        FuelUse::Curve(_) | FuelUse::Quadratic(_) => 0.0,
                    };
                    if !le(needed, f) {
                        errors.push(format!("{id} step {t}: fuel {f:.3} kW below the curve's {needed:.3}"));
                    }
                    if let Fuel::Purchased { price, carrier } = &th.fuel {
                        add(CostCategory::Fuel, price.at(at(t)) * f * h);
                        let intensity = case.carrier_of(carrier).co2_kg_per_kwh;
                        if intensity != 0.0 {
                            *co2.entry(i).or_insert(0.0) += intensity * f * h;
                        }
                    }
                    add(CostCategory::Operation, th.marginal_cost.at(at(t)) * p * h);
                }
            }
            (AssetKind::Converter(cv), Detail::Unit { output_kw, on, starts, .. }) => {
                let limits = UnitLimits {
                    capacity: cv.capacity_kw,
                    min: cv.min_power_kw,
                    ramp_up: cv.ramp_up_kw_per_h,
                    ramp_down: cv.ramp_down_kw_per_h,
                    commitment: cv.commitment.as_ref(),
                };
                add(
                    CostCategory::Startup,
                    check_unit(id, &limits, output_kw, on.as_deref(), starts.as_deref(), h, tol, &mut errors),
                );
                // The reference flow is the first input's draw.
                if let Some(first) = plan.flows.first() {
                    for (t, &x) in first.kw.iter().enumerate() {
                        add(CostCategory::Operation, cv.marginal_cost.at(at(t)) * (-x) * h);
                    }
                }
            }
            _ => errors.push(format!("{id}: the schedule's detail does not match the asset type")),
        }
    }
    let cost: f64 = items.values().sum();
    if !near(cost, schedule.cost) {
        errors.push(format!("the flows cost {cost:.4}, the schedule reports {:.4}", schedule.cost));
    }
    let costs = items
        .into_iter()
        .filter(|&(_, amount)| amount != 0.0)
        .map(|((asset, category), amount)| CostItem {
            asset: asset.map(|i| case.assets()[i].id.clone()),
            category,
            amount,
        })
        .collect();
    let emissions =
        co2.into_iter().map(|(i, co2_kg)| EmissionItem { asset: case.assets()[i].id.clone(), co2_kg }).collect();
    Audit { errors, costs, emissions }
}

struct UnitLimits<'a> {
    capacity: f64,
    min: f64,
    ramp_up: Option<f64>,
    ramp_down: Option<f64>,
    commitment: Option<&'a volta_engine::asset::Commitment>,
}

/// Checks one unit; returns its start-up and shut-down cost.
#[expect(clippy::too_many_arguments, reason = "a private helper with plain inputs")]
fn check_unit(
    id: &str,
    unit: &UnitLimits<'_>,
    output: &[f64],
    on: Option<&[bool]>,
    starts: Option<&[bool]>,
    h: f64,
    tol: f64,
    errors: &mut Vec<String>,
) -> f64 {
    let le = |a: f64, b: f64| a <= b + tol * a.abs().max(b.abs()).max(1.0);
    let mut cost = 0.0;
    // What the start-up and shut-down trajectories give, off.
    let trajectory = match (on, unit.commitment) {
        (Some(on), Some(uc)) if uc.has_trajectories() => {
            let (kw, early) = trajectory_output(uc, on, h);
            if let Some(t) = early {
                errors.push(format!("{id} step {t}: starts before its start-up trajectory could have run"));
            }
            kw
        }
        _ => vec![0.0; output.len()],
    };
    for (t, &p) in output.iter().enumerate() {
        let is_on = on.is_none_or(|o| o[t]);
        let (lo, hi) = match (on, is_on) {
            (Some(_), true) => (unit.min, unit.capacity),
            (Some(_), false) => (trajectory[t], trajectory[t]),
            (None, _) => (0.0, unit.capacity),
        };
        if !le(lo, p) || !le(p, hi) {
            errors.push(format!("{id} step {t}: output {p:.3} kW outside [{lo}, {hi}]"));
        }
    }
    let (Some(on), Some(uc)) = (on, unit.commitment) else {
        for t in 1..output.len() {
            if let Some(r) = unit.ramp_up
                && !le(output[t] - output[t - 1], r * h)
            {
                errors.push(format!("{id} step {t}: ramps up faster than {r} kW/h"));
            }
            if let Some(r) = unit.ramp_down
                && !le(output[t - 1] - output[t], r * h)
            {
                errors.push(format!("{id} step {t}: ramps down faster than {r} kW/h"));
            }
        }
        return cost;
    };
    // Ramps under commitment, from the initial state: running units move
    // by at most the ramp per step; a start may jump to the larger of the
    // minimum power and one step's ramp, a stop may drop from it. They
    // limit the output less what a trajectory gives.
    let initial_power = if uc.initial.on { uc.initial.power_kw.unwrap_or(unit.min.max(0.0)) } else { 0.0 };
    let own: Vec<f64> = output.iter().zip(&trajectory).map(|(p, kw)| p - kw).collect();
    let output = &own;
    for t in 0..output.len() {
        let (prev_p, prev_on) = if t == 0 { (initial_power, uc.initial.on) } else { (output[t - 1], on[t - 1]) };
        let (start, stop) = (on[t] && !prev_on, prev_on && !on[t]);
        if let Some(r) = unit.ramp_up {
            let allowed = if prev_on { r * h } else { 0.0 } + if start { unit.min.max(r * h) } else { 0.0 };
            if !le(output[t] - prev_p, allowed) {
                errors.push(format!("{id} step {t}: ramps up by {:.3} kW, more than {allowed} kW", output[t] - prev_p));
            }
        }
        if let Some(r) = unit.ramp_down {
            let allowed = if on[t] { r * h } else { 0.0 } + if stop { unit.min.max(r * h) } else { 0.0 };
            if !le(prev_p - output[t], allowed) {
                errors
                    .push(format!("{id} step {t}: ramps down by {:.3} kW, more than {allowed} kW", prev_p - output[t]));
            }
        }
    }
    let steps = |hours: f64| crate::model::steps_covering(hours, h);
    let tiers = uc.start_tiers();
    // Length of the run each step belongs to, counting the initial state.
    let mut prev_on = uc.initial.on;
    let mut run_h = uc.initial.hours_in_state.unwrap_or(f64::INFINITY);
    for (t, &is_on) in on.iter().enumerate() {
        if is_on != prev_on {
            // A switch: the finished run must have lasted long enough.
            let (needed, what) = if prev_on { (uc.min_up_h, "up") } else { (uc.min_off_h(h), "down") };
            if run_h + 1e-9 < steps(needed) as f64 * h {
                errors.push(format!("{id} step {t}: switched after {run_h} h, minimum {what} time is {needed} h"));
            }
            if is_on {
                // The dearest tier whose time off (in whole steps, at
                // least one) the start has reached; never below the hot cost.
                cost += tiers
                    .iter()
                    .filter(|&&(after, _)| run_h + 1e-9 >= steps(after).max(1) as f64 * h)
                    .map(|&(_, tier)| tier)
                    .fold(uc.start_cost, f64::max);
            } else {
                cost += uc.shutdown_cost;
            }
            run_h = 0.0;
        }
        if let Some(starts) = starts
            && starts[t] != (is_on && !prev_on)
        {
            errors.push(format!("{id} step {t}: start flag disagrees with the on/off series"));
        }
        run_h += h;
        prev_on = is_on;
    }
    cost
}

/// A committed unit's output on its start-up and shut-down trajectories
/// in each step, read off its on/off series `on` and its initial state (a
/// unit off for less than its shut-down trajectory is still on it), and
/// the first step where it starts before its start-up could have run.
fn trajectory_output(uc: &volta_engine::asset::Commitment, on: &[bool], h: f64) -> (Vec<f64>, Option<usize>) {
    let (up, down) = (&uc.startup_trajectory_kw, &uc.shutdown_trajectory_kw);
    let mut kw = vec![0.0; on.len()];
    let mut early = None;
    if let (false, Some(hours)) = (uc.initial.on, uc.initial.hours_in_state) {
        let since = (hours / h).round();
        for (t, out) in kw.iter_mut().enumerate() {
            let at = since + t as f64;
            if at < down.len() as f64 {
                *out += down[at as usize];
            }
        }
    }
    let mut prev = uc.initial.on;
    for (t, &is_on) in on.iter().enumerate() {
        if is_on && !prev {
            if t < up.len() {
                early.get_or_insert(t);
            }
            for (k, &p) in up.iter().rev().enumerate() {
                if let Some(s) = t.checked_sub(k + 1) {
                    kw[s] += p;
                }
            }
        }
        if prev && !is_on {
            for (out, &p) in kw.iter_mut().skip(t).zip(down) {
                *out += p;
            }
        }
        prev = is_on;
    }
    (kw, early)
}

/// The steepest slope of a fuel curve's linear pieces `(slope, intercept)`.
fn steepest(pieces: &[(f64, f64)]) -> f64 {
    pieces.iter().map(|&(slope, _)| slope).fold(0.0, f64::max)
}

/// The fuel of a convex piecewise-linear curve at output `p`.
fn curve_at(points: &[[f64; 2]], p: f64) -> f64 {
    points
        .windows(2)
        .map(|w| {
            let slope = (w[1][1] - w[0][1]) / (w[1][0] - w[0][0]);
            w[0][1] + slope * (p - w[0][0])
        })
        .fold(f64::NEG_INFINITY, f64::max)
}
