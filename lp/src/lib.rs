//! Volta's one modelling layer for linear and mixed-integer programs, used
//! by dispatch (plant schedules) and the market (welfare clearing).
//!
//! - [`model`]: columns, affine expressions and constraints that Volta can
//!   evaluate itself, and their hand-over to HiGHS through good_lp;
//! - [`solve`]: running HiGHS and reading back what it found: the outcome
//!   (optimal, within the gap, a limit reached, infeasible, unbounded), the
//!   objective, the MIP's dual bound and gap, the columns and the row duals;
//!   a MIP may start from a partial assignment ([`solve_from`]).
//!
//! Solving goes through the `highs` model good_lp builds rather than
//! good_lp's own `solve`, which folds memory, iteration and interrupt stops
//! into one "time limit", turns a time limit without an incumbent into an
//! error and hides the MIP's dual bound.

pub mod model;
pub mod solve;

pub use model::{Col, Integrality, Lin, Lp, Row, Sense};
pub use solve::{LpMethod, Outcome, Settings, Solution, Strategy, solve, solve_from};
