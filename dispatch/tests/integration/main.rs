//! Integration tests of volta-dispatch: published optima, each asset class
//! solved by hand, invariants, every status, prices and infeasibility
//! explanations.

mod assets;
mod golden;
mod horizons;
mod invariants;
mod statuses;
mod support;
