//! Stored rows as the caller may see them (OGX's `AuthorizedSqlStore` on the read side): a row
//! the access policy (or the tenant partition) hides is "not found", and a listing holds only
//! readable rows. A listing reads page after page of the table until it has `limit` readable
//! rows or the table ends, at most [`MAX_SCANNED_PAGES`] pages (then it answers what it has,
//! with `has_more: true`, so a client paging on never misses a row).

use crate::auth::Identity;
use crate::auth::policy::Action;
use crate::server::AppState;
use crate::storage::inference_store::{ListQuery, StoreError};
use crate::storage::owner::Owner;
use std::future::Future;

/// The most table pages one listing reads while looking for readable rows.
pub const MAX_SCANNED_PAGES: usize = 20;

/// A stored row: its id and owner.
pub trait OwnedRow {
    fn row_id(&self) -> &str;
    fn row_owner(&self) -> &Owner;
}

impl OwnedRow for crate::storage::inference_store::StoredCompletion {
    fn row_id(&self) -> &str {
        &self.id
    }
    fn row_owner(&self) -> &Owner {
        &self.owner
    }
}

impl OwnedRow for crate::storage::responses_store::StoredResponse {
    fn row_id(&self) -> &str {
        &self.id
    }
    fn row_owner(&self) -> &Owner {
        &self.owner
    }
}

/// Whether `identity` may do `action` on `row` of `table`.
pub fn allowed(
    state: &AppState,
    identity: &Identity,
    action: Action,
    table: &str,
    row: &impl OwnedRow,
) -> bool {
    state
        .security
        .row_allowed(identity, action, table, row.row_id(), row.row_owner())
}

/// `row` when `identity` may do `action` on it; `None` (not found) otherwise.
pub fn only_if_allowed<R: OwnedRow>(
    state: &AppState,
    identity: &Identity,
    action: Action,
    table: &str,
    row: Option<R>,
) -> Option<R> {
    row.filter(|row| allowed(state, identity, action, table, row))
}

/// One page of the rows `identity` may read, fetched with `fetch` (a query → rows and whether
/// the table has more).
pub async fn readable_page<R, F, Fut>(
    state: &AppState,
    identity: &Identity,
    table: &str,
    mut query: ListQuery,
    mut fetch: F,
) -> Result<(Vec<R>, bool), StoreError>
where
    R: OwnedRow,
    F: FnMut(ListQuery) -> Fut,
    Fut: Future<Output = Result<(Vec<R>, bool), StoreError>>,
{
    let limit = query.limit;
    let mut kept = Vec::new();
    for _ in 0..MAX_SCANNED_PAGES {
        let (rows, has_more) = fetch(query.clone()).await?;
        let last = rows.last().map(|r| r.row_id().to_owned());
        let mut rows = rows.into_iter();
        for row in rows.by_ref() {
            if allowed(state, identity, Action::Read, table, &row) {
                kept.push(row);
                if kept.len() == limit {
                    break;
                }
            }
        }
        if kept.len() == limit {
            return Ok((kept, has_more || rows.next().is_some()));
        }
        match last {
            Some(last) if has_more => query.after = Some(last),
            _ => return Ok((kept, false)),
        }
    }
    Ok((kept, true))
}
