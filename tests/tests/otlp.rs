//! What the suite exports over OTLP, received by an in-process collector. One trace across the
//! suite: the spans of a managed CreateSku, the Catalog's and the Inventory's, in one trace with
//! the right parents, continuing the trace the outside client started, with each service's
//! database statements under its RPC; the same for a CreateReservation. And a service's metrics,
//! pushed when it stops. (Its own test binary: tracing is installed once per process.)

use std::time::Duration;

use fulfillment_proto::catalog::v1 as pb;
use fulfillment_proto::common::v1::Address;
use fulfillment_proto::reservation::v1 as res;
use fulfillment_server::telemetry::{self, LogFormat};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::trace::v1::Span;
use suite_tests::{Backend, Spawn};
use tokio::sync::mpsc;

/// An in-process OTLP collector: it hands every exported batch to the test.
struct Receiver(mpsc::UnboundedSender<ExportTraceServiceRequest>);

/// Its metrics side.
struct MetricsReceiver(mpsc::UnboundedSender<ExportMetricsServiceRequest>);

#[tonic::async_trait]
impl MetricsService for MetricsReceiver {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let _ = self.0.send(request.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse { partial_success: None }))
    }
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let _ = self.0.send(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

const CLIENT_TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN_ID: &str = "00f067aa0ba902b7";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_sku_and_create_reservation_are_each_one_trace_and_metrics_are_pushed() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let collector = listener.local_addr().expect("address");
    let (batches_tx, mut batches) = mpsc::unbounded_channel();
    let (metrics_tx, mut metric_batches) = mpsc::unbounded_channel();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Receiver(batches_tx)))
            .add_service(MetricsServiceServer::new(MetricsReceiver(metrics_tx)))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let tracing = telemetry::init("suite-test", LogFormat::Text, Some(&format!("http://{collector}")));

    let (catalog, mut client) = Spawn::on(Backend::Sqlite).catalog_and_inventory().await;
    client
        .register_manufacturer_part(pb::RegisterManufacturerPartRequest {
            manufacturer_id: "20013".into(),
            part_number: "DEMOPARTNUMBER2".into(),
        })
        .await
        .expect("part");
    let sku = pb::Sku {
        id: "traced".into(),
        name: "Traced".into(),
        eccn: "EAR99".into(),
        tax_code: "4323.310_A".into(),
        country_of_origin: "DE".into(),
        part_number: "DEMOPARTNUMBER2".into(),
        manufacturer_id: "20013".into(),
        managed_fulfillment: "DRGlobalFulfillment".into(),
        ..Default::default()
    };
    // An outside client that already has a trace sends its context along.
    let mut request = tonic::Request::new(pb::CreateSkuRequest { sku: Some(sku) });
    let traceparent = format!("00-{CLIENT_TRACE_ID}-{CLIENT_SPAN_ID}-01");
    request.metadata_mut().insert("traceparent", traceparent.parse().expect("ascii"));
    client.create_sku(request).await.expect("created");
    drop(client);
    catalog.stop().await.expect("stopped");

    // A reservation, through the Reservation service and the Inventory.
    let (inventory, _inventory_client) = Spawn::on(Backend::Sqlite).stocked_inventory(0).await;
    let collector_url = format!("http://{collector}");
    let (reservation, mut reservations) = Spawn::on(Backend::Sqlite)
        .with(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &collector_url)])
        .reservation(inventory.address)
        .await;
    let reserve = res::Reservation {
        id: "traced-reservation".into(),
        items: vec![res::ReservationItem { inventory_item_id: "a".into(), quantity: 1, allow_oversell: Some(true) }],
        ship_to: Some(res::ShipTo { address: Some(Address { country: "US".into(), ..Default::default() }) }),
        ..Default::default()
    };
    reservations
        .create_reservation(res::CreateReservationRequest { reservation: Some(reserve) })
        .await
        .expect("reserved");
    drop(reservations);
    reservation.stop().await.expect("stopped");
    inventory.stop().await.expect("stopped");
    tracing.shutdown().await;

    let mut spans: Vec<Span> = Vec::new();
    while let Ok(Some(batch)) = tokio::time::timeout(Duration::from_secs(2), batches.recv()).await {
        for resource in batch.resource_spans {
            for scope in resource.scope_spans {
                spans.extend(scope.spans);
            }
        }
    }
    let named = |name: &str| spans.iter().find(|span| span.name == name).cloned();
    let create_sku = named("/fulfillment.catalog.v1.CatalogService/CreateSku").expect("the Catalog's span");
    let create_item =
        named("/fulfillment.inventory.v1.InventoryService/CreateInventoryItem").expect("the Inventory's span");
    assert_eq!(hex(&create_sku.trace_id), CLIENT_TRACE_ID, "the client's trace is continued");
    assert_eq!(hex(&create_sku.parent_span_id), CLIENT_SPAN_ID, "under the client's span");
    assert_eq!(create_item.trace_id, create_sku.trace_id, "one trace spans both services");
    assert_eq!(create_item.parent_span_id, create_sku.span_id, "the Inventory's span is the Catalog's child");

    let create_reservation =
        named("/fulfillment.reservation.v1.ReservationService/CreateReservation").expect("the Reservation's span");
    let place_hold = named("/fulfillment.inventory.v1.InventoryService/PlaceHold").expect("the Inventory's span");
    assert_eq!(place_hold.trace_id, create_reservation.trace_id, "one trace spans both services");
    assert_eq!(place_hold.parent_span_id, create_reservation.span_id);

    // Database calls are spans of the same trace, under the RPC that made them (the Inventory's
    // hold statements under a batch span of the call), in both services.
    let statements_under = |parent: &Span| {
        let mut family = vec![parent.span_id.clone()];
        let mut grew = true;
        while grew {
            let children: Vec<Vec<u8>> = spans
                .iter()
                .filter(|span| family.contains(&span.parent_span_id) && !family.contains(&span.span_id))
                .map(|span| span.span_id.clone())
                .collect();
            grew = !children.is_empty();
            family.extend(children);
        }
        spans
            .iter()
            .filter(|span| span.name.starts_with("sea_orm.") && family.contains(&span.parent_span_id))
            .inspect(|span| assert_eq!(span.trace_id, parent.trace_id))
            .count()
    };
    assert!(statements_under(&place_hold) > 0, "the Inventory's statements are in the trace");
    assert!(statements_under(&create_reservation) > 0, "the Reservation service's statements are in the trace");
    assert!(statements_under(&create_item) > 0);

    // The Reservation service pushed its metrics when it stopped, named as its own.
    let mut pushed = Vec::new();
    while let Ok(Some(batch)) = tokio::time::timeout(Duration::from_secs(2), metric_batches.recv()).await {
        for resource in batch.resource_metrics {
            let service = resource.resource.iter().flat_map(|r| &r.attributes).find(|a| a.key == "service.name");
            let service = format!("{:?}", service.and_then(|a| a.value.as_ref()));
            for scope in resource.scope_metrics {
                pushed.extend(scope.metrics.into_iter().map(|metric| (service.clone(), metric.name)));
            }
        }
    }
    let pushed_by_reservation =
        |name: &str| pushed.iter().any(|(service, metric)| service.contains("\"reservation\"") && metric == name);
    assert!(pushed_by_reservation("reservation.reservations"), "{pushed:?}");
    assert!(pushed_by_reservation("rpc.server.requests"), "{pushed:?}");
}
