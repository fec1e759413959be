//! Whether a row matches a parsed filter.

use super::{DateCond, Filter, PropCond, TsField};
use crate::model::{Page, PropKind, PropSchema, PropValue, Ts};

fn date_matches(t: Ts, c: &DateCond) -> bool {
    match c {
        DateCond::Equals(d) => t >= d.start && t <= d.end,
        DateCond::Before(d) => t < d.start,
        DateCond::After(d) => t > d.end,
        DateCond::OnOrBefore(d) => t <= d.end,
        DateCond::OnOrAfter(d) => t >= d.start,
    }
}

pub(super) fn text_of<'a>(page: &'a Page, kind: &PropKind, v: &'a PropValue) -> Option<&'a str> {
    match (kind, v) {
        (PropKind::Title, _) => Some(page.title.as_str()),
        (_, PropValue::Text(t)) => Some(t.as_str()),
        (_, PropValue::Select(s)) => s.as_deref(),
        (_, PropValue::Url(u)) => u.as_deref(),
        _ => None,
    }
}

pub fn matches(f: &Filter, page: &Page, schema: &[PropSchema]) -> bool {
    match f {
        Filter::And(parts) => parts.iter().all(|p| matches(p, page, schema)),
        Filter::Or(parts) => parts.iter().any(|p| matches(p, page, schema)),
        Filter::Timestamp(TsField::Created, c) => date_matches(page.created, c),
        Filter::Timestamp(TsField::LastEdited, c) => date_matches(page.last_edited, c),
        Filter::Prop(idx, cond) => {
            let Some(s) = schema.get(*idx) else {
                return false;
            };
            let v = page.props.get(*idx).unwrap_or(&PropValue::None);
            let text = text_of(page, &s.kind, v).unwrap_or("");
            let lower = text.to_lowercase();
            match cond {
                PropCond::TextEquals(x) => text == x,
                PropCond::TextNotEquals(x) => text != x,
                PropCond::TextContains(x) => lower.contains(&x.to_lowercase()),
                PropCond::TextNotContains(x) => !lower.contains(&x.to_lowercase()),
                PropCond::TextStartsWith(x) => lower.starts_with(&x.to_lowercase()),
                PropCond::TextEndsWith(x) => lower.ends_with(&x.to_lowercase()),
                PropCond::IsEmpty | PropCond::IsNotEmpty => {
                    let empty = match v {
                        PropValue::Number(n) => n.is_none(),
                        PropValue::MultiSelect(m) => m.is_empty(),
                        _ => text.is_empty(),
                    };
                    empty == matches!(cond, PropCond::IsEmpty)
                }
                PropCond::Checkbox(eq, b) => {
                    let val = matches!(v, PropValue::Checkbox(true));
                    (val == *b) == *eq
                }
                PropCond::NumberCmp(op, n) => match v {
                    PropValue::Number(Some(x)) => match *op {
                        "eq" => x == n,
                        "ne" => x != n,
                        "gt" => x > n,
                        "lt" => x < n,
                        "ge" => x >= n,
                        _ => x <= n,
                    },
                    _ => false,
                },
                PropCond::MultiContains(x) => {
                    matches!(v, PropValue::MultiSelect(m) if m.contains(x))
                }
                PropCond::MultiNotContains(x) => !matches!(v, PropValue::MultiSelect(m) if m.contains(x)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse_date;
    use super::*;

    #[test]
    fn date_only_values_cover_the_day() {
        let d = parse_date("2025-01-02").unwrap();
        assert_eq!(d.end - d.start, 86_399);
        assert!(date_matches(d.start + 3600, &DateCond::Equals(d)));
        assert!(!date_matches(d.start - 60, &DateCond::OnOrAfter(d)));
    }
}
