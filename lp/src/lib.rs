//! Volta's one modelling layer for linear and mixed-integer programs, used
//! by dispatch (plant schedules) and the market (welfare clearing).
//!
//! - [`model`]: columns, affine expressions and constraints that Volta can
//!   evaluate itself, and their hand-over to HiGHS;
//! - [`solve`](mod@solve): running HiGHS and reading back what it found: the outcome
//!   (optimal, within the gap, a limit reached, infeasible, unbounded), the
//!   objective, the MIP's dual bound and gap, the columns and the row duals;
//!   a MIP may start from a partial assignment ([`solve_from`]), and a
//!   relaxation be solved again with its integer columns fixed, at one
//!   choice of values after another, from its basis
//!   ([`solve_relaxed_then_fixed`]).
//!
//! Problems go to HiGHS through the `highs` crate's model, built here
//! column by column and row by row (a modelling layer such as good_lp
//! would rebuild every row as a hash map of terms, and its `solve` folds
//! memory, iteration and interrupt stops into one "time limit" and hides
//! the MIP's dual bound), so that a solved model can also be changed and
//! solved again from its basis ([`solve_relaxed_then_fixed`]).

pub mod model;
pub mod solve;

pub use model::{Col, Integrality, Lin, Lp, Row, Sense};
pub use solve::{
    LpMethod, Outcome, RelaxedThenFixed, Settings, Solution, Strategy, solve, solve_from, solve_relaxed_then_fixed,
};
