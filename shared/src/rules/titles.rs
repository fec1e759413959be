//! The `databases` / `pages` title check.
//!
//! Configured titles must each name an existing page (or database): exact match after trimming, case-insensitive.
//! Unlike the reference (one search for all titles joined by spaces, which misses titles), the caller runs **one search
//! per configured title** (with the object filter) and passes each search's result titles in; objects without a title
//! count as `""` instead of failing.

use std::collections::HashMap;

use serde_json::Value;

/// How titles are compared: trimmed, lower-case (Unicode).
pub fn normalize_title(title: &str) -> String {
    title.trim().to_lowercase()
}

/// The configured titles that none of their search results matches exactly (case-insensitively), in configured order,
/// without duplicates. `found[title]` = the titles returned by the search for `title` (a title missing from the map
/// counts as a search that returned nothing). `*` is never missing.
pub fn missing_titles(configured: &[String], found: &HashMap<String, Vec<String>>) -> Vec<String> {
    let mut missing: Vec<String> = Vec::new();
    for title in configured {
        let wanted = normalize_title(title);
        if wanted == "*" || wanted.is_empty() {
            continue;
        }
        let hit = found.get(title).is_some_and(|results| results.iter().any(|t| normalize_title(t) == wanted));
        if !hit && !missing.iter().any(|m| normalize_title(m) == wanted) {
            missing.push(title.clone());
        }
    }
    missing
}

/// The plain-text title of a Notion page, database or data source object; `""` when it has none.
/// Databases / data sources: the `title` rich-text array. Pages: the property of type `title`, whatever its name
/// (database rows name it freely; the reference only looked at a property literally named `title`).
pub fn notion_title(object: &Value) -> String {
    let rich_text = match object.get("title") {
        Some(Value::Array(parts)) => Some(parts),
        _ => object
            .get("properties")
            .and_then(Value::as_object)
            .and_then(|props| props.values().find(|p| p.get("type").and_then(Value::as_str) == Some("title")))
            .and_then(|p| p.get("title"))
            .and_then(Value::as_array),
    };
    rich_text
        .map(|parts| {
            parts
                .iter()
                .filter_map(|part| {
                    part.get("plain_text")
                        .and_then(Value::as_str)
                        .or_else(|| part.get("text").and_then(|t| t.get("content")).and_then(Value::as_str))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn one_search_per_title_exact_case_insensitive() {
        let configured = s(&["Roadmap", "Team Wiki", "Ghost", "roadmap", "*"]);
        let found = HashMap::from([
            ("Roadmap".to_string(), s(&["Roadmap 2024", " ROADMAP "])),
            ("Team Wiki".to_string(), s(&["Team Wiki Archive", ""])),
            ("roadmap".to_string(), s(&["Roadmap"])),
        ]);
        assert_eq!(missing_titles(&configured, &found), s(&["Team Wiki", "Ghost"]));
    }

    #[test]
    fn titles_of_objects() {
        let db = json!({"object": "database", "title": [{"plain_text": "Tasks "}, {"plain_text": "2024"}]});
        assert_eq!(notion_title(&db), "Tasks 2024");
        let row = json!({"object": "page", "properties": {
            "Status": {"type": "select"},
            "Name": {"type": "title", "title": [{"text": {"content": "Ünïcode"}}]}}});
        assert_eq!(notion_title(&row), "Ünïcode");
        assert_eq!(
            notion_title(&json!({"object": "page", "properties": {"title": {"type": "title", "title": []}}})),
            ""
        );
        assert_eq!(notion_title(&json!({"object": "page"})), "");
        assert_eq!(notion_title(&json!(null)), "");
    }
}
