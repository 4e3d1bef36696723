//! Paging: page sizes, `order_by` from an allow-list, and opaque keyset
//! page tokens bound to the query that produced them.
//!
//! A token carries the last row's sort value and id plus a fingerprint of
//! the filter, order and flags; presented with a different query it is
//! rejected with `INVALID_ARGUMENT` instead of silently paging through
//! something else. Tokens are authenticated: an HMAC-SHA256 over the
//! token and the calling principal ([`scoped`]) with the service's key
//! ([`use_keys`]; the first signs, every one verifies, so keys rotate), so
//! a forged or tampered token, or another caller's, is `INVALID_ARGUMENT`
//! `INVALID_PAGE_TOKEN` — never a database error.

use std::future::Future;
use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tonic::Code;

use crate::error::Problem;
use crate::filter::SqlValue;

/// The page size to use: `requested` when positive (capped at `max`),
/// `default` when zero; negative is `INVALID_ARGUMENT`.
pub fn page_size(requested: i32, default: u32, max: u32) -> Result<u32, Problem> {
    match u32::try_from(requested) {
        Ok(0) => Ok(default.min(max)),
        Ok(size) => Ok(size.min(max)),
        Err(_) => Err(Problem::invalid_field("INVALID_PAGE_SIZE", "page_size", "must not be negative")),
    }
}

/// How a sort column's values are compared and carried in tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKind {
    /// `text`.
    Text,
    /// `timestamptz`.
    Timestamp,
    /// `bigint` or `integer`.
    Integer,
}

/// One allowed `order_by` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortKey {
    /// The name clients write in `order_by`.
    pub field: &'static str,
    /// The SQL column (not null) it sorts by.
    pub column: &'static str,
    /// Its kind.
    pub kind: SortKind,
}

/// A parsed `order_by`: one allowed field, ascending or descending, with
/// the row id as tie-breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Order {
    /// The sort key.
    pub key: SortKey,
    /// Descending order.
    pub descending: bool,
}

impl Order {
    /// Parses `field` or `field desc` / `field asc`; empty means `default`
    /// ascending. Unknown fields are `INVALID_ARGUMENT` listing the allowed
    /// ones.
    pub fn parse(order_by: &str, allowed: &[SortKey], default: &str) -> Result<Order, Problem> {
        let words: Vec<&str> = order_by.split_whitespace().collect();
        let (field, descending) = match words.as_slice() {
            [] => (default, false),
            [field] => (*field, false),
            [field, direction] if direction.eq_ignore_ascii_case("desc") => (*field, true),
            [field, direction] if direction.eq_ignore_ascii_case("asc") => (*field, false),
            _ => {
                return Err(Problem::invalid_field(
                    "INVALID_ORDER_BY",
                    "order_by",
                    "expected one field optionally followed by \"desc\", e.g. \"create_time desc\"",
                ));
            }
        };
        let key = allowed.iter().find(|key| key.field == field).copied().ok_or_else(|| {
            let names: Vec<&str> = allowed.iter().map(|key| key.field).collect();
            Problem::invalid_field(
                "INVALID_ORDER_BY",
                "order_by",
                format!("cannot sort by {field:?}; sortable fields: {}", names.join(", ")),
            )
        })?;
        Ok(Order { key, descending })
    }

    /// The `ORDER BY` list, e.g. `family_name DESC, id DESC`.
    pub fn sql(&self) -> String {
        let direction = if self.descending { "DESC" } else { "ASC" };
        format!("{} {direction}, id {direction}", self.key.column)
    }

    /// The keyset condition selecting rows after a cursor, with the cursor's
    /// value and id bound at `$n` and `$n+1`.
    pub fn after_sql(&self, first_placeholder: usize) -> String {
        let operator = if self.descending { "<" } else { ">" };
        let cast = match self.key.kind {
            SortKind::Text => "text",
            SortKind::Timestamp => "timestamptz",
            SortKind::Integer => "bigint",
        };
        format!(
            "({}, id) {operator} (${first_placeholder}::{cast}, ${}::uuid)",
            self.key.column,
            first_placeholder + 1
        )
    }

    /// The string form of this order, for fingerprints.
    pub fn canonical(&self) -> String {
        format!("{} {}", self.key.field, if self.descending { "desc" } else { "asc" })
    }
}

/// Where the previous page ended: the last row's sort value and id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    /// The sort value, as text (RFC 3339 for timestamps).
    pub value: String,
    /// The row id.
    pub id: uuid::Uuid,
}

impl Cursor {
    /// The cursor's sort value as a bind parameter of `kind`.
    pub fn value_param(&self, kind: SortKind) -> Result<SqlValue, Problem> {
        let invalid = || invalid_token("the page token is corrupt");
        match kind {
            SortKind::Text => Ok(SqlValue::Text(self.value.clone())),
            SortKind::Timestamp => chrono::DateTime::parse_from_rfc3339(&self.value)
                .map(|time| SqlValue::Timestamp(time.to_utc()))
                .map_err(|_| invalid()),
            SortKind::Integer => self.value.parse().map(SqlValue::Integer).map_err(|_| invalid()),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Token {
    /// Fingerprint of the query.
    q: String,
    /// The cursor.
    c: Cursor,
}

/// A short fingerprint of everything that defines a query (filter, order,
/// flags), so a token cannot be replayed against another query.
pub fn fingerprint(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hex_prefix(&hasher.finalize())
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes.iter().take(8).map(|byte| format!("{byte:02x}")).collect()
}

/// The keys page tokens are signed with: the first signs, each verifies.
static KEYS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();

tokio::task_local! {
    /// Whose call this is: tokens are bound to it.
    static SCOPE: String;
}

/// Sets the process's page-token keys (the first signs, every one verifies)
/// before the first token is made; later calls change nothing. Without
/// it, a random key of this process is used (tokens then work on this
/// replica only).
pub fn use_keys(keys: Vec<Vec<u8>>) {
    let keys: Vec<Vec<u8>> = keys.into_iter().filter(|key| !key.is_empty()).collect();
    if !keys.is_empty() {
        let _ = KEYS.set(keys);
    }
}

fn keys() -> &'static [Vec<u8>] {
    KEYS.get_or_init(|| vec![rand::random::<[u8; 32]>().to_vec()])
}

/// Runs `call` with its page tokens bound to `caller` (the kit's server
/// does it for every call, with the principal's subject).
pub async fn scoped<F: Future>(caller: String, call: F) -> F::Output {
    SCOPE.scope(caller, call).await
}

fn mac(key: &[u8], payload: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    let scope = SCOPE.try_with(|scope| scope.clone()).unwrap_or_default();
    mac.update(&(scope.len() as u64).to_le_bytes());
    mac.update(scope.as_bytes());
    mac.update(payload);
    mac
}

/// An opaque token for the page after `cursor`.
pub fn encode_token(query_fingerprint: &str, cursor: Cursor) -> String {
    let token = Token { q: query_fingerprint.to_owned(), c: cursor };
    // Serializing a struct of strings cannot fail.
    let json = serde_json::to_vec(&token).unwrap_or_default();
    let tag = mac(&keys()[0], &json).finalize().into_bytes();
    format!("{}.{}", URL_SAFE_NO_PAD.encode(&json), URL_SAFE_NO_PAD.encode(tag))
}

/// The cursor in `token` (`None` for the first page). A corrupt, forged or
/// tampered token, another caller's, or one made for another query is
/// `INVALID_ARGUMENT`.
pub fn decode_token(token: &str, query_fingerprint: &str) -> Result<Option<Cursor>, Problem> {
    if token.is_empty() {
        return Ok(None);
    }
    let foreign = || invalid_token("the page token is not one this service issued to you");
    if token.len() > 4096 {
        return Err(foreign());
    }
    let (payload, tag) = token.split_once('.').ok_or_else(foreign)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).map_err(|_| foreign())?;
    let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| foreign())?;
    if !keys().iter().any(|key| mac(key, &bytes).verify_slice(&tag).is_ok()) {
        return Err(foreign());
    }
    let token: Token = serde_json::from_slice(&bytes)
        .map_err(|_| invalid_token("the page token is not one this service issued"))?;
    if token.q != query_fingerprint {
        return Err(invalid_token(
            "the page token was issued for a different filter, order_by or show_deleted; \
             start again without a page token",
        ));
    }
    Ok(Some(token.c))
}

fn invalid_token(description: &str) -> Problem {
    Problem::new(Code::InvalidArgument, "INVALID_PAGE_TOKEN", description).field("page_token", description)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: &[SortKey] = &[
        SortKey { field: "create_time", column: "create_time", kind: SortKind::Timestamp },
        SortKey { field: "family_name", column: "family_name", kind: SortKind::Text },
    ];

    #[test]
    fn page_sizes_default_cap_and_reject_negatives() {
        assert_eq!(page_size(0, 50, 500).unwrap(), 50);
        assert_eq!(page_size(10, 50, 500).unwrap(), 10);
        assert_eq!(page_size(10_000, 50, 500).unwrap(), 500);
        assert_eq!(page_size(-1, 50, 500).unwrap_err().code(), Code::InvalidArgument);
    }

    #[test]
    fn order_by_is_checked_against_the_allow_list() {
        let order = Order::parse("family_name desc", KEYS, "create_time").unwrap();
        assert_eq!(order.sql(), "family_name DESC, id DESC");
        assert_eq!(order.after_sql(3), "(family_name, id) < ($3::text, $4::uuid)");
        let default = Order::parse("", KEYS, "create_time").unwrap();
        assert_eq!(default.after_sql(1), "(create_time, id) > ($1::timestamptz, $2::uuid)");
        let err = Order::parse("password", KEYS, "create_time").unwrap_err();
        assert_eq!(err.reason(), "INVALID_ORDER_BY");
        assert!(Order::parse("a b c", KEYS, "create_time").is_err());
        assert!(Order::parse("family_name; drop table x", KEYS, "create_time").is_err());
    }

    #[test]
    fn tokens_round_trip_and_are_bound_to_their_query() {
        let query = fingerprint(&["lifecycle_stage = LEAD", "create_time asc", "false"]);
        let cursor = Cursor { value: "2024-01-01T00:00:00Z".into(), id: uuid::Uuid::now_v7() };
        let token = encode_token(&query, cursor.clone());
        assert_eq!(decode_token(&token, &query).unwrap(), Some(cursor));
        assert_eq!(decode_token("", &query).unwrap(), None);

        let other = fingerprint(&["lifecycle_stage = CUSTOMER", "create_time asc", "false"]);
        assert_eq!(decode_token(&token, &other).unwrap_err().reason(), "INVALID_PAGE_TOKEN");
        assert_eq!(decode_token("garbage!", &query).unwrap_err().reason(), "INVALID_PAGE_TOKEN");
        assert_eq!(decode_token("Z2FyYmFnZQ", &query).unwrap_err().reason(), "INVALID_PAGE_TOKEN");
    }

    #[tokio::test]
    async fn tokens_are_authenticated_and_bound_to_their_caller() {
        let query = fingerprint(&["", "create_time asc", "false"]);
        let cursor = Cursor { value: "alice".into(), id: uuid::Uuid::now_v7() };
        let token = scoped("alice".into(), async { encode_token(&query, cursor.clone()) }).await;
        let read = |caller: &str, token: String| {
            let query = query.clone();
            scoped(caller.to_owned(), async move { decode_token(&token, &query) })
        };
        assert_eq!(read("alice", token.clone()).await.unwrap(), Some(cursor.clone()));
        // Another caller's token, a forged one (a valid payload without the
        // key) and a tampered one are all INVALID_PAGE_TOKEN.
        assert_eq!(read("bob", token.clone()).await.unwrap_err().reason(), "INVALID_PAGE_TOKEN");
        let (payload, tag) = token.split_once('.').unwrap();
        let forged = URL_SAFE_NO_PAD
            .encode(br#"{"q":"x","c":{"value":"' OR 1=1","id":"00000000-0000-0000-0000-000000000000"}}"#);
        assert_eq!(
            read("alice", format!("{forged}.{tag}")).await.unwrap_err().reason(),
            "INVALID_PAGE_TOKEN"
        );
        let mut tampered = payload.as_bytes().to_vec();
        tampered[3] ^= 1;
        let tampered = format!("{}.{tag}", String::from_utf8_lossy(&tampered));
        assert_eq!(read("alice", tampered).await.unwrap_err().reason(), "INVALID_PAGE_TOKEN");
        assert_eq!(read("alice", "x".repeat(10_000)).await.unwrap_err().reason(), "INVALID_PAGE_TOKEN");
    }

    #[test]
    fn fingerprints_separate_their_parts() {
        assert_ne!(fingerprint(&["ab", "c"]), fingerprint(&["a", "bc"]));
    }

    #[test]
    fn cursor_values_become_typed_parameters() {
        let cursor = Cursor { value: "12".into(), id: uuid::Uuid::nil() };
        assert_eq!(cursor.value_param(SortKind::Integer).unwrap(), SqlValue::Integer(12));
        assert!(cursor.value_param(SortKind::Timestamp).is_err());
    }
}
