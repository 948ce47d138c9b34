//! go-bexpr's grammar, by hand, as the PEG it is: ordered choice with
//! backtracking, whitespace required around the word operators (`a or b`,
//! never `a or(b)`), selectors `Ident(.Ident | ["key"] | .N)*` or a quoted
//! JSON pointer (`"/Service/Meta/x"`), values unquoted (`passing`, read as
//! a dotted name), numbers, or `"double"` / `` `raw` `` strings.
//!
//! Errors are go-bexpr's: a rule that knows what went wrong says so
//! (`1:12 (11): rule "string": Unterminated string literal`); otherwise the
//! answer names the farthest point any alternative reached and what would
//! have been accepted there, collected the way pigeon (the generator
//! go-bexpr is built with) collects it, so the texts match Consul's.
//!
//! Where this parser differs on purpose: a quoted value is always the
//! string it spells (go-bexpr first tries it as a JSON pointer, so that
//! `Meta.path == "/api"` compares with `api`); nesting is bounded, so that
//! no expression can exhaust the stack.

use std::fmt;

use super::ast::{Expr, Match, Op};

/// Parentheses and `not`s nested deeper than this are refused.
const MAX_DEPTH: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    pub line: usize,
    pub col: usize,
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{} ({}): {}",
            self.line, self.col, self.offset, self.message
        )
    }
}

/// Parses a whole expression.
pub(crate) fn parse(text: &str) -> Result<Expr, ParseError> {
    let mut p = Parser {
        s: text,
        pos: 0,
        max_fail: 0,
        expected: Vec::new(),
        invert: false,
        depth: 0,
    };
    match p.input()? {
        Some(e) => Ok(e),
        None => Err(p.no_match()),
    }
}

type R<T> = Result<Option<T>, ParseError>;

struct Parser<'a> {
    s: &'a str,
    /// Byte offset of the next character.
    pos: usize,
    /// The farthest offset at which something was expected and not found.
    max_fail: usize,
    expected: Vec<String>,
    /// Inside a `!` predicate, where a match is the failure worth naming.
    invert: bool,
    depth: usize,
}

/// One step of a fixed sequence (the operators).
#[derive(Clone, Copy)]
enum Tok {
    Ws,
    WsOpt,
    Lit(&'static str, &'static str),
}

const WS_SHOWN: &str = r"[ \t\r\n]";

impl<'a> Parser<'a> {
    // ---- the grammar's rules ----

    /// `Input <- _? "(" _? OrExpression _? ")" _? EOF / _? OrExpression _? EOF`
    fn input(&mut self) -> R<Expr> {
        let start = self.pos;
        self.ws_opt();
        if self.lit("(", "\"(\"") {
            self.ws_opt();
            if let Some(e) = self.or()? {
                self.ws_opt();
                if self.lit(")", "\")\"") {
                    self.ws_opt();
                    if self.eof() {
                        return Ok(Some(e));
                    }
                }
            }
        }
        self.pos = start;
        self.ws_opt();
        if let Some(e) = self.or()? {
            self.ws_opt();
            if self.eof() {
                return Ok(Some(e));
            }
        }
        Ok(None)
    }

    /// `OrExpression <- AndExpression _ "or" _ OrExpression / AndExpression`
    fn or(&mut self) -> R<Expr> {
        self.chain("or", "\"or\"", Self::and, Expr::Or)
    }

    /// `AndExpression <- NotExpression _ "and" _ AndExpression / NotExpression`
    fn and(&mut self) -> R<Expr> {
        self.chain("and", "\"and\"", Self::not, Expr::And)
    }

    /// The right-recursive rule above as a loop: operands until the next
    /// `_ word _ operand` fails, which then consumes nothing.
    fn chain(
        &mut self,
        word: &'static str,
        shown: &'static str,
        operand: fn(&mut Self) -> R<Expr>,
        build: fn(Vec<Expr>) -> Expr,
    ) -> R<Expr> {
        let Some(first) = operand(self)? else {
            return Ok(None);
        };
        let mut all = vec![first];
        loop {
            let save = self.pos;
            if self.ws() && self.lit(word, shown) && self.ws() {
                if let Some(next) = operand(self)? {
                    all.push(next);
                    continue;
                }
            }
            self.pos = save;
            break;
        }
        Ok(Some(if all.len() == 1 {
            all.remove(0)
        } else {
            build(all)
        }))
    }

    /// `NotExpression <- "not" _ NotExpression / ParenthesizedExpression`;
    /// `not not x` is `x`.
    fn not(&mut self) -> R<Expr> {
        let start = self.pos;
        if self.lit("not", "\"not\"") && self.ws() {
            self.enter()?;
            let inner = self.not();
            self.depth -= 1;
            if let Some(e) = inner? {
                return Ok(Some(match e {
                    Expr::Not(x) => *x,
                    e => Expr::Not(Box::new(e)),
                }));
            }
        }
        self.pos = start;
        self.paren()
    }

    /// `"(" _? OrExpression _? ")" / MatchExpression / "(" _? OrExpression
    /// _? !")"` (that last one an error). A match never starts with `(`,
    /// so the group is parsed once and its failure is the answer.
    fn paren(&mut self) -> R<Expr> {
        let start = self.pos;
        if !self.lit("(", "\"(\"") {
            self.pos = start;
            return self.match_expr();
        }
        self.enter()?;
        let res = self.paren_rest();
        self.depth -= 1;
        if res.as_ref().is_ok_and(|r| r.is_none()) {
            self.pos = start;
            // Only for what it expects: it cannot match a `(`.
            self.match_expr()?;
            self.pos = start;
        }
        res
    }

    fn paren_rest(&mut self) -> R<Expr> {
        self.ws_opt();
        let Some(e) = self.or()? else {
            return Ok(None);
        };
        self.ws_opt();
        if self.lit(")", "\")\"") {
            return Ok(Some(e));
        }
        Err(self.rule_error("grouping", "Unmatched parentheses"))
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.rule_error(
                "grouping",
                &format!("Expression nested deeper than {MAX_DEPTH} levels"),
            ));
        }
        self.depth += 1;
        Ok(())
    }

    /// `MatchSelectorOpValue / MatchSelectorOp / MatchValueOpSelector`
    fn match_expr(&mut self) -> R<Expr> {
        let start = self.pos;
        if let Some(selector) = self.selector(true)? {
            let ops = [
                Op::Equal,
                Op::NotEqual,
                Op::In,
                Op::NotIn,
                Op::Matches,
                Op::NotMatches,
            ];
            if let Some(op) = self.operator(&ops) {
                if let Some(value) = self.value()? {
                    return Ok(Some(matched(selector, op, Some(value))));
                }
            }
        }
        self.pos = start;
        if let Some(selector) = self.selector(true)? {
            if let Some(op) = self.operator(&[Op::IsEmpty, Op::IsNotEmpty]) {
                return Ok(Some(matched(selector, op, None)));
            }
        }
        self.pos = start;
        self.value_op_selector()
    }

    /// `Value (MatchIn / MatchNotIn) Selector`, or the error when what
    /// follows `in` is not a selector.
    fn value_op_selector(&mut self) -> R<Expr> {
        let start = self.pos;
        let Some(value) = self.value()? else {
            self.pos = start;
            return Ok(None);
        };
        // `in` and `not in` here: `contains` puts the selector first.
        let Some(op) = self.in_operator() else {
            self.pos = start;
            return Ok(None);
        };
        let at = self.pos;
        if let Some(selector) = self.selector(true)? {
            return Ok(Some(matched(selector, op, Some(value))));
        }
        self.pos = at;
        Err(self.rule_error("match", "Invalid selector"))
    }

    /// The operators, in the grammar's order; `in_form` for `value in sel`.
    fn operator(&mut self, ops: &[Op]) -> Option<Op> {
        for &op in ops {
            let start = self.pos;
            // After a selector, `in`/`not in` are spelt `contains`.
            let toks: &[Tok] = match op {
                Op::Equal => &[Tok::WsOpt, Tok::Lit("==", "\"==\""), Tok::WsOpt],
                Op::NotEqual => &[Tok::WsOpt, Tok::Lit("!=", "\"!=\""), Tok::WsOpt],
                Op::In => &[Tok::Ws, Tok::Lit("contains", "\"contains\""), Tok::Ws],
                Op::NotIn => &[
                    Tok::Ws,
                    Tok::Lit("not", "\"not\""),
                    Tok::Ws,
                    Tok::Lit("contains", "\"contains\""),
                    Tok::Ws,
                ],
                Op::Matches => &[Tok::Ws, Tok::Lit("matches", "\"matches\""), Tok::Ws],
                Op::NotMatches => &[
                    Tok::Ws,
                    Tok::Lit("not", "\"not\""),
                    Tok::Ws,
                    Tok::Lit("matches", "\"matches\""),
                    Tok::Ws,
                ],
                Op::IsEmpty => &[
                    Tok::Ws,
                    Tok::Lit("is", "\"is\""),
                    Tok::Ws,
                    Tok::Lit("empty", "\"empty\""),
                ],
                Op::IsNotEmpty => &[
                    Tok::Ws,
                    Tok::Lit("is", "\"is\""),
                    Tok::Ws,
                    Tok::Lit("not", "\"not\""),
                    Tok::Ws,
                    Tok::Lit("empty", "\"empty\""),
                ],
            };
            if self.seq(toks) {
                return Some(op);
            }
            self.pos = start;
        }
        None
    }

    fn in_operator(&mut self) -> Option<Op> {
        let start = self.pos;
        if self.seq(&[Tok::Ws, Tok::Lit("in", "\"in\""), Tok::Ws]) {
            return Some(Op::In);
        }
        self.pos = start;
        if self.seq(&[
            Tok::Ws,
            Tok::Lit("not", "\"not\""),
            Tok::Ws,
            Tok::Lit("in", "\"in\""),
            Tok::Ws,
        ]) {
            return Some(Op::NotIn);
        }
        self.pos = start;
        None
    }

    /// `Identifier SelectorOrIndex* / '"' JsonPointerSegment* '"'`; the
    /// pointer form only where a selector (not a value) is read.
    fn selector(&mut self, pointer: bool) -> R<Vec<String>> {
        let start = self.pos;
        if let Some(first) = self.identifier() {
            let mut path = vec![first];
            loop {
                let save = self.pos;
                if self.lit(".", "\".\"") {
                    if let Some(id) = self.identifier() {
                        path.push(id);
                        continue;
                    }
                }
                self.pos = save;
                if let Some(key) = self.index()? {
                    path.push(key);
                    continue;
                }
                self.pos = save;
                if self.lit(".", "\".\"") {
                    let digits = self.pos;
                    if self.class(|c| c.is_ascii_digit(), "[0-9]") {
                        while self.class(|c| c.is_ascii_digit(), "[0-9]") {}
                        path.push(self.s[digits..self.pos].to_string());
                        continue;
                    }
                }
                self.pos = save;
                break;
            }
            return Ok(Some(path));
        }
        self.pos = start;
        if pointer && self.lit("\"", "\"\\\"\"") {
            let mut path = Vec::new();
            loop {
                let save = self.pos;
                if self.lit("/", "\"/\"") {
                    let seg = self.pos;
                    let seg_char = |c: char| c.is_alphanumeric() || "-_.~|".contains(c);
                    if self.class(seg_char, r"[\pL\pN-_.~|]") {
                        while self.class(seg_char, r"[\pL\pN-_.~|]") {}
                        // JSON pointer escapes: `~1` is `/`, `~0` is `~`.
                        path.push(self.s[seg..self.pos].replace("~1", "/").replace("~0", "~"));
                        continue;
                    }
                }
                self.pos = save;
                break;
            }
            if self.lit("\"", "\"\\\"\"") {
                if path.is_empty() {
                    path.push(String::new());
                }
                return Ok(Some(path));
            }
        }
        self.pos = start;
        Ok(None)
    }

    /// `[a-zA-Z] [a-zA-Z0-9_]*`
    fn identifier(&mut self) -> Option<String> {
        let start = self.pos;
        if !self.class(|c| c.is_ascii_alphabetic(), "[a-zA-Z]") {
            return None;
        }
        while self.class(|c| c.is_ascii_alphanumeric() || c == '_', "[a-zA-Z0-9_]") {}
        Some(self.s[start..self.pos].to_string())
    }

    /// `"[" _? StringLiteral _? "]"`, with its two errors.
    fn index(&mut self) -> R<String> {
        let start = self.pos;
        if !self.lit("[", "\"[\"") {
            self.pos = start;
            return Ok(None);
        }
        self.ws_opt();
        let Some(key) = self.string()? else {
            return Err(self.rule_error("index", "Invalid index"));
        };
        self.ws_opt();
        if self.lit("]", "\"]\"") {
            return Ok(Some(key));
        }
        Err(self.rule_error("index", "Unclosed index expression"))
    }

    /// `Value <- Selector / NumberLiteral / StringLiteral`, as its text.
    fn value(&mut self) -> R<String> {
        let start = self.pos;
        if let Some(sel) = self.selector(false)? {
            return Ok(Some(sel.join(".")));
        }
        self.pos = start;
        if let Some(n) = self.number()? {
            return Ok(Some(n));
        }
        self.pos = start;
        if let Some(s) = self.string()? {
            return Ok(Some(s));
        }
        self.pos = start;
        Ok(None)
    }

    /// `"-"? ("0" / [1-9][0-9]*) ("." [0-9]+)?`, which must end at
    /// whitespace, `)` or the end.
    fn number(&mut self) -> R<String> {
        let start = self.pos;
        self.lit("-", "\"-\"");
        let int = self.lit("0", "\"0\"") || {
            let first = self.class(|c| ('1'..='9').contains(&c), "[1-9]");
            while first && self.class(|c| c.is_ascii_digit(), "[0-9]") {}
            first
        };
        if !int {
            self.pos = start;
            return Ok(None);
        }
        let frac = self.pos;
        if !(self.lit(".", "\".\"") && self.class(|c| c.is_ascii_digit(), "[0-9]")) {
            self.pos = frac;
        } else {
            while self.class(|c| c.is_ascii_digit(), "[0-9]") {}
        }
        let end = self.pos;
        let ends_well = self.ws()
            || {
                self.pos = end;
                self.eof()
            }
            || self.lit(")", "\")\"");
        self.pos = end;
        if ends_well {
            Ok(Some(self.s[start..end].to_string()))
        } else {
            Err(self.rule_error("number", "Invalid number literal"))
        }
    }

    /// `` `raw` `` or `"with Go escapes"`; unterminated is an error.
    fn string(&mut self) -> R<String> {
        let start = self.pos;
        let quote = if self.lit("`", "\"`\"") {
            '`'
        } else if self.lit("\"", "\"\\\"\"") {
            '"'
        } else {
            self.pos = start;
            return Ok(None);
        };
        let body = self.pos;
        // The body runs to the next quote: Go's grammar has no escaped quote.
        let Some(len) = self.s[body..].find(quote) else {
            self.pos = self.s.len();
            return Err(self.rule_error("string", "Unterminated string literal"));
        };
        let end = body + len;
        self.pos = end + 1;
        let raw = &self.s[body..end];
        if quote == '`' {
            // Go drops carriage returns from raw strings.
            return Ok(Some(raw.replace('\r', "")));
        }
        match unescape(raw) {
            Some(s) => Ok(Some(s)),
            None => Err(self.error_at(start, "rule \"string\": invalid syntax".into())),
        }
    }

    // ---- matching primitives, recording what they expected ----

    fn seq(&mut self, toks: &[Tok]) -> bool {
        toks.iter().all(|t| match *t {
            Tok::Ws => self.ws(),
            Tok::WsOpt => {
                self.ws_opt();
                true
            }
            Tok::Lit(l, shown) => self.lit(l, shown),
        })
    }

    fn lit(&mut self, want: &str, shown: &str) -> bool {
        let start = self.pos;
        if self.s[self.pos..].starts_with(want) {
            self.pos += want.len();
            self.expect(true, start, shown);
            true
        } else {
            self.expect(false, start, shown);
            false
        }
    }

    fn class(&mut self, ok: impl Fn(char) -> bool, shown: &str) -> bool {
        let start = self.pos;
        match self.s[self.pos..].chars().next() {
            Some(c) if ok(c) => {
                self.pos += c.len_utf8();
                self.expect(true, start, shown);
                true
            }
            _ => {
                self.expect(false, start, shown);
                false
            }
        }
    }

    fn any(&mut self) -> bool {
        let start = self.pos;
        match self.s[self.pos..].chars().next() {
            Some(c) => {
                self.pos += c.len_utf8();
                self.expect(true, start, ".");
                true
            }
            None => {
                self.expect(false, start, ".");
                false
            }
        }
    }

    /// `_ <- [ \t\r\n]+`
    fn ws(&mut self) -> bool {
        let ws = |c: char| matches!(c, ' ' | '\t' | '\r' | '\n');
        if !self.class(ws, WS_SHOWN) {
            return false;
        }
        while self.class(ws, WS_SHOWN) {}
        true
    }

    fn ws_opt(&mut self) {
        self.ws();
    }

    /// `EOF <- !.`
    fn eof(&mut self) -> bool {
        self.not_pred(|p| p.any())
    }

    /// `!e`: true when `e` does not match here; consumes nothing.
    fn not_pred(&mut self, e: impl FnOnce(&mut Self) -> bool) -> bool {
        let start = self.pos;
        self.invert = !self.invert;
        let matched = e(self);
        self.invert = !self.invert;
        self.pos = start;
        !matched
    }

    /// pigeon's bookkeeping: failures (or, inside `!`, successes) at the
    /// farthest offset are what the final error lists.
    fn expect(&mut self, matched: bool, at: usize, shown: &str) {
        if matched != self.invert || at < self.max_fail {
            return;
        }
        if at > self.max_fail {
            self.max_fail = at;
            self.expected.clear();
        }
        self.expected.push(if self.invert {
            format!("!{shown}")
        } else {
            shown.to_string()
        });
    }

    // ---- errors ----

    fn rule_error(&self, rule: &str, msg: &str) -> ParseError {
        self.error_at(self.pos, format!("rule {rule:?}: {msg}"))
    }

    fn error_at(&self, offset: usize, message: String) -> ParseError {
        let (line, col) = line_col(self.s, offset);
        ParseError {
            line,
            col,
            offset,
            message,
        }
    }

    fn no_match(&mut self) -> ParseError {
        let mut list = std::mem::take(&mut self.expected);
        list.sort();
        list.dedup();
        let eof = list.iter().any(|e| e == "!.");
        list.retain(|e| e != "!.");
        if eof {
            list.push("EOF".into());
        }
        let text = match list.split_last() {
            None => String::new(),
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        };
        self.error_at(self.max_fail, format!("no match found, expected: {text}"))
    }
}

fn matched(selector: Vec<String>, op: Op, value: Option<String>) -> Expr {
    Expr::Match(Match {
        selector,
        op,
        value,
    })
}

/// pigeon's position: the line, and the column of the character at
/// `offset` counted from 1 (the end of the text counts as one more).
fn line_col(s: &str, offset: usize) -> (usize, usize) {
    let (mut line, mut col) = (1, 0);
    for c in s[..offset.min(s.len())].chars() {
        col += 1;
        if c == '\n' {
            line += 1;
            col = 0;
        }
    }
    match s[offset.min(s.len())..].chars().next() {
        Some('\n') => (line + 1, 0),
        _ => (line, col + 1),
    }
}

/// The body of a Go double-quoted string, escapes resolved as
/// `strconv.Unquote` resolves them; `None` where Go refuses it.
fn unescape(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => return None,
            '\\' => {}
            c => {
                out.push(c);
                continue;
            }
        }
        let e = chars.next()?;
        let simple = match e {
            'a' => Some('\u{7}'),
            'b' => Some('\u{8}'),
            'f' => Some('\u{c}'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\u{b}'),
            '\\' => Some('\\'),
            '"' => Some('"'),
            _ => None,
        };
        if let Some(s) = simple {
            out.push(s);
            continue;
        }
        let (digits, radix) = match e {
            'x' => (2, 16),
            'u' => (4, 16),
            'U' => (8, 16),
            '0'..='7' => (2, 8),
            _ => return None,
        };
        let mut text = String::new();
        if radix == 8 {
            text.push(e);
        }
        for _ in 0..digits {
            text.push(chars.next()?);
        }
        let n = u32::from_str_radix(&text, radix).ok()?;
        match e {
            // `\x` and octal are bytes; only ASCII ones make valid text.
            'x' | '0'..='7' if n > 0x7f => return None,
            _ => out.push(char::from_u32(n)?),
        }
    }
    Some(out)
}
