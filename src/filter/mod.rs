//! `?filter=`: go-bexpr's expression language as Consul's list endpoints
//! take it, evaluated on each element of an answer in the JSON shape Consul
//! gives it.
//!
//! The module owns three steps, each in its own file:
//!
//! - [`parser`]: the text into an [`ast::Expr`], with go-bexpr's grammar
//!   (a PEG; `or` < `and` < `not` < parentheses < match) and its error
//!   texts, `line:col (offset): ...`, so that a client sees where its
//!   expression broke;
//! - [`schema`]: the fields of each element type (Consul's field names), so
//!   that a selector is checked before anything is read, as Consul checks
//!   it against the Go struct: an unknown selector, an operator the field
//!   does not take, a value that is not of the field's type or a regular
//!   expression that does not compile are refused up front, whatever the
//!   list holds (an empty list included);
//! - [`eval`]: a compiled filter run against a `serde_json::Value`.
//!
//! Collections behave as in Consul's documentation: a selector that goes
//! through a list (`Checks.Status`) matches when any element does, and a
//! key missing from a map (`Meta.env`) is no value at all (`==` false,
//! `!=` true, `is empty` true).

pub(crate) mod ast;
mod eval;
pub(crate) mod parser;
pub mod schema;

use serde::Serialize;

pub use schema::Schema;

/// Why an expression was refused. Every variant is the client's mistake
/// (HTTP 400); the text is Consul's where Consul has one.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FilterError {
    /// The text is not an expression; `at` is where it broke.
    #[error("{0}")]
    Syntax(#[from] parser::ParseError),
    #[error("Selector {0:?} is not valid")]
    UnknownSelector(String),
    #[error("Invalid match operator {op:?} for selector {selector:?}")]
    Operator { op: &'static str, selector: String },
    #[error("Failed to coerce value {value:?} for selector {selector:?}: {why}")]
    Coerce {
        value: String,
        selector: String,
        why: &'static str,
    },
    #[error("Failed to compile regular expression {pattern:?}: {why}")]
    Regex { pattern: String, why: String },
}

/// An expression checked against one element type, ready to run.
#[derive(Debug)]
pub struct Filter {
    expr: eval::Compiled,
}

impl Filter {
    /// Parses `text` and checks it against `schema`.
    pub fn new(text: &str, schema: &Schema) -> Result<Filter, FilterError> {
        let expr = parser::parse(text)?;
        Ok(Filter {
            expr: eval::compile(&expr, schema)?,
        })
    }

    /// Whether `element`, in its JSON shape, is kept.
    pub fn matches(&self, element: &serde_json::Value) -> bool {
        self.expr.matches(element)
    }

    /// The elements of `items` the filter keeps, in their order. An
    /// element that does not serialize is dropped rather than shown
    /// unfiltered (it cannot happen with the crate's row types).
    pub fn retain<T: Serialize>(&self, items: &mut Vec<T>) {
        items.retain(|i| self.keeps(i));
    }

    /// [`Filter::matches`] for a value not yet in its JSON shape.
    pub fn keeps<T: Serialize>(&self, item: &T) -> bool {
        serde_json::to_value(item)
            .map(|v| self.matches(&v))
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests;
