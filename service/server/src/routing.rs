//! Calls for a market another replica leads, passed on to that replica.
//!
//! A market's book lives in one process, its leader. Replicas on one
//! PostgreSQL database take markets as calls come ([`crate::store::trading::Leader`]),
//! and a leader records where it is reached (its advertised URL) when it
//! takes a market. A replica called for a market it does not lead passes
//! the call on to that URL with the caller's credentials, deadline and
//! trace context; the leader authenticates and authorises it again, and its
//! answer, an error included, is the answer. So clients and load balancers
//! may call any replica.
//!
//! A forwarded call is marked ([`FORWARDED`]) and never passed on again: a
//! replica that does not lead the market it is forwarded answers
//! `NOT_LEADER`, so a stale URL costs one hop and the client's retry, never
//! a loop. A leader that does not answer (it died, and its lease has not
//! been released yet) is `UNAVAILABLE` / `NOT_LEADER` too; the next call
//! after its lease goes is led here.

use std::collections::HashMap;
use std::sync::Mutex;

use tonic::metadata::MetadataMap;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Request, Status};
use volta_api::pb::trading::trading_service_client::TradingServiceClient;

use volta_api::status::{self as errors, Reason};

/// The header that marks a call forwarded by a replica.
pub(crate) const FORWARDED: &str = "x-volta-forwarded";

/// The headers a forwarded call keeps: who calls, by when, in which trace.
const PASSED_ON: [&str; 4] = ["authorization", "grpc-timeout", "traceparent", "x-request-id"];

/// The most a forwarded call's answer may weigh (a submission that sweeps
/// a deep book answers with every trade).
const MAX_ANSWER_BYTES: usize = 64 << 20;

/// Where this replica is reached, and connections to the others.
#[derive(Debug)]
pub(crate) struct Router {
    own: Option<String>,
    tls: Option<ClientTlsConfig>,
    channels: Mutex<HashMap<String, Channel>>,
}

impl Router {
    /// A router for a replica reached at `own` (none: it forwards, but
    /// other replicas cannot forward to it). `ca` is the PEM certificate
    /// the other replicas' TLS certificates are checked against (with TLS,
    /// the replicas' shared certificate, which must name the advertised
    /// hosts); none: plain HTTP/2.
    pub(crate) fn new(own: Option<String>, ca: Option<Vec<u8>>) -> Self {
        let tls = ca.map(|pem| ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)));
        Self { own, tls, channels: Mutex::new(HashMap::new()) }
    }

    /// Where this replica is reached, if it says.
    pub(crate) fn own(&self) -> Option<&str> {
        self.own.as_deref()
    }

    /// Whether `request` was forwarded by another replica.
    pub(crate) fn is_forwarded<T>(request: &Request<T>) -> bool {
        request.metadata().contains_key(FORWARDED)
    }

    /// The answer of a forwarded call, counted; a leader that does not
    /// answer at all (a transport error, which carries no error details:
    /// every error of Volta's does) is [`not_reachable`].
    fn answered<T>(
        url: &str,
        metrics: &crate::telemetry::Metrics,
        result: Result<tonic::Response<T>, Status>,
    ) -> Result<tonic::Response<T>, Status> {
        match result {
            Err(status) if status.details().is_empty() && status.code() == tonic::Code::Unavailable => {
                metrics.forwarded("unreachable");
                tracing::warn!(url, error = %status.message(), "a market's leader does not answer");
                Err(not_reachable(url))
            }
            other => {
                metrics.forwarded("answered");
                other
            }
        }
    }

    /// A client of the replica at `url` (one connection per replica, made
    /// at the first call and kept).
    fn client(&self, url: &str) -> Result<TradingServiceClient<Channel>, Status> {
        let mut channels = self.channels.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let channel = match channels.get(url) {
            Some(channel) => channel.clone(),
            None => {
                let mut endpoint = Endpoint::from_shared(url.to_owned()).map_err(|e| {
                    tracing::error!(url, error = %e, "a market's leader advertised a URL that does not parse");
                    not_reachable(url)
                })?;
                if let Some(tls) = &self.tls {
                    endpoint = endpoint.tls_config(tls.clone()).map_err(|e| {
                        tracing::error!(url, error = %e, "no TLS to a market's leader");
                        not_reachable(url)
                    })?;
                }
                let channel = endpoint.connect_lazy();
                channels.insert(url.to_owned(), channel.clone());
                channel
            }
        };
        Ok(TradingServiceClient::new(channel).max_decoding_message_size(MAX_ANSWER_BYTES))
    }

    /// Passes `request` on to the leader at `url` with `call` (the method
    /// of the same name), and returns its answer, counted in `metrics`.
    ///
    /// # Errors
    /// The leader's answer when it is an error; [`not_reachable`] when it
    /// does not answer.
    pub(crate) async fn forward<T, R, F, Fut>(
        &self,
        url: &str,
        metrics: &crate::telemetry::Metrics,
        request: Request<T>,
        call: F,
    ) -> Result<tonic::Response<R>, Status>
    where
        F: FnOnce(TradingServiceClient<Channel>, Request<T>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<R>, Status>>,
    {
        let (headers, _, message) = request.into_parts();
        let forwarded = self.pass_on(&headers, message);
        let answer = call(self.client(url)?, forwarded).await;
        Self::answered(url, metrics, answer)
    }

    /// `message` as a call forwarded with the headers `from` of the call
    /// that came: its credentials, deadline and trace, marked as forwarded.
    fn pass_on<T>(&self, from: &MetadataMap, message: T) -> Request<T> {
        let mut request = Request::new(message);
        for key in PASSED_ON {
            if let Some(value) = from.get(key) {
                request.metadata_mut().insert(key, value.clone());
            }
        }
        let by =
            self.own.as_deref().and_then(|own| own.parse().ok()).unwrap_or_else(|| "replica".parse().expect("ascii"));
        request.metadata_mut().insert(FORWARDED, by);
        request
    }
}

/// The error of a leader that does not answer.
pub(crate) fn not_reachable(url: &str) -> Status {
    errors::error(
        Reason::NotLeader,
        format!(
            "the market's leader ({url}) does not answer; retry: once its lease is released, another replica leads"
        ),
    )
}
