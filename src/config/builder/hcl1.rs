//! Consul reads its config with HCL 1, which lets a block hold several
//! attributes on one line (`acl { enabled = true default_policy = "deny" }`,
//! as Consul's own docs and tutorials write it); HCL 2, which we parse
//! with, wants one attribute per line. When a file does not parse as HCL 2,
//! [`one_attribute_per_line`] breaks such lines where HCL 1 ends an
//! attribute, and the file is parsed once more; a file that parses as it
//! is never goes through here.

/// The text with a line break after each `{`, around each `}`, and
/// between a value and the attribute that follows it on the same line,
/// outside strings, comments and lists. `None` when the text has
/// something this does not follow (a heredoc), so the first error stands.
pub(super) fn one_attribute_per_line(text: &str) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + 16);
    // Open `[`/`(` inside which line breaks mean nothing to HCL 2.
    let mut lists = 0usize;
    // Whether the last thing written ends a value (a string, a number, a
    // word, `]`, `}`): an identifier after it starts a new attribute.
    let mut after_value = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' => {
                let end = string_end(&chars, i)?;
                out.extend(&chars[i..end]);
                i = end;
                after_value = true;
                continue;
            }
            '#' => {
                let end = line_end(&chars, i);
                out.extend(&chars[i..end]);
                i = end;
                continue;
            }
            '/' if chars.get(i + 1) == Some(&'/') => {
                let end = line_end(&chars, i);
                out.extend(&chars[i..end]);
                i = end;
                continue;
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                let end = (i + 2..chars.len().saturating_sub(1))
                    .find(|&j| chars[j] == '*' && chars[j + 1] == '/')
                    .map(|j| j + 2)?;
                out.extend(&chars[i..end]);
                i = end;
                continue;
            }
            '<' if chars.get(i + 1) == Some(&'<') => return None,
            '[' | '(' => {
                lists += 1;
                after_value = false;
                out.push(c);
            }
            ']' | ')' => {
                lists = lists.saturating_sub(1);
                after_value = true;
                out.push(c);
            }
            '{' if lists == 0 => {
                out.push_str("{\n");
                after_value = false;
            }
            '}' if lists == 0 => {
                out.push_str("\n}\n");
                after_value = false;
            }
            '\n' => {
                after_value = false;
                out.push(c);
            }
            ' ' | '\t' => {
                let next = (i..chars.len()).find(|&j| chars[j] != ' ' && chars[j] != '\t');
                let starts_attribute =
                    next.is_some_and(|j| is_ident_start(chars[j])) && lists == 0 && after_value;
                // A run of blanks outside strings means one blank.
                out.push(if starts_attribute { '\n' } else { ' ' });
                i = next.unwrap_or(chars.len());
                continue;
            }
            '=' | ',' | ':' => {
                after_value = false;
                out.push(c);
            }
            _ => {
                after_value = true;
                out.push(c);
            }
        }
        i += 1;
    }
    Some(out)
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

/// The index just past the string that opens at `start`.
fn string_end(chars: &[char], start: usize) -> Option<usize> {
    let mut j = start + 1;
    while j < chars.len() {
        match chars[j] {
            '\\' => j += 2,
            '"' => return Some(j + 1),
            '\n' => return None,
            _ => j += 1,
        }
    }
    None
}

fn line_end(chars: &[char], start: usize) -> usize {
    (start..chars.len())
        .find(|&j| chars[j] == '\n')
        .unwrap_or(chars.len())
}

#[cfg(test)]
mod tests {
    use super::one_attribute_per_line;
    use serde_json::{json, Value};

    fn parsed(text: &str) -> Value {
        assert!(
            hcl::from_str::<Value>(text).is_err(),
            "HCL 2 takes it as is"
        );
        let fixed = one_attribute_per_line(text).expect("rewritten");
        hcl::from_str(&fixed).unwrap_or_else(|e| panic!("{e}\n{fixed}"))
    }

    #[test]
    fn several_attributes_of_a_block_on_one_line_parse_as_consul_reads_them() {
        let v = parsed(r#"acl { enabled = true default_policy = "deny" }"#);
        assert_eq!(
            v,
            json!({"acl": {"enabled": true, "default_policy": "deny"}})
        );
        let v = parsed(
            "datacenter = \"dc1\"\nports { http = 8500 dns = -1 }\nacl { enabled = true tokens { agent = \"a b\" default = \"d\" } down_policy = \"allow\" }\n",
        );
        assert_eq!(
            v,
            json!({"datacenter": "dc1", "ports": {"http": 8500, "dns": -1},
                   "acl": {"enabled": true, "tokens": {"agent": "a b", "default": "d"}, "down_policy": "allow"}})
        );
    }

    #[test]
    fn strings_lists_labels_and_comments_are_left_as_they_are() {
        let v = parsed(
            "# a { b = 1 c = 2 }\nservice { name = \"web\" tags = [\"a\", \"b c\"] port = 80 } // x = 1 y = 2\nretry_join = [\"x\"]\n",
        );
        assert_eq!(
            v,
            json!({"service": {"name": "web", "tags": ["a", "b c"], "port": 80}, "retry_join": ["x"]})
        );
        let v = parsed("telemetry { prefix = \"a = b c = d\" disable_hostname = true }");
        assert_eq!(
            v,
            json!({"telemetry": {"prefix": "a = b c = d", "disable_hostname": true}})
        );
    }

    #[test]
    fn what_it_cannot_follow_is_left_to_the_first_error() {
        assert_eq!(one_attribute_per_line("a = <<EOF\nx\nEOF\n"), None);
        assert_eq!(one_attribute_per_line("a = \"open"), None);
    }
}
