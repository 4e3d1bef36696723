//! Search queries: the words a query holds and the full-text queries built
//! from them. Pure: the vocabulary lookup that corrects typos is in
//! `store::search`, and it hands its alternatives back here.

use super::Violation;

/// The most words of a query that count (the rest are ignored).
pub const MAX_WORDS: usize = 8;
/// The longest query accepted, in characters (the kit's, as every search).
pub const MAX_QUERY_CHARS: usize = rapport_kit::search::MAX_QUERY_CHARS;
/// The longest word that counts, in characters (the rest is ignored).
const MAX_WORD_CHARS: usize = 50;
/// A query of digits (and phone punctuation) this long searches phone numbers.
const PHONE_DIGITS: usize = 5;

/// A parsed search query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// The query lower-cased and trimmed: matched whole against an email
    /// address or a domain.
    text: String,
    /// Its words: runs of letters, or runs of digits standing alone.
    words: Vec<String>,
}

impl SearchQuery {
    /// Splits `raw` into words (distinct, the first [`MAX_WORDS`], each cut
    /// at 50 characters). Letters and digits glued together
    /// ("garcia42") keep their letters only, as stored email addresses do;
    /// a query of digits and phone punctuation ("+1 (555) 010-2030") is one
    /// word, the phone number's digits.
    pub fn parse(field: &str, raw: &str) -> Result<Self, Violation> {
        let text = rapport_kit::fields::text(field, raw, true, MAX_QUERY_CHARS)?.trim().to_lowercase();
        let words = if is_phone(&text) {
            vec![text.chars().filter(char::is_ascii_digit).collect()]
        } else {
            let mut words: Vec<String> = Vec::new();
            for word in text.split(|c: char| !c.is_alphanumeric()).flat_map(token_words) {
                let word: String = word.chars().take(MAX_WORD_CHARS).collect();
                if !words.contains(&word) && words.len() < MAX_WORDS {
                    words.push(word);
                }
            }
            words
        };
        if words.is_empty() {
            return Err(Violation::new(field, "must contain a letter or digit"));
        }
        Ok(Self { text, words })
    }

    /// The query lower-cased, for an exact email or domain match.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The query's words.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// The full-text query: every word required, each as its known
    /// completions (`smith | smithers`: exact words are cheaper to match
    /// than a prefix), or as a prefix (`smi:*`) when the vocabulary does not
    /// list them all; when `corrected`, with the word's corrections as
    /// alternatives: `(jon:* | john | jones) & (smith | smithers)`.
    /// `expansions[i]` is word `i`'s (missing ones count as none).
    pub fn tsquery(&self, expansions: &[Expansion], corrected: bool) -> String {
        self.words
            .iter()
            .enumerate()
            .map(|(index, word)| {
                let expansion = expansions.get(index);
                let completions = expansion.and_then(|expansion| expansion.completions.as_deref());
                let mut terms: Vec<String> = match completions {
                    Some(known) if !known.is_empty() && known.iter().all(|term| is_plain_word(term)) => {
                        known.to_vec()
                    }
                    _ => vec![format!("{word}:*")],
                };
                let alternatives = match expansion {
                    Some(expansion) if corrected => expansion.alternatives.as_slice(),
                    _ => &[],
                };
                for alternative in alternatives {
                    if is_plain_word(alternative) && !terms.contains(alternative) {
                        terms.push(alternative.clone());
                    }
                }
                if terms.len() == 1 { terms.remove(0) } else { format!("({})", terms.join(" | ")) }
            })
            .collect::<Vec<_>>()
            .join(" & ")
    }

    /// Whether every word may match as typed: a word of two letters or
    /// more that starts no stored word cannot (the vocabulary holds every
    /// such word), so the query needs correcting.
    pub fn may_match_as_typed(&self, expansions: &[Expansion]) -> bool {
        self.words.iter().zip(expansions).all(|(word, expansion)| {
            let typo = word.chars().count() >= 2
                && word.chars().all(char::is_alphabetic)
                && expansion.completions.as_ref().is_some_and(Vec::is_empty);
            !typo
        })
    }
}

/// What the vocabulary says about one query word.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expansion {
    /// Every stored word the query word starts (itself included when
    /// stored); `None` when there are too many to list.
    pub completions: Option<Vec<String>>,
    /// The stored words nearest to it, unless it is stored itself.
    pub alternatives: Vec<String>,
}

/// A word that is safe to splice into a `tsquery` text: letters and
/// digits only (the vocabulary holds nothing else, but it is checked).
fn is_plain_word(word: &str) -> bool {
    !word.is_empty() && word.chars().all(char::is_alphanumeric)
}

/// The words of one token: the token if it is all digits, otherwise its
/// runs of letters.
fn token_words(token: &str) -> Vec<String> {
    if token.is_empty() {
        return Vec::new();
    }
    if token.chars().all(|c| c.is_ascii_digit()) {
        return vec![token.to_owned()];
    }
    token.split(|c: char| !c.is_alphabetic()).filter(|run| !run.is_empty()).map(str::to_owned).collect()
}

/// Whether `text` is a phone number: digits and `+ - ( ) .` and spaces only,
/// with enough digits.
fn is_phone(text: &str) -> bool {
    text.chars().all(|c| c.is_ascii_digit() || " +-().".contains(c))
        && text.chars().filter(char::is_ascii_digit).count() >= PHONE_DIGITS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(raw: &str) -> Vec<String> {
        SearchQuery::parse("query", raw).unwrap().words
    }

    #[test]
    fn words_are_letter_runs_and_lone_numbers() {
        assert_eq!(words("Maria  García"), ["maria", "garcía"]);
        assert_eq!(words("maria.garcia42@acme.com"), ["maria", "garcia", "acme", "com"]);
        assert_eq!(words("suite 42"), ["suite", "42"]);
        assert_eq!(words("+1 (555) 010-2030"), ["15550102030"]);
        assert_eq!(words("a b a c d e f g h i j"), ["a", "b", "c", "d", "e", "f", "g", "h"]);
        assert_eq!(words(&"x".repeat(80)), ["x".repeat(50)]);
    }

    #[test]
    fn a_query_needs_a_letter_or_digit() {
        for raw in ["", "  ", "@@ --", "x".repeat(201).as_str(), "a\0b"] {
            assert!(SearchQuery::parse("query", raw).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn queries_require_every_word() {
        let query = SearchQuery::parse("query", "Jon SMI 42").unwrap();
        assert_eq!(query.text(), "jon smi 42");
        assert_eq!(query.tsquery(&[], false), "jon:* & smi:* & 42:*");
        let words = |list: &[&str]| list.iter().map(|word| word.to_string()).collect::<Vec<_>>();
        let expansions = [
            Expansion { completions: Some(words(&["jones"])), alternatives: words(&["john", "jones"]) },
            Expansion { completions: None, alternatives: words(&["smith", "x'y"]) },
        ];
        assert_eq!(query.tsquery(&expansions, false), "jones & smi:* & 42:*");
        assert_eq!(query.tsquery(&expansions, true), "(jones | john) & (smi:* | smith) & 42:*");
        assert!(query.may_match_as_typed(&expansions));
        let known = [Expansion { completions: Some(words(&["jon", "jonas"])), alternatives: vec![] }];
        assert_eq!(query.tsquery(&known, true), "(jon | jonas) & smi:* & 42:*");
        let unknown =
            [Expansion::default(), Expansion { completions: Some(vec![]), alternatives: words(&["smith"]) }];
        assert!(!query.may_match_as_typed(&unknown));
        assert_eq!(query.tsquery(&unknown, true), "jon:* & (smi:* | smith) & 42:*");
    }
}
