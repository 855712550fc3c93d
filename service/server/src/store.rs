//! Persistence: SQLite embedded by default, PostgreSQL when configured.
//!
//! One async API over both through sqlx's `any` driver; the SQL is the
//! portable subset both understand. The schema is versioned: [`MIGRATIONS`]
//! are applied in order at start, each once, recorded in `volta_schema`.
//! Every row belongs to a tenant and every query filters on it, so a caller
//! never sees another tenant's rows, not even their ids.

use anyhow::Context as _;
use sqlx::Any;
use sqlx::Row as _;
use sqlx::pool::{Pool, PoolOptions};

/// The schema, version by version; new versions go at the end.
pub const MIGRATIONS: &[(i64, &str)] = &[(
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
)];

/// The PostgreSQL advisory lock key that serialises migrations ("volta"
/// in ASCII).
const MIGRATION_LOCK: i64 = 0x0076_6f6c_7461;

/// The columns of a [`ModelRecord`], in `SELECT` order.
macro_rules! columns {
    () => {
        "id, tenant, name, model_kind, target, horizon, step_seconds, trained_until, created_at"
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
    /// When it was stored, RFC 3339.
    pub created_at: String,
}

/// The database behind the services.
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool<Any>,
    postgres: bool,
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
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        if !(url.starts_with("sqlite:") || url.starts_with("postgres:") || url.starts_with("postgresql:")) {
            anyhow::bail!("storage.url {}: use sqlite://FILE or postgres://...", redacted(url));
        }
        sqlx::any::install_default_drivers();
        // One connection for SQLite: it has one writer anyway, and an
        // in-memory database must not be split across connections.
        let connections = if url.starts_with("sqlite:") { 1 } else { 8 };
        let pool = PoolOptions::<Any>::new()
            .max_connections(connections)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect(&connect_url(url))
            .await
            .with_context(|| format!("cannot open the database {}", redacted(url)))?;
        let store = Self { pool, postgres: url.starts_with("postgres") };
        store.migrate().await.with_context(|| format!("cannot migrate the database {}", redacted(url)))?;
        Ok(store)
    }

    /// The connection pool, for services that keep their own tables.
    #[must_use]
    pub fn pool(&self) -> &Pool<Any> {
        &self.pool
    }

    /// Brings the schema up to date in one transaction. On PostgreSQL the
    /// transaction first takes an advisory lock, so that replicas starting
    /// together migrate one after the other: the first applies the missing
    /// versions, the others then find nothing to do. (SQLite has one writer:
    /// its transaction is the lock.)
    async fn migrate(&self) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        if self.postgres {
            sqlx::query("SELECT CAST(1 AS BIGINT) FROM (SELECT pg_advisory_xact_lock($1)) AS locked")
                .bind(MIGRATION_LOCK)
                .fetch_one(&mut *tx)
                .await
                .context("migration lock")?;
        }
        sqlx::query("CREATE TABLE IF NOT EXISTS volta_schema (version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL)")
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query("SELECT COALESCE(MAX(version), 0) FROM volta_schema").fetch_one(&mut *tx).await?;
        let current: i64 = row.try_get(0)?;
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
            for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                sqlx::query(statement).execute(&mut *tx).await.with_context(|| format!("migration {version}"))?;
            }
            sqlx::query("INSERT INTO volta_schema (version, applied_at) VALUES ($1, $2)")
                .bind(*version)
                .bind(jiff::Timestamp::now().to_string())
                .execute(&mut *tx)
                .await?;
            tracing::info!(version, "database migrated");
        }
        tx.commit().await?;
        Ok(())
    }

    /// Stores a model body under a new id.
    ///
    /// # Errors
    /// A database error.
    pub async fn put_model(&self, record: &ModelRecord, body: &str) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO forecast_models \
             (id, tenant, name, model_kind, target, horizon, step_seconds, trained_until, created_at, body) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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
        .execute(&self.pool)
        .await
        .context("cannot store the model")?;
        Ok(())
    }

    /// A model of `tenant` with its body; `None` if it does not exist or
    /// belongs to another tenant.
    ///
    /// # Errors
    /// A database error.
    pub async fn model(&self, tenant: &str, id: &str) -> anyhow::Result<Option<(ModelRecord, String)>> {
        let row =
            sqlx::query(concat!("SELECT ", columns!(), ", body FROM forecast_models WHERE tenant = $1 AND id = $2"))
                .bind(tenant)
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .context("cannot read the model")?;
        row.map(|r| Ok((record(&r)?, r.try_get("body")?))).transpose()
    }

    /// The models of `tenant`, newest first.
    ///
    /// # Errors
    /// A database error.
    pub async fn models(&self, tenant: &str) -> anyhow::Result<Vec<ModelRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM forecast_models WHERE tenant = $1 ORDER BY created_at DESC, id"
        ))
        .bind(tenant)
        .fetch_all(&self.pool)
        .await
        .context("cannot list the models")?;
        rows.iter().map(record).collect()
    }

    /// Deletes a model of `tenant`; whether it existed.
    ///
    /// # Errors
    /// A database error.
    pub async fn delete_model(&self, tenant: &str, id: &str) -> anyhow::Result<bool> {
        let done = sqlx::query("DELETE FROM forecast_models WHERE tenant = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .execute(&self.pool)
            .await
            .context("cannot delete the model")?;
        Ok(done.rows_affected() > 0)
    }
}

fn record(row: &sqlx::any::AnyRow) -> anyhow::Result<ModelRecord> {
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
    })
}

/// A database failure (the detail goes to the log, not to the caller).
pub(crate) fn unavailable(err: &anyhow::Error) -> tonic::Status {
    tracing::error!(error = format!("{err:#}"), "database");
    tonic::Status::unavailable("the model store is unavailable; retry later")
}

#[cfg(test)]
mod tests {
    use super::{connect_url, redacted};

    #[test]
    fn sqlite_files_are_created_and_passwords_never_logged() {
        assert_eq!(connect_url("sqlite://volta.db"), "sqlite://volta.db?mode=rwc");
        assert_eq!(connect_url("sqlite://a.db?mode=ro"), "sqlite://a.db?mode=ro");
        assert_eq!(connect_url("postgres://u@h/d"), "postgres://u@h/d");
        assert_eq!(redacted("postgres://volta:s3cret@db:5432/volta"), "postgres://volta:***@db:5432/volta");
        assert_eq!(redacted("postgres://volta@db/volta"), "postgres://volta@db/volta");
        assert_eq!(redacted("sqlite://volta.db"), "sqlite://volta.db");
    }
}
