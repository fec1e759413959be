//! Parsing one basic rule from its JSON object (the Elastic framework's keys).

use serde_json::{Map, Value};

use super::{BasicRule, Operator, Policy};
use crate::rules::{json_type, pointer, RulesError};

const KNOWN_KEYS: [&str; 8] = ["id", "policy", "field", "rule", "value", "order", "created_at", "updated_at"];
const OPERATORS: &str = "equals, contains, starts_with, ends_with, regex, <, >, greater_than, less_than";

fn str_field<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, RulesError> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => {
            Err(RulesError::invalid(pointer("", key), format!("must be a string, found {}", json_type(other))))
        }
    }
}

fn required<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<&'a str, RulesError> {
    str_field(obj, key)?.ok_or_else(|| RulesError::invalid("", format!("\"{key}\" is a required property")))
}

/// Parses one rule object; returns its `order` too. Paths are relative to the rule.
pub(super) fn parse_rule(item: &Value) -> Result<(Option<i64>, BasicRule), RulesError> {
    let obj = item
        .as_object()
        .ok_or_else(|| RulesError::invalid("", format!("a rule must be an object, found {}", json_type(item))))?;
    if let Some(key) = obj.keys().find(|k| !KNOWN_KEYS.contains(&k.as_str())) {
        return Err(RulesError::invalid(
            pointer("", key),
            format!("unknown key {key:?} (known keys: {})", KNOWN_KEYS.join(", ")),
        ));
    }
    let id = str_field(obj, "id")?.map(str::to_owned);
    let policy = match required(obj, "policy")? {
        "include" => Policy::Include,
        "exclude" => Policy::Exclude,
        other => {
            return Err(RulesError::invalid("/policy", format!("{other:?} is not one of \"include\" or \"exclude\"")))
        }
    };
    let field = required(obj, "field")?;
    let op_name = required(obj, "rule")?;
    let rule = Operator::parse(op_name)
        .ok_or_else(|| RulesError::invalid("/rule", format!("{op_name:?} is not a known rule (known: {OPERATORS})")))?;
    let value = match obj.get("value") {
        None => return Err(RulesError::invalid("", "\"value\" is a required property")),
        Some(Value::String(s)) => s.clone(),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
        Some(other) => {
            return Err(RulesError::invalid(
                "/value",
                format!("must be a string, number or boolean, found {}", json_type(other)),
            ))
        }
    };
    let order = match obj.get("order") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => {
            Some(n.as_i64().ok_or_else(|| RulesError::invalid("/order", format!("must be an integer, found {n}")))?)
        }
        Some(other) => {
            return Err(RulesError::invalid("/order", format!("must be an integer, found {}", json_type(other))))
        }
    };
    for key in ["created_at", "updated_at"] {
        str_field(obj, key)?;
    }
    Ok((order, BasicRule::new(id, policy, field, rule, value)?))
}
