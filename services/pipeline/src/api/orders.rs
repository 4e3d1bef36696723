//! `OrderService`: see `proto/rapport/pipeline/v1/orders.proto`.

use rapport_kit::auth;
use rapport_kit::listing::{ListQuery, ListRequest};
use rapport_proto::pipeline::v1::order_service_server::OrderService;
use rapport_proto::pipeline::v1::*;
use tonic::{Request, Response, Status};

use super::Api;
use crate::domain::ids::{CompanyId, InvoiceId, OrderId};
use crate::domain::invoice::{InvoiceDraft, PaymentDraft};
use crate::domain::order::{self, ExternalRef};
use crate::error::Error;
use crate::store::deals::{self, Through};
use crate::store::orders::Step;
use crate::store::{Write, invoices, orders, payments};

type Result<T> = std::result::Result<Response<T>, Status>;

/// The List request fields of a resource that is never soft-deleted.
fn list_request<'a>(
    filter: &'a str,
    order_by: &'a str,
    page_size: i32,
    page_token: &'a str,
) -> ListRequest<'a> {
    ListRequest { filter, order_by, page_size, page_token, show_deleted: false }
}

impl Api {
    /// Applies an ERP step to an order and wakes watchers if it wrote.
    async fn order_step<T>(&self, request: &Request<T>, id: OrderId, step: Step) -> Result<Order> {
        let actor = auth::principal(request)?.clone();
        let result = orders::transition(&self.state.pool, id, step, Write::by(&actor)).await;
        self.state.written(&result);
        Ok(Response::new(result?))
    }
}

#[tonic::async_trait]
impl OrderService for Api {
    async fn get_order(&self, request: Request<GetOrderRequest>) -> Result<Order> {
        let id = OrderId::parse("id", &request.get_ref().id).map_err(Error::from)?;
        let order = orders::get(&self.state.pool, id).await?;
        self.readable(&request, Through::Order(id.uuid()), "order").await?;
        Ok(Response::new(order))
    }

    async fn list_orders(&self, request: Request<ListOrdersRequest>) -> Result<ListOrdersResponse> {
        let scope = self.state.deal_scope(auth::principal(&request)?);
        let request = request.into_inner();
        let mut query = ListQuery::parse(
            &list_request(&request.filter, &request.order_by, request.page_size, &request.page_token),
            &orders::LIST,
        )
        .map_err(Error::from)?;
        if !scope.is_all() {
            query.and(|first| deals::readable_through(&scope, "orders", first));
        }
        let (orders, next_page_token) = orders::list(&self.state.pool, &query).await?;
        Ok(Response::new(ListOrdersResponse { orders, next_page_token }))
    }

    async fn acknowledge_order(&self, request: Request<AcknowledgeOrderRequest>) -> Result<Order> {
        let input = request.get_ref();
        let id = OrderId::parse("id", &input.id);
        let external_ref = ExternalRef::parse("external_ref", &input.external_ref, 128);
        let (id, external_ref) = match (id, external_ref) {
            (Ok(id), Ok(external_ref)) => (id, external_ref),
            (id, external_ref) => {
                return Err(Error::from(
                    [id.err(), external_ref.err()].into_iter().flatten().collect::<Vec<_>>(),
                )
                .into());
            }
        };
        self.order_step(&request, id, Step::Acknowledge(external_ref)).await
    }

    async fn fulfill_order(&self, request: Request<FulfillOrderRequest>) -> Result<Order> {
        let id = OrderId::parse("id", &request.get_ref().id).map_err(Error::from)?;
        self.order_step(&request, id, Step::Fulfill).await
    }

    async fn cancel_order(&self, request: Request<CancelOrderRequest>) -> Result<Order> {
        let input = request.get_ref();
        let (id, reason) = match (OrderId::parse("id", &input.id), order::cancel_reason(&input.reason)) {
            (Ok(id), Ok(reason)) => (id, reason),
            (id, reason) => {
                return Err(
                    Error::from([id.err(), reason.err()].into_iter().flatten().collect::<Vec<_>>()).into()
                );
            }
        };
        self.order_step(&request, id, Step::Cancel(reason)).await
    }

    async fn record_invoice(&self, request: Request<RecordInvoiceRequest>) -> Result<Invoice> {
        let actor = auth::principal(&request)?.clone();
        let input = request.get_ref();
        let draft = InvoiceDraft::parse(
            &input.order_id,
            &input.number,
            input.amount.as_ref(),
            input.issue_date.as_ref(),
            input.due_date.as_ref(),
        )
        .map_err(Error::from)?;
        let result = invoices::record(&self.state.pool, draft, Write::by(&actor)).await;
        self.state.written(&result);
        Ok(Response::new(result?))
    }

    async fn get_invoice(&self, request: Request<GetInvoiceRequest>) -> Result<Invoice> {
        let id = InvoiceId::parse("id", &request.get_ref().id).map_err(Error::from)?;
        let invoice = invoices::get(&self.state.pool, id).await?;
        self.readable(&request, Through::Invoice(id.uuid()), "invoice").await?;
        Ok(Response::new(invoice))
    }

    async fn list_invoices(&self, request: Request<ListInvoicesRequest>) -> Result<ListInvoicesResponse> {
        let scope = self.state.deal_scope(auth::principal(&request)?);
        let request = request.into_inner();
        let mut query = ListQuery::parse(
            &list_request(&request.filter, &request.order_by, request.page_size, &request.page_token),
            &invoices::LIST,
        )
        .map_err(Error::from)?;
        if !scope.is_all() {
            query.and(|first| deals::readable_through(&scope, "invoices", first));
        }
        let (invoices, next_page_token) = invoices::list(&self.state.pool, &query).await?;
        Ok(Response::new(ListInvoicesResponse { invoices, next_page_token }))
    }

    async fn record_payment(&self, request: Request<RecordPaymentRequest>) -> Result<RecordPaymentResponse> {
        let actor = auth::principal(&request)?.clone();
        let input = request.get_ref();
        let draft = PaymentDraft::parse(
            &input.invoice_id,
            input.amount.as_ref(),
            input.payment_date.as_ref(),
            &input.external_ref,
        )
        .map_err(Error::from)?;
        let result = payments::record(&self.state.pool, draft, Write::by(&actor)).await;
        self.state.written(&result);
        let (payment, invoice) = result?;
        Ok(Response::new(RecordPaymentResponse { payment: Some(payment), invoice: Some(invoice) }))
    }

    async fn list_payments(&self, request: Request<ListPaymentsRequest>) -> Result<ListPaymentsResponse> {
        let id = InvoiceId::parse("invoice_id", &request.get_ref().invoice_id).map_err(Error::from)?;
        let payments = payments::list(&self.state.pool, id).await?;
        self.readable(&request, Through::Invoice(id.uuid()), "payment").await?;
        Ok(Response::new(ListPaymentsResponse { payments }))
    }

    async fn get_account_standing(
        &self,
        request: Request<GetAccountStandingRequest>,
    ) -> Result<AccountStanding> {
        let id = CompanyId::parse("company_id", &request.get_ref().company_id).map_err(Error::from)?;
        let standing = invoices::standing(&self.state.pool, id, self.state.config.credit_hold_days).await?;
        Ok(Response::new(standing))
    }
}

impl Api {
    /// `PERMISSION_DENIED` `NOT_IN_TEAM` unless the caller of `request` may
    /// read the deal `through` leads to (always, unless deals are
    /// team-visible).
    async fn readable<T>(
        &self,
        request: &Request<T>,
        through: Through,
        kind: &str,
    ) -> std::result::Result<(), Status> {
        let scope = self.state.deal_scope(auth::principal(request)?);
        if scope.is_all() {
            return Ok(());
        }
        let owners = deals::owners_through(&self.state.pool, through).await?;
        if owners.is_some_and(|owners| scope.may_read(owners.owned())) {
            Ok(())
        } else {
            Err(auth::ReadScope::refusal(kind).into_status())
        }
    }
}
