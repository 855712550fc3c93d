//! The deployment files read as `volta serve` reads them: each overlay's
//! configuration parses with the server's own reader and passes its checks,
//! and `deploy/config.schema.json`, which deploy/check.sh validates them
//! against, is the schema of today's configuration types.

use std::path::{Path, PathBuf};

use volta_server::config::Config;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

#[test]
fn every_layouts_configuration_reads_and_checks() {
    let overlays = deploy().join("kustomize/overlays");
    let mut read = Vec::new();
    for entry in std::fs::read_dir(&overlays).expect("deploy/kustomize/overlays") {
        let path = entry.expect("entry").path().join("volta.toml");
        let config = Config::from_file(&path).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
        config.check().unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
        // Reachable from other pods, so authenticated; metrics exported; the
        // grace period of the manifests is sized on this.
        assert!(config.auth.is_some() && !config.server.listen.ip().is_loopback(), "{}", path.display());
        assert!(config.server.metrics_listen.is_some(), "{}", path.display());
        assert_eq!(
            config.limits.max_call_seconds,
            300,
            "{}: the manifests' grace periods assume 300 s",
            path.display()
        );
        read.push(path.parent().and_then(Path::file_name).map(|n| n.to_string_lossy().into_owned()));
    }
    read.sort();
    assert_eq!(read, [Some("production".to_owned()), Some("single-node".to_owned())]);
}

#[test]
fn the_published_configuration_schema_is_current() {
    let path = deploy().join("config.schema.json");
    let published: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("deploy/config.schema.json")).expect("JSON");
    assert!(
        published == Config::json_schema(),
        "deploy/config.schema.json is out of date: run `volta schema --config > deploy/config.schema.json`"
    );
    // Closed objects: a misspelt key is refused by the schema as by the reader.
    let server = &published["$defs"]["Server"];
    assert_eq!(server["additionalProperties"], serde_json::Value::Bool(false), "{server}");
}
