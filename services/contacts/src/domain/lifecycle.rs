//! Lifecycle stages: which moves go forward on their own (the documented
//! transitions), which need a manager, and why a stage moved.

use rapport_proto::contacts::v1::{LifecycleCause, LifecycleStage};

/// The main line, in order: a move to a later stage is forward.
const LINE: [LifecycleStage; 7] = [
    LifecycleStage::Subscriber,
    LifecycleStage::Lead,
    LifecycleStage::MarketingQualified,
    LifecycleStage::SalesQualified,
    LifecycleStage::Opportunity,
    LifecycleStage::Customer,
    LifecycleStage::Evangelist,
];

fn rank(stage: LifecycleStage) -> Option<usize> {
    LINE.iter().position(|line| *line == stage)
}

/// Whether `stage` comes before OPPORTUNITY (a lead not yet worked as a
/// deal): the stages a lead may be qualified or disqualified from.
pub fn is_pre_opportunity(stage: LifecycleStage) -> bool {
    rank(stage).is_some_and(|rank| rank < 4)
}

/// Whether `from → to` is a forward move anyone who may change the
/// contact makes (UpdateContact, deal events, rules):
/// - along the line, to a later stage (skipping allowed);
/// - CUSTOMER or EVANGELIST → CHURNED;
/// - CHURNED → OPPORTUNITY or CUSTOMER (buying again).
///
/// DISQUALIFIED is entered only by DisqualifyLead and left only by a
/// manager; staying put is not a move.
pub fn is_forward(from: LifecycleStage, to: LifecycleStage) -> bool {
    use LifecycleStage::{Churned, Customer, Evangelist, Opportunity};
    match (from, to) {
        (Customer | Evangelist, Churned) => true,
        (Churned, Opportunity | Customer) => true,
        _ => matches!((rank(from), rank(to)), (Some(from), Some(to)) if to > from),
    }
}

/// Whether a manager may set `to` explicitly (SetLifecycleStage): any
/// stage but UNSPECIFIED and DISQUALIFIED (which needs DisqualifyLead and
/// its reason).
pub fn is_settable(to: LifecycleStage) -> bool {
    !matches!(to, LifecycleStage::Unspecified | LifecycleStage::Disqualified)
}

/// Whether ReopenLead applies: a disqualified contact, or any stage
/// before CUSTOMER other than LEAD itself.
pub fn is_reopenable(from: LifecycleStage) -> bool {
    from == LifecycleStage::Disqualified || rank(from).is_some_and(|rank| rank < 5 && rank != 1)
}

/// A cause's stored name (`MANUAL`).
pub fn cause_name(cause: LifecycleCause) -> &'static str {
    cause.as_str_name().trim_start_matches("LIFECYCLE_CAUSE_")
}

/// A stored cause name back to the enum.
pub fn cause_from_name(name: &str) -> Result<LifecycleCause, sqlx::Error> {
    rapport_kit::db::stored_enum("cause", "LIFECYCLE_CAUSE_", name, LifecycleCause::from_str_name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use LifecycleStage::*;

    #[test]
    fn forward_moves_follow_the_line_and_the_churn_loop() {
        assert!(is_forward(Lead, MarketingQualified));
        assert!(is_forward(Subscriber, Customer), "skipping ahead is forward");
        assert!(is_forward(Customer, Churned));
        assert!(is_forward(Evangelist, Churned));
        assert!(is_forward(Churned, Customer));
        assert!(!is_forward(SalesQualified, Lead), "backwards");
        assert!(!is_forward(Lead, Lead), "staying is not a move");
        assert!(!is_forward(Lead, Churned), "only customers churn");
        assert!(!is_forward(Lead, Disqualified), "only DisqualifyLead disqualifies");
        assert!(!is_forward(Disqualified, SalesQualified), "only a manager reopens");
        assert!(!is_forward(Churned, Evangelist));
    }

    #[test]
    fn qualification_applies_before_opportunity_and_reopening_to_lost_leads() {
        assert!(is_pre_opportunity(Subscriber) && is_pre_opportunity(SalesQualified));
        assert!(!is_pre_opportunity(Opportunity) && !is_pre_opportunity(Disqualified));
        assert!(is_reopenable(Disqualified) && is_reopenable(Opportunity));
        assert!(!is_reopenable(Lead) && !is_reopenable(Customer) && !is_reopenable(Churned));
        assert!(is_settable(Lead) && !is_settable(Disqualified) && !is_settable(Unspecified));
    }
}
