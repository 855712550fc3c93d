//! Volta's real datasets and example cases, by path.
//!
//! The files themselves live beside this crate (`datasets/raw`,
//! `datasets/cases`); `datasets/README.md` gives their provenance, licence
//! and checksums. Tests, benches and examples find them through these
//! functions, so that they run from any working directory.

use std::path::PathBuf;

pub mod derive;

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

#[cfg(test)]
mod tests {
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
