//! Companies: CRUD, listing, unique domains, the parent hierarchy, and how
//! a rename reaches contact search.

use crate::common;

use common::{
    Client, TestApp, create, create_company, error_metadata, failure, get_company, mask, reason,
    resource_name, violated_fields,
};
use rapport_proto::common::v1::Money;
use rapport_proto::contacts::v1::{
    Company, Contact, CreateCompanyRequest, DeleteCompanyRequest, GetCompanyRequest, ListCompaniesRequest,
    SearchContactsRequest, UndeleteCompanyRequest, UpdateCompanyRequest, UpdateContactRequest,
};
use tonic::{Code, Status};

/// Asserts `status` has `code` and `reason`.
fn check(status: &Status, code: Code, reason_: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(reason(status), reason_, "{status:?}");
}

fn reparent(company: &Company, parent: &Company) -> UpdateCompanyRequest {
    UpdateCompanyRequest {
        company: Some(Company {
            id: company.id.clone(),
            parent_company_id: parent.id.clone(),
            ..Default::default()
        }),
        update_mask: mask(&["parent_company_id"]),
    }
}

/// Every company `request` selects, following page tokens.
async fn list_all(client: &mut Client, mut request: ListCompaniesRequest) -> Vec<String> {
    let mut names = Vec::new();
    loop {
        let page = client.list_companies(request.clone()).await.unwrap().into_inner();
        assert!(page.companies.len() <= usize::try_from(request.page_size).unwrap());
        names.extend(page.companies.into_iter().map(|company| company.name));
        if page.next_page_token.is_empty() {
            return names;
        }
        request.page_token = page.next_page_token;
    }
}

#[tokio::test]
async fn companies_are_created_read_updated_deleted_and_restored() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let created = client
        .create_company(CreateCompanyRequest {
            company: Some(Company {
                name: " Initech ".into(),
                domain: "InITech.Example.".into(),
                industry: "Software".into(),
                employee_count: 120,
                annual_revenue: Some(Money { currency_code: "USD".into(), minor_units: 500_000_000 }),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.name, "Initech");
    assert_eq!(created.domain, "initech.example");
    assert_eq!(created.annual_revenue.as_ref().unwrap().minor_units, 500_000_000);
    assert_eq!(get_company(&mut client, &created.id).await, created);

    let renamed = client
        .update_company(UpdateCompanyRequest {
            company: Some(Company {
                id: created.id.clone(),
                name: "Initrode".into(),
                employee_count: 999,
                etag: created.etag.clone(),
                ..Default::default()
            }),
            update_mask: mask(&["name"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(renamed.name, "Initrode");
    assert_eq!(renamed.employee_count, 120);
    assert_ne!(renamed.etag, created.etag);
    assert_eq!(get_company(&mut client, &created.id).await, renamed);

    let status = failure(
        client
            .delete_company(DeleteCompanyRequest { id: created.id.clone(), etag: created.etag.clone() })
            .await,
    );
    check(&status, Code::Aborted, "ETAG_MISMATCH");
    assert_eq!(error_metadata(&status)["current_etag"], renamed.etag);

    let deleted = client
        .delete_company(DeleteCompanyRequest { id: created.id.clone(), etag: renamed.etag.clone() })
        .await
        .unwrap()
        .into_inner();
    assert!(deleted.delete_time.is_some());
    assert_eq!(get_company(&mut client, &created.id).await, deleted);
    let live = ListCompaniesRequest { page_size: 10, ..Default::default() };
    assert!(list_all(&mut client, live.clone()).await.is_empty());
    let everything = ListCompaniesRequest { show_deleted: true, ..live.clone() };
    assert_eq!(list_all(&mut client, everything).await, ["Initrode"]);

    let restored = client
        .undelete_company(UndeleteCompanyRequest { id: created.id.clone(), etag: deleted.etag.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(restored.delete_time, None);
    assert_eq!(list_all(&mut client, live).await, ["Initrode"]);

    let status =
        failure(client.get_company(GetCompanyRequest { id: uuid::Uuid::now_v7().to_string() }).await);
    check(&status, Code::NotFound, "COMPANY_NOT_FOUND");
    let status = failure(client.get_company(GetCompanyRequest { id: "x".into() }).await);
    assert_eq!(violated_fields(&status), ["id"]);
}

#[tokio::test]
async fn companies_list_in_order_across_pages() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let mut expected = Vec::new();
    for i in 0..23 {
        let name = format!("Company {:02}", (i * 7) % 23);
        let company = client
            .create_company(CreateCompanyRequest {
                company: Some(Company {
                    name: name.clone(),
                    employee_count: i % 5,
                    industry: if i % 2 == 0 { "Retail" } else { "Mining" }.into(),
                    // Every third has no domain: they sort as "".
                    domain: if i % 3 == 0 { String::new() } else { format!("c{:02}.example", (i * 5) % 23) },
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        expected.push(company);
    }
    let request = |filter: &str, order_by: &str| ListCompaniesRequest {
        page_size: 4,
        filter: filter.into(),
        order_by: order_by.into(),
        ..Default::default()
    };
    let names =
        |companies: Vec<&Company>| -> Vec<String> { companies.into_iter().map(|c| c.name.clone()).collect() };

    let mut by_name: Vec<&Company> = expected.iter().collect();
    by_name.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(list_all(&mut client, request("", "name")).await, names(by_name.clone()));
    by_name.reverse();
    assert_eq!(list_all(&mut client, request("", "name desc")).await, names(by_name));

    let mut by_size: Vec<&Company> = expected.iter().filter(|c| c.industry == "Retail").collect();
    by_size.sort_by(|a, b| (b.employee_count, &b.id).cmp(&(a.employee_count, &a.id)));
    assert_eq!(
        list_all(&mut client, request("industry = Retail", "employee_count desc")).await,
        names(by_size)
    );
    let mut by_domain: Vec<&Company> = expected.iter().collect();
    by_domain.sort_by(|a, b| (&a.domain, &a.id).cmp(&(&b.domain, &b.id)));
    assert_eq!(list_all(&mut client, request("", "domain")).await, names(by_domain));
    assert_eq!(list_all(&mut client, request("", "")).await, names(expected.iter().collect()));
}

#[tokio::test]
async fn live_domains_are_unique() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let holder = create_company(&mut client, "Acme", "acme.example").await;

    let status = failure(
        client
            .create_company(CreateCompanyRequest {
                company: Some(Company {
                    name: "Acme Again".into(),
                    domain: "ACME.example".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await,
    );
    check(&status, Code::AlreadyExists, "COMPANY_DOMAIN_TAKEN");
    assert_eq!(resource_name(&status), holder.id);
    assert_eq!(violated_fields(&status), ["company.domain"]);

    let other = create_company(&mut client, "Other", "other.example").await;
    let status = failure(
        client
            .update_company(UpdateCompanyRequest {
                company: Some(Company { domain: "acme.example".into(), ..other.clone() }),
                update_mask: mask(&["domain"]),
            })
            .await,
    );
    check(&status, Code::AlreadyExists, "COMPANY_DOMAIN_TAKEN");
    assert_eq!(resource_name(&status), holder.id);
    assert_eq!(get_company(&mut client, &other.id).await, other);

    client.delete_company(DeleteCompanyRequest { id: holder.id.clone(), etag: String::new() }).await.unwrap();
    let successor = create_company(&mut client, "Acme Reborn", "acme.example").await;
    assert_eq!(successor.domain, "acme.example");
    let status = failure(
        client.undelete_company(UndeleteCompanyRequest { id: holder.id.clone(), etag: String::new() }).await,
    );
    check(&status, Code::AlreadyExists, "COMPANY_DOMAIN_TAKEN");
    assert_eq!(resource_name(&status), successor.id);
}

#[tokio::test]
async fn a_company_cannot_become_its_own_ancestor() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let group = create_company(&mut client, "Group", "").await;
    let division = create_company(&mut client, "Division", "").await;
    let division = client.update_company(reparent(&division, &group)).await.unwrap().into_inner();
    assert_eq!(division.parent_company_id, group.id);
    let team = client
        .create_company(CreateCompanyRequest {
            company: Some(Company {
                name: "Team".into(),
                parent_company_id: division.id.clone(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();

    for (company, parent) in [(&group, &team), (&group, &division), (&team, &team)] {
        let status = failure(client.update_company(reparent(company, parent)).await);
        check(&status, Code::FailedPrecondition, "COMPANY_HIERARCHY_CYCLE");
    }
    assert_eq!(get_company(&mut client, &group.id).await, group);
    assert_eq!(get_company(&mut client, &team.id).await, team);

    let nowhere = Company { id: uuid::Uuid::now_v7().to_string(), ..Default::default() };
    let status = failure(client.update_company(reparent(&team, &nowhere)).await);
    check(&status, Code::FailedPrecondition, "COMPANY_NOT_FOUND");
    assert_eq!(error_metadata(&status)["field"], "company.parent_company_id");
}

#[tokio::test]
async fn a_rename_reaches_contact_search() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let company = create_company(&mut client, "Acme Widgets", "acme.example").await;
    let employee = create(
        &mut client,
        Contact {
            given_name: "Wile".into(),
            family_name: "Coyote".into(),
            email: "wile@acme.example".into(),
            company_id: company.id.clone(),
            ..Default::default()
        },
    )
    .await;
    let search = |query: &str| SearchContactsRequest { query: query.into(), ..Default::default() };
    let hits = |response: rapport_proto::contacts::v1::SearchContactsResponse| -> Vec<String> {
        response.results.into_iter().map(|hit| hit.contact.unwrap().id).collect()
    };
    let found = client.search_contacts(search("widgets")).await.unwrap();
    assert_eq!(hits(found.into_inner()), std::slice::from_ref(&employee.id));

    client
        .update_company(UpdateCompanyRequest {
            company: Some(Company { name: "Roadrunner Supplies".into(), ..company.clone() }),
            update_mask: mask(&["name"]),
        })
        .await
        .unwrap();
    let found = client.search_contacts(search("roadrunner")).await.unwrap();
    assert_eq!(hits(found.into_inner()), std::slice::from_ref(&employee.id));
    let found = client.search_contacts(search("widgets")).await.unwrap();
    assert!(hits(found.into_inner()).is_empty());

    // Moving to another company moves the searchable name with it.
    let globex = create_company(&mut client, "Globex", "globex.example").await;
    client
        .update_contact(UpdateContactRequest {
            contact: Some(Contact { company_id: globex.id.clone(), ..employee.clone() }),
            update_mask: mask(&["company_id"]),
        })
        .await
        .unwrap();
    let found = client.search_contacts(search("globex")).await.unwrap();
    assert_eq!(hits(found.into_inner()), std::slice::from_ref(&employee.id));
    let found = client.search_contacts(search("roadrunner")).await.unwrap();
    assert!(hits(found.into_inner()).is_empty());
}
