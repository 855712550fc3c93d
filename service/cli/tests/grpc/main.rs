//! `volta serve` over real loopback gRPC, called with tonic clients: one
//! test binary (one link), a module per service and concern. This file
//! holds the running server and the requests the modules share.

mod access;
mod contracts;
mod dispatch;
mod forecast;
mod fuzz;
mod lifecycle;
mod planning;
mod positions;
mod security;
mod settlement;
mod tracing;
mod trading;

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};

use tonic::transport::Channel;
use volta_api::pb::dispatch as pb;
use volta_api::pb::forecast as fpb;

use fpb::forecast_service_client::ForecastServiceClient;
use pb::dispatch_service_client::DispatchServiceClient;

const SECRET: &str = "a test secret of at least thirty-two bytes";

/// A running `volta serve` on an ephemeral loopback port, in a working
/// directory of its own (where a server told of no database keeps its
/// default `volta.db`, not in the source tree); killed on drop.
struct Server {
    child: Child,
    url: String,
    metrics: Option<String>,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(extra: &[&str]) -> Self {
        Self::start_in_temp(extra, &[])
    }

    /// Starts with `env` added, on a SQLite file of its own (in its
    /// working directory).
    fn start_in_temp(extra: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_with(&[&["--database", "sqlite://volta.db"], extra].concat(), env)
    }

    fn start_with(args: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut child = Command::new(env!("CARGO_BIN_EXE_volta"))
            .current_dir(dir.path())
            .args(["serve", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
            .args(args)
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .spawn()
            .expect("volta serve starts");
        let mut reader = BufReader::new(child.stderr.take().expect("stderr"));
        let mut line = String::new();
        let started = loop {
            line.clear();
            if reader.read_line(&mut line).expect("log line") == 0 {
                panic!("volta serve exited before listening");
            }
            let json: serde_json::Value = serde_json::from_str(&line).expect("JSON log lines");
            if json["message"].as_str().is_some_and(|m| m.starts_with("listening on")) {
                break json;
            }
        };
        // Keep draining the server's log so that it never writes to a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        let scheme = if started["tls"].as_bool() == Some(true) { "https" } else { "http" };
        Self {
            child,
            url: format!("{scheme}://{}", started["addr"].as_str().expect("addr")),
            metrics: started["metrics"].as_str().filter(|m| *m != "off").map(str::to_owned),
            _dir: dir,
        }
    }

    /// The server's peak resident memory (VmHWM) in KiB, or 0 where /proc
    /// does not say.
    fn peak_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// Whether the server process is still up (not exited, not a zombie).
    fn is_running(&self) -> bool {
        std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).is_ok_and(|stat| !stat.contains(") Z"))
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(self.url.clone()).expect("url").connect().await.expect("connect")
    }

    async fn client(&self) -> DispatchServiceClient<Channel> {
        DispatchServiceClient::new(self.channel().await)
    }

    async fn forecaster(&self) -> ForecastServiceClient<Channel> {
        ForecastServiceClient::new(self.channel().await)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn case_json(rel: &str) -> pb::CaseText {
    let case = volta_engine::Case::from_path(volta_datasets::case(rel)).expect("case");
    pb::CaseText { format: Some(pb::case_text::Format::Json(case.to_json().expect("json"))) }
}

fn invalid_case() -> pb::CaseText {
    let text = std::fs::read_to_string(volta_datasets::invalid_cases().join("structure.toml")).expect("invalid");
    pb::CaseText { format: Some(pb::case_text::Format::Toml(text)) }
}

fn library_case(rel: &str) -> volta_engine::Case {
    volta_engine::Case::from_path(volta_datasets::case(rel)).expect("case")
}

fn close(a: f64, b: f64, rtol: f64) -> bool {
    (a - b).abs() <= rtol * b.abs().max(1.0)
}

/// An instant, from RFC 3339 text.
fn at(text: &str) -> prost_types::Timestamp {
    volta_api::time::timestamp(text.parse().expect("RFC 3339"))
}

/// A length of time.
fn length(text: &str) -> prost_types::Duration {
    volta_api::time::duration(text.parse().expect("a duration like 24h or PT30M"))
}

/// Victoria's half-hourly demand of 2014 with its temperature, as CSV.
fn victoria() -> fpb::SeriesData {
    let csv = std::fs::read_to_string(volta_datasets::raw("vic_elecdemand_2014_halfhourly.csv")).expect("csv");
    fpb::SeriesData {
        source: Some(fpb::series_data::Source::Csv(csv)),
        target: "demand_gw".into(),
        time_column: "period_start_aest_assumed".into(),
        exog_columns: vec!["temperature_c".into()],
        known_ahead_columns: vec!["temperature_c".into()],
        time_zone: "Australia/Brisbane".into(),
        cleaning: None,
    }
}

/// 48-step options of `model`.
fn model(kind: fpb::ModelKind) -> fpb::ModelOptions {
    fpb::ModelOptions { horizon_steps: Some(48), model: kind.into(), ..Default::default() }
}

/// The same with P10 and P90.
fn with_quantiles(options: fpb::ModelOptions) -> fpb::ModelOptions {
    fpb::ModelOptions { quantiles: vec![0.1, 0.9], ..options }
}

/// The end of the training data: 2014-10-31, local (AEST).
fn victoria_train_until() -> prost_types::Timestamp {
    at("2014-11-01T00:00:00+10:00")
}

/// A backtest of the protocol (train to 2014-10-31) on Victoria.
fn victoria_backtest(options: fpb::ModelOptions, refit_every: i32) -> fpb::BacktestRequest {
    fpb::BacktestRequest {
        series: Some(victoria()),
        options: Some(options),
        train_until: Some(victoria_train_until()),
        refit_every,
    }
}

/// Whether `path` (`options.lag_days[0]`, `series.csv[load]`,
/// `case.assets.chp.type`) names a field of the request message `message`
/// (`volta.forecast.v1.BacktestRequest`) in the protos the server serves.
/// Inside a case's text, paths are the case file's and are not walked.
fn field_exists(message: &str, path: &str) -> bool {
    use prost::Message as _;
    let set = prost_types::FileDescriptorSet::decode(volta_api::pb::DESCRIPTOR).expect("descriptors");
    let find = |name: &str| {
        set.file
            .iter()
            .find_map(|f| f.message_type.iter().find(|m| format!(".{}.{}", f.package(), m.name()) == name).cloned())
    };
    // Indices and column names in brackets (`csv[load_kw]`, `csv["a].b"]`,
    // quoted with escapes) are not fields.
    let (mut bracket, mut quoted, mut escaped) = (false, false, false);
    let mut fields = String::new();
    for c in path.chars() {
        match (bracket, quoted, escaped, c) {
            (true, true, true, _) => escaped = false,
            (true, true, false, '\\') => escaped = true,
            (true, _, false, '"') => quoted = !quoted,
            (true, false, _, ']') => bracket = false,
            (true, _, _, _) => {}
            (false, _, _, '[') => bracket = true,
            (false, _, _, c) => fields.push(c),
        }
    }
    let mut current = find(&format!(".{message}"));
    for name in fields.split('.') {
        let Some(descriptor) = current.take() else { return false };
        if descriptor.name() == "CaseText" {
            return true;
        }
        let Some(field) = descriptor.field.iter().find(|f| f.name() == name) else { return false };
        // A message field leads on; a scalar or enum ends the path.
        current = if field.r#type() == prost_types::field_descriptor_proto::Type::Message {
            find(field.type_name())
        } else {
            Some(prost_types::DescriptorProto::default())
        };
    }
    current.is_some()
}

/// Whether `path` names a field of some request message of the API.
fn request_field_exists(path: &str) -> bool {
    use prost::Message as _;
    let set = prost_types::FileDescriptorSet::decode(volta_api::pb::DESCRIPTOR).expect("descriptors");
    set.file.iter().any(|f| {
        f.message_type
            .iter()
            .filter(|m| m.name().ends_with("Request"))
            .any(|m| field_exists(&format!("{}.{}", f.package(), m.name()), path))
    })
}

/// The first violated field of an INVALID_ARGUMENT: a field of a request
/// message, with a reason.
fn field(status: &tonic::Status) -> String {
    use tonic_types::StatusExt as _;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(["INVALID_FIELD", "INVALID_CASE", "OVER_LIMIT"].contains(&reason(status).as_str()), "{status:?}");
    let details = status.get_details_bad_request().expect("bad request details");
    let field = details.field_violations.first().map(|v| v.field.clone()).unwrap_or_default();
    assert!(request_field_exists(&field), "{field} is not a field of any request message");
    field
}

/// The ErrorInfo reason of a status (every error carries one).
fn reason(status: &tonic::Status) -> String {
    use tonic_types::StatusExt as _;
    let info = status.get_details_error_info().unwrap_or_else(|| panic!("no ErrorInfo on {status:?}"));
    assert_eq!(info.domain, volta_api::status::DOMAIN);
    info.reason
}

fn token(claims: &serde_json::Value) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
    format!("Bearer {}", jsonwebtoken::encode(&jsonwebtoken::Header::default(), claims, &key).expect("sign"))
}

fn with_token<T>(message: T, bearer: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", bearer.parse().expect("ascii"));
    request
}

/// The server's Prometheus text, fetched with a bare HTTP/1.0 GET.
async fn metrics(server: &Server) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let url = server.metrics.as_deref().expect("metrics endpoint");
    let addr = url.trim_start_matches("http://").trim_end_matches("/metrics");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: volta\r\n\r\n").await.expect("write");
    let mut text = String::new();
    stream.read_to_string(&mut text).await.expect("read");
    assert!(text.starts_with("HTTP/1.0 200") || text.starts_with("HTTP/1.1 200"), "{text}");
    text
}

/// Retries `call` every 100 ms while it is shed (RESOURCE_EXHAUSTED), at
/// most `tries` times: its first answer, or `None` if every try was shed.
async fn once_a_slot_frees<T, F, Fut>(tries: usize, mut call: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, tonic::Status>>,
{
    for _ in 0..tries {
        match call().await {
            Ok(reply) => return Some(reply),
            Err(s) if s.code() == tonic::Code::ResourceExhausted => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(s) => panic!("unexpected {s:?}"),
        }
    }
    None
}
