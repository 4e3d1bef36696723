//! Context-sensitive scanner for filter strings.
//!
//! The parser asks for a *term* token where an expression may start, for an operator
//! after a field name and for a *value* after an operator. Values are scanned with
//! different rules than field names so that e.g. `2024-01-02T03:04:05Z` (which contains
//! `:`) and `-5` are single values. All positions are 0-based character offsets.

use super::FilterError;

/// A token that can appear where an expression (term) is expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Token {
    LParen,
    RParen,
    Minus,
    And,
    Or,
    Not,
    /// An unquoted word: a field name, or a bare value (which the parser rejects).
    Word(String),
    /// A quoted string in term position (always an error for the parser).
    Str,
    /// A comparison-operator character where a term was expected.
    Symbol(char),
    Eof,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Has,
}

impl Op {
    /// The operator as written in a filter.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Has => ":",
        }
    }
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Value {
    /// The value with quotes removed, escapes resolved and a wildcard `*` stripped.
    pub text: String,
    /// Whether it was written in quotes.
    pub quoted: bool,
    /// Whether it ended in an unescaped `*` (stripped from `text`).
    pub wildcard: bool,
    /// Position of the first character of the value (the opening quote if quoted).
    pub pos: usize,
}

/// Characters that end a field name and start an operator.
fn is_op_char(c: char) -> bool {
    matches!(c, '=' | '!' | '<' | '>' | ':')
}

/// Characters that end an unquoted word in term position.
fn ends_word(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '"' | '\'') || is_op_char(c)
}

/// Characters that end an unquoted value.
fn ends_value(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')')
}

/// A cursor over the characters of a filter string.
pub(super) struct Cursor {
    chars: Vec<char>,
    pos: usize,
}

impl Cursor {
    pub(super) fn new(chars: Vec<char>) -> Self {
        Self { chars, pos: 0 }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> String {
        let start = self.pos;
        while self.peek().is_some_and(&keep) {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    /// Scans the next term-position token and its position.
    pub(super) fn next_term(&mut self) -> Result<(Token, usize), FilterError> {
        self.skip_ws();
        let pos = self.pos;
        let Some(c) = self.peek() else {
            return Ok((Token::Eof, pos));
        };
        let token = match c {
            '(' => Token::LParen,
            ')' => Token::RParen,
            '-' => Token::Minus,
            '"' | '\'' => {
                self.string()?;
                return Ok((Token::Str, pos));
            }
            c if is_op_char(c) => Token::Symbol(c),
            _ => {
                let word = self.take_while(|c| !ends_word(c));
                let token = match word.as_str() {
                    "AND" => Token::And,
                    "OR" => Token::Or,
                    "NOT" => Token::Not,
                    _ => Token::Word(word),
                };
                return Ok((token, pos));
            }
        };
        self.pos += 1;
        Ok((token, pos))
    }

    /// Like [`Cursor::next_term`] but does not consume anything.
    pub(super) fn peek_term(&mut self) -> Result<(Token, usize), FilterError> {
        let saved = self.pos;
        let result = self.next_term();
        self.pos = saved;
        result
    }

    /// Scans an optional comparison operator; `Ok(None)` if none follows.
    pub(super) fn next_op(&mut self) -> Result<Option<(Op, usize)>, FilterError> {
        let saved = self.pos;
        self.skip_ws();
        let pos = self.pos;
        let next = self.chars.get(pos + 1).copied();
        let (op, len) = match (self.peek(), next) {
            (Some('<'), Some('=')) => (Op::Le, 2),
            (Some('>'), Some('=')) => (Op::Ge, 2),
            (Some('!'), Some('=')) => (Op::Ne, 2),
            (Some('<'), _) => (Op::Lt, 1),
            (Some('>'), _) => (Op::Gt, 1),
            (Some('='), _) => (Op::Eq, 1),
            (Some(':'), _) => (Op::Has, 1),
            (Some('!'), _) => return Err(FilterError::new(pos, "expected '!='")),
            _ => {
                self.pos = saved;
                return Ok(None);
            }
        };
        self.pos += len;
        Ok(Some((op, pos)))
    }

    /// Scans the value after operator `op`.
    pub(super) fn next_value(&mut self, op: Op) -> Result<Value, FilterError> {
        self.skip_ws();
        let pos = self.pos;
        let expected = || format!("expected a value after '{}'", op.as_str());
        match self.peek() {
            None => Err(FilterError::new(pos, expected())),
            Some('"' | '\'') => {
                let (text, wildcard) = self.string()?;
                Ok(Value { text, quoted: true, wildcard, pos })
            }
            Some(c) if matches!(c, '(' | ')') || is_op_char(c) => {
                Err(FilterError::new(pos, format!("{}, found '{c}'", expected())))
            }
            Some(_) => {
                let mut text = self.take_while(|c| !ends_value(c));
                if matches!(text.as_str(), "AND" | "OR" | "NOT") {
                    return Err(FilterError::new(
                        pos,
                        format!("{}, found keyword {text} (quote it to use it as a value)", expected()),
                    ));
                }
                let wildcard = text.ends_with('*');
                if wildcard {
                    text.pop();
                }
                Ok(Value { text, quoted: false, wildcard, pos })
            }
        }
    }

    /// Scans a quoted string starting at the current (quote) character. Returns the
    /// unescaped contents (without a trailing unescaped `*`) and whether that `*` was there.
    fn string(&mut self) -> Result<(String, bool), FilterError> {
        let start = self.pos;
        let Some(quote) = self.peek() else {
            return Err(FilterError::new(start, "expected a string"));
        };
        self.pos += 1;
        let mut text = String::new();
        let mut wildcard = false;
        loop {
            let Some(c) = self.peek() else {
                return Err(FilterError::new(start, "unterminated string"));
            };
            self.pos += 1;
            if c == quote {
                break;
            }
            wildcard = false;
            if c == '\\' {
                let Some(escaped) = self.peek() else {
                    return Err(FilterError::new(start, "unterminated string"));
                };
                self.pos += 1;
                text.push(match escaped {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    other => other,
                });
            } else {
                wildcard = c == '*';
                text.push(c);
            }
        }
        if wildcard {
            text.pop();
        }
        Ok((text, wildcard))
    }
}
