//! Starting and stopping: SIGTERM drains, public addresses and bad
//! settings are refused at start.

use std::process::Command;

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
