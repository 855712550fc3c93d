//! The market's mechanisms on small books worked by hand, and their
//! invariants on random ones: the continuous book against a plain
//! reference matcher, the call auction against a scan of every price.

mod auction;
mod bids;
mod book;
mod properties;
mod shaped;
mod support;
mod welfare;
