//! What a run covers: the `pages` / `databases` title lists, or the advanced sync rules that
//! replace them. Configured titles and database ids are checked against the workspace before
//! anything is queued, so a typo fails the run before anything is indexed or deleted.

use std::collections::{HashMap, HashSet};

use serde_json::{json, Value};

use crate::config::TitleSelection;
use crate::rules::{
    missing_titles, normalize_database_id, normalize_title, notion_title, validate_database_ids, validate_searches,
    AdvancedRules, SearchObject,
};

use super::planner::{fetch_databases, search_all, Inventory};
use super::{SyncContext, SyncError};

/// Narrows a whole-workspace inventory to the configured `pages` and `databases` titles.
pub async fn by_titles(ctx: &SyncContext, inv: &mut Inventory) -> Result<(), SyncError> {
    let config = &ctx.config;
    if config.pages.is_all() && config.databases.is_all() {
        return Ok(());
    }
    let tables = if ctx.notion.version().has_data_sources() { "data_source" } else { "database" };
    let pages = matches(ctx, &config.pages, "page", inv).await?;
    let databases = matches(ctx, &config.databases, tables, inv).await?;
    retain_selected(inv, pages.as_ref(), databases.as_ref());
    Ok(())
}

/// The ids whose title exactly matches a configured one: one search per title (not one joined
/// query, which misses titles). Unknown titles fail, all named. `None` for `*`.
async fn matches(
    ctx: &SyncContext,
    selection: &TitleSelection,
    object: &str,
    inv: &mut Inventory,
) -> Result<Option<HashSet<String>>, SyncError> {
    let TitleSelection::Titles(titles) = selection else { return Ok(None) };
    let mut found: HashMap<String, Vec<String>> = HashMap::new();
    let mut ids = HashSet::new();
    for title in titles {
        let body = json!({"query": title, "filter": {"property": "object", "value": object}});
        let results = search_all(ctx, body, &mut inv.api_calls).await?;
        for result in &results {
            if normalize_title(&notion_title(result)) != normalize_title(title) {
                continue;
            }
            ids.extend(result.get("id").and_then(Value::as_str).map(str::to_string));
            // A data source is named after its database: either id selects it.
            ids.extend(result.pointer("/parent/database_id").and_then(Value::as_str).map(str::to_string));
        }
        found.insert(title.clone(), results.iter().map(notion_title).collect());
    }
    let missing = missing_titles(titles, &found);
    if !missing.is_empty() {
        let kind = if object == "page" { "pages" } else { "databases" };
        let names: Vec<String> = missing.iter().map(|t| format!("{t:?}")).collect();
        return Err(SyncError::Config(format!(
            "`{kind}`: no {object} titled {} (titles must match exactly, case aside)",
            names.join(", ")
        )));
    }
    Ok(Some(ids))
}

/// Keeps the selected pages with everything below them, and the selected databases with their
/// rows (plus the databases inside selected pages). `None` selects everything of that kind.
pub fn retain_selected(inv: &mut Inventory, pages: Option<&HashSet<String>>, databases: Option<&HashSet<String>>) {
    let titles = inv.titles.clone();
    let under = |id: &str, set: &HashSet<String>| self_or_ancestor_in(&titles, id, set);
    let id_of = |o: &Value| o.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
    if let Some(selected) = pages {
        inv.pages.retain(|p| under(&id_of(p), selected));
    }
    if let Some(selected) = databases {
        let in_pages = |id: &str| pages.is_some_and(|p| under(id, p));
        inv.sources.retain(|s| {
            let id = id_of(s);
            under(&id, selected) || in_pages(&id)
        });
    }
    let kept_databases: HashSet<String> = inv
        .sources
        .iter()
        .filter_map(|s| s.pointer("/parent/database_id").and_then(Value::as_str).map(str::to_string))
        .collect();
    inv.databases.retain(|d| kept_databases.contains(&id_of(d)));
}

fn self_or_ancestor_in(titles: &HashMap<String, (String, Option<String>)>, id: &str, set: &HashSet<String>) -> bool {
    let mut current = Some(id.to_string());
    let mut steps = 0;
    while let Some(id) = current {
        if set.contains(&id) {
            return true;
        }
        steps += 1;
        if steps > 1000 {
            return false; // a parent cycle
        }
        current = titles.get(&id).and_then(|(_, parent)| parent.clone());
    }
    false
}

/// Advanced rules replace the title lists (and the users), as in the Elastic connector:
/// `searches` select what each search returns, `database_query_filters` query a database's rows
/// with a Notion filter. Unlike the reference, those rows also get their content indexed.
pub async fn advanced(ctx: &SyncContext, rules: &AdvancedRules) -> Result<Inventory, SyncError> {
    let mut inv = Inventory::default();
    let tables = if ctx.notion.version().has_data_sources() { "data_source" } else { "database" };
    let rule_error = |e: crate::rules::RulesError| SyncError::Config(format!("advanced sync rules {e}"));

    let mut all_sources = Vec::new();
    if !rules.database_query_filters.is_empty() {
        all_sources =
            search_all(ctx, json!({"filter": {"property": "object", "value": tables}}), &mut inv.api_calls).await?;
        let known: HashSet<String> = all_sources
            .iter()
            .flat_map(|s| [s.get("id"), s.pointer("/parent/database_id")])
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect();
        validate_database_ids(rules, &known).map_err(rule_error)?;
    }

    let mut found_titles = Vec::new();
    for rule in &rules.searches {
        let mut body = json!({"query": rule.query});
        if let Some(filter) = rule.filter {
            let value = match filter {
                SearchObject::Page => "page",
                SearchObject::Database => tables,
            };
            body["filter"] = json!({"property": "object", "value": value});
        }
        let results = search_all(ctx, body, &mut inv.api_calls).await?;
        found_titles.push(results.iter().map(notion_title).collect::<Vec<_>>());
        for object in results {
            inv.add(object, true);
        }
    }
    validate_searches(rules, &found_titles).map_err(rule_error)?;

    // The rules add up, as in the reference: a source a search selected keeps every row (the
    // filter does not narrow it); several filters on one source are or-ed, and a rule without a
    // filter takes every row. A source only these rules select is indexed as its rows alone (the
    // reference yields just the rows), not as database / data source documents.
    let searched: HashSet<String> =
        inv.sources.iter().filter_map(|s| s.get("id").and_then(Value::as_str).map(str::to_string)).collect();
    let mut filters: HashMap<String, Option<Vec<Value>>> = HashMap::new();
    for rule in &rules.database_query_filters {
        let wanted = normalize_database_id(&rule.database_id);
        for source in &all_sources {
            let ids = [source.get("id"), source.pointer("/parent/database_id")];
            if !ids.into_iter().flatten().filter_map(Value::as_str).any(|id| normalize_database_id(id) == wanted) {
                continue;
            }
            let id = source.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
            if searched.contains(&id) {
                continue;
            }
            let entry = filters.entry(id.clone()).or_insert_with(|| Some(Vec::new()));
            match (&rule.filter, entry.as_mut()) {
                (Some(filter), Some(list)) => list.push(filter.clone()),
                _ => *entry = None,
            }
            inv.rows_only.insert(id);
            inv.add(source.clone(), false);
        }
    }
    for (id, list) in filters {
        match list {
            Some(list) if !list.is_empty() => {
                inv.source_filters.insert(id, crate::rules::nesting::union(&list));
            }
            _ => {}
        }
    }
    fetch_databases(ctx, &mut inv).await?;
    Ok(inv)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(id: &str, parent: Option<&str>) -> Value {
        match parent {
            Some(p) => json!({"object": "page", "id": id, "parent": {"type": "page_id", "page_id": p}}),
            None => json!({"object": "page", "id": id, "parent": {"type": "workspace", "workspace": true}}),
        }
    }

    fn inventory() -> Inventory {
        let mut inv = Inventory::default();
        for (id, parent) in [("home", None), ("child", Some("home")), ("grandchild", Some("child")), ("other", None)] {
            inv.titles.insert(id.into(), (id.into(), parent.map(str::to_string)));
            inv.pages.push(page(id, parent));
        }
        for (ds, db, parent) in [("ds-in-home", "db-in-home", "home"), ("ds-top", "db-top", "other")] {
            inv.titles.insert(db.into(), (db.into(), Some(parent.into())));
            inv.titles.insert(ds.into(), (ds.into(), Some(db.into())));
            inv.sources
                .push(json!({"object": "data_source", "id": ds, "parent": {"type": "database_id", "database_id": db}}));
            inv.databases.push(json!({"object": "database", "id": db}));
        }
        inv
    }

    fn ids(list: &[Value]) -> Vec<&str> {
        list.iter().map(|o| o["id"].as_str().unwrap()).collect()
    }

    #[test]
    fn listed_pages_bring_their_subtree_and_all_databases_stay() {
        let mut inv = inventory();
        retain_selected(&mut inv, Some(&HashSet::from(["home".to_string()])), None);
        assert_eq!(ids(&inv.pages), vec!["home", "child", "grandchild"]);
        assert_eq!(ids(&inv.sources), vec!["ds-in-home", "ds-top"]);
    }

    #[test]
    fn listed_databases_with_all_pages() {
        let mut inv = inventory();
        retain_selected(&mut inv, None, Some(&HashSet::from(["db-top".to_string()])));
        assert_eq!(inv.pages.len(), 4);
        assert_eq!(ids(&inv.sources), vec!["ds-top"]);
        assert_eq!(ids(&inv.databases), vec!["db-top"]);
    }

    #[test]
    fn both_listed_keep_only_those_and_databases_inside_listed_pages() {
        let mut inv = inventory();
        retain_selected(
            &mut inv,
            Some(&HashSet::from(["child".to_string()])),
            Some(&HashSet::from(["ds-top".to_string()])),
        );
        assert_eq!(ids(&inv.pages), vec!["child", "grandchild"]);
        assert_eq!(ids(&inv.sources), vec!["ds-top"]);
        let mut inv = inventory();
        retain_selected(&mut inv, Some(&HashSet::from(["home".to_string()])), Some(&HashSet::new()));
        assert_eq!(ids(&inv.sources), vec!["ds-in-home"], "a database inside a listed page is its content");
    }
}
