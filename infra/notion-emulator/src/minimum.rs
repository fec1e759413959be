//! The minimum number of API calls a full sync needs (docs/DESIGN.md, "API calls").
//!
//! `ceil(search results / 100)` + one `GET /databases/{id}` per database (2025-09-03+) + Σ over data sources of its
//! query pages + one `children` list page per page/row and per block with `has_children` (`ceil(children / 100)`
//! each; child pages and child databases are not descended into) + `ceil(users / 100)`.
//!
//! Precise reading used here (every list costs at least one call, even when empty):
//! - query pages of a data source = Σ over its 10,000-row windows of `max(1, ceil(rows in window / 100))`. A window
//!   ends when the row cap is hit; the next one starts at the `created_time` of the last row served
//!   (`on_or_after`, so rows of that minute are served again). Without a cap (2022-06-28) there is one window.
//!   With one row per window-boundary minute this is `ceil(rows / 100)`, plus one per extra window only when the
//!   re-read rows spill into a new page.
//! - In 2022-06-28, a database with several data sources costs one (failing) query call.
//! - A synced block reference is listed (its children are the original's); blocks already walked are not walked again.
//! - An `ai_block` with children costs one (failing) call.

use std::collections::HashSet;

use serde::Serialize;

use crate::api::query::matching_rows;
use crate::api::search::searchable;
use crate::model::{Id, Store, Ts};
use crate::version::ApiVersion;

pub const PAGE: u64 = 100;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Minimum {
    pub version: &'static str,
    pub total: u64,
    pub search_results: u64,
    pub search_calls: u64,
    pub database_gets: u64,
    pub query_calls: u64,
    pub query_windows: u64,
    pub pages_walked: u64,
    pub containers_listed: u64,
    pub children_calls: u64,
    pub users: u64,
    pub user_calls: u64,
}

pub fn pages_of(n: u64) -> u64 {
    n.div_ceil(PAGE).max(1)
}

/// Query calls and windows to read rows whose `created_time`s (ascending) are given.
pub fn query_calls(created: &[Ts], cap: Option<usize>) -> (u64, u64) {
    let n = created.len();
    let Some(cap) = cap.filter(|c| *c > 0) else {
        return (pages_of(n as u64), 1);
    };
    let (mut start, mut calls, mut windows) = (0usize, 0u64, 0u64);
    loop {
        windows += 1;
        let remaining = n - start;
        let take = remaining.min(cap);
        calls += pages_of(take as u64);
        if remaining <= cap {
            break;
        }
        let last = created[start + take - 1];
        let next = created.partition_point(|t| *t < last);
        if next <= start {
            // More rows in one minute than the cap: the windowed walk cannot go on.
            break;
        }
        start = next;
    }
    (calls, windows)
}

/// Children list calls to walk one page (shared `visited` across pages).
fn walk(store: &Store, root: Id, visited: &mut HashSet<Id>) -> (u64, u64) {
    let (mut calls, mut containers) = (0u64, 0u64);
    let mut stack = vec![root];
    while let Some(id) = stack.pop() {
        if !visited.insert(id) {
            continue;
        }
        containers += 1;
        if store.blocks.get(&id).is_some_and(|b| b.btype == "ai_block") {
            calls += 1;
            continue;
        }
        let src = store.children_source(&id);
        if store.unshared.contains(&src) {
            calls += 1;
            continue;
        }
        let kids: Vec<_> = store.visible_children(&src).collect();
        calls += pages_of(kids.len() as u64);
        for k in kids.iter().rev() {
            if !matches!(k.btype.as_str(), "child_page" | "child_database") && store.has_children(k) {
                stack.push(k.id);
            }
        }
    }
    (calls, containers)
}

pub fn minimum(store: &Store, v: ApiVersion, cap: usize) -> Minimum {
    let results = searchable(store, v, None, "");
    let search_results = results.len() as u64;
    let search_calls = pages_of(search_results);

    let mut database_gets = 0;
    let mut query_total = 0;
    let mut windows = 0;
    let rows_created = |ds: &Id| -> Vec<Ts> { matching_rows(store, ds, None, &[]).iter().map(|p| p.created).collect() };
    if v.has_data_sources() {
        database_gets = store.databases.keys().filter(|id| store.database_listed(id)).count() as u64;
        for ds in store.data_sources.keys().filter(|id| store.data_source_listed(id)) {
            let (c, w) = query_calls(&rows_created(ds), Some(cap));
            query_total += c;
            windows += w;
        }
    } else {
        for db in store.databases.values().filter(|d| store.database_listed(&d.id)) {
            windows += 1;
            query_total += match db.data_sources.as_slice() {
                [only] => query_calls(&rows_created(only), None).0,
                _ => 1,
            };
        }
    }

    let mut visited = HashSet::new();
    let (mut children_calls, mut containers, mut pages_walked) = (0, 0, 0);
    let mut page_ids: Vec<Id> = store.pages.values().filter(|p| store.page_listed(p)).map(|p| p.id).collect();
    page_ids.sort();
    for id in page_ids {
        pages_walked += 1;
        let (c, n) = walk(store, id, &mut visited);
        children_calls += c;
        containers += n;
    }

    let users = store.users.len() as u64;
    let user_calls = pages_of(users);
    Minimum {
        version: v.as_str(),
        total: search_calls + database_gets + query_total + children_calls + user_calls,
        search_results,
        search_calls,
        database_gets,
        query_calls: query_total,
        query_windows: windows,
        pages_walked,
        containers_listed: containers,
        children_calls,
        users,
        user_calls,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::WorkspaceKind;
    use crate::gen::builder::{Builder, BASE_TS};
    use crate::model::Parent;

    #[test]
    fn list_pages_round_up_and_count_empty_lists() {
        assert_eq!(pages_of(0), 1);
        assert_eq!(pages_of(1), 1);
        assert_eq!(pages_of(100), 1);
        assert_eq!(pages_of(101), 2);
    }

    #[test]
    fn query_windows_follow_the_cap() {
        // 10,050 rows, one per minute: window 1 = 10,000 rows (100 calls), window 2 = 51 rows (1 call).
        let one_per_minute: Vec<Ts> = (0..10_050).map(|i| i * 60).collect();
        assert_eq!(query_calls(&one_per_minute, Some(10_000)), (101, 2));
        assert_eq!(query_calls(&one_per_minute, None), (101, 1));
        // Exactly the cap: one window.
        let exact: Vec<Ts> = (0..10_000).map(|i| i * 60).collect();
        assert_eq!(query_calls(&exact, Some(10_000)), (100, 1));
        // Three rows per minute, 10,250 rows: row 9,999 is the first of its minute, so window 2 re-reads it:
        // 251 rows → 3 calls.
        let three: Vec<Ts> = (0..10_250).map(|i| (i / 3) * 60).collect();
        assert_eq!(query_calls(&three, Some(10_000)), (103, 2));
        // A small cap to see several windows: 10 rows, cap 4, one per minute → windows of 4, 4 (1 re-read), 4 (1 re-read).
        let small: Vec<Ts> = (0..10).map(|i| i * 60).collect();
        assert_eq!(query_calls(&small, Some(4)), (3, 3));
        // All rows in one minute, more than the cap: stop after the first window.
        let stuck = vec![0; 12];
        assert_eq!(query_calls(&stuck, Some(5)), (1, 1));
        assert_eq!(query_calls(&[], Some(5)), (1, 1));
    }

    #[test]
    fn walk_counts_pages_blocks_with_children_and_synced_references() {
        let mut b = Builder::new(1, "t");
        b.add_users(1, &["bot"]);
        let p = b.add_page(Parent::Workspace, "P".into(), BASE_TS, BASE_TS);
        for _ in 0..150 {
            b.child(p, "paragraph", "x".into(), None, BASE_TS);
        }
        let t = b.child(p, "toggle", "t".into(), None, BASE_TS);
        b.child(t, "paragraph", "in toggle".into(), None, BASE_TS);
        let mut extra = serde_json::Map::new();
        extra.insert("_synced_from".into(), serde_json::Value::from(t.to_string()));
        b.child(p, "synced_block", String::new(), Some(extra), BASE_TS);
        let sub = b.add_page(Parent::Page(p), "Sub".into(), BASE_TS, BASE_TS);
        let _ = sub;
        let store = b.finish();
        let m = minimum(&store, ApiVersion::V2025, 10_000);
        // p: 153 children → 2 calls; toggle → 1; synced reference → 1; sub page (empty) → 1.
        assert_eq!(m.children_calls, 5);
        assert_eq!(m.search_results, 2);
        assert_eq!(m.total, 1 + 5 + 1);
    }

    #[test]
    fn generated_workspaces_have_a_minimum() {
        let store = crate::gen::generate(WorkspaceKind::Small, 42);
        let a = minimum(&store, ApiVersion::V2025, 10_000);
        let b = minimum(&store, ApiVersion::V2022, 10_000);
        assert!(a.total > a.search_calls + a.children_calls);
        assert_eq!(a.pages_walked, b.pages_walked);
        assert!(a.database_gets > 0 && b.database_gets == 0);
    }
}
