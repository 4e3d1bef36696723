//! `OrderService`: see `proto/rapport/pipeline/v1/orders.proto`.

use rapport_proto::pipeline::v1::order_service_server::OrderService;
use rapport_proto::pipeline::v1::*;
use tonic::{Request, Response, Status};

use super::Api;

type Result<T> = std::result::Result<Response<T>, Status>;

#[tonic::async_trait]
impl OrderService for Api {
    async fn get_order(&self, _request: Request<GetOrderRequest>) -> Result<Order> {
        Err(super::not_yet("GetOrder"))
    }

    async fn list_orders(&self, _request: Request<ListOrdersRequest>) -> Result<ListOrdersResponse> {
        Err(super::not_yet("ListOrders"))
    }

    async fn acknowledge_order(&self, _request: Request<AcknowledgeOrderRequest>) -> Result<Order> {
        Err(super::not_yet("AcknowledgeOrder"))
    }

    async fn fulfill_order(&self, _request: Request<FulfillOrderRequest>) -> Result<Order> {
        Err(super::not_yet("FulfillOrder"))
    }

    async fn cancel_order(&self, _request: Request<CancelOrderRequest>) -> Result<Order> {
        Err(super::not_yet("CancelOrder"))
    }

    async fn record_invoice(&self, _request: Request<RecordInvoiceRequest>) -> Result<Invoice> {
        Err(super::not_yet("RecordInvoice"))
    }

    async fn get_invoice(&self, _request: Request<GetInvoiceRequest>) -> Result<Invoice> {
        Err(super::not_yet("GetInvoice"))
    }

    async fn list_invoices(&self, _request: Request<ListInvoicesRequest>) -> Result<ListInvoicesResponse> {
        Err(super::not_yet("ListInvoices"))
    }

    async fn record_payment(&self, _request: Request<RecordPaymentRequest>) -> Result<RecordPaymentResponse> {
        Err(super::not_yet("RecordPayment"))
    }

    async fn list_payments(&self, _request: Request<ListPaymentsRequest>) -> Result<ListPaymentsResponse> {
        Err(super::not_yet("ListPayments"))
    }

    async fn get_account_standing(
        &self,
        _request: Request<GetAccountStandingRequest>,
    ) -> Result<AccountStanding> {
        Err(super::not_yet("GetAccountStanding"))
    }
}
