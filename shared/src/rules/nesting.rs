//! Notion accepts compound filters nested at most two levels deep: a property or timestamp filter, or
//! `{and|or: [...]}` whose items may be one more `{and|or: [property or timestamp filters]}`. Rule filters are
//! normalized (a group inside a group of the same operator is the same group), combined with the row-window
//! filter without adding a level, and several rules on one source are or-ed only while that stays within the
//! limit (otherwise each is its own query).

use serde_json::{json, Value};

/// Notion's limit on compound filter nesting.
pub const MAX_FILTER_DEPTH: usize = 2;

/// The compound operator and items of a filter, if it is `{and: [...]}` or `{or: [...]}`.
fn group(filter: &Value) -> Option<(&'static str, &Vec<Value>)> {
    let obj = filter.as_object()?;
    if obj.len() != 1 {
        return None;
    }
    ["and", "or"].into_iter().find_map(|op| obj.get(op).and_then(Value::as_array).map(|items| (op, items)))
}

/// Levels of compound nesting: 0 for a property or timestamp filter.
pub fn depth(filter: &Value) -> usize {
    match group(filter) {
        Some((_, items)) => 1 + items.iter().map(depth).max().unwrap_or(0),
        None => 0,
    }
}

/// The same filter with groups of one item unwrapped and same-operator groups merged into their parent.
pub fn normalize(filter: &Value) -> Value {
    let Some((op, items)) = group(filter) else { return filter.clone() };
    let mut flat = Vec::with_capacity(items.len());
    for item in items.iter().map(normalize) {
        match group(&item) {
            Some((inner, inner_items)) if inner == op => flat.extend(inner_items.iter().cloned()),
            _ => flat.push(item),
        }
    }
    if flat.len() == 1 {
        return flat.remove(0);
    }
    json!({ op: flat })
}

/// `window AND filter` (the window a property/timestamp filter), no deeper than `filter` when that is at least
/// one level deep: an `and` takes the window among its items, an `or` distributes it over its items.
pub fn and_with(window: Value, filter: &Value) -> Value {
    let filter = normalize(filter);
    match group(&filter) {
        None => json!({"and": [window, filter]}),
        Some(("and", items)) => {
            let mut all = vec![window];
            all.extend(items.iter().cloned());
            json!({"and": all})
        }
        Some((_, items)) => {
            let distributed: Vec<Value> = items
                .iter()
                .map(|item| match group(item) {
                    Some(("and", inner)) => {
                        let mut all = vec![window.clone()];
                        all.extend(inner.iter().cloned());
                        json!({"and": all})
                    }
                    _ => json!({"and": [window.clone(), item.clone()]}),
                })
                .collect();
            json!({"or": distributed})
        }
    }
}

/// The queries that together select the rows any of `filters` selects: one `or` of them all when Notion can
/// take it, else one query per filter (a row matching several is read by each).
pub fn union(filters: &[Value]) -> Vec<Value> {
    let normalized: Vec<Value> = filters.iter().map(normalize).collect();
    if normalized.len() == 1 {
        return normalized;
    }
    let joined = normalize(&json!({"or": normalized}));
    if depth(&joined) <= MAX_FILTER_DEPTH {
        vec![joined]
    } else {
        normalized
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(name: &str) -> Value {
        json!({"property": name, "checkbox": {"equals": true}})
    }

    #[test]
    fn depth_and_normalization() {
        assert_eq!(depth(&leaf("a")), 0);
        assert_eq!(depth(&json!({"and": [leaf("a"), {"or": [leaf("b"), leaf("c")]}]})), 2);
        let nested = json!({"and": [leaf("a"), {"and": [leaf("b"), {"or": [leaf("c"), {"or": [leaf("d")]}]}]}]});
        assert_eq!(depth(&nested), 4);
        let flat = normalize(&nested);
        assert_eq!(flat, json!({"and": [leaf("a"), leaf("b"), {"or": [leaf("c"), leaf("d")]}]}));
        assert_eq!(depth(&flat), 2);
        assert_eq!(normalize(&json!({"or": [leaf("a")]})), leaf("a"));
    }

    #[test]
    fn the_window_adds_no_level() {
        let window = json!({"timestamp": "created_time", "created_time": {"on_or_after": "t"}});
        assert_eq!(and_with(window.clone(), &leaf("a")), json!({"and": [window, leaf("a")]}));
        let two = json!({"and": [leaf("a"), {"or": [leaf("b"), leaf("c")]}]});
        let combined = and_with(window.clone(), &two);
        assert_eq!(depth(&combined), 2);
        assert_eq!(combined["and"][0], window);
        let or_of_ands = json!({"or": [{"and": [leaf("a"), leaf("b")]}, leaf("c")]});
        let combined = and_with(window.clone(), &or_of_ands);
        assert_eq!(
            combined,
            json!({"or": [{"and": [window.clone(), leaf("a"), leaf("b")]}, {"and": [window, leaf("c")]}]})
        );
    }

    #[test]
    fn rules_are_or_ed_while_notion_can_take_it() {
        assert_eq!(union(&[leaf("a"), leaf("b")]), vec![json!({"or": [leaf("a"), leaf("b")]})]);
        let deep = json!({"and": [leaf("a"), {"or": [leaf("b"), leaf("c")]}]});
        let queries = union(&[deep.clone(), leaf("d")]);
        assert_eq!(queries, vec![deep, leaf("d")], "an or of a two-level rule would be three levels: two queries");
        assert!(queries.iter().all(|q| depth(q) <= MAX_FILTER_DEPTH));
    }
}
