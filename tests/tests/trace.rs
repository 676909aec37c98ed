//! One trace across the suite: the spans of a managed CreateSku reach an OTLP receiver, the
//! Catalog's and the Inventory's in one trace with the right parent, continuing the trace the
//! outside client started. (Its own test binary: tracing is installed once per process.)

use std::time::Duration;

use fulfillment_proto::catalog::v1 as pb;
use fulfillment_proto::common::v1::Address;
use fulfillment_proto::reservation::v1 as res;
use fulfillment_server::telemetry::{self, LogFormat};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::trace::v1::Span;
use suite_tests::{Backend, spawn_catalog, spawn_reservation, spawn_stocked_inventory};
use tokio::sync::mpsc;

/// An in-process OTLP collector: it hands every exported batch to the test.
struct Receiver(mpsc::UnboundedSender<ExportTraceServiceRequest>);

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
async fn create_sku_and_create_reservation_are_each_one_trace_across_two_services() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let collector = listener.local_addr().expect("address");
    let (batches_tx, mut batches) = mpsc::unbounded_channel();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Receiver(batches_tx)))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let tracing = telemetry::init("suite-test", LogFormat::Text, Some(&format!("http://{collector}")));

    let (catalog, mut client) = spawn_catalog(Backend::Sqlite).await;
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
    let (inventory, _inventory_client) = spawn_stocked_inventory(Backend::Sqlite, 0).await;
    let (reservation, mut reservations) = spawn_reservation(Backend::Sqlite, inventory.address, &[]).await;
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
}
