//! [`bound`]: the caps on a document's fields and total size, applied whatever Notion sent.

use serde_json::{Map, Value};

use super::{
    Document, MAX_DETAILS_CHARS, MAX_DOCUMENT_BYTES, MAX_FIELD_CHARS, MAX_TITLE_CHARS, MAX_WARNINGS, OWN_FIELDS,
    WARNINGS_FIELD, WARNINGS_RESERVE,
};
use crate::queue::serialized_len;

/// Applies the caps above whatever Notion sent, so no object can make a bulk request fail or a
/// sync stop: strings are cut on a char boundary, then, if the document is still over
/// [`MAX_DOCUMENT_BYTES`], its largest fields are cut or dropped. Each cut is appended
/// to [`WARNINGS_FIELD`] and returned. A document within the caps is left exactly as it is, and
/// bounding twice cuts nothing more (so the sync bounds again the fields it adds later).
pub fn bound(doc: &mut Document) -> Vec<String> {
    let mut warnings = Vec::new();
    let source = &mut doc.source;
    cap_own_string(source, "title", MAX_TITLE_CHARS, &mut warnings);
    cap_own_string(source, "details", MAX_DETAILS_CHARS, &mut warnings);
    cap_path(source, &mut warnings);
    cap_other_strings(source, &mut warnings);
    fit_total(source, &mut warnings);
    record_warnings(source, &warnings);
    warnings
}

/// Cuts `s` to `max` characters; returns its length in characters when it was longer.
fn truncate_chars(s: &mut String, max: usize) -> Option<usize> {
    if s.len() <= max {
        return None; // at most `max` bytes, so at most `max` characters
    }
    let (end, _) = s.char_indices().nth(max)?;
    let chars = max + s[end..].chars().count();
    s.truncate(end);
    Some(chars)
}

fn cap_own_string(source: &mut Map<String, Value>, key: &str, max: usize, warnings: &mut Vec<String>) {
    if let Some(Value::String(s)) = source.get_mut(key) {
        if let Some(chars) = truncate_chars(s, max) {
            warnings.push(format!("{key} truncated from {chars} to {max} characters"));
        }
    }
}

/// A path entry is an ancestor's title: capped like a title.
fn cap_path(source: &mut Map<String, Value>, warnings: &mut Vec<String>) {
    let Some(Value::Array(entries)) = source.get_mut("path") else { return };
    let mut longest = None;
    for entry in entries.iter_mut() {
        if let Value::String(s) = entry {
            longest = longest.max(truncate_chars(s, MAX_TITLE_CHARS));
        }
    }
    if let Some(chars) = longest {
        warnings.push(format!("path entries truncated to {MAX_TITLE_CHARS} characters (longest had {chars})"));
    }
}

/// Caps every string of the other fields, at any depth; one warning per top-level field.
fn cap_other_strings(source: &mut Map<String, Value>, warnings: &mut Vec<String>) {
    for (key, value) in source.iter_mut() {
        if matches!(key.as_str(), "title" | "details" | "body" | "path" | WARNINGS_FIELD) {
            continue;
        }
        let (mut count, mut longest) = (0usize, 0usize);
        cap_strings(value, &mut count, &mut longest);
        if count > 0 {
            warnings.push(format!(
                "field {}: {count} string(s) truncated to {MAX_FIELD_CHARS} characters (longest had {longest})",
                short(key)
            ));
        }
    }
}

fn cap_strings(value: &mut Value, count: &mut usize, longest: &mut usize) {
    match value {
        Value::String(s) => {
            if let Some(chars) = truncate_chars(s, MAX_FIELD_CHARS) {
                *count += 1;
                *longest = (*longest).max(chars);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| cap_strings(v, count, longest)),
        Value::Object(map) => map.values_mut().for_each(|v| cap_strings(v, count, longest)),
        _ => {}
    }
}

/// Makes the serialized `_source` fit [`MAX_DOCUMENT_BYTES`], taking from the largest field
/// first: a raw Notion field is dropped (it is kept in `_source` only, and a block's raw payload
/// repeats its body), one of the connector's own fields (most often the body) is shortened by
/// what is over, so a big page keeps its raw fields and a big block keeps its body.
fn fit_total(source: &mut Map<String, Value>, warnings: &mut Vec<String>) {
    let budget = MAX_DOCUMENT_BYTES - WARNINGS_RESERVE;
    loop {
        let over = serialized_len(source).saturating_sub(budget);
        if over == 0 {
            return;
        }
        let Some((key, bytes)) = largest_field(source, |k| k != WARNINGS_FIELD) else { return };
        if !OWN_FIELDS.contains(&key.as_str()) {
            source.remove(&key);
            warnings.push(format!(
                "field {} of {bytes} bytes dropped (document over {MAX_DOCUMENT_BYTES} bytes)",
                short(&key)
            ));
        } else if !shorten(source, &key, over, warnings) {
            return; // the largest field cannot be cut (a number): nothing more to do
        }
    }
}

/// The largest top-level field (serialized bytes) among those `eligible`.
fn largest_field(source: &Map<String, Value>, eligible: impl Fn(&str) -> bool) -> Option<(String, usize)> {
    source
        .iter()
        .filter(|(k, _)| eligible(k))
        .map(|(k, v)| (k, serialized_len(v)))
        .max_by_key(|&(_, bytes)| bytes)
        .map(|(k, bytes)| (k.clone(), bytes))
}

/// Shortens field `key` by `over` serialized bytes or more when it can (a string is cut at its
/// end, an array or object is emptied); returns whether it cut anything.
fn shorten(source: &mut Map<String, Value>, key: &str, over: usize, warnings: &mut Vec<String>) -> bool {
    let reason = format!("(document over {MAX_DOCUMENT_BYTES} bytes)");
    match source.get_mut(key) {
        Some(Value::String(s)) if !s.is_empty() => {
            let chars = s.chars().count();
            let target = serialized_len(s.as_str()).saturating_sub(over);
            // Escapes make the serialized form longer than the text, never shorter: cutting the
            // excess from the text removes at least as much from the serialized form.
            while !s.is_empty() && serialized_len(s.as_str()) > target {
                let mut end = s.len().saturating_sub(serialized_len(s.as_str()) - target);
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                s.truncate(end);
            }
            warnings.push(format!(
                "{} truncated from {chars} to {} characters {reason}",
                short(key),
                s.chars().count()
            ));
            true
        }
        Some(Value::Array(items)) if !items.is_empty() => {
            items.clear();
            warnings.push(format!("{} emptied {reason}", short(key)));
            true
        }
        Some(Value::Object(map)) if !map.is_empty() => {
            map.clear();
            warnings.push(format!("{} emptied {reason}", short(key)));
            true
        }
        _ => false,
    }
}

/// A field name as warnings show it (raw keys are Notion's, but nothing bounds them).
fn short(key: &str) -> String {
    let mut name = key.to_string();
    if truncate_chars(&mut name, 100).is_some() {
        name.push('…');
    }
    format!("`{name}`")
}

fn record_warnings(source: &mut Map<String, Value>, warnings: &[String]) {
    if warnings.is_empty() {
        return;
    }
    let entry = source.entry(WARNINGS_FIELD).or_insert_with(|| Value::Array(Vec::new()));
    if !entry.is_array() {
        *entry = Value::Array(Vec::new());
    }
    if let Value::Array(items) = entry {
        let room = MAX_WARNINGS.saturating_sub(items.len());
        items.extend(warnings.iter().take(room).cloned().map(Value::String));
    }
}
