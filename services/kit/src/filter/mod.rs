//! AIP-160 style list filters compiled to parameterised PostgreSQL.
//!
//! A filter such as
//!
//! ```text
//! lifecycle_stage = CUSTOMER AND (name:"ada" OR tags:vip) AND create_time >= 2024-01-01T00:00:00Z
//! ```
//!
//! is parsed against an allow-list of [`Field`]s and turned into a [`SqlFilter`]: a
//! boolean SQL expression whose values are all bound parameters (`$3::text`, ...).
//! User text is never spliced into the SQL; only the trusted `column` strings of the
//! allow-list and fixed keywords are.
//!
//! # Supported syntax (a subset of <https://google.aip.dev/160>)
//!
//! * Comparisons `field OP value` with `OP` one of `=`, `!=`, `<`, `<=`, `>`, `>=`, `:`.
//!   Which operators a field accepts depends on its [`FieldKind`].
//! * `field:*` tests presence: `column IS NOT NULL` (for [`FieldKind::Text`] also
//!   a non-zero `length`, for [`FieldKind::TextArray`] a non-empty array). Allowed for every kind.
//! * `AND`, `OR`, `NOT` (upper case only), unary `-` as `NOT`, parentheses, and implicit
//!   `AND` by juxtaposition (`a = 1 b = 2`).
//! * Precedence as in AIP-160: `NOT`/`-` binds tightest, then `OR`, then `AND` (explicit
//!   or implicit). So `a AND b OR c` means `a AND (b OR c)`.
//! * Values are bare words (`ada`, `42`, `-7`, `true`, `2024-01-02T03:04:05Z`) or strings
//!   in double or single quotes with backslash escapes (`\"`, `\'`, `\\`, `\*`, `\n`,
//!   `\t`, `\r`; any other escaped character stands for itself). Keywords `AND`, `OR`,
//!   `NOT` must be quoted to be used as values.
//! * A trailing unescaped `*` is a wildcard: with `=` on text it means prefix match
//!   (`name = "ada*"` → `LIKE 'ada%'`), with `!=` the negation of that; with `:` it is
//!   redundant and dropped. Write `\*` inside quotes for a literal trailing star.
//!
//! Bare values without a field (global search), function calls and field traversal
//! are not supported.
//!
//! # NULL semantics
//!
//! `!=` is rendered as `IS DISTINCT FROM`, so rows where the column is NULL match.
//! `NOT x` / `-x` is rendered as `(x IS NOT TRUE)`, so it selects exactly the rows that
//! `x` does not select (including rows where `x` evaluates to NULL).
//!
//! # Limits
//!
//! At most [`MAX_FILTER_CHARS`] characters, [`MAX_DEPTH`] levels of nesting (parentheses
//! and `NOT`s) and [`MAX_COMPARISONS`] comparisons; longer or deeper filters are rejected.
//!
//! # Example
//!
//! ```text
//! let f = filter::parse(&req.filter, CONTACT_FIELDS, 2)?;
//! let mut sql = String::from("SELECT id FROM contacts WHERE tenant_id = $1");
//! if let Some(f) = &f { sql.push_str(" AND "); sql.push_str(&f.sql); }
//! let mut q = sqlx::query_scalar::<_, uuid::Uuid>(&sql).bind(tenant_id);
//! for p in f.map(|f| f.params).unwrap_or_default() { q = filter::bind_scalar(q, p); }
//! ```

mod lexer;
mod parser;
mod sql;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_pg;
#[cfg(test)]
mod tests_syntax;

use sqlx::Postgres;
use sqlx::postgres::PgArguments;
use sqlx::query::{Query, QueryAs, QueryScalar};

/// Maximum length of a filter string, in characters.
pub const MAX_FILTER_CHARS: usize = 2000;
/// Maximum nesting depth: each `(`, `NOT` and `-` opens one level.
pub const MAX_DEPTH: usize = 32;
/// Maximum number of comparisons (`field OP value`) in one filter.
pub const MAX_COMPARISONS: usize = 64;

/// How a filterable field is stored and compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// A text column. `=`/`!=` compare exactly (a trailing `*` in the value makes `=` a
    /// prefix match via `LIKE`, with LIKE metacharacters in the value escaped, and `!=`
    /// its negation); `<`, `<=`, `>`, `>=` compare lexically (column collation); `:` is a
    /// case-insensitive "contains" via `ILIKE` (with `%`, `_` and `\` escaped).
    Text,
    /// A uuid column. The value must parse as a UUID. Only `=`, `!=` and `:*`.
    Uuid,
    /// A bigint-compatible column. `=`, `!=`, `<`, `<=`, `>`, `>=` and `:*`.
    Integer,
    /// A boolean column. Values `true`/`false` (case-insensitive). `=`, `!=` and `:*`.
    Bool,
    /// A timestamptz column. Values are RFC 3339 (`2024-01-02T03:04:05Z`), quoted or not.
    /// `=`, `!=`, `<`, `<=`, `>`, `>=` and `:*`.
    Timestamp,
    /// A text column holding one of `values` (e.g. `"CUSTOMER"`). The filter may write a
    /// value bare (`CUSTOMER`) or with its proto prefix (`LIFECYCLE_STAGE_CUSTOMER`),
    /// case-insensitively; the canonical entry of `values` is what gets bound. `prefix`
    /// may be given with or without its trailing underscore. `=`, `!=` and `:*`.
    Enum {
        /// Proto enum prefix, e.g. `"LIFECYCLE_STAGE_"`; may be empty.
        prefix: &'static str,
        /// The allowed stored values, e.g. `&["LEAD", "CUSTOMER"]`.
        values: &'static [&'static str],
    },
    /// A `text[]` column. Only `:` (has, case-sensitive element match:
    /// `tags:vip` → `col @> ARRAY[$n::text]`, which a GIN index on the
    /// column answers) and `:*` (non-empty array).
    TextArray,
    /// A `uuid[]` column. Only `:` (has: the value must parse as a UUID;
    /// `contact_ids:"…"` → `col @> ARRAY[$n::uuid]`, GIN-indexable) and `:*`.
    UuidArray,
}

/// One entry of the allow-list of filterable fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// The name used in filter strings, e.g. `"display_name"` (matched case-sensitively).
    pub name: &'static str,
    /// The SQL column (or qualified column / trusted expression) it maps to, e.g.
    /// `"c.display_name"`. Inserted into the SQL verbatim, so it must never come from
    /// user input.
    pub column: &'static str,
    /// How the column is stored and which operators apply.
    pub kind: FieldKind,
}

/// A value to bind to one placeholder of a [`SqlFilter`].
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    /// Bound as `text`.
    Text(String),
    /// Bound as `uuid`.
    Uuid(uuid::Uuid),
    /// Bound as `bigint`.
    Integer(i64),
    /// Bound as `boolean`.
    Bool(bool),
    /// Bound as `timestamptz`.
    Timestamp(chrono::DateTime<chrono::Utc>),
    /// Bound as `text[]` (never produced by a parsed filter; read scopes
    /// bind a caller's teams as one).
    TextArray(Vec<String>),
}

/// A compiled filter: a fully parenthesised boolean SQL expression plus its parameters.
///
/// `params[i]` belongs to placeholder `$(first_placeholder + i)`. The expression is
/// wrapped in parentheses, so it can be appended with ` AND ` to an existing `WHERE`.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlFilter {
    /// The SQL boolean expression, e.g. `((c.name = $3::text) OR (c.age > $4::bigint))`.
    pub sql: String,
    /// Values for the placeholders, in placeholder order.
    pub params: Vec<SqlValue>,
}

impl SqlFilter {
    /// `query` with this filter's parameters bound after those it has,
    /// in placeholder order.
    pub fn bind_to<'q, O>(
        self,
        query: QueryAs<'q, Postgres, O, PgArguments>,
    ) -> QueryAs<'q, Postgres, O, PgArguments> {
        self.params.into_iter().fold(query, bind_as)
    }
}

/// A filter that could not be parsed or does not fit the allow-list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid filter at position {position}: {message}")]
pub struct FilterError {
    /// 0-based character (not byte) offset into the filter string.
    pub position: usize,
    /// Human-readable description, safe to return to API clients.
    pub message: String,
}

impl FilterError {
    fn new(position: usize, message: impl Into<String>) -> Self {
        Self { position, message: message.into() }
    }
}

/// Parses `filter` against the allow-list `fields`.
///
/// Returns `Ok(None)` for an empty or whitespace-only filter. Placeholders are numbered
/// from `first_placeholder` (`$3`, `$4`, ... when it is 3); a value of 0 is treated as 1.
pub fn parse(
    filter: &str,
    fields: &[Field],
    first_placeholder: usize,
) -> Result<Option<SqlFilter>, FilterError> {
    let chars: Vec<char> = filter.chars().collect();
    if chars.len() > MAX_FILTER_CHARS {
        return Err(FilterError::new(
            MAX_FILTER_CHARS,
            format!("filter is too long (maximum {MAX_FILTER_CHARS} characters)"),
        ));
    }
    if chars.iter().all(|c| c.is_whitespace()) {
        return Ok(None);
    }
    let expr = parser::parse(chars, fields)?;
    Ok(Some(sql::render(&expr, first_placeholder.max(1))))
}

/// Binds one filter parameter onto a `sqlx::query(...)`.
///
/// Use as `for p in f.params { q = filter::bind(q, p) }`.
pub fn bind<'q>(q: Query<'q, Postgres, PgArguments>, v: SqlValue) -> Query<'q, Postgres, PgArguments> {
    match v {
        SqlValue::Text(s) => q.bind(s),
        SqlValue::Uuid(u) => q.bind(u),
        SqlValue::Integer(i) => q.bind(i),
        SqlValue::Bool(b) => q.bind(b),
        SqlValue::Timestamp(t) => q.bind(t),
        SqlValue::TextArray(a) => q.bind(a),
    }
}

/// Binds one filter parameter onto a `sqlx::query_as(...)`.
pub fn bind_as<'q, O>(
    q: QueryAs<'q, Postgres, O, PgArguments>,
    v: SqlValue,
) -> QueryAs<'q, Postgres, O, PgArguments> {
    match v {
        SqlValue::Text(s) => q.bind(s),
        SqlValue::Uuid(u) => q.bind(u),
        SqlValue::Integer(i) => q.bind(i),
        SqlValue::Bool(b) => q.bind(b),
        SqlValue::Timestamp(t) => q.bind(t),
        SqlValue::TextArray(a) => q.bind(a),
    }
}

/// Binds one filter parameter onto a `sqlx::query_scalar(...)`.
pub fn bind_scalar<'q, O>(
    q: QueryScalar<'q, Postgres, O, PgArguments>,
    v: SqlValue,
) -> QueryScalar<'q, Postgres, O, PgArguments> {
    match v {
        SqlValue::Text(s) => q.bind(s),
        SqlValue::Uuid(u) => q.bind(u),
        SqlValue::Integer(i) => q.bind(i),
        SqlValue::Bool(b) => q.bind(b),
        SqlValue::Timestamp(t) => q.bind(t),
        SqlValue::TextArray(a) => q.bind(a),
    }
}
