//! The JSON front end of the rules parser: `{"key_prefix": {"": {"policy":
//! "read"}}, "operator": "read"}`. Consul reads JSON rules through its HCL
//! library, which also takes a list where an object is expected
//! (`"key_prefix": [{"": {…}}]`, `"": [{"policy": …}]`); so does this.
//! serde_json keeps no positions past a syntax error, so checks report a
//! path (`key_prefix."db/".policy`) instead of a line.

use serde_json::{Map, Value};

use super::access::Resource;
use super::error::{Position, RulesError, Target};
use super::parse::{Field, Fields, Sink};
use super::rules::{parse_plain_keyword, parse_rule_keyword, Rules};

pub(crate) fn parse_json(text: &str) -> Result<Rules, RulesError> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        // serde_json's message ends with its own " at line L column C";
        // the position goes in front instead, like the HCL errors.
        let full = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        RulesError::Syntax {
            at: Position::Line {
                line: e.line(),
                column: e.column(),
            },
            message: full.strip_suffix(&suffix).unwrap_or(&full).to_string(),
        }
    })?;
    let Value::Object(top) = value else {
        return Err(RulesError::WrongShape {
            at: Position::Path("$".to_string()),
            keyword: "rules".to_string(),
            expected: "must be a JSON object",
        });
    };

    let mut sink = Sink::default();
    for (keyword, value) in &top {
        let path = Position::Path(keyword.clone());
        if let Some(resource) = parse_plain_keyword(keyword) {
            let Value::String(s) = value else {
                return Err(RulesError::NotAString {
                    at: path,
                    target: Target::plain(keyword),
                    field: "the value".to_string(),
                });
            };
            sink.plain(resource, s, path.clone(), path)?;
        } else if let Some((resource, prefix)) = parse_rule_keyword(keyword) {
            // Each object under a name is one rule block; a list of them
            // is the same name written twice, merged later like any
            // duplicate. (Field names cannot repeat: a JSON object keeps
            // one value a key.)
            let named = objects(value, keyword)?.into_iter().flatten();
            for (name, body) in named {
                let at_rule = Position::Path(format!("{keyword}.{name:?}"));
                for block in objects(body, &format!("{keyword}.{name:?}"))? {
                    json_rule(
                        &mut sink,
                        resource,
                        prefix,
                        keyword,
                        name,
                        block,
                        at_rule.clone(),
                    )?;
                }
            }
        } else {
            return Err(RulesError::UnknownResource {
                at: path,
                keyword: keyword.clone(),
            });
        }
    }
    Ok(sink.finish())
}

/// One rule block's object: `{"policy": "read", "intentions": "deny"}`.
fn json_rule(
    sink: &mut Sink,
    resource: Resource,
    prefix: bool,
    keyword: &str,
    name: &str,
    block: &Map<String, Value>,
    at_rule: Position,
) -> Result<(), RulesError> {
    let target = Target::named(keyword, name);
    let mut fields = Fields::default();
    for (field, v) in block {
        let at = Position::Path(format!("{keyword}.{name:?}.{field}"));
        let Some(slot) = fields.slot(resource, field) else {
            return Err(RulesError::UnknownField {
                at,
                target,
                field: field.clone(),
            });
        };
        let Value::String(s) = v else {
            return Err(RulesError::NotAString {
                at,
                target,
                field: field.clone(),
            });
        };
        *slot = Some(Field {
            value: s.clone(),
            at,
        });
    }
    sink.rule(resource, prefix, name, fields, at_rule)
}

/// An object, or a list of objects (HCL's JSON form of repeated blocks).
fn objects<'a>(value: &'a Value, path: &str) -> Result<Vec<&'a Map<String, Value>>, RulesError> {
    let wrong = || RulesError::WrongShape {
        at: Position::Path(path.to_string()),
        keyword: path.to_string(),
        expected: "must be an object (or a list of objects)",
    };
    match value {
        Value::Object(map) => Ok(vec![map]),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::Object(map) => Ok(map),
                _ => Err(wrong()),
            })
            .collect(),
        _ => Err(wrong()),
    }
}
