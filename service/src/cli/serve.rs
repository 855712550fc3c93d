//! `volta serve`: the gRPC services on one port.

use std::net::SocketAddr;
use std::process::ExitCode;

use crate::grpc::{self, ServeOptions};

pub(super) const LONG_ABOUT: &str = "\
Serve Volta over gRPC: volta.dispatch.v1.DispatchService (Validate, Schedule),
gRPC health checking (grpc.health.v1) and server reflection, so grpcurl works.

Solves run on a bounded pool of --solver-slots; a call that finds every slot
busy gets RESOURCE_EXHAUSTED at once. A call's deadline becomes the solver's
time limit. SIGTERM or Ctrl-C stops accepting calls, reports NOT_SERVING and
lets in-flight calls finish. Without authentication configured (not yet
available) the server binds to loopback addresses only.";

pub(super) const AFTER_HELP: &str = "\
Examples:
  volta serve                                  # 127.0.0.1:50051
  volta serve --listen 127.0.0.1:0             # any free port, printed on start
  grpcurl -plaintext 127.0.0.1:50051 list
  grpcurl -plaintext -d @ 127.0.0.1:50051 volta.dispatch.v1.DispatchService/Schedule < request.json";

/// Arguments of `volta serve`.
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Address to listen on (loopback only without authentication).
    #[arg(long, default_value = "127.0.0.1:50051", env = "VOLTA_LISTEN")]
    listen: SocketAddr,
    /// Solves that may run at once (default: the number of cores).
    #[arg(long, env = "VOLTA_SOLVER_SLOTS")]
    solver_slots: Option<usize>,
    /// Largest request accepted, in MiB.
    #[arg(long, default_value_t = 64, env = "VOLTA_MAX_REQUEST_MIB")]
    max_request_mib: usize,
}

pub(super) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    grpc::serve(&ServeOptions {
        listen: args.listen,
        solver_slots: args.solver_slots.unwrap_or(cores),
        max_request_bytes: args.max_request_mib << 20,
    })?;
    Ok(ExitCode::SUCCESS)
}
