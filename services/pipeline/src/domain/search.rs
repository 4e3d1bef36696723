//! A SearchDeals query: 1-200 characters of free text, parsed into words
//! that each must match a word, or the start of a word, of the deal.

use super::Violation;

/// The longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 200;

/// A parsed search query: lowercase words of letters and digits only, so
/// the tsquery text built from them never carries a tsquery operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    words: Vec<String>,
}

impl SearchQuery {
    /// Splits `raw` at every character that is not a letter or a digit
    /// (spaces, punctuation and the tsquery operators `& | ! ( ) : * < >`
    /// alike). A query without any word is refused.
    pub fn parse(field: &str, raw: &str) -> Result<SearchQuery, Violation> {
        let trimmed = rapport_kit::fields::text(field, raw, true, MAX_QUERY_CHARS)?;
        let mut words: Vec<String> = Vec::new();
        for word in trimmed.split(|c: char| !c.is_alphanumeric()).filter(|word| !word.is_empty()) {
            let word = word.to_lowercase();
            if !words.contains(&word) {
                words.push(word);
            }
        }
        if words.is_empty() {
            return Err(Violation::new(field, "must contain a word (letters or digits)"));
        }
        Ok(SearchQuery { words })
    }

    /// The text for `to_tsquery('simple', …)`: every word as a prefix,
    /// all required (`acme:* & renewal:*`). Bound as a parameter.
    pub fn tsquery(&self) -> String {
        self.words.iter().map(|word| format!("{word}:*")).collect::<Vec<_>>().join(" & ")
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
        assert_eq!(tsquery("  Acme Renew ").unwrap(), "acme:* & renew:*");
        assert_eq!(tsquery("acme ACME").unwrap(), "acme:*");
        assert_eq!(tsquery("Zürich 2026").unwrap(), "zürich:* & 2026:*");
    }

    #[test]
    fn operators_are_stripped() {
        assert_eq!(tsquery("a&b | !c:* (d) <-> 'e'").unwrap(), "a:* & b:* & c:* & d:* & e:*");
        assert!(tsquery("&|!():*").is_err());
    }

    #[test]
    fn length_is_checked() {
        assert!(tsquery("").is_err());
        assert!(tsquery("   ").is_err());
        assert!(tsquery(&"a".repeat(200)).is_ok());
        assert!(tsquery(&"a".repeat(201)).is_err());
    }
}
