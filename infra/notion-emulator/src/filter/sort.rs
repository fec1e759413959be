//! Query sorts: parsed against the schema, applied as a comparison of two rows.

use std::cmp::Ordering;

use serde_json::Value;

use super::eval::text_of;
use super::{bad, TsField};
use crate::error::{ApiError, ApiResult};
use crate::model::{Page, PropKind, PropSchema, PropValue};

#[derive(Clone, Debug, PartialEq)]
pub enum SortKey {
    Timestamp(TsField),
    Prop(usize),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Sort {
    pub key: SortKey,
    pub descending: bool,
}

pub fn parse_sorts(v: &Value, schema: &[PropSchema]) -> ApiResult<Vec<Sort>> {
    let arr = v.as_array().ok_or_else(|| bad("body.sorts should be an array"))?;
    let mut out = Vec::new();
    for s in arr {
        let obj = s.as_object().ok_or_else(|| bad("each sort should be an object"))?;
        let descending = match obj.get("direction").and_then(Value::as_str) {
            Some("ascending") => false,
            Some("descending") => true,
            _ => return Err(bad("sort direction should be `ascending` or `descending`")),
        };
        let key = if let Some(ts) = obj.get("timestamp") {
            match ts.as_str() {
                Some("created_time") => SortKey::Timestamp(TsField::Created),
                Some("last_edited_time") => SortKey::Timestamp(TsField::LastEdited),
                _ => return Err(bad("sort timestamp should be `created_time` or `last_edited_time`")),
            }
        } else if let Some(p) = obj.get("property").and_then(Value::as_str) {
            let idx = schema
                .iter()
                .position(|s| s.name == p || s.id == p)
                .ok_or_else(|| ApiError::validation(format!("Could not find sort property with name or id: {p}")))?;
            SortKey::Prop(idx)
        } else {
            return Err(bad("each sort needs `timestamp` or `property`"));
        };
        out.push(Sort { key, descending });
    }
    Ok(out)
}

fn prop_cmp(a: &Page, b: &Page, idx: usize, schema: &[PropSchema]) -> Ordering {
    let Some(s) = schema.get(idx) else {
        return Ordering::Equal;
    };
    let va = a.props.get(idx).unwrap_or(&PropValue::None);
    let vb = b.props.get(idx).unwrap_or(&PropValue::None);
    match (&s.kind, va, vb) {
        (PropKind::CreatedTime, _, _) => a.created.cmp(&b.created),
        (PropKind::LastEditedTime, _, _) => a.last_edited.cmp(&b.last_edited),
        (_, PropValue::Number(x), PropValue::Number(y)) => {
            x.unwrap_or(f64::MAX).partial_cmp(&y.unwrap_or(f64::MAX)).unwrap_or(Ordering::Equal)
        }
        (_, PropValue::Checkbox(x), PropValue::Checkbox(y)) => x.cmp(y),
        _ => text_of(a, &s.kind, va).unwrap_or("").cmp(text_of(b, &s.kind, vb).unwrap_or("")),
    }
}

/// Order rows by the sorts, then by created time and id (stable, deterministic).
pub fn compare(a: &Page, b: &Page, sorts: &[Sort], schema: &[PropSchema]) -> Ordering {
    for s in sorts {
        let o = match s.key {
            SortKey::Timestamp(TsField::Created) => a.created.cmp(&b.created),
            SortKey::Timestamp(TsField::LastEdited) => a.last_edited.cmp(&b.last_edited),
            SortKey::Prop(idx) => prop_cmp(a, b, idx, schema),
        };
        let o = if s.descending { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.created.cmp(&b.created).then(a.id.cmp(&b.id))
}
