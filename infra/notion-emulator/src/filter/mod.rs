//! Data source query filters and sorts: parsed (and validated) up front, evaluated per row.
//!
//! `parse` turns the request's JSON into a [`Filter`], `eval` matches a row against it, `sort` parses and applies
//! the sorts.

mod eval;
mod parse;
mod sort;

pub use eval::matches;
pub use parse::{check_nesting, parse_date, parse_filter};
pub use sort::{compare, parse_sorts, Sort, SortKey};

use crate::error::ApiError;
use crate::model::Ts;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TsField {
    Created,
    LastEdited,
}

/// A moment or a whole day (date-only values).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DateArg {
    pub start: Ts,
    pub end: Ts,
}

#[derive(Clone, Debug, PartialEq)]
pub enum DateCond {
    Equals(DateArg),
    Before(DateArg),
    After(DateArg),
    OnOrBefore(DateArg),
    OnOrAfter(DateArg),
}

#[derive(Clone, Debug, PartialEq)]
pub enum PropCond {
    TextEquals(String),
    TextNotEquals(String),
    TextContains(String),
    TextNotContains(String),
    TextStartsWith(String),
    TextEndsWith(String),
    IsEmpty,
    IsNotEmpty,
    Checkbox(bool, bool),
    NumberCmp(&'static str, f64),
    MultiContains(String),
    MultiNotContains(String),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Timestamp(TsField, DateCond),
    Prop(usize, PropCond),
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::validation(format!("body failed validation: {}", msg.into()))
}
