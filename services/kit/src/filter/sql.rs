//! Validation of comparisons against field kinds, and SQL generation.

use std::fmt::Write as _;

use super::lexer::{Op, Value};
use super::parser::Expr;
use super::{Field, FieldKind, FilterError, SqlFilter, SqlValue};

/// A validated comparison, ready to render.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Predicate {
    /// `(column OP $n::cast)`, where `OP` is a SQL operator such as `=`, `LIKE`,
    /// `ILIKE` or `IS DISTINCT FROM`.
    Compare { column: &'static str, op: &'static str, value: SqlValue },
    /// `(column IS NULL OR column NOT LIKE $n::text)`.
    NotLike { column: &'static str, pattern: String },
    /// `(column @> ARRAY[$n])`: the array contains the element.
    HasElement { column: &'static str, element: SqlValue },
    /// `field:*`.
    Present { column: &'static str, kind: Presence },
}

/// What "present" means for a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Presence {
    /// Not NULL and not the empty string.
    Text,
    /// Not NULL and not empty.
    Array,
    /// Not NULL.
    NotNull,
}

fn kind_name(kind: &FieldKind) -> &'static str {
    match kind {
        FieldKind::Text => "text",
        FieldKind::Uuid => "uuid",
        FieldKind::Integer => "integer",
        FieldKind::Bool => "boolean",
        FieldKind::Timestamp => "timestamp",
        FieldKind::Enum { .. } => "enum",
        FieldKind::TextArray => "text array",
        FieldKind::UuidArray => "uuid array",
    }
}

/// The operators a kind supports, as shown in error messages.
fn supported_ops(kind: &FieldKind) -> &'static str {
    match kind {
        FieldKind::Text => "=, !=, <, <=, >, >=, :",
        FieldKind::Integer | FieldKind::Timestamp => "=, !=, <, <=, >, >=, :*",
        FieldKind::Uuid | FieldKind::Bool | FieldKind::Enum { .. } => "=, !=, :*",
        FieldKind::TextArray | FieldKind::UuidArray => ":",
    }
}

/// Rejects operators a field's kind does not support (`:` is checked further in
/// [`predicate`], since `field:*` is allowed for every kind).
pub(super) fn check_operator(field: &Field, op: Op, op_pos: usize) -> Result<(), FilterError> {
    let ordering = matches!(op, Op::Lt | Op::Le | Op::Gt | Op::Ge);
    let allowed = match field.kind {
        FieldKind::Text => true,
        FieldKind::Integer | FieldKind::Timestamp => true,
        FieldKind::Uuid | FieldKind::Bool | FieldKind::Enum { .. } => !ordering,
        FieldKind::TextArray | FieldKind::UuidArray => op == Op::Has,
    };
    if allowed { Ok(()) } else { Err(op_error(field, op, op_pos)) }
}

fn op_error(field: &Field, op: Op, op_pos: usize) -> FilterError {
    FilterError::new(
        op_pos,
        format!(
            "operator '{}' is not supported for {} field '{}'; supported: {}",
            op.as_str(),
            kind_name(&field.kind),
            field.name,
            supported_ops(&field.kind)
        ),
    )
}

/// Escapes `\`, `%` and `_` for use in a LIKE/ILIKE pattern (default escape `\`).
fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The SQL operator for an equality/ordering comparison; `!=` is NULL-safe.
fn sql_op(op: Op) -> &'static str {
    match op {
        Op::Eq => "=",
        Op::Ne => "IS DISTINCT FROM",
        Op::Lt => "<",
        Op::Le => "<=",
        Op::Gt => ">",
        Op::Ge => ">=",
        Op::Has => ":",
    }
}

/// Validates `field op value` (the operator already passed [`check_operator`]) and
/// converts the value to its typed SQL parameter.
pub(super) fn predicate(
    field: &Field,
    op: Op,
    op_pos: usize,
    value: Value,
) -> Result<Predicate, FilterError> {
    let column = field.column;
    if op == Op::Has && value.wildcard && !value.quoted && value.text.is_empty() {
        let kind = match field.kind {
            FieldKind::Text => Presence::Text,
            FieldKind::TextArray | FieldKind::UuidArray => Presence::Array,
            _ => Presence::NotNull,
        };
        return Ok(Predicate::Present { column, kind });
    }
    if value.text.contains('\0') {
        return Err(FilterError::new(value.pos, "values cannot contain NUL characters"));
    }
    if value.wildcard && field.kind != FieldKind::Text {
        return Err(FilterError::new(
            value.pos,
            format!("wildcard '*' is not supported for {} field '{}'", kind_name(&field.kind), field.name),
        ));
    }
    let sql_value = match (&field.kind, op) {
        (FieldKind::Text, Op::Has) => {
            let pattern = format!("%{}%", escape_like(&value.text));
            return Ok(Predicate::Compare { column, op: "ILIKE", value: SqlValue::Text(pattern) });
        }
        (FieldKind::Text, Op::Eq) if value.wildcard => {
            let pattern = format!("{}%", escape_like(&value.text));
            return Ok(Predicate::Compare { column, op: "LIKE", value: SqlValue::Text(pattern) });
        }
        (FieldKind::Text, Op::Ne) if value.wildcard => {
            let pattern = format!("{}%", escape_like(&value.text));
            return Ok(Predicate::NotLike { column, pattern });
        }
        (FieldKind::Text, _) if value.wildcard => {
            return Err(FilterError::new(value.pos, "wildcard '*' is only supported with =, != and :"));
        }
        (FieldKind::TextArray, _) => {
            return Ok(Predicate::HasElement { column, element: SqlValue::Text(value.text) });
        }
        (FieldKind::UuidArray, _) => {
            return match uuid::Uuid::parse_str(&value.text) {
                Ok(element) => Ok(Predicate::HasElement { column, element: SqlValue::Uuid(element) }),
                Err(_) => Err(bad_value(&value, "a UUID")),
            };
        }
        (_, Op::Has) => {
            return Err(FilterError::new(
                op_pos,
                format!(
                    "operator ':' is only supported as '{}:*' (presence) for {} field '{}'",
                    field.name,
                    kind_name(&field.kind),
                    field.name
                ),
            ));
        }
        (FieldKind::Text, _) => SqlValue::Text(value.text),
        (FieldKind::Uuid, _) => match uuid::Uuid::parse_str(&value.text) {
            Ok(u) => SqlValue::Uuid(u),
            Err(_) => return Err(bad_value(&value, "a UUID")),
        },
        (FieldKind::Integer, _) => match value.text.parse::<i64>() {
            Ok(i) => SqlValue::Integer(i),
            Err(_) => return Err(bad_value(&value, "a 64-bit integer")),
        },
        (FieldKind::Bool, _) => match value.text.to_ascii_lowercase().as_str() {
            "true" => SqlValue::Bool(true),
            "false" => SqlValue::Bool(false),
            _ => return Err(bad_value(&value, "true or false")),
        },
        (FieldKind::Timestamp, _) => match chrono::DateTime::parse_from_rfc3339(&value.text) {
            Ok(t) => SqlValue::Timestamp(t.to_utc()),
            Err(_) => {
                return Err(bad_value(&value, "an RFC 3339 timestamp such as 2024-01-02T03:04:05Z"));
            }
        },
        (FieldKind::Enum { prefix, values }, _) => SqlValue::Text(enum_value(field, prefix, values, &value)?),
    };
    Ok(Predicate::Compare { column, op: sql_op(op), value: sql_value })
}

fn bad_value(value: &Value, expected: &str) -> FilterError {
    FilterError::new(value.pos, format!("expected {expected}, found '{}'", value.text))
}

/// Resolves `CUSTOMER`, `customer`, `LIFECYCLE_STAGE_CUSTOMER`, ... to `CUSTOMER`.
fn enum_value(
    field: &Field,
    prefix: &str,
    values: &[&'static str],
    value: &Value,
) -> Result<String, FilterError> {
    let input = value.text.as_str();
    let unprefixed = strip_prefix_ignore_case(input, prefix).map(|rest| {
        if prefix.ends_with('_') || prefix.is_empty() { rest } else { rest.strip_prefix('_').unwrap_or(rest) }
    });
    let found = values.iter().find(|v| {
        v.eq_ignore_ascii_case(input) || unprefixed.is_some_and(|rest| v.eq_ignore_ascii_case(rest))
    });
    match found {
        Some(v) => Ok((*v).to_owned()),
        None => Err(FilterError::new(
            value.pos,
            format!(
                "unknown value '{input}' for field '{}'; allowed values: {}",
                field.name,
                values.join(", ")
            ),
        )),
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) { s.get(prefix.len()..) } else { None }
}

/// Renders `expr` with placeholders numbered from `first`.
pub(super) fn render(expr: &Expr, first: usize) -> SqlFilter {
    let mut out = SqlFilter { sql: String::new(), params: Vec::new() };
    render_into(expr, first, &mut out);
    out
}

fn render_into(expr: &Expr, first: usize, out: &mut SqlFilter) {
    match expr {
        Expr::And(items) | Expr::Or(items) => {
            let joiner = if matches!(expr, Expr::And(_)) { " AND " } else { " OR " };
            out.sql.push('(');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.sql.push_str(joiner);
                }
                render_into(item, first, out);
            }
            out.sql.push(')');
        }
        Expr::Not(inner) => {
            out.sql.push('(');
            render_into(inner, first, out);
            out.sql.push_str(" IS NOT TRUE)");
        }
        Expr::Pred(p) => render_predicate(p, first, out),
    }
}

/// Appends `$n::cast` for `value` and records the parameter.
fn placeholder(value: SqlValue, first: usize, out: &mut SqlFilter) -> String {
    let cast = match value {
        SqlValue::Text(_) => "text",
        SqlValue::Uuid(_) => "uuid",
        SqlValue::Integer(_) => "bigint",
        SqlValue::Bool(_) => "boolean",
        SqlValue::Timestamp(_) => "timestamptz",
        SqlValue::TextArray(_) => "text[]",
    };
    let n = first.saturating_add(out.params.len());
    out.params.push(value);
    format!("${n}::{cast}")
}

fn render_predicate(p: &Predicate, first: usize, out: &mut SqlFilter) {
    // Writing to a String cannot fail.
    let _ = match p {
        Predicate::Compare { column, op, value } => {
            let ph = placeholder(value.clone(), first, out);
            write!(out.sql, "({column} {op} {ph})")
        }
        Predicate::NotLike { column, pattern } => {
            let ph = placeholder(SqlValue::Text(pattern.clone()), first, out);
            write!(out.sql, "({column} IS NULL OR {column} NOT LIKE {ph})")
        }
        Predicate::HasElement { column, element } => {
            let ph = placeholder(element.clone(), first, out);
            write!(out.sql, "({column} @> ARRAY[{ph}])")
        }
        Predicate::Present { column, kind } => match kind {
            Presence::Text => write!(out.sql, "({column} IS NOT NULL AND length({column}) > 0)"),
            Presence::Array => write!(out.sql, "(COALESCE(cardinality({column}), 0) > 0)"),
            Presence::NotNull => write!(out.sql, "({column} IS NOT NULL)"),
        },
    };
}
