//! Stored records to their protobuf form. The only place that maps domain
//! records to wire messages (the API and the change log both use it).

use rapport_kit::changelog::timestamp;
use rapport_proto::common::v1::Money as ProtoMoney;
use rapport_proto::contacts::v1::{Company, Contact};

use rapport_kit::db::etag;

use crate::model::{CompanyRecord, ContactRecord};

/// The wire form of a contact.
pub fn contact_to_proto(record: &ContactRecord) -> Contact {
    let state = &record.state;
    Contact {
        id: record.id.to_string(),
        given_name: state.given_name.clone(),
        family_name: state.family_name.clone(),
        email: state.email.as_str().to_owned(),
        phone: state.phone.clone(),
        job_title: state.job_title.clone(),
        company_id: state.company_id.map(|id| id.to_string()).unwrap_or_default(),
        owner_id: state.owner_id.clone(),
        team_id: state.team_id.clone(),
        lifecycle_stage: state.lifecycle_stage.into(),
        lead_source: state.lead_source.into(),
        lead_source_detail: state.lead_source_detail.clone(),
        source_campaign_id: state.source_campaign_id.clone(),
        tags: state.tags.clone(),
        email_opt_in: state.email_opt_in,
        email_opt_in_time: state.email_opt_in_time.map(timestamp),
        create_time: Some(timestamp(record.create_time)),
        update_time: Some(timestamp(record.update_time)),
        delete_time: record.delete_time.map(timestamp),
        etag: etag(record.version),
    }
}

/// The wire form of a company.
pub fn company_to_proto(record: &CompanyRecord) -> Company {
    let state = &record.state;
    Company {
        id: record.id.to_string(),
        name: state.name.clone(),
        domain: state.domain.clone().unwrap_or_default(),
        industry: state.industry.clone(),
        employee_count: state.employee_count,
        annual_revenue: state.annual_revenue.as_ref().map(|money| ProtoMoney {
            currency_code: money.currency_code.clone(),
            minor_units: money.minor_units,
        }),
        owner_id: state.owner_id.clone(),
        team_id: state.team_id.clone(),
        parent_company_id: state.parent_company_id.map(|id| id.to_string()).unwrap_or_default(),
        create_time: Some(timestamp(record.create_time)),
        update_time: Some(timestamp(record.update_time)),
        delete_time: record.delete_time.map(timestamp),
        etag: etag(record.version),
    }
}
