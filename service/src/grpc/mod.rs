//! The gRPC layer: services over the same library calls as the CLI.
//!
//! CPU-heavy work (solves) runs on tokio's blocking pool behind a semaphore
//! of solver slots; a call that finds every slot taken is shed at once with
//! RESOURCE_EXHAUSTED instead of queueing without bound. The call's deadline
//! (`grpc-timeout`) becomes the solver's time limit.

mod dispatch;
mod forecast;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::Semaphore;

/// Generated protobuf types and service stubs.
pub(crate) mod pb {
    #![allow(missing_docs, unused_qualifications, clippy::all, clippy::pedantic)]
    tonic::include_proto!("volta.dispatch.v1");

    /// `volta.forecast.v1`.
    pub(crate) mod forecast {
        #![allow(missing_docs, unused_qualifications, clippy::all, clippy::pedantic)]
        tonic::include_proto!("volta.forecast.v1");
    }

    /// The encoded descriptors of every Volta proto, for server reflection.
    pub(crate) const DESCRIPTOR: &[u8] = tonic::include_file_descriptor_set!("volta_descriptor");
}

/// How the server runs.
#[derive(Debug, Clone)]
pub(crate) struct ServeOptions {
    /// Address to bind (port 0: any free port, printed on start).
    pub listen: SocketAddr,
    /// Solves that may run at once; more are shed with RESOURCE_EXHAUSTED.
    pub solver_slots: usize,
    /// Largest request accepted, bytes.
    pub max_request_bytes: usize,
}

/// Runs the server until SIGTERM or Ctrl-C, then stops accepting calls,
/// reports NOT_SERVING and lets in-flight calls finish.
pub(crate) fn serve(options: &ServeOptions) -> anyhow::Result<()> {
    if !options.listen.ip().is_loopback() {
        anyhow::bail!(
            "--listen {}: no authentication is configured, so volta serve binds to loopback addresses only",
            options.listen
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("tokio runtime")?;
    runtime.block_on(run(options.clone()))
}

async fn run(options: ServeOptions) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("cannot listen on {}", options.listen))?;
    let local = listener.local_addr()?;
    log(&format!("volta serve: listening on {local} (loopback only: no authentication configured)"));
    let slots = Arc::new(Semaphore::new(options.solver_slots.max(1)));
    let dispatch = pb::dispatch_service_server::DispatchServiceServer::new(dispatch::Dispatch::new(slots.clone()))
        .max_decoding_message_size(options.max_request_bytes);
    let forecast =
        pb::forecast::forecast_service_server::ForecastServiceServer::new(forecast::Forecast::new(slots.clone()))
            .max_decoding_message_size(options.max_request_bytes);
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_serving::<pb::dispatch_service_server::DispatchServiceServer<dispatch::Dispatch>>().await;
    reporter.set_serving::<pb::forecast::forecast_service_server::ForecastServiceServer<forecast::Forecast>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::DESCRIPTOR)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("reflection")?;
    let shutdown = async move {
        shutdown_signal().await;
        log("volta serve: shutting down; in-flight calls finish");
        reporter.set_not_serving::<pb::dispatch_service_server::DispatchServiceServer<dispatch::Dispatch>>().await;
        reporter
            .set_not_serving::<pb::forecast::forecast_service_server::ForecastServiceServer<forecast::Forecast>>()
            .await;
        // Give health checkers a moment to see NOT_SERVING.
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    tonic::transport::Server::builder()
        .add_service(health)
        .add_service(reflection)
        .add_service(dispatch)
        .add_service(forecast)
        .serve_with_incoming_shutdown(tokio_stream::wrappers::TcpListenerStream::new(listener), shutdown)
        .await
        .context("server")?;
    Ok(())
}

/// One line on stderr; a closed stderr (a supervisor gone) is not a reason to crash.
fn log(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{line}");
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// The remaining deadline of a call, from its `grpc-timeout` header.
pub(crate) fn deadline<T>(request: &tonic::Request<T>) -> Option<Duration> {
    let text = request.metadata().get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = text.split_at(text.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn grpc_timeout_headers_become_durations() {
        let with = |value: &str| {
            let mut request = tonic::Request::new(());
            request.metadata_mut().insert("grpc-timeout", value.parse().expect("ascii"));
            super::deadline(&request)
        };
        assert_eq!(with("3S"), Some(Duration::from_secs(3)));
        assert_eq!(with("1500m"), Some(Duration::from_millis(1500)));
        assert_eq!(with("2M"), Some(Duration::from_secs(120)));
        assert_eq!(with("250u"), Some(Duration::from_micros(250)));
        assert_eq!(with("7x"), None);
        assert_eq!(with("S"), None);
        assert_eq!(super::deadline(&tonic::Request::new(())), None);
    }
}
