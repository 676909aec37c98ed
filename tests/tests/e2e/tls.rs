//! TLS between clients and services and between the services: plaintext refused, mutual TLS
//! accepting only clients the configured CA signed, and the Catalog's saga over mutual TLS.

use fulfillment_proto::catalog::v1 as cat;
use fulfillment_proto::catalog::v1::catalog_service_client::CatalogServiceClient;
use fulfillment_proto::inventory::v1 as inv;
use fulfillment_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use fulfillment_server::tls::{self, ClientTls};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use suite_tests::{Bearer, Store, keys, on_every_backend, start_catalog, start_inventory};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// A certificate authority signing `localhost` certificates good for servers and clients.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("no names");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        Self { pem: cert.pem(), issuer: Issuer::new(params, key) }
    }

    /// A certificate and its key, as PEM.
    fn leaf(&self) -> (String, String) {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("a valid name");
        params.distinguished_name.push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("leaf certificate");
        (cert.pem(), key.serialize_pem())
    }
}

/// Files the services read their certificates from.
struct Files(tempfile_dir::Dir);

mod tempfile_dir {
    /// A folder removed when dropped.
    pub struct Dir(pub std::path::PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Files {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("suite-tls-{}", uuid_like()));
        std::fs::create_dir_all(&dir).expect("a folder");
        Self(tempfile_dir::Dir(dir))
    }

    fn write(&self, name: &str, contents: &str) -> String {
        let path = self.0.0.join(name);
        std::fs::write(&path, contents).expect("written");
        path.display().to_string()
    }
}

fn uuid_like() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default()
}

fn client_tls(ca: &Ca, identity: Option<(String, String)>) -> ClientTls {
    ClientTls::new(Some(ca.pem.clone().into_bytes()), identity.map(|(c, k)| (c.into_bytes(), k.into_bytes())), None)
}

/// Lists warehouses over `url` with `tls`, as the harness's live key.
async fn list_warehouses(url: &str, tls: &ClientTls) -> Result<(), String> {
    let channel: Channel =
        tls::endpoint(url, tls).map_err(|e| e.to_string())?.connect().await.map_err(|e| e.to_string())?;
    let mut client = InventoryServiceClient::new(InterceptedService::new(channel, Bearer::new(keys::LIVE)));
    client.list_warehouses(inv::ListWarehousesRequest::default()).await.map(drop).map_err(|e| format!("{e:?}"))
}

on_every_backend! {
    async fn an_inventory_with_mutual_tls_serves_only_clients_its_ca_signed(backend: Backend) {
        let (ca, stranger) = (Ca::new("suite"), Ca::new("stranger"));
        let files = Files::new();
        let (cert, key) = ca.leaf();
        let settings = [
            ("INVENTORY_TLS_CERT", files.write("inventory.pem", &cert)),
            ("INVENTORY_TLS_KEY", files.write("inventory.key", &key)),
            ("INVENTORY_TLS_CLIENT_CA", files.write("ca.pem", &ca.pem)),
        ];
        let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let inventory = start_inventory(Store::Fresh(backend), &settings).await;
        let url = format!("https://localhost:{}", inventory.address.port());

        list_warehouses(&url, &client_tls(&ca, Some(ca.leaf()))).await.expect("a client the CA signed is served");
        let refused = list_warehouses(&url, &client_tls(&ca, None)).await;
        assert!(refused.is_err(), "a client without a certificate is refused");
        let refused = list_warehouses(&url, &client_tls(&ca, Some(stranger.leaf()))).await;
        assert!(refused.is_err(), "a client another CA signed is refused");
        let plaintext = list_warehouses(&format!("http://{}", inventory.address), &ClientTls::plain()).await;
        assert!(plaintext.is_err(), "plaintext is refused");
        let untrusting = list_warehouses(&url, &client_tls(&stranger, Some(ca.leaf()))).await;
        assert!(untrusting.is_err(), "a client that does not trust the server's CA does not talk to it");
    }

    async fn the_catalog_keeps_skus_and_items_in_step_over_mutual_tls(backend: Backend) {
        let ca = Ca::new("suite");
        let files = Files::new();
        let ((inventory_cert, inventory_key), (catalog_cert, catalog_key)) = (ca.leaf(), ca.leaf());
        let ca_path = files.write("ca.pem", &ca.pem);
        let inventory_settings = [
            ("INVENTORY_TLS_CERT", files.write("inventory.pem", &inventory_cert)),
            ("INVENTORY_TLS_KEY", files.write("inventory.key", &inventory_key)),
            ("INVENTORY_TLS_CLIENT_CA", ca_path.clone()),
        ];
        let inventory_settings: Vec<(&str, &str)> = inventory_settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let inventory = start_inventory(Store::Fresh(backend), &inventory_settings).await;
        let catalog_settings = [
            ("CATALOG_TLS_CERT", files.write("catalog.pem", &catalog_cert)),
            ("CATALOG_TLS_KEY", files.write("catalog.key", &catalog_key)),
            ("CATALOG_INVENTORY_TLS_CA", ca_path.clone()),
        ];
        let catalog_settings: Vec<(&str, &str)> = catalog_settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let inventory_url = format!("https://localhost:{}", inventory.address.port());
        let catalog = start_catalog(Store::Fresh(backend), &inventory_url, &catalog_settings).await;

        // The Catalog serves TLS too (no client certificate asked for), and checks keys over mTLS.
        let channel: Channel = tls::endpoint(&format!("https://localhost:{}", catalog.address.port()), &client_tls(&ca, None))
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
        let found = client.check_consistency(cat::CheckConsistencyRequest {}).await.expect("checked").into_inner();
        assert!(found.inconsistencies.is_empty(), "{found:?}");
        let channel: Channel = tls::endpoint(&inventory_url, &client_tls(&ca, Some(ca.leaf()))).expect("endpoint").connect().await.expect("connected");
        let mut inventory_client = InventoryServiceClient::new(InterceptedService::new(channel, Bearer::new(keys::LIVE)));
        let item = inventory_client.get_inventory_item(inv::GetInventoryItemRequest { id: "tls-sku".into() }).await.expect("the item");
        assert_eq!(item.into_inner().inventory_item.expect("item").owner_sku_id, "tls-sku");
    }
}
