//! The terms documented in docs/contracts.md read and check as written.

use volta_contracts::Terms;
use volta_contracts::terms::{PenaltyBase, Shape};

#[test]
fn the_documented_terms_read_and_check() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/contracts.md");
    let text = std::fs::read_to_string(path).expect("docs/contracts.md");
    let block = text
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a TOML block in docs/contracts.md");
    let terms: Terms = toml::from_str(block).unwrap_or_else(|e| panic!("the documented terms do not read: {e}"));
    terms.check().unwrap_or_else(|e| panic!("the documented terms do not check: {e}"));
    let table = terms.tou().expect("a TOU table");
    assert_eq!(table.periods.len(), 2);
    assert_eq!(table.tiers.len(), 1);
    assert!(matches!(terms.shape, Shape::ByTouPeriod { .. }));
    assert!(matches!(terms.penalty.as_ref().map(|p| &p.base), Some(PenaltyBase::Spread { index }) if index == "spot"));
}
