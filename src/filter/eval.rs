//! A parsed expression checked against a schema (selectors, operators,
//! values, regular expressions), then run on JSON values.

use regex::Regex;
use serde_json::Value;

use super::ast::{Expr, Match, Op};
use super::schema::{Kind, Schema};
use super::FilterError;

#[derive(Debug)]
pub(crate) enum Compiled {
    Not(Box<Compiled>),
    All(Vec<Compiled>),
    Any(Vec<Compiled>),
    Test(Test),
}

#[derive(Debug)]
pub(crate) struct Test {
    path: Vec<String>,
    /// The positive test; `negate` turns `!=` into `==` answered the other
    /// way, per element, so that `Checks.Status != passing` asks whether
    /// any check is not passing (go-bexpr's reading).
    op: Op,
    negate: bool,
    value: String,
    regex: Option<Regex>,
}

pub(crate) fn compile(e: &Expr, schema: &Schema) -> Result<Compiled, FilterError> {
    Ok(match e {
        Expr::Not(x) => Compiled::Not(Box::new(compile(x, schema)?)),
        Expr::And(xs) => Compiled::All(compile_all(xs, schema)?),
        Expr::Or(xs) => Compiled::Any(compile_all(xs, schema)?),
        Expr::Match(m) => Compiled::Test(test(m, schema)?),
    })
}

fn compile_all(xs: &[Expr], schema: &Schema) -> Result<Vec<Compiled>, FilterError> {
    xs.iter().map(|x| compile(x, schema)).collect()
}

fn test(m: &Match, schema: &Schema) -> Result<Test, FilterError> {
    let selector = m.selector.join(".");
    let kind = schema
        .resolve(&m.selector)
        .map_err(|n| FilterError::UnknownSelector(m.selector[..n].join(".")))?;
    let bad_op = || FilterError::Operator {
        op: m.op.name(),
        selector: selector.clone(),
    };
    // What each kind takes: go-bexpr's rules, and `is empty` on strings
    // as newer go-bexpr (and so Consul) allows.
    let (op, negate) = m.op.positive();
    let scalar_kind = match kind {
        Kind::Str | Kind::Any => None,
        Kind::Int | Kind::Uint | Kind::Bool => {
            if op != Op::Equal {
                return Err(bad_op());
            }
            Some(kind)
        }
        Kind::List(elem) => match (op, elem) {
            (Op::IsEmpty, _) => None,
            (Op::In, Kind::Str) => None,
            (Op::In, k @ (Kind::Int | Kind::Uint | Kind::Bool)) => Some(*k),
            _ => return Err(bad_op()),
        },
        Kind::Map(_) => match op {
            Op::IsEmpty | Op::In => None,
            _ => return Err(bad_op()),
        },
        Kind::Struct(_) => return Err(bad_op()),
    };
    let value = m.value.clone().unwrap_or_default();
    if let Some(k) = scalar_kind {
        let why = match k {
            Kind::Int => parse_int(&value).map(|_| ()).ok_or("not an integer"),
            Kind::Uint => parse_uint(&value)
                .map(|_| ())
                .ok_or("not an unsigned integer"),
            _ => parse_bool(&value).map(|_| ()).ok_or("not a boolean"),
        };
        if let Err(why) = why {
            return Err(FilterError::Coerce {
                value,
                selector,
                why,
            });
        }
    }
    let regex = if op == Op::Matches {
        Some(Regex::new(&value).map_err(|e| FilterError::Regex {
            pattern: value.clone(),
            why: e.to_string(),
        })?)
    } else {
        None
    };
    Ok(Test {
        path: m.selector.clone(),
        op,
        negate,
        value,
        regex,
    })
}

impl Compiled {
    pub(crate) fn matches(&self, v: &Value) -> bool {
        match self {
            Compiled::Not(x) => !x.matches(v),
            Compiled::All(xs) => xs.iter().all(|x| x.matches(v)),
            Compiled::Any(xs) => xs.iter().any(|x| x.matches(v)),
            Compiled::Test(t) => t.walk(v, 0),
        }
    }
}

impl Test {
    fn walk(&self, v: &Value, depth: usize) -> bool {
        let Some(seg) = self.path.get(depth) else {
            return self.leaf(v);
        };
        match v {
            Value::Array(items) => match seg.parse::<usize>() {
                Ok(i) => match items.get(i) {
                    Some(x) => self.walk(x, depth + 1),
                    None => self.absent(),
                },
                // Any element will do.
                Err(_) => items.iter().any(|x| self.walk(x, depth)),
            },
            Value::Object(map) => match map.get(seg) {
                Some(x) => self.walk(x, depth + 1),
                None => self.absent(),
            },
            _ => self.absent(),
        }
    }

    /// A missing map key (or a `null`) holds no value: nothing equals,
    /// contains or matches it, and it is empty.
    fn absent(&self) -> bool {
        (self.op == Op::IsEmpty) != self.negate
    }

    fn leaf(&self, v: &Value) -> bool {
        if v.is_null() {
            return self.absent();
        }
        let want = &self.value;
        let yes = match self.op {
            Op::Equal => equal(v, want),
            Op::In => match v {
                Value::String(s) => s.contains(want.as_str()),
                Value::Array(items) => items.iter().any(|x| equal(x, want)),
                Value::Object(m) => m.contains_key(want),
                _ => false,
            },
            Op::IsEmpty => match v {
                Value::String(s) => s.is_empty(),
                Value::Array(a) => a.is_empty(),
                Value::Object(m) => m.is_empty(),
                _ => false,
            },
            Op::Matches => match (v, &self.regex) {
                (Value::String(s), Some(re)) => re.is_match(s),
                _ => false,
            },
            _ => false,
        };
        yes != self.negate
    }
}

/// A JSON value against a value's text, read as the JSON value's type.
fn equal(v: &Value, want: &str) -> bool {
    match v {
        Value::String(s) => s == want,
        Value::Bool(b) => parse_bool(want) == Some(*b),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                parse_uint(want) == Some(u)
            } else if let Some(i) = n.as_i64() {
                parse_int(want) == Some(i)
            } else {
                n.as_f64().is_some_and(|f| want.parse::<f64>() == Ok(f))
            }
        }
        _ => false,
    }
}

/// Go's `strconv.ParseBool`.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`: `0x`, `0o`, `0b` and a leading `0`
/// (octal) prefixes; `_` between digits only after a prefix.
fn parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let u = parse_uint(body)?;
    if neg {
        0i64.checked_sub_unsigned(u)
    } else {
        i64::try_from(u).ok()
    }
}

/// Go's `strconv.ParseUint(s, 0, 64)`.
fn parse_uint(s: &str) -> Option<u64> {
    let lower = s.to_ascii_lowercase();
    let (radix, digits, prefixed) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d, true)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d, true)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d, true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..], true)
    } else {
        (10, lower.as_str(), false)
    };
    if digits.is_empty() || digits.starts_with('+') || digits.starts_with('-') {
        return None;
    }
    let digits = if prefixed && digits.contains('_') {
        if digits.starts_with('_') || digits.ends_with('_') || digits.contains("__") {
            return None;
        }
        digits.replace('_', "")
    } else {
        digits.to_string()
    };
    u64::from_str_radix(&digits, radix).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_read_as_go_reads_them() {
        assert_eq!(parse_int("42"), Some(42));
        assert_eq!(parse_int("-42"), Some(-42));
        assert_eq!(parse_int("0x1f"), Some(31));
        assert_eq!(parse_int("010"), Some(8));
        assert_eq!(parse_int("0b101"), Some(5));
        assert_eq!(parse_int("1_000"), None);
        assert_eq!(parse_int("0x1_0"), Some(16));
        assert_eq!(parse_int("abc"), None);
        assert_eq!(parse_int("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_uint("-1"), None);
        assert_eq!(parse_uint("18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_bool("True"), Some(true));
        assert_eq!(parse_bool("yes"), None);
    }
}
