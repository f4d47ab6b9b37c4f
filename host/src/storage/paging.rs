//! What the SQL tables listed by `(created, seq)` share (the chat-completion history and the
//! Responses API's responses): the `seq` column, the columns added to a table another
//! program (OGX) created, and reading one row by id or one page for `after` / `limit` /
//! `order` / `model`.
//!
//! **Why `seq`.** `created` is in seconds, so many rows share one; ordering by
//! `(created, seq)`, `seq` an insertion counter, keeps their order stable, and paging with
//! `after` neither skips nor repeats a row. The chat-completion history breaks ties on `id`
//! instead, as OGX 1.5.0 does ([`TieBreak::IdAscending`]), which is stable too. On SQLite the one writer numbers `seq` inside its transaction
//! ([`last_seq`]); on PostgreSQL the column is a sequence (`BIGSERIAL`), so several writers never
//! collide.
//!
//! **Failures.** Everything answers the database's reason as [`SqlError`], or
//! [`StoreError::UnknownAfter`] for an `after` id no row has.

use super::inference_store::{ListQuery, Order, StoreError};
use super::sql::{Dialect, SqlError, SqlSession, SqlValue};

/// The `seq` column's type in a `CREATE TABLE`.
pub fn seq_column_type(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "INTEGER NOT NULL",
        Dialect::Postgres => "BIGSERIAL NOT NULL",
    }
}

/// Adds each `(column, type)` the table lacks (nullable); answers the columns it added, so the
/// caller can fill them in the rows already there.
pub fn add_missing_columns<'c>(
    s: &mut dyn SqlSession,
    table: &str,
    columns: &[(&'c str, &str)],
) -> Result<Vec<&'c str>, SqlError> {
    let mut added = Vec::new();
    for (column, ty) in columns {
        if !s.has_column(table, column)? {
            s.execute(
                &format!("ALTER TABLE {table} ADD COLUMN {column} {ty}"),
                &[],
            )?;
            added.push(*column);
        }
    }
    Ok(added)
}

/// Adds `seq` to a table without it (existing rows numbered in insertion order), the
/// `(created_column, seq)` index for paging and, on SQLite, the `seq` index for [`last_seq`].
pub fn add_seq(s: &mut dyn SqlSession, table: &str, created_column: &str) -> Result<(), SqlError> {
    if !s.has_column(table, "seq")? {
        match s.dialect() {
            Dialect::Sqlite => {
                s.execute(&format!("ALTER TABLE {table} ADD COLUMN seq INTEGER"), &[])?;
                s.execute(&format!("UPDATE {table} SET seq = rowid"), &[])?;
            }
            Dialect::Postgres => {
                s.execute(
                    &format!("ALTER TABLE {table} ADD COLUMN seq BIGSERIAL"),
                    &[],
                )?;
            }
        }
    }
    s.execute(
        &format!(
            "CREATE INDEX IF NOT EXISTS {table}_{created_column}_seq ON {table} ({created_column}, seq)"
        ),
        &[],
    )?;
    if s.dialect() == Dialect::Sqlite {
        // [`last_seq`] asks for `MAX(seq)` in every write transaction: without an index of its
        // own that is a scan of the whole table, and writes slow down as the history grows.
        s.execute(
            &format!("CREATE INDEX IF NOT EXISTS {table}_seq ON {table} (seq)"),
            &[],
        )?;
    }
    Ok(())
}

/// Inside a write transaction: on SQLite the highest `seq` so far (the next rows take the
/// numbers after it, and the statement must name `seq`); on PostgreSQL `None` (the column's
/// sequence numbers them; leave `seq` out of the statement).
pub fn last_seq(s: &mut dyn SqlSession, table: &str) -> Result<Option<i64>, SqlError> {
    match s.dialect() {
        Dialect::Sqlite => Ok(Some(
            s.query_row(&format!("SELECT COALESCE(MAX(seq), 0) FROM {table}"), &[])?
                .and_then(|row| row.into_iter().next())
                .map(|v| v.as_i64())
                .transpose()?
                .unwrap_or(0),
        )),
        Dialect::Postgres => Ok(None),
    }
}

/// The `columns` of the row of `table` whose `id` is `id`, turned into an item by `row`.
pub fn get_by_id<T>(
    s: &mut dyn SqlSession,
    table: &str,
    columns: &str,
    id: &str,
    row: impl FnOnce(Vec<SqlValue>) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    s.query_row(
        &format!("SELECT {columns} FROM {table} WHERE id = $1"),
        &[SqlValue::Text(id.to_string())],
    )?
    .map(row)
    .transpose()
}

/// How rows created in the same second are ordered in a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TieBreak {
    /// By `seq` (insertion order), in the page's direction.
    Seq,
    /// By `id` ascending, whatever the page's direction: OGX 1.5.0's chat-completion history
    /// (`sqlalchemy_sqlstore.fetch_all`), so that OGX and ogx page one table alike.
    IdAscending,
}

/// One page of `columns` of `table` for `query`, by `created_column` then `tie`: `model`
/// filters (the `after` row too), `after` is a row id (its position), one more row than
/// `limit` is read to know whether there are more. `row` turns each row's values (in `columns`
/// order) into an item.
pub fn list_page<T>(
    s: &mut dyn SqlSession,
    table: &str,
    created_column: &str,
    tie: TieBreak,
    columns: &str,
    query: &ListQuery,
    row: impl FnMut(Vec<SqlValue>) -> Result<T, StoreError>,
) -> Result<(Vec<T>, bool), StoreError> {
    let mut conditions = Vec::new();
    let mut values: Vec<SqlValue> = Vec::new();
    if let Some(model) = &query.model {
        values.push(SqlValue::Text(model.clone()));
        conditions.push(format!("model = ${}", values.len()));
    }
    let op = if query.order == Order::Asc { ">" } else { "<" };
    if let Some(after) = &query.after {
        let (position_columns, scope) = match tie {
            TieBreak::Seq => (format!("{created_column}, seq"), String::new()),
            TieBreak::IdAscending => (
                created_column.to_string(),
                conditions.iter().map(|c| format!(" AND {c}")).collect(),
            ),
        };
        let mut lookup = values.clone();
        lookup.push(SqlValue::Text(after.clone()));
        let position = s.query_row(
            &format!(
                "SELECT {position_columns} FROM {table} WHERE id = ${}{scope}",
                lookup.len()
            ),
            &lookup,
        )?;
        let Some(position) = position else {
            return Err(StoreError::UnknownAfter {
                id: after.clone(),
                table: table.to_string(),
            });
        };
        values.extend(position);
        match tie {
            TieBreak::Seq => conditions.push(format!(
                "({created_column}, seq) {op} (${}, ${})",
                values.len() - 1,
                values.len()
            )),
            TieBreak::IdAscending => {
                let created = values.len();
                values.push(SqlValue::Text(after.clone()));
                conditions.push(format!(
                    "({created_column} {op} ${created} OR ({created_column} = ${created} AND id > ${}))",
                    values.len()
                ));
            }
        }
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let direction = if query.order == Order::Asc {
        "ASC"
    } else {
        "DESC"
    };
    let tie_order = match tie {
        TieBreak::Seq => format!("seq {direction}"),
        TieBreak::IdAscending => "id ASC".to_string(),
    };
    values.push(SqlValue::Int(
        query.limit.min(i64::MAX as usize - 1) as i64 + 1,
    ));
    let sql = format!(
        "SELECT {columns} FROM {table} {filter} ORDER BY {created_column} {direction}, {tie_order} LIMIT ${}",
        values.len()
    );
    let mut items = s
        .query(&sql, &values)?
        .into_iter()
        .map(row)
        .collect::<Result<Vec<_>, _>>()?;
    let has_more = items.len() > query.limit;
    items.truncate(query.limit);
    Ok((items, has_more))
}
