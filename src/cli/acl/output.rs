//! What the ACL commands print: an object as the API answered it, laid
//! out by `format.rs` or, with `-format json`, as the API's own JSON in
//! its own field order, indented as Consul's CLI indents it.

use anyhow::Result;
use serde_json::Value;

use super::super::client::Reply;
use super::super::Client;
use super::input::Kind;
use super::{format, Format};

/// An answer of the API: its bytes (what `-format json` prints) and their
/// parsed value (what the pretty layouts and updates read).
pub struct Answer {
    raw: Vec<u8>,
    pub value: Value,
}

impl Answer {
    pub fn from_reply(r: Reply) -> Result<Answer> {
        let value = r.json()?;
        Ok(Answer { raw: r.body, value })
    }

    /// The array an answer holds (empty for anything else).
    pub fn items(&self) -> &[Value] {
        self.value.as_array().map(Vec::as_slice).unwrap_or(&[])
    }
}

/// `reply.answer()` where a command chains its request.
pub trait IntoAnswer {
    fn answer(self) -> Result<Answer>;
}

impl IntoAnswer for Reply {
    fn answer(self) -> Result<Answer> {
        Answer::from_reply(self)
    }
}

/// `GET path`, non-2xx answers being errors.
pub fn get(c: &Client, path: &str) -> Result<Answer> {
    Answer::from_reply(c.call_ok(reqwest::Method::GET, path, &[], None, &[])?)
}

/// Prints `a` as its JSON, indented by four spaces (Go's
/// `json.MarshalIndent(v, "", "    ")`).
pub fn print_json(a: &Answer) -> Result<i32> {
    println!("{}", indent(&String::from_utf8_lossy(&a.raw)));
    Ok(0)
}

/// Prints one object of `kind`: Consul's layout, or the API's JSON.
pub fn print(a: &Answer, kind: Kind, format: Format, meta: bool) -> Result<i32> {
    match format {
        Format::Json => print_json(a),
        Format::Pretty => {
            let text = match kind {
                Kind::Token => format::token(&a.value, meta),
                Kind::Policy => format::policy(&a.value, meta),
                Kind::Role => format::role(&a.value, meta),
            };
            print!("{text}");
            Ok(0)
        }
    }
}

/// Re-indents compact, valid JSON text without reordering anything
/// (`serde_json::Value` would sort the keys).
fn indent(json: &str) -> String {
    let mut out = String::with_capacity(json.len() * 2);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = json.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"    ".repeat(depth));
    };
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                while chars.peek().is_some_and(|n| n.is_whitespace()) {
                    chars.next();
                }
                // An empty object or array stays on its line.
                if matches!(chars.peek(), Some('}') | Some(']')) {
                    if let Some(close) = chars.next() {
                        out.push(close);
                    }
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::indent;

    #[test]
    fn indentation_keeps_the_apis_order_and_strings() {
        let raw = r#"{"Name":"b","ID":"a","Rules":"key \"x\" {, }","Datacenters":[],"Policies":[{"ID":"p"}]}"#;
        assert_eq!(
            indent(raw),
            "{\n    \"Name\": \"b\",\n    \"ID\": \"a\",\n    \"Rules\": \"key \\\"x\\\" {, }\",\n    \
             \"Datacenters\": [],\n    \"Policies\": [\n        {\n            \"ID\": \"p\"\n        }\n    ]\n}"
        );
        let v: serde_json::Value = serde_json::from_str(&indent(raw)).unwrap();
        assert_eq!(v, serde_json::from_str::<serde_json::Value>(raw).unwrap());
    }
}
