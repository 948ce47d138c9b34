//! Why a rules text was refused, and where. Every error reads
//! `Failed to parse ACL rules: <where>: <what>`: Consul's prefix (clients
//! and tests match on it), then a line and column for HCL or a path for
//! JSON, then the problem in Consul's words where Consul has some.

use std::fmt;

use thiserror::Error;

/// Where in the rules text a problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// One-based line and column (columns count characters, not bytes).
    Line { line: usize, column: usize },
    /// A JSON path such as `key_prefix."db/".policy`, for problems found
    /// after JSON parsing, where serde_json keeps no positions.
    Path(String),
}

impl Position {
    /// The line and column of byte `offset` in `text`.
    pub fn at_offset(text: &str, offset: usize) -> Position {
        let mut offset = offset.min(text.len());
        // A span never splits a character, but stay safe on any input.
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Position::Line { line, column }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Line { line, column } => write!(f, "line {line}, column {column}"),
            Position::Path(path) => write!(f, "at {path}"),
        }
    }
}

/// What a problem is about: `key_prefix "db/"` or `operator`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub keyword: String,
    pub name: Option<String>,
}

impl Target {
    pub fn plain(keyword: &str) -> Target {
        Target {
            keyword: keyword.to_string(),
            name: None,
        }
    }

    pub fn named(keyword: &str, name: &str) -> Target {
        Target {
            keyword: keyword.to_string(),
            name: Some(name.to_string()),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{} {:?}", self.keyword, name),
            None => f.write_str(&self.keyword),
        }
    }
}

/// A rules text Meridian will not store or compile.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RulesError {
    /// Not HCL (or not JSON) at all: the parser's own message.
    #[error("Failed to parse ACL rules: {at}: {message}")]
    Syntax { at: Position, message: String },

    /// A top-level keyword that is no ACL resource (Consul's HCL decoder
    /// drops those silently; a typo then grants nothing, which is worse).
    #[error("Failed to parse ACL rules: {at}: unknown ACL resource {keyword:?}")]
    UnknownResource { at: Position, keyword: String },

    /// `operator "x" { … }` or `key = "read"`: the right keyword in the
    /// wrong shape.
    #[error("Failed to parse ACL rules: {at}: {keyword} {expected}")]
    WrongShape {
        at: Position,
        keyword: String,
        expected: &'static str,
    },

    /// A field inside a rule block other than `policy` (or `intentions` on
    /// service rules).
    #[error("Failed to parse ACL rules: {at}: unknown field {field:?} in {target}")]
    UnknownField {
        at: Position,
        target: Target,
        field: String,
    },

    /// A value that must be a quoted string is something else.
    #[error("Failed to parse ACL rules: {at}: {field} of {target} must be a string")]
    NotAString {
        at: Position,
        target: Target,
        field: String,
    },

    /// A rule block with no `policy`; Consul refuses it as an invalid
    /// (empty) policy.
    #[error("Failed to parse ACL rules: {at}: missing policy for {target}")]
    MissingPolicy { at: Position, target: Target },

    /// A disposition other than read, write, deny (and list for keys).
    #[error("Failed to parse ACL rules: {at}: invalid {field} {value:?} for {target}")]
    InvalidPolicy {
        at: Position,
        target: Target,
        /// `policy` (also for single values) or `intentions`.
        field: String,
        value: String,
    },

    /// `list` outside key rules.
    #[error(
        "Failed to parse ACL rules: {at}: invalid {field} \"list\" for {target}: \
         list is only valid for key and key_prefix rules"
    )]
    ListNotAllowed {
        at: Position,
        target: Target,
        field: String,
    },

    /// The same argument twice in one block or at the top (Consul decodes
    /// with `DecodeErrorOnDuplicates`; this is its wording).
    #[error(
        "Failed to parse ACL rules: {at}: the argument {field:?} was already set. \
         Each argument can only be defined once"
    )]
    Duplicate { at: Position, field: String },
}

impl RulesError {
    /// Where the problem is.
    pub fn position(&self) -> &Position {
        match self {
            RulesError::Syntax { at, .. }
            | RulesError::UnknownResource { at, .. }
            | RulesError::WrongShape { at, .. }
            | RulesError::UnknownField { at, .. }
            | RulesError::NotAString { at, .. }
            | RulesError::MissingPolicy { at, .. }
            | RulesError::InvalidPolicy { at, .. }
            | RulesError::ListNotAllowed { at, .. }
            | RulesError::Duplicate { at, .. } => at,
        }
    }
}
