//! Integration tests of volta-dispatch: published optima, invariants,
//! statuses, prices and infeasibility explanations.

mod golden;
mod horizons;
mod infeasible;
mod invariants;
mod support;
