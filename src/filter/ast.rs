//! The parsed form of an expression, before it is checked against a schema.
//!
//! `and` and `or` hold their operands as lists rather than go-bexpr's
//! nested pairs: the answer is the same (both are associative and nothing
//! in an evaluation has side effects), and a filter of ten thousand terms
//! then costs no recursion to build, evaluate or drop.

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Match(Match),
}

/// `<selector> <op> <value>`, `<value> in <selector>`, `<selector> is empty`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Match {
    pub selector: Vec<String>,
    pub op: Op,
    /// The value's text as written (unquoted); none for `is [not] empty`.
    pub value: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Equal,
    NotEqual,
    /// `in` and `contains`: the same test, operands swapped.
    In,
    NotIn,
    IsEmpty,
    IsNotEmpty,
    Matches,
    NotMatches,
}

impl Op {
    /// go-bexpr's names, which its error texts use.
    pub fn name(self) -> &'static str {
        match self {
            Op::Equal => "Equal",
            Op::NotEqual => "Not Equal",
            Op::In => "In",
            Op::NotIn => "Not In",
            Op::IsEmpty => "Is Empty",
            Op::IsNotEmpty => "Is Not Empty",
            Op::Matches => "Matches",
            Op::NotMatches => "Not Matches",
        }
    }

    /// The test behind this operator, and whether its answer is negated.
    pub fn positive(self) -> (Op, bool) {
        match self {
            Op::NotEqual => (Op::Equal, true),
            Op::NotIn => (Op::In, true),
            Op::IsNotEmpty => (Op::IsEmpty, true),
            Op::NotMatches => (Op::Matches, true),
            op => (op, false),
        }
    }
}
