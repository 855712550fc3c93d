//! The model store on its two backends: SQLite (embedded default) and
//! PostgreSQL (`VOLTA_TEST_POSTGRES_URL`, set by scripts/test.sh; each run
//! uses a database of its own, dropped at the end).

mod support;

use sqlx::Executor as _;
use volta_server::store::{Cursor, Migrate, ModelFilter, ModelRecord, ModelStore as _, Store, StoreError};

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
        request_id: None,
    }
}

/// The ids of `tenant`'s models, newest first.
async fn ids(store: &Store, tenant: &str) -> Vec<String> {
    let all = store.models(tenant, &ModelFilter::default(), None, 1000).await.expect("list");
    all.into_iter().map(|m| m.id).collect()
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
    assert_eq!(ids(store, "acme").await, ["a2", "a1"], "newest first, own tenant only");

    // Pages: a cursor after the first model gives the rest; filters narrow.
    let first = store.models("acme", &ModelFilter::default(), None, 1).await.expect("page");
    let cursor = Cursor { created_at: first[0].created_at.clone(), id: first[0].id.clone() };
    let rest = store.models("acme", &ModelFilter::default(), Some(&cursor), 10).await.expect("page");
    assert_eq!((first[0].id.as_str(), rest.len(), rest[0].id.as_str()), ("a2", 1, "a1"));
    let named = ModelFilter { name: Some("model a1".into()), ..ModelFilter::default() };
    assert_eq!(store.models("acme", &named, None, 10).await.expect("filter").len(), 1);
    let other_kind = ModelFilter { model_kind: Some("linear".into()), ..ModelFilter::default() };
    assert!(store.models("acme", &other_kind, None, 10).await.expect("filter").is_empty());

    // A request id stores once per tenant: a second put returns the first.
    let with_request = |id: &str, tenant: &str| ModelRecord {
        request_id: Some("req-1".into()),
        ..record(id, tenant, "2026-01-05T00:00:00Z")
    };
    assert_eq!(store.put_model(&with_request("r1", "acme"), "{}").await.expect("put"), None);
    let again = store.put_model(&with_request("r2", "acme"), "{}").await.expect("put").expect("the first");
    assert_eq!(again.id, "r1");
    assert_eq!(store.put_model(&with_request("r3", "globex"), "{}").await.expect("put"), None, "per tenant");
    assert!(store.model("acme", "r2").await.expect("get").is_none(), "nothing stored twice");
    assert!(store.delete_model("acme", "r1").await.expect("delete"));

    assert!(!store.delete_model("globex", "a1").await.expect("delete"), "not globex's to delete");
    assert!(store.delete_model("acme", "a1").await.expect("delete"));
    assert!(store.model("acme", "a1").await.expect("get").is_none());
    assert_eq!(ids(store, "globex").await, ["r3", "g1"]);
}

#[tokio::test]
async fn sqlite_keeps_models_per_tenant_across_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("nested.db").display());
    exercise(&Store::open(&url).await.expect("open")).await;
    // Reopening migrates nothing twice and loses nothing.
    let again = Store::open(&url).await.expect("reopen");
    assert_eq!(ids(&again, "acme").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_keeps_models_per_tenant() {
    let Some(db) = support::Scratch::create().await else { return };
    let url = db.url.clone();
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
    assert_eq!(ids(&again, "acme").await.len(), 1);
    again.pool().close().await;
    store.pool().close().await;
    db.drop_database().await;
}

#[tokio::test]
async fn a_server_that_may_not_migrate_refuses_a_schema_behind_its_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("new.db").display());
    let error = Store::open_with(&url, Migrate::Verify).await.expect_err("an empty database is behind");
    let message = error.to_string();
    assert!(matches!(error, StoreError::Behind(_)), "{message}");
    assert!(message.contains("volta migrate") && message.contains("forecast at 0 of"), "{message}");

    let store = Store::connect(&url).await.expect("connect");
    assert!(store.versions().await.expect("versions").iter().all(|v| v.applied == 0 && v.latest >= 1));
    store.migrate().await.expect("migrate");
    let versions = store.versions().await.expect("versions");
    assert_eq!(versions.len(), volta_server::store::SCHEMAS.len());
    assert!(versions.iter().all(|v| v.applied == v.latest), "{versions:?}");
    store.pool().close().await;
    // Migrated, it opens without migrating, and migrating again changes nothing.
    let store = Store::open_with(&url, Migrate::Verify).await.expect("up to date");
    store.migrate().await.expect("again");
    assert_eq!(store.versions().await.expect("versions"), versions);
}

#[tokio::test]
async fn a_database_of_the_first_schema_migrates_and_keeps_its_models() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("v1.db").display());
    sqlx::any::install_default_drivers();
    let old = sqlx::AnyPool::connect(&url).await.expect("connect");
    let (version, sql) = volta_server::store::FORECAST.migrations[0];
    for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        old.execute(statement).await.expect("schema 1");
    }
    old.execute("CREATE TABLE volta_schema (version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL)").await.expect("t");
    old.execute(sqlx::AssertSqlSafe(format!("INSERT INTO volta_schema VALUES ({version}, 'then')"))).await.expect("v");
    old.execute(
        "INSERT INTO forecast_models VALUES ('m1', 'acme', 'old', 'gbdt', 'load_kw', 48, 1800, \
         '2014-10-31T14:00:00Z', '2025-01-01T00:00:00Z', '{}')",
    )
    .await
    .expect("a model of schema 1");
    old.close().await;

    let store = Store::open(&url).await.expect("migrates");
    let (model, body) = store.model("acme", "m1").await.expect("get").expect("kept");
    assert_eq!((model.name.as_str(), model.request_id, body.as_str()), ("old", None, "{}"));
    // Versions are recorded per service; the first layout's table is gone.
    let versions: Vec<(String, i64)> =
        sqlx::query_as("SELECT service, version FROM volta_migrations WHERE service = 'forecast' ORDER BY version")
            .fetch_all(store.pool())
            .await
            .expect("versions");
    let forecast = volta_server::store::FORECAST;
    let expected: Vec<(String, i64)> = forecast.migrations.iter().map(|(v, _)| ("forecast".to_owned(), *v)).collect();
    assert_eq!(versions, expected);
    assert!(store.pool().execute("SELECT 1 FROM volta_schema").await.is_err(), "volta_schema was dropped");
    let newer = ModelRecord { request_id: Some("r".into()), ..record("m2", "acme", "2026-01-01T00:00:00Z") };
    assert_eq!(store.put_model(&newer, "{}").await.expect("put"), None);
    assert_eq!(ids(&store, "acme").await, ["m2", "m1"]);
}
