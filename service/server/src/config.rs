//! `volta serve`'s configuration: a TOML file, overridden by environment
//! variables and flags (`--listen` beats `VOLTA_LISTEN` beats `[server]
//! listen`). Every setting has an embedded default, so no file is needed.
//!
//! ```toml
//! [server]
//! listen = "0.0.0.0:50051"          # non-loopback needs [auth]
//! metrics_listen = "127.0.0.1:9464" # Prometheus text on GET /metrics
//! solver_slots = 2                  # solves at once; more are shed
//! max_request_mib = 32
//! max_connection_age_seconds = 300  # clients reconnect (and rebalance) this often
//! advertise_url = "http://10.0.0.7:50051"  # where other replicas reach this one
//!
//! [storage]
//! url = "postgres://volta@db/volta" # default: sqlite://volta.db
//! migrate = true                    # false: `volta migrate` does it; a schema behind is refused
//!
//! [auth]
//! hs256_secret_file = "/run/secrets/volta-jwt"   # or rs256_public_key_file
//! issuer = "https://login.example.org"            # optional checks
//! audience = "volta"
//!
//! [tls]
//! cert_file = "/etc/volta/tls.crt"
//! key_file = "/etc/volta/tls.key"
//!
//! [limits]                           # budgets, checked before work starts
//! max_concurrent_calls = 8           # calls read and served at once; more wait
//! max_call_seconds = 900             # deadline of a call that sets none (or a longer one)
//! max_case_mib = 8                   # text of a case (JSON or TOML)
//! max_case_cells = 250000            # steps x assets of a case
//! max_pareto_points = 32
//! max_series_steps = 1000000         # grid length of an uploaded series
//! max_horizon_steps = 2976
//! max_lags = 16
//! max_regime_bins = 10
//! max_trees = 5000
//! max_load_readings = 1000000        # readings of one LoadReadings stream
//! max_period_days = 3660             # days a contract statistic or settlement spans
//!
//! [log]
//! format = "json"                   # or "text"
//! level = "info"                    # a tracing filter: "info,volta_server=debug"
//!
//! [otlp]                             # call spans to an OpenTelemetry collector
//! endpoint = "http://127.0.0.1:4317" # OTLP/gRPC; default: none (no export)
//! service_name = "volta"             # the resource's service.name
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use schemars::JsonSchema;
use serde::Deserialize;

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Listening, the services served, the solver pool, connections.
    pub server: Server,
    /// The database of every service (models, contracts, markets, messages) and its schema.
    pub storage: Storage,
    /// Bearer-token authentication; none means loopback only.
    pub auth: Option<Auth>,
    /// TLS for the gRPC port; none means plaintext.
    pub tls: Option<Tls>,
    /// Log format and filter.
    pub log: Log,
    /// Budgets of a single call.
    pub limits: Limits,
    /// Trace export.
    pub otlp: Otlp,
    /// Messages between services.
    pub messaging: Messaging,
}

/// `[limits]`: what one call may ask of the server. Each is checked before
/// any work starts, and a request beyond one is INVALID_ARGUMENT naming the
/// field and the limit (docs/security.md).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Volta calls being read and served at once; more wait their turn
    /// (until their deadline) before their request is read, so that memory
    /// stays below this times `server.max_request_mib`.
    pub max_concurrent_calls: usize,
    /// The text of a case, MiB. Reading a case takes about 17 times its
    /// size in memory as JSON and 43 times as TOML (measured), so this
    /// times `max_concurrent_calls` bounds the memory of reading cases. A
    /// year of hourly steps with a dozen series is about 1 MiB.
    pub max_case_mib: usize,
    /// The longest a call may run: its deadline when it sets none or a
    /// later one, so that no caller holds a solver slot for ever.
    pub max_call_seconds: u64,
    /// Steps times assets of a case to schedule. The campus year (8,736
    /// steps x 13 assets = 113,568 cells) peaks near 2.4 GB under unit
    /// commitment; the default allows twice that.
    pub max_case_cells: usize,
    /// Points of a Pareto front.
    pub max_pareto_points: usize,
    /// Steps of the regular grid an uploaded series spans.
    pub max_series_steps: usize,
    /// Steps of one forecast (the default is a 31-day month of quarter
    /// hours, the longest rest of a period a projection forecasts).
    pub max_horizon_steps: usize,
    /// Same-time lags of a forecasting model (count; each at most 400 days).
    pub max_lags: usize,
    /// Calibration regimes of a forecasting model.
    pub max_regime_bins: usize,
    /// Trees of a gradient-boosted model.
    pub max_trees: usize,
    /// Readings of one load (`LoadReadings`, every chunk of the stream):
    /// a load is one transaction, held in memory until it commits.
    pub max_load_readings: usize,
    /// Days a contract statistic or settlement spans.
    pub max_period_days: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_concurrent_calls: 8,
            max_case_mib: 8,
            max_call_seconds: 900,
            max_case_cells: 250_000,
            max_pareto_points: 32,
            max_series_steps: 1_000_000,
            max_horizon_steps: 2976,
            max_lags: 16,
            max_regime_bins: 10,
            max_trees: 5000,
            max_load_readings: 1_000_000,
            max_period_days: 3660,
        }
    }
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Server {
    /// The gRPC address (port 0: any free port, logged on start).
    pub listen: SocketAddr,
    /// The Prometheus metrics address; none: no metrics endpoint.
    pub metrics_listen: Option<SocketAddr>,
    /// Solves and fits that may run at once (default: the number of cores);
    /// a call that finds every slot busy gets RESOURCE_EXHAUSTED.
    pub solver_slots: Option<usize>,
    /// Largest request accepted, MiB.
    pub max_request_mib: usize,
    /// The services this process serves, of [`SERVICES`] (default: all):
    /// processes that share a database and a NATS server may split them.
    pub services: Vec<String>,
    /// A client connection older than this is closed gracefully (its calls
    /// finish; HTTP/2 GOAWAY), so that clients connect again and spread
    /// over the replicas added since; none: connections live as long as
    /// their clients keep them.
    pub max_connection_age_seconds: Option<u64>,
    /// Where the other replicas reach this one (`http://10.0.0.7:50051`):
    /// a replica called for a market this one leads forwards the call here.
    /// None: the listening address when it names a host (`127.0.0.1:50051`),
    /// no forwarding when it listens on every address (`0.0.0.0`).
    pub advertise_url: Option<String>,
}

/// Every service `volta serve` can serve.
pub const SERVICES: [&str; 5] = ["dispatch", "forecast", "planning", "contracts", "trading"];

impl Default for Server {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            metrics_listen: None,
            solver_slots: None,
            max_request_mib: 32,
            services: SERVICES.iter().map(|s| (*s).to_owned()).collect(),
            max_connection_age_seconds: None,
            advertise_url: None,
        }
    }
}

impl Server {
    /// Whether this process serves `service`.
    #[must_use]
    pub fn serves(&self, service: &str) -> bool {
        self.services.iter().any(|s| s == service)
    }
}

/// `[messaging]`: how the trading service's trades reach the contract
/// service's market ledger (docs/settlement.md).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Messaging {
    /// A NATS server with JetStream (`nats://127.0.0.1:4222`), for trading
    /// and contracts in separate processes; none: both in this process,
    /// delivered in it.
    pub nats_url: Option<String>,
    /// The JetStream stream of settlement messages (its subjects are
    /// `volta.STREAM.trade.P`, one per partition).
    pub stream: String,
    /// Partitions of the market ledger: a market's messages all go to one,
    /// and each is consumed by one replica of the contract service at a
    /// time, the partitions shared evenly among the replicas running.
    pub partitions: u32,
    /// A message published this many seconds ago and not handled by the
    /// ledger is sent again by the reconciler (which looks a third as often).
    pub resend_after_seconds: u64,
    /// Rows of handled messages (the outbox's and the inbox's) are kept
    /// this long, then deleted; dead letters and the ledger are kept.
    pub retain_hours: u64,
}

impl Default for Messaging {
    fn default() -> Self {
        Self {
            nats_url: None,
            stream: "VOLTA_SETTLEMENT".to_owned(),
            partitions: 8,
            resend_after_seconds: 30,
            retain_hours: 168,
        }
    }
}

/// `[storage]`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Storage {
    /// `sqlite://FILE` (created if missing) or `postgres://...`.
    pub url: String,
    /// Whether `volta serve` brings the schema up to date at start. With
    /// `false` (a migration job runs `volta migrate` instead), a server that
    /// finds the schema behind its own version refuses to start.
    pub migrate: bool,
}

impl Default for Storage {
    fn default() -> Self {
        Self { url: "sqlite://volta.db".to_owned(), migrate: true }
    }
}

/// `[auth]`: how bearer tokens are checked. Exactly one key.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Auth {
    /// A file holding the HS256 shared secret (the bytes of the file,
    /// trailing newline removed). `VOLTA_JWT_HS256_SECRET` gives it inline.
    pub hs256_secret_file: Option<PathBuf>,
    /// The HS256 secret itself; prefer the file or the environment.
    pub hs256_secret: Option<String>,
    /// A PEM file with the RS256 public key.
    pub rs256_public_key_file: Option<PathBuf>,
    /// Required `iss`, when set.
    pub issuer: Option<String>,
    /// Required `aud`, when set.
    pub audience: Option<String>,
}

/// `[tls]`: the server's certificate chain and key, PEM.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// Certificate chain, PEM.
    pub cert_file: PathBuf,
    /// Private key, PEM.
    pub key_file: PathBuf,
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Log {
    /// One JSON object per line, or human-readable text.
    pub format: LogFormat,
    /// A tracing filter directive (`RUST_LOG` syntax).
    pub level: String,
}

impl Default for Log {
    fn default() -> Self {
        Self { format: LogFormat::Json, level: "info".to_owned() }
    }
}

/// `[otlp]`: where call spans go (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
/// `OTEL_EXPORTER_OTLP_ENDPOINT` and `OTEL_SERVICE_NAME` set them too).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Otlp {
    /// A collector's OTLP/gRPC endpoint, `http://host:port`; none: no export.
    pub endpoint: Option<String>,
    /// The `service.name` of the spans' resource.
    pub service_name: String,
}

impl Default for Otlp {
    fn default() -> Self {
        Self { endpoint: None, service_name: "volta".to_owned() }
    }
}

impl Otlp {
    /// The endpoint as a URI: `http://host:port` (a collector, or an agent
    /// beside the server; TLS to the collector is not supported).
    ///
    /// # Errors
    /// Anything else, named as the setting `otlp.endpoint`.
    pub fn endpoint_uri(&self) -> anyhow::Result<Option<http::Uri>> {
        let Some(url) = &self.endpoint else { return Ok(None) };
        let uri: http::Uri = url.parse().with_context(|| format!("otlp.endpoint {url:?} is not a URI"))?;
        match uri.scheme_str() {
            Some("http") if uri.host().is_some() => Ok(Some(uri)),
            Some("https") => anyhow::bail!(
                "otlp.endpoint {url:?}: TLS to the collector is not supported; send to a collector or an agent \
                 over http:// on a trusted network"
            ),
            _ => anyhow::bail!("otlp.endpoint {url:?}: give http://host:port"),
        }
    }
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line (for log shippers).
    Json,
    /// Human-readable lines.
    Text,
}

impl Config {
    /// The configuration file as a JSON Schema (draft 2020-12), generated
    /// from the types that read it: what `volta schema --config` prints and
    /// `deploy/config.schema.json` holds. It gives each setting's type,
    /// default and description; the rules between settings are
    /// [`Config::check`]'s.
    #[must_use]
    pub fn json_schema() -> serde_json::Value {
        let generator = schemars::SchemaGenerator::new(schemars::generate::SchemaSettings::draft2020_12());
        let mut schema = generator.into_root_schema_for::<Self>();
        schema.insert("title".into(), "volta serve configuration".into());
        schema.insert(
            "description".into(),
            "The TOML file of `volta serve --config FILE` (docs/serve.md). Environment variables and flags \
             override it."
                .into(),
        );
        schema.to_value()
    }

    /// Reads a TOML configuration file; unknown keys are errors naming the key.
    ///
    /// # Errors
    /// An unreadable file, or invalid TOML or settings (with the key's path).
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        Self::from_toml(&text).with_context(|| format!("in {}", path.display()))
    }

    /// Parses TOML text.
    ///
    /// # Errors
    /// Invalid TOML, or a setting of the wrong type or unknown (its path named).
    pub fn from_toml(text: &str) -> anyhow::Result<Self> {
        let table: toml::Table = toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.message()))?;
        serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| anyhow::anyhow!("{}: {}", e.path(), e.inner().message()))
    }

    /// Checks settings that do not depend on the machine: the auth key
    /// choice and the loopback rule.
    ///
    /// # Errors
    /// No or two auth keys, or a non-loopback address without auth.
    pub fn check(&self) -> anyhow::Result<()> {
        if let Some(auth) = &self.auth {
            let keys =
                [auth.hs256_secret.is_some(), auth.hs256_secret_file.is_some(), auth.rs256_public_key_file.is_some()];
            match keys.iter().filter(|k| **k).count() {
                0 => anyhow::bail!(
                    "auth: give one key: hs256_secret_file, rs256_public_key_file or VOLTA_JWT_HS256_SECRET"
                ),
                1 => {}
                _ => anyhow::bail!("auth: give only one of hs256_secret, hs256_secret_file and rs256_public_key_file"),
            }
        } else {
            if !self.server.listen.ip().is_loopback() {
                anyhow::bail!(
                    "server.listen = {}: no authentication is configured, so volta serve binds to loopback addresses \
                     only (configure [auth], or listen on 127.0.0.1)",
                    self.server.listen
                );
            }
            if let Some(metrics) = self.server.metrics_listen.filter(|a| !a.ip().is_loopback()) {
                anyhow::bail!(
                    "server.metrics_listen = {metrics}: no authentication is configured, so the metrics port too binds \
                     to loopback addresses only (configure [auth], or listen on 127.0.0.1)"
                );
            }
        }
        self.otlp.endpoint_uri()?;
        let services = &self.server.services;
        if services.is_empty() {
            anyhow::bail!("server.services is empty: serve at least one of {}", SERVICES.join(", "));
        }
        for (i, s) in services.iter().enumerate() {
            if !SERVICES.contains(&s.as_str()) {
                anyhow::bail!("server.services: {s:?} is not a service; one of {}", SERVICES.join(", "));
            }
            if services[..i].contains(s) {
                anyhow::bail!("server.services: {s:?} is named twice");
            }
        }
        if self.server.serves("trading") && !self.server.serves("contracts") && self.messaging.nats_url.is_none() {
            anyhow::bail!(
                "server.services: trading without contracts needs messaging.nats_url, so that its trades reach the \
                 contract service's market ledger in another process"
            );
        }
        let stream = &self.messaging.stream;
        if stream.is_empty() || !stream.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            anyhow::bail!("messaging.stream {stream:?}: letters, digits, _ and - only");
        }
        if self.messaging.resend_after_seconds == 0 {
            anyhow::bail!("messaging.resend_after_seconds must be at least 1");
        }
        if self.messaging.retain_hours == 0 {
            anyhow::bail!("messaging.retain_hours must be at least 1");
        }
        if !(1..=64).contains(&self.messaging.partitions) {
            anyhow::bail!("messaging.partitions must be in 1..=64, not {}", self.messaging.partitions);
        }
        if let Some(url) = &self.server.advertise_url {
            let scheme = if self.tls.is_some() { "https://" } else { "http://" };
            if !url.starts_with(scheme) || url.parse::<http::Uri>().is_err() {
                anyhow::bail!(
                    "server.advertise_url {url:?}: give {scheme}host:port, the address other replicas reach this one at"
                );
            }
        }
        if self.server.max_connection_age_seconds == Some(0) {
            anyhow::bail!("server.max_connection_age_seconds must be at least 1");
        }
        if let Some(url) = &self.messaging.nats_url
            && !(url.starts_with("nats://") || url.starts_with("tls://"))
        {
            anyhow::bail!("messaging.nats_url {url:?}: give nats://host:port");
        }
        let limits = [
            ("limits.max_concurrent_calls", self.limits.max_concurrent_calls),
            ("limits.max_case_mib", self.limits.max_case_mib),
            ("limits.max_case_cells", self.limits.max_case_cells),
            ("limits.max_series_steps", self.limits.max_series_steps),
            ("limits.max_horizon_steps", self.limits.max_horizon_steps),
            ("limits.max_regime_bins", self.limits.max_regime_bins),
            ("limits.max_trees", self.limits.max_trees),
            ("limits.max_load_readings", self.limits.max_load_readings),
            ("limits.max_period_days", self.limits.max_period_days),
        ];
        if let Some((name, _)) = limits.iter().find(|(_, v)| *v == 0) {
            anyhow::bail!("{name} must be at least 1");
        }
        if !(1..=7 * 24 * 3600).contains(&self.limits.max_call_seconds) {
            anyhow::bail!(
                "limits.max_call_seconds must be in 1..=604800 (a week), not {}",
                self.limits.max_call_seconds
            );
        }
        if self.limits.max_pareto_points < 2 {
            anyhow::bail!("limits.max_pareto_points must be at least 2");
        }
        if !(1..=1024).contains(&self.server.max_request_mib) {
            anyhow::bail!("server.max_request_mib must be in 1..=1024, not {}", self.server.max_request_mib);
        }
        if self.server.solver_slots == Some(0) {
            anyhow::bail!("server.solver_slots must be at least 1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{Config, LogFormat, Otlp};

    #[test]
    fn only_http_collector_endpoints_are_taken() {
        let otlp = |url: &str| Otlp { endpoint: Some(url.to_owned()), ..Otlp::default() };
        assert!(Otlp::default().endpoint_uri().is_ok_and(|u| u.is_none()));
        for good in ["http://127.0.0.1:4317", "http://collector.monitoring:4317"] {
            assert!(otlp(good).endpoint_uri().is_ok_and(|u| u.is_some()), "{good}");
        }
        for bad in ["https://collector:4317", "127.0.0.1:4317", "ftp://x", "not a uri"] {
            let error = otlp(bad).endpoint_uri().expect_err(bad).to_string();
            assert!(error.contains("otlp.endpoint"), "{bad}: {error}");
        }
        let config = Config::from_toml("[otlp]\nendpoint = \"https://c:4317\"\n").expect("parses");
        assert!(config.check().is_err_and(|e| e.to_string().contains("TLS")));
    }

    #[test]
    fn an_empty_file_gives_the_embedded_defaults() {
        let config = Config::from_toml("").expect("empty");
        assert_eq!(config.server.listen.to_string(), "127.0.0.1:50051");
        assert_eq!(config.storage.url, "sqlite://volta.db");
        assert_eq!(config.log.format, LogFormat::Json);
        assert!(config.auth.is_none() && config.tls.is_none());
        config.check().expect("defaults are valid");
    }

    #[test]
    fn unknown_and_mistyped_keys_are_named() {
        let err = Config::from_toml("[server]\nlisten = \"127.0.0.1:1\"\nslots = 3\n").expect_err("unknown");
        assert!(format!("{err:#}").contains("slots"), "{err:#}");
        let err = Config::from_toml("[server]\nmax_request_mib = \"big\"\n").expect_err("mistyped");
        assert!(format!("{err:#}").contains("server.max_request_mib"), "{err:#}");
    }

    #[test]
    fn a_public_address_needs_auth_and_auth_needs_one_key() {
        let open = Config::from_toml("[server]\nlisten = \"0.0.0.0:50051\"\n").expect("parse");
        assert!(format!("{:#}", open.check().expect_err("no auth")).contains("loopback"));
        let guarded =
            Config::from_toml("[server]\nlisten = \"0.0.0.0:50051\"\n[auth]\nhs256_secret = \"s\"\n").expect("parse");
        guarded.check().expect("auth configured");
        let keyless = Config::from_toml("[auth]\nissuer = \"me\"\n").expect("parse");
        assert!(format!("{:#}", keyless.check().expect_err("no key")).contains("one key"));
        // Without auth, the metrics port is held to the same loopback rule.
        let open = Config::from_toml("[server]\nmetrics_listen = \"0.0.0.0:9464\"\n").expect("parse");
        assert!(format!("{:#}", open.check().expect_err("no auth")).contains("metrics_listen"));
        // The address other replicas reach this one at is a URL of the server's scheme.
        for bad in ["10.0.0.7:50051", "https://10.0.0.7:50051", "http://"] {
            let config = Config::from_toml(&format!("[server]\nadvertise_url = {bad:?}\n")).expect("parse");
            assert!(format!("{:#}", config.check().expect_err(bad)).contains("advertise_url"), "{bad}");
        }
        let good = Config::from_toml("[server]\nadvertise_url = \"http://10.0.0.7:50051\"\n").expect("parse");
        good.check().expect("a plain URL without TLS");
    }

    #[test]
    fn limits_have_defaults_and_zero_is_refused() {
        let config = Config::from_toml("[limits]\nmax_pareto_points = 8\n").expect("parse");
        assert_eq!(config.limits.max_pareto_points, 8);
        assert_eq!(config.limits.max_case_cells, super::Limits::default().max_case_cells);
        let zero = Config::from_toml("[limits]\nmax_case_cells = 0\n").expect("parse");
        assert!(format!("{:#}", zero.check().expect_err("zero")).contains("limits.max_case_cells"));
        for bad in ["[limits]\nmax_call_seconds = 0\n", "[limits]\nmax_call_seconds = 9999999999\n"] {
            let config = Config::from_toml(bad).expect("parse");
            assert!(format!("{:#}", config.check().expect_err(bad)).contains("limits.max_call_seconds"));
        }
        let huge = Config::from_toml("[server]\nmax_request_mib = 4096\n").expect("parse");
        assert!(format!("{:#}", huge.check().expect_err("4 GiB")).contains("max_request_mib"));
        let typo = Config::from_toml("[limits]\nmax_case_cell = 5\n").expect_err("unknown key");
        assert!(format!("{typo:#}").contains("max_case_cell"), "{typo:#}");
    }
}
