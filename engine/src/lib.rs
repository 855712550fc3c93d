//! # volta-engine: the domain model of multi-energy systems
//!
//! Volta plans and forecasts microgrids, industrial parks and campuses where
//! electricity, heat, cooling and gas meet. This crate holds what every other
//! part of Volta shares: the vocabulary of the domain, the case-file format
//! and its validation. It has no solver, no data-frame library and no
//! network code; the `volta-dispatch` and `volta-forecasting` crates and the
//! service crates (`volta-api`, `volta-server`, `volta-cli`) build on it.
//!
//! ## The model
//!
//! - A [`Carrier`] is a form of energy (`electricity`, `heat`, `cooling`,
//!   `gas`, `hydrogen`, or one the case declares) with a CO2 intensity.
//! - A [`Bus`] carries one carrier; at every time step the power flowing into
//!   a bus equals the power flowing out.
//! - An [`Asset`] connects to buses: loads, renewable and thermal generators,
//!   grid connections, multi-port converters and storage ([`AssetKind`]).
//! - Any attribute that may change over time is a [`Profile`], a constant or
//!   one value per step of the case's [`TimeGrid`].
//! - A [`Case`] is all of the above, checked.
//!
//! ## Units and signs
//!
//! | quantity | unit | in names |
//! |---|---|---|
//! | power | kW | `_kw` |
//! | energy | kWh | `_kwh` |
//! | price | currency per kWh (currency per kW for demand charges) | `_price`, `_cost` |
//! | emissions | kg CO2 | `co2_kg`, `co2_kg_per_kwh` |
//! | time | hours | `_h` |
//! | efficiency, COP, state of charge | per unit | |
//!
//! Energy over a step is power × [`TimeGrid::step_hours`]. Flows are
//! positive quantities with a direction given by the port: generation,
//! discharge, import and converter outputs **inject** into their bus
//! (positive in the balance); demand, charging, export and converter inputs
//! **withdraw** from it (negative in the balance).
//!
//! ## Reading a case
//!
//! ```
//! use volta_engine::{Case, Format};
//!
//! let case = Case::from_str(
//!     r#"
//!     name = "two-bus"
//!     [time]
//!     start = "2024-06-01T00:00"
//!     timezone = "Europe/Berlin"
//!     step = "1h"
//!     steps = 3
//!
//!     [[buses]]
//!     id = "elec"
//!     carrier = "electricity"
//!
//!     [[assets]]
//!     id = "office"
//!     type = "load"
//!     bus = "elec"
//!     demand_kw = [40.0, 55.0, 50.0]
//!
//!     [[assets]]
//!     id = "utility"
//!     type = "grid"
//!     bus = "elec"
//!     import_price = 0.30
//!     "#,
//!     Format::Toml,
//! )?;
//! assert_eq!(case.grid().len(), 3);
//! assert_eq!(case.assets().len(), 2);
//! # Ok::<_, volta_engine::Error>(())
//! ```
//!
//! A case that breaks rules yields [`Error::Invalid`] with a
//! [`ValidationReport`] listing every problem, each with its path
//! (`assets.chp1.commitment.min_up_h`) and an [`IssueCode`].

pub mod asset;
pub mod cancel;
pub mod case;
mod error;
mod ids;
mod network;
mod profile;
mod report;
pub mod series;
pub mod time;

pub use asset::{Asset, AssetKind};
pub use cancel::{Cancel, Cancelled};
pub use case::{
    Case, CaseReader, Checked, Format, Issue, IssueCode, MAX_MAGNITUDE, MIN_EFFICIENCY, ReplaceError, SeriesField,
    SeriesRef, Severity, TimeSpec, ValidationReport,
};
pub use error::{Error, Result};
pub use ids::{AssetId, BusId, CarrierId, is_valid_id};
pub use network::{Bus, Carrier};
pub use profile::Profile;
pub use series::TimeSeries;
pub use time::TimeGrid;
