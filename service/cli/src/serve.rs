//! `volta serve`: every gRPC service on one port.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use volta_server::config::{Auth, Config, LogFormat, Tls};

pub(super) const LONG_ABOUT: &str = "\
Serve Volta over gRPC on one port:
  volta.dispatch.v1.DispatchService   Validate, Schedule, Pareto, RollingHorizon (streamed)
  volta.forecast.v1.ForecastService   Backtest, Train, Forecast, ListModels, DeleteModel
  volta.planning.v1.PlanningService   Plan: forecasts with stored models, then a day-ahead plan
  volta.contracts.v1.ContractService  contracts, readings, statistics, settlement, market positions
  volta.trading.v1.TradingService     local markets: orders, books, trades, call auctions,
                                      contract positions
  grpc.health.v1.Health and server reflection (grpcurl works)

Settings come from --config FILE (TOML), then environment variables, then
flags, each overriding the one before; with none, the embedded defaults
serve on 127.0.0.1:50051 and keep trained models in ./volta.db (SQLite).
Set storage.url (VOLTA_DATABASE_URL) to postgres://... to use PostgreSQL.

Solves and fits run on a bounded pool of --solver-slots; a call that finds
every slot busy gets RESOURCE_EXHAUSTED at once. A call's deadline becomes
the solver's time limit, and a cancelled call stops its work between
phases. SIGTERM or Ctrl-C reports NOT_SERVING, stops accepting calls and
lets in-flight calls finish.

Authentication: with [auth] configured (an HS256 secret or an RS256 public
key), every call needs `authorization: Bearer <JWT>` with a tenant claim
and roles (viewer, operator, admin); without it the server binds to
loopback addresses only. TLS is on when [tls] names a certificate and key.

Every trade the trading service stores reaches the contract service's
market ledger exactly once, and every contract change reaches the trading
service's view of contract positions exactly once: inside this process by
default, or over NATS JetStream (--nats-url) when trading and contracts run
as separate processes (--services) on one PostgreSQL database.

Replicas on one PostgreSQL database share the markets: each market's book
lives in one of them (its leader), and a replica called for a market
another leads forwards the call there (--advertise-url says where this one
is reached), so clients may call any replica.

Logs are JSON lines on stderr (--log-format text for people); Prometheus
metrics are served on --metrics-listen at GET /metrics.";

pub(super) const AFTER_HELP: &str = "\
Examples:
  volta serve                                  # 127.0.0.1:50051, ./volta.db
  volta serve --listen 127.0.0.1:0             # any free port, logged on start
  volta serve --config /etc/volta/volta.toml --metrics-listen 127.0.0.1:9464
  VOLTA_DATABASE_URL=postgres://volta@db/volta volta serve
  volta serve --services trading --nats-url nats://127.0.0.1:4222 --database postgres://...
  grpcurl -plaintext 127.0.0.1:50051 list
  grpcurl -plaintext -d @ 127.0.0.1:50051 volta.dispatch.v1.DispatchService/Schedule < request.json

Environment: VOLTA_CONFIG, VOLTA_SERVICES, VOLTA_NATS_URL, VOLTA_ADVERTISE_URL, VOLTA_LISTEN, VOLTA_METRICS_LISTEN, VOLTA_SOLVER_SLOTS,
VOLTA_MAX_REQUEST_MIB, VOLTA_DATABASE_URL, VOLTA_LOG_FORMAT, VOLTA_LOG,
VOLTA_JWT_HS256_SECRET, VOLTA_JWT_RS256_PUBLIC_KEY_FILE, VOLTA_TLS_CERT_FILE,
VOLTA_TLS_KEY_FILE; OpenTelemetry's OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (or
OTEL_EXPORTER_OTLP_ENDPOINT) and OTEL_SERVICE_NAME export call spans to a collector.
The configuration file's format: docs/serve.md.";

/// Arguments of `volta serve`; each overrides the configuration file.
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// A TOML configuration file (see docs/serve.md).
    #[arg(long, value_name = "FILE", env = "VOLTA_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on (loopback only without authentication) [default: 127.0.0.1:50051].
    #[arg(long, env = "VOLTA_LISTEN")]
    listen: Option<SocketAddr>,
    /// Address of the Prometheus metrics endpoint (GET /metrics) [default: none].
    #[arg(long, value_name = "ADDR", env = "VOLTA_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Solves and fits that may run at once [default: the number of cores].
    #[arg(long, value_name = "N", env = "VOLTA_SOLVER_SLOTS")]
    solver_slots: Option<usize>,
    /// Largest request accepted, MiB [default: 32].
    #[arg(long, value_name = "MIB", env = "VOLTA_MAX_REQUEST_MIB")]
    max_request_mib: Option<usize>,
    /// Database: sqlite://FILE or postgres://USER@HOST/DB [default: sqlite://volta.db].
    #[arg(long, value_name = "URL", env = "VOLTA_DATABASE_URL")]
    database: Option<String>,
    /// Log lines as JSON objects or as text [default: json].
    #[arg(long, value_enum, env = "VOLTA_LOG_FORMAT")]
    log_format: Option<LogStyle>,
    /// Log filter, e.g. `info` or `info,volta_server=debug` [default: info].
    #[arg(long, value_name = "FILTER", env = "VOLTA_LOG")]
    log: Option<String>,
    /// RS256 public key (PEM) that signs bearer tokens; turns auth on.
    #[arg(long, value_name = "PEM", env = "VOLTA_JWT_RS256_PUBLIC_KEY_FILE")]
    jwt_rs256_public_key_file: Option<PathBuf>,
    /// TLS certificate chain (PEM); needs --tls-key-file.
    #[arg(long, value_name = "PEM", env = "VOLTA_TLS_CERT_FILE", requires = "tls_key_file")]
    tls_cert_file: Option<PathBuf>,
    /// TLS private key (PEM); needs --tls-cert-file.
    #[arg(long, value_name = "PEM", env = "VOLTA_TLS_KEY_FILE", requires = "tls_cert_file")]
    tls_key_file: Option<PathBuf>,
    /// Serve only these services (comma-separated: dispatch, forecast, planning, contracts, trading) [default: all].
    #[arg(long, value_name = "LIST", env = "VOLTA_SERVICES", value_delimiter = ',')]
    services: Option<Vec<String>>,
    /// NATS server with JetStream carrying trades to the market ledger between processes
    /// [default: none, in process].
    #[arg(long, value_name = "URL", env = "VOLTA_NATS_URL")]
    nats_url: Option<String>,
    /// Where the other replicas reach this one (http://10.0.0.7:50051): they forward the calls of the
    /// markets this one leads to it [default: the --listen address unless it is 0.0.0.0 or ::].
    #[arg(long, value_name = "URL", env = "VOLTA_ADVERTISE_URL")]
    advertise_url: Option<String>,
}

impl Args {
    /// The file's settings, overridden by environment variables and flags.
    fn config(&self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        let server = &mut config.server;
        server.listen = self.listen.unwrap_or(server.listen);
        server.metrics_listen = self.metrics_listen.or(server.metrics_listen);
        server.solver_slots = self.solver_slots.or(server.solver_slots);
        server.max_request_mib = self.max_request_mib.unwrap_or(server.max_request_mib);
        server.advertise_url = self.advertise_url.clone().or(server.advertise_url.take());
        if let Some(url) = &self.database {
            config.storage.url.clone_from(url);
        }
        if let Some(services) = &self.services {
            config.server.services.clone_from(services);
        }
        if let Some(url) = &self.nats_url {
            config.messaging.nats_url = Some(url.clone());
        }
        if let Some(style) = self.log_format {
            config.log.format = match style {
                LogStyle::Json => LogFormat::Json,
                LogStyle::Text => LogFormat::Text,
            };
        }
        if let Some(level) = &self.log {
            config.log.level.clone_from(level);
        }
        // OpenTelemetry's standard variables, the signal's own first.
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        if let Some(url) = var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| var("OTEL_EXPORTER_OTLP_ENDPOINT")) {
            config.otlp.endpoint = Some(url);
        }
        if let Some(name) = var("OTEL_SERVICE_NAME") {
            config.otlp.service_name = name;
        }
        // A secret only from the environment or a file, never from a flag
        // (flags show in `ps`).
        if let Ok(secret) = std::env::var("VOLTA_JWT_HS256_SECRET") {
            let auth = config.auth.get_or_insert_with(Auth::default);
            auth.hs256_secret = Some(secret);
            auth.hs256_secret_file = None;
            auth.rs256_public_key_file = None;
        }
        if let Some(path) = &self.jwt_rs256_public_key_file {
            let auth = config.auth.get_or_insert_with(Auth::default);
            auth.rs256_public_key_file = Some(path.clone());
            auth.hs256_secret = None;
            auth.hs256_secret_file = None;
        }
        if let (Some(cert_file), Some(key_file)) = (&self.tls_cert_file, &self.tls_key_file) {
            config.tls = Some(Tls { cert_file: cert_file.clone(), key_file: key_file.clone() });
        }
        Ok(config)
    }
}

/// `--log-format`: the configuration's [`LogFormat`], spelled for the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogStyle {
    /// One JSON object per line (for log shippers).
    Json,
    /// Human-readable lines.
    Text,
}

pub(super) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    volta_server::serve(&args.config()?)?;
    Ok(ExitCode::SUCCESS)
}

pub(super) const MIGRATE_ABOUT: &str = "\
Bring the database's schema up to this version of volta, then exit: what
`volta serve` does at start, for deployments that migrate once, in a job,
before the new replicas start (storage.migrate = false in their
configuration, so that a replica that finds the schema behind refuses to
start instead of migrating). Migrations only add tables and columns, so
replicas of the previous version keep working during a rollout. On
PostgreSQL, replicas and jobs migrating together take turns (an advisory
lock); a failed migration leaves the schema as it was.

Prints each service's schema version before and after. With --check,
changes nothing and exits 1 if any service's schema is behind.";

pub(super) const MIGRATE_AFTER_HELP: &str = "\
Examples:
  volta migrate --database postgres://volta@db/volta
  volta migrate --config /etc/volta/volta.toml       # storage.url of the file
  volta migrate --check --database sqlite://volta.db  # exit 1 if behind

Environment: VOLTA_CONFIG, VOLTA_DATABASE_URL.";

/// Arguments of `volta migrate`.
#[derive(Debug, clap::Args)]
pub(super) struct MigrateArgs {
    /// A TOML configuration file, for its storage.url (see docs/serve.md).
    #[arg(long, value_name = "FILE", env = "VOLTA_CONFIG")]
    config: Option<PathBuf>,
    /// Database: sqlite://FILE or postgres://USER@HOST/DB [default: the file's, else sqlite://volta.db].
    #[arg(long, value_name = "URL", env = "VOLTA_DATABASE_URL")]
    database: Option<String>,
    /// Change nothing; exit 1 if the schema is behind this version.
    #[arg(long)]
    check: bool,
}

pub(super) fn migrate(args: &MigrateArgs) -> anyhow::Result<ExitCode> {
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if let Some(url) = &args.database {
        config.storage.url.clone_from(url);
    }
    let (before, after) = volta_server::migrate(&config.storage.url, args.check)?;
    say!("{}", volta_server::store::redacted(&config.storage.url));
    let mut behind = false;
    for (was, now) in before.iter().zip(&after) {
        let state = if now.applied < now.latest {
            behind = true;
            format!("behind: {} of {}", now.applied, now.latest)
        } else if now.applied > now.latest {
            format!("{}, newer than this build's {} (kept)", now.applied, now.latest)
        } else if was.applied < now.applied {
            format!("migrated {} -> {}", was.applied, now.applied)
        } else {
            format!("{}, up to date", now.applied)
        };
        say!("  {:<10} {state}", now.service);
    }
    Ok(if behind { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
