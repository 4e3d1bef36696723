//! What another service's change event does here, decoded by `crate::feeds`
//! and applied by `crate::store::projection`: timeline entries, lifecycle
//! moves, activity link marks, and the small projections the entries'
//! words need. Pure data.

use rapport_proto::contacts::v1::{LifecycleCause, LifecycleStage, TimelineEntryKind};
use uuid::Uuid;

/// A link of an activity to another service's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// `deal_id`
    Deal,
    /// `case_id`
    Case,
}

impl Link {
    /// The activity field.
    pub fn field(self) -> &'static str {
        match self {
            Link::Deal => "deal_id",
            Link::Case => "case_id",
        }
    }
}

/// What a timeline entry is about, for its words.
#[derive(Debug, Clone, PartialEq)]
pub enum Fact {
    /// A deal: its title and current stage.
    Deal {
        /// Title.
        title: String,
        /// Stage (its name is looked up).
        stage_id: Option<Uuid>,
    },
    /// An invoice: its number and order (whose deal is looked up).
    Invoice {
        /// Number.
        number: String,
        /// Order.
        order_id: Option<Uuid>,
    },
    /// A support case.
    Case {
        /// `CASE-1042`.
        number: String,
        /// Subject.
        subject: String,
    },
}

/// Something that happened to records of another service.
#[derive(Debug, Clone, PartialEq)]
pub struct Happened {
    /// What.
    pub kind: TimelineEntryKind,
    /// The words.
    pub fact: Fact,
    /// The deal it shows on, if any.
    pub deal_id: Option<Uuid>,
    /// The company.
    pub company_id: Option<Uuid>,
    /// The contacts.
    pub contact_ids: Vec<Uuid>,
    /// The case.
    pub case_id: Option<Uuid>,
}

/// One effect of an event here.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Timeline entries.
    Timeline(Happened),
    /// Contacts move forward to `to` (only those for which it is forward).
    Lifecycle {
        /// Who.
        contacts: Vec<Uuid>,
        /// Where to.
        to: LifecycleStage,
        /// Why.
        cause: LifecycleCause,
        /// The deal.
        cause_id: String,
    },
    /// Activities linking the record are marked (or unmarked).
    LinkDeleted {
        /// Which link.
        link: Link,
        /// The record.
        id: Uuid,
        /// Deleted or restored.
        deleted: bool,
    },
    /// Activities of a merged case move to the survivor.
    CaseMerged {
        /// The merged case.
        merged: Uuid,
        /// The survivor.
        survivor: Uuid,
    },
    /// A stage's name.
    StageName {
        /// Stage.
        stage_id: Uuid,
        /// Name.
        name: String,
    },
    /// Who is on a deal now.
    DealContacts {
        /// Deal.
        deal_id: Uuid,
        /// Its contacts.
        contact_ids: Vec<Uuid>,
    },
    /// The deal an order came from.
    Order {
        /// Order.
        order_id: Uuid,
        /// Deal.
        deal_id: Option<Uuid>,
    },
}
