//! [`SqlTable`]: the chat-completion history's table, on any [`SqlDatabase`] (SQLite or
//! PostgreSQL) with one set of SQL; [`super::inference_store`] writes to it through its queue.
//!
//! **Layout.** OGX's (`id`, `created`, `model`, `choices`, `input_messages`, and the owner
//! columns of [`super::owner`]: `owner_principal`, `access_attributes`, `tenant_id`) plus
//! `seq` and `target` (`<provider_id>/<provider_model_id>`, the routing target that answered;
//! NULL for rows written before ogx recorded it). A table OGX created is reused: the missing columns are
//! added, and `seq` is numbered in insertion order.
//!
//! **Ordering.** OGX 1.5.0's: by `created` in the page's direction, then by `id` ascending
//! ([`paging::TieBreak::IdAscending`]); an `after` cursor keeps the rows after it in that order
//! (`created` beyond the cursor's, or equal with a greater `id`), so paging neither skips nor
//! repeats rows of one second. `seq` is still numbered (the table's layout is shared with
//! earlier ogx versions).
//!
//! **Failures.** Opening fails with [`TableError`] (a table name that is not a plain
//! identifier, a file that cannot be opened, a schema the database refuses); reads and writes
//! with [`StoreError`], carrying the database's reason.

use super::inference_store::{CompletionTable, ListQuery, Page, StoreError, StoredCompletion};
use super::owner::{self, Owner};
use super::paging;
use super::sql::{SqlDatabase, SqlError, SqlSession, SqlValue};
use super::sqlite::OpenError;
use std::path::Path;
use std::sync::Arc;

/// Longest table name accepted.
pub const MAX_TABLE_NAME_LEN: usize = 63;

/// The completions table in a [`SqlDatabase`].
pub struct SqlTable {
    db: Arc<SqlDatabase>,
    table: String,
}

/// Why a table could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    #[error(
        "table name {0:?} is not a plain identifier: use letters, digits and `_` (not first), at most {MAX_TABLE_NAME_LEN} characters"
    )]
    BadName(String),
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The table could not be created or brought up to date; the database's reason.
    #[error("the table could not be created: {0}")]
    Schema(String),
}

/// Whether `name` can be put in SQL as a table name without quoting surprises.
pub fn is_plain_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= MAX_TABLE_NAME_LEN
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Checks the name `table` and runs `create_table` for it in one [`SqlDatabase::write`]: how
/// every SQL table of ogx's is opened. Blocks.
pub fn prepare_table(
    db: &SqlDatabase,
    table: &str,
    create_table: impl FnOnce(&mut dyn SqlSession, &str) -> Result<(), SqlError>,
) -> Result<(), TableError> {
    if !is_plain_identifier(table) {
        return Err(TableError::BadName(table.to_string()));
    }
    db.write(|s: &mut dyn SqlSession| create_table(s, table))
        .map_err(|error: SqlError| TableError::Schema(error.0))
}

impl SqlTable {
    /// The table `table` in `db`, created (or brought up to date) if needed. Blocks: call it
    /// at start-up or on a blocking thread.
    pub fn on(db: Arc<SqlDatabase>, table: &str) -> Result<Self, TableError> {
        prepare_table(&db, table, create_table)?;
        Ok(Self {
            db,
            table: table.to_string(),
        })
    }

    /// The table in the SQLite file at `path` (created with its folders). Blocks.
    pub fn sqlite(path: &Path, table: &str) -> Result<Self, TableError> {
        if !is_plain_identifier(table) {
            return Err(TableError::BadName(table.to_string()));
        }
        Self::on(Arc::new(SqlDatabase::open_sqlite(path)?), table)
    }

    /// A table in a private in-memory SQLite database (tests, benches).
    pub fn in_memory(table: &str) -> Result<Self, TableError> {
        Self::on(Arc::new(SqlDatabase::sqlite_in_memory()), table)
    }

    fn completion(row: Vec<SqlValue>) -> Result<StoredCompletion, StoreError> {
        let mut columns = row.into_iter();
        let mut next = || columns.next().unwrap_or(SqlValue::Null);
        Ok(StoredCompletion {
            id: next().into_text()?,
            created: next().as_i64()?,
            model: next().into_text()?,
            choices: next().into_json(),
            input_messages: next().into_json(),
            owner: Owner::from_values(next(), next(), next()),
            target: match next() {
                SqlValue::Null => None,
                value => Some(value.into_text()?),
            },
        })
    }
}

/// Creates the table and its ordering index, and adds the columns ogx writes to a table that
/// lacks them (OGX's own has no `seq`; `seq` is then numbered in insertion order).
fn create_table(s: &mut dyn SqlSession, table: &str) -> Result<(), SqlError> {
    s.lock_schema()?;
    s.execute(
        &format!(
            "CREATE TABLE IF NOT EXISTS {table} (
                id VARCHAR PRIMARY KEY,
                created INTEGER NOT NULL,
                model VARCHAR NOT NULL,
                choices JSON NOT NULL,
                input_messages JSON NOT NULL,
                owner_principal VARCHAR,
                access_attributes JSON,
                tenant_id VARCHAR,
                seq {}
            )",
            paging::seq_column_type(s.dialect())
        ),
        &[],
    )?;
    paging::add_missing_columns(s, table, &owner::COLUMN_TYPES)?;
    paging::add_missing_columns(s, table, &[("target", "VARCHAR")])?;
    paging::add_seq(s, table, "created")
}

const COLUMNS: &str = "id, created, model, choices, input_messages, owner_principal, \
                       access_attributes, tenant_id, target";

impl CompletionTable for SqlTable {
    fn insert(&self, batch: &[StoredCompletion]) -> Result<(), StoreError> {
        let table = &self.table;
        self.db.write(|s: &mut dyn SqlSession| {
            let mut next_seq = paging::last_seq(s, table)?;
            let (seq_column, seq_value) = if next_seq.is_some() {
                (", seq", ", $10")
            } else {
                ("", "")
            };
            let sql = format!(
                "INSERT INTO {table} ({COLUMNS}{seq_column})
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9{seq_value})
                 ON CONFLICT (id) DO UPDATE SET created = excluded.created, model = excluded.model,
                    choices = excluded.choices, input_messages = excluded.input_messages,
                    target = excluded.target"
            );
            for completion in batch {
                let mut params = vec![
                    SqlValue::Text(completion.id.clone()),
                    SqlValue::Int(completion.created),
                    SqlValue::Text(completion.model.clone()),
                    SqlValue::Json(completion.choices.clone()),
                    SqlValue::Json(completion.input_messages.clone()),
                ];
                params.extend(completion.owner.params());
                params.push(
                    completion
                        .target
                        .clone()
                        .map_or(SqlValue::Null, SqlValue::Text),
                );
                if let Some(seq) = next_seq.as_mut() {
                    *seq += 1;
                    params.push(SqlValue::Int(*seq));
                }
                s.execute(&sql, &params)?;
            }
            Ok(())
        })
    }

    fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        self.db.read(|s: &mut dyn SqlSession| {
            let (data, has_more) = paging::list_page(
                s,
                &self.table,
                "created",
                paging::TieBreak::IdAscending,
                COLUMNS,
                query,
                Self::completion,
            )?;
            Ok(Page { data, has_more })
        })
    }

    fn get(&self, id: &str) -> Result<Option<StoredCompletion>, StoreError> {
        self.db.read(|s: &mut dyn SqlSession| {
            paging::get_by_id(s, &self.table, COLUMNS, id, Self::completion)
        })
    }

    fn max_writers(&self) -> usize {
        self.db.max_writers()
    }

    fn name(&self) -> &str {
        &self.table
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use crate::storage::inference_store::Order;
    use serde_json::json;

    pub fn completion(id: &str, created: i64, model: &str) -> StoredCompletion {
        StoredCompletion {
            id: id.into(),
            created,
            model: model.into(),
            choices: json!([{"index": 0, "message": {"role": "assistant", "content": id}}]),
            input_messages: json!([{"role": "user", "content": "hi"}]),
            owner: Owner::default(),
            target: None,
        }
    }

    pub fn query(after: Option<&str>, limit: usize, order: Order) -> ListQuery {
        ListQuery {
            after: after.map(str::to_string),
            limit,
            order,
            model: None,
        }
    }

    pub fn ids(page: &Page) -> Vec<&str> {
        page.data.iter().map(|c| c.id.as_str()).collect()
    }

    /// Every id, following `after` from page to page.
    pub fn walk(table: &SqlTable, limit: usize, order: Order) -> Vec<String> {
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = table.list(&query(after.as_deref(), limit, order)).unwrap();
            seen.extend(page.data.iter().map(|c| c.id.clone()));
            if !page.has_more {
                return seen;
            }
            after = seen.last().cloned();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{completion, ids, query, walk};
    use super::*;
    use crate::storage::inference_store::Order;

    #[test]
    fn table_names_must_be_plain_identifiers() {
        for good in ["inference_store", "_t", "T1"] {
            assert!(is_plain_identifier(good), "{good}");
        }
        let long = "t".repeat(MAX_TABLE_NAME_LEN + 1);
        for bad in ["", "1t", "a-b", "a b", "t;drop", "\"t\"", long.as_str()] {
            assert!(!is_plain_identifier(bad), "{bad}");
            assert!(matches!(
                SqlTable::in_memory(bad),
                Err(TableError::BadName(_))
            ));
        }
    }

    #[test]
    fn paging_sees_rows_of_the_same_second_exactly_once() {
        let table = SqlTable::in_memory("inference_store").unwrap();
        // 25 rows in three seconds, inserted in two batches, some out of `created` order.
        let batch: Vec<_> = (0..25)
            .map(|i| completion(&format!("c{i:02}"), 100 + [1, 0, 2][i % 3], "m"))
            .collect();
        table.insert(&batch[..10]).unwrap();
        table.insert(&batch[10..]).unwrap();
        // OGX 1.5.0's order: `created` in the page's direction, ties by id ascending.
        let sorted = |key: fn(&StoredCompletion) -> (i64, String)| {
            let mut rows: Vec<&StoredCompletion> = batch.iter().collect();
            rows.sort_by_key(|c| key(c));
            rows.iter().map(|c| c.id.clone()).collect::<Vec<String>>()
        };
        let expected = sorted(|c| (c.created, c.id.clone()));
        let newest_first = sorted(|c| (-c.created, c.id.clone()));
        assert_ne!(
            newest_first.first(),
            expected.last(),
            "ties are not reversed"
        );
        for limit in [1, 4, 7, 25, 100] {
            assert_eq!(walk(&table, limit, Order::Asc), expected, "limit {limit}");
            assert_eq!(
                walk(&table, limit, Order::Desc),
                newest_first,
                "limit {limit}"
            );
        }
        let page = table.list(&query(None, 25, Order::Desc)).unwrap();
        assert!(!page.has_more);
        let page = table.list(&query(None, 24, Order::Desc)).unwrap();
        assert!(page.has_more);
        let page = table
            .list(&query(Some(expected[23].as_str()), 5, Order::Asc))
            .unwrap();
        assert_eq!(ids(&page), [expected[24].as_str()]);
        assert!(!page.has_more);
    }

    #[test]
    fn model_filter_unknown_after_and_get() {
        let table = SqlTable::in_memory("inference_store").unwrap();
        table
            .insert(&[completion("a", 1, "x/m"), completion("b", 2, "y/m")])
            .unwrap();
        let mut only_y = query(None, 20, Order::Desc);
        only_y.model = Some("y/m".into());
        assert_eq!(ids(&table.list(&only_y).unwrap()), ["b"]);
        assert_eq!(
            table.list(&query(Some("nope"), 20, Order::Desc)),
            Err(StoreError::UnknownAfter {
                id: "nope".into(),
                table: "inference_store".into()
            })
        );
        assert_eq!(
            StoreError::UnknownAfter {
                id: "nope".into(),
                table: "t".into()
            }
            .to_string(),
            "Record with id='nope' not found in table 't'"
        );
        assert_eq!(table.get("a").unwrap(), Some(completion("a", 1, "x/m")));
        assert_eq!(table.get("zzz").unwrap(), None);
    }

    #[test]
    fn a_table_without_seq_gets_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sql_store.db");
        let connection = crate::storage::sqlite::open(&path).unwrap();
        connection
            .execute_batch(
                "CREATE TABLE inference_store (id TEXT PRIMARY KEY, created INTEGER,
                    model TEXT, choices JSON, input_messages JSON, owner_principal TEXT);
                 INSERT INTO inference_store VALUES ('old1', 5, 'm', '[]', '[]', NULL);
                 INSERT INTO inference_store VALUES ('old2', 5, 'm', '[]', '[]', NULL);",
            )
            .unwrap();
        drop(connection);
        let table = SqlTable::sqlite(&path, "inference_store").unwrap();
        table.insert(&[completion("new", 5, "m")]).unwrap();
        assert_eq!(walk(&table, 1, Order::Asc), ["new", "old1", "old2"]);
    }

    #[test]
    fn ogx_columns_are_written_as_null() {
        let db = Arc::new(SqlDatabase::sqlite_in_memory());
        let table = SqlTable::on(Arc::clone(&db), "inference_store").unwrap();
        table.insert(&[completion("a", 1, "m")]).unwrap();
        let row = db
            .read(|s: &mut dyn SqlSession| {
                s.query_row(
                    "SELECT owner_principal, access_attributes FROM inference_store",
                    &[],
                )
            })
            .unwrap()
            .unwrap();
        assert_eq!(row, [SqlValue::Null, SqlValue::Null]);
    }
}
