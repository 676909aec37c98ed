//! TLS between clients and services and between the services: plaintext refused, mutual TLS
//! accepting only clients the configured CA signed, and the Catalog's saga over mutual TLS.

use fulfillment_proto::catalog::v1 as cat;
use fulfillment_proto::catalog::v1::catalog_service_client::CatalogServiceClient;
use fulfillment_proto::inventory::v1 as inv;
use fulfillment_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use fulfillment_server::testing::{BOTH, Scratch, TestCa};
use fulfillment_server::tls::{self, ClientTls};
use suite_tests::{Backend, Bearer, Spawn, Store, keys, on_every_backend};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// Lists warehouses over `url` with `tls`, as the harness's live key; the error says why, causes
/// and all.
async fn list_warehouses(url: &str, tls: &ClientTls) -> Result<(), String> {
    let channel: Channel =
        tls::endpoint(url, tls).map_err(|e| e.to_string())?.connect().await.map_err(|e| tls::error_chain(&e))?;
    let mut client = InventoryServiceClient::new(InterceptedService::new(channel, Bearer::new(keys::LIVE)));
    client.list_warehouses(inv::ListWarehousesRequest::default()).await.map(drop).map_err(|e| tls::error_chain(&e))
}

/// Whether a call failed in transport (no gRPC answer: the service never saw it) and, if the
/// server's alert reached the client, for the reason `alert`. Under TLS 1.3 the server refuses a
/// client's certificate after the client thinks the handshake done: the client reads the alert on
/// its first call, or, when the server has hung up first, sees a closed connection or broken pipe.
fn refused_in_handshake(error: &str, alert: &str) -> bool {
    error.contains("transport error") && (!error.contains("fatal alert") || error.contains(alert))
}

async fn an_inventory_with_mutual_tls_serves_only_clients_its_ca_signed(backend: Backend) {
    let (ca, stranger) = (TestCa::new("suite"), TestCa::new("stranger"));
    let files = Scratch::new();
    let (cert, key) = ca.leaf(BOTH);
    let settings = [
        ("INVENTORY_TLS_CERT", files.write("inventory.pem", &cert)),
        ("INVENTORY_TLS_KEY", files.write("inventory.key", &key)),
        ("INVENTORY_TLS_CLIENT_CA", files.write("ca.pem", &ca.pem)),
    ];
    let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let inventory = Spawn::in_store(Store::Fresh(backend)).with(&settings).start_inventory().await;
    let url = format!("https://localhost:{}", inventory.address.port());

    list_warehouses(&url, &ca.client(Some(ca.leaf(BOTH)), None)).await.expect("a client the CA signed is served");
    // Refused in the handshake, each for its own reason, never by the service itself.
    let refused = list_warehouses(&url, &ca.client(None, None)).await.expect_err("no certificate");
    assert!(refused_in_handshake(&refused, "CertificateRequired"), "a client without a certificate: {refused}");
    let refused = list_warehouses(&url, &ca.client(Some(stranger.leaf(BOTH)), None)).await.expect_err("another CA");
    assert!(refused_in_handshake(&refused, "UnknownCA"), "a client another CA signed: {refused}");
    let untrusting = list_warehouses(&url, &stranger.client(Some(ca.leaf(BOTH)), None)).await.expect_err("untrusting");
    assert!(untrusting.contains("UnknownIssuer"), "a client that does not trust the server's CA: {untrusting}");
    // The server hangs up on bytes that are not TLS (how the client sees it varies: a broken
    // pipe, a reset), so a plaintext call fails in transport, before any gRPC answer.
    let plaintext =
        list_warehouses(&format!("http://{}", inventory.address), &ClientTls::plain()).await.expect_err("plaintext");
    assert!(plaintext.contains("transport error"), "plaintext: {plaintext}");
}

async fn the_catalog_keeps_skus_and_items_in_step_over_mutual_tls(backend: Backend) {
    let ca = TestCa::new("suite");
    let files = Scratch::new();
    let ((inventory_cert, inventory_key), (catalog_cert, catalog_key)) = (ca.leaf(BOTH), ca.leaf(BOTH));
    let ca_path = files.write("ca.pem", &ca.pem);
    let inventory_settings = [
        ("INVENTORY_TLS_CERT", files.write("inventory.pem", &inventory_cert)),
        ("INVENTORY_TLS_KEY", files.write("inventory.key", &inventory_key)),
        ("INVENTORY_TLS_CLIENT_CA", ca_path.clone()),
    ];
    let inventory_settings: Vec<(&str, &str)> = inventory_settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let inventory = Spawn::in_store(Store::Fresh(backend)).with(&inventory_settings).start_inventory().await;
    let catalog_settings = [
        ("CATALOG_TLS_CERT", files.write("catalog.pem", &catalog_cert)),
        ("CATALOG_TLS_KEY", files.write("catalog.key", &catalog_key)),
        ("CATALOG_INVENTORY_TLS_CA", ca_path.clone()),
    ];
    let catalog_settings: Vec<(&str, &str)> = catalog_settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let inventory_url = format!("https://localhost:{}", inventory.address.port());
    let catalog = Spawn::in_store(Store::Fresh(backend)).with(&catalog_settings).start_catalog(&inventory_url).await;

    // The Catalog serves TLS too (no client certificate asked for), and checks keys over mTLS.
    let channel: Channel =
        tls::endpoint(&format!("https://localhost:{}", catalog.address.port()), &ca.client(None, None))
            .expect("an endpoint")
            .connect()
            .await
            .expect("connected");
    let mut client = CatalogServiceClient::new(InterceptedService::new(channel, Bearer::new(keys::LIVE)));
    let part = cat::RegisterManufacturerPartRequest { manufacturer_id: "20013".into(), part_number: "P1".into() };
    client.register_manufacturer_part(part).await.expect("registered");
    let sku = cat::Sku {
        id: "tls-sku".into(),
        name: "Over TLS".into(),
        eccn: "EAR99".into(),
        country_of_origin: "DE".into(),
        tax_code: "4323.310_A".into(),
        part_number: "P1".into(),
        manufacturer_id: "20013".into(),
        managed_fulfillment: "DRGlobalFulfillment".into(),
        ..Default::default()
    };
    client.create_sku(cat::CreateSkuRequest { sku: Some(sku) }).await.expect("the saga ran over mutual TLS");
    let found = client.check_consistency(cat::CheckConsistencyRequest::default()).await.expect("checked").into_inner();
    assert!(found.inconsistencies.is_empty(), "{found:?}");
    let channel: Channel = tls::endpoint(&inventory_url, &ca.client(Some(ca.leaf(BOTH)), None))
        .expect("endpoint")
        .connect()
        .await
        .expect("connected");
    let mut inventory_client = InventoryServiceClient::new(InterceptedService::new(channel, Bearer::new(keys::LIVE)));
    let item = inventory_client
        .get_inventory_item(inv::GetInventoryItemRequest { id: "tls-sku".into() })
        .await
        .expect("the item");
    assert_eq!(item.into_inner().inventory_item.expect("item").owner_sku_id, "tls-sku");
}

on_every_backend!(
    an_inventory_with_mutual_tls_serves_only_clients_its_ca_signed,
    the_catalog_keeps_skus_and_items_in_step_over_mutual_tls
);
