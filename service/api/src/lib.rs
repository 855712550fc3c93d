//! Volta's gRPC API contract, shared by the server, its tests, the load
//! benchmark and any Rust client:
//!
//! - [`pb`]: the types, service stubs and clients generated from the
//!   protos under `proto/volta/<service>/v1/`, and their descriptors;
//! - [`dispatch`], [`forecast`], [`planning`], [`contracts`] and [`trading`]: conversions between each service's
//!   messages and the domain (cases, series and options in; schedules,
//!   scores and forecasts out), reading every field of a message so that a
//!   field added to a proto cannot be silently ignored;
//! - [`time`]: timestamps, durations and time grids;
//! - [`status`]: every domain error mapped to a gRPC status, in one place,
//!   with the helpers that build INVALID_ARGUMENT with field violations.
//!
//! No transport, storage or configuration lives here: the server runtime
//! (`volta-server`) adds those.

pub mod contracts;
pub mod dispatch;
pub mod forecast;
pub mod planning;
pub mod status;
pub mod time;
pub mod trading;

/// Generated protobuf types, service stubs and clients, one module per
/// proto package (`pb::dispatch` is `volta.dispatch.v1`).
pub mod pb {
    pub use self::volta::common::v1 as common;
    pub use self::volta::contracts::v1 as contracts;
    pub use self::volta::dispatch::v1 as dispatch;
    pub use self::volta::forecast::v1 as forecast;
    pub use self::volta::planning::v1 as planning;
    pub use self::volta::trading::v1 as trading;

    /// The packages as protoc nests them (generated code refers to other
    /// packages by relative paths).
    #[allow(missing_docs, unused_qualifications, clippy::all, clippy::pedantic)]
    mod volta {
        pub mod common {
            pub mod v1 {
                tonic::include_proto!("volta.common.v1");
            }
        }
        pub mod contracts {
            pub mod v1 {
                tonic::include_proto!("volta.contracts.v1");
            }
        }
        pub mod dispatch {
            pub mod v1 {
                tonic::include_proto!("volta.dispatch.v1");
            }
        }
        pub mod forecast {
            pub mod v1 {
                tonic::include_proto!("volta.forecast.v1");
            }
        }
        pub mod planning {
            pub mod v1 {
                tonic::include_proto!("volta.planning.v1");
            }
        }
        pub mod trading {
            pub mod v1 {
                tonic::include_proto!("volta.trading.v1");
            }
        }
    }

    /// The encoded descriptors of every Volta proto, for server reflection.
    pub const DESCRIPTOR: &[u8] = tonic::include_file_descriptor_set!("volta_descriptor");
}
