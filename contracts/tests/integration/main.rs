//! The contracts domain end to end: a small portfolio with the awkward
//! cases (DST days, a leap day, a mid-month change of terms, a late
//! correction, a meter shared by two contracts), where every statistic is
//! computed from rollups and by a plain scan, and settlements are checked
//! by hand.

mod agreement;
mod docs;
mod projection;
mod settlement;
mod support;
