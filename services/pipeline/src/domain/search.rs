//! A SearchDeals query: the kit's search query (1-200 characters of free
//! text, parsed into words that each must match a word, or the start of a
//! word, of the deal).

pub use rapport_kit::search::{MAX_QUERY_CHARS, SearchQuery};
