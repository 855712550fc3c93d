//! Cancellation shared by every long computation: a solve, a backtest, a
//! model fit. The caller keeps one clone and cancels it (a dropped gRPC
//! call, Ctrl-C in Python); the work checks it between its phases and stops
//! with its own "cancelled" error.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A cancellation flag shared between a caller and the work it started;
/// clones share the flag. Two tokens compare equal when they share it.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

/// The error of work that stopped because its [`Cancel`] was cancelled;
/// each crate turns it into its own error type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cancelled")]
pub struct Cancelled;

impl Cancel {
    /// A fresh, uncancelled token.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks all work holding this token to stop at its next check.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`cancel`](Self::cancel) was called.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `Err(Cancelled)` once cancelled: the check work makes between phases.
    ///
    /// # Errors
    /// [`Cancelled`] once [`cancel`](Self::cancel) was called.
    pub fn check(&self) -> Result<(), Cancelled> {
        if self.is_cancelled() { Err(Cancelled) } else { Ok(()) }
    }

    /// `Break` once cancelled: for work that reports progress through a
    /// callback, such as a forecasting backtest.
    pub fn flow(&self) -> ControlFlow<()> {
        if self.is_cancelled() { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    }
}

impl PartialEq for Cancel {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::{Cancel, Cancelled};

    #[test]
    fn clones_share_the_flag_and_fresh_tokens_do_not() {
        let token = Cancel::new();
        let clone = token.clone();
        let other = Cancel::new();
        assert_eq!(token, clone);
        assert_ne!(token, other);
        assert_eq!(clone.check(), Ok(()));
        assert!(clone.flow().is_continue());
        token.cancel();
        assert!(clone.is_cancelled() && !other.is_cancelled());
        assert_eq!(clone.check(), Err(Cancelled));
        assert!(clone.flow().is_break());
    }
}
