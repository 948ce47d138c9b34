//! Rules text → [`Rules`]. Two front ends, one set of checks: the HCL
//! reader here walks hcl-edit's syntax tree (which keeps byte spans, so
//! every error names a line and column), the JSON reader in
//! `parse_json.rs` walks a `serde_json::Value` (errors name a path). Both
//! hand what they found to [`Sink`], which owns the checks Consul makes
//! (valid dispositions, `list` only on keys, no empty policy).

use std::ops::Range;

use hcl::edit::parser::parse_body;
use hcl::edit::structure::{Block, Structure};
use hcl::edit::Span;

use super::access::{AccessLevel, Resource};
use super::error::{Position, RulesError, Target};
use super::rules::{parse_plain_keyword, parse_rule_keyword, rule_keyword, Rule, Rules};

/// The whole parse: JSON when the text starts with `{` (after blanks), as
/// Consul's HCL library decides, HCL otherwise. Empty text is no rules.
pub(crate) fn parse_rules(text: &str) -> Result<Rules, RulesError> {
    if text.trim_start().starts_with('{') {
        super::parse_json::parse_json(text)
    } else {
        parse_hcl(text)
    }
}

/// A field of a rule block as a front end found it: the raw string and
/// where its value sits.
pub(crate) struct Field {
    pub value: String,
    pub at: Position,
}

/// A rule block's fields, collected before any is checked, so a missing
/// policy is told apart from a bad one.
#[derive(Default)]
pub(crate) struct Fields {
    pub policy: Option<Field>,
    pub intentions: Option<Field>,
}

impl Fields {
    /// The slot for a field name, or `None` when the resource has no such
    /// field (`intentions` exists on service rules only).
    pub fn slot(&mut self, resource: Resource, field: &str) -> Option<&mut Option<Field>> {
        match field {
            "policy" => Some(&mut self.policy),
            "intentions" if resource == Resource::Service => Some(&mut self.intentions),
            _ => None,
        }
    }
}

/// Collects checked values into [`Rules`]; shared by both front ends so
/// HCL and JSON refuse exactly the same things.
#[derive(Default)]
pub(crate) struct Sink {
    rules: Rules,
    /// Single values already seen, to refuse a second `operator = …`.
    /// hcl-edit refuses repeats itself and JSON objects cannot repeat a
    /// key, so this only matters if a front end ever lets one through; it
    /// keeps "never two values for one argument" a property of the sink.
    seen_plain: Vec<Resource>,
}

impl Sink {
    /// `operator = "read"`. An empty value is "not set", as in Consul.
    pub fn plain(
        &mut self,
        resource: Resource,
        value: &str,
        at_key: Position,
        at_value: Position,
    ) -> Result<(), RulesError> {
        let keyword = resource.as_str();
        if self.seen_plain.contains(&resource) {
            return Err(RulesError::Duplicate {
                at: at_key,
                field: keyword.to_string(),
            });
        }
        self.seen_plain.push(resource);
        let level = if value.is_empty() {
            None
        } else {
            Some(level(
                &Target::plain(keyword),
                "policy",
                value,
                at_value,
                false,
            )?)
        };
        if let Some(slot) = self.rules.plain_mut(resource) {
            *slot = level;
        }
        Ok(())
    }

    /// `key_prefix "db/" { policy = "write" }`, checked.
    pub fn rule(
        &mut self,
        resource: Resource,
        prefix: bool,
        name: &str,
        fields: Fields,
        at_block: Position,
    ) -> Result<(), RulesError> {
        let keyword = rule_keyword(resource, prefix).unwrap_or("rule");
        let target = Target::named(keyword, name);
        let Some(policy) = fields.policy else {
            return Err(RulesError::MissingPolicy {
                at: at_block,
                target,
            });
        };
        // Consul refuses an empty policy as invalid (it is not "unset").
        let policy = level(
            &target,
            "policy",
            &policy.value,
            policy.at,
            resource == Resource::Key,
        )?;
        let intentions = match fields.intentions {
            Some(f) if !f.value.is_empty() => {
                Some(level(&target, "intentions", &f.value, f.at, false)?)
            }
            _ => None,
        };
        self.rules.rules.push(Rule {
            resource,
            prefix,
            name: name.to_string(),
            policy,
            intentions,
        });
        Ok(())
    }

    pub fn finish(self) -> Rules {
        self.rules
    }
}

/// One disposition, checked: a known word, and `list` only where allowed.
fn level(
    target: &Target,
    field: &str,
    value: &str,
    at: Position,
    allow_list: bool,
) -> Result<AccessLevel, RulesError> {
    match AccessLevel::parse(value) {
        Some(AccessLevel::List) if !allow_list => Err(RulesError::ListNotAllowed {
            at,
            target: target.clone(),
            field: field.to_string(),
        }),
        Some(level) => Ok(level),
        None => Err(RulesError::InvalidPolicy {
            at,
            target: target.clone(),
            field: field.to_string(),
            value: value.to_string(),
        }),
    }
}

/// The HCL front end.
fn parse_hcl(text: &str) -> Result<Rules, RulesError> {
    let body = parse_body(text).map_err(syntax_error)?;
    let at = |span: Option<Range<usize>>| {
        span.map_or(Position::Line { line: 1, column: 1 }, |s| {
            Position::at_offset(text, s.start)
        })
    };

    let mut sink = Sink::default();
    for structure in body.iter() {
        match structure {
            Structure::Attribute(attr) => {
                let keyword = attr.key.as_str();
                let at_key = at(attr.key.span());
                if let Some(resource) = parse_plain_keyword(keyword) {
                    let Some(value) = attr.value.as_str() else {
                        return Err(RulesError::NotAString {
                            at: at(attr.value.span()),
                            target: Target::plain(keyword),
                            field: "the value".to_string(),
                        });
                    };
                    sink.plain(resource, value, at_key, at(attr.value.span()))?;
                } else if parse_rule_keyword(keyword).is_some() {
                    return Err(RulesError::WrongShape {
                        at: at_key,
                        keyword: keyword.to_string(),
                        expected: "rules are blocks with a name, like key_prefix \"name\" { policy = \"read\" }",
                    });
                } else {
                    return Err(RulesError::UnknownResource {
                        at: at_key,
                        keyword: keyword.to_string(),
                    });
                }
            }
            Structure::Block(block) => hcl_block(block, &mut sink, &at)?,
        }
    }
    Ok(sink.finish())
}

/// One top-level block: a named rule, or an error saying what is wrong.
fn hcl_block(
    block: &Block,
    sink: &mut Sink,
    at: &impl Fn(Option<Range<usize>>) -> Position,
) -> Result<(), RulesError> {
    let keyword = block.ident.as_str();
    let at_block = at(block.ident.span());
    let Some((resource, prefix)) = parse_rule_keyword(keyword) else {
        if parse_plain_keyword(keyword).is_some() {
            return Err(RulesError::WrongShape {
                at: at_block,
                keyword: keyword.to_string(),
                expected: "takes a single value, like operator = \"read\"",
            });
        }
        return Err(RulesError::UnknownResource {
            at: at_block,
            keyword: keyword.to_string(),
        });
    };
    let [label] = block.labels.as_slice() else {
        return Err(RulesError::WrongShape {
            at: at_block,
            keyword: keyword.to_string(),
            expected: "needs exactly one name, like key_prefix \"name\" { policy = \"read\" } (\"\" for every name)",
        });
    };
    let name = label.as_str();
    let target = Target::named(keyword, name);

    let mut fields = Fields::default();
    for inner in block.body.iter() {
        let attr = match inner {
            Structure::Attribute(attr) => attr,
            Structure::Block(nested) => {
                return Err(RulesError::UnknownField {
                    at: at(nested.ident.span()),
                    target,
                    field: nested.ident.as_str().to_string(),
                })
            }
        };
        let field = attr.key.as_str();
        let at_key = at(attr.key.span());
        let Some(slot) = fields.slot(resource, field) else {
            return Err(RulesError::UnknownField {
                at: at_key,
                target,
                field: field.to_string(),
            });
        };
        // hcl-edit already refuses a repeated argument (see syntax_error);
        // checked again so a later value can never silently replace one.
        if slot.is_some() {
            return Err(RulesError::Duplicate {
                at: at_key,
                field: field.to_string(),
            });
        }
        let Some(value) = attr.value.as_str() else {
            return Err(RulesError::NotAString {
                at: at(attr.value.span()),
                target,
                field: field.to_string(),
            });
        };
        *slot = Some(Field {
            value: value.to_string(),
            at: at(attr.value.span()),
        });
    }
    sink.rule(resource, prefix, name, fields, at_block)
}

/// hcl-edit's error, positioned. A repeated argument is caught by the
/// parser already (before the walk below could), so its message is turned
/// into Consul's wording, with the argument's name read off the line.
fn syntax_error(e: hcl::edit::parser::Error) -> RulesError {
    let (line, column) = (e.location().line(), e.location().column());
    let at = Position::Line { line, column };
    if e.message().contains("redefined attribute") {
        let field: String = e
            .line()
            .chars()
            .skip(column.saturating_sub(1))
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
            .collect();
        if !field.is_empty() {
            return RulesError::Duplicate { at, field };
        }
    }
    RulesError::Syntax {
        at,
        message: e.message().to_string(),
    }
}
