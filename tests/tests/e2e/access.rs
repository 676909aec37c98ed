//! Who may call what: every RPC of every service against no key, an unknown key, a revoked key, a
//! read key that writes, and keys of the other mode on objects they must not see.

use std::collections::BTreeSet;

use fulfillment_proto::access::v1 as acc;
use fulfillment_proto::access::v1::access_service_client::AccessServiceClient;
use fulfillment_proto::catalog::v1 as cat;
use fulfillment_proto::catalog::v1::catalog_service_client::CatalogServiceClient;
use fulfillment_proto::common::v1::Address;
use fulfillment_proto::inventory::v1 as inv;
use fulfillment_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use fulfillment_proto::reservation::v1 as res;
use fulfillment_proto::reservation::v1::reservation_service_client::ReservationServiceClient;
use prost::Message;
use suite_tests::{Backend, RunningService, Spawn, keys, on_every_backend};
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

/// The three services, reached without a key: each call names its own.
struct Suite {
    catalog: Channel,
    inventory: Channel,
    reservation: Channel,
    _services: Vec<RunningService>,
}

/// A mode's keys and the ids of the objects made in it.
#[derive(Clone, Copy)]
struct Mode {
    key: &'static str,
    tag: &'static str,
}

const LIVE: Mode = Mode { key: keys::LIVE, tag: "live" };
const TEST: Mode = Mode { key: keys::TEST, tag: "test" };

impl Mode {
    fn id(&self, what: &str) -> String {
        format!("{what}-{}", self.tag)
    }
}

/// What a method needs, and how it meets objects of the other mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Names an object: the other mode's is NOT_FOUND.
    Object,
    /// Lists objects: the other mode's are not among them.
    List,
    /// Makes an object: the other mode's id is free.
    Create,
    /// Touches no object of a mode.
    Other,
}

/// (method, needs write or more, kind). A method missing here fails the test.
fn spec(method: &str) -> (Need, Kind) {
    use Kind::*;
    use Need::*;
    match method {
        "CreateSku"
        | "UpsertSku"
        | "RegisterManufacturerPart"
        | "CreateInventoryItem"
        | "CreateWarehouse"
        | "CreateReservation" => (Write, Create),
        "UpdateSku"
        | "DeleteSku"
        | "DeleteManufacturerPart"
        | "UpdateInventoryItem"
        | "DeleteInventoryItem"
        | "UpdateWarehouse"
        | "DeleteWarehouse"
        | "AdjustStock"
        | "PlaceHold"
        | "ReleaseHold"
        | "CommitHold"
        | "CancelReservation"
        | "CreateFulfillmentOrder" => (Write, Object),
        "GetSku"
        | "GetInventoryItem"
        | "GetWarehouse"
        | "GetHold"
        | "GetReservation"
        | "GetFulfillmentOrder"
        | "GetInventoryLevels"
        | "ListStockMovements" => (Read, Object),
        "ListSkus"
        | "ListManufacturerParts"
        | "ListInventoryItems"
        | "ListWarehouses"
        | "ListReservations"
        | "ListFulfillmentOrders" => (Read, List),
        "CheckConsistency" => (Read, Other),
        "CreateApiKey" => (Admin, Other),
        "ListApiKeys" => (Admin, List),
        "RevokeApiKey" => (Admin, Object),
        "AuthenticateApiKey" => (Service, Other),
        other => panic!("no access case for {other}: add it to spec() and call()"),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Need {
    Read,
    Write,
    Admin,
    Service,
}

/// Every method of the suite's services, from the compiled contracts.
fn every_method() -> Vec<String> {
    let set = prost_types::FileDescriptorSet::decode(fulfillment_proto::FILE_DESCRIPTOR_SET).expect("descriptors");
    set.file
        .iter()
        .filter(|file| file.package().starts_with("fulfillment."))
        .flat_map(|file| file.service.iter())
        .flat_map(|service| service.method.iter().map(|method| method.name().to_owned()))
        .collect()
}

fn keyed<T>(message: T, key: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(key) = key {
        request.metadata_mut().insert("authorization", format!("Bearer {key}").parse().expect("a header value"));
    }
    request
}

fn address() -> Option<res::ShipTo> {
    Some(res::ShipTo { address: Some(Address { country: "US".into(), ..Default::default() }) })
}

fn reservation(id: &str, item: &str) -> res::Reservation {
    res::Reservation {
        id: id.to_owned(),
        items: vec![res::ReservationItem {
            inventory_item_id: item.to_owned(),
            quantity: 1,
            allow_oversell: Some(false),
        }],
        ship_to: address(),
        expires_in_seconds: 600,
        ..Default::default()
    }
}

fn sku(id: &str, part: &str) -> cat::Sku {
    cat::Sku {
        id: id.to_owned(),
        name: format!("name of {id}"),
        eccn: "EAR99".into(),
        country_of_origin: "DE".into(),
        tax_code: "4323.310_A".into(),
        part_number: part.to_owned(),
        manufacturer_id: "20013".into(),
        managed_fulfillment: "DRGlobalFulfillment".into(),
        ..Default::default()
    }
}

/// Calls `method` with `key` on the objects of `target`, answering the ids a listing shows.
async fn call(suite: &Suite, method: &str, key: Option<&str>, target: Mode) -> Result<Vec<String>, Status> {
    let mut catalog = CatalogServiceClient::new(suite.catalog.clone());
    let mut inventory = InventoryServiceClient::new(suite.inventory.clone());
    let mut access = AccessServiceClient::new(suite.inventory.clone());
    let mut reservations = ReservationServiceClient::new(suite.reservation.clone());
    let id = |what: &str| target.id(what);
    Ok(match method {
        "CreateSku" => catalog
            .create_sku(keyed(cat::CreateSkuRequest { sku: Some(sku(&id("sku"), &id("P"))) }, key))
            .await
            .map(nothing)?,
        "UpsertSku" => catalog
            .upsert_sku(keyed(cat::UpsertSkuRequest { sku: Some(sku(&id("sku"), &id("P"))) }, key))
            .await
            .map(nothing)?,
        "UpdateSku" => {
            let update = cat::Sku { id: id("sku"), name: "renamed".into(), ..Default::default() };
            catalog
                .update_sku(keyed(cat::UpdateSkuRequest { sku: Some(update), update_mask: None }, key))
                .await
                .map(nothing)?
        }
        "GetSku" => catalog.get_sku(keyed(cat::GetSkuRequest { id: id("sku") }, key)).await.map(nothing)?,
        "ListSkus" => catalog
            .list_skus(keyed(cat::ListSkusRequest::default(), key))
            .await
            .map(|r| r.into_inner().skus.into_iter().map(|s| s.id).collect())?,
        "DeleteSku" => catalog.delete_sku(keyed(cat::DeleteSkuRequest { id: id("sku") }, key)).await.map(nothing)?,
        "RegisterManufacturerPart" => {
            catalog.register_manufacturer_part(keyed(part(id("P")), key)).await.map(nothing)?
        }
        "ListManufacturerParts" => catalog
            .list_manufacturer_parts(keyed(cat::ListManufacturerPartsRequest::default(), key))
            .await
            .map(|r| r.into_inner().manufacturer_parts.into_iter().map(|p| p.part_number).collect())?,
        "DeleteManufacturerPart" => {
            let part = cat::DeleteManufacturerPartRequest { manufacturer_id: "20013".into(), part_number: id("spare") };
            catalog.delete_manufacturer_part(keyed(part, key)).await.map(nothing)?
        }
        "CheckConsistency" => {
            catalog.check_consistency(keyed(cat::CheckConsistencyRequest::default(), key)).await.map(nothing)?
        }
        "CreateInventoryItem" => inventory.create_inventory_item(keyed(item(id("item")), key)).await.map(nothing)?,
        "UpdateInventoryItem" => {
            let item = inv::InventoryItem { id: id("item"), part_number: "renamed".into(), ..Default::default() };
            let request = inv::UpdateInventoryItemRequest { inventory_item: Some(item), update_mask: None };
            inventory.update_inventory_item(keyed(request, key)).await.map(nothing)?
        }
        "GetInventoryItem" => inventory
            .get_inventory_item(keyed(inv::GetInventoryItemRequest { id: id("item") }, key))
            .await
            .map(nothing)?,
        "ListInventoryItems" => inventory
            .list_inventory_items(keyed(inv::ListInventoryItemsRequest::default(), key))
            .await
            .map(|r| r.into_inner().inventory_items.into_iter().map(|i| i.id).collect())?,
        "DeleteInventoryItem" => inventory
            .delete_inventory_item(keyed(inv::DeleteInventoryItemRequest { id: id("spare") }, key))
            .await
            .map(nothing)?,
        "CreateWarehouse" => inventory.create_warehouse(keyed(warehouse(id("wh")), key)).await.map(nothing)?,
        "UpdateWarehouse" => {
            let warehouse = inv::Warehouse { id: id("wh"), name: "renamed".into(), ..Default::default() };
            inventory
                .update_warehouse(keyed(
                    inv::UpdateWarehouseRequest { warehouse: Some(warehouse), update_mask: None },
                    key,
                ))
                .await
                .map(nothing)?
        }
        "GetWarehouse" => {
            inventory.get_warehouse(keyed(inv::GetWarehouseRequest { id: id("wh") }, key)).await.map(nothing)?
        }
        "ListWarehouses" => inventory
            .list_warehouses(keyed(inv::ListWarehousesRequest::default(), key))
            .await
            .map(|r| r.into_inner().warehouses.into_iter().map(|w| w.id).collect())?,
        "DeleteWarehouse" => inventory
            .delete_warehouse(keyed(inv::DeleteWarehouseRequest { id: id("spare") }, key))
            .await
            .map(nothing)?,
        "AdjustStock" => {
            let request = receive(&id("item"), &id("wh"), 1, format!("matrix-{}", uuid_like()));
            inventory.adjust_stock(keyed(request, key)).await.map(nothing)?
        }
        "ListStockMovements" => {
            let request = inv::ListStockMovementsRequest { inventory_item_id: id("item"), ..Default::default() };
            inventory.list_stock_movements(keyed(request, key)).await.map(nothing)?
        }
        "GetInventoryLevels" => {
            let request = inv::GetInventoryLevelsRequest { inventory_item_ids: vec![id("item")], ..Default::default() };
            inventory.get_inventory_levels(keyed(request, key)).await.map(nothing)?
        }
        "PlaceHold" => inventory.place_hold(keyed(hold(&id("hold"), &id("item")), key)).await.map(nothing)?,
        "GetHold" => inventory.get_hold(keyed(inv::GetHoldRequest { hold_id: id("hold") }, key)).await.map(nothing)?,
        "ReleaseHold" => {
            inventory.release_hold(keyed(inv::ReleaseHoldRequest { hold_id: id("hold") }, key)).await.map(nothing)?
        }
        "CommitHold" => {
            inventory.commit_hold(keyed(inv::CommitHoldRequest { hold_id: id("hold") }, key)).await.map(nothing)?
        }
        "CreateReservation" => {
            reservations.create_reservation(keyed(reserve(&id("res"), &id("item")), key)).await.map(nothing)?
        }
        "GetReservation" => {
            reservations.get_reservation(keyed(res::GetReservationRequest { id: id("res") }, key)).await.map(nothing)?
        }
        "ListReservations" => reservations
            .list_reservations(keyed(res::ListReservationsRequest::default(), key))
            .await
            .map(|r| r.into_inner().reservations.into_iter().map(|r| r.id).collect())?,
        "CancelReservation" => reservations
            .cancel_reservation(keyed(res::CancelReservationRequest { id: id("res") }, key))
            .await
            .map(nothing)?,
        "CreateFulfillmentOrder" => {
            let request = res::CreateFulfillmentOrderRequest { reservation_id: id("res"), ..Default::default() };
            reservations.create_fulfillment_order(keyed(request, key)).await.map(nothing)?
        }
        "GetFulfillmentOrder" => reservations
            .get_fulfillment_order(keyed(res::GetFulfillmentOrderRequest { id: id("ord") }, key))
            .await
            .map(nothing)?,
        "ListFulfillmentOrders" => reservations
            .list_fulfillment_orders(keyed(res::ListFulfillmentOrdersRequest::default(), key))
            .await
            .map(|r| r.into_inner().fulfillment_orders.into_iter().map(|o| o.reservation_id).collect())?,
        "CreateApiKey" => {
            let request = acc::CreateApiKeyRequest { name: "matrix".into(), ..Default::default() };
            access.create_api_key(keyed(request, key)).await.map(nothing)?
        }
        "ListApiKeys" => access
            .list_api_keys(keyed(acc::ListApiKeysRequest { include_revoked: true }, key))
            .await
            .map(|r| r.into_inner().api_keys.into_iter().map(|k| k.name).collect())?,
        "RevokeApiKey" => {
            access.revoke_api_key(keyed(acc::RevokeApiKeyRequest { id: target.id("key") }, key)).await.map(nothing)?
        }
        "AuthenticateApiKey" => {
            let request = acc::AuthenticateApiKeyRequest { secret: target.key.to_owned() };
            access.authenticate_api_key(keyed(request, key)).await.map(nothing)?
        }
        other => panic!("no access case for {other}: add it to spec() and call()"),
    })
}

fn part(number: String) -> cat::RegisterManufacturerPartRequest {
    cat::RegisterManufacturerPartRequest { manufacturer_id: "20013".into(), part_number: number }
}

fn warehouse(id: String) -> inv::CreateWarehouseRequest {
    let warehouse =
        inv::Warehouse { id, name: "W".into(), country: "US".into(), ships_everywhere: true, ..Default::default() };
    inv::CreateWarehouseRequest { warehouse: Some(warehouse) }
}

fn item(id: String) -> inv::CreateInventoryItemRequest {
    inv::CreateInventoryItemRequest { inventory_item: Some(inv::InventoryItem { id, ..Default::default() }) }
}

fn receive(item: &str, warehouse: &str, quantity: i64, idempotency_key: String) -> inv::AdjustStockRequest {
    inv::AdjustStockRequest {
        inventory_item_id: item.to_owned(),
        warehouse_id: warehouse.to_owned(),
        kind: inv::StockChangeKind::Receive.into(),
        quantity,
        reason: "matrix".into(),
        idempotency_key,
    }
}

/// A hold of one unit of `item`, for ten minutes.
fn hold(id: &str, item: &str) -> inv::PlaceHoldRequest {
    inv::PlaceHoldRequest {
        hold_id: id.to_owned(),
        lines: vec![inv::HoldRequestLine { inventory_item_id: item.to_owned(), quantity: 1, allow_oversell: None }],
        ship_to_country: "US".into(),
        expire_time: Some((std::time::SystemTime::now() + std::time::Duration::from_secs(600)).into()),
    }
}

fn reserve(id: &str, item: &str) -> res::CreateReservationRequest {
    res::CreateReservationRequest { reservation: Some(reservation(id, item)) }
}

/// What a call that lists nothing shows.
fn nothing<T>(_: T) -> Vec<String> {
    Vec::new()
}

fn uuid_like() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default()
}

/// Makes, with `mode`'s key, one of each object the matrix names, plus spares it may delete.
async fn populate(suite: &Suite, mode: Mode) {
    let key = Some(mode.key);
    let id = |what: &str| mode.id(what);
    let mut catalog = CatalogServiceClient::new(suite.catalog.clone());
    let mut inventory = InventoryServiceClient::new(suite.inventory.clone());
    let mut reservations = ReservationServiceClient::new(suite.reservation.clone());
    for number in [id("P"), id("spare")] {
        catalog.register_manufacturer_part(keyed(part(number), key)).await.expect("part");
    }
    // A managed SKU: the Catalog makes its item in the Inventory, in this mode.
    catalog.create_sku(keyed(cat::CreateSkuRequest { sku: Some(sku(&id("sku"), &id("P"))) }, key)).await.expect("sku");
    for id in [id("wh"), id("spare")] {
        inventory.create_warehouse(keyed(warehouse(id), key)).await.expect("warehouse");
    }
    for id in [id("item"), id("spare")] {
        inventory.create_inventory_item(keyed(item(id), key)).await.expect("item");
    }
    inventory.adjust_stock(keyed(receive(&id("item"), &id("wh"), 10, id("stock")), key)).await.expect("stock");
    inventory.place_hold(keyed(hold(&id("hold"), &id("item")), key)).await.expect("hold");
    for reserved in [id("res"), id("ord")] {
        reservations.create_reservation(keyed(reserve(&reserved, &id("item")), key)).await.expect("reservation");
    }
    let order = res::CreateFulfillmentOrderRequest { reservation_id: id("ord"), ..Default::default() };
    reservations.create_fulfillment_order(keyed(order, key)).await.expect("order");
}

/// What the objects of `mode` look like to its own key, for before-and-after comparisons.
async fn snapshot(suite: &Suite, mode: Mode) -> Vec<String> {
    let mut seen = Vec::new();
    for method in every_method() {
        let (need, kind) = spec(&method);
        if need == Need::Read && matches!(kind, Kind::Object | Kind::List) {
            seen.push(format!(
                "{method}: {:?}",
                call(suite, &method, Some(mode.key), mode).await.map_err(|s| s.code())
            ));
        }
    }
    let mut catalog = CatalogServiceClient::new(suite.catalog.clone());
    let sku = catalog.get_sku(keyed(cat::GetSkuRequest { id: mode.id("sku") }, Some(mode.key))).await.expect("sku");
    seen.push(format!("{:?}", sku.into_inner().sku.map(|s| (s.name, s.updated_time))));
    let mut inventory = InventoryServiceClient::new(suite.inventory.clone());
    let levels = inv::GetInventoryLevelsRequest { inventory_item_ids: vec![mode.id("item")], ..Default::default() };
    let levels = inventory.get_inventory_levels(keyed(levels, Some(mode.key))).await.expect("levels").into_inner();
    seen.push(format!("{:?}", levels.levels));
    seen
}

async fn start(backend: Backend) -> Suite {
    let (inventory, _client) = Spawn::on(backend).inventory().await;
    let (catalog, _client) = Spawn::on(backend).catalog(inventory.address).await;
    let (reservation, _client) = Spawn::on(backend).reservation(inventory.address).await;
    Suite {
        catalog: catalog.channel().await,
        inventory: inventory.channel().await,
        reservation: reservation.channel().await,
        _services: vec![catalog, inventory, reservation],
    }
}

/// Makes a key with `admin`, answering its id and secret.
async fn make_key(suite: &Suite, admin: &str, name: &str, scopes: &[acc::Scope]) -> (String, String) {
    let mut access = AccessServiceClient::new(suite.inventory.clone());
    let request = acc::CreateApiKeyRequest {
        name: name.to_owned(),
        scopes: scopes.iter().map(|s| *s as i32).collect(),
        service: String::new(),
    };
    let created = access.create_api_key(keyed(request, Some(admin))).await.expect("a key").into_inner();
    (created.api_key.expect("the key").id, created.secret)
}

async fn a_key_over_its_rate_is_told_when_to_retry(backend: Backend) {
    let limit = [("API_KEY_RATE_LIMIT", "2"), ("API_KEY_RATE_BURST", "3")];
    let (inventory, _client) = suite_tests::Spawn::on(backend).with(&limit).inventory().await;
    let mut client = InventoryServiceClient::new(inventory.channel().await);
    let list = |key: &str| keyed(inv::ListWarehousesRequest::default(), Some(key));
    for _ in 0..3 {
        client.list_warehouses(list(keys::LIVE)).await.expect("within the burst");
    }
    let status = client.list_warehouses(list(keys::LIVE)).await.expect_err("over the rate");
    assert_eq!(status.code(), Code::ResourceExhausted);
    use tonic_types::StatusExt;
    let wait = status.get_details_retry_info().and_then(|info| info.retry_delay).expect("when to retry");
    assert!(wait > std::time::Duration::ZERO && wait <= std::time::Duration::from_millis(500), "{wait:?}");
    client.list_warehouses(list(keys::TEST)).await.expect("another key has a budget of its own");
    tokio::time::sleep(wait).await;
    client.list_warehouses(list(keys::LIVE)).await.expect("served again after the wait");
}

async fn a_deployment_provisions_its_admin_and_service_keys(backend: Backend) {
    let admin = "fk_live_ProvisionedAdminKey000000000000000000000";
    let catalog_key = "fk_svc_ProvisionedCatalogKey0000000000000000000";
    let settings = [("INVENTORY_ADMIN_KEY", admin), ("INVENTORY_CATALOG_SERVICE_KEY", catalog_key)];
    let (inventory, _client) = suite_tests::Spawn::on(backend).with(&settings).inventory().await;
    let mut access = AccessServiceClient::new(inventory.channel().await);
    let listed = access
        .list_api_keys(keyed(acc::ListApiKeysRequest::default(), Some(admin)))
        .await
        .expect("the admin key works");
    let names: Vec<String> = listed.into_inner().api_keys.into_iter().map(|k| k.name).collect();
    assert!(names.contains(&"provisioned: catalog".to_owned()), "{names:?}");
    // The Catalog, given the same secret, is the Catalog to the Inventory.
    let (_catalog, mut catalog) =
        Spawn::on(backend).with(&[("CATALOG_SERVICE_KEY", catalog_key)]).catalog(inventory.address).await;
    let part = cat::RegisterManufacturerPartRequest { manufacturer_id: "20013".into(), part_number: "P".into() };
    catalog.register_manufacturer_part(part).await.expect("part");
    catalog
        .create_sku(cat::CreateSkuRequest { sku: Some(sku("managed", "P")) })
        .await
        .expect("its item made as the Catalog");
}

async fn every_rpc_refuses_callers_without_a_working_key_and_keeps_the_modes_apart(backend: Backend) {
    let suite = start(backend).await;
    populate(&suite, LIVE).await;
    populate(&suite, TEST).await;
    // The keys RevokeApiKey targets, one per mode.
    let (live_target, _) = make_key(&suite, keys::LIVE, "key-live", &[]).await;
    let (test_target, _) = make_key(&suite, keys::TEST, "key-test", &[]).await;
    let (_, reader) = make_key(&suite, keys::LIVE, "reader", &[acc::Scope::Read]).await;
    let (revoked_id, revoked) = make_key(&suite, keys::LIVE, "revoked", &[acc::Scope::Read, acc::Scope::Write]).await;
    let mut access = AccessServiceClient::new(suite.inventory.clone());
    access.revoke_api_key(keyed(acc::RevokeApiKeyRequest { id: revoked_id }, Some(keys::LIVE))).await.expect("revoked");
    let unknown = "fk_live_0000000000000000000000000000000000000000";
    // RevokeApiKey names keys by id; the matrix's Mode ids stand for them.
    let target_key = |mode: Mode| if mode.tag == "live" { live_target.clone() } else { test_target.clone() };
    let mut methods = every_method();
    assert!(methods.len() >= 38, "{methods:?}");
    // Creates go last: what one makes with the other mode's ids must not meet the checks after it.
    methods.sort_by_key(|method| spec(method).1 == Kind::Create);

    let before = (snapshot(&suite, LIVE).await, snapshot(&suite, TEST).await);
    for method in &methods {
        let (need, _) = spec(method);
        for (who, key) in
            [("no key", None), ("an unknown key", Some(unknown)), ("a revoked key", Some(revoked.as_str()))]
        {
            let status = call(&suite, method, key, LIVE).await.expect_err(who);
            assert_eq!(status.code(), Code::Unauthenticated, "{method} with {who}: {status:?}");
        }
        let with_reader = call(&suite, method, Some(&reader), LIVE).await;
        match need {
            Need::Read => assert!(
                !matches!(
                    with_reader.as_ref().map_err(Status::code),
                    Err(Code::PermissionDenied | Code::Unauthenticated)
                ),
                "{method} with a read key: {with_reader:?}"
            ),
            _ => {
                assert_eq!(with_reader.expect_err("refused").code(), Code::PermissionDenied, "{method} with a read key")
            }
        }
        if need == Need::Service {
            // Only the suite's services ask who a key belongs to; an admin key may not either.
            let status = call(&suite, method, Some(keys::LIVE), LIVE).await.expect_err("not a service");
            assert_eq!(status.code(), Code::PermissionDenied, "{method}");
        }
    }
    assert_eq!(
        (snapshot(&suite, LIVE).await, snapshot(&suite, TEST).await),
        before,
        "the refused calls changed nothing"
    );

    // Keys of one mode on the objects of the other: as if they did not exist.
    for (caller, owner) in [(TEST, LIVE), (LIVE, TEST)] {
        let before = snapshot(&suite, owner).await;
        for method in &methods {
            let (need, kind) = spec(method);
            if need == Need::Service {
                continue;
            }
            let answer = if method == "RevokeApiKey" {
                let request = acc::RevokeApiKeyRequest { id: target_key(owner) };
                access.revoke_api_key(keyed(request, Some(caller.key))).await.map(|_| Vec::new())
            } else {
                call(&suite, method, Some(caller.key), owner).await
            };
            match kind {
                Kind::Object => assert_eq!(
                    answer.as_ref().map_err(Status::code).err(),
                    Some(Code::NotFound),
                    "{method} with a {} key on a {} object: {answer:?}",
                    caller.tag,
                    owner.tag
                ),
                Kind::List => {
                    let listed: BTreeSet<String> = answer.expect("a listing").into_iter().collect();
                    let theirs = |id: &String| id.to_lowercase().ends_with(owner.tag);
                    assert!(!listed.iter().any(theirs), "{method} with a {} key shows {listed:?}", caller.tag);
                }
                // The other mode's id is free here.
                Kind::Create => assert_ne!(
                    answer.as_ref().map_err(Status::code).err(),
                    Some(Code::AlreadyExists),
                    "{method} with a {} key and a {} id",
                    caller.tag,
                    owner.tag
                ),
                Kind::Other => {}
            }
        }
        assert_eq!(
            snapshot(&suite, owner).await,
            before,
            "{} calls left the {} objects as they were",
            caller.tag,
            owner.tag
        );
    }
}

async fn each_mode_keeps_its_own_objects_under_the_same_ids(backend: Backend) {
    let suite = start(backend).await;
    populate(&suite, LIVE).await;
    let mut catalog = CatalogServiceClient::new(suite.catalog.clone());
    let mut inventory = InventoryServiceClient::new(suite.inventory.clone());
    // The test key makes a SKU with the live SKU's id: free in test mode, and the saga makes its
    // item in the test Inventory.
    let test_sku = cat::Sku { name: "the test one".into(), ..sku(&LIVE.id("sku"), &LIVE.id("P")) };
    let part = cat::RegisterManufacturerPartRequest { manufacturer_id: "20013".into(), part_number: LIVE.id("P") };
    catalog.register_manufacturer_part(keyed(part, Some(keys::TEST))).await.expect("part");
    let made = catalog
        .create_sku(keyed(cat::CreateSkuRequest { sku: Some(test_sku) }, Some(keys::TEST)))
        .await
        .expect("free in test mode");
    let made = made.into_inner().sku.expect("sku");
    assert!(!made.live_mode);
    let live = catalog
        .get_sku(keyed(cat::GetSkuRequest { id: LIVE.id("sku") }, Some(keys::LIVE)))
        .await
        .expect("live")
        .into_inner();
    let live = live.sku.expect("sku");
    assert!(live.live_mode);
    assert_ne!(live.name, made.name);
    for (key, live_mode) in [(keys::LIVE, true), (keys::TEST, false)] {
        let item =
            inventory.get_inventory_item(keyed(inv::GetInventoryItemRequest { id: LIVE.id("sku") }, Some(key))).await;
        let item = item.expect("each mode has the SKU's item").into_inner().inventory_item.expect("item");
        assert_eq!(item.live_mode, live_mode);
        assert_eq!(item.owner_sku_id, LIVE.id("sku"));
    }
    // Deleting the test SKU deletes the test item only.
    catalog.delete_sku(keyed(cat::DeleteSkuRequest { id: LIVE.id("sku") }, Some(keys::TEST))).await.expect("deleted");
    let gone = inventory
        .get_inventory_item(keyed(inv::GetInventoryItemRequest { id: LIVE.id("sku") }, Some(keys::TEST)))
        .await;
    assert_eq!(gone.expect_err("gone").code(), Code::NotFound);
    inventory
        .get_inventory_item(keyed(inv::GetInventoryItemRequest { id: LIVE.id("sku") }, Some(keys::LIVE)))
        .await
        .expect("kept");
}

async fn a_client_cannot_pass_for_the_catalog(backend: Backend) {
    let suite = start(backend).await;
    populate(&suite, LIVE).await;
    let mut inventory = InventoryServiceClient::new(suite.inventory.clone());
    // The old trust-me header, and a mode header, from a client key: neither counts.
    let mut request = keyed(inv::DeleteInventoryItemRequest { id: LIVE.id("sku") }, Some(keys::LIVE));
    request.metadata_mut().insert("x-fulfillment-caller", "catalog".parse().expect("value"));
    request.metadata_mut().insert("x-fulfillment-mode", "test".parse().expect("value"));
    let status = inventory.delete_inventory_item(request).await.expect_err("owned by a SKU");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    inventory
        .get_inventory_item(keyed(inv::GetInventoryItemRequest { id: LIVE.id("sku") }, Some(keys::LIVE)))
        .await
        .expect("kept");
    // The Catalog's own key is what the guard trusts.
    let request = suite_tests::as_catalog(inv::GetInventoryItemRequest { id: LIVE.id("sku") });
    inventory.get_inventory_item(request).await.expect("the Catalog reads its item");
    // Another service's key is not the Catalog's.
    let mut request = tonic::Request::new(inv::DeleteInventoryItemRequest { id: LIVE.id("sku") });
    fulfillment_server::calls::Credentials::new(keys::RESERVATION, true).expect("valid").apply(request.metadata_mut());
    let status = inventory.delete_inventory_item(request).await.expect_err("owned by a SKU");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    // No admin key makes a service key, test or live: identities come from the deployment.
    use tonic_types::StatusExt as _;
    let mut access = AccessServiceClient::new(suite.inventory.clone());
    for admin in [keys::TEST, keys::LIVE] {
        let request =
            acc::CreateApiKeyRequest { name: "sneaky".into(), service: "catalog".into(), ..Default::default() };
        let status = access.create_api_key(keyed(request, Some(admin))).await.expect_err("no service key from a call");
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
        assert_eq!(
            status.get_details_error_info().map(|info| info.reason),
            Some("service_key_from_deployment".to_owned())
        );
    }
    let listed = access
        .list_api_keys(keyed(acc::ListApiKeysRequest { include_revoked: true }, Some(keys::LIVE)))
        .await
        .expect("listed");
    assert!(listed.into_inner().api_keys.iter().all(|key| key.name != "sneaky"), "nothing was made");
    // A request naming every scope many times over is refused before any is read.
    let request = acc::CreateApiKeyRequest {
        name: "greedy".into(),
        scopes: vec![acc::Scope::Read as i32; 1_000_000],
        service: String::new(),
    };
    let status = access.create_api_key(keyed(request, Some(keys::LIVE))).await.expect_err("too many scopes");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    // A service key must say which mode it acts in.
    let status = inventory
        .get_inventory_item(keyed(inv::GetInventoryItemRequest { id: LIVE.id("sku") }, Some(keys::CATALOG)))
        .await
        .expect_err("no mode");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
}

async fn a_revoked_key_stops_working_without_a_restart(backend: Backend) {
    let suite = start(backend).await;
    let (id, secret) = make_key(&suite, keys::LIVE, "short-lived", &[acc::Scope::Read]).await;
    let mut catalog = CatalogServiceClient::new(suite.catalog.clone());
    let mut inventory = InventoryServiceClient::new(suite.inventory.clone());
    catalog
        .list_skus(keyed(cat::ListSkusRequest::default(), Some(&secret)))
        .await
        .expect("the key works at the Catalog");
    inventory
        .list_warehouses(keyed(inv::ListWarehousesRequest::default(), Some(&secret)))
        .await
        .expect("and at the Inventory");
    let mut access = AccessServiceClient::new(suite.inventory.clone());
    let revoked =
        access.revoke_api_key(keyed(acc::RevokeApiKeyRequest { id }, Some(keys::LIVE))).await.expect("revoked");
    assert!(revoked.into_inner().api_key.expect("key").revoked_time.is_some());
    // The Inventory holds the keys: refused at once.
    let status = inventory
        .list_warehouses(keyed(inv::ListWarehousesRequest::default(), Some(&secret)))
        .await
        .expect_err("revoked");
    assert_eq!(status.code(), Code::Unauthenticated);
    // The Catalog remembers an answer for API_KEY_CACHE_MS (2 s by default).
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match catalog.list_skus(keyed(cat::ListSkusRequest::default(), Some(&secret))).await {
            Err(status) if status.code() == Code::Unauthenticated => break,
            other => assert!(tokio::time::Instant::now() < deadline, "still served after revocation: {other:?}"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let listed = access
        .list_api_keys(keyed(acc::ListApiKeysRequest { include_revoked: false }, Some(keys::LIVE)))
        .await
        .expect("list");
    assert!(listed.into_inner().api_keys.iter().all(|k| k.name != "short-lived"));
}

on_every_backend!(
    a_key_over_its_rate_is_told_when_to_retry,
    a_deployment_provisions_its_admin_and_service_keys,
    every_rpc_refuses_callers_without_a_working_key_and_keeps_the_modes_apart,
    each_mode_keeps_its_own_objects_under_the_same_ids,
    a_client_cannot_pass_for_the_catalog,
    a_revoked_key_stops_working_without_a_restart
);

/// A secret of a key's shape that no registry knows.
fn made_up_key(n: usize) -> String {
    format!("fk_live_{n:0>40}")
}

async fn one_key_cannot_hold_every_call_slot(backend: Backend) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let (inventory_service, live) = suite_tests::Spawn::on(backend).inventory().await;
    let test = InventoryServiceClient::new(inventory_service.keyed(keys::TEST).await);
    for mut inventory in [live, test] {
        crate::inventory_support::warehouse(&mut inventory, "w", &[], 0).await;
        crate::inventory_support::item(&mut inventory, "a").await;
        crate::inventory_support::receive(&mut inventory, "a", "w", 100).await;
    }
    let slow = Arc::new(AtomicBool::new(false));
    let proxy = suite_tests::slow_proxy(inventory_service.address, slow.clone()).await;
    let (reservation_service, _client) =
        suite_tests::Spawn::on(backend).with(&[("API_KEY_MAX_CONCURRENT_CALLS", "2")]).reservation(proxy).await;
    let channel = reservation_service.channel().await;
    let reserve = |id: String, key: &'static str| {
        let mut client = ReservationServiceClient::new(channel.clone());
        let reservation = res::Reservation {
            id,
            items: vec![res::ReservationItem { inventory_item_id: "a".into(), quantity: 1, allow_oversell: None }],
            ship_to: address(),
            ..Default::default()
        };
        async move {
            client
                .create_reservation(keyed(res::CreateReservationRequest { reservation: Some(reservation) }, Some(key)))
                .await
                .map(drop)
        }
    };
    // Both keys known to the Reservation service before the Inventory slows down.
    reserve("warm-live".into(), keys::LIVE).await.expect("reserved");
    reserve("warm-test".into(), keys::TEST).await.expect("reserved");
    slow.store(true, Ordering::Relaxed);
    let slow_calls: Vec<_> = (0..2).map(|n| tokio::spawn(reserve(format!("slow-{n}"), keys::LIVE))).collect();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let status = reserve("third".into(), keys::LIVE).await.expect_err("the key's two slots are taken");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    use tonic_types::StatusExt as _;
    assert!(status.get_details_retry_info().and_then(|info| info.retry_delay).is_some(), "says when to retry");
    // Another key has slots of its own.
    let other = tokio::spawn(reserve("other-key".into(), keys::TEST));
    for call in slow_calls {
        call.await.expect("no panic").expect("the slow calls finish");
    }
    other.await.expect("no panic").expect("another key is served meanwhile");
    slow.store(false, Ordering::Relaxed);
    reserve("after".into(), keys::LIVE).await.expect("slots are given back when calls end");
    let figures = crate::metrics::Figures::of(&reservation_service).await;
    assert_eq!(figures.value("access_refusals_total", &[("reason", "concurrency_limited")]), 1.0);
}

async fn a_burst_of_made_up_keys_is_refused_without_lookups(backend: Backend) {
    let limits = [("API_KEY_FAILURE_LIMIT", "1"), ("API_KEY_FAILURE_BURST", "3")];
    let (inventory_service, _client) = suite_tests::Spawn::on(backend).with(&limits).inventory().await;
    let mut client = InventoryServiceClient::new(inventory_service.channel().await);
    let list = |key: &str| keyed(inv::ListWarehousesRequest::default(), Some(key));
    client.list_warehouses(list(keys::LIVE)).await.expect("a known key");
    // The burst of three, and the fourth that finds the burst spent: each looked up.
    for n in 0..4 {
        let status = client.list_warehouses(list(&made_up_key(n))).await.expect_err("unknown");
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    }
    for n in 4..20 {
        let status = client.list_warehouses(list(&made_up_key(n))).await.expect_err("barred");
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    }
    client.list_warehouses(list(keys::LIVE)).await.expect("a key already known still works");
    let figures = crate::metrics::Figures::of(&inventory_service).await;
    assert_eq!(figures.value("access_refusals_total", &[("reason", "unknown_key")]), 4.0, "the fourth failure bars");
    assert_eq!(figures.value("access_refusals_total", &[("reason", "failures_limited")]), 16.0);
}

on_every_backend!(one_key_cannot_hold_every_call_slot, a_burst_of_made_up_keys_is_refused_without_lookups);
