//! Typed ids of everything the Support service owns or references.

rapport_kit::typed_id!(CaseId, "case");
rapport_kit::typed_id!(CommentId, "comment");
rapport_kit::typed_id!(PolicyId, "SLA policy");
rapport_kit::typed_id!(CalendarId, "calendar");
rapport_kit::typed_id!(ContactId, "contact");
rapport_kit::typed_id!(CompanyId, "company");
rapport_kit::typed_id!(DealId, "deal");
rapport_kit::typed_id!(ArticleId, "article");
