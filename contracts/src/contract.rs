//! A contract: its parties and meters, its lifecycle, and its terms as
//! versions that are only ever added.
//!
//! ```text
//! draft ─sign→ signed ─activate→ active ⇄ suspended
//!   │            │                 │         │
//!   └────────────┴──terminate──────┴─────────┴→ terminated ─settle→ settled
//! ```
//!
//! An amendment makes a new version of the terms, valid from a date after
//! the last version's; the old versions stay, so a settlement of any past
//! period reads the terms that were in force on each of its days and says
//! which version it used.

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::error::ContractError;
use crate::parties::{ContractId, MeterId, PartyId};
use crate::terms::Terms;

/// Where a contract is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Being written; terms may change freely (as new versions).
    Draft,
    /// Signed by both parties, not yet delivering.
    Signed,
    /// Delivering.
    Active,
    /// Delivery paused.
    Suspended,
    /// Ended; its last periods may still be settled.
    Terminated,
    /// Ended and finally settled.
    Settled,
}

impl State {
    /// The state's name as written in files and messages.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Signed => "signed",
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Terminated => "terminated",
            Self::Settled => "settled",
        }
    }

    /// Whether a contract in this state delivers energy on the days its
    /// terms and its termination allow: once signed, not while suspended,
    /// and an ended one up to its end.
    #[must_use]
    pub const fn delivers(self) -> bool {
        match self {
            Self::Signed | Self::Active | Self::Terminated | Self::Settled => true,
            Self::Draft | Self::Suspended => false,
        }
    }
}

/// One version of a contract's terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TermVersion {
    /// 1 for the terms it was drafted with, then 2, 3, ...
    pub version: u32,
    /// The first local date it is in force.
    pub valid_from: Date,
    /// The terms.
    pub terms: Terms,
}

/// A contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contract {
    id: ContractId,
    seller: PartyId,
    buyer: PartyId,
    meters: Vec<MeterId>,
    state: State,
    versions: Vec<TermVersion>,
    terminated_on: Option<Date>,
}

impl Contract {
    /// A draft with `terms` as version 1, in force from its first delivery day.
    ///
    /// # Errors
    /// Invalid terms (the field named), the same party on both sides, or no meter.
    pub fn draft(
        id: ContractId,
        seller: PartyId,
        buyer: PartyId,
        meters: Vec<MeterId>,
        terms: Terms,
    ) -> Result<Self, ContractError> {
        terms.check().map_err(|e| e.within("terms"))?;
        if seller == buyer {
            return Err(ContractError::invalid("buyer", "the seller cannot buy from itself"));
        }
        crate::at_most("meters", meters.len(), crate::bounds::METERS)?;
        if meters.is_empty() {
            return Err(ContractError::invalid("meters", "a contract needs at least one metering point"));
        }
        if let Some(i) = (1..meters.len()).find(|&i| meters[..i].contains(&meters[i])) {
            return Err(ContractError::invalid(format!("meters[{i}]"), "repeated"));
        }
        let first = TermVersion { version: 1, valid_from: terms.delivery_first, terms };
        Ok(Self { id, seller, buyer, meters, state: State::Draft, versions: vec![first], terminated_on: None })
    }

    /// A contract as a store kept it: the same checks as a draft and its
    /// amendments, then its state.
    ///
    /// # Errors
    /// What [`draft`](Self::draft) and [`amend`](Self::amend) refuse, or
    /// versions not numbered 1, 2, ... from the first delivery day.
    pub fn restore(
        id: ContractId,
        seller: PartyId,
        buyer: PartyId,
        meters: Vec<MeterId>,
        versions: Vec<TermVersion>,
        state: State,
        terminated_on: Option<Date>,
    ) -> Result<Self, ContractError> {
        let mut versions = versions.into_iter();
        let first = versions.next().ok_or_else(|| ContractError::invalid("versions", "a contract has version 1"))?;
        if first.version != 1 || first.valid_from != first.terms.delivery_first {
            return Err(ContractError::invalid("versions[0]", "version 1 starts on the first delivery day"));
        }
        let mut contract = Self::draft(id, seller, buyer, meters, first.terms)?;
        for (i, version) in versions.enumerate() {
            let number = contract
                .amend(version.valid_from, version.terms)
                .map_err(|e| e.within(&format!("versions[{}]", i + 1)))?;
            if number != version.version {
                return Err(ContractError::invalid(
                    format!("versions[{}].version", i + 1),
                    "versions are numbered 1, 2, ...",
                ));
            }
        }
        if state == State::Terminated || state == State::Settled {
            contract.terminated_on = terminated_on;
        }
        contract.state = state;
        Ok(contract)
    }

    /// Its id.
    #[must_use]
    pub fn id(&self) -> &ContractId {
        &self.id
    }

    /// The selling party.
    #[must_use]
    pub fn seller(&self) -> &PartyId {
        &self.seller
    }

    /// The buying party.
    #[must_use]
    pub fn buyer(&self) -> &PartyId {
        &self.buyer
    }

    /// The metering points whose (allocated) energy it covers.
    #[must_use]
    pub fn meters(&self) -> &[MeterId] {
        &self.meters
    }

    /// Its state.
    #[must_use]
    pub fn state(&self) -> State {
        self.state
    }

    /// The date it was terminated, if it was.
    #[must_use]
    pub fn terminated_on(&self) -> Option<Date> {
        self.terminated_on
    }

    /// Every version of its terms, oldest first.
    #[must_use]
    pub fn versions(&self) -> &[TermVersion] {
        &self.versions
    }

    /// The latest version.
    #[must_use]
    pub fn latest(&self) -> &TermVersion {
        // `draft` makes version 1 and versions are only added.
        &self.versions[self.versions.len() - 1]
    }

    /// The version in force on `date`.
    ///
    /// # Errors
    /// [`ContractError::NoTerms`] before the first version.
    pub fn terms_on(&self, date: Date) -> Result<&TermVersion, ContractError> {
        self.versions
            .iter()
            .rev()
            .find(|v| v.valid_from <= date)
            .ok_or(ContractError::NoTerms { date, first: self.versions[0].valid_from })
    }

    /// Whether energy on `date` is delivered under the contract: within the
    /// delivery of the terms in force, and before a termination.
    #[must_use]
    pub fn delivers_on(&self, date: Date) -> bool {
        let Ok(version) = self.terms_on(date) else { return false };
        version.terms.delivery().contains(date) && self.terminated_on.is_none_or(|end| date < end)
    }

    /// Adds version `n + 1` of the terms, in force from `valid_from`.
    ///
    /// # Errors
    /// A contract that has ended, a date not after the last version's, or
    /// invalid terms (the field named).
    pub fn amend(&mut self, valid_from: Date, terms: Terms) -> Result<u32, ContractError> {
        if matches!(self.state, State::Terminated | State::Settled) {
            return Err(ContractError::Transition { from: self.state.name(), to: "amended" });
        }
        let last = self.latest();
        if valid_from <= last.valid_from {
            return Err(ContractError::invalid(
                "valid_from",
                format!("version {} is in force from {}; a new version starts after it", last.version, last.valid_from),
            ));
        }
        terms.check().map_err(|e| e.within("terms"))?;
        let version = last.version + 1;
        self.versions.push(TermVersion { version, valid_from, terms });
        Ok(version)
    }

    fn step(&mut self, allowed: &[State], to: State, verb: &'static str) -> Result<(), ContractError> {
        if !allowed.contains(&self.state) {
            return Err(ContractError::Transition { from: self.state.name(), to: verb });
        }
        self.state = to;
        Ok(())
    }

    /// Draft to signed.
    ///
    /// # Errors
    /// [`ContractError::Transition`] from any other state.
    pub fn sign(&mut self) -> Result<(), ContractError> {
        self.step(&[State::Draft], State::Signed, "signed")
    }

    /// Signed (or resumed from suspended) to active.
    ///
    /// # Errors
    /// [`ContractError::Transition`] from any other state.
    pub fn activate(&mut self) -> Result<(), ContractError> {
        self.step(&[State::Signed, State::Suspended], State::Active, "activated")
    }

    /// Active to suspended.
    ///
    /// # Errors
    /// [`ContractError::Transition`] from any other state.
    pub fn suspend(&mut self) -> Result<(), ContractError> {
        self.step(&[State::Active], State::Suspended, "suspended")
    }

    /// Ends the contract from `on` (no delivery on or after it).
    ///
    /// # Errors
    /// [`ContractError::Transition`] once terminated or settled.
    pub fn terminate(&mut self, on: Date) -> Result<(), ContractError> {
        self.step(&[State::Draft, State::Signed, State::Active, State::Suspended], State::Terminated, "terminated")?;
        self.terminated_on = Some(on);
        Ok(())
    }

    /// Terminated to settled: its final settlement is done.
    ///
    /// # Errors
    /// [`ContractError::Transition`] from any other state.
    pub fn settle(&mut self) -> Result<(), ContractError> {
        self.step(&[State::Terminated], State::Settled, "settled")
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;
    use crate::testing::{fixed_terms, id};

    fn contract() -> Contract {
        Contract::draft(id("c1"), id("gen"), id("shop"), vec![id("m1")], fixed_terms("0.40")).expect("a draft")
    }

    #[test]
    fn the_lifecycle_allows_only_its_steps() {
        let mut c = contract();
        assert_eq!(c.activate(), Err(ContractError::Transition { from: "draft", to: "activated" }));
        c.sign().expect("sign");
        c.activate().expect("activate");
        c.suspend().expect("suspend");
        c.activate().expect("resume");
        c.terminate(date(2025, 7, 1)).expect("terminate");
        assert_eq!(c.sign(), Err(ContractError::Transition { from: "terminated", to: "signed" }));
        assert!(c.delivers_on(date(2025, 6, 30)) && !c.delivers_on(date(2025, 7, 1)));
        c.settle().expect("settle");
        assert_eq!(c.state(), State::Settled);
    }

    #[test]
    fn amendments_add_versions_and_keep_the_old() {
        let mut c = contract();
        let v2 = c.amend(date(2025, 3, 15), fixed_terms("0.45")).expect("amend");
        assert_eq!(v2, 2);
        assert_eq!(c.terms_on(date(2025, 3, 14)).expect("v1").version, 1);
        assert_eq!(c.terms_on(date(2025, 3, 15)).expect("v2").version, 2);
        let error = c.amend(date(2025, 3, 15), fixed_terms("0.50")).expect_err("not after v2");
        assert!(error.to_string().starts_with("valid_from"), "{error}");
        assert!(matches!(c.terms_on(date(2024, 12, 31)), Err(ContractError::NoTerms { .. })));
        let mut bad = fixed_terms("0.50");
        bad.currency = "euro".into();
        assert_eq!(
            c.amend(date(2025, 4, 1), bad).expect_err("bad terms").to_string().split(':').next(),
            Some("terms.currency")
        );
        assert_eq!(c.versions().len(), 2);
    }

    #[test]
    fn terms_round_trip_through_json_and_refuse_typos() {
        let mut terms = crate::testing::tou_terms();
        terms.band = Some(crate::terms::Band {
            granularity: crate::terms::BandGranularity::Day,
            lower: crate::quantity::Percent::new(crate::testing::dec("3")),
            upper: crate::quantity::Percent::new(crate::testing::dec("5")),
        });
        terms.penalty = Some(crate::terms::Penalty {
            base: crate::terms::PenaltyBase::Spread { index: "spot".into() },
            multiplier: crate::testing::dec("3"),
            applies_to: crate::terms::Direction::Both,
            exempt: vec![crate::parties::Technology::Solar],
        });
        let text = serde_json::to_string(&terms).expect("json");
        assert_eq!(serde_json::from_str::<Terms>(&text).expect("reads back"), terms);
        let typo = text.replace("\"multiplier\"", "\"multiplyer\"");
        assert!(serde_json::from_str::<Terms>(&typo).is_err());
        let no_index = text.replace(",\"index\":\"spot\"", "");
        let error = serde_json::from_str::<Terms>(&no_index).expect_err("no index").to_string();
        assert!(error.contains("index"), "{error}");
    }

    #[test]
    fn a_stored_contract_restores_to_itself() {
        let mut c = contract();
        c.amend(date(2025, 3, 15), fixed_terms("0.45")).expect("amend");
        c.sign().expect("sign");
        c.activate().expect("activate");
        c.terminate(date(2025, 9, 1)).expect("terminate");
        let back = Contract::restore(
            c.id().clone(),
            c.seller().clone(),
            c.buyer().clone(),
            c.meters().to_vec(),
            c.versions().to_vec(),
            c.state(),
            c.terminated_on(),
        )
        .expect("restores");
        assert_eq!(back, c);
        let mut skipped = c.versions().to_vec();
        skipped[1].version = 3;
        let error =
            Contract::restore(c.id().clone(), id("gen"), id("shop"), vec![id("m1")], skipped, State::Active, None);
        assert!(error.expect_err("numbering").to_string().starts_with("versions[1].version"));
    }

    #[test]
    fn a_draft_names_what_is_wrong() {
        let same = Contract::draft(id("c1"), id("gen"), id("gen"), vec![id("m1")], fixed_terms("0.40"));
        assert!(same.expect_err("self-dealing").to_string().starts_with("buyer"));
        let many = (0..10_000).map(|i| id(&format!("m{i}"))).collect();
        let error =
            Contract::draft(id("c1"), id("gen"), id("shop"), many, fixed_terms("0.40")).expect_err("many meters");
        assert_eq!(error, ContractError::invalid("meters", "10000 entries; at most 64"));
        let twice = Contract::draft(id("c1"), id("gen"), id("shop"), vec![id("m1"), id("m1")], fixed_terms("0.40"));
        assert!(twice.expect_err("repeated").to_string().starts_with("meters[1]"));
    }
}
