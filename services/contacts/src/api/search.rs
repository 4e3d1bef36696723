//! SearchContacts and SearchCompanies: one query shape, offset paging
//! within the ranked matches, and the mode (words as typed, or corrected)
//! fixed by the first page and carried in the page token.

use rapport_kit::error::Problem;
use rapport_kit::paging::{self, Cursor};
use rapport_proto::contacts::v1::*;
use tonic::{Request, Response, Status};

use super::State;
use crate::convert;
use crate::domain::search::SearchQuery;
use crate::error::Error;
use crate::store::search::{RANKED_MATCHES, SearchMode};
use crate::store::{companies, contacts};

type Result<T> = std::result::Result<Response<T>, Status>;

pub async fn contacts(
    state: &State,
    request: Request<SearchContactsRequest>,
) -> Result<SearchContactsResponse> {
    let request = request.into_inner();
    let page = Page::parse("contacts", &request.query, request.page_size, &request.page_token)?;
    let (hits, mode) = contacts::search(&state.pool, &page.query, page.window(), page.mode).await?;
    let next_page_token = page.next_token(mode, hits.len());
    let results = hits
        .into_iter()
        .take(page.size as usize)
        .map(|(record, score)| SearchContactsResult {
            contact: Some(convert::contact_to_proto(&record)),
            score,
        })
        .collect();
    Ok(Response::new(SearchContactsResponse { results, next_page_token }))
}

pub async fn companies(
    state: &State,
    request: Request<SearchCompaniesRequest>,
) -> Result<SearchCompaniesResponse> {
    let request = request.into_inner();
    let page = Page::parse("companies", &request.query, request.page_size, &request.page_token)?;
    let (hits, mode) = companies::search(&state.pool, &page.query, page.window(), page.mode).await?;
    let next_page_token = page.next_token(mode, hits.len());
    let results = hits
        .into_iter()
        .take(page.size as usize)
        .map(|(record, score)| SearchCompaniesResult {
            company: Some(convert::company_to_proto(&record)),
            score,
        })
        .collect();
    Ok(Response::new(SearchCompaniesResponse { results, next_page_token }))
}

/// One requested page of a search.
struct Page {
    query: SearchQuery,
    size: u32,
    /// The first page's mode; `None` on a first page.
    mode: Option<SearchMode>,
    offset: u32,
    fingerprint: String,
}

impl Page {
    fn parse(kind: &str, query: &str, page_size: i32, page_token: &str) -> std::result::Result<Self, Status> {
        let query = SearchQuery::parse("query", query).map_err(Error::from)?;
        let size = paging::page_size(page_size, 20, 100).map_err(Error::from)?;
        let fingerprint = paging::fingerprint(&["search", kind, query.text()]);
        let (mode, offset) = match paging::decode_token(page_token, &fingerprint)? {
            Some(cursor) => position(&cursor.value).ok_or_else(|| {
                Error::from(Problem::invalid_field("INVALID_PAGE_TOKEN", "page_token", "is corrupt"))
            })?,
            None => (None, 0),
        };
        Ok(Self { query, size, mode, offset, fingerprint })
    }

    /// Limit (one more than the page, to know whether another follows) and
    /// offset.
    fn window(&self) -> (u32, u32) {
        (self.size + 1, self.offset)
    }

    /// The token of the next page, or empty when `found` (of the window)
    /// was the last or the ranked matches end.
    fn next_token(&self, mode: SearchMode, found: usize) -> String {
        let next = self.offset + self.size;
        if found <= self.size as usize || next >= RANKED_MATCHES {
            return String::new();
        }
        let value = format!("{}:{next}", mode_name(mode));
        paging::encode_token(&self.fingerprint, Cursor { value, id: uuid::Uuid::nil() })
    }
}

fn mode_name(mode: SearchMode) -> &'static str {
    match mode {
        SearchMode::Words => "words",
        SearchMode::Typos => "typos",
    }
}

/// The mode and offset a search page token carries, e.g. `words:40`.
fn position(value: &str) -> Option<(Option<SearchMode>, u32)> {
    let (mode, offset) = value.split_once(':')?;
    let mode = match mode {
        "words" => SearchMode::Words,
        "typos" => SearchMode::Typos,
        _ => return None,
    };
    let offset: u32 = offset.parse().ok()?;
    (offset < RANKED_MATCHES).then_some((Some(mode), offset))
}
