//! Typed ids of everything the Pipeline service owns or references.

rapport_kit::typed_id!(PipelineId, "pipeline");
rapport_kit::typed_id!(StageId, "stage");
rapport_kit::typed_id!(LostReasonId, "lost reason");
rapport_kit::typed_id!(ProductId, "product");
rapport_kit::typed_id!(DealId, "deal");
rapport_kit::typed_id!(LineItemId, "line item");
rapport_kit::typed_id!(OrderId, "order");
rapport_kit::typed_id!(InvoiceId, "invoice");
rapport_kit::typed_id!(PaymentId, "payment");
rapport_kit::typed_id!(ContactId, "contact");
rapport_kit::typed_id!(CompanyId, "company");
