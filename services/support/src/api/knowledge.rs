//! `KnowledgeService`: see `proto/rapport/support/v1/knowledge.proto`.

use rapport_kit::auth::{self, Principal, Role};
use rapport_kit::fields::{Violation, long_text, text};
use rapport_kit::search::SearchQuery;
use rapport_proto::support::v1::knowledge_service_server::KnowledgeService;
use rapport_proto::support::v1::*;
use tonic::{Request, Response, Status};

use super::Api;
use crate::convert::article_to_proto;
use crate::domain::ids::{ArticleId, CaseId};
use crate::error::Error;
use crate::store::articles::{self as store, ArticleInput};

type Result<T> = std::result::Result<Response<T>, Status>;

/// Support staff read drafts and archived articles.
fn staff(principal: &Principal) -> bool {
    [Role::Admin, Role::SupportAgent, Role::SupportManager].iter().any(|role| principal.has(*role))
}

fn status_name(status: i32) -> std::result::Result<&'static str, Violation> {
    match ArticleStatus::try_from(status) {
        Ok(ArticleStatus::Unspecified | ArticleStatus::Draft) => Ok("DRAFT"),
        Ok(ArticleStatus::Published) => Ok("PUBLISHED"),
        Ok(ArticleStatus::Archived) => Ok("ARCHIVED"),
        Err(_) => Err(Violation::new("article.status", "is not an article status")),
    }
}

fn parse(article: &Article) -> std::result::Result<ArticleInput, Error> {
    let mut violations = Vec::new();
    let title =
        text("article.title", &article.title, true, 300).map_err(|v| violations.push(v)).unwrap_or_default();
    let body = long_text("article.body", &article.body, false, 200_000)
        .map_err(|v| violations.push(v))
        .unwrap_or_default();
    let tags = crate::domain::case::tags(&article.tags)
        .map_err(|v| violations.push(Violation::new(v.field.replacen("case.", "article.", 1), v.description)))
        .unwrap_or_default();
    let status = status_name(article.status).map_err(|v| violations.push(v)).unwrap_or("DRAFT");
    if violations.is_empty() {
        Ok(ArticleInput { title, body, tags, status })
    } else {
        Err(Error::from(violations))
    }
}

fn article_id(field: &str, raw: &str) -> std::result::Result<uuid::Uuid, Error> {
    Ok(ArticleId::parse(field, raw)?.uuid())
}

#[tonic::async_trait]
impl KnowledgeService for Api {
    async fn create_article(&self, request: Request<CreateArticleRequest>) -> Result<Article> {
        let author = auth::principal(&request)?.subject.clone();
        let input = parse(&request.into_inner().article.unwrap_or_default())?;
        let row = store::create(&self.state.pool, &input, &author, self.state.ctx().now).await?;
        Ok(Response::new(article_to_proto(&row)))
    }

    async fn get_article(&self, request: Request<GetArticleRequest>) -> Result<Article> {
        let staff = staff(auth::principal(&request)?);
        let id = article_id("id", &request.get_ref().id)?;
        Ok(Response::new(article_to_proto(&store::get(&self.state.pool, id, staff).await?)))
    }

    async fn update_article(&self, request: Request<UpdateArticleRequest>) -> Result<Article> {
        let author = auth::principal(&request)?.subject.clone();
        let article = request.into_inner().article.unwrap_or_default();
        let id = article_id("article.id", &article.id)?;
        let input = parse(&article)?;
        let row = store::update(&self.state.pool, (id, &article.etag), &input, &author, self.state.ctx().now)
            .await?;
        Ok(Response::new(article_to_proto(&row)))
    }

    async fn list_articles(&self, request: Request<ListArticlesRequest>) -> Result<ListArticlesResponse> {
        let staff = staff(auth::principal(&request)?);
        let request = request.into_inner();
        let status = match status_name(request.status).map_err(Error::from)? {
            "DRAFT" if request.status == 0 => "PUBLISHED",
            "PUBLISHED" => "PUBLISHED",
            other if staff => other,
            _ => {
                return Err(Error::from(Violation::new(
                    "status",
                    "only support staff list drafts and archived articles",
                ))
                .into());
            }
        };
        let tag = text("tag", &request.tag, false, 50).map_err(Error::from)?;
        let (rows, next_page_token) =
            store::list(&self.state.pool, status, &tag, (request.page_size, &request.page_token)).await?;
        Ok(Response::new(ListArticlesResponse {
            articles: rows.iter().map(article_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn list_article_revisions(
        &self,
        request: Request<ListArticleRevisionsRequest>,
    ) -> Result<ListArticleRevisionsResponse> {
        let staff = staff(auth::principal(&request)?);
        let id = article_id("id", &request.get_ref().id)?;
        let rows = store::revisions(&self.state.pool, id, staff).await?;
        Ok(Response::new(ListArticleRevisionsResponse {
            revisions: rows.iter().map(article_to_proto).collect(),
        }))
    }

    async fn search_articles(
        &self,
        request: Request<SearchArticlesRequest>,
    ) -> Result<SearchArticlesResponse> {
        let request = request.into_inner();
        let query = SearchQuery::parse("query", &request.query).map_err(Error::from)?;
        let (rows, next_page_token) =
            store::search(&self.state.pool, &query, (request.page_size, &request.page_token)).await?;
        Ok(Response::new(SearchArticlesResponse {
            articles: rows.iter().map(article_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn suggest_articles(
        &self,
        request: Request<SuggestArticlesRequest>,
    ) -> Result<SuggestArticlesResponse> {
        let request = request.into_inner();
        let case_id = CaseId::parse("case_id", &request.case_id).map_err(Error::from)?;
        let limit = rapport_kit::paging::page_size(request.page_size, 5, 20).map_err(Error::from)?;
        let rows =
            store::suggest(&self.state.pool, case_id.uuid(), i64::from(limit), self.state.ctx().now).await?;
        Ok(Response::new(SuggestArticlesResponse { articles: rows.iter().map(article_to_proto).collect() }))
    }

    async fn use_suggestion(&self, request: Request<UseSuggestionRequest>) -> Result<UseSuggestionResponse> {
        let by = auth::principal(&request)?.subject.clone();
        let request = request.into_inner();
        let case_id = CaseId::parse("case_id", &request.case_id).map_err(Error::from)?;
        let id = article_id("article_id", &request.article_id)?;
        let used =
            store::use_suggestion(&self.state.pool, case_id.uuid(), id, &by, self.state.ctx().now).await?;
        Ok(Response::new(UseSuggestionResponse { use_time: Some(rapport_kit::changelog::timestamp(used)) }))
    }

    async fn vote_article(&self, request: Request<VoteArticleRequest>) -> Result<Article> {
        let voter = auth::principal(&request)?.subject.clone();
        let request = request.into_inner();
        let id = article_id("id", &request.id)?;
        Ok(Response::new(article_to_proto(
            &store::vote(&self.state.pool, id, &voter, request.helpful).await?,
        )))
    }
}
