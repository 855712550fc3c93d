//! Derives the example cases' profile files from the raw datasets.
//!
//! ```text
//! cargo run -p volta-datasets --bin derive-profiles
//! ```
//!
//! Writes `datasets/cases/campus_profiles.csv` and
//! `datasets/cases/islanded_profiles.csv` (see `volta_datasets::derive`).

use anyhow::{Context, Result};

fn main() -> Result<()> {
    for (name, text) in volta_datasets::derive::profiles()? {
        let path = volta_datasets::case(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
