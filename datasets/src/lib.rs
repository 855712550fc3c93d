//! Volta's real datasets and example cases, by path.
//!
//! The files themselves live beside this crate (`datasets/raw`,
//! `datasets/cases`); `datasets/README.md` gives their provenance, licence
//! and checksums. Tests, benches and examples find them through these
//! functions, so that they run from any working directory.

use std::path::PathBuf;

pub mod derive;
pub mod portfolio;

/// The `datasets/` directory.
#[must_use]
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A raw data file, e.g. `raw("vic_elecdemand_2014_halfhourly.csv")`.
#[must_use]
pub fn raw(name: &str) -> PathBuf {
    root().join("raw").join(name)
}

/// An example case, e.g. `case("campus.toml")`.
#[must_use]
pub fn case(name: &str) -> PathBuf {
    root().join("cases").join(name)
}

/// The deliberately broken cases and their expected messages.
#[must_use]
pub fn invalid_cases() -> PathBuf {
    root().join("cases").join("invalid")
}

/// The small generated contract portfolio (8 contracts, April 2024, seed 7).
#[must_use]
pub fn small_portfolio() -> PathBuf {
    root().join("contracts").join("small")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_committed_small_portfolio_matches_a_fresh_generation() {
        let dir = std::env::temp_dir().join(format!("volta-portfolio-{}", std::process::id()));
        let spec = super::portfolio::Spec {
            contracts: 8,
            first: jiff::civil::date(2024, 4, 1),
            last: jiff::civil::date(2024, 4, 30),
            seed: 7,
        };
        let summary = super::portfolio::generate(&spec, &dir).expect("generates");
        for name in summary.files.iter().map(String::as_str).chain(["portfolio.toml", "spot.csv"]) {
            let fresh = std::fs::read_to_string(dir.join(name)).expect("fresh");
            let committed = std::fs::read_to_string(super::small_portfolio().join(name)).expect("committed");
            assert!(
                fresh == committed,
                "{name} differs: run `cargo run -p volta-datasets --bin contract-portfolio -- datasets/contracts/small 8 2024-04-01 2024-04-30 7`"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn committed_profiles_match_a_fresh_derivation() {
        for (name, text) in super::derive::profiles().expect("derives") {
            let committed = std::fs::read_to_string(super::case(name)).expect("committed file");
            assert!(
                committed == text,
                "{name} differs from a fresh derivation: run `cargo run -p volta-datasets --bin derive-profiles`"
            );
        }
    }
}
