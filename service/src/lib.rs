//! Volta's command line and its gRPC services, as a library so that tests,
//! benchmarks and later services (trading, contracts) build on the same
//! pieces: the generated protobuf types ([`grpc::pb`]), the configuration
//! ([`config`]), persistence ([`store`]), authentication ([`auth`]) and
//! telemetry ([`telemetry`]).

pub mod auth;
pub mod cli;
pub mod config;
pub mod grpc;
mod report;
pub mod store;
pub mod telemetry;
