//! Persistence: SQLite embedded by default, PostgreSQL when configured.
//!
//! One async API over both through sqlx's `any` driver; the SQL is the
//! portable subset both understand. Each service owns its tables and their
//! [`Schema`], versioned on its own: at start, every service's missing
//! migrations are applied in order, each once, recorded per service in
//! `volta_migrations`. Services see their storage through a trait
//! ([`ModelStore`] for the forecasting service), never through SQL.
//! Every row belongs to a tenant and every query filters on it, so a caller
//! never sees another tenant's rows, not even their ids.

pub mod contracts;
pub mod messaging;
pub mod trading;
mod wal;

use sqlx::Any;
use sqlx::Row as _;
use sqlx::pool::{Pool, PoolOptions};
use volta_api::status::Reason;

/// The tables of one service, version by version.
#[derive(Debug, Clone, Copy)]
pub struct Schema {
    /// The service, as `volta_migrations` records it (`forecast`).
    pub service: &'static str,
    /// Its migrations, numbered from 1; new versions go at the end.
    pub migrations: &'static [(i64, &'static str)],
}

/// The forecasting service's tables: stored models.
pub const FORECAST: Schema = Schema { service: "forecast", migrations: FORECAST_MIGRATIONS };

/// Every service's schema, brought up to date when a store opens.
pub const SCHEMAS: &[Schema] = &[FORECAST, contracts::CONTRACTS, trading::TRADING, messaging::MESSAGING];

const FORECAST_MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        "CREATE TABLE forecast_models (
        id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        name TEXT NOT NULL,
        model_kind TEXT NOT NULL,
        target TEXT NOT NULL,
        horizon BIGINT NOT NULL,
        step_seconds BIGINT NOT NULL,
        trained_until TEXT NOT NULL,
        created_at TEXT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX forecast_models_by_tenant ON forecast_models (tenant, created_at)",
    ),
    // Train is idempotent by the caller's request id, per tenant (NULLs,
    // models trained without one, do not collide).
    (
        2,
        "ALTER TABLE forecast_models ADD COLUMN request_id TEXT;
    CREATE UNIQUE INDEX forecast_models_by_request ON forecast_models (tenant, request_id)",
    ),
];

/// The PostgreSQL advisory lock key that serialises migrations ("volta"
/// in ASCII).
const MIGRATION_LOCK: i64 = 0x0076_6f6c_7461;

/// The columns of a [`ModelRecord`], in `SELECT` order.
macro_rules! columns {
    () => {
        "id, tenant, name, model_kind, target, horizon, step_seconds, trained_until, created_at, request_id"
    };
}

/// A stored forecasting model, without its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRecord {
    /// Its id (a UUID).
    pub id: String,
    /// The tenant that owns it.
    pub tenant: String,
    /// The caller's name for it.
    pub name: String,
    /// `gbdt`, `linear`, ...
    pub model_kind: String,
    /// The target column it forecasts.
    pub target: String,
    /// Steps per forecast.
    pub horizon: i64,
    /// Seconds per step.
    pub step_seconds: i64,
    /// End of its training data, RFC 3339.
    pub trained_until: String,
    /// When it was stored, RFC 3339 in UTC with microseconds (fixed width:
    /// text order is time order).
    pub created_at: String,
    /// The request id of the Train call that stored it, if it had one.
    pub request_id: Option<String>,
}

/// A time as [`ModelRecord::created_at`] holds it.
#[must_use]
pub fn stored_time(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// What can go wrong with the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A storage URL of another kind.
    #[error("storage.url {0}: use sqlite://FILE or postgres://...")]
    Url(String),
    /// The database cannot be reached or opened.
    #[error("cannot open the database {url}: {source}")]
    Connect {
        /// The URL, without its password.
        url: String,
        /// Why.
        source: sqlx::Error,
    },
    /// A migration failed (the schema is left as it was).
    #[error("cannot migrate the database to version {version}: {source}")]
    Migration {
        /// The version that failed.
        version: i64,
        /// Why.
        source: sqlx::Error,
    },
    /// The schema is behind this build's and the server may not migrate it
    /// (`storage.migrate = false`).
    #[error(
        "the database schema is behind this version of volta ({0}): run `volta migrate` (the migration job) first, \
         or set storage.migrate = true"
    )]
    Behind(String),
    /// A leader's batch after another process took its market over: not
    /// written (fencing).
    #[error("{0}: another process leads it now")]
    Deposed(String),
    /// A query failed.
    #[error("cannot {action}: {source}")]
    Query {
        /// What the store was doing (`store the model`).
        action: &'static str,
        /// Why.
        source: sqlx::Error,
    },
}

impl StoreError {
    pub(crate) fn query(action: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| Self::Query { action, source }
    }
}

/// How many models a page lists, at most.
pub const MAX_PAGE: usize = 1000;

/// Which models to list: equality on the columns a filter may name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelFilter {
    /// The display name.
    pub name: Option<String>,
    /// The target column.
    pub target: Option<String>,
    /// The model kind (`gbdt`).
    pub model_kind: Option<String>,
}

/// Where a page starts: after this model in the list order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The `created_at` of the last model of the previous page.
    pub created_at: String,
    /// Its id.
    pub id: String,
}

/// Where one service's schema stands in a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaVersion {
    /// The service (`forecast`).
    pub service: &'static str,
    /// The last version applied to the database (0: none).
    pub applied: i64,
    /// The last version this build knows.
    pub latest: i64,
}

impl std::fmt::Display for SchemaVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at {} of {}", self.service, self.applied, self.latest)
    }
}

/// What opening a store does to its schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migrate {
    /// Applies the missing versions (one replica at a time).
    Apply,
    /// Only checks that none is missing: [`StoreError::Behind`] if one is.
    Verify,
}

/// The database behind the services.
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool<Any>,
    readers: Pool<Any>,
    postgres: bool,
    /// A SQLite file's checkpoints (see [`wal`]): held by the clones, the
    /// task stops with the last.
    _checkpoints: Option<std::sync::Arc<wal::Checkpoints>>,
}

/// A right that one process at a time holds (or, shared, several): a
/// market's sequencer, a partition of the market ledger, a place among
/// the ledger's replicas. On PostgreSQL it is a session advisory lock held
/// by a connection of its own, taken out of the pool: dropping the lease
/// closes the connection and the database releases the lock, also when the
/// process dies. On SQLite (one process) it is empty and always held.
#[derive(Debug)]
pub struct Lease(Option<sqlx::AnyConnection>);

impl Lease {
    /// Whether the database holds it for this process (PostgreSQL), so that
    /// other replicas are kept out.
    #[must_use]
    pub fn is_shared(&self) -> bool {
        self.0.is_some()
    }

    /// Whether it is still held: its connection still answers (a
    /// connection the database lost took the lock with it).
    pub async fn is_held(&mut self) -> bool {
        match &mut self.0 {
            None => true,
            Some(conn) => sqlx::query("SELECT 1").execute(conn).await.is_ok(),
        }
    }
}

/// The advisory lock key of a name: its FNV-1a hash. (A market's lease
/// is `volta-trading/{tenant}/{market}`; the key of a name never changes,
/// or replicas of two versions would not exclude each other.)
pub(crate) fn advisory_key(name: &str) -> i64 {
    i64::from_ne_bytes(fnv1a(name).to_ne_bytes())
}

/// The 64-bit FNV-1a hash of a text: stable across versions and platforms.
pub(crate) fn fnv1a(text: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

impl Store {
    /// Takes the lease `key` if it is free (`shared`: if nobody holds it
    /// alone; many may share it).
    ///
    /// # Errors
    /// A database error.
    pub(crate) async fn lease(&self, key: i64, shared: bool) -> Result<Option<Lease>, StoreError> {
        if !self.postgres {
            return Ok(Some(Lease(None)));
        }
        let mut conn = self.pool.acquire().await.map_err(StoreError::query("take a connection for a lease"))?.detach();
        let sql = if shared {
            "SELECT CAST(CASE WHEN pg_try_advisory_lock_shared($1) THEN 1 ELSE 0 END AS BIGINT)"
        } else {
            "SELECT CAST(CASE WHEN pg_try_advisory_lock($1) THEN 1 ELSE 0 END AS BIGINT)"
        };
        let held: i64 =
            sqlx::query_scalar(sql).bind(key).fetch_one(&mut conn).await.map_err(StoreError::query("take a lease"))?;
        Ok((held == 1).then_some(Lease(Some(conn))))
    }

    /// How many processes hold the lease `key` now (1 on SQLite: this one).
    ///
    /// # Errors
    /// A database error.
    pub(crate) async fn holders(&self, key: i64) -> Result<usize, StoreError> {
        if !self.postgres {
            return Ok(1);
        }
        // pg_locks shows a bigint key as its high and low 32 bits.
        let bits = key.cast_unsigned();
        let (high, low) = (i64::try_from(bits >> 32).unwrap_or(0), i64::try_from(bits & 0xffff_ffff).unwrap_or(0));
        let n: i64 = sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM pg_locks WHERE locktype = 'advisory' AND granted \
             AND objsubid = 1 AND classid = CAST($1 AS oid) AND objid = CAST($2 AS oid) \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .bind(high)
        .bind(low)
        .fetch_one(&self.pool)
        .await
        .map_err(StoreError::query("count a lease's holders"))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }
}

/// Read-only connections to a SQLite file, beside its one writer.
const READERS: u32 = 4;

impl Store {
    /// Whether the database is PostgreSQL (else SQLite).
    #[must_use]
    pub fn is_postgres(&self) -> bool {
        self.postgres
    }
}

/// A URL with what sqlx needs to create a missing SQLite file.
fn connect_url(url: &str) -> String {
    if url.starts_with("sqlite:") && !url.contains("mode=") && !url.contains(":memory:") {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}mode=rwc")
    } else {
        url.to_owned()
    }
}

/// The URL without its password, for messages and logs.
#[must_use]
pub fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl Store {
    /// Connects to `url` (`sqlite://FILE`, created if missing, or
    /// `postgres://...`) and brings the schema up to date.
    ///
    /// # Errors
    /// An unsupported scheme, an unreachable database, or a failed migration.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, Migrate::Apply).await
    }

    /// Connects to `url` and migrates or verifies the schema.
    ///
    /// # Errors
    /// An unsupported scheme, an unreachable database, a failed migration,
    /// or (verifying) a schema behind this build's.
    pub async fn open_with(url: &str, migrate: Migrate) -> Result<Self, StoreError> {
        let store = Self::connect(url).await?;
        match migrate {
            Migrate::Apply => store.migrate().await?,
            Migrate::Verify => {
                let behind: Vec<String> =
                    store.versions().await?.iter().filter(|v| v.applied < v.latest).map(ToString::to_string).collect();
                if !behind.is_empty() {
                    return Err(StoreError::Behind(behind.join(", ")));
                }
            }
        }
        Ok(store)
    }

    /// Connects to `url` without touching the schema.
    ///
    /// # Errors
    /// An unsupported scheme or an unreachable database.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        if !(url.starts_with("sqlite:") || url.starts_with("postgres:") || url.starts_with("postgresql:")) {
            return Err(StoreError::Url(redacted(url)));
        }
        sqlx::any::install_default_drivers();
        // One writing connection for SQLite: it has one writer anyway, a
        // transaction that reads before it writes cannot deadlock against
        // another, and an in-memory database must not be split across
        // connections. A file in WAL mode also gets readers that read
        // beside the writer (each sees the last commit), and a connection
        // that copies the writer's log into the file (see `wal`).
        let sqlite = url.starts_with("sqlite:");
        let memory = url.contains(":memory:");
        let target = connect_url(url);
        let file = sqlite && !memory;
        let connect = |connections: u32, settings: &'static [&'static str]| {
            PoolOptions::<Any>::new()
                .max_connections(connections)
                .acquire_timeout(std::time::Duration::from_secs(30))
                .after_connect(move |conn, _| {
                    Box::pin(async move {
                        for setting in settings {
                            sqlx::query(*setting).execute(&mut *conn).await?;
                        }
                        Ok(())
                    })
                })
                .connect(&target)
        };
        let failed = |source| StoreError::Connect { url: redacted(url), source };
        let pool = connect(if sqlite { 1 } else { 8 }, if file { wal::WRITER } else { &[] }).await.map_err(failed)?;
        if !file {
            return Ok(Self { readers: pool.clone(), pool, postgres: !sqlite, _checkpoints: None });
        }
        sqlx::query("PRAGMA journal_mode=WAL").fetch_optional(&pool).await.map_err(failed)?;
        let readers = connect(READERS, &[]).await.map_err(failed)?;
        let checkpoints = wal::Checkpoints::start(connect(1, wal::CHECKPOINTER).await.map_err(failed)?, wal::LIMITS);
        Ok(Self { pool, readers, postgres: false, _checkpoints: Some(std::sync::Arc::new(checkpoints)) })
    }

    /// Where each service's schema stands, without changing anything. A
    /// version applied that this build does not know (a newer build
    /// migrated) shows as `applied > latest`: migrations only add, so this
    /// build still works on it.
    ///
    /// # Errors
    /// A database error.
    pub async fn versions(&self) -> Result<Vec<SchemaVersion>, StoreError> {
        let exists = if self.postgres {
            "SELECT CAST(COUNT(*) AS BIGINT) FROM information_schema.tables \
             WHERE table_name = 'volta_migrations' AND table_schema = current_schema()"
        } else {
            "SELECT CAST(COUNT(*) AS BIGINT) FROM sqlite_master WHERE type = 'table' AND name = 'volta_migrations'"
        };
        let exists: i64 =
            sqlx::query_scalar(exists).fetch_one(&self.pool).await.map_err(StoreError::query("read the schema"))?;
        let mut versions = Vec::with_capacity(SCHEMAS.len());
        for schema in SCHEMAS {
            let applied: i64 = if exists == 0 {
                0
            } else {
                sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM volta_migrations WHERE service = $1")
                    .bind(schema.service)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(StoreError::query("read the schema's versions"))?
            };
            let latest = schema.migrations.last().map_or(0, |&(v, _)| v);
            versions.push(SchemaVersion { service: schema.service, applied, latest });
        }
        Ok(versions)
    }

    /// The connection pool, for services that keep their own tables.
    #[must_use]
    pub fn pool(&self) -> &Pool<Any> {
        &self.pool
    }

    /// Connections for queries that only read (SQLite: beside the writer;
    /// PostgreSQL: the same pool).
    #[must_use]
    pub fn readers(&self) -> &Pool<Any> {
        &self.readers
    }

    /// Takes advisory lock `key` until `tx` ends, on PostgreSQL: what takes
    /// it runs one at a time across every process on the database. (SQLite
    /// has one writer: a write transaction is already alone.)
    ///
    /// # Errors
    /// A database error.
    pub(crate) async fn lock_in(&self, tx: &mut sqlx::Transaction<'_, Any>, key: i64) -> Result<(), sqlx::Error> {
        if self.postgres {
            sqlx::query("SELECT CAST(1 AS BIGINT) FROM (SELECT pg_advisory_xact_lock($1)) AS locked")
                .bind(key)
                .fetch_one(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// Runs `work` on the writing connection with commits that do not wait
    /// for the disk: for bookkeeping whose loss in a power cut costs only
    /// work done again, never an effect (a relay's claims and its marks of
    /// what was published: a message whose mark is lost is sent again, and
    /// the inbox knows it). On SQLite (WAL) such a commit writes its pages
    /// to the log without `fsync`; the next ordinary commit's `fsync` makes
    /// them durable with it, since the log is written in order. PostgreSQL's
    /// relay rounds say the same per transaction (`synchronous_commit`), so
    /// there `work` runs as it is.
    ///
    /// # Errors
    /// A database error, or what `work` returns.
    pub(crate) async fn relaxed<T>(
        &self,
        action: &'static str,
        work: impl AsyncFnOnce(&mut sqlx::AnyConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(StoreError::query(action))?;
        if self.postgres {
            return work(&mut conn).await;
        }
        sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut *conn).await.map_err(StoreError::query(action))?;
        // Every other transaction on this connection must wait for the disk
        // again: if the setting cannot be put back (or `work` is dropped
        // half-way), the connection is closed rather than returned.
        let mut relaxed = Relaxed { conn, restored: false };
        let done = work(&mut relaxed.conn).await;
        relaxed.restored = sqlx::query("PRAGMA synchronous = FULL").execute(&mut *relaxed.conn).await.is_ok();
        done
    }

    /// Brings every service's schema up to date in one transaction. On
    /// PostgreSQL the transaction first takes an advisory lock, so that
    /// replicas starting together migrate one after the other: the first
    /// applies the missing versions, the others then find nothing to do.
    /// (SQLite has one writer: its transaction is the lock.) A database of
    /// the first layout, with one `volta_schema` table for the forecasting
    /// service, is carried over.
    ///
    /// # Errors
    /// A failed migration (the schema is left as it was).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let failed = |version: i64| move |source| StoreError::Migration { version, source };
        let mut tx = self.pool.begin().await.map_err(failed(0))?;
        self.lock_in(&mut tx, MIGRATION_LOCK).await.map_err(failed(0))?;
        let bootstrap = [
            "CREATE TABLE IF NOT EXISTS volta_migrations (service TEXT NOT NULL, version BIGINT NOT NULL, \
             applied_at TEXT NOT NULL, PRIMARY KEY (service, version))",
            // The first layout's table (empty on a new database), carried over and dropped.
            "CREATE TABLE IF NOT EXISTS volta_schema (version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL)",
            "INSERT INTO volta_migrations (service, version, applied_at) \
             SELECT 'forecast', version, applied_at FROM volta_schema",
            "DROP TABLE volta_schema",
        ];
        for statement in bootstrap {
            sqlx::query(statement).execute(&mut *tx).await.map_err(failed(0))?;
        }
        for schema in SCHEMAS {
            let row = sqlx::query("SELECT COALESCE(MAX(version), 0) FROM volta_migrations WHERE service = $1")
                .bind(schema.service)
                .fetch_one(&mut *tx)
                .await
                .map_err(failed(0))?;
            let current: i64 = row.try_get(0).map_err(failed(0))?;
            for &(version, sql) in schema.migrations.iter().filter(|(v, _)| *v > current) {
                for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                    sqlx::query(statement).execute(&mut *tx).await.map_err(failed(version))?;
                }
                sqlx::query("INSERT INTO volta_migrations (service, version, applied_at) VALUES ($1, $2, $3)")
                    .bind(schema.service)
                    .bind(version)
                    .bind(jiff::Timestamp::now().to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(failed(version))?;
                tracing::info!(service = schema.service, version, "database migrated");
            }
        }
        tx.commit().await.map_err(failed(0))?;
        Ok(())
    }
}

/// What the forecasting service keeps: models per tenant. [`Store`] keeps
/// them in SQLite or PostgreSQL; the service sees only this trait.
#[tonic::async_trait]
pub trait ModelStore: Send + Sync + std::fmt::Debug {
    /// Stores a model body under its id. With a request id that the
    /// tenant has used before, nothing is stored and the model that request
    /// stored is returned instead (also when two calls race).
    ///
    /// # Errors
    /// A database error (an id that exists is one).
    async fn put_model(&self, record: &ModelRecord, body: &str) -> Result<Option<ModelRecord>, StoreError>;

    /// The model a Train call with `request` stored for `tenant`, if any.
    ///
    /// # Errors
    /// A database error.
    async fn model_by_request(&self, tenant: &str, request: &str) -> Result<Option<ModelRecord>, StoreError>;

    /// A model of `tenant` with its body; `None` if it does not exist or
    /// belongs to another tenant.
    ///
    /// # Errors
    /// A database error.
    async fn model(&self, tenant: &str, id: &str) -> Result<Option<(ModelRecord, String)>, StoreError>;

    /// A page of the models of `tenant` that match `filter`, newest first
    /// (then by id), after `cursor`: at most `limit` ([`MAX_PAGE`] at most).
    ///
    /// # Errors
    /// A database error.
    async fn models(
        &self,
        tenant: &str,
        filter: &ModelFilter,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<Vec<ModelRecord>, StoreError>;

    /// Deletes a model of `tenant`; whether it existed.
    ///
    /// # Errors
    /// A database error.
    async fn delete_model(&self, tenant: &str, id: &str) -> Result<bool, StoreError>;
}

#[tonic::async_trait]
impl ModelStore for Store {
    async fn put_model(&self, record: &ModelRecord, body: &str) -> Result<Option<ModelRecord>, StoreError> {
        if let Some(request) = &record.request_id
            && let Some(existing) = self.model_by_request(&record.tenant, request).await?
        {
            return Ok(Some(existing));
        }
        let inserted = sqlx::query(
            "INSERT INTO forecast_models \
             (id, tenant, name, model_kind, target, horizon, step_seconds, trained_until, created_at, body, request_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&record.id)
        .bind(&record.tenant)
        .bind(&record.name)
        .bind(&record.model_kind)
        .bind(&record.target)
        .bind(record.horizon)
        .bind(record.step_seconds)
        .bind(&record.trained_until)
        .bind(&record.created_at)
        .bind(body)
        .bind(record.request_id.as_deref())
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => Ok(None),
            // A concurrent call with the same request id stored first.
            Err(source) => match &record.request_id {
                Some(request) => match self.model_by_request(&record.tenant, request).await? {
                    Some(existing) => Ok(Some(existing)),
                    None => Err(StoreError::Query { action: "store the model", source }),
                },
                None => Err(StoreError::Query { action: "store the model", source }),
            },
        }
    }

    async fn model_by_request(&self, tenant: &str, request: &str) -> Result<Option<ModelRecord>, StoreError> {
        let row =
            sqlx::query(concat!("SELECT ", columns!(), " FROM forecast_models WHERE tenant = $1 AND request_id = $2"))
                .bind(tenant)
                .bind(request)
                .fetch_optional(&self.pool)
                .await
                .map_err(StoreError::query("read the model"))?;
        row.map(|r| record(&r)).transpose()
    }

    async fn model(&self, tenant: &str, id: &str) -> Result<Option<(ModelRecord, String)>, StoreError> {
        let row =
            sqlx::query(concat!("SELECT ", columns!(), ", body FROM forecast_models WHERE tenant = $1 AND id = $2"))
                .bind(tenant)
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(StoreError::query("read the model"))?;
        row.map(|r| Ok((record(&r)?, r.try_get("body").map_err(StoreError::query("read the model"))?))).transpose()
    }

    async fn models(
        &self,
        tenant: &str,
        filter: &ModelFilter,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<Vec<ModelRecord>, StoreError> {
        let mut sql = String::from(concat!("SELECT ", columns!(), " FROM forecast_models WHERE tenant = $1"));
        let mut binds: Vec<&str> = vec![tenant];
        let conditions = [
            ("name", filter.name.as_deref()),
            ("target", filter.target.as_deref()),
            ("model_kind", filter.model_kind.as_deref()),
        ];
        for (column, value) in conditions {
            if let Some(value) = value {
                binds.push(value);
                sql.push_str(&format!(" AND {column} = ${}", binds.len()));
            }
        }
        if let Some(cursor) = cursor {
            binds.push(&cursor.created_at);
            let at = binds.len();
            binds.push(&cursor.id);
            let id = binds.len();
            sql.push_str(&format!(" AND (created_at < ${at} OR (created_at = ${at} AND id > ${id}))"));
        }
        let limit = i64::try_from(limit.min(MAX_PAGE)).unwrap_or(1000);
        sql.push_str(&format!(" ORDER BY created_at DESC, id LIMIT {limit}"));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for value in binds {
            query = query.bind(value);
        }
        let rows = query.fetch_all(&self.pool).await.map_err(StoreError::query("list the models"))?;
        rows.iter().map(record).collect()
    }

    async fn delete_model(&self, tenant: &str, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM forecast_models WHERE tenant = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(StoreError::query("delete the model"))?;
        Ok(done.rows_affected() > 0)
    }
}

fn record(row: &sqlx::any::AnyRow) -> Result<ModelRecord, StoreError> {
    let read = || -> Result<ModelRecord, sqlx::Error> {
        Ok(ModelRecord {
            id: row.try_get("id")?,
            tenant: row.try_get("tenant")?,
            name: row.try_get("name")?,
            model_kind: row.try_get("model_kind")?,
            target: row.try_get("target")?,
            horizon: row.try_get("horizon")?,
            step_seconds: row.try_get("step_seconds")?,
            trained_until: row.try_get("trained_until")?,
            created_at: row.try_get("created_at")?,
            request_id: row.try_get("request_id")?,
        })
    };
    read().map_err(StoreError::query("read a model row"))
}

/// The writing connection while its commits do not wait for the disk
/// ([`Store::relaxed`]): closed, not pooled, unless the setting was put back.
struct Relaxed {
    conn: sqlx::pool::PoolConnection<Any>,
    restored: bool,
}

impl Drop for Relaxed {
    fn drop(&mut self) {
        if !self.restored {
            self.conn.close_on_drop();
        }
    }
}

/// `$first, $first+1, ...` for `count` values.
pub(crate) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// The `VALUES` list of a multi-row INSERT on `conn`: `rows` tuples of
/// `columns` parameters, which must be the statement's only ones.
/// PostgreSQL gets them numbered from `$1`; SQLite gets anonymous `?`, which
/// sqlx binds by position. (For a numbered parameter sqlx asks SQLite for
/// its name, and SQLite finds it by scanning every name of the statement:
/// quadratic in a batch's parameters, 6.5 % of the server's time under the
/// trading load.)
pub(crate) fn values(conn: &sqlx::AnyConnection, rows: usize, columns: usize) -> String {
    if conn.backend_name().eq_ignore_ascii_case("sqlite") {
        let row = format!("({})", vec!["?"; columns].join(", "));
        vec![row; rows].join(", ")
    } else {
        (0..rows).map(|i| format!("({})", placeholders(1 + i * columns, columns))).collect::<Vec<_>>().join(", ")
    }
}

/// A database failure (the detail goes to the log, not to the caller).
pub(crate) fn unavailable(err: &StoreError) -> tonic::Status {
    tracing::error!(error = %err, "database");
    volta_api::status::error(Reason::StoreUnavailable, "the database is unavailable; retry later")
}

#[cfg(test)]
mod tests {
    use super::{Store, StoreError, connect_url, redacted};

    #[test]
    fn sqlite_files_are_created_and_passwords_never_logged() {
        assert_eq!(connect_url("sqlite://volta.db"), "sqlite://volta.db?mode=rwc");
        assert_eq!(connect_url("sqlite://a.db?mode=ro"), "sqlite://a.db?mode=ro");
        assert_eq!(connect_url("postgres://u@h/d"), "postgres://u@h/d");
        assert_eq!(redacted("postgres://volta:s3cret@db:5432/volta"), "postgres://volta:***@db:5432/volta");
        assert_eq!(redacted("postgres://volta@db/volta"), "postgres://volta@db/volta");
        assert_eq!(redacted("sqlite://volta.db"), "sqlite://volta.db");
    }

    async fn synchronous(conn: &mut sqlx::AnyConnection) -> i64 {
        sqlx::query_scalar("PRAGMA synchronous").fetch_one(conn).await.expect("the setting")
    }

    #[tokio::test]
    async fn relaxed_work_leaves_the_writer_waiting_for_the_disk_again() {
        const NORMAL: i64 = 1;
        const FULL: i64 = 2;
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store =
            Store::connect(&format!("sqlite://{}", dir.path().join("volta.db").display())).await.expect("store");
        let inside = store.relaxed("look", async |conn| Ok(synchronous(conn).await)).await.expect("relaxed");
        assert_eq!(inside, NORMAL);
        let failed: Result<(), StoreError> =
            store.relaxed("fail", async |_| Err(StoreError::Behind("on purpose".into()))).await;
        assert!(failed.is_err());
        // Work dropped half-way (its caller gave up) takes its connection
        // with it.
        let hung = store.relaxed("hang", async |_| std::future::pending::<Result<(), StoreError>>().await);
        assert!(tokio::time::timeout(std::time::Duration::from_secs(1), hung).await.is_err());
        // One writing connection: whatever comes next runs on the same one.
        let mut conn = store.pool().acquire().await.expect("the writer");
        assert_eq!(synchronous(&mut conn).await, FULL);
    }
}
