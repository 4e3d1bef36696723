//! `seed-demo`: realistic demo data through the Contacts API, so every
//! rule (validation, change log, caches) applies. Deterministic request ids
//! make a second run a no-op.

use rapport_kit::auth::Role;
use rapport_kit::config::Env;
use rapport_proto::common::v1::Money;
use rapport_proto::contacts::v1::contact_service_client::ContactServiceClient;
use rapport_proto::contacts::v1::{
    Company, Contact, CreateCompanyRequest, CreateContactRequest, LeadSource, LifecycleStage,
};
use tonic::transport::Channel;

const GIVEN: &[&str] = &[
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "Ken",
    "Margaret",
    "Linus",
    "Radia",
    "Tim",
    "Sophie",
    "John",
    "Hedy",
    "Dennis",
    "Katherine",
    "Claude",
    "Joan",
    "Niklaus",
];
const FAMILY: &[&str] = &[
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "Thompson",
    "Hamilton",
    "Torvalds",
    "Perlman",
    "Berners-Lee",
    "Wilson",
    "McCarthy",
    "Lamarr",
    "Ritchie",
    "Johnson",
    "Shannon",
    "Clarke",
    "Wirth",
];
const TITLES: &[&str] = &[
    "Chief Executive Officer",
    "Head of Procurement",
    "IT Director",
    "Operations Manager",
    "Finance Controller",
    "Software Engineer",
    "Purchasing Agent",
    "VP Sales",
    "Office Manager",
    "Plant Manager",
];
const COMPANIES: &[(&str, &str, &str, i32)] = &[
    ("Acme Widgets", "acme-widgets.example", "Manufacturing", 1200),
    ("Globex", "globex.example", "Energy", 5400),
    ("Initech", "initech.example", "Software", 300),
    ("Umbrella Health", "umbrella-health.example", "Healthcare", 8000),
    ("Stark Logistics", "stark-logistics.example", "Logistics", 950),
    ("Wayne Foods", "wayne-foods.example", "Food & Beverage", 2100),
    ("Hooli", "hooli.example", "Internet", 15000),
    ("Vandelay Imports", "vandelay.example", "Wholesale", 45),
    ("Soylent Labs", "soylent-labs.example", "Biotech", 130),
    ("Tyrell Systems", "tyrell.example", "Robotics", 700),
];
const STAGES: &[LifecycleStage] = &[
    LifecycleStage::Lead,
    LifecycleStage::MarketingQualified,
    LifecycleStage::SalesQualified,
    LifecycleStage::Opportunity,
    LifecycleStage::Customer,
    LifecycleStage::Evangelist,
    LifecycleStage::Churned,
];
const SOURCES: &[LeadSource] = &[
    LeadSource::Web,
    LeadSource::Referral,
    LeadSource::TradeShow,
    LeadSource::Event,
    LeadSource::Advertising,
    LeadSource::EmailCampaign,
    LeadSource::ColdOutreach,
    LeadSource::Social,
    LeadSource::Content,
    LeadSource::PurchasedList,
    LeadSource::Partner,
    LeadSource::Other,
];

/// Creates the demo companies and `count` contacts.
pub async fn seed(env: &Env, addr: &str, count: u32) -> anyhow::Result<()> {
    let auth = rapport_kit::auth::config_from_env(env)?;
    let rapport_kit::auth::KeySource::Secret(secret) = &auth.keys else {
        anyhow::bail!("seed-demo signs its token with AUTH_JWT_SECRET");
    };
    let token = rapport_kit::auth::mint_hs256(
        secret,
        &auth.issuer,
        &auth.audience,
        "seed-demo",
        &[Role::Admin],
        std::time::Duration::from_secs(3600),
    )?;
    let header: tonic::metadata::MetadataValue<_> = format!("Bearer {token}").parse()?;
    let channel = Channel::from_shared(format!("http://{addr}"))?.connect().await?;
    let mut client =
        ContactServiceClient::with_interceptor(channel, move |mut request: tonic::Request<()>| {
            request.metadata_mut().insert("authorization", header.clone());
            Ok(request)
        });

    let mut company_ids = Vec::new();
    for (index, (name, domain, industry, employees)) in COMPANIES.iter().enumerate() {
        let company = Company {
            name: (*name).to_owned(),
            domain: (*domain).to_owned(),
            industry: (*industry).to_owned(),
            employee_count: *employees,
            annual_revenue: Some(Money {
                currency_code: if index % 3 == 0 { "USD" } else { "EUR" }.to_owned(),
                minor_units: i64::from(*employees) * 15_000_000,
            }),
            owner_id: format!("rep-{}", index % 4 + 1),
            ..Company::default()
        };
        let created = client
            .create_company(CreateCompanyRequest {
                company: Some(company),
                request_id: format!("seed-demo-company-{index}"),
            })
            .await;
        company_ids.push(existing_or_created(created.map(|company| company.into_inner().id))?);
    }

    let mut created = 0u32;
    for index in 0..count as usize {
        let given = GIVEN[index % GIVEN.len()];
        let family = FAMILY[(index / GIVEN.len() + index) % FAMILY.len()];
        let company = index % (COMPANIES.len() + 1);
        let contact = Contact {
            given_name: given.to_owned(),
            family_name: family.to_owned(),
            email: format!(
                "{}.{}.{index}@{}",
                given.to_lowercase(),
                family.to_lowercase(),
                COMPANIES[index % COMPANIES.len()].1
            ),
            phone: format!("+1 555 {:04}", index % 10_000),
            job_title: TITLES[index % TITLES.len()].to_owned(),
            company_id: company_ids.get(company).cloned().unwrap_or_default(),
            owner_id: format!("rep-{}", index % 4 + 1),
            lifecycle_stage: STAGES[index % STAGES.len()].into(),
            lead_source: SOURCES[index % SOURCES.len()].into(),
            lead_source_detail: if index % SOURCES.len() == 2 {
                "CRM Expo 2026".to_owned()
            } else {
                String::new()
            },
            tags: match index % 4 {
                0 => vec!["vip".to_owned()],
                1 => vec!["newsletter".to_owned(), "webinar".to_owned()],
                _ => Vec::new(),
            },
            email_opt_in: index % 3 != 0,
            ..Contact::default()
        };
        let created_contact = client
            .create_contact(CreateContactRequest {
                contact: Some(contact),
                request_id: format!("seed-demo-contact-{index}"),
            })
            .await;
        existing_or_created(created_contact.map(|contact| contact.into_inner().id))?;
        created += 1;
    }
    println!(
        "demo data ready: {} companies, {created} contacts (running it again creates nothing new)",
        COMPANIES.len()
    );
    Ok(())
}

/// The id of a created record, or of the live record that already holds
/// its unique email or domain (the demo data from an earlier run, after its
/// request ids have expired).
fn existing_or_created(result: Result<String, tonic::Status>) -> anyhow::Result<String> {
    use tonic_types::StatusExt;
    match result {
        Ok(id) => Ok(id),
        Err(status) if status.code() == tonic::Code::AlreadyExists => status
            .get_error_details()
            .resource_info()
            .map(|resource| resource.resource_name.clone())
            .ok_or_else(|| anyhow::anyhow!("{}", status.message())),
        Err(status) => Err(status.into()),
    }
}
