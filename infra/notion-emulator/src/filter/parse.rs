//! Filters from the request's JSON, checked against the schema and Notion's nesting rule.

use chrono::{NaiveDate, TimeZone, Utc};
use serde_json::{Map, Value};

use super::{bad, DateArg, DateCond, Filter, PropCond, TsField};
use crate::error::{ApiError, ApiResult};
use crate::model::{PropKind, PropSchema};

pub fn parse_date(s: &str) -> Option<DateArg> {
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(s) {
        let t = dt.timestamp();
        return Some(DateArg { start: t, end: t });
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let start = Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0)?).timestamp();
        return Some(DateArg { start, end: start + 86_400 - 1 });
    }
    if let Ok(dt) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        let t = Utc.from_utc_datetime(&dt).timestamp();
        return Some(DateArg { start: t, end: t });
    }
    None
}

fn parse_date_cond(v: &Value) -> ApiResult<DateCond> {
    let obj = v.as_object().ok_or_else(|| bad("date filter should be an object"))?;
    if obj.len() != 1 {
        return Err(bad("date filter should have exactly one condition"));
    }
    let (k, val) = obj.iter().next().ok_or_else(|| bad("empty date filter"))?;
    let s = val.as_str().ok_or_else(|| bad(format!("date filter `{k}` should be an ISO 8601 string")))?;
    let d = parse_date(s).ok_or_else(|| bad(format!("`{s}` is not a valid ISO 8601 date")))?;
    Ok(match k.as_str() {
        "equals" => DateCond::Equals(d),
        "before" => DateCond::Before(d),
        "after" => DateCond::After(d),
        "on_or_before" => DateCond::OnOrBefore(d),
        "on_or_after" => DateCond::OnOrAfter(d),
        other => return Err(bad(format!("unsupported date condition `{other}`"))),
    })
}

fn text_cond(k: &str, val: &Value) -> ApiResult<PropCond> {
    if k == "is_empty" || k == "is_not_empty" {
        if val != &Value::Bool(true) {
            return Err(bad(format!("`{k}` should be true")));
        }
        return Ok(if k == "is_empty" { PropCond::IsEmpty } else { PropCond::IsNotEmpty });
    }
    let s = val.as_str().ok_or_else(|| bad(format!("`{k}` should be a string")))?.to_string();
    Ok(match k {
        "equals" => PropCond::TextEquals(s),
        "does_not_equal" => PropCond::TextNotEquals(s),
        "contains" => PropCond::TextContains(s),
        "does_not_contain" => PropCond::TextNotContains(s),
        "starts_with" => PropCond::TextStartsWith(s),
        "ends_with" => PropCond::TextEndsWith(s),
        other => return Err(bad(format!("unsupported condition `{other}`"))),
    })
}

fn parse_prop(schema: &[PropSchema], obj: &Map<String, Value>) -> ApiResult<Filter> {
    let name = obj.get("property").and_then(Value::as_str).ok_or_else(|| bad("`property` should be a string"))?;
    let idx = schema
        .iter()
        .position(|s| s.name == name || s.id == name)
        .ok_or_else(|| ApiError::validation(format!("Could not find property with name or id: {name}")))?;
    let kind = &schema[idx].kind;
    let type_key =
        obj.keys().find(|k| k.as_str() != "property").ok_or_else(|| bad("property filter needs a condition"))?;
    let cond_obj =
        obj.get(type_key).and_then(Value::as_object).ok_or_else(|| bad(format!("`{type_key}` should be an object")))?;
    if cond_obj.len() != 1 {
        return Err(bad(format!("`{type_key}` should have exactly one condition")));
    }
    let (k, val) = cond_obj.iter().next().ok_or_else(|| bad("empty condition"))?;
    let matches_kind = type_key == kind.type_name()
        || (matches!(kind, PropKind::Title | PropKind::RichText | PropKind::Url)
            && matches!(type_key.as_str(), "rich_text" | "title" | "url"));
    if !matches_kind {
        return Err(ApiError::validation(format!(
            "body failed validation: property `{name}` is of type `{}`, not `{type_key}`",
            kind.type_name()
        )));
    }
    let cond = match kind {
        PropKind::Title | PropKind::RichText | PropKind::Url | PropKind::Select(_) => text_cond(k, val)?,
        PropKind::Checkbox => {
            let b = val.as_bool().ok_or_else(|| bad("checkbox condition should be a boolean"))?;
            match k.as_str() {
                "equals" => PropCond::Checkbox(true, b),
                "does_not_equal" => PropCond::Checkbox(false, b),
                other => return Err(bad(format!("unsupported checkbox condition `{other}`"))),
            }
        }
        PropKind::Number => match k.as_str() {
            "is_empty" => PropCond::IsEmpty,
            "is_not_empty" => PropCond::IsNotEmpty,
            op @ ("equals"
            | "does_not_equal"
            | "greater_than"
            | "less_than"
            | "greater_than_or_equal_to"
            | "less_than_or_equal_to") => {
                let n = val.as_f64().ok_or_else(|| bad("number condition should be a number"))?;
                let op: &'static str = match op {
                    "equals" => "eq",
                    "does_not_equal" => "ne",
                    "greater_than" => "gt",
                    "less_than" => "lt",
                    "greater_than_or_equal_to" => "ge",
                    _ => "le",
                };
                PropCond::NumberCmp(op, n)
            }
            other => return Err(bad(format!("unsupported number condition `{other}`"))),
        },
        PropKind::MultiSelect(_) => match k.as_str() {
            "contains" => PropCond::MultiContains(val.as_str().ok_or_else(|| bad("should be a string"))?.to_string()),
            "does_not_contain" => {
                PropCond::MultiNotContains(val.as_str().ok_or_else(|| bad("should be a string"))?.to_string())
            }
            "is_empty" => PropCond::IsEmpty,
            "is_not_empty" => PropCond::IsNotEmpty,
            other => return Err(bad(format!("unsupported multi_select condition `{other}`"))),
        },
        PropKind::CreatedTime => {
            return Ok(Filter::Timestamp(TsField::Created, parse_date_cond(&Value::Object(cond_obj.clone()))?))
        }
        PropKind::LastEditedTime => {
            return Ok(Filter::Timestamp(TsField::LastEdited, parse_date_cond(&Value::Object(cond_obj.clone()))?))
        }
        _ => {
            return Err(ApiError::validation(format!(
                "Filtering on property type `{}` is not supported by the emulator.",
                kind.type_name()
            )))
        }
    };
    Ok(Filter::Prop(idx, cond))
}

/// Notion's nesting rule (`filter_max_depth`): at most `max` levels of compound (`and`/`or`) filters; with 2, a
/// filter is a property/timestamp filter or `{and|or: [...]}` whose items may hold one more compound of
/// property/timestamp filters. `path` names the filter in the message (`body.filter`, `body.filter.and[0]`, ...).
pub fn check_nesting(v: &Value, max: u32, level: u32, path: &str) -> ApiResult<()> {
    let Some(obj) = v.as_object() else {
        return Ok(());
    };
    for key in ["and", "or"] {
        let Some(list) = obj.get(key) else {
            continue;
        };
        if level >= max {
            return Err(ApiError::validation(format!(
                "body failed validation: {path}.{key} should be not present, instead was `{}`. Compound filters \
                 (`and`, `or`) can be nested at most {max} levels deep; {path} should be a property or timestamp filter.",
                short(list)
            )));
        }
        for (i, item) in list.as_array().map(|a| a.as_slice()).unwrap_or(&[]).iter().enumerate() {
            check_nesting(item, max, level + 1, &format!("{path}.{key}[{i}]"))?;
        }
    }
    Ok(())
}

/// A JSON value cut to a readable length for an error message.
fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() <= 80 {
        s
    } else {
        format!("{}…", s.chars().take(80).collect::<String>())
    }
}

pub fn parse_filter(v: &Value, schema: &[PropSchema], depth: usize) -> ApiResult<Filter> {
    if depth > 3 {
        return Err(bad("filter nesting is too deep"));
    }
    let obj = v.as_object().ok_or_else(|| bad("body.filter should be an object"))?;
    for key in ["and", "or"] {
        if let Some(list) = obj.get(key) {
            let arr = list.as_array().ok_or_else(|| bad(format!("body.filter.{key} should be an array")))?;
            let parts = arr.iter().map(|f| parse_filter(f, schema, depth + 1)).collect::<ApiResult<Vec<_>>>()?;
            return Ok(if key == "and" { Filter::And(parts) } else { Filter::Or(parts) });
        }
    }
    if let Some(ts) = obj.get("timestamp") {
        let field = match ts.as_str() {
            Some("created_time") => TsField::Created,
            Some("last_edited_time") => TsField::LastEdited,
            _ => return Err(bad("body.filter.timestamp should be `created_time` or `last_edited_time`")),
        };
        let key = if field == TsField::Created { "created_time" } else { "last_edited_time" };
        let cond = obj.get(key).ok_or_else(|| bad(format!("body.filter.{key} should be defined")))?;
        return Ok(Filter::Timestamp(field, parse_date_cond(cond)?));
    }
    if obj.contains_key("property") {
        return parse_prop(schema, obj);
    }
    Err(bad("body.filter should have `property`, `timestamp`, `and` or `or`"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::builder::Builder;
    use serde_json::json;

    #[test]
    fn parses_and_rejects_filters() {
        let schema = Builder::standard_schema();
        let f = parse_filter(
            &json!({"timestamp": "created_time", "created_time": {"on_or_after": "2025-01-02T00:00:00.000Z"}}),
            &schema,
            0,
        )
        .unwrap();
        assert!(matches!(f, Filter::Timestamp(TsField::Created, DateCond::OnOrAfter(_))));
        assert!(parse_filter(&json!({"and": [{"property": "Done", "checkbox": {"equals": true}}, {"property": "Name", "title": {"contains": "x"}}]}), &schema, 0).is_ok());
        for bad in [
            json!("nope"),
            json!({"property": "Nope", "checkbox": {"equals": true}}),
            json!({"property": "Done", "checkbox": {"equals": "yes"}}),
            json!({"property": "Done", "title": {"equals": "x"}}),
            json!({"timestamp": "created_time", "created_time": {"on_or_after": "yesterday"}}),
            json!({"and": {"property": "Done"}}),
            json!({"foo": 1}),
        ] {
            assert!(parse_filter(&bad, &schema, 0).is_err(), "{bad}");
        }
    }

    #[test]
    fn nesting_is_capped_like_notion() {
        let leaf = json!({"property": "Done", "checkbox": {"equals": true}});
        let two = json!({"or": [leaf, {"and": [leaf, leaf]}]});
        let three = json!({"and": [{"or": [{"and": [leaf]}]}]});
        assert!(check_nesting(&leaf, 2, 0, "body.filter").is_ok());
        assert!(check_nesting(&two, 2, 0, "body.filter").is_ok());
        let e = check_nesting(&three, 2, 0, "body.filter").unwrap_err();
        assert!(e.message.starts_with("body failed validation: body.filter.and[0].or[0].and should be not present"));
        assert!(check_nesting(&two, 1, 0, "body.filter").is_err());
        assert!(check_nesting(&three, 3, 0, "body.filter").is_ok());
    }
}
