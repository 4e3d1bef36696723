//! The gRPC adapter: extract, call the domain and store, convert back.
//! One file per resource; this file only routes trait methods to them.

mod activities;
mod assignment;
mod companies;
mod consent;
mod contacts;
mod duplicates;
mod lifecycle;
mod query;
mod scoring;
mod search;
mod timeline;

use std::sync::Arc;

use rapport_kit::changelog::{Feed, FeedReads, WatchStream};
use rapport_proto::contacts::v1::activity_service_server::ActivityService;
use rapport_proto::contacts::v1::assignment_service_server::AssignmentService;
use rapport_proto::contacts::v1::consent_service_server::ConsentService;
use rapport_proto::contacts::v1::contact_service_server::ContactService;
use rapport_proto::contacts::v1::lifecycle_service_server::LifecycleService;
use rapport_proto::contacts::v1::scoring_service_server::ScoringService;
use rapport_proto::contacts::v1::*;
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::cache::Caches;
use crate::error::Error;
use rapport_kit::cache::TwoTier;

/// What every handler needs.
pub struct State {
    /// The service's database pool.
    pub pool: PgPool,
    /// Hot-record caches.
    pub caches: Caches,
    /// The change feed.
    pub feed: Feed,
    /// The service's settings (the clock and the task reminder delay).
    pub config: crate::Config,
}

impl State {
    /// After a write of `id` that may have committed: drop its cached
    /// copies everywhere and wake the change streams. Refused writes
    /// (validation, etag, not found) cost nothing.
    async fn written<V, T>(&self, cache: &TwoTier<V>, id: &str, result: &std::result::Result<T, Error>)
    where
        V: prost::Message + Default + Send + Sync + 'static,
    {
        self.feed.written_after(result, cache.invalidate(id)).await;
    }

    /// After an activity write: drop the cached copies of the contacts and
    /// companies whose last activity time it moved, then wake the streams.
    async fn activity_written(&self, result: &std::result::Result<crate::store::activities::Written, Error>) {
        let touched = result.as_ref().map(|written| written.touched.clone()).unwrap_or_default();
        let drop_cached = async {
            self.caches.drop_contacts(&touched.contacts).await;
            for id in &touched.companies {
                self.caches.companies.invalidate(&id.to_string()).await;
            }
        };
        self.feed.written_after(result, drop_cached).await;
    }
}

/// The next page's token of a page ordered by time then id, ending at
/// `last`; empty on the last page.
fn time_page_token(
    fingerprint: &str,
    more: bool,
    last: Option<(chrono::DateTime<chrono::Utc>, uuid::Uuid)>,
) -> String {
    match last {
        Some((time, id)) if more => rapport_kit::paging::encode_token(
            fingerprint,
            rapport_kit::paging::Cursor { value: rapport_kit::listing::time_value(time), id },
        ),
        _ => String::new(),
    }
}

/// Whether a create by `actor` naming `owner_id` is handed out by the
/// assignment rules: no owner given, and the caller is not a sales rep or
/// manager (whose creates default to themselves).
fn assignable(actor: &rapport_kit::auth::Principal, owner_id: &str) -> bool {
    use rapport_kit::auth::Role;
    owner_id.trim().is_empty() && !actor.has(Role::SalesRep) && !actor.has(Role::SalesManager)
}

/// The ContactService implementation, over the shared [`State`].
#[derive(Clone)]
pub struct Api {
    pub state: Arc<State>,
}

type Result<T> = std::result::Result<Response<T>, Status>;

#[tonic::async_trait]
impl ContactService for Api {
    async fn create_contact(&self, request: Request<CreateContactRequest>) -> Result<Contact> {
        contacts::create(&self.state, request).await
    }

    async fn get_contact(&self, request: Request<GetContactRequest>) -> Result<Contact> {
        contacts::get(&self.state, request).await
    }

    async fn batch_get_contacts(
        &self,
        request: Request<BatchGetContactsRequest>,
    ) -> Result<BatchGetContactsResponse> {
        contacts::batch_get(&self.state, request).await
    }

    async fn update_contact(&self, request: Request<UpdateContactRequest>) -> Result<Contact> {
        contacts::update(&self.state, request).await
    }

    async fn delete_contact(&self, request: Request<DeleteContactRequest>) -> Result<Contact> {
        let (id, etag) = (request.get_ref().id.clone(), request.get_ref().etag.clone());
        contacts::set_deleted(&self.state, &request, &id, &etag, true).await
    }

    async fn undelete_contact(&self, request: Request<UndeleteContactRequest>) -> Result<Contact> {
        let (id, etag) = (request.get_ref().id.clone(), request.get_ref().etag.clone());
        contacts::set_deleted(&self.state, &request, &id, &etag, false).await
    }

    async fn list_contacts(&self, request: Request<ListContactsRequest>) -> Result<ListContactsResponse> {
        contacts::list(&self.state, request).await
    }

    async fn search_contacts(
        &self,
        request: Request<SearchContactsRequest>,
    ) -> Result<SearchContactsResponse> {
        search::contacts(&self.state, request).await
    }

    async fn find_duplicates(
        &self,
        request: Request<FindDuplicatesRequest>,
    ) -> Result<FindDuplicatesResponse> {
        duplicates::find(&self.state, request).await
    }

    async fn create_company(&self, request: Request<CreateCompanyRequest>) -> Result<Company> {
        companies::create(&self.state, request).await
    }

    async fn get_company(&self, request: Request<GetCompanyRequest>) -> Result<Company> {
        companies::get(&self.state, request).await
    }

    async fn update_company(&self, request: Request<UpdateCompanyRequest>) -> Result<Company> {
        companies::update(&self.state, request).await
    }

    async fn delete_company(&self, request: Request<DeleteCompanyRequest>) -> Result<Company> {
        let (id, etag) = (request.get_ref().id.clone(), request.get_ref().etag.clone());
        companies::set_deleted(&self.state, &request, &id, &etag, true).await
    }

    async fn undelete_company(&self, request: Request<UndeleteCompanyRequest>) -> Result<Company> {
        let (id, etag) = (request.get_ref().id.clone(), request.get_ref().etag.clone());
        companies::set_deleted(&self.state, &request, &id, &etag, false).await
    }

    async fn list_companies(&self, request: Request<ListCompaniesRequest>) -> Result<ListCompaniesResponse> {
        companies::list(&self.state, request).await
    }

    async fn search_companies(
        &self,
        request: Request<SearchCompaniesRequest>,
    ) -> Result<SearchCompaniesResponse> {
        search::companies(&self.state, request).await
    }

    type WatchChangesStream = WatchStream<WatchChangesResponse>;

    async fn watch_changes(&self, request: Request<WatchChangesRequest>) -> Result<Self::WatchChangesStream> {
        let policies = crate::policy::policies();
        let reads = FeedReads { reads: crate::policy::FEED_READS, policies: &policies };
        let only_mine = request.get_ref().only_mine;
        self.state
            .feed
            .serve_visible(request, &reads, |principal| only_mine.then(|| activities::owned_by(principal)))
    }
}

#[tonic::async_trait]
impl ActivityService for Api {
    async fn log_activity(&self, request: Request<LogActivityRequest>) -> Result<Activity> {
        activities::log(&self.state, request).await
    }

    async fn get_activity(&self, request: Request<GetActivityRequest>) -> Result<Activity> {
        activities::get(&self.state, request).await
    }

    async fn update_activity(&self, request: Request<UpdateActivityRequest>) -> Result<Activity> {
        activities::update(&self.state, request).await
    }

    async fn delete_activity(&self, request: Request<DeleteActivityRequest>) -> Result<Activity> {
        let (id, etag) = (request.get_ref().id.clone(), request.get_ref().etag.clone());
        activities::set_deleted(&self.state, &request, &id, &etag, true).await
    }

    async fn undelete_activity(&self, request: Request<UndeleteActivityRequest>) -> Result<Activity> {
        let (id, etag) = (request.get_ref().id.clone(), request.get_ref().etag.clone());
        activities::set_deleted(&self.state, &request, &id, &etag, false).await
    }

    async fn list_activities(
        &self,
        request: Request<ListActivitiesRequest>,
    ) -> Result<ListActivitiesResponse> {
        activities::list(&self.state, request).await
    }

    async fn complete_task(&self, request: Request<CompleteTaskRequest>) -> Result<Activity> {
        let (id, etag) = (request.get_ref().id.clone(), request.get_ref().etag.clone());
        activities::set_completed(&self.state, &request, &id, &etag, true).await
    }

    async fn reopen_task(&self, request: Request<ReopenTaskRequest>) -> Result<Activity> {
        let (id, etag) = (request.get_ref().id.clone(), request.get_ref().etag.clone());
        activities::set_completed(&self.state, &request, &id, &etag, false).await
    }

    async fn list_my_tasks(&self, request: Request<ListMyTasksRequest>) -> Result<ListMyTasksResponse> {
        activities::my_tasks(&self.state, request).await
    }

    async fn get_timeline(&self, request: Request<GetTimelineRequest>) -> Result<GetTimelineResponse> {
        timeline::get(&self.state, request).await
    }
}

#[tonic::async_trait]
impl AssignmentService for Api {
    async fn set_team_member(&self, request: Request<SetTeamMemberRequest>) -> Result<TeamMember> {
        assignment::set_member(&self.state, request).await
    }

    async fn remove_team_member(&self, request: Request<RemoveTeamMemberRequest>) -> Result<TeamMember> {
        assignment::remove_member(&self.state, request).await
    }

    async fn list_team_members(
        &self,
        request: Request<ListTeamMembersRequest>,
    ) -> Result<ListTeamMembersResponse> {
        assignment::members(&self.state, request).await
    }

    async fn create_assignment_rule(
        &self,
        request: Request<CreateAssignmentRuleRequest>,
    ) -> Result<AssignmentRule> {
        assignment::create_rule(&self.state, request).await
    }

    async fn update_assignment_rule(
        &self,
        request: Request<UpdateAssignmentRuleRequest>,
    ) -> Result<AssignmentRule> {
        assignment::update_rule(&self.state, request).await
    }

    async fn delete_assignment_rule(
        &self,
        request: Request<DeleteAssignmentRuleRequest>,
    ) -> Result<AssignmentRule> {
        assignment::delete_rule(&self.state, request).await
    }

    async fn list_assignment_rules(
        &self,
        request: Request<ListAssignmentRulesRequest>,
    ) -> Result<ListAssignmentRulesResponse> {
        assignment::rules(&self.state, request).await
    }

    async fn list_assignments(
        &self,
        request: Request<ListAssignmentsRequest>,
    ) -> Result<ListAssignmentsResponse> {
        assignment::assignments(&self.state, request).await
    }
}

#[tonic::async_trait]
impl ConsentService for Api {
    async fn record_consent(&self, request: Request<RecordConsentRequest>) -> Result<ConsentEvent> {
        consent::record(&self.state, request).await
    }

    async fn get_consent(&self, request: Request<GetConsentRequest>) -> Result<ContactConsent> {
        consent::get(&self.state, request).await
    }

    async fn list_consent_history(
        &self,
        request: Request<ListConsentHistoryRequest>,
    ) -> Result<ListConsentHistoryResponse> {
        consent::history(&self.state, request).await
    }

    async fn set_do_not_contact(&self, request: Request<SetDoNotContactRequest>) -> Result<ContactConsent> {
        consent::set_do_not_contact(&self.state, request).await
    }
}

#[tonic::async_trait]
impl ScoringService for Api {
    async fn create_scoring_rule(&self, request: Request<CreateScoringRuleRequest>) -> Result<ScoringRule> {
        scoring::create(&self.state, request).await
    }

    async fn update_scoring_rule(&self, request: Request<UpdateScoringRuleRequest>) -> Result<ScoringRule> {
        scoring::update(&self.state, request).await
    }

    async fn delete_scoring_rule(&self, request: Request<DeleteScoringRuleRequest>) -> Result<ScoringRule> {
        scoring::delete(&self.state, request).await
    }

    async fn list_scoring_rules(
        &self,
        request: Request<ListScoringRulesRequest>,
    ) -> Result<ListScoringRulesResponse> {
        scoring::list(&self.state, request).await
    }

    async fn get_scoring_settings(
        &self,
        request: Request<GetScoringSettingsRequest>,
    ) -> Result<ScoringSettings> {
        scoring::settings(&self.state, request).await
    }

    async fn update_scoring_settings(
        &self,
        request: Request<UpdateScoringSettingsRequest>,
    ) -> Result<ScoringSettings> {
        scoring::update_settings(&self.state, request).await
    }

    async fn get_lead_score(&self, request: Request<GetLeadScoreRequest>) -> Result<LeadScore> {
        scoring::lead_score(&self.state, request).await
    }
}

#[tonic::async_trait]
impl LifecycleService for Api {
    async fn set_lifecycle_stage(&self, request: Request<SetLifecycleStageRequest>) -> Result<Contact> {
        lifecycle::set_stage(&self.state, request).await
    }

    async fn reopen_lead(&self, request: Request<ReopenLeadRequest>) -> Result<Contact> {
        lifecycle::reopen(&self.state, request).await
    }

    async fn qualify_lead(&self, request: Request<QualifyLeadRequest>) -> Result<Contact> {
        lifecycle::qualify(&self.state, request).await
    }

    async fn disqualify_lead(&self, request: Request<DisqualifyLeadRequest>) -> Result<Contact> {
        lifecycle::disqualify(&self.state, request).await
    }

    async fn get_lifecycle_history(
        &self,
        request: Request<GetLifecycleHistoryRequest>,
    ) -> Result<GetLifecycleHistoryResponse> {
        lifecycle::history(&self.state, request).await
    }
}
