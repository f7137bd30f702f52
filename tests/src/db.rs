//! A test database without the processes, for tests of the schema itself: its
//! triggers, or a migration's backfill of rows written before it.

use crate::urls::with_database;
use crate::{SystemOptions, test_settings};
use sqlx::{Connection, PgPool};

/// A fresh database of the test's own, dropped by [`TestDb::drop`].
pub struct TestDb {
    pub pool: PgPool,
    url: String,
    name: String,
}

impl TestDb {
    /// A new database with the migrations applied up to `last` (a migration's
    /// version, included), or all of them.
    pub async fn new(last: Option<i64>) -> Self {
        let (settings, name) = test_settings(&SystemOptions::default()).await;
        let url = settings.database.url.clone();
        platform::db::ensure_database(&url)
            .await
            .expect("create test database");
        let db = Self {
            pool: platform::db::pool(&settings.database).expect("pool"),
            url,
            name,
        };
        db.migrate(last).await;
        db
    }

    /// Applies the migrations not applied yet, up to `last` (included) or all.
    pub async fn migrate(&self, last: Option<i64>) {
        let mut conn = sqlx::PgConnection::connect(&self.url)
            .await
            .expect("connect to the test database");
        let m = &platform::db::MIGRATOR;
        match last {
            Some(v) => m.run_to(v, &mut conn).await,
            None => m.run(&mut conn).await,
        }
        .expect("migrate the test database");
        drop(conn.close().await);
    }

    /// The version of the migration just before `version`.
    pub fn version_before(version: i64) -> i64 {
        platform::db::MIGRATOR
            .iter()
            .map(|m| m.version)
            .filter(|v| *v < version)
            .max()
            .expect("a migration before it")
    }

    pub async fn drop(self) {
        self.pool.close().await;
        drop_database(&self.url, &self.name).await;
    }
}

/// Drops database `name` of the server of `url` (best effort: a test's leftovers).
pub(crate) async fn drop_database(url: &str, name: &str) {
    if let Ok(admin) = sqlx::PgPool::connect(&with_database(url, "postgres")).await {
        let sql = format!("drop database if exists \"{name}\" with (force)");
        drop(
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&admin)
                .await,
        );
    }
}
