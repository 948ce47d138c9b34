//! Consul's ACL rules language: rules text (HCL or JSON) parsed into
//! [`Rules`], with errors that name a line and column (HCL) or a path
//! (JSON). Pure code: no I/O, no async, nothing else of the crate.
//!
//! - `access.rs` the vocabulary: [`AccessLevel`], [`Access`],
//!   [`Resource`], [`DefaultPolicy`].
//! - `rules.rs` parsed rules ([`Rules`], [`Rule`], [`NamedRules`]), rule
//!   keywords, and rendering back to HCL.
//! - `parse.rs` the parser's HCL front end and the checks both front ends
//!   share; `parse_json.rs` the JSON front end; `error.rs` [`RulesError`]
//!   with its [`Position`].

mod access;
mod error;
mod parse;
mod parse_json;
mod rules;

#[cfg(test)]
mod tests;

pub use access::{Access, AccessLevel, DefaultPolicy, Resource};
pub use error::{Position, RulesError, Target};
pub use rules::{parse_plain_keyword, parse_rule_keyword, rule_keyword, NamedRules, Rule, Rules};
