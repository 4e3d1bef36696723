//! Cases follow Contacts' change feed: a deleted requester is marked on
//! their cases (and unmarked when restored), a deleted company is removed
//! from its cases.

use rapport_proto::contacts::v1::{
    Company, CreateCompanyRequest, DeleteCompanyRequest, DeleteContactRequest, UndeleteContactRequest,
};
use rapport_proto::support::v1::*;

use crate::common::{TestApp, case, create};

#[tokio::test]
async fn deletions_in_contacts_reach_the_cases() {
    let app = TestApp::spawn().await;
    let ada = app.requester("ada@example.com").await;
    let mut contacts = app.admin().contacts;
    let company = contacts
        .create_company(CreateCompanyRequest {
            company: Some(Company { name: "Acme".into(), ..Company::default() }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let created =
        create(&app.admin(), Case { company_id: company.id.clone(), ..case("Broken", &ada) }).await.unwrap();
    let read = |id: String| {
        let mut cases = app.admin().cases;
        async move { cases.get_case(GetCaseRequest { id }).await.unwrap().into_inner() }
    };
    contacts.delete_contact(DeleteContactRequest { id: ada.id.clone(), ..Default::default() }).await.unwrap();
    rapport_kit::testing::eventually("the requester marked deleted", || async {
        read(created.id.clone()).await.requester_deleted
    })
    .await;
    contacts
        .undelete_contact(UndeleteContactRequest { id: ada.id.clone(), ..Default::default() })
        .await
        .unwrap();
    rapport_kit::testing::eventually("the requester unmarked", || async {
        !read(created.id.clone()).await.requester_deleted
    })
    .await;
    contacts
        .delete_company(DeleteCompanyRequest { id: company.id.clone(), ..Default::default() })
        .await
        .unwrap();
    rapport_kit::testing::eventually("the company removed", || async {
        read(created.id.clone()).await.company_id.is_empty()
    })
    .await;
    let after = read(created.id.clone()).await;
    assert_eq!((after.requester_contact_id.as_str(), after.subject.as_str()), (ada.id.as_str(), "Broken"));
    app.stop().await;
}
