//! What each scenario sends: a function from a [`Target`] (and its data)
//! to the per-call closure the load generator runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use futures::StreamExt;
use rand::Rng;
use rapport_proto::bench::v1::EchoRequest;
use rapport_proto::bench::v1::echo_service_client::EchoServiceClient;
use rapport_proto::contacts::v1::contact_service_client::ContactServiceClient;
use rapport_proto::contacts::v1::{
    Contact, CreateContactRequest, GetContactRequest, LeadSource, LifecycleStage, ListContactsRequest,
    SearchContactsRequest,
};

use rapport_proto::common::v1::Date;
use rapport_proto::gateway::v1::customer_service_client::CustomerServiceClient;
use rapport_proto::gateway::v1::{Customer360, GetCustomer360Request};
use rapport_proto::pipeline::v1::deal_service_client::DealServiceClient;
use rapport_proto::pipeline::v1::forecast_service_client::ForecastServiceClient;
use rapport_proto::pipeline::v1::{ForecastGrouping, GetForecastRequest, MoveDealStageRequest};

use rapport_proto::support::v1::case_service_client::CaseServiceClient;
use rapport_proto::support::v1::knowledge_service_client::KnowledgeServiceClient;
use rapport_proto::support::v1::{IngestEmailRequest, ListCasesRequest, SuggestArticlesRequest};

use crate::load::{Call, Target, WebTarget};
use crate::seed;

/// The echoed payload.
const ECHO_PAYLOAD: &[u8] = b"rapport-bench echo payload 0123456789abcdef";

/// ListContacts filters, one picked per call.
pub const LIST_FILTERS: &[&str] = &[
    "lifecycle_stage = CUSTOMER",
    "lifecycle_stage = LEAD AND lead_source = WEB",
    "tags:vip",
    "email_opt_in = true AND lifecycle_stage = OPPORTUNITY",
    "lead_source = TRADE_SHOW",
    "lifecycle_stage = CHURNED OR tags:\"churn-risk\"",
    "owner_id = \"user-7\"",
    "family_name = \"Garcia\"",
];

/// SearchContacts queries, one picked per call: names, prefixes,
/// companies, titles, and two with typos ("wiliams", "tompson").
pub const SEARCH_QUERIES: &[&str] = &[
    "sarah",
    "garcia",
    "maria garcia",
    "jon smi",
    "wiliams",
    "jennifer tompson",
    "tanaka",
    "chen",
    "acme",
    "globex logistics",
    "hooli",
    "vp sales",
    "data engineer",
    "kwame",
    "schmidt",
    "procurement",
];

/// Domains of created contacts' emails.
const CREATE_DOMAINS: &[&str] = &["example.com", "example.org", "example.net"];

/// The per-call closure type every scenario returns.
pub trait Scenario: Fn(usize) -> Call + Send + Sync + 'static {}
impl<F: Fn(usize) -> Call + Send + Sync + 'static> Scenario for F {}

fn pick<T>(items: &[T]) -> &T {
    &items[rand::rng().random_range(0..items.len())]
}

/// `Echo` with a 43-byte payload.
pub fn echo(target: Target) -> impl Scenario {
    move |worker| {
        let mut client = EchoServiceClient::new(target.channel(worker));
        let request = target.request(EchoRequest { payload: ECHO_PAYLOAD.to_vec() });
        Box::pin(async move { client.echo(request).await.map(drop) })
    }
}

/// `GetContact` of a random id of `ids`.
pub fn get(target: Target, ids: Arc<Vec<String>>) -> impl Scenario {
    move |worker| {
        let mut client = ContactServiceClient::new(target.channel(worker));
        let request = target.request(GetContactRequest { id: pick(&ids).clone() });
        Box::pin(async move { client.get_contact(request).await.map(drop) })
    }
}

/// `GetContact`'s path, for gRPC-web.
const GET_CONTACT_PATH: &str = "/rapport.contacts.v1.ContactService/GetContact";

/// `GetContact` of a random id of `ids` as binary gRPC-web, task
/// `worker` on connection `worker`.
pub fn get_web(target: WebTarget, ids: Arc<Vec<String>>) -> impl Scenario {
    let target = Arc::new(target);
    move |worker| {
        let target = Arc::clone(&target);
        let request = GetContactRequest { id: pick(&ids).clone() };
        Box::pin(
            async move { target.unary::<_, Contact>(worker, GET_CONTACT_PATH, &request).await.map(drop) },
        )
    }
}

/// Fetches every id once, `concurrency` at a time, so the caches hold
/// them. Fails if any fetch fails.
pub async fn warm(target: &Target, ids: &[String], concurrency: usize) -> anyhow::Result<()> {
    let mut fetches = futures::stream::iter(ids.iter().enumerate())
        .map(|(index, id)| {
            let mut client = ContactServiceClient::new(target.channel(index));
            let request = target.request(GetContactRequest { id: id.clone() });
            async move { client.get_contact(request).await }
        })
        .buffer_unordered(concurrency.max(1));
    while let Some(fetched) = fetches.next().await {
        fetched.context("warming the cache")?;
    }
    Ok(())
}

/// `CreateContact` with a unique email (`run` keeps runs apart), varied
/// names, titles, stages, sources and tags; half link a seeded company.
pub fn create(target: Target, company_ids: Arc<Vec<String>>, run: String) -> impl Scenario {
    let next = Arc::new(AtomicU64::new(1));
    let stages = seed::stage_names();
    let sources = seed::source_names();
    move |worker| {
        let number = next.fetch_add(1, Ordering::Relaxed);
        let mut rng = rand::rng();
        let given_name = *pick(seed::GIVEN_NAMES);
        let family_name = *pick(seed::FAMILY_NAMES);
        let local: String = format!("{given_name}.{family_name}")
            .to_lowercase()
            .chars()
            .filter(|c| c.is_ascii_lowercase() || *c == '.')
            .collect();
        let stage = LifecycleStage::from_str_name(&format!("LIFECYCLE_STAGE_{}", pick(&stages)))
            .unwrap_or(LifecycleStage::Lead);
        let source =
            LeadSource::from_str_name(&format!("LEAD_SOURCE_{}", pick(&sources))).unwrap_or(LeadSource::Web);
        let tags =
            seed::TAGS.iter().filter(|_| rng.random_ratio(1, 9)).map(|tag| (*tag).to_owned()).collect();
        let contact = Contact {
            given_name: given_name.to_owned(),
            family_name: family_name.to_owned(),
            email: format!("{local}.{run}.{number}@{}", pick(CREATE_DOMAINS)),
            phone: format!("+1 555 {:07}", rng.random_range(0..10_000_000)),
            job_title: (*pick(seed::JOB_TITLES)).to_owned(),
            company_id: if rng.random_bool(0.5) && !company_ids.is_empty() {
                pick(&company_ids).clone()
            } else {
                String::new()
            },
            owner_id: format!("user-{}", rng.random_range(1..=25)),
            lifecycle_stage: stage as i32,
            lead_source: source as i32,
            tags,
            email_opt_in: rng.random_bool(0.66),
            ..Contact::default()
        };
        let mut client = ContactServiceClient::new(target.channel(worker));
        let request =
            target.request(CreateContactRequest { contact: Some(contact), request_id: String::new() });
        Box::pin(async move { client.create_contact(request).await.map(drop) })
    }
}

/// `ListContacts`: the first page of 50 under one of [`LIST_FILTERS`].
pub fn list(target: Target) -> impl Scenario {
    move |worker| {
        let mut client = ContactServiceClient::new(target.channel(worker));
        let request = target.request(ListContactsRequest {
            page_size: 50,
            filter: (*pick(LIST_FILTERS)).to_owned(),
            ..ListContactsRequest::default()
        });
        Box::pin(async move { client.list_contacts(request).await.map(drop) })
    }
}

/// Each of [`SEARCH_QUERIES`] alone, one call at a time, three times:
/// the median latency (ms) and the number of hits, per query.
pub async fn search_profile(target: &Target) -> anyhow::Result<Vec<(&'static str, f64, usize)>> {
    let mut profile = Vec::with_capacity(SEARCH_QUERIES.len());
    for query in SEARCH_QUERIES {
        let mut client = ContactServiceClient::new(target.channel(0));
        let mut latencies = Vec::with_capacity(3);
        let mut hits = 0;
        for _ in 0..3 {
            let request = target.request(SearchContactsRequest {
                query: (*query).to_owned(),
                page_size: 20,
                page_token: String::new(),
            });
            let started = std::time::Instant::now();
            let response =
                client.search_contacts(request).await.with_context(|| format!("searching {query:?}"))?;
            latencies.push(started.elapsed().as_secs_f64() * 1000.0);
            hits = response.into_inner().results.len();
        }
        latencies.sort_by(f64::total_cmp);
        profile.push((*query, latencies[1], hits));
    }
    Ok(profile)
}

/// `SearchContacts`: the first 20 hits of one of [`SEARCH_QUERIES`].
pub fn search(target: Target) -> impl Scenario {
    move |worker| {
        let mut client = ContactServiceClient::new(target.channel(worker));
        let request = target.request(SearchContactsRequest {
            query: (*pick(SEARCH_QUERIES)).to_owned(),
            page_size: 20,
            page_token: String::new(),
        });
        Box::pin(async move { client.search_contacts(request).await.map(drop) })
    }
}

/// The year GetForecast asks for: from the first day of the month five
/// months back to a day before the same date a year later (the seeded
/// expected close dates run from a year back to a year ahead).
pub fn forecast_range(today: chrono::NaiveDate) -> (Date, Date) {
    use chrono::{Datelike, Months};
    let first = today.with_day(1).unwrap_or(today);
    let start = first.checked_sub_months(Months::new(5)).unwrap_or(first);
    let end = start.checked_add_months(Months::new(12)).and_then(|d| d.pred_opt()).unwrap_or(start);
    let date = |d: chrono::NaiveDate| Date { year: d.year(), month: d.month() as i32, day: d.day() as i32 };
    (date(start), date(end))
}

/// `GetForecast` of `range` in EUR, grouped by `group_by`.
pub fn forecast(target: Target, group_by: ForecastGrouping, range: (Date, Date)) -> impl Scenario {
    move |worker| {
        let mut client = ForecastServiceClient::new(target.channel(worker));
        let request = target.request(GetForecastRequest {
            start_date: Some(range.0),
            end_date: Some(range.1),
            group_by: group_by as i32,
            currency_code: "EUR".to_owned(),
            ..GetForecastRequest::default()
        });
        Box::pin(async move { client.get_forecast(request).await.map(drop) })
    }
}

/// `MoveDealStage` without an etag: call `n` moves deal `n % len` (deals
/// round-robin, so concurrent calls almost never share a deal) to the
/// next OPEN stage after the one its previous move took it to, so every
/// call changes the stage (a move to the current stage writes nothing).
/// Each deal carries the index of the stage it was seeded in.
pub fn move_stage(
    target: Target,
    deals: Arc<Vec<(String, usize)>>,
    stages: Arc<Vec<String>>,
) -> impl Scenario {
    let next = Arc::new(AtomicU64::new(0));
    move |worker| {
        let call = next.fetch_add(1, Ordering::Relaxed) as usize;
        let (id, seeded) = &deals[call % deals.len()];
        let round = call / deals.len();
        let stage = &stages[(seeded + round + 1) % stages.len()];
        let mut client = DealServiceClient::new(target.channel(worker));
        let request = target.request(MoveDealStageRequest {
            id: id.clone(),
            stage_id: stage.clone(),
            ..MoveDealStageRequest::default()
        });
        Box::pin(async move { client.move_deal_stage(request).await.map(drop) })
    }
}

/// A Customer 360 whose every section is OK, or the first failed section
/// as a status (the call itself succeeds with failed sections).
fn sections_ok(view: &Customer360) -> Result<(), tonic::Status> {
    let sections = [
        ("contact", view.contact.as_ref().and_then(|s| s.status.as_ref())),
        ("company", view.company.as_ref().and_then(|s| s.status.as_ref())),
        ("open_deals", view.open_deals.as_ref().and_then(|s| s.status.as_ref())),
        ("unpaid_invoices", view.unpaid_invoices.as_ref().and_then(|s| s.status.as_ref())),
    ];
    for (name, status) in sections {
        let Some(status) = status else {
            return Err(tonic::Status::internal(format!("section {name} without a status")));
        };
        if status.code != 0 {
            return Err(tonic::Status::new(
                tonic::Code::from_i32(status.code),
                format!("section {name} failed: {} {}", status.reason, status.message),
            ));
        }
    }
    Ok(())
}

/// `GetCustomer360` of a random one of `contacts`; a failed section counts
/// as a failed call, under the section's code.
pub fn customer360(target: Target, contacts: Arc<Vec<String>>) -> impl Scenario {
    move |worker| {
        let mut client = CustomerServiceClient::new(target.channel(worker));
        let request = target.request(GetCustomer360Request { contact_id: pick(&contacts).clone() });
        Box::pin(async move {
            let view = client.get_customer360(request).await?.into_inner();
            sections_ok(&view)
        })
    }
}

/// What the Customer 360 views hold, summed over the contacts asked.
#[derive(Debug, Default, Clone, Copy)]
pub struct ViewProfile {
    /// Views fetched.
    pub views: usize,
    /// Views with every section OK.
    pub all_ok: usize,
    /// Views with a company, with open deals, with unpaid invoices, with
    /// a standing.
    pub with_company: usize,
    pub with_deals: usize,
    pub with_invoices: usize,
    pub with_standing: usize,
    /// Open deals and unpaid invoices over all views.
    pub deals: usize,
    pub invoices: usize,
}

/// Fetches the view of every one of `contacts` once, `concurrency` at a
/// time (warming the caches and the buffers), and says what they held.
pub async fn customer360_profile(
    target: &Target,
    contacts: &[String],
    concurrency: usize,
) -> anyhow::Result<ViewProfile> {
    let mut views = futures::stream::iter(contacts.iter().enumerate())
        .map(|(index, id)| {
            let mut client = CustomerServiceClient::new(target.channel(index));
            let request = target.request(GetCustomer360Request { contact_id: id.clone() });
            async move { client.get_customer360(request).await }
        })
        .buffer_unordered(concurrency.max(1));
    let mut profile = ViewProfile::default();
    while let Some(view) = views.next().await {
        let view = view.context("fetching a Customer 360")?.into_inner();
        profile.views += 1;
        profile.all_ok += usize::from(sections_ok(&view).is_ok());
        profile.with_company += usize::from(view.company.as_ref().is_some_and(|s| s.company.is_some()));
        let deals = view.open_deals.as_ref().map_or(0, |s| s.deals.len());
        let invoices = view.unpaid_invoices.as_ref().map_or(0, |s| s.invoices.len());
        profile.with_deals += usize::from(deals > 0);
        profile.with_invoices += usize::from(invoices > 0);
        profile.with_standing +=
            usize::from(view.unpaid_invoices.as_ref().is_some_and(|s| s.standing.is_some()));
        profile.deals += deals;
        profile.invoices += invoices;
    }
    Ok(profile)
}

/// The agent queue: a random team's open cases, next SLA due first, the
/// first page of 50.
pub fn support_queue(target: Target) -> impl Scenario {
    move |worker| {
        let mut client = CaseServiceClient::new(target.channel(worker));
        let team = rand::rng().random_range(0..20);
        let request = target.request(ListCasesRequest {
            page_size: 50,
            filter: format!("team_id = \"t-{team}\" AND status != RESOLVED AND status != CLOSED"),
            order_by: "next_due_time".to_owned(),
            ..ListCasesRequest::default()
        });
        Box::pin(async move { client.list_cases(request).await.map(drop) })
    }
}

/// SuggestArticles for a random open case, five suggestions.
pub fn support_suggest(target: Target, cases: Arc<Vec<String>>) -> impl Scenario {
    move |worker| {
        let mut client = KnowledgeServiceClient::new(target.channel(worker));
        let request = target.request(SuggestArticlesRequest { case_id: pick(&cases).clone(), page_size: 5 });
        Box::pin(async move { client.suggest_articles(request).await.map(drop) })
    }
}

/// IngestEmail of a new message (a unique Message-ID) from one of 200
/// senders (the first of each creates its contact), each opening a case.
pub fn support_ingest(target: Target, run: String) -> impl Scenario {
    let counter = Arc::new(AtomicU64::new(0));
    move |worker| {
        let mut client = CaseServiceClient::new(target.channel(worker));
        let n = counter.fetch_add(1, Ordering::Relaxed);
        let words = crate::seed::support::VOCABULARY;
        let (a, b) = (words[(n as usize * 7) % words.len()], words[(n as usize * 13) % words.len()]);
        let raw = format!(
            "From: Customer {sender} <sender-{sender}@customer.example>\r\nTo: help@rapport.test\r\n\
             Subject: Help with {a} {b}\r\nMessage-ID: <{run}-{n}@customer.example>\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\nMy {a} shows an error since the {b} update. Please help.\r\n",
            sender = n % 200
        );
        let request = target
            .request(IngestEmailRequest { raw_message: raw.into_bytes(), team_id: format!("t-{}", n % 20) });
        Box::pin(async move { client.ingest_email(request).await.map(drop) })
    }
}

/// GetTimeline of a random contact among those the shared-record seed
/// filled, the newest page of 50.
pub fn timeline(target: Target, contacts: Arc<Vec<String>>) -> impl Scenario {
    use rapport_proto::contacts::v1::activity_service_client::ActivityServiceClient;
    use rapport_proto::contacts::v1::{GetTimelineRequest, get_timeline_request};
    move |worker| {
        let mut client = ActivityServiceClient::new(target.channel(worker));
        let request = target.request(GetTimelineRequest {
            subject: Some(get_timeline_request::Subject::ContactId(pick(&contacts).clone())),
            page_size: 50,
            ..GetTimelineRequest::default()
        });
        Box::pin(async move { client.get_timeline(request).await.map(drop) })
    }
}

/// ListMyTasks of the bench caller, the first page of 50.
pub fn my_tasks(target: Target) -> impl Scenario {
    use rapport_proto::contacts::v1::ListMyTasksRequest;
    use rapport_proto::contacts::v1::activity_service_client::ActivityServiceClient;
    move |worker| {
        let mut client = ActivityServiceClient::new(target.channel(worker));
        let request = target.request(ListMyTasksRequest { page_size: 50, page_token: String::new() });
        Box::pin(async move { client.list_my_tasks(request).await.map(drop) })
    }
}

/// LogActivity: a call on a random contact of the working set (its
/// timeline entry, the contact's last activity time, its change event).
pub fn log_activity(target: Target, contacts: Arc<Vec<String>>) -> impl Scenario {
    use rapport_proto::contacts::v1::activity_service_client::ActivityServiceClient;
    use rapport_proto::contacts::v1::{Activity, ActivityKind, CallOutcome, Direction, LogActivityRequest};
    move |worker| {
        let mut client = ActivityServiceClient::new(target.channel(worker));
        let activity = Activity {
            kind: ActivityKind::Call.into(),
            subject: "Follow-up call".to_owned(),
            direction: Direction::Outbound.into(),
            call_outcome: CallOutcome::Connected.into(),
            duration: Some(prost_types::Duration { seconds: 240, nanos: 0 }),
            contact_id: pick(&contacts).clone(),
            ..Activity::default()
        };
        let request =
            target.request(LogActivityRequest { activity: Some(activity), request_id: String::new() });
        Box::pin(async move { client.log_activity(request).await.map(drop) })
    }
}
