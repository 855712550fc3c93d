//! Typed identifiers for carriers, buses and assets.
//!
//! Ids are short strings chosen by the case author (`"elec"`, `"chp1"`).
//! Wrapping them in distinct types keeps a bus id from being passed where an
//! asset id is expected.

use std::borrow::Borrow;
use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a string as an id. Ids are checked when a case is validated.
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// The id as a string slice.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self::new(id)
            }
        }
    };
}

id_type!(
    /// Identifies a [`Carrier`](crate::Carrier): `electricity`, `heat`, `gas`, ...
    CarrierId
);
id_type!(
    /// Identifies a [`Bus`](crate::Bus).
    BusId
);
id_type!(
    /// Identifies an [`Asset`](crate::Asset).
    AssetId
);

/// Whether `id` is acceptable as an identifier: non-empty, at most 64
/// characters, ASCII letters, digits, `_`, `-` and `.`, starting with a letter
/// or digit.
#[must_use]
pub fn is_valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    id.len() <= 64
        && first.is_ascii_alphanumeric()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_ids() {
        for id in ["elec", "chp_1", "PV-roof.2", "7x"] {
            assert!(is_valid_id(id), "{id}");
        }
        for id in ["", "_x", "a b", "é", &"x".repeat(65)] {
            assert!(!is_valid_id(id), "{id}");
        }
    }
}
