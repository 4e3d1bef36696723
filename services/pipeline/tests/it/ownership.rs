//! The role × RPC × ownership matrix: every write RPC on an owned record
//! (contacts, companies, deals), every role, and the caller's own record, a
//! colleague's in the caller's team, and another team's — each outcome
//! asserted against the rules written out here once more (the role tables
//! say who may call; ownership says which records).

use crate::common;
use crate::fixtures;

use common::{Clients, TestApp, reason};
use fixtures::deals::seed;
use rapport_kit::auth::{Policy, Principal, Role};
use rapport_proto::contacts::v1::*;
use rapport_proto::pipeline::v1::*;
use tonic::Status;

/// Whose record the caller touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Whose {
    /// The caller owns it; it is in the caller's team.
    Own,
    /// A colleague owns it, in the caller's team.
    Colleague,
    /// Someone in another team owns it.
    OtherTeam,
}

impl Whose {
    const ALL: [Whose; 3] = [Whose::Own, Whose::Colleague, Whose::OtherTeam];

    fn owner_and_team(self) -> (&'static str, &'static str) {
        match self {
            Whose::Own => ("me", "east"),
            Whose::Colleague => ("pat", "east"),
            Whose::OtherTeam => ("kim", "west"),
        }
    }
}

/// The write RPCs on owned records, by gRPC service and method.
const WRITES: &[(&str, &str)] = &[
    ("rapport.contacts.v1.ContactService", "UpdateContact"),
    ("rapport.contacts.v1.ContactService", "DeleteContact"),
    ("rapport.contacts.v1.ContactService", "UndeleteContact"),
    ("rapport.contacts.v1.ContactService", "UpdateCompany"),
    ("rapport.contacts.v1.ContactService", "DeleteCompany"),
    ("rapport.contacts.v1.ContactService", "UndeleteCompany"),
    ("rapport.pipeline.v1.DealService", "UpdateDeal"),
    ("rapport.pipeline.v1.DealService", "DeleteDeal"),
    ("rapport.pipeline.v1.DealService", "UndeleteDeal"),
    ("rapport.pipeline.v1.DealService", "MoveDealStage"),
    ("rapport.pipeline.v1.DealService", "WinDeal"),
    ("rapport.pipeline.v1.DealService", "LoseDeal"),
    ("rapport.pipeline.v1.DealService", "ReopenDeal"),
];

/// Every RPC of the owned records' services that is not a read or a
/// create is in [`WRITES`]: a new write RPC cannot go untested.
#[test]
fn every_write_rpc_on_an_owned_record_is_in_the_matrix() {
    let reads = ["Get", "BatchGet", "List", "Search", "Find", "Watch", "Create"];
    for service in ["rapport.contacts.v1.ContactService", "rapport.pipeline.v1.DealService"] {
        let (_, methods) = rapport_proto::SERVICES.iter().find(|(name, _)| *name == service).unwrap();
        for method in methods.iter().filter(|method| !reads.iter().any(|read| method.starts_with(read))) {
            assert!(WRITES.contains(&(service, method)), "{service}/{method} is missing from the matrix");
        }
    }
}

fn role_table() -> Vec<Policy> {
    let mut tables = rapport_pipeline::policy::policies();
    tables.push(rapport_contacts::policy::policy());
    tables
}

/// The outcome the rules give: `Ok(())` or the refusal's reason.
fn expected(role: Role, service: &str, method: &str, whose: Whose) -> Result<(), &'static str> {
    let table = role_table().into_iter().find(|table| table.service() == service).unwrap();
    if !table.allowed(method).unwrap().contains(&role) {
        return Err("PERMISSION_DENIED_ROLE");
    }
    match (role, whose) {
        (Role::Admin | Role::Integration, _) | (_, Whose::Own) => Ok(()),
        (Role::SalesManager, Whose::Colleague) => Ok(()),
        (Role::SalesManager, Whose::OtherTeam) => Err("NOT_IN_TEAM"),
        _ => Err("NOT_OWNER"),
    }
}

/// Creates the record `method` acts on, owned as `whose` says, in the state
/// the method needs (deleted for an undelete, lost for a reopen). Returns
/// its id.
async fn prepare(
    admin: &Clients,
    seed: &fixtures::deals::Seed,
    method: &str,
    whose: Whose,
    n: usize,
) -> String {
    let (owner_id, team_id) = whose.owner_and_team();
    let (owner_id, team_id) = (owner_id.to_owned(), team_id.to_owned());
    let mut contacts = admin.contacts.clone();
    let mut deals = admin.deals.clone();
    if method.ends_with("Contact") {
        let contact = Contact {
            given_name: "Ada".into(),
            email: format!("ada-{n}-{}@matrix.test", uuid::Uuid::now_v7().simple()),
            owner_id,
            team_id,
            ..Default::default()
        };
        let id = contacts
            .create_contact(CreateContactRequest { contact: Some(contact), ..Default::default() })
            .await
            .unwrap()
            .into_inner()
            .id;
        if method == "UndeleteContact" {
            contacts
                .delete_contact(DeleteContactRequest { id: id.clone(), etag: String::new() })
                .await
                .unwrap();
        }
        return id;
    }
    if method.ends_with("Company") {
        let company = Company { name: format!("Acme {n}"), owner_id, team_id, ..Default::default() };
        let id = contacts
            .create_company(CreateCompanyRequest { company: Some(company), ..Default::default() })
            .await
            .unwrap()
            .into_inner()
            .id;
        if method == "UndeleteCompany" {
            contacts
                .delete_company(DeleteCompanyRequest { id: id.clone(), etag: String::new() })
                .await
                .unwrap();
        }
        return id;
    }
    let company = Company { name: format!("Buyer {n}"), ..Default::default() };
    let company_id = contacts
        .create_company(CreateCompanyRequest { company: Some(company), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .id;
    let deal = Deal {
        title: format!("Deal {n}"),
        currency_code: "EUR".into(),
        owner_id,
        team_id,
        company_id,
        ..Default::default()
    };
    let id = deals
        .create_deal(CreateDealRequest { deal: Some(deal), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .id;
    match method {
        "UndeleteDeal" => {
            deals.delete_deal(DeleteDealRequest { id: id.clone(), etag: String::new() }).await.unwrap();
        }
        "ReopenDeal" => {
            let lose = LoseDealRequest {
                id: id.clone(),
                lost_reason_id: seed.lost_reason.to_string(),
                ..Default::default()
            };
            deals.lose_deal(lose).await.unwrap();
        }
        _ => {}
    }
    id
}

/// Calls `method` on record `id` as `caller`.
async fn call(
    caller: &Clients,
    seed: &fixtures::deals::Seed,
    method: &str,
    id: String,
) -> Result<(), Status> {
    let mut contacts = caller.contacts.clone();
    let mut deals = caller.deals.clone();
    let mask = |path: &str| Some(prost_types::FieldMask { paths: vec![path.to_owned()] });
    let etag = String::new();
    match method {
        "UpdateContact" => {
            let contact = Contact { id, job_title: "Changed".into(), ..Default::default() };
            contacts
                .update_contact(UpdateContactRequest {
                    contact: Some(contact),
                    update_mask: mask("job_title"),
                })
                .await
                .map(drop)
        }
        "DeleteContact" => contacts.delete_contact(DeleteContactRequest { id, etag }).await.map(drop),
        "UndeleteContact" => contacts.undelete_contact(UndeleteContactRequest { id, etag }).await.map(drop),
        "UpdateCompany" => {
            let company = Company { id, industry: "Changed".into(), ..Default::default() };
            contacts
                .update_company(UpdateCompanyRequest {
                    company: Some(company),
                    update_mask: mask("industry"),
                })
                .await
                .map(drop)
        }
        "DeleteCompany" => contacts.delete_company(DeleteCompanyRequest { id, etag }).await.map(drop),
        "UndeleteCompany" => contacts.undelete_company(UndeleteCompanyRequest { id, etag }).await.map(drop),
        "UpdateDeal" => {
            let deal = Deal { id, title: "Changed".into(), ..Default::default() };
            deals
                .update_deal(UpdateDealRequest { deal: Some(deal), update_mask: mask("title") })
                .await
                .map(drop)
        }
        "DeleteDeal" => deals.delete_deal(DeleteDealRequest { id, etag }).await.map(drop),
        "UndeleteDeal" => deals.undelete_deal(UndeleteDealRequest { id, etag }).await.map(drop),
        "MoveDealStage" => {
            let request =
                MoveDealStageRequest { id, stage_id: seed.proposal.to_string(), ..Default::default() };
            deals.move_deal_stage(request).await.map(drop)
        }
        "WinDeal" => deals.win_deal(WinDealRequest { id, ..Default::default() }).await.map(drop),
        "LoseDeal" => {
            let request =
                LoseDealRequest { id, lost_reason_id: seed.lost_reason.to_string(), ..Default::default() };
            deals.lose_deal(request).await.map(drop)
        }
        "ReopenDeal" => deals.reopen_deal(ReopenDealRequest { id, ..Default::default() }).await.map(drop),
        other => panic!("no call for {other}"),
    }
}

#[tokio::test]
async fn every_role_on_own_colleagues_and_other_teams_records() {
    let app = TestApp::spawn().await;
    let seed = seed(&app).await;
    let admin = app.clients();
    let mut failures = Vec::new();
    let mut n = 0;
    for role in Role::ALL {
        let caller = app.clients_for(&Principal::new("me", vec![role]).with_teams(&["east"]));
        for (service, method) in WRITES {
            for whose in Whose::ALL {
                n += 1;
                let id = prepare(&admin, &seed, method, whose, n).await;
                let outcome = call(&caller, &seed, method, id).await.map_err(|status| reason(&status));
                let wanted = expected(role, service, method, whose).map_err(str::to_owned);
                if outcome != wanted {
                    failures.push(format!("{role} {method} on {whose:?}: got {outcome:?}, want {wanted:?}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} of {n} cases differ:\n{}", failures.len(), failures.join("\n"));
}

/// A rep can neither create a record for someone else nor take one, nor
/// put one in a team they are not in; a manager moves records within their
/// teams only; marketing changes only lead-source and consent fields of
/// others' contacts.
#[tokio::test]
async fn reassigning_is_a_managers_act() {
    let app = TestApp::spawn().await;
    let seed = seed(&app).await;
    let admin = app.clients();
    let rep = app.clients_for(&Principal::new("me", vec![Role::SalesRep]).with_teams(&["east"]));
    let mut deals = rep.deals.clone();
    let create = |owner: &str, team: &str| CreateDealRequest {
        deal: Some(Deal {
            title: "Mine?".into(),
            currency_code: "EUR".into(),
            owner_id: owner.into(),
            team_id: team.into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let status = deals.create_deal(create("pat", "")).await.unwrap_err();
    assert_eq!(reason(&status), "NOT_OWNER");
    let status = deals.create_deal(create("", "west")).await.unwrap_err();
    assert_eq!(reason(&status), "NOT_IN_TEAM");
    let mine = deals.create_deal(create("", "")).await.unwrap().into_inner();
    assert_eq!(
        (mine.owner_id.as_str(), mine.team_id.as_str()),
        ("me", "east"),
        "defaults: the caller and their team"
    );

    // Taking a colleague's deal through owner_id.
    let theirs = prepare(&admin, &seed, "UpdateDeal", Whose::Colleague, 1).await;
    let take = |id: String, owner: &str| UpdateDealRequest {
        deal: Some(Deal { id, owner_id: owner.into(), ..Default::default() }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["owner_id".into()] }),
    };
    assert_eq!(reason(&deals.update_deal(take(theirs.clone(), "me")).await.unwrap_err()), "NOT_OWNER");
    // Handing one's own deal away.
    assert_eq!(reason(&deals.update_deal(take(mine.id.clone(), "pat")).await.unwrap_err()), "NOT_OWNER");

    let manager = app.clients_for(&Principal::new("meg", vec![Role::SalesManager]).with_teams(&["east"]));
    let mut managed = manager.deals.clone();
    managed.update_deal(take(theirs.clone(), "me")).await.unwrap();
    let other_team = prepare(&admin, &seed, "UpdateDeal", Whose::OtherTeam, 2).await;
    assert_eq!(reason(&managed.update_deal(take(other_team, "me")).await.unwrap_err()), "NOT_IN_TEAM");
    let to_west = UpdateDealRequest {
        deal: Some(Deal { id: theirs, team_id: "west".into(), ..Default::default() }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["team_id".into()] }),
    };
    assert_eq!(reason(&managed.update_deal(to_west).await.unwrap_err()), "NOT_IN_TEAM");

    // A member of a colleague's deal changes the deal, not who else may.
    let shared = Deal {
        title: "Shared".into(),
        currency_code: "EUR".into(),
        owner_id: "pat".into(),
        team_id: "east".into(),
        team_member_ids: vec!["me".into()],
        ..Default::default()
    };
    let shared = admin
        .deals
        .clone()
        .create_deal(CreateDealRequest { deal: Some(shared), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let edit = |paths: &[&str], deal: Deal| UpdateDealRequest {
        deal: Some(deal),
        update_mask: Some(prost_types::FieldMask { paths: paths.iter().map(|p| (*p).to_owned()).collect() }),
    };
    let retitled = Deal { id: shared.id.clone(), title: "Ours".into(), ..Default::default() };
    deals.update_deal(edit(&["title"], retitled)).await.unwrap();
    let friend = Deal {
        id: shared.id.clone(),
        team_member_ids: vec!["me".into(), "kim".into()],
        ..Default::default()
    };
    assert_eq!(
        reason(&deals.update_deal(edit(&["team_member_ids"], friend)).await.unwrap_err()),
        "NOT_OWNER"
    );

    let marketer = app.clients_for(&Principal::new("mia", vec![Role::Marketing]));
    let mut contacts = marketer.contacts.clone();
    let contact_id = prepare(&admin, &seed, "UpdateContact", Whose::OtherTeam, 3).await;
    let update = |paths: &[&str]| UpdateContactRequest {
        contact: Some(Contact {
            id: contact_id.clone(),
            lead_source: LeadSource::Event.into(),
            email_opt_in: true,
            job_title: "Changed".into(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask { paths: paths.iter().map(|p| (*p).to_owned()).collect() }),
    };
    contacts.update_contact(update(&["lead_source", "email_opt_in"])).await.unwrap();
    let status = contacts.update_contact(update(&["job_title"])).await.unwrap_err();
    assert_eq!(reason(&status), "NOT_OWNER");
}

/// The change types `caller`'s unfiltered stream replays: up to its first
/// heartbeat, which a stream sends only once it has read everything.
async fn streamed_types(caller: &Clients) -> Vec<String> {
    use futures::StreamExt as _;
    use rapport_proto::pipeline::v1::watch_changes_response::Event;
    let mut pipelines = caller.pipelines.clone();
    let request =
        rapport_proto::pipeline::v1::WatchChangesRequest { after_sequence: 0, resource_types: Vec::new() };
    let mut stream = pipelines.watch_changes(request).await.unwrap().into_inner();
    let mut types = Vec::new();
    loop {
        match stream.next().await.unwrap().unwrap().event {
            Some(Event::Change(change)) if !types.contains(&change.resource_type) => {
                types.push(change.resource_type);
            }
            Some(Event::Heartbeat(_)) => return types,
            _ => {}
        }
    }
}

#[tokio::test]
async fn a_stream_carries_only_what_its_caller_may_read() {
    let app = TestApp::spawn().await;
    let seed = seed(&app).await;
    let admin = app.clients();
    prepare(&admin, &seed, "UpdateDeal", Whose::Own, 1).await;
    let quota = Quota {
        owner_id: "me".into(),
        year: 2026,
        month: 1,
        amount: Some(rapport_proto::common::v1::Money { currency_code: "EUR".into(), minor_units: 100 }),
        ..Default::default()
    };
    admin.forecasts.clone().set_quota(SetQuotaRequest { quota: Some(quota) }).await.unwrap();
    const QUOTA: &str = "rapport.pipeline.v1.Quota";
    assert!(streamed_types(&admin).await.iter().any(|name| name == QUOTA));

    // An integration may not ListQuotas: its stream leaves quotas out, and
    // asking for them is refused.
    let erp = app.clients_as("erp", &[Role::Integration]);
    let types = streamed_types(&erp).await;
    assert!(types.iter().any(|name| name == "rapport.pipeline.v1.Deal"), "{types:?}");
    assert!(!types.iter().any(|name| name == QUOTA), "{types:?}");
    let asked = rapport_proto::pipeline::v1::WatchChangesRequest {
        after_sequence: 0,
        resource_types: vec![QUOTA.into()],
    };
    let status = erp.pipelines.clone().watch_changes(asked).await.unwrap_err();
    assert_eq!(reason(&status), "RESOURCE_TYPE_NOT_READABLE");
}

/// Every resource type the feed carries has a read RPC that decides who
/// sees it on a stream.
#[test]
fn every_feed_resource_type_has_a_read_rpc() {
    use rapport_pipeline::error::resource::*;
    let declared: Vec<&str> = rapport_pipeline::policy::FEED_READS.iter().map(|(name, _, _)| *name).collect();
    for name in [PIPELINE, STAGE, LOST_REASON, PRODUCT, DEAL, ORDER, INVOICE, PAYMENT, EXCHANGE_RATE, QUOTA] {
        assert!(declared.contains(&name), "{name} has no read RPC in FEED_READS");
    }
    for (_, service, method) in rapport_pipeline::policy::FEED_READS {
        let table = role_table().into_iter().find(|table| table.service() == *service).unwrap();
        assert!(table.allowed(method).is_some(), "{service}/{method} is not an RPC");
    }
}
