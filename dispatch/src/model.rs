//! The plant model: one MILP over a window of the case's time grid.
//!
//! Conventions (all documented in the crate overview):
//! - a power column is the mean power over a step, in kW; energy is power ×
//!   the step length `h` in hours;
//! - every asset contributes *signed* flows to buses, positive into the bus;
//!   one balance row per bus and step says that they sum to zero;
//! - unit commitment uses the three-binary form (on `u`, start `v`, stop
//!   `w`) with `u` binary and `v`, `w` continuous: `v ≤ u[t]` and
//!   `v ≤ 1 − u[t−1]` make them integral once `u` is, and the relaxation
//!   stays tight (Morales-España et al., 2013);
//! - identical committed units form fleets (see [`crate::fleet`]).

use std::collections::{BTreeMap, HashMap};

use volta_engine::asset::{
    Commitment, Converter, FinalState, Fuel, FuelUse, Grid, Load, RatedAt, Renewable, Shiftable, Storage, Thermal,
};
use volta_engine::{AssetKind, Case, Profile};

use crate::fleet::{self, Fleet};
use crate::options::{LOST_LOAD_CO2_KG_PER_KWH, Objective};
use crate::plan::CostCategory;
use volta_lp::{Col, Integrality, Lin, Lp, Row};

/// Tolerance used to decide that a quantity sits at a limit.
pub(crate) const TOL: f64 = 1e-6;

/// The state carried into a window: what happened before its first step.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CarriedState {
    /// Per asset index: its state, where it has one.
    pub(crate) assets: HashMap<usize, AssetState>,
}

/// The state of one asset at a window boundary.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum AssetState {
    /// Stored energy, kWh.
    Storage { energy_kwh: f64 },
    /// A unit's last rated output and its on/off history; `starts_in`:
    /// a start-up trajectory under way brings the unit up at this step of
    /// the window (its steps before the window were run already).
    Unit { power_kw: f64, on: bool, hours_in_state: f64, starts_in: Option<usize> },
    /// The highest import so far (for the demand charge).
    Grid { peak_kw: f64 },
    /// Energy already served in the current shifting window, kWh.
    Shift { served_kwh: f64 },
}

/// Which steps a model covers, and what it starts from.
#[derive(Debug, Clone)]
pub(crate) struct Window<'a> {
    pub(crate) start: usize,
    pub(crate) len: usize,
    pub(crate) state: &'a CarriedState,
    /// Whether identical units are modelled as fleets (see [`crate::fleet`]).
    pub(crate) fleets: bool,
    /// Commitment to start the solver from (see [`crate::warm`]).
    pub(crate) hint: Option<&'a Hint>,
    /// Conditions on the window's last steps (see [`Terminal`]).
    pub(crate) terminal: Option<&'a Terminal>,
}

/// Conditions on a window's last steps under which a schedule already made
/// for the steps after the window continues from it: what a decomposition
/// ([`crate::decompose`]) holds at its seams. Units are read by their own
/// columns, so a window with a terminal does not form fleets.
#[derive(Debug, Clone, Default)]
pub(crate) struct Terminal {
    /// Per storage asset: its level at the end of the window's last step, kWh.
    pub(crate) storage: BTreeMap<usize, f64>,
    /// Per committed unit: its on/off states over the window's last steps
    /// (as many as the vector holds).
    pub(crate) on: BTreeMap<usize, Vec<bool>>,
    /// Per unit with ramp limits: its rated output in the window's last step, kW.
    pub(crate) power: BTreeMap<usize, f64>,
    /// Per unit with a start-up trajectory: a start this many steps after
    /// the window (0: its first step after) whose start-up begins inside
    /// it; the window's last steps give that start-up's output.
    pub(crate) starts_after: BTreeMap<usize, usize>,
}

/// Commitment decisions known before a window is solved: every committed
/// unit's on/off state per step, from `first` (a step of the case) on. Built
/// and read in [`crate::warm`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Hint {
    pub(crate) first: usize,
    /// By asset index.
    pub(crate) on: HashMap<usize, Vec<bool>>,
    /// Steps in a day, when a day is a whole number of steps: the steps
    /// the hint does not cover repeat the commitment of a day before.
    pub(crate) day: Option<usize>,
}

impl<'a> Window<'a> {
    /// The whole horizon of `case` from `state`, started cold.
    pub(crate) fn whole(case: &Case, state: &'a CarriedState, fleets: bool) -> Self {
        Self { start: 0, len: case.grid().len(), state, fleets, hint: None, terminal: None }
    }

    fn reaches_end(&self, case: &Case) -> bool {
        self.start + self.len >= case.grid().len()
    }
}

/// Elastic mode: every balance, reserve and end condition gets slacks, and
/// the objective becomes their total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Normal,
    Elastic,
}

/// One cost term of the objective, attributed to an asset.
#[derive(Debug, Clone)]
pub(crate) struct CostTerm {
    pub(crate) asset: Option<usize>,
    pub(crate) category: CostCategory,
    pub(crate) lin: Lin,
}

/// Handles to the columns of a unit (thermal or converter).
#[derive(Debug, Clone)]
pub(crate) struct UnitVars {
    /// Reference flow: output for thermal units, first input for converters.
    pub(crate) x: Vec<Col>,
    /// Rated flow per unit of `x` at each step.
    pub(crate) rated_coef: Vec<f64>,
    /// Fuel drawn, kW (thermal units).
    pub(crate) fuel: Vec<Lin>,
    /// On (a binary; for an aggregated fleet, how many units are on).
    pub(crate) on: Option<Vec<Col>>,
    pub(crate) start: Option<Vec<Col>>,
    pub(crate) stop: Option<Vec<Col>>,
    pub(crate) capacity_kw: f64,
    /// Rated output on a start-up or shut-down trajectory per step (empty
    /// for a unit without trajectories): part of the rated flow, outside
    /// the limits of a running unit.
    pub(crate) trajectory: Vec<Lin>,
    /// For the leader of an aggregated fleet: its members and their state
    /// before the window; the columns are the fleet's.
    pub(crate) fleet: Option<FleetVars>,
}

/// An aggregated fleet, as its leader's columns stand for it.
#[derive(Debug, Clone)]
pub(crate) struct FleetVars {
    /// Asset indices of the members (the leader first).
    pub(crate) members: Vec<usize>,
    /// On, and hours in that state, before the window.
    pub(crate) initial: (bool, f64),
}

/// Handles to an asset's columns.
#[derive(Debug, Clone)]
pub(crate) enum AssetVars {
    Load {
        demand: Vec<f64>,
        served: Vec<Lin>,
        shed: Option<Vec<Col>>,
    },
    Renewable {
        output: Vec<Col>,
        available: Vec<f64>,
    },
    Unit(UnitVars),
    /// A member of an aggregated fleet: its leader's columns hold it.
    Member,
    Grid {
        import: Vec<Col>,
        export: Vec<Col>,
    },
    /// `initial` is the level before the first step: a constant, or a
    /// column for a periodic store.
    Storage {
        charge: Vec<Col>,
        discharge: Vec<Col>,
        energy: Vec<Col>,
        initial: Lin,
    },
}

/// Elastic slacks of one kind, for the explanation.
#[derive(Debug, Clone)]
pub(crate) enum Slack {
    /// Energy missing (positive) on a bus at a step.
    Short { bus: usize, t: usize, col: Col },
    /// Energy in excess on a bus at a step.
    Surplus { bus: usize, t: usize, col: Col },
    /// Reserve missing on a bus at a step.
    Reserve { bus: usize, t: usize, col: Col },
    /// A storage's end condition missed, kWh.
    StorageEnd { asset: usize, col: Col },
    /// A shiftable load's window energy missed, kWh.
    ShiftEnergy { asset: usize, window: usize, col: Col },
}

/// A built model: the LP plus everything needed to read its solution.
#[derive(Debug)]
pub(crate) struct Model {
    pub(crate) lp: Lp,
    pub(crate) start: usize,
    pub(crate) len: usize,
    pub(crate) h: f64,
    /// Per asset, its signed flows: `(bus index, kW per step)`.
    pub(crate) flows: Vec<Vec<(usize, Vec<Lin>)>>,
    pub(crate) vars: Vec<AssetVars>,
    /// `balance[bus][t]`.
    pub(crate) balance_rows: Vec<Vec<Row>>,
    /// Unserved energy per bus and step (when a value of lost load is set).
    pub(crate) unserved: Vec<Option<Vec<Col>>>,
    pub(crate) costs: Vec<CostTerm>,
    /// CO2 in kg, per asset.
    pub(crate) co2: Vec<(usize, Lin)>,
    /// Lost load in kWh (shed and unserved), for the CO2 objective.
    pub(crate) lost_load_kwh: Lin,
    pub(crate) slacks: Vec<Slack>,
}

impl Model {
    /// Builds the model of `case` over `window`.
    pub(crate) fn build(case: &Case, window: &Window<'_>, integrality: Integrality, mode: Mode) -> Self {
        Self::build_in(case, window, Lp::new(integrality), mode)
    }

    /// Builds the model of `case` over `window` into `lp`, after what it
    /// already holds: the scenarios of a stochastic model share one problem.
    pub(crate) fn build_in(case: &Case, window: &Window<'_>, lp: Lp, mode: Mode) -> Self {
        let mut b = Builder::new(case, window, lp, mode);
        for (i, asset) in case.assets().iter().enumerate() {
            // Columns and rows are named after their asset in a written
            // model (`battery.charge(5)`); each builder names its groups.
            b.lp.scope(asset.id.as_str());
            if let Role::Member(_) = b.roles[i] {
                b.vars.push(AssetVars::Member);
                continue;
            }
            match &asset.kind {
                AssetKind::Load(load) => b.load(i, load),
                AssetKind::Renewable(r) => b.renewable(i, r),
                AssetKind::Thermal(th) => b.thermal(i, th),
                AssetKind::Grid(g) => b.grid(i, g),
                AssetKind::Converter(cv) => b.converter(i, cv),
                AssetKind::Storage(s) => b.storage(i, s),
            }
        }
        b.order_fleets();
        b.reserves();
        if let Some(terminal) = b.terminal {
            b.hold_terminal(terminal);
        }
        b.finish()
    }

    /// Total cost as an expression.
    pub(crate) fn cost(&self) -> Lin {
        let mut lin = Lin::new();
        for term in &self.costs {
            lin.add_lin(&term.lin, 1.0);
        }
        lin
    }

    /// Total CO2 (kg) as an expression.
    pub(crate) fn co2(&self) -> Lin {
        let mut lin = Lin::new();
        for (_, term) in &self.co2 {
            lin.add_lin(term, 1.0);
        }
        lin
    }

    /// The expression minimised for `objective` (in elastic mode: the slacks).
    pub(crate) fn objective(&self, objective: Objective) -> Lin {
        if !self.slacks.is_empty() {
            let mut lin = Lin::new();
            for slack in &self.slacks {
                let col = match slack {
                    Slack::Short { col, .. }
                    | Slack::Surplus { col, .. }
                    | Slack::Reserve { col, .. }
                    | Slack::StorageEnd { col, .. }
                    | Slack::ShiftEnergy { col, .. } => *col,
                };
                lin.add(col, 1.0);
            }
            // A whisper of cost keeps the rest of the plan sensible.
            lin.add_lin(&self.cost(), 1e-9);
            return lin;
        }
        match objective {
            Objective::Cost => self.cost(),
            Objective::Co2 => {
                let mut lin = self.co2();
                lin.add_lin(&self.lost_load_kwh, LOST_LOAD_CO2_KG_PER_KWH);
                lin
            }
            Objective::Weighted { cost_weight, co2_weight } => {
                let mut lin = Lin::new();
                lin.add_lin(&self.cost(), cost_weight);
                lin.add_lin(&self.co2(), co2_weight);
                lin
            }
        }
    }
}

struct Builder<'c> {
    case: &'c Case,
    lp: Lp,
    start: usize,
    len: usize,
    h: f64,
    reaches_end: bool,
    state: &'c CarriedState,
    mode: Mode,
    balance: Vec<Vec<Lin>>,
    flows: Vec<Vec<(usize, Vec<Lin>)>>,
    vars: Vec<AssetVars>,
    costs: Vec<CostTerm>,
    co2: Vec<(usize, Lin)>,
    lost_load_kwh: Lin,
    slacks: Vec<Slack>,
    /// Per bus: headroom expressions of units and storage, per step.
    headroom: Vec<Vec<Lin>>,
    /// The window's fleets of identical units, and each asset's part in them.
    fleets: Vec<Fleet>,
    roles: Vec<Role>,
    /// Whether a unit's dearer starts take the tight form (see
    /// [`TIGHT_STARTS_BELOW`]).
    tight_starts: bool,
    /// Conditions on the window's last steps (see [`Terminal`]).
    terminal: Option<&'c Terminal>,
}

/// Below this many steps of committed units in a window, a start's tier
/// is priced in the tight form of start-up types (Morales-España, Latorre
/// and Ramos, 2013): `warm[t] ≤ v[t]`, `warm[t] ≤ Σ w` over the tier's
/// lookback but the last step, and the tier's increment on `v[t] − warm[t]`;
/// from it up, in the compact form `c[t] ≥ increment × (v[t] − Σ u)` over
/// the lookback. Both price every integral schedule the same; the tight one
/// has the stronger relaxation, and is faster on the day and week cases of
/// the benchmark set, but slower on the campus year as one MILP (8,736
/// committed steps), whose relaxation it also makes costlier to solve.
pub(crate) const TIGHT_STARTS_BELOW: usize = 4_000;

/// An asset's part in a fleet of identical units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Alone,
    /// Carries an aggregated fleet of this many units.
    Leader(u32),
    /// Its leader's columns hold it.
    Member(usize),
}

impl<'c> Builder<'c> {
    fn new(case: &'c Case, window: &Window<'c>, lp: Lp, mode: Mode) -> Self {
        let buses = case.buses().len();
        let carried = |i: usize| match window.state.assets.get(&i) {
            Some(AssetState::Unit { on, hours_in_state, starts_in, .. }) => {
                Some((*on, hours_in_state.to_bits(), *starts_in))
            }
            Some(AssetState::Storage { .. } | AssetState::Grid { .. } | AssetState::Shift { .. }) | None => None,
        };
        let fleets = if window.fleets { fleet::fleets(case, carried) } else { Vec::new() };
        let mut roles = vec![Role::Alone; case.assets().len()];
        for f in fleets.iter().filter(|f| f.aggregated) {
            let size = u32::try_from(f.members.len()).unwrap_or(u32::MAX);
            roles[f.members[0]] = Role::Leader(size);
            for &m in &f.members[1..] {
                roles[m] = Role::Member(f.members[0]);
            }
        }
        let committed = case.assets().iter().filter(|a| fleet::commitment_of(&a.kind).is_some()).count();
        Self {
            tight_starts: committed * window.len < TIGHT_STARTS_BELOW,
            case,
            lp,
            start: window.start,
            len: window.len,
            h: case.grid().step_hours(),
            reaches_end: window.reaches_end(case),
            state: window.state,
            mode,
            balance: vec![vec![Lin::new(); window.len]; buses],
            flows: Vec::with_capacity(case.assets().len()),
            vars: Vec::with_capacity(case.assets().len()),
            costs: Vec::new(),
            co2: Vec::new(),
            lost_load_kwh: Lin::new(),
            slacks: Vec::new(),
            headroom: vec![vec![Lin::new(); window.len]; buses],
            fleets,
            roles,
            terminal: window.terminal,
        }
    }

    /// Names what asset `i` creates next `{asset}.{role}(k)` in a written model.
    fn scope(&mut self, i: usize, role: &str) {
        let asset = self.case.assets().get(i).map_or("asset", |a| a.id.as_str());
        self.lp.scope(&format!("{asset}.{role}"));
    }

    fn bus(&self, id: &volta_engine::BusId) -> usize {
        // Resolved when the case was checked.
        self.case.position_of_bus(id)
    }

    /// The profile's values over the window.
    fn values(&self, p: &Profile) -> Vec<f64> {
        (self.start..self.start + self.len).map(|g| p.at(g)).collect()
    }

    fn steps(&self) -> std::ops::Range<usize> {
        0..self.len
    }

    /// Records a signed flow of asset `i` into `bus`.
    fn flow(&mut self, i: usize, bus: usize, kw: Vec<Lin>) {
        for (t, lin) in kw.iter().enumerate() {
            self.balance[bus][t].add_lin(lin, 1.0);
        }
        if self.flows.len() <= i {
            self.flows.resize_with(i + 1, Vec::new);
        }
        self.flows[i].push((bus, kw));
    }

    fn cost(&mut self, asset: usize, category: CostCategory, lin: Lin) {
        if !lin.is_empty() || lin.constant != 0.0 {
            self.costs.push(CostTerm { asset: Some(asset), category, lin });
        }
    }

    /// `Σ_t coef[t]·h·col[t]`.
    fn energy_sum(&self, cols: &[Col], coef: &[f64]) -> Lin {
        let mut lin = Lin::new();
        for (t, &c) in cols.iter().enumerate() {
            lin.add(c, coef[t] * self.h);
        }
        lin
    }

    fn load(&mut self, i: usize, load: &Load) {
        let demand = self.values(&load.demand_kw);
        let n = self.len;
        // Served power per step.
        let (mut served, shift_cols): (Vec<Lin>, Option<Vec<Col>>) = match &load.shiftable {
            None => (demand.iter().map(|&d| Lin::constant(d)).collect(), None),
            Some(shift) => {
                self.scope(i, "served");
                let cols = self.lp.cols(n, 0.0, shift.max_power_kw);
                (cols.iter().map(|&c| Lin::term(c, 1.0)).collect(), Some(cols))
            }
        };
        let shed = load.curtailable.as_ref().map(|c| {
            let voll = self.values(&c.value_of_lost_load);
            self.scope(i, "shed");
            let cols: Vec<Col> = demand.iter().map(|&d| self.lp.col(0.0, c.max_share * d)).collect();
            let cost = self.energy_sum(&cols, &voll);
            self.cost(i, CostCategory::LostLoad, cost);
            let ones = vec![1.0; n];
            let kwh = self.energy_sum(&cols, &ones);
            self.lost_load_kwh.add_lin(&kwh, 1.0);
            cols
        });
        // A checked case never makes a load both curtailable and shiftable.
        if let Some(shed) = &shed {
            for (t, &s) in shed.iter().enumerate() {
                served[t].add(s, -1.0);
            }
        }
        if let (Some(shift), Some(cols)) = (&load.shiftable, &shift_cols) {
            self.shift_windows(i, shift, &demand, cols);
        }
        let withdrawal: Vec<Lin> = served
            .iter()
            .map(|l| {
                let mut w = Lin::new();
                w.add_lin(l, -1.0);
                w
            })
            .collect();
        let bus = self.bus(&load.bus);
        self.flow(i, bus, withdrawal);
        self.vars.push(AssetVars::Load { demand, served, shed });
    }

    /// Each shifting window (cut from the case's start) serves the energy
    /// of its demand.
    fn shift_windows(&mut self, i: usize, shift: &Shiftable, demand: &[f64], cols: &[Col]) {
        self.scope(i, "shift_window");
        let Some(w) = self.case.grid().steps_in(shift.window_h).filter(|&w| w > 0) else { return };
        let first = self.start / w;
        let last = (self.start + self.len - 1) / w;
        for k in first..=last {
            let (g0, g1) = (k * w, ((k + 1) * w).min(self.case.grid().len()));
            let mut lin = Lin::new();
            let mut energy = 0.0;
            let mut outside = 0;
            for g in g0..g1 {
                if g >= self.start && g < self.start + self.len {
                    let t = g - self.start;
                    lin.add(cols[t], self.h);
                    energy += demand[t] * self.h;
                } else if g >= self.start + self.len {
                    outside += 1;
                }
            }
            // Energy of the steps of this window outside the model.
            let mut before = 0.0;
            let mut after_energy = 0.0;
            if g0 < self.start
                && let Some(AssetState::Shift { served_kwh }) = self.state.assets.get(&i)
            {
                before = *served_kwh;
            }
            if let AssetKind::Load(load) = &self.case.assets()[i].kind {
                for g in g0..g1 {
                    if g < self.start || g >= self.start + self.len {
                        after_energy += load.demand_kw.at(g) * self.h;
                    }
                }
            }
            let target = energy + after_energy - before;
            let max_power = shift.max_power_kw;
            let slack = self.elastic_pair();
            if let Some((short, surplus)) = slack {
                lin.add(short, 1.0).add(surplus, -1.0);
                self.slacks.push(Slack::ShiftEnergy { asset: i, window: k, col: short });
                self.slacks.push(Slack::ShiftEnergy { asset: i, window: k, col: surplus });
            }
            if outside == 0 {
                self.lp.eq(lin, target);
            } else {
                // Later steps of the window can still serve up to their maximum.
                self.lp.le(lin.clone(), target);
                self.lp.ge(lin, target - max_power * self.h * outside as f64);
            }
        }
    }

    /// In elastic mode, a pair of non-negative slacks `(short, surplus)`.
    fn elastic_pair(&mut self) -> Option<(Col, Col)> {
        (self.mode == Mode::Elastic).then(|| (self.lp.col(0.0, f64::INFINITY), self.lp.col(0.0, f64::INFINITY)))
    }

    fn renewable(&mut self, i: usize, r: &Renewable) {
        let available: Vec<f64> = self.values(&r.availability).iter().map(|a| a * r.capacity_kw).collect();
        let output: Vec<Col> = {
            self.scope(i, "power");
            available.iter().map(|&a| if r.curtailable { self.lp.col(0.0, a) } else { self.lp.col(a, a) }).collect()
        };
        let mc = self.values(&r.marginal_cost);
        let cost = self.energy_sum(&output, &mc);
        self.cost(i, CostCategory::Operation, cost);
        let bus = self.bus(&r.bus);
        self.flow(i, bus, output.iter().map(|&c| Lin::term(c, 1.0)).collect());
        self.vars.push(AssetVars::Renewable { output, available });
    }

    fn thermal(&mut self, i: usize, th: &Thermal) {
        let n = self.len;
        let coef = vec![1.0; n];
        let mut unit = self.unit(
            i,
            &UnitSpec {
                capacity_kw: th.capacity_kw,
                min_power_kw: th.min_power_kw,
                ramp_up: th.ramp_up_kw_per_h,
                ramp_down: th.ramp_down_kw_per_h,
                commitment: th.commitment.as_ref(),
                rated_coef: coef,
            },
        );
        let p = unit.x.clone();
        // Fuel use.
        let fuel: Vec<Lin> = match &th.fuel_use {
            FuelUse::Curve(_) | FuelUse::Quadratic(_) => {
                let segments = match &th.fuel_use {
                    FuelUse::Quadratic(q) => q.pieces(th.min_power_kw, th.capacity_kw),
                    FuelUse::Curve(points) => segments(points),
                    FuelUse::Efficiency(_) => Vec::new(),
                };
                // Without commitment, an "on" share `u = p / capacity` scales
                // the no-load fuel: the convex hull of off and on.
                let on: Vec<Lin> = match &unit.on {
                    Some(u) => u.iter().map(|&c| Lin::term(c, 1.0)).collect(),
                    None => p.iter().map(|&c| Lin::term(c, 1.0 / th.capacity_kw.max(TOL))).collect(),
                };
                (0..n)
                    .map(|t| {
                        let f = self.lp.col(0.0, f64::INFINITY);
                        for &(slope, intercept) in &segments {
                            let mut lin = Lin::term(f, 1.0).with(p[t], -slope);
                            lin.add_lin(&on[t], -intercept);
                            self.lp.ge(lin, 0.0);
                        }
                        Lin::term(f, 1.0)
                    })
                    .collect()
            }
            FuelUse::Efficiency(eff) => p.iter().map(|&c| Lin::term(c, 1.0 / eff)).collect(),
        };
        match &th.fuel {
            Fuel::Bus(bus) => {
                let bus = self.bus(bus);
                let draw = fuel.iter().map(|f| Lin::new().with_lin(f, -1.0)).collect();
                self.flow(i, bus, draw);
            }
            Fuel::Purchased { carrier, price } => {
                let price = self.values(price);
                let intensity = self.case.carrier_of(carrier).co2_kg_per_kwh;
                let mut cost = Lin::new();
                let mut co2 = Lin::new();
                for (t, f) in fuel.iter().enumerate() {
                    cost.add_lin(f, price[t] * self.h);
                    co2.add_lin(f, intensity * self.h);
                }
                self.cost(i, CostCategory::Fuel, cost);
                if intensity != 0.0 {
                    self.co2.push((i, co2));
                }
            }
        }
        let mc = self.values(&th.marginal_cost);
        let cost = self.energy_sum(&p, &mc);
        self.cost(i, CostCategory::Operation, cost);
        let bus = self.bus(&th.bus);
        self.flow(i, bus, p.iter().map(|&c| Lin::term(c, 1.0)).collect());
        for t in self.steps() {
            let head = self.unit_headroom(&unit, t, 1.0);
            self.headroom[bus][t].add_lin(&head, 1.0);
        }
        unit.fuel = fuel;
        self.vars.push(AssetVars::Unit(unit));
    }

    fn converter(&mut self, i: usize, cv: &Converter) {
        let n = self.len;
        let out0 = cv.outputs.first().map_or_else(|| vec![1.0; n], |o| self.values(&o.efficiency));
        let rated_coef = match cv.rated_at {
            RatedAt::Output => out0,
            RatedAt::Input => vec![1.0; n],
        };
        let unit = self.unit(
            i,
            &UnitSpec {
                capacity_kw: cv.capacity_kw,
                min_power_kw: cv.min_power_kw,
                ramp_up: cv.ramp_up_kw_per_h,
                ramp_down: cv.ramp_down_kw_per_h,
                commitment: cv.commitment.as_ref(),
                rated_coef,
            },
        );
        let x = unit.x.clone();
        for port in &cv.inputs {
            let bus = self.bus(&port.bus);
            self.flow(i, bus, x.iter().map(|&c| Lin::term(c, -port.ratio)).collect());
        }
        for port in &cv.outputs {
            let eff = self.values(&port.efficiency);
            let bus = self.bus(&port.bus);
            self.flow(i, bus, x.iter().enumerate().map(|(t, &c)| Lin::term(c, eff[t])).collect());
            for (t, &e) in eff.iter().enumerate() {
                let scale = if unit.rated_coef[t] > 0.0 { e / unit.rated_coef[t] } else { 0.0 };
                let head = self.unit_headroom(&unit, t, scale);
                self.headroom[bus][t].add_lin(&head, 1.0);
            }
        }
        let mc = self.values(&cv.marginal_cost);
        let cost = self.energy_sum(&x, &mc);
        self.cost(i, CostCategory::Operation, cost);
        self.vars.push(AssetVars::Unit(unit));
    }

    /// `scale × (capacity × on − rated flow)`: spinning headroom of a unit.
    fn unit_headroom(&self, unit: &UnitVars, t: usize, scale: f64) -> Lin {
        let mut lin = Lin::new();
        match &unit.on {
            Some(on) => {
                lin.add(on[t], unit.capacity_kw * scale);
            }
            None => {
                lin.add_constant(unit.capacity_kw * scale);
            }
        }
        lin.add(unit.x[t], -unit.rated_coef[t] * scale);
        if let Some(trajectory) = unit.trajectory.get(t) {
            lin.add_lin(trajectory, scale);
        }
        lin
    }

    /// Columns and constraints shared by thermal units and converters:
    /// capacity, minimum power, ramps and unit commitment on the rated flow
    /// `rated_coef[t] × x[t]`.
    fn unit(&mut self, i: usize, spec: &UnitSpec<'_>) -> UnitVars {
        let n = self.len;
        let h = self.h;
        self.scope(i, "load");
        let x = self.lp.cols(n, 0.0, f64::INFINITY);
        let rated = |t: usize| Lin::term(x[t], spec.rated_coef[t]);
        let carried = self.state.assets.get(&i).copied();
        let mut unit = UnitVars {
            x: x.clone(),
            rated_coef: spec.rated_coef.clone(),
            fuel: Vec::new(),
            on: None,
            start: None,
            stop: None,
            capacity_kw: spec.capacity_kw,
            trajectory: Vec::new(),
            fleet: None,
        };
        let Some(uc) = spec.commitment else {
            for t in 0..n {
                self.lp.le(rated(t), spec.capacity_kw);
            }
            let initial = match carried {
                Some(AssetState::Unit { power_kw, .. }) => Some(power_kw),
                _ => None,
            };
            self.ramps(&x, spec, initial, None, None, &[]);
            return unit;
        };
        // Initial state: from the previous window or the case.
        let (on0, hours0, power0, starts_in) = match carried {
            Some(AssetState::Unit { power_kw, on, hours_in_state, starts_in }) => {
                (on, hours_in_state, power_kw, starts_in)
            }
            _ => {
                let on = uc.initial.on;
                let hours = uc.initial.hours_in_state.unwrap_or(f64::INFINITY);
                let power = uc.initial.power_kw.unwrap_or(if on { spec.min_power_kw.max(0.0) } else { 0.0 });
                (on, hours, power, None)
            }
        };
        // Ramps limit the output of a running unit: off, it has none of its
        // own (a trajectory's output is data).
        let power0 = if on0 { power0 } else { 0.0 };
        if let Role::Leader(size) = self.roles[i] {
            let (u, v, w) = self.fleet_commitment(i, spec, uc, &x, size, (on0, hours0));
            let fleet = self.fleets.iter().find(|f| f.members[0] == i);
            unit.fleet = fleet.map(|f| FleetVars { members: f.members.clone(), initial: (on0, hours0) });
            unit.on = Some(u);
            unit.start = Some(v);
            unit.stop = Some(w);
            return unit;
        }
        self.scope(i, "on");
        let u: Vec<Col> = (0..n).map(|_| self.lp.binary()).collect();
        self.scope(i, "start");
        let v = self.lp.cols(n, 0.0, 1.0);
        self.scope(i, "stop");
        let w = self.lp.cols(n, 0.0, 1.0);
        self.scope(i, "commitment");
        let after = self.terminal.and_then(|t| t.starts_after.get(&i).copied());
        let trajectory = self.trajectory(uc, &v, &w, (on0, hours0), (starts_in, after));
        let switching = Switching { on: &u, start: &v, stop: &w, size: 1.0, trajectory: &trajectory };
        self.commitment_rows(i, spec, uc, &x, &switching, (on0, hours0));
        for t in 0..n {
            // A start needs the unit off before and on after: with `u`
            // integral this makes `v` and `w` integral too. (Without it, a
            // running unit could take a sliver of a start and a stop at
            // once, whose start-up ramp allowance a ramp-limited unit buys
            // for a sliver of their costs.)
            let before = if t == 0 { Lin::constant(if on0 { 1.0 } else { 0.0 }) } else { Lin::term(u[t - 1], 1.0) };
            self.lp.le(Lin::term(v[t], 1.0).with_lin(&before, 1.0), 1.0);
            self.lp.le(Lin::term(v[t], 1.0).with(u[t], -1.0), 0.0);
        }
        // A start after a longer time off costs more than the hot one the
        // rows above price: each tier adds its increment over the one below
        // to a start that has been off at least its lookback.
        let mut below = uc.start_cost;
        for (after, cost) in uc.start_tiers() {
            let extra = cost - below;
            below = below.max(cost);
            let lookback = steps_covering(after, h).max(1);
            if extra <= 0.0 {
                continue;
            }
            let tier_cost = if self.tight_starts {
                self.warm_starts(i, (&v, &w), extra, lookback, (on0, hours0))
            } else {
                self.cold_starts(&u, &v, extra, lookback, (on0, hours0))
            };
            self.cost(i, CostCategory::Startup, tier_cost);
        }
        self.ramps(&x, spec, Some(power0), Some(on0), Some((&u, &v, &w)), &trajectory);
        unit.trajectory = trajectory;
        unit.on = Some(u);
        unit.start = Some(v);
        unit.stop = Some(w);
        unit
    }

    /// A tier's increment `extra` in the compact form: `c[t] ≥ extra × (v[t]
    /// − Σ u)` over the `lookback` steps before `t`, the steps before the
    /// window from the initial state (on for `hours0`, then off, or the
    /// reverse) summed into a constant. Returns the tier's cost.
    fn cold_starts(&mut self, u: &[Col], v: &[Col], extra: f64, lookback: usize, (on0, hours0): (bool, f64)) -> Lin {
        // The steps just before the window that were in the initial state.
        let in_state = if hours0.is_finite() { ((hours0 + 1e-9) / self.h).floor() as usize } else { usize::MAX };
        // How many of the `k` steps just before the window the unit was on.
        let on_before = |k: usize| if on0 { k.min(in_state) } else { k - k.min(in_state) };
        let mut cost = Lin::new();
        for t in 0..self.len {
            let c = self.lp.col(0.0, f64::INFINITY);
            let mut lin = Lin::term(c, 1.0).with(v[t], -extra);
            for k in 1..=lookback.min(t) {
                lin.add(u[t - k], extra);
            }
            let before = on_before(lookback.saturating_sub(t));
            if before > 0 {
                lin.add_constant(extra * before as f64);
            }
            self.lp.ge(lin, 0.0);
            cost.add(c, 1.0);
        }
        cost
    }

    /// A tier's increment `extra` in the tight form of start-up types: a
    /// start is below the tier (`warm[t]`) only if the unit stopped within
    /// the `lookback` steps before it but the last, in the window or before
    /// it (off for `hours0` when the window starts). Returns the tier's cost.
    fn warm_starts(
        &mut self,
        i: usize,
        (v, w): (&[Col], &[Col]),
        extra: f64,
        lookback: usize,
        (on0, hours0): (bool, f64),
    ) -> Lin {
        // Stopped this many steps before the window's first step.
        let off_steps = (!on0 && hours0.is_finite()).then(|| (hours0 / self.h + 1e-9).floor() as usize);
        self.scope(i, "warm");
        let mut cost = Lin::new();
        for t in 0..self.len {
            let warm = self.lp.col(0.0, 1.0);
            self.lp.le(Lin::term(warm, 1.0).with(v[t], -1.0), 0.0);
            let mut stops = Lin::term(warm, 1.0);
            for k in 1..lookback.min(t + 1) {
                stops.add(w[t - k], -1.0);
            }
            if off_steps.is_some_and(|m| t.saturating_add(m) < lookback) {
                stops.add_constant(-1.0);
            }
            self.lp.le(stops, 0.0);
            cost.add(v[t], extra).add(warm, -extra);
        }
        self.scope(i, "commitment");
        cost
    }

    /// The rows a unit and an aggregated fleet share on their commitment
    /// (see [`Switching`]): capacity and minimum power of what runs, the
    /// transitions from the initial state `(on0, hours0)`, minimum up and
    /// down times longer than a step, the steps the initial state forces,
    /// and the start-up and shut-down costs.
    fn commitment_rows(
        &mut self,
        i: usize,
        spec: &UnitSpec<'_>,
        uc: &Commitment,
        x: &[Col],
        sw: &Switching<'_>,
        (on0, hours0): (bool, f64),
    ) {
        let (n, h, all) = (self.len, self.h, sw.size);
        let (u, v, w, trajectory) = (sw.on, sw.start, sw.stop, sw.trajectory);
        for t in 0..n {
            // The output of the running unit: the rated flow less what a
            // trajectory gives.
            let mut rated = Lin::term(x[t], spec.rated_coef[t]);
            if let Some(trajectory) = trajectory.get(t) {
                rated.add_lin(trajectory, -1.0);
            }
            self.lp.le(rated.clone().with(u[t], -spec.capacity_kw), 0.0);
            if spec.min_power_kw > 0.0 {
                self.lp.ge(rated.with(u[t], -spec.min_power_kw), 0.0);
            }
            let mut lin = Lin::term(u[t], 1.0).with(v[t], -1.0).with(w[t], 1.0);
            if t == 0 {
                lin.add_constant(if on0 { -all } else { 0.0 });
            } else {
                lin.add(u[t - 1], -1.0);
            }
            self.lp.eq(lin, 0.0);
        }
        // What started within the up time is on; what stopped within the
        // down time is off.
        let steps = |hours: f64| steps_covering(hours, h);
        let min_off_h = uc.min_off_h(h);
        let (up, down) = (steps(uc.min_up_h), steps(min_off_h));
        for t in 0..n {
            if up > 1 {
                let mut lin = Lin::term(u[t], -1.0);
                for &start in &v[t.saturating_sub(up - 1)..=t] {
                    lin.add(start, 1.0);
                }
                self.lp.le(lin, 0.0);
            }
            if down > 1 {
                let mut lin = Lin::term(u[t], 1.0);
                for &stop in &w[t.saturating_sub(down - 1)..=t] {
                    lin.add(stop, 1.0);
                }
                self.lp.le(lin, all);
            }
        }
        // The initial state's remaining minimum time.
        let must = |min_h: f64| {
            if hours0.is_finite() && hours0 < min_h { steps(min_h - hours0).min(n) } else { 0 }
        };
        let forced = if on0 { must(uc.min_up_h) } else { must(min_off_h) };
        for &col in u.iter().take(forced) {
            self.lp.eq(Lin::term(col, 1.0), if on0 { all } else { 0.0 });
        }
        let mut cost = Lin::new();
        for t in 0..n {
            cost.add(v[t], uc.start_cost).add(w[t], uc.shutdown_cost);
        }
        self.cost(i, CostCategory::Startup, cost);
    }

    /// A unit's output on its start-up and shut-down trajectories, per step
    /// (Morales-España, Gentile and Ramos, 2013): a start at step `s` gives
    /// the start-up trajectory in the steps just before `s`, a stop at `τ`
    /// the shut-down trajectory from `τ` on, and a shut-down under way
    /// before the window goes on. Empty for a unit without trajectories.
    /// A start whose start-up would have begun before the window is ruled
    /// out, unless it is the one under way (`starts_in`), which is made; a
    /// start `starts_after` steps after the window gives its start-up in
    /// the window's last steps. The minimum time off
    /// (`Commitment::min_off_h`) keeps the trajectories to steps where the
    /// unit is off.
    fn trajectory(
        &mut self,
        uc: &Commitment,
        v: &[Col],
        w: &[Col],
        (on0, hours0): (bool, f64),
        (starts_in, starts_after): (Option<usize>, Option<usize>),
    ) -> Vec<Lin> {
        if !uc.has_trajectories() {
            return Vec::new();
        }
        let (up, down) = (&uc.startup_trajectory_kw, &uc.shutdown_trajectory_kw);
        let mut out = vec![Lin::new(); self.len];
        for (t, lin) in out.iter_mut().enumerate() {
            for (k, &kw) in up.iter().rev().enumerate() {
                // The (k+1)-th step before a start.
                if let Some(&start) = v.get(t + k + 1)
                    && kw != 0.0
                {
                    lin.add(start, kw);
                }
            }
            for (j, &kw) in down.iter().enumerate().take(t + 1) {
                if kw != 0.0 {
                    lin.add(w[t - j], kw);
                }
            }
        }
        if let Some(after) = starts_after {
            // A start at step `len + after` of the window, were it longer.
            let at = self.len + after;
            for (k, &kw) in up.iter().rev().enumerate() {
                if let Some(t) = at.checked_sub(k + 1).filter(|&t| t < self.len) {
                    out[t].add_constant(kw);
                }
            }
        }
        if !on0 && hours0.is_finite() {
            // Stopped this many steps before the window.
            let since = (hours0 / self.h).round();
            for (t, lin) in out.iter_mut().enumerate() {
                let at = since + t as f64;
                if at < down.len() as f64 {
                    lin.add_constant(down[at as usize]);
                }
            }
        }
        for (s, &start) in v.iter().enumerate().take(up.len()) {
            self.lp.eq(Lin::term(start, 1.0), if starts_in == Some(s) { 1.0 } else { 0.0 });
        }
        out
    }

    /// The commitment of an aggregated fleet of `size` identical units
    /// without ramp limits (see [`crate::fleet`]): per step, integers for
    /// the units on and started, the units stopped, and the matching of
    /// stops to the starts they keep warm. Returns `(on, start, stop)`.
    fn fleet_commitment(
        &mut self,
        i: usize,
        spec: &UnitSpec<'_>,
        uc: &Commitment,
        x: &[Col],
        size: u32,
        (on0, hours0): (bool, f64),
    ) -> (Vec<Col>, Vec<Col>, Vec<Col>) {
        let (n, h) = (self.len, self.h);
        let all = f64::from(size);
        self.scope(i, "on");
        let u: Vec<Col> = (0..n).map(|_| self.lp.integer(size)).collect();
        self.scope(i, "start");
        let v: Vec<Col> = (0..n).map(|_| self.lp.integer(size)).collect();
        self.scope(i, "stop");
        let w = self.lp.cols(n, 0.0, all);
        self.scope(i, "commitment");
        let switching = Switching { on: &u, start: &v, stop: &w, size: all, trajectory: &[] };
        self.commitment_rows(i, spec, uc, x, &switching, (on0, hours0));
        // A unit does not start and stop at once: units started are on,
        // units stopped are off, for at least the step (longer minimum
        // times have their rows above).
        let steps = |hours: f64| steps_covering(hours, h);
        let up = steps(uc.min_up_h).max(1);
        let down = steps(uc.min_down_h).max(1);
        for t in 0..n {
            if up == 1 {
                self.lp.le(Lin::term(v[t], 1.0).with(u[t], -1.0), 0.0);
            }
            if down == 1 {
                self.lp.le(Lin::term(u[t], 1.0).with(w[t], 1.0), all);
            }
        }
        if let (Some(cold), Some(after)) = (uc.cold_start_cost, uc.cold_start_after_h) {
            let extra = cold - uc.start_cost;
            let lookback = steps(after).max(1);
            if extra > 0.0 {
                // warm(k): a start at t matched to a stop at τ, within
                // t − lookback < τ ≤ t − down; each stop serves one start.
                self.scope(i, "warm");
                let mut served = vec![Lin::new(); n];
                let mut initial = Lin::new();
                let mut cold_cost = Lin::new();
                for (t, &starts) in v.iter().enumerate() {
                    let mut warm = Lin::new();
                    if t >= down {
                        for stops in served.iter_mut().take(t + 1 - down).skip((t + 1).saturating_sub(lookback)) {
                            let m = self.lp.col(0.0, all);
                            warm.add(m, 1.0);
                            stops.add(m, 1.0);
                        }
                    }
                    // Units off since before the window, still warm.
                    if !on0 && hours0 + t as f64 * h + 1e-9 < lookback as f64 * h {
                        let m = self.lp.col(0.0, all);
                        warm.add(m, 1.0);
                        initial.add(m, 1.0);
                    }
                    if warm.is_empty() {
                        cold_cost.add(starts, extra);
                        continue;
                    }
                    // cold[t] ≥ extra × (starts − warm matches)
                    let c = self.lp.col(0.0, f64::INFINITY);
                    self.lp.ge(Lin::term(c, 1.0).with(starts, -extra).with_lin(&warm, extra), 0.0);
                    cold_cost.add(c, 1.0);
                }
                for (tau, lin) in served.into_iter().enumerate() {
                    if !lin.is_empty() {
                        self.lp.le(lin.with(w[tau], -1.0), 0.0);
                    }
                }
                if !initial.is_empty() {
                    self.lp.le(initial, all);
                }
                self.cost(i, CostCategory::Startup, cold_cost);
            }
        }
        (u, v, w)
    }

    /// Orders the units of each fleet kept apart (with ramp limits) by
    /// hours on, so that the solver does not explore their permutations.
    fn order_fleets(&mut self) {
        let on = |vars: &AssetVars| match vars {
            AssetVars::Unit(UnitVars { on: Some(on), .. }) => Some(on.clone()),
            AssetVars::Unit(_)
            | AssetVars::Load { .. }
            | AssetVars::Renewable { .. }
            | AssetVars::Member
            | AssetVars::Grid { .. }
            | AssetVars::Storage { .. } => None,
        };
        let pairs: Vec<(usize, usize)> = self
            .fleets
            .iter()
            .filter(|f| !f.aggregated)
            .flat_map(|f| f.members.windows(2).map(|p| (p[0], p[1])).collect::<Vec<_>>())
            .collect();
        for (a, b) in pairs {
            let (Some(first), Some(second)) = (on(&self.vars[a]), on(&self.vars[b])) else { continue };
            self.scope(a, "fleet_order");
            let mut lin = Lin::new();
            for (&x, &y) in first.iter().zip(&second) {
                lin.add(y, 1.0).add(x, -1.0);
            }
            self.lp.le(lin, 0.0);
        }
    }

    /// Ramp limits on the rated flow; with commitment, a start may jump to
    /// the larger of the minimum power and the ramp.
    fn ramps(
        &mut self,
        x: &[Col],
        spec: &UnitSpec<'_>,
        initial_power: Option<f64>,
        initial_on: Option<bool>,
        uc: Option<(&[Col], &[Col], &[Col])>,
        trajectory: &[Lin],
    ) {
        let h = self.h;
        // The output of the running unit (see `commitment_rows`).
        let rated = |t: usize| {
            let mut lin = Lin::term(x[t], spec.rated_coef[t]);
            if let Some(trajectory) = trajectory.get(t) {
                lin.add_lin(trajectory, -1.0);
            }
            lin
        };
        for t in 0..self.len {
            let prev = if t == 0 {
                match initial_power {
                    Some(p) => Lin::constant(p),
                    None => continue,
                }
            } else {
                rated(t - 1)
            };
            if let Some(ru) = spec.ramp_up {
                let mut lin = rated(t).with_lin(&prev, -1.0);
                match uc {
                    Some((u, v, _)) => {
                        let su = spec.min_power_kw.max(ru * h);
                        if t == 0 {
                            lin.add_constant(if initial_on == Some(true) { -ru * h } else { 0.0 });
                        } else {
                            lin.add(u[t - 1], -ru * h);
                        }
                        lin.add(v[t], -su);
                        self.lp.le(lin, 0.0);
                    }
                    None => {
                        self.lp.le(lin, ru * h);
                    }
                }
            }
            if let Some(rd) = spec.ramp_down {
                let mut lin = prev.clone().with_lin(&rated(t), -1.0);
                match uc {
                    Some((u, _, w)) => {
                        let sd = spec.min_power_kw.max(rd * h);
                        lin.add(u[t], -rd * h).add(w[t], -sd);
                        self.lp.le(lin, 0.0);
                    }
                    None => {
                        self.lp.le(lin, rd * h);
                    }
                }
            }
        }
    }

    /// Holds the window's last steps to `terminal`.
    fn hold_terminal(&mut self, terminal: &Terminal) {
        let Some(last) = self.len.checked_sub(1) else { return };
        for (&i, &level) in &terminal.storage {
            if let Some(AssetVars::Storage { energy, .. }) = self.vars.get(i) {
                self.lp.eq(Lin::term(energy[last], 1.0), level);
            }
        }
        for (&i, states) in &terminal.on {
            if let Some(AssetVars::Unit(UnitVars { on: Some(u), fleet: None, .. })) = self.vars.get(i) {
                let held = states.len().min(u.len());
                let tail = u[u.len() - held..].iter().zip(&states[states.len() - held..]);
                for (&col, &on) in tail {
                    self.lp.eq(Lin::term(col, 1.0), if on { 1.0 } else { 0.0 });
                }
            }
        }
        for (&i, &power) in &terminal.power {
            if let Some(AssetVars::Unit(UnitVars { x, rated_coef, fleet: None, .. })) = self.vars.get(i) {
                self.lp.eq(Lin::term(x[last], rated_coef[last]), power);
            }
        }
    }

    fn grid(&mut self, i: usize, g: &Grid) {
        let n = self.len;
        let import_limit = g.import_limit_kw.as_ref().map_or_else(|| vec![f64::INFINITY; n], |p| self.values(p));
        let export_limit = self.values(&g.export_limit_kw);
        self.scope(i, "import");
        let import: Vec<Col> = import_limit.iter().map(|&l| self.lp.col(0.0, l)).collect();
        self.scope(i, "export");
        let export: Vec<Col> = export_limit.iter().map(|&l| self.lp.col(0.0, l)).collect();
        self.scope(i, "peak");
        let ip = self.values(&g.import_price);
        let ep = self.values(&g.export_price);
        let cost = self.energy_sum(&import, &ip);
        self.cost(i, CostCategory::Import, cost);
        let revenue = self.energy_sum(&export, &ep.iter().map(|p| -p).collect::<Vec<_>>());
        self.cost(i, CostCategory::Export, revenue);
        let intensity = match &g.co2_kg_per_kwh {
            Some(p) => self.values(p),
            None => {
                let c = self.case.carrier_of_bus(&g.bus).co2_kg_per_kwh;
                vec![c; n]
            }
        };
        if intensity.iter().any(|&c| c != 0.0) {
            let co2 = self.energy_sum(&import, &intensity);
            self.co2.push((i, co2));
        }
        if g.peak_demand_charge > 0.0 {
            let floor = match self.state.assets.get(&i) {
                Some(AssetState::Grid { peak_kw }) => *peak_kw,
                _ => 0.0,
            };
            let peak = self.lp.col(floor, f64::INFINITY);
            for &c in &import {
                self.lp.ge(Lin::term(peak, 1.0).with(c, -1.0), 0.0);
            }
            self.cost(i, CostCategory::DemandCharge, Lin::term(peak, g.peak_demand_charge));
        }
        let bus = self.bus(&g.bus);
        let net = (0..n).map(|t| Lin::term(import[t], 1.0).with(export[t], -1.0)).collect();
        self.flow(i, bus, net);
        self.vars.push(AssetVars::Grid { import, export });
    }

    fn storage(&mut self, i: usize, s: &Storage) {
        let n = self.len;
        let h = self.h;
        let cap = s.energy_capacity_kwh;
        let (charge_max, discharge_max) = (s.charge_limit_kw(), s.discharge_limit_kw());
        self.scope(i, "charge");
        let charge = self.lp.cols(n, 0.0, charge_max);
        self.scope(i, "discharge");
        let discharge = self.lp.cols(n, 0.0, discharge_max);
        self.scope(i, "energy");
        let energy = self.lp.cols(n, s.soc_min * cap, s.soc_max * cap);
        // A periodic store over the whole case starts where the optimiser
        // chooses, and ends there.
        let periodic = s.final_soc == FinalState::Periodic && self.start == 0 && self.reaches_end;
        let initial = match self.state.assets.get(&i) {
            Some(AssetState::Storage { energy_kwh }) => Lin::constant(*energy_kwh),
            _ if periodic => {
                self.scope(i, "initial");
                Lin::term(self.lp.col(s.soc_min * cap, s.soc_max * cap), 1.0)
            }
            _ => Lin::constant(s.initial_soc * cap),
        };
        self.scope(i, "storage");
        let keep = (1.0 - s.standing_loss_per_h).powf(h);
        for t in 0..n {
            let mut lin = Lin::term(energy[t], 1.0)
                .with(charge[t], -s.charge_efficiency * h)
                .with(discharge[t], h / s.discharge_efficiency);
            if t == 0 {
                lin.add_lin(&initial, -s.initial_keep(h));
            } else {
                lin.add(energy[t - 1], -keep);
            }
            self.lp.eq(lin, 0.0);
            if s.no_simultaneous {
                let z = self.lp.binary();
                self.lp.le(Lin::term(charge[t], 1.0).with(z, -charge_max), 0.0);
                self.lp.le(Lin::term(discharge[t], 1.0).with(z, discharge_max), discharge_max);
            }
        }
        if self.reaches_end && n > 0 {
            // The end condition, as `energy[n−1] − target ⋚ 0`.
            let target = match s.final_soc {
                FinalState::Free => None,
                FinalState::Cyclic => Some((Lin::constant(s.initial_soc * cap), true)),
                FinalState::Periodic if periodic => Some((initial.clone(), true)),
                FinalState::Periodic => None,
                FinalState::AtLeast(f) => Some((Lin::constant(f * cap), false)),
            };
            if let Some((target, equal)) = target {
                let mut lin = Lin::term(energy[n - 1], 1.0).with_lin(&target, -1.0);
                if let Some((short, surplus)) = self.elastic_pair() {
                    lin.add(short, 1.0);
                    self.slacks.push(Slack::StorageEnd { asset: i, col: short });
                    if equal {
                        lin.add(surplus, -1.0);
                        self.slacks.push(Slack::StorageEnd { asset: i, col: surplus });
                    }
                }
                if equal {
                    self.lp.eq(lin, 0.0);
                } else {
                    self.lp.ge(lin, 0.0);
                }
            }
        }
        if s.cycle_cost > 0.0 {
            let cost = self.energy_sum(&discharge, &vec![s.cycle_cost; n]);
            self.cost(i, CostCategory::Wear, cost);
        }
        let bus = self.bus(&s.bus);
        self.flow(i, bus, (0..n).map(|t| Lin::term(discharge[t], 1.0).with(charge[t], -1.0)).collect());
        // Reserve headroom, only where a reserve is required: more discharge
        // or less charge, for as long as the energy left after the step's
        // own schedule lasts.
        if self.case.reserves().iter().any(|r| self.bus(&r.bus) == bus) {
            for t in 0..n {
                let r = self.lp.col(0.0, f64::INFINITY);
                self.lp.le(Lin::term(r, 1.0).with(discharge[t], 1.0).with(charge[t], -1.0), discharge_max);
                let lin = Lin::term(r, h / s.discharge_efficiency).with(energy[t], -1.0);
                self.lp.le(lin, -s.soc_min * cap);
                self.headroom[bus][t].add(r, 1.0);
            }
        }
        self.vars.push(AssetVars::Storage { charge, discharge, energy, initial });
    }

    fn reserves(&mut self) {
        for reserve in self.case.reserves() {
            let bus = self.bus(&reserve.bus);
            self.lp.scope(&format!("{}.reserve", reserve.bus));
            let requirement = self.values(&reserve.requirement_kw);
            let mut demand = vec![0.0; self.len];
            if reserve.load_share > 0.0 {
                for asset in self.case.assets() {
                    if let AssetKind::Load(load) = &asset.kind
                        && self.bus(&load.bus) == bus
                    {
                        for (t, d) in self.values(&load.demand_kw).into_iter().enumerate() {
                            demand[t] += d;
                        }
                    }
                }
            }
            for t in 0..self.len {
                let mut lin = self.headroom[bus][t].clone();
                if self.mode == Mode::Elastic {
                    let short = self.lp.col(0.0, f64::INFINITY);
                    lin.add(short, 1.0);
                    self.slacks.push(Slack::Reserve { bus, t, col: short });
                }
                self.lp.ge(lin, requirement[t] + reserve.load_share * demand[t]);
            }
        }
    }

    fn finish(mut self) -> Model {
        let buses = self.case.buses().len();
        let voll = self.case.settings().value_of_lost_load;
        let mut unserved = vec![None; buses];
        let mut balance_rows = Vec::with_capacity(buses);
        let balance = std::mem::take(&mut self.balance);
        for (b, rows) in balance.into_iter().enumerate() {
            let mut bus_rows = Vec::with_capacity(self.len);
            let bus_id = self.case.buses().get(b).map_or_else(|| format!("bus{b}"), |bus| bus.id.to_string());
            self.lp.scope(&format!("{bus_id}.balance"));
            let slack_cols = voll.map(|_| self.lp.cols(self.len, 0.0, f64::INFINITY));
            for (t, mut lin) in rows.into_iter().enumerate() {
                if let Some(cols) = &slack_cols {
                    lin.add(cols[t], 1.0);
                }
                if let Some((short, surplus)) = self.elastic_pair() {
                    lin.add(short, 1.0).add(surplus, -1.0);
                    self.slacks.push(Slack::Short { bus: b, t, col: short });
                    self.slacks.push(Slack::Surplus { bus: b, t, col: surplus });
                }
                bus_rows.push(self.lp.eq(lin, 0.0));
            }
            if let (Some(cols), Some(voll)) = (&slack_cols, voll) {
                let mut cost = Lin::new();
                for &c in cols {
                    cost.add(c, voll * self.h);
                    self.lost_load_kwh.add(c, self.h);
                }
                self.costs.push(CostTerm { asset: None, category: CostCategory::Unserved, lin: cost });
            }
            unserved[b] = slack_cols;
            balance_rows.push(bus_rows);
        }
        self.flows.resize_with(self.case.assets().len(), Vec::new);
        Model {
            lp: self.lp,
            start: self.start,
            len: self.len,
            h: self.h,
            flows: self.flows,
            vars: self.vars,
            balance_rows,
            unserved,
            costs: self.costs,
            co2: self.co2,
            lost_load_kwh: self.lost_load_kwh,
            slacks: self.slacks,
        }
    }
}

/// A commitment's columns per step: the units running, started and
/// stopped, of `size` units (a unit's binaries, size 1, or an aggregated
/// fleet's counts), and what its start-up and shut-down trajectories give
/// per step (empty without them; see [`Builder::trajectory`]).
struct Switching<'a> {
    on: &'a [Col],
    start: &'a [Col],
    stop: &'a [Col],
    size: f64,
    trajectory: &'a [Lin],
}

/// What [`Builder::unit`] needs to know about a unit.
struct UnitSpec<'a> {
    capacity_kw: f64,
    min_power_kw: f64,
    ramp_up: Option<f64>,
    ramp_down: Option<f64>,
    commitment: Option<&'a Commitment>,
    rated_coef: Vec<f64>,
}

/// The number of steps of `h` hours that a duration of `hours` needs (at
/// least the duration; 0 for none): how minimum up/down and cold-start
/// times become step counts.
pub(crate) fn steps_covering(hours: f64, h: f64) -> usize {
    if hours > 0.0 { (hours / h - 1e-9).ceil() as usize } else { 0 }
}

/// The `(slope, intercept)` of each segment of a convex fuel curve.
pub(crate) fn segments(points: &[[f64; 2]]) -> Vec<(f64, f64)> {
    points
        .windows(2)
        .filter(|w| w[1][0] > w[0][0])
        .map(|w| {
            let slope = (w[1][1] - w[0][1]) / (w[1][0] - w[0][0]);
            (slope, w[0][1] - slope * w[0][0])
        })
        .collect()
}
