//! What can be wrong with an order or a market request.

use jiff::Timestamp;

/// A market operation refused, with the field or rule that refused it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TradingError {
    /// A field's value breaks a rule; `field` is its path (`orders[3].price`).
    #[error("{field}: {reason}")]
    Invalid {
        /// The field's path.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The product's gate is not open at the time of the order.
    #[error("product {product}: the gate is {state} at {at} (open from {open} to {close})")]
    GateClosed {
        /// The product.
        product: String,
        /// `not open yet` or `closed`.
        state: &'static str,
        /// When the order came.
        at: Timestamp,
        /// Gate opening.
        open: Timestamp,
        /// Gate closure.
        close: Timestamp,
    },
    /// An order id the book does not hold (filled, cancelled or never seen).
    #[error("no resting order {id}")]
    UnknownOrder {
        /// The order id.
        id: u64,
    },
    /// The solver failed, or stopped (a time limit) before it found a
    /// clearing.
    #[error("the clearing failed: {0}")]
    Solver(String),
    /// An order id the book holds already.
    #[error("order {id} is already in the book")]
    DuplicateOrder {
        /// The order id.
        id: u64,
    },
}

impl TradingError {
    /// An [`Invalid`](Self::Invalid) error.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid { field: field.into(), reason: reason.into() }
    }
}
