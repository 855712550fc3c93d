//! Load generator for `volta serve`: replays the platform's workload over
//! loopback gRPC and reports throughput, latency percentiles and errors.
//!
//! Two phases, each with its own connection per client:
//! 1. `validate`: 200 concurrent clients call `DispatchService/Validate` on
//!    the campus case (168 hourly steps, 13 assets, every series inline)
//!    back to back for `--seconds`.
//! 2. `schedule`: 100 concurrent clients call `DispatchService/Schedule` on
//!    the campus case (a week of unit commitment, totals only). A call
//!    that finds every solver slot busy is shed at once with
//!    RESOURCE_EXHAUSTED; the client then waits `--backoff-ms` and tries
//!    again, as a well-behaved platform client does.
//!
//! The server is started from `--volta` (default: the `volta` binary next
//! to this one) with a temporary database, or reached at `--url`.
//!
//! `cargo run -p volta-benches --bin grpc-load -- --seconds 20`

use std::time::{Duration, Instant};

use tonic::Code;
use tonic::transport::Channel;
use volta_api::pb::dispatch as pb;
use volta_benches::flags::Flags;
use volta_benches::load::{Server, Tally, phase};

type Client = pb::dispatch_service_client::DispatchServiceClient<Channel>;

async fn clients(url: &str, n: usize) -> Vec<Client> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let channel = Channel::from_shared(url.to_owned()).expect("url").connect().await.expect("connect");
        out.push(Client::new(channel).max_decoding_message_size(64 << 20));
    }
    out
}

struct Args {
    url: Option<String>,
    volta: std::path::PathBuf,
    seconds: f64,
    validate_clients: usize,
    schedule_clients: usize,
    backoff: Duration,
}

const USAGE: &str = "\
usage: grpc-load [--url URL | --volta PATH] [--seconds S] [--validate-clients N]
    [--schedule-clients N] [--backoff-ms MS]";

fn args() -> Result<Args, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut args = Args {
        url: None,
        volta: exe.with_file_name("volta"),
        seconds: 20.0,
        validate_clients: 200,
        schedule_clients: 100,
        backoff: Duration::from_millis(250),
    };
    let mut flags = Flags::new(USAGE);
    while let Some(flag) = flags.next_flag() {
        match flag.as_str() {
            "--url" => args.url = Some(flags.value(&flag)),
            "--volta" => args.volta = flags.value::<String>(&flag).into(),
            "--seconds" => args.seconds = flags.value(&flag),
            "--validate-clients" => args.validate_clients = flags.value(&flag),
            "--schedule-clients" => args.schedule_clients = flags.value(&flag),
            "--backoff-ms" => args.backoff = Duration::from_secs_f64(flags.value::<f64>(&flag) / 1e3),
            other => flags.unknown(other),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() {
    let args = match args() {
        Ok(a) => a,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let server = args.url.is_none().then(|| Server::start(&args.volta, None));
    let url = args.url.clone().unwrap_or_else(|| server.as_ref().map(|s| s.url.clone()).expect("a server"));
    let case = volta_engine::Case::from_path(volta_datasets::case("campus.toml")).expect("campus case");
    let text = pb::CaseText { format: Some(pb::case_text::Format::Json(case.to_json().expect("json"))) };
    println!(
        "volta serve at {url}; campus case {} KiB as JSON; {} s per phase; {} cores\n",
        text.format.as_ref().map_or(0, |f| match f {
            pb::case_text::Format::Json(t) | pb::case_text::Format::Toml(t) => t.len() / 1024,
        }),
        args.seconds,
        std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get)
    );
    Tally::header("replaced platform (mean, 2 x 8 cores)");

    let validate = pb::ValidateRequest { case: Some(text.clone()) };
    let (mut tally, wall) = phase(clients(&url, args.validate_clients).await, args.seconds, move |mut client, _| {
        let request = validate.clone();
        async move {
            let mut one = Tally::default();
            let start = Instant::now();
            match client.validate(request).await {
                Ok(reply) if reply.get_ref().ok => one.latencies.push(start.elapsed()),
                Ok(_) => one.errors += 1,
                Err(s) if s.code() == Code::ResourceExhausted => one.shed += 1,
                Err(_) => one.errors += 1,
            }
            (client, one)
        }
    })
    .await;
    tally.report("Validate", args.validate_clients, wall, "0.269 s at 200 users");

    let schedule =
        pb::ScheduleRequest { case: Some(text), view: pb::ScheduleView::Summary.into(), ..Default::default() };
    let backoff = args.backoff;
    let (mut tally, wall) = phase(clients(&url, args.schedule_clients).await, args.seconds, move |mut client, _| {
        let request = schedule.clone();
        async move {
            let mut one = Tally::default();
            let start = Instant::now();
            match client.schedule(request).await {
                Ok(reply)
                    if matches!(reply.get_ref().status(), pb::SolveStatus::Optimal | pb::SolveStatus::WithinGap) =>
                {
                    one.latencies.push(start.elapsed());
                }
                Ok(_) => one.errors += 1,
                Err(s) if s.code() == Code::ResourceExhausted => {
                    one.shed += 1;
                    tokio::time::sleep(backoff).await;
                }
                Err(_) => one.errors += 1,
            }
            (client, one)
        }
    })
    .await;
    tally.report("Schedule", args.schedule_clients, wall, "0.879 s at 100 users");
    println!(
        "\nok/s: answered calls per second; latencies of answered calls; shed: RESOURCE_EXHAUSTED (every solver \
         slot busy), retried after {} ms.",
        args.backoff.as_millis()
    );
}
