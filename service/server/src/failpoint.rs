//! Crash points for fault tests. `VOLTA_FAILPOINTS=relay.after_send@3`
//! makes the process abort, as abruptly as `kill -9`, the third time it
//! passes the point `relay.after_send`; several points are separated by
//! commas. Without the variable (as in production) a point costs one load
//! of a flag that is never set.
//!
//! The points, each in the window between two durable steps that a crash
//! must not break:
//! - `outbox.after_commit`: a batch of trades and their messages is stored,
//!   no caller has been answered and the relay has not been woken;
//! - `relay.after_send`: the carrier has a batch not yet marked published
//!   (JetStream has acknowledged it; in one process, the round's
//!   transaction has applied it and not yet committed);
//! - `consumer.after_apply`: a JetStream consumer has applied a batch it
//!   pulled, which is not yet acknowledged to the stream.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, Ordering};

/// The points set, with the passes left before each aborts.
fn points() -> &'static [(String, AtomicI64)] {
    static POINTS: OnceLock<Vec<(String, AtomicI64)>> = OnceLock::new();
    POINTS.get_or_init(|| {
        let Ok(spec) = std::env::var("VOLTA_FAILPOINTS") else { return Vec::new() };
        spec.split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                let (name, nth) = s.trim().split_once('@').unwrap_or((s.trim(), "1"));
                (name.to_owned(), AtomicI64::new(nth.parse().unwrap_or(1)))
            })
            .collect()
    })
}

/// Passes point `name`: aborts the process if it is set and this is the
/// pass it names.
pub(crate) fn pass(name: &str) {
    for (point, left) in points() {
        if point == name && left.fetch_sub(1, Ordering::SeqCst) == 1 {
            tracing::error!(point = name, "failpoint: aborting the process");
            std::process::abort();
        }
    }
}
