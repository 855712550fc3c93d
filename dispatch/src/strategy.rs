//! How HiGHS goes about a problem: the LP algorithm, presolve, the effort
//! a MIP spends on primal heuristics and where its search starts, chosen
//! by the problem's class and overridable part by part.
//!
//! Every part a caller leaves unset is Volta's choice for the problem at
//! hand ([`Strategy::resolve`]); a solve reports what it used
//! ([`SolveStats::strategy`](crate::SolveStats::strategy)). The choices are
//! HiGHS's own defaults except where a measurement on the benchmark set
//! (`benches/src/bin/solver-strategy.rs`, numbers in the README) showed
//! another one faster on that class of problem without changing its
//! optimum. Every strategy solves the same problem: the optimum, and
//! within the gap the objective, are the same; a MIP within its gap may
//! land on another schedule of (nearly) the same cost.

use serde::{Deserialize, Serialize};

use crate::error::DispatchError;

/// The algorithm for an LP, and for a MIP's root relaxation (the LPs of
/// the branch and bound are solved by the dual simplex from their parent's
/// basis whatever this says).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LpMethod {
    /// The dual simplex method.
    Simplex,
    /// The interior point method followed by a crossover to a vertex, so
    /// that duals and prices are those of a basis.
    Ipm,
}

impl LpMethod {
    const ALL: [Self; 2] = [Self::Simplex, Self::Ipm];

    /// The method called `name` (see [`Self::name`]).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|method| method.name() == name)
    }

    /// The name used in case files, on the command line and in reports.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Simplex => "simplex",
            Self::Ipm => "ipm",
        }
    }

    fn lp(self) -> volta_lp::LpMethod {
        match self {
            Self::Simplex => volta_lp::LpMethod::Simplex,
            Self::Ipm => volta_lp::LpMethod::Ipm,
        }
    }
}

/// Where a MIP's branch and bound takes a first schedule from, besides its
/// own heuristics. A rolling horizon's windows after the first start from
/// the window before (see `warm`) whatever this says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MipStart {
    /// Nothing: HiGHS's heuristics find the first schedule.
    None,
    /// The LP relaxation is solved and its commitment rounded up (as for
    /// [`MipStart::Rounding`]); when that sets every integer column, the
    /// LP with them fixed (solved again from the relaxation's basis) makes
    /// a schedule, which is the answer if the relaxation proves it within
    /// the gap. Otherwise HiGHS solves the MIP from nothing, on the path it
    /// takes without a start. Costs two LPs, small beside the MIP; saves
    /// the whole MIP where the relaxation is tight (a rolling horizon's
    /// windows on the campus).
    Check,
    /// The LP relaxation is solved first and its commitment rounded up
    /// (a unit on at any fraction, a fleet's count to the next whole
    /// number). When that sets every integer column, the LP with them
    /// fixed (solved again from the relaxation's basis) completes the
    /// schedule, and if the relaxation proves it within the gap it is the
    /// answer, with no branch and bound
    /// ([`SolveStats::proven_by_relaxation`](crate::SolveStats::proven_by_relaxation));
    /// otherwise HiGHS completes the rest (a fleet's starts, storage modes)
    /// in a small search. The search begins from the completed schedule.
    /// Costs one or two LPs.
    Rounding,
}

impl MipStart {
    const ALL: [Self; 3] = [Self::None, Self::Check, Self::Rounding];

    /// The start called `name` (see [`Self::name`]).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|start| start.name() == name)
    }

    /// The name used in case files, on the command line and in reports.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Check => "check",
            Self::Rounding => "rounding",
        }
    }
}

/// HiGHS's default share of a MIP's effort spent on primal heuristics.
pub const DEFAULT_HEURISTIC_EFFORT: f64 = 0.05;

/// The integer columns from which Volta starts a MIP from its rounded
/// relaxation ([`MipStart::Rounding`]) unless told otherwise; a smaller
/// MIP only checks it ([`MipStart::Check`]). Measured on
/// the benchmark set (one thread, the 1e-4 gap): from 1,680 to 8,736
/// integer columns the start never cost time and took 0.25 to 0.37 of it
/// on the campus over 13 and 52 weeks; below 1,000 it ranged from 0.73 to
/// 1.48 of the time without, by the search's luck more than by size, and a
/// rolling horizon's small windows (48 integer columns, solved at the
/// root) took 1.29 times as long (before the relaxation's proof, which now
/// ends 362 of the campus year's 364 windows, started or checked).
pub const ROUNDING_FROM_INTEGERS: usize = 1_000;

/// How to solve: each part unset (the default) is Volta's choice for the
/// problem's class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Strategy {
    /// The LP algorithm.
    pub lp_method: Option<LpMethod>,
    /// Whether HiGHS presolves the problem.
    pub presolve: Option<bool>,
    /// The share of a MIP's effort spent looking for better schedules by
    /// primal heuristics (RINS, RENS, feasibility pump), in [0, 1]; HiGHS's
    /// default is 0.05. Ignored for an LP.
    pub heuristic_effort: Option<f64>,
    /// Where a MIP's first schedule comes from. Ignored for an LP.
    pub mip_start: Option<MipStart>,
}

/// What a problem is, as far as choosing how to solve it goes (the
/// measurements found one rule by size: the MIP start's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Class {
    /// Integer columns (0: an LP).
    pub integers: usize,
}

impl Class {
    /// The class of a built problem: a relaxation, or a MIP with its
    /// integers fixed, is an LP.
    pub(crate) fn of(lp: &volta_lp::Lp) -> Self {
        Self { integers: if lp.is_mip() { lp.integers().len() } else { 0 } }
    }
}

/// The strategy a solve used: the caller's choices, and Volta's for what
/// the caller left open.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Resolved {
    /// The LP algorithm.
    pub lp_method: LpMethod,
    /// Whether HiGHS presolved.
    pub presolve: bool,
    /// The share of the effort on primal heuristics (none for an LP).
    pub heuristic_effort: Option<f64>,
    /// Where the first schedule came from (none for an LP).
    pub mip_start: Option<MipStart>,
}

impl Strategy {
    /// HiGHS's defaults, whatever the problem: the reference the benchmark
    /// measures Volta's choices against.
    pub const HIGHS: Self = Self {
        lp_method: Some(LpMethod::Simplex),
        presolve: Some(true),
        heuristic_effort: Some(DEFAULT_HEURISTIC_EFFORT),
        mip_start: Some(MipStart::None),
    };

    /// The strategy for a problem of `class`: the parts set here, and for
    /// the others Volta's choice for that class.
    #[must_use]
    pub fn resolve(&self, class: Class) -> Resolved {
        let auto = Self::auto(class);
        Resolved {
            lp_method: self.lp_method.unwrap_or(auto.lp_method),
            presolve: self.presolve.unwrap_or(auto.presolve),
            heuristic_effort: auto.heuristic_effort.map(|effort| self.heuristic_effort.unwrap_or(effort)),
            mip_start: auto.mip_start.map(|start| self.mip_start.unwrap_or(start)),
        }
    }

    /// Volta's choice for a problem of `class` (see the module and the
    /// README's measurements): HiGHS's defaults, but a MIP is not
    /// presolved, one of [`ROUNDING_FROM_INTEGERS`] integer columns or more
    /// starts from its rounded relaxation, and a smaller one checks it (it
    /// ends the solve if the relaxation proves it, and HiGHS's search does
    /// not see it otherwise); an LP has no heuristics and no start.
    fn auto(class: Class) -> Resolved {
        let mip = class.integers > 0;
        let start = if class.integers >= ROUNDING_FROM_INTEGERS { MipStart::Rounding } else { MipStart::Check };
        Resolved {
            lp_method: LpMethod::Simplex,
            presolve: !mip,
            heuristic_effort: mip.then_some(DEFAULT_HEURISTIC_EFFORT),
            mip_start: mip.then_some(start),
        }
    }

    /// Checks the parts that are set.
    ///
    /// # Errors
    /// A heuristic effort outside [0, 1].
    pub fn check(&self) -> Result<(), DispatchError> {
        if let Some(effort) = self.heuristic_effort
            && !(0.0..=1.0).contains(&effort)
        {
            return Err(DispatchError::Option(format!(
                "strategy.heuristic_effort must be a share of the effort in [0, 1], not {effort}"
            )));
        }
        Ok(())
    }
}

impl Resolved {
    /// What HiGHS is told.
    pub(crate) fn lp(self) -> volta_lp::Strategy {
        volta_lp::Strategy {
            lp_method: Some(self.lp_method.lp()),
            presolve: Some(self.presolve),
            heuristic_effort: self.heuristic_effort,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LP: Class = Class { integers: 0 };
    const MIP: Class = Class { integers: 100 };

    #[test]
    fn what_is_set_wins_and_an_lp_has_no_heuristics() {
        let set = Strategy {
            lp_method: Some(LpMethod::Ipm),
            presolve: Some(false),
            heuristic_effort: Some(0.3),
            mip_start: Some(MipStart::Rounding),
        };
        let resolved = set.resolve(MIP);
        assert_eq!(
            resolved,
            Resolved {
                lp_method: LpMethod::Ipm,
                presolve: false,
                heuristic_effort: Some(0.3),
                mip_start: Some(MipStart::Rounding)
            }
        );
        assert_eq!(set.resolve(LP).heuristic_effort, None);
        assert_eq!(set.resolve(LP).mip_start, None);
        let highs = Strategy::HIGHS.resolve(MIP);
        assert_eq!(highs.lp_method, LpMethod::Simplex);
        assert!(highs.presolve);
        assert_eq!(highs.heuristic_effort, Some(DEFAULT_HEURISTIC_EFFORT));
    }

    #[test]
    fn a_relaxed_or_fixed_mip_is_an_lp_and_is_presolved() {
        use volta_lp::{Integrality, Lp};
        for (integrality, integers) in
            [(Integrality::Integer, 2), (Integrality::Relaxed, 0), (Integrality::Fixed(vec![1.0, 0.0]), 0)]
        {
            let mut lp = Lp::new(integrality);
            let _ = (lp.binary(), lp.binary(), lp.col(0.0, 1.0));
            let class = Class::of(&lp);
            assert_eq!(class, Class { integers });
            let chosen = Strategy::default().resolve(class);
            assert_eq!(chosen.presolve, integers == 0, "{class:?}");
            assert_eq!(chosen.heuristic_effort.is_some(), integers > 0, "{class:?}");
            assert_eq!(chosen.mip_start.is_some(), integers > 0, "{class:?}");
        }
    }

    #[test]
    fn names_read_back_and_unknown_ones_are_none() {
        for method in LpMethod::ALL {
            assert_eq!(LpMethod::from_name(method.name()), Some(method));
        }
        for start in MipStart::ALL {
            assert_eq!(MipStart::from_name(start.name()), Some(start));
        }
        assert_eq!(LpMethod::from_name("barrier"), None);
        assert_eq!(MipStart::from_name("lp"), None);
        assert_eq!(MipStart::from_name("check"), Some(MipStart::Check));
    }

    #[test]
    fn a_large_mip_starts_from_its_rounded_relaxation() {
        let start = |integers| Strategy::default().resolve(Class { integers }).mip_start;
        assert_eq!(start(0), None);
        assert_eq!(start(1), Some(MipStart::Check));
        assert_eq!(start(ROUNDING_FROM_INTEGERS - 1), Some(MipStart::Check));
        assert_eq!(start(ROUNDING_FROM_INTEGERS), Some(MipStart::Rounding));
        let told = Strategy { mip_start: Some(MipStart::None), ..Strategy::default() };
        assert_eq!(told.resolve(Class { integers: 8_736 }).mip_start, Some(MipStart::None));
    }

    #[test]
    fn an_effort_outside_zero_to_one_is_refused_by_name() {
        for effort in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
            let error =
                Strategy { heuristic_effort: Some(effort), ..Strategy::default() }.check().expect_err("refused");
            assert!(error.to_string().contains("strategy.heuristic_effort"), "{error}");
        }
        for effort in [0.0, 0.05, 1.0] {
            Strategy { heuristic_effort: Some(effort), ..Strategy::default() }.check().expect("a share");
        }
    }

    #[test]
    fn a_strategy_reads_from_a_case_file_s_names() {
        let s: Strategy = serde_json::from_str(
            r#"{"lp_method": "ipm", "presolve": false, "heuristic_effort": 0.3, "mip_start": "rounding"}"#,
        )
        .expect("reads");
        assert_eq!(
            s,
            Strategy {
                lp_method: Some(LpMethod::Ipm),
                presolve: Some(false),
                heuristic_effort: Some(0.3),
                mip_start: Some(MipStart::Rounding)
            }
        );
        assert!(serde_json::from_str::<Strategy>(r#"{"lp": "ipm"}"#).is_err(), "unknown fields are refused");
        assert!(serde_json::from_str::<Strategy>(r#"{"lp_method": "barrier"}"#).is_err());
    }
}
