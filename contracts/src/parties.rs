//! Who trades and where energy is measured: parties, their roles, metering
//! points, and the identifiers of each.

use std::fmt;
use std::sync::Arc;

use jiff::SignedDuration;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::error::ContractError;

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident, $what:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        // Shared text: ids are cloned into every trade, position and
        // message, and a clone of an `Arc<str>` allocates nothing.
        pub struct $name(Arc<str>);

        impl $name {
            /// The id, checked: 1 to 64 ASCII letters, digits, `_`, `-` or
            /// `.`, starting with a letter or digit.
            ///
            /// # Errors
            /// [`ContractError::Invalid`] naming the id's kind.
            pub fn new(id: impl Into<String>) -> Result<Self, ContractError> {
                let id = id.into();
                if volta_engine::is_valid_id(&id) {
                    Ok(Self(Arc::from(id)))
                } else {
                    Err(ContractError::invalid(
                        $what,
                        format!("{id:?} is not an id (1 to 64 of A-Z a-z 0-9 _ - ., starting with a letter or digit)"),
                    ))
                }
            }

            /// The id as text.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = ContractError;
            fn try_from(id: String) -> Result<Self, Self::Error> {
                Self::new(id)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0.as_ref().to_owned()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// Identifies a [`Party`].
    PartyId,
    "party"
);
id_type!(
    /// Identifies a [`MeteringPoint`].
    MeterId,
    "meter"
);
id_type!(
    /// Identifies a contract.
    ContractId,
    "contract"
);

/// What a party does in the market.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Sells what it generates.
    Generator,
    /// Buys wholesale and sells to consumers.
    Retailer,
    /// Buys what it consumes.
    Consumer,
    /// Consumes and generates.
    Prosumer,
    /// Runs the network.
    GridOperator,
}

/// A party to contracts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    /// Its id.
    pub id: PartyId,
    /// Its name, for statements.
    pub name: String,
    /// What it does.
    pub role: Role,
}

/// How energy at a metering point is produced (penalty rules may exempt
/// some technologies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Technology {
    /// Photovoltaics.
    Solar,
    /// Wind turbines.
    Wind,
    /// Hydro power.
    Hydro,
    /// Batteries and other storage.
    Storage,
    /// Fuel-fired units.
    Thermal,
    /// Consumption (no generation).
    Load,
}

/// Where a metering point sits in the network.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Location {
    /// A network node (nodal pricing).
    Node(String),
    /// A price zone.
    Zone(String),
}

/// A meter: what it measures, how often, and in which zone its days are read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeteringPoint {
    /// Its id.
    pub id: MeterId,
    /// The party it belongs to.
    pub party: PartyId,
    /// Its interval in minutes (5, 15, 30 or 60).
    pub interval_minutes: u32,
    /// The IANA zone its local days are read in.
    pub time_zone: String,
    /// Where it sits.
    pub location: Location,
    /// What is behind it.
    pub technology: Technology,
}

impl MeteringPoint {
    /// Checks the interval and the zone.
    ///
    /// # Errors
    /// [`ContractError::Invalid`] naming `interval_minutes` or `time_zone`.
    pub fn check(&self) -> Result<(), ContractError> {
        if ![5, 10, 15, 30, 60].contains(&self.interval_minutes) {
            return Err(ContractError::invalid(
                "interval_minutes",
                format!("{} is not one of 5, 10, 15, 30, 60", self.interval_minutes),
            ));
        }
        self.zone().map(|_| ())
    }

    /// The meter's interval.
    #[must_use]
    pub fn interval(&self) -> SignedDuration {
        SignedDuration::from_mins(i64::from(self.interval_minutes))
    }

    /// The meter's zone.
    ///
    /// # Errors
    /// [`ContractError::Invalid`] for a zone the bundled database lacks.
    pub fn zone(&self) -> Result<TimeZone, ContractError> {
        TimeZone::get(&self.time_zone)
            .map_err(|_| ContractError::invalid("time_zone", format!("{:?} is not an IANA time zone", self.time_zone)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked_and_named() {
        assert!(ContractId::new("ppa-2025.01").is_ok());
        let error = ContractId::new("../etc").expect_err("not an id").to_string();
        assert!(error.starts_with("contract:"), "{error}");
        assert!(serde_json::from_str::<MeterId>("\"\"").is_err());
    }

    #[test]
    fn a_meter_names_its_bad_field() {
        let meter = MeteringPoint {
            id: MeterId::new("m1").expect("id"),
            party: PartyId::new("p1").expect("id"),
            interval_minutes: 15,
            time_zone: "Asia/Shanghai".into(),
            location: Location::Zone("east".into()),
            technology: Technology::Load,
        };
        assert!(meter.check().is_ok());
        let bad = MeteringPoint { interval_minutes: 7, ..meter.clone() };
        assert!(bad.check().expect_err("7 min").to_string().starts_with("interval_minutes"));
        let bad = MeteringPoint { time_zone: "Mars/Olympus".into(), ..meter };
        assert!(bad.check().expect_err("zone").to_string().starts_with("time_zone"));
    }
}
