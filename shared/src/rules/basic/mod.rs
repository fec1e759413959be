//! Basic sync rules, as the Elastic connector framework has them (`BasicRuleEngine`).
//!
//! A rule is `{"id"?: "...", "policy": "include" | "exclude", "field": "<top-level field>",
//! "rule": "equals" | "contains" | "starts_with" | "ends_with" | "regex" | "<" | ">", "value": "..."}`
//! (`greater_than` / `less_than` are accepted for `>` / `<`; Elastic's `order`, `created_at`, `updated_at` are accepted,
//! and rules are sorted by `order` when they carry one).
//!
//! Rules are tried in order; the first rule that matches decides; a document no rule matches is included.
//! Matching, per operator, on the document's top-level field (a missing or `null` field never matches):
//! - `equals`: numbers compare numerically when both sides parse as numbers (`"1.0"` equals `1`); booleans compare
//!   case-insensitively with `true`/`false`; anything else compares as text.
//! - `contains`, `starts_with`, `ends_with`: on the field's text (strings as they are, other values as JSON).
//! - `regex`: the pattern must match at the start of the text (Python's `re.match`, as in the framework); add `$` to
//!   match the whole text. Rust `regex` syntax (no look-around or back-references).
//! - `<`, `>`: numeric when both sides parse as numbers, else text order (ISO dates compare correctly as text).
//!
//! Validation rejects: unknown keys, policies or operators, empty fields or values, invalid regexes, a rule that can
//! never apply because an earlier rule has the same field, operator and value, a match-everything regex (`.*`) anywhere
//! but in the last place, and a match-everything `exclude` with no `include` before it (it would exclude every document
//! with that field). A final catch-all (`regex` `.*`, or Elastic's rule with id `DEFAULT`) is allowed.

mod parse;
#[cfg(test)]
mod tests;

use std::cmp::Ordering;
use std::fmt;

use regex::Regex;
use serde_json::{Map, Value};

use parse::parse_rule;

use super::{json_type, pointer, RulesError};

/// What a rule does to the documents it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Include,
    Exclude,
}

impl Policy {
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Include => "include",
            Policy::Exclude => "exclude",
        }
    }
}

/// How a rule compares the field with its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Equals,
    Contains,
    StartsWith,
    EndsWith,
    Regex,
    GreaterThan,
    LessThan,
}

impl Operator {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "equals" => Operator::Equals,
            "contains" => Operator::Contains,
            "starts_with" => Operator::StartsWith,
            "ends_with" => Operator::EndsWith,
            "regex" => Operator::Regex,
            ">" | "greater_than" => Operator::GreaterThan,
            "<" | "less_than" => Operator::LessThan,
            _ => return None,
        })
    }

    /// The name as the Elastic framework writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Equals => "equals",
            Operator::Contains => "contains",
            Operator::StartsWith => "starts_with",
            Operator::EndsWith => "ends_with",
            Operator::Regex => "regex",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One validated basic rule.
#[derive(Debug, Clone)]
pub struct BasicRule {
    pub id: Option<String>,
    pub policy: Policy,
    pub field: String,
    pub rule: Operator,
    pub value: String,
    /// Compiled `\A(?:value)` for `regex` rules.
    regex: Option<Regex>,
}

/// The outcome of the rules for one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub policy: Policy,
    /// Index (after ordering) of the rule that decided; `None` = no rule matched, included by default.
    pub rule: Option<usize>,
}

impl Decision {
    pub fn included(self) -> bool {
        self.policy == Policy::Include
    }
}

/// An ordered, validated list of basic rules. The default (empty) list includes everything.
#[derive(Debug, Clone, Default)]
pub struct BasicRules {
    rules: Vec<BasicRule>,
}

/// Texts a match-everything regex matches; a pattern matching all of them is treated as a catch-all.
const PROBES: [&str; 6] = ["", "a", "Z", "Notion page 42", "-_/.:", "été ✓"];

impl BasicRule {
    /// Builds and validates one rule (`value` is the rule's value as text).
    pub fn new(
        id: Option<String>,
        policy: Policy,
        field: impl Into<String>,
        rule: Operator,
        value: impl Into<String>,
    ) -> Result<Self, RulesError> {
        let (field, value) = (field.into(), value.into());
        if field.is_empty() {
            return Err(RulesError::invalid("/field", "must not be empty"));
        }
        if value.is_empty() {
            return Err(RulesError::invalid("/value", "must not be empty"));
        }
        let regex = match rule {
            Operator::Regex => {
                Regex::new(&value).map_err(|e| {
                    RulesError::invalid("/value", format!("invalid regex {value:?}: {}", first_line(&e)))
                })?;
                let anchored = Regex::new(&format!(r"\A(?:{value})")).map_err(|e| {
                    RulesError::invalid("/value", format!("invalid regex {value:?}: {}", first_line(&e)))
                })?;
                Some(anchored)
            }
            _ => None,
        };
        Ok(BasicRule { id, policy, field, rule, value, regex })
    }

    /// Elastic's default rule (id `DEFAULT`) matches every document.
    fn is_default(&self) -> bool {
        self.id.as_deref() == Some("DEFAULT")
    }

    /// True when the rule matches every document that has the field (or every document, for `DEFAULT`).
    pub fn matches_everything(&self) -> bool {
        self.is_default() || self.regex.as_ref().is_some_and(|re| PROBES.iter().all(|p| re.is_match(p)))
    }

    /// Does the rule match this document?
    pub fn matches(&self, doc: &Map<String, Value>) -> bool {
        if self.is_default() {
            return true;
        }
        let field = match doc.get(&self.field) {
            None | Some(Value::Null) => return false,
            Some(v) => v,
        };
        let text = value_text(field);
        match self.rule {
            Operator::Equals => match field {
                Value::Bool(b) => self.value.trim().eq_ignore_ascii_case(if *b { "true" } else { "false" }),
                _ => compare(&text, &self.value) == Some(Ordering::Equal),
            },
            Operator::Contains => text.contains(self.value.as_str()),
            Operator::StartsWith => text.starts_with(self.value.as_str()),
            Operator::EndsWith => text.ends_with(self.value.as_str()),
            Operator::Regex => self.regex.as_ref().is_some_and(|re| re.is_match(&text)),
            Operator::GreaterThan => compare(&text, &self.value) == Some(Ordering::Greater),
            Operator::LessThan => compare(&text, &self.value) == Some(Ordering::Less),
        }
    }

    fn same_condition(&self, other: &BasicRule) -> bool {
        self.field == other.field && self.rule == other.rule && self.value == other.value
    }

    fn label(&self, index: usize) -> String {
        match &self.id {
            Some(id) => format!("rule {index} (id {id:?})"),
            None => format!("rule {index}"),
        }
    }
}

fn first_line(e: &regex::Error) -> String {
    // The regex crate's messages are multi-line diagrams; keep the last line, which says what is wrong.
    e.to_string().lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("invalid pattern").trim().to_owned()
}

fn value_text(v: &Value) -> std::borrow::Cow<'_, str> {
    match v {
        Value::String(s) => std::borrow::Cow::Borrowed(s.as_str()),
        other => std::borrow::Cow::Owned(other.to_string()),
    }
}

fn as_number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

/// Numeric when both sides parse as finite numbers, else text order.
fn compare(doc: &str, rule: &str) -> Option<Ordering> {
    match (as_number(doc), as_number(rule)) {
        (Some(a), Some(b)) => a.partial_cmp(&b),
        _ => Some(doc.cmp(rule)),
    }
}

impl BasicRules {
    /// Validates an ordered list of rules as a set (see the module docs).
    pub fn new(rules: Vec<BasicRule>) -> Result<Self, RulesError> {
        let rules = BasicRules { rules };
        rules.check_set()?;
        Ok(rules)
    }

    /// Parses the JSON array of rules. Errors point at the offending rule, e.g. `/2/rule`.
    pub fn from_json(value: &Value) -> Result<Self, RulesError> {
        let items = match value {
            Value::Null => return Ok(BasicRules::default()),
            Value::Array(items) => items,
            other => {
                return Err(RulesError::invalid(
                    "",
                    format!("basic rules must be an array of rules, found {}", json_type(other)),
                ))
            }
        };
        let mut parsed = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let base = pointer("", i);
            let (order, rule) = parse_rule(item).map_err(|e| e.with_prefix(&base))?;
            parsed.push((i, order, rule));
        }
        let with_order = parsed.iter().filter(|(_, o, _)| o.is_some()).count();
        if with_order != 0 && with_order != parsed.len() {
            let (i, _, _) = parsed
                .iter()
                .find(|(_, o, _)| o.is_none())
                .ok_or_else(|| RulesError::invalid("", "inconsistent `order`"))?;
            return Err(RulesError::invalid(
                pointer("", i),
                "has no `order` while other rules have one: give every rule an `order` or none",
            ));
        }
        // Stable sort: rules with equal `order` keep their written order.
        parsed.sort_by_key(|(_, o, _)| o.unwrap_or(0));
        BasicRules::new(parsed.into_iter().map(|(_, _, r)| r).collect())
    }

    fn check_set(&self) -> Result<(), RulesError> {
        for (i, rule) in self.rules.iter().enumerate() {
            let path = pointer("", i);
            if let Some(j) = self.rules[..i].iter().position(|r| r.same_condition(rule)) {
                return Err(RulesError::invalid(
                    path,
                    format!(
                        "{} can never apply: {} has the same field, rule and value and comes first",
                        rule.label(i),
                        self.rules[j].label(j)
                    ),
                ));
            }
            if rule.matches_everything() {
                if i + 1 < self.rules.len() {
                    return Err(RulesError::invalid(
                        path,
                        format!(
                            "{} matches every value of {:?} (regex {:?}); a match-everything rule is only allowed as the \
                             last rule, a catch-all ({} rule(s) follow it)",
                            rule.label(i),
                            rule.field,
                            rule.value,
                            self.rules.len() - i - 1
                        ),
                    ));
                }
                let any_include = self.rules[..i].iter().any(|r| r.policy == Policy::Include);
                if rule.policy == Policy::Exclude && !any_include && !rule.is_default() {
                    return Err(RulesError::invalid(
                        path,
                        format!(
                            "{} excludes every document with a {:?} field (regex {:?} matches any value) and no include \
                             rule comes before it",
                            rule.label(i),
                            rule.field,
                            rule.value
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn rules(&self) -> &[BasicRule] {
        &self.rules
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The first matching rule decides; no match = include.
    pub fn decide(&self, doc: &Map<String, Value>) -> Decision {
        self.rules
            .iter()
            .position(|r| r.matches(doc))
            .map(|i| Decision { policy: self.rules[i].policy, rule: Some(i) })
            .unwrap_or(Decision { policy: Policy::Include, rule: None })
    }

    /// Shorthand for `decide(doc).included()`.
    pub fn includes(&self, doc: &Map<String, Value>) -> bool {
        self.decide(doc).included()
    }

    /// Same as [`BasicRules::includes`].
    pub fn allows(&self, doc: &Map<String, Value>) -> bool {
        self.includes(doc)
    }
}
