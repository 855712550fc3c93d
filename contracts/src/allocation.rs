//! One meter, several contracts: who gets which part of each reading, in a
//! stated order.
//!
//! Each interval's reading is handed out in the allocation's order: a
//! contract that takes *up to its contracted volume* gets at most its
//! contracted energy of that interval, a *share* gets its percentage of the
//! reading (rounded down to the Wh), and the *remainder* gets what is left.
//! Without a remainder, what is left is unallocated, and reported as such.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::ContractError;
use crate::parties::{ContractId, MeterId};
use crate::quantity::{Energy, Percent};

/// How much of a reading one contract takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Take {
    /// Up to the contract's contracted energy in the interval.
    UpToContracted,
    /// A percentage of the whole reading.
    Share {
        /// The percentage.
        share: Percent,
    },
    /// Whatever is left (last in the order).
    Remainder,
}

/// One contract's place in an allocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ClaimSpec", into = "ClaimSpec")]
pub struct Claim {
    /// The contract.
    pub contract: ContractId,
    /// What it takes.
    pub take: Take,
}

/// A claim as files write it: `take = "share", share = 25`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimSpec {
    contract: ContractId,
    take: TakeName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    share: Option<Percent>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum TakeName {
    UpToContracted,
    Share,
    Remainder,
}

impl TryFrom<ClaimSpec> for Claim {
    type Error = String;

    fn try_from(spec: ClaimSpec) -> Result<Self, String> {
        let take = match (spec.take, spec.share) {
            (TakeName::Share, Some(share)) => Take::Share { share },
            (TakeName::Share, None) => return Err("share: give the percentage".into()),
            (TakeName::UpToContracted, None) => Take::UpToContracted,
            (TakeName::Remainder, None) => Take::Remainder,
            (TakeName::UpToContracted | TakeName::Remainder, Some(_)) => {
                return Err("share: only a share takes a percentage".into());
            }
        };
        Ok(Self { contract: spec.contract, take })
    }
}

impl From<Claim> for ClaimSpec {
    fn from(claim: Claim) -> Self {
        let (take, share) = match claim.take {
            Take::UpToContracted => (TakeName::UpToContracted, None),
            Take::Share { share } => (TakeName::Share, Some(share)),
            Take::Remainder => (TakeName::Remainder, None),
        };
        Self { contract: claim.contract, take, share }
    }
}

/// How a meter's readings are shared by contracts, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allocation {
    /// The meter.
    pub meter: MeterId,
    /// The contracts, first served first.
    pub claims: Vec<Claim>,
}

impl Allocation {
    /// Checks the order: each contract once, shares between 0 and 100 %
    /// adding up to at most 100 %, a remainder only last.
    ///
    /// # Errors
    /// [`ContractError::Invalid`] naming the claim.
    pub fn check(&self) -> Result<(), ContractError> {
        if self.claims.is_empty() {
            return Err(ContractError::invalid("claims", "an allocation needs at least one contract"));
        }
        crate::at_most("claims", self.claims.len(), crate::bounds::CLAIMS)?;
        let mut shares = Decimal::ZERO;
        for (i, claim) in self.claims.iter().enumerate() {
            if self.claims[..i].iter().any(|c| c.contract == claim.contract) {
                return Err(ContractError::invalid(format!("claims[{i}].contract"), "repeated"));
            }
            match &claim.take {
                Take::Remainder if i + 1 != self.claims.len() => {
                    return Err(ContractError::invalid(format!("claims[{i}]"), "the remainder comes last"));
                }
                Take::Share { share } => {
                    if share.value() < Decimal::ZERO || share.value() > Decimal::ONE_HUNDRED {
                        return Err(ContractError::invalid(format!("claims[{i}].share"), "between 0 and 100 %"));
                    }
                    shares += share.value();
                }
                Take::Remainder | Take::UpToContracted => {}
            }
        }
        if shares > Decimal::ONE_HUNDRED {
            return Err(ContractError::invalid("claims", format!("the shares add up to {shares} %, over 100 %")));
        }
        Ok(())
    }

    /// Hands out one interval's `reading`: `contracted(i)` is claim `i`'s
    /// contracted energy in the interval. Returns each claim's part and the
    /// unallocated rest; the parts and the rest add up to the reading.
    #[must_use]
    pub fn split(&self, reading: Energy, contracted: impl Fn(usize) -> Energy) -> (Vec<Energy>, Energy) {
        let mut left = reading;
        let parts = self
            .claims
            .iter()
            .enumerate()
            .map(|(i, claim)| {
                let want = match &claim.take {
                    Take::UpToContracted => contracted(i).positive_part(),
                    Take::Share { share } => {
                        let wh = Decimal::from(reading.wh()) * share.fraction();
                        Energy::from_wh(i64::try_from(wh.floor()).unwrap_or(0))
                    }
                    Take::Remainder => left,
                };
                let part = want.min(left).positive_part();
                left -= part;
                part
            })
            .collect();
        (parts, left)
    }

    /// The position of `contract` in the order.
    #[must_use]
    pub fn position(&self, contract: &ContractId) -> Option<usize> {
        self.claims.iter().position(|c| &c.contract == contract)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::testing::{dec, id};

    fn allocation() -> Allocation {
        Allocation {
            meter: id("m1"),
            claims: vec![
                Claim { contract: id("base"), take: Take::UpToContracted },
                Claim { contract: id("green"), take: Take::Share { share: Percent::new(dec("25")) } },
                Claim { contract: id("retail"), take: Take::Remainder },
            ],
        }
    }

    #[test]
    fn readings_are_handed_out_in_order() {
        let a = allocation();
        assert!(a.check().is_ok());
        // 10 kWh: base takes its 6 contracted, green 25 % of 10 = 2.5, retail the rest.
        let (parts, rest) = a.split(Energy::from_kwh(10), |_| Energy::from_kwh(6));
        assert_eq!(parts, [Energy::from_kwh(6), Energy::from_wh(2_500), Energy::from_wh(1_500)]);
        assert_eq!(rest, Energy::ZERO);
        // 4 kWh: base takes all of it; nothing is left for the others.
        let (parts, _) = a.split(Energy::from_kwh(4), |_| Energy::from_kwh(6));
        assert_eq!(parts, [Energy::from_kwh(4), Energy::ZERO, Energy::ZERO]);
    }

    #[test]
    fn an_allocation_round_trips_through_its_file_form() {
        let a = allocation();
        let text = serde_json::to_string(&a).expect("json");
        assert!(text.contains(r#"{"contract":"green","take":"share","share":"25"}"#), "{text}");
        assert_eq!(serde_json::from_str::<Allocation>(&text).expect("reads back"), a);
        let typo = r#"{"meter":"m1","claims":[{"contract":"a","take":"remainder","shares":"1"}]}"#;
        assert!(serde_json::from_str::<Allocation>(typo).expect_err("unknown field").to_string().contains("shares"));
    }

    #[test]
    fn a_long_allocation_is_refused_before_any_work() {
        let claims =
            (0..100_000).map(|i| Claim { contract: id(&format!("c{i}")), take: Take::UpToContracted }).collect();
        let error = Allocation { meter: id("m1"), claims }.check().expect_err("too many claims");
        assert_eq!(error, ContractError::invalid("claims", "100000 entries; at most 64"));
    }

    #[test]
    fn a_bad_order_is_named() {
        let mut a = allocation();
        a.claims.swap(1, 2);
        assert!(a.check().expect_err("remainder first").to_string().starts_with("claims[1]"));
        let mut a = allocation();
        a.claims[1].take = Take::Share { share: Percent::new(dec("101")) };
        assert!(a.check().expect_err("share").to_string().starts_with("claims[1].share"));
    }

    proptest! {
        #[test]
        fn parts_and_rest_add_up_to_the_reading(reading in 0_i64..10_000_000, contracted in 0_i64..5_000_000, share in 0_u32..=100, remainder in any::<bool>()) {
            let mut a = allocation();
            a.claims[1].take = Take::Share { share: Percent::new(Decimal::from(share)) };
            if !remainder { a.claims.pop(); }
            let (parts, rest) = a.split(Energy::from_wh(reading), |_| Energy::from_wh(contracted));
            prop_assert_eq!(parts.iter().sum::<Energy>() + rest, Energy::from_wh(reading));
            prop_assert!(parts.iter().all(|p| *p >= Energy::ZERO) && rest >= Energy::ZERO);
        }
    }
}
