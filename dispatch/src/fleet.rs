//! Fleets of identical units.
//!
//! Units with the same data (bus, limits, fuel, costs, commitment and
//! initial state; only the id differs) are interchangeable: any schedule
//! stays feasible and costs the same when two of them swap their whole
//! trajectories. A solver that branches on each unit's binaries explores
//! every such permutation; a fleet is modelled so that it does not.
//!
//! - **Aggregated** (units without ramp limits): one integer per step says
//!   how many are on, one how many start, and the fleet's output, fuel and
//!   reserve are those of its running units sharing the load equally (with
//!   a convex fuel curve, an equal split is the cheapest). Minimum up and
//!   down times hold as counts (`starts in the last up-time ≤ on`,
//!   `on + stops in the last down-time ≤ size`), and a start is hot when it
//!   can be matched to a stop of the fleet recent enough: each stop serves
//!   at most one start, the matching is a transportation problem with
//!   integral data, so its optimum is integral. This is exact: every count
//!   schedule is the sum of unit schedules that meet every unit constraint
//!   and cost the same (`split` builds them), and every unit schedule sums
//!   to a count schedule.
//! - **Ordered** (units with ramp limits, start-up and shut-down
//!   trajectories or start-up costs in more than two tiers, where counts
//!   would not be exact):
//!   each unit keeps its own columns, and the units are ordered by hours
//!   on (`Σ_t on[a] ≥ Σ_t on[b]` for consecutive members), which any
//!   optimum can be permuted to meet.
//!
//! A rolling horizon regroups at each window: units whose carried states
//! differ are no longer identical.

use volta_engine::asset::{Commitment, Converter, Thermal};
use volta_engine::{AssetKind, Case};

/// A group of at least two identical committed units.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fleet {
    /// Asset indices, in case order; the first (the leader) carries an
    /// aggregated fleet's columns.
    pub(crate) members: Vec<usize>,
    /// Whether its commitment is one count per step (else per unit, ordered).
    pub(crate) aggregated: bool,
}

/// The commitment data of a unit, if it is a thermal unit or converter
/// with commitment.
pub(crate) fn commitment_of(kind: &AssetKind) -> Option<(&Commitment, bool)> {
    match kind {
        AssetKind::Thermal(Thermal { commitment: Some(uc), ramp_up_kw_per_h, ramp_down_kw_per_h, .. })
        | AssetKind::Converter(Converter { commitment: Some(uc), ramp_up_kw_per_h, ramp_down_kw_per_h, .. }) => {
            // The fleet's matching of stops to starts prices one tier only.
            let tiers = !uc.start_costs_by_hours_off.is_empty();
            let apart = ramp_up_kw_per_h.is_some() || ramp_down_kw_per_h.is_some() || uc.has_trajectories() || tiers;
            Some((uc, apart))
        }
        AssetKind::Thermal(_)
        | AssetKind::Converter(_)
        | AssetKind::Load(_)
        | AssetKind::Renewable(_)
        | AssetKind::Grid(_)
        | AssetKind::Storage(_) => None,
    }
}

/// The fleets of `case` for a window whose units carry `carried(i)` (their
/// state at the window's start) into it: committed units equal in
/// everything but their id, and in what they carry.
pub(crate) fn fleets<K: PartialEq>(case: &Case, carried: impl Fn(usize) -> Option<K>) -> Vec<Fleet> {
    let assets = case.assets();
    let mut taken = vec![false; assets.len()];
    let mut fleets = Vec::new();
    for (i, asset) in assets.iter().enumerate() {
        let Some((_, ramps)) = commitment_of(&asset.kind) else { continue };
        if taken[i] {
            continue;
        }
        let members: Vec<usize> = (i..assets.len())
            .filter(|&j| !taken[j] && assets[j].kind == asset.kind && carried(j) == carried(i))
            .collect();
        if members.len() < 2 {
            continue;
        }
        for &j in &members {
            taken[j] = true;
        }
        fleets.push(Fleet { members, aggregated: !ramps });
    }
    fleets
}

/// The unit schedules an aggregated fleet's counts stand for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Split {
    /// Per member, per step: on.
    pub(crate) on: Vec<Vec<bool>>,
    /// Per member, per step: started.
    pub(crate) starts: Vec<Vec<bool>>,
    /// Per member: start-up and shut-down cost, hot or cold.
    pub(crate) startup_cost: Vec<f64>,
}

/// How long a fleet's units must stay up and down, and stay warm, in hours
/// rounded up to whole steps.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Durations {
    pub(crate) up_h: f64,
    pub(crate) down_h: f64,
    /// A start after this long off is cold (none: every start is hot).
    pub(crate) warm_h: Option<f64>,
}

/// Splits a fleet's counts (`on[t]` units on and `starts[t]` started at
/// step `t`) into `size` unit schedules that each meet the unit's minimum
/// up and down times, starting from `initial` (on, hours in that state).
///
/// Stops take units that may stop; starts take units that may start,
/// first those still warm whose warmth ends soonest (earliest deadline
/// first, which makes as many starts hot as any matching can), then cold
/// ones. The counts' constraints guarantee enough eligible units at every
/// step; the split's costs are each unit's own, so the total is the cost of
/// a schedule that really exists.
pub(crate) fn split(
    counts: &[u32],
    starts: &[u32],
    size: usize,
    uc: &Commitment,
    durations: Durations,
    initial: (bool, f64),
    h: f64,
) -> Split {
    let n = counts.len();
    let Durations { up_h: up, down_h: down, warm_h: warm_for } = durations;
    let mut on = vec![initial.0; size];
    let mut run = vec![initial.1; size];
    let mut out =
        Split { on: vec![vec![false; n]; size], starts: vec![vec![false; n]; size], startup_cost: vec![0.0; size] };
    let mut running = if initial.0 { size } else { 0 };
    for t in 0..n {
        let target = counts[t] as usize;
        let start = starts[t] as usize;
        let stop = (running + start).saturating_sub(target);
        // Stops: units past their minimum up time, the longest running
        // first (any is as good as another for what follows).
        let mut candidates: Vec<usize> = (0..size).filter(|&k| on[k] && run[k] + 1e-9 >= up).collect();
        if candidates.len() < stop {
            candidates = (0..size).filter(|&k| on[k]).collect();
        }
        candidates.sort_by(|&a, &b| run[b].total_cmp(&run[a]).then(a.cmp(&b)));
        let stopped: Vec<usize> = candidates.into_iter().take(stop).collect();
        // Starts: units off (not just stopped) past their minimum down time,
        // warm ones closest to turning cold first, then cold ones.
        let mut candidates: Vec<usize> = (0..size).filter(|&k| !on[k] && run[k] + 1e-9 >= down).collect();
        if candidates.len() < start {
            // The counts guarantee enough; should rounding ever disagree,
            // the unit that is ready soonest goes (and a check would say so).
            candidates = (0..size).filter(|&k| !on[k]).collect();
        }
        let warm: Vec<bool> = run.iter().map(|&r| warm_for.is_some_and(|w| r + 1e-9 < w)).collect();
        candidates.sort_by(|&a, &b| warm[b].cmp(&warm[a]).then(run[b].total_cmp(&run[a])).then(a.cmp(&b)));
        let started: Vec<usize> = candidates.into_iter().take(start).collect();
        for &k in &stopped {
            on[k] = false;
            run[k] = 0.0;
            out.startup_cost[k] += uc.shutdown_cost;
        }
        for &k in &started {
            let cold = warm_for.is_some() && !warm[k];
            let cold_cost = uc.cold_start_cost.map_or(uc.start_cost, |c| c.max(uc.start_cost));
            out.startup_cost[k] += if cold { cold_cost } else { uc.start_cost };
            on[k] = true;
            run[k] = 0.0;
            out.starts[k][t] = true;
        }
        running = running + started.len() - stopped.len();
        for k in 0..size {
            out.on[k][t] = on[k];
            run[k] += h;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn durations(uc: &Commitment) -> Durations {
        Durations { up_h: uc.min_up_h, down_h: uc.min_down_h, warm_h: uc.cold_start_after_h }
    }

    fn commitment(up: f64, down: f64, cold_after: Option<f64>) -> Commitment {
        Commitment {
            min_up_h: up,
            min_down_h: down,
            start_cost: 10.0,
            cold_start_cost: Some(25.0),
            cold_start_after_h: cold_after,
            start_costs_by_hours_off: Vec::new(),
            shutdown_cost: 1.0,
            startup_trajectory_kw: Vec::new(),
            shutdown_trajectory_kw: Vec::new(),
            initial: volta_engine::asset::InitialState::default(),
        }
    }

    #[test]
    fn counts_become_unit_schedules_that_add_up() {
        let uc = commitment(2.0, 2.0, None);
        let counts = [1, 2, 2, 1, 0, 0, 2];
        let starts = [1, 1, 0, 0, 0, 0, 2];
        let s = split(&counts, &starts, 2, &uc, durations(&uc), (false, f64::INFINITY), 1.0);
        for (t, &c) in counts.iter().enumerate() {
            assert_eq!(s.on.iter().filter(|on| on[t]).count(), c as usize, "step {t}");
            assert_eq!(s.starts.iter().filter(|st| st[t]).count(), starts[t] as usize, "step {t}");
        }
        // Four starts at 10 and two stops at 1.
        assert!((s.startup_cost.iter().sum::<f64>() - 42.0).abs() < 1e-12, "{:?}", s.startup_cost);
    }

    #[test]
    fn a_start_takes_the_unit_whose_warmth_ends_first() {
        // Down time 1 h, cold after 4 h off. Unit A stops at step 0 and
        // unit B at step 2 (both were on). Starts at 3 and 5: restarting B
        // at 3 (the most recent stop) would leave A cold at 5 (off 5 h);
        // restarting A at 3 (off 3 h) leaves B warm at 5 (off 3 h). Both
        // starts are hot.
        let uc = commitment(1.0, 1.0, Some(4.0));
        let counts = [1, 1, 0, 1, 1, 2];
        let starts = [0, 0, 0, 1, 0, 1];
        let s = split(&counts, &starts, 2, &uc, durations(&uc), (true, 5.0), 1.0);
        assert_eq!(s.startup_cost.iter().sum::<f64>(), 2.0 + 20.0, "two stops and two hot starts");
    }
}
