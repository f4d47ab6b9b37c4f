//! The stores on a real PostgreSQL server: the one `OGX_TEST_POSTGRES_URL` names
//! (`postgres://user:password@127.0.0.1:port/db`; scripts/test.sh starts a private cluster with
//! tests/postgres_server.py and sets it). Without it these tests print why and pass vacuously,
//! except under `CI`, where a missing server is a failure. Each test works in tables of its
//! own, so tests run in parallel on one database.

use super::backends::KV_POSTGRES_POOL_SIZE;
use super::inference_store::{
    CompletionTable, DEFAULT_WRITE_LINGER, InferenceStore, ListQuery, Order, ShutdownReport,
    SqlTable, StoredCompletion,
};
use super::kv::{KvError, KvStore};
use super::postgres::{self, ConnectError, PgSettings};
use super::sql::{SqlDatabase, SqlSession, SqlValue};
use serde_json::json;
use std::sync::Arc;

fn settings() -> Option<PgSettings> {
    let Some(url) = std::env::var("OGX_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        if std::env::var_os("CI").is_some() {
            panic!("CI is set but OGX_TEST_POSTGRES_URL is not: scripts/test.sh sets it");
        }
        eprintln!(
            "skipped: set OGX_TEST_POSTGRES_URL (python3 tests/postgres_server.py run -- cargo test) to run the PostgreSQL tests"
        );
        return None;
    };
    Some(PgSettings::from_url(&url, KV_POSTGRES_POOL_SIZE).expect("OGX_TEST_POSTGRES_URL"))
}

/// The test database, or `None` when the tests are skipped.
async fn database() -> Option<Arc<SqlDatabase>> {
    let pool = postgres::connect(&settings()?).await.unwrap();
    Some(Arc::new(SqlDatabase::postgres(pool)))
}

fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work).await.unwrap()
}

fn completion(id: &str, created: i64) -> StoredCompletion {
    StoredCompletion {
        id: id.into(),
        created,
        model: "vllm/m".into(),
        choices: json!([{"index": 0, "message": {"role": "assistant", "content": id}}]),
        input_messages: json!([{"role": "user", "content": "hi"}]),
        owner: Default::default(),
        target: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_round_trip_in_byte_order_with_isolated_namespaces_and_quota() {
    let Some(db) = database().await else { return };
    let table = unique("kv");
    let store = Arc::new(blocking(move || KvStore::on(db, &table)).await.unwrap());
    let kv = store.namespace("p");
    for key in ["models/b", "models/a", "Z", "mod%", "é", "a"] {
        kv.set(key, key.as_bytes().to_vec()).await.unwrap();
    }
    // Byte order (the `C` collation), whatever the database's locale.
    assert_eq!(
        kv.list_keys("").await.unwrap(),
        ["Z", "a", "mod%", "models/a", "models/b", "é"]
    );
    assert_eq!(
        kv.list_keys("models/").await.unwrap(),
        ["models/a", "models/b"]
    );
    assert_eq!(kv.get("a").await, Ok(Some(b"a".to_vec())));
    kv.set("a", vec![0, 255]).await.unwrap();
    assert_eq!(kv.get("a").await, Ok(Some(vec![0, 255])));
    kv.delete("a").await.unwrap();
    assert_eq!(kv.get("a").await, Ok(None));
    assert_eq!(store.namespace("q").get("Z").await, Ok(None));
    let too_large = kv.set("big", vec![0; super::kv::MAX_VALUE_BYTES + 1]).await;
    assert!(
        matches!(too_large, Err(KvError::TooLarge(_))),
        "{too_large:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_of_another_layout_is_refused_with_a_clear_message() {
    let Some(db) = database().await else { return };
    let table = unique("ogx_layout");
    let create =
        format!("CREATE TABLE {table} (key TEXT PRIMARY KEY, value TEXT, expiration TIMESTAMP)");
    let error = blocking(move || {
        db.write(|s: &mut dyn SqlSession| s.execute(&create, &[]))
            .unwrap();
        KvStore::on(db, &table).unwrap_err()
    })
    .await;
    assert!(
        error.to_string().contains("without a `namespace` column"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_pages_rows_of_one_second_exactly_once_with_several_writers() {
    let Some(db) = database().await else { return };
    let name = unique("inference");
    let table = Arc::new(blocking(move || SqlTable::on(db, &name)).await.unwrap());
    assert_eq!(InferenceStore::writer_count(&*table, 4), 4);
    let store = InferenceStore::start(table.clone(), 10, 4, DEFAULT_WRITE_LINGER);
    for i in 0..600 {
        store.record(completion(&format!("c{i:03}"), 1_700_000_000));
    }
    assert_eq!(
        store.shutdown().await,
        ShutdownReport {
            written: 600,
            lost: 0
        }
    );
    let walked = blocking(move || {
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = table
                .list(&ListQuery {
                    after: after.clone(),
                    limit: 7,
                    order: Order::Desc,
                    model: None,
                })
                .unwrap();
            seen.extend(page.data.iter().map(|c| c.id.clone()));
            if !page.has_more {
                return (seen, table.get("c042").unwrap());
            }
            after = seen.last().cloned();
        }
    })
    .await;
    let (mut seen, one) = walked;
    assert_eq!(seen.len(), 600);
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 600, "a row was listed twice");
    assert_eq!(one, Some(completion("c042", 1_700_000_000)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ogx_created_responses_table_is_read_and_extended() {
    let Some(db) = database().await else { return };
    // Upper case, as a config may spell it; PostgreSQL folds it.
    let name = unique("OGX_Responses");
    blocking(move || {
        super::responses_store::test_support::a_table_ogx_created_is_read_and_extended(db, &name)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ogx_created_table_is_read_and_written() {
    let Some(db) = database().await else { return };
    // Upper case, as a config may spell it; PostgreSQL folds it.
    let name = unique("OGX_Inference");
    // The layout OGX's SQLAlchemy store creates, with one row of its own.
    let create = format!(
        "CREATE TABLE {name} (id VARCHAR PRIMARY KEY, created INTEGER, model VARCHAR,
            choices JSON, input_messages JSON, owner_principal VARCHAR, access_attributes JSON);
         INSERT INTO {name} VALUES ('old', 5, 'vllm/m', '[]', '[]', NULL, NULL)"
    );
    let rows = blocking(move || {
        db.write(|s: &mut dyn SqlSession| {
            for statement in create.split(';') {
                s.execute(statement, &[])?;
            }
            Ok::<_, super::sql::SqlError>(())
        })
        .unwrap();
        let table = SqlTable::on(Arc::clone(&db), &name).unwrap();
        table.insert(&[completion("new", 5)]).unwrap();
        let listed: Vec<String> = table
            .list(&ListQuery {
                after: None,
                limit: 10,
                order: Order::Asc,
                model: Some("vllm/m".into()),
            })
            .unwrap()
            .data
            .into_iter()
            .map(|c| c.id)
            .collect();
        let columns = db
            .read(|s: &mut dyn SqlSession| {
                s.query_row(
                    &format!(
                        "SELECT owner_principal, access_attributes FROM {name} WHERE id = 'new'"
                    ),
                    &[],
                )
            })
            .unwrap()
            .unwrap();
        (listed, columns)
    })
    .await;
    // One second: ties by id, as OGX 1.5.0 lists them.
    assert_eq!(rows.0, ["new", "old"]);
    assert_eq!(rows.1, [SqlValue::Null, SqlValue::Null]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_port_or_password_is_a_clear_error_without_the_password() {
    let Some(settings) = settings() else { return };
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let wrong_port = PgSettings {
        port: closed_port,
        ..settings.clone()
    };
    let error = postgres::connect(&wrong_port).await.err().unwrap();
    let text = error.to_string();
    assert!(matches!(error, ConnectError::Unreachable { .. }), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{closed_port}")), "{text}");

    let secret = "definitely-not-the-password";
    let wrong_password = PgSettings {
        password: Some(secret.into()),
        ..settings.clone()
    };
    let text = postgres::connect(&wrong_password)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(text.contains("password authentication failed"), "{text}");
    assert!(!text.contains(secret), "{text}");
    assert!(!format!("{wrong_password:?}").contains(secret));
}
