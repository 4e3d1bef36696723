//! Free-text search queries and ranked keyset pages, as every Search RPC
//! reads them (Pipeline's deals, Support's cases and articles).
//!
//! A query is 1-200 characters parsed into words of letters and digits, so
//! the tsquery text built from them never carries a tsquery operator.
//! Results are ranked; pages are keyset on (rank, id), the token carrying
//! the last rank (a `real`, whose text form round-trips exactly) and id,
//! bound to the query's fingerprint.

use crate::fields::Violation;
use crate::paging::{self, Cursor};
use crate::problem::Problem;

/// The longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 200;

/// A parsed search query: lowercase words of letters and digits only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    words: Vec<String>,
}

impl SearchQuery {
    /// Splits `raw` at every character that is not a letter or a digit
    /// (spaces, punctuation and the tsquery operators `& | ! ( ) : * < >`
    /// alike). A query without any word is refused.
    pub fn parse(field: &str, raw: &str) -> Result<SearchQuery, Violation> {
        let trimmed = crate::fields::text(field, raw, true, MAX_QUERY_CHARS)?;
        let words = words_of(&trimmed, usize::MAX);
        if words.is_empty() {
            return Err(Violation::new(field, "must contain a word (letters or digits)"));
        }
        Ok(SearchQuery { words })
    }

    /// A query of the first `max_words` distinct words of `text` (a case's
    /// subject and description, to suggest articles); `None` without any.
    pub fn from_text(text: &str, max_words: usize) -> Option<SearchQuery> {
        let words = words_of(text, max_words);
        (!words.is_empty()).then_some(SearchQuery { words })
    }

    /// The text for `to_tsquery('simple', …)`: every word as a prefix,
    /// all required (`acme:* & renewal:*`). Bound as a parameter.
    pub fn tsquery(&self) -> String {
        self.words.iter().map(|word| format!("{word}:*")).collect::<Vec<_>>().join(" & ")
    }

    /// The text for `to_tsquery(…)` matching any of the words (`a | b`),
    /// for ranking by how much of it a document covers.
    pub fn any_tsquery(&self) -> String {
        self.words.join(" | ")
    }
}

fn words_of(text: &str, max_words: usize) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for word in text.split(|c: char| !c.is_alphanumeric()).filter(|word| !word.is_empty()) {
        let word: String = word.to_lowercase().chars().take(50).collect();
        if !words.contains(&word) {
            words.push(word);
            if words.len() >= max_words {
                break;
            }
        }
    }
    words
}

fn corrupt_token() -> Problem {
    Problem::invalid_argument("INVALID_PAGE_TOKEN", "the page token is corrupt")
        .field("page_token", "the page token is corrupt")
}

/// Where the previous page of a ranked search ended, from `page_token`.
pub fn after(page_token: &str, fingerprint: &str) -> Result<Option<(f32, uuid::Uuid)>, Problem> {
    match paging::decode_token(page_token, fingerprint)? {
        Some(cursor) => Ok(Some((cursor.value.parse::<f32>().map_err(|_| corrupt_token())?, cursor.id))),
        None => Ok(None),
    }
}

/// The token of the page after `last` (rank and id) when `more` follow.
pub fn next_token(fingerprint: &str, last: Option<(f32, uuid::Uuid)>, more: bool) -> String {
    match last {
        Some((rank, id)) if more => paging::encode_token(fingerprint, Cursor { value: rank.to_string(), id }),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tsquery(raw: &str) -> Result<String, Violation> {
        SearchQuery::parse("query", raw).map(|query| query.tsquery())
    }

    #[test]
    fn words_become_required_prefixes() {
        assert_eq!(tsquery("  Acme Renew ").unwrap_or_default(), "acme:* & renew:*");
        assert_eq!(tsquery("acme ACME").unwrap_or_default(), "acme:*");
        assert_eq!(tsquery("Zürich 2026").unwrap_or_default(), "zürich:* & 2026:*");
    }

    #[test]
    fn operators_are_stripped() {
        assert_eq!(tsquery("a&b | !c:* (d) <-> 'e'").unwrap_or_default(), "a:* & b:* & c:* & d:* & e:*");
        assert!(tsquery("&|!():*").is_err());
    }

    #[test]
    fn length_is_checked() {
        assert!(tsquery("").is_err());
        assert!(tsquery("   ").is_err());
        assert!(tsquery(&"a".repeat(200)).is_ok());
        assert!(tsquery(&"a".repeat(201)).is_err());
    }

    #[test]
    fn text_gives_at_most_so_many_words_any_of_which_may_match() {
        let query = SearchQuery::from_text("Printer prints blank pages; printer!", 3);
        assert_eq!(query.map(|query| query.any_tsquery()), Some("printer | prints | blank".to_owned()));
        assert_eq!(SearchQuery::from_text(" ;; ", 3), None);
    }
}
