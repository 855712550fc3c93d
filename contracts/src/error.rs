//! What can be wrong with contract data or a request on it.

use jiff::civil::Date;

/// A contract operation refused, with the field or the rule that refused it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContractError {
    /// A field's value breaks a rule; `field` is its path (`terms.band.upper`).
    #[error("{field}: {reason}")]
    Invalid {
        /// The field's path.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An energy finer than a watt-hour (0.001 kWh).
    #[error("{value} kWh is finer than the stated precision of 0.001 kWh")]
    Precision {
        /// The value as given.
        value: String,
    },
    /// Text that is not a decimal number.
    #[error("{value:?} is not a decimal number")]
    Number {
        /// The text as given.
        value: String,
    },
    /// A lifecycle step that the contract's state does not allow.
    #[error("a {from} contract cannot be {to}")]
    Transition {
        /// The state it is in.
        from: &'static str,
        /// What was asked (`activated`, `settled`, ...).
        to: &'static str,
    },
    /// No terms are valid on a date (before the first version).
    #[error("no terms are valid on {date}: the first version starts on {first}")]
    NoTerms {
        /// The date asked for.
        date: Date,
        /// The first version's start.
        first: Date,
    },
    /// A market price that a price or penalty rule needs is missing.
    #[error("no price of index {index:?} for the interval starting {at}")]
    MissingPrice {
        /// The index's name.
        index: String,
        /// The interval's start (RFC 3339).
        at: String,
    },
}

impl ContractError {
    /// An [`Invalid`](Self::Invalid) error.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid { field: field.into(), reason: reason.into() }
    }

    /// The same error with `prefix.` before its field path.
    #[must_use]
    pub fn within(self, prefix: &str) -> Self {
        match self {
            Self::Invalid { field, reason } => Self::Invalid { field: format!("{prefix}.{field}"), reason },
            other @ (Self::Precision { .. }
            | Self::Number { .. }
            | Self::Transition { .. }
            | Self::NoTerms { .. }
            | Self::MissingPrice { .. }) => other,
        }
    }
}
