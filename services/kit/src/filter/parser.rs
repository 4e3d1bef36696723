//! Recursive-descent parser for the AIP-160 subset.
//!
//! ```text
//! filter     = [expression] EOF
//! expression = sequence { "AND" sequence }
//! sequence   = factor { factor }                  (implicit AND)
//! factor     = term { "OR" term }
//! term       = ("NOT" | "-") term | simple
//! simple     = "(" expression ")" | comparison
//! comparison = FIELD OP VALUE
//! ```
//!
//! Fields, operators and values are validated while parsing (via [`super::sql`]), so
//! errors are reported left to right.

use super::lexer::{Cursor, Token};
use super::sql::{self, Predicate};
use super::{Field, FilterError, MAX_COMPARISONS, MAX_DEPTH};

/// A parsed, validated filter expression.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Expr {
    /// All of the operands (at least two).
    And(Vec<Expr>),
    /// Any of the operands (at least two).
    Or(Vec<Expr>),
    /// The complement of the operand.
    Not(Box<Expr>),
    /// A single comparison.
    Pred(Predicate),
}

/// Parses a non-blank filter.
pub(super) fn parse(chars: Vec<char>, fields: &[Field]) -> Result<Expr, FilterError> {
    let mut parser = Parser { cur: Cursor::new(chars), fields, depth: 0, comparisons: 0 };
    let expr = parser.expression()?;
    match parser.cur.next_term()? {
        (Token::Eof, _) => Ok(expr),
        (Token::RParen, pos) => Err(FilterError::new(pos, "unbalanced parenthesis: unexpected ')'")),
        // `expression` consumes everything else that can follow a term.
        (token, pos) => Err(FilterError::new(pos, format!("unexpected {}", describe(&token)))),
    }
}

/// Describes a token for error messages.
fn describe(token: &Token) -> String {
    match token {
        Token::LParen => "'('".into(),
        Token::RParen => "')'".into(),
        Token::Minus => "'-'".into(),
        Token::And => "AND".into(),
        Token::Or => "OR".into(),
        Token::Not => "NOT".into(),
        Token::Word(w) => format!("'{w}'"),
        Token::Str => "a quoted string".into(),
        Token::Symbol(c) => format!("'{c}'"),
        Token::Eof => "end of filter".into(),
    }
}

/// Wraps two or more operands with `make`; a single operand is returned as is.
fn and_or(mut items: Vec<Expr>, make: fn(Vec<Expr>) -> Expr) -> Expr {
    if items.len() == 1
        && let Some(only) = items.pop()
    {
        return only;
    }
    make(items)
}

struct Parser<'f> {
    cur: Cursor,
    fields: &'f [Field],
    depth: usize,
    comparisons: usize,
}

impl Parser<'_> {
    fn expression(&mut self) -> Result<Expr, FilterError> {
        let mut items = vec![self.sequence(None)?];
        while let (Token::And, _) = self.cur.peek_term()? {
            self.cur.next_term()?;
            items.push(self.sequence(Some("AND"))?);
        }
        Ok(and_or(items, Expr::And))
    }

    fn sequence(&mut self, after: Option<&'static str>) -> Result<Expr, FilterError> {
        let mut items = vec![self.factor(after)?];
        loop {
            match self.cur.peek_term()?.0 {
                Token::And | Token::Or | Token::RParen | Token::Eof => break,
                _ => items.push(self.factor(None)?),
            }
        }
        Ok(and_or(items, Expr::And))
    }

    fn factor(&mut self, after: Option<&'static str>) -> Result<Expr, FilterError> {
        let mut items = vec![self.term(after)?];
        while let (Token::Or, _) = self.cur.peek_term()? {
            self.cur.next_term()?;
            items.push(self.term(Some("OR"))?);
        }
        Ok(and_or(items, Expr::Or))
    }

    fn enter(&mut self, pos: usize) -> Result<(), FilterError> {
        if self.depth >= MAX_DEPTH {
            return Err(FilterError::new(
                pos,
                format!("filter is nested too deeply (maximum depth {MAX_DEPTH})"),
            ));
        }
        self.depth += 1;
        Ok(())
    }

    fn term(&mut self, after: Option<&'static str>) -> Result<Expr, FilterError> {
        let (token, pos) = self.cur.next_term()?;
        match token {
            Token::Not | Token::Minus => {
                let keyword = if token == Token::Not { "NOT" } else { "'-'" };
                self.enter(pos)?;
                let inner = self.term(Some(keyword))?;
                self.depth -= 1;
                Ok(Expr::Not(Box::new(inner)))
            }
            Token::LParen => {
                self.enter(pos)?;
                let inner = self.expression()?;
                self.depth -= 1;
                match self.cur.next_term()? {
                    (Token::RParen, _) => Ok(inner),
                    (Token::Eof, _) => {
                        Err(FilterError::new(pos, "unbalanced parenthesis: '(' is never closed"))
                    }
                    (other, at) => {
                        Err(FilterError::new(at, format!("expected ')', found {}", describe(&other))))
                    }
                }
            }
            Token::Word(word) => self.comparison(word, pos),
            Token::Str => {
                let message = if self.cur.next_op()?.is_some() {
                    "field names cannot be quoted"
                } else {
                    "bare values are not supported; write field:value"
                };
                Err(FilterError::new(pos, message))
            }
            other => {
                let expected = match after {
                    Some(keyword) => format!("expected an expression after {keyword}"),
                    None => "expected an expression".to_owned(),
                };
                let message = match other {
                    Token::Eof => expected,
                    other => format!("{expected}, found {}", describe(&other)),
                };
                Err(FilterError::new(pos, message))
            }
        }
    }

    fn comparison(&mut self, name: String, pos: usize) -> Result<Expr, FilterError> {
        let Some((op, op_pos)) = self.cur.next_op()? else {
            return Err(self.not_a_comparison(&name, pos));
        };
        let Some(field) = self.fields.iter().find(|f| f.name == name) else {
            let allowed: Vec<&str> = self.fields.iter().map(|f| f.name).collect();
            let message = if allowed.is_empty() {
                format!("unknown field '{name}'; no fields are filterable here")
            } else {
                format!("unknown field '{name}'; allowed fields: {}", allowed.join(", "))
            };
            return Err(FilterError::new(pos, message));
        };
        self.comparisons += 1;
        if self.comparisons > MAX_COMPARISONS {
            return Err(FilterError::new(pos, format!("too many comparisons (maximum {MAX_COMPARISONS})")));
        }
        sql::check_operator(field, op, op_pos)?;
        let value = self.cur.next_value(op)?;
        Ok(Expr::Pred(sql::predicate(field, op, op_pos, value)?))
    }

    /// The error for a word that is not followed by an operator.
    fn not_a_comparison(&self, word: &str, pos: usize) -> FilterError {
        let upper = word.to_ascii_uppercase();
        if matches!(upper.as_str(), "AND" | "OR" | "NOT") {
            return FilterError::new(pos, format!("keywords must be upper case: write {upper}"));
        }
        if self.fields.iter().any(|f| f.name == word) {
            return FilterError::new(
                pos + word.chars().count(),
                format!("expected an operator (=, !=, <, <=, >, >=, :) after field '{word}'"),
            );
        }
        FilterError::new(pos, "bare values are not supported; write field:value")
    }
}
