//! The model store on its two backends: SQLite (embedded default) and
//! PostgreSQL (`VOLTA_TEST_POSTGRES_URL`, set by scripts/test.sh; each run
//! uses a database of its own, dropped at the end).

use sqlx::Executor as _;
use volta_server::store::{ModelRecord, Store};

fn record(id: &str, tenant: &str, created_at: &str) -> ModelRecord {
    ModelRecord {
        id: id.to_owned(),
        tenant: tenant.to_owned(),
        name: format!("model {id}"),
        model_kind: "gbdt".to_owned(),
        target: "load_kw".to_owned(),
        horizon: 48,
        step_seconds: 1800,
        trained_until: "2014-10-31T14:00:00Z".to_owned(),
        created_at: created_at.to_owned(),
    }
}

/// Everything a service relies on, on one store.
async fn exercise(store: &Store) {
    let body = r#"{"format": "volta-forecast-model", "weights": [1.5, -2.25e-7]}"#;
    store.put_model(&record("a1", "acme", "2026-01-01T00:00:00Z"), body).await.expect("put");
    store.put_model(&record("a2", "acme", "2026-01-02T00:00:00Z"), "{}").await.expect("put");
    store.put_model(&record("g1", "globex", "2026-01-03T00:00:00Z"), "{}").await.expect("put");
    assert!(store.put_model(&record("a1", "acme", "2026-01-04T00:00:00Z"), "{}").await.is_err(), "ids are unique");

    let (got, text) = store.model("acme", "a1").await.expect("get").expect("present");
    assert_eq!((got, text.as_str()), (record("a1", "acme", "2026-01-01T00:00:00Z"), body));
    assert!(store.model("globex", "a1").await.expect("get").is_none(), "another tenant's model is invisible");
    let ids: Vec<String> = store.models("acme").await.expect("list").into_iter().map(|m| m.id).collect();
    assert_eq!(ids, ["a2", "a1"], "newest first, own tenant only");

    assert!(!store.delete_model("globex", "a1").await.expect("delete"), "not globex's to delete");
    assert!(store.delete_model("acme", "a1").await.expect("delete"));
    assert!(store.model("acme", "a1").await.expect("get").is_none());
    assert_eq!(store.models("globex").await.expect("list").len(), 1);
}

#[tokio::test]
async fn sqlite_keeps_models_per_tenant_across_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("nested.db").display());
    exercise(&Store::open(&url).await.expect("open")).await;
    // Reopening migrates nothing twice and loses nothing.
    let again = Store::open(&url).await.expect("reopen");
    assert_eq!(again.models("acme").await.expect("list").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_keeps_models_per_tenant() {
    let Ok(base) = std::env::var("VOLTA_TEST_POSTGRES_URL") else {
        eprintln!("VOLTA_TEST_POSTGRES_URL is not set: PostgreSQL not tested (scripts/test.sh sets it)");
        return;
    };
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(&base).await.expect("connect to VOLTA_TEST_POSTGRES_URL");
    let name = format!("volta_test_{}", uuid::Uuid::new_v4().simple());
    admin.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).await.expect("create database");
    let url = match base.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => panic!("VOLTA_TEST_POSTGRES_URL needs a database path: {base}"),
    };
    // Replicas starting together on a fresh database: every one opens (the
    // migration runs under an advisory lock, once).
    let replicas: Vec<_> = (0..6)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { Store::open(&url).await })
        })
        .collect();
    for (i, replica) in replicas.into_iter().enumerate() {
        let store = replica.await.expect("task");
        store.unwrap_or_else(|e| panic!("replica {i} failed to start: {e:#}")).pool().close().await;
    }
    let store = Store::open(&url).await.expect("open");
    exercise(&store).await;
    let again = Store::open(&url).await.expect("reopen");
    assert_eq!(again.models("acme").await.expect("list").len(), 1);
    again.pool().close().await;
    store.pool().close().await;
    admin.execute(sqlx::AssertSqlSafe(format!("DROP DATABASE {name}"))).await.expect("drop database");
}
