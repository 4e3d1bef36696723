//! Stored records to their protobuf form. The only place that maps domain
//! records to wire messages (the API and the change log both use it).

use chrono::{DateTime, Utc};
use rapport_kit::changelog::timestamp;
use rapport_proto::common::v1::Money as ProtoMoney;
use rapport_proto::contacts::v1::{Activity, Company, Contact, LifecycleTransition, Task, TimelineEntry};

use rapport_kit::db::etag;

use crate::model::{
    ActivityRecord, CompanyRecord, ConsentEventRecord, ContactConsentRecord, ContactRecord, TimelineRecord,
    TransitionRecord,
};

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
        last_activity_time: record.last_activity_time.map(timestamp),
        qualification: record.qualification.clone(),
        lead_score: record.lead_score,
        lead_grade: record.lead_grade.into(),
        country: state.country.clone(),
        region: state.region.clone(),
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
        last_activity_time: record.last_activity_time.map(timestamp),
        country: state.country.clone(),
        region: state.region.clone(),
    }
}

/// The wire form of an activity as of `now` (a task's `overdue`).
pub fn activity_to_proto(record: &ActivityRecord, now: DateTime<Utc>) -> Activity {
    let state = &record.state;
    let links = &state.links;
    let id = |id: Option<uuid::Uuid>| id.map(|id| id.to_string()).unwrap_or_default();
    Activity {
        id: record.id.to_string(),
        kind: state.kind.into(),
        subject: state.subject.clone(),
        body: state.body.clone(),
        direction: state.direction.into(),
        occur_time: Some(timestamp(state.occur_time)),
        duration: (state.duration_seconds > 0)
            .then(|| prost_types::Duration { seconds: i64::from(state.duration_seconds), nanos: 0 }),
        call_outcome: state.call_outcome.into(),
        actor_id: record.actor_id.clone(),
        owner_id: state.owner_id.clone(),
        team_id: state.team_id.clone(),
        participant_contact_ids: links.participants.iter().map(ToString::to_string).collect(),
        contact_id: id(links.contact_id.map(|id| id.uuid())),
        company_id: id(links.company_id.map(|id| id.uuid())),
        deal_id: id(links.deal_id),
        case_id: id(links.case_id),
        deleted_links: state.deleted_links.clone(),
        task: state.task.as_ref().map(|task| Task {
            priority: task.priority.into(),
            status: task.status.into(),
            complete_time: task.complete_time.map(timestamp),
            completed_by: task.completed_by.clone(),
            remind_time: task.remind_time.map(timestamp),
            recurrence: task.recurrence.into(),
            overdue: task.is_overdue(state.occur_time, now),
        }),
        create_time: Some(timestamp(record.create_time)),
        update_time: Some(timestamp(record.update_time)),
        delete_time: record.delete_time.map(timestamp),
        etag: etag(record.version),
    }
}

/// The wire form of a timeline entry.
pub fn timeline_entry_to_proto(record: &TimelineRecord, now: DateTime<Utc>) -> TimelineEntry {
    TimelineEntry {
        id: record.id.to_string(),
        occur_time: Some(timestamp(record.occur_time)),
        source: record.source.into(),
        kind: record.kind.into(),
        title: record.title.clone(),
        detail: record.detail.clone(),
        actor_id: record.actor_id.clone(),
        resource_type: record.resource_type.clone(),
        resource_id: record.resource_id.clone(),
        activity: record.activity.as_ref().map(|activity| activity_to_proto(activity, now)),
        actor_display_name: record.actor_display_name.clone(),
    }
}

/// The wire form of a lifecycle move.
pub fn transition_to_proto(record: &TransitionRecord) -> LifecycleTransition {
    LifecycleTransition {
        from_stage: record.from_stage.into(),
        to_stage: record.to_stage.into(),
        change_time: Some(timestamp(record.change_time)),
        actor_id: record.actor_id.clone(),
        cause: record.cause.into(),
        reason: record.reason.clone(),
        cause_id: record.cause_id.clone(),
    }
}

/// A consent change (kind `CONSENT`) as the API shows it.
pub fn consent_event_to_proto(record: &ConsentEventRecord) -> rapport_proto::contacts::v1::ConsentEvent {
    use crate::domain::consent::{channel_from_name, source_from_name};
    rapport_proto::contacts::v1::ConsentEvent {
        id: record.id.to_string(),
        contact_id: record.contact_id.to_string(),
        channel: channel_from_name(&record.channel) as i32,
        purpose: record.purpose.clone(),
        granted: record.granted,
        source: source_from_name(&record.source) as i32,
        evidence: record.evidence.clone(),
        occur_time: Some(timestamp(record.occur_time)),
        record_time: Some(timestamp(record.record_time)),
        actor: record.actor.clone(),
    }
}

/// A history entry: a consent change or a do-not-contact change.
pub fn consent_history_entry_to_proto(
    record: &ConsentEventRecord,
) -> rapport_proto::contacts::v1::ConsentHistoryEntry {
    use rapport_proto::contacts::v1::{DoNotContactChange, consent_history_entry::Entry};
    let entry = if record.kind == "DO_NOT_CONTACT" {
        Entry::DoNotContact(DoNotContactChange {
            do_not_contact: record.granted,
            reason: record.evidence.clone(),
            change_time: Some(timestamp(record.record_time)),
            actor: record.actor.clone(),
        })
    } else {
        Entry::Event(consent_event_to_proto(record))
    };
    rapport_proto::contacts::v1::ConsentHistoryEntry { entry: Some(entry) }
}

/// A contact's consent as it stands.
pub fn contact_consent_to_proto(
    record: &ContactConsentRecord,
) -> rapport_proto::contacts::v1::ContactConsent {
    use crate::domain::consent::{channel_from_name, source_from_name};
    rapport_proto::contacts::v1::ContactConsent {
        contact_id: record.contact_id.to_string(),
        consents: record
            .consents
            .iter()
            .map(|consent| rapport_proto::contacts::v1::Consent {
                channel: channel_from_name(&consent.channel) as i32,
                purpose: consent.purpose.clone(),
                granted: consent.granted,
                source: source_from_name(&consent.source) as i32,
                occur_time: Some(timestamp(consent.occur_time)),
                event_id: consent.event_id.to_string(),
            })
            .collect(),
        do_not_contact: record.do_not_contact,
        do_not_contact_reason: record.do_not_contact_reason.clone(),
        do_not_contact_time: record.do_not_contact_time.map(timestamp),
    }
}
