//! Who may call which Pipeline RPC: one role table per gRPC service.

use rapport_kit::auth::{Fields, Ownership, Policy, Role};

use rapport_proto::pipeline::v1::{
    deal_service_server::SERVICE_NAME as DEAL_SERVICE,
    forecast_service_server::SERVICE_NAME as FORECAST_SERVICE,
    order_service_server::SERVICE_NAME as ORDER_SERVICE,
    pipeline_service_server::SERVICE_NAME as PIPELINE_SERVICE,
    product_service_server::SERVICE_NAME as PRODUCT_SERVICE,
};

use crate::error::resource;

const EVERYONE: &[Role] = &Role::ALL;
const SELLERS: &[Role] = &[Role::Admin, Role::SalesManager, Role::SalesRep];
const MANAGERS: &[Role] = &[Role::Admin, Role::SalesManager];
const ADMINS: &[Role] = &[Role::Admin];
const ERP: &[Role] = &[Role::Integration, Role::Admin];
const REPORT_READERS: &[Role] =
    &[Role::Admin, Role::SalesManager, Role::SalesRep, Role::Marketing, Role::SupportAgent, Role::Viewer];

const PIPELINES: &[(&str, &[Role])] = &[
    ("CreatePipeline", MANAGERS),
    ("GetPipeline", EVERYONE),
    ("UpdatePipeline", MANAGERS),
    ("DeletePipeline", MANAGERS),
    ("UndeletePipeline", MANAGERS),
    ("ListPipelines", EVERYONE),
    ("AddStage", MANAGERS),
    ("UpdateStage", MANAGERS),
    ("ReorderStages", MANAGERS),
    ("RetireStage", MANAGERS),
    ("UnretireStage", MANAGERS),
    ("CreateLostReason", MANAGERS),
    ("UpdateLostReason", MANAGERS),
    ("ListLostReasons", EVERYONE),
    ("WatchChanges", EVERYONE),
];

const DEALS: &[(&str, &[Role])] = &[
    ("CreateDeal", SELLERS),
    ("GetDeal", EVERYONE),
    ("UpdateDeal", SELLERS),
    ("DeleteDeal", MANAGERS),
    ("UndeleteDeal", MANAGERS),
    ("ListDeals", EVERYONE),
    ("SearchDeals", EVERYONE),
    ("MoveDealStage", SELLERS),
    ("WinDeal", SELLERS),
    ("LoseDeal", SELLERS),
    ("ReopenDeal", SELLERS),
    ("GetDealHistory", EVERYONE),
    ("ListStaleDeals", EVERYONE),
];

const PRODUCTS: &[(&str, &[Role])] = &[
    ("CreateProduct", MANAGERS),
    ("GetProduct", EVERYONE),
    ("UpdateProduct", MANAGERS),
    ("DeleteProduct", MANAGERS),
    ("UndeleteProduct", MANAGERS),
    ("ListProducts", EVERYONE),
];

const FORECASTS: &[(&str, &[Role])] = &[
    ("GetForecast", REPORT_READERS),
    ("GetPipelineSummary", REPORT_READERS),
    ("SetExchangeRate", ADMINS),
    ("ListExchangeRates", EVERYONE),
    ("SetQuota", MANAGERS),
    ("ListQuotas", REPORT_READERS),
];

const ORDERS: &[(&str, &[Role])] = &[
    ("GetOrder", EVERYONE),
    ("ListOrders", EVERYONE),
    ("AcknowledgeOrder", ERP),
    ("FulfillOrder", ERP),
    ("CancelOrder", ERP),
    ("RecordInvoice", ERP),
    ("GetInvoice", EVERYONE),
    ("ListInvoices", EVERYONE),
    ("RecordPayment", ERP),
    ("ListPayments", EVERYONE),
    ("GetAccountStanding", EVERYONE),
];

/// The role tables of every Pipeline gRPC service.
pub fn policies() -> Vec<Policy> {
    vec![
        Policy::new(PIPELINE_SERVICE, PIPELINES),
        Policy::new(DEAL_SERVICE, DEALS),
        Policy::new(PRODUCT_SERVICE, PRODUCTS),
        Policy::new(FORECAST_SERVICE, FORECASTS),
        Policy::new(ORDER_SERVICE, ORDERS),
    ]
}

/// Who may change which deal: a sales rep the deals they own or are a
/// team member of; managers their teams'; admins all. Only managers and
/// admins reassign.
pub const DEALS_OWNERSHIP: Ownership = Ownership {
    kind: "deal",
    bound: &[Role::SalesRep],
    managers: &[Role::SalesManager],
    any: &[(Role::Integration, Fields::All)],
};

/// Who reads quotas when they are team-visible: a quota has an owner and no
/// team, so a rep reads their own; managers (who set them) and admins read
/// every quota. Quotas are written by managers and admins only (role
/// table), so this kind has no write rules beyond it.
pub const QUOTAS_OWNERSHIP: Ownership = Ownership {
    kind: "quota",
    bound: &[Role::SalesRep],
    managers: &[Role::SalesManager],
    any: &[(Role::SalesManager, Fields::All)],
};

/// Which read RPC shows each resource type of Pipeline's change feed:
/// `WatchChanges` carries only the types its caller may read through them.
pub const FEED_READS: &[(&str, &str, &str)] = &[
    (resource::PIPELINE, PIPELINE_SERVICE, "ListPipelines"),
    (resource::STAGE, PIPELINE_SERVICE, "ListPipelines"),
    (resource::LOST_REASON, PIPELINE_SERVICE, "ListLostReasons"),
    (resource::PRODUCT, PRODUCT_SERVICE, "ListProducts"),
    (resource::DEAL, DEAL_SERVICE, "ListDeals"),
    (resource::ORDER, ORDER_SERVICE, "ListOrders"),
    (resource::INVOICE, ORDER_SERVICE, "ListInvoices"),
    (resource::PAYMENT, ORDER_SERVICE, "ListPayments"),
    (resource::EXCHANGE_RATE, FORECAST_SERVICE, "ListExchangeRates"),
    (resource::QUOTA, FORECAST_SERVICE, "ListQuotas"),
];
