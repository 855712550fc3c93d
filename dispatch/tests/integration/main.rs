//! Integration tests of volta-dispatch: published optima, each asset class
//! solved by hand, invariants, every status, prices and infeasibility
//! explanations, two-stage stochastic plans.

mod assets;
mod decomposition;
mod fleets;
mod golden;
mod horizons;
mod invariants;
mod start_costs;
mod statuses;
mod stochastic;
mod strategy;
mod support;
mod trajectories;
