//! Carriers and buses: what flows, and where it balances.

use serde::{Deserialize, Serialize};

use crate::ids::{BusId, CarrierId};

/// An energy carrier: electricity, heat, cooling, gas, hydrogen, or one the
/// case defines (diesel, steam, ...).
///
/// `co2_kg_per_kwh` is the direct emission of one kWh of this carrier when it
/// enters the system from outside (fuel bought, a grid import with no
/// intensity of its own). Energy converted inside the system carries no
/// intensity of its own: a CHP's electricity is charged through its gas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Carrier {
    /// The carrier's id, referenced by buses and fuels.
    pub id: CarrierId,
    /// Direct CO2 emission per kWh entering the system, kg/kWh (default 0).
    #[serde(default)]
    pub co2_kg_per_kwh: f64,
    /// A display name; the id when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// A plot colour (`"#1f77b4"`), optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
}

impl Carrier {
    /// The carriers every case knows without declaring them. A case may
    /// redeclare one of these ids to change its attributes.
    ///
    /// Natural gas: 56.1 t CO2/TJ (IPCC 2006 Guidelines, vol. 2, table 2.2,
    /// default for natural gas), that is 0.202 kg/kWh of fuel (net calorific
    /// value).
    #[must_use]
    pub fn builtins() -> Vec<Self> {
        let make = |id: &str, co2: f64, color: &str| Self {
            id: CarrierId::new(id),
            co2_kg_per_kwh: co2,
            name: String::new(),
            color: Some(color.to_owned()),
        };
        vec![
            make("electricity", 0.0, "#f2b701"),
            make("heat", 0.0, "#d62728"),
            make("cooling", 0.0, "#1f77b4"),
            make("gas", 0.202, "#8c564b"),
            make("hydrogen", 0.0, "#17becf"),
        ]
    }

    /// The display name.
    #[must_use]
    pub fn display_name(&self) -> &str {
        if self.name.is_empty() { self.id.as_str() } else { &self.name }
    }
}

/// A node where one carrier balances at every time step: injections equal
/// withdrawals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Bus {
    /// The bus's id, referenced by assets.
    pub id: BusId,
    /// The one carrier this bus carries.
    pub carrier: CarrierId,
}
