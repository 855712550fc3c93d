//! What the store tests share: a scratch PostgreSQL database.

use sqlx::Executor as _;

/// A fresh database on the server of `VOLTA_TEST_POSTGRES_URL`, dropped by
/// [`Scratch::drop_database`].
pub struct Scratch {
    /// Its URL.
    pub url: String,
    name: String,
    admin: sqlx::AnyPool,
}

impl Scratch {
    /// A new database, or `None` (said on stderr) when
    /// `VOLTA_TEST_POSTGRES_URL` is not set.
    pub async fn create() -> Option<Self> {
        let Ok(base) = std::env::var("VOLTA_TEST_POSTGRES_URL") else {
            eprintln!("VOLTA_TEST_POSTGRES_URL is not set: PostgreSQL not tested (scripts/test.sh sets it)");
            return None;
        };
        sqlx::any::install_default_drivers();
        let admin = sqlx::AnyPool::connect(&base).await.expect("connect to VOLTA_TEST_POSTGRES_URL");
        let name = format!("volta_test_{}", uuid::Uuid::new_v4().simple());
        admin.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).await.expect("create database");
        let url = match base.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => panic!("VOLTA_TEST_POSTGRES_URL needs a database path: {base}"),
        };
        Some(Self { url, name, admin })
    }

    /// Drops the database (every pool on it closed first).
    pub async fn drop_database(self) {
        self.admin.execute(sqlx::AssertSqlSafe(format!("DROP DATABASE {}", self.name))).await.expect("drop database");
    }
}
