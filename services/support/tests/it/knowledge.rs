//! The knowledge base and case search: revisions kept, drafts hidden from
//! non-support roles, ranked search, suggestions for a case recorded and
//! marked used, one vote per caller; SearchCases never matches internal
//! notes.

use rapport_kit::auth::Role;
use rapport_proto::support::v1::*;
use tonic::Code;

use crate::common::{TestApp, case, create, reason};

fn article(title: &str, body: &str, status: ArticleStatus) -> Article {
    Article {
        title: title.into(),
        body: body.into(),
        status: status as i32,
        tags: vec!["printing".into()],
        ..Article::default()
    }
}

#[tokio::test]
async fn articles_keep_revisions_hide_drafts_and_answer_cases() {
    let app = TestApp::spawn().await;
    let mut writer = app.clients_as("ann", &[Role::SupportAgent], &[]).knowledge;
    let mut rep = app.clients_as("rep", &[Role::SalesRep], &[]).knowledge;
    let draft = writer
        .create_article(CreateArticleRequest {
            article: Some(article("Printer prints blank pages", "Check the toner.", ArticleStatus::Draft)),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((draft.revision, draft.status()), (1, ArticleStatus::Draft));
    // A draft is for support staff only.
    let hidden = rep.get_article(GetArticleRequest { id: draft.id.clone() }).await.unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);
    let mut published = draft.clone();
    published.status = ArticleStatus::Published as i32;
    published.body = "Check the toner, then clean the drum.".into();
    let published =
        writer.update_article(UpdateArticleRequest { article: Some(published) }).await.unwrap().into_inner();
    assert_eq!(published.revision, 2);
    assert!(published.publish_time.is_some());
    let stale =
        writer.update_article(UpdateArticleRequest { article: Some(draft.clone()) }).await.unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);
    let revisions = rep
        .list_article_revisions(ListArticleRevisionsRequest { id: draft.id.clone() })
        .await
        .unwrap()
        .into_inner();
    let numbers: Vec<i32> = revisions.revisions.iter().map(|revision| revision.revision).collect();
    assert_eq!(numbers, [2, 1]);
    writer
        .create_article(CreateArticleRequest {
            article: Some(article("Scanner jams", "Open the lid.", ArticleStatus::Published)),
        })
        .await
        .unwrap();

    // Search: prefixes, best first; drafts and other words out.
    let found = rep
        .search_articles(SearchArticlesRequest { query: "blank prin".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let titles: Vec<String> = found.articles.into_iter().map(|article| article.title).collect();
    assert_eq!(titles, ["Printer prints blank pages"]);

    // Suggestions for a case from its subject and description.
    let ada = app.requester("ada@example.com").await;
    let asked = Case {
        description: "Every page comes out blank since Monday.".into(),
        ..case("Printer problem", &ada)
    };
    let asked = create(&app.admin(), asked).await.unwrap();
    let mut agent = app.clients_as("bob", &[Role::SupportAgent], &[]).knowledge;
    let suggested = agent
        .suggest_articles(SuggestArticlesRequest { case_id: asked.id.clone(), page_size: 3 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(suggested.articles.first().map(|article| article.id.as_str()), Some(published.id.as_str()));
    let used = agent
        .use_suggestion(UseSuggestionRequest { case_id: asked.id.clone(), article_id: published.id.clone() })
        .await
        .unwrap();
    assert!(used.into_inner().use_time.is_some());
    let other = create(&app.admin(), case("Unrelated", &ada)).await.unwrap();
    let refused = agent
        .use_suggestion(UseSuggestionRequest { case_id: other.id.clone(), article_id: published.id.clone() })
        .await
        .unwrap_err();
    assert_eq!(reason(&refused), "NOT_SUGGESTED");

    // One vote per caller, changeable.
    for helpful in [true, true, false] {
        rep.vote_article(VoteArticleRequest { id: published.id.clone(), helpful }).await.unwrap();
    }
    let voted = agent
        .vote_article(VoteArticleRequest { id: published.id.clone(), helpful: true })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((voted.helpful_votes, voted.not_helpful_votes), (1, 1));
    // Writing is for support staff.
    let denied = rep
        .create_article(CreateArticleRequest { article: Some(article("x", "y", ArticleStatus::Draft)) })
        .await
        .unwrap_err();
    assert_eq!(reason(&denied), "PERMISSION_DENIED_ROLE");
    app.stop().await;
}

#[tokio::test]
async fn case_search_ranks_public_text_and_never_matches_internal_notes() {
    let app = TestApp::spawn().await;
    let ada = app.requester("ada@example.com").await;
    let admin = app.admin();
    let vpn = create(&admin, case("VPN drops every hour", &ada)).await.unwrap();
    let other =
        create(&admin, Case { description: "the vpn client is old".into(), ..case("Laptop slow", &ada) })
            .await
            .unwrap();
    let mut cases = admin.cases.clone();
    for (case_id, internal, body) in
        [(&other.id, true, "secretword in a note"), (&vpn.id, false, "firmware updated")]
    {
        let comment = Comment { internal, body: body.into(), ..Comment::default() };
        cases
            .add_comment(AddCommentRequest {
                case_id: case_id.clone(),
                comment: Some(comment),
                request_id: String::new(),
            })
            .await
            .unwrap();
    }
    let search = |query: &str| SearchCasesRequest { query: query.into(), ..Default::default() };
    let found = cases.search_cases(search("vpn")).await.unwrap().into_inner();
    let subjects: Vec<String> = found.cases.into_iter().map(|case| case.subject).collect();
    assert_eq!(subjects, ["VPN drops every hour", "Laptop slow"], "the subject ranks above the description");
    let found = cases.search_cases(search("firmw")).await.unwrap().into_inner();
    assert_eq!(found.cases.len(), 1);
    let found = cases.search_cases(search("secretword")).await.unwrap().into_inner();
    assert!(found.cases.is_empty(), "internal notes are not searched");
    let bad = cases.search_cases(search("&|!")).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    app.stop().await;
}
