//! Starting and stopping: SIGTERM drains, public addresses and bad
//! settings are refused at start.

use std::process::Command;

use tonic::transport::Channel;

use super::Server;

#[test]
fn sigterm_stops_the_server_cleanly_and_public_addresses_are_refused() {
    let server = Server::start(&[]);
    let pid = server.child.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
    assert!(status.success());
    let mut server = server;
    let exit = server.child.wait().expect("exit");
    assert!(exit.success(), "{exit:?}");
    let out = Command::new(env!("CARGO_BIN_EXE_volta"))
        .args(["serve", "--listen", "0.0.0.0:0"])
        .output()
        .expect("volta serve");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
}

#[test]
fn bad_configuration_is_named_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("volta.toml");
    std::fs::write(&config, "[server]\nlisten = \"127.0.0.1:0\"\nslots = 4\n").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_volta"))
        .args(["serve", "--config", config.to_str().expect("utf-8")])
        .output()
        .expect("volta serve");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("slots") && stderr.contains("volta.toml"), "{stderr}");
    let out = Command::new(env!("CARGO_BIN_EXE_volta"))
        .args(["serve", "--listen", "127.0.0.1:0", "--database", "mysql://x@y/z"])
        .output()
        .expect("volta serve");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("postgres://"));
}

#[test]
fn a_replica_that_may_not_migrate_refuses_a_schema_behind_until_volta_migrate_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("volta.toml");
    let db = dir.path().join("volta.db");
    std::fs::write(&config, format!("[storage]\nurl = \"sqlite://{}\"\nmigrate = false\n", db.display()))
        .expect("write");
    let config = config.to_str().expect("utf-8");
    let volta = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_volta")).args(args).output().expect("volta");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();

    let out = volta(&["serve", "--config", config, "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("behind") && stderr.contains("volta migrate"), "{stderr}");

    let out = volta(&["migrate", "--check", "--config", config]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("trading    behind: 0 of"), "{}", text(&out.stdout));

    let out = volta(&["migrate", "--config", config]);
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.matches("migrated 0 -> ").count(), volta_server::store::SCHEMAS.len(), "{stdout}");

    let out = volta(&["migrate", "--check", "--config", config]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("up to date"), "{}", text(&out.stdout));

    // Now the replica starts, without migrating, and serves.
    let server = Server::start_with(&["--config", config], &[]);
    drop(server);
}

/// Connections accepted so far, from the server's metrics.
async fn connections(server: &Server) -> u64 {
    let metrics = super::metrics(server).await;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("volta_grpc_connections_total "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_their_age_are_closed_and_clients_reconnect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("volta.toml");
    std::fs::write(&config, "[server]\nmax_connection_age_seconds = 1\n").expect("write");
    let aged = Server::start_with(&["--config", config.to_str().expect("utf-8")], &[]);
    let forever = Server::start_with(&[], &[]);
    for server in [&aged, &forever] {
        let before = connections(server).await;
        // One client channel calling for 3 s; a call that meets the
        // connection's end is retried, as clients retry UNAVAILABLE.
        let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel().await);
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_secs(3) {
            let mut answered = false;
            for _ in 0..3 {
                let request = tonic_health::pb::HealthCheckRequest { service: String::new() };
                if health.check(request).await.is_ok() {
                    answered = true;
                    break;
                }
            }
            assert!(answered, "a call failed three times running");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let made = connections(server).await - before;
        if std::ptr::eq(server, &aged) {
            assert!(made >= 2, "a 1 s connection age over 3 s of calls: {made} connection(s)");
        } else {
            assert_eq!(made, 1, "without an age the client keeps its one connection");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_solve_in_flight_finish_then_exits_0() {
    use volta_api::pb::dispatch as pb;
    let mut server = Server::start_with(&[], &[]);
    let mut client = server.client().await;
    let request = pb::ScheduleRequest {
        case: Some(super::case_json("benchmarks/kazarlis40.toml")),
        view: pb::ScheduleView::Summary.into(),
        ..pb::ScheduleRequest::default()
    };
    let solve = tokio::spawn(async move { client.schedule(request).await });
    // The solve is under way (40 units for a day: seconds) when
    // SIGTERM comes, as when Kubernetes stops a pod.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(!solve.is_finished(), "the solve ended before SIGTERM: pick a longer case");
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let reply = solve.await.expect("task").expect("the call in flight is answered").into_inner();
    assert!(matches!(reply.status(), pb::SolveStatus::Optimal | pb::SolveStatus::WithinGap), "{reply:?}");
    let exit = tokio::task::block_in_place(|| server.child.wait()).expect("exit");
    assert!(exit.success(), "{exit:?}");
    // Stopped: no new connection.
    assert!(Channel::from_shared(server.url.clone()).expect("url").connect().await.is_err());
}
