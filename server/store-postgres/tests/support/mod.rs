//! Test isolation: every test gets a fresh schema `t_<random hex>` in the shared test
//! database (`PUSHAUTH_TEST_PG_URL`, default `postgres://postgres@127.0.0.1:5432/test`),
//! dropped when the guard goes out of scope (best effort, also after a failure). The
//! server's black-box tests include this file too (`server/tests/support`).

#![allow(dead_code, clippy::expect_used)]

use pushauth_store_postgres::PgStore;
use sqlx::{AssertSqlSafe, Connection as _, Executor as _, PgConnection};

/// Where the test database is.
pub fn url() -> String {
    std::env::var("PUSHAUTH_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A schema that is dropped (with everything in it) on drop.
#[derive(Debug)]
pub struct Schema {
    pub name: String,
}

impl Schema {
    pub fn fresh() -> Schema {
        Schema {
            name: format!("t_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]),
        }
    }

    /// A store in this schema.
    pub async fn store(&self) -> PgStore {
        PgStore::connect_in_schema(&url(), &self.name, 4)
            .await
            .expect("connect to the test database")
    }

    /// A plain connection whose search_path is this schema, for raw SQL.
    pub async fn raw(&self) -> PgConnection {
        let mut conn = PgConnection::connect(&url()).await.expect("connect");
        conn.execute(AssertSqlSafe(format!(
            r#"SET search_path TO "{}""#,
            self.name
        )))
        .await
        .expect("search_path");
        conn
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (url, name) = (url(), self.name.clone());
        // Drop runs inside the test's runtime: do the async cleanup on a thread of its own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                let Ok(mut conn) = PgConnection::connect(&url).await else {
                    return;
                };
                // A server's last transactions may still hold locks for a moment.
                let _ = conn.execute("SET lock_timeout = '5s'").await;
                for _ in 0..3 {
                    let dropped = conn
                        .execute(AssertSqlSafe(format!(
                            r#"DROP SCHEMA IF EXISTS "{name}" CASCADE"#
                        )))
                        .await;
                    if dropped.is_ok() {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
                let _ = conn.close().await;
            });
        })
        .join();
    }
}

/// A store in a fresh schema, and the guard that drops the schema.
pub async fn fresh_store() -> (PgStore, Schema) {
    let schema = Schema::fresh();
    let store = schema.store().await;
    (store, schema)
}
