//! Volta's gRPC API contract, shared by the server, its tests, the load
//! benchmark and any Rust client:
//!
//! - [`pb`]: the types, service stubs and clients generated from the
//!   protos under `proto/volta/<service>/v1/`, and their descriptors;
//! - [`dispatch`]: conversions between dispatch messages and the domain
//!   (cases in, schedules out);
//! - [`status`]: every domain error mapped to a gRPC status, in one place,
//!   with the helpers that build INVALID_ARGUMENT with field violations.
//!
//! No transport, storage or configuration lives here: the server runtime
//! (`volta-server`) adds those.

pub mod dispatch;
pub mod status;

/// Generated protobuf types, service stubs and clients.
pub mod pb {
    /// `volta.dispatch.v1`.
    pub mod dispatch {
        #![allow(missing_docs, unused_qualifications, clippy::all, clippy::pedantic)]
        tonic::include_proto!("volta.dispatch.v1");
    }

    /// `volta.forecast.v1`.
    pub mod forecast {
        #![allow(missing_docs, unused_qualifications, clippy::all, clippy::pedantic)]
        tonic::include_proto!("volta.forecast.v1");
    }

    /// The encoded descriptors of every Volta proto, for server reflection.
    pub const DESCRIPTOR: &[u8] = tonic::include_file_descriptor_set!("volta_descriptor");
}
