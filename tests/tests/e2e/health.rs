//! Every service serves grpc.health.v1 and reflection on its own port.

use suite_tests::{Backend, RunningService, Spawn, on_every_backend};
use tokio_stream::StreamExt;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

async fn health(service: &RunningService, name: &str) -> Result<ServingStatus, tonic::Status> {
    let mut client = HealthClient::new(service.channel().await);
    let response = client.check(HealthCheckRequest { service: name.to_owned() }).await?;
    Ok(response.into_inner().status())
}

async fn reflected_services(service: &RunningService) -> Vec<String> {
    let mut client = ServerReflectionClient::new(service.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses =
        client.server_reflection_info(tokio_stream::once(request)).await.expect("reflection").into_inner();
    let response = responses.next().await.expect("one response").expect("a list");
    match response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => list.service.into_iter().map(|s| s.name).collect(),
        other => panic!("unexpected reflection answer {other:?}"),
    }
}

async fn the_catalog_reports_serving_and_reflects_its_contract(backend: Backend) {
    let (catalog, _client) = Spawn::on(backend).catalog_and_inventory().await;
    assert_eq!(health(&catalog, "").await.expect("overall"), ServingStatus::Serving);
    assert_eq!(
        health(&catalog, "fulfillment.catalog.v1.CatalogService").await.expect("catalog"),
        ServingStatus::Serving
    );
    let status = health(&catalog, "no.such.Service").await.expect_err("unknown service");
    assert_eq!(status.code(), tonic::Code::NotFound);
    let services = reflected_services(&catalog).await;
    assert!(services.contains(&"fulfillment.catalog.v1.CatalogService".to_owned()), "{services:?}");
    assert!(services.contains(&"grpc.health.v1.Health".to_owned()), "{services:?}");
    catalog.stop().await.expect("a clean stop");
}

async fn inventory_and_reservation_serve_health_on_their_own_ports(backend: Backend) {
    let (inventory, _client) = Spawn::on(backend).inventory().await;
    let (reservation, _client) = Spawn::on(backend).reservation(inventory.address).await;
    assert_ne!(inventory.address, reservation.address);
    assert_eq!(health(&inventory, "").await.expect("inventory"), ServingStatus::Serving);
    assert_eq!(health(&reservation, "").await.expect("reservation"), ServingStatus::Serving);
    assert!(reflected_services(&inventory).await.contains(&"grpc.health.v1.Health".to_owned()));
    inventory.stop().await.expect("a clean stop");
    reservation.stop().await.expect("a clean stop");
}

on_every_backend!(
    the_catalog_reports_serving_and_reflects_its_contract,
    inventory_and_reservation_serve_health_on_their_own_ports
);
