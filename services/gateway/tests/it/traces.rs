//! One client call through the gateway yields spans from the gateway and
//! the backend that continue the caller's trace, with correct parent links,
//! at a real OTLP receiver.

use crate::common;

use common::{Options, Stack, bearer};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use rapport_kit::auth::Role;
use rapport_kit::testing::otlp::{self, Traced};
use rapport_proto::bench::v1::EchoRequest;
use rapport_proto::bench::v1::echo_service_client::EchoServiceClient;

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(text) => Some(text.clone()),
            Value::IntValue(number) => Some(number.to_string()),
            other => Some(format!("{other:?}")),
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_through_the_gateway_is_one_trace() {
    let collector = otlp::shared().unwrap();
    let traced = Traced::new();

    let stack = Stack::start_with(Options { contacts: false, ..Options::default() }).await;
    let mut client = EchoServiceClient::with_interceptor(stack.channel(), bearer("tracer", &[Role::Viewer]));
    let mut request = tonic::Request::new(EchoRequest { payload: b"traced".to_vec() });
    traced.inject(request.metadata_mut());
    client.echo(request).await.unwrap();
    stack.stop().await;

    let caller = traced.parent_span_id.clone();
    let spans = tokio::task::spawn_blocking(move || collector.spans_of(&traced)).await.unwrap();
    let echo_spans: Vec<&Span> =
        spans.iter().filter(|span| attribute(span, "rpc.method").as_deref() == Some("Echo")).collect();
    // Gateway server span, gateway client span, backend server span.
    assert_eq!(echo_spans.len(), 3, "{echo_spans:#?}");
    let client_span =
        echo_spans.iter().find(|span| span.name == "forward" || span.kind == 3).expect("client span");
    assert_eq!(client_span.kind, 3, "the forward span is a client span");
    let servers: Vec<&&Span> = echo_spans.iter().filter(|span| span.kind == 2).collect();
    assert_eq!(servers.len(), 2, "{servers:#?}");
    let root = servers.iter().find(|span| span.parent_span_id == caller).expect("the gateway's server span");
    let backend = servers.iter().find(|span| span.parent_span_id != caller).expect("a backend server span");
    assert_eq!(client_span.parent_span_id, root.span_id, "forward is a child of the gateway's span");
    assert_eq!(backend.parent_span_id, client_span.span_id, "the backend continues the forward span");
    for span in &servers {
        assert_eq!(attribute(span, "rpc.system").as_deref(), Some("grpc"));
        assert_eq!(attribute(span, "rpc.service").as_deref(), Some("rapport.bench.v1.EchoService"));
        assert_eq!(attribute(span, "rpc.grpc.status_code").as_deref(), Some("0"));
    }
}

/// A deal write through the gateway is one trace: the gateway's span, its
/// forward, Pipeline's span, Pipeline's call of Contacts, and Contacts'
/// span, each child of the one before, each saying which component made it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deal_write_is_one_trace_across_gateway_pipeline_and_contacts() {
    use rapport_proto::common::v1::Money;
    use rapport_proto::contacts::v1::{Company, CreateCompanyRequest};
    use rapport_proto::pipeline::v1::deal_service_client::DealServiceClient;
    use rapport_proto::pipeline::v1::{CreateDealRequest, Deal};

    let collector = otlp::shared().unwrap();
    let traced = Traced::new();
    let stack = Stack::start_with(Options { pipeline: true, ..Options::default() }).await;
    let company = stack
        .contacts()
        .create_company(CreateCompanyRequest {
            company: Some(Company { name: "Initech".into(), ..Default::default() }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut deals = DealServiceClient::with_interceptor(stack.channel(), bearer("rep-1", &[Role::SalesRep]));
    let deal = Deal {
        title: "Traced".into(),
        currency_code: "EUR".into(),
        amount: Some(Money { currency_code: "EUR".into(), minor_units: 1_000 }),
        company_id: company.id,
        ..Default::default()
    };
    let mut request = tonic::Request::new(CreateDealRequest { deal: Some(deal), request_id: String::new() });
    traced.inject(request.metadata_mut());
    deals.create_deal(request).await.unwrap();
    stack.stop().await;

    let caller = traced.parent_span_id.clone();
    let spans = tokio::task::spawn_blocking(move || collector.spans_of(&traced)).await.unwrap();
    let find = |kind: i32, component: Option<&str>, method: &str| {
        spans
            .iter()
            .find(|span| {
                span.kind == kind
                    && attribute(span, "rpc.method").as_deref() == Some(method)
                    && component.is_none_or(|component| {
                        attribute(span, "rapport.component").as_deref() == Some(component)
                    })
            })
            .unwrap_or_else(|| panic!("no span {kind} {component:?} {method} in {spans:#?}"))
    };
    let (server, client) = (2, 3);
    let gateway = find(server, Some("gateway"), "CreateDeal");
    let forward = find(client, None, "CreateDeal");
    let pipeline = find(server, Some("pipeline"), "CreateDeal");
    let ask = find(client, None, "GetCompany");
    let contacts = find(server, Some("contacts"), "GetCompany");
    assert_eq!(gateway.parent_span_id, caller, "the gateway continues the caller's trace");
    assert_eq!(forward.parent_span_id, gateway.span_id);
    assert_eq!(pipeline.parent_span_id, forward.span_id);
    assert_eq!(ask.parent_span_id, pipeline.span_id, "Pipeline's call of Contacts is a child of its span");
    assert_eq!(attribute(ask, "peer.service").as_deref(), Some("contacts"));
    assert_eq!(contacts.parent_span_id, ask.span_id, "Contacts continues Pipeline's call");
}
